// Autoregressive decoding for any decoder-only model: a preallocated key/value cache and a streaming generate() loop
// that measures tokens/s; its greedy / temperature / top-k / top-p / beam search is hf.generate's (src/hf/generation.ts).
// Browser-safe: timing uses the global `performance`.
import { Tensor } from "../tensor.js";
import { zeros } from "../creation.js";
import { noGrad } from "../autograd.js";
import { keep, tidy } from "../scope.js";
import { shapeStr } from "../shape.js";
import { contiguousData } from "../ops/movement.js";
import { devOps } from "../ops/util.js";
import { commonDevice, type DeviceName } from "../device.js";
import { defaultGenerator, Generator } from "../random.js";
import { runSearch, runSearchAsync, resolveGeneration } from "../hf/generation.js";
import { withPromptLength } from "../hf/generation-config.js";
import type { HFDecodingSession } from "../hf/types.js";
import type { StepFunction } from "./beam-search.js";

/**
 * Keys and values of every attention layer for the positions decoded so far, stored in preallocated
 * (B, H, maxLength, Dh) buffers so that decoding never reallocates. A model's cached forward calls
 * append(layer, k, v) once per layer with the new positions' keys/values (B, H, t, Dh), attends to the returned
 * views (B, H, length + t, Dh), and calls advance(t) once all layers have appended.
 */
export class KVCache {
  private keys: Tensor[];
  private values: Tensor[];
  /** Positions already cached (identical for every layer between forwards). */
  length = 0;

  constructor(readonly layers: number, readonly batch: number, readonly heads: number, readonly headDim: number, readonly maxLength: number) {
    for (const [n, v] of [["layers", layers], ["batch", batch], ["heads", heads], ["headDim", headDim], ["maxLength", maxLength]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`KVCache: ${n} must be a positive integer, got ${v}`);
    }
    const mk = () => keep(zeros([batch, heads, maxLength, headDim]));
    this.keys = Array.from({ length: layers }, mk);
    this.values = Array.from({ length: layers }, mk);
  }

  /** Where the buffers live: they follow the keys of the first append (a model on WebGPU keeps its cache there). */
  get device(): DeviceName { return this.keys[0].device; }

  private moveTo(device: DeviceName): void {
    if (this.length > 0) throw new Error(`KVCache.append: the cache holds ${this.length} positions on ${this.device}, got keys on ${device}`);
    const mk = (t: Tensor) => { const d = keep(t.to(device)); t.dispose(); return d; };
    this.keys = this.keys.map(mk);
    this.values = this.values.map(mk);
  }

  /** Positions still free. */
  get remaining(): number { return this.maxLength - this.length; }

