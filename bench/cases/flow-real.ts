// Attention flow on REAL attention (issue 16): the synthetic cases of flow.ts use peaked random attention, where the
// rollout preflow already does most of the work; trained models' attention is flatter and structured, and a
// random-init BERT's is near-uniform. Workloads (every one a set of flow sources, each to all T input tokens):
//   flow-real-classifier-t128  models/fortunes-classifier.safetensors (L 4, H 4) on a 128-token text made of Debian
//                              fortunes (/usr/share/games/fortunes/computers): attention recorded by capture.
//   flow-real-stack12-t128     12 layers: the classifier's 4 layers on three texts (computers, science, politics)
//                              stacked (L 12, H 4): real attention matrices at BERT-base depth (the shipped models
//                              have at most 4 layers; no trained 12-layer model is available offline).
//   flow-bert-random-t128/512  a BERT-base-sized model (L 12, H 12, hidden 768) with HF's random init
//                              (modelFromConfig, manualSeed 0), attention recorded on deterministic ids.
//   flow-uniform-t128/512      synthetic near-uniform attention: logits N(0, 0.1²), L 12, H 12.
// Per workload the sources are:
//   default   what `attnflow explain` and the page compute by default: the explained quantity at every layer
//             (perLayer) — the mean of the non-special rows as ONE weighted source per layer for the classifier
//             and the synthetic cases (query "mean"), the [CLS] row per layer for BERT (query 0): L x T max-flows
//   row       one output row: token 0 of the last layer to all T inputs (T max-flows)
//   rows-mean A&Z's per-row definition of the mean (every row of the last layer, averaged): T x T max-flows,
//             extrapolated from a sample (the old explain default; --flow-aggregate rows)
// Rows: attnflow on one thread, on 2 worker threads, and SciPy's maximum_flow on the same graph (a weighted source
// is an extra node there), sampled and extrapolated within its time budget.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchCase, BenchResult, BenchRow } from "../types.js";
import { runPythonPeer } from "../lib/python-peer.js";
import { mulberry32, randnArray } from "../lib/prng.js";
import { type AttentionStack, type MatrixStack, prepareLayers } from "../../src/explain/attention-stack.js";
import type { FlowSource } from "../../src/explain/flow.js";
import { flowRowsLocal } from "../../src/explain/explain-run.js";
import { FlowWorkerPool } from "../../src/node/flow-workers.js";
import { timeRows } from "./flow.js";

const SCIPY_SCALE = 2 ** 29;
const FORTUNES = "/usr/share/games/fortunes";

/** About `words` words of consecutive fortunes from one Debian fortune file (the model truncates to 128 tokens). */
export function fortuneText(file: string, words = 200): string {
  const all = readFileSync(join(FORTUNES, file), "utf8").split("\n%\n");
  let text = "";
  for (let i = 0; i < all.length && text.split(/\s+/).length < words; i++) text += all[i] + " ";
  return text;
}

/** Attention of the shipped classifier on a fortunes text (L 4, H 4, T 128). */
export async function classifierAttention(file: string): Promise<AttentionStack> {
  const { loadCheckpoint } = await import("../../src/node/checkpoint.js");
  const { targetAttention } = await import("../../src/explain/attribution.js");
  // dist/bench/cases/flow-real.js -> the repository's models/
  const ck = await loadCheckpoint(fileURLToPath(new URL("../../../models/fortunes-classifier.safetensors", import.meta.url)));
  ck.model.eval();
  const target = ck.task.explain!(ck.model, ck.config, { text: fortuneText(file) });
  return targetAttention(target, ck.model).stack;
}

/** A BERT-base-sized model with random HF init: attention on deterministic ids ([CLS] ... [SEP]). */
export async function bertRandomAttention(T: number): Promise<AttentionStack> {
  const { modelFromConfig } = await import("../../src/hf/index.js");
  const { tensor, manualSeed, noGrad } = await import("../../src/index.js");
  manualSeed(0);
  const m = modelFromConfig({ model_type: "bert", architectures: ["BertModel"], max_position_embeddings: Math.max(512, T) });
  m.eval();
  const ids = Array.from({ length: T }, (_, i) => (i === 0 ? 101 : i === T - 1 ? 102 : 1000 + (i * 7919) % 20000));
  const att = noGrad(() => m.forward({ inputIds: tensor([ids], { dtype: "int32" }) }, { outputAttentions: true }).attentions!);
  const L = att.length, H = att[0].shape[1], data = new Float32Array(L * H * T * T);
  att.forEach((a, l) => data.set(a.dataSync() as Float32Array, l * H * T * T));
  return { data, layers: L, heads: H, tokens: T };
}

