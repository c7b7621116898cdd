// Attention modules: the product brief's SelfAttention (fixed correctly for batches) and PyTorch's MultiheadAttention.
import { Tensor } from "../tensor.js";
import { zeros } from "../creation.js";
import { shapeStr } from "../shape.js";
import * as F from "../functional.js";
import { sdpa, type SdpaResult } from "../ops/attention.js";
import { attentionHeads, type HeadsOptions } from "../ops/attention-heads.js";
import { activeRecorder } from "../explain/capture.js";
import { isGradEnabled } from "../autograd.js";
import { Module, Parameter } from "./module.js";
import { Linear } from "./layers.js";
import { Int8Weight, type QuantizedLinear } from "./int8.js";
import { xavierUniform_ } from "./init.js";
import { checkDropout, checkPositiveInt } from "./check.js";
import { RotaryEmbedding, alibiSlopes, applyRotary } from "./rotary.js";

/**
 * The brief's module, batched: Q, K, V = three Linear(dModel, dModel) of x (B, T, dModel);
 * weights = softmax(Q·Kᵀ/√dModel) over the last axis (each query's distribution over keys); output = weights·V.
 */
export class SelfAttention extends Module {
  queryLinear: Linear;
  keyLinear: Linear;
  valueLinear: Linear;
  constructor(readonly dModel: number) {
    super();
    checkPositiveInt("SelfAttention", "dModel", dModel);
    this.queryLinear = new Linear(dModel, dModel);
    this.keyLinear = new Linear(dModel, dModel);
    this.valueLinear = new Linear(dModel, dModel);
  }

  forward(x: Tensor): Tensor { return this.forwardWithWeights(x, false)[0]; }

  /** Output (B, T, dModel) and the attention weights (B, T, T) (rows sum to 1). */
  forwardWithWeights(x: Tensor, needWeights = true): [Tensor, Tensor | null] {
    if (x.ndim !== 3 || x.shape[2] !== this.dModel) {
      throw new Error(`SelfAttention: expected input (B, T, ${this.dModel}), got ${shapeStr(x.shape)}`);
    }
    const rec = activeRecorder();
    const recording = !!rec && rec.wants(this);
    // one head: (B, 1, T, D), so the recorded (B, 1, T, T) weights are the very tensor the output is computed from
    // (gradient-weighted explanations read their .grad)
    const q = this.queryLinear.forward(x).unsqueeze(1), k = this.keyLinear.forward(x).unsqueeze(1), v = this.valueLinear.forward(x).unsqueeze(1);
    const { out, weights } = sdpa(q, k, v, {
      scale: 1 / Math.sqrt(this.dModel), returnWeights: needWeights || recording ? "full" : false,
      impl: recording && rec!.withGrad ? "math" : "fused",
    });                                                                                                   // (B, 1, T, D), (B, 1, T, T)
    if (recording && weights) rec!.add(this, { kind: "self", weights, headMean: false, keyPaddingMask: null, causal: false, queries: q, keys: k, scale: 1 / Math.sqrt(this.dModel) });
    return [out.squeeze(1), needWeights && weights ? weights.squeeze(1) : null];
  }
  protected override extraRepr(): string { return `dModel=${this.dModel}`; }
}

export interface MhaOptions {
  bias?: boolean; kdim?: number; vdim?: number; batchFirst?: boolean; dropout?: number;
  /**
   * Relative positions (default "none"): "rope" rotates each head's queries and keys (nn.RotaryEmbedding, base
   * ropeBase, default 10000; query and key positions from forward's positionIds / keyPositionIds, default 0..T−1);
   * "alibi" adds −slope_h·|i − j| (nn.alibiSlopes) inside the attention kernel.
   */
  position?: "none" | "rope" | "alibi";
  ropeBase?: number;
  /**
   * Sliding-window (local) attention, the key blocks outside the band skipped by the fused kernels (see
   * F.scaledDotProductAttention's window): W = each query sees the keys within W − 1 positions — before it when
   * forward's isCausal is set (HF's sliding_window: i − W < j ≤ i), on both sides otherwise; or [left, right].
   */
  window?: number | readonly [number, number] | null;
}
export interface MhaForwardOptions {
  /** (B, Tk) bool, true = padding (ignored); or float, added to the scores. */
  keyPaddingMask?: Tensor | null;
  needWeights?: boolean;
  /** (Tq, Tk) or (B·H, Tq, Tk): bool true = NOT allowed to attend (PyTorch MHA convention), or float added to scores. */
  attnMask?: Tensor | null;
  averageAttnWeights?: boolean;
  isCausal?: boolean;
  /** RoPE positions of the queries (B or 1, Tq) int32; default 0..Tq−1. */
  positionIds?: Tensor | null;
  /** RoPE positions of the keys (B or 1, Tk); default positionIds when key is query, else 0..Tk−1. */
  keyPositionIds?: Tensor | null;
  /**
   * Multiplies each head's attention probabilities (so its output) before the output projection, like Hugging Face's
   * `head_mask`: (H) or (B, H) float, H = the current numHeads (after pruning); 0 switches a head off, and its
   * gradient is Michel et al.'s head importance. Default: the module's `headMask` field (nn.setHeadMask), else none.
   */
  headMask?: Tensor | null;
}

