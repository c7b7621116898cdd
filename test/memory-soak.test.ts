// Memory soak: loops written like the README (no tidy(), no dispose()) must not grow. Each workload of
// bench/lib/soak-loop.ts runs on each backend in a child process with --expose-gc; after a warm-up it takes a mark
// (full collection, then process.memoryUsage()) every 30 steps without ever yielding to the event loop, as a plain
// training loop does. The reachable ArrayBuffer memory must not grow from the first half of the marks to the
// second. Before the fix, tensors' buffers stayed pinned until a finalizer task ran — never, inside such a loop —
// and this grew by 47–150 KB per step; the bound is 4 KB per step (the minimum of each half is compared, so a buffer
// the engine frees a little late cannot fail it). The full 10,000-step RSS soak is in the bench
// (`npm run bench -- --case soak`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { availableBackends } from "../src/node.js";
import { SOAK_WORKLOADS } from "../bench/lib/soak-loop.js";
import type { SoakChildReport } from "../bench/soak-child.js";

const CHILD = fileURLToPath(new URL("../bench/soak-child.js", import.meta.url));
const STEPS = 240, EVERY = 30, MAX_BYTES_PER_STEP = 4096;

async function soak(backend: string, workload: string): Promise<SoakChildReport> {
  // array buffers are swept synchronously, so a mark sees every buffer the collection found unreachable freed
  const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", "--no-concurrent-array-buffer-sweeping", CHILD, "--backend", backend,
    "--workload", workload, "--warmup", "50", "--steps", String(STEPS), "--every", String(EVERY)],
  { env: { ...process.env, ATTNFLOW_THREADS: "2", ATTNFLOW_QUIET: "1" }, timeout: 120_000 });
  return JSON.parse(stdout) as SoakChildReport;
}

// wasm registers once its module has compiled; in this process that may not have happened yet, but the child waits
const backends = [...new Set([...availableBackends(), "wasm"])];

for (const backend of backends) {
  for (const workload of SOAK_WORKLOADS) {
    test(`memory soak: ${workload} on ${backend} without tidy() keeps reachable memory flat`, { timeout: 120_000 }, async () => {
      const r = await soak(backend, workload);
      assert.equal(r.backend, backend);
      assert.equal(r.gc, true, "the child runs with --expose-gc");
      const ab = r.marks.map((m) => m.arrayBuffersMB * 1024 * 1024);
      const half = Math.floor(ab.length / 2);
      const first = Math.min(...ab.slice(0, half)), second = Math.min(...ab.slice(half));
      const perStep = (second - first) / (r.marks[half].step - r.marks[0].step);
      const trace = r.marks.map((m) => `${m.step}: ${m.arrayBuffersMB.toFixed(2)} MB`).join(", ");
      assert.ok(perStep < MAX_BYTES_PER_STEP, `${workload} on ${backend}: ArrayBuffer memory grows ${(perStep / 1024).toFixed(1)} KB per step (${trace})`);
    });
  }
}
