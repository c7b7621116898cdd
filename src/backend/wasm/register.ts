// Registers the Wasm SIMD backend (priority 10: below native, above the reference). Import this module from an
// entry point; it is browser-safe (no Node APIs). Outside a browser's main thread registration is immediate and
// cheap: the module is generated and compiled synchronously on the first call of one of its kernels (≈ 0.1–0.2 s,
// once). On a browser's main thread (where engines may refuse synchronous compiles) it is compiled asynchronously
// and the backend registers when that finishes; `wasmBackendReady()` resolves once the Wasm kernels are live.
import type { Kernels } from "../kernels.js";
import { refKernels } from "../ref/index.js";
import { registerBackend } from "../registry.js";
import { instantiateAsync, instantiateSync, wasmRelaxedSimdActive, wasmSharedMemorySupported, wasmSimdSupported, type WasmInstance } from "./module.js";
import { makeWasmKernels } from "./wasm-kernels.js";
import { WasmPackCache, type PackCacheInfo } from "./pack-cache.js";
import { makeWasmQlinear } from "./qlinear.js";
import { SerialExecutor } from "./executor.js";
import { onWasmThreadConfig, startPool, wasmThreadConfig, type WorkerPool } from "./threads.js";

export const WASM_BACKEND_PRIORITY = 10;

/** The kernels the Wasm backend implements (the rest fall back to the reference backend). */
export const WASM_KERNEL_NAMES = [
  "gemm", "gemmBiasAct", "activationBackward", "softmax", "logSoftmax", "softmaxBackward", "layerNormForward",
  "layerNormBackward", "unary", "binary", "attnForward", "attnBackward", "attnWeights", "attnForwardLayout",
  "attnBackwardLayout", "attnWeightsLayout",
] as const satisfies readonly (keyof Kernels)[];

let instance: WasmInstance | null = null;
let packCache: WasmPackCache | null = null;
let packLimit: number | null = null;   // setWasmPackCacheLimit before the instance exists
let pool: WorkerPool | null = null;
let live: Partial<Kernels> | null = null;
let pending: Promise<boolean> | null = null;
let failed: string | null = null;
let registered = false;

/** Threads wanted (configureWasmThreads) and possible here. */
function threadsWanted(): number {
  const c = wasmThreadConfig();
  return c && c.threads > 1 && wasmSharedMemorySupported() ? c.threads : 1;
}

function activate(inst: WasmInstance): void {
  pool?.terminate();   // a previous instance's workers (the thread configuration changed)
  pool = null;
  instance = inst;
  packCache = new WasmPackCache(inst.arena);   // a new memory: the previous instance's packings are gone with it
  if (packLimit !== null) packCache.setLimit(packLimit);
  const c = wasmThreadConfig();
  if (inst.shared && c) {
    try {
      const started = startPool(inst, c.threads - 1, c.spawn, new SerialExecutor(inst.exports));
      pool = started.pool;
      live = makeWasmKernels(inst, started.executorFor, packCache);
      return;
    } catch (e) {
      // workers could not start (platform refused): the kernels still run, on this thread only
      const why = e instanceof Error ? e.message : String(e);
      (globalThis as { console?: { warn(m: string): void } }).console?.warn(`attnflow: Wasm worker threads unavailable (${why}); running single-threaded`);
    }
  }
  live = makeWasmKernels(inst, undefined, packCache);
}

/** The Wasm kernels, instantiating on first use; null if that failed (then the reference kernels run). */
function kernelsNow(): Partial<Kernels> | null {
  if (live || failed) return live;
  try {
    activate(instantiateSync(threadsWanted() > 1));
  } catch (e) {
    failed = e instanceof Error ? e.message : String(e);
    // re-register as an empty table: automatic selection then treats it as the reference backend
    registerBackend({ name: "wasm", priority: -1, kernels: {}, description: `WebAssembly backend unavailable (${failed})` });
  }
  return live;
}

function lazyTable(): Partial<Kernels> {
  const table: Record<string, (...args: never[]) => unknown> = {};
  for (const name of WASM_KERNEL_NAMES) {
    const ref = refKernels[name as keyof typeof refKernels] as ((...args: unknown[]) => unknown) | undefined;
    table[name] = (...args: never[]) => {
      const k = kernelsNow();
      const fn = (k ? k[name] : ref) as ((...a: unknown[]) => unknown) | undefined;
      if (!fn) throw new Error(`attnflow wasm backend: ${name} unavailable: the module failed to compile (${failed})`);
      return fn(...args);
    };
  }
  // dynamic-int8 linear: a module of its own (qlinear.ts), compiled at its first call
  let q8: Kernels["qlinear"] | null = null;
  const qlinear: Kernels["qlinear"] = (...args) => (q8 ??= makeWasmQlinear() ?? refKernels.qlinear!)(...args);
  // every attention kernel here (and the reference ones it falls back to) reads AttnArgs.alibi
  return { ...(table as Partial<Kernels>), qlinear, attnAlibi: true, attnWindow: true };
}