/** torch.nn.MultiheadAttention: same parameters, names, masks and outputs. */
export class MultiheadAttention extends Module {
  inProjWeight: Tensor | null = null;   // (3E, E) when kdim = vdim = E
  qProjWeight: Tensor | null = null;    // (E, E)    otherwise
  kProjWeight: Tensor | null = null;    // (E, kdim)
  vProjWeight: Tensor | null = null;    // (E, vdim)
  inProjBias: Tensor | null = null;     // (3E)
  /** The in-projection as int8 (quantizeInProjection / nn.quantizeDynamic): buffers in_proj_weight(_scale). */
  inProjInt8: Int8Weight | null = null;
  outProj: Linear | QuantizedLinear;
  readonly headDim: number;
  readonly kdim: number;
  readonly vdim: number;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly position: "none" | "rope" | "alibi";
  rotaryEmb: RotaryEmbedding | null = null;
  readonly window: number | readonly [number, number] | null;
  private slopes: Float32Array | null = null;
  /** Heads left (numHeads shrinks when heads are pruned; the projections are numHeads·headDim wide). */
  numHeads: number;
  /** Original indices of the heads removed by pruneHeads (Hugging Face's `pruned_heads`). */
  readonly prunedHeads = new Set<number>();
  /** Head mask used when forward is not given one (nn.setHeadMask sets it on every attention module). */
  headMask: Tensor | null = null;