  /** Store k, v (B, H, t, Dh) of layer `layer` at positions [length, length + t); returns all cached (B, H, length + t, Dh). */
  append(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.layers) throw new RangeError(`KVCache.append: layer ${layer} out of range [0, ${this.layers})`);
    const t = k.shape[2];
    const want = [this.batch, this.heads, t, this.headDim];
    for (const [x, n] of [[k, "k"], [v, "v"]] as const) {
      if (x.ndim !== 4 || x.shape.some((d, i) => d !== want[i])) {
        throw new Error(`KVCache.append: ${n} has shape ${shapeStr(x.shape)}, expected ${shapeStr(want)} (batch, heads, new positions, head dim)`);
      }
    }
    if (this.length + t > this.maxLength) {
      throw new RangeError(`KVCache.append: ${this.length} cached + ${t} new positions exceed maxLength ${this.maxLength}`);
    }
    const P = this.length, L = this.maxLength, Dh = this.headDim;
    if (k.device !== this.device) this.moveTo(k.device);
    if (k.device !== "cpu") {
      // on the device: one strided region write per buffer, positions P..P+t of every (b, h) row, enqueued
      commonDevice("KVCache.append", k, v);
      for (const [src, dst] of [[k, this.keys[layer]], [v, this.values[layer]]] as const) {
        devOps(dst).writeRegion(dst, src.shape, dst.strides, dst.offset + P * Dh, src);
      }
      return { k: this.keys[layer].narrow(2, 0, P + t), v: this.values[layer].narrow(2, 0, P + t) };
    }
    for (const [src, dst] of [[k, this.keys[layer]], [v, this.values[layer]]] as const) {
      const s = contiguousData(src) as Float32Array, d = dst.storage.data as Float32Array;
      // row (b, h) of the new block is t·Dh contiguous floats; it lands at positions P..P+t of row (b, h)
      for (let bh = 0; bh < this.batch * this.heads; bh++) d.set(s.subarray(bh * t * Dh, (bh + 1) * t * Dh), (bh * L + P) * Dh);
    }
    return { k: this.keys[layer].narrow(2, 0, P + t), v: this.values[layer].narrow(2, 0, P + t) };
  }

  /** Commit t new positions (after every layer appended them). */
  advance(t: number): void {
    if (!Number.isInteger(t) || t < 0 || this.length + t > this.maxLength) throw new RangeError(`KVCache.advance: cannot advance ${this.length} by ${t} (maxLength ${this.maxLength})`);
    this.length += t;
  }

  /** Beam search: sequence i of every layer becomes sequence rows[i] (rows.length = batch; rows may repeat). */
  reorder(rows: readonly number[]): void {
    if (rows.length !== this.batch) throw new RangeError(`KVCache.reorder: got ${rows.length} rows for batch ${this.batch}`);
    for (const r of rows) if (!Number.isInteger(r) || r < 0 || r >= this.batch) throw new RangeError(`KVCache.reorder: row ${r} outside [0, ${this.batch})`);
    const per = this.heads * this.maxLength * this.headDim;
    if (this.device !== "cpu") {
      // on the device: gather the rows into new buffers (enqueued; nothing is read back)
      const idx = Tensor.fromArray(Int32Array.from(rows), [rows.length], "int32");
      const pick = (t: Tensor) => { const r = keep(t.indexSelect(0, idx)); t.dispose(); return r; };
      this.keys = this.keys.map(pick);
      this.values = this.values.map(pick);
      return;
    }
    for (const t of [...this.keys, ...this.values]) {
      const d = t.storage.data as Float32Array, old = d.slice(0, this.batch * per);
      rows.forEach((r, i) => { if (r !== i) d.set(old.subarray(r * per, (r + 1) * per), i * per); });
    }
  }

  /** Forget everything (buffers are reused). */
  reset(): void { this.length = 0; }

  /** Release the buffers. */
  dispose(): void { for (const t of [...this.keys, ...this.values]) t.dispose(); }
}

/** What generate() needs from a decoder-only language model. */
export interface CachedDecoder {
  /** ids (B, T) int32 → logits (B, T, V), causal, positions 0..T−1. */
  forward(ids: Tensor): Tensor;
  /** ids (B, t) int32 at positions cache.length.. → logits (B, t, V); appends to and advances the cache. */
  forwardWithCache(ids: Tensor, cache: KVCache): Tensor;
  /** An empty cache for `batch` sequences. */
  createCache(batch: number): KVCache;
  /** Longest context the model accepts (learned positions). */
  readonly maxLength: number;
}

export interface SamplingOptions {
  /** Softmax temperature; 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
  /** Token ids that are never sampled (e.g. [PAD]). */
  banned?: readonly number[];
  generator?: Generator;
}

