// Node only: worker_threads for the Wasm backend's kernels. The browser build gets the same pool from Web Workers
// (src/backend/wasm/worker.ts); here each worker runs src/backend/wasm/worker-main.ts with `parentPort` as its
// message port. Configured by the Node entry (src/node.ts) before the Wasm module is instantiated (first kernel
// call); the workers are unref'd, so they never keep a finished process alive.
//
// Thread count: ATTNFLOW_THREADS if set (1 = single-threaded), else os.availableParallelism().
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { availableParallelism } from "node:os";
import { configureWasmThreads, wasmThreadConfig, type WorkerHandle } from "../backend/wasm/threads.js";
import { startWasmWorker } from "../backend/wasm/worker-main.js";

/** Threads the Wasm kernels should use in this process (ATTNFLOW_THREADS, else the CPUs available). */
export function wasmThreadsFromEnv(env: Record<string, string | undefined> = process.env): number {
  const raw = env.ATTNFLOW_THREADS;
  if (raw === undefined || raw === "") return availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`ATTNFLOW_THREADS must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function spawnWasmWorker(): WorkerHandle {
  // no flags: the worker only runs Wasm, and Node refuses many of the parent's (--expose-gc, --input-type with -e, …)
  const w = new Worker(new URL(import.meta.url), { workerData: { attnflowWasmWorker: true }, execArgv: [] });
  w.unref();
  return w;
}

/**
 * Use `threads` threads (this one + threads − 1 worker_threads) for the Wasm kernels in Node. Call before the first
 * Wasm kernel runs; a configuration already made (e.g. by the user) is kept unless `force`.
 */
export function configureNodeWasmThreads(threads = wasmThreadsFromEnv(), o: { force?: boolean } = {}): void {
  if (wasmThreadConfig() !== null && !o.force) return;
  configureWasmThreads(threads > 1 ? { threads, spawn: spawnWasmWorker } : null);
}

// worker side: this same file is the worker's entry
if (!isMainThread && parentPort && (workerData as { attnflowWasmWorker?: boolean } | null)?.attnflowWasmWorker === true) {
  const port = parentPort;
  startWasmWorker({ onMessage: (cb) => port.on("message", cb) });
}
