// One explanation of one input: run the chosen methods on an ExplainTarget and return a plain-JSON `Explanation`
// (every number an ordinary number, matrices as nested arrays) that the terminal view, the HTML report, the
// --json output and the faithfulness evaluation all read. Browser-safe; Node passes a worker-thread flow solver.
//
// Conventions. T positions (index = position of the explained self-attention; specials such as [CLS] and padding
// get importance 0). `layer` is a 0-based attention layer (negative counts from the end; default the last).
// The query is the row being explained: ExplainTarget.query, default the first special position ([CLS]) or
// "mean" (all non-special rows summed); or, when the target gives a `readout` distribution over rows (an
// encoder-decoder: the output position's cross-attention), the rows weighted by it ("readout").
// Importance of a method = its row(s) for the query, specials zeroed:
//   raw       attention of `layer` (head `head`, default the head mean), normalised to sum 1
//   rollout   Abnar & Zuidema rollout at `layer` (residual 0.5, head mean; causal rows for decoders), sum 1
//   flow      their attention flow from the query at the output of `layer` (exact max-flow), sum 1. Several rows
//             ("mean", "readout"; flowAggregate "source", the default): ONE flow from a virtual source that feeds
//             each row with its weight (weights summing to 1), T max-flows per layer; flowAggregate "rows": A&Z's
//             flow of each row, normalised, then weighted and summed (T max-flows per row and layer)
//   grad      Chefer et al. relevance R = Π(I + E_h[(∇A ⊙ A)+]) up to `layer`, the query's own entry dropped, sum 1
//   blankout  score drop when the position is occluded (signed, in score units: not normalised)
//   inputgrad |Σ_d x_td ∂score/∂x_td| on the input embeddings (not normalised; the signed sum is kept too)
// perLayer[l] repeats the importance as if `layer` were l (raw, rollout, flow, grad), for faithfulness tables.

import type { Module } from "../nn/module.js";
import type { ExplainTarget, Truncation } from "../tasks/task.js";
import { type AttentionStack, type HeadFusion, type MatrixStack, fuseHeads, headMatrix, prepareLayers } from "./attention-stack.js";
import { attentionRollout, matmulSquare } from "./rollout.js";
import { gradWeightedLayer } from "./grad-rollout.js";
import { LayeredMaxFlow } from "./maxflow.js";
import { type FlowSource, checkFlowWeights, normaliseRows } from "./flow.js";
import { type DecoderExplanation, explainDecoder } from "./seq2seq.js";
import { blankOut, blankOutAsync, inputGradient, inputGradientAsync, positionLabels, specialPositions, targetAttention, targetAttentionAsync, type TargetAttention } from "./attribution.js";

/** The device a model's parameters live on ("cpu" for the CPU backends or no model). */
export function modelDevice(model: Module | null): string {
  const p = model?.parameters().find((t) => t.device !== "cpu");
  return p ? p.device : "cpu";
}

export const EXPLAIN_METHODS = ["raw", "rollout", "flow", "grad", "blankout", "inputgrad"] as const;
export type ExplainMethod = (typeof EXPLAIN_METHODS)[number];

/** "rollout", "raw,flow", "all" (or an array of names) → methods in canonical order; unknown names are an error. */
export function parseMethods(spec: string | readonly string[] | undefined, fallback: ExplainMethod[] = ["rollout"]): ExplainMethod[] {
  if (spec === undefined || (typeof spec === "string" && spec.trim() === "")) return fallback.slice();
  const names = (typeof spec === "string" ? spec.split(",") : [...spec]).map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
  if (names.includes("all")) return [...EXPLAIN_METHODS];
  const bad = names.filter((n) => !(EXPLAIN_METHODS as readonly string[]).includes(n));
  if (bad.length) throw new RangeError(`unknown method${bad.length > 1 ? "s" : ""} ${bad.map((b) => `"${b}"`).join(", ")}: choose from ${EXPLAIN_METHODS.join(", ")} (comma-separated) or all`);
  return EXPLAIN_METHODS.filter((m) => names.includes(m));
}

