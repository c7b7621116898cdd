// Node entry point: everything from the browser entry, plus Node-only helpers and the native CPU backend.
export * from "./index.js";
export { readSafetensorsFile, readSafetensorsFileSync, writeSafetensorsFile, writeFileAtomic } from "./node/safetensors-file.js";
export { FileReadError } from "./node/read-file.js";
export { loadFashionMnist } from "./node/datasets.js";
import { registerNativeBackend } from "./node/native-backend.js";
registerNativeBackend();
export { attentionFlowParallel, FlowWorkerPool } from "./node/flow-workers.js";
export { configureNodeWasmThreads, wasmThreadsFromEnv } from "./node/wasm-threads.js";
// Hugging Face tokenizers (tokenizer.json). Only in the Node entry: in a browser the module needs an import-map entry
// for @huggingface/tokenizers, so the browser entry does not pull it in (import dist/src/hf/tokenizer.js directly).
export { loadTokenizer, toHFInputs, type HFTokenizer } from "./hf/tokenizer.js";
export { loadTokenizerFromDir } from "./hf/node-tokenizer.js";
import { tokenizerFromReader } from "./hf/tokenizer.js";
import { setTokenizerLoader } from "./hf/pretrained.js";
// fromPretrained fills `tokenizer` from the folder's tokenizer.json (null when it has none)
setTokenizerLoader(tokenizerFromReader);
import { configureNodeWasmThreads } from "./node/wasm-threads.js";
// Wasm kernels in Node run on worker_threads (ATTNFLOW_THREADS, else every CPU); the Wasm module starts lazily.
configureNodeWasmThreads();
export * as hf from "./hf/node-index.js"; // shadows index.js's browser-only hf: adds folders on disk
// ATTNFLOW_BACKEND naming a backend that is unknown or unavailable here is an error, never a silent fallback
import { backendEnvProblem } from "./backend/registry.js";
// ATTNFLOW_BACKEND=webgpu: start the WebGPU device now (the optional `webgpu` package, loaded only then) and make it the
// default device; no adapter is an error saying why, never a silent fallback to the CPU
import { initWebGPUNode } from "./node/webgpu.js";
import { getDevice, setDefaultDevice } from "./device.js";
export { initWebGPUNode };
if (process.env.ATTNFLOW_BACKEND?.trim() === "webgpu") {
  try { await initWebGPUNode(); } catch (e) {
    throw new Error(`ATTNFLOW_BACKEND="webgpu": that backend is unavailable here: ${(e as Error).message}`);
  }
  setDefaultDevice("webgpu");
  // not silent: say where work runs (library code and commands other than parity still create CPU tensors)
  if (!process.env.ATTNFLOW_QUIET) {
    process.stderr.write(`attnflow: ${getDevice("webgpu").describe()} is the default device; tensors go there with t.to("webgpu") / ` +
      `module.to("webgpu") (npm run parity moves its models), everything else runs on the CPU backend\n`);
  }
}
const backendProblem = backendEnvProblem();
if (backendProblem) throw new Error(backendProblem);
