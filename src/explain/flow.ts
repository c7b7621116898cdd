// Attention flow (Abnar & Zuidema 2020): the share of input token b in output token a of layer l is the max-flow
// value from node (l, a) to input node (0, b) in the layered attention graph, normalised over b.
//
// Graph (reference get_adjmat): (L+1)*T nodes, node n = k*T + i (layer k, token i; layer 0 = inputs); edge
// (k*T + a) -> ((k-1)*T + b) with capacity res[k-1][a, b], where res = prepareLayers(att): heads averaged, then
// (avg + I) / rowsum (residual alpha = 0.5; residual: false uses avg as is).
// Reference output (compute_flows): flow[l*T + a, (l-1)*T + b] = maxflow(l*T + a -> b), each row then divided by
// its sum over b. A row that carries no flow at all (only possible with all-zero attention and no residual)
// stays zero instead of the reference's 0/0.

import { type AttentionStack, type MatrixStack, type PrepareOptions, checkMatrixStack, matrixStack, prepareLayers } from "./attention-stack.js";
import { LayeredMaxFlow, type MaxFlowStrategy } from "./maxflow.js";

/** Per-layer preparation plus the max-flow strategy (see LayeredMaxFlow; default "auto"). */
export interface FlowPrepareOptions extends PrepareOptions {
  strategy?: MaxFlowStrategy;
}

export interface FlowOptions extends FlowPrepareOptions {
  /** Output layer the flow starts from, 1..L (layer k = output of attention layer k-1); default L. */
  layer?: number;
  /** Tokens of that layer to compute flow from (default all 0..T-1). */
  fromTokens?: number[];
}

export interface FlowResult {
  /** (nFrom, T): row r = flow from token fromTokens[r] of `layer` to every input token, normalised to sum 1. */
  flows: Float64Array;
  /** (nFrom, T): the max-flow values before normalisation. */
  raw: Float64Array;
  fromTokens: number[];
  layer: number;
  tokens: number;
  shape: [number, number];
}

/** The full reference layout: ((L+1)T, (L+1)T) matrix, row-major. */
export interface FlowMatrix {
  data: Float64Array;
  size: number;
  layers: number;
  tokens: number;
  shape: [number, number];
}

export function resolveFromTokens(T: number, fromTokens: number[] | undefined, fn: string): number[] {
  if (fromTokens === undefined) return Array.from({ length: T }, (_, i) => i);
  if (!Array.isArray(fromTokens)) throw new TypeError(`${fn}: fromTokens must be an array of token indices`);
  for (const t of fromTokens) {
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new RangeError(`${fn}: fromTokens entry ${String(t)} is not a token index in [0, ${T - 1}]`);
  }
  return fromTokens.slice();
}

export function resolveLayer(L: number, layer: number | undefined, fn: string): number {
  const l = layer ?? L;
  if (!Number.isInteger(l) || l < 1 || l > L) throw new RangeError(`${fn}: layer must be an integer in [1, ${L}] (layer k = output of attention layer k-1), got ${String(layer)}`);
  return l;
}

/** Divides each length-T row of `raw` by its sum into `out` (rows summing to 0 stay 0). */
export function normaliseRows(raw: Float64Array, T: number, out: Float64Array = new Float64Array(raw.length)): Float64Array {
  for (let r = 0; r < raw.length; r += T) {
    let s = 0;
    for (let j = 0; j < T; j++) s += raw[r + j];
    for (let j = 0; j < T; j++) out[r + j] = s > 0 ? raw[r + j] / s : 0;
  }
  return out;
}

/**
 * Raw max-flow values from tokens `fromTokens` of `layer` to every input token, on prepared per-layer capacity
 * matrices `res` (L, T, T). Returns (nFrom, T). `solver` may be passed to reuse its buffers.
 */
