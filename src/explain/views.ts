// What the viewer draws (src/viz/attention-viewer.ts): every attention module a model runs for one explained output,
// grouped into stacks (encoder self-, decoder self-, cross-attention), each with token labels on both sides, plus the
// neuron view's queries and keys and the flow graph. Packed for the page and for a single-file report: per query row
// the top-k keys (every key when there are at most `exactUpTo`), a pooled thumbnail per head, q/k as float32 —
// so 2,048+ positions stay a few MB. Capture-based: captureAttention(…, { withQK }) records q and k from the modules
// themselves (no patched model). Browser-safe.
import { captureAttention, type AttentionRecord } from "./capture.js";
import { base64 } from "../viz/html-report.js";
import { matrixStack, prepareLayers, type AttentionStack } from "./attention-stack.js";
import { flowRaw, flowRawWeighted, normaliseRows } from "./flow.js";
import { noGrad } from "../autograd.js";
import type { ExplainTarget } from "../tasks/task.js";
import type { Module } from "../nn/module.js";
import type { Explanation } from "./explain-run.js";

/** One stack of attention modules of the same kind and place (e.g. "decoder.layers.*.multihead_attn"). */
export interface ViewGroup {
  /** Shown name: "encoder self-attention", "decoder self-attention (causal)", "cross-attention (decoder → encoder)". */
  title: string;
  kind: "self" | "cross";
  causal: boolean;
  layerNames: string[];
  layers: number;
  heads: number;
  /** Query (row) and key (column) labels. */
  rowTokens: string[];
  colTokens: string[];
  /** Keys kept per query row (= colTokens.length when exact). */
  k: number;
  exact: boolean;
  /** (L, H, Tq, k) key indices (little-endian uint16, or uint32 when Tk > 65535), base64, by falling weight. */
  topIdx: string;
  idxBytes: 2 | 4;
  /** (L, H, Tq, k) weights as uint16 (weight · 65535), base64. */
  topVal: string;
  /** Smallest share of a row's attention the kept keys hold, per (layer, head) (1 when exact). */
  coverage: number[][];
  /** Thumbnails: (L, H, r, c) uint8 of the max over each cell's block, scaled to the head's largest weight. */
  thumb: { rows: number; cols: number; data: string; max: number[][] };
  /** Neuron view: float32 (L, H, Tq, D) queries and (L, H, Tk, D) keys, base64, with the score scale. */
  qk?: { dim: number; scale: number; q: string; k: string; bias?: string };
  /** Why the neuron view is missing (module records no q/k, or too large to embed). */
  qkNote?: string;
}

export interface FlowGraph {
  tokens: string[];
  layers: number;
  /** (L+1, T): attention flow (A&Z, max-flow, residual 0.5, heads averaged) from the explained output to each node. */
  nodes: number[][];
  /** [layer l (0 = inputs), from token i at l+1, to token j at l, width]: node(l+1, i) · Â_l[i, j], top edges only. */
  edges: [number, number, number, number][];
  /** What the output node is: "[CLS]", "readout of output position 3", … */
  source: string;
  note?: string;
}

export interface AttentionViews {
  format: "attnflow-views";
  groups: ViewGroup[];
  /** Which group the explanation's methods (rollout, flow, …) are computed on. */
  explained: number;
  flow?: FlowGraph;
  /** The model's maximum input positions when known. */
  maxPositions?: number;
  truncation?: Explanation["truncation"];
  notes: string[];
}

export interface ViewOptions {
  /** Keys kept per row for long inputs (default 16). */
  topK?: number;
  /** Rows of at most this many keys are kept whole (default 64). */
  exactUpTo?: number;
  /** Thumbnail side in cells (default 64). */
  thumb?: number;
  /** Largest number of q/k floats embedded for the neuron view (default 2,000,000). */
  maxQKValues?: number;
  /** Labels of the decoder positions (encoder–decoders): ExplainTarget.decoderTokens. */
  decoderTokens?: string[];
  maxPositions?: number;
}

