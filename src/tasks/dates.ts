// Task "dates": human-written dates → ISO 8601 with a Transformer encoder–decoder (src/models/seq2seq.ts).
// Browser-safe as a whole (its data is generated in code), so it lives here and the in-browser explainer uses it
// directly; src/node/tasks/dates.ts re-exports it for the task discovery of the command line.
// Data: generated in code by src/data/dates.ts (no files): a fixed training set (seed 0) and a fixed held-out set
// (seed 1) whose calendar dates never occur in training. Source units are word tokens (default; the closed date
// vocabulary) or characters (config unit "char"); targets are the 10 ISO characters framed by [BOS]/[EOS].
//
// Alignment rate (reported by evaluate): for every held-out example and every target character with a known source
// span (year digits → the year token, month digits → the month token, day digits → the day token; the two "-" have
// none and are skipped; in char mode the span is every character of that token), take the cross-attention row of the
// decoder query that predicts the character (teacher-forced on the gold target), averaged over heads; it is a hit
// when its argmax over the unpadded source positions lies inside the span. alignmentRate averages the rows over all
// decoder layers too; alignmentRateLayer<i> uses layer i alone. Rate = hits / scored characters.
import type { Task, ModelConfig, Prediction, ExplainTarget, ExplainInput } from "./task.js";
import { checkConfigFields, rules as r, type FieldRule } from "./config-check.js";
import { Tensor } from "../tensor.js";
import { noGrad } from "../autograd.js";
import { tidy } from "../scope.js";
import * as F from "../functional.js";
import type { Generator } from "../random.js";
import { captureAttention, type AttentionRecord } from "../explain/capture.js";
import { Tokenizer, BOS_ID, EOS_ID, PAD_ID, UNK_ID, type TokenizerJSON } from "../data/tokenizer.js";
import { generateDateDataset, dateSourceTokens, dateSourceTokenizer, dateTargetTokenizer, type DateExample } from "../data/dates.js";
import { Seq2SeqTransformer, alignmentAgreement, cachedSearchStep, resolveSeq2SeqConfig, type Seq2SeqConfig, type EncoderState } from "../models/seq2seq.js";
import { beamSearch, greedyDecode, type Hypothesis } from "../models/beam-search.js";
import { searchWithStep } from "../models/generate.js";

export type SourceUnit = "word" | "char";
/** The stored config: the model's hyper-parameters at the top level (CLI overrides use these names), task knobs, tokenizers. */
export interface DatesConfig extends Required<Seq2SeqConfig> {
  task: "dates";
  unit: SourceUnit;
  labelSmoothing: number;
  /** Beam width for predict and the beam metric of evaluate (1 = greedy only). */
  beamWidth: number;
  lengthPenalty: number;
  srcTokenizer: TokenizerJSON;
  tgtTokenizer: TokenizerJSON;
}
const SEQ2SEQ_KEYS = ["srcVocab", "tgtVocab", "dModel", "heads", "encoderLayers", "decoderLayers", "dimFeedforward", "dropout",
  "maxSrcLen", "maxTgtLen", "shareEmbeddings", "tieOutput", "normFirst", "activation", "padId"] as const;
function modelConfigOf(cfg: DatesConfig): Seq2SeqConfig {
  return Object.fromEntries(SEQ2SEQ_KEYS.map((k) => [k, cfg[k]])) as unknown as Seq2SeqConfig;
}
/** One example in model coordinates: source ids, target ids (10 chars), source labels and the aligned spans. */
export interface EncodedDate { ex: DateExample; src: number[]; tgt: number[]; labels: string[]; spans: number[][] }
export interface DatesData { unit: SourceUnit; srcTok: Tokenizer; tgtTok: Tokenizer; train: EncodedDate[]; test: EncodedDate[] }

export const DATES_TRAIN_SIZE = 40000;
export const DATES_TEST_SIZE = 2000;
const TARGET_LEN = 10; // ISO yyyy-mm-dd

/** Character tokenizer over every character a generated source can contain (lowercased). */
export function dateCharTokenizer(): Tokenizer {
  const chars = new Set<string>([" "]);
  for (const t of dateSourceTokens()) for (const ch of t) chars.add(ch);
  return Tokenizer.fromTokens("char", [...chars].sort(), true);
}

