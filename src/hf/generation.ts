// generate() for the imported Hugging Face decoders (GPT-2, Llama) and encoder–decoders (Marian, BART, T5), with
// transformers 4.44.2's semantics: greedy and multinomial sampling (_sample), beam search and beam sampling
// (_beam_search + BeamSearchScorer + BeamHypotheses), the logits processors of generation-config.ts, eos / pad handling
// (finished rows continue with the pad token), max_length / max_new_tokens. The model side is a decoding session
// (HFModel.startDecoding: KV cache, cache reordering); everything here works on plain float32 rows, so the search is
// the same for every family. Browser-safe.
import { Tensor } from "../tensor.js";
import { noGrad } from "../autograd.js";
import { contiguousData } from "../ops/movement.js";
import { defaultGenerator, Generator } from "../random.js";
import { shapeStr } from "../shape.js";
import {
  logitsProcessors, logitsWarpers, logSoftmax32, resolveGeneration, softmax32, withPromptLength,
  type GenerationOptions, type ResolvedGeneration, type RowProcessor,
} from "./generation-config.js";
import { HFImportError, type HFDecodingSession, type HFGenerateOptions, type HFGenerateResult, type HFInputs, type HFModel } from "./types.js";

export { resolveGeneration, type GenerationOptions, type ResolvedGeneration } from "./generation-config.js";

export interface GenerateOutput {
  /** (N, T) int32, N = batch · numReturnSequences: prompt + new tokens (decoders) or decoder start + new tokens
   *  (encoder–decoders); shorter rows padded with the pad token, as HF returns them. */
  sequences: Tensor;
  /** Beam search: each returned hypothesis's score, sum log p / length^lengthPenalty (HF's sequences_scores). */
  sequencesScores?: Tensor;
  /** The processed scores of every step (batch·beams, V) (HF's output_scores), when returnScores is set. */
  scores?: Tensor[];
  /** The raw logits of every step (HF's output_logits), when returnScores is set. */
  logits?: Tensor[];
}

export interface GenerateCallOptions extends GenerationOptions {
  /** generation_config.json's contents; default: the one fromPretrained loaded with the model (model.generationConfig),
   *  else config.json's generation keys (as HF's GenerationConfig.from_model_config). */
  generationConfig?: Record<string, unknown> | null;
  /** Keep the processed scores and raw logits of each step. */
  returnScores?: boolean;
  /** Sampling generator (overrides seed). */
  generator?: Generator;
  /**
   * Called after every step with the tokens just chosen for each row (batch·beams rows; beams in their new order), for
   * streaming or progress; returning false stops generation there (HF's StoppingCriteria), beams being finalised as at
   * max length.
   */
  onStep?: (step: number, tokens: Int32Array) => boolean | void;
}

/**
 * HF's model.generate(**inputs, **options) for an imported decoder or encoder–decoder. `inputs` holds inputIds
 * (B, T) int32 and optionally attentionMask (1 = attend; without one, pad tokens in inputIds are masked as HF does).
 */
export function generate(model: HFModel, inputs: HFInputs, options: GenerateCallOptions = {}): GenerateOutput {
  const g = prepareGenerate(model, inputs, options);
  return noGrad(() => {
    const session = g.start();
    try {
      return runSearch(session, g.r, g.promptLen, g.batch, g.rng, g.o);
    } finally { session.dispose?.(); }
  });
}

/**
 * generate() for a model on a device (WebGPU; works on the CPU too): the same search, the model's steps enqueued on
 * the device and each step's logits read back asynchronously (greedy tokens identical to the CPU's).
 */
export async function generateAsync(model: HFModel, inputs: HFInputs, options: GenerateCallOptions = {}): Promise<GenerateOutput> {
  const g = prepareGenerate(model, inputs, options);
  const session = noGrad(() => g.start());
  try {
    return await runSearchAsync(session, g.r, g.promptLen, g.batch, g.rng, g.o);
  } finally { session.dispose?.(); }
}

