// Runs one workload on attnflow and every peer, then folds the samples into a BenchResult:
// medians, GFLOP/s, max-abs-diff against attnflow's output, and attnflow-best / best-peer.
import type { BenchResult, BenchRow } from "../types.js";
import { attnflowBackends, attnflowStep, awaitWasmWorkers, loadAttnflow } from "../attnflow-adapter.js";
import { runJax } from "../peers/jax-peer.js";
import { runOrt } from "../peers/ort-peer.js";
import { runOrtWeb } from "../peers/ort-web-peer.js";
import { runTfjs } from "../peers/tfjs-peer.js";
import { runTorch } from "../peers/torch-peer.js";
import { defaultPolicy, measure, median } from "./measure.js";
import { errorText, type PeerContext, type PeerRun } from "./peer-types.js";
import { maxAbsDiff, taskFlops, type Task } from "./tasks.js";
import { outputPath, readTensorFile, releaseTensorFiles, tensorFile } from "./tensor-files.js";
import { ChildPeer } from "./child-peer.js";
import { fileURLToPath } from "node:url";

export interface HarnessConfig {
  /** Skip an implementation whose estimated single run exceeds this many seconds. */
  maxRunS: number;
  /** Run only rows whose impl name contains one of these substrings (empty: all). */
  implFilter: string[];
  log(msg: string): void;
}

const config: HarnessConfig = { maxRunS: 60, implFilter: [], log: (m) => process.stderr.write(m + "\n") };

export function configureHarness(c: Partial<HarnessConfig>): void { Object.assign(config, c); }
export function harnessConfig(): Readonly<HarnessConfig> { return config; }

/**
 * Conservative GFLOP/s per implementation (measured on the 2-core Zen 5 machine, rounded down),
 * used only to skip runs that would take longer than --max-run-s. First matching prefix wins.
 */
const EXPECTED_GFLOPS: [string, number][] = [
  ["attnflow-reference", 0.8], ["attnflow-wasm", 8], ["attnflow", 20], ["onnxruntime-web", 15], ["onnxruntime", 60], ["pytorch", 30],
  ["jax-js", 8], ["tfjs-wasm", 1.2], ["tfjs-cpu", 0.3],
];

export function estimatedSeconds(impl: string, flops: number): number {
  const rate = EXPECTED_GFLOPS.find(([p]) => impl.startsWith(p))?.[1] ?? 10;
  return flops / (rate * 1e9);
}

export function wanted(impl: string): boolean {
  return config.implFilter.length === 0 || impl.startsWith("attnflow") || config.implFilter.some((f) => impl.includes(f));
}

/** skipReason() value for rows excluded by --impl (dropped from the result). */
const FILTERED = "filtered out by --impl";

function skipReasonFor(flops: number) {
  return (impl: string): string | null => {
    if (!wanted(impl)) return FILTERED;
    const est = estimatedSeconds(impl, flops);
    return est > config.maxRunS ? `skipped: ~${Math.round(est)} s per run estimated > --max-run-s ${config.maxRunS}` : null;
  };
}

// attnflow runs in a child process of its own (attnflow-child.ts) unless ATTNFLOW_BENCH_IN_PROCESS=1: the peers
// loaded in this process (onnxruntime-node, tfjs) were seen to change V8's garbage collection for everything
// else in it (see attnflow-child.ts).
// ATTNFLOW_BENCH_WASM_RELAXED=1 starts attnflow's children with Node 20's --experimental-wasm-relaxed-simd, so the Wasm
// rows run the relaxed-SIMD (FMA) kernels that Chromium gets by default.
function afChildArgs(): string[] {
  const file = fileURLToPath(new URL("../attnflow-child.js", import.meta.url));
  return process.env.ATTNFLOW_BENCH_WASM_RELAXED === "1" ? ["--experimental-wasm-relaxed-simd", file] : [file];
}
let afChild: ChildPeer | null = null;
function attnflowChild(): ChildPeer {
  afChild ??= new ChildPeer("attnflow", process.execPath, afChildArgs(), { log: config.log });
  return afChild;
}
// attnflow-wasm-1t: the Wasm backend on one thread (ATTNFLOW_THREADS=1 is read when its instance is made), beside
// onnxruntime-web-1t; the plain attnflow-wasm row uses every CPU (2 here), like onnxruntime-web-2t.
let afChild1t: ChildPeer | null = null;
function attnflowChild1t(): ChildPeer {
  afChild1t ??= new ChildPeer("attnflow-1t", process.execPath, afChildArgs(),
    { log: config.log, env: { ...process.env, ATTNFLOW_THREADS: "1", ATTNFLOW_NUM_THREADS: "1" } });
  return afChild1t;
}
export function closeAttnflowChild(): void { afChild?.close(); afChild = null; afChild1t?.close(); afChild1t = null; }

