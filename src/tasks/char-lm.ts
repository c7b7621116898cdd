// Task "char-lm" (browser-safe; the Node task in src/node/tasks/char-lm.ts adds the data loader): a character-level GPT (src/models/char-gpt.ts) on the text of every fortune file
// (packages fortunes + fortunes-min; split and vocabulary in docs/datasets.md, "Character-LM corpus").
// Training example i is a window of blockSize + 1 characters starting near i·EXAMPLE_CHARS (a random shift from the
// global generator, which the trainer seeds and checkpoints, varies the cut between epochs); the loss is the mean
// next-character cross-entropy. Validation: every character of the validation text predicted once, in
// non-overlapping windows of blockSize → loss (nats/char), bits/char and perplexity.
import { Tensor } from "../tensor.js";
import { noGrad } from "../autograd.js";
import { tidy } from "../scope.js";
import * as F from "../functional.js";
import { defaultGenerator, Generator } from "../random.js";
import { Tokenizer } from "../data/tokenizer.js";
import { CharGPT, resolveCharGPTConfig, type CharGPTConfig } from "../models/char-gpt.js";
import { argmax, generate, type GenerateResult } from "../models/generate.js";
import type { ExplainInput, ExplainTarget, ModelConfig, Prediction, Task, Truncation } from "./task.js";
import { checkConfigFields, rules as r, type FieldRule } from "./config-check.js";

/** Characters per training example (the unit of --limit-train and of an epoch's length). */
export const EXAMPLE_CHARS = 128;
/** The corpus joins fortunes with a blank line: a prompt starts after one, and generation stops at the next. */
export const SEPARATOR = "\n\n";

export interface CharLMData {
  tokenizer: Tokenizer;
  /** Encoded training / validation text (one id per character). */
  train: Int32Array;
  val: Int32Array;
  trainEntries: number;
  valEntries: number;
}

/** Default model (≈0.8 M parameters); override with --d-model, --n-heads, --n-layers, --block-size, --dim-feedforward, --dropout, --tie-weights. */
export const DEFAULT_MODEL: Omit<CharGPTConfig, "vocabSize"> = { blockSize: 128, dModel: 128, nHeads: 4, nLayers: 4, dropout: 0.1, tieWeights: true };

/** tokenizer.encode(text) of a char tokenizer, as an Int32Array, without intermediate arrays (megabytes of text). */
export function encodeChars(tok: Tokenizer, text: string): Int32Array {
  if (tok.kind !== "char") throw new Error(`char-lm: expected a char tokenizer, got a ${tok.kind} tokenizer`);
  const t = tok.lowercase ? text.normalize("NFC").toLowerCase() : text.normalize("NFC");
  const out = new Int32Array(t.length);                                                   // ≥ the number of code points
  let n = 0;
  for (const ch of t) out[n++] = tok.tokenToId(ch);                                        // by code point
  return out.slice(0, n);
}

// ---------- configuration ----------
const OVERRIDE_KEYS: Record<string, keyof CharGPTConfig> = {
  dmodel: "dModel", d: "dModel", nheads: "nHeads", heads: "nHeads", nlayers: "nLayers", layers: "nLayers",
  blocksize: "blockSize", context: "blockSize", dff: "dimFeedforward", dimfeedforward: "dimFeedforward", dropout: "dropout",
  tieweights: "tieWeights", tie: "tieWeights", bias: "bias",
};

