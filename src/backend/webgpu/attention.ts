import type { GpuRuntime } from "./runtime.js";
import { unsupportedOn } from "../../device.js";
export function attentionFused(_rt: GpuRuntime) { return () => { throw unsupportedOn("webgpu", "scaledDotProductAttention"); }; }