/** Synthetic near-uniform softmax attention, logits N(0, 0.1²). */
export function uniformAttention(L: number, H: number, T: number): AttentionStack {
  const logits = randnArray(L * H * T * T, `flow-uniform:t${T}`, 0.1), data = new Float32Array(logits.length);
  for (let r = 0; r < L * H * T; r++) {
    let s = 0;
    for (let j = 0; j < T; j++) { const e = Math.exp(logits[r * T + j]); data[r * T + j] = e; s += e; }
    for (let j = 0; j < T; j++) data[r * T + j] /= s;
  }
  return { data, layers: L, heads: H, tokens: T };
}

interface Workload { res: MatrixStack; query: "mean" | 0; what: string }

async function workload(kind: string, T: number): Promise<Workload | string> {
  if (kind === "classifier" || kind === "stack12") {
    if (!existsSync(join(FORTUNES, "computers"))) return `needs the Debian fortunes (${FORTUNES}); apt-get install fortunes`;
    const files = kind === "classifier" ? ["computers"] : ["computers", "science", "politics"];
    const stacks = [];
    for (const f of files) stacks.push(await classifierAttention(f));
    const H = stacks[0].heads, TT = T * T, data = new Float32Array(stacks.length * 4 * H * TT);
    stacks.forEach((s, k) => data.set(s.data, k * s.layers * H * TT));
    const att = { data, layers: stacks.length * stacks[0].layers, heads: H, tokens: stacks[0].tokens };
    return { res: prepareLayers(att), query: "mean", what: kind === "classifier" ? "fortunes classifier, computers text" : "classifier layers of 3 texts stacked" };
  }
  if (kind === "bert-random") return { res: prepareLayers(await bertRandomAttention(T)), query: 0, what: "BERT-base random init" };
  return { res: prepareLayers(uniformAttention(12, 12, T)), query: "mean", what: "near-uniform synthetic" };
}

/** The explain default's sources: per layer, the mean of rows 1..T-1 as one weighted source, or the [CLS] row. */
function defaultSources(res: MatrixStack, query: "mean" | 0): FlowSource[] {
  const L = res.layers, T = res.tokens;
  if (query === 0) return Array.from({ length: L }, (_, l) => [l + 1, 0] as const);
  // the classifier's specials: none recorded as [CLS] (mean pooling), so every row; weights sum to 1
  const w = new Float64Array(T).fill(1 / T);
  return Array.from({ length: L }, (_, l) => [l + 1, w] as const);
}

interface PeerReply { ok: boolean; error?: string; version?: string; done?: number; seconds?: number; cpu_seconds?: number; values?: number[] }

