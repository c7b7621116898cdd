// Scaled dot-product attention: softmax(Q·Kᵀ·scale + mask)·V.
// Default path: one fused kernel (FlashAttention-style on fast backends) that saves only the per-row log-sum-exp;
// the weights, when asked for, are recomputed from it — explanations never force the slow path.
// "math" path: composed from matmul/softmax so the returned weights are differentiable (gradient-weighted attention).
import { shapeStr } from "../shape.js";
import { isGradEnabled, record } from "../autograd.js";
import { K } from "../backend/registry.js";
import type { AttnArgs } from "../backend/kernels.js";
import { defaultGenerator, type Generator } from "../random.js";
import { Tensor } from "../tensor.js";
import { assertFloat, uninit } from "./util.js";
import { contiguousData } from "./movement.js";
import { where } from "./elementwise.js";
import { softmax } from "./nn.js";

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
}

export interface SdpaResult { out: Tensor; weights: Tensor | null }

/** q (B,H,Tq,D) or (B,Tq,D); k (B,Hkv,Tk,D); v (B,Hkv,Tk,Dv) with H % Hkv == 0 (grouped-query attention). */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions & { returnWeights: true | "full" | "mean" }): SdpaResult;
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts?: SdpaOptions): Tensor;
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions = {}): Tensor | SdpaResult {
  const r = sdpa(q, k, v, opts);
  return opts.returnWeights ? r : r.out;
}

export function sdpa(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions): SdpaResult {
  for (const [t, n] of [[q, "q"], [k, "k"], [v, "v"]] as const) assertFloat(t, `scaledDotProductAttention (${n})`);
  if (q.ndim === 3 && k.ndim === 3 && v.ndim === 3) {
    const r = sdpa(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), { ...opts, attnMask: lift3(opts.attnMask ?? opts.mask ?? null) });
    return { out: r.out.squeeze(1), weights: r.weights && r.weights.ndim === 4 ? r.weights.squeeze(1) : r.weights };
  }
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new Error(`scaledDotProductAttention: expects 4-D (B,H,T,D) or 3-D (B,T,D) q/k/v, got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
  }
  const [B, H, Tq, D] = q.shape, [Bk, Hkv, Tk, Dk] = k.shape, [Bv, Hv, Tv, Dv] = v.shape;
  if (Bk !== B || Bv !== B || Hv !== Hkv || Tv !== Tk || Dk !== D || H % Hkv !== 0) {
    throw new Error(`scaledDotProductAttention: incompatible shapes q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)} ` +
      `(need matching batch, k/v with the same heads and length, q/k the same head dim, query heads a multiple of kv heads)`);
  }
  const p = opts.dropout ?? 0;
  if (p < 0 || p >= 1) throw new Error(`scaledDotProductAttention: dropout must be in [0, 1), got ${p}`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const { mask, maskB, maskH } = additiveMask(opts.attnMask ?? opts.mask ?? null, B, H, Tq, Tk);
  const keyPad = opts.keyPaddingMask ? keyPadding(opts.keyPaddingMask, B, Tk) : null;
  const args: AttnArgs = { B, H, Hkv, Tq, Tk, D, Dv, scale, causal: !!opts.causal, keyPad, attnMask: mask, maskB, maskH,
    dropoutP: p, seed: p > 0 ? (opts.generator ?? defaultGenerator).nextU32() : 0 };
  if (opts.impl === "math") return mathPath(q, k, v, args, opts);

  const qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  const out = uninit([B, H, Tq, Dv]), lse = uninit([B, H, Tq]);
  const qd = contiguousData(qc) as Float32Array, kd = contiguousData(kc) as Float32Array, vd = contiguousData(vc) as Float32Array;
  K.attnForward(qd, kd, vd, out.storage.data as Float32Array, lse.storage.data as Float32Array, args);
  let weights: Tensor | null = null;
  if (opts.returnWeights) {
    const mode = opts.returnWeights === "mean" ? "mean" : "full";
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

/** Composed attention (matmul → mask → softmax → dropout → matmul): slower, but every step is differentiable. */
function mathPath(q: Tensor, k: Tensor, v: Tensor, a: AttnArgs, opts: SdpaOptions): SdpaResult {
  const rep = a.H / a.Hkv;
  const kk = rep === 1 ? k : k.unsqueeze(2).expand([a.B, a.Hkv, rep, a.Tk, a.D]).reshape([a.B, a.H, a.Tk, a.D]);
  const vv = rep === 1 ? v : v.unsqueeze(2).expand([a.B, a.Hkv, rep, a.Tk, a.Dv]).reshape([a.B, a.H, a.Tk, a.Dv]);
  let s = q.matmul(kk.mT).mul(a.scale);                                   // (B, H, Tq, Tk)
  if (a.attnMask) s = s.add(Tensor.fromArray(a.attnMask, [a.maskB, a.maskH, a.Tq, a.Tk]));
  const blocked = uninit([a.B, 1, a.Tq, a.Tk], "bool"), bd = blocked.storage.data;
  for (let b = 0; b < a.B; b++) for (let i = 0; i < a.Tq; i++) for (let j = 0; j < a.Tk; j++) {
    bd[(b * a.Tq + i) * a.Tk + j] = +((a.causal && j > i) || (a.keyPad !== null && a.keyPad[b * a.Tk + j] === 1));
  }
  s = where(blocked, -Infinity, s);
  const w = softmax(s, -1);                                               // (B, H, Tq, Tk)
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
