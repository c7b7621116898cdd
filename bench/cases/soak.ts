// Memory soak: the README-style loops of lib/soak-loop.ts (no tidy(), no dispose()) for 10,000 steps after a
// 1,000-step warm-up, on every attnflow backend in a Node child process of its own (soak-child.ts) and on the Wasm
// backend in headless Chromium (lib/chromium-soak.ts). The loops never yield to the event loop. Rows: ms per step
// as the time, peak RSS growth over the warm-up mark as "peak MB", RSS at warm-up and at the end in the note (and
// in `soak` in the JSON). Nothing is forced: no gc() — the RSS a user's process would have.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { BenchCase, BenchRow } from "../types.js";
import { attnflowBackends, loadAttnflow } from "../attnflow-adapter.js";
import { harnessConfig } from "../lib/harness.js";
import { browserSoak, chromiumAvailable } from "../lib/chromium-soak.js";
import type { SoakWorkload } from "../lib/soak-loop.js";
import type { SoakChildReport } from "../soak-child.js";
import { untunedEnv } from "../lib/malloc-env.js";

const CHILD = fileURLToPath(new URL("../soak-child.js", import.meta.url));
const WARMUP = 1000;

function soakRow(impl: string, warmupSteps: number, steps: number, msPerStep: number, rss: number[]): BenchRow {
  const soak = { warmupSteps, steps, rssWarmupMB: rss[0], rssEndMB: rss[rss.length - 1], rssMaxMB: Math.max(...rss) };
  const f = (x: number) => x.toFixed(0);
  const note = `RSS ${f(soak.rssWarmupMB)} MB after ${warmupSteps} warm-up steps → ${f(soak.rssEndMB)} MB after ${steps} more ` +
    `(${soak.rssEndMB >= soak.rssWarmupMB ? "+" : ""}${f(soak.rssEndMB - soak.rssWarmupMB)} MB; highest ${f(soak.rssMaxMB)} MB)`;
  return { impl, medianMs: msPerStep, peakMemMB: soak.rssMaxMB - soak.rssWarmupMB, soak, note };
}

async function nodeRow(backend: string, workload: SoakWorkload, steps: number): Promise<BenchRow> {
  const impl = `attnflow-${backend}`;
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [CHILD, "--backend", backend, "--workload", workload,
      "--warmup", String(WARMUP), "--steps", String(steps), "--every", String(Math.max(1, steps / 20))],
    // the untuned environment, like the memory cases: glibc.malloc.hugetlb rounds RSS growth up to 2 MiB pages
    { env: { ...untunedEnv(), ATTNFLOW_QUIET: "1" }, timeout: 900_000, maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout) as SoakChildReport;
    return soakRow(impl, WARMUP, steps, r.msPerStep, r.marks.map((m) => m.rssMB));
  } catch (e) {
    return { impl, medianMs: null, note: `failed: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}` };
  }
}

async function chromiumRow(workload: SoakWorkload, steps: number): Promise<BenchRow> {
  const impl = "attnflow-wasm-chromium";
  if (!chromiumAvailable) return { impl, medianMs: null, note: "skipped: no headless Chromium on Linux here" };
  try {
    const r = await browserSoak({ workload, warmup: WARMUP, steps, every: Math.max(1, steps / 20), gc: false, timeoutMs: 900_000 });
    const row = soakRow(impl, WARMUP, steps, r.msPerStep, r.marks.map((m) => m.rendererRssMB));
    row.note = `renderer ${row.note}; ${r.workers} Web Worker(s)`;
    return row;
  } catch (e) {
    return { impl, medianMs: null, note: `failed: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}` };
  }
}

function soakCase(workload: SoakWorkload, what: string): BenchCase {
  const name = `soak-${workload}`;
  const description = `RSS over 10,000 steps of ${what} without tidy() (after ${WARMUP} warm-up steps); Node per backend and Chromium (wasm)`;
  return {
    name, group: "soak", description,
    async run({ quick }) {
      const log = harnessConfig().log;
      const steps = quick ? 2000 : 10_000;
      const rows: BenchRow[] = [];
      const loaded = await loadAttnflow();
      const backends = loaded.ok ? attnflowBackends(loaded.api) : [];
      if (!loaded.ok) rows.push({ impl: "attnflow", medianMs: null, note: `attnflow unavailable: ${loaded.reason}` });
      for (const backend of backends) rows.push(await nodeRow(backend, workload, steps));
      rows.push(await chromiumRow(workload, steps));
      for (const r of rows) log(`  ${name} ${r.impl}: ${r.medianMs === null ? "—" : `${r.medianMs.toFixed(2)} ms/step`}${r.note ? ` (${r.note})` : ""}`);
      return { case: name, group: "soak", description, rows, ratioToBestPeer: null };
    },
  };
}

export const cases: BenchCase[] = [
  soakCase("mha-adamw", "the README quick start as a training loop (MultiheadAttention 64/4 + Linear, AdamW)"),
  soakCase("sdpa-weights", "F.scaledDotProductAttention(…, { causal, returnWeights: true }) on (2, 4, 32, 16)"),
];
