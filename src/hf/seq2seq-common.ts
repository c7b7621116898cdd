// What the Hugging Face encoder–decoders (Marian, BART, T5) share beyond src/hf/common.ts: the per-layer KV cache,
// the encoder memory and the token-by-token decoder (IncrementalDecoder, the decoding session generate() drives).
// Browser-safe.
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { noGrad } from "../autograd.js";
import { cat } from "../ops/movement.js";
import { Module } from "../nn/module.js";
import { checkIds, paddingFromMask } from "./common.js";
import { greedyGenerate } from "./generation.js";
import {
  HFImportError, type HFConfig, type HFDecodingOptions, type HFDecodingSession, type HFForwardOptions, type HFGenerateOptions,
  type HFGenerateResult, type HFInputs, type HFModel, type HFOutputs,
} from "./types.js";

// ---------------------------------------------------------------- KV cache
/** Self-attention K/V of the tokens seen so far (B, T, H·D) each; grows by one step per call. Cross K/V are computed once. */
export class KVCache {
  k: Tensor | null = null;
  v: Tensor | null = null;
  get length(): number { return this.k ? this.k.shape[1] : 0; }
  /** Append new keys/values (B, Tnew, H·D); returns all of them. */
  append(k: Tensor, v: Tensor): [Tensor, Tensor] {
    this.k = this.k ? cat([this.k, k], 1) : k;
    this.v = this.v ? cat([this.v, v], 1) : v;
    return [this.k, this.v];
  }
}

// ---------------------------------------------------------------- incremental decoding
/** The encoder output the decoder attends to: states (B, Ts, D) and their padding (B, Ts) (true = padded) or null. */
export interface EncoderMemory { last: Tensor; pad: Tensor | null }
/** One decoder layer's caches: self-attention K/V grow a token a step, cross-attention K/V are projected once. */
export interface LayerCaches { self: KVCache; cross: KVCache }
/** Runs the decoder over `tokens` (B, T) at positions past.. with the caches → logits (B, T, V). */
export type DecodeFn = (tokens: Tensor, memory: EncoderMemory, caches: LayerCaches[], past: number) => Tensor;

/**
 * Token-by-token decoding with the KV cache, for greedy generation here and for callers' own searches (sampling,
 * beam search: `reorder` keeps, drops or duplicates batch rows — the encoder memory and every cache follow).
 */
export class IncrementalDecoder implements HFDecodingSession {
  /** Decoder tokens consumed so far. */
  past = 0;
  readonly caches: LayerCaches[];
  constructor(public memory: EncoderMemory, layers: number, private readonly decodeFn: DecodeFn, readonly startId = 0) {
    this.caches = Array.from({ length: layers }, () => ({ self: new KVCache(), cross: new KVCache() }));
  }
  get batch(): number { return this.memory.last.shape[0]; }
  /** Every row starts from the decoder start token (HF's decoder_input_ids). */
  get prefix(): number[][] { return Array.from({ length: this.batch }, () => [this.startId]); }
  /** HFDecodingSession: null feeds the decoder start token, then the chosen tokens (B). */
  step(tokens: Int32Array | null): Tensor {
    const t = tokens ?? new Int32Array(this.batch).fill(this.startId);
    if (t.length !== this.batch) throw new HFImportError(`IncrementalDecoder.step: ${t.length} tokens for ${this.batch} rows`);
    return this.next(Tensor.fromArray(Int32Array.from(t), [this.batch, 1], "int32"));
  }
  /** Logits (B, V) of the token after `tokens` (B, 1) (int32); advances the cache. Runs without gradients. */
  next(tokens: Tensor): Tensor {
    if (tokens.dtype !== "int32" || tokens.ndim !== 2 || tokens.shape[0] !== this.batch || tokens.shape[1] !== 1) {
      throw new HFImportError(`IncrementalDecoder.next: tokens must be int32 (${this.batch}, 1), got ${tokens.dtype} ${shapeStr(tokens.shape)}`);
    }
    const logits = noGrad(() => this.decodeFn(tokens, this.memory, this.caches, this.past).select(1, 0)); // (B, V)
    this.past += 1;
    return logits;
  }
  /** Row i of the new state is row rows[i] of the current one (rows may repeat; any count ≥ 1). */
  reorder(rows: readonly number[]): void {
    const B = this.batch;
    if (!rows.length) throw new HFImportError("IncrementalDecoder.reorder: rows must not be empty");
    for (const r of rows) if (!Number.isInteger(r) || r < 0 || r >= B) throw new HFImportError(`IncrementalDecoder.reorder: row ${r} outside [0, ${B - 1}]`);
    this.memory = { last: selectRows(this.memory.last, rows), pad: this.memory.pad && selectRows(this.memory.pad, rows) };
    for (const c of this.caches) for (const kv of [c.self, c.cross]) {
      if (kv.k) { kv.k = selectRows(kv.k, rows); kv.v = selectRows(kv.v!, rows); }
    }
  }
}

