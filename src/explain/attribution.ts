// Attribution over an ExplainTarget (src/tasks/task.ts): the explained attention stack captured while the model
// scores the input (optionally with the gradients of the score with respect to every attention probability),
// blank-out (occlusion) and input × gradient. Browser-safe: only the model and the target's score() are run.
//
// Positions: index t is a position of the explained self-attention (0..T-1), the same indexing as
// ExplainTarget.special and score({ occlude }). For an image model T = prefix + number of patches.

import type { Tensor } from "../tensor.js";
import type { Module } from "../nn/module.js";
import type { ExplainTarget } from "../tasks/task.js";
import { noGrad, setGradEnabled } from "../autograd.js";
import { captureAttention, type AttentionRecord } from "./capture.js";
import type { AttentionStack } from "./attention-stack.js";

/** The explained self-attention of one input, as plain numbers. */
export interface TargetAttention {
  /** (L, H, T, T) attention probabilities of the explained layers, in call order (input side first). */
  stack: AttentionStack & { data: Float32Array };
  /** (L, H, T, T) d score / d attention (withGrad only; zeros for a layer the score does not depend on). */
  grads: (AttentionStack & { data: Float32Array }) | null;
  /** Module path of each layer's attention, e.g. "encoder.layers.0.self_attn". */
  names: string[];
  /** Decoder-style attention: recorded with isCausal, or every weight above the diagonal is exactly 0. */
  causal: boolean;
  /** Key positions a padding mask hid (they are treated as special). */
  padded: number[];
  /** The target's score on the unmodified input. */
  score: number;
  /** Heads of each layer when they differ (a pruned model): layer l's heads past headsPerLayer[l] are padding (head means). */
  headsPerLayer?: number[];
}

function scalarOf(t: unknown, what: string): number {
  const x = t as Tensor;
  if (x === null || typeof x !== "object" || typeof x.numel !== "function") throw new TypeError(`${what}: ExplainTarget.score() must return a Tensor`);
  if (x.numel() !== 1) throw new RangeError(`${what}: ExplainTarget.score() must return a scalar (the explained logit), got shape [${x.shape.join(", ")}]`);
  const v = x.item();
  if (!Number.isFinite(v)) throw new RangeError(`${what}: ExplainTarget.score() returned ${v}`);
  return v;
}

/** Number of attention positions for a target whose tokens may leave out an image model's prefix (e.g. [CLS]). */
export function positionLabels(target: ExplainTarget, T: number): string[] {
  const tokens = target.tokens;
  if (tokens.length === T) return tokens.slice();
  const prefix = target.image?.prefix ?? 0;
  if (target.image && tokens.length + prefix === T) {
    return [...Array.from({ length: prefix }, (_, i) => (i === 0 ? "[CLS]" : `[P${i}]`)), ...tokens];
  }
  throw new RangeError(`the explained attention has ${T} positions but ExplainTarget.tokens has ${tokens.length} labels` +
    (target.image ? ` (image prefix ${prefix})` : ""));
}

/** Attention positions left out of importance: ExplainTarget.special (default: an image model's prefix), plus padding. */
export function specialPositions(target: ExplainTarget, T: number, padded: readonly number[] = []): number[] {
  const base = target.special ?? (target.image ? Array.from({ length: target.image.prefix }, (_, i) => i) : []);
  for (const p of base) {
    if (!Number.isInteger(p) || p < 0 || p >= T) throw new RangeError(`ExplainTarget.special entry ${String(p)} is not a position in [0, ${T - 1}]`);
  }
  return [...new Set([...base, ...padded])].sort((a, b) => a - b);
}

interface Picked { recs: AttentionRecord[]; T: number; H: number; heads: number[] }