/** The child's request for `task` (inputs as tensor files), without backend, output file and policy. */
function childRequest(task: Task): Record<string, unknown> {
  if (task.kind === "sdpa") {
    const { B, H, T, d } = task;
    return { op: "sdpa", shape: { B, H, T, d }, causal: task.causal, files: { q: tensorFile(task.q, "af-q"), k: tensorFile(task.k, "af-k"), v: tensorFile(task.v, "af-v") } };
  }
  const { B, T, D, H } = task;
  const files: Record<string, string> = {
    x: tensorFile(task.x, "af-x"), inProjWeight: tensorFile(task.w.inProjWeight, "af-win"), inProjBias: tensorFile(task.w.inProjBias, "af-bin"),
    outProjWeight: tensorFile(task.w.outProjWeight, "af-wout"), outProjBias: tensorFile(task.w.outProjBias, "af-bout"),
  };
  if (task.kind === "train") files.g = tensorFile(task.g, "af-g");
  return { op: task.kind, shape: { B, T, D, H }, files };
}

/** One row per attnflow backend: skipped ones noted, the others measured by `run` (an error becomes the row's note). */
async function attnflowRows(backends: string[], ctx: PeerContext, run: (backend: string, impl: string) => Promise<PeerRun>): Promise<PeerRun[]> {
  const out: PeerRun[] = [];
  for (const backend of backends) {
    const impl = `attnflow-${backend}`;
    const skip = ctx.skipReason(impl);
    if (skip) { out.push({ impl, note: skip }); continue; }
    try { out.push(await run(backend, impl)); } catch (e) { out.push({ impl, note: `failed: ${errorText(e)}` }); }
  }
  return out;
}

async function runAttnflowInChild(task: Task, ctx: PeerContext): Promise<PeerRun[]> {
  const child = attnflowChild();
  let backends: string[];
  try {
    const r = await child.request({ op: "backends" });
    if (!r.ok) return [{ impl: "attnflow", note: r.error ?? "attnflow unavailable" }];
    backends = r.backends as string[];
  } catch (e) {
    closeAttnflowChild();
    return [{ impl: "attnflow", note: `attnflow child failed: ${errorText(e)}` }];
  }
  const req = childRequest(task);
  const rows = task.kind !== "train" && backends.includes("wasm") ? [...backends, "wasm-1t"] : backends;
  return attnflowRows(rows, ctx, async (row, impl) => {
    const file = outputPath(`af-${row}`);
    const backend = row === "wasm-1t" ? "wasm" : row, c = row === "wasm-1t" ? attnflowChild1t() : child;
    let r;
    try { r = await c.request({ ...req, backend, out: file, policy: ctx.policy }); } catch (e) { closeAttnflowChild(); throw e; }
    if (!r.ok) return { impl, note: `failed: ${r.error ?? "unknown error"}` };
    return { impl, timesMs: r.timesMs, output: readTensorFile(file), note: r.note };
  });
}

async function runAttnflow(task: Task, ctx: PeerContext): Promise<PeerRun[]> {
  if (process.env.ATTNFLOW_BENCH_IN_PROCESS !== "1") return runAttnflowInChild(task, ctx);
  const loaded = await loadAttnflow();
  if (!loaded.ok) return [{ impl: "attnflow", note: `attnflow unavailable: ${loaded.reason}` }];
  return attnflowRows(attnflowBackends(loaded.api), ctx, async (backend, impl) => {
    const step = attnflowStep(loaded.api, backend, task);
    await awaitWasmWorkers(loaded.api, backend, step);
    const m = await measure(step, ctx.policy);
    return { impl, timesMs: m.timesMs, output: m.last, note: m.note };
  });
}