/** Captures every attention module while the target's score runs (q and k included) and packs it for the viewer. */
export function captureViews(target: ExplainTarget, model: Module | null, o: ViewOptions = {}): AttentionViews {
  const { records } = noGrad(() => captureAttention(model, () => target.score(), { mode: "full", withQK: true }));
  try {
    return viewsFromRecords(records, target, { ...o, decoderTokens: o.decoderTokens ?? target.decoderTokens ?? target.decoder?.tokens });
  } finally {
    for (const r of records) { r.weights.dispose(); r.queries?.dispose(); r.keys?.dispose(); }
  }
}

/** captureViews for a model on a device (WebGPU): the recorded maps, queries and keys are read back with await. */
export async function captureViewsAsync(target: ExplainTarget, model: Module | null, o: ViewOptions = {}): Promise<AttentionViews> {
  const { records } = noGrad(() => captureAttention(model, () => target.score(), { mode: "full", withQK: true }));
  const host: AttentionRecord[] = [];
  try {
    for (const r of records) {
      const h: AttentionRecord = { ...r, weights: await r.weights.cpu() };
      if (r.queries) h.queries = await r.queries.cpu();
      if (r.keys) h.keys = await r.keys.cpu();
      if (r.slotWeights) h.slotWeights = await r.slotWeights.cpu();
      if (r.keyPaddingMask && r.keyPaddingMask.device !== "cpu") h.keyPaddingMask = await r.keyPaddingMask.cpu();
      host.push(h);
    }
    return viewsFromRecords(host, target, { ...o, decoderTokens: o.decoderTokens ?? target.decoderTokens ?? target.decoder?.tokens });
  } finally {
    for (const r of records) { r.weights.dispose(); r.queries?.dispose(); r.keys?.dispose(); }
  }
}

/** explanationViews for a model on a device (captureViewsAsync; the method stacks come from the explanation). */
export async function explanationViewsAsync(e: Explanation, target: ExplainTarget, model: Module | null, o: ViewOptions = {}): Promise<AttentionViews> {
  const v = await captureViewsAsync(target, model, o);
  addMethodStacks(v, e, o);
  const fg = e.methods.flow ? flowGraph(e) : undefined;
  if (fg) v.flow = fg;
  else if (e.methods.flow) v.notes.push(`no flow graph: it is drawn for at most 256 positions and needs the attention matrices (${e.tokens.length} positions here)`);
  return v;
}

function groupKey(r: AttentionRecord): string { return `${r.kind}:${r.name.replace(/\.\d+(\.|$)/, ".*$1")}`; }

function groupTitle(key: string, kind: "self" | "cross", causal: boolean): string {
  const place = /(^|[:.])encoder\b/.test(key) ? "encoder " : /(^|[:.])decoder\b/.test(key) ? "decoder " : "";
  if (kind === "cross") return "cross-attention (decoder → encoder)";
  return `${place}self-attention${causal ? " (causal)" : ""}`;
}

