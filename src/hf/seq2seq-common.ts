// What the Hugging Face encoder–decoders (Marian, BART, T5) share: config readers that name the offending key, HF's
// activation names, the attention core (fused kernels when nothing needs gradients through an additive bias, composed
// ops otherwise; attention recorded for the explainers either way), the per-layer KV cache and greedy generation.
// Browser-safe.
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { isGradEnabled, noGrad } from "../autograd.js";
import { cat } from "../ops/movement.js";
import { where } from "../ops/elementwise.js";
import { safeSoftmax } from "../ops/nn.js";
import { attentionHeads } from "../ops/attention-heads.js";
import * as F from "../functional.js";
import { activeRecorder } from "../explain/capture.js";
import type { Module } from "../nn/module.js";
import { activation as hfActivation, F32_MIN, type HFActivation } from "./common.js";
import { HFImportError, type HFConfig, type HFDecodingSession } from "./types.js";

// ---------------------------------------------------------------- config readers
/** Reads config keys for one model type; every error names the key (and the model type). */
export class ConfigReader {
  constructor(readonly config: HFConfig, readonly modelType: string) {}

  private fail(key: string, want: string, v: unknown): never {
    throw new HFImportError(`${this.modelType} config: "${key}" must be ${want}, got ${JSON.stringify(v)}`);
  }
  has(key: string): boolean { return this.config[key] !== undefined && this.config[key] !== null; }
  int(key: string, def?: number, min = 1): number {
    const v = this.config[key] ?? def;
    if (v === undefined) throw new HFImportError(`${this.modelType} config: "${key}" is missing`);
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) this.fail(key, `an integer >= ${min}`, v);
    return v;
  }
  /** An optional token id: null/absent → null. */
  tokenId(key: string, vocab: number, def: number | null = null): number | null {
    const v = this.config[key] === undefined ? def : this.config[key];
    if (v === null || v === undefined) return null;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= vocab) this.fail(key, `a token id in [0, ${vocab - 1}] or null`, v);
    return v;
  }
  num(key: string, def: number, min = 0): number {
    const v = this.config[key] ?? def;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) this.fail(key, `a number >= ${min}`, v);
    return v;
  }
  /** A dropout probability in [0, 1). */
  prob(key: string, def: number): number {
    const v = this.config[key] ?? def;
    if (typeof v !== "number" || !(v >= 0 && v < 1)) this.fail(key, "a probability in [0, 1)", v);
    return v;
  }
  bool(key: string, def: boolean): boolean {
    const v = this.config[key] ?? def;
    if (typeof v !== "boolean") this.fail(key, "true or false", v);
    return v;
  }
  str(key: string, def: string, allowed?: readonly string[]): string {
    const v = this.config[key] ?? def;
    if (typeof v !== "string") this.fail(key, "a string", v);
    if (allowed && !allowed.includes(v)) {
      throw new HFImportError(`${this.modelType} config: "${key}" = ${JSON.stringify(v)} is not supported (supported: ${allowed.join(", ")})`);
    }
    return v;
  }
  /** `key` must be divisible by `by` (named `byKey`). */
  divisible(key: string, v: number, byKey: string, by: number): void {
    if (v % by !== 0) throw new HFImportError(`${this.modelType} config: "${key}" (${v}) must be divisible by "${byKey}" (${by})`);
  }
}

/**
 * Which HF class a family builds: the requested one, else the config's architectures[0], else the default. A config
 * that names the family's bare base model (e.g. facebook/bart-base lists "BartModel") gets the generation class, as
 * HF's AutoModelForSeq2SeqLM does; its checkpoint then loads without the "model." prefix (see addBasePrefix).
 */
export function pickArchitecture(family: string, supported: readonly string[], config: HFConfig, requested?: string, baseModel?: string): string {
  const fromConfig = config.architectures?.[0];
  const arch = requested ?? (fromConfig !== undefined && fromConfig === baseModel ? supported[0] : fromConfig) ?? supported[0];
  if (!supported.includes(arch)) {
    throw new HFImportError(`${family}: architecture "${arch}" is not supported (supported: ${supported.join(", ")})`);
  }
  return arch;
}

