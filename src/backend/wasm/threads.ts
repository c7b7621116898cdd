// Worker threads for the Wasm kernels (SharedArrayBuffer + Atomics; browser-safe: the platform's workers are
// created by a spawner the entry point provides — Web Workers in browsers, worker_threads in Node).
// Every worker instantiates the same module over the caller's shared memory and then only executes call lists:
// the caller's drivers split the work (executor.ts), write one list per worker into the arena, wake the workers,
// run their own share and wait. Control words live below ARENA_BASE, one 64-byte line per worker:
//   [0] go generation (caller bumps)  [1] done generation (worker)  [2] list address  [3] list length (calls)
//   [4] error flag  [5] ready flag  [6] quit
// A call list is float64s: fnIndex, nargs, args… (the index into the module's export names, in export order).
import { ARENA_BASE } from "./arena.js";
import type { Executor } from "./executor.js";
import type { WasmExports, WasmInstance } from "./module.js";

export const MAX_WORKERS = ARENA_BASE / 64 - 1;
const WORDS = 16;   // per worker control line (int32 words)
const GO = 0, DONE = 1, LIST = 2, LEN = 3, ERR = 4, READY = 5, QUIT = 6;

/** The message a new worker receives first (then it only reads shared memory). */
export interface WorkerInit { kind: "attnflow-wasm-worker"; module: WebAssembly.Module; memory: WebAssembly.Memory; slot: number }

/** What the caller needs of a platform worker. */
export interface WorkerHandle { postMessage(msg: unknown): void; terminate(): unknown }
/** Starts one worker running `startWasmWorker` (worker-main.ts). */
export type WorkerSpawner = () => WorkerHandle;

export interface ThreadConfig { threads: number; spawn: WorkerSpawner }

let config: ThreadConfig | null = null;
let onChange: (() => void) | null = null;

/**
 * Use `threads` threads (the caller + threads − 1 workers) for the Wasm kernels; threads ≤ 1 or no shared memory:
 * one thread. May be called at any time: an instance already made for another configuration is replaced — on a
 * browser's main thread by an asynchronous compile (await `wasmBackendReady()`; calls made meanwhile run on the
 * previous instance), elsewhere at the next kernel call.
 */
export function configureWasmThreads(c: ThreadConfig | null): void {
  config = c;
  onChange?.();
}
export function wasmThreadConfig(): ThreadConfig | null { return config; }
/** The backend's hook for configuration changes (register.ts). */
export function onWasmThreadConfig(cb: () => void): void { onChange = cb; }

const ctrlView = (memory: WebAssembly.Memory) => new Int32Array(memory.buffer, 0, ARENA_BASE / 4);
const base = (slot: number) => WORDS * (slot + 1);   // line 0 is left to the caller

/** Workers sharing one instance's memory. */
export class WorkerPool {
  private workers: WorkerHandle[] = [];
  private gens: number[] = [];
  private readonly names: string[];

  constructor(private readonly inst: WasmInstance, count: number, spawn: WorkerSpawner) {
    if (!inst.shared) throw new Error("WorkerPool: the instance's memory is not shared");
    this.names = Object.keys(inst.exports);
    const ctrl = ctrlView(inst.memory);
    for (let s = 0; s < Math.min(count, MAX_WORKERS); s++) {
      for (let w = 0; w < WORDS; w++) Atomics.store(ctrl, base(s) + w, 0);
      const wk = spawn();
      wk.postMessage({ kind: "attnflow-wasm-worker", module: inst.module, memory: inst.memory, slot: s } satisfies WorkerInit);
      this.workers.push(wk);
      this.gens.push(0);
    }
  }

  /** Workers started (ready or still starting). */
  get size(): number { return this.workers.length; }

  /** Slots of the workers that finished starting (they may still be starting: never waited for). */
  ready(): number[] {
    const ctrl = ctrlView(this.inst.memory), out: number[] = [];
    for (let s = 0; s < this.workers.length; s++) if (Atomics.load(ctrl, base(s) + READY) === 1) out.push(s);
    return out;
  }

  fnIndex(name: string): number {
    const i = this.names.indexOf(name);
    if (i < 0) throw new Error(`executor: no kernel ${name}`);
    return i;
  }

