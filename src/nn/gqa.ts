// Grouped-query self-attention (Ainslie et al. 2023) as a public module: H query heads share Hkv key/value heads
// (Hkv = H is multi-head, Hkv = 1 multi-query attention), with RoPE or ALiBi as the position option, HF-style padding
// masks (1 = attend) and an optional KVCache for incremental decoding. The parameter names are Hugging Face's
// (q_proj, k_proj, v_proj, o_proj), so Llama-family checkpoints load into it unchanged.
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { sdpa } from "../ops/attention.js";
import { isGradEnabled } from "../autograd.js";
import { contiguousData } from "../ops/movement.js";
import { activeRecorder } from "../explain/capture.js";
import { KVCache } from "../models/generate.js";
import { Module } from "./module.js";
import { Linear } from "./layers.js";
import { RotaryEmbedding, alibiSlopes, applyRotary, type RopeScaling } from "./rotary.js";
import { checkDropout, checkPositiveInt } from "./check.js";
import { checkWindow, windowPair } from "./attention.js";

export interface GqaOptions {
  /** Key/value heads; numHeads must be a multiple. Default numHeads (plain multi-head); 1 = multi-query. */
  numKvHeads?: number;
  /** Per-head width; default embedDim / numHeads. */
  headDim?: number;
  /** Biases on q/k/v/o (default true, like nn.Linear). */
  bias?: boolean;
  /** Relative positions: "rope" rotates q and k, "alibi" adds −slope·|i − j| in the kernel, "none" (default) adds nothing. */
  position?: "none" | "rope" | "alibi";
  /** RoPE base θ (default 10000) and optional frequency scaling. */
  ropeBase?: number;
  ropeScaling?: RopeScaling | null;
  /** Dropout on the attention weights while training. */
  dropout?: number;
  /**
   * A query row with no visible key (e.g. a left-padding position under a causal mask): "zero" (default, PyTorch ≥ 2.5
   * SDPA) gives output and weights 0; "uniform" averages every value with weights 1/Tk, which is what Hugging Face's
   * eager attention computes with its finite minimum mask.
   */
  maskedRows?: "zero" | "uniform";
  /**
   * Sliding-window attention (Mistral's sliding_window): W = query i sees keys i − W < j ≤ i under isCausal (both
   * sides, |i − j| < W, without); or [left, right]. Positions count cached keys, so decoding with a KVCache slides too.
   */
  window?: number | readonly [number, number] | null;
}

export interface GqaForwardOptions {
  /** (B, Tk): 1/true = attend, 0 = padding (Hugging Face's convention). With a cache, Tk covers cached + new keys. */
  attentionMask?: Tensor | null;
  /** (B, T) int32 positions of the queries (and new keys) for RoPE; default cache.length + 0..T−1. */
  positionIds?: Tensor | null;
  /** Query i (at cache position P + i) sees keys ≤ P + i. */
  isCausal?: boolean;
  /**
   * Append this call's keys/values to cache (layer `layer`) and attend over everything cached; the caller advances it.
   * Inference only (inside noGrad()): the cache holds copies, which carry no gradient.
   */
  cache?: KVCache | null;
  layer?: number;
  /** Return the attention probabilities (B, H, T, Tk). */
  needWeights?: boolean;
}

export class GroupedQueryAttention extends Module {
  qProj: Linear;
  kProj: Linear;
  vProj: Linear;
  oProj: Linear;
  rotaryEmb: RotaryEmbedding | null;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly slopes: Float32Array | null;
  readonly position: "none" | "rope" | "alibi";

