// Task "fortunes-mlm": BERT-style masked-LM pre-training of the text-classifier encoder on the unlabeled text of
// every fortune file (both Debian packages), minus every held-out entry: the hash rule is the classification split's,
// so no test quotation of fortunes-classifier is ever seen. Fine-tune afterwards with
//   attnflow train fortunes-classifier --init <this task's checkpoint>
// Examples are entries (one row each: [CLS] + words, a random window of maxLen when longer); in each row 15 % of the
// words are targets (80 % → [MASK], 10 % → a random word, 10 % unchanged), at least one per row.
import { Tensor } from "../../tensor.js";
import * as F from "../../functional.js";
import { noGrad } from "../../autograd.js";
import { tidy } from "../../scope.js";
import { defaultGenerator, Generator } from "../../random.js";
import { CLS_ID, PAD_ID, SEP_ID, type Tokenizer, type TokenizerJSON } from "../../data/tokenizer.js";
import { FORTUNES_DIR } from "../datasets.js";
import { TextClassifier, lengthGroups, maskTokens, padIds, type TextClassifierConfig } from "../../models/text-classifier.js";
import type { DataOptions, ModelConfig, Prediction, Task } from "../../tasks/task.js";
import { checkConfigFields, rules as r, type FieldRule } from "../../tasks/config-check.js";
import { TEXT_ENCODER_OPTIONS, TEXT_ENCODER_RULES } from "../../tasks/fortunes-classifier-model.js";
import { MASK, MASK_ID, buildWordVocab, fortuneCorpus, hashOrder, numOpt, tokenizerFromConfig } from "./fortunes-classifier.js";

export interface FortunesMlmData {
  /** Normalised entries used for training (all files, minus held-out ones) and the held-out entries (validation). */
  train: string[];
  val: string[];
  /** The whole training corpus, which the vocabulary is built from (also when limitTrain shortens `train`). */
  corpus: string[];
  /** Whole encoded entries ([CLS] + ids, not cropped), per tokenizer. */
  cache: WeakMap<Tokenizer, { train: Int32Array[]; val: Int32Array[] }>;
}

/** Flat model config (every field but the derived ones is an `attnflow train` option). */
export interface MlmConfig extends TextClassifierConfig {
  task: "fortunes-mlm";
  /** Vocabulary: words seen >= minFreq times in the training corpus, at most maxVocab tokens (0 = no cap). */
  vocabFrom: "corpus";
  minFreq: number;
  maxVocab: number;
  tokenizer: TokenizerJSON;
  [key: string]: unknown;
  /** Fraction of words that are prediction targets. */
  maskRate: number;
  /** Micro-batches are length-sorted groups of at most this many padded tokens. */
  groupTokens: number;
}

const state = new WeakMap<TextClassifier, { cfg: MlmConfig; tok: Tokenizer }>();
function stateOf(model: TextClassifier): { cfg: MlmConfig; tok: Tokenizer } {
  const s = state.get(model);
  if (!s) throw new Error("fortunes-mlm: model was not created by this task (use createModel or modelFromConfig)");
  return s;
}

function encodedEntries(data: FortunesMlmData, tok: Tokenizer): { train: Int32Array[]; val: Int32Array[] } {
  let e = data.cache.get(tok);
  const enc = (t: string) => Int32Array.from(tok.encode(t, { cls: true }));
  if (!e) data.cache.set(tok, (e = { train: data.train.map(enc), val: data.val.map(enc) }));
  return e;
}

/** [CLS] + a window of at most maxLen − 1 words starting at a random (or the first) word. */
function crop(seq: Int32Array, maxLen: number, random: (() => number) | null): Int32Array {
  if (seq.length <= maxLen) return seq;
  const start = random ? 1 + Math.floor(random() * (seq.length - maxLen + 1)) : 1;
  const out = new Int32Array(maxLen);
  out[0] = CLS_ID;
  out.set(seq.subarray(start, start + maxLen - 1), 1);
  return out;
}

const PROTECT: ReadonlySet<number> = new Set([PAD_ID, CLS_ID, SEP_ID]);

/**
 * Summed masked-LM cross-entropy over the rows (a graph when withGrad, else only its value `lossSum`), the number
 * of targets and the number predicted correctly.
 */