export function flowRaw(res: MatrixStack, layer: number, fromTokens: number[], solver?: LayeredMaxFlow): Float64Array {
  checkMatrixStack(res, "flowRaw");
  const T = res.tokens;
  const l = resolveLayer(res.layers, layer, "flowRaw");
  const from = resolveFromTokens(T, fromTokens, "flowRaw");
  const s = solver ?? new LayeredMaxFlow(res);
  const raw = new Float64Array(from.length * T);
  for (let r = 0; r < from.length; r++) s.flowsFrom(l, from[r], raw.subarray(r * T, (r + 1) * T));
  return raw;
}

/**
 * Attention flow from some output tokens of one layer to all input tokens.
 * Options: layer (1..L, default L), fromTokens (default all), residual (default true), alpha (0.5), headFusion
 * ("mean"), discardRatio, causal — the same per-layer preparation as attentionRollout.
 * Returns flows (nFrom, T) normalised per row and raw max-flow values (nFrom, T).
 */
export function attentionFlow(att: AttentionStack, opts: FlowOptions = {}): FlowResult {
  const res = prepareLayers(att, opts);
  const T = res.tokens;
  const layer = resolveLayer(res.layers, opts.layer, "attentionFlow");
  const fromTokens = resolveFromTokens(T, opts.fromTokens, "attentionFlow");
  const raw = flowRaw(res, layer, fromTokens, new LayeredMaxFlow(res, opts.strategy));
  return { flows: normaliseRows(raw, T), raw, fromTokens, layer, tokens: T, shape: [fromTokens.length, T] };
}

/**
 * A flow source: [layer (1..L), token] is node (layer, token), as in A&Z; [layer (0..L), weights (T)] is a weighted
 * source, a virtual node with an edge of capacity weights[i] into token i of `layer` (LayeredMaxFlow.setSourceWeights).
 */
export type FlowSource = readonly [number, number | ArrayLike<number>];

/** Checks a weighted source's layer (0..L) and weights (T finite values >= 0, not all 0). */
export function checkFlowWeights(L: number, T: number, layer: number, weights: ArrayLike<number>, fn: string): void {
  if (!Number.isInteger(layer) || layer < 0 || layer > L) throw new RangeError(`${fn}: weighted source layer must be an integer in [0, ${L}], got ${String(layer)}`);
  if (weights.length !== T) throw new RangeError(`${fn}: a weighted source needs ${T} weights (one per token), got ${weights.length}`);
  let s = 0;
  for (let j = 0; j < T; j++) {
    const w = weights[j];
    if (!(w >= 0) || w === Infinity) throw new RangeError(`${fn}: weight [${j}] is ${String(w)}; weights must be finite and >= 0`);
    s += w;
  }
  if (!(s > 0)) throw new RangeError(`${fn}: the weights are all 0: nothing flows`);
}

export interface FlowOfWeightsOptions extends FlowPrepareOptions {
  /** Layer whose tokens the weights spread over: 1..L (output of attention layer k-1), default L; 0 = the inputs. */
  layer?: number;
  /** Weight per token of that layer (default uniform 1/T: the mean of all rows). Scaled to sum 1. */
  weights?: ArrayLike<number>;
}

export interface FlowOfWeightsResult {
  /** (T): flow to every input token, normalised to sum 1. */
  flows: Float64Array;
  /** (T): the max-flow values before normalisation (<= 1: the weights are scaled to sum 1). */
  raw: Float64Array;
  layer: number;
  tokens: number;
}

/**
 * Attention flow of a weighted set of output rows as ONE flow: a virtual source feeds token i of `layer` with
 * capacity weights[i] (scaled to sum 1), and the flow to input b is the max-flow from it to b (then normalised).
 * T max-flows in all, where the mean of A&Z's per-row flows (attentionFlow over the rows, averaged) takes T per row.
 * It is not that mean: rows share the graph's capacities here (the result is the flow the mean row can push), while
 * A&Z give each row the whole graph. For one row with weight 1 it is A&Z's flow of that row whenever the row's
 * out-capacity is at most 1 (always with the default preparation: rows sum to 1).
 */