/** Rows of a tensor along dim 0, in the given order (any dtype; no gradient). */
function selectRows(t: Tensor, rows: readonly number[]): Tensor {
  if (t.device !== "cpu") return t.indexSelect(0, Tensor.fromArray(Int32Array.from(rows), [rows.length], "int32"));   // on the device, enqueued
  const per = t.numel() / t.shape[0], src = t.dataSync();
  const out = new (src.constructor as new (n: number) => typeof src)(rows.length * per);
  rows.forEach((r, i) => out.set(src.subarray(r * per, (r + 1) * per), i * per));
  return Tensor.fromArray(out, [rows.length, ...t.shape.slice(1)], t.dtype);
}

// ---------------------------------------------------------------- the generation model around an encoder and a decoder
/** Encoder output for forward(): the memory plus every layer's states (hidden[0] = embeddings) and attentions. */
export interface EncoderOut extends EncoderMemory { hidden: Tensor[]; attentions: Tensor[] }
/** Decoder output: last states (B, T, D), every layer's states, self-attentions (B, H, T, Tk) and cross-attentions (B, H, T, Ts). */
export interface DecoderOut { last: Tensor; hidden: Tensor[]; self: Tensor[]; cross: Tensor[] }
export interface DecodeArgs { past: number; selfPad: Tensor | null; caches?: LayerCaches[]; wantWeights: boolean }

/**
 * What MarianMTModel, BartForConditionalGeneration and T5ForConditionalGeneration share around their stacks: HF's
 * forward (encoder, then the decoder over decoderInputIds, with HF's output names), token-by-token decoding with the KV
 * cache (startDecoding) and greedy generate(). A subclass provides encode, decode and logits.
 */
export abstract class EncoderDecoderLM extends Module implements HFModel {
  abstract readonly config: HFConfig;
  abstract readonly architecture: string;
  /** Vocabulary size, decoder layers and config.json's decoder start token. */
  protected abstract readonly vocab: number;
  protected abstract readonly decoderLayerCount: number;
  protected abstract readonly decoderStartId: number;
  abstract encode(inputs: HFInputs, wantWeights: boolean, onEmbeddings?: (x: Tensor) => Tensor): EncoderOut;
  /** The decoder over ids (B, T) at positions past.. with the given layer caches (generation) or none (full forward). */
  abstract decode(ids: Tensor, enc: EncoderMemory, o: DecodeArgs): DecoderOut;
  /** Decoder states (B, T, D) → logits (B, T, V). */
  abstract logits(h: Tensor): Tensor;

  forward(inputs: HFInputs, opts: HFForwardOptions = {}): HFOutputs {
    const att = !!opts.outputAttentions;
    const enc = this.encode(inputs, att, opts.onEmbeddings);
    const dec = checkIds(inputs.decoderInputIds, this.architecture, "decoderInputIds", null, null, this.vocab);
    if (dec.shape[0] !== enc.last.shape[0]) throw new HFImportError(`decoderInputIds has batch ${dec.shape[0]} but inputIds has ${enc.last.shape[0]}`);
    const selfPad = paddingFromMask(inputs.decoderAttentionMask, dec, "decoderAttentionMask");
    const d = this.decode(dec, enc, { past: 0, selfPad, wantWeights: att });
    const out: HFOutputs = { logits: this.logits(d.last), encoderLastHiddenState: enc.last };
    if (opts.outputHiddenStates) { out.encoderHiddenStates = enc.hidden; out.decoderHiddenStates = d.hidden; }
    if (att) { out.encoderAttentions = enc.attentions; out.decoderAttentions = d.self; out.crossAttentions = d.cross; }
    return out;
  }

  /** Encodes the inputs once and returns a token-by-token decoder over them (KV cache; reorder for beam search). */
  startDecoding(inputs: HFInputs, opts: Partial<HFDecodingOptions> = {}): IncrementalDecoder {
    const enc = this.encode(inputs, false);
    return new IncrementalDecoder(enc, this.decoderLayerCount, (tokens, memory, caches, past) =>
      this.logits(this.decode(tokens, memory, { past, selfPad: null, caches, wantWeights: false }).last), opts.decoderStartTokenId ?? this.decoderStartId); // (B, T, V)
  }

  /** Greedy decoding (HF's generate(do_sample=False)); sampling and beam search: generate() in src/hf/generation.ts. */
  generate(inputs: HFInputs, opts: HFGenerateOptions): HFGenerateResult { return greedyGenerate(this, inputs, opts); }
}
