// Dynamic int8 quantization of linear layers (PyTorch's torch.ao.nn.quantized.dynamic.Linear): int8 weights per
// output channel, activations quantized per row at run time, int32 accumulation, float output (the arithmetic is
// defined in backend/ref/qlinear.ts; the native and Wasm backends run it with VNNI / AVX2 / SIMD128 kernels).
//
// State dict of a QuantizedLinear (safetensors-friendly, the names of llm-compressor / compressed-tensors int8
// checkpoints): `weight` (out, in) int8 values (I8 on disk; an int32 tensor in memory), `weight_scale` (out) float32
// and `bias` (out) float32. nn.MultiheadAttention quantized in place keeps `in_proj_weight` (int8) with
// `in_proj_weight_scale` beside it (see quantize.ts).
import { Tensor } from "../tensor.js";
import { zeros, ones } from "../creation.js";
import { shapeStr } from "../shape.js";
import { isGradEnabled, record } from "../autograd.js";
import { K } from "../backend/registry.js";
import type { QlinearAct } from "../backend/kernels.js";
import * as F from "../functional.js";
import { packQuantizedWeights, quantizeWeightsPerChannel, QLINEAR_MAX_K, type QuantizedWeights } from "../backend/ref/qlinear.js";
import { uninit } from "../ops/util.js";
import { Module } from "./module.js";
import { checkPositiveInt } from "./check.js";

/**
 * An int8 weight matrix (N, K) with its per-output-channel scales, both state-dict tensors (int32 values in
 * [−128, 127] and float32), and their packed kernel form, rebuilt whenever either tensor is written.
 */
export class Int8Weight {
  private packs = new Map<string, QuantizedWeights>();
  private key = "";
  constructor(readonly weight: Tensor, readonly scale: Tensor) {
    if (weight.dtype !== "int32" || weight.ndim !== 2) throw new Error(`Int8Weight: weight must be a 2-D int32 tensor of int8 values, got ${weight.dtype} ${shapeStr(weight.shape)}`);
    if (scale.dtype !== "float32" || scale.ndim !== 1 || scale.shape[0] !== weight.shape[0]) {
      throw new Error(`Int8Weight: weight_scale must be float32 (${weight.shape[0]}), got ${scale.dtype} ${shapeStr(scale.shape)}`);
    }
  }
  get outFeatures(): number { return this.weight.shape[0]; }
  get inFeatures(): number { return this.weight.shape[1]; }

  /** Quantize a float (N, K) weight per output channel (symmetric int8). */
  static fromFloat(w: Tensor): Int8Weight {
    if (w.ndim !== 2 || w.dtype !== "float32") throw new Error(`Int8Weight.fromFloat: expected a float32 (out, in) weight, got ${w.dtype} ${shapeStr(w.shape)}`);
    const [N, Kd] = w.shape;
    const { q, scale } = quantizeWeightsPerChannel(w.dataSync() as Float32Array, N, Kd);
    return new Int8Weight(Tensor.fromArray(Int32Array.from(q), [N, Kd], "int32"), Tensor.fromArray(scale, [N], "float32"));
  }

  /** The packed form of output rows [start, start + count) (cached until the weight or scale tensors change). */
  packed(start = 0, count = this.outFeatures): QuantizedWeights {
    const ws = this.weight.storage, ss = this.scale.storage;
    const key = `${ws.id}:${ws.version}:${ss.id}:${ss.version}`;
    if (key !== this.key) { this.packs.clear(); this.key = key; }
    const pk = `${start}:${count}`;
    let p = this.packs.get(pk);
    if (!p) {
      const Kd = this.inFeatures;
      const wq = (this.weight.isContiguous() ? this.weight : this.weight.contiguous()).storage.dataForRead() as Int32Array;
      const w0 = this.weight.isContiguous() ? this.weight.offset : 0;
      const sc = this.scale.contiguous().storage.dataForRead() as Float32Array;
      const s0 = this.scale.isContiguous() ? this.scale.offset : 0;
      p = packQuantizedWeights(wq.subarray(w0 + start * Kd, w0 + (start + count) * Kd), count, Kd, sc.subarray(s0 + start, s0 + start + count));
      this.packs.set(pk, p);
    }
    return p;
  }

  /** Dequantized float weights of rows [start, start + count): Wq · s (the weights the int8 layer computes with). */
  dequantize(start = 0, count = this.outFeatures): Tensor {
    return this.weight.narrow(0, start, count).to("float32").mul(this.scale.narrow(0, start, count).unsqueeze(1));
  }

