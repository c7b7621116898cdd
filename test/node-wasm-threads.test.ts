// The Node entry runs the Wasm kernels on worker_threads (ATTNFLOW_THREADS, else every CPU): a child process with
// ATTNFLOW_BACKEND=wasm must start workers and give the reference backend's results on work big enough to split.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { wasmThreadsFromEnv } from "../src/node/wasm-threads.js";
import { wasmSimdSupported, wasmSharedMemorySupported } from "../src/backend/wasm/module.js";

const skip = wasmSimdSupported() && wasmSharedMemorySupported() ? false : "no Wasm SIMD128 with shared memory here";
const entry = new URL("../src/node.js", import.meta.url).href;

// runs in the child: matmul + causal multi-head attention forward/backward on the wasm backend, then on the reference
const script = `
const af = await import(${JSON.stringify(entry)});
const run = () => {
  af.manualSeed(3);
  const a = af.randn([3, 96, 200]), b = af.randn([200, 150]);
  const mha = new af.nn.MultiheadAttention(64, 4, { batchFirst: true });
  const x = af.randn([2, 120, 64], { requiresGrad: true });
  const [y] = mha.forward(x, x, x, { isCausal: true, attnMask: null, needWeights: false });
  y.square().sum().backward();
  return { mm: Array.from(a.matmul(b).dataSync()), y: Array.from(y.dataSync()), gx: Array.from(x.grad.dataSync()) };
};
const w = run(); const backend = af.getBackend(); const desc = af.availableBackends();
// workers start asynchronously (the first run may be single-threaded): wait for them, up to 60 s (a hang guard: a
// busy machine takes many times the idle start-up time)
for (let i = 0; i < 600 && af.wasmWorkerCount() < Number(process.env.ATTNFLOW_THREADS) - 1; i++) await new Promise((r) => setTimeout(r, 100));
const w2 = run(); const workers = af.wasmWorkerCount();
af.setBackend("reference"); const r = run();
let maxDiff = 0;
for (const k of ["mm", "y", "gx"]) for (let i = 0; i < r[k].length; i++) maxDiff = Math.max(maxDiff, Math.abs(w2[k][i] - r[k][i]) / Math.max(1, Math.abs(r[k][i])), Math.abs(w[k][i] - r[k][i]) / Math.max(1, Math.abs(r[k][i])));
console.log(JSON.stringify({ backend, workers, maxDiff }));
`;

function child(threads: string): { backend: string; workers: number; maxDiff: number } {
  // flags Node refuses in workers (--expose-gc; --input-type with -e) must not stop the workers
  const out = execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], {
    env: { ...process.env, ATTNFLOW_BACKEND: "wasm", ATTNFLOW_THREADS: threads }, encoding: "utf8",
    cwd: fileURLToPath(new URL(".", import.meta.url)),
  });
  return JSON.parse(out.trim().split("\n").pop()!);
}

test("Wasm kernels in Node run on worker_threads and match the reference backend", { skip }, () => {
  const two = child("2");
  assert.equal(two.backend, "wasm");
  assert.equal(two.workers, 1, "ATTNFLOW_THREADS=2 starts one worker beside the main thread");
  assert.ok(two.maxDiff < 1e-4, `threaded wasm vs reference: max relative difference ${two.maxDiff}`);
  const one = child("1");
  assert.equal(one.workers, 0, "ATTNFLOW_THREADS=1 is single-threaded");
  assert.ok(one.maxDiff < 1e-4, `single-thread wasm vs reference: max relative difference ${one.maxDiff}`);
});

test("ATTNFLOW_THREADS: positive integers only, default = the CPUs available", () => {
  assert.equal(wasmThreadsFromEnv({ ATTNFLOW_THREADS: "3" }), 3);
  assert.ok(wasmThreadsFromEnv({}) >= 1);
  assert.throws(() => wasmThreadsFromEnv({ ATTNFLOW_THREADS: "0" }), /ATTNFLOW_THREADS must be a positive integer, got "0"/);
  assert.throws(() => wasmThreadsFromEnv({ ATTNFLOW_THREADS: "two" }), /ATTNFLOW_THREADS must be a positive integer/);
});

test("without the native addon the Node entry falls back to Wasm and says so once, naming the reason", { skip }, () => {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e",
    `const af = await import(${JSON.stringify(entry)}); await import(${JSON.stringify(entry)}); console.log(af.getBackend());`], {
    env: { ...process.env, ATTNFLOW_NATIVE_PATH: "/nonexistent/attnflow_native.node", ATTNFLOW_BACKEND: "", ATTNFLOW_QUIET: "" },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "wasm");
  const lines = r.stderr.split("\n").filter((l) => l.includes("native backend unavailable"));
  assert.deepEqual(lines, ["attnflow: native backend unavailable (/nonexistent/attnflow_native.node does not exist); using the wasm backend"]);
});

test("configureNodeWasmThreads after the first kernel call replaces the instance: workers start, results unchanged", { skip }, () => {
  const reconf = `
const af = await import(${JSON.stringify(entry)});
af.setBackend("wasm");
const run = () => {
  af.manualSeed(5);
  const a = af.randn([3, 96, 200]), b = af.randn([200, 150]);
  const x = af.randn([2, 120, 64], { requiresGrad: true });
  const mha = new af.nn.MultiheadAttention(64, 4, { batchFirst: true });
  const [y] = mha.forward(x, x, x, { isCausal: true, needWeights: false });
  y.square().sum().backward();
  return [...a.matmul(b).dataSync(), ...y.dataSync(), ...x.grad.dataSync()];
};
const diff = (p, q) => p.reduce((m, v, i) => Math.max(m, Math.abs(v - q[i]) / Math.max(1, Math.abs(q[i]))), 0);
const one = run(); const before = af.wasmWorkerCount();
af.configureNodeWasmThreads(2);
run();
for (let i = 0; i < 600 && af.wasmWorkerCount() < 1; i++) await new Promise((r) => setTimeout(r, 100));
const two = run(); const after = af.wasmWorkerCount();
af.configureNodeWasmThreads(1, { force: true });
const back = run(); const last = af.wasmWorkerCount();
console.log(JSON.stringify({ before, after, last, d2: diff(two, one), d1: diff(back, one) }));
`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", reconf], {
    env: { ...process.env, ATTNFLOW_BACKEND: "wasm", ATTNFLOW_THREADS: "1" }, encoding: "utf8",
  });
  const r = JSON.parse(out.trim().split("\n").pop()!) as { before: number; after: number; last: number; d2: number; d1: number };
  assert.equal(r.before, 0, "ATTNFLOW_THREADS=1: single-threaded at first");
  assert.equal(r.after, 1, "after configureNodeWasmThreads(2): one worker");
  assert.equal(r.last, 0, "after configureNodeWasmThreads(1, { force: true }): single-threaded again");
  assert.ok(r.d2 < 1e-4 && r.d1 < 1e-4, `results across configurations: ${r.d2}, ${r.d1}`);
});
