// A Wasm instance on shared memory with a pool of one worker thread (Node's worker_threads), started and waited for:
// what the threaded Wasm kernel tests run on. The caller terminates `pool` when done.
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { instantiateSync } from "../../src/backend/wasm/module.js";
import { startPool } from "../../src/backend/wasm/threads.js";
import { SerialExecutor } from "../../src/backend/wasm/executor.js";

export async function startOneWorkerPool() {
  const mainUrl = new URL("../../src/backend/wasm/worker-main.js", import.meta.url).href;
  const code = `const { parentPort } = require("node:worker_threads");
    import(${JSON.stringify(mainUrl)}).then((m) => m.startWasmWorker({ onMessage: (cb) => parentPort.on("message", cb) }));`;
  const inst = instantiateSync(true);
  const { pool, executorFor } = startPool(inst, 1, () => { const w = new Worker(code, { eval: true }); w.unref(); return w; },
    new SerialExecutor(inst.exports));
  // a worker starts in well under a second on an idle machine; the cap only guards against a hang (a loaded
  // machine under `taskset -c 0` with a CPU hog beside it takes many times longer)
  for (let i = 0; i < 2400 && pool.ready().length < 1; i++) await new Promise((r) => setTimeout(r, 25));
  if (pool.ready().length < 1) pool.terminate();
  assert.equal(pool.ready().length, 1, "the worker started");
  return { inst, pool, executorFor };
}