/**
 * Raw max-flow values for sources on capacities res: (rows.length, T). rows[r] = [layer (1..L), token] (node source)
 * or [layer (0..L), weights] (weighted source, weights used as given). onProgress(done, total): sources done.
 */
export type FlowRowsFn = (res: MatrixStack, rows: ReadonlyArray<FlowSource>, onProgress?: (done: number, total: number) => void) => Float64Array | Promise<Float64Array>;

/** Single-threaded flow rows (one solver, buffers reused). */
export function flowRowsLocal(res: MatrixStack, rows: ReadonlyArray<FlowSource>, onProgress?: (done: number, total: number) => void): Float64Array {
  const T = res.tokens, out = new Float64Array(rows.length * T);
  if (rows.length === 0) return out;
  const solver = new LayeredMaxFlow(res);
  rows.forEach(([l, a], r) => {
    const o = out.subarray(r * T, (r + 1) * T);
    if (typeof a === "number") solver.flowsFrom(l, a, o);
    else { checkFlowWeights(res.layers, T, l, a, "flowRowsLocal"); solver.flowsFromWeights(l, a, o); }
    onProgress?.(r + 1, rows.length);
  });
  return out;
}

export interface ExplainRunOptions {
  methods?: ExplainMethod[];
  /** 0-based attention layer; negative counts from the end (default -1, the last). */
  layer?: number;
  /** One head for raw attention (default: mean over heads). */
  head?: number;
  /** Rollout / flow preparation: residual weight alpha (0.5), head fusion ("mean"), discard ratio (0). */
  alpha?: number;
  headFusion?: HeadFusion;
  discardRatio?: number;
  /** Options of the rollout method only (the CLI's --head-fusion, --discard-ratio, --start-layer): they override
   *  headFusion / discardRatio above for rollout; startLayer is the first layer in the product (default 0). */
  rollout?: RolloutMethodOptions;
  /** Full T x T flow matrices: of every layer, of the explained layer, or none; "auto" (default) by cost. */
  flowMatrices?: "all" | "layer" | "none" | "auto";
  /**
   * Flow of several explained rows (query "mean" or a readout): "source" (default) one flow from a virtual source
   * feeding every row with its weight; "rows" A&Z's flow of each row, normalised, weighted and summed (T times the
   * work). One row: the same number either way (A&Z's flow of that row).
   */
  flowAggregate?: "source" | "rows";
  /** Include every attention matrix (and the attention gradients for grad) in the result (default true). */
  matrices?: boolean;
  /** Flow solver (default flowRowsLocal; Node passes a worker pool for large T). */
  flowRows?: FlowRowsFn;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface RolloutMethodOptions { headFusion?: HeadFusion; discardRatio?: number; startLayer?: number }

export interface Explanation {
  format: "attnflow-explanation";
  version: 1;
  tokens: string[];
  special: number[];
  query: number | "mean" | "readout";
  /** The target's readout weights over rows (query "readout"). */
  readout?: number[];
  target: { label: string; index: number; score: number };
  layers: number;
  heads: number;
  /** Heads of each layer when they differ (pruned models): a layer's heads past its count are padding (the head mean). */
  headsPerLayer?: number[];
  layerNames: string[];
  causal: boolean;
  /** The explained layer (0-based) and head (null = head mean). */
  layer: number;
  head: number | null;
  /** (L, H, T, T) attention probabilities (rows = queries). */
  attention?: number[][][][];
  /** (L, H, T, T) d score / d attention (grad method). */
  attentionGrad?: number[][][][];
  methods: {
    raw?: { importance: number[]; perLayer: number[][]; matrix: number[][] };
    /** perLayer and matrices cover layers options.startLayer .. L-1 (perLayer[k] is layer startLayer + k). */
    rollout?: { importance: number[]; perLayer: number[][]; matrices?: number[][][]; options: Required<RolloutMethodOptions> };
    /** aggregate: how several rows were combined ("row" when there is one; see ExplainRunOptions.flowAggregate). */
    flow?: { importance: number[]; perLayer: number[][]; matrices?: { layer: number; matrix: number[][] }[]; aggregate: "row" | "source" | "rows" };
    grad?: { importance: number[]; perLayer: number[][]; relevance: number[][] };
    blankout?: { importance: number[]; occludedScore: (number | null)[] };
    inputgrad?: { importance: number[]; signed: number[] };
  };
  /** Encoder–decoders (ExplainTarget.decoder): the explained output's decoder self-attention and cross-attention. */
  decoder?: DecoderExplanation;
  /** Present when the input was longer than the model reads and was cut: `tokens` are the kept positions. */
  truncation?: Truncation;
  /** Image models: the picture and its patch grid (grid = [rows, cols], prefix non-patch positions first). */
  image?: { width: number; height: number; channels: number; patch: number; grid: [number, number]; prefix: number; pixels: number[] };
  /** Milliseconds per method (capture included in the first attention method). */
  timings: Record<string, number>;
  meta?: Record<string, unknown>;
}

const r6 = (x: number) => (x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(6)));
const vec = (a: ArrayLike<number>) => Array.from(a, r6);
function mat(a: ArrayLike<number>, rows: number, cols: number, off = 0): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < rows; i++) { const r: number[] = new Array(cols); for (let j = 0; j < cols; j++) r[j] = r6(a[off + i * cols + j]); out.push(r); }
  return out;
}
function stack4(s: AttentionStack): number[][][][] {
  const { layers: L, heads: H, tokens: T } = s, TT = T * T;
  return Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => mat(s.data, T, T, (l * H + h) * TT)));
}

