// The browser-safe half of the "fortunes-classifier" task: a checkpoint's config → model and tokenizer, prediction
// and the explanation target of one text. The Node task (src/node/tasks/fortunes-classifier.ts) adds the data files,
// training loss and evaluation; a web page uses this file directly (`textClassifierFromCheckpoint(bytes)`), so the
// text it explains never leaves the page.
import { Tensor } from "../tensor.js";
import { noGrad } from "../autograd.js";
import { tidy } from "../scope.js";
import type { Generator } from "../random.js";
import { trainedModelFromBytes } from "../io/checkpoint-bytes.js";
import { Tokenizer, CLS_ID, type TokenizerJSON } from "../data/tokenizer.js";
import { TextClassifier, lengthGroups, padIds, type TextClassifierConfig } from "../models/text-classifier.js";
import type { ExplainInput, ExplainTarget, ModelConfig, ModelOptionSpec, Prediction, Truncation } from "./task.js";
import { checkConfigFields, rules as r, type FieldRule } from "./config-check.js";

export const MASK = "[MASK]";
export const MASK_ID = 6;
/** The product brief's example sentence (src/brief.ts), the page's default text. */
export { BRIEF_SENTENCE } from "../brief.js";

/**
 * Everything the task keeps about a model besides its weights (the JSON stored in checkpoints). Flat, so every
 * field is a `attnflow train` option (--d-model 64, --init runs/fortunes-mlm.safetensors, ...).
 */
export interface ClassifierConfig extends TextClassifierConfig {
  task: "fortunes-classifier";
  /**
   * Vocabulary: words seen >= minFreq times in the labeled training texts ("train") or in the whole unlabeled
   * corpus ("corpus"; what masked-LM pre-training uses), at most maxVocab tokens (0 = no cap).
   */
  vocabFrom: "train" | "corpus";
  minFreq: number;
  maxVocab: number;
  /** Cross-entropy label smoothing in training. */
  labelSmoothing: number;
  /** "balanced": weight each example's loss by N / (C · count of its class) in the training set (helps macro-F1). */
  classWeight: "none" | "balanced";
  /** Fraction of input words replaced by [MASK] in training (word dropout; also trains the occlusion token). */
  tokenDropout: number;
  /** Weight of an auxiliary masked-LM loss on the dropped-out words (adds the masked-LM head). */
  mlmWeight: number;
  /** Training micro-batches are length-sorted groups of at most this many padded tokens. */
  groupTokens: number;
  /** Masked-LM (or classifier) checkpoint the encoder and vocabulary are taken from; "" = from scratch. */
  init: string;
  tokenizer: TokenizerJSON;
  labels: string[];
  [key: string]: unknown;
}

/** Tokenizer from a stored config; checks that [MASK] sits at id 6. */
export function tokenizerFromConfig(config: ModelConfig): Tokenizer {
  if (!config.tokenizer) throw new Error("model config has no 'tokenizer' field");
  const tok = Tokenizer.fromJSON(config.tokenizer);
  if (tok.tokenToId(MASK) !== MASK_ID) throw new Error(`model config tokenizer: ${MASK} must have id ${MASK_ID}`);
  return tok;
}

const state = new WeakMap<TextClassifier, { cfg: ClassifierConfig; tok: Tokenizer }>();
/** The config and tokenizer a model was built with (by classifierFromConfig). */
export function classifierState(model: TextClassifier): { cfg: ClassifierConfig; tok: Tokenizer } {
  const s = state.get(model);
  if (!s) throw new Error("fortunes-classifier: model was not created by this task (use createModel or modelFromConfig)");
  return s;
}

/** [CLS] + word ids, truncated to maxLen. */
export function encodeText(tok: Tokenizer, text: string, maxLen: number): Int32Array {
  return Int32Array.from(tok.encode(text, { cls: true, maxLength: maxLen }));
}

/** Fields of a text-classifier config shared by the classifier and masked-LM tasks (task knobs may be absent in old configs). */
/** The encoder's model options (kebab-case flags of `train <task>`), shared by the classifier and masked-LM tasks. */
export const TEXT_ENCODER_OPTIONS: Readonly<Record<string, ModelOptionSpec>> = {
  dModel: { default: 128, help: "embedding width" },
  depth: { default: 4, help: "encoder layers" },
  heads: { default: 4, help: "attention heads per layer (must divide d-model)" },
  ff: { default: 512, help: "hidden width of each layer's MLP" },
  maxLen: { default: 128, help: "longest input in tokens, with [CLS]" },
  normFirst: { default: true, help: "pre-norm (true) or post-norm (false) layers" },
  activation: { default: "gelu", help: "gelu or relu" },
};