function mlmBatch(model: TextClassifier, cfg: MlmConfig, rows: Int32Array[], random: () => number, withGrad: boolean):
  { loss: Tensor | null; lossSum: number; count: number; correct: number } {
  let loss: Tensor | null = null;
  let lossSum = 0, count = 0, correct = 0;
  for (const g of lengthGroups(rows.map((_, i) => i), (i) => rows[i].length, cfg.groupTokens)) {
    const { ids, B, T } = padIds(g.map((i) => rows[i]));
    const m = maskTokens(ids, B, T, { rate: cfg.maskRate, maskId: MASK_ID, firstRandomId: MASK_ID + 1, vocabSize: cfg.vocabSize, protect: PROTECT, atLeastOne: true }, random);
    if (m.positions.length === 0) continue;
    const step = () => {
      const { hidden } = model.encode(Tensor.fromArray(ids, [B, T]));                     // (B, T, D)
      const logits = model.mlmLogits(hidden, m.positions);                              // (M, V)
      const l = F.crossEntropy(logits, Tensor.fromArray(m.targets, [m.targets.length]), { reduction: "sum" });
      const pred = logits.argmax(1).dataSync() as Int32Array;
      for (let k = 0; k < pred.length; k++) if (pred[k] === m.targets[k]) correct++;
      return l;
    };
    count += m.positions.length;
    if (withGrad) { const l = step(); loss = loss ? loss.add(l) : l; }
    else lossSum += tidy(() => step().item());
  }
  return { loss, lossSum, count, correct };
}

const MLM_RULES: Record<string, FieldRule> = {
  ...TEXT_ENCODER_RULES, task: r.oneOf(["fortunes-mlm"], true), vocabFrom: r.oneOf(["corpus"]),
  maskRate: { type: "number", min: 0, max: 1, minExclusive: true, maxExclusive: true },
};

function fromConfig(config: ModelConfig, gen?: Generator): TextClassifier {
  checkConfigFields("fortunes-mlm", config, MLM_RULES);
  const cfg = config as MlmConfig;
  const tok = tokenizerFromConfig(cfg);
  if (tok.vocabSize !== cfg.vocabSize) throw new Error(`fortunes-mlm: tokenizer has ${tok.vocabSize} tokens but vocabSize is ${cfg.vocabSize}`);
  if (!cfg.mlmHead) throw new Error("fortunes-mlm: model config must have mlmHead: true");
  const model = new TextClassifier(cfg, gen);
  state.set(model, { cfg, tok });
  return model;
}

const DERIVED = new Set(["task", "vocabSize", "numClasses", "pooling", "mlmHead", "tokenizer", "padId", "vocabFrom"]);

/** Ids of a text in which the literal "[MASK]" marks the words to predict. */
function idsWithMasks(tok: Tokenizer, text: string): number[] {
  const parts = text.split(MASK);
  const ids: number[] = [CLS_ID];
  parts.forEach((p, i) => { if (i > 0) ids.push(MASK_ID); ids.push(...tok.encode(p)); });
  return ids;
}