  constructor(readonly embedDim: number, readonly numHeads: number, readonly opts: GqaOptions = {}) {
    super();
    checkPositiveInt("GroupedQueryAttention", "embedDim", embedDim); checkPositiveInt("GroupedQueryAttention", "numHeads", numHeads);
    this.numKvHeads = opts.numKvHeads ?? numHeads;
    checkPositiveInt("GroupedQueryAttention", "numKvHeads", this.numKvHeads);
    if (numHeads % this.numKvHeads !== 0) throw new RangeError(`GroupedQueryAttention: numHeads ${numHeads} must be a multiple of numKvHeads ${this.numKvHeads}`);
    if (opts.headDim === undefined && embedDim % numHeads !== 0) throw new RangeError(`GroupedQueryAttention: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    this.headDim = opts.headDim ?? embedDim / numHeads;
    checkPositiveInt("GroupedQueryAttention", "headDim", this.headDim);
    if (opts.dropout !== undefined) checkDropout("GroupedQueryAttention", "dropout", opts.dropout);
    this.position = opts.position ?? "none";
    if (!["none", "rope", "alibi"].includes(this.position)) throw new RangeError(`GroupedQueryAttention: position must be "none", "rope" or "alibi", got ${JSON.stringify(this.position)}`);
    if (opts.maskedRows !== undefined && opts.maskedRows !== "zero" && opts.maskedRows !== "uniform") {
      throw new RangeError(`GroupedQueryAttention: maskedRows must be "zero" or "uniform", got ${JSON.stringify(opts.maskedRows)}`);
    }
    const bias = opts.bias !== false, Dh = this.headDim;
    this.qProj = new Linear(embedDim, numHeads * Dh, { bias });
    this.kProj = new Linear(embedDim, this.numKvHeads * Dh, { bias });
    this.vProj = new Linear(embedDim, this.numKvHeads * Dh, { bias });
    this.oProj = new Linear(numHeads * Dh, embedDim, { bias });
    this.rotaryEmb = this.position === "rope" ? new RotaryEmbedding(Dh, { base: opts.ropeBase, scaling: opts.ropeScaling }) : null;
    this.slopes = this.position === "alibi" ? alibiSlopes(numHeads) : null;
    checkWindow("GroupedQueryAttention", opts.window);
  }

  /** An empty cache for `layers` stacked modules like this one (keys/values of the Hkv heads only). */
  createCache(layers: number, batch: number, maxLength: number): KVCache {
    return new KVCache(layers, batch, this.numKvHeads, this.headDim, maxLength);
  }

  /** x (B, T, embedDim) → out (B, T, embedDim) and, when asked (or captured), weights (B, H, T, Tk). */
  forward(x: Tensor, o: GqaForwardOptions = {}): { out: Tensor; weights: Tensor | null } {
    if (x.ndim !== 3 || x.shape[2] !== this.embedDim) throw new Error(`GroupedQueryAttention: expected x (B, T, ${this.embedDim}), got ${shapeStr(x.shape)}`);
    const [B, T] = x.shape, H = this.numHeads, Hkv = this.numKvHeads, Dh = this.headDim;
    const cache = o.cache ?? null, P = cache ? cache.length : 0, Tk = P + T;
    if (cache && isGradEnabled() && this.parameters().some((p) => p.requiresGrad)) {
      // the cache stores copies: gradients through cached keys/values would be silently lost
      throw new Error("GroupedQueryAttention: a KVCache is for inference; run cached decoding inside noGrad()");
    }
    const heads = (z: Tensor, n: number) => z.reshape([B, T, n, Dh]).permute([0, 2, 1, 3]);        // (B, n, T, Dh)
    let q = heads(this.qProj.forward(x), H), k = heads(this.kProj.forward(x), Hkv), v = heads(this.vProj.forward(x), Hkv);
    if (this.rotaryEmb) {
      const { cos, sin } = this.rotaryEmb.cosSin(this.positions(o.positionIds ?? null, B, T, P));     // (B|1, T, Dh)
      const c = cos.unsqueeze(1), s = sin.unsqueeze(1);
      q = applyRotary(q, c, s); k = applyRotary(k, c, s);
    }
    if (cache) ({ k, v } = cache.append(o.layer ?? 0, k, v));                                          // (B, Hkv, Tk, Dh)
    const vis = visibility(o.attentionMask ?? null, B, T, Tk, P, !!o.isCausal);
    const rec = activeRecorder(), recording = !!rec && rec.wants(this);
    const want = !!o.needWeights || recording;
    const r = sdpa(q, k, v, {
      ...vis.sdpa, scale: 1 / Math.sqrt(Dh), dropout: this.training ? this.opts.dropout ?? 0 : 0,
      alibiSlopes: this.slopes, alibiOffset: P, returnWeights: want ? "full" : false,
      window: windowPair(this.opts.window ?? null, !!o.isCausal) ?? (vis.causalBand ? [-1, 0] : null), windowOffset: P,
      impl: recording && rec!.withGrad ? "math" : "fused", maskedRows: this.opts.maskedRows ?? "zero",
    });
    const out = r.out, weights = r.weights;                                                             // (B, H, T, Dh), (B, H, T, Tk)
    const y = this.oProj.forward(out.permute([0, 2, 1, 3]).reshape([B, T, H * Dh]));                   // (B, T, E)
    if (recording && weights) rec!.add(this, { kind: "self", weights, headMean: false, keyPaddingMask: vis.keyPad, causal: !!o.isCausal });
    return { out: y, weights: o.needWeights ? weights : null };
  }

  private positions(p: Tensor | null, B: number, T: number, P: number): Tensor {
    if (!p) return Tensor.fromArray(Int32Array.from({ length: T }, (_, i) => P + i), [1, T]);
    if (p.ndim !== 2 || p.shape[1] !== T || (p.shape[0] !== B && p.shape[0] !== 1)) {
      throw new Error(`GroupedQueryAttention: positionIds must be (${B}, ${T}) or (1, ${T}), got ${shapeStr(p.shape)}`);
    }
    return p;
  }
  protected override extraRepr(): string {
    return `embedDim=${this.embedDim}, numHeads=${this.numHeads}, numKvHeads=${this.numKvHeads}, headDim=${this.headDim}, position=${this.position}`;
  }
}

/**
 * The kernel masks for queries at positions P..P+T−1 over keys 0..Tk−1: padding as a key padding mask and causality
 * as the kernel's causal flag when that is exact (P = 0, or a single query), else (causalBand) as the band j ≤ i + P
 * of sdpa's window; plus the key padding (B, Tk) for the recorder. Rows that see no key are sdpa's maskedRows rule.
 */
function visibility(mask: Tensor | null, B: number, T: number, Tk: number, P: number, causal: boolean) {
  let pad: Uint8Array | null = null;
  if (mask) {
    if (mask.ndim !== 2 || mask.shape[0] !== B || mask.shape[1] !== Tk) {
      throw new Error(`GroupedQueryAttention: attentionMask must be (${B}, ${Tk}) (batch, cached + new keys), got ${shapeStr(mask.shape)}`);
    }
    const m = contiguousData(mask.dtype === "bool" ? mask : mask.ne(0));
    pad = new Uint8Array(B * Tk);
    let any = 0;
    for (let i = 0; i < pad.length; i++) any |= pad[i] = m[i] ? 0 : 1;
    if (!any) pad = null;                 // an all-ones mask is no mask: keep the kernels on their unmasked tiles
  }
  const keyPad = pad ? Tensor.fromArray(pad, [B, Tk], "bool") : null;
  // T > 1 new queries after P cached keys: query i sees keys j ≤ P + i — the band [−1, 0] at window offset P (the
  // kernels skip the blocks past it), never a (B, T, Tk) mask
  return { sdpa: { keyPaddingMask: keyPad, causal: causal && T > 1 && P === 0 }, keyPad, causalBand: causal && T > 1 && P > 0 };
}
