// Task "fortunes-classifier": the topic (8 categories) of a fortune quotation, with a small BERT-like encoder
// (src/models/text-classifier.ts). Data: Debian `fortunes` (+ `fortunes-min`), split by the fixed hash rule of
// docs/datasets.md; baseline: TF-IDF + logistic regression on the same split.
//
// Vocabulary: word tokens of the labeled training texts (vocabFrom "train", default) or of ALL fortune files minus
// every held-out entry ("corpus"; no test quotation ever contributes), kept when seen >= minFreq times, plus [MASK]
// at id 6 (occlusion, token dropout, masked-LM). Words outside it are [UNK]. The tokenizer and the labels are stored
// in the model config, so a checkpoint is self-contained.
// Pre-training: `init: <path of a fortunes-mlm checkpoint>` starts from its encoder and vocabulary.
// Training (defaults chosen on a validation part of the training split, scripts/train-fortunes-classifier.md):
// mean pooling, dropout 0.2, 20 % of the words replaced by [MASK], label smoothing 0.1, class-balanced loss.
import { existsSync } from "node:fs";
import { readSafetensorsBytesSync } from "../read-file.js";
import { Tensor } from "../../tensor.js";
import * as F from "../../functional.js";
import { defaultGenerator } from "../../random.js";
import { stableHash32, isHeldOut } from "../../data/hash.js";
import { parseFortuneFile, normalizeFortune, type LabeledText } from "../../data/fortunes.js";
import { Tokenizer, CLS_ID, PAD_ID, SEP_ID, type TokenizerJSON } from "../../data/tokenizer.js";
import { classificationReport } from "../../data/metrics.js";
import { TfidfLogReg } from "../../data/tfidf-logreg.js";
import { FORTUNES_DIR, listFortuneFiles, loadFortunes, readFortuneFiles } from "../datasets.js";
import { TextClassifier, lengthGroups, maskTokens, padIds } from "../../models/text-classifier.js";
import type { DataOptions, ModelConfig, Task } from "../../tasks/task.js";
import { checkpointFromBytes } from "../../io/checkpoint-bytes.js";
import {
  MASK, MASK_ID, TEXT_ENCODER_OPTIONS, classifierFromConfig, classifierState, classifyIds, encodeText, explainText, predictText,
  softmaxRow, tokenizerFromConfig, type ClassifierConfig,
} from "../../tasks/fortunes-classifier-model.js";

// The model half lives in src/tasks/fortunes-classifier-model.ts (browser-safe); these names are imported from here too.
export { BRIEF_SENTENCE, MASK, MASK_ID, classifyIds, encodeText, tokenizerFromConfig, type ClassifierConfig } from "../../tasks/fortunes-classifier-model.js";

// ---------- shared with fortunes-mlm ----------

/** Every fortune entry in `dir` (all files), normalised and deduplicated, split by the classification hash rule. */
export function fortuneCorpus(dir = FORTUNES_DIR): { train: string[]; heldOut: string[] } {
  const seen = new Set<string>();
  const train: string[] = [], heldOut: string[] = [];
  for (const f of readFortuneFiles(listFortuneFiles(dir), dir)) {
    for (const e of parseFortuneFile(f.text)) {
      const n = normalizeFortune(e);
      if (n === "" || seen.has(n)) continue;
      seen.add(n);
      (isHeldOut(n, 0.2) ? heldOut : train).push(n);
    }
  }
  return { train, heldOut };
}

/** Word tokenizer over `texts` (tokens seen >= minFreq times) with [MASK] at id 6. */
export function buildWordVocab(texts: readonly string[], minFreq = 3, maxVocab?: number): Tokenizer {
  const base = Tokenizer.train("word", texts, { minFreq, maxVocab: maxVocab === undefined ? undefined : maxVocab - 1 });
  return Tokenizer.fromTokens("word", [MASK, ...base.toJSON().tokens.slice(6)]);
}

/** Items in a fixed pseudo-random order (by text hash): prefixes are roughly stratified subsets. */
export function hashOrder<T extends { text: string }>(items: readonly T[]): T[] {
  return items.map((e) => ({ e, h: stableHash32("order:" + e.text) })).sort((a, b) => a.h - b.h).map((x) => x.e);
}

/** A number from an override (CLI values may be strings); errors name the field. */
export function numOpt(o: ModelConfig, key: string, def: number, check: (v: number) => boolean = Number.isFinite): number {
  const v = o[key];
  if (v === undefined) return def;
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number" || !check(n)) throw new Error(`option '${key}': invalid value ${JSON.stringify(v)}`);
  return n;
}