  /**
   * y (…, count) = dynamic-int8 x (…, K) · W[start .. start+count)ᵀ + bias. Differentiable in x (the gradient of
   * the dequantized linear map, the straight-through estimator), so gradient-based explanations run on int8 models.
   */
  linear(x: Tensor, bias: Tensor | null, start = 0, count = this.outFeatures): Tensor {
    return this.linearAct(x, bias, "none", start, count);
  }

  /**
   * act(linear(x, bias)) for ReLU / erf GELU / tanh GELU. In inference (no gradient wanted) on a backend whose
   * qlinear takes the activation, it runs in the kernel's epilogue (the float path's own unary kernel, on the rows
   * while they are in cache); otherwise the activation op runs after.
   */
  linearAct(x: Tensor, bias: Tensor | null, act: QlinearAct, start = 0, count = this.outFeatures): Tensor {
    const Kd = this.inFeatures;
    if (x.dtype !== "float32") throw new Error(`int8 linear: input must be float32, got ${x.dtype}`);
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== Kd) {
      throw new Error(`int8 linear: input ${shapeStr(x.shape)} does not match weight ${shapeStr([count, Kd])} (expected last dim ${Kd})`);
    }
    if (bias && (bias.ndim !== 1 || bias.shape[0] < start + count)) throw new Error(`int8 linear: bias ${shapeStr(bias.shape)} does not match ${this.outFeatures} outputs`);
    if (Kd > QLINEAR_MAX_K) throw new Error(`int8 linear: in features ${Kd} above ${QLINEAR_MAX_K} could overflow the int32 accumulators`);
    const w = this.packed(start, count);
    const xc = x.contiguous();
    const M = Kd > 0 ? xc.numel() / Kd : 0;
    const y = uninit([...x.shape.slice(0, -1), count]);
    const bc = bias ? bias.contiguous() : null;
    const bd = bc ? (bc.storage.dataForRead() as Float32Array).subarray(bc.offset + start, bc.offset + start + count) : null;
    const noGraph = !isGradEnabled() || !x.requiresGrad;
    const fused = act !== "none" && noGraph && !!K.qlinearAct;
    if (M > 0) K.qlinear!(xc.storage.dataForRead() as Float32Array, xc.offset, M, Kd, w, bd, y.storage.data as Float32Array, 0, count, null, fused ? act : "none");
    if (xc !== x) xc.dispose();
    const z = noGraph ? y : record(y, "qlinear", [x], (g) => [g.matmul(this.dequantize(start, count))]);
    if (act === "none" || fused) return z;
    const r = act === "relu" ? F.relu(z) : F.gelu(z, act === "gelu-tanh" ? "tanh" : "none");
    if (noGraph) z.dispose();
    return r;
  }
}

/** torch.ao.nn.quantized.dynamic.Linear: y = int8(x)·int8(W)ᵀ·scales + bias, per-row dynamic activations. */
export class QuantizedLinear extends Module {
  readonly int8: Int8Weight;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    checkPositiveInt("QuantizedLinear", "inFeatures", inFeatures); checkPositiveInt("QuantizedLinear", "outFeatures", outFeatures);
    this.int8 = new Int8Weight(zeros([outFeatures, inFeatures], { dtype: "int32" }), ones([outFeatures]));
    this.registerBuffer("weight", this.int8.weight);
    this.registerBuffer("weight_scale", this.int8.scale);
    this.registerBuffer("bias", opts.bias === false ? null : zeros([outFeatures]));
    this.training = false;
  }
  /** Quantize a float nn.Linear (its weight per output channel; the bias stays float). */
  static fromFloat(l: { weight: Tensor; bias: Tensor | null }): QuantizedLinear {
    const [N, Kd] = l.weight.shape;
    const q = new QuantizedLinear(Kd, N, { bias: !!l.bias });
    const src = Int8Weight.fromFloat(l.weight);
    q.weight.storage.data.set(src.weight.storage.dataForRead());
    q.weightScale.storage.data.set(src.scale.storage.dataForRead());
    if (l.bias) q.bias!.storage.data.set(l.bias.contiguous().dataSync());
    return q;
  }
  /** int8 values (out, in) as int32. */
  get weight(): Tensor { return this.int8.weight; }
  /** Per-output-channel scales (out). */
  get weightScale(): Tensor { return this.int8.scale; }
  get bias(): Tensor | null { return this.getBuffer("bias"); }
  forward(x: Tensor): Tensor { return this.int8.linear(x, this.bias); }
  /** act(forward(x)) with the activation fused into the int8 kernel where the backend can (Int8Weight.linearAct). */
  forwardAct(x: Tensor, act: QlinearAct): Tensor { return this.int8.linearAct(x, this.bias, act); }
  protected override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}, dtype=qint8, qscheme=per_channel_symmetric`;
  }
}
