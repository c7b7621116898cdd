// Attention flow (Abnar & Zuidema 2020) max-flow benchmark: L = 12 layers, H = 12 heads, random softmax attention
// (logits N(0, 1.5²), seeded), heads averaged + residual, exactly the reference graph. Three workloads per T:
//   flow-row-t{T}:        flow from one output token of the last layer to every input token (T max-flows)
//   flow-matrix-t{T}:     the full T x T flow matrix of the last layer (T² max-flows)
//   flow-causal-row-t{T}: decoder attention (softmax over keys j <= i, causal receptive field), flow from the last
//                         token of the last layer to every input token (T max-flows; the costliest row)
// Rows: attnflow single-threaded and on worker threads; SciPy's maximum_flow and networkx's Edmonds–Karp through
// bench/peers/flow_peer.py (system /usr/bin/python3; Debian python3-scipy / python3-networkx).
// Only the max-flow computations are timed (graph construction is excluded for every implementation).
// Time budgets: an implementation that would exceed its budget is timed on a sample of rows (attnflow) or of
// (source, sink) pairs (peers, sampled in a seeded random order) and the total is extrapolated; the note says so.
// networkx runs only at T = 32 and SciPy's full matrix only up to T = 128 unless ATTNFLOW_BENCH_SLOW=1
// (bench/flow-main.ts --slow).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchCase, BenchResult, BenchRow } from "../types.js";
import { defaultPolicy, measure, median } from "../lib/measure.js";
import { runPythonPeer } from "../lib/python-peer.js";
import { mulberry32, randnArray } from "../lib/prng.js";
import { type MatrixStack, prepareLayers } from "../../src/explain/attention-stack.js";
import { LayeredMaxFlow } from "../../src/explain/maxflow.js";
import { FlowWorkerPool } from "../../src/node/flow-workers.js";

export const L = 12, H = 12;
export const FLOW_TS = [32, 64, 128, 256, 512];
/** SciPy needs int32 capacities: they are scaled by 2^29 and rounded (flows <= 1 stay far from overflow). */
const SCIPY_SCALE = 2 ** 29;
const WORKERS = 2;

function slowMode(): boolean { return process.env.ATTNFLOW_BENCH_SLOW === "1"; }
function budgetMs(quick: boolean): number { return slowMode() ? Infinity : quick ? 8000 : 60000; }

/** Seeded (L, H, T, T) softmax attention (logits N(0, 1.5²)); causal: query i attends to keys j <= i only. */
export function randomAttention(T: number, causal = false): Float32Array {
  const logits = randnArray(L * H * T * T, causal ? `flow-causal:t${T}` : `flow:t${T}`, 1.5);
  const att = new Float32Array(logits.length);
  for (let r = 0; r < L * H * T; r++) {
    const top = causal ? r % T : T - 1; // last visible key
    let mx = -Infinity, s = 0;
    for (let j = 0; j <= top; j++) mx = Math.max(mx, logits[r * T + j]);
    for (let j = 0; j <= top; j++) { const e = Math.exp(logits[r * T + j] - mx); att[r * T + j] = e; s += e; }
    for (let j = 0; j <= top; j++) att[r * T + j] /= s;
  }
  return att;
}

/**
 * randomAttention prepared into the reference's capacities (L, T, T). causal: prepared with the causal receptive
 * field (rows renormalised over j <= i).
 */
export function flowWorkload(T: number, causal = false): MatrixStack {
  return prepareLayers({ data: randomAttention(T, causal), layers: L, heads: H, tokens: T }, { causal });
}

export interface Timed { medianMs: number | null; minMs?: number; maxMs?: number; note?: string; cpuMs?: number }