  /** Hand a call list (already in the arena) to worker `slot`. */
  dispatch(slot: number, listAddr: number, calls: number): void {
    const ctrl = ctrlView(this.inst.memory), b = base(slot);
    Atomics.store(ctrl, b + LIST, listAddr);
    Atomics.store(ctrl, b + LEN, calls);
    Atomics.store(ctrl, b + ERR, 0);
    this.gens[slot] = (this.gens[slot] + 1) | 0;
    Atomics.store(ctrl, b + GO, this.gens[slot]);
    Atomics.notify(ctrl, b + GO);
  }

  /** Whether this thread may block in Atomics.wait (a browser's main thread may not: it spins instead). */
  private canWait = true;

  /** Wait for worker `slot` to finish its last list; throws if a call failed there. */
  wait(slot: number): void {
    const ctrl = ctrlView(this.inst.memory), b = base(slot), g = this.gens[slot];
    let spins = 0;
    for (;;) {
      const d = Atomics.load(ctrl, b + DONE);
      if (d === g) break;
      if (spins < 2000 || !this.canWait) { spins++; continue; }
      // found out once: an exception per poll would allocate (and collect garbage) for as long as the worker runs
      try { Atomics.wait(ctrl, b + DONE, d, 50); } catch { this.canWait = false; }
    }
    if (Atomics.load(ctrl, b + ERR) !== 0) throw new Error(`attnflow wasm backend: a kernel failed on worker ${slot}`);
  }

  terminate(): void {
    const ctrl = ctrlView(this.inst.memory);
    for (let s = 0; s < this.workers.length; s++) {
      Atomics.store(ctrl, base(s) + QUIT, 1);
      Atomics.store(ctrl, base(s) + GO, (this.gens[s] + 1) | 0);
      Atomics.notify(ctrl, base(s) + GO);
      void this.workers[s].terminate();
    }
    this.workers = [];
  }
}

/** An executor over the caller and the pool's ready workers (counted when it is created). */
export class PoolExecutor implements Executor {
  readonly threads: number;
  private readonly slots: number[];
  private local: { fn: (...a: number[]) => void; args: number[] }[] = [];
  private remote: number[][];

  constructor(private readonly x: WasmExports, private readonly inst: WasmInstance, private readonly pool: WorkerPool) {
    this.slots = pool.ready();
    this.threads = 1 + this.slots.length;
    this.remote = this.slots.map(() => []);
  }

  push(t: number, fn: string, ...args: number[]): void {
    if (!(t >= 0 && t < this.threads)) throw new RangeError(`executor: thread ${t} does not exist (${this.threads} threads)`);
    if (t === 0) {
      const f = this.x[fn];
      if (!f) throw new Error(`executor: no kernel ${fn}`);
      this.local.push({ fn: f, args });
      return;
    }
    this.remote[t - 1].push(this.pool.fnIndex(fn), args.length, ...args);
  }

  run(): void {
    const started: number[] = [];
    try {
      this.remote.forEach((list, i) => {
        if (!list.length) return;
        const addr = this.inst.arena.alloc(8 * list.length);
        new Float64Array(this.inst.memory.buffer, addr, list.length).set(list);
        let calls = 0;
        for (let p = 0; p < list.length; p += 2 + list[p + 1]) calls++;
        this.pool.dispatch(this.slots[i], addr, calls);
        started.push(this.slots[i]);
        this.remote[i] = [];
      });
      const local = this.local;
      this.local = [];
      for (const c of local) c.fn(...c.args);
    } finally {
      for (const s of started) this.pool.wait(s);
    }
  }
}

/** Worker side: control-line helpers shared with worker-main.ts. */
export const CONTROL = { WORDS, GO, DONE, LIST, LEN, ERR, READY, QUIT, base } as const;

/** Below this much work (flops) a call stays on the calling thread: waking workers costs ~10–50 µs. */
export const THREAD_MIN_FLOPS = 4e6;

/** Start `count` workers on a shared-memory instance; returns the executor picker for makeWasmKernels. */
export function startPool(inst: WasmInstance, count: number, spawn: WorkerSpawner, serial: Executor): { pool: WorkerPool; executorFor: (flops: number) => Executor } {
  const pool = new WorkerPool(inst, count, spawn);
  return { pool, executorFor: (flops) => (flops < THREAD_MIN_FLOPS ? serial : new PoolExecutor(inst.exports, inst, pool)) };
}
