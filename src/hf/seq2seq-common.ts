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
import { activation as hfActivation, type HFActivation } from "./common.js";
import { HFImportError, type HFConfig, type HFGenerateOptions, type HFGenerateResult, type HFInputs } from "./types.js";

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
 * Masked keys get −∞, which gives HF's probabilities (it adds float32's lowest value) — except in a query row with no
 * visible key, which HF's finite mask turns uniform over every key (see deadRows). The fused kernels run unless a
 * gradient must flow into the bias or a recorder wants differentiable weights; then it is composed of matmul and softmax.
 */
export function attend(qIn: Tensor, k: Tensor, v: Tensor, o: AttendOptions): { out: Tensor; weights: Tensor | null } {
  const [B, Tq] = qIn.shape, Tk = k.shape[1], H = o.heads, D = qIn.shape[2] / H;
  const rec = activeRecorder();
  const recording = !!rec && rec.wants(o.module);
  const offset = Tk - Tq;                                        // cached tokens before the first query
  let q = qIn, bias = o.bias ?? null, keyPadding = o.keyPadding ?? null, causal = !!o.causal;
  const dead = keyPadding ? deadRows(keyPadding, Tq, Tk, offset, causal) : null;
  if (dead) {
    // HF: float32's lowest value + a score rounds to that value, so such a row attends uniformly to every key.
    // Here: a zero query and no bias or mask in that row (all scores 0), the other rows masked with −∞ explicitly.
    // (A huge finite mask instead would lose the row's log-sum-exp to rounding in the kernels.)
    const keepRow = Tensor.fromArray(dead.keep, [B, Tq, 1]);
    q = q.mul(keepRow);
    const m = dead.mask;                                                     // (B, 1, Tq, Tk): 0, or −∞ = blocked
    bias = bias ? bias.mul(keepRow.unsqueeze(1)).add(m) : m;
    keyPadding = null; causal = false;
  }
  const composed = (recording && rec!.withGrad) || (!!bias && bias.requiresGrad && isGradEnabled());
  let r: { out: Tensor; weights: Tensor | null };
  if (composed) {
    const heads = (t: Tensor, T: number) => t.reshape([B, T, H, D]).permute(0, 2, 1, 3); // (B, H, T, D)
    let s = heads(q, Tq).matmul(heads(k, Tk).mT).mul(o.scale);    // (B, H, Tq, Tk)
    if (bias) s = s.add(bias);
    const blocked = blockedMask(B, Tq, Tk, offset, causal, keyPadding);
    if (blocked) s = where(blocked, -Infinity, s);
    const w = safeSoftmax(s);
    const out = F.dropout(w, o.dropout ?? 0, true).matmul(heads(v, Tk)).permute(0, 2, 1, 3).reshape([B, Tq, H * D]);
    r = { out, weights: w };
  } else {
    // the fused causal flag is top-left aligned: with a cache, one query row needs no mask, several need it explicit
    const explicitCausal = causal && offset > 0 && Tq > 1;
    let add = bias ? bias.detach() : null;
    if (explicitCausal) {
      const c = causalAdditive(Tq, Tk, offset);
      add = add ? add.add(c) : c;
    }
    r = attentionHeads({ q, k, v }, {
      heads: H, scale: o.scale, attnMask: add, keyPaddingMask: keyPadding,
      causal: causal && offset === 0, dropout: o.dropout ?? 0, returnWeights: o.wantWeights || recording ? "full" : false,
    });
  }
  if (recording && r.weights) {
    const qk = rec!.withQK ? { queries: qIn.reshape([B, Tq, H, D]).permute(0, 2, 1, 3).contiguous(), keys: k.reshape([B, Tk, H, D]).permute(0, 2, 1, 3).contiguous(), scale: o.scale, scoreBias: o.bias ? "position bias" : undefined } : {};
    rec!.add(o.module, { kind: o.kind, weights: r.weights, headMean: false, keyPaddingMask: o.keyPadding ?? null, causal: !!o.causal, ...qk });
  }
  return { out: r.out, weights: o.wantWeights ? r.weights : null };
}

/**
 * Query rows that see only padded keys (with causal: keys 0..offset+i), or null when there are none. keep: 1 per live
 * (b, i), 0 per dead one; mask (B, 1, Tq, Tk): −∞ where a live row may not look, 0 elsewhere (all of a dead row).
 */
