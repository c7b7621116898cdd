// Node entry point: everything from the browser entry, plus Node-only helpers and the native CPU backend.
export * from "./index.js";
export { readSafetensorsFile, writeSafetensorsFile, writeFileAtomic } from "./node/safetensors-file.js";
export { loadFashionMnist } from "./node/datasets.js";
import { registerNativeBackend } from "./node/native-backend.js";
registerNativeBackend();
export { attentionFlowParallel, FlowWorkerPool } from "./node/flow-workers.js";
export { configureNodeWasmThreads, wasmThreadsFromEnv } from "./node/wasm-threads.js";
import { configureNodeWasmThreads } from "./node/wasm-threads.js";
// Wasm kernels in Node run on worker_threads (ATTNFLOW_THREADS, else every CPU); the Wasm module starts lazily.
configureNodeWasmThreads();
export * as hf from "./hf/node-index.js"; // shadows index.js's browser-only hf: adds folders on disk
