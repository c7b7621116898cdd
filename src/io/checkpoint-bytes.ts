// The attnflow checkpoint format, read from bytes (browser-safe; src/node/checkpoint.ts reads and writes files): one
// safetensors file holding the model weights under their state-dict names, the optimizer state under "optimizer/",
// and JSON metadata — format, task, model config, trainer state, metrics, notes, training history.
import { pruneHeads } from "../nn/prune.js";
import type { Tensor } from "../tensor.js";
import type { Module } from "../nn/module.js";
import type { ModelConfig } from "../tasks/task.js";
import { parseSafetensors, SafetensorsError, type StTensor } from "./safetensors.js";
import { toTensor } from "./state-dict.js";
import { checkConfigFields, ConfigError, rules as r, type FieldRule } from "../tasks/config-check.js";
import { quantizeDynamic, QUANTIZATION_KEY, QUANTIZATION_METHOD } from "../nn/quantize.js";

/** What a dynamic-int8 checkpoint records (metadata "quantization"): the method and the layers that are int8. */
export interface QuantizationInfo {
  method: typeof QUANTIZATION_METHOD;
  /** State-dict names of the int8 layers (nn.quantizeDynamic's report). */
  modules: string[];
  /** Human-readable: weights per output channel int8, activations per row u8 (7 bits), int32 accumulation. */
  scheme?: string;
  /** Metrics of the float model it was made from (held-out, as `eval` measures them), when measured. */
  floatMetrics?: Record<string, number>;
}

export const CHECKPOINT_FORMAT = "attnflow-checkpoint-v1";

/** A checkpoint that parses as safetensors but is not a usable attnflow checkpoint; the message starts with its source. */
export class CheckpointError extends Error {
  /** The metadata or config field at fault, when there is one (e.g. `config.labelSmoothing`). */
  readonly field?: string;
  constructor(message: string, field?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CheckpointError";
    if (field !== undefined) this.field = field;
  }
}

/** Errors of building a model from a stored config become CheckpointErrors naming the file; programming errors pass. */
export function asCheckpointError(e: unknown, path: string, what: string): unknown {
  if (!(e instanceof Error) || e instanceof CheckpointError) return e;
  if (!["Error", "RangeError", "ConfigError", "TokenizerError"].includes(e.name)) return e; // TypeError etc.: a bug, keep its stack
  const field = (e as { field?: unknown }).field;
  return new CheckpointError(`${path}: ${what}: ${e.message}`, typeof field === "string" ? `config.${field}` : undefined, { cause: e });
}
export const OPT_PREFIX = "optimizer/";

/** Where training stopped: enough to continue to exactly the same result. */
export interface TrainerState {
  epoch: number;            // current epoch (0-based)
  batchInEpoch: number;     // next batch to run in that epoch
  globalStep: number;       // optimizer steps done
  totalSteps: number;       // planned optimizer steps of the whole run
  seed: number;
  rng: number[];            // default generator state (dropout)
  options: { epochs: number; batchSize: number; lr: number; weightDecay: number; warmupSteps: number; clipNorm: number;
    limitTrain?: number; limitTest?: number; data?: string };
  /**
   * Per finished epoch: the mean train loss over `batches` batches — all of the epoch's, resumed or not; fewer only
   * when an epoch was resumed from a checkpoint written before the running sums were saved (null: none measured).
   */
  history: { step: number; epoch: number; loss: number | null; batches?: number; metrics?: Record<string, number> }[];
  finished: boolean;
  /** Running sums over the current epoch's batches done so far, so a resumed epoch's mean covers all of them. */
  epochLossSum?: number;
  epochLossBatches?: number;
}

export interface RawCheckpoint {
  /** Where it came from (a file path, a URL, a name): errors start with it. */
  path: string;
  task: string;
  config: ModelConfig;
  weights: Map<string, Tensor>;
  optimizer?: { tensors: Record<string, Float32Array>; scalars: Record<string, number> };
  trainer?: TrainerState;
  metrics?: Record<string, number>;
  /** Free-form notes (how it was trained). */
  notes?: string;
  /** Training summary kept in exported (inference-only) checkpoints. */
  history?: unknown;
  /** Present when the weights are dynamic-int8 (attnflow quantize). */
  quantization?: QuantizationInfo;
  /** Attention heads removed (attnflow prune): { attention layer index: original head indices }, HF's pruned_heads. */
  prunedHeads?: Record<number, number[]>;
}

/** Metadata key of a pruned checkpoint's heads (the same {layer: heads} object as HF's config.pruned_heads). */
export const PRUNED_HEADS_KEY = "pruned_heads";

