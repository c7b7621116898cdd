// Reference attention kernels: the plain definition the fused fast kernels are tested against.
// q (B,H,Tq,D), k (B,Hkv,Tk,D), v (B,Hkv,Tk,Dv) contiguous; query head h reads kv head ⌊h / (H/Hkv)⌋.
// ALiBi biases (AttnArgs.alibi) are computed per score from the head slopes: nothing of size Tq×Tk is stored.
// A sliding window (AttnArgs.window) hides key j from query i unless i + lo ≤ j ≤ i + hi.
import type { AttnArgs } from "../kernels.js";
import { dropoutKeep } from "../dropout-hash.js";

/** Masked, scaled scores of one query row into `s` (Tk); masked entries are -Infinity. */
function scoreRow(q: Float32Array, k: Float32Array, a: AttnArgs, b: number, h: number, i: number, s: Float64Array): void {
  const { H, Hkv, Tq, Tk, D, scale } = a;
  const hk = Math.floor(h / (H / Hkv));
  const qo = ((b * H + h) * Tq + i) * D;
  for (let j = 0; j < Tk; j++) {
    if ((a.causal && j > i) || (a.keyPad && a.keyPad[b * Tk + j]) || outsideWindow(a, i, j)) { s[j] = -Infinity; continue; }
    const ko = ((b * Hkv + hk) * Tk + j) * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
    let v = dot * scale;
    if (a.alibi) v -= a.alibi.slopes[h] * Math.abs(i + a.alibi.offset - j);
    if (a.attnMask) {
      const mb = a.maskB === 1 ? 0 : b, mh = a.maskH === 1 ? 0 : h;
      v += a.attnMask[((mb * a.maskH + mh) * Tq + i) * Tk + j];
    }
    s[j] = v;
  }
}

/** Whether key j lies outside query i's sliding window. */
export function outsideWindow(a: AttnArgs, i: number, j: number): boolean {
  return !!a.window && (j < i + a.window.lo || j > i + a.window.hi);
}

/**
 * Log-sum-exp of the scores `s`: −inf when every score is −inf (the row sees no key: output and weights 0, no
 * gradient), NaN when a score is NaN or +inf (NaN propagates to the whole row, as in torch.softmax).
 */
function rowLse(s: Float64Array, n: number): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) if (s[j] > m) m = s[j];
  if (m === -Infinity) {
    // the max skips NaN: only a row of −inf and NaN lands here, and a NaN must not pass for "fully masked"
    for (let j = 0; j < n; j++) if (Number.isNaN(s[j])) return NaN;
    return -Infinity;
  }
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp(s[j] - m);
  return m + Math.log(sum);
}

function dropScale(a: AttnArgs, b: number, h: number, i: number, j: number): number {
  if (a.dropoutP <= 0) return 1;
  return dropoutKeep(a.seed, b, h, i, j, a.dropoutP) ? 1 / (1 - a.dropoutP) : 0;
}

export function attnForward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, a: AttnArgs): void {
  const { B, H, Hkv, Tq, Tk, Dv } = a;
  const s = new Float64Array(Tk), acc = new Float64Array(Dv);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const hk = Math.floor(h / (H / Hkv));
    for (let i = 0; i < Tq; i++) {
      scoreRow(q, k, a, b, h, i, s);
      const L = rowLse(s, Tk);
      const row = (b * H + h) * Tq + i;
      lse[row] = L;
      acc.fill(0);
      if (L !== -Infinity) {
        for (let j = 0; j < Tk; j++) {
          const p = Math.exp(s[j] - L) * dropScale(a, b, h, i, j);
          if (p === 0) continue;
          const vo = ((b * Hkv + hk) * Tk + j) * Dv;
          for (let d = 0; d < Dv; d++) acc[d] += p * v[vo + d];
        }
      }
      for (let d = 0; d < Dv; d++) out[row * Dv + d] = acc[d];
    }
  }
}

// Backward with P = softmax(S), P̃ = P ⊙ dropout scale, out = P̃·V:
//   dV_j += Σ_i P̃_ij dout_i;  dP̃_ij = dout_i·v_j;  dP_ij = dP̃_ij ⊙ scale_ij;  Δ_i = Σ_j P_ij dP_ij = dout_i·out_i
//   dS_ij = P_ij (dP_ij − Δ_i);  dq_i = scale Σ_j dS_ij k_j;  dk_j += scale Σ_i dS_ij q_i.
export function attnBackward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, dout: Float32Array,
  lse: Float32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array, a: AttnArgs): void {
  const { B, H, Hkv, Tq, Tk, D, Dv, scale } = a;
  dq.fill(0); dk.fill(0); dv.fill(0);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const hk = Math.floor(h / (H / Hkv));
    for (let i = 0; i < Tq; i++) {
      const row = (b * H + h) * Tq + i;
      const L = lse[row];
      if (L === -Infinity) continue;
      scoreRow(q, k, a, b, h, i, s);
      let delta = 0;
      for (let d = 0; d < Dv; d++) delta += dout[row * Dv + d] * out[row * Dv + d];
      const qo = row * D;
      for (let j = 0; j < Tk; j++) {
        const p = Math.exp(s[j] - L);
        if (p === 0) continue;
        const ds_ = dropScale(a, b, h, i, j);
        const vo = ((b * Hkv + hk) * Tk + j) * Dv, ko = ((b * Hkv + hk) * Tk + j) * D;
        let dp = 0;
        for (let d = 0; d < Dv; d++) { dp += dout[row * Dv + d] * v[vo + d]; dv[vo + d] += p * ds_ * dout[row * Dv + d]; }
        const dS = p * (dp * ds_ - delta) * scale;
        for (let d = 0; d < D; d++) { dq[qo + d] += dS * k[ko + d]; dk[ko + d] += dS * q[qo + d]; }
      }
    }
  }
}

export function attnWeights(q: Float32Array, k: Float32Array, lse: Float32Array, out: Float32Array, a: AttnArgs,
  mode: "full" | "mean", rowStart: number, rowCount: number): void {
  const { B, H, Tq, Tk } = a;
  const s = new Float64Array(Tk);
  if (mode === "mean") out.fill(0, 0, B * rowCount * Tk);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let r = 0; r < rowCount; r++) {
    const i = rowStart + r;
    const L = lse[(b * H + h) * Tq + i];
    scoreRow(q, k, a, b, h, i, s);
    const o = mode === "full" ? ((b * H + h) * rowCount + r) * Tk : (b * rowCount + r) * Tk;
    for (let j = 0; j < Tk; j++) {
      const p = L === -Infinity ? 0 : Math.exp(s[j] - L);
      if (mode === "full") out[o + j] = p; else out[o + j] += p / H;
    }
  }
}