/** Character ranges [start, end) of each word token inside the lowercased NFC source (tokens are in order). */
function tokenCharRanges(source: string, tokens: readonly string[]): [number, number][] {
  const chars = Array.from(source.normalize("NFC").toLowerCase());
  const text = chars.join(""), out: [number, number][] = [];
  let cursor = 0;
  for (const tok of tokens) {
    const at = text.indexOf(tok, cursor);
    if (at < 0) throw new Error(`dates: token ${JSON.stringify(tok)} not found in ${JSON.stringify(source)}`);
    const start = Array.from(text.slice(0, at)).length;
    out.push([start, start + Array.from(tok).length]);
    cursor = at + tok.length;
  }
  return out;
}

export function encodeDate(ex: DateExample, unit: SourceUnit, srcTok: Tokenizer, tgtTok: Tokenizer): EncodedDate {
  const src = srcTok.encode(ex.source);
  const tgt = ex.targetChars.map((c) => tgtTok.tokenToId(c));
  if (unit === "word") return { ex, src, tgt, labels: ex.sourceTokens, spans: ex.alignment.map((a) => [...a]) };
  const ranges = tokenCharRanges(ex.source, ex.sourceTokens);
  const spans = ex.alignment.map((a) => a.flatMap((k) => Array.from({ length: ranges[k][1] - ranges[k][0] }, (_, i) => ranges[k][0] + i)));
  return { ex, src, tgt, labels: srcTok.tokenize(ex.source), spans };
}

function tokenizersOf(unit: SourceUnit): { srcTok: Tokenizer; tgtTok: Tokenizer } {
  if (unit !== "word" && unit !== "char") throw new Error(`dates: unit must be "word" or "char", got ${String(unit)}`);
  return { srcTok: unit === "word" ? dateSourceTokenizer() : dateCharTokenizer(), tgtTok: dateTargetTokenizer() };
}

/** Padded batch tensors: src (B, Ts), decoder input [BOS] c0..c9 (B, 11), labels c0..c9 [EOS] (B, 11). */
export function dateBatch(items: readonly EncodedDate[]): { src: Tensor; tgtIn: Tensor; labels: Tensor } {
  const B = items.length, Ts = Math.max(...items.map((e) => e.src.length)), Tt = TARGET_LEN + 1;
  const src = new Int32Array(B * Ts).fill(PAD_ID), tin = new Int32Array(B * Tt), lab = new Int32Array(B * Tt);
  items.forEach((e, b) => {
    src.set(e.src, b * Ts);
    tin[b * Tt] = BOS_ID; tin.set(e.tgt, b * Tt + 1);
    lab.set(e.tgt, b * Tt); lab[b * Tt + TARGET_LEN] = EOS_ID;
  });
  return { src: Tensor.fromArray(src, [B, Ts]), tgtIn: Tensor.fromArray(tin, [B, Tt]), labels: Tensor.fromArray(lab, [B, Tt]) };
}

const DATES_RULES: Record<string, FieldRule> = {
  task: r.oneOf(["dates"]), unit: r.oneOf(["word", "char"]), srcVocab: r.vocab(6), tgtVocab: r.vocab(6), dModel: r.width(), heads: r.width(),
  encoderLayers: r.layers(), decoderLayers: r.layers(), dimFeedforward: r.width(), dropout: r.fraction(),
  maxSrcLen: r.length(), maxTgtLen: r.length(2), shareEmbeddings: r.bool(true), tieOutput: r.bool(true), normFirst: r.bool(true),
  activation: r.oneOf(["relu", "gelu"], true), padId: r.int(0, 0, true),
  labelSmoothing: r.fraction(), beamWidth: r.int(1, 256), lengthPenalty: r.number(0, 10),
  srcTokenizer: r.object(), tgtTokenizer: r.object(),
};