export const task: Task<TextClassifier, FortunesMlmData> = {
  name: "fortunes-mlm",
  description: "Masked-LM pre-training of the fortunes-classifier encoder on all fortune files (held-out entries excluded)",
  defaults: { epochs: 10, batchSize: 64, lr: 1e-3, weightDecay: 0.01, warmupSteps: 200, clipNorm: 1, evalLimit: 1000 },

  loadData(o: DataOptions): FortunesMlmData {
    const c = fortuneCorpus(o.data ?? FORTUNES_DIR);
    const train = o.limitTrain !== undefined ? hashOrder(c.train.map((text) => ({ text }))).slice(0, o.limitTrain).map((e) => e.text) : c.train;
    const val = o.limitTest !== undefined ? hashOrder(c.heldOut.map((text) => ({ text }))).slice(0, o.limitTest).map((e) => e.text) : c.heldOut;
    return { train, val, corpus: c.train, cache: new WeakMap() };
  },

  trainSize: (data) => data.train.length,

  modelOptions: {
    ...TEXT_ENCODER_OPTIONS,
    minFreq: { default: 3, help: "a word's minimum count to enter the vocabulary" },
    maxVocab: { default: 0, help: "vocabulary size limit; 0: none" },
    dropout: { default: 0.1, help: "dropout probability in [0, 1)" },
    maskRate: { default: 0.15, help: "fraction of words to predict, in (0, 1)" },
    groupTokens: { default: 4096, help: "tokens per length-grouped sub-batch" },
  },

  createModel(data, o, gen) {
    const derived = Object.keys(o).filter((k) => DERIVED.has(k));
    if (derived.length) throw new Error(`fortunes-mlm: ${derived.join(", ")} cannot be set (derived from the data and vocabulary)`);
    const int = (k: string, d: number, min = 1) => numOpt(o, k, d, (v) => Number.isInteger(v) && v >= min);
    const maxVocab = int("maxVocab", 0, 0);
    const tok = buildWordVocab(data.corpus, int("minFreq", 3), maxVocab > 0 ? maxVocab : undefined);
    const act = o.activation ?? "gelu";
    if (act !== "gelu" && act !== "relu") throw new Error(`fortunes-mlm: option 'activation' must be gelu or relu, got ${String(act)}`);
    const normFirst = o.normFirst ?? true;
    if (typeof normFirst !== "boolean") throw new Error("fortunes-mlm: option 'normFirst' must be true or false");
    const cfg: MlmConfig = {
      task: "fortunes-mlm",
      vocabSize: tok.vocabSize, dModel: int("dModel", 128), depth: int("depth", 4), heads: int("heads", 4), ff: int("ff", 512),
      maxLen: int("maxLen", 128, 2), normFirst, activation: act, vocabFrom: "corpus", minFreq: int("minFreq", 3), maxVocab,
      dropout: numOpt(o, "dropout", 0.1, (v) => v >= 0 && v < 1), numClasses: 0, pooling: "cls", mlmHead: true,
      maskRate: numOpt(o, "maskRate", 0.15, (v) => v > 0 && v < 1),
      groupTokens: int("groupTokens", 4096),
      tokenizer: tok.toJSON(),
    };
    const unknown = Object.keys(o).filter((k) => !(k in cfg));
    if (unknown.length) throw new Error(`fortunes-mlm: unknown option(s) ${unknown.join(", ")} (options: ${Object.keys(cfg).filter((k) => !DERIVED.has(k)).join(", ")})`);
    return { model: fromConfig(cfg, gen), config: cfg };
  },

  modelFromConfig: (config) => fromConfig(config),

  loss(model, data, indices) {
    const { cfg, tok } = stateOf(model);
    const seqs = encodedEntries(data, tok).train;
    const random = () => defaultGenerator.random();
    const rows = Array.from(indices, (i) => {
      if (!(i >= 0 && i < seqs.length)) throw new RangeError(`fortunes-mlm loss: index ${i} outside the ${seqs.length} training entries`);
      return crop(seqs[i], model.config.maxLen, random);
    });
    const { loss, count } = mlmBatch(model, cfg, rows, random, true);
    if (!loss) throw new Error("fortunes-mlm loss: no maskable words in the batch");
    return loss.div(count);
  },

  evaluate(model, data, o = {}) {
    const { cfg, tok } = stateOf(model);
    const seqs = encodedEntries(data, tok).val;
    const n = Math.min(o.limit ?? seqs.length, seqs.length);
    const rows = seqs.slice(0, n).map((s) => crop(s, model.config.maxLen, null));
    const gen = new Generator(1234);                                                      // the same targets at every evaluation
    let count = 0, correct = 0, lossSum = 0;
    noGrad(() => {
      for (let s = 0; s < rows.length; s += 256) {
        const r = mlmBatch(model, cfg, rows.slice(s, s + 256), () => gen.random(), false);
        count += r.count; correct += r.correct; lossSum += r.lossSum;
        o.onProgress?.(Math.min(s + 256, rows.length), rows.length);
      }
    });
    const loss = lossSum / Math.max(1, count);
    return { accuracy: correct / Math.max(1, count), loss, perplexity: Math.exp(loss) };
  },

  predictFlags: [],
  predict(model, config, input): Prediction {
    const tok = tokenizerFromConfig(config);
    const ids = idsWithMasks(tok, input).slice(0, model.config.maxLen);
    const positions = Int32Array.from(ids.flatMap((id, t) => (id === MASK_ID ? [t] : [])));
    if (positions.length === 0) throw new Error(`fortunes-mlm predict: write ${MASK} where a word should be filled in, e.g. "the cat sat on the ${MASK}."`);
    const probs = noGrad(() => tidy(() => {
      const { hidden } = model.encode(Tensor.fromArray(Int32Array.from(ids), [1, ids.length]));
      return F.softmax(model.mlmLogits(hidden, positions), -1).dataSync() as Float32Array; // (M, V)
    }));
    const V = model.config.vocabSize;
    const top = (m: number) => Array.from(probs.subarray(m * V, (m + 1) * V), (p, id) => ({ id, p }))
      .filter((x) => x.id > MASK_ID).sort((a, b) => b.p - a.p).slice(0, 5);
    const filled = [...ids];
    positions.forEach((t, m) => { filled[t] = top(m)[0].id; });
    return {
      output: tok.decode(filled),
      alternatives: top(0).map((x) => ({ output: tok.idToToken(x.id), score: x.p })),
      scoreName: "probability (first [MASK])",
      details: { tokens: ids.map((i) => tok.idToToken(i)) },
    };
  },
};
