// Task "agreement": subject–verb number agreement as Abnar & Zuidema (2020) set it up for their Table 1 — predict
// the number (singular / plural) of a verb from the sentence prefix before it — with their encoder (6 layers, 8 heads,
// hidden 128, a [CLS] token read by the classifier; src/tasks/agreement-model.ts).
//
// Data (`--data DIR`): training examples in Linzen et al.'s format, as scripts/mine-agreement.py writes them:
// DIR/train.text (one tokenised, lowercased sentence per line) and DIR/train.gold (verb index, correct form, wrong
// form, attractor count; tab-separated); DIR's immediate sub-folders holding such a pair are read too (one per
// mining run). Test: Linzen's 7,489 sentences (subj_agr_filtered.text/.gold, CC-BY-NC, never copied into the
// repository), read from DIR/linzen, a DIR/*/linzen link, or the folder named by $ATTNFLOW_LINZEN_DIR.
// 5 % of the mined examples (by a hash of the sentence) are held out for validation (metric `validAccuracy`).
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Tensor } from "../../tensor.js";
import * as F from "../../functional.js";
import { defaultGenerator } from "../../random.js";
import { isHeldOut, stableHash32 } from "../../data/hash.js";
import { Tokenizer, PAD_ID, CLS_ID, UNK_ID } from "../../data/tokenizer.js";
import { TextClassifier, lengthGroups, padIds } from "../../models/text-classifier.js";
import { noGrad } from "../../autograd.js";
import { tidy } from "../../scope.js";
import type { DataOptions, ExplainInput, Task } from "../../tasks/task.js";
import {
  AGREEMENT_LABELS, AGREEMENT_OPTIONS, agreementFromConfig, agreementState, encodePrefix, explainAgreement,
  predictAgreement, type AgreementConfig,
} from "../../tasks/agreement-model.js";
import { numOpt } from "./fortunes-classifier.js";

/** One example: the words before the verb, the verb's number (0 singular, 1 plural), the attractor count. */
export interface AgreementExample { words: string[]; label: number; attractors: number; verb: string; text: string }

export interface AgreementData {
  train: AgreementExample[];
  valid: AgreementExample[];
  test: AgreementExample[];
  /** Where the files were read from. */
  sources: { train: string[]; test: string; testSkippedLines: number[] };
  cache: WeakMap<Tokenizer, { train: Int32Array[]; valid: Int32Array[]; test: Int32Array[] }>;
}

export const LINZEN_ENV = "ATTNFLOW_LINZEN_DIR";
const LINZEN_FILES = ["subj_agr_filtered.text", "subj_agr_filtered.gold"];

/** 0 (singular) or 1 (plural) from the correct and the wrong verb form (is/are, has/have, includes/include ...). */
export function verbNumber(correct: string, wrong: string): number {
  const cs = correct.endsWith("s"), ws = wrong.endsWith("s");
  if (correct === "is" || correct === "has" || correct === "does") return 0;
  if (correct === "are" || correct === "have" || correct === "do") return 1;
  if (cs !== ws) return cs ? 0 : 1;
  if (cs && ws && correct.length !== wrong.length) return correct.length > wrong.length ? 0 : 1;
  throw new Error(`agreement: cannot tell the number of '${correct}' against '${wrong}'`);
}

/**
 * Examples of a text/gold file pair in Linzen's format (prefix = the words before the verb index). Lines whose two
 * forms are equal (4 of Linzen's: "wherein wherein", "lie lie", ...) carry no number and are skipped (`skipped`).
 */
export function readAgreementFiles(textPath: string, goldPath: string, skipped: number[] = []): AgreementExample[] {
  const texts = readFileSync(textPath, "utf8").split("\n");
  const golds = readFileSync(goldPath, "utf8").split("\n").filter((l) => l.trim() !== "");
  if (texts.length < golds.length) throw new Error(`${textPath} has ${texts.length} lines but ${goldPath} has ${golds.length}`);
  const out: AgreementExample[] = [];
  golds.forEach((g, i) => {
    const f = g.split("\t").map((x) => x.trim().toLowerCase());   // a few of Linzen's gold forms are capitalised
    const vi = Number(f[0]), attractors = Number(f[3]);
    const words = texts[i].trim().toLowerCase().split(/\s+/);
    if (f.length < 4 || !Number.isInteger(vi) || vi < 1 || vi >= words.length || !Number.isInteger(attractors)) {
      throw new Error(`${goldPath} line ${i + 1}: expected "verb index<TAB>correct<TAB>wrong<TAB>attractors" with an index inside the sentence, got ${JSON.stringify(g)}`);
    }
    if (words[vi] !== f[1]) throw new Error(`${goldPath} line ${i + 1}: word ${vi} of the sentence is '${words[vi]}', not the verb '${f[1]}'`);
    if (f[1] === f[2]) { skipped.push(i + 1); return; }
    out.push({ words: words.slice(0, vi), label: verbNumber(f[1], f[2]), attractors, verb: f[1], text: words.slice(0, vi).join(" ") });
  });
  return out;
}