export function attentionFlowOfWeights(att: AttentionStack, opts: FlowOfWeightsOptions = {}): FlowOfWeightsResult {
  const res = prepareLayers(att, opts);
  const L = res.layers, T = res.tokens, layer = opts.layer ?? L;
  const w = opts.weights ?? new Float64Array(T).fill(1);
  checkFlowWeights(L, T, layer, w, "attentionFlowOfWeights");
  const raw = flowRawWeighted(res, layer, w, new LayeredMaxFlow(res, opts.strategy));
  return { flows: normaliseRows(raw, T), raw, layer, tokens: T };
}

/** Raw max-flow values from a weighted source over `layer`'s tokens (weights scaled to sum 1) to every input: (T). */
export function flowRawWeighted(res: MatrixStack, layer: number, weights: ArrayLike<number>, solver?: LayeredMaxFlow): Float64Array {
  checkMatrixStack(res, "flowRawWeighted");
  checkFlowWeights(res.layers, res.tokens, layer, weights, "flowRawWeighted");
  let s = 0;
  for (let j = 0; j < weights.length; j++) s += weights[j];
  const w = Float64Array.from(weights, (x) => x / s);
  return (solver ?? new LayeredMaxFlow(res)).flowsFromWeights(layer, w);
}

/** Scatters per-layer (T, T) blocks into the reference ((L+1)T)^2 layout: block l-1 at rows l*T.., cols (l-1)*T... */
export function blocksToFlowMatrix(perLayer: MatrixStack): FlowMatrix {
  const L = perLayer.layers, T = perLayer.tokens, N = (L + 1) * T;
  const out = new Float64Array(N * N);
  for (let l = 1; l <= L; l++) {
    for (let a = 0; a < T; a++) {
      const src = ((l - 1) * T + a) * T, dst = (l * T + a) * N + (l - 1) * T;
      for (let b = 0; b < T; b++) out[dst + b] = perLayer.data[src + b];
    }
  }
  return { data: out, size: N, layers: L, tokens: T, shape: [N, N] };
}

/**
 * Normalised flow of every layer as blocks, (L, T, T): out[l-1][a, b] = flow from token a of layer l to input b
 * (the notebook's convert_adjmat_tomats of the flow matrix). Options as attentionFlow (layer/fromTokens ignored).
 */
export function flowPerLayer(att: AttentionStack, opts: FlowPrepareOptions = {}): MatrixStack {
  const res = prepareLayers(att, opts);
  return flowPerLayerOfLayers(res, opts.strategy);
}

/** flowPerLayer on prepared capacity matrices. */
export function flowPerLayerOfLayers(res: MatrixStack, strategy: MaxFlowStrategy = "auto"): MatrixStack {
  checkMatrixStack(res, "flowPerLayer");
  const L = res.layers, T = res.tokens, TT = T * T;
  const out = matrixStack(L, T);
  const solver = new LayeredMaxFlow(res, strategy);
  const all = Array.from({ length: T }, (_, i) => i);
  for (let l = 1; l <= L; l++) {
    const raw = flowRaw(res, l, all, solver);
    normaliseRows(raw, T, out.data.subarray((l - 1) * TT, l * TT));
  }
  return out;
}

/**
 * The reference compute_flows matrix, ((L+1)T, (L+1)T): row l*T + a (l >= 1) holds the normalised flow from node
 * (l, a) to input b at column (l-1)*T + b; rows 0..T-1 and all other entries are 0.
 */
export function attentionFlowMatrix(att: AttentionStack, opts: FlowPrepareOptions = {}): FlowMatrix {
  return blocksToFlowMatrix(flowPerLayer(att, opts));
}

/** The reference get_adjmat: ((L+1)T)^2, adjacency[l*T + a, (l-1)*T + b] = res[l-1][a, b]. */
export function flowAdjacency(att: AttentionStack, opts: PrepareOptions = {}): FlowMatrix {
  return blocksToFlowMatrix(prepareLayers(att, opts));
}
