// attnflow: self-attention for TypeScript. Browser-safe entry point (Node adds native kernels via "attnflow" in Node).
export { Tensor, type NestedArray, type TensorLike } from "./tensor.js";
export type { DType } from "./dtype.js";
export { tensor, zeros, ones, full, zerosLike, onesLike, fullLike, arange, linspace, eye, randn, rand, randint, randperm } from "./creation.js";
export { cat, stack } from "./ops/movement.js";
export { where } from "./ops/elementwise.js";
export { noGrad, isGradEnabled, setGradEnabled } from "./autograd.js";
export { tidy, keep } from "./scope.js";
export { Generator, manualSeed, defaultGenerator } from "./random.js";
import "./backend/wasm/register.js"; // registers the Wasm SIMD backend (priority 10) where the engine supports it
export { setBackend, getBackend, availableBackends, registerBackend, nativeKernelNames, type BackendInfo } from "./backend/registry.js";
export type { Kernels, AttnArgs } from "./backend/kernels.js";
export { pool as bufferPool } from "./storage.js";
export * as functional from "./functional.js";
export * as F from "./functional.js";
export * as nn from "./nn/index.js";
export * as optim from "./optim/index.js";
export { clipGradNorm } from "./optim/clip.js";
export { parseSafetensors, serializeSafetensors, SafetensorsError, type StTensor, type StDType } from "./io/safetensors.js";
export { loadSafetensors, saveSafetensors, saveModule, loadModule } from "./io/state-dict.js";
export { captureAttention, activeRecorder, type AttentionRecord, type CaptureOptions } from "./explain/capture.js";
export * as data from "./data/index.js";
export * as explain from "./explain/index.js";
export { renderHtmlReport } from "./viz/html-report.js";
export { wasmBackendReady, wasmWorkerCount } from "./backend/wasm/register.js";
export { configureWasmThreads } from "./backend/wasm/threads.js";
export { configureBrowserWasmThreads } from "./backend/wasm/web-workers.js";
export { BRIEF_SENTENCE } from "./brief.js";
