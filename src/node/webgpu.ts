// WebGPU in Node: the optional package `webgpu` (Dawn's Node bindings, prebuilt) provides the GPU object. Loaded only
// here, lazily, when asked for (ATTNFLOW_BACKEND=webgpu or initWebGPUNode()): the core never imports it.
import { initWebGPU, type WebGPUDevice } from "../backend/webgpu/index.js";

/**
 * Start the WebGPU device in Node. Without a GPU driver, SwiftShader (Chromium's software Vulkan) works when
 * VK_ICD_FILENAMES points at its ICD, e.g. /usr/lib/chromium/vk_swiftshader_icd.json (needs libvulkan1).
 */
export async function initWebGPUNode(opts: { powerPreference?: GPUPowerPreference } = {}): Promise<WebGPUDevice> {
  let mod: { create: (flags: string[]) => GPU; globals: object };
  try {
    mod = await import("webgpu" as string) as typeof mod;
  } catch (e) {
    throw new Error(`webgpu: the optional package "webgpu" (Dawn for Node) is not installed or does not load here: ${(e as Error).message.split("\n")[0]}`);
  }
  // Dawn's objects compare against its own GPU* classes (GPUBufferUsage, …); expose them like a browser does
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  return initWebGPU(mod.create([]), opts);
}