/** CLI overrides (camelCase or kebab-case keys, string or typed values) → a partial CharGPT config. */
export function parseOverrides(overrides: ModelConfig): Partial<CharGPTConfig> {
  const out: Record<string, number | boolean> = {};
  for (const [k, raw] of Object.entries(overrides)) {
    if (raw === undefined) continue;
    const key = OVERRIDE_KEYS[k.replace(/[-_]/g, "").toLowerCase()];
    if (!key) throw new Error(`char-lm: unknown model option '${k}' (known: d-model, n-heads, n-layers, block-size, dim-feedforward, dropout, tie-weights, bias)`);
    if (key === "tieWeights" || key === "bias") {
      if (raw === true || raw === "true") out[key] = true;
      else if (raw === false || raw === "false") out[key] = false;
      else throw new Error(`char-lm: option '${k}' must be true or false, got ${JSON.stringify(raw)}`);
    } else {
      const v = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
      if (!Number.isFinite(v)) throw new Error(`char-lm: option '${k}' must be a number, got ${JSON.stringify(raw)}`);
      out[key] = v;
    }
  }
  return out as Partial<CharGPTConfig>;
}

const CONFIG_FIELDS = ["vocabSize", "blockSize", "dModel", "nHeads", "nLayers", "dimFeedforward", "dropout", "tieWeights", "bias", "layerNormEps"] as const;

const CHAR_LM_RULES: Record<string, FieldRule> = {
  vocabSize: r.vocab(), blockSize: r.length(), dModel: r.width(), nHeads: r.width(), nLayers: r.layers(),
  dimFeedforward: r.width(true), dropout: r.fraction(true), tieWeights: r.bool(true), bias: r.bool(true),
  layerNormEps: { type: "number", min: 0, max: 1, minExclusive: true, optional: true }, tokenizer: r.object(),
};

function modelConfigOf(config: ModelConfig): CharGPTConfig {
  checkConfigFields("char-lm", config, CHAR_LM_RULES);
  const c: Record<string, unknown> = {};
  for (const f of CONFIG_FIELDS) if (config[f] !== undefined) c[f] = config[f];
  for (const f of ["vocabSize", "blockSize", "dModel", "nHeads", "nLayers"]) {
    if (typeof c[f] !== "number") throw new Error(`char-lm: model config field '${f}' must be a number, got ${JSON.stringify(config[f])}`);
  }
  return resolveCharGPTConfig(c as unknown as CharGPTConfig);
}

function tokenizerOf(config: ModelConfig): Tokenizer {
  if (config.tokenizer === undefined) throw new Error("char-lm: model config has no 'tokenizer' field (not a char-lm checkpoint?)");
  return Tokenizer.fromJSON(config.tokenizer);
}

// ---------- batches ----------
/** Inputs x (B, T) and next-character targets y (B, T) from windows of `ids` starting at `starts`. */
export function windows(ids: Int32Array, starts: ArrayLike<number>, T: number): { x: Tensor; y: Tensor } {
  const B = starts.length, x = new Int32Array(B * T), y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const s = starts[b];
    if (!(s >= 0 && s + T + 1 <= ids.length)) throw new RangeError(`char-lm: window [${s}, ${s + T + 1}) outside the text of ${ids.length} characters`);
    x.set(ids.subarray(s, s + T), b * T);
    y.set(ids.subarray(s + 1, s + T + 1), b * T);
  }
  return { x: Tensor.fromArray(x, [B, T]), y: Tensor.fromArray(y, [B, T]) };
}

// The vocabulary a model was trained with travels in its config; data loaded later (eval, --resume) builds its own from
// the corpus on disk. Both are the same for the same Debian package, but if they differ the data ids are translated
// (by character) into the model's ids instead of being silently misread.
const modelTokenizers = new WeakMap<CharGPT, Tokenizer>();
const translated = new WeakMap<CharGPT, { data: CharLMData; train?: Int32Array; val?: Int32Array }>();

/** data.train / data.val in the model's token ids. */
export function idsForModel(model: CharGPT, data: CharLMData, which: "train" | "val"): Int32Array {
  const mt = modelTokenizers.get(model);
  const src = data[which];
  if (!mt || mt === data.tokenizer) return src;
  const a = mt.toJSON().tokens, b = data.tokenizer.toJSON().tokens;
  if (a.length === b.length && a.every((t, i) => t === b[i])) { modelTokenizers.set(model, data.tokenizer); return src; }
  let entry = translated.get(model);
  if (!entry || entry.data !== data) translated.set(model, (entry = { data }));
  const done = entry[which];
  if (done) return done;
  const map = Int32Array.from(b, (t) => mt.tokenToId(t));                           // data id → model id ([UNK] if absent)
  const out = Int32Array.from(src, (id) => map[id]);
  entry[which] = out;
  return out;
}