const configCache = new WeakMap<ModelConfig, { cfg: DatesConfig; srcTok: Tokenizer; tgtTok: Tokenizer }>();
function readConfig(config: ModelConfig): { cfg: DatesConfig; srcTok: Tokenizer; tgtTok: Tokenizer } {
  let r = configCache.get(config);
  if (r) return r;
  checkConfigFields("dates", config, DATES_RULES);
  const cfg = config as unknown as DatesConfig;
  if (cfg.task !== "dates") throw new Error(`dates: config.task must be "dates", got ${JSON.stringify(cfg.task)}`);
  if (!cfg.srcTokenizer || !cfg.tgtTokenizer) throw new Error("dates: config needs the fields srcTokenizer and tgtTokenizer");
  r = { cfg, srcTok: Tokenizer.fromJSON(cfg.srcTokenizer), tgtTok: Tokenizer.fromJSON(cfg.tgtTokenizer) };
  configCache.set(config, r);
  return r;
}

const MODEL_KEYS = ["dModel", "heads", "encoderLayers", "decoderLayers", "dimFeedforward", "dropout", "maxSrcLen", "maxTgtLen",
  "tieOutput", "normFirst", "activation"] as const;
const TASK_KEYS = ["unit", "labelSmoothing", "beamWidth", "lengthPenalty"] as const;

/** CLI overrides ("d-model" or "dModel"; numeric strings become numbers) split into model and task fields. */
function parseOverrides(o: ModelConfig): { model: Partial<Seq2SeqConfig>; task: Record<string, unknown> } {
  const model: Record<string, unknown> = {}, task: Record<string, unknown> = {};
  for (const [k0, v0] of Object.entries(o)) {
    if (v0 === undefined) continue;
    const k = k0.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = typeof v0 === "string" && v0 !== "" && !Number.isNaN(Number(v0)) ? Number(v0) : v0 === "true" ? true : v0 === "false" ? false : v0;
    if ((MODEL_KEYS as readonly string[]).includes(k)) model[k] = v;
    else if ((TASK_KEYS as readonly string[]).includes(k)) task[k] = v;
    else if ([...SEQ2SEQ_KEYS, "task", "srcTokenizer", "tgtTokenizer"].includes(k)) throw new Error(`dates: option '${k0}' is fixed by the task (vocabularies and padding come from the tokenizers)`);
    else throw new Error(`dates: unknown model option '${k0}'; known: ${[...MODEL_KEYS, ...TASK_KEYS].join(", ")}`);
  }
  return { model: model as Partial<Seq2SeqConfig>, task };
}

/** Task settings of a model (unit, label smoothing, beam), registered by createModel / modelFromConfig. */
const settings = new WeakMap<Seq2SeqTransformer, DatesConfig>();
function settingsOf(model: Seq2SeqTransformer): { unit: SourceUnit; labelSmoothing: number; beamWidth: number; lengthPenalty: number } {
  return settings.get(model) ?? { unit: "word", labelSmoothing: 0, beamWidth: 4, lengthPenalty: 0 };
}

/** Re-encode the shared data object for a source unit (a char model evaluated on data loaded for words, etc.). */
function ensureUnit(data: DatesData, unit: SourceUnit): void {
  if (data.unit === unit) return;
  const { srcTok, tgtTok } = tokenizersOf(unit);
  const re = (e: EncodedDate) => encodeDate(e.ex, unit, srcTok, tgtTok);
  Object.assign(data, { unit, srcTok, tgtTok, train: data.train.map(re), test: data.test.map(re) });
}

function cfgNumber(v: unknown, name: string, ok: (x: number) => boolean): number {
  if (typeof v !== "number" || !ok(v)) throw new Error(`dates: ${name} is out of range: ${String(v)}`);
  return v;
}

/** Greedy (and optionally beam) decoding of a batch of encoded sources; returns id sequences without [BOS]/[EOS]. */
function decodeBatch(model: Seq2SeqTransformer, enc: EncoderState, n: number, beamWidth: number, lengthPenalty: number,
  numReturn = 1): { greedy: Hypothesis[]; beams: Hypothesis[][] | null } {
  const o = { bos: BOS_ID, eos: EOS_ID, maxLen: model.config.maxTgtLen - 1, numSources: n };
  const greedy = greedyDecode(cachedSearchStep(model, enc), enc, o);
  const beams = beamWidth > 1 ? beamSearch(cachedSearchStep(model, enc), enc, { ...o, beamWidth, lengthPenalty, numReturn }) : null;
  return { greedy, beams };
}