/** Chooses the explained records: self-attention, one size, batch 1; clear errors otherwise. */
function pickRecords(records: AttentionRecord[], target: ExplainTarget): Picked {
  const self = records.filter((r) => r.kind === "self");
  if (self.length === 0) {
    const seen = records.length ? ` (recorded: ${records.map((r) => `${r.name} [${r.kind}]`).join(", ")})` : "";
    throw new Error(`no self-attention was recorded while scoring the input${seen}: is the model built from attnflow attention modules` +
      (target.layerFilter ? ", and does ExplainTarget.layerFilter accept their names?" : "?"));
  }
  const dims = self.map((r) => {
    const s = r.weights.shape;
    const [B, H, Tq, Tk] = r.headMean ? [s[0], 1, s[1], s[2]] : [s[0], s[1], s[2], s[3]];
    if ((r.headMean ? s.length !== 3 : s.length !== 4) || B !== 1) {
      throw new RangeError(`attention record ${r.name} has shape [${s.join(", ")}]; explaining needs one input (batch 1)`);
    }
    if (Tq !== Tk) throw new RangeError(`self-attention record ${r.name} is ${Tq}x${Tk}, not square`);
    return { H, T: Tq };
  });
  const sizes = [...new Set(dims.map((d) => d.T))];
  let T = sizes[0];
  if (sizes.length > 1) {
    // e.g. encoder and decoder self-attention of a seq2seq without a layerFilter: keep the stack the tokens label
    const n = target.tokens.length, prefix = target.image?.prefix ?? 0;
    const match = sizes.filter((s) => s === n || (target.image !== undefined && s === n + prefix));
    if (match.length !== 1) {
      throw new RangeError(`self-attention records have different sizes (${self.map((r, i) => `${r.name}: ${dims[i].T}x${dims[i].T}`).join(", ")}); ` +
        `set ExplainTarget.layerFilter to choose the explained stack`);
    }
    T = match[0];
  }
  const keep = self.map((r, i) => ({ r, d: dims[i] })).filter((x) => x.d.T === T);
  // pruned models (nn.pruneHeads) have fewer heads in some layers: the stack has the most, see targetAttention
  const heads = keep.map((x) => x.d.H);
  return { recs: keep.map((x) => x.r), T, H: Math.max(...heads), heads };
}

/**
 * A layer with Hl < H heads (heads pruned) is padded to H: each missing head is the layer's head mean Ā, which keeps
 * the mean, max and min head fusions of rollout and flow exactly; its gradient is mean_h((∇A⊙A)⁺)/Ā (0 where Ā = 0),
 * so the gradient-weighted rollout's E_h[(∇A⊙A)⁺] is exact too. Per-head views show these heads as head means.
 */
function padPrunedLayer(data: Float32Array, grads: Float32Array | null, l: number, Hl: number, H: number, TT: number): void {
  const o = l * H * TT, mean = new Float32Array(TT), pos = new Float32Array(TT);
  for (let h = 0; h < Hl; h++) {
    for (let e = 0; e < TT; e++) {
      const a = data[o + h * TT + e];
      mean[e] += a / Hl;
      if (grads) pos[e] += Math.max(0, grads[o + h * TT + e] * a) / Hl;
    }
  }
  for (let h = Hl; h < H; h++) {
    data.set(mean, o + h * TT);
    if (grads) for (let e = 0; e < TT; e++) grads[o + h * TT + e] = mean[e] > 0 ? pos[e] / mean[e] : 0;
  }
}

function isLowerTriangular(d: Float32Array, LH: number, T: number): boolean {
  if (T < 2) return false;
  for (let m = 0; m < LH; m++) for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) if (d[(m * T + i) * T + j] !== 0) return false;
  return true;
}

/**
 * Runs target.score() with attention capture (ExplainTarget.layerFilter applied) and returns the explained stack.
 * withGrad: the attention is kept in the autograd graph and the score is back-propagated, giving d score / d A for
 * gradient-weighted rollout; parameter gradients the backward pass leaves are restored to what they were.
 * `model` names the attention modules (needed by layerFilter); null names them attention0, attention1, ...
 */
export function targetAttention(target: ExplainTarget, model: Module | null, o: { withGrad?: boolean } = {}): TargetAttention {
  const c = captureTarget(target, model, !!o.withGrad);
  try {
    const reads = new Map<Tensor, ArrayLike<number>>();
    for (const t of c.toRead) reads.set(t, t.dataSync());
    return assembleTarget(c, reads);
  } finally {
    c.release();
  }
}

/**
 * targetAttention for a model whose tensors live on a device (WebGPU): the forward (and backward) pass is enqueued
 * there, then the score, the recorded maps, their gradients and the padding masks are read back with `await t.data()`.
 * The same numbers as targetAttention for a CPU model (it works there too).
 */
export async function targetAttentionAsync(target: ExplainTarget, model: Module | null, o: { withGrad?: boolean } = {}): Promise<TargetAttention> {
  const c = captureTarget(target, model, !!o.withGrad);
  try {
    const arrays = await Promise.all(c.toRead.map((t) => t.data()));
    return assembleTarget(c, new Map(c.toRead.map((t, i) => [t, arrays[i]])));
  } finally {
    c.release();
  }
}

interface CapturedTarget extends Picked {
  score: Tensor;
  withGrad: boolean;
  /** Every tensor assembleTarget reads (the score first). */
  toRead: Tensor[];
  release(): void;
}

