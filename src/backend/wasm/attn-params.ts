// Parameter blocks of the emitted attention loops (gen-attention-loops.ts): 4-byte fields at fixed byte offsets,
// written by the drivers (attention.ts) into the arena. Addresses and leading dimensions are in bytes.

/** Tile sizes: queries per block (lanes of the forward tiles) and keys per block. */
export const ATT_BQ = 64;
export const ATT_BK = 64;

/** attn_fwd_qblock: one block of ≤ BQ queries of one head against all (visible) keys. */
export const FWD = {
  K: 0, ldk: 1, V: 2, ldv: 3, Q: 4, ldq: 5, O: 6, ldo: 7,
  Tk: 8, D: 9, Dv: 10, nq: 11, q0: 12, causal: 13,
  M: 14, ldm: 15,            // additive mask rows of this block (row q0), 0 = none
  pad: 16,                   // key padding bytes of this batch item (Tk), 0 = none
  rk: 17,                    // dropout row keys (BQ lanes), 0 = no dropout
  thr: 18, invKeep: 19,      // dropout threshold (24-bit integer), 1/(1−p) (f32)
  qscale: 20,                // scale·log2e (f32)
  scratch: 21,               // per-thread scratch of FWD_SCRATCH floats
  mOut: 22, lOut: 23,        // running max (log2 units) and sum per row (nq floats each): lse = (m + log2 l)·ln2
  kBeg: 24, kEnd: 25,        // the keys this block visits (causal and the sliding window skip the rest)
  band: 26, lo: 27, hi: 28,  // sliding window: key j visible from query i only if i + lo ≤ j ≤ i + hi (band ≠ 0)
  SIZE: 29,
} as const;

/** Floats of per-thread scratch for the forward: QT (D·BQ), ST (BK·BQ), OT (Dv·BQ), m, l, alpha, cm (BQ each). */
export function fwdScratchFloats(D: number, Dv: number): number { return (D + ATT_BK + Math.max(Dv, 1) + 4) * ATT_BQ; }

/** attn_bwd_kblock: one block of ≤ BK keys against all (visible) query rows of one query head. */
export const BWD = {
  Q: 0, ldq: 1, dO: 2, ldo: 3, K: 4, ldk: 5, V: 6, ldv: 7, dQ: 8, lddq: 9,
  Tq: 10, D: 11, Dv: 12, Dp: 13, j0: 14, nk: 15, causal: 16,
  M: 17, ldm: 18,            // additive mask of this head (row 0), 0 = none
  pad: 19,                   // key padding bytes of this batch item, 0 = none
  rk: 20,                    // dropout row keys of this head (Tq), 0 = no dropout
  thr: 21, invKeep: 22, qscale: 23, scale: 24,
  lse2: 25, delta: 26,       // lse·log2e (+inf where lse = −inf) and rowsum(dO ⊙ O), Tq each
  dKT: 27, dVT: 28,          // accumulators of this key block: (D, BK) and (Dv, BK)
  scratch: 29,
  iBeg: 30, iEnd: 31,        // the query rows this key block visits (iBeg a multiple of BQ)
  band: 32, lo: 33, hi: 34,  // sliding window, as in FWD
  SIZE: 35,
} as const;

/** Floats of per-thread scratch for the backward: KT (D·BK), VT (Dv·BK), S, dP, PD, MT (BQ·BK each), colNeg (BK). */
export function bwdScratchFloats(D: number, Dv: number): number { return (D + Math.max(Dv, 1)) * ATT_BK + 4 * ATT_BQ * ATT_BK + ATT_BK; }