function parseJsonField<T>(path: string, field: string, text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try { return JSON.parse(text) as T; } catch (e) {
    throw new CheckpointError(`${path}: metadata field "${field}" is not valid JSON (${(e as Error).message})`, `__metadata__.${field}`);
  }
}

const count = (min = 0): FieldRule => r.int(min, Number.MAX_SAFE_INTEGER);
const TRAINER_RULES: Record<string, FieldRule> = {
  epoch: count(), batchInEpoch: count(), globalStep: count(), totalSteps: count(), seed: r.number(-(2 ** 53), 2 ** 53),
  rng: r.ints(0, 2 ** 32 - 1), options: r.object(), history: r.list(), finished: r.bool(),
};
const TRAINER_OPTION_RULES: Record<string, FieldRule> = {
  epochs: count(1), batchSize: count(1), lr: { type: "number", min: 0, max: 1e6, minExclusive: true }, weightDecay: r.number(0, 1e6),
  warmupSteps: count(), clipNorm: r.number(0, 1e12), limitTrain: count(0), limitTest: count(0), data: r.string(true),
};
for (const k of ["limitTrain", "limitTest"]) TRAINER_OPTION_RULES[k] = { ...TRAINER_OPTION_RULES[k], optional: true };

/** checkConfigFields for a metadata field (`trainer`, `trainer.options`, ...): a CheckpointError naming `prefix.field`. */
function checkMeta(path: string, prefix: string, value: unknown, fieldRules: Record<string, FieldRule>): void {
  try {
    checkConfigFields(`${path}: metadata "${prefix}"`, value as ModelConfig, fieldRules, "field");
  } catch (e) {
    if (e instanceof ConfigError) throw new CheckpointError(e.message, `__metadata__.${prefix}.${e.field}`, { cause: e });
    throw e;
  }
}

const HISTORY_RULES: Record<string, FieldRule> = {
  step: count(), epoch: count(), loss: { type: "number", min: -Infinity, max: Infinity, nullable: true }, metrics: r.numbers(true, true),
};

/** The JSON metadata fields other than the config, checked by shape: `info` prints them and `--resume` relies on them. */
function checkStateFields(path: string, trainer: unknown, metrics: unknown, scalars: unknown): void {
  if (trainer !== undefined) {
    checkMeta(path, "trainer", trainer, TRAINER_RULES);
    checkMeta(path, "trainer.options", (trainer as { options: unknown }).options, TRAINER_OPTION_RULES);
    (trainer as { history: unknown[] }).history.forEach((h, i) => checkMeta(path, `trainer.history[${i}]`, h, HISTORY_RULES));
  }
  const numbers = (field: string, v: unknown, nullable: boolean) => {
    const ok = typeof v === "object" && v !== null && !Array.isArray(v) &&
      Object.values(v).every((x) => (typeof x === "number" && Number.isFinite(x)) || (nullable && x === null));
    if (!ok) throw new CheckpointError(`${path}: metadata "${field}" must be an object of numbers${nullable ? " (or null)" : ""}, got ${JSON.stringify(v).slice(0, 60)}`, `__metadata__.${field}`);
  };
  if (metrics !== undefined) numbers("metrics", metrics, true);
  if (scalars !== undefined) numbers("optimizer", scalars, false);
}