/** checkpointFromBytes of a file, synchronously (for createModel's `init`). */
export function readCheckpointSync(path: string): { task: string; config: ModelConfig; weights: Map<string, Tensor> } {
  if (!existsSync(path)) throw new Error(`checkpoint ${path} does not exist`);
  return checkpointFromBytes(readSafetensorsBytesSync(path, "checkpoint"), path);
}

// ---------- the classification task ----------

export interface FortunesClsData {
  categories: string[];
  train: LabeledText[];
  test: LabeledText[];
  /** The whole training split (`train` may be a subset): the baseline's training set when `train` is empty. */
  allTrain: LabeledText[];
  /** Unlabeled texts of all fortune files minus held-out entries (the vocabulary with vocabFrom "corpus"). */
  corpus: string[];
  /** Encoded [CLS] + ids per example, per tokenizer and maxLen. */
  cache: WeakMap<Tokenizer, Map<number, { train: Int32Array[]; test: Int32Array[] }>>;
  baseline?: { accuracy: number; macroF1: number };
}

/** Backbone fields a pre-trained checkpoint fixes. */
const BACKBONE = ["vocabSize", "dModel", "depth", "heads", "ff", "maxLen", "normFirst", "activation", "vocabFrom", "minFreq", "maxVocab"] as const;
/** Fields derived from the data or the vocabulary; not options. */
const DERIVED = new Set(["task", "vocabSize", "numClasses", "tokenizer", "labels", "padId"]);

function encoded(data: FortunesClsData, tok: Tokenizer, maxLen: number): { train: Int32Array[]; test: Int32Array[] } {
  let byLen = data.cache.get(tok);
  if (!byLen) data.cache.set(tok, (byLen = new Map()));
  let e = byLen.get(maxLen);
  if (!e) byLen.set(maxLen, (e = { train: data.train.map((x) => encodeText(tok, x.text, maxLen)), test: data.test.map((x) => encodeText(tok, x.text, maxLen)) }));
  return e;
}

function buildConfig(data: FortunesClsData, o: ModelConfig): { cfg: ClassifierConfig; pretrained?: Map<string, Tensor> } {
  const derived = Object.keys(o).filter((k) => DERIVED.has(k));
  if (derived.length) throw new Error(`fortunes-classifier: ${derived.join(", ")} cannot be set (derived from the data and vocabulary)`);
  const int = (k: string, d: number, min = 1) => numOpt(o, k, d, (v) => Number.isInteger(v) && v >= min);
  const frac = (k: string, d: number) => numOpt(o, k, d, (v) => v >= 0 && v < 1);
  const init = typeof o.init === "string" ? o.init : "";
  if (o.init !== undefined && typeof o.init !== "string") throw new Error(`fortunes-classifier: option 'init' must be a checkpoint path, got ${JSON.stringify(o.init)}`);
  let tokJson: TokenizerJSON;
  let backbone: Pick<ClassifierConfig, (typeof BACKBONE)[number]>;
  let pretrained: Map<string, Tensor> | undefined;
  if (init !== "") {
    const ck = readCheckpointSync(init);
    const m = ck.config;
    for (const k of BACKBONE) {
      if (o[k] !== undefined && o[k] !== m[k]) throw new Error(`fortunes-classifier: option '${k}' = ${String(o[k])} conflicts with the checkpoint ${init} (${k} = ${String(m[k])})`);
    }
    tokJson = tokenizerFromConfig(m).toJSON();
    backbone = Object.fromEntries(BACKBONE.map((k) => [k, m[k]])) as typeof backbone;
    pretrained = ck.weights;
  } else {
    const maxVocab = int("maxVocab", 0, 0);
    const vocabFrom = o.vocabFrom ?? "train";
    if (vocabFrom !== "train" && vocabFrom !== "corpus") throw new Error(`fortunes-classifier: option 'vocabFrom' must be train or corpus, got ${String(vocabFrom)}`);
    const texts = vocabFrom === "train" ? (data.train.length ? data.train : data.allTrain).map((e) => e.text) : data.corpus;
    const tok = buildWordVocab(texts, int("minFreq", 2), maxVocab > 0 ? maxVocab : undefined);
    tokJson = tok.toJSON();
    const act = o.activation ?? "gelu";
    if (act !== "gelu" && act !== "relu") throw new Error(`fortunes-classifier: option 'activation' must be gelu or relu, got ${String(act)}`);
    const normFirst = o.normFirst ?? true;
    if (typeof normFirst !== "boolean") throw new Error(`fortunes-classifier: option 'normFirst' must be true or false`);
    backbone = { vocabSize: tok.vocabSize, dModel: int("dModel", 128), depth: int("depth", 4), heads: int("heads", 4), ff: int("ff", 512),
      maxLen: int("maxLen", 128, 2), normFirst, activation: act, vocabFrom, minFreq: int("minFreq", 2), maxVocab };
  }
  const pooling = o.pooling ?? "mean";
  if (pooling !== "cls" && pooling !== "mean") throw new Error(`fortunes-classifier: option 'pooling' must be cls or mean, got ${String(pooling)}`);
  const mlmWeight = numOpt(o, "mlmWeight", 0, (v) => v >= 0);
  const classWeight = o.classWeight ?? "balanced";
  if (classWeight !== "none" && classWeight !== "balanced") throw new Error(`fortunes-classifier: option 'classWeight' must be none or balanced, got ${String(classWeight)}`);
  const cfg: ClassifierConfig = {
    task: "fortunes-classifier",
    ...backbone,
    dropout: frac("dropout", 0.2),
    numClasses: data.categories.length,
    pooling,
    mlmHead: mlmWeight > 0,
    labelSmoothing: frac("labelSmoothing", 0.1),
    classWeight,
    tokenDropout: frac("tokenDropout", 0.2),
    mlmWeight,
    groupTokens: int("groupTokens", 2048),
    init,
    tokenizer: tokJson,
    labels: [...data.categories],
  };
  const unknown = Object.keys(o).filter((k) => !(k in cfg));
  if (unknown.length) throw new Error(`fortunes-classifier: unknown option(s) ${unknown.join(", ")} (options: ${Object.keys(cfg).filter((k) => !DERIVED.has(k)).join(", ")})`);
  return { cfg, pretrained };
}