function trainLoss(model: CharGPT, data: CharLMData, indices: Int32Array): Tensor {
  const ids = idsForModel(model, data, "train");
  const N = ids.length, T = Math.min(model.config.blockSize, N - 1), n = trainCount(data);
  const starts = new Int32Array(indices.length);
  for (let b = 0; b < indices.length; b++) {
    const i = indices[b];
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`char-lm: training index ${i} out of range [0, ${n})`);
    starts[b] = Math.min(i * EXAMPLE_CHARS + defaultGenerator.int(EXAMPLE_CHARS), N - T - 1);
  }
  const { x, y } = windows(ids, starts, T);
  return model.lossOn(x, y);
}

/** Training examples: one per EXAMPLE_CHARS characters (at least one when there are 2+ characters). */
function trainCount(data: CharLMData): number {
  return data.train.length < 2 ? 0 : Math.max(1, Math.floor((data.train.length - 1) / EXAMPLE_CHARS));
}

/**
 * Held-out next-character loss: each validation character (after the first) is predicted once, from the
 * characters before it in its window of blockSize (so on average from ≈ blockSize/2 characters of context).
 */
export function evaluateCharLM(model: CharGPT, ids: Int32Array, o: { limit?: number; batchSize?: number; onProgress?: (done: number, total: number) => void } = {}): Record<string, number> {
  const T = model.config.blockSize, bs = o.batchSize ?? 32;
  const full = Math.floor((ids.length - 1) / T), tail = ids.length - 1 - full * T;
  let nFull = full, nTail = tail > 0 ? 1 : 0;
  if (o.limit !== undefined && o.limit < full + nTail) { nFull = Math.min(full, Math.max(0, o.limit)); nTail = 0; }
  const total = nFull + nTail;
  if (total === 0) throw new Error(`char-lm: nothing to evaluate (validation text of ${ids.length} characters, limit ${o.limit})`);
  let nats = 0, chars = 0;
  noGrad(() => {
    for (let w = 0; w < nFull; w += bs) {
      const B = Math.min(bs, nFull - w);
      nats += tidy(() => {
        const { x, y } = windows(ids, Int32Array.from({ length: B }, (_, b) => (w + b) * T), T);
        return F.crossEntropy(model.forward(x).reshape([-1, model.config.vocabSize]), y.reshape([-1]), { reduction: "sum" }).item();
      });
      chars += B * T;
      o.onProgress?.(w + B, total);
    }
    if (nTail) {
      nats += tidy(() => {
        const { x, y } = windows(ids, [full * T], tail);
        return F.crossEntropy(model.forward(x).reshape([-1, model.config.vocabSize]), y.reshape([-1]), { reduction: "sum" }).item();
      });
      chars += tail;
      o.onProgress?.(total, total);
    }
  });
  const loss = nats / chars;
  return { loss, bitsPerChar: loss / Math.LN2, perplexity: Math.exp(loss), chars };
}

// ---------- predict ----------
function flag(o: Record<string, string | boolean>, ...names: string[]): string | boolean | undefined {
  for (const n of names) if (o[n] !== undefined) return o[n];
  return undefined;
}
function numFlag(o: Record<string, string | boolean>, name: string, def: number, check: (v: number) => boolean, want: string): number {
  const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const raw = flag(o, name, camel);
  if (raw === undefined) return def;
  const v = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
  if (!Number.isFinite(v) || !check(v)) throw new Error(`char-lm predict: --${name} must be ${want}, got ${JSON.stringify(raw)}`);
  return v;
}

