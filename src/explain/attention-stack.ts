// Recorded attention as plain numbers, and the per-layer preprocessing shared by rollout and flow:
// head fusion, low-weight discarding, causal masking and the residual (identity) mix.
//
// Shapes: an AttentionStack is (L, H, T, T) row-major; row i of a (T, T) matrix is query token i, column j is
// key token j, so A[l, h, i, :] is the distribution token i attends with. A MatrixStack is (L, T, T) in float64.

/** Recorded attention probabilities, layout (L, H, T, T) row-major (rows = queries, columns = keys). */
export interface AttentionStack {
  data: Float32Array | Float64Array;
  layers: number;
  heads: number;
  tokens: number;
}

/** A stack of L square (T, T) float64 matrices, row-major; `shape` is always [layers, tokens, tokens]. */
export interface MatrixStack {
  data: Float64Array;
  layers: number;
  tokens: number;
  shape: [number, number, number];
}

export type HeadFusion = "mean" | "max" | "min";

export function matrixStack(layers: number, tokens: number, data?: Float64Array): MatrixStack {
  const n = layers * tokens * tokens;
  if (data !== undefined && data.length !== n) {
    throw new RangeError(`matrixStack: data has ${data.length} elements, expected L*T*T = ${layers}*${tokens}*${tokens} = ${n}`);
  }
  return { data: data ?? new Float64Array(n), layers, tokens, shape: [layers, tokens, tokens] };
}