/** Index of the largest entry (first one on ties). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

export interface GenerateOptions extends SamplingOptions {
  /** Number of tokens to generate (default 100). */
  maxNewTokens?: number;
  /** Use the key/value cache (default true); false re-runs the whole context for every token. */
  useCache?: boolean;
  /** Called with every new token as soon as it is chosen; return false to stop early. With beams (numBeams > 1) the
   *  beams are reordered at every step, so it is called once per token of the best sequence at the end instead. */
  onToken?: (id: number, step: number) => boolean | void;
  /** Sample (true) or take the argmax (false). Default: sample when temperature > 0 (attnflow's convention: temperature
   *  defaults to 1, 0 is greedy), except with beams, where false (beam search; true: beam sampling), as HF's do_sample. */
  doSample?: boolean;
  /** Beam search with this many beams (HF's num_beams; default 1). */
  numBeams?: number;
  /** Sequences returned in `sequences`: the N best beams, or N samples (default 1). */
  numReturnSequences?: number;
  /** Beam score = log p / length^lengthPenalty (HF's length_penalty, default 1). */
  lengthPenalty?: number;
  /** HF's early_stopping for beams (default false). */
  earlyStopping?: boolean | "never";
  /** HF's repetition_penalty (default 1: off). */
  repetitionPenalty?: number;
  /** No n-gram of this size twice (HF's no_repeat_ngram_size; default 0: off). */
  noRepeatNgramSize?: number;
  /** Token id(s) that end a sequence (default: none; the length ends it). */
  eosTokenId?: number | number[] | null;
  /** No eos before this many new tokens (HF's min_new_tokens). */
  minNewTokens?: number;
  /** Seed of the sampling when no generator is given. */
  seed?: number;
}

export interface GenerateResult {
  /** The generated ids (without the prompt): the best sequence. */
  ids: number[];
  /** Every returned sequence (numReturnSequences of them), best first for beams, without the prompt. */
  sequences: number[][];
  /** Beam search: each returned sequence's score, sum log p / length^lengthPenalty (HF's sequences_scores). */
  scores?: number[];
  /** New tokens per second over the whole call (prefill included). */
  tokensPerSecond: number;
  elapsedMs: number;
  /** Time spent on the prompt before the first new token was chosen. */
  prefillMs: number;
  stoppedEarly: boolean;
}

/**
 * A decoding session (src/hf/types.ts HFDecodingSession) over a CachedDecoder for `rows` copies of `prompt`: the
 * prompt's last maxLength tokens are encoded at the first step; with the cache, a full cache is refilled from the last
 * ⌊3/4·maxLength⌋ tokens of each row; without it, every step re-runs each row's last maxLength tokens. reorder()
 * follows the beams (cache rows and token histories).
 */
export function decoderSession(model: CachedDecoder, prompt: readonly number[], rows: number, useCache = true): HFDecodingSession & { dispose(): void } {
  const L = model.maxLength;
  let hist = Array.from({ length: rows }, () => [...prompt]);
  const cache = useCache ? model.createCache(rows) : null;
  const ids = (seqs: number[][], n: number) => Tensor.fromArray(Int32Array.from(seqs.flatMap((h) => h.slice(-n))), [rows, Math.min(n, seqs[0].length)]);
  const lastRow = (logits: Tensor): Tensor => {
    if (logits.ndim !== 3 || logits.shape[0] !== rows) throw new Error(`generate: expected logits (${rows}, T, V), got ${shapeStr(logits.shape)}`);
    const t = logits.shape[1], V = logits.shape[2];
    if (logits.device !== "cpu") return logits.narrow(1, t - 1, 1).reshape([rows, V]).contiguous();   // stays on the device
    return Tensor.fromArray(Float32Array.from(contiguousData(logits.narrow(1, t - 1, 1)) as Float32Array), [rows, V]);
  };
  let first = true;
  return {
    batch: rows, prefix: hist.map((h) => [...h]),
    step(tokens: Int32Array | null): Tensor {
      if (tokens) hist.forEach((h, i) => h.push(tokens[i]));
      return tidy(() => {
        if (!cache) return lastRow(model.forward(ids(hist, L)));
        if (first || cache.remaining === 0) {
          // (re)fill: encode each row's context tail in one forward
          const n = first ? Math.min(hist[0].length, L) : Math.max(1, Math.floor((3 * L) / 4));
          first = false;
          cache.reset();
          return lastRow(model.forwardWithCache(ids(hist, n), cache));
        }
        return lastRow(model.forwardWithCache(ids(hist, 1), cache));
      });
    },
    reorder(order: readonly number[]): void {
      if (order.every((r, i) => r === i)) return;
      cache?.reorder(order);
      hist = order.map((r) => [...hist[r]]);
    },
    dispose(): void { cache?.dispose(); },
  };
}