/** Per-class loss weights N / (C · n_c) of the training examples ("balanced"), or null. */
function classWeights(data: FortunesClsData, mode: "none" | "balanced"): Float64Array | null {
  if (mode === "none") return null;
  const C = data.categories.length, n = new Float64Array(C);
  for (const e of data.train) n[e.label]++;
  return n.map((k) => (k > 0 ? data.train.length / (C * k) : 0));
}

/**
 * TF-IDF + logistic regression (the settings scripts/baseline-fortunes.ts selects) trained on the same training
 * examples (the whole training split when `train` is empty, as in `attnflow eval`) and scored on `test`.
 */
export function baselineMetrics(data: FortunesClsData): { accuracy: number; macroF1: number } {
  if (!data.baseline) {
    const tr = data.train.length > 0 ? data.train : data.allTrain;
    const m = new TfidfLogReg({ ngramMax: 2, minDf: 2, sublinearTf: true }, { l2: 3e-6, maxIter: 300, classWeight: "balanced" })
      .fit(tr.map((e) => e.text), tr.map((e) => e.label), data.categories.length);
    const r = classificationReport(data.test.map((e) => e.label), m.predict(data.test.map((e) => e.text)), data.categories);
    data.baseline = { accuracy: r.accuracy, macroF1: r.macroF1 };
  }
  return data.baseline;
}