function prepareGenerate(model: HFModel, inputs: HFInputs, options: GenerateCallOptions) {
  if (!model.startDecoding) throw new HFImportError(`${model.architecture} cannot generate (supported: decoders and encoder–decoders)`);
  const { generationConfig = model.generationConfig ?? null, returnScores = false, generator, onStep, ...opts } = options;
  const r = resolveGeneration(model.config, generationConfig, opts);
  const ids = inputs.inputIds;
  if (!ids || ids.ndim !== 2) throw new HFImportError(`generate: inputs.inputIds must be (batch, length), got ${ids ? shapeStr(ids.shape) : "nothing"}`);
  for (const k of ["decoderInputIds", "decoderAttentionMask", "positionIds", "tokenTypeIds", "pixelValues"] as const) {
    if (inputs[k]) throw new HFImportError(`generate: inputs.${k} is not supported (generate takes inputIds and attentionMask; positions and the decoder's tokens follow from them)`);
  }
  const encDec = model.config.is_encoder_decoder === true || !!(model.config.model_type && ["marian", "bart", "t5"].includes(model.config.model_type));
  const start = encDec ? (r.decoderStartTokenId ?? r.bosTokenId) : null;               // null: the model's config default
  const promptLen = encDec ? 1 : ids.shape[1];
  if (r.maxNewTokens === null && promptLen >= r.maxLength) {
    throw new HFImportError(`generate: the prompt has ${promptLen} tokens but maxLength is ${r.maxLength}: set maxNewTokens (or a larger maxLength)`);
  }
  const rng = generator ?? (r.seed !== null ? new Generator(r.seed) : defaultGenerator);
  const rr = withPromptLength(r, promptLen);
  const start_ = () => {
    let inp = withGenerationMask(inputs, r.padTokenId, r.eosTokenId);
    const expand = r.numBeams > 1 ? r.numBeams : r.doSample ? r.numReturnSequences : 1;
    if (expand > 1) inp = repeatInterleave(inp, expand);
    const maxNew = Math.max(0, rr.maxLength - promptLen);
    return model.startDecoding!(inp, { maxNewTokens: maxNew, ...(start !== null ? { decoderStartTokenId: start } : {}) });
  };
  return { r: rr, promptLen, batch: ids.shape[0], rng, o: { returnScores, onStep }, start: start_ };
}

/**
 * The search of generate() — greedy, multinomial sampling, beam search, beam sampling, with the logits processors —
 * over any decoding session: HF's models (startDecoding) and attnflow's own decoders (src/models/generate.ts) share
 * it. `r` comes from resolveGeneration and withPromptLength; the session holds batch · (numBeams, or
 * numReturnSequences when sampling) rows.
 */
export function runSearch(session: HFDecodingSession, r: ResolvedGeneration, promptLen: number, batch: number, rng: Generator,
  o: { returnScores?: boolean; onStep?: OnStep } = {}): GenerateOutput {
  const search = searchOf(session, r, promptLen, batch, rng, o);
  let s = search.next();
  while (!s.done) s = search.next(session.step(s.value));
  return s.value;
}

function searchOf(session: HFDecodingSession, r: ResolvedGeneration, promptLen: number, batch: number, rng: Generator,
  o: { returnScores?: boolean; onStep?: OnStep }): Search {
  const keep = o.returnScores ?? false;
  return r.numBeams > 1 ? beamSearch(session, r, promptLen, batch, rng, keep, o.onStep) : sampleOrGreedy(session, r, promptLen, rng, keep, o.onStep);
}

/**
 * runSearch over a session whose logits live on a device (WebGPU): each step's (N, V) logits are read back with
 * await (the one wait per token a search needs); the model's steps run without gradients. Works on the CPU too.
 */
export async function runSearchAsync(session: HFDecodingSession, r: ResolvedGeneration, promptLen: number, batch: number, rng: Generator,
  o: { returnScores?: boolean; onStep?: OnStep } = {}): Promise<GenerateOutput> {
  const search = searchOf(session, r, promptLen, batch, rng, o);
  let s = search.next();
  while (!s.done) {
    const logits = noGrad(() => session.step(s.value as Int32Array | null));
    s = search.next(logits.device === "cpu" ? logits : await logits.cpu());
    if (logits.device !== "cpu") logits.dispose();
  }
  return s.value;
}

/**
 * HFModel.generate(inputs, { maxNewTokens, eosTokenId, returnStepLogits }): plain greedy decoding (no processors from
 * the config), finished rows continue with config.json's pad_token_id (else the eos id), as HF's generate() with those
 * arguments. The models' own generate() methods are this.
 */
export function greedyGenerate(model: HFModel, inputs: HFInputs, o: HFGenerateOptions): HFGenerateResult {
  const pad = typeof model.config.pad_token_id === "number" ? model.config.pad_token_id : null;
  // as the models' own generate() always did: inputIds and attentionMask drive it, other inputs are not used
  const out = generate(model, { inputIds: inputs.inputIds, attentionMask: inputs.attentionMask }, {
    generationConfig: {}, maxNewTokens: o.maxNewTokens, eosTokenId: o.eosTokenId ?? null, padTokenId: pad, returnScores: !!o.returnStepLogits,
  });
  return { sequences: out.sequences, ...(o.returnStepLogits ? { stepLogits: out.logits } : {}) };
}