export function viewsFromRecords(records: AttentionRecord[], target: ExplainTarget, o: ViewOptions = {}): AttentionViews {
  const byKey = new Map<string, AttentionRecord[]>();
  for (const r of records) {
    if (r.headMean) continue;
    const k = groupKey(r);
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k)!.push(r);
  }
  const notes: string[] = [];
  const groups: ViewGroup[] = [];
  let explained = 0;
  for (const [key, recs] of byKey) {
    const w0 = recs[0].weights;
    if (w0.shape[0] !== 1) { notes.push(`${key}: batch of ${w0.shape[0]}, only the first input is shown`); }
    const [, H, Tq, Tk] = w0.shape;
    if (recs.some((r) => r.weights.shape[1] !== H || r.weights.shape[2] !== Tq || r.weights.shape[3] !== Tk)) {
      notes.push(`${key}: layers differ in shape; left out`); continue;
    }
    const L = recs.length, causal = recs.some((r) => r.causal);
    const data = new Float32Array(L * H * Tq * Tk);
    recs.forEach((r, l) => data.set((r.weights.dataSync() as Float32Array).subarray(0, H * Tq * Tk), l * H * Tq * Tk));
    const label = (n: number, side: "enc" | "dec") => {
      if (side === "enc" && n === target.tokens.length) return target.tokens;
      if (o.decoderTokens && n === o.decoderTokens.length) return o.decoderTokens;
      if (n === target.tokens.length) return target.tokens;
      return Array.from({ length: n }, (_, i) => `${side === "dec" ? "d" : "#"}${i}`);
    };
    const isDecoder = /(^|[:.])decoder\b/.test(key);
    const rowTokens = label(Tq, isDecoder ? "dec" : "enc"), colTokens = label(Tk, isDecoder && recs[0].kind === "self" ? "dec" : "enc");
    const g = packGroup(data, L, H, Tq, Tk, o, {
      title: groupTitle(key, recs[0].kind, causal), kind: recs[0].kind, causal, layerNames: recs.map((r) => r.name), rowTokens, colTokens,
    });
    const D = recs[0].queries?.shape[3];
    if (recs.every((r) => r.queries && r.keys) && D) {
      const n = L * H * (Tq + Tk) * D;
      if (n > (o.maxQKValues ?? 2_000_000)) g.qkNote = `queries and keys not embedded: ${n} values (L ${L} × H ${H} × (Tq ${Tq} + Tk ${Tk}) × D ${D}) is over the limit`;
      else {
        const q = new Float32Array(L * H * Tq * D), k = new Float32Array(L * H * Tk * D);
        recs.forEach((r, l) => {
          q.set((r.queries!.contiguous().dataSync() as Float32Array).subarray(0, H * Tq * D), l * H * Tq * D);
          k.set((r.keys!.contiguous().dataSync() as Float32Array).subarray(0, H * Tk * D), l * H * Tk * D);
        });
        g.qk = { dim: D, scale: recs[0].scale ?? 1, q: f32(q), k: f32(k) };
        const bias = recs.find((r) => r.scoreBias)?.scoreBias;
        if (bias) g.qk.bias = bias;
      }
    } else g.qkNote = "this attention module does not record its queries and keys";
    if (target.layerFilter ? recs.every((r) => target.layerFilter!(r.name)) && g.kind === "self" : groups.length === 0) explained = groups.length;
    groups.push(g);
  }
  const v: AttentionViews = { format: "attnflow-views", groups, explained, notes };
  if (o.maxPositions) v.maxPositions = o.maxPositions;
  if (target.truncation) v.truncation = { ...target.truncation };
  return v;
}

function f32(a: Float32Array): string { return base64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)); }

