// Scaled dot-product attention: softmax(Q·Kᵀ·scale + mask)·V.
// Default path: one fused kernel (FlashAttention-style on fast backends) that saves only the per-row log-sum-exp;
// the weights, when asked for, are recomputed from it — explanations never force the slow path.
// "math" path: composed from matmul/softmax so the returned weights are differentiable (gradient-weighted attention).
// Both paths and every backend share one rule for a query row whose keys are all masked (PyTorch >= 2.5 SDPA):
// output 0, weights 0, lse -inf, no gradient from or into the row; and a NaN score makes its row NaN (lse NaN).
import { shapeStr } from "../shape.js";
import { isGradEnabled, record } from "../autograd.js";
import { K } from "../backend/registry.js";
import type { AttnArgs, AttnTensorLayout } from "../backend/kernels.js";
import { defaultGenerator, type Generator } from "../random.js";
import { Tensor } from "../tensor.js";
import { assertFloat, uninit } from "./util.js";
import { commonDevice, unsupportedOn, type DeviceName } from "../device.js";
import { contiguousData } from "./movement.js";
import { where } from "./elementwise.js";
import { safeSoftmax } from "./nn.js";
import { attnBackward as refAttnBackward, attnForward as refAttnForward, attnWeights as refAttnWeights, outsideWindow } from "../backend/ref/attention.js";

export interface SdpaOptions {
  /** torch.nn.functional.scaled_dot_product_attention semantics: bool → true = attend; float → added to the scores.
   *  Broadcastable to (B, H, Tq, Tk). */
  attnMask?: Tensor | null;
  /** Alias of attnMask. */
  mask?: Tensor | null;
  /** (B, Tk) bool, true = this key is padding and is ignored (nn.MultiheadAttention convention). */
  keyPaddingMask?: Tensor | null;
  /** Mask key j for query i when j > i (top-left aligned, like PyTorch is_causal). */
  causal?: boolean;
  dropout?: number;
  /** Defaults to 1/√(head dim). */
  scale?: number;
  /** Also return the attention weights: "full" per head (B,H,Tq,Tk) (true means "full"), or "mean" over heads (B,Tq,Tk). */
  returnWeights?: boolean | "full" | "mean";
  /** "fused" (default) or "math" (composed ops; returned weights carry gradients). */
  impl?: "fused" | "math";
  generator?: Generator;
  /**
   * ALiBi head slopes (H): query i of head h adds −slope[h]·|i + alibiOffset − j| to its score for key j (see
   * nn.alibiSlopes). The reference kernels compute it per score, storing nothing of size Tq×Tk; backends whose
   * kernels do not take it get it folded into an additive (H, Tq, Tk) mask.
   */
  alibiSlopes?: Float32Array | readonly number[] | null;
  /** Position of query row 0 relative to key 0 (e.g. the number of cached keys). Default 0. */
  alibiOffset?: number;
  /**
   * Sliding-window (local) attention. A number W: with causal, key j is visible from query i iff i − W < j ≤ i
   * (Mistral's / Hugging Face's `sliding_window`: the query and the W − 1 keys before it); without causal, iff
   * |i − j| < W (a symmetric band of 2W − 1 keys, for encoders). A pair [left, right]: iff i − left ≤ j ≤ i + right
   * (FlashAttention's `window_size`; −1 = unbounded on that side), intersected with causal when set. Fast kernels
   * skip the blocks outside the band, so the cost is O(T·W) instead of O(T²). Combines with every other option.
   */
  window?: number | readonly [number, number] | null;
  /** Position of query row 0 relative to key 0 for the window (e.g. the number of cached keys). Default 0. */
  windowOffset?: number;
  /**
   * A query row in which no key is visible: "zero" (default, PyTorch >= 2.5) gives output and weights 0; "uniform" is
   * Hugging Face's eager attention, whose masks are float32's lowest finite value (finfo.min) rather than −∞: such a
   * row's scores are all that value, so softmax spreads evenly over its keys — every key masked by keyPaddingMask,
   * causal, a bool attnMask or an additive value ≤ finfo.min, but not keys at −∞ (where HF's finfo.min + finfo.min
   * overflowed, as in GPT-2). Gradients of such a row reach v only (as in HF, where the scores there are constant).
   */
  maskedRows?: "zero" | "uniform";
}

export interface SdpaResult { out: Tensor; weights: Tensor | null }