/** HF's _prepare_attention_mask_for_generation: without a mask, pad tokens are masked if pad is set, present and not eos. */
export function withGenerationMask(inputs: HFInputs, pad: number | null, eos: number[] | number | null): HFInputs {
  const eosList = eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  if (inputs.attentionMask || !inputs.inputIds || pad === null || eosList.includes(pad)) return inputs;
  const ids = contiguousData(inputs.inputIds) as Int32Array;
  if (!ids.includes(pad)) return inputs;
  return { ...inputs, attentionMask: Tensor.fromArray(Int32Array.from(ids, (t) => (t === pad ? 0 : 1)), inputs.inputIds.shape, "int32") };
}

/** Each (B, …) input repeated n times row by row (torch.repeat_interleave(n, dim=0)), as HF expands for beams / samples. */
function repeatInterleave(inputs: HFInputs, n: number): HFInputs {
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(inputs) as [string, Tensor | undefined][]) {
    if (!t) continue;
    const d = contiguousData(t), per = t.numel() / t.shape[0];
    const o = new (d.constructor as new (len: number) => typeof d)(d.length * n);
    for (let b = 0; b < t.shape[0]; b++) for (let j = 0; j < n; j++) o.set(d.subarray(b * per, (b + 1) * per), (b * n + j) * per);
    out[k] = Tensor.fromArray(o, [t.shape[0] * n, ...t.shape.slice(1)], t.dtype);
  }
  return out as HFInputs;
}

/** (N, V) logits → N float32 rows. */
function rowsOf(logits: Tensor, N: number): Float32Array[] {
  if (logits.ndim !== 2 || logits.shape[0] !== N) throw new Error(`generate: the model returned logits ${shapeStr(logits.shape)}, expected (${N}, vocab)`);
  const d = contiguousData(logits) as Float32Array, V = logits.shape[1];
  return Array.from({ length: N }, (_, i) => Float32Array.from(d.subarray(i * V, (i + 1) * V)));
}

const apply = (ps: RowProcessor[], s: Float32Array, seq: readonly number[]) => { for (const p of ps) p(s, seq); };
const stack2 = (rows: Float32Array[]) => { const V = rows[0].length, o = new Float32Array(rows.length * V); rows.forEach((r, i) => o.set(r, i * V)); return Tensor.fromArray(o, [rows.length, V]); };

function argmax(s: Float32Array): number {
  let b = 0;
  for (let i = 1; i < s.length; i++) if (s[i] > s[b]) b = i;          // first maximum, as torch.argmax on CPU
  return b;
}

/** One draw from softmax(s) (torch.multinomial with one sample; attnflow's generator, not torch's). */
function draw(s: Float32Array, rng: Generator): number {
  const p = softmax32(s);
  let u = rng.random(), last = -1;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    last = i;
    if ((u -= p[i]) < 0) return i;
  }
  if (last < 0) throw new Error("generate: every token has probability 0 (all scores are -Infinity)");
  return last;
}

function toSequences(seqs: number[][]): Tensor {
  return Tensor.fromArray(Int32Array.from(seqs.flat()), [seqs.length, seqs[0].length], "int32");
}

/** HF's _sample: greedy (argmax of the processed scores) or multinomial sampling after the warpers. */
type OnStep = GenerateCallOptions["onStep"];

/**
 * A search is a JS generator: it yields the tokens to feed (null: the session's first step) and receives that step's
 * logits (N, V) on the CPU, so the same search runs synchronously (runSearch) or reading a device's logits
 * asynchronously (runSearchAsync) — nothing else in it waits for a device.
 */
type Search = globalThis.Generator<Int32Array | null, GenerateOutput, Tensor>;