/** 0-based layer with negative indices from the end; a clear error names the number of layers. */
export function resolveExplainLayer(L: number, layer: number | undefined): number {
  const l = layer ?? -1;
  if (!Number.isInteger(l) || l >= L || l < -L) {
    throw new RangeError(`layer ${String(layer)} is out of range: the explained stack has ${L} attention layer${L === 1 ? "" : "s"} (use 0..${L - 1}, or -1 for the last)`);
  }
  return l < 0 ? L + l : l;
}

/** The rollout's options with their defaults; a start layer past the last layer or above the explained one is named. */
function rolloutMethodOptions(opts: ExplainRunOptions, L: number, layer: number): Required<RolloutMethodOptions> {
  const o = opts.rollout ?? {};
  const startLayer = o.startLayer ?? 0;
  if (!Number.isInteger(startLayer) || startLayer < 0 || startLayer >= L) {
    throw new RangeError(`start-layer ${String(o.startLayer)} is out of range: the model has ${L} attention layer${L === 1 ? "" : "s"} (use 0..${L - 1})`);
  }
  if (layer < startLayer) throw new RangeError(`layer ${layer} is below start-layer ${startLayer}: rollout explains layers ${startLayer}..${L - 1}`);
  return { headFusion: o.headFusion ?? opts.headFusion ?? "mean", discardRatio: o.discardRatio ?? opts.discardRatio ?? 0, startLayer };
}

/** The explained rows and their weights (one row, the non-special rows with weight 1, or a readout). */
interface QueryRows { rows: number[]; w: number[] }

/** Σ_k w_k · row rows_k of a (T, T) block at `off`, specials zeroed, normalised to sum 1 (dropSelf: skip j = row). */
function rowImportance(m: ArrayLike<number>, off: number, T: number, q: QueryRows, special: ReadonlySet<number>, dropSelf = false): Float64Array {
  const v = new Float64Array(T);
  q.rows.forEach((r, k) => { const w = q.w[k]; for (let j = 0; j < T; j++) if (!(dropSelf && j === r)) v[j] += w * m[off + r * T + j]; });
  return finish(v, special);
}

