// An attnflow checkpoint from its bytes (browser-safe; Node reads the file first, src/node/checkpoint.ts).
import type { Tensor } from "../tensor.js";
import type { ModelConfig } from "../tasks/task.js";
import { loadSafetensors } from "./state-dict.js";

/**
 * Model config and weights of an attnflow checkpoint's bytes (src/node/checkpoint.ts format: weights under their
 * state-dict names, optimizer state under "optimizer/", the config as JSON in metadata "config"). `source` names the
 * file in errors.
 */
export function checkpointFromBytes(bytes: Uint8Array, source = "checkpoint"): { task: string; config: ModelConfig; weights: Map<string, Tensor> } {
  let loaded: ReturnType<typeof loadSafetensors>;
  try {
    loaded = loadSafetensors(bytes);
  } catch (e) {
    throw new Error(`${source}: ${(e as Error).message}`);
  }
  const { tensors, metadata } = loaded;
  let config: ModelConfig | undefined;
  try { config = JSON.parse(metadata.config ?? "null") as ModelConfig; } catch { /* reported below */ }
  if (!config || typeof config !== "object") throw new Error(`${source}: no JSON model config in the safetensors metadata field "config"`);
  const weights = new Map<string, Tensor>();
  for (const [k, v] of tensors) if (!k.startsWith("optimizer/")) weights.set(k, v);
  return { task: metadata.task ?? "", config, weights };
}

