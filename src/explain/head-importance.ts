// Attention-head importance for pruning (attnflow prune), three ways. Browser-safe.
//
// gradient (Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than One?", §4.1 and their code): a mask
//   ξ_h = 1 multiplies each head's output; I_h = E_batches |∂L/∂ξ_h|, then each layer's scores are divided by their
//   L2 norm (their default) and all scores min-max scaled to [0, 1] (their global normalisation; order-preserving).
//
// rollout / flow (new in attnflow, docs/pruning.md): how much of the explanation head h is responsible for. With
//   Ã_l = ½·I + ½·mean_h W_l^h (Abnar & Zuidema's per-layer mixing) and the explained query row q (the [CLS] token,
//   or the mean over tokens for mean-pooling models), the explanation a is the rollout row e_qᵀ Ã_L ⋯ Ã_1 (rollout)
//   or the normalised max-flow from the query to every input token (flow). a^(−l,h) is the same explanation with
//   head h taken out of layer l's mean (Ã_l ← ½·I + ½·mean_{h'≠h} W_l^h') — the explanation of the model with h
//   pruned, were the other heads' attention unchanged. The importance of (l, h) is the total-variation distance
//   ½·‖a − a^(−l,h)‖₁ ∈ [0, 1]: the share of the explained relevance that passes through head h, i.e. that would
//   land elsewhere without it; averaged over examples. (The plain "mass through h", Σ over paths via h, is ½/H_l for
//   every head, since attention rows sum to 1: it cannot rank heads, so the relocated share is used.) As for the
//   gradient, each layer's scores are then divided by their L2 norm (and all min-max scaled) before the global ranking.
import type { Tensor } from "../tensor.js";
import { ones } from "../creation.js";
import { tidy, keep } from "../scope.js";
import { noGrad, setGradEnabled } from "../autograd.js";
import type { Module } from "../nn/module.js";
import { attentionLayers, setHeadMask } from "../nn/prune.js";
import { captureAttention } from "./capture.js";
import { matrixStack } from "./attention-stack.js";
import { LayeredMaxFlow } from "./maxflow.js";

export const HEAD_IMPORTANCE_METHODS = ["gradient", "flow", "rollout", "random"] as const;
export type HeadImportanceMethod = (typeof HEAD_IMPORTANCE_METHODS)[number];

/** Scores of the current heads of each attention layer, and their original indices (heads pruned before are absent). */
export interface HeadScores {
  method: HeadImportanceMethod;
  /** scores[l][i]: importance of the i-th remaining head of layer l (higher = more important). */
  scores: Float64Array[];
  /** heads[l][i]: its original index. */
  heads: number[][];
  /** Examples or batches averaged over. */
  samples: number;
}

function currentHeads(model: Module): number[][] {
  return attentionLayers(model).map(([, m]) => {
    const original = m.numHeads + m.prunedHeads.size;
    return [...Array(original).keys()].filter((h) => !m.prunedHeads.has(h));
  });
}

/**
 * Michel et al.'s importance: `loss(b)` is the (mean) loss of batch b, b = 0..batches−1, computed with the model's
 * forward (the head masks are set on the model's attention layers for the duration). Parameter gradients the backward
 * passes leave are cleared; the model should be in eval mode (no dropout), as in their code.
 */