function queryRows(target: ExplainTarget, T: number, special: number[], specialSet: ReadonlySet<number>): { query: number | "mean" | "readout"; q: QueryRows } {
  if (target.readout !== undefined) {
    const ro = target.readout;
    if (ro.length !== T) throw new RangeError(`ExplainTarget.readout has ${ro.length} weights but the explained attention has ${T} positions`);
    const rows: number[] = [], w: number[] = [];
    for (let i = 0; i < T; i++) {
      if (!(ro[i] >= 0) || ro[i] === Infinity) throw new RangeError(`ExplainTarget.readout[${i}] is ${ro[i]}; readout weights must be finite and >= 0`);
      if (ro[i] > 0) { rows.push(i); w.push(ro[i]); }
    }
    if (!rows.length) throw new RangeError("ExplainTarget.readout is all zero: nothing to explain");
    return { query: "readout", q: { rows, w } };
  }
  const query = target.query ?? (special.length ? special[0] : "mean");
  if (query !== "mean" && (!Number.isInteger(query) || query < 0 || query >= T)) throw new RangeError(`ExplainTarget.query ${String(query)} is not a position in [0, ${T - 1}]`);
  const rows = query === "mean" ? Array.from({ length: T }, (_, i) => i).filter((i) => !specialSet.has(i)) : [query];
  if (rows.length === 0) throw new RangeError("every position is special: nothing to explain");
  return { query, q: { rows, w: rows.map(() => 1) } };
}

function finish(v: Float64Array, special: ReadonlySet<number>): Float64Array {
  let s = 0;
  for (let j = 0; j < v.length; j++) { if (special.has(j) || !(v[j] > 0)) v[j] = 0; s += v[j]; }
  if (s > 0) for (let j = 0; j < v.length; j++) v[j] /= s;
  return v;
}

function autoFlowMatrices(L: number, T: number, causal: boolean): "all" | "layer" | "none" {
  // cost ~ rows x T max-flows: on real (trained) attention a row at T = 128 takes 40-200 ms, so a T x T matrix is
  // only computed by default where it stays well under a second
  const t = causal ? T * 2 : T;
  return t <= 32 && L * T <= 512 ? "all" : t <= 48 ? "layer" : "none";
}