/** Runs score() with capture (and backward with withGrad) without reading anything back; parameter gradients restored. */
function captureTarget(target: ExplainTarget, model: Module | null, withGrad: boolean): CapturedTarget {
  const params = model ? model.parameters() : [];
  const savedGrads = params.map((p) => p.grad);
  let records: AttentionRecord[] = [];
  const release = () => { for (const r of records) { r.weights.grad = null; r.weights.dispose(); } };
  const run = (): CapturedTarget => {
    const cap = captureAttention(model, () => target.score(), { mode: "full", withGrad, filter: target.layerFilter });
    records = cap.records;
    const result = cap.result as unknown as Tensor;
    if (result === null || typeof result !== "object" || typeof result.numel !== "function") throw new TypeError("targetAttention: ExplainTarget.score() must return a Tensor");
    if (result.numel() !== 1) throw new RangeError(`targetAttention: ExplainTarget.score() must return a scalar (the explained logit), got shape [${result.shape.join(", ")}]`);
    const picked = pickRecords(records, target);
    if (withGrad) {
      if (!result.requiresGrad) throw new Error("targetAttention: the score does not depend on anything that requires grad; cannot take gradients");
      result.backward();
    }
    const toRead: Tensor[] = [result];
    for (const r of picked.recs) {
      toRead.push(r.weights);
      if (withGrad) {
        // no gradient at all means the recorded tensor is not the one the module computed with: refuse rather
        // than report all-zero relevance
        if (!r.weights.grad) throw new Error(`no gradient reached the recorded attention of ${r.name}: this module does not record the weights it uses, so gradient rollout is unavailable for it`);
        toRead.push(r.weights.grad);
      }
      if (r.keyPaddingMask) toRead.push(r.keyPaddingMask);
    }
    return { ...picked, score: result, withGrad, toRead, release };
  };
  try {
    return withGrad ? setGradEnabled(true, run) : noGrad(run);
  } catch (e) {
    release();
    throw e;
  } finally {
    params.forEach((p, i) => { p.grad = savedGrads[i]; });
  }
}

/** The TargetAttention from the captured tensors' values (`reads`: each tensor of c.toRead → its flat data). */
function assembleTarget(c: CapturedTarget, reads: Map<Tensor, ArrayLike<number>>): TargetAttention {
  const score = reads.get(c.score)![0];
  if (!Number.isFinite(score)) throw new RangeError(`targetAttention: ExplainTarget.score() returned ${score}`);
  const { recs, T, H, heads } = c;
  const L = recs.length, TT = T * T;
  const data = new Float32Array(L * H * TT);
  const grads = c.withGrad ? new Float32Array(L * H * TT) : null;
  const padded = new Set<number>();
  recs.forEach((r, l) => {
    data.set(reads.get(r.weights)!, l * H * TT);
    if (grads) grads.set(reads.get(r.weights.grad!)!, l * H * TT);
    if (heads[l] < H) padPrunedLayer(data, grads, l, heads[l], H, TT);
    if (r.keyPaddingMask) {
      const m = reads.get(r.keyPaddingMask)!;
      if (m.length === T) for (let j = 0; j < T; j++) if (m[j]) padded.add(j);
    }
  });
  const causal = recs.some((r) => r.causal) || isLowerTriangular(data, L * H, T);
  return {
    stack: { data, layers: L, heads: H, tokens: T },
    grads: grads ? { data: grads, layers: L, heads: H, tokens: T } : null,
    names: recs.map((r) => r.name), causal, padded: [...padded].sort((a, b) => a - b), score,
    ...(heads.some((h) => h !== H) ? { headsPerLayer: heads } : {}),
  };
}

export interface BlankOutResult {
  /** Score of the unmodified input. */
  base: number;
  /** (T) score with position t blanked out (NaN at positions not occluded). */
  occluded: Float64Array;
  /** (T) base - occluded: how much the score drops without position t (0 at positions not occluded). */
  drop: Float64Array;
  /** The occluded positions. */
  positions: number[];
}

/** blankOut's and blankOutAsync's checked options: the batch size and the positions to occlude. */
function blankOutPlan(T: number, o: { skip?: readonly number[]; positions?: readonly number[]; batch?: number }): { batch: number; positions: number[] } {
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`blankOut: T must be a positive integer, got ${String(T)}`);
  const batch = o.batch ?? 16;
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`blankOut: batch must be a positive integer, got ${String(o.batch)}`);
  const skip = new Set(o.skip ?? []);
  const positions = o.positions ? [...o.positions] : Array.from({ length: T }, (_, t) => t).filter((t) => !skip.has(t));
  for (const p of positions) if (!Number.isInteger(p) || p < 0 || p >= T) throw new RangeError(`blankOut: position ${String(p)} is not in [0, ${T - 1}]`);
  return { batch, positions };
}