  constructor(readonly embedDim: number, numHeads: number, opts: MhaOptions = {}) {
    super();
    this.numHeads = numHeads;
    checkPositiveInt("MultiheadAttention", "embedDim", embedDim); checkPositiveInt("MultiheadAttention", "numHeads", numHeads);
    if (opts.kdim !== undefined) checkPositiveInt("MultiheadAttention", "kdim", opts.kdim);
    if (opts.vdim !== undefined) checkPositiveInt("MultiheadAttention", "vdim", opts.vdim);
    if (opts.dropout !== undefined) checkDropout("MultiheadAttention", "dropout", opts.dropout);
    if (embedDim % numHeads !== 0) throw new Error(`MultiheadAttention: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    this.headDim = embedDim / numHeads;
    this.kdim = opts.kdim ?? embedDim; this.vdim = opts.vdim ?? embedDim;
    this.batchFirst = opts.batchFirst ?? false; this.dropout = opts.dropout ?? 0;
    this.position = opts.position ?? "none";
    if (!["none", "rope", "alibi"].includes(this.position)) throw new RangeError(`MultiheadAttention: position must be "none", "rope" or "alibi", got ${JSON.stringify(opts.position)}`);
    if (this.position === "rope") this.rotaryEmb = new RotaryEmbedding(this.headDim, { base: opts.ropeBase });
    if (this.position === "alibi") this.slopes = alibiSlopes(numHeads);
    this.window = checkWindow("MultiheadAttention", opts.window);
    const E = embedDim;
    if (this.kdim === E && this.vdim === E) this.inProjWeight = Parameter(xavierUniform_(zeros([3 * E, E])));
    else {
      this.qProjWeight = Parameter(xavierUniform_(zeros([E, E])));
      this.kProjWeight = Parameter(xavierUniform_(zeros([E, this.kdim])));
      this.vProjWeight = Parameter(xavierUniform_(zeros([E, this.vdim])));
    }
    if (opts.bias !== false) this.inProjBias = Parameter(zeros([3 * E]));
    this.outProj = new Linear(E, E, { bias: opts.bias !== false });
    if (this.outProj.bias) this.outProj.bias.storage.data.fill(0);
  }

  /** Returns [attnOutput, attnWeights | null] with PyTorch's shapes. */
  forward(query: Tensor, key: Tensor, value: Tensor, opts: MhaForwardOptions = {}): [Tensor, Tensor | null] {
    const E = this.embedDim, H = this.numHeads, I = H * this.headDim;
    let q = query, k = key, v = value;
    if (q.ndim !== 3 || k.ndim !== 3 || v.ndim !== 3) {
      throw new Error(`MultiheadAttention: expected 3-D query/key/value, got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
    }
    if (!this.batchFirst) { q = q.transpose(0, 1); k = k.transpose(0, 1); v = v.transpose(0, 1); } // → (B, T, ·)
    const [B, Tq] = q.shape, Tk = k.shape[1];
    if (q.shape[2] !== E || k.shape[2] !== this.kdim || v.shape[2] !== this.vdim || k.shape[0] !== B || v.shape[0] !== B || v.shape[1] !== Tk) {
      throw new Error(`MultiheadAttention: query ${shapeStr(query.shape)}, key ${shapeStr(key.shape)}, value ${shapeStr(value.shape)} ` +
        `do not fit embedDim=${E}, kdim=${this.kdim}, vdim=${this.vdim} (batchFirst=${this.batchFirst})`);
    }
    const headMask = this.checkHeadMask(opts.headMask ?? this.headMask, B);                    // (B|1, 1, H, 1) | null
    const rec = activeRecorder();
    const recording = !!rec && rec.wants(this);
    // Inference with nothing recorded: the projections' temporaries go back to the buffer pool as soon as they are
    // used (fresh buffers cost page faults and garbage collections; the next call reuses these)
    const eager = !rec && !isGradEnabled();
    const need = opts.needWeights ?? true;
    const avg = opts.averageAttnWeights ?? true;
    let mode: "full" | "mean" | false = recording ? (rec!.mode === "mean" && (!need || avg) ? "mean" : "full") : need ? (avg ? "mean" : "full") : false;
    if (headMask && mode === "mean") mode = "full";                                        // masked per head, then averaged
    const kpm = opts.keyPaddingMask ?? null;
    const floatKpm = !!kpm && kpm.dtype !== "bool";
    const core: HeadsOptions = {
      heads: H,
      attnMask: floatKpm ? this.floatPadding(kpm!, opts.attnMask ?? null, B, Tq, Tk) : this.convertAttnMask(opts.attnMask ?? null, B, Tq, Tk),
      keyPaddingMask: floatKpm ? null : kpm,
      causal: !!opts.isCausal && !opts.attnMask,
      dropout: this.training ? this.dropout : 0,
      returnWeights: mode,
      impl: recording && rec!.withGrad ? "math" : "fused",
      alibiSlopes: this.slopes,
      window: windowPair(this.window, !!opts.isCausal),
    };
    // Projections stay token-major — (B, T, ·) views of (T, B, ·) storage when batchFirst is false — and the
    // attention reads its heads straight out of them: no transposes or copies anywhere in this module.
    const self = query === key && key === value;
    let r: SdpaResult;
    let qk: { queries: Tensor; keys: Tensor } | null = null;   // kept for the neuron view (CaptureOptions.withQK)
    if ((this.inProjWeight || this.inProjInt8) && self && !this.rotaryEmb && !(recording && rec!.withQK)) {
      const qkv = this.inProjection(q);
      r = attentionHeads({ qkv }, core);                                                  // one (B, T, 3E) projection
      if (eager) qkv.dispose();
    } else {
      let [Q, Kp, Vp] = this.project(q, k, v);                                            // (B, T, E) each
      if (this.rotaryEmb) {
        Q = this.rotate(Q, opts.positionIds ?? null);
        Kp = this.rotate(Kp, opts.keyPositionIds ?? (query === key ? opts.positionIds ?? null : null));
      }
      r = attentionHeads({ q: Q, k: Kp, v: Vp }, core);
      if (recording && rec!.withQK) qk = { queries: this.heads(Q), keys: this.heads(Kp) };
    }
    let { out, weights } = r;                                                              // (B, Tq, I = H·Dh)
    if (headMask) {
      out = out.reshape([B, Tq, H, this.headDim]).mul(headMask).reshape([B, Tq, I]);        // (B, Tq, I)
      if (weights) weights = weights.mul(headMask.permute(0, 2, 1, 3));                    // (B, H, Tq, Tk)
    }
    let y = this.outProj.forward(out);                                                      // (B, Tq, E)
    if (eager && out !== y) out.dispose();
    if (!this.batchFirst) y = y.transpose(0, 1);                                            // (Tq, B, E)
    if (recording && weights) {
      const recMean = !!headMask && rec!.mode === "mean" && (!need || avg);
      rec!.add(this, { kind: query === key ? "self" : "cross", weights: recMean ? weights.mean(1) : weights, headMean: mode === "mean" || recMean,
        keyPaddingMask: opts.keyPaddingMask ?? null, causal: !!opts.isCausal,
        ...(qk ? { ...qk, scale: 1 / Math.sqrt(this.headDim), scoreBias: this.slopes ? "ALiBi" : opts.attnMask ? "attention mask" : undefined } : {}) });
    }
    if (!need || !weights) return [y, null];
    if (mode === "full" && avg) return [y, weights.mean(1)];                               // (B, Tq, Tk)
    return [y, weights];
  }