/** Runs `methods` on the target; `model` names the attention modules for ExplainTarget.layerFilter. */
export async function runExplanation(target: ExplainTarget, model: Module | null, opts: ExplainRunOptions = {}): Promise<Explanation> {
  const methods = opts.methods ?? ["rollout"];
  const progress = opts.onProgress ?? (() => undefined);
  const timings: Record<string, number> = {};
  const withGrad = methods.includes("grad");
  let t0 = performance.now();
  // the attention is captured even for blankout / inputgrad alone: it fixes T, the specials and padding
  // a model on a device (WebGPU): forward/backward enqueued there, the maps, gradients and scores read with await;
  // the methods themselves run on the CPU over those numbers
  const device = modelDevice(model);
  if (device !== "cpu" && target.decoder && methods.some((m) => m === "raw" || m === "rollout" || m === "grad")) {
    throw new Error(`explaining an encoder–decoder's output (its decoder and cross-attention) is not yet supported on ${device}: use a CPU backend`);
  }
  const ta: TargetAttention = device === "cpu" ? targetAttention(target, model, { withGrad }) : await targetAttentionAsync(target, model, { withGrad });
  const { stack } = ta;
  const L = stack.layers, H = stack.heads, T = stack.tokens, TT = T * T;
  const tokens = positionLabels(target, T);
  const special = specialPositions(target, T, ta.padded);
  const specialSet = new Set(special);
  const layer = resolveExplainLayer(L, opts.layer);
  if (opts.head !== undefined && (!Number.isInteger(opts.head) || opts.head < 0 || opts.head >= H)) {
    throw new RangeError(`head ${String(opts.head)} is out of range: the attention layers have ${H} head${H === 1 ? "" : "s"} (use 0..${H - 1})`);
  }
  const { query, q: rows } = queryRows(target, T, special, specialSet);
  const prep = { alpha: opts.alpha, headFusion: opts.headFusion, discardRatio: opts.discardRatio, causal: ta.causal };
  const out: Explanation = {
    format: "attnflow-explanation", version: 1, tokens, special, query,
    target: { label: target.targetLabel, index: target.targetIndex, score: r6(ta.score) },
    layers: L, heads: H, ...(ta.headsPerLayer ? { headsPerLayer: ta.headsPerLayer } : {}), layerNames: ta.names, causal: ta.causal, layer, head: opts.head ?? null, methods: {}, timings,
  };
  if (query === "readout") out.readout = vec(target.readout!);
  if (target.truncation) out.truncation = { ...target.truncation };
  if (opts.matrices ?? true) {
    out.attention = stack4(stack);
    if (ta.grads) out.attentionGrad = stack4(ta.grads);
  }
  if (target.image) out.image = imageOf(target.image, T);
  const lap = (name: string) => { const t = performance.now(); timings[name] = Math.round((t - t0) * 10) / 10; t0 = t; };

  if (methods.includes("raw")) {
    const fused = fuseHeads(stack, "mean");
    const perLayer = Array.from({ length: L }, (_, l) => vec(rowImportance(fused.data, l * TT, T, rows, specialSet)));
    const m = opts.head === undefined ? fused.data.subarray(layer * TT, (layer + 1) * TT) : headMatrix(stack, layer, opts.head);
    out.methods.raw = { importance: vec(rowImportance(m, 0, T, rows, specialSet)), perLayer, matrix: mat(m, T, T) };
    lap("raw");
  }
  if (methods.includes("rollout")) {
    const o = rolloutMethodOptions(opts, L, layer);
    const r = attentionRollout(stack, { ...prep, ...o });
    const n = r.layers;   // L - startLayer
    const perLayer = Array.from({ length: n }, (_, k) => vec(rowImportance(r.data, k * TT, T, rows, specialSet)));
    out.methods.rollout = { importance: perLayer[layer - o.startLayer], perLayer, options: o };
    if (opts.matrices ?? true) out.methods.rollout.matrices = Array.from({ length: n }, (_, k) => mat(r.data, T, T, k * TT));
    lap("rollout");
  }
  if (methods.includes("flow")) {
    out.methods.flow = await flowMethod(stack, prep, rows, layer, specialSet, opts, progress);
    lap("flow");
  }
  if (methods.includes("grad")) {
    if (!ta.grads) throw new Error("internal: gradients were not captured");
    // R_0 = I; R_{l+1} = R_l + Abar_l R_l; perLayer[l] = query rows of R_{l+1}, own entry dropped
    let R = new Float64Array(TT), next = new Float64Array(TT);
    for (let i = 0; i < T; i++) R[i * T + i] = 1;
    const abar = new Float64Array(TT), prod = new Float64Array(TT);
    const perLayer: number[][] = [];
    let relevance: number[][] = [];
    for (let l = 0; l < L; l++) {
      gradWeightedLayer(stack, ta.grads, l, abar);
      matmulSquare(abar, 0, R, 0, prod, 0, T);
      for (let e = 0; e < TT; e++) next[e] = R[e] + prod[e];
      [R, next] = [next, R];
      perLayer.push(vec(rowImportance(R, 0, T, rows, specialSet, true)));
      if (l === layer) relevance = mat(R, T, T);
    }
    out.methods.grad = { importance: perLayer[layer], perLayer, relevance };
    lap("grad");
  }
  if (target.decoder && methods.some((m) => m === "raw" || m === "rollout" || m === "grad")) {
    out.decoder = explainDecoder(target, model, { methods, encoder: { stack, grads: ta.grads }, sourceSpecial: special, matrices: opts.matrices ?? true });
    lap("decoder");
  }
  if (methods.includes("blankout")) {
    const bo = { skip: special, onProgress: (d: number, n: number) => progress("blankout", d, n) };
    const b = device === "cpu" ? blankOut(target, T, bo) : await blankOutAsync(target, T, bo);
    out.methods.blankout = { importance: vec(b.drop), occludedScore: Array.from(b.occluded, (x) => (Number.isNaN(x) ? null : r6(x))) };
    lap("blankout");
  }
  if (methods.includes("inputgrad")) {
    const g = device === "cpu" ? inputGradient(target, T, model) : await inputGradientAsync(target, T, model);
    const imp = g.magnitude.slice();
    for (const s of special) imp[s] = 0;
    out.methods.inputgrad = { importance: vec(imp), signed: vec(g.signed) };
    lap("inputgrad");
  }
  return out;
}