/**
 * A continuation of `prompt` (B = 1) by the search of src/hf/generation.ts (shared with hf.generate): greedy
 * (temperature 0), sampling with temperature / top-k / top-p, beam search and beam sampling (numBeams), with HF's
 * repetition and n-gram penalties; banned ids never occur. Each token is streamed through onToken (beams: at the
 * end). Contexts longer than model.maxLength are cut to their last maxLength tokens; with the cache, a full cache is
 * refilled from the last ⌊3/4·maxLength⌋ tokens, so very long generations may differ slightly between the two modes.
 */
export function generate(model: CachedDecoder, prompt: readonly number[], o: GenerateOptions = {}): GenerateResult {
  const g = prepare(model, prompt, o);
  if (g.done) return g.done;
  try {
    return g.finish(noGrad(() => runSearch(g.session, g.r, prompt.length, 1, g.rng, { onStep: g.onStep })));
  } finally {
    g.session.dispose();
  }
}

/**
 * generate() for a model on a device (WebGPU; works on the CPU too): the same search and KV cache, each step's logits
 * read back asynchronously — the same tokens as generate() on the CPU for greedy decoding.
 */
export async function generateAsync(model: CachedDecoder, prompt: readonly number[], o: GenerateOptions = {}): Promise<GenerateResult> {
  const g = prepare(model, prompt, o);
  if (g.done) return g.done;
  try {
    return g.finish(await runSearchAsync(g.session, g.r, prompt.length, 1, g.rng, { onStep: g.onStep }));
  } finally {
    g.session.dispose();
  }
}

function prepare(model: CachedDecoder, prompt: readonly number[], o: GenerateOptions) {
  const maxNew = o.maxNewTokens ?? 100;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new RangeError(`maxNewTokens must be an integer >= 0, got ${maxNew}`);
  if (prompt.length === 0) throw new Error("generate: the prompt must contain at least one token");
  const temp = o.temperature ?? 1, topK = o.topK ?? 0, topP = o.topP ?? 1, beams = o.numBeams ?? 1;
  if (!(temp >= 0) || temp === Infinity) throw new RangeError(`temperature must be a finite number >= 0, got ${temp}`);
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK must be an integer >= 0 (0 = off), got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
  const doSample = o.doSample ?? (beams > 1 ? false : temp > 0);
  const banned = (o.banned ?? []).filter((b) => Number.isInteger(b) && b >= 0);
  const r = withPromptLength(resolveGeneration({}, {}, {
    maxNewTokens: maxNew, doSample, temperature: temp, topK, topP, numBeams: beams,
    numReturnSequences: o.numReturnSequences, lengthPenalty: o.lengthPenalty, earlyStopping: o.earlyStopping,
    repetitionPenalty: o.repetitionPenalty, noRepeatNgramSize: o.noRepeatNgramSize, eosTokenId: o.eosTokenId ?? null,
    minNewTokens: o.minNewTokens, badWordsIds: banned.length ? banned.map((b) => [b]) : undefined, seed: o.seed,
  }), prompt.length);
  const rng = o.generator ?? (r.seed !== null ? new Generator(r.seed) : defaultGenerator);
  const rows = beams > 1 ? beams : doSample ? r.numReturnSequences : 1;
  const t0 = performance.now();
  let prefillMs = 0, stoppedEarly = false;
  const done: GenerateResult | null = maxNew === 0
    ? { ids: [], sequences: Array.from({ length: r.numReturnSequences }, () => []), tokensPerSecond: 0, elapsedMs: 0, prefillMs: 0, stoppedEarly }
    : null;
  const session = done ? (null as unknown as ReturnType<typeof decoderSession>) : decoderSession(model, prompt, rows, o.useCache ?? true);
  const onStep = (step: number, tokens: Int32Array) => {
    if (step === 0) prefillMs = performance.now() - t0;
    if (beams === 1 && o.onToken && o.onToken(tokens[0], step) === false) { stoppedEarly = true; return false; }
  };
  const finish = (out: ReturnType<typeof runSearch>): GenerateResult => {
    const seqs = (out.sequences.toArray() as number[][]).map((s) => s.slice(prompt.length));
    // HF pads finished rows with the pad token: a sequence ends at its first eos
    const eos = r.eosTokenId;
    const trimmed = eos ? seqs.map((s) => { const i = s.findIndex((t) => eos.includes(t)); return i < 0 ? s : s.slice(0, i + 1); }) : seqs;
    if (beams > 1 && o.onToken) trimmed[0].some((id, step) => o.onToken!(id, step) === false);
    const elapsedMs = performance.now() - t0, ids = trimmed[0];
    return {
      ids, sequences: trimmed, ...(out.sequencesScores ? { scores: Array.from(out.sequencesScores.dataSync()) } : {}),
      tokensPerSecond: elapsedMs > 0 ? (1000 * ids.length) / elapsedMs : 0, elapsedMs, prefillMs, stoppedEarly,
    };
  };
  return { r, rng, session, onStep, finish, done };
}

