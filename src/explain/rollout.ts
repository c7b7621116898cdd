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
  matrixStack, prepareLayers,
} from "./attention-stack.js";

export interface RolloutOptions extends PrepareOptions {
  /** First layer included in the product (0-based, default 0); the result has L - startLayer matrices. */
  startLayer?: number;
}

/** C = A @ B for row-major (T, T) float64 matrices (i-k-j order: streams rows of B). */
export function matmulSquare(a: Float64Array, aOff: number, b: Float64Array, bOff: number, c: Float64Array, cOff: number, T: number): void {
  for (let i = 0; i < T; i++) {
    const ci = cOff + i * T;
    for (let j = 0; j < T; j++) c[ci + j] = 0;
    for (let k = 0; k < T; k++) {
      const aik = a[aOff + i * T + k];
      if (aik === 0) continue;
      const bk = bOff + k * T;
      for (let j = 0; j < T; j++) c[ci + j] += aik * b[bk + j];
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