/**
 * softmax(q·kᵀ·scale + mask)·v. q (B,H,Tq,D) or (B,Tq,D); k (B,Hkv,Tk,D); v (B,Hkv,Tk,Dv) with H % Hkv == 0
 * (grouped-query attention).
 *
 * A query row that can attend to nothing (every key masked by attnMask, keyPaddingMask and/or causal) gets output 0
 * and weights 0, and no gradient flows from or into it (its dq is 0; nothing reaches dk/dv) — PyTorch >= 2.5's rule,
 * the same on the fused and the "math" path and on every backend. NaN propagates per row: a NaN score (NaN in q or
 * k, or ±Inf giving Inf − Inf or 0·Inf) makes that row's output, weights and gradients NaN; a NaN in v reaches the
 * output columns of the rows that weight its key. Keys excluded by keyPaddingMask or causal are never scored; the
 * fast kernels still multiply their v (and k, backward) by 0, so non-finite values stored there may give NaN.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions & { returnWeights: true | "full" | "mean" }): SdpaResult;
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts?: SdpaOptions): Tensor;
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions = {}): Tensor | SdpaResult {
  const r = sdpa(q, k, v, opts);
  return opts.returnWeights ? r : r.out;
}

export function sdpa(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions): SdpaResult {
  for (const [t, n] of [[q, "q"], [k, "k"], [v, "v"]] as const) assertFloat(t, `scaledDotProductAttention (${n})`);
  if (q.storage.device !== "cpu" || k.storage.device !== "cpu" || v.storage.device !== "cpu") {
    const dev = commonDevice("scaledDotProductAttention", q, k, v);
    // masks may come from the CPU (models build them from host token data): uploaded here, the one exception to the
    // same-device rule, like PyTorch's CPU scalars
    const up = (m: Tensor | null | undefined) => (m && m.device !== dev ? m.to(dev) : m);
    if (opts.impl === "math") return mathOnDevice(q, k, v, opts, dev);
    if (opts.maskedRows === "uniform") return uniformOnDevice(q, k, v, opts);
    const o = { ...opts, attnMask: up(opts.attnMask ?? opts.mask), mask: undefined, keyPaddingMask: up(opts.keyPaddingMask) };
    return q.storage.deviceImpl.fused.sdpa(q, k, v, o) as SdpaResult;
  }
  if (q.ndim === 3 && k.ndim === 3 && v.ndim === 3) {
    const r = sdpa(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), { ...opts, attnMask: lift3(opts.attnMask ?? opts.mask ?? null) });
    return { out: r.out.squeeze(1), weights: r.weights && r.weights.ndim === 4 ? r.weights.squeeze(1) : r.weights };
  }
  const [B, H, Tq, D, Hkv, Tk, Dv] = qkvDims(q, k, v);
  const args = attnArgsFor(B, H, Hkv, Tq, Tk, D, Dv, opts);
  const uniform = opts.maskedRows === "uniform" ? uniformRows(args, opts) : null;
  const r = sdpaWithArgs(q, k, v, args, opts);
  if (!uniform) return r;
  const c = uniformCorrection(uniform, v, args, opts);                      // (B, H, Tq, Dv)
  return { out: r.out.add(c.out), weights: r.weights && c.weights ? r.weights.add(c.weights) : r.weights };
}

/** The dims of 4-D q (B, H, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv), or an error naming all three shapes. */
function qkvDims(q: Tensor, k: Tensor, v: Tensor): [number, number, number, number, number, number, number] {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new Error(`scaledDotProductAttention: expects 4-D (B,H,T,D) or 3-D (B,T,D) q/k/v, got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
  }
  const [B, H, Tq, D] = q.shape, [Bk, Hkv, Tk, Dk] = k.shape, [Bv, Hv, Tv, Dv] = v.shape;
  if (Bk !== B || Bv !== B || Hv !== Hkv || Tv !== Tk || Dk !== D || H % Hkv !== 0) {
    throw new Error(`scaledDotProductAttention: incompatible shapes q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)} ` +
      `(need matching batch, k/v with the same heads and length, q/k the same head dim, query heads a multiple of kv heads)`);
  }
  return [B, H, Tq, D, Hkv, Tk, Dv];
}

function sdpaWithArgs(q: Tensor, k: Tensor, v: Tensor, args: AttnArgs, opts: SdpaOptions): SdpaResult {
  const { B, H, Tq, Tk, Dv } = args;
  if (opts.impl === "math") return mathPath(q, k, v, args, opts);
  const mode = weightsMode(opts.returnWeights);

  // Fast backends read q/k/v in place through their strides (any view with a contiguous feature axis, e.g. heads
  // permuted out of a (B, T, H, D) projection): no contiguous() copies.
  const qL = layout4(q), kL = layout4(k), vL = layout4(v);
  if (hasLayoutAttention() && qL && kL && vL) {
    // When q is itself heads split out of a token-major projection (its T stride exceeds its head stride, as in
    // every attention module), out is written the same way, (B, Tq, H, Dv) in memory, and returned as its
    // (B, H, Tq, Dv) view: merging the heads back (permute + reshape to (B, Tq, H·Dv)) is then free. Head-major
    // inputs keep a contiguous (B, H, Tq, Dv) output (the kernels are fastest on their default placement).
    const tokenMajor = Tq > 1 && H > 1 && qL[3] > qL[2];
    const out = tokenMajor ? uninit([B, Tq, H, Dv]).permute(0, 2, 1, 3) : uninit([B, H, Tq, Dv]);
    const weights = runFused(args, { t: q, layout: qL }, { t: k, layout: kL }, { t: v, layout: vL }, out,
      tokenMajor ? [0, Tq * H * Dv, Dv, H * Dv] : [0, H * Tq * Dv, Tq * Dv, Dv], mode, [q, k, v], () => {
        const dq = uninit(q.shape), dk = uninit(k.shape), dv = uninit(v.shape);
        return { grads: [dq, dk, dv], dq: contiguousLayout(dq), dk: contiguousLayout(dk), dv: contiguousLayout(dv) };
      });
    return { out, weights };
  }

  const qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  const out = uninit([B, H, Tq, Dv]), lse = uninit([B, H, Tq]);
  const qd = contiguousData(qc) as Float32Array, kd = contiguousData(kc) as Float32Array, vd = contiguousData(vc) as Float32Array;
  K.attnForward(qd, kd, vd, out.storage.data as Float32Array, lse.storage.data as Float32Array, args);
  let weights: Tensor | null = null;
  if (mode) {
    weights = uninit(mode === "full" ? [B, H, Tq, Tk] : [B, Tq, Tk]);
    K.attnWeights(qd, kd, lse.storage.data as Float32Array, weights.storage.data as Float32Array, args, mode, 0, Tq);
    if (mode === "full") renormaliseRows(weights.storage.data as Float32Array, Tk);
  }
  if (isGradEnabled()) {
    record(out, "scaledDotProductAttention", [q, k, v], (g) => {
      const gc = g.contiguous();
      const dq = uninit(q.shape), dk = uninit(k.shape), dv = uninit(v.shape);
      K.attnBackward(qd, kd, vd, out.storage.data as Float32Array, contiguousData(gc) as Float32Array, lse.storage.data as Float32Array,
        dq.storage.data as Float32Array, dk.storage.data as Float32Array, dv.storage.data as Float32Array, args);
      return [dq, dk, dv];
    }, [qc, kc, vc, lse]);
  }
  return { out, weights };
}

/** float32's lowest finite value (torch.finfo(torch.float32).min): Hugging Face's mask value. */
const F32_LOWEST = -3.4028234663852886e38;

/**
 * maskedRows "uniform" (see SdpaOptions): finds the query rows that see no key and, if there are any, returns their
 * weights — 1/n on the n keys HF's softmax spreads over, 0 elsewhere — for those rows only: w is (Bw, Hw, R, Tk) for
 * the R query rows `rows` that are uniform in some (b, h) (0 in the (b, h) where that row is not), so a left-padded
 * long prompt costs O(R·Tk), not O(Tq·Tk); null when there are none. It also turns args.attnMask's values ≤ finfo.min
 * into −∞, so the kernels give such rows 0 (the correction then adds the uniform part) and every other row the same
 * result as with finfo.min (exp underflows to 0 either way).
 */
export function uniformRows(a: AttnArgs, opts: SdpaOptions): UniformRows | null {
  const m = a.attnMask, boolMask = (opts.attnMask ?? opts.mask)?.dtype === "bool";
  const Bw = a.keyPad || a.maskB > 1 ? a.B : 1, Hw = a.maskH, { Tq, Tk } = a;
  const found: { b: number; h: number; i: number; n: number; mo: number }[] = [];
  for (let b = 0; b < Bw; b++) for (let h = 0; h < Hw; h++) for (let i = 0; i < Tq; i++) {
    const mo = m ? (((a.maskB > 1 ? b : 0) * a.maskH + h) * Tq + i) * Tk : 0;
    let visible = false, n = 0;
    for (let j = 0; j < Tk; j++) {
      const x = m ? m[mo + j] : 0;
      if (outsideWindow(a, i, j)) n++;   // hidden like a causal key (HF's sliding-window mask is finfo.min too)
      else if ((a.causal && j > i) || (a.keyPad && a.keyPad[b * Tk + j]) || x <= F32_LOWEST) { if (boolMask || x !== -Infinity) n++; }
      else { visible = true; break; }
    }
    if (!visible && n > 0) found.push({ b, h, i, n, mo });
  }
  let u: UniformRows | null = null;
  if (found.length) {
    const rows = [...new Set(found.map((f) => f.i))].sort((x, y) => x - y), R = rows.length;
    const at = new Map(rows.map((i, r) => [i, r]));
    const w = new Float32Array(Bw * Hw * R * Tk);
    for (const { b, h, i, n, mo } of found) {
      const o = ((b * Hw + h) * R + at.get(i)!) * Tk;
      for (let j = 0; j < Tk; j++) if (outsideWindow(a, i, j) || boolMask || !m || m[mo + j] !== -Infinity) w[o + j] = 1 / n;
    }
    u = { w, shape: [Bw, Hw, R, Tk], rows, Tq };
  }
  if (m) for (let i = 0; i < m.length; i++) if (m[i] <= F32_LOWEST) m[i] = -Infinity;
  return u;
}

/** The uniform rows of uniformRows: weights (Bw, Hw, R, Tk) of the R query rows `rows` (of Tq). */
export interface UniformRows { w: Float32Array; shape: number[]; rows: number[]; Tq: number }

/**
 * The uniform rows' part of the output and (if asked) of the weights, on v's device: W_R·v for the R rows, placed at
 * their query positions by a one-hot (Tq, R) matrix (each output row is one exact term), and the weights as
 * (Bw, Hw, Tq, Tk) only when they are returned. vv: (B, H, Tk, Dv) with the heads already repeated for GQA.
 */
export function uniformParts(u: UniformRows, vv: Tensor, mode: ReturnType<typeof weightsMode>): { out: Tensor; weights: Tensor | null } {
  const dev = vv.device, R = u.rows.length;
  const put = (t: Tensor) => (dev === "cpu" ? t : t.to(dev));
  const wR = put(Tensor.fromArray(u.w, u.shape));
  const sel = new Float32Array(u.Tq * R);
  u.rows.forEach((i, r) => { sel[i * R + r] = 1; });
  const S = put(Tensor.fromArray(sel, [u.Tq, R]));
  const out = S.matmul(wR.matmul(vv));                                                 // (B, H, Tq, Dv)
  if (mode !== "full" && mode !== "mean") return { out, weights: null };
  const w = S.matmul(wR);                                                               // (Bw, Hw, Tq, Tk)
  return { out, weights: mode === "full" ? w : w.mean(1) };
}

/** The uniform rows' contribution: out (B, H, Tq, Dv) = W·v (v (B, Hkv, Tk, Dv), heads repeated for GQA) and weights. */
export function uniformCorrection(u: UniformRows, v: Tensor, a: AttnArgs, opts: SdpaOptions): { out: Tensor; weights: Tensor | null } {
  const rep = a.H / a.Hkv;
  const vv = rep === 1 ? v : v.unsqueeze(2).expand([a.B, a.Hkv, rep, a.Tk, a.Dv]).reshape([a.B, a.H, a.Tk, a.Dv]);
  return uniformParts(u, vv, weightsMode(opts.returnWeights));
}

/** Whether the active backend has the layout-aware attention kernels runFused needs. */
export function hasLayoutAttention(): boolean {
  return !!(K.attnForwardLayout && K.attnBackwardLayout && K.attnWeightsLayout);
}

/** Kernel arguments for the given dims: scale, masks (converted to additive / key padding), dropout and its seed. */
export function attnArgsFor(B: number, H: number, Hkv: number, Tq: number, Tk: number, D: number, Dv: number, opts: SdpaOptions): AttnArgs {
  const p = opts.dropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new Error(`scaledDotProductAttention: dropout must be in [0, 1), got ${p}`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const { mask, maskB, maskH } = additiveMask(opts.attnMask ?? opts.mask ?? null, B, H, Tq, Tk);
  const keyPad = opts.keyPaddingMask ? keyPadding(opts.keyPaddingMask, B, Tk) : null;
  const args: AttnArgs = { B, H, Hkv, Tq, Tk, D, Dv, scale, causal: !!opts.causal, keyPad, attnMask: mask, maskB, maskH,
    dropoutP: p, seed: p > 0 ? (opts.generator ?? defaultGenerator).nextU32() : 0 };
  const alibi = alibiArgs(opts, H);
  if (alibi) {
    if (kernelsTakeAlibi()) args.alibi = alibi;
    else foldAlibi(args, alibi);
  }
  const win = windowArgs(opts, Tq, Tk);
  if (win) {
    args.window = win;
    if (!kernelsTakeWindow()) foldWindow(args);
  }
  return args;
}

/**
 * SdpaOptions.window as the kernels' band: key j visible from query i iff i + lo ≤ j ≤ i + hi; null when the band
 * hides nothing (every key within reach of every query). lo and hi are clamped to [−Tq, Tk].
 */
export function windowArgs(opts: Pick<SdpaOptions, "window" | "windowOffset" | "causal">, Tq: number, Tk: number): { lo: number; hi: number } | null {
  const w = opts.window;
  if (w === undefined || w === null) return null;
  const off = opts.windowOffset ?? 0;
  if (!Number.isInteger(off)) throw new Error(`scaledDotProductAttention: windowOffset must be an integer, got ${off}`);
  let left: number, right: number;
  if (typeof w === "number") {
    if (!Number.isInteger(w) || w < 1) throw new Error(`scaledDotProductAttention: window must be a positive integer (keys per query), got ${w}`);
    left = w - 1; right = opts.causal ? 0 : w - 1;
  } else {
    if (!Array.isArray(w) || w.length !== 2 || !w.every((x) => Number.isInteger(x) && x >= -1)) {
      throw new Error(`scaledDotProductAttention: window must be a positive integer or [left, right] with integers ≥ −1 (−1 = unbounded), got ${JSON.stringify(w)}`);
    }
    [left, right] = w;
  }
  const clamp = (x: number) => Math.max(-Tq, Math.min(Tk, x));
  const lo = left < 0 ? -Tq : clamp(off - left), hi = right < 0 ? Tk : clamp(off + right);
  if (lo <= -(Tq - 1) && hi >= Tk - 1) return null;
  return { lo, hi };
}

/** Whether the active attention kernels compute AttnArgs.window themselves (see kernelsTakeAlibi). */
function kernelsTakeWindow(): boolean {
  if (K.attnWindow) return true;
  return K.attnForward === refAttnForward && K.attnBackward === refAttnBackward && K.attnWeights === refAttnWeights && !hasLayoutAttention();
}

/** The fallback: −∞ outside the band in an additive (maskB, maskH, Tq, Tk) mask (the given one, or a new one). */
function foldWindow(a: AttnArgs): void {
  const { Tq, Tk } = a, w = a.window!;
  if (!a.attnMask) { a.attnMask = new Float32Array(Tq * Tk); a.maskB = 1; a.maskH = 1; }
  const m = a.attnMask;
  for (let o = 0; o < m.length; o += Tq * Tk) for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) {
    if (j < i + w.lo || j > i + w.hi) m[o + i * Tk + j] = -Infinity;
  }
  // a.window stays: such kernels ignore it, and maskedRows "uniform" still tells window-hidden keys from −∞ ones
}

function alibiArgs(opts: SdpaOptions, H: number): { slopes: Float32Array; offset: number } | null {
  if (!opts.alibiSlopes) return null;
  const slopes = Float32Array.from(opts.alibiSlopes);
  if (slopes.length !== H) throw new Error(`scaledDotProductAttention: alibiSlopes has ${slopes.length} entries, expected one per query head (${H})`);
  if (slopes.some((x) => !Number.isFinite(x))) throw new Error("scaledDotProductAttention: alibiSlopes must be finite numbers");
  const offset = opts.alibiOffset ?? 0;
  if (!Number.isInteger(offset)) throw new Error(`scaledDotProductAttention: alibiOffset must be an integer, got ${offset}`);
  return { slopes, offset };
}

/**
 * Whether the active attention kernels compute AttnArgs.alibi themselves (the reference ones, and backends that set
 * Kernels.attnAlibi: native in its tile loops, Wasm head by head); otherwise it is folded into an additive mask.
 */
function kernelsTakeAlibi(): boolean {
  if (K.attnAlibi) return true;
  return K.attnForward === refAttnForward && K.attnBackward === refAttnBackward && K.attnWeights === refAttnWeights && !hasLayoutAttention();
}

/** The fallback: attnMask (maskB, H, Tq, Tk) = the given mask (broadcast over heads) + the ALiBi bias. */
function foldAlibi(a: AttnArgs, al: { slopes: Float32Array; offset: number }): void {
  const { H, Tq, Tk } = a, out = new Float32Array(a.maskB * H * Tq * Tk);
  for (let b = 0; b < a.maskB; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Tq; i++) {
    const o = ((b * H + h) * Tq + i) * Tk, mo = ((b * a.maskH + (a.maskH === 1 ? 0 : h)) * Tq + i) * Tk;
    for (let j = 0; j < Tk; j++) out[o + j] = (a.attnMask ? a.attnMask[mo + j] : 0) - al.slopes[h] * Math.abs(i + al.offset - j);
  }
  a.attnMask = out; a.maskH = H;
}

export function weightsMode(r: SdpaOptions["returnWeights"]): "full" | "mean" | false {
  return r ? (r === "mean" ? "mean" : "full") : false;
}

/** [offset, strideB, strideH, strideT] of a (B, heads, T, feat) view whose feature axis is contiguous, else null. */
function layout4(t: Tensor): AttnTensorLayout | null {
  if (t.strides[3] !== 1 && t.shape[3] !== 1) return null;
  if (t.strides.some((s) => s < 0)) return null;
  return [t.offset, t.strides[0], t.strides[1], t.strides[2]];
}

function contiguousLayout(t: Tensor): AttnTensorLayout {
  const [, H, T, F] = t.shape;
  return [t.offset, H * T * F, T * F, F];
}

/** The incoming gradient of out, (B, H, Tq, Dv) or token-major (B, Tq, H·Dv), with its layout (copied only if needed). */
function gradLayout(g: Tensor, Dv: number): [Tensor, AttnTensorLayout] {
  if (g.ndim === 4) {
    const l = layout4(g);
    if (l) return [g, l];
    const c = g.contiguous();
    return [c, contiguousLayout(c)];
  }
  const c = (g.strides[2] === 1 || g.shape[2] === 1) && g.strides.every((x) => x >= 0) ? g : g.contiguous();
  return [c, [c.offset, c.strides[0], Dv, c.strides[1]]];
}

export interface Placed { t: Tensor; layout: AttnTensorLayout }
export interface GradPlan { grads: (Tensor | null)[]; dq: AttnTensorLayout; dk: AttnTensorLayout; dv: AttnTensorLayout; buffers?: [Tensor, Tensor, Tensor] }

/**
 * The fused path through layout-aware kernels: forward into `out` (placed by outL), optional weights recomputed from
 * the log-sum-exp, and a grad node whose backward writes dq/dk/dv where `plan()` places them (the returned
 * tensors are the gradients of `inputs`, in order; `buffers` are the arrays dq, dk, dv live in when not the grads).
 */
export function runFused(a: AttnArgs, q: Placed, k: Placed, v: Placed, out: Tensor, outL: AttnTensorLayout, mode: "full" | "mean" | false,
  inputs: Tensor[], plan: () => GradPlan): Tensor | null {
  const qd = q.t.storage.data as Float32Array, kd = k.t.storage.data as Float32Array, vd = v.t.storage.data as Float32Array;
  const od = out.storage.data as Float32Array;
  const lse = uninit([a.B, a.H, a.Tq]), ld = lse.storage.data as Float32Array;
  K.attnForwardLayout!(qd, kd, vd, od, ld, a, { q: q.layout, k: k.layout, v: v.layout, out: outL });
  let weights: Tensor | null = null;
  if (mode) {
    weights = uninit(mode === "full" ? [a.B, a.H, a.Tq, a.Tk] : [a.B, a.Tq, a.Tk]);
    K.attnWeightsLayout!(qd, kd, ld, weights.storage.data as Float32Array, a, mode, 0, a.Tq, { q: q.layout, k: k.layout });
    if (mode === "full") renormaliseRows(weights.storage.data as Float32Array, a.Tk);
  }
  if (isGradEnabled()) {
    record(out, "scaledDotProductAttention", inputs, (g) => {
      // dout read in place when its feature axis is contiguous (it usually comes straight from the next GEMM)
      const [gc, gl] = gradLayout(g, a.Dv);
      const p = plan();
      const [bq, bk, bv] = p.buffers ?? (p.grads as [Tensor, Tensor, Tensor]);
      K.attnBackwardLayout!(qd, kd, vd, od, gc.storage.data as Float32Array, ld, bq.storage.data as Float32Array,
        bk.storage.data as Float32Array, bv.storage.data as Float32Array, a,
        { q: q.layout, k: k.layout, v: v.layout, out: outL, dout: gl, dq: p.dq, dk: p.dk, dv: p.dv });
      if (gc !== g) gc.dispose();
      return p.grads;
    }, [q.t, k.t, v.t, lse]);
  }
  return weights;
}

/** Composed attention (matmul → mask → softmax → dropout → matmul): slower, but every step is differentiable. */
function mathPath(q: Tensor, k: Tensor, v: Tensor, a: AttnArgs, opts: SdpaOptions): SdpaResult {
  const rep = a.H / a.Hkv;
  const kk = rep === 1 ? k : k.unsqueeze(2).expand([a.B, a.Hkv, rep, a.Tk, a.D]).reshape([a.B, a.H, a.Tk, a.D]);
  const vv = rep === 1 ? v : v.unsqueeze(2).expand([a.B, a.Hkv, rep, a.Tk, a.Dv]).reshape([a.B, a.H, a.Tk, a.Dv]);
  let s = q.matmul(kk.mT).mul(a.scale);                                   // (B, H, Tq, Tk)
  const given = opts.attnMask ?? opts.mask ?? null;
  const gradMask = !!given && given.dtype !== "bool" && given.requiresGrad && isGradEnabled();
  // a float mask that needs gradients is added as given (its −∞ entries below are blocked either way)
  if (gradMask) s = s.add(q.ndim === 4 && given.ndim === 3 ? given.unsqueeze(1) : given);
  else if (a.attnMask) s = s.add(Tensor.fromArray(a.attnMask, [a.maskB, a.maskH, a.Tq, a.Tk]));
  if (a.alibi) {
    const al = a.alibi, bias = new Float32Array(a.H * a.Tq * a.Tk);
    for (let h = 0, o = 0; h < a.H; h++) for (let i = 0; i < a.Tq; i++) for (let j = 0; j < a.Tk; j++) bias[o++] = -al.slopes[h] * Math.abs(i + al.offset - j);
    s = s.add(Tensor.fromArray(bias, [1, a.H, a.Tq, a.Tk]));
  }
  const mH = gradMask ? a.maskH : 1, m = a.attnMask;
  const blocked = uninit([a.B, mH, a.Tq, a.Tk], "bool"), bd = blocked.storage.data;
  for (let b = 0; b < a.B; b++) for (let h = 0; h < mH; h++) for (let i = 0; i < a.Tq; i++) for (let j = 0; j < a.Tk; j++) {
    const mo = (((a.maskB > 1 ? b : 0) * a.maskH + h) * a.Tq + i) * a.Tk + j;
    bd[((b * mH + h) * a.Tq + i) * a.Tk + j] = +((a.causal && j > i) || (a.keyPad !== null && a.keyPad[b * a.Tk + j] === 1) || outsideWindow(a, i, j) ||
      (gradMask && m![mo] === -Infinity));
  }
  s = where(blocked, -Infinity, s);
  const w = safeSoftmax(s);                                               // (B, H, Tq, Tk); rows with no visible key: 0
  let wd = w;
  if (a.dropoutP > 0) {
    const m = uninit(w.shape), md = m.storage.data as Float32Array;
    const keepScale = 1 / (1 - a.dropoutP);
    let o = 0;
    for (let b = 0; b < a.B; b++) for (let h = 0; h < a.H; h++) for (let i = 0; i < a.Tq; i++) for (let j = 0; j < a.Tk; j++) {
      md[o++] = keepFn(a.seed, b, h, i, j, a.dropoutP) ? keepScale : 0;
    }
    wd = w.mul(m);
  }
  const out = wd.matmul(vv);                                              // (B, H, Tq, Dv)
  const weights = opts.returnWeights === "mean" ? w.mean(1) : opts.returnWeights ? w : null;
  return { out, weights };
}

/**
 * The "math" path on a device (gradient-weighted attention: weights that carry gradients): composed from device ops
 * (batched GEMM, softmax, elementwise) with the masks — which must be host tensors, as models build them — folded on
 * the CPU into one additive (B, H, Tq, Tk) upload (causal, key padding, window, ALiBi, bool/float attnMask). A row
 * that sees no key gets weights 0 (a 0/1 row factor), like mathPath's safeSoftmax. Dropout is not supported here.
 */
function mathOnDevice(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions, dev: DeviceName): SdpaResult {
  if (q.ndim === 3 && k.ndim === 3 && v.ndim === 3) {
    const r = mathOnDevice(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), { ...opts, attnMask: lift3(opts.attnMask ?? opts.mask ?? null), mask: undefined }, dev);
    return { out: r.out.squeeze(1), weights: r.weights && r.weights.ndim === 4 ? r.weights.squeeze(1) : r.weights };
  }
  if (opts.maskedRows === "uniform") throw unsupportedOn(dev, 'scaledDotProductAttention impl "math" with maskedRows "uniform"');
  for (const m of [opts.attnMask ?? opts.mask, opts.keyPaddingMask]) {
    if (m && m.device !== "cpu") throw unsupportedOn(dev, `scaledDotProductAttention impl "math" with a mask on the device (shape ${shapeStr(m.shape)}; build masks on the CPU)`);
  }
  const [B, H, Tq, D, Hkv, Tk, Dv] = qkvDims(q, k, v);
  const a = attnArgsFor(B, H, Hkv, Tq, Tk, D, Dv, opts);
  if (a.dropoutP > 0) throw unsupportedOn(dev, 'scaledDotProductAttention impl "math" with dropout');
  const add = new Float32Array(B * H * Tq * Tk), keep = new Float32Array(B * H * Tq).fill(1);
  let dead = false;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Tq; i++) {
    const row = ((b * H + h) * Tq + i) * Tk;
    let seen = false;
    for (let j = 0; j < Tk; j++) {
      const mv = a.attnMask ? a.attnMask[(((a.maskB > 1 ? b : 0) * a.maskH + (a.maskH > 1 ? h : 0)) * Tq + i) * Tk + j] : 0;
      const blocked = (a.causal && j > i) || (a.keyPad !== null && a.keyPad[b * Tk + j] === 1) || outsideWindow(a, i, j) || mv === -Infinity;
      const bias = a.alibi ? -a.alibi.slopes[h] * Math.abs(i + a.alibi.offset - j) : 0;
      add[row + j] = blocked ? -Infinity : mv + bias;
      seen ||= !blocked;
    }
    if (!seen) { add.fill(0, row, row + Tk); keep[(b * H + h) * Tq + i] = 0; dead = true; }
  }
  const rep = H / Hkv;
  const kk = rep === 1 ? k : k.unsqueeze(2).expand([B, Hkv, rep, Tk, D]).reshape([B, H, Tk, D]);
  const vv = rep === 1 ? v : v.unsqueeze(2).expand([B, Hkv, rep, Tk, Dv]).reshape([B, H, Tk, Dv]);
  const s = q.matmul(kk.mT).mul(a.scale).add(Tensor.fromArray(add, [B, H, Tq, Tk]).to(dev));
  let w = s.softmax(-1);                                                  // (B, H, Tq, Tk)
  if (dead) w = w.mul(Tensor.fromArray(keep, [B, H, Tq, 1]).to(dev));
  const out = w.matmul(vv);
  const weights = opts.returnWeights === "mean" ? w.mean(1) : opts.returnWeights ? w : null;
  return { out, weights };
}

import { dropoutKeep as keepFn } from "../backend/dropout-hash.js";

function lift3(m: Tensor | null): Tensor | null {
  // a 3-D (B,Tq,Tk) mask for 3-D inputs gains the head axis; 2-D masks broadcast as they are
  return m && m.ndim === 3 ? m.unsqueeze(1) : m;
}

/** Turn a bool (true = attend) or float mask broadcastable to (B,H,Tq,Tk) into an additive (maskB,maskH,Tq,Tk) array. */
function additiveMask(m: Tensor | null, B: number, H: number, Tq: number, Tk: number): { mask: Float32Array | null; maskB: number; maskH: number } {
  if (!m) return { mask: null, maskB: 1, maskH: 1 };
  if (m.ndim > 4) throw new Error(`scaledDotProductAttention: attnMask has ${m.ndim} dims; expected ≤ 4 broadcastable to [${B}, ${H}, ${Tq}, ${Tk}]`);
  const s4 = [...new Array(4 - m.ndim).fill(1), ...m.shape];
  const want = [B, H, Tq, Tk];
  if (s4.some((d, i) => d !== 1 && d !== want[i])) {
    throw new Error(`scaledDotProductAttention: attnMask ${shapeStr(m.shape)} does not broadcast to [${B}, ${H}, ${Tq}, ${Tk}]`);
  }
  const maskB = s4[0], maskH = s4[1];
  const full = m.reshape(s4).expand([maskB, maskH, Tq, Tk]);
  const add = m.dtype === "bool" ? where(full, 0, -Infinity) : full.float();
  return { mask: Float32Array.from(contiguousData(add) as Float32Array), maskB, maskH };
}

function keyPadding(m: Tensor, B: number, Tk: number): Uint8Array {
  if (m.dtype !== "bool") throw new Error(`keyPaddingMask must be a bool tensor (true = padding), got ${m.dtype}`);
  if (m.ndim !== 2 || m.shape[0] !== B || m.shape[1] !== Tk) {
    throw new Error(`keyPaddingMask has shape ${shapeStr(m.shape)}, expected [${B}, ${Tk}] (batch, key length)`);
  }
  return Uint8Array.from(contiguousData(m) as Uint8Array);
}

/** exp(s − lse) inherits the float32 rounding of lse as a per-row factor exp(δ); dividing by the row sum removes it. */
function renormaliseRows(w: Float32Array, n: number): void {
  for (let o = 0; o < w.length; o += n) {
    let s = 0;
    for (let j = 0; j < n; j++) s += w[o + j];
    if (s > 0) { const inv = 1 / s; for (let j = 0; j < n; j++) w[o + j] *= inv; }
  }
}

/**
 * maskedRows "uniform" with an additive float mask that lives on the device (T5's learned position bias plus its
 * padding): uniformRows' rule as device tensor ops, nothing read back. A key is hidden by the window, causality, the
 * key padding (host data) or a mask value ≤ finfo.min; a row with no visible key spreads 1/n over its n counted keys
 * (window-hidden ones, and the others unless at −∞). Values ≤ finfo.min become −∞ for the kernel, and the uniform
 * rows' part W·v is added — computed for every row, since which rows are uniform is known only on the device.
 */
function uniformDeviceMask(q: Tensor, k: Tensor, v: Tensor, am: Tensor, opts: SdpaOptions): SdpaResult {
  const dev = q.device;
  if (am.dtype === "bool") throw new Error(`not yet supported on ${dev}: maskedRows "uniform" with a bool attnMask on the device (pass it as a CPU tensor, or as an additive float mask)`);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new Error(`not yet supported on ${dev}: maskedRows "uniform" with 3-D q/k/v (use (B, H, T, D))`);
  const [B, H, Tq, D] = q.shape, [, Hkv, Tk] = k.shape, Dv = v.shape[3];
  if (am.ndim > 4) throw new Error(`scaledDotProductAttention: attnMask has ${am.ndim} dims; expected ≤ 4 broadcastable to [${B}, ${H}, ${Tq}, ${Tk}]`);
  const x = am.reshape([...new Array(4 - am.ndim).fill(1), ...am.shape]).float();               // (mB, mH, Tq, Tk)
  // host-side hiding: causal, key padding (B, 1, 1, Tk) → (Bw, 1, Tq, Tk), and the window band
  const args = attnArgsFor(B, H, Hkv, Tq, Tk, D, Dv, { causal: opts.causal, keyPaddingMask: opts.keyPaddingMask, window: opts.window, windowOffset: opts.windowOffset });
  const Bw = args.keyPad ? B : 1, cp = new Uint8Array(Bw * Tq * Tk), win = new Uint8Array(Tq * Tk);
  for (let b = 0; b < Bw; b++) for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) {
    cp[(b * Tq + i) * Tk + j] = +((args.causal && j > i) || (!!args.keyPad && args.keyPad[b * Tk + j] === 1));
    if (b === 0) win[i * Tk + j] = +outsideWindow(args, i, j);
  }
  const low = x.le(F32_LOWEST);
  const other = low.logicalOr(Tensor.fromArray(cp, [Bw, 1, Tq, Tk], "bool").to(dev));
  const w0 = Tensor.fromArray(win, [1, 1, Tq, Tk], "bool").to(dev);
  const hidden = other.logicalOr(w0), counted = w0.logicalOr(other.logicalAnd(x.ne(-Infinity)));
  const n = counted.float().sum(-1, true), visible = hidden.logicalNot().float().sum(-1, true);
  const uniform = visible.eq(0).logicalAnd(n.gt(0));
  const w = where(uniform.logicalAnd(counted), counted.float().div(n.clamp(1, null)), 0);             // (Bw|mB, mH, Tq, Tk)
  const mask = where(low, -Infinity, x);
  const pad = args.keyPad ? Tensor.fromArray(args.keyPad, [B, Tk], "bool").to(dev) : null;
  const r = q.storage.deviceImpl.fused.sdpa(q, k, v, { ...opts, attnMask: mask, mask: undefined, keyPaddingMask: pad, maskedRows: "zero" }) as SdpaResult;
  const rep = H / Hkv;
  const vv = rep === 1 ? v : v.unsqueeze(2).expand([B, Hkv, rep, Tk, Dv]).reshape([B, H, Tk, Dv]);
  const mode = weightsMode(opts.returnWeights);
  const cw = mode === "full" ? w.expand([B, H, Tq, Tk]) : mode === "mean" ? w.expand([B, H, Tq, Tk]).mean(1) : null;
  return { out: r.out.add(w.matmul(vv)), weights: r.weights && cw ? r.weights.add(cw) : r.weights };
}

/**
 * maskedRows "uniform" on a device: the rows and weights are worked out on the CPU from the masks (which must be CPU
 * tensors here: they are host data), exactly as on the CPU path; the device runs the kernel with the resulting
 * additive mask and adds the uniform rows' part (W·v) there.
 */
function uniformOnDevice(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions): SdpaResult {
  const dev = q.device;
  const am = opts.attnMask ?? opts.mask;
  if (am && am.device !== "cpu") return uniformDeviceMask(q, k, v, am, opts);
  if (opts.keyPaddingMask && opts.keyPaddingMask.device !== "cpu") {
    throw new Error(`scaledDotProductAttention: maskedRows "uniform" on ${dev} takes its key padding mask as a CPU tensor (host data), got one on ${opts.keyPaddingMask.device}`);
  }
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new Error(`not yet supported on ${dev}: maskedRows "uniform" with 3-D q/k/v (use (B, H, T, D))`);
  const [B, H, Tq, D] = q.shape, [, Hkv, Tk] = k.shape, Dv = v.shape[3];
  const args = attnArgsFor(B, H, Hkv, Tq, Tk, D, Dv, { ...opts, alibiSlopes: null });
  const u = uniformRows(args, opts);
  const mask = args.attnMask ? Tensor.fromArray(args.attnMask, [args.maskB, args.maskH, Tq, Tk]).to(dev) : null;
  const pad = args.keyPad ? Tensor.fromArray(args.keyPad, [B, Tk], "bool").to(dev) : null;
  const r = q.storage.deviceImpl.fused.sdpa(q, k, v, { ...opts, attnMask: mask, mask: undefined, keyPaddingMask: pad, maskedRows: "zero" }) as SdpaResult;
  if (!u) return r;
  const rep = H / Hkv;
  const vv = rep === 1 ? v : v.unsqueeze(2).expand([B, Hkv, rep, Tk, Dv]).reshape([B, H, Tk, Dv]);
  const c = uniformParts(u, vv, weightsMode(opts.returnWeights));
  return { out: r.out.add(c.out), weights: r.weights && c.weights ? r.weights.add(c.weights) : r.weights };
}