/**
 * A base-model checkpoint (BartModel, MarianModel: "shared.weight", "encoder.…") loaded into the generation class,
 * whose names start with "model.": HF's from_pretrained adds the base_model_prefix the same way.
 */
export function addBasePrefix(sd: Map<string, Tensor>, prefix: string, own: Set<string>): Map<string, Tensor> {
  if ([...sd.keys()].some((k) => k.startsWith(prefix))) return sd;
  const out = new Map<string, Tensor>();
  for (const [k, t] of sd) out.set(own.has(k) ? k : prefix + k, t);
  return out;
}

// ---------------------------------------------------------------- activations (HF's ACT2FN names)
export type Activation = (x: Tensor) => Tensor;
/** The ACT2FN names these encoder–decoders accept; the formulas are src/hf/common.ts's (one table for every family). */
export const ACTIVATION_NAMES: readonly string[] = ["relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "silu", "swish", "tanh", "sigmoid"];
export function activation(name: string): Activation {
  if (!(ACTIVATION_NAMES as readonly string[]).includes(name)) throw new HFImportError(`activation "${name}" is not supported (supported: ${ACTIVATION_NAMES.join(", ")})`);
  return (x) => hfActivation(name as HFActivation, x);
}

// ---------------------------------------------------------------- checkpoints
export interface CheckpointRules {
  /** canonical name → the tied names HF may have saved instead (any one of them is loaded when the canonical is absent). */
  tied: Record<string, string[]>;
  /** Names HF ignores when they are in a checkpoint (_keys_to_ignore_on_load_unexpected). */
  ignore?: string[];
  /** Names HF fills with their initial value when a checkpoint lacks them (_keys_to_ignore_on_load_missing). */
  optional?: string[];
}

/**
 * A checkpoint's tensors as this model's state dict expects them, following HF's loading rules: tied copies are
 * dropped (HF re-ties after loading) or stand in for a missing canonical name, ignorable extras are dropped, and
 * optional names that are absent keep the model's current value. Everything else is left for strict loading to report.
 */
export function applyCheckpointRules(sd: Record<string, Tensor> | Map<string, Tensor>, current: Record<string, Tensor>, r: CheckpointRules): Map<string, Tensor> {
  const m = new Map(sd instanceof Map ? sd : Object.entries(sd));
  for (const [canon, aliases] of Object.entries(r.tied)) {
    for (const a of aliases) {
      const t = m.get(a);
      if (t === undefined) continue;
      if (!m.has(canon)) m.set(canon, t);
      m.delete(a);
    }
  }
  for (const k of r.ignore ?? []) m.delete(k);
  for (const k of r.optional ?? []) if (!m.has(k) && current[k]) m.set(k, current[k]);
  return m;
}

// ---------------------------------------------------------------- inputs
/** Checks int32 (B, T) ids inside [0, vocab). */
export function checkIds(ids: Tensor | undefined, name: string, vocab: number): Tensor {
  if (!ids) throw new HFImportError(`${name} is required`);
  if (ids.dtype !== "int32" || ids.ndim !== 2 || ids.shape[1] < 1) {
    throw new HFImportError(`${name} must be int32 (batch, length >= 1), got ${ids.dtype} ${shapeStr(ids.shape)}`);
  }
  const d = ids.dataSync() as Int32Array;
  for (let i = 0; i < d.length; i++) {
    if (d[i] < 0 || d[i] >= vocab) throw new HFImportError(`${name}: token id ${d[i]} at flat index ${i} is outside the vocabulary [0, ${vocab - 1}]`);
  }
  return ids;
}

/** HF mask (1 = attend, 0 = padding) for ids (B, T) → bool (B, T) true = padding, or null when nothing is padded. */
export function paddingFromMask(mask: Tensor | undefined, ids: Tensor, name: string): Tensor | null {
  if (!mask) return null;
  if (mask.ndim !== 2 || mask.shape[0] !== ids.shape[0] || mask.shape[1] !== ids.shape[1]) {
    throw new HFImportError(`${name} has shape ${shapeStr(mask.shape)} but the ids have ${shapeStr(ids.shape)}`);
  }
  const m = mask.dataSync(), pad = new Uint8Array(m.length);
  let any = false;
  for (let i = 0; i < m.length; i++) {
    if (m[i] !== 0 && m[i] !== 1) throw new HFImportError(`${name} must hold 0 or 1, got ${m[i]} at flat index ${i}`);
    pad[i] = m[i] === 0 ? 1 : 0;
    any ||= m[i] === 0;
  }
  return any ? Tensor.fromArray(pad, mask.shape, "bool") : null;
}

// ---------------------------------------------------------------- attention core
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

export interface AttendOptions {
  heads: number;
  /** Multiplies q·kᵀ (HF's BART-family scales q by head_dim^-0.5; T5 does not scale). */
  scale: number;
  /** Additive bias broadcastable to (B, H, Tq, Tk), e.g. T5's relative-position bias; may carry gradients. */
  bias?: Tensor | null;
  /** (B, Tk) bool, true = padded key. */
  keyPadding?: Tensor | null;
  /** Query i is the (Tk − Tq + i)-th token: it sees keys 0..Tk − Tq + i (bottom-right aligned, as with a KV cache). */
  causal?: boolean;
  /** The module the explainers see this attention as (a captureAttention record). */
  module: Module;
  kind: "self" | "cross";
  /** Return the (B, H, Tq, Tk) probabilities (output_attentions; taken before attention dropout, as HF does). */
  wantWeights: boolean;
  /** Dropout on the attention probabilities (pass 0 outside training). */
  dropout?: number;
}

/**
 * softmax(q·kᵀ·scale + bias + masks)·v over token-major projections q (B, Tq, H·D), k/v (B, Tk, H·D) → (B, Tq, H·D).
 * HF's masks (padding, causal) are float32's lowest value, so a query row with no visible key spreads evenly over
 * every key: sdpa's maskedRows "uniform". The fused kernels run unless a gradient must flow into the bias or a
 * recorder wants differentiable weights; then sdpa's composed ("math") path.
 */
export function attend(q: Tensor, k: Tensor, v: Tensor, o: AttendOptions): { out: Tensor; weights: Tensor | null } {
  const Tq = q.shape[1], Tk = k.shape[1];
  const rec = activeRecorder();
  const recording = !!rec && rec.wants(o.module);
  const offset = Tk - Tq;                                        // cached tokens before the first query
  const causal = !!o.causal;
  const composed = (recording && rec!.withGrad) || (!!o.bias && o.bias.requiresGrad && isGradEnabled());
  // the kernels' causal flag is top-left aligned: with a cache, one query row needs no mask, several need it explicit
  let mask = o.bias ? (composed ? o.bias : o.bias.detach()) : null;
  if (causal && offset > 0 && Tq > 1) { const c = causalAdditive(Tq, Tk, offset); mask = mask ? mask.add(c) : c; }
  const r = attentionHeads({ q, k, v }, {
    heads: o.heads, scale: o.scale, attnMask: mask, keyPaddingMask: o.keyPadding ?? null, causal: causal && offset === 0,
    dropout: o.dropout ?? 0, returnWeights: o.wantWeights || recording ? "full" : false, impl: composed ? "math" : "fused",
    maskedRows: "uniform",
  });
  if (recording && r.weights) {
    rec!.add(o.module, { kind: o.kind, weights: r.weights, headMean: false, keyPaddingMask: o.keyPadding ?? null, causal });
  }
  return { out: r.out, weights: o.wantWeights ? r.weights : null };
}

/** HF's causal mask for queries at positions offset.. over Tk keys: finfo.min on the future keys, (1, 1, Tq, Tk). */
function causalAdditive(Tq: number, Tk: number, offset: number): Tensor {
  const m = new Float32Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) for (let j = offset + i + 1; j < Tk; j++) m[i * Tk + j] = F32_MIN;
  return Tensor.fromArray(m, [1, 1, Tq, Tk]);
}

// ---------------------------------------------------------------- greedy generation
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
  const per = t.numel() / t.shape[0], src = t.dataSync();
  const out = new (src.constructor as new (n: number) => typeof src)(rows.length * per);
  rows.forEach((r, i) => out.set(src.subarray(r * per, (r + 1) * per), i * per));
  return Tensor.fromArray(out, [rows.length, ...t.shape.slice(1)], t.dtype);
}