/** One source's outputs from searchWithStep: sequences without the start token, cut after eos (kept), best first. */
export interface StepSearchResult { sequences: number[][]; scores?: number[] }

/**
 * The search of hf.generate (src/hf/generation.ts runSearch, the same options as generate() above) over an
 * encoder–decoder's step function (src/models/beam-search.ts StepFunction, e.g. cachedSearchStep of the dates
 * Transformer) for one source: every row starts with `bos`, and `parents` tells the step function how beams were
 * reordered, so a cached step function keeps its keys/values. maxNewTokens counts the tokens after bos, eos included.
 */
export function searchWithStep<M>(step: StepFunction<M>, memory: M, o: Omit<GenerateOptions, "useCache" | "onToken"> & { bos: number; eos: number }): StepSearchResult {
  const maxNew = o.maxNewTokens ?? 100, beams = o.numBeams ?? 1, temp = o.temperature ?? 1;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new RangeError(`maxNewTokens must be an integer >= 1, got ${maxNew}`);
  const doSample = o.doSample ?? (beams > 1 ? false : temp > 0);
  const banned = (o.banned ?? []).filter((b) => Number.isInteger(b) && b >= 0);
  const r = withPromptLength(resolveGeneration({}, {}, {
    maxNewTokens: maxNew, doSample, temperature: temp, topK: o.topK ?? 0, topP: o.topP ?? 1, numBeams: beams,
    numReturnSequences: o.numReturnSequences, lengthPenalty: o.lengthPenalty, earlyStopping: o.earlyStopping,
    repetitionPenalty: o.repetitionPenalty, noRepeatNgramSize: o.noRepeatNgramSize, eosTokenId: o.eos, minNewTokens: o.minNewTokens,
    badWordsIds: banned.length ? banned.map((b) => [b]) : undefined, seed: o.seed,
  }), 1);
  const rng = o.generator ?? (r.seed !== null ? new Generator(r.seed) : defaultGenerator);
  const rows = beams > 1 ? beams : doSample ? r.numReturnSequences : 1;
  let prefixes: number[][] = Array.from({ length: rows }, () => [o.bos]);
  let parents: number[] | undefined;
  const session: HFDecodingSession = {
    batch: rows, prefix: prefixes.map((p) => [...p]),
    step(tokens) {
      if (tokens) prefixes = prefixes.map((p, i) => [...p, tokens[i]]);
      const logits = step(memory, prefixes, new Array<number>(rows).fill(0), parents);
      parents = prefixes.map((_, i) => i);                                      // no reorder unless beams say so
      if (logits.length % rows !== 0) throw new Error(`searchWithStep: the step function returned ${logits.length} logits for ${rows} rows`);
      return Tensor.fromArray(Float32Array.from(logits), [rows, logits.length / rows]);
    },
    reorder(order) { prefixes = order.map((i) => prefixes[i]); parents = [...order]; },
  };
  const out = noGrad(() => runSearch(session, r, 1, 1, rng));
  const seqs = (out.sequences.toArray() as number[][]).map((s) => { const t = s.slice(1), i = t.indexOf(o.eos); return i < 0 ? t : t.slice(0, i + 1); });
  return { sequences: seqs, ...(out.sequencesScores ? { scores: Array.from(out.sequencesScores.dataSync()) } : {}) };
}