export interface CharLMPredictOptions {
  maxTokens: number; temperature: number; topK: number; topP: number; seed: number;
  useCache: boolean; stopAtBlankLine: boolean; compare: boolean; stream: boolean;
  /** The strategies of hf.generate (shared search, src/hf/generation.ts): beams (beam search; with sample: beam
   *  sampling), sequences returned, penalties. */
  beams?: number; sample?: boolean; numReturnSequences?: number; repetitionPenalty?: number; noRepeatNgramSize?: number; lengthPenalty?: number;
}

/** predict flags: --max-tokens N, --temperature T, --top-k K, --top-p P, --seed S, --no-cache, --no-stop, --no-compare, --quiet/--json. */
export function parsePredictFlags(o: Record<string, string | boolean> = {}): CharLMPredictOptions {
  // --no-cache may arrive as true or (when the parser took the next word as its value) any string but "false"
  const off = (name: string) => {
    const neg = flag(o, `no-${name}`, `no${name[0].toUpperCase()}${name.slice(1)}`), pos = flag(o, name);
    return (neg !== undefined && neg !== false && neg !== "false") || pos === false || pos === "false";
  };
  return {
    maxTokens: numFlag(o, "max-tokens", 200, (v) => Number.isInteger(v) && v >= 0, "an integer >= 0"),
    temperature: numFlag(o, "temperature", 0.8, (v) => v >= 0, "a number >= 0 (0 = greedy)"),
    topK: numFlag(o, "top-k", 0, (v) => Number.isInteger(v) && v >= 0, "an integer >= 0 (0 = off)"),
    topP: numFlag(o, "top-p", 1, (v) => v > 0 && v <= 1, "in (0, 1]"),
    seed: numFlag(o, "seed", 0, (v) => Number.isInteger(v), "an integer"),
    useCache: !off("cache"), stopAtBlankLine: !off("stop"), compare: !off("compare"),
    stream: !(flag(o, "quiet") === true || flag(o, "json") === true),
    ...opt("beams", numFlag(o, "beams", 1, (v) => Number.isInteger(v) && v >= 1, "an integer >= 1"), 1),
    ...(flag(o, "sample") === true ? { sample: true } : {}),
    ...opt("numReturnSequences", numFlag(o, "num-return-sequences", 1, (v) => Number.isInteger(v) && v >= 1, "an integer >= 1"), 1),
    ...opt("repetitionPenalty", numFlag(o, "repetition-penalty", 1, (v) => v > 0, "a number > 0 (1 = off)"), 1),
    ...opt("noRepeatNgramSize", numFlag(o, "no-repeat-ngram-size", 0, (v) => Number.isInteger(v) && v >= 0, "an integer >= 0 (0 = off)"), 0),
    ...opt("lengthPenalty", numFlag(o, "length-penalty", 1, Number.isFinite, "a number"), 1),
  };
}
const opt = <K extends string>(k: K, v: number, off: number): Partial<Record<K, number>> => (v === off ? {} : { [k]: v } as Record<K, number>);