export const task: Task<TextClassifier, FortunesClsData> = {
  name: "fortunes-classifier",
  description: "Topic of a fortune quotation (8 categories), BERT-like encoder; optional masked-LM init (init=<fortunes-mlm checkpoint>)",
  defaults: { epochs: 6, batchSize: 32, lr: 1e-3, weightDecay: 0.01, warmupSteps: 50, clipNorm: 1, evalLimit: 300 },

  loadData(o: DataOptions): FortunesClsData {
    const dir = o.data ?? FORTUNES_DIR;
    const ds = loadFortunes({ dir });
    const train = o.limitTrain !== undefined ? hashOrder(ds.train).slice(0, o.limitTrain) : ds.train;
    const test = o.limitTest !== undefined ? hashOrder(ds.test).slice(0, o.limitTest) : ds.test;
    return { categories: ds.categories, train, test, allTrain: ds.train, corpus: fortuneCorpus(dir).train, cache: new WeakMap() };
  },

  trainSize: (data) => data.train.length,

  modelOptions: {
    init: { default: "", help: "start from a fortunes-mlm checkpoint (its backbone options then apply)" },
    ...TEXT_ENCODER_OPTIONS,
    vocabFrom: { default: "train", help: "vocabulary from the training texts (train) or all fortune files (corpus)" },
    minFreq: { default: 2, help: "a word's minimum count to enter the vocabulary" },
    maxVocab: { default: 0, help: "vocabulary size limit; 0: none" },
    dropout: { default: 0.2, help: "dropout probability in [0, 1)" },
    pooling: { default: "mean", help: "mean (of the tokens) or cls" },
    labelSmoothing: { default: 0.1, help: "label smoothing of the training loss, in [0, 1)" },
    classWeight: { default: "balanced", help: "balanced (per-class weights N/(C n_c)) or none" },
    tokenDropout: { default: 0.2, help: "fraction of words replaced by [MASK] while training" },
    mlmWeight: { default: 0, help: "weight of an auxiliary masked-LM loss; 0: off" },
    groupTokens: { default: 2048, help: "tokens per length-grouped sub-batch" },
  },

  createModel(data, overrides, gen) {
    const { cfg, pretrained } = buildConfig(data, overrides);
    const model = classifierFromConfig(cfg, gen);
    if (pretrained) model.loadPretrained(pretrained);
    return { model, config: cfg };
  },

  modelFromConfig: (config) => classifierFromConfig(config),

  loss(model, data, indices) {
    const { cfg, tok } = classifierState(model);
    const seqs = encoded(data, tok, model.config.maxLen).train;
    const N = indices.length;
    const bad = Array.from(indices).find((i) => !(i >= 0 && i < seqs.length));
    if (bad !== undefined) throw new RangeError(`fortunes-classifier loss: index ${bad} outside the ${seqs.length} training examples`);
    const protect = new Set([PAD_ID, CLS_ID, SEP_ID]);
    // mean over the batch of the (class-weighted) cross-entropy + mlmWeight · mean masked-LM loss over the masked words
    const w = classWeights(data, cfg.classWeight);
    let clsSum: Tensor | null = null, mlmSum: Tensor | null = null, mlmCount = 0;
    for (const g of lengthGroups(indices, (i) => seqs[i].length, cfg.groupTokens)) {
      const { ids, B, T } = padIds(g.map((i) => seqs[i]));
      const masked = cfg.tokenDropout > 0
        ? maskTokens(ids, B, T, { rate: cfg.tokenDropout, maskId: MASK_ID, randomFraction: 0, keepFraction: 0, firstRandomId: MASK_ID + 1, vocabSize: tok.vocabSize, protect },
          () => defaultGenerator.random())
        : null;
      const { hidden, padMask } = model.encode(Tensor.fromArray(ids, [B, T]));          // (B, T, D)
      const y = Tensor.fromArray(Int32Array.from(g, (i) => data.train[i].label), [B]);
      const ce = F.crossEntropy(model.classify(hidden, padMask), y, { labelSmoothing: cfg.labelSmoothing, reduction: w ? "none" : "sum" }); // (B) or ()
      const l = w ? ce.mul(Tensor.fromArray(Float32Array.from(g, (i) => w[data.train[i].label]), [B])).sum() : ce;
      clsSum = clsSum ? clsSum.add(l) : l;
      if (cfg.mlmWeight > 0 && masked && masked.positions.length > 0) {
        const m = F.crossEntropy(model.mlmLogits(hidden, masked.positions), Tensor.fromArray(masked.targets, [masked.targets.length]), { reduction: "sum" });
        mlmSum = mlmSum ? mlmSum.add(m) : m;
        mlmCount += masked.positions.length;
      }
    }
    if (!clsSum) throw new Error("fortunes-classifier loss: empty batch");
    const loss = clsSum.div(N);
    return mlmSum ? loss.add(mlmSum.mul(cfg.mlmWeight / mlmCount)) : loss;
  },

  evaluate(model, data, o = {}) {
    const { tok } = classifierState(model);
    const all = encoded(data, tok, model.config.maxLen).test;
    const n = o.limit !== undefined ? Math.min(o.limit, all.length) : all.length;
    const items = n < all.length ? hashOrder(data.test.map((e, i) => ({ ...e, i }))).slice(0, n) : data.test.map((e, i) => ({ ...e, i }));
    const C = model.config.numClasses;
    const logits = classifyIds(model, items.map((e) => all[e.i]), o.onProgress);
    const pred = new Int32Array(items.length);
    let nll = 0;
    items.forEach((e, k) => {
      const z = logits.subarray(k * C, (k + 1) * C);
      const p = softmaxRow(z);
      nll -= Math.log(Math.max(p[e.label], 1e-12));
      pred[k] = p.indexOf(Math.max(...p));
    });
    const r = classificationReport(items.map((e) => e.label), pred, data.categories);
    const out: Record<string, number> = { accuracy: r.accuracy, macroF1: r.macroF1, loss: nll / items.length };
    if (n === all.length) {
      const b = baselineMetrics(data);
      out.baselineAccuracy = b.accuracy;
      out.baselineMacroF1 = b.macroF1;
    }
    return out;
  },

  predictFlags: [],
  predict: (model, config, input) => predictText(model, config, input),

  explain: (model, config, input, target) => explainText(model, config, input, target),

  faithfulnessInputs(data, n) {
    return hashOrder(data.test).slice(0, n).map((e) => ({ text: e.text }));
  },
};