async function flowMethod(stack: AttentionStack, prep: { alpha?: number; headFusion?: HeadFusion; discardRatio?: number; causal: boolean },
  q: QueryRows, layer: number, special: ReadonlySet<number>, opts: ExplainRunOptions,
  progress: (stage: string, done: number, total: number) => void): Promise<NonNullable<Explanation["methods"]["flow"]>> {
  const res = prepareLayers(stack, prep);
  const L = res.layers, T = res.tokens;
  let which = opts.flowMatrices ?? "auto";
  if (which === "auto") which = autoFlowMatrices(L, T, prep.causal);
  const aggregate = q.rows.length === 1 ? "row" : opts.flowAggregate ?? "source";
  if (aggregate !== "row" && aggregate !== "source" && aggregate !== "rows") throw new RangeError(`flowAggregate must be "source" or "rows", got ${JSON.stringify(aggregate)}`);
  // every source needed once: the query rows of each layer output (perLayer) plus whole matrices
  const index = new Map<number, number>();
  const list: FlowSource[] = [];
  const need = (l: number, a: number) => { const k = l * T + a; if (!index.has(k)) { index.set(k, list.length); list.push([l, a]); } };
  const matLayers = which === "all" ? Array.from({ length: L }, (_, l) => l) : which === "layer" ? [layer] : [];
  for (const l of matLayers) for (let a = 0; a < T; a++) need(l + 1, a);
  let weighted = -1;   // index in `list` of the first weighted source (one per layer)
  if (aggregate === "source") {
    const w = new Float64Array(T);
    let s = 0;
    q.rows.forEach((r, k) => { w[r] += q.w[k]; s += q.w[k]; });
    for (let j = 0; j < T; j++) w[j] /= s;
    weighted = list.length;
    for (let l = 0; l < L; l++) list.push([l + 1, w]);
  } else for (let l = 0; l < L; l++) for (const r of q.rows) need(l + 1, r);
  progress("flow", 0, list.length);
  const raw = await (opts.flowRows ?? flowRowsLocal)(res, list, (d, n) => progress("flow", d, n));
  if (raw.length !== list.length * T) throw new Error(`flow solver returned ${raw.length} values, expected ${list.length * T}`);
  progress("flow", list.length, list.length);
  const norm = normaliseRows(raw, T);
  const perLayer = Array.from({ length: L }, (_, l) => {
    if (weighted >= 0) return vec(finish(norm.slice((weighted + l) * T, (weighted + l + 1) * T), special));
    const v = new Float64Array(T);
    q.rows.forEach((r, k) => { const o = index.get((l + 1) * T + r)! * T, w = q.w[k]; for (let j = 0; j < T; j++) v[j] += w * norm[o + j]; });
    return vec(finish(v, special));
  });
  const result: NonNullable<Explanation["methods"]["flow"]> = { importance: perLayer[layer], perLayer, aggregate };
  if ((opts.matrices ?? true) && matLayers.length) {
    result.matrices = matLayers.map((l) => ({ layer: l, matrix: Array.from({ length: T }, (_, a) => vec(norm.subarray(index.get((l + 1) * T + a)! * T, index.get((l + 1) * T + a)! * T + T))) }));
  }
  return result;
}

function imageOf(im: NonNullable<ExplainTarget["image"]>, T: number): NonNullable<Explanation["image"]> {
  const { width: W, height: Hh, pixels, patch, grid, prefix } = im;
  if (!Number.isInteger(W) || !Number.isInteger(Hh) || W < 1 || Hh < 1) throw new RangeError(`ExplainTarget.image: width/height must be positive integers, got ${W}x${Hh}`);
  const channels = pixels.length / (W * Hh);
  if (channels !== 1 && channels !== 3) throw new RangeError(`ExplainTarget.image: ${pixels.length} pixel values do not fit ${W}x${Hh} gray (x1) or RGB (x3)`);
  if (grid[0] * grid[1] + prefix !== T) throw new RangeError(`ExplainTarget.image: grid ${grid[0]}x${grid[1]} plus prefix ${prefix} is not the ${T} attention positions`);
  return { width: W, height: Hh, channels, patch, grid: [grid[0], grid[1]], prefix, pixels: Array.from(pixels, (x) => Math.round(x * 1000) / 1000) };
}