function* sampleOrGreedy(session: HFDecodingSession, r: ResolvedGeneration, promptLen: number, rng: Generator, keep: boolean, onStep: OnStep): Search {
  const N = session.batch, seqs = session.prefix.map((s) => [...s]);
  const procs = logitsProcessors(r, promptLen), warps = r.doSample ? logitsWarpers(r) : [];
  const eos = r.eosTokenId, pad = r.padTokenId ?? 0;
  const unfinished = new Array<boolean>(N).fill(true);
  const scores: Tensor[] = [], logits: Tensor[] = [];
  let tokens: Int32Array | null = null;
  while (seqs[0].length < r.maxLength) {
    const rows = rowsOf(yield tokens, N);
    if (keep) logits.push(stack2(rows.map((x) => Float32Array.from(x))));
    tokens = new Int32Array(N);
    for (let i = 0; i < N; i++) {
      apply(procs, rows[i], seqs[i]);
      apply(warps, rows[i], seqs[i]);
      const t = r.doSample ? draw(rows[i], rng) : argmax(rows[i]);
      tokens[i] = eos && !unfinished[i] ? pad : t;
      seqs[i].push(tokens[i]);
      if (eos && eos.includes(tokens[i])) unfinished[i] = false;
    }
    if (keep) scores.push(stack2(rows));
    if (onStep && onStep(seqs[0].length - session.prefix[0].length - 1, tokens) === false) break;
    if (eos && !unfinished.some(Boolean)) break;
  }
  return { sequences: toSequences(seqs), ...(keep ? { scores, logits } : {}) };
}