/** The Linzen test folder: DIR/linzen, DIR/<sub>/linzen, or $ATTNFLOW_LINZEN_DIR; undefined when none has the files. */
export function findLinzen(dir: string | undefined): string | undefined {
  const ok = (d: string) => LINZEN_FILES.every((f) => existsSync(join(d, f)));
  const cands: string[] = [];
  if (dir && existsSync(dir) && statSync(dir).isDirectory()) {
    cands.push(join(dir, "linzen"));
    for (const s of readdirSync(dir).sort()) cands.push(join(dir, s, "linzen"));
  }
  const env = process.env[LINZEN_ENV];
  if (env) cands.push(env);
  return cands.find(ok);
}

/** Mined training file pairs in DIR and its immediate sub-folders. */
export function findTrainingFiles(dir: string): string[] {
  const out: string[] = [];
  const has = (d: string) => existsSync(join(d, "train.text")) && existsSync(join(d, "train.gold"));
  if (has(dir)) out.push(dir);
  for (const s of readdirSync(dir).sort()) {
    const d = join(dir, s);
    if (s !== "linzen" && statSync(d).isDirectory() && has(d)) out.push(d);
  }
  return out;
}

export function loadAgreement(o: DataOptions): AgreementData {
  const dir = o.data;
  if (!dir) throw new Error("agreement: --data DIR is required: a folder written by scripts/mine-agreement.py (train.text, train.gold), see docs/faithfulness.md");
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`agreement: --data ${dir} is not a folder`);
  const folders = findTrainingFiles(dir);
  const linzen = findLinzen(dir);
  if (!linzen) throw new Error(`agreement: no Linzen test set (${LINZEN_FILES.join(", ")}) in ${join(dir, "linzen")} or a sub-folder's linzen link, and $${LINZEN_ENV} is ${process.env[LINZEN_ENV] ? `'${process.env[LINZEN_ENV]}' without them` : "unset"}`);
  const testSkippedLines: number[] = [];
  let test = readAgreementFiles(join(linzen, LINZEN_FILES[0]), join(linzen, LINZEN_FILES[1]), testSkippedLines);
  const testSet = new Set(test.map((e) => e.text));
  const all: AgreementExample[] = [];
  for (const f of folders) all.push(...readAgreementFiles(join(f, "train.text"), join(f, "train.gold")));
  if (!all.length && o.limitTrain !== 0) throw new Error(`agreement: no train.text/train.gold in ${dir} or its sub-folders (run scripts/mine-agreement.py --out ${dir} ...)`);
  const kept = all.filter((e) => e.words.length >= 1 && !testSet.has(e.text));
  const valid = kept.filter((e) => isHeldOut(e.words.join(" ") + "|" + e.verb, 0.05));
  let train = kept.filter((e) => !isHeldOut(e.words.join(" ") + "|" + e.verb, 0.05));
  const order = <T extends { text: string; verb: string }>(xs: T[]) =>
    xs.map((e) => ({ e, h: stableHash32("order:" + e.text + "|" + e.verb) })).sort((a, b) => a.h - b.h).map((x) => x.e);
  if (o.limitTrain !== undefined) train = order(train).slice(0, o.limitTrain);
  if (o.limitTest !== undefined) test = order(test).slice(0, o.limitTest);
  return { train, valid, test, sources: { train: folders, test: linzen, testSkippedLines }, cache: new WeakMap() };
}

function buildVocab(train: readonly AgreementExample[], minFreq: number, maxVocab: number): Tokenizer {
  const counts = new Map<string, number>();
  for (const e of train) for (const w of e.words) counts.set(w, (counts.get(w) ?? 0) + 1);
  let kept = [...counts].filter(([w, c]) => c >= minFreq && !w.startsWith("["));
  kept.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  if (maxVocab > 0) kept = kept.slice(0, Math.max(0, maxVocab - 6));
  return Tokenizer.fromTokens("word", kept.map(([w]) => w));
}

