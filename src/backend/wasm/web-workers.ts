// Browser glue for the Wasm kernels' threads: Web Workers running worker.ts over the page's shared memory.
import { configureWasmThreads, type WorkerHandle } from "./threads.js";

interface BrowserGlobals {
  Worker?: new (url: URL, opts: { type: "module" }) => WorkerHandle;
  crossOriginIsolated?: boolean;
  navigator?: { hardwareConcurrency?: number };
}

/**
 * Runs the Wasm kernels on `threads` threads (this one plus threads − 1 Web Workers; default: every logical CPU).
 * Needs a cross-origin-isolated page (COOP `same-origin` + COEP `require-corp`) for SharedArrayBuffer; returns false,
 * and changes nothing, where that or Web Workers are missing. Then `await wasmBackendReady()`.
 * (The worker is loaded from `new URL("./worker.js", import.meta.url)`, a pattern bundlers follow.)
 */
export function configureBrowserWasmThreads(threads?: number): boolean {
  const g = globalThis as BrowserGlobals;
  if (typeof g.Worker !== "function" || g.crossOriginIsolated !== true) return false;
  const n = threads ?? g.navigator?.hardwareConcurrency ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new Error(`configureBrowserWasmThreads: threads must be a positive integer, got ${n}`);
  const WorkerCtor = g.Worker;
  configureWasmThreads(n > 1 ? { threads: n, spawn: () => new WorkerCtor(new URL("./worker.js", import.meta.url), { type: "module" }) } : null);
  return true;
}
