// Hugging Face's GenerationConfig for attnflow (transformers 4.44.2 semantics): the options a user passes to generate()
// (camelCase of HF's names), read over the folder's generation_config.json (or, without one, the generation keys of
// config.json, as GenerationConfig.from_model_config does), with HF's defaults; and the logits processors and
// warpers that HF's generate() builds from them, in HF's order:
//   repetition_penalty → no_repeat_ngram_size → bad_words_ids → min_length → min_new_tokens → forced_bos_token_id →
//   forced_eos_token_id, then (sampling) temperature → top_k → top_p.
// Each processor works in place on one float32 row of scores (V) with that row's tokens so far (prompt or decoder
// start token included, as HF's input_ids), so the arithmetic rounds as torch's float32 does. Browser-safe.
import { HFImportError, type HFConfig } from "./types.js";

/** generate()'s options: HF's GenerationConfig fields in camelCase (unset → generation_config.json → HF's default). */
export interface GenerationOptions {
  /** Tokens to generate at most (takes precedence over maxLength). */
  maxNewTokens?: number;
  /** Total length at most: prompt + new tokens (decoders), decoder start token + new tokens (encoder–decoders). Default 20. */
  maxLength?: number;
  /** Total length before which eos is forbidden (default 0). */
  minLength?: number;
  /** New tokens before which eos is forbidden. */
  minNewTokens?: number;
  /** Sample instead of taking the most probable token (default false). */
  doSample?: boolean;
  /** Sampling temperature (default 1); 0 means greedy (HF refuses 0; attnflow takes the argmax). */
  temperature?: number;
  /** Sampling: keep the k most probable tokens (default 50, as HF; 0 = off). */
  topK?: number;
  /** Sampling: keep the smallest set of most probable tokens whose probability reaches p (default 1 = off). */
  topP?: number;
  /** Beam search with this many beams (default 1: greedy or sampling). */
  numBeams?: number;
  /** Beam search: a finished hypothesis scores sum log p / (generated length)^lengthPenalty (default 1). */
  lengthPenalty?: number;
  /** Beam search: true stops a batch row at numBeams finished hypotheses; false (default) uses HF's heuristic; "never" the exact bound. */
  earlyStopping?: boolean | "never";
  /** Sequences returned per input row (beam search: at most numBeams; sampling: independent samples). Default 1. */
  numReturnSequences?: number;
  /** CTRL's penalty on tokens already in the row: a score s becomes s/p (s > 0) or s·p (default 1 = off). */
  repetitionPenalty?: number;
  /** No n-gram of this size occurs twice in a row (default 0 = off). */
  noRepeatNgramSize?: number;
  /** Token sequences that are never generated (the last token of each is banned after the others). */
  badWordsIds?: number[][];
  /** Token forced as the first generated one (encoder–decoders such as mBART). */
  forcedBosTokenId?: number | null;
  /** Token(s) forced when maxLength is about to be reached. */
  forcedEosTokenId?: number | number[] | null;
  eosTokenId?: number | number[] | null;
  /** Fills finished rows (default: the first eos id). */
  padTokenId?: number | null;
  bosTokenId?: number | null;
  decoderStartTokenId?: number | null;
  /** Seed of the sampling generator (reproducible draws; default: attnflow's default generator). */
  seed?: number;
}