/** A checkpoint from its parsed safetensors (tensors + metadata); `path` names it in errors. */
export function parseCheckpoint(st: { tensors: Map<string, StTensor>; metadata: Record<string, string> }, path: string): RawCheckpoint {
  const { tensors, metadata } = st;
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${path}: not an attnflow checkpoint (metadata "format" is ${metadata.format === undefined ? "missing" : JSON.stringify(metadata.format)}, expected "${CHECKPOINT_FORMAT}"); ` +
      `plain state dicts load with loadModule()`, "__metadata__.format");
  }
  if (!metadata.task) throw new CheckpointError(`${path}: checkpoint metadata has no "task" field`, "__metadata__.task");
  const config = parseJsonField<ModelConfig>(path, "config", metadata.config);
  if (!config || typeof config !== "object" || Array.isArray(config)) {
    throw new CheckpointError(`${path}: checkpoint metadata has no model "config" object (got ${config === undefined ? "none" : JSON.stringify(config).slice(0, 40)})`, "__metadata__.config");
  }
  const weights = new Map<string, Tensor>();
  const optTensors: Record<string, Float32Array> = {};
  for (const [name, t] of tensors) {
    if (name.startsWith(OPT_PREFIX)) optTensors[name.slice(OPT_PREFIX.length)] = toTensor(name, t).dataSync() as Float32Array;
    else weights.set(name, toTensor(name, t));
  }
  const scalars = parseJsonField<Record<string, number>>(path, "optimizer", metadata.optimizer);
  const trainer = parseJsonField<TrainerState>(path, "trainer", metadata.trainer);
  const metrics = parseJsonField<Record<string, number>>(path, "metrics", metadata.metrics);
  checkStateFields(path, trainer, metrics, scalars);
  const quantization = parseJsonField<QuantizationInfo>(path, QUANTIZATION_KEY, metadata[QUANTIZATION_KEY]);
  if (quantization !== undefined && (typeof quantization !== "object" || quantization === null || quantization.method !== QUANTIZATION_METHOD ||
    !Array.isArray(quantization.modules) || !quantization.modules.every((m) => typeof m === "string"))) {
    throw new CheckpointError(`${path}: metadata "${QUANTIZATION_KEY}" must be {"method": "${QUANTIZATION_METHOD}", "modules": [names]}, got ${JSON.stringify(quantization).slice(0, 80)}`, `__metadata__.${QUANTIZATION_KEY}`);
  }
  const prunedHeads = parseJsonField<Record<number, number[]>>(path, PRUNED_HEADS_KEY, metadata[PRUNED_HEADS_KEY]);
  if (prunedHeads !== undefined && (typeof prunedHeads !== "object" || prunedHeads === null || Array.isArray(prunedHeads) ||
    !Object.entries(prunedHeads).every(([k, v]) => /^\d+$/.test(k) && Array.isArray(v) && v.every((h) => Number.isInteger(h) && h >= 0)))) {
    throw new CheckpointError(`${path}: metadata "${PRUNED_HEADS_KEY}" must be {"layer": [head indices]}, got ${JSON.stringify(prunedHeads).slice(0, 80)}`, `__metadata__.${PRUNED_HEADS_KEY}`);
  }
  return {
    quantization, prunedHeads,
    path, task: metadata.task, config, weights,
    optimizer: scalars ? { tensors: optTensors, scalars } : undefined,
    trainer,
    metrics,
    notes: metadata.notes,
    history: parseJsonField<unknown>(path, "history", metadata.history),
  };
}

/** A checkpoint from the bytes of its file (e.g. fetched by a page); `source` names it in errors. */
export function checkpointFromBytes(bytes: Uint8Array, source = "checkpoint"): RawCheckpoint {
  let st: ReturnType<typeof parseSafetensors>;
  try {
    st = parseSafetensors(bytes, { aligned: true }); // attnflow writes every tensor aligned to its item size
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${source}: ${e.message}`, { offset: e.offset, field: e.field });
    throw e;
  }
  return parseCheckpoint(st, source);
}

/** Loads a checkpoint's weights into the model built from its config (strict), and switches it to eval mode. */
export function loadCheckpointWeights<M extends Module>(model: M, raw: RawCheckpoint): M {
  try {
    // a pruned checkpoint: the same heads go first (the projections shrink), then quantization, then the weights
    if (raw.prunedHeads) pruneHeads(model, raw.prunedHeads);
    // a dynamic-int8 checkpoint: the same layers become int8 (empty), then everything loads by name
    if (raw.quantization) quantizeDynamic(model, { only: raw.quantization.modules, structureOnly: true });
    model.loadStateDict(raw.weights, { strict: true });
  } catch (e) {
    throw new CheckpointError(`${raw.path}: weights do not fit the "${raw.task}" model built from the stored config: ${(e as Error).message}`, undefined, { cause: e });
  }
  model.eval();
  return model;
}

/** The trained model of a checkpoint of task `task`: `build` makes it from the stored config; eval mode. */
export function trainedModel<M extends Module>(raw: RawCheckpoint, task: string, build: (config: ModelConfig) => M): { model: M; config: ModelConfig } {
  if (raw.task !== task) throw new CheckpointError(`${raw.path}: a '${raw.task || "?"}' checkpoint, not a ${task} one`, "__metadata__.task");
  let model: M;
  try {
    model = build(raw.config);
  } catch (e) {
    throw asCheckpointError(e, raw.path, "stored model config");
  }
  return { model: loadCheckpointWeights(model, raw), config: raw.config };
}

/** checkpointFromBytes + trainedModel. */
export function trainedModelFromBytes<M extends Module>(bytes: Uint8Array, source: string, task: string, build: (config: ModelConfig) => M): { model: M; config: ModelConfig } {
  return trainedModel(checkpointFromBytes(bytes, source), task, build);
}