/** BeamHypotheses: the numBeams best finished hypotheses of one input row. */
class Hypotheses {
  beams: { score: number; tokens: number[] }[] = [];
  worst = 1e9;
  constructor(readonly numBeams: number, readonly lengthPenalty: number, readonly early: boolean | "never", readonly maxLength: number) {}
  add(tokens: number[], sumLogprobs: number, generatedLen: number): void {
    const score = sumLogprobs / generatedLen ** this.lengthPenalty;
    if (this.beams.length < this.numBeams || score > this.worst) {
      this.beams.push({ score, tokens });
      if (this.beams.length > this.numBeams) {
        const sorted = this.beams.map((b, i) => [b.score, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        this.beams.splice(sorted[0][1], 1);
        this.worst = sorted[1][0];
      } else this.worst = Math.min(score, this.worst);
    }
  }
  isDone(bestSumLogprobs: number, curLen: number, promptLen: number): boolean {
    if (this.beams.length < this.numBeams) return false;
    if (this.early === true) return true;
    const len = this.early === "never" && this.lengthPenalty > 0 ? this.maxLength - promptLen : curLen - promptLen;
    return this.worst >= bestSumLogprobs / len ** this.lengthPenalty;
  }
}

/** HF's _beam_search with BeamSearchScorer (and beam sampling when doSample). Rows are batch-major: row b·W + j. */
function* beamSearch(session: HFDecodingSession, r: ResolvedGeneration, promptLen: number, B: number, rng: Generator, keep: boolean, onStep: OnStep): Search {
  const W = r.numBeams, N = B * W;
  if (session.batch !== N) throw new Error(`generate: the decoding session has ${session.batch} rows, expected batch ${B} × ${W} beams`);
  let seqs = session.prefix.map((s) => [...s]);
  const procs = logitsProcessors(r, promptLen), warps = r.doSample ? logitsWarpers(r) : [];
  const eos = r.eosTokenId, pad = r.padTokenId;
  const hyps = Array.from({ length: B }, () => new Hypotheses(W, r.lengthPenalty, r.earlyStopping, r.maxLength));
  const done = new Array<boolean>(B).fill(false);
  let beamScores = new Float32Array(N);
  for (let b = 0; b < B; b++) beamScores.fill(-1e9, b * W + 1, (b + 1) * W);
  const nKeep = Math.max(2, 1 + (eos ? eos.length : 0)) * W;
  const scores: Tensor[] = [], logits: Tensor[] = [];
  let tokens: Int32Array | null = null;
  for (;;) {
    const raw = rowsOf(yield tokens, N);
    if (keep) logits.push(stack2(raw));
    const rows = raw.map((x, i) => { const s = logSoftmax32(x); apply(procs, s, seqs[i]); apply(warps, s, seqs[i]); return s; });
    if (keep) scores.push(stack2(rows));
    const V = rows[0].length, curLen = seqs[0].length + 1;
    const nextScores = new Float32Array(N), nextTokens = new Int32Array(N), nextRows = new Int32Array(N);
    for (let b = 0; b < B; b++) {
      // candidates over the W·V (beam, token) pairs of this input row: total = processed score + beam score (float32)
      if (done[b]) {                                                             // HF pads a finished row's beams (from row 0)
        if (eos === null || pad === null) throw new Error("generate: a finished beam batch needs eos_token_id and pad_token_id");
        for (let j = 0; j < W; j++) { nextScores[b * W + j] = 0; nextTokens[b * W + j] = pad; nextRows[b * W + j] = 0; }
        continue;
      }
      const total = new Float32Array(W * V);
      for (let j = 0; j < W; j++) for (let v = 0; v < V; v++) total[j * V + v] = rows[b * W + j][v] + beamScores[b * W + j];
      const cand = r.doSample ? sampleCandidates(total, nKeep, rng) : topK(total, nKeep);
      let k = 0;
      for (let rank = 0; rank < cand.length; rank++) {
        const c = cand[rank], tok = c % V, row = b * W + Math.floor(c / V);
        if (eos && eos.includes(tok)) {
          if (rank >= W) continue;                                               // an eos outside the top W is not a hypothesis
          hyps[b].add(seqs[row].slice(), total[c], curLen - promptLen);
        } else {
          nextScores[b * W + k] = total[c]; nextTokens[b * W + k] = tok; nextRows[b * W + k] = row; k++;
        }
        if (k === W) break;
      }
      if (k < W) throw new Error(`generate: beam search found fewer than ${W} non-eos continuations (more eos ids than beams?)`);
      done[b] = done[b] || hyps[b].isDone(total[cand[0]], curLen, promptLen);
    }
    beamScores = nextScores;
    seqs = Array.from({ length: N }, (_, i) => [...seqs[nextRows[i]], nextTokens[i]]);
    session.reorder(Array.from(nextRows));
    tokens = nextTokens;
    if (onStep && onStep(seqs[0].length - promptLen - 1, nextTokens) === false) break;
    if (done.every(Boolean) || seqs[0].length >= r.maxLength) break;
  }
  // finalize: open beams of unfinished rows become hypotheses, then the best numReturnSequences per input row
  const out: number[][] = [], outScores: number[] = [];
  for (let b = 0; b < B; b++) {
    if (!done[b]) for (let j = 0; j < W; j++) hyps[b].add(seqs[b * W + j], beamScores[b * W + j], seqs[b * W + j].length - promptLen);
    const sorted = hyps[b].beams.map((h, i) => ({ ...h, i })).sort((x, y) => x.score - y.score || x.i - y.i);
    for (let j = 0; j < r.numReturnSequences; j++) { const h = sorted.pop()!; out.push(h.tokens); outScores.push(h.score); }
  }
  const lens = out.map((s) => s.length), maxLen = Math.min(Math.max(...lens) + (eos ? 1 : 0), r.maxLength);   // room for an eos
  if (Math.min(...lens) !== Math.max(...lens) && pad === null) throw new Error("generate: pad_token_id has to be defined to return beams of different lengths");
  const padded = out.map((s) => {
    const row = new Array<number>(maxLen).fill(pad ?? 0);
    s.forEach((t, i) => { row[i] = t; });
    if (s.length < maxLen && eos) row[s.length] = eos[0];                          // only the first eos id, as HF
    return row;
  });
  return { sequences: toSequences(padded), sequencesScores: Tensor.fromArray(Float32Array.from(outScores), [outScores.length]), ...(keep ? { scores, logits } : {}) };
}

/** Indices of the k largest values, descending (ties: lower index first). */
function topK(x: Float32Array, k: number): number[] {
  const best: number[] = [];                                                     // sorted, at most k (one pass over x)
  for (let i = 0; i < x.length; i++) {
    if (best.length === k && !(x[i] > x[best[k - 1]])) continue;
    let j = best.length === k ? k - 1 : best.length;
    while (j > 0 && x[i] > x[best[j - 1]]) { if (j < k) best[j] = best[j - 1]; j--; }
    best[j] = i;
    if (best.length > k) best.length = k;
  }
  return best;
}

/** Beam sampling: k draws without replacement from softmax(x), then sorted by x descending (as HF gathers and sorts). */
function sampleCandidates(x: Float32Array, k: number, rng: Generator): number[] {
  const p = Float64Array.from(softmax32(x));
  const picked: number[] = [];
  for (let n = 0; n < k; n++) {
    let z = 0;
    for (let i = 0; i < p.length; i++) z += p[i];
    if (z <= 0) break;
    let u = rng.random() * z, pick = -1;
    for (let i = 0; i < p.length; i++) { if (p[i] === 0) continue; pick = i; if ((u -= p[i]) < 0) break; }
    picked.push(pick); p[pick] = 0;
  }
  return picked.sort((a, b) => x[b] - x[a] || a - b);
}