/** Everything generate() needs, resolved and checked. */
export interface ResolvedGeneration {
  maxLength: number; minLength: number; minNewTokens: number | null; maxNewTokens: number | null;
  doSample: boolean; temperature: number; topK: number; topP: number;
  numBeams: number; lengthPenalty: number; earlyStopping: boolean | "never"; numReturnSequences: number;
  repetitionPenalty: number; noRepeatNgramSize: number; badWordsIds: number[][] | null;
  forcedBosTokenId: number | null; forcedEosTokenId: number[] | null;
  eosTokenId: number[] | null; padTokenId: number | null; bosTokenId: number | null; decoderStartTokenId: number | null;
  seed: number | null;
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
const KEYS: (keyof GenerationOptions)[] = [
  "maxNewTokens", "maxLength", "minLength", "minNewTokens", "doSample", "temperature", "topK", "topP", "numBeams",
  "lengthPenalty", "earlyStopping", "numReturnSequences", "repetitionPenalty", "noRepeatNgramSize", "badWordsIds",
  "forcedBosTokenId", "forcedEosTokenId", "eosTokenId", "padTokenId", "bosTokenId", "decoderStartTokenId", "seed",
];

/**
 * generation_config.json keys whose HF processors / strategies attnflow does not implement, with the values that leave
 * them off: any other value is an error naming the key (never a silently different generation).
 */
const NOT_IMPLEMENTED: Record<string, unknown[]> = {
  num_beam_groups: [1], diversity_penalty: [0], penalty_alpha: [null], typical_p: [1], epsilon_cutoff: [0], eta_cutoff: [0],
  min_p: [null], encoder_repetition_penalty: [1], encoder_no_repeat_ngram_size: [0], sequence_bias: [null],
  suppress_tokens: [null], begin_suppress_tokens: [null], forced_decoder_ids: [null], exponential_decay_length_penalty: [null],
  renormalize_logits: [false], remove_invalid_values: [false], constraints: [null], force_words_ids: [null],
  guidance_scale: [null, 1], watermarking_config: [null], max_time: [null], stop_strings: [null], prompt_lookup_num_tokens: [null],
};

/**
 * The options in force: `options` (camelCase) over generation_config.json (`generationConfig`, snake_case) — or, when
 * the folder has none, over config.json's generation keys — over HF's GenerationConfig defaults. Every bad value
 * names its key.
 */
export function resolveGeneration(config: HFConfig, generationConfig: Record<string, unknown> | null, options: GenerationOptions = {}): ResolvedGeneration {
  for (const k of Object.keys(options)) {
    if (!(KEYS as string[]).includes(k)) throw new HFImportError(`generate: unknown option "${k}" (supported: ${KEYS.join(", ")})`);
  }
  const file = generationConfig ?? config;
  for (const [k, off] of Object.entries(NOT_IMPLEMENTED)) {
    const v = file[k];
    if (v !== undefined && !off.some((o) => o === v || (o === null && v === null))) {
      throw new HFImportError(`${generationConfig ? "generation_config.json" : "config.json"} "${k}" = ${JSON.stringify(v)} is not implemented by attnflow's generate() ` +
        `(it implements greedy, sampling with temperature / top_k / top_p, beam search and beam sampling, repetition_penalty, ` +
        `no_repeat_ngram_size, bad_words_ids, min_length / min_new_tokens, forced_bos_token_id / forced_eos_token_id); ` +
        `pass generationConfig without it to generate anyway`);
    }
  }
  const where = (k: string) => (k in options && (options as Record<string, unknown>)[k] !== undefined ? `generate option ${k}` : `${generationConfig ? "generation_config.json" : "config.json"} "${snake(k)}"`);
  const get = (k: keyof GenerationOptions): unknown => options[k] !== undefined ? options[k] : file[snake(k)];
  const int = (k: keyof GenerationOptions, dflt: number | null, min: number): number | null => {
    const v = get(k);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new HFImportError(`${where(k)} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (k: keyof GenerationOptions, dflt: number, ok: (v: number) => boolean, want: string): number => {
    const v = get(k);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw new HFImportError(`${where(k)} must be ${want}, got ${JSON.stringify(v)}`);
    return v;
  };
  const ids = (k: keyof GenerationOptions): number[] | null => {
    const v = get(k);
    if (v === undefined || v === null) return null;
    const a = Array.isArray(v) ? v : [v];
    if (!a.length || a.some((x) => typeof x !== "number" || !Number.isInteger(x) || x < 0)) throw new HFImportError(`${where(k)} must be a token id or a non-empty list of them, got ${JSON.stringify(v)}`);
    return a as number[];
  };
  const one = (k: keyof GenerationOptions): number | null => int(k, null, 0);
  const doSample = get("doSample") ?? false;
  if (typeof doSample !== "boolean") throw new HFImportError(`${where("doSample")} must be true or false, got ${JSON.stringify(doSample)}`);
  const early = get("earlyStopping") ?? false;
  if (early !== true && early !== false && early !== "never") throw new HFImportError(`${where("earlyStopping")} must be true, false or "never", got ${JSON.stringify(early)}`);
  const bad = get("badWordsIds");
  if (bad !== undefined && bad !== null && (!Array.isArray(bad) || !bad.length || bad.some((w) => !Array.isArray(w) || !w.length || w.some((x) => typeof x !== "number" || !Number.isInteger(x) || x < 0)))) {
    throw new HFImportError(`${where("badWordsIds")} must be a non-empty list of non-empty lists of token ids, got ${JSON.stringify(bad)}`);
  }
  const eos = ids("eosTokenId");
  const r: ResolvedGeneration = {
    maxNewTokens: int("maxNewTokens", null, 0), maxLength: int("maxLength", 20, 1)!, minLength: int("minLength", 0, 0)!,
    minNewTokens: int("minNewTokens", null, 0), doSample,
    temperature: num("temperature", 1, (v) => v >= 0, "a number >= 0"), topK: int("topK", 50, 0)!,
    topP: num("topP", 1, (v) => v > 0 && v <= 1, "in (0, 1]"),
    numBeams: int("numBeams", 1, 1)!, lengthPenalty: num("lengthPenalty", 1, () => true, "a number"), earlyStopping: early,
    numReturnSequences: int("numReturnSequences", 1, 1)!,
    repetitionPenalty: num("repetitionPenalty", 1, (v) => v > 0, "a number > 0"), noRepeatNgramSize: int("noRepeatNgramSize", 0, 0)!,
    badWordsIds: (bad as number[][] | null | undefined) ?? null,
    forcedBosTokenId: one("forcedBosTokenId"), forcedEosTokenId: ids("forcedEosTokenId"),
    eosTokenId: eos, padTokenId: one("padTokenId") ?? (eos ? eos[0] : null), bosTokenId: one("bosTokenId"),
    decoderStartTokenId: one("decoderStartTokenId"), seed: int("seed", null, -(2 ** 31)),
  };
  if (r.temperature === 0) r.doSample = false;                                 // temperature 0: the argmax
  if (!r.doSample && r.numBeams === 1 && r.numReturnSequences > 1) {
    throw new HFImportError(`generate: greedy decoding returns one sequence per input; numReturnSequences ${r.numReturnSequences} needs doSample or numBeams > 1`);
  }
  if (r.numBeams > 1 && r.numReturnSequences > r.numBeams) {
    throw new HFImportError(`generate: numReturnSequences (${r.numReturnSequences}) must be <= numBeams (${r.numBeams})`);
  }
  return r;
}

/** The prompt length HF measures (input_ids length for decoders, 1 for encoder–decoders) fixes maxLength / minLength. */
export function withPromptLength(r: ResolvedGeneration, promptLen: number): ResolvedGeneration {
  const out = { ...r };
  if (r.maxNewTokens !== null) out.maxLength = r.maxNewTokens + promptLen;
  if (r.minNewTokens !== null) out.minLength = r.minNewTokens + promptLen;
  return out;
}

/** Scores of one row (V), changed in place; `seq` is the row's tokens so far, `promptLen` HF's input_ids_seq_length. */
export type RowProcessor = (scores: Float32Array, seq: readonly number[]) => void;

/** HF's logits processors for these options, in HF's order (the empty list when nothing is active). */
export function logitsProcessors(r: ResolvedGeneration, promptLen: number): RowProcessor[] {
  const ps: RowProcessor[] = [];
  const eos = r.eosTokenId;
  const banEos = (s: Float32Array) => { for (const e of eos!) if (e < s.length) s[e] = -Infinity; };
  if (r.repetitionPenalty !== 1) {
    const p = r.repetitionPenalty;
    ps.push((s, seq) => {
      const seen = new Set(seq);
      for (const t of seen) if (t < s.length) s[t] = s[t] < 0 ? s[t] * p : s[t] / p;   // float32 store rounds as torch
    });
  }
  if (r.noRepeatNgramSize > 0) {
    const n = r.noRepeatNgramSize;
    ps.push((s, seq) => {
      const L = seq.length;
      if (L + 1 < n) return;
      const key = seq.slice(L + 1 - n, L).join(",");
      for (let i = 0; i + n <= L; i++) if (seq.slice(i, i + n - 1).join(",") === key) s[seq[i + n - 1]] = -Infinity;
    });
  }
  if (r.badWordsIds) {
    const words = r.badWordsIds.filter((w) => !(eos && w.length === 1 && eos.includes(w[0])));  // HF keeps eos allowed
    ps.push((s, seq) => {
      for (const w of words) {
        if (w[w.length - 1] >= s.length) throw new HFImportError(`badWordsIds: token ${w[w.length - 1]} is outside the vocabulary (${s.length})`);
        if (w.length > seq.length) continue;
        let match = true;
        for (let i = 0; i < w.length - 1 && match; i++) match = seq[seq.length - (w.length - 1) + i] === w[i];
        if (match) s[w[w.length - 1]] = -Infinity;
      }
    });
  }
  if (eos && r.minLength > 0) ps.push((s, seq) => { if (seq.length < r.minLength) banEos(s); });
  if (eos && r.minNewTokens !== null && r.minNewTokens > 0) ps.push((s, seq) => { if (seq.length - promptLen < r.minNewTokens!) banEos(s); });
  if (r.forcedBosTokenId !== null) {
    const b = r.forcedBosTokenId;
    ps.push((s, seq) => { if (seq.length === 1) { s.fill(-Infinity); s[b] = 0; } });
  }
  if (r.forcedEosTokenId) {
    const f = r.forcedEosTokenId;
    ps.push((s, seq) => { if (seq.length === r.maxLength - 1) { s.fill(-Infinity); for (const e of f) s[e] = 0; } });
  }
  return ps;
}

/** HF's sampling warpers (temperature, top-k, top-p); beam sampling keeps at least len(eos) + 1 tokens. */
export function logitsWarpers(r: ResolvedGeneration): RowProcessor[] {
  const ws: RowProcessor[] = [];
  const minKeep = r.numBeams > 1 ? (r.eosTokenId ? r.eosTokenId.length : 1) + 1 : 1;
  if (r.temperature !== 1) { const t = r.temperature; ws.push((s) => { for (let i = 0; i < s.length; i++) s[i] = s[i] / t; }); }
  if (r.topK > 0) {
    const k0 = Math.max(r.topK, minKeep);
    ws.push((s) => {
      const k = Math.min(k0, s.length);
      const kth = Float32Array.from(s).sort()[s.length - k];                           // the k-th largest score
      for (let i = 0; i < s.length; i++) if (s[i] < kth) s[i] = -Infinity;
    });
  }
  if (r.topP < 1) {
    const p = r.topP;
    ws.push((s) => {
      // ascending order (ties: lower id first, as a stable sort); remove the low tail whose cumulative mass <= 1 − p
      const order = Array.from(s.keys()).sort((a, b) => s[a] - s[b] || a - b);
      const probs = softmax32(order.map((i) => s[i]));
      let acc = 0;
      const remove: number[] = [];
      for (let j = 0; j < order.length - minKeep; j++) {
        acc = Math.fround(acc + probs[j]);
        if (acc <= Math.fround(1 - p)) remove.push(order[j]); else break;
      }
      for (const i of remove) s[i] = -Infinity;
    });
  }
  return ws;
}

/** float32 softmax (max-subtracted), as torch computes it. */
export function softmax32(x: ArrayLike<number>): Float32Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
  const e = new Float32Array(x.length);
  let z = 0;
  for (let i = 0; i < x.length; i++) { e[i] = m === -Infinity ? 0 : Math.exp(x[i] - m); z += e[i]; }
  for (let i = 0; i < x.length; i++) e[i] = e[i] / z;
  return e;
}

/** float32 log-softmax of one row (HF's beam search scores log-probabilities). */
export function logSoftmax32(x: ArrayLike<number>): Float32Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
  let z = 0;
  for (let i = 0; i < x.length; i++) z += Math.exp(x[i] - m);
  const lse = Math.log(z), out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] - m) - lse;
  return out;
}