function encoded(data: AgreementData, tok: Tokenizer, maxLen: number): { train: Int32Array[]; valid: Int32Array[]; test: Int32Array[] } {
  let e = data.cache.get(tok);
  // prefixes longer than the model reads keep their last maxLen − 1 words (the ones nearest the verb)
  const enc = (x: AgreementExample) => encodePrefix(tok, x.words.slice(-(maxLen - 1)), maxLen);
  if (!e) data.cache.set(tok, (e = { train: data.train.map(enc), valid: data.valid.map(enc), test: data.test.map(enc) }));
  return e;
}

/** N / (2 · N_c) for c = singular, plural over the training examples; [1, 1] when a class has none. */
export function classWeights(data: AgreementData): [number, number] {
  const n = [0, 0];
  for (const e of data.train) n[e.label]++;
  const N = n[0] + n[1];
  return n[0] && n[1] ? [N / (2 * n[0]), N / (2 * n[1])] : [1, 1];
}

const DERIVED = new Set(["task", "vocabSize", "numClasses", "tokenizer", "labels", "padId", "pooling", "mlmHead"]);

/** Accuracy overall and per attractor count, and the mean NLL, of examples given their encodings. */
export function agreementMetrics(model: TextClassifier, xs: readonly AgreementExample[], seqs: readonly Int32Array[], prefix = "", onProgress?: (d: number, n: number) => void): Record<string, number> {
  const logits = new Float32Array(xs.length * 2);
  let done = 0;
  noGrad(() => {
    for (const g of lengthGroups(seqs.map((_, i) => i), (i) => seqs[i].length, 8192)) {
      tidy(() => {
        const { ids, B, T } = padIds(g.map((i) => seqs[i]));
        const z = model.forward(Tensor.fromArray(ids, [B, T])).dataSync() as Float32Array;   // (B, 2)
        g.forEach((i, b) => { logits[2 * i] = z[2 * b]; logits[2 * i + 1] = z[2 * b + 1]; });
      });
      done += g.length;
      onProgress?.(done, xs.length);
    }
  });
  let right = 0, nll = 0;
  const byA = new Map<number, [number, number]>();
  xs.forEach((e, i) => {
    const d = logits[2 * i + 1] - logits[2 * i];                       // log-odds of plural
    const pred = d > 0 ? 1 : 0;
    const ok = pred === e.label ? 1 : 0;
    right += ok;
    nll += Math.log1p(Math.exp(e.label === 1 ? -d : d));
    const a = Math.min(e.attractors, 4);
    const c = byA.get(a) ?? [0, 0];
    c[0] += ok; c[1]++;
    byA.set(a, c);
  });
  const out: Record<string, number> = { [`${prefix}accuracy`]: xs.length ? right / xs.length : NaN, [`${prefix}loss`]: xs.length ? nll / xs.length : NaN };
  for (const [a, [r, n]] of [...byA].sort((p, q) => p[0] - q[0])) out[`${prefix}accuracyAttractors${a}${a === 4 ? "Plus" : ""}`] = r / n;
  return out;
}