const PEERS: ((t: Task, c: PeerContext) => Promise<PeerRun[]>)[] = [runOrt, runOrtWeb, runTorch, runTfjs, runJax];

/** Preference order for the cross-check reference when attnflow has no output. */
const FALLBACK_REF = ["pytorch-cpu", "onnxruntime-node-2t", "onnxruntime-node-1t", "onnxruntime-web-2t", "jax-js-wasm", "tfjs-wasm", "tfjs-cpu"];

export interface CaseMeta { name: string; group: string; description: string }

/** Fold peer runs into a BenchResult (shared with the memory cases). */
export function buildResult(meta: CaseMeta, runs: PeerRun[], flops: number | undefined, extra: Map<string, Partial<BenchRow>> = new Map()): BenchResult {
  const isAf = (r: PeerRun) => r.impl.startsWith("attnflow");
  let ref = runs.find((r) => isAf(r) && r.output && r.impl === "attnflow-native") ?? runs.find((r) => isAf(r) && r.output);
  let checkedAgainst = ref?.impl;
  if (!ref) {
    ref = FALLBACK_REF.map((n) => runs.find((r) => r.impl === n && r.output)).find((r) => r);
    checkedAgainst = ref ? `${ref.impl} (no attnflow output)` : undefined;
  }
  const rows: BenchRow[] = runs.map((r) => {
    const row: BenchRow = { impl: r.impl, medianMs: null, ...extra.get(r.impl) };
    if (r.timesMs?.length) {
      row.medianMs = median(r.timesMs);
      row.minMs = Math.min(...r.timesMs);
      row.maxMs = Math.max(...r.timesMs);
      if (flops) row.gflops = flops / (row.medianMs * 1e6);
    }
    if (ref?.output && r.output && r !== ref) {
      try { row.maxAbsDiff = maxAbsDiff(r.output, ref.output); } catch (e) { row.note = `${row.note ? row.note + "; " : ""}cross-check: ${errorText(e)}`; }
    } else if (r === ref) row.maxAbsDiff = 0;
    if (r.note) row.note = row.note ? `${r.note}; ${row.note}` : r.note;
    return row;
  });
  const best = (pred: (r: BenchRow) => boolean) =>
    Math.min(...rows.filter((r) => pred(r) && r.medianMs !== null).map((r) => r.medianMs as number));
  const af = best((r) => r.impl.startsWith("attnflow"));
  const peer = best((r) => !r.impl.startsWith("attnflow"));
  const ratio = Number.isFinite(af) && Number.isFinite(peer) ? af / peer : null;
  return { case: meta.name, group: meta.group, description: meta.description, flops, rows, ratioToBestPeer: ratio, checkedAgainst };
}

/** Run `task` on attnflow and all peers with the case's timing policy. */
export async function runTask(meta: CaseMeta, task: Task, opts: { repeats: number; quick: boolean }): Promise<BenchResult> {
  const flops = taskFlops(task);
  const ctx: PeerContext = { policy: defaultPolicy(opts.quick, opts.repeats), skipReason: skipReasonFor(flops), log: config.log };
  const runs: PeerRun[] = [];
  for (const peer of [runAttnflow, ...PEERS]) {
    try {
      for (const r of await peer(task, ctx)) if (wanted(r.impl) && r.note !== FILTERED) {
        runs.push(r);
        const ms = r.timesMs?.length ? `${median(r.timesMs).toFixed(2)} ms` : "—";
        config.log(`  ${meta.name} ${r.impl}: ${ms}${r.note ? ` (${r.note})` : ""}`);
      }
    } catch (e) {
      config.log(`  ${meta.name}: a peer failed: ${errorText(e)}`);
    }
  }
  releaseTensorFiles();
  return buildResult(meta, runs, flops);
}