/** Packs (L, H, Tq, Tk) attention: top-k per row, coverage, thumbnails. */
export function packGroup(data: Float32Array | Float64Array, L: number, H: number, Tq: number, Tk: number, o: ViewOptions,
  meta: Pick<ViewGroup, "title" | "kind" | "causal" | "layerNames" | "rowTokens" | "colTokens">): ViewGroup {
  if (data.length !== L * H * Tq * Tk) throw new RangeError(`packGroup: ${data.length} weights do not fit (L ${L}, H ${H}, Tq ${Tq}, Tk ${Tk})`);
  if (meta.rowTokens.length !== Tq || meta.colTokens.length !== Tk) throw new RangeError(`packGroup: ${meta.rowTokens.length}×${meta.colTokens.length} labels for a ${Tq}×${Tk} attention`);
  const exact = Tk <= (o.exactUpTo ?? 64);
  const k = exact ? Tk : Math.min(Tk, o.topK ?? 16);
  const idxBytes: 2 | 4 = Tk > 65535 ? 4 : 2;
  const idx = idxBytes === 2 ? new Uint16Array(L * H * Tq * k) : new Uint32Array(L * H * Tq * k);
  const val = new Uint16Array(L * H * Tq * k);
  const coverage: number[][] = [];
  const order = new Int32Array(Tk);
  const side = o.thumb ?? 64, tr = Math.min(side, Tq), tc = Math.min(side, Tk);
  const thumb = new Uint8Array(L * H * tr * tc), tmax: number[][] = [];
  const cell = new Float32Array(tr * tc);
  for (let l = 0; l < L; l++) {
    coverage.push([]); tmax.push([]);
    for (let h = 0; h < H; h++) {
      const base = (l * H + h) * Tq * Tk;
      let minCov = 1, mx = 0;
      cell.fill(0);
      for (let i = 0; i < Tq; i++) {
        const r = base + i * Tk, ci = Math.floor(i * tr / Tq) * tc;
        for (let j = 0; j < Tk; j++) {
          const x = data[r + j];
          if (x > mx) mx = x;
          const c = ci + Math.floor(j * tc / Tk);
          if (x > cell[c]) cell[c] = x;
        }
        let keep: ArrayLike<number>;
        if (exact) keep = Array.from({ length: Tk }, (_, j) => j).sort((a, b) => data[r + b] - data[r + a]);
        else {
          for (let j = 0; j < Tk; j++) order[j] = j;
          keep = topK(data, r, order, k);
        }
        let sum = 0, kept = 0;
        for (let j = 0; j < Tk; j++) sum += data[r + j];
        const o2 = ((l * H + h) * Tq + i) * k;
        for (let t = 0; t < k; t++) {
          const j = keep[t], x = data[r + j];
          idx[o2 + t] = j; val[o2 + t] = Math.round(Math.max(0, Math.min(1, x)) * 65535); kept += x;
        }
        if (sum > 0) minCov = Math.min(minCov, kept / sum);
      }
      coverage[l].push(exact ? 1 : Number(minCov.toFixed(4)));
      tmax[l].push(mx);
      const t0 = (l * H + h) * tr * tc;
      for (let c = 0; c < tr * tc; c++) thumb[t0 + c] = mx > 0 ? Math.round(255 * cell[c] / mx) : 0;
    }
  }
  return {
    ...meta, layers: L, heads: H, k, exact, idxBytes,
    topIdx: base64(new Uint8Array(idx.buffer)), topVal: base64(new Uint8Array(val.buffer)), coverage,
    thumb: { rows: tr, cols: tc, data: base64(thumb), max: tmax },
  };
}

/** Indices of the k largest data[r + j] (falling), by partial selection over `order` (scratch of length Tk). */
function topK(data: ArrayLike<number>, r: number, order: Int32Array, k: number): Int32Array {
  const n = order.length;
  // quickselect so that order[0..k) holds the k largest, then sort those
  let lo = 0, hi = n - 1;
  while (lo < hi) {
    const pivot = data[r + order[(lo + hi) >> 1]];
    let a = lo, b = hi;
    while (a <= b) {
      while (data[r + order[a]] > pivot) a++;
      while (data[r + order[b]] < pivot) b--;
      if (a <= b) { const t = order[a]; order[a] = order[b]; order[b] = t; a++; b--; }
    }
    if (k - 1 <= b) hi = b; else if (k - 1 >= a) lo = a; else break;
  }
  return order.slice(0, k).sort((x, y) => data[r + y] - data[r + x]);
}

/** Views of a bare attention stack (no model): for tests, benchmarks and callers with their own attention. */
export function viewsFromStack(att: AttentionStack, tokens: string[], o: ViewOptions & { causal?: boolean; title?: string } = {}): AttentionViews {
  const g = packGroup(att.data instanceof Float32Array ? att.data : Float32Array.from(att.data), att.layers, att.heads, att.tokens, att.tokens, o, {
    title: o.title ?? `self-attention${o.causal ? " (causal)" : ""}`, kind: "self", causal: !!o.causal,
    layerNames: Array.from({ length: att.layers }, (_, l) => `layers.${l}`), rowTokens: tokens, colTokens: tokens,
  });
  g.qkNote = "no queries and keys: this attention was given as weights only";
  const v: AttentionViews = { format: "attnflow-views", groups: [g], explained: 0, notes: [] };
  if (o.maxPositions) v.maxPositions = o.maxPositions;
  return v;
}

