// The body of a Wasm kernel worker (browser-safe; the platform glue passes messages in): instantiate the module
// over the shared memory, flag ready, then forever: wait for a new generation, run the call list, flag done.
import { CONTROL, type WorkerInit } from "./threads.js";
import { ARENA_BASE } from "./arena.js";
import { instantiateWith } from "./module.js";

/** How long an idle worker polls for its next call list before it sleeps (ms). */
const SPIN_MS = 0.5;

export interface WorkerPort { onMessage(cb: (msg: unknown) => void): void }

export function startWasmWorker(port: WorkerPort): void {
  port.onMessage((msg) => {
    const init = msg as WorkerInit;
    if (!init || init.kind !== "attnflow-wasm-worker") return;
    const inst = instantiateWith(init.module, init.memory);
    const fns = Object.values(inst.exports) as ((...a: number[]) => void)[];
    const ctrl = new Int32Array(init.memory.buffer, 0, ARENA_BASE / 4);
    const b = CONTROL.base(init.slot);
    Atomics.store(ctrl, b + CONTROL.READY, 1);
    let gen = Atomics.load(ctrl, b + CONTROL.GO);
    for (;;) {
      // spin for up to SPIN_MS after a list before sleeping: the next list of the same forward pass (the next kernel
      // call, after the caller's copies) then starts without a futex wake-up (tens of µs idle, far more when busy)
      const t0 = performance.now();
      for (let i = 1; Atomics.load(ctrl, b + CONTROL.GO) === gen; i++) if ((i & 255) === 0 && performance.now() - t0 > SPIN_MS) break;
      while (Atomics.load(ctrl, b + CONTROL.GO) === gen) Atomics.wait(ctrl, b + CONTROL.GO, gen);
      gen = Atomics.load(ctrl, b + CONTROL.GO);
      if (Atomics.load(ctrl, b + CONTROL.QUIT)) return;
      try {
        const addr = Atomics.load(ctrl, b + CONTROL.LIST), n = Atomics.load(ctrl, b + CONTROL.LEN);
        let list = new Float64Array(init.memory.buffer, addr);   // re-read: the memory may have grown
        for (let c = 0, p = 0; c < n; c++) {
          const fn = fns[list[p]], k = list[p + 1];
          const args: number[] = [];
          for (let a = 0; a < k; a++) args.push(list[p + 2 + a]);
          p += 2 + k;
          fn(...args);
          if (list.buffer.byteLength !== init.memory.buffer.byteLength) list = new Float64Array(init.memory.buffer, addr);
        }
      } catch {
        Atomics.store(ctrl, b + CONTROL.ERR, 1);
      }
      Atomics.store(ctrl, b + CONTROL.DONE, gen);
      Atomics.notify(ctrl, b + CONTROL.DONE);
    }
  });
}
