// An attnflow checkpoint from its bytes (browser-safe; Node reads the file first, src/node/checkpoint.ts).
import type { Tensor } from "../tensor.js";
import type { Module } from "../nn/module.js";
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


/**
 * A trained model from checkpoint bytes of task `task`: `build` makes the model from the stored config, the weights
 * load strictly, and the model is returned in eval mode with its config. Errors name `source`.
 */
export function trainedModelFromBytes<M extends Module>(bytes: Uint8Array, source: string, task: string, build: (config: ModelConfig) => M): { model: M; config: ModelConfig } {
  const ck = checkpointFromBytes(bytes, source);
  if (ck.task !== task) throw new Error(`${source}: a '${ck.task || "?"}' checkpoint, not a ${task} one`);
  const model = build(ck.config);
  try {
    model.loadStateDict(ck.weights, { strict: true });
  } catch (e) {
    throw new Error(`${source}: weights do not fit the model built from the stored config: ${(e as Error).message}`);
  }
  model.eval();
  return { model, config: ck.config };
}
