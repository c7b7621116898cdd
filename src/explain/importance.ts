// Per-token importance scores and their comparison: pure numeric helpers on top of rollout, flow and gradients.
// Every *Importance function returns a length-T Float64Array that sums to 1 (or is all zero when there is
// nothing to distribute); index j is the importance of input token j for the chosen query (output) token.

import { type AttentionStack, type HeadFusion, checkAttentionStack, fuseHeads } from "./attention-stack.js";
import { attentionFlow, type FlowOptions } from "./flow.js";
import { gradRollout, type GradRolloutOptions } from "./grad-rollout.js";
import { attentionRollout, type RolloutOptions } from "./rollout.js";

/**
 * Scales non-negative scores to sum 1. A vector summing to 0 comes back as zeros. Negative or non-finite
 * entries are an error (take abs() or clamp first: which one is a modelling choice).
 */
export function normaliseScores(v: ArrayLike<number>, what = "scores"): Float64Array {
  const out = new Float64Array(v.length);
  let s = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (!(x >= 0) || x === Infinity) throw new RangeError(`${what}: entry ${i} is ${x}; importance scores must be finite and >= 0`);
    s += x;
  }
  if (s > 0) for (let i = 0; i < v.length; i++) out[i] = v[i] / s;
  return out;
}

function checkQuery(T: number, query: number, fn: string): void {
  if (!Number.isInteger(query) || query < 0 || query >= T) throw new RangeError(`${fn}: query must be a token index in [0, ${T - 1}], got ${String(query)}`);
}

export interface AttentionImportanceOptions {
  /** Query (output) token whose attention row is read. */
  query: number;
  /** Layer, 0-based (default the last). */
  layer?: number;
  /** A head index, or a fusion over heads (default "mean"). */
  head?: number | HeadFusion;
}

/** Raw attention of one layer (one head or fused heads): row `query`, normalised. */
export function attentionImportance(att: AttentionStack, opts: AttentionImportanceOptions): Float64Array {
  checkAttentionStack(att, "attentionImportance");
  const { layers: L, heads: H, tokens: T } = att;
  checkQuery(T, opts.query, "attentionImportance");
  const layer = opts.layer ?? L - 1;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new RangeError(`attentionImportance: layer must be in [0, ${L - 1}], got ${String(layer)}`);
  const head = opts.head ?? "mean";
  const row = new Float64Array(T);
  if (typeof head === "number") {
    if (!Number.isInteger(head) || head < 0 || head >= H) throw new RangeError(`attentionImportance: head must be in [0, ${H - 1}], got ${head}`);
    const b = ((layer * H + head) * T + opts.query) * T;
    for (let j = 0; j < T; j++) row[j] = att.data[b + j];
  } else {
    const one = { data: att.data.subarray(layer * H * T * T, (layer + 1) * H * T * T), layers: 1, heads: H, tokens: T };
    row.set(fuseHeads(one, head).data.subarray(opts.query * T, (opts.query + 1) * T));
  }
  return normaliseScores(row, "attentionImportance");
}

/** Rollout importance: row `query` of the rollout at the last layer (or `layer`, 0-based), normalised. */
export function rolloutImportance(att: AttentionStack, opts: RolloutOptions & { query: number; layer?: number }): Float64Array {
  const r = attentionRollout(att, opts);
  const T = r.tokens;
  checkQuery(T, opts.query, "rolloutImportance");
  const start = opts.startLayer ?? 0;
  const layer = opts.layer ?? att.layers - 1;
  if (!Number.isInteger(layer) || layer < start || layer >= att.layers) throw new RangeError(`rolloutImportance: layer must be in [${start}, ${att.layers - 1}], got ${String(layer)}`);
  const off = ((layer - start) * T + opts.query) * T;
  return normaliseScores(r.data.subarray(off, off + T), "rolloutImportance");
}

/** Flow importance: normalised attention flow from token `query` of layer `layer` (1..L, default L). */
export function flowImportance(att: AttentionStack, opts: FlowOptions & { query: number }): Float64Array {
  checkQuery(att.tokens, opts.query, "flowImportance");
  return attentionFlow(att, { ...opts, fromTokens: [opts.query] }).flows;
}