export function gradientHeadImportance(model: Module, loss: (b: number) => Tensor, batches: number,
  o: { normalizeLayers?: boolean; normalizeGlobal?: boolean; onProgress?: (done: number, total: number) => void } = {}): HeadScores {
  if (!Number.isInteger(batches) || batches < 1) throw new RangeError(`gradientHeadImportance: batches must be a positive integer, got ${batches}`);
  const layers = attentionLayers(model);
  if (!layers.length) throw new Error("gradientHeadImportance: the model has no prunable attention layers");
  const masks = layers.map(([, m]) => keep(ones([m.numHeads]).requiresGrad_(true)));
  const acc = layers.map(([, m]) => new Float64Array(m.numHeads));
  const params = model.parameters(), saved = params.map((p) => p.grad);
  setHeadMask(model, masks);
  try {
    for (let b = 0; b < batches; b++) {
      setGradEnabled(true, () => tidy(() => {
        const l = loss(b);
        if (l.numel() !== 1) throw new Error(`gradientHeadImportance: loss(${b}) must be a scalar, got ${l.numel()} values`);
        l.backward();
        // the gradients live in this scope: read them before it ends
        masks.forEach((m, i) => {
          if (!m.grad) throw new Error(`gradientHeadImportance: no gradient reached the head mask of ${layers[i][0]} (the loss does not go through that layer)`);
          const g = m.grad.dataSync();
          for (let h = 0; h < g.length; h++) acc[i][h] += Math.abs(g[h]);
          m.grad = null;
        });
        for (const p of params) p.grad = null;
      }));
      o.onProgress?.(b + 1, batches);
    }
  } finally {
    setHeadMask(model, null);
    params.forEach((p, i) => { p.grad = saved[i]; });
    for (const m of masks) m.dispose();
  }
  for (const a of acc) for (let h = 0; h < a.length; h++) a[h] /= batches;
  if (o.normalizeLayers ?? true) normalizeLayers(acc);
  if (o.normalizeGlobal ?? true) normalizeGlobal(acc);
  return { method: "gradient", scores: acc, heads: currentHeads(model), samples: batches };
}

/** Michel et al.'s per-layer normalisation: each layer's scores divided by their L2 norm (in place). */
export function normalizeLayers(scores: Float64Array[]): Float64Array[] {
  for (const a of scores) {
    const n = Math.hypot(...a);
    for (let h = 0; h < a.length; h++) a[h] /= n + 1e-20;
  }
  return scores;
}

/** Min-max scaling of all scores to [0, 1] (in place; order-preserving). */
export function normalizeGlobal(scores: Float64Array[]): Float64Array[] {
  const all = scores.flatMap((a) => [...a]), lo = Math.min(...all), hi = Math.max(...all);
  if (hi > lo) for (const a of scores) for (let h = 0; h < a.length; h++) a[h] = (a[h] - lo) / (hi - lo);
  return scores;
}

/** One example's attention, per prunable layer: (H_l, T, T) float64 row-major. */
export interface ExampleAttention { layers: Float64Array[]; heads: number[]; tokens: number }

/**
 * The attention of every prunable layer for one forward pass `run` (batch of one sequence); records are matched to
 * layers by name (a BERT layer's weights are recorded by its .self child).
 */
export function exampleAttention(model: Module, run: () => unknown): ExampleAttention {
  const layers = attentionLayers(model);
  const { records } = noGrad(() => captureAttention(model, () => tidy(() => { run(); }), { mode: "full" }));
  try {
    const out: Float64Array[] = [], heads: number[] = [];
    let T = -1;
    for (const [name, m] of layers) {
      const r = records.filter((x) => x.kind === "self" && (x.name === name || x.name.startsWith(name + ".")));
      if (r.length !== 1) throw new Error(`head importance: expected one self-attention record for ${name || "the model"}, got ${r.length}`);
      const w = r[0].weights;
      if (w.ndim !== 4 || w.shape[0] !== 1 || w.shape[1] !== m.numHeads) throw new Error(`head importance: ${name} recorded ${w.shape.join("x")} attention, expected (1, ${m.numHeads}, T, T) — run one sequence at a time`);
      if (T < 0) T = w.shape[2];
      if (w.shape[2] !== T || w.shape[3] !== T) throw new Error(`head importance: ${name} recorded (${w.shape[2]}, ${w.shape[3]}) attention, expected (${T}, ${T})`);
      out.push(Float64Array.from(w.dataSync() as Float32Array));
      heads.push(m.numHeads);
    }
    return { layers: out, heads, tokens: T };
  } finally {
    for (const r of records) r.weights.dispose();
  }
}

/** Ã_l = ½·I + ½·mean over the heads not in `skip` of W_l^h, into out (T, T). */
function mixing(att: Float64Array, H: number, T: number, skip: number, out: Float64Array): Float64Array {
  const TT = T * T, n = skip >= 0 ? H - 1 : H;
  out.fill(0);
  for (let h = 0; h < H; h++) {
    if (h === skip) continue;
    const o = h * TT;
    for (let e = 0; e < TT; e++) out[e] += att[o + e];
  }
  const s = 0.5 / n;
  for (let e = 0; e < TT; e++) out[e] *= s;
  for (let i = 0; i < T; i++) out[i * T + i] += 0.5;
  return out;
}