/**
 * Blank-out (occlusion) importance: the score is recomputed with each position in turn replaced by the task's
 * neutral value (score({ occlude: [t] })); importance of t = base score - occluded score (signed: a negative drop
 * means the position speaks against the target). `positions` defaults to every position of 0..T-1 that is not in
 * `skip`. One forward pass per position, without gradients; when the target has scoreBatch, `batch` (default 16)
 * occluded copies per batched forward pass instead.
 */
export function blankOut(target: ExplainTarget, T: number, o: { skip?: readonly number[]; positions?: readonly number[]; onProgress?: (done: number, total: number) => void; batch?: number } = {}): BlankOutResult {
  const { batch, positions } = blankOutPlan(T, o);
  return noGrad(() => {
    const base = scoreOnce(target, undefined, "blankOut");
    const occluded = new Float64Array(T).fill(NaN), drop = new Float64Array(T);
    if (target.scoreBatch) {
      // `batch` occluded copies per forward pass (ExplainTarget.scoreBatch)
      for (let k0 = 0; k0 < positions.length; k0 += batch) {
        const chunk = positions.slice(k0, k0 + batch);
        const s = target.scoreBatch(chunk.map((p) => [p]));
        const v = s.dataSync();
        if (v.length !== chunk.length) { s.dispose(); throw new Error(`blankOut: scoreBatch returned ${v.length} scores for ${chunk.length} occluded copies`); }
        chunk.forEach((p, k) => { occluded[p] = v[k]; drop[p] = base - v[k]; });
        s.dispose();
        o.onProgress?.(k0 + chunk.length, positions.length);
      }
      return { base, occluded, drop, positions };
    }
    positions.forEach((p, k) => {
      const s = scoreOnce(target, [p], "blankOut");
      occluded[p] = s; drop[p] = base - s;
      o.onProgress?.(k + 1, positions.length);
    });
    return { base, occluded, drop, positions };
  });
}

/**
 * blankOut for a model on a device (WebGPU): the same occlusions, each batch's scores read back with `await`
 * (one read per forward pass, or per batch of occluded copies when the target has scoreBatch).
 */
export async function blankOutAsync(target: ExplainTarget, T: number, o: { skip?: readonly number[]; positions?: readonly number[]; onProgress?: (done: number, total: number) => void; batch?: number } = {}): Promise<BlankOutResult> {
  const { batch, positions } = blankOutPlan(T, o);
  const base = await scoreOnceAsync(target, undefined, "blankOut");
  const occluded = new Float64Array(T).fill(NaN), drop = new Float64Array(T);
  for (let k0 = 0; k0 < positions.length; k0 += target.scoreBatch ? batch : 1) {
    const chunk = target.scoreBatch ? positions.slice(k0, k0 + batch) : [positions[k0]];
    let v: ArrayLike<number>;
    if (target.scoreBatch) {
      const s = noGrad(() => target.scoreBatch!(chunk.map((p) => [p])));
      try { v = await s.data(); } finally { s.dispose(); }
      if (v.length !== chunk.length) throw new Error(`blankOut: scoreBatch returned ${v.length} scores for ${chunk.length} occluded copies`);
    } else v = [await scoreOnceAsync(target, chunk, "blankOut")];
    chunk.forEach((p, k) => { occluded[p] = v[k]; drop[p] = base - v[k]; });
    o.onProgress?.(k0 + chunk.length, positions.length);
  }
  return { base, occluded, drop, positions };
}

async function scoreOnceAsync(target: ExplainTarget, occlude: number[] | undefined, what: string): Promise<number> {
  const s = noGrad(() => target.score(occlude ? { occlude } : undefined));
  try {
    if (s === null || typeof s !== "object" || typeof s.numel !== "function") throw new TypeError(`${what}: ExplainTarget.score() must return a Tensor`);
    if (s.numel() !== 1) throw new RangeError(`${what}: ExplainTarget.score() must return a scalar (the explained logit), got shape [${s.shape.join(", ")}]`);
    const v = (await s.data())[0];
    if (!Number.isFinite(v)) throw new RangeError(`${what}: ExplainTarget.score() returned ${v}`);
    return v;
  } finally {
    s?.dispose?.();
  }
}

