// Attention rollout (Abnar & Zuidema 2020, "joint attention"): how much each output token of layer l draws on
// each input token, assuming attention mixes linearly through the layers.
//
//   res[l]     = prepareLayers(att)[l]        (L, T, T): heads fused, optional discard / causal / residual
//   rollout[0] = res[s]                      (s = startLayer)
//   rollout[k] = res[s+k] @ rollout[k-1]     rows: output tokens of layer s+k, columns: input tokens of layer s
//
// With the defaults (mean fusion, residual alpha = 0.5) this is exactly the reference
// compute_joint_attention(avg, add_residual=True) of samiraabnar/attention_flow.

import {
  type AttentionStack, type MatrixStack, type PrepareOptions, checkMatrixStack, fuseHeads, headMatrix,
  checkStackShape, matrixStack, preparedRow, prepareLayers,
} from "./attention-stack.js";

export interface RolloutOptions extends PrepareOptions {
  /** First layer included in the product (0-based, default 0); the result has L - startLayer matrices. */
  startLayer?: number;
}

/**
 * C = A @ B for row-major (T, T) float64 matrices. 4 x 4 blocks of C are accumulated in registers over k (the
 * loads of 4 values of A and 4 of B feed 16 multiply-adds); edge rows and columns go one element at a time. Every
 * C[i, j] is the sum over k in ascending order starting from 0, whatever the path, so results do not depend on T.
 * C must not overlap A or B (they may be other regions of the same array).
 */
export function matmulSquare(a: Float64Array, aOff: number, b: Float64Array, bOff: number, c: Float64Array, cOff: number, T: number): void {
  const T4 = T - (T % 4);
  for (let i = 0; i < T4; i += 4) {
    const a0r = aOff + i * T, a1r = a0r + T, a2r = a1r + T, a3r = a2r + T;
    const c0 = cOff + i * T, c1 = c0 + T, c2 = c1 + T, c3 = c2 + T;
    for (let j = 0; j < T4; j += 4) {
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let k = 0, bk = bOff + j; k < T; k++, bk += T) {
        const b0 = b[bk], b1 = b[bk + 1], b2 = b[bk + 2], b3 = b[bk + 3];
        const a0 = a[a0r + k], a1 = a[a1r + k], a2 = a[a2r + k], a3 = a[a3r + k];
        s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3;
        s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3;
        s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3;
        s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3;
      }
      c[c0 + j] = s00; c[c0 + j + 1] = s01; c[c0 + j + 2] = s02; c[c0 + j + 3] = s03;
      c[c1 + j] = s10; c[c1 + j + 1] = s11; c[c1 + j + 2] = s12; c[c1 + j + 3] = s13;
      c[c2 + j] = s20; c[c2 + j + 1] = s21; c[c2 + j + 2] = s22; c[c2 + j + 3] = s23;
      c[c3 + j] = s30; c[c3 + j + 1] = s31; c[c3 + j + 2] = s32; c[c3 + j + 3] = s33;
    }
  }
  // edges: the last T % 4 columns of the blocked rows, then the last T % 4 rows entirely
  for (let i = 0; i < T; i++) {
    for (let j = i < T4 ? T4 : 0; j < T; j++) {
      let acc = 0;
      for (let k = 0, ai = aOff + i * T, bk = bOff + j; k < T; k++, bk += T) acc += a[ai + k] * b[bk];
      c[cOff + i * T + j] = acc;
    }
  }
}

/** Rollout of already prepared per-layer matrices (L, T, T): returns L - startLayer matrices. */
export function rolloutOfLayers(res: MatrixStack, startLayer = 0): MatrixStack {
  checkMatrixStack(res, "rolloutOfLayers");
  const { layers: L, tokens: T } = res;
  if (!Number.isInteger(startLayer) || startLayer < 0 || startLayer >= L) {
    throw new RangeError(`rollout: startLayer must be an integer in [0, ${L - 1}], got ${startLayer}`);
  }
  const n = L - startLayer, TT = T * T;
  const out = matrixStack(n, T);
  out.data.set(res.data.subarray(startLayer * TT, (startLayer + 1) * TT), 0);
  for (let k = 1; k < n; k++) matmulSquare(res.data, (startLayer + k) * TT, out.data, (k - 1) * TT, out.data, k * TT, T);
  return out;
}

/**
 * Attention rollout of an (L, H, T, T) stack: returns (L - startLayer, T, T) matrices, rollout[k][i, j] = share of
 * input token j (at the input of layer startLayer) in output token i of layer startLayer + k.
 * Options: headFusion "mean" | "max" | "min" (default mean), discardRatio (default 0, diagonal never discarded),
 * residual (default true) with alpha (default 0.5; rows renormalised), causal (decoders: each row renormalised over
 * the tokens j <= i it can see, before the residual), startLayer (default 0).
 * residual: false uses the fused matrices as they are (no renormalisation), like the reference add_residual=False.
 */
export function attentionRollout(att: AttentionStack, opts: RolloutOptions = {}): MatrixStack {
  return rolloutOfLayers(prepareLayers(att, opts), opts.startLayer ?? 0);
}

export interface RolloutRowOptions extends RolloutOptions {
  /** Layer whose output token is explained (0-based, default the last layer L-1). */
  layer?: number;
}

/**
 * One row of the rollout, without forming any T×T product: r = e_token · A[layer] · A[layer-1] ··· A[startLayer]
 * (a row vector pushed down the prepared layers). Equals attentionRollout(att, opts)[layer - startLayer][token, :]
 * at O(L·T²) instead of O(L·T³). Returns (T,): share of each input token of layer startLayer in `token` of `layer`.
 */