/** Sample a continuation of `prompt` (streamed to `write` when given), stopping at a blank line unless told not to. */
export function continueText(model: CharGPT, tok: Tokenizer, prompt: string, p: CharLMPredictOptions, write?: (s: string) => void): { text: string; texts: string[]; result: GenerateResult } {
  const ctx = tok.encode(SEPARATOR + prompt);
  let text = "", pending = "";                           // newlines are held back until a character follows them
  const result = generate(model, ctx, {
    maxNewTokens: p.maxTokens, temperature: p.temperature, topK: p.topK, topP: p.topP, useCache: p.useCache,
    // beams: beam search unless --sample (beam sampling), as HF's num_beams / do_sample
    ...(p.beams && p.beams > 1 ? { numBeams: p.beams, doSample: p.sample === true } : {}),
    numReturnSequences: p.numReturnSequences, repetitionPenalty: p.repetitionPenalty, noRepeatNgramSize: p.noRepeatNgramSize, lengthPenalty: p.lengthPenalty,
    generator: new Generator(p.seed), banned: [0, 1, 2, 3, 4, 5],       // special tokens never occur in the training text
    onToken: (id) => {
      const ch = tok.decode([id]);
      text += ch;
      if (p.stopAtBlankLine && (prompt + text).endsWith(SEPARATOR)) return false;
      if (ch === "\n") pending += ch;
      else { write?.(pending + ch); pending = ""; }
    },
  });
  if (!p.stopAtBlankLine) write?.(pending);
  // the other returned sequences (--num-return-sequences), cut at the blank line as the first
  const cut = (t: string) => {
    if (!p.stopAtBlankLine) return t;
    const full = prompt + t;
    for (let k = prompt.length + 1; k <= full.length; k++) if (full.slice(0, k).endsWith(SEPARATOR)) return full.slice(prompt.length, k).replace(/\n+$/, "");
    return t.replace(/\n+$/, "");
  };
  const texts = result.sequences.map((q, i) => (i === 0 ? null : cut(tok.decode(q))));
  const first = p.stopAtBlankLine ? text.replace(/\n+$/, "") : text;
  return { text: first, texts: [first, ...texts.slice(1) as string[]], result };
}

function predictCharLM(model: CharGPT, config: ModelConfig, input: string, o: Record<string, string | boolean> = {}): Prediction {
  const tok = tokenizerOf(config), p = parsePredictFlags(o);
  model.eval();
  // streaming goes to stdout where there is one (the command line); in a browser `stream` is simply ignored
  const stdout = (globalThis as { process?: { stdout?: { write(s: string): unknown } } }).process?.stdout;
  const write = p.stream && stdout ? (s: string) => { stdout.write(s); } : undefined;
  write?.(input);
  const main = continueText(model, tok, input, p, write);
  write?.("\n");
  const details: Record<string, unknown> = {
    newTokens: main.result.ids.length, seed: p.seed, temperature: p.temperature, topK: p.topK, topP: p.topP,
    ...(p.beams ? { beams: p.beams } : {}), ...(main.result.scores ? { score: main.result.scores[0] } : {}),
    ...(main.texts.length > 1 ? { sequences: main.texts.map((t, i) => ({ text: input + t, ...(main.result.scores ? { score: main.result.scores[i] } : {}) })) } : {}),
    [p.useCache ? "tokensPerSecondCached" : "tokensPerSecondUncached"]: round(main.result.tokensPerSecond),
  };
  if (p.compare) {
    // the same sampling (same seed) in the other mode: timing, and a check that both modes agree
    const other = continueText(model, tok, input, { ...p, useCache: !p.useCache });
    details[p.useCache ? "tokensPerSecondUncached" : "tokensPerSecondCached"] = round(other.result.tokensPerSecond);
    details.cacheSpeedup = round((p.useCache ? main : other).result.tokensPerSecond / (p.useCache ? other : main).result.tokensPerSecond);
    // identical up to the context limit; past blockSize the cached mode refills its window and may diverge
    details.sameOutputWithAndWithoutCache = other.text === main.text;
    if (other.text !== main.text) details.firstDifferenceAt = firstDifference(main.text, other.text);
    details.contextLimit = model.config.blockSize;
  }
  return { output: input + main.text, details, streamed: p.stream };
}

function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function round(v: number): number { return Math.round(v * 100) / 100; }

// ---------- explain ----------
/** A target character given on the command line: one character, or \n / "newline" / "space". */
export function parseTargetChar(target: string): string {
  if (target === "\\n" || target.toLowerCase() === "newline") return "\n";
  if (target.toLowerCase() === "space") return " ";
  const cps = Array.from(target);
  if (cps.length !== 1) throw new Error(`char-lm explain: target must be one character (or \\n, newline, space), got ${JSON.stringify(target)}`);
  return cps[0];
}