  /** A head mask (H) or (B, H) → (B|1, 1, H, 1) to multiply the token-major (B, Tq, H, Dh) head outputs; errors name both shapes. */
  private checkHeadMask(m: Tensor | null, B: number): Tensor | null {
    if (!m) return null;
    const H = this.numHeads;
    const ok = (m.ndim === 1 && m.shape[0] === H) || (m.ndim === 2 && m.shape[1] === H && (m.shape[0] === B || m.shape[0] === 1));
    if (!ok) throw new Error(`MultiheadAttention: headMask must be [${H}] or [${B}, ${H}] (numHeads ${H}${this.prunedHeads.size ? ` after pruning ${this.prunedHeads.size}` : ""}), got ${shapeStr(m.shape)}`);
    if (m.dtype !== "float32") throw new Error(`MultiheadAttention: headMask must be float32, got ${m.dtype}`);
    return m.ndim === 1 ? m.reshape([1, 1, H, 1]) : m.reshape([m.shape[0], 1, H, 1]);
  }

  /**
   * Remove heads physically (Hugging Face's prune_heads): `heads` are original head indices (0..numHeads at
   * construction − 1); heads already pruned are skipped. The in-projection loses those heads' q, k and v rows, the
   * output projection their columns, numHeads shrinks; the kernels then do less work. Float weights only; at least
   * one head must remain.
   */
  pruneHeads(heads: Iterable<number>): void {
    const original = this.numHeads + this.prunedHeads.size;
    const drop = new Set<number>();
    for (const h of heads) {
      if (!Number.isInteger(h) || h < 0 || h >= original) throw new RangeError(`MultiheadAttention.pruneHeads: head ${h} is not in [0, ${original})`);
      if (!this.prunedHeads.has(h)) drop.add(h);
    }
    if (!drop.size) return;
    if (drop.size >= this.numHeads) throw new RangeError(`MultiheadAttention.pruneHeads: pruning heads ${[...drop].join(", ")} would leave no head (${this.numHeads} left); keep at least one per layer`);
    if (this.inProjInt8 || !(this.outProj instanceof Linear)) throw new Error("MultiheadAttention.pruneHeads: prune before quantizing (this module has int8 weights)");
    // current position of each remaining original head
    const current = [...Array(original).keys()].filter((h) => !this.prunedHeads.has(h));
    const keepHeads = current.map((h, i) => [h, i] as const).filter(([h]) => !drop.has(h)).map(([, i]) => i);
    const Dh = this.headDim, H = this.numHeads, I = H * Dh;
    const rows = (blocks: number) => {                                                      // kept rows of `blocks` stacked (I, ·) blocks
      const r: number[] = [];
      for (let blk = 0; blk < blocks; blk++) for (const i of keepHeads) for (let d = 0; d < Dh; d++) r.push(blk * I + i * Dh + d);
      return Tensor.fromArray(Int32Array.from(r), [r.length]);
    };
    const take = (t: Tensor, dim: number, idx: Tensor) => Parameter(t.detach().indexSelect(dim, idx).contiguous(), t.requiresGrad);
    if (this.inProjWeight) this.inProjWeight = take(this.inProjWeight, 0, rows(3));       // (3·H'·Dh, E)
    if (this.qProjWeight) this.qProjWeight = take(this.qProjWeight, 0, rows(1));          // (H'·Dh, E)
    if (this.kProjWeight) this.kProjWeight = take(this.kProjWeight, 0, rows(1));          // (H'·Dh, kdim)
    if (this.vProjWeight) this.vProjWeight = take(this.vProjWeight, 0, rows(1));          // (H'·Dh, vdim)
    if (this.inProjBias) this.inProjBias = take(this.inProjBias, 0, rows(3));             // (3·H'·Dh)
    const out = this.outProj;
    out.weight = take(out.weight, 1, rows(1));                                              // (E, H'·Dh)
    (out as { inFeatures: number }).inFeatures = keepHeads.length * Dh;
    if (this.slopes) this.slopes = Float32Array.from(keepHeads, (i) => this.slopes![i]);    // ALiBi slopes stay with their heads
    for (const h of drop) this.prunedHeads.add(h);
    this.numHeads = keepHeads.length;
  }