export function attentionRolloutRow(att: AttentionStack, token: number, opts: RolloutRowOptions = {}): Float64Array {
  // discarding needs each whole layer (its threshold): prepare the full stack then
  if (opts.discardRatio !== undefined && opts.discardRatio !== 0) {
    return rolloutRowOfLayers(prepareLayers(att, opts), token, opts.layer, opts.startLayer ?? 0);
  }
  checkStackShape(att, opts, "attentionRolloutRow");
  const { layers: L, tokens: T } = att;
  const [top, start] = checkRowArgs(L, T, token, opts.layer, opts.startLayer ?? 0);
  // prepared rows are made only for the tokens that carry weight
  const row = new Float64Array(T);
  const rowAt = (l: number, k: number): Float64Array => { preparedRow(att, l, k, opts, row); return row; };
  return pushDown(T, top, start, rowAt(top, token).slice(), rowAt);
}

/**
 * r · A[top-1] · A[top-2] ··· A[start] for the row vector r, where rowAt(l, k) gives row k of A[l]:
 * r · A[l] = sum_k r[k] · A[l][k, :], skipping the tokens with r[k] = 0.
 */
function pushDown(T: number, top: number, start: number, r: Float64Array, rowAt: (l: number, k: number) => Float64Array): Float64Array {
  let next: Float64Array = new Float64Array(T);
  for (let l = top - 1; l >= start; l--) {
    next.fill(0);
    for (let k = 0; k < T; k++) {
      const rk = r[k];
      if (rk === 0) continue;
      const row = rowAt(l, k);
      for (let j = 0; j < T; j++) next[j] += rk * row[j];
    }
    [r, next] = [next, r];
  }
  return r;
}

function checkRowArgs(L: number, T: number, token: number, layer: number | undefined, startLayer: number): [number, number] {
  const top = layer ?? L - 1;
  if (!Number.isInteger(top) || top < 0 || top >= L) throw new RangeError(`rollout row: layer must be an integer in [0, ${L - 1}], got ${top}`);
  if (!Number.isInteger(startLayer) || startLayer < 0 || startLayer > top) throw new RangeError(`rollout row: startLayer must be an integer in [0, layer=${top}], got ${startLayer}`);
  if (!Number.isInteger(token) || token < 0 || token >= T) throw new RangeError(`rollout row: token must be an integer in [0, ${T - 1}], got ${token}`);
  return [top, startLayer];
}

/** attentionRolloutRow on already prepared per-layer matrices (L, T, T). */
export function rolloutRowOfLayers(res: MatrixStack, token: number, layer?: number, startLayer = 0): Float64Array {
  checkMatrixStack(res, "rolloutRowOfLayers");
  const { layers: L, tokens: T } = res;
  const [top] = checkRowArgs(L, T, token, layer, startLayer);
  const d = res.data, rowAt = (l: number, k: number) => d.subarray((l * T + k) * T, (l * T + k + 1) * T);
  return pushDown(T, top, startLayer, rowAt(top, token).slice(), rowAt);
}

export interface PerHeadRolloutOptions extends RolloutOptions {
  /** Layer whose heads are rolled out separately (0-based, default the last layer L-1). */
  layer?: number;
}

/**
 * Per-head rollout (after Abnar & Zuidema, appendix A.1). Rule used here: for each head h of layer `layer`
 * (default the last), take that head's own matrix A[layer, h] through the same per-layer steps as the fused
 * layers (discard, causal, residual), and multiply it onto the rollout of the head-fused layers
 * startLayer..layer-1:
 *
 *   out[h] = prep(A[layer, h]) @ rollout(fused layers startLayer .. layer-1)     (or prep(A[layer, h]) alone
 *                                                                               when layer == startLayer)
 *
 * Returns (H, T, T): out[h][i, j] = share of input token j in output token i of `layer` seen through head h only.
 * With mean fusion, no discard and rows that already sum to 1, the average over h of out[h] equals the ordinary
 * rollout at `layer` (the residual mix is then affine with no renormalisation, so it commutes with the head mean).
 */
export function rolloutPerHead(att: AttentionStack, opts: PerHeadRolloutOptions = {}): MatrixStack {
  const fused = prepareLayers(att, opts);
  const { layers: L, heads: H, tokens: T } = att;
  const layer = opts.layer ?? L - 1;
  const start = opts.startLayer ?? 0;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new RangeError(`rolloutPerHead: layer must be in [0, ${L - 1}], got ${layer}`);
  if (!Number.isInteger(start) || start < 0 || start > layer) throw new RangeError(`rolloutPerHead: startLayer must be in [0, layer=${layer}], got ${start}`);
  const TT = T * T;
  let below: Float64Array | null = null;
  if (layer > start) {
    const sub = matrixStack(layer - start, T, fused.data.slice(start * TT, layer * TT));
    const r = rolloutOfLayers(sub, 0);
    below = r.data.subarray((layer - start - 1) * TT, (layer - start) * TT);
  }
  const out = matrixStack(H, T);
  for (let h = 0; h < H; h++) {
    // one head pushed through the same per-layer preparation (fusion of a single head is the identity)
    const single = prepareLayers({ data: headMatrix(att, layer, h), layers: 1, heads: 1, tokens: T }, { ...opts, headFusion: "mean" });
    if (below === null) out.data.set(single.data, h * TT);
    else matmulSquare(single.data, 0, below, 0, out.data, h * TT, T);
  }
  return out;
}

/** Head-fused matrices without residual or discard, (L, T, T): the reference's head_averaged for mean fusion. */
export function headAveraged(att: AttentionStack): MatrixStack {
  return fuseHeads(att, "mean");
}
