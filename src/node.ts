// Node entry point: everything from the browser entry, plus Node-only helpers (files) and the native CPU backend.
export * from "./index.js";
export { readSafetensorsFile, writeSafetensorsFile, writeFileAtomic } from "./node/safetensors-file.js";