  /** (B, T, E) → (B, H, T, Dh), contiguous. */
  private heads(x: Tensor): Tensor {
    const [B, T] = x.shape;
    return x.reshape([B, T, this.numHeads, this.headDim]).permute(0, 2, 1, 3).contiguous();
  }

  /** RoPE on a token-major projection (B, T, E): each head's (B, T, H, Dh) slice rotated by its position. */
  private rotate(x: Tensor, positions: Tensor | null): Tensor {
    const [B, T] = x.shape, H = this.numHeads, Dh = this.headDim;
    const pos = positions ?? Tensor.fromArray(Int32Array.from({ length: T }, (_, i) => i), [1, T]);
    if (pos.ndim !== 2 || pos.shape[1] !== T || (pos.shape[0] !== B && pos.shape[0] !== 1)) {
      throw new Error(`MultiheadAttention: RoPE positions must be (${B}, ${T}) or (1, ${T}), got ${shapeStr(pos.shape)}`);
    }
    const { cos, sin } = this.rotaryEmb!.cosSin(pos);                                      // (B|1, T, Dh)
    return applyRotary(x.reshape([B, T, H, Dh]), cos.unsqueeze(2), sin.unsqueeze(2)).reshape([B, T, H * Dh]);
  }

  /**
   * The packed in-projection of x (…, E): all of q, k, v (…, 3E), or only part 0 (q), 1 (k) or 2 (v) (…, E); float
   * or int8 (after quantizeInProjection). Needs the packed in_proj_weight (kdim = vdim = embedDim).
   */
  inProjection(x: Tensor, part?: 0 | 1 | 2): Tensor {
    const E = this.numHeads * this.headDim, b = this.inProjBias;
    if (this.inProjInt8) return part === undefined ? this.inProjInt8.linear(x, b) : this.inProjInt8.linear(x, b, part * E, E);
    if (!this.inProjWeight) throw new Error("MultiheadAttention.inProjection: this module has separate q/k/v projections (kdim or vdim ≠ embedDim)");
    if (part === undefined) return F.linear(x, this.inProjWeight, b);
    return F.linear(x, this.inProjWeight.narrow(0, part * E, E), b ? b.narrow(0, part * E, E) : null);
  }

  /**
   * Dynamic int8 in-projection (nn.quantizeDynamic calls it): in_proj_weight becomes int8 values per output channel
   * with in_proj_weight_scale (buffers, not parameters); in_proj_bias stays float. Inference only.
   */
  quantizeInProjection(structureOnly = false): void {
    if (this.inProjInt8) return;
    if (!this.inProjWeight) throw new Error("MultiheadAttention.quantizeInProjection: only the packed in_proj_weight (kdim = vdim = embedDim) can be quantized");
    const [N, Kd] = this.inProjWeight.shape;
    this.inProjInt8 = structureOnly ? new Int8Weight(zeros([N, Kd], { dtype: "int32" }), zeros([N]).add(1)) : Int8Weight.fromFloat(this.inProjWeight);
    this.inProjWeight = null;
    this.registerBuffer("in_proj_weight", this.inProjInt8.weight);
    this.registerBuffer("in_proj_weight_scale", this.inProjInt8.scale);
  }

