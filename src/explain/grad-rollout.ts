// Gradient-weighted attention rollout: the generic relevance rule of Chefer, Gur & Wolf (2021), "Generic
// Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers", for self-attention.
//
//   Abar_l = mean_h ( grad_l ⊙ A_l )^+          (L, T, T): elementwise product, negatives clamped to 0, head mean
//   R      = I                                  (T, T)
//   R      = R + Abar_l @ R    for l = 0..L-1    (layer order: input side first)
//
// R[i, j] is the relevance of input token j for output token i; row i of R (often with the diagonal removed) is
// the per-token explanation of position i. grad_l is the gradient of the explained output (e.g. the chosen logit)
// with respect to the attention probabilities A_l.

import { type AttentionStack, checkAttentionStack } from "./attention-stack.js";
import { matmulSquare } from "./rollout.js";

export interface GradRolloutOptions {
  /** First layer included (0-based, default 0). */
  startLayer?: number;
  /** Last layer included (0-based, inclusive, default L-1). */
  endLayer?: number;
}

export interface GradRolloutResult {
  /** (T, T) relevance matrix R, float64 row-major. */
  data: Float64Array;
  tokens: number;
  shape: [number, number];
}

/** Checks that `grads` has the same (L, H, T, T) shape as `att` and only finite values. */
export function checkGradients(att: AttentionStack, grads: AttentionStack, fn: string): void {
  if (grads === null || typeof grads !== "object") throw new TypeError(`${fn}: gradients must be an AttentionStack {data, layers, heads, tokens}`);
  if (grads.layers !== att.layers || grads.heads !== att.heads || grads.tokens !== att.tokens) {
    throw new RangeError(`${fn}: gradients have shape (${grads.layers}, ${grads.heads}, ${grads.tokens}, ${grads.tokens}) but attention has (${att.layers}, ${att.heads}, ${att.tokens}, ${att.tokens})`);
  }
  const d = grads.data;
  if (!(d instanceof Float32Array) && !(d instanceof Float64Array)) throw new TypeError(`${fn}: gradient data must be a Float32Array or Float64Array`);
  if (d.length !== att.data.length) throw new RangeError(`${fn}: gradient data has ${d.length} elements, expected ${att.data.length}`);
  for (let e = 0; e < d.length; e++) if (!Number.isFinite(d[e])) throw new RangeError(`${fn}: gradient element ${e} is ${d[e]}; gradients must be finite`);
}

/** Abar_l = mean_h (grad ⊙ A)^+ for one layer, written to out (T, T). */
export function gradWeightedLayer(att: AttentionStack, grads: AttentionStack, layer: number, out: Float64Array = new Float64Array(att.tokens * att.tokens)): Float64Array {
  const H = att.heads, TT = att.tokens * att.tokens;
  out.fill(0);
  for (let h = 0; h < H; h++) {
    const b = (layer * H + h) * TT;
    for (let e = 0; e < TT; e++) {
      const x = att.data[b + e] * grads.data[b + e];
      if (x > 0) out[e] += x;
    }
  }
  for (let e = 0; e < TT; e++) out[e] /= H;
  return out;
}

/** Chefer et al. (2021) relevance R (T, T) from attentions and their gradients, both (L, H, T, T). */
export function gradRollout(att: AttentionStack, grads: AttentionStack, opts: GradRolloutOptions = {}): GradRolloutResult {
  checkAttentionStack(att, "gradRollout");
  checkGradients(att, grads, "gradRollout");
  const L = att.layers, T = att.tokens, TT = T * T;
  const start = opts.startLayer ?? 0, end = opts.endLayer ?? L - 1;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end >= L || start > end) {
    throw new RangeError(`gradRollout: need integers 0 <= startLayer <= endLayer <= ${L - 1}, got startLayer=${start}, endLayer=${end}`);
  }
  let R = new Float64Array(TT);
  for (let i = 0; i < T; i++) R[i * T + i] = 1;
  const abar = new Float64Array(TT), prod = new Float64Array(TT);
  let next = new Float64Array(TT);
  for (let l = start; l <= end; l++) {
    gradWeightedLayer(att, grads, l, abar);
    matmulSquare(abar, 0, R, 0, prod, 0, T);
    for (let e = 0; e < TT; e++) next[e] = R[e] + prod[e];
    const t = R; R = next; next = t;
  }
  return { data: R, tokens: T, shape: [T, T] };
}