/** Cross-attention per decoder layer, head-averaged: (B, Tt, Ts) Float32Arrays in layer order. */
function crossLayers(records: AttentionRecord[]): Float32Array[] {
  return records.filter((r) => r.kind === "cross").map((r) => (r.headMean ? r.weights : r.weights.mean(1)).dataSync() as Float32Array);
}

/** Output position from --target: "N" = position N, "char:X" or a non-digit "X" = first position whose token is X. */
function parseTarget(target: string | undefined, out: readonly string[]): number {
  if (target === undefined || target === "") return 0;
  const ch = target.startsWith("char:") ? target.slice(5) : /^\d+$/.test(target) ? null : target;
  const j = ch === null ? Number(target) : out.indexOf(ch);
  if (ch !== null && j < 0) throw new Error(`dates: target ${JSON.stringify(ch)} does not occur in the output "${out.join("")}"`);
  if (!(j >= 0 && j < out.length)) throw new Error(`dates: target position ${target} outside the output "${out.join("")}" (0..${out.length - 1})`);
  return j;
}

function sourceIds(input: ExplainInput | string, srcTok: Tokenizer, maxLen: number): { ids: number[]; labels: string[] } {
  const ids = typeof input === "string" ? srcTok.encode(input) : input.ids ? [...input.ids] : input.text !== undefined ? srcTok.encode(input.text) : null;
  if (!ids) throw new Error("dates: the input must be text (a date) or token ids");
  if (!ids.length) throw new Error("dates: the input has no tokens");
  if (ids.length > maxLen) throw new Error(`dates: the input has ${ids.length} source tokens; the model takes at most ${maxLen}`);
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= srcTok.vocabSize) throw new Error(`dates: source id ${id} outside the vocabulary [0, ${srcTok.vocabSize - 1}]`);
  return { ids, labels: ids.map((id) => srcTok.idToToken(id)) };
}

/** predict flags that select the search of hf.generate (searchWithStep) instead of the task's greedy + GNMT beam. */
const HF_SEARCH_FLAGS = ["beams", "sample", "temperature", "top-k", "top-p", "seed", "num-return-sequences", "repetition-penalty", "no-repeat-ngram-size", "length-penalty"];