  /** Separate Q/K/V projections (cross-attention, or kdim/vdim ≠ embedDim); self-attention projects once in forward. */
  private project(q: Tensor, k: Tensor, v: Tensor): [Tensor, Tensor, Tensor] {
    const E = this.numHeads * this.headDim, b = this.inProjBias;
    const bias = (i: number) => (b ? b.narrow(0, i * E, E) : null);
    if (this.inProjInt8) return [this.inProjection(q, 0), this.inProjection(k, 1), this.inProjection(v, 2)];
    if (this.inProjWeight) {
      const W = this.inProjWeight;
      return [F.linear(q, W.narrow(0, 0, E), bias(0)), F.linear(k, W.narrow(0, E, E), bias(1)), F.linear(v, W.narrow(0, 2 * E, E), bias(2))];
    }
    return [F.linear(q, this.qProjWeight!, bias(0)), F.linear(k, this.kProjWeight!, bias(1)), F.linear(v, this.vProjWeight!, bias(2))];
  }

  /** MHA mask (true = blocked, or additive) → sdpa mask (true = attend, or additive), shaped to broadcast over (B,H). */
  private convertAttnMask(m: Tensor | null, B: number, Tq: number, Tk: number): Tensor | null {
    if (!m) return null;
    let mm = m;
    if (m.ndim === 3) {
      if (m.shape[0] !== B * this.numHeads || m.shape[1] !== Tq || m.shape[2] !== Tk) {
        throw new Error(`MultiheadAttention: 3-D attnMask must be (${B * this.numHeads}, ${Tq}, ${Tk}), got ${shapeStr(m.shape)}`);
      }
      mm = m.reshape([B, this.numHeads, Tq, Tk]);
    } else if (m.ndim !== 2 || m.shape[0] !== Tq || m.shape[1] !== Tk) {
      throw new Error(`MultiheadAttention: attnMask must be (${Tq}, ${Tk}) or (${B * this.numHeads}, ${Tq}, ${Tk}), got ${shapeStr(m.shape)}`);
    }
    return mm.dtype === "bool" ? mm.logicalNot() : mm;
  }

  /** A float key padding mask is added to the scores (together with any attnMask). */
  private floatPadding(kpm: Tensor, attnMask: Tensor | null, B: number, Tq: number, Tk: number): Tensor {
    if (kpm.ndim !== 2 || kpm.shape[0] !== B || kpm.shape[1] !== Tk) throw new Error(`MultiheadAttention: keyPaddingMask must be (${B}, ${Tk}), got ${shapeStr(kpm.shape)}`);
    let add = kpm.reshape([B, 1, 1, Tk]);
    const am = this.convertAttnMask(attnMask, B, Tq, Tk);
    if (am) add = add.add(am.dtype === "bool" ? boolToAdditive(am) : am);
    return add;
  }
  protected override extraRepr(): string {
    return `embedDim=${this.embedDim}, numHeads=${this.numHeads}${this.prunedHeads.size ? ` (pruned ${[...this.prunedHeads].sort((a, b) => a - b).join(",")})` : ""}, batchFirst=${this.batchFirst}` +
      (this.window !== null ? `, window=${JSON.stringify(this.window)}` : "");
  }
}

/** A module's window option, validated (a positive integer or [left, right] of integers ≥ −1), or null. */
export function checkWindow(who: string, w: number | readonly [number, number] | null | undefined): number | readonly [number, number] | null {
  if (w === undefined || w === null) return null;
  const ok = typeof w === "number" ? Number.isInteger(w) && w >= 1 : Array.isArray(w) && w.length === 2 && w.every((x) => Number.isInteger(x) && x >= -1);
  if (!ok) throw new RangeError(`${who}: window must be a positive integer or [left, right] (integers ≥ −1, −1 = unbounded), got ${JSON.stringify(w)}`);
  return w;
}

/** The window as explicit [left, right] for sdpa: W reaches W − 1 keys back, and forward too unless causal. */
export function windowPair(w: number | readonly [number, number] | null, causal: boolean): [number, number] | null {
  if (w === null) return null;
  return typeof w === "number" ? [w - 1, causal ? 0 : w - 1] : [w[0], w[1]];
}

function boolToAdditive(attend: Tensor): Tensor {
  return zeros(attend.shape).maskedFill(attend.logicalNot(), -Infinity);
}