/** CPU time of this process (all threads) in ms: robust to other work on a shared machine, unlike wall time. */
function cpuNowMs(): number { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }
const fmtCpu = (ms: number) => (ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`);

/**
 * Times `runRows(from, to)` over all `nRows` rows; when one pass would exceed the budget, times a prefix of
 * chunks and extrapolates linearly to all rows.
 */
export async function timeRows(nRows: number, chunk: number, quick: boolean, repeats: number, runRows: (from: number, to: number) => Promise<void> | void): Promise<Timed> {
  const budget = budgetMs(quick);
  // warm-up (JIT, worker start): repeat the first chunk for up to 300 ms or 20 calls, untimed
  for (let i = 0, w0 = performance.now(); i < 20 && performance.now() - w0 < 300; i++) await runRows(0, Math.min(nRows, chunk));
  let done = 0, spent = 0, cpu = 0;
  while (done < nRows && spent < budget) {
    const to = Math.min(nRows, done + chunk);
    const t0 = performance.now(), c0 = cpuNowMs();
    await runRows(done, to);
    spent += performance.now() - t0; cpu += cpuNowMs() - c0;
    done = to;
  }
  const cpuMs = cpu / done * nRows; // one pass (extrapolated like the wall time when sampled)
  if (done < nRows) {
    const est = spent / done * nRows;
    return { medianMs: est, cpuMs, note: `extrapolated from ${done} of ${nRows} rows (${(spent / 1000).toFixed(1)} s measured)` };
  }
  if (spent * 2 > budget) return { medianMs: spent, cpuMs, note: "1 run (time budget)" };
  const policy = { ...defaultPolicy(quick, repeats), warmup: 1, budgetMs: Math.min(budget, defaultPolicy(quick, repeats).budgetMs) };
  // CPU per run averaged over every call measure() makes (the warm-up call included): steadier than one pass
  let calls = 0;
  const c0 = cpuNowMs();
  const m = await measure(() => { calls++; return runRows(0, nRows); }, policy);
  const cpuAvg = calls > 0 ? (cpuNowMs() - c0) / calls : cpuMs;
  return { medianMs: median(m.timesMs), minMs: Math.min(...m.timesMs), maxMs: Math.max(...m.timesMs), cpuMs: cpuAvg, note: m.note };
}

interface PeerReply { ok: boolean; error?: string; version?: string; done?: number; seconds?: number; cpu_seconds?: number; values?: number[] }

function runPeer(impl: "scipy" | "networkx", capsFile: string, T: number, pairs: number[][], budgetS: number): PeerReply {
  return runPythonPeer<PeerReply>("flow_peer.py", { impl, caps: capsFile, L, T, pairs, budget_s: budgetS, scale: SCIPY_SCALE }, 64 << 20);
}

type FlowKind = "row" | "matrix" | "causal-row";

async function runFlowCase(T: number, kind: FlowKind, opts: { repeats: number; quick: boolean }): Promise<BenchResult> {
  const matrix = kind === "matrix", causal = kind === "causal-row";
  const name = `flow-${kind}-t${T}`;
  const description = matrix
    ? `attention flow, full ${T}x${T} matrix of the last layer (L ${L}, H ${H}, T ${T}): ${T * T} max-flows`
    : causal
      ? `causal (decoder) attention flow from the last token of the last layer to all ${T} inputs (L ${L}, H ${H}): ${T} max-flows`
      : `attention flow from token 0 of the last layer to all ${T} inputs (L ${L}, H ${H}): ${T} max-flows`;
  const res = flowWorkload(T, causal);
  const sources = matrix ? Array.from({ length: T }, (_, a) => a) : [causal ? T - 1 : 0];
  const rows: BenchRow[] = [];
  const log = (m: string) => process.stderr.write(`[${name}] ${m}\n`);
  // attnflow, single thread (one solver reused, as flowRaw does)
  const solver = new LayeredMaxFlow(res);
  const ref = new Float64Array(sources.length * T);
  let refRows = 0; // rows of `ref` computed (a sampled run stops early); cross-checks use only those
  log("attnflow-1t");
  const t1 = await timeRows(sources.length, 1, opts.quick, opts.repeats, (from, to) => {
    for (let r = from; r < to; r++) solver.flowsFrom(L, sources[r], ref.subarray(r * T, (r + 1) * T));
    refRows = Math.max(refRows, to);
  });
  rows.push({ impl: "attnflow-1t", medianMs: t1.medianMs, minMs: t1.minMs, maxMs: t1.maxMs,
    note: [`strategy ${solver.strategy}`, `CPU ${fmtCpu(t1.cpuMs!)} per run`, t1.note].filter(Boolean).join("; ") });
  // attnflow on worker threads (pool started outside the timing)
  log(`attnflow-workers-${WORKERS}t`);
  const pool = new FlowWorkerPool(WORKERS);
  try {
    let diff = 0;
    const tw = await timeRows(sources.length, Math.max(WORKERS, Math.ceil(sources.length / 8)), opts.quick, opts.repeats, async (from, to) => {
      const out = await pool.flowRows(res, sources.slice(from, to).map((a) => [L, a] as const));
      const upto = Math.max(0, Math.min(to, refRows) - from) * T;
      for (let e = 0; e < upto; e++) diff = Math.max(diff, Math.abs(out[e] - ref[from * T + e]));
    });
    rows.push({ impl: `attnflow-workers-${WORKERS}t`, medianMs: tw.medianMs, minMs: tw.minMs, maxMs: tw.maxMs, maxAbsDiff: diff,
      note: ["pool of worker_threads started outside the timing", `CPU ${fmtCpu(tw.cpuMs!)} per run, all threads`, tw.note].filter(Boolean).join("; ") });
  } finally {
    await pool.close();
  }
  // peers on the same capacities
  const dir = mkdtempSync(join(tmpdir(), "attnflow-flowcaps-"));
  try {
    const capsFile = join(dir, "caps.f64");
    writeFileSync(capsFile, new Uint8Array(res.data.buffer, res.data.byteOffset, res.data.byteLength));
    let pairs: number[][] = [];
    for (const a of sources) for (let b = 0; b < T; b++) pairs.push([L * T + a, b]);
    { // a seeded random order, so that a partial (time-budgeted) run is a representative sample
      const rnd = mulberry32(T);
      for (let i = pairs.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [pairs[i], pairs[j]] = [pairs[j], pairs[i]]; }
    }
    const total = pairs.length;
    const budgetS = Math.min(budgetMs(opts.quick), 1e9) / 1000;
    for (const impl of ["scipy", "networkx"] as const) {
      const label = impl === "scipy" ? "scipy-maximum_flow" : "networkx-edmonds_karp";
      if (impl === "networkx" && T > 32 && !slowMode()) { rows.push({ impl: label, medianMs: null, note: "skipped beyond T=32 (pure-Python Edmonds–Karp; --slow to run)" }); continue; }
      if (impl === "scipy" && matrix && T > 128 && !slowMode()) { rows.push({ impl: label, medianMs: null, note: "skipped: full matrix beyond T=128 (--slow to run)" }); continue; }
      log(label);
      const rep = runPeer(impl, capsFile, T, pairs, budgetS);
      if (!rep.ok || !rep.done || rep.seconds === undefined || !rep.values) { rows.push({ impl: label, medianMs: null, note: rep.error ?? "no result" }); continue; }
      let diff = 0;
      rep.values.forEach((v, k) => {
        const [src, b] = pairs[k];
        const r = sources.indexOf(src - L * T);
        if (r < refRows) diff = Math.max(diff, Math.abs(v - ref[r * T + b]));
      });
      const ms = rep.seconds * 1000 / rep.done * total;
      const notes = [`${impl} ${rep.version}`];
      if (rep.cpu_seconds !== undefined) notes.push(`CPU ${fmtCpu(rep.cpu_seconds * 1000 / rep.done * total)} per run`);
      if (impl === "scipy") notes.push("capacities scaled by 2^29 and rounded to int32 (the API takes integers)");
      notes.push(rep.done < total ? `extrapolated from ${rep.done} of ${total} flows (${rep.seconds.toFixed(1)} s measured)` : "1 run");
      rows.push({ impl: label, medianMs: ms, maxAbsDiff: diff, note: notes.join("; ") });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ours = rows.filter((r) => r.impl.startsWith("attnflow") && r.medianMs !== null).map((r) => r.medianMs as number);
  const peers = rows.filter((r) => !r.impl.startsWith("attnflow") && r.medianMs !== null).map((r) => r.medianMs as number);
  const ratio = ours.length && peers.length ? Math.min(...ours) / Math.min(...peers) : null;
  return { case: name, group: "flow", description, rows, ratioToBestPeer: ratio };
}

const KIND_TEXT: Record<FlowKind, string> = { row: "one output row", matrix: "full T x T matrix", "causal-row": "one output row of causal attention" };

export const cases: BenchCase[] = FLOW_TS.flatMap((T) => (["row", "matrix", "causal-row"] as const).map((kind): BenchCase => ({
  name: `flow-${kind}-t${T}`,
  group: "flow",
  description: `attention flow, ${KIND_TEXT[kind]} at L ${L}, H ${H}, T ${T}`,
  run: (o) => runFlowCase(T, kind, o),
})));