export const TEXT_ENCODER_RULES: Record<string, FieldRule> = {
  vocabSize: r.vocab(MASK_ID + 1), dModel: r.width(), depth: r.layers(0), heads: r.width(), ff: r.width(), maxLen: r.length(2),
  dropout: r.fraction(), normFirst: r.bool(true), activation: r.oneOf(["gelu", "relu"], true), pooling: r.oneOf(["cls", "mean"]),
  mlmHead: r.bool(true), numClasses: r.int(0, 100_000), padId: r.int(0, 0, true), tokenizer: r.object(),
  minFreq: r.int(1, 1_000_000_000), maxVocab: r.vocab(0), groupTokens: r.int(1, 1 << 30),
};

const CLASSIFIER_RULES: Record<string, FieldRule> = {
  ...TEXT_ENCODER_RULES, task: r.oneOf(["fortunes-classifier"], true), labels: r.strings(1),
  vocabFrom: r.oneOf(["train", "corpus"]), labelSmoothing: r.fraction(), classWeight: r.oneOf(["none", "balanced"]),
  tokenDropout: r.fraction(), mlmWeight: r.number(0, 1000), init: r.string(),
};

/** How a text is cut by encodeText (its end dropped), or undefined when it fits in maxLen positions. */
export function textTruncation(tok: Tokenizer, text: string, maxLen: number): Truncation | undefined {
  const total = tok.encode(text, { cls: true }).length;
  return total > maxLen ? { total, kept: maxLen, dropped: total - maxLen, from: "end" } : undefined;
}

/** A fresh (untrained) classifier for a stored config, after checking that its tokenizer and labels fit. */
export function classifierFromConfig(config: ModelConfig, gen?: Generator): TextClassifier {
  checkConfigFields("fortunes-classifier", config, CLASSIFIER_RULES);
  const cfg = config as ClassifierConfig;
  if (!Array.isArray(cfg.labels)) throw new Error("fortunes-classifier: model config needs a 'labels' field");
  const tok = tokenizerFromConfig(cfg);
  if (tok.vocabSize !== cfg.vocabSize) throw new Error(`fortunes-classifier: tokenizer has ${tok.vocabSize} tokens but vocabSize is ${cfg.vocabSize}`);
  if (cfg.numClasses !== cfg.labels.length) throw new Error(`fortunes-classifier: ${cfg.labels.length} labels but numClasses is ${cfg.numClasses}`);
  const model = new TextClassifier(cfg, gen);
  state.set(model, { cfg, tok });
  return model;
}

/** Per-example class logits (N, C) as a flat Float32Array, batched by length, no grad. */
export function classifyIds(model: TextClassifier, seqs: readonly Int32Array[], onProgress?: (done: number, total: number) => void): Float32Array {
  const C = model.config.numClasses;
  const out = new Float32Array(seqs.length * C);
  let done = 0;
  noGrad(() => {
    for (const g of lengthGroups(seqs.map((_, i) => i), (i) => seqs[i].length, 4096)) {
      tidy(() => {
        const { ids, B, T } = padIds(g.map((i) => seqs[i]));
        const logits = model.forward(Tensor.fromArray(ids, [B, T])).dataSync() as Float32Array;   // (B, C)
        g.forEach((i, b) => out.set(logits.subarray(b * C, (b + 1) * C), i * C));
      });
      done += g.length;
      onProgress?.(done, seqs.length);
    }
  });
  return out;
}