const isBrowserMainThread = (): boolean => {
  const g = globalThis as { window?: unknown; document?: unknown };
  return typeof g.window === "object" && typeof g.document === "object";
};

/** Register the backend (idempotent); false when this engine has no Wasm SIMD128 or ATTNFLOW_WASM=0. */
export function registerWasmBackend(): boolean {
  if (registered) return true;
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (env?.ATTNFLOW_WASM === "0" || !wasmSimdSupported()) return false;
  registered = true;
  const info = {
    name: "wasm", priority: WASM_BACKEND_PRIORITY,
    // a getter: the thread count is configured by the entry point after this module registers
    get description(): string {
      const n = live ? (pool ? pool.size + 1 : 1) : threadsWanted();
      const simd = (instance ? instance.relaxed : wasmRelaxedSimdActive()) ? "SIMD128 + relaxed SIMD (FMA)" : "SIMD128";
      return `WebAssembly ${simd} kernels (${n} thread${n > 1 ? "s" : ""}): packed GEMM, fused attention, row and elementwise kernels`;
    },
  };
  // Both paths register the same dispatching table, so a later instance (new thread configuration) replaces `live`
  // without re-registering.
  if (isBrowserMainThread()) {
    pending = compileAsync().then((ok) => {
      if (ok) registerBackend(Object.assign(info, { kernels: lazyTable() }));
      return ok;
    });
  } else {
    registerBackend(Object.assign(info, { kernels: lazyTable() }));
  }
  return true;
}

/** Browser main thread: compile and activate an instance for the current thread configuration. */
function compileAsync(): Promise<boolean> {
  return instantiateAsync(threadsWanted() > 1).then((inst) => { activate(inst); return true; },
    (e: unknown) => { failed = e instanceof Error ? e.message : String(e); return false; });
}

// configureWasmThreads after the module was instantiated: make a new instance for the new configuration (a shared
// memory is a property of the compiled module). On a browser's main thread the module compiled at import, before
// the page could configure threads, so this is the usual path there.
onWasmThreadConfig(() => {
  if (!registered || failed) return;
  if (isBrowserMainThread()) {
    const prev = pending ?? Promise.resolve(true);
    pending = prev.then((registeredOk) => registeredOk ? compileAsync() : false);
  } else if (instance) {
    pool?.terminate();
    pool = null;
    instance = null;
    live = null;       // the next kernel call instantiates for the new configuration
  }
});

/** Compile now (instead of on first use); resolves to whether the Wasm kernels are live. */
export async function wasmBackendReady(): Promise<boolean> {
  if (!registered && !registerWasmBackend()) return false;
  if (pending) return pending;
  return kernelsNow() !== null;
}

/** The live instance (tests and benchmarks: arena size), or null before first use. */
export function wasmInstance(): WasmInstance | null { return instance; }

/**
 * The Wasm backend's packed-weight cache (weights kept packed in Wasm memory between calls; pack-cache.ts): entries,
 * bytes, limit and counters of the live instance (all zero before the first kernel call).
 */
export function wasmPackCacheInfo(): PackCacheInfo {
  return packCache?.info() ?? { entries: 0, bytes: 0, limit: packLimit ?? 0, hits: 0, packs: 0, admitted: 0, evicted: 0 };
}

/**
 * Cap the Wasm backend's packed-weight cache at `bytes` (default 256 MiB, or ATTNFLOW_PACK_CACHE_MB); 0 disables it
 * and frees its blocks (Wasm memory itself never shrinks: freed blocks are reused by later calls).
 */
export function setWasmPackCacheLimit(bytes: number): void {
  if (!(bytes >= 0)) throw new RangeError(`setWasmPackCacheLimit: bytes must be a non-negative number, got ${bytes}`);
  packLimit = bytes;
  packCache?.setLimit(bytes);
}

/** Worker threads now running kernels besides the caller (0 = single-threaded). */
export function wasmWorkerCount(): number { return pool ? pool.ready().length : 0; }

registerWasmBackend();