/**
 * Gradient-rollout importance: row `query` of the Chefer et al. relevance R. R = I + ..., so by default the
 * query's own entry is dropped (`keepSelf: true` keeps it) before normalising.
 */
export function gradRolloutImportance(att: AttentionStack, grads: AttentionStack, opts: GradRolloutOptions & { query: number; keepSelf?: boolean }): Float64Array {
  const R = gradRollout(att, grads, opts);
  const T = R.tokens;
  checkQuery(T, opts.query, "gradRolloutImportance");
  const row = R.data.slice(opts.query * T, (opts.query + 1) * T);
  if (!opts.keepSelf) row[opts.query] = 0;
  return normaliseScores(row, "gradRolloutImportance");
}

/**
 * Input x gradient per token: embeddings and their gradients (T, D) row-major. mode "l2" (default):
 * ||x_t ⊙ g_t||_2; "sum": sum_d x_td g_td (signed); "abs-sum": sum_d |x_td g_td|. Not normalised.
 */
export function inputXGradient(embeddings: ArrayLike<number>, grads: ArrayLike<number>, T: number, D: number, mode: "l2" | "sum" | "abs-sum" = "l2"): Float64Array {
  if (!Number.isInteger(T) || !Number.isInteger(D) || T < 1 || D < 1) throw new RangeError(`inputXGradient: T and D must be positive integers, got T=${T}, D=${D}`);
  if (embeddings.length !== T * D) throw new RangeError(`inputXGradient: embeddings have ${embeddings.length} elements, expected T*D = ${T * D}`);
  if (grads.length !== T * D) throw new RangeError(`inputXGradient: gradients have ${grads.length} elements, expected T*D = ${T * D}`);
  if (mode !== "l2" && mode !== "sum" && mode !== "abs-sum") throw new RangeError(`inputXGradient: mode must be "l2", "sum" or "abs-sum", got ${String(mode)}`);
  const out = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let s = 0;
    for (let d = 0; d < D; d++) {
      const p = embeddings[t * D + d] * grads[t * D + d];
      s += mode === "l2" ? p * p : mode === "sum" ? p : Math.abs(p);
    }
    out[t] = mode === "l2" ? Math.sqrt(s) : s;
  }
  for (let t = 0; t < T; t++) if (!Number.isFinite(out[t])) throw new RangeError(`inputXGradient: token ${t} gives ${out[t]}; inputs must be finite`);
  return out;
}

/** Ranks 1..n with ties given the average of the ranks they span (as scipy.stats.rankdata "average"). */
export function rankData(a: ArrayLike<number>): Float64Array {
  const n = a.length;
  for (let i = 0; i < n; i++) if (Number.isNaN(a[i])) throw new RangeError(`rankData: entry ${i} is NaN`);
  const idx = Array.from({ length: n }, (_, i) => i).sort((p, q) => a[p] - a[q]);
  const ranks = new Float64Array(n);
  for (let s = 0; s < n;) {
    let e = s;
    while (e + 1 < n && a[idx[e + 1]] === a[idx[s]]) e++;
    const r = (s + e) / 2 + 1; // positions s..e hold ranks s+1..e+1
    for (let k = s; k <= e; k++) ranks[idx[k]] = r;
    s = e + 1;
  }
  return ranks;
}

/**
 * Spearman rank correlation: the Pearson correlation of the average ranks. NaN when either side is constant
 * (undefined, as in scipy). Throws on a length mismatch or fewer than 2 values.
 */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`spearman: lengths differ (${a.length} vs ${b.length})`);
  const n = a.length;
  if (n < 2) throw new RangeError(`spearman: need at least 2 values, got ${n}`);
  const ra = rankData(a), rb = rankData(b);
  const mean = (n + 1) / 2; // the average rank is always (n+1)/2, ties included
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = ra[i] - mean, y = rb[i] - mean;
    sab += x * y; saa += x * x; sbb += y * y;
  }
  if (saa === 0 || sbb === 0) return NaN;
  return sab / Math.sqrt(saa * sbb);
}