async function runRealCase(kind: string, T: number, sourcesKind: "default" | "row" | "rows-mean", o: { repeats: number; quick: boolean }): Promise<BenchResult> {
  const name = `flow-${kind}-t${T}-${sourcesKind}`;
  const log = (m: string) => process.stderr.write(`[${name}] ${m}\n`);
  const w = await workload(kind, T);
  if (typeof w === "string") return { case: name, group: "flow-real", description: name, rows: [{ impl: "attnflow-1t", medianMs: null, note: w }], ratioToBestPeer: null };
  const { res, query } = w, L = res.layers;
  const sources: FlowSource[] = sourcesKind === "default" ? defaultSources(res, query)
    : sourcesKind === "row" ? [[L, 0]] : Array.from({ length: T }, (_, a) => [L, a] as const);
  const description = `${w.what}: L ${L}, T ${T}, ${sourcesKind === "default" ? `explain default (${query === 0 ? "[CLS] row" : "mean of rows as one weighted source"} at every layer)` : sourcesKind === "row" ? "one row (token 0, last layer)" : "A&Z mean of all rows of the last layer"}: ${sources.length * T} max-flows`;
  const rows: BenchRow[] = [];
  const ref = new Float64Array(sources.length * T);
  let refRows = 0;
  const cpu = (t: { cpuMs?: number }) => `CPU ${t.cpuMs! >= 1000 ? `${(t.cpuMs! / 1000).toFixed(2)} s` : `${t.cpuMs!.toFixed(1)} ms`} per run`;
  log("attnflow-1t");
  const t1 = await timeRows(sources.length, 1, o.quick, o.repeats, (from, to) => {
    ref.set(flowRowsLocal(res, sources.slice(from, to)), from * T);
    refRows = Math.max(refRows, to);
  });
  rows.push({ impl: "attnflow-1t", medianMs: t1.medianMs, minMs: t1.minMs, maxMs: t1.maxMs, note: [cpu(t1), t1.note].filter(Boolean).join("; ") });
  log("attnflow-workers-2t");
  const pool = new FlowWorkerPool(2);
  try {
    let diff = 0;
    const tw = await timeRows(sources.length, Math.max(2, Math.ceil(sources.length / 4)), o.quick, o.repeats, async (from, to) => {
      const out = await pool.flowRows(res, sources.slice(from, to));
      const upto = Math.max(0, Math.min(to, refRows) - from) * T;
      for (let e = 0; e < upto; e++) diff = Math.max(diff, Math.abs(out[e] - ref[from * T + e]));
    });
    rows.push({ impl: "attnflow-workers-2t", medianMs: tw.medianMs, minMs: tw.minMs, maxMs: tw.maxMs, maxAbsDiff: diff, note: [cpu(tw) + ", all threads", tw.note].filter(Boolean).join("; ") });
  } finally {
    await pool.close();
  }
  // SciPy on the same graph: pairs in a seeded random order (a budgeted run is a representative sample)
  const dir = mkdtempSync(join(tmpdir(), "attnflow-flowreal-"));
  try {
    const capsFile = join(dir, "caps.f64");
    writeFileSync(capsFile, new Uint8Array(res.data.buffer, res.data.byteOffset, res.data.byteLength));
    const N = (L + 1) * T, extra: { layer: number; weights: number[] }[] = [];
    const nodeOf = sources.map(([l, a]) => (typeof a === "number" ? l * T + a : N + extra.push({ layer: l, weights: Array.from(a) }) - 1));
    const pairs: number[][] = [];
    sources.forEach((_, r) => { for (let b = 0; b < T; b++) pairs.push([nodeOf[r], b, r]); });
    const rnd = mulberry32(T + L);
    for (let i = pairs.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [pairs[i], pairs[j]] = [pairs[j], pairs[i]]; }
    log("scipy-maximum_flow");
    const budgetS = o.quick ? 8 : 30;
    const rep = runPythonPeer<PeerReply>("flow_peer.py", { impl: "scipy", caps: capsFile, L, T, pairs: pairs.map(([s, b]) => [s, b]), budget_s: budgetS, scale: SCIPY_SCALE, extra }, 64 << 20) as PeerReply;
    if (!rep.ok || !rep.done || rep.seconds === undefined || !rep.values) rows.push({ impl: "scipy-maximum_flow", medianMs: null, note: rep.error ?? "no result" });
    else {
      let diff = 0;
      rep.values.forEach((v, k) => { const [, b, r] = pairs[k]; if (r < refRows) diff = Math.max(diff, Math.abs(v - ref[r * T + b])); });
      const total = pairs.length;
      rows.push({ impl: "scipy-maximum_flow", medianMs: rep.seconds * 1000 / rep.done * total, maxAbsDiff: diff,
        note: [`scipy ${rep.version}`, `CPU ${(rep.cpu_seconds! / rep.done * total).toFixed(2)} s per run`, "capacities scaled by 2^29, int32",
          rep.done < total ? `extrapolated from ${rep.done} of ${total} flows (${rep.seconds.toFixed(1)} s measured)` : "1 run"].join("; ") });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ours = rows.filter((r) => r.impl.startsWith("attnflow") && r.medianMs !== null).map((r) => r.medianMs as number);
  const peers = rows.filter((r) => !r.impl.startsWith("attnflow") && r.medianMs !== null).map((r) => r.medianMs as number);
  return { case: name, group: "flow-real", description, rows, ratioToBestPeer: ours.length && peers.length ? Math.min(...ours) / Math.min(...peers) : null };
}

const SPECS: Array<[string, number, Array<"default" | "row" | "rows-mean">]> = [
  ["classifier", 128, ["default", "row", "rows-mean"]],
  ["stack12", 128, ["default", "row"]],
  ["bert-random", 128, ["default", "row"]],
  ["bert-random", 512, ["row"]],
  ["uniform", 128, ["default", "row"]],
  ["uniform", 512, ["row"]],
];

export const cases: BenchCase[] = SPECS.flatMap(([kind, T, kinds]) => kinds.map((k): BenchCase => ({
  name: `flow-${kind}-t${T}-${k}`,
  group: "flow-real",
  description: `attention flow on ${kind} attention, T ${T}, sources: ${k}`,
  run: (o) => runRealCase(kind, T, k, o),
})));