/**
 * The flow graph of an explanation: node (l, j) = attention flow (exact max-flow on the residual, head-averaged graph
 * of Abnar & Zuidema) from the explained output — its query row, or the readout / mean of rows (one weighted source, as
 * the explanation computes it by default; with flowAggregate "rows", each row's flow weighted) — down to
 * token j at layer l (l = 0: the inputs), each row normalised then weighted, as the explanation's flow importance
 * (so column 0 is that importance before special positions are dropped); edges split each node's value along its attention
 * Â_l = 0.5·A_l + 0.5·I. Needs the explanation's attention (matrices on). `maxRows` bounds the max-flow work.
 */
export function flowGraph(e: Explanation, o: { edgesPerNode?: number; maxRows?: number; maxTokens?: number } = {}): FlowGraph | undefined {
  if (!e.attention) return undefined;
  const L = e.layers, H = e.heads, T = e.tokens.length, TT = T * T;
  if (T > (o.maxTokens ?? 256)) return undefined;
  const data = new Float64Array(L * H * TT);
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) data.set(e.attention[l][h][i], ((l * H + h) * T + i) * T);
  const res = prepareLayers({ data, layers: L, heads: H, tokens: T }, { causal: e.causal });
  // explained rows and weights
  let rows: number[], w: number[], source: string;
  if (e.query === "readout") { rows = []; w = []; e.readout!.forEach((x, i) => { if (x > 0) { rows.push(i); w.push(x); } }); source = "the readout (output position's cross-attention over these rows)"; }
  else if (e.query === "mean") { rows = e.tokens.map((_, i) => i).filter((i) => !e.special.includes(i)); w = rows.map(() => 1); source = "the mean of all non-special rows"; }
  else { rows = [e.query]; w = [1]; source = `${e.tokens[e.query]} (position ${e.query})`; }
  let note: string | undefined;
  const maxRows = o.maxRows ?? 16;
  // the explanation's default for several rows: one weighted source feeding each row (explain-run's flowAggregate "source")
  const weightedSource = rows.length > 1 && e.methods.flow?.aggregate === "source";
  if (weightedSource) {
    const wFull = new Float64Array(T);
    rows.forEach((r, k) => { wFull[r] += w[k]; });
    // column L: the source's weights (finishFlowGraph normalises every column)
    const nodesW: number[][] = Array.from({ length: L + 1 }, (_, l) => (l === L ? Array.from(wFull) : new Array(T).fill(0)));
    for (let l = 0; l < L; l++) {
      const sub = matrixStack(L - l, T, res.data.slice(l * TT));
      const norm = normaliseRows(flowRawWeighted(sub, L - l, wFull), T);
      for (let j = 0; j < T; j++) nodesW[l][j] = norm[j];
    }
    return finishFlowGraph(e, res.data, nodesW, L, T, TT, o.edgesPerNode ?? 6, `${source}, as one weighted source`, undefined);
  }
  if (rows.length > maxRows) {
    const keep = rows.map((r, k) => [r, w[k]] as const).sort((a, b) => b[1] - a[1]).slice(0, maxRows);
    const total = w.reduce((s, x) => s + x, 0), kept = keep.reduce((s, x) => s + x[1], 0);
    note = `flow from the ${maxRows} heaviest of ${rows.length} explained rows (${(100 * kept / total).toFixed(0)} % of their weight)`;
    rows = keep.map((x) => x[0]); w = keep.map((x) => x[1]);
  }
  const nodes: number[][] = Array.from({ length: L + 1 }, () => new Array(T).fill(0));
  rows.forEach((r, k) => { nodes[L][r] += w[k]; });
  for (let l = 0; l < L; l++) {
    // layers l..L-1 of the prepared stack: its inputs are the nodes of column l
    const sub = matrixStack(L - l, T, res.data.slice(l * TT));
    // each row's flow normalised, then weighted: the same convention as the explanation's flow importance
    const norm = normaliseRows(flowRaw(sub, L - l, rows), T);
    rows.forEach((_, k) => { for (let j = 0; j < T; j++) nodes[l][j] += w[k] * norm[k * T + j]; });
  }
  return finishFlowGraph(e, res.data, nodes, L, T, TT, o.edgesPerNode ?? 6, source, note);
}

