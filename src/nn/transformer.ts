// nn.TransformerEncoderLayer / TransformerEncoder / TransformerDecoderLayer / TransformerDecoder, PyTorch semantics
// and parameter names (self_attn, multihead_attn, linear1, linear2, norm1..3).
import type { Tensor } from "../tensor.js";
import * as F from "../functional.js";
import { Module } from "./module.js";
import { Dropout, LayerNorm, Linear, ModuleList } from "./layers.js";
import { MultiheadAttention } from "./attention.js";
import { QuantizedLinear } from "./int8.js";
import { checkDropout, checkNumber, checkPositiveInt } from "./check.js";
import { isGradEnabled } from "../autograd.js";
import { activeRecorder } from "../explain/capture.js";

export interface TransformerLayerOptions {
  dimFeedforward?: number;      // default 2048
  dropout?: number;             // default 0.1
  activation?: "relu" | "gelu" | ((x: Tensor) => Tensor);
  layerNormEps?: number;        // default 1e-5
  batchFirst?: boolean;         // default false, like PyTorch
  normFirst?: boolean;          // pre-norm when true
  bias?: boolean;
  /** Sliding-window self-attention (nn.MultiheadAttention's window option); cross-attention stays full. */
  window?: number | readonly [number, number] | null;
}

function act(a: TransformerLayerOptions["activation"]): (x: Tensor) => Tensor {
  if (typeof a === "function") return a;
  if (a === undefined || a === "relu") return F.relu;
  if (a === "gelu") return (x) => F.gelu(x);
  throw new Error(`Transformer layer: activation must be "relu" or "gelu", got ${String(a)}`);
}

export interface EncoderForwardOptions { srcMask?: Tensor | null; srcKeyPaddingMask?: Tensor | null; isCausal?: boolean }

export class TransformerEncoderLayer extends Module {
  selfAttn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  readonly normFirst: boolean;
  private activation: (x: Tensor) => Tensor;

  constructor(readonly dModel: number, readonly nhead: number, o: TransformerLayerOptions = {}) {
    super();
    const p = o.dropout ?? 0.1, ff = o.dimFeedforward ?? 2048, eps = o.layerNormEps ?? 1e-5, bias = o.bias !== false;
    checkLayerArgs(new.target.name, dModel, nhead, p, ff, eps);
    this.selfAttn = new MultiheadAttention(dModel, nhead, { dropout: p, batchFirst: o.batchFirst ?? false, bias, window: o.window });
    this.linear1 = new Linear(dModel, ff, { bias });
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(ff, dModel, { bias });
    this.norm1 = new LayerNorm(dModel, { eps, bias });
    this.norm2 = new LayerNorm(dModel, { eps, bias });
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
    this.normFirst = o.normFirst ?? false;
    this.activation = act(o.activation);
    this.activationName = o.activation === "gelu" ? "gelu" : o.activation === undefined || o.activation === "relu" ? "relu" : null;
  }
  /** The activation by name where it is a built-in one (an int8 linear1 can then run it in its kernel). */
  private readonly activationName: "relu" | "gelu" | null;

  forward(src: Tensor, o: EncoderForwardOptions = {}): Tensor {
    const sa = (y: Tensor) => this.dropout1.forward(this.selfAttn.forward(y, y, y,
      { attnMask: o.srcMask ?? null, keyPaddingMask: o.srcKeyPaddingMask ?? null, needWeights: false, isCausal: o.isCausal })[0]);
    const ff = (y: Tensor) => this.dropout2.forward(this.linear2.forward(this.dropout.forward(this.activation(this.linear1.forward(y)))));
    let x = src;
    if (!isGradEnabled() && !activeRecorder()) return this.forwardEager(src, sa);
    if (this.normFirst) {
      x = x.add(sa(this.norm1.forward(x)));
      x = x.add(ff(this.norm2.forward(x)));
    } else {
      x = this.norm1.forward(x.add(sa(x)));
      x = this.norm2.forward(x.add(ff(x)));
    }
    return x;
  }

  /**
   * The same forward for inference with nothing recorded: each temporary goes back to the buffer pool once used,
   * so a stack of layers reuses a few buffers instead of allocating ~10 per layer (page faults, collections).
   */
  private forwardEager(src: Tensor, sa: (y: Tensor) => Tensor): Tensor {
    const free = (ts: Tensor[], ...live: Tensor[]) => { for (const t of new Set(ts)) if (!live.includes(t)) t.dispose(); };
    const ff = (y: Tensor) => {
      const l1 = this.linear1 as Linear | QuantizedLinear;
      const fuse = l1 instanceof QuantizedLinear && this.activationName !== null;
      const h = fuse ? l1.forwardAct(y, this.activationName!) : this.linear1.forward(y), g = fuse ? h : this.activation(h), d = this.dropout.forward(g);
      const o = this.linear2.forward(d), r = this.dropout2.forward(o);
      free([h, g, d, o], y, r);
      return r;
    };
    const step = (x: Tensor, f: (y: Tensor) => Tensor, norm: LayerNorm): Tensor => {
      if (this.normFirst) {
        const n = norm.forward(x), a = f(n), r = x.add(a);
        free([n, a], x, r);
        return r;
      }
      const a = f(x), s = x.add(a), r = norm.forward(s);
      free([a, s], x, r);
      return r;
    };
    const x1 = step(src, sa, this.norm1);
    const x2 = step(x1, ff, this.norm2);
    if (x1 !== src && x1 !== x2) x1.dispose();
    return x2;
  }
}