/** dates predict with hf.generate's strategies over the cached step function (src/models/generate.ts searchWithStep). */
function predictWithSearch(model: Seq2SeqTransformer, srcTok: Tokenizer, tgtTok: Tokenizer, input: ExplainInput | string, o: Record<string, unknown>): Prediction {
  const num = (k: string, ok: (v: number) => boolean, want: string): number | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    const x = typeof v === "string" && v.trim() !== "" ? Number(v) : typeof v === "number" ? v : NaN;
    if (!Number.isFinite(x) || !ok(x)) throw new Error(`dates predict: --${k} must be ${want}, got ${JSON.stringify(v)}`);
    return x;
  };
  const int = (v: number) => Number.isInteger(v);
  const beams = num("beams", (v) => int(v) && v >= 1, "an integer >= 1") ?? 1;
  const temperature = num("temperature", (v) => v >= 0, "a number >= 0");
  const sample = o.sample === true || o.sample === "true" || (beams === 1 && temperature !== undefined && temperature > 0);
  const { ids } = sourceIds(input, srcTok, model.config.maxSrcLen);
  return noGrad(() => tidy(() => {
    const enc = model.encode(Tensor.fromArray(Int32Array.from(ids), [1, ids.length]));
    const r = searchWithStep(cachedSearchStep(model, enc), enc, {
      bos: BOS_ID, eos: EOS_ID, maxNewTokens: model.config.maxTgtLen - 1, numBeams: beams, doSample: sample, temperature: temperature ?? 1,
      topK: num("top-k", (v) => int(v) && v >= 0, "an integer >= 0"), topP: num("top-p", (v) => v > 0 && v <= 1, "in (0, 1]"),
      seed: num("seed", int, "an integer") ?? 0, numReturnSequences: num("num-return-sequences", (v) => int(v) && v >= 1, "an integer >= 1"),
      repetitionPenalty: num("repetition-penalty", (v) => v > 0, "a number > 0"), noRepeatNgramSize: num("no-repeat-ngram-size", (v) => int(v) && v >= 0, "an integer >= 0"),
      lengthPenalty: num("length-penalty", Number.isFinite, "a number"), banned: [BOS_ID],
    });
    const text = (s: number[]) => tgtTok.decode(s.filter((t) => t !== EOS_ID));
    // each output's log-probability under the model (teacher-forced; the search's warpers aside)
    const logProb = (q: number[]) => {
      const lg = model.decode(Tensor.fromArray(Int32Array.from([BOS_ID, ...q.slice(0, -1)]), [1, q.length]), enc).dataSync() as Float32Array;
      const V = lg.length / q.length;
      return q.reduce((acc, t, j) => {
        let mx = -Infinity, z = 0;
        for (let v = 0; v < V; v++) mx = Math.max(mx, lg[j * V + v]);
        for (let v = 0; v < V; v++) z += Math.exp(lg[j * V + v] - mx);
        return acc + lg[j * V + t] - mx - Math.log(z);
      }, 0);
    };
    const details: Record<string, unknown> = { strategy: beams > 1 ? (sample ? "beam sampling" : "beam search") : sample ? "sampling" : "greedy", beams, ids: r.sequences[0] };
    if (r.scores) details.beamScores = r.scores;
    const pred: Prediction = { output: text(r.sequences[0]), details, scoreName: "log-probability" };
    if (r.sequences.length > 1) pred.alternatives = r.sequences.map((q) => ({ output: text(q), score: logProb(q) }));
    else details.logProb = logProb(r.sequences[0]);
    return pred;
  }));
}

