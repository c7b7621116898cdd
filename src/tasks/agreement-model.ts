// The browser-safe half of the "agreement" task (subject–verb number agreement, Linzen et al. 2016, as set up by
// Abnar & Zuidema 2020 for their Table 1): a checkpoint's config → model, prediction and the explanation target of
// one sentence prefix. The Node task (src/node/tasks/agreement.ts) adds the data files, the loss and evaluation.
//
//   "the keys to the cabinet"  ─ whitespace tokens (the data is tokenised already) ─ [CLS] + word ids (1, T)
//     ─ TextClassifier (CLS pooling) ─ logits (1, 2) over [singular, plural]: the number of the verb that follows.
//
// Explained score: the log-odds of the target class, z_target − z_other. Blank-out replaces one word with [UNK] (as
// A&Z do) and takes the drop of that score; the drop's ranks equal those of the drop in the target's probability
// (softmax of two logits is monotone in their difference), which is what A&Z rank.
import { Tensor } from "../tensor.js";
import { noGrad } from "../autograd.js";
import type { Generator } from "../random.js";
import { trainedModelFromBytes } from "../io/checkpoint-bytes.js";
import { Tokenizer, CLS_ID, UNK_ID, type TokenizerJSON } from "../data/tokenizer.js";
import { TextClassifier, type TextClassifierConfig } from "../models/text-classifier.js";
import type { ExplainInput, ExplainTarget, ModelConfig, ModelOptionSpec, Prediction } from "./task.js";
import { checkConfigFields, rules as r, type FieldRule } from "./config-check.js";

export const AGREEMENT_LABELS = ["singular", "plural"] as const;

/** Everything besides the weights (stored in checkpoints); flat, so every field is a `train agreement` option. */
export interface AgreementConfig extends TextClassifierConfig {
  task: "agreement";
  /** Vocabulary: words seen >= minFreq times in the training prefixes, at most maxVocab tokens with specials (0: no cap). */
  minFreq: number;
  maxVocab: number;
  /** Fraction of training words replaced by [UNK] (word dropout; also trains the blank-out token). */
  tokenDropout: number;
  /** Training micro-batches are length-sorted groups of at most this many padded tokens. */
  groupTokens: number;
  /** Weight each training example by N / (2 · N_its_class) so both numbers count equally (absent in older checkpoints). */
  balanceClasses?: boolean;
  tokenizer: TokenizerJSON;
  labels: string[];
  [key: string]: unknown;
}

/** A&Z's encoder: 6 layers, 8 heads, hidden 128, a [CLS] token read by the classifier. */
export const AGREEMENT_OPTIONS: Readonly<Record<string, ModelOptionSpec>> = {
  dModel: { default: 128, help: "hidden width (A&Z: 128)" },
  depth: { default: 6, help: "encoder layers (A&Z: 6)" },
  heads: { default: 8, help: "attention heads per layer (A&Z: 8; must divide d-model)" },
  ff: { default: 512, help: "hidden width of each layer's MLP" },
  maxLen: { default: 64, help: "longest prefix in tokens, with [CLS]" },
  normFirst: { default: true, help: "pre-norm (true) or post-norm (false) layers" },
  activation: { default: "gelu", help: "gelu or relu" },
  dropout: { default: 0.1, help: "dropout probability in [0, 1)" },
  minFreq: { default: 2, help: "a word's minimum count in the training prefixes to enter the vocabulary" },
  maxVocab: { default: 10000, help: "vocabulary size limit with the special tokens (Linzen et al.: 10,000); 0: none" },
  tokenDropout: { default: 0, help: "fraction of training words replaced by [UNK]" },
  groupTokens: { default: 4096, help: "tokens per length-grouped sub-batch" },
  balanceClasses: { default: false, help: "weight the loss so singular and plural count equally (mined text is ~2/3 singular)" },
};

const RULES: Record<string, FieldRule> = {
  task: r.oneOf(["agreement"]), vocabSize: r.vocab(7), dModel: r.width(), depth: r.layers(1), heads: r.width(), ff: r.width(),
  maxLen: r.length(2), dropout: r.fraction(), normFirst: r.bool(true), activation: r.oneOf(["gelu", "relu"], true),
  pooling: r.oneOf(["cls"]), numClasses: r.int(2, 2), minFreq: r.int(1, 1_000_000_000), maxVocab: r.vocab(0),
  tokenDropout: r.fraction(), groupTokens: r.int(1, 1 << 30), balanceClasses: r.bool(true), tokenizer: r.object(), labels: r.strings(2),
};

const state = new WeakMap<TextClassifier, { cfg: AgreementConfig; tok: Tokenizer }>();

/** The config and tokenizer a model was built with (by agreementFromConfig). */
export function agreementState(model: TextClassifier): { cfg: AgreementConfig; tok: Tokenizer } {
  const s = state.get(model);
  if (!s) throw new Error("agreement: model was not created by this task (use createModel or modelFromConfig)");
  return s;
}

/** A fresh (untrained) model for a stored config, after checking it. */
export function agreementFromConfig(config: ModelConfig, gen?: Generator): TextClassifier {
  checkConfigFields("agreement", config, RULES);
  const cfg = config as AgreementConfig;
  const tok = Tokenizer.fromJSON(cfg.tokenizer);
  if (tok.vocabSize !== cfg.vocabSize) throw new Error(`agreement: tokenizer has ${tok.vocabSize} tokens but vocabSize is ${cfg.vocabSize}`);
  if (cfg.labels.join(",") !== AGREEMENT_LABELS.join(",")) throw new Error(`agreement: labels must be ${AGREEMENT_LABELS.join(", ")}, got ${cfg.labels.join(", ")}`);
  const model = new TextClassifier(cfg, gen);
  state.set(model, { cfg, tok });
  return model;
}

