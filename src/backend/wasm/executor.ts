// Runs queued calls of exported kernels on one or more threads. The drivers (attention.ts, gemm.ts) queue work per
// thread (0 = the calling thread), then run(): workers (threads.ts) execute their queues from shared memory while
// the caller executes its own, and run() returns when all are done. Without workers everything runs on the caller.
import type { WasmExports } from "./module.js";

export interface Executor {
  /** Threads available now (1 + ready workers). */
  readonly threads: number;
  /** Queue exports[fn](...args) on thread t (t < threads). */
  push(t: number, fn: string, ...args: number[]): void;
  /** Run every queued call and wait for all of them. */
  run(): void;
}

/** The caller only: calls run as they are pushed (same order, nothing to overlap). */
export class SerialExecutor implements Executor {
  readonly threads = 1;
  constructor(private readonly x: WasmExports) {}
  push(t: number, fn: string, ...args: number[]): void {
    if (t !== 0) throw new RangeError(`executor: thread ${t} does not exist (1 thread)`);
    const f = this.x[fn];
    if (!f) throw new Error(`executor: no kernel ${fn}`);
    f(...args);
  }
  run(): void { /* nothing queued */ }
}

/** Picks the executor for a call of about `flops` work (small calls stay on the calling thread). */
export type ExecutorFor = (flops: number) => Executor;