/** The explained output row: a token, "mean" (all tokens equally) or source weights over the tokens (summing to 1). */
export type Query = number | "mean" | Float64Array;

/** The query's source weights over the last layer's tokens: one-hot, uniform ("mean" pooling) or as given. */
function queryWeights(T: number, query: Query): Float64Array {
  const w = new Float64Array(T);
  if (query instanceof Float64Array) {
    if (query.length !== T) throw new RangeError(`head importance: query weights have ${query.length} entries for ${T} tokens`);
    w.set(query);
  } else if (query === "mean") w.fill(1 / T);
  else {
    if (!Number.isInteger(query) || query < 0 || query >= T) throw new RangeError(`head importance: query token ${query} not in [0, ${T})`);
    w[query] = 1;
  }
  return w;
}

/** rowᵀ·M for a (T, T) matrix M. */
function rowTimes(row: Float64Array, M: Float64Array, T: number): Float64Array {
  const out = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    const r = row[i];
    if (r === 0) continue;
    for (let j = 0, o = i * T; j < T; j++) out[j] += r * M[o + j];
  }
  return out;
}

const tv = (a: Float64Array, b: Float64Array) => { let s = 0; for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]); return s / 2; };

/**
 * Rollout head importance of one example: per layer, per head, ½·‖a − a^(−l,h)‖₁ with a the rollout row of `query`.
 * Exact, O(L²·H·T²).
 */
export function rolloutHeadShift(ex: ExampleAttention, query: Query): Float64Array[] {
  const L = ex.layers.length, T = ex.tokens, TT = T * T;
  const mix = ex.layers.map((a, l) => mixing(a, ex.heads[l], T, -1, new Float64Array(TT)));
  // above[l] = q ᵀ Ã_{L−1} ⋯ Ã_{l+1} (the relevance over layer l's outputs), 0-based layers
  const above: Float64Array[] = new Array(L);
  above[L - 1] = queryWeights(T, query);
  for (let l = L - 2; l >= 0; l--) above[l] = rowTimes(above[l + 1], mix[l + 1], T);
  const full = rowTimes(above[0], mix[0], T);
  const scratch = new Float64Array(TT);
  return ex.layers.map((att, l) => {
    const H = ex.heads[l], s = new Float64Array(H);
    if (H < 2) return s;                                                      // the only head: removing it is not pruning
    for (let h = 0; h < H; h++) {
      let r = rowTimes(above[l], mixing(att, H, T, h, scratch), T);
      for (let k = l - 1; k >= 0; k--) r = rowTimes(r, mix[k], T);
      s[h] = tv(full, r);
    }
    return s;
  });
}

/**
 * Flow head importance of one example: per layer, per head, ½·‖f − f^(−l,h)‖₁ with f the max-flow values from the
 * query (one token, or the uniform weighted source for "mean") to every input token, normalised to sum 1.
 */
export function flowHeadShift(ex: ExampleAttention, query: Query): Float64Array[] {
  const L = ex.layers.length, T = ex.tokens, TT = T * T;
  const res = matrixStack(L, T);
  ex.layers.forEach((a, l) => mixing(a, ex.heads[l], T, -1, res.data.subarray(l * TT, (l + 1) * TT)));
  const solver = new LayeredMaxFlow(res);
  const flows = () => {
    const f = typeof query === "number" ? solver.flowsFrom(L, query) : solver.flowsFromWeights(L, queryWeights(T, query));
    const s = f.reduce((x, y) => x + y, 0);
    if (s > 0) for (let i = 0; i < T; i++) f[i] /= s;
    return f;
  };
  if (typeof query === "number" && (!Number.isInteger(query) || query < 0 || query >= T)) throw new RangeError(`head importance: query token ${query} not in [0, ${T})`);
  const full = flows();
  const saved = new Float64Array(TT);
  return ex.layers.map((att, l) => {
    const H = ex.heads[l], s = new Float64Array(H);
    if (H < 2) return s;
    const block = res.data.subarray(l * TT, (l + 1) * TT);
    saved.set(block);
    for (let h = 0; h < H; h++) {
      mixing(att, H, T, h, block);
      solver.refresh();
      s[h] = tv(full, flows());
    }
    block.set(saved);
    solver.refresh();
    return s;
  });
}