function deadRows(pad: Tensor, Tq: number, Tk: number, offset: number, causal: boolean): { keep: Float32Array; mask: Tensor } | null {
  const p = pad.dataSync() as Uint8Array, B = pad.shape[0];
  const keep = new Float32Array(B * Tq).fill(1), m = new Float32Array(B * Tq * Tk);
  let any = false;
  for (let b = 0; b < B; b++) for (let i = 0; i < Tq; i++) {
    const last = causal ? Math.min(offset + i, Tk - 1) : Tk - 1;           // last key this row may see
    let visible = false;
    for (let j = 0; j <= last && !visible; j++) visible = p[b * Tk + j] === 0;
    if (!visible) { keep[b * Tq + i] = 0; any = true; continue; }
    for (let j = 0; j < Tk; j++) if (j > last || p[b * Tk + j] === 1) m[(b * Tq + i) * Tk + j] = -Infinity;
  }
  return any ? { keep, mask: Tensor.fromArray(m, [B, 1, Tq, Tk]) } : null;
}

function causalAdditive(Tq: number, Tk: number, offset: number): Tensor {
  const m = new Float32Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) for (let j = offset + i + 1; j < Tk; j++) m[i * Tk + j] = -Infinity;
  return Tensor.fromArray(m, [1, 1, Tq, Tk]);
}

function blockedMask(B: number, Tq: number, Tk: number, offset: number, causal: boolean, pad: Tensor | null): Tensor | null {
  if (!causal && !pad) return null;
  const p = pad ? (pad.dataSync() as Uint8Array) : null;
  const m = new Uint8Array(B * Tq * Tk);
  for (let b = 0; b < B; b++) for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) {
    m[(b * Tq + i) * Tk + j] = +((causal && j > offset + i) || (p !== null && p[b * Tk + j] === 1));
  }
  return Tensor.fromArray(m, [B, 1, Tq, Tk], "bool");
}

// ---------------------------------------------------------------- greedy generation
/**
 * HF generate()'s _prepare_attention_mask_for_generation: without an attentionMask, the pad tokens of inputIds are
 * masked when the pad id is set, occurs in the input and differs from the eos id; otherwise every token is attended.
 */
export function withGenerationMask(inputs: HFInputs, pad: number | null, eos: number | null): HFInputs {
  if (inputs.attentionMask || !inputs.inputIds || pad === null || pad === eos) return inputs;
  const ids = inputs.inputIds.dataSync() as Int32Array;
  if (!ids.includes(pad)) return inputs;
  const mask = Int32Array.from(ids, (t) => (t === pad ? 0 : 1));
  return { ...inputs, attentionMask: Tensor.fromArray(mask, inputs.inputIds.shape, "int32") };
}

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
export class IncrementalDecoder {
  /** Decoder tokens consumed so far. */
  past = 0;
  readonly caches: LayerCaches[];
  constructor(public memory: EncoderMemory, layers: number, private readonly decodeFn: DecodeFn) {
    this.caches = Array.from({ length: layers }, () => ({ self: new KVCache(), cross: new KVCache() }));
  }
  get batch(): number { return this.memory.last.shape[0]; }
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

/**
 * HF generate() greedy for encoder–decoders: the decoder starts from decoder_start_token_id, each step feeds the last
 * token with the self-attention cache (cross-attention K/V computed at the first step), picks the argmax of the raw
 * logits; with eosTokenId a finished row continues with the pad token and decoding stops when every row finished.
 */
export function greedyEncDec(start: (inputs: HFInputs) => IncrementalDecoder, inputs: HFInputs, o: HFGenerateOptions,
  ids: { start: number; pad: number | null }): HFGenerateResult {
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) throw new HFImportError(`generate: maxNewTokens must be an integer >= 0, got ${o.maxNewTokens}`);
  const eos = o.eosTokenId ?? null;
  const pad = ids.pad ?? eos ?? 0;
  return noGrad(() => {
    const dec = start(withGenerationMask(inputs, ids.pad, eos));
    const B = dec.batch;
    const rows: number[][] = Array.from({ length: B }, () => [ids.start]);
    const done = new Array<boolean>(B).fill(false);
    const stepLogits: Tensor[] = [];
    let last = new Int32Array(B).fill(ids.start);
    for (let step = 0; step < o.maxNewTokens; step++) {
      const logits = dec.next(Tensor.fromArray(last, [B, 1], "int32"));               // (B, V)
      if (o.returnStepLogits) stepLogits.push(logits);
      const next = logits.argmax(-1).dataSync();
      last = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const t = done[b] ? pad : Number(next[b]);
        rows[b].push(t); last[b] = t;
        if (eos !== null && t === eos) done[b] = true;
      }
      if (eos !== null && done.every(Boolean)) break;
    }
    const T = rows[0].length;
    const sequences = Tensor.fromArray(Int32Array.from(rows.flat()), [B, T], "int32");
    return o.returnStepLogits ? { sequences, stepLogits } : { sequences };
  });
}