export function softmaxRow(z: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(z));
  const e = Array.from(z, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function resolveTarget(cfg: ClassifierConfig, target: string | undefined, predicted: number): number {
  if (target === undefined || target === "") return predicted;
  const byName = cfg.labels.findIndex((l) => l.toLowerCase() === target.toLowerCase());
  if (byName >= 0) return byName;
  const n = Number(target);
  if (Number.isInteger(n) && n >= 0 && n < cfg.labels.length) return n;
  throw new Error(`fortunes-classifier: unknown target '${target}' (a class name: ${cfg.labels.join(", ")}; or an index 0..${cfg.labels.length - 1})`);
}

function inputIds(tok: Tokenizer, maxLen: number, input: ExplainInput | string): Int32Array {
  if (typeof input === "string") return encodeText(tok, input, maxLen);
  if (input.text !== undefined) return encodeText(tok, input.text, maxLen);
  if (input.ids) {
    const bad = input.ids.findIndex((i) => !Number.isInteger(i) || i < 0 || i >= tok.vocabSize);
    if (bad >= 0) throw new Error(`fortunes-classifier: ids[${bad}] = ${input.ids[bad]} is not a token id in [0, ${tok.vocabSize})`);
    const ids = input.ids[0] === CLS_ID ? input.ids : [CLS_ID, ...input.ids];
    if (ids.length > maxLen) throw new Error(`fortunes-classifier: ${ids.length} ids exceed maxLen ${maxLen}`);
    return Int32Array.from(ids);
  }
  throw new Error("fortunes-classifier: explain needs a text (or ids) input");
}

/** Class probabilities of one text, best first, with its tokens and the words outside the vocabulary. */
export function predictText(model: TextClassifier, config: ModelConfig, input: string): Prediction {
  const ids = encodeText(tokenizerFromConfig(config as ClassifierConfig), input, model.config.maxLen);
  return predictionOf(model, config as ClassifierConfig, input, ids, classifyIds(model, [ids]));
}

/** The logits of one text, read back with await: for a model on a device (WebGPU); works on the CPU too. */
async function logitsAsync(model: TextClassifier, ids: Int32Array): Promise<Float32Array> {
  const logits = noGrad(() => model.forward(Tensor.fromArray(ids, [1, ids.length])));
  try { return await logits.data() as Float32Array; } finally { logits.dispose(); }
}

/** predictText for a model on a device (`model.to("webgpu")`): the logits are read back with await. */
export async function predictTextAsync(model: TextClassifier, config: ModelConfig, input: string): Promise<Prediction> {
  const ids = encodeText(tokenizerFromConfig(config as ClassifierConfig), input, model.config.maxLen);
  return predictionOf(model, config as ClassifierConfig, input, ids, await logitsAsync(model, ids));
}

/** explainText for a model on a device: the predicted class (the default target) is read back with await. */
export async function explainTextAsync(model: TextClassifier, config: ModelConfig, input: ExplainInput | string, target?: string): Promise<ExplainTarget> {
  if (target !== undefined && target !== "") return explainText(model, config, input, target);
  const z = await logitsAsync(model, inputIds(tokenizerFromConfig(config as ClassifierConfig), model.config.maxLen, input));
  return explainText(model, config, input, String(z.indexOf(Math.max(...z))));
}

function predictionOf(model: TextClassifier, cfg: ClassifierConfig, input: string, ids: Int32Array, logits: ArrayLike<number>): Prediction {
  const tok = tokenizerFromConfig(cfg);
  const p = softmaxRow(logits);
  const ranked = cfg.labels.map((l, c) => ({ output: l, score: p[c] })).sort((a, b) => b.score - a.score);
  const words = tok.tokenize(input);
  const cut = textTruncation(tok, input, model.config.maxLen);
  return {
    output: ranked[0].output,
    alternatives: ranked,
    scoreName: "probability",
    details: {
      tokens: Array.from(ids, (i) => tok.idToToken(i)),
      unknownWords: [...new Set(words.filter((w) => tok.tokenToId(w) === 1))],
      truncated: cut !== undefined,
      ...(cut ? { droppedTokens: cut.dropped } : {}),
    },
  };
}

/** What runExplanation needs to explain the class `target` (default: the predicted one) for one text. */
export function explainText(model: TextClassifier, config: ModelConfig, input: ExplainInput | string, target?: string): ExplainTarget {
  const cfg = config as ClassifierConfig;
  const tok = tokenizerFromConfig(cfg);
  const ids = inputIds(tok, model.config.maxLen, input);
  // the prediction (a forward pass) only when no target is named
  const targetIndex = target === undefined || target === "" ? (() => { const z = classifyIds(model, [ids]); return z.indexOf(Math.max(...z)); })() : resolveTarget(cfg, target, -1);
  const idList = Array.from(ids);
  const text = typeof input === "string" ? input : input.text;
  const truncation = text === undefined ? undefined : textTruncation(tok, text, model.config.maxLen);
  return {
    tokens: idList.map((i) => tok.idToToken(i)),
    targetLabel: cfg.labels[targetIndex],
    targetIndex,
    score: (o = {}) => model.score(idList, targetIndex, { occlude: o.occlude, occludeId: MASK_ID, onEmbeddings: o.onEmbeddings }),
    layerFilter: (name) => /^encoder\.layers\.\d+\.self_attn$/.test(name),
    special: [0],
    query: model.config.pooling === "cls" ? 0 : "mean",
    ...(truncation ? { truncation } : {}),
  };
}

/**
 * A trained classifier from the bytes of its checkpoint (e.g. `await (await fetch(url)).arrayBuffer()` in a page):
 * the model in eval mode with its weights, and its config.
 */
export function textClassifierFromCheckpoint(bytes: Uint8Array, source = "checkpoint"): { model: TextClassifier; config: ClassifierConfig } {
  const { model, config } = trainedModelFromBytes(bytes, source, "fortunes-classifier", (c) => classifierFromConfig(c));
  return { model, config: config as ClassifierConfig };
}
