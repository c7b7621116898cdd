// Child process for the memory soak: runs one workload of bench/lib/soak-loop.ts on one backend without tidy(),
// synchronously (never yielding to the event loop, like a plain training loop), and prints one JSON line with the
// process's memory after the warm-up and every `--every` steps.
//   node [--expose-gc] dist/bench/soak-child.js --workload mha-adamw --backend native --warmup 500 --steps 10000 --every 1000
// With --expose-gc (the test), a full collection runs before each mark, so the marks count only reachable memory.
import * as af from "../src/node.js";
import { SOAK_WORKLOADS, soakStep, type SoakWorkload } from "./lib/soak-loop.js";

export interface SoakMark { step: number; rssMB: number; heapUsedMB: number; externalMB: number; arrayBuffersMB: number; poolMB: number }
export interface SoakChildReport { backend: string; workload: SoakWorkload; gc: boolean; marks: SoakMark[]; msPerStep: number }

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`soak-child: --${name} is required`);
  return v;
}

function count(name: string, dflt: string): number {
  const n = Number(arg(name, dflt));
  if (!Number.isInteger(n) || n < 0) throw new Error(`soak-child: --${name} must be a whole number, got ${arg(name, dflt)}`);
  return n;
}

const gc = (globalThis as { gc?: () => void }).gc;
const MB = 1024 * 1024;

function mark(step: number): SoakMark {
  gc?.();
  const m = process.memoryUsage();
  return { step, rssMB: m.rss / MB, heapUsedMB: m.heapUsed / MB, externalMB: m.external / MB, arrayBuffersMB: m.arrayBuffers / MB, poolMB: af.bufferPool.bytes / MB };
}

async function main(): Promise<void> {
  const workload = arg("workload", "mha-adamw") as SoakWorkload;
  if (!SOAK_WORKLOADS.includes(workload)) throw new Error(`soak-child: unknown --workload ${workload} (${SOAK_WORKLOADS.join(", ")})`);
  const backend = arg("backend", af.getBackend());
  if (backend === "wasm" && !(await af.wasmBackendReady())) throw new Error("soak-child: the wasm backend did not start");
  af.setBackend(backend);
  const warmup = count("warmup", "200"), steps = count("steps", "1000"), every = Math.max(1, count("every", "100"));
  const step = soakStep(af, workload);
  // everything below is synchronous: finalizers and other tasks cannot run until the loop ends
  for (let i = 0; i < warmup; i++) step();
  const marks = [mark(0)];
  const t0 = performance.now();
  for (let i = 1; i <= steps; i++) {
    step();
    if (i % every === 0 || i === steps) marks.push(mark(i));
  }
  const report: SoakChildReport = { backend: af.getBackend(), workload, gc: !!gc, marks, msPerStep: (performance.now() - t0) / Math.max(1, steps) };
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((e) => { process.stderr.write(`soak-child: ${e instanceof Error ? e.message : String(e)}\n`); process.exit(1); });