/** Whitespace tokens of an already tokenised, lowercased sentence prefix (Linzen's format). */
export function prefixTokens(text: string): string[] {
  return text.toLowerCase().split(/\s+/).filter((w) => w !== "");
}

/** [CLS] + word ids ([UNK] for unknown words); an error when longer than maxLen. */
export function encodePrefix(tok: Tokenizer, words: readonly string[], maxLen: number): Int32Array {
  if (words.length + 1 > maxLen) throw new Error(`agreement: the prefix has ${words.length} words; the model reads at most ${maxLen - 1} (maxLen ${maxLen} with [CLS])`);
  return Int32Array.from([CLS_ID, ...words.map((w) => tok.tokenToId(w))]);
}

function idsOf(tok: Tokenizer, maxLen: number, input: ExplainInput | string): Int32Array {
  const text = typeof input === "string" ? input : input.text;
  if (text !== undefined) return encodePrefix(tok, prefixTokens(text), maxLen);
  if (typeof input !== "string" && input.ids) {
    const bad = input.ids.findIndex((i) => !Number.isInteger(i) || i < 0 || i >= tok.vocabSize);
    if (bad >= 0) throw new Error(`agreement: ids[${bad}] = ${input.ids[bad]} is not a token id in [0, ${tok.vocabSize})`);
    const ids = input.ids[0] === CLS_ID ? input.ids : [CLS_ID, ...input.ids];
    if (ids.length > maxLen) throw new Error(`agreement: ${ids.length} ids exceed maxLen ${maxLen}`);
    return Int32Array.from(ids);
  }
  throw new Error("agreement: needs a text (a tokenised sentence prefix, up to the verb) or ids");
}

/** Logits (2) of one encoded prefix, no grad. */
export function agreementLogits(model: TextClassifier, ids: Int32Array): Float32Array {
  return noGrad(() => Float32Array.from(model.forward(Tensor.fromArray(ids, [1, ids.length])).dataSync() as Float32Array));
}

function targetIndexOf(target: string | undefined, predicted: number): number {
  if (target === undefined || target === "") return predicted;
  const t = target.toLowerCase();
  const byName = AGREEMENT_LABELS.findIndex((l) => l === t || l[0] === t);
  if (byName >= 0) return byName;
  if (t === "0" || t === "1") return Number(t);
  throw new Error(`agreement: unknown target '${target}' (singular, plural, s, p, 0 or 1)`);
}

/** The predicted number of the verb after a sentence prefix, with both probabilities. */
export function predictAgreement(model: TextClassifier, config: ModelConfig, input: string): Prediction {
  const { tok } = agreementState(model);
  const words = prefixTokens(input);
  const z = agreementLogits(model, encodePrefix(tok, words, model.config.maxLen));
  const m = Math.max(z[0], z[1]), e0 = Math.exp(z[0] - m), e1 = Math.exp(z[1] - m);
  const p = [e0 / (e0 + e1), e1 / (e0 + e1)];
  const ranked = AGREEMENT_LABELS.map((l, c) => ({ output: l, score: p[c] })).sort((a, b) => b.score - a.score);
  void config;
  return {
    output: ranked[0].output, alternatives: ranked, scoreName: "probability",
    details: { tokens: ["[CLS]", ...words], unknownWords: [...new Set(words.filter((w) => tok.tokenToId(w) === UNK_ID))] },
  };
}

/** What runExplanation needs to explain the number `target` (default: the predicted one) after one prefix. */
export function explainAgreement(model: TextClassifier, config: ModelConfig, input: ExplainInput | string, target?: string): ExplainTarget {
  const { tok } = agreementState(model);
  void config;
  const ids = idsOf(tok, model.config.maxLen, input);
  const z = agreementLogits(model, ids);
  const targetIndex = targetIndexOf(target, z[1] > z[0] ? 1 : 0);
  const idList = Array.from(ids);
  const other = 1 - targetIndex;
  return {
    tokens: idList.map((i, k) => (i === UNK_ID && typeof input !== "string" && input.text !== undefined ? `${prefixTokens(input.text)[k - 1]}?` : tok.idToToken(i))),
    targetLabel: AGREEMENT_LABELS[targetIndex],
    targetIndex,
    // log-odds z_target − z_other (shape []): ranks of its blank-out drops equal those of the target probability's
    score: (o = {}) => {
      const x = Int32Array.from(idList);
      for (const p of o.occlude ?? []) {
        if (!Number.isInteger(p) || p < 0 || p >= x.length) throw new RangeError(`agreement: occluded position ${p} not in [0, ${x.length})`);
        x[p] = UNK_ID;
      }
      const logits = model.forward(Tensor.fromArray(x, [1, x.length]), { onEmbeddings: o.onEmbeddings }).select(0, 0);  // (2)
      return logits.select(0, targetIndex).sub(logits.select(0, other));                                                 // ()
    },
    layerFilter: (name) => /^encoder\.layers\.\d+\.self_attn$/.test(name),
    special: [0],
    query: 0,
  };
}

/** A trained agreement model from the bytes of its checkpoint (e.g. fetched in a page). */
export function agreementFromCheckpoint(bytes: Uint8Array, source = "checkpoint"): { model: TextClassifier; config: AgreementConfig } {
  const { model, config } = trainedModelFromBytes(bytes, source, "agreement", (c) => agreementFromConfig(c));
  return { model, config: config as AgreementConfig };
}