function explainCharLM(model: CharGPT, config: ModelConfig, input: ExplainInput, target?: string): ExplainTarget {
  const tok = tokenizerOf(config), T0 = model.config.blockSize;
  if (input.image !== undefined || input.pixels !== undefined) throw new Error("char-lm explain: the input must be text (or ids), not an image");
  let ids = input.ids ? [...input.ids] : input.text !== undefined ? tok.encode(input.text) : [];
  if (ids.length === 0) throw new Error("char-lm explain: empty input; give some text whose next character should be explained");
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= tok.vocabSize) throw new Error(`char-lm explain: id ${id} out of range [0, ${tok.vocabSize})`);
  // the model sees at most blockSize characters: the latest ones, as when it generates
  const truncation: Truncation | undefined = ids.length > T0 ? { total: ids.length, kept: T0, dropped: ids.length - T0, from: "start" } : undefined;
  if (truncation) ids = ids.slice(-T0);
  const T = ids.length;
  model.eval();
  const x = Int32Array.from(ids);
  let targetIndex: number;
  if (target === undefined) {
    const logits = noGrad(() => tidy(() => Float32Array.from(model.forward(Tensor.fromArray(x, [1, T])).select(0, 0).select(0, T - 1).dataSync() as Float32Array)));
    for (let s = 0; s < 6; s++) logits[s] = -Infinity;                                   // never a special token
    targetIndex = argmax(logits);
  } else {
    const ch = parseTargetChar(target);
    targetIndex = tok.tokenToId(ch);
    if (targetIndex === tok.unkId && ch !== "[UNK]") throw new Error(`char-lm explain: target ${JSON.stringify(ch)} is not in the model's vocabulary`);
  }
  const space = tok.tokenToId(" ");
  const neutral = space !== tok.unkId ? space : tok.unkId;                             // occluded characters become spaces
  return {
    tokens: ids.map((id) => tok.decode([id], { keepSpecial: true })),
    targetLabel: tok.decode([targetIndex], { keepSpecial: true }),
    targetIndex,
    query: T - 1,
    score(o = {}) {
      const xi = Int32Array.from(x);
      for (const j of o.occlude ?? []) {
        if (!Number.isInteger(j) || j < 0 || j >= T) throw new RangeError(`char-lm explain: occluded position ${j} out of range [0, ${T})`);
        xi[j] = neutral;
      }
      const logits = model.forward(Tensor.fromArray(xi, [1, T]), { onEmbeddings: o.onEmbeddings });   // (1, T, V)
      return logits.select(0, 0).select(0, T - 1).select(0, targetIndex);                   // []
    },
    layerFilter: (name) => /^blocks\.\d+\.attn$/.test(name),
    ...(truncation ? { truncation } : {}),
  };
}

/** n validation snippets of 64 characters (evenly spaced, each cut at a word start) for faithfulness evaluation. */
function faithfulnessInputs(data: CharLMData, n: number): ExplainInput[] {
  const L = 64, N = data.val.length, out: ExplainInput[] = [];
  const text = data.tokenizer.decode(data.val);
  if (Array.from(text).length !== N) throw new Error("char-lm: validation text does not round-trip through the tokenizer");
  const chars = Array.from(text);
  for (let i = 0; i < n && N > L; i++) {
    let s = Math.floor((i * (N - L)) / Math.max(1, n));
    while (s > 0 && s < N - L && chars[s - 1] !== " " && chars[s - 1] !== "\n") s++;
    out.push({ text: chars.slice(s, s + L).join("") });
  }
  return out;
}

/**
 * The task without its data loader (which reads the Debian fortunes files: src/node/tasks/char-lm.ts adds it), so
 * that a page can build, run and explain a trained model.
 */