export const task: Task<TextClassifier, AgreementData> = {
  name: "agreement",
  description: "Subject–verb number agreement from the prefix before the verb (Abnar & Zuidema 2020 Table 1 setup); --data: scripts/mine-agreement.py output",
  defaults: { epochs: 10, batchSize: 64, lr: 5e-4, weightDecay: 0.01, warmupSteps: 200, clipNorm: 1, evalLimit: 2000 },

  loadData: (o) => loadAgreement(o),
  trainSize: (d) => d.train.length,
  modelOptions: AGREEMENT_OPTIONS,

  createModel(data, o, gen) {
    const derived = Object.keys(o).filter((k) => DERIVED.has(k));
    if (derived.length) throw new Error(`agreement: ${derived.join(", ")} cannot be set (fixed by the task or derived from the data)`);
    const unknown = Object.keys(o).filter((k) => !(k in AGREEMENT_OPTIONS));
    if (unknown.length) throw new Error(`agreement: unknown option(s) ${unknown.join(", ")} (options: ${Object.keys(AGREEMENT_OPTIONS).join(", ")})`);
    const int = (k: string, min = 1) => numOpt(o, k, AGREEMENT_OPTIONS[k].default as number, (v) => Number.isInteger(v) && v >= min);
    const frac = (k: string) => numOpt(o, k, AGREEMENT_OPTIONS[k].default as number, (v) => v >= 0 && v < 1);
    const tok = buildVocab(data.train, int("minFreq"), int("maxVocab", 0));
    const activation = o.activation ?? "gelu";
    if (activation !== "gelu" && activation !== "relu") throw new Error(`agreement: option 'activation' must be gelu or relu, got ${String(activation)}`);
    const normFirst = o.normFirst ?? true;
    const balanceClasses = o.balanceClasses ?? false;
    if (typeof balanceClasses !== "boolean") throw new Error("agreement: option 'balanceClasses' must be true or false");
    if (typeof normFirst !== "boolean") throw new Error("agreement: option 'normFirst' must be true or false");
    const cfg: AgreementConfig = {
      task: "agreement", vocabSize: tok.vocabSize, dModel: int("dModel"), depth: int("depth"), heads: int("heads"), ff: int("ff"),
      maxLen: int("maxLen", 2), dropout: frac("dropout"), numClasses: 2, pooling: "cls", normFirst, activation,
      minFreq: int("minFreq"), maxVocab: int("maxVocab", 0), tokenDropout: frac("tokenDropout"), groupTokens: int("groupTokens"), balanceClasses,
      tokenizer: tok.toJSON(), labels: [...AGREEMENT_LABELS],
    };
    return { model: agreementFromConfig(cfg, gen), config: cfg };
  },

  modelFromConfig: (config) => agreementFromConfig(config),

  loss(model, data, indices) {
    const { cfg } = agreementState(model);
    const seqs = encoded(data, agreementState(model).tok, model.config.maxLen).train;
    const bad = Array.from(indices).find((i) => !(i >= 0 && i < seqs.length));
    if (bad !== undefined) throw new RangeError(`agreement loss: index ${bad} outside the ${seqs.length} training examples`);
    let sum: Tensor | null = null;
    const w = cfg.balanceClasses ? classWeights(data) : null;
    for (const g of lengthGroups(indices, (i) => seqs[i].length, cfg.groupTokens)) {
      const { ids, B, T } = padIds(g.map((i) => seqs[i]));                              // (B, T)
      if (cfg.tokenDropout > 0) {
        for (let k = 0; k < ids.length; k++) if (ids[k] !== PAD_ID && ids[k] !== CLS_ID && defaultGenerator.random() < cfg.tokenDropout) ids[k] = UNK_ID;
      }
      const y = Tensor.fromArray(Int32Array.from(g, (i) => data.train[i].label), [B]);
      const logits = model.forward(Tensor.fromArray(ids, [B, T]));                                         // (B, 2)
      const l = w
        ? F.crossEntropy(logits, y, { reduction: "none" }).mul(Tensor.fromArray(Float32Array.from(g, (i) => w[data.train[i].label]), [B])).sum()
        : F.crossEntropy(logits, y, { reduction: "sum" });                                                // ()
      sum = sum ? sum.add(l) : l;
    }
    if (!sum) throw new Error("agreement loss: empty batch");
    return sum.div(indices.length);
  },

  evaluate(model, data, o = {}) {
    const { tok } = agreementState(model);
    const enc = encoded(data, tok, model.config.maxLen);
    const n = o.limit !== undefined ? Math.min(o.limit, data.test.length) : data.test.length;
    const all = data.test.map((_, i) => i);
    const idx = n === all.length ? all : all.map((i) => ({ i, h: stableHash32("eval:" + i) })).sort((a, b) => a.h - b.h).slice(0, n).map((x) => x.i);
    const out = agreementMetrics(model, idx.map((i) => data.test[i]), idx.map((i) => enc.test[i]), "", o.onProgress);
    const v = agreementMetrics(model, data.valid, enc.valid, "valid");
    out.validAccuracy = v.validaccuracy;
    const unk = enc.test.reduce((s, x) => s + x.reduce((c, id, k) => c + (k > 0 && id === UNK_ID ? 1 : 0), 0), 0);
    out.testUnknownWordRate = unk / enc.test.reduce((s, x) => s + x.length - 1, 0);
    return out;
  },

  predictFlags: [],
  predict: (model, config, input) => predictAgreement(model, config, input),
  explain: (model, config, input, target) => explainAgreement(model, config, input, target),

  /** Linzen test prefixes in a fixed hash order, each explained for its correct number (as A&Z do). */
  faithfulnessInputs(data, n): ExplainInput[] {
    const order = data.test.map((e, i) => ({ e, h: stableHash32("faith:" + i + ":" + e.text) })).sort((a, b) => a.h - b.h);
    return order.slice(0, n).map(({ e }) => ({ text: e.words.join(" "), target: AGREEMENT_LABELS[e.label] }));
  },
};
