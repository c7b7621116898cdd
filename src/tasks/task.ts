// The contract between an application (ViT on Fashion-MNIST, quotation topics, dates translation, character LM) and
// the generic machinery around it: the trainer (`attnflow train`), checkpoints, `attnflow eval`, `attnflow predict`,
// `attnflow explain`, `attnflow eval-faithfulness` and `attnflow demo`. A task owns its data, its model and its metrics;
// the machinery owns the loop, progress, optimizer, schedule, randomness and files.
//
// This file is browser-safe (types only). Tasks that read local files live under src/node/tasks/.
import type { Tensor } from "../tensor.js";
import type { Module } from "../nn/module.js";
import type { Generator } from "../random.js";

/** JSON-serialisable description of a model: everything needed to rebuild it (hyper-parameters, vocabulary, labels). */
export type ModelConfig = { [key: string]: unknown };

/** Options every task understands; `data` is a local directory or file overriding the default Debian location. */
export interface DataOptions {
  data?: string;
  /** Use at most this many training / held-out examples (CI runs and quick checks). */
  limitTrain?: number;
  limitTest?: number;
}

export interface TrainDefaults {
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** Linear warm-up steps before the cosine decay (the trainer uses CosineWithWarmup over the whole run). */
  warmupSteps: number;
  /** Clip the global gradient norm to this value (0 = off). */
  clipNorm: number;
  /** Evaluate on at most this many held-out examples during training (the final evaluation uses all). */
  evalLimit: number;
  /** Label smoothing or other task-specific knobs go in the model config, not here. */
}

/** One row of `attnflow predict` output, printable and JSON-able. */
export interface Prediction {
  /** The headline answer (class name, translation, generated text). */
  output: string;
  /** Optional ranked alternatives with scores (probabilities or log-probabilities, named in `scoreName`). */
  alternatives?: { output: string; score: number }[];
  scoreName?: string;
  /** Anything else worth printing (e.g. cross-attention alignment, tokens/s). */
  details?: Record<string, unknown>;
  /** True when predict already wrote `output` to stdout while producing it (streamed generation): print only the rest. */
  streamed?: boolean;
}

/** One input to explain: text, an image file, raw pixels (H·W floats in [0, 1], e.g. from a dataset) or token ids. */
export interface ExplainInput {
  text?: string; image?: string; pixels?: Float32Array; ids?: number[];
  /** The output to explain (e.g. the correct class of a held-out example); default: the predicted one. */
  target?: string;
}

/**
 * An input longer than the model reads, cut to fit: `total` positions the whole input needs, the `kept` ones the
 * model saw, `dropped` = total − kept, taken from the "end" (a classifier keeps the beginning) or the "start" (a
 * language model keeps the latest context). Reported by explain, eval-faithfulness, the HTML report and the page.
 */
export interface Truncation { total: number; kept: number; dropped: number; from: "start" | "end" }

/** What `attnflow explain` needs from a model on one input. */
export interface ExplainTarget {
  /** Labels of the input positions the importance scores refer to (tokens, or patch names "r2c5"). */
  tokens: string[];
  /** Name of the explained output (class name / target token) and its index. */
  targetLabel: string;
  targetIndex: number;
  /**
   * Run the model on the input and return the scalar score being explained (the target's logit, shape []).
   * `occlude`: input positions to blank out (replaced by the task's neutral value: [PAD]/[MASK] token, mean patch).
   * `onEmbeddings`: sees the input embeddings (1, T, D) right after the embedding layer and may return a replacement;
   * used for input × gradient (the caller makes them require grad).
   * Attention inside the call is captured by captureAttention() around it.
   */
  score(o?: { occlude?: readonly number[]; onEmbeddings?: (x: Tensor) => Tensor }): Tensor;
  /**
   * Optional: the scores of several occluded copies of the input in ONE batched forward pass, shape (K):
   * occlusions[k] = positions blanked out in copy k (as score's `occlude`). Blank-out uses it when given, so its T
   * forward passes cost what T batched forwards cost instead of T single ones.
   */
  scoreBatch?(occlusions: ReadonlyArray<readonly number[]>): Tensor;
  /** Which captured attention records form the explained stack (e.g. encoder self-attention only), by record name. */
  layerFilter?: (recordName: string) => boolean;
  /** Positions to leave out of importance (e.g. [CLS]); default none. */
  special?: number[];
  /**
   * Encoder–decoder models, where the explained output is not a position of the (square, source-side) stack: read
   * the stack through this distribution over its rows (length tokens.length, sums to 1) instead of one row — e.g. the
   * target position's head-/layer-averaged cross-attention. Importance of input j = Σ_i readout[i] · M[i, j] for the
   * raw-attention, rollout and flow matrices M. When given it replaces `query`.
   */
  readout?: Float64Array;
  /**
   * Whose attention row is explained: a position (the [CLS] token of a classifier, the last position of a language
   * model predicting the next token) or "mean" (rows of all non-special positions averaged, for mean-pooled
   * classifiers and encoders of a seq2seq). Default: the first `special` position when there is one, else "mean".
   */
  query?: number | "mean";
  /** Set when the input was cut to the model's maximum positions (the tokens above are the kept ones). */
  truncation?: Truncation;
  /**
   * Encoder–decoders: the decoder's input tokens (labels; the explained output is the logit at the last one), so that
   * explanations also show the decoder self-attention and the cross-attention of that position (src/explain/seq2seq.ts).
   * `filter` picks the decoder's attention records by name (default: names containing "decoder").
   */
  decoder?: { tokens: string[]; filter?: (recordName: string) => boolean };
  /** Encoder–decoders: labels of the decoder positions the score runs (start token + output so far), for the viewer (default: decoder.tokens). */
  decoderTokens?: string[];
  /** For image models: the grid of patches and the image itself, for overlays. */
  image?: { width: number; height: number; pixels: Float32Array; patch: number; grid: [number, number]; prefix: number };
}