function checkLayerArgs(cls: string, dModel: number, nhead: number, dropout: number, ff: number, eps: number): void {
  checkPositiveInt(cls, "dModel", dModel); checkPositiveInt(cls, "nhead", nhead); checkPositiveInt(cls, "dimFeedforward", ff);
  if (dModel % nhead !== 0) throw new RangeError(`${cls}: dModel ${dModel} must be divisible by nhead ${nhead}`);
  checkDropout(cls, "dropout", dropout);
  checkNumber(cls, "layerNormEps", eps, 0, Infinity, { loOpen: true });
}

export class TransformerEncoder extends Module {
  layers: ModuleList<TransformerEncoderLayer>;
  norm: LayerNorm | null;
  /** numLayers independent layers built by `makeLayer(i)` (PyTorch deep-copies one layer; a factory is clearer). */
  constructor(makeLayer: (i: number) => TransformerEncoderLayer, numLayers: number, norm: LayerNorm | null = null) {
    super();
    checkPositiveInt(new.target.name, "numLayers", numLayers);
    this.layers = new ModuleList(Array.from({ length: numLayers }, (_, i) => makeLayer(i)));
    this.norm = norm;
  }
  forward(src: Tensor, o: { mask?: Tensor | null; srcKeyPaddingMask?: Tensor | null; isCausal?: boolean } = {}): Tensor {
    let x = src;
    const eager = !isGradEnabled() && !activeRecorder();  // inference: free each layer's input once the next is done
    for (const layer of this.layers) {
      const y = layer.forward(x, { srcMask: o.mask, srcKeyPaddingMask: o.srcKeyPaddingMask, isCausal: o.isCausal });
      if (eager && x !== src && x !== y) x.dispose();
      x = y;
    }
    if (!this.norm) return x;
    const y = this.norm.forward(x);
    if (eager && x !== src && x !== y) x.dispose();
    return y;
  }
}

export interface DecoderForwardOptions {
  tgtMask?: Tensor | null; memoryMask?: Tensor | null;
  tgtKeyPaddingMask?: Tensor | null; memoryKeyPaddingMask?: Tensor | null;
  tgtIsCausal?: boolean;
}

export class TransformerDecoderLayer extends Module {
  selfAttn: MultiheadAttention;
  multiheadAttn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  norm3: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  dropout3: Dropout;
  readonly normFirst: boolean;
  private activation: (x: Tensor) => Tensor;

  constructor(readonly dModel: number, readonly nhead: number, o: TransformerLayerOptions = {}) {
    super();
    const p = o.dropout ?? 0.1, ff = o.dimFeedforward ?? 2048, eps = o.layerNormEps ?? 1e-5, bias = o.bias !== false;
    checkLayerArgs(new.target.name, dModel, nhead, p, ff, eps);
    this.selfAttn = new MultiheadAttention(dModel, nhead, { dropout: p, batchFirst: o.batchFirst ?? false, bias, window: o.window });
    this.multiheadAttn = new MultiheadAttention(dModel, nhead, { dropout: p, batchFirst: o.batchFirst ?? false, bias });
    this.linear1 = new Linear(dModel, ff, { bias });
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(ff, dModel, { bias });
    this.norm1 = new LayerNorm(dModel, { eps, bias });
    this.norm2 = new LayerNorm(dModel, { eps, bias });
    this.norm3 = new LayerNorm(dModel, { eps, bias });
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
    this.dropout3 = new Dropout(p);
    this.normFirst = o.normFirst ?? false;
    this.activation = act(o.activation);
  }

  forward(tgt: Tensor, memory: Tensor, o: DecoderForwardOptions = {}): Tensor {
    const sa = (y: Tensor) => this.dropout1.forward(this.selfAttn.forward(y, y, y,
      { attnMask: o.tgtMask ?? null, keyPaddingMask: o.tgtKeyPaddingMask ?? null, needWeights: false, isCausal: o.tgtIsCausal })[0]);
    const ca = (y: Tensor) => this.dropout2.forward(this.multiheadAttn.forward(y, memory, memory,
      { attnMask: o.memoryMask ?? null, keyPaddingMask: o.memoryKeyPaddingMask ?? null, needWeights: false })[0]);
    const ff = (y: Tensor) => this.dropout3.forward(this.linear2.forward(this.dropout.forward(this.activation(this.linear1.forward(y)))));
    let x = tgt;
    if (this.normFirst) {
      x = x.add(sa(this.norm1.forward(x)));
      x = x.add(ca(this.norm2.forward(x)));
      x = x.add(ff(this.norm3.forward(x)));
    } else {
      x = this.norm1.forward(x.add(sa(x)));
      x = this.norm2.forward(x.add(ca(x)));
      x = this.norm3.forward(x.add(ff(x)));
    }
    return x;
  }
}

export class TransformerDecoder extends Module {
  layers: ModuleList<TransformerDecoderLayer>;
  norm: LayerNorm | null;
  constructor(makeLayer: (i: number) => TransformerDecoderLayer, numLayers: number, norm: LayerNorm | null = null) {
    super();
    checkPositiveInt(new.target.name, "numLayers", numLayers);
    this.layers = new ModuleList(Array.from({ length: numLayers }, (_, i) => makeLayer(i)));
    this.norm = norm;
  }
  forward(tgt: Tensor, memory: Tensor, o: DecoderForwardOptions = {}): Tensor {
    let x = tgt;
    for (const layer of this.layers) x = layer.forward(x, memory, o);
    return this.norm ? this.norm.forward(x) : x;
  }
}