export const charLmTaskBase: Omit<Task<CharGPT, CharLMData>, "loadData"> = {
  name: "char-lm",
  description: "character-level GPT on the fortunes text (loss in nats/char, sampling with a KV cache)",
  defaults: { epochs: 10, batchSize: 32, lr: 2e-3, weightDecay: 0.1, warmupSteps: 200, clipNorm: 1, evalLimit: 256 },
  trainSize: trainCount,
  modelOptions: {
    blockSize: { default: DEFAULT_MODEL.blockSize, help: "context length in characters (learned positions)" },
    dModel: { default: DEFAULT_MODEL.dModel, help: "embedding width" },
    nHeads: { default: DEFAULT_MODEL.nHeads, help: "attention heads per layer (must divide d-model)" },
    nLayers: { default: DEFAULT_MODEL.nLayers, help: "Transformer blocks" },
    dimFeedforward: { default: "4 x d-model", help: "hidden width of each block's MLP" },
    dropout: { default: DEFAULT_MODEL.dropout, help: "dropout probability in [0, 1)" },
    tieWeights: { default: DEFAULT_MODEL.tieWeights, help: "true: the output layer reuses the token embedding" },
    bias: { default: true, help: "biases in the Linear and LayerNorm layers" },
  },
  predictFlags: [
    { name: "max-tokens", kind: "value", type: "int", min: 0, help: "characters to generate at most", default: 200 },
    { name: "temperature", kind: "value", type: "number", min: 0, help: "sampling temperature; 0: greedy", default: 0.8 },
    { name: "top-k", kind: "value", type: "int", min: 0, help: "sample from the K most likely characters; 0: all", default: 0 },
    { name: "top-p", kind: "value", type: "number", min: 0, minExclusive: true, max: 1, help: "nucleus sampling: the smallest set with probability P", default: 1 },
    { name: "seed", kind: "value", type: "int", help: "seed of the sampling", default: 0 },
    { name: "no-cache", kind: "switch", help: "generate without the KV cache" },
    { name: "no-stop", kind: "switch", help: "do not stop at the end of the fortune (a blank line)" },
    { name: "no-compare", kind: "switch", help: "do not rerun in the other cache mode to compare speed and output" },
    // the strategies of hf.generate, by the same search code (src/hf/generation.ts)
    { name: "beams", kind: "value", type: "int", min: 1, help: "beam search with N beams (with --sample: beam sampling)" },
    { name: "sample", kind: "switch", help: "with --beams: beam sampling (without --beams char-lm samples unless --temperature 0)" },
    { name: "num-return-sequences", kind: "value", type: "int", min: 1, help: "continuations to print (beams: the N best; sampling: N samples)" },
    { name: "repetition-penalty", kind: "value", type: "number", min: 0, minExclusive: true, help: "HF's repetition_penalty (1: off)" },
    { name: "no-repeat-ngram-size", kind: "value", type: "int", min: 0, help: "no n-gram of this size twice (0: off)" },
    { name: "length-penalty", kind: "value", type: "number", help: "beam score = log p / length^X (default 1)" },
  ],
  createModel(data, overrides, gen) {
    const cfg = resolveCharGPTConfig({ ...DEFAULT_MODEL, ...parseOverrides(overrides), vocabSize: data.tokenizer.vocabSize });
    const model = new CharGPT(cfg, gen);
    modelTokenizers.set(model, data.tokenizer);
    return { model, config: { ...cfg, tokenizer: data.tokenizer.toJSON() } };
  },
  modelFromConfig(config) {
    const cfg = modelConfigOf(config), tok = tokenizerOf(config);
    if (cfg.vocabSize !== tok.vocabSize) throw new Error(`char-lm: config vocabSize ${cfg.vocabSize} differs from the tokenizer's ${tok.vocabSize}`);
    const model = new CharGPT(cfg);
    modelTokenizers.set(model, tok);
    return model;
  },
  loss: trainLoss,
  evaluate: (model, data, o = {}) => evaluateCharLM(model, idsForModel(model, data, "val"), o),
  predict: predictCharLM,
  explain: explainCharLM,
  faithfulnessInputs,
};
