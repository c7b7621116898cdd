// Web Worker entry for the Wasm kernels (browsers). Spawn with
//   new Worker(new URL("./worker.js", import.meta.url), { type: "module" })
// and pass that spawner to configureWasmThreads (threads.ts). Node uses its own entry (worker_threads).
import { startWasmWorker } from "./worker-main.js";

const scope = globalThis as unknown as { onmessage: ((e: { data: unknown }) => void) | null };
startWasmWorker({ onMessage: (cb) => { scope.onmessage = (e) => cb(e.data); } });