/**
 * Attribution head importance (rollout or flow) averaged over `examples` forward passes: `run(i)` runs the model on
 * example i alone (e.g. the task's loss of one example); `query` (or `queryFor(T)`) is the explained output row.
 */
export function attributionHeadImportance(model: Module, method: "rollout" | "flow", run: (i: number) => unknown, examples: number,
  o: { query?: Query; queryFor?: (tokens: number) => Query; normalizeLayers?: boolean; onProgress?: (done: number, total: number) => void } = {}): HeadScores {
  if (!Number.isInteger(examples) || examples < 1) throw new RangeError(`attributionHeadImportance: examples must be a positive integer, got ${examples}`);
  const layers = attentionLayers(model);
  if (!layers.length) throw new Error("attributionHeadImportance: the model has no prunable attention layers");
  const acc = layers.map(([, m]) => new Float64Array(m.numHeads));
  const query = o.query ?? 0;
  for (let i = 0; i < examples; i++) {
    const ex = exampleAttention(model, () => run(i));
    const q = o.queryFor ? o.queryFor(ex.tokens) : query;
    const s = method === "rollout" ? rolloutHeadShift(ex, q) : flowHeadShift(ex, q);
    s.forEach((v, l) => { for (let h = 0; h < v.length; h++) acc[l][h] += v[h] / examples; });
    o.onProgress?.(i + 1, examples);
  }
  // deeper layers move less of a rollout/flow explanation (the layers below still mix): ranked globally, raw shifts
  // would prune the top layers first whatever their heads do, so each layer is normalised as Michel et al. do
  if (o.normalizeLayers ?? true) normalizeGlobal(normalizeLayers(acc));
  return { method, scores: acc, heads: currentHeads(model), samples: examples };
}

/** Random scores (the baseline of the pruning report), from `random()` in [0, 1). */
export function randomHeadImportance(model: Module, random: () => number): HeadScores {
  const heads = currentHeads(model);
  return { method: "random", scores: heads.map((hs) => Float64Array.from(hs, () => random())), heads, samples: 0 };
}

/**
 * The heads to prune: the `count` least important over all layers (global ranking, as Michel et al. prune), never the
 * last head of a layer (a layer keeps at least one). Ties go to the lower layer, then the lower head. Returns
 * { layer: original head indices } for nn.pruneHeads.
 */
export function headsToPrune(s: HeadScores, count: number): Record<number, number[]> {
  const total = s.scores.reduce((n, v) => n + v.length, 0);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`headsToPrune: count must be a non-negative integer, got ${count}`);
  const maxPrunable = s.scores.reduce((n, v) => n + Math.max(0, v.length - 1), 0);
  if (count > maxPrunable) throw new RangeError(`headsToPrune: cannot prune ${count} of ${total} heads while keeping one per layer (at most ${maxPrunable})`);
  const order: [number, number, number][] = [];
  s.scores.forEach((v, l) => v.forEach((x, i) => order.push([x, l, i])));
  order.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const left = s.scores.map((v) => v.length);
  const out: Record<number, number[]> = {};
  let n = 0;
  for (const [, l, i] of order) {
    if (n === count) break;
    if (left[l] <= 1) continue;
    left[l]--; n++;
    (out[l] ??= []).push(s.heads[l][i]);
  }
  for (const k of Object.keys(out)) out[Number(k)].sort((a, b) => a - b);
  return out;
}

/** "25%" or "0.25" (a fraction of all current heads) or "6" (a count) → a head count, rounded to the nearest. */
export function parseHeadCount(spec: string, total: number): number {
  const t = spec.trim();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(t);
  let n: number;
  if (pct) n = Math.round((Number(pct[1]) / 100) * total);
  else if (/^\d+$/.test(t)) n = Number(t);
  else if (/^0?\.\d+$/.test(t)) n = Math.round(Number(t) * total);
  else throw new Error(`--heads must be a percentage ("25%"), a fraction ("0.25") or a count ("6"), got ${JSON.stringify(spec)}`);
  if (n > total) throw new RangeError(`--heads ${spec} is more than the model's ${total} heads`);
  return n;
}