/** Columns normalised to sum 1, and each node's value split along its attention row (top `per` edges). */
function finishFlowGraph(e: Explanation, data: Float64Array, nodes: number[][], L: number, T: number, TT: number, per: number,
  source: string, note: string | undefined): FlowGraph {
  const res = { data };
  for (const col of nodes) { const s = col.reduce((a, b) => a + b, 0); if (s > 0) for (let j = 0; j < T; j++) col[j] = Number((col[j] / s).toPrecision(5)); }
  const edges: [number, number, number, number][] = [];
  for (let l = 0; l < L; l++) for (let i = 0; i < T; i++) {
    const v = nodes[l + 1][i];
    if (v < 1e-4) continue;
    const row = Array.from(res.data.subarray(l * TT + i * T, l * TT + i * T + T));
    const js = row.map((x, j) => [j, x] as const).sort((a, b) => b[1] - a[1]).slice(0, per);
    for (const [j, x] of js) if (v * x >= 1e-4) edges.push([l, i, j, Number((v * x).toPrecision(4))]);
  }
  const g: FlowGraph = { tokens: e.tokens, layers: L, nodes, edges, source };
  if (note) g.note = note;
  return g;
}

/**
 * Everything the viewer shows for one explanation: the captured stacks (with q/k), the explanation's rollout and
 * flow matrices as extra one-head stacks (so they get the labelled heatmap too), and the flow graph.
 */
export function explanationViews(e: Explanation, target: ExplainTarget, model: Module | null, o: ViewOptions = {}): AttentionViews {
  const v = captureViews(target, model, o);
  addMethodStacks(v, e, o);
  const fg = e.methods.flow ? flowGraph(e) : undefined;
  if (fg) v.flow = fg;
  else if (e.methods.flow) v.notes.push(`no flow graph: it is drawn for at most 256 positions and needs the attention matrices (${e.tokens.length} positions here)`);
  return v;
}

/** Rollout and flow matrices of an explanation as one-head stacks ("attention rollout", "attention flow"). */
export function addMethodStacks(v: AttentionViews, e: Explanation, o: ViewOptions = {}): void {
  const T = e.tokens.length;
  const add = (title: string, mats: number[][][], names: string[]) => {
    const data = new Float32Array(mats.length * T * T);
    mats.forEach((m, l) => m.forEach((r, i) => data.set(r, (l * T + i) * T)));
    const g = packGroup(data, mats.length, 1, T, T, o, { title, kind: "self", causal: e.causal, layerNames: names, rowTokens: e.tokens, colTokens: e.tokens });
    g.qkNote = `${title} is computed from the attention weights: it has no queries and keys`;
    v.groups.push(g);
  };
  const ro = e.methods.rollout?.matrices, s0 = e.methods.rollout?.options.startLayer ?? 0;
  if (ro?.length) add("attention rollout (rows: outputs of a layer, columns: inputs)", ro, ro.map((_, k) => `rollout to layer ${k + s0}`));
  const fm = e.methods.flow?.matrices;
  if (fm?.length) add("attention flow (rows: outputs of a layer, columns: inputs)", fm.map((f) => f.matrix), fm.map((f) => `flow from the output of layer ${f.layer}`));
}
