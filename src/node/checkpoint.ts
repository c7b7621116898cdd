// Checkpoints: one safetensors file holding the model weights (PyTorch state-dict names, loadable by torch), the
// optimizer state ("optimizer/<param index>.<name>"), and JSON metadata: task, model config, trainer state (epoch,
// position in the epoch, step, RNG state, options) and metrics. Written atomically (temp file + fsync + rename), so
// a crash or kill at any moment leaves the previous complete checkpoint in place.
import { readSafetensorsFile, writeFileAtomic } from "./safetensors-file.js";
import { saveSafetensors } from "../io/state-dict.js";
import { prunedHeadsOf } from "../nn/prune.js";
import { CHECKPOINT_FORMAT, PRUNED_HEADS_KEY, OPT_PREFIX, asCheckpointError, loadCheckpointWeights, parseCheckpoint, type RawCheckpoint, type TrainerState } from "../io/checkpoint-bytes.js";
import { Tensor } from "../tensor.js";
import type { Module } from "../nn/module.js";
import type { ModelConfig, Task } from "../tasks/task.js";
import { findTask } from "./tasks/index.js";

export { CHECKPOINT_FORMAT, CheckpointError, type RawCheckpoint, type TrainerState } from "../io/checkpoint-bytes.js";

/** What a checkpoint holds (RawCheckpoint's fields: task, config, optimizer, trainer, metrics, notes, history,
 *  quantization, prunedHeads), with the model in place of its weights. */
export interface CheckpointContents extends Omit<RawCheckpoint, "path" | "weights"> {
  /** The model, or its state dict (name → tensor). */
  model: Module | Map<string, Tensor>;
  /** Pruned heads; read from the model when it is a Module (nn.prunedHeadsOf), needed when it is a state dict. */
  prunedHeads?: Record<number, number[]>;
}

export function serializeCheckpoint(c: CheckpointContents, o: { floatDType?: "F32" | "F16" | "BF16" } = {}): Uint8Array {
  const tensors = c.model instanceof Map ? new Map(c.model) : new Map<string, Tensor>(Object.entries(c.model.stateDict()));
  if (c.optimizer) {
    for (const [k, v] of Object.entries(c.optimizer.tensors)) tensors.set(OPT_PREFIX + k, Tensor.fromArray(v, [v.length], "float32"));
  }
  const metadata: Record<string, string> = { format: CHECKPOINT_FORMAT, task: c.task, config: JSON.stringify(c.config) };
  if (c.optimizer) metadata.optimizer = JSON.stringify(c.optimizer.scalars);
  if (c.trainer) metadata.trainer = JSON.stringify(c.trainer);
  if (c.metrics) metadata.metrics = JSON.stringify(c.metrics);
  if (c.notes) metadata.notes = c.notes;
  if (c.history) metadata.history = JSON.stringify(c.history);
  if (c.quantization) metadata.quantization = JSON.stringify(c.quantization);
  const pruned = c.model instanceof Map ? c.prunedHeads : prunedHeadsOf(c.model);
  if (pruned && Object.keys(pruned).length) metadata[PRUNED_HEADS_KEY] = JSON.stringify(pruned);
  return saveSafetensors(tensors, { metadata, floatDType: o.floatDType, integrity: true });
}

export async function saveCheckpoint(path: string, c: CheckpointContents, o: { floatDType?: "F32" | "F16" | "BF16" } = {}): Promise<void> {
  await writeFileAtomic(path, serializeCheckpoint(c, o));
}

/**
 * A small, inference-only copy of a checkpoint: weights (optionally half precision), config, metrics, training history
 * and notes; no optimizer or resume state.
 */
export async function exportCheckpoint(src: string, dst: string, o: { half?: boolean; notes?: string } = {}): Promise<{ bytes: number }> {
  const ck = await readCheckpoint(src);
  const bytes = serializeCheckpoint({ task: ck.task, config: ck.config, model: ck.weights, metrics: ck.metrics,
    notes: o.notes ?? ck.notes, quantization: ck.quantization, prunedHeads: ck.prunedHeads, history: ck.trainer ? { options: ck.trainer.options, seed: ck.trainer.seed, steps: ck.trainer.globalStep, epochs: ck.trainer.history } : ck.history },
  { floatDType: o.half ? "F16" : "F32" });
  await writeFileAtomic(dst, bytes);
  return { bytes: bytes.length };
}

/** Read a checkpoint file without building the model. */
export async function readCheckpoint(path: string): Promise<RawCheckpoint> {
  return parseCheckpoint(await readSafetensorsFile(path, { aligned: true }), path);
}

export interface LoadedCheckpoint {
  task: Task;
  model: Module;
  config: ModelConfig;
  meta: { path: string; trainer?: TrainerState; metrics?: Record<string, number>; notes?: string };
  raw: RawCheckpoint;
}

/** Read a checkpoint, find its task, rebuild the model from the stored config and load the weights (eval mode). */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const raw = await readCheckpoint(path);
  let task: Task;
  try {
    task = await findTask(raw.task);
  } catch (e) {
    throw asCheckpointError(e, path, "metadata field \"task\"");
  }
  let built: Module;
  try {
    built = task.modelFromConfig(raw.config);
  } catch (e) {
    throw asCheckpointError(e, path, "stored model config");
  }
  const model = loadCheckpointWeights(built, raw);
  return { task, model, config: raw.config, meta: { path, trainer: raw.trainer, metrics: raw.metrics, notes: raw.notes }, raw };
}