function checkCount(v: unknown, what: string, fn: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new RangeError(`${fn}: ${what} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

/**
 * Validates an AttentionStack: positive integer dims, data length L*H*T*T, every value finite and >= 0
 * (attention weights are probabilities; max-flow capacities must be non-negative).
 */
export function checkAttentionStack(att: AttentionStack, fn = "attention"): void {
  const [, H, T] = checkStackDims(att, fn), d = att.data;
  for (let i = 0; i < d.length; i++) {
    const x = d[i];
    if (!(x >= 0) || x === Infinity) {
      const t = i % (T * T), lh = (i - t) / (T * T);
      throw weightError(fn, Math.floor(lh / H), lh % H, Math.floor(t / T), t % T, x);
    }
  }
}

/** The shape part of checkAttentionStack (the weights are not read); returns [L, H, T]. */
function checkStackDims(att: AttentionStack, fn: string): [number, number, number] {
  if (att === null || typeof att !== "object") throw new TypeError(`${fn}: expected an AttentionStack {data, layers, heads, tokens}`);
  const L = checkCount(att.layers, "layers", fn);
  const H = checkCount(att.heads, "heads", fn);
  const T = checkCount(att.tokens, "tokens", fn);
  const d = att.data;
  if (!(d instanceof Float32Array) && !(d instanceof Float64Array)) {
    throw new TypeError(`${fn}: data must be a Float32Array or Float64Array`);
  }
  if (d.length !== L * H * T * T) {
    throw new RangeError(`${fn}: data has ${d.length} elements but (layers, heads, tokens, tokens) = (${L}, ${H}, ${T}, ${T}) needs ${L * H * T * T}`);
  }
  return [L, H, T];
}

function weightError(fn: string, l: number, h: number, i: number, j: number, x: number): RangeError {
  return new RangeError(`${fn}: attention weight at [layer ${l}, head ${h}, query ${i}, key ${j}] is ${x}; weights must be finite and >= 0`);
}

function checkFusion(fusion: unknown, fn: string): void {
  if (fusion !== "mean" && fusion !== "max" && fusion !== "min") {
    throw new RangeError(`${fn}: headFusion must be "mean", "max" or "min", got ${String(fusion)}`);
  }
}

function checkAlpha(alpha: number): void {
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`residual alpha must be in [0, 1], got ${alpha}`);
}

export function checkMatrixStack(m: MatrixStack, fn: string): void {
  const L = checkCount(m.layers, "layers", fn);
  const T = checkCount(m.tokens, "tokens", fn);
  if (!(m.data instanceof Float64Array) || m.data.length !== L * T * T) {
    throw new RangeError(`${fn}: MatrixStack data must be a Float64Array of L*T*T = ${L * T * T} elements`);
  }
}

/** Fuses heads per layer: (L, H, T, T) -> (L, T, T) by mean (default), max or min over h. */
export function fuseHeads(att: AttentionStack, fusion: HeadFusion = "mean"): MatrixStack {
  checkAttentionStack(att, "fuseHeads");
  checkFusion(fusion, "fuseHeads");
  const { layers: L, heads: H, tokens: T } = att;
  const TT = T * T, src = att.data;
  const out = matrixStack(L, T);
  const o = out.data;
  for (let l = 0; l < L; l++) {
    const ob = l * TT;
    for (let h = 0; h < H; h++) {
      const sb = (l * H + h) * TT;
      if (h === 0) { for (let e = 0; e < TT; e++) o[ob + e] = src[sb + e]; continue; }
      if (fusion === "mean") for (let e = 0; e < TT; e++) o[ob + e] += src[sb + e];
      else if (fusion === "max") for (let e = 0; e < TT; e++) { const x = src[sb + e]; if (x > o[ob + e]) o[ob + e] = x; }
      else for (let e = 0; e < TT; e++) { const x = src[sb + e]; if (x < o[ob + e]) o[ob + e] = x; }
    }
    // sum then divide, like numpy's mean over the head axis (same rounding as sum_h A / H)
    if (fusion === "mean" && H > 1) for (let e = 0; e < TT; e++) o[ob + e] /= H;
  }
  return out;
}

/** Copies head h of layer l of the stack into a (T, T) float64 matrix. */
export function headMatrix(att: AttentionStack, layer: number, head: number): Float64Array {
  const { layers: L, heads: H, tokens: T } = att;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new RangeError(`headMatrix: layer ${layer} out of range [0, ${L})`);
  if (!Number.isInteger(head) || head < 0 || head >= H) throw new RangeError(`headMatrix: head ${head} out of range [0, ${H})`);
  const TT = T * T, b = (layer * H + head) * TT;
  const out = new Float64Array(TT);
  for (let e = 0; e < TT; e++) out[e] = att.data[b + e];
  return out;
}

/**
 * Zeroes, in place, the floor(ratio * T*T) smallest weights of each (T, T) layer matrix, choosing only among
 * off-diagonal entries: the diagonal (token to itself, which includes the CLS->CLS entry [0, 0] that
 * jacobgil's vit-explain protects) is never discarded. Ties at the threshold are broken by position
 * (row-major first), so exactly k entries are zeroed. ratio must be in [0, 1).
 */
export function discardLowest(m: MatrixStack, ratio: number): void {
  if (!(ratio >= 0 && ratio < 1)) throw new RangeError(`discardRatio must be in [0, 1), got ${ratio}`);
  const { layers: L, tokens: T } = m;
  const TT = T * T;
  const k = Math.min(Math.floor(ratio * TT), TT - T);
  if (k <= 0) return;
  const idx = new Int32Array(TT - T);
  for (let l = 0; l < L; l++) {
    const base = l * TT, d = m.data;
    let n = 0;
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) if (i !== j) idx[n++] = i * T + j;
    // stable sort of off-diagonal positions by weight; k smallest are zeroed
    const sorted = Array.from(idx).sort((p, q) => (d[base + p] - d[base + q]) || (p - q));
    for (let r = 0; r < k; r++) d[base + sorted[r]] = 0;
  }
}

/**
 * Causal receptive field, in place: zeroes every weight with key j > query i and renormalises each row over
 * the tokens it can see (j <= i). A row whose visible weights sum to 0 becomes the identity row.
 */
export function causalRenormalise(m: MatrixStack): void {
  const { layers: L, tokens: T } = m;
  for (let l = 0; l < L; l++) for (let i = 0; i < T; i++) causalRow(m.data, (l * T + i) * T, i, T);
}

/** causalRenormalise on one row: query i, stored at d[r .. r + T). */
function causalRow(d: Float64Array, r: number, i: number, T: number): void {
  let s = 0;
  for (let j = 0; j <= i; j++) s += d[r + j];
  for (let j = i + 1; j < T; j++) d[r + j] = 0;
  if (s > 0) for (let j = 0; j <= i; j++) d[r + j] /= s;
  else d[r + i] = 1;
}

/**
 * Residual mix, in place: A = alpha*W + (1-alpha)*I, then each row divided by its sum. For alpha = 0.5 this
 * equals (W + I) / rowsum(W + I) for any W (the scale cancels), which is the reference's rule. A row whose
 * sum is 0 (only possible for alpha = 1 with an all-zero row) is left at zero.
 */
export function residualMix(m: MatrixStack, alpha = 0.5): void {
  checkAlpha(alpha);
  const { layers: L, tokens: T } = m;
  for (let l = 0; l < L; l++) for (let i = 0; i < T; i++) residualRow(m.data, (l * T + i) * T, i, T, alpha);
}

/** residualMix on one row: query i, stored at d[r .. r + T). */
function residualRow(d: Float64Array, r: number, i: number, T: number, alpha: number): void {
  const beta = 1 - alpha;
  let s = 0;
  for (let j = 0; j < T; j++) { const x = alpha * d[r + j] + (i === j ? beta : 0); d[r + j] = x; s += x; }
  if (s > 0) for (let j = 0; j < T; j++) d[r + j] /= s;
}

export interface PrepareOptions {
  /** How heads are combined per layer (default "mean"). */
  headFusion?: HeadFusion;
  /** Fraction of the smallest off-diagonal weights zeroed per layer before the residual (default 0). */
  discardRatio?: number;
  /** Add the residual identity (default true). */
  residual?: boolean;
  /** Weight of the attention in the residual mix alpha*W + (1-alpha)*I (default 0.5). */
  alpha?: number;
  /** Decoder mode: mask keys after the query and renormalise rows over visible tokens (default false). */
  causal?: boolean;
}

/**
 * The per-layer matrices rollout and flow work on: fuse heads, optionally discard, optionally apply the causal
 * receptive field, optionally add the residual. Steps in that order; see each helper for its exact rule.
 */
export function prepareLayers(att: AttentionStack, opts: PrepareOptions = {}): MatrixStack {
  const m = fuseHeads(att, opts.headFusion ?? "mean");
  if (opts.discardRatio !== undefined && opts.discardRatio !== 0) discardLowest(m, opts.discardRatio);
  if (opts.causal) causalRenormalise(m);
  if (opts.residual ?? true) residualMix(m, opts.alpha ?? 0.5);
  return m;
}

/**
 * Row i of layer l of prepareLayers(att, opts), computed alone into `out` (T,) from the raw stack: the same steps
 * in the same order per element (so the same numbers), without forming the (L, T, T) stack. Not for discardRatio
 * (its threshold depends on the whole layer). The values read are validated as checkAttentionStack would.
 */
export function preparedRow(att: AttentionStack, l: number, i: number, opts: PrepareOptions, out: Float64Array): void {
  const { heads: H, tokens: T } = att, TT = T * T, src = att.data, fusion = opts.headFusion ?? "mean";
  // heads innermost: each output element is accumulated in a register (h ascending, as fuseHeads does)
  const b0 = l * H * TT + i * T;
  let bad = false;
  for (let j = 0; j < T; j++) {
    let acc = src[b0 + j];
    if (!(acc >= 0 && acc < Infinity)) bad = true;
    let p = b0 + TT + j;
    if (fusion === "mean") {
      for (let h = 1; h < H; h++, p += TT) { const x = src[p]; if (!(x >= 0 && x < Infinity)) bad = true; acc += x; }
    } else if (fusion === "max") {
      for (let h = 1; h < H; h++, p += TT) { const x = src[p]; if (!(x >= 0 && x < Infinity)) bad = true; if (x > acc) acc = x; }
    } else {
      for (let h = 1; h < H; h++, p += TT) { const x = src[p]; if (!(x >= 0 && x < Infinity)) bad = true; if (x < acc) acc = x; }
    }
    out[j] = acc;
  }
  if (bad) {                                      // rare: find the offending weight for the message
    for (let h = 0; h < H; h++) for (let j = 0; j < T; j++) {
      const x = src[b0 + h * TT + j];
      if (!(x >= 0) || x === Infinity) throw weightError("attention", l, h, i, j, x);
    }
  }
  if (fusion === "mean" && H > 1) for (let j = 0; j < T; j++) out[j] /= H;
  if (opts.causal) causalRow(out, 0, i, T);
  if (opts.residual ?? true) residualRow(out, 0, i, T, opts.alpha ?? 0.5);
}

/** Validates the shape of an AttentionStack and the options prepareLayers takes, without reading the weights. */
export function checkStackShape(att: AttentionStack, opts: PrepareOptions, fn: string): void {
  checkStackDims(att, fn);
  checkFusion(opts.headFusion ?? "mean", fn);
  checkAlpha(opts.alpha ?? 0.5);
}

/** Wraps one (T, T) matrix or an (L, T, T) stack of per-layer matrices as a one-head AttentionStack. */
export function layersAsStack(data: Float32Array | Float64Array, layers: number, tokens: number): AttentionStack {
  return { data, layers, heads: 1, tokens };
}