export const task: Task<Seq2SeqTransformer, DatesData> = {
  name: "dates",
  description: "Human-written dates → ISO 8601: Transformer encoder–decoder with cross-attention, greedy and beam decoding",
  defaults: { epochs: 3, batchSize: 64, lr: 1e-3, weightDecay: 0.01, warmupSteps: 100, clipNorm: 1, evalLimit: 500 },

  loadData(o) {
    if (o.data !== undefined) throw new Error(`dates: the data is generated in code (src/data/dates.ts); --data is not used (got ${JSON.stringify(o.data)})`);
    const nTrain = Math.min(o.limitTrain ?? DATES_TRAIN_SIZE, DATES_TRAIN_SIZE), nTest = Math.min(o.limitTest ?? DATES_TEST_SIZE, DATES_TEST_SIZE);
    const train = generateDateDataset({ seed: 0, trainSize: nTrain, testSize: 0 }).train;
    const test = generateDateDataset({ seed: 1, trainSize: 0, testSize: DATES_TEST_SIZE }).test.slice(0, nTest);
    // the unit is a model choice: keep raw examples and encode for the word unit now (re-encoded in createModel for char)
    const { srcTok, tgtTok } = tokenizersOf("word");
    const enc = (e: DateExample) => encodeDate(e, "word", srcTok, tgtTok);
    return { unit: "word", srcTok, tgtTok, train: train.map(enc), test: test.map(enc) };
  },

  trainSize: (data) => data.train.length,

  modelOptions: {
    unit: { default: "word", help: "source tokens: word or char" },
    dModel: { default: 64, help: "embedding width" },
    heads: { default: 4, help: "attention heads per layer (must divide d-model)" },
    encoderLayers: { default: 2, help: "encoder layers" },
    decoderLayers: { default: 2, help: "decoder layers" },
    dimFeedforward: { default: 256, help: "hidden width of each layer's MLP" },
    dropout: { default: 0.1, help: "dropout probability in [0, 1)" },
    maxSrcLen: { default: "12 (word) / 40 (char)", help: "longest source in tokens" },
    maxTgtLen: { default: TARGET_LEN + 2, help: "longest target in characters, with [BOS] and [EOS]" },
    tieOutput: { default: false, help: "true: the output layer reuses the target embedding" },
    normFirst: { default: true, help: "pre-norm (true) or post-norm (false) layers" },
    activation: { default: "relu", help: "relu or gelu" },
    labelSmoothing: { default: 0, help: "label smoothing of the training loss, in [0, 1)" },
    beamWidth: { default: 4, help: "beam width of evaluation and predict; 1: greedy only" },
    lengthPenalty: { default: 0, help: "beam search length penalty exponent" },
  },
  predictFlags: [
    { name: "beam", kind: "value", type: "int", min: 1, help: "beam width (default: the model's beam-width; GNMT length penalty)" },
    // the strategies of hf.generate, by the same search code (src/hf/generation.ts): any of these switches to it
    { name: "beams", kind: "value", type: "int", min: 1, help: "HF-style beam search with N beams (length_penalty semantics; with --sample: beam sampling)" },
    { name: "sample", kind: "switch", help: "sample the output (with --temperature, --top-k, --top-p, --seed)" },
    { name: "temperature", kind: "value", type: "number", min: 0, help: "sampling temperature; 0: greedy" },
    { name: "top-k", kind: "value", type: "int", min: 0, help: "sample from the K most likely tokens; 0: all" },
    { name: "top-p", kind: "value", type: "number", min: 0, minExclusive: true, max: 1, help: "nucleus sampling" },
    { name: "seed", kind: "value", type: "int", help: "seed of the sampling" },
    { name: "num-return-sequences", kind: "value", type: "int", min: 1, help: "outputs to list (beams: the N best; sampling: N samples)" },
    { name: "repetition-penalty", kind: "value", type: "number", min: 0, minExclusive: true, help: "HF's repetition_penalty (1: off)" },
    { name: "no-repeat-ngram-size", kind: "value", type: "int", min: 0, help: "no n-gram of this size twice (0: off)" },
    { name: "length-penalty", kind: "value", type: "number", help: "with --beams: score = log p / length^X (default 1)" },
  ],

  createModel(data, overrides, gen: Generator) {
    const { model: mo, task: to } = parseOverrides(overrides);
    const unit = (to.unit ?? "word") as SourceUnit;
    const { srcTok, tgtTok } = tokenizersOf(unit);
    ensureUnit(data, unit);
    const model = resolveSeq2SeqConfig({
      srcVocab: srcTok.vocabSize, tgtVocab: tgtTok.vocabSize, dModel: 64, heads: 4, encoderLayers: 2, decoderLayers: 2,
      dimFeedforward: 256, dropout: 0.1, maxSrcLen: unit === "word" ? 12 : 40, maxTgtLen: TARGET_LEN + 2, normFirst: true, ...mo,
    });
    const cfg: DatesConfig = {
      task: "dates", unit, ...model,
      labelSmoothing: cfgNumber(to.labelSmoothing ?? 0, "labelSmoothing", (x) => x >= 0 && x < 1),
      beamWidth: cfgNumber(to.beamWidth ?? 4, "beamWidth", (x) => Number.isInteger(x) && x >= 1),
      lengthPenalty: cfgNumber(to.lengthPenalty ?? 0, "lengthPenalty", Number.isFinite),
      srcTokenizer: srcTok.toJSON(), tgtTokenizer: tgtTok.toJSON(),
    };
    const m = new Seq2SeqTransformer(model, gen);
    settings.set(m, cfg);
    return { model: m, config: cfg as unknown as ModelConfig };
  },

  modelFromConfig(config) {
    const { cfg, srcTok, tgtTok } = readConfig(config);
    if (cfg.srcVocab !== srcTok.vocabSize || cfg.tgtVocab !== tgtTok.vocabSize) {
      throw new Error(`dates: config vocabularies srcVocab=${cfg.srcVocab}, tgtVocab=${cfg.tgtVocab} do not match the stored tokenizers (${srcTok.vocabSize}, ${tgtTok.vocabSize})`);
    }
    const m = new Seq2SeqTransformer(modelConfigOf(cfg));
    settings.set(m, cfg);
    return m;
  },

  loss(model, data, indices) {
    const st = settingsOf(model);
    ensureUnit(data, st.unit);
    const items = Array.from(indices, (i) => {
      const e = data.train[i];
      if (!e) throw new RangeError(`dates: training index ${i} outside [0, ${data.train.length - 1}]`);
      return e;
    });
    const { src, tgtIn, labels } = dateBatch(items);
    const logits = model.forward(src, tgtIn);                                // (B, 11, V)
    const V = logits.shape[2];
    return F.crossEntropy(logits.reshape([-1, V]), labels.reshape([-1]), { ignoreIndex: PAD_ID, labelSmoothing: st.labelSmoothing });
  },

  evaluate(model, data, o = {}) {
    const n = Math.min(o.limit ?? data.test.length, data.test.length);
    if (n < 1) throw new Error("dates: no held-out examples to evaluate");
    const L = model.config.decoderLayers, bs = 200;
    let exact = 0, beamExact = 0, chars = 0, lossSum = 0, tokens = 0, beamUsed = false;
    const hits = new Float64Array(L + 1), totals = new Float64Array(L + 1);
    const { unit, beamWidth, lengthPenalty } = settingsOf(model);
    ensureUnit(data, unit);
    noGrad(() => {
      for (let b0 = 0; b0 < n; b0 += bs) {
        const items = data.test.slice(b0, Math.min(n, b0 + bs));
        tidy(() => {
          const { src, tgtIn, labels } = dateBatch(items);
          const enc = model.encode(src);
          const { result: logits, records } = captureAttention(model, () => model.decode(tgtIn, enc),
            { mode: "mean", filter: (name) => name.endsWith("multihead_attn") });
          const V = logits.shape[2];
          lossSum += F.crossEntropy(logits.reshape([-1, V]), labels.reshape([-1]), { reduction: "sum" }).item();
          tokens += labels.numel();
          const layers = crossLayers(records), [Tt, Ts] = [tgtIn.shape[1], src.shape[1]];
          const { greedy, beams } = decodeBatch(model, enc, items.length, beamWidth, lengthPenalty);
          items.forEach((e, i) => {
            const g = greedy[i].tokens, b = beams?.[i][0]?.tokens;
            exact += +(g.length === e.tgt.length && g.every((t, k) => t === e.tgt[k]));
            for (let k = 0; k < e.tgt.length; k++) chars += +(g[k] === e.tgt[k]);
            if (b) { beamUsed = true; beamExact += +(b.length === e.tgt.length && b.every((t, k) => t === e.tgt[k])); }
            const avg = new Float64Array(Tt * Ts);
            layers.forEach((w, l) => {
              const row = w.subarray(i * Tt * Ts, (i + 1) * Tt * Ts);
              for (let q = 0; q < row.length; q++) avg[q] += row[q] / L;
              const r = alignmentAgreement(row, Tt, Ts, e.spans, e.src.length);
              hits[l + 1] += r.hits; totals[l + 1] += r.total;
            });
            const r = alignmentAgreement(avg, Tt, Ts, e.spans, e.src.length);
            hits[0] += r.hits; totals[0] += r.total;
          });
          return null;
        });
        o.onProgress?.(Math.min(n, b0 + bs), n);
      }
    });
    const out: Record<string, number> = { exactMatch: exact / n, charAccuracy: chars / (n * TARGET_LEN) };
    if (beamUsed) out.beamExactMatch = beamExact / n;
    out.alignmentRate = hits[0] / Math.max(1, totals[0]);
    for (let l = 0; l < L; l++) out[`alignmentRateLayer${l}`] = hits[l + 1] / Math.max(1, totals[l + 1]);
    out.loss = lossSum / tokens;
    return out;
  },

  predict(model, config, input, o = {}) {
    const { cfg, srcTok, tgtTok } = readConfig(config);
    if (HF_SEARCH_FLAGS.some((k) => o[k] !== undefined)) return predictWithSearch(model, srcTok, tgtTok, input, o);
    const beamWidth = o.beam !== undefined ? Number(o.beam) : cfg.beamWidth;
    if (!Number.isInteger(beamWidth) || beamWidth < 1) throw new Error(`dates: --beam must be a positive integer, got ${String(o.beam)}`);
    const { ids, labels } = sourceIds(input, srcTok, model.config.maxSrcLen);
    return noGrad(() => tidy(() => {
      const enc = model.encode(Tensor.fromArray(Int32Array.from(ids), [1, ids.length]));
      const { greedy, beams } = decodeBatch(model, enc, 1, beamWidth, cfg.lengthPenalty, beamWidth);
      const best = beams ? beams[0][0] : greedy[0];
      const text = (h: Hypothesis) => tgtTok.decode(h.tokens);
      const output = text(best), tgtIn = Tensor.fromArray(Int32Array.from([BOS_ID, ...best.tokens]), [1, best.tokens.length + 1]);
      const { records } = captureAttention(model, () => model.decode(tgtIn, enc), { mode: "mean", filter: (n) => n.endsWith("multihead_attn") });
      const layers = crossLayers(records), Ts = ids.length;
      const alignment = best.tokens.map((id, j) => {
        const ch = tgtTok.idToToken(id);
        const w = (k: number) => layers.reduce((s, l) => s + l[j * Ts + k], 0) / layers.length; // head- and layer-mean
        let top = 0;
        for (let k = 1; k < Ts; k++) if (w(k) > w(top)) top = k;
        return { position: j, target: ch, sourceIndex: top, source: labels[top], weight: Number(w(top).toFixed(3)) };
      });
      const details: Record<string, unknown> = {
        greedy: text(greedy[0]), greedyLogProb: greedy[0].logProb, beamWidth, sourceTokens: labels,
        alignment: alignment.map((a) => `${a.target}←${a.source}`).join(" "), alignmentDetail: alignment,
      };
      const unknown = labels.filter((_, i) => ids[i] === UNK_ID);
      if (unknown.length) details.warning = `${unknown.length} source token(s) are outside the date vocabulary ([UNK])`;
      const pred: Prediction = { output, details, scoreName: "log-probability" };
      if (beams) pred.alternatives = beams[0].map((h) => ({ output: text(h), score: h.logProb }));
      return pred;
    }));
  },

  explain(model, config, input, target): ExplainTarget {
    const { srcTok, tgtTok } = readConfig(config);
    const { ids, labels } = sourceIds(input, srcTok, model.config.maxSrcLen);
    const src = Tensor.fromArray(Int32Array.from(ids), [1, ids.length]);
    const out = noGrad(() => {
      const enc = model.encode(src);
      return greedyDecode(cachedSearchStep(model, enc), enc, { bos: BOS_ID, eos: EOS_ID, maxLen: model.config.maxTgtLen - 1 })[0].tokens;
    });
    const outTokens = out.map((id) => tgtTok.idToToken(id)), outText = outTokens.join("");
    if (!out.length) throw new Error("dates: the model produced an empty output; nothing to explain");
    const j = parseTarget(target, outTokens);
    const tgtIn = Tensor.fromArray(Int32Array.from([BOS_ID, ...out.slice(0, j)]), [1, j + 1]);
    const score = (o: { occlude?: readonly number[]; onEmbeddings?: (x: Tensor) => Tensor } = {}) => {
      const logits = model.decode(tgtIn, model.encode(src, o));             // (1, j+1, V)
      return logits.select(0, 0).select(0, j).select(0, out[j]);            // the target character's logit, shape []
    };
    // readout: the explained position's cross-attention, head- and layer-averaged (Ts,)
    const layers = noGrad(() => crossLayers(captureAttention(model, () => score(), { mode: "mean", filter: (n) => n.endsWith("multihead_attn") }).records));
    const Ts = ids.length, readout = new Float64Array(Ts);
    for (const w of layers) for (let k = 0; k < Ts; k++) readout[k] += w[j * Ts + k] / layers.length;
    return {
      tokens: labels, targetLabel: `'${outTokens[j]}' (output position ${j} of ${outText})`, targetIndex: j, score,
      layerFilter: (name) => name.startsWith("encoder."), readout, decoderTokens: ["<s>", ...outTokens.slice(0, j)],
    };
  },

  faithfulnessInputs: (data, n) => data.test.slice(0, n).map((e) => ({ text: e.ex.source })),
};