/**
 * A command-line flag a task understands (e.g. `predict --temperature 0.8`): the parser needs its kind to know whether
 * the next word is its value; `type`/`min`/`max`/`choices` validate the value before anything runs.
 * Kinds: "switch" (never a value: --quiet), "value" (always one: --lr 1e-3 or --lr=1e-3), "optional-value"
 * (--json or --json=out.json; it takes the next word only where no positional argument could stand).
 */
export interface FlagSpec {
  name: string;
  kind: "switch" | "value" | "optional-value";
  /** One line for --help. */
  help: string;
  /** The value's placeholder in --help (N, X, FILE). */
  arg?: string;
  type?: "int" | "number";
  min?: number;
  /** `min` itself is not allowed (e.g. lr > 0). */
  minExclusive?: boolean;
  max?: number;
  /** `max` itself is not allowed (e.g. a ratio < 1). */
  maxExclusive?: boolean;
  choices?: readonly string[];
  /** An empty value ("") is allowed (e.g. --notes "" to clear notes); otherwise it is an error. */
  allowEmpty?: boolean;
  /** Shown in --help. */
  default?: string | number | boolean;
}

/** A model option of `attnflow train <task>` (given as --kebab-case V): its default and one line for --help. */
export interface ModelOptionSpec { default: unknown; help: string }

export interface Task<M extends Module = Module, D = unknown> {
  /** Command-line name, e.g. "fashion-vit". */
  readonly name: string;
  /** One line for `attnflow train --help`. */
  readonly description: string;
  readonly defaults: TrainDefaults;
  /** Load train and held-out data from local files (throws a clear error naming the missing package/path). */
  loadData(o: DataOptions): D;
  /** Number of training examples in `data`. */
  trainSize(data: D): number;
  /** A fresh model; `overrides` come from CLI flags like --d-model; `gen` seeds the initialisation. */
  createModel(data: D, overrides: ModelConfig, gen: Generator): { model: M; config: ModelConfig };
  /** Rebuild a model from a stored config (weights are loaded by the caller). */
  modelFromConfig(config: ModelConfig): M;
  /** Mean training loss over the examples at `indices` (model is in training mode; the trainer calls backward). */
  loss(model: M, data: D, indices: Int32Array): Tensor;
  /** Held-out metrics, headline metric first (e.g. { accuracy, loss }); model is in eval mode, no grad. */
  evaluate(model: M, data: D, o?: { limit?: number; onProgress?: (done: number, total: number) => void }): Record<string, number>;
  /**
   * Model options (camelCase keys) that `createModel` accepts as overrides, with their defaults: the command line's
   * `train <task> --help` lists them and unknown ones are rejected before any data is loaded. Without it any
   * `--name value` reaches createModel, which validates.
   */
  readonly modelOptions?: Readonly<Record<string, ModelOptionSpec>>;
  /** Flags `predict` passes to this task (beyond --model, --text/--image/--input, --json, --quiet). */
  readonly predictFlags?: readonly FlagSpec[];
  /** Run one input given on the command line (text, image path or ids). */
  predict(model: M, config: ModelConfig, input: string, o?: Record<string, string | boolean>): Prediction;
  /** Prepare an explanation of one input (text / image path / comma-separated ids); `target` picks the output. */
  explain?(model: M, config: ModelConfig, input: ExplainInput, target?: string): ExplainTarget;
  /** Held-out inputs for `attnflow eval-faithfulness` (as `explain` inputs). */
  faithfulnessInputs?(data: D, n: number): ExplainInput[];
}
