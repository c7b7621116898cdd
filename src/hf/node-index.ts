// Node entry of the Hugging Face import: everything browser-safe plus folders on disk.
export * from "./index.js";
export { fromPretrained, fromPretrainedDir, savePretrainedDir, folderReader } from "./node-pretrained.js";