function scoreOnce(target: ExplainTarget, occlude: number[] | undefined, what: string): number {
  const s = target.score(occlude ? { occlude } : undefined);
  const v = scalarOf(s, what);
  s.dispose();
  return v;
}

export interface InputGradResult {
  score: number;
  /** (T) sum over d of x[t, d] * d score / d x[t, d]: signed (first-order share of position t in the score). */
  signed: Float64Array;
  /** (T) |signed|: the importance used for display and faithfulness. */
  magnitude: Float64Array;
  /** Embedding width D and the positions the embeddings covered (an image model may embed patches only). */
  dim: number;
  positions: number[];
}

/**
 * Input × gradient: the embeddings the target hands to onEmbeddings ((1, T', D), right after the embedding layer)
 * are made a leaf that requires grad, the score is back-propagated, and per position the products x ⊙ dscore/dx are
 * summed over D. `signed` keeps the sign (Σ_d x·g is the first-order Taylor share of the score), `magnitude` is its
 * absolute value. When T' = T - prefix (an image model embedding only its patches) the values land on positions
 * prefix..T-1. Parameter gradients are restored afterwards.
 */
export function inputGradient(target: ExplainTarget, T: number, model: Module | null = null): InputGradResult {
  const c = inputGradCapture(target, T, model);
  return c.finish(c.x.dataSync(), c.x.grad ? c.x.grad.dataSync() : null, c.score.item());
}

/** inputGradient for a model on a device (WebGPU): backward enqueued there, embeddings and gradients read with await. */
export async function inputGradientAsync(target: ExplainTarget, T: number, model: Module | null = null): Promise<InputGradResult> {
  const c = inputGradCapture(target, T, model);
  const [xv, gv, sv] = await Promise.all([c.x.data(), c.x.grad ? c.x.grad.data() : Promise.resolve(null), c.score.data()]);
  return c.finish(xv, gv, sv[0]);
}

function inputGradCapture(target: ExplainTarget, T: number, model: Module | null) {
  const params = model ? model.parameters() : [];
  const savedGrads = params.map((p) => p.grad);
  let leaf: Tensor | null = null, calls = 0;
  try {
    return setGradEnabled(true, () => {
      const s = target.score({
        onEmbeddings: (x: Tensor) => {
          calls++;
          if (x.ndim !== 3 || x.shape[0] !== 1) throw new RangeError(`inputGradient: onEmbeddings expects embeddings of shape (1, T, D), got [${x.shape.join(", ")}]`);
          leaf = x.detach().requiresGrad_();
          return leaf;
        },
      });
      if (s === null || typeof s !== "object" || typeof s.numel !== "function") throw new TypeError("inputGradient: ExplainTarget.score() must return a Tensor");
      if (s.numel() !== 1) throw new RangeError(`inputGradient: ExplainTarget.score() must return a scalar (the explained logit), got shape [${s.shape.join(", ")}]`);
      if (calls === 0 || leaf === null) throw new Error("inputGradient: ExplainTarget.score() never called onEmbeddings, so input × gradient is not available for this task");
      if (calls > 1) throw new Error(`inputGradient: onEmbeddings was called ${calls} times in one score() call; expected once`);
      const x: Tensor = leaf;
      if (!s.requiresGrad) throw new Error("inputGradient: the score does not depend on the embeddings handed to onEmbeddings (was the returned tensor used?)");
      s.backward();
      const [, Tp, D] = x.shape;
      const prefix = target.image?.prefix ?? 0;
      const offset = Tp === T ? 0 : target.image && Tp === T - prefix ? prefix : -1;
      if (offset < 0) throw new RangeError(`inputGradient: embeddings cover ${Tp} positions but the explained attention has ${T}`);
      const finish = (xv: ArrayLike<number>, g: ArrayLike<number> | null, score: number): InputGradResult => {
        if (!Number.isFinite(score)) throw new RangeError(`inputGradient: ExplainTarget.score() returned ${score}`);
        const gv = g ?? new Float32Array(Tp * D);
        const signed = new Float64Array(T), magnitude = new Float64Array(T);
        for (let t = 0; t < Tp; t++) {
          let acc = 0;
          for (let d = 0; d < D; d++) acc += xv[t * D + d] * gv[t * D + d];
          signed[offset + t] = acc; magnitude[offset + t] = Math.abs(acc);
        }
        x.grad = null;
        return { score, signed, magnitude, dim: D, positions: Array.from({ length: Tp }, (_, t) => offset + t) };
      };
      return { x, score: s, finish };
    });
  } finally {
    params.forEach((p, i) => { p.grad = savedGrads[i]; });
  }
}
