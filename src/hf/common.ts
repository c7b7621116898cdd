// Pieces every Hugging Face architecture file shares: config readers that name the key on bad input, HF's activation
// names, HF's additive attention masks (finfo.min, exactly as its eager code builds them), an attention core that the
// explainers can capture, HF-named submodules, and HF's weight initialisation.
import { Tensor } from "../tensor.js";
import { contiguousData } from "../ops/movement.js";
import * as F from "../functional.js";
import { sdpa } from "../ops/attention.js";
import { linearCat } from "../ops/matmul.js";
import { linearAddLayerNorm } from "../ops/nn.js";
import { attentionHeads } from "../ops/attention-heads.js";
import { isGradEnabled } from "../autograd.js";
import { activeRecorder } from "../explain/capture.js";
import { Module, torchName } from "../nn/module.js";
import { Linear, Embedding, LayerNorm, Dropout } from "../nn/layers.js";
import { normal_, truncNormal_, zeros_, ones_, withoutInit as nnWithoutInit } from "../nn/init.js";
import { shapeStr } from "../shape.js";
import { HFImportError, type HFConfig } from "./types.js";

/** torch.finfo(torch.float32).min: HF's mask value. Adding it twice overflows to -inf, as in HF. */
export const F32_MIN = -3.4028234663852886e38;

// ---------------------------------------------------------------------------------------------- config readers
/** Reads config keys for one model type; every error names the key (and the model type). */
export class ConfigReader {
  constructor(readonly config: HFConfig, readonly modelType: string) {}

  private fail(key: string, want: string, v: unknown): never {
    throw new HFImportError(`${this.modelType} config.json: "${key}" must be ${want}, got ${JSON.stringify(v)}`);
  }
  has(key: string): boolean { return this.config[key] !== undefined && this.config[key] !== null; }
  int(key: string, def?: number, min = 1): number {
    const v = this.config[key] ?? def;
    if (v === undefined) throw new HFImportError(`${this.modelType} config.json: "${key}" is required`);
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
  num(key: string, def: number, min = -Infinity): number {
    const v = this.config[key] ?? def;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) this.fail(key, min === -Infinity ? "a number" : `a number >= ${min}`, v);
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
      throw new HFImportError(`${this.modelType} config.json: "${key}" = ${JSON.stringify(v)} is not supported (supported: ${allowed.join(", ")})`);
    }
    return v;
  }
  /** `key` must be divisible by `by` (named `byKey`). */
  divisible(key: string, v: number, byKey: string, by: number): void {
    if (v % by !== 0) throw new HFImportError(`${this.modelType} config.json: "${key}" (${v}) must be divisible by "${byKey}" (${by})`);
  }
  /** A feature attnflow does not implement: the key must be absent, null or hold its default. */
  unsupported(key: string, dflt: unknown): void {
    const v = this.config[key];
    if (v !== undefined && v !== null && v !== dflt) throw new HFImportError(`${this.modelType} config.json: "${key}" = ${JSON.stringify(v)} is not supported (only ${JSON.stringify(dflt)})`);
  }
}

/** Shorthands of ConfigReader for one key (the architecture files that read a handful of keys). */
export function cfgInt(c: HFConfig, model: string, key: string, dflt?: number, min = 1): number { return new ConfigReader(c, model).int(key, dflt, min); }
export function cfgNum(c: HFConfig, model: string, key: string, dflt: number): number { return new ConfigReader(c, model).num(key, dflt); }
export function cfgBool(c: HFConfig, model: string, key: string, dflt: boolean): boolean { return new ConfigReader(c, model).bool(key, dflt); }
export function cfgChoice<T extends string>(c: HFConfig, model: string, key: string, dflt: T, allowed: readonly T[]): T {
  return new ConfigReader(c, model).str(key, dflt, allowed) as T;
}
export function cfgUnsupported(c: HFConfig, model: string, key: string, dflt: unknown): void { new ConfigReader(c, model).unsupported(key, dflt); }

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

/** num_labels as HF derives it: id2label's size, else num_labels, else 2. */
export function numLabels(c: HFConfig): number {
  const id2label = c.id2label;
  if (id2label && typeof id2label === "object") return Object.keys(id2label).length;
  return typeof c.num_labels === "number" ? c.num_labels : 2;
}

// ---------------------------------------------------------------------------------------------- activations
export const HF_ACTIVATIONS = [
  "gelu", "gelu_python", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate", "quick_gelu",
  "relu", "relu6", "leaky_relu", "silu", "swish", "mish", "tanh", "sigmoid", "linear",
] as const;
export type HFActivation = (typeof HF_ACTIVATIONS)[number];

/** HF's ACT2FN by name ("gelu" is the exact erf form; gelu_new / gelu_pytorch_tanh / gelu_fast the tanh form). */
export function activation(name: HFActivation, x: Tensor): Tensor {
  switch (name) {
    case "gelu": case "gelu_python": return F.gelu(x, "none");
    case "gelu_new": case "gelu_pytorch_tanh": case "gelu_fast": case "gelu_accurate": return F.gelu(x, "tanh");
    case "quick_gelu": return x.mul(x.mul(1.702).sigmoid());
    case "relu": return F.relu(x);
    case "relu6": return x.clamp(0, 6);
    case "leaky_relu": return x.maximum(x.mul(0.01));                      // torch's default slope 0.01
    case "silu": case "swish": return x.mul(x.sigmoid());
    case "mish": return x.mul(x.exp().log1p().tanh());                     // x·tanh(softplus(x))
    case "tanh": return F.tanh(x);
    case "sigmoid": return F.sigmoid(x);
    case "linear": return x;
  }
}

/** The ACT2FN names the encoder–decoders accept (Marian, BART, T5 configs). */
export const ACTIVATION_NAMES: readonly string[] = ["relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "silu", "swish", "tanh", "sigmoid"];
export type Activation = (x: Tensor) => Tensor;
/** activation(name, ·) as a function, for a name from ACTIVATION_NAMES. */
export function activationFn(name: string): Activation {
  if (!ACTIVATION_NAMES.includes(name)) throw new HFImportError(`activation "${name}" is not supported (supported: ${ACTIVATION_NAMES.join(", ")})`);
  return (x) => activation(name as HFActivation, x);
}

/** act(dense(x)), with gelu / gelu_new-family / relu fused into the GEMM's epilogue (one pass over the output less)
 *  when `dense` is a float Linear; any other layer in its place (nn.quantizeDynamic's QuantizedLinear) runs its own
 *  forward, then the activation. */
export function linearActivation(name: HFActivation, dense: Linear | Module, x: Tensor): Tensor {
  const fused = name === "gelu" || name === "gelu_python" ? "gelu" : name === "relu" ? "relu"
    : name === "gelu_new" || name === "gelu_pytorch_tanh" || name === "gelu_fast" || name === "gelu_accurate" ? "geluTanh" : null;
  if (fused && dense instanceof Linear && dense.weight.dtype === "float32") return F.linear(x, dense.weight, dense.bias, fused);
  return activation(name, (dense as Linear).forward(x));
}

/**
 * dropout(dense(h)) + residual, the residual connection after an attention or MLP output projection. A float Linear
 * without active dropout is one GEMM that accumulates into the residual (F.linear's `residual`); anything else
 * (training with dropout, a quantized layer) runs the modules as they are.
 */
export function linearResidual(dense: Linear | Module, dropout: Dropout, h: Tensor, residual: Tensor): Tensor {
  if (dense instanceof Linear && dense.weight.dtype === "float32" && (!dropout.training || dropout.p === 0)) {
    return F.linear(h, dense.weight, dense.bias, null, residual);
  }
  return dropout.forward((dense as Linear).forward(h)).add(residual);
}

/**
 * norm(dropout(dense(h)) + residual) for a LayerNorm over the last dim (post-norm blocks): one linearAddLayerNorm call
 * for a float Linear without active dropout (the GEMM accumulates the residual, the norm runs in place); anything
 * else (training with dropout, a quantized layer, another norm) runs linearResidual, then the norm module.
 */
export function linearResidualNorm(dense: Linear | Module, dropout: Dropout, norm: LayerNorm | Module, h: Tensor, residual: Tensor): Tensor {
  if (dense instanceof Linear && dense.weight.dtype === "float32" && (!dropout.training || dropout.p === 0) &&
    norm instanceof LayerNorm && norm.normalizedShape.length === 1) {
    return linearAddLayerNorm(h, dense.weight, dense.bias, residual, norm.weight, norm.bias, norm.opts.eps ?? 1e-5);
  }
  return (norm as LayerNorm).forward(linearResidual(dense, dropout, h, residual));
}

/**
 * [l₀(x), l₁(x), …] for layers of one input (the query, key and value projections). When every layer is a float32
 * Linear and no gradient is wanted, one linearCat: the GEMMs share a parallel region and the results are column
 * views of one (…, ΣN) tensor (the attention kernels read them in place); values are exactly each layer's forward.
 */
export function projections(x: Tensor, layers: readonly (Linear | Module)[]): Tensor[] {
  const lin = layers.every((l) => l instanceof Linear && l.weight.dtype === "float32") ? layers as Linear[] : null;
  if (!lin || x.device !== "cpu" || (isGradEnabled() && (x.requiresGrad || lin.some((l) => l.weight.requiresGrad || !!l.bias?.requiresGrad)))) {
    return layers.map((l) => (l as Linear).forward(x));
  }
  const y = linearCat(x, lin.map((l) => l.weight), lin.map((l) => l.bias));
  let col = 0;
  return lin.map((l) => { const n = l.weight.shape[0]; const v = y.narrow(y.ndim - 1, col, n); col += n; return v; });
}

// ---------------------------------------------------------------------------------------------- inputs and masks
export function requireInput(t: Tensor | undefined, model: string, name: string): Tensor {
  if (!t) throw new HFImportError(`${model}.forward: inputs.${name} is required`);
  return t;
}

/**
 * An integer (B, T) input (T >= 1), checked against the expected batch / length (null: any) and value range [0, limit);
 * returns it. Missing, float, misshapen or out-of-range inputs throw naming the input (ids: "outside the vocabulary").
 */
export function checkIds(t: Tensor | undefined, model: string, name: string, B: number | null = null, T: number | null = null, limit?: number): Tensor {
  if (!t) throw new HFImportError(`${model}: ${name} is required`);
  if (t.ndim !== 2 || t.shape[1] < 1 || (B !== null && t.shape[0] !== B) || (T !== null && t.shape[1] !== T)) {
    throw new HFImportError(`${model}: ${name} must be (${B ?? "batch"}, ${T ?? "length >= 1"}), got ${shapeStr(t.shape)}`);
  }
  if (t.dtype === "float32") throw new HFImportError(`${model}: ${name} must be an integer tensor, got float32`);
  if (limit !== undefined) {
    const d = contiguousData(t), ids = /Ids$/.test(name) && name !== "positionIds";
    for (let i = 0; i < d.length; i++) {
      if (!(d[i] >= 0 && d[i] < limit)) {
        throw new HFImportError(`${model}: ${name}: ${ids ? "token id" : "value"} ${d[i]} at flat index ${i} is outside ${ids ? "the vocabulary " : ""}[0, ${limit - 1}]`);
      }
    }
  }
  return t;
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

/** HF's extended padding mask (1 - mask) * finfo.min, shaped (B, 1, 1, Tk) to add to the scores. */
export function paddingBias(mask: Tensor): Tensor {
  return mask.float().neg().add(1).mul(F32_MIN).reshape([mask.shape[0], 1, 1, mask.shape[1]]);
}

/** (B, Tk) bool, true = padded key: what the attention recorder stores for the explainers. */
export function paddedKeys(mask: Tensor | null): Tensor | null { return mask ? mask.eq(0) : null; }

// ---------------------------------------------------------------------------------------------- attention core
export interface AttnCall {
  /** Per-head views q (B, H, Tq, D), k/v (B, Hkv, Tk, D) — or, with `heads`, token-major projections q (B, Tq, H·D),
   *  k/v (B, Tk, H·D) that the kernels read in place (the output is then token-major too). */
  q: Tensor; k: Tensor; v: Tensor;
  heads?: number;
  /** Additive bias broadcastable to (B, H, Tq, Tk) in HF's finfo.min convention (T5's position bias); may carry gradients. */
  bias: Tensor | null;
  scale: number;
  needWeights: boolean;
  /** (B, Tk) bool, true = padded key: masked here and recorded for the explainers. */
  keyPadding: Tensor | null;
  /** Causal self-attention, bottom-right aligned (query i is token Tk − Tq + i, as with a KV cache): masked here unless
   *  causalInBias, and recorded. */
  causal: boolean;
  /** The bias already holds the causal mask (GPT-2 builds one bias for both). */
  causalInBias?: boolean;
  kind?: "self" | "cross";
  /** Attention dropout probability (applied only while the owner is training). */
  dropout?: number;
}

/**
 * softmax(q·kᵀ·scale + bias + masks)·v per head — the one attention core of every HF architecture here; records the
 * weights when an explainer captures `owner`. HF's masks are float32's lowest value, so a query row with no visible key
 * spreads evenly over its masked keys: sdpa's maskedRows "uniform". Fused kernels, unless a gradient must flow into the
 * bias or a recorder wants differentiable weights (then sdpa's composed "math" path).
 */
export function attend(owner: Module, a: AttnCall): { out: Tensor; weights: Tensor | null } {
  const rec = activeRecorder();
  const recording = !!rec && rec.wants(owner);
  const Tq = a.q.shape[a.heads ? 1 : 2], Tk = a.k.shape[a.heads ? 1 : 2], offset = Tk - Tq;
  const composed = (recording && rec!.withGrad) || (!!a.bias && a.bias.requiresGrad && isGradEnabled());
  let mask = a.bias ? (composed ? a.bias : a.bias.detach()) : null;
  const causal = a.causal && !a.causalInBias;
  // the kernels' causal flag is top-left aligned: with a cache, one query row needs no mask, several need it explicit
  if (causal && offset > 0 && Tq > 1) { const c = causalBias(Tq, Tk, offset); mask = mask ? mask.add(c) : c; }
  const opts = {
    attnMask: mask, keyPaddingMask: a.keyPadding, causal: causal && offset === 0, scale: a.scale,
    dropout: owner.training ? a.dropout ?? 0 : 0, returnWeights: a.needWeights || recording ? "full" as const : false as const,
    impl: composed ? "math" as const : "fused" as const, maskedRows: "uniform" as const,
  };
  const { out, weights } = a.heads ? attentionHeads({ q: a.q, k: a.k, v: a.v }, { ...opts, heads: a.heads }) : sdpa(a.q, a.k, a.v, opts);
  if (recording && weights) {
    // the neuron view's q and k as (B, H, T, D); token-major projections (B, T, H·D) are split into heads
    const split = (t: Tensor) => { const [B, T] = t.shape; return t.reshape([B, T, a.heads!, t.shape[2] / a.heads!]).permute(0, 2, 1, 3).contiguous(); };
    const qk = rec!.withQK ? { queries: a.heads ? split(a.q) : a.q, keys: a.heads ? split(a.k) : a.k, scale: a.scale, scoreBias: a.bias ? "position bias" : undefined } : {};
    rec!.add(owner, { kind: a.kind ?? "self", weights, headMean: false, keyPaddingMask: a.keyPadding, causal: a.causal, ...qk });
  }
  return { out, weights: a.needWeights ? weights : null };
}

/** HF's causal mask for queries at positions offset.. over Tk keys: finfo.min on the future keys, (1, 1, Tq, Tk). */
function causalBias(Tq: number, Tk: number, offset: number): Tensor {
  const m = new Float32Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) for (let j = offset + i + 1; j < Tk; j++) m[i * Tk + j] = F32_MIN;
  return Tensor.fromArray(m, [1, 1, Tq, Tk]);
}

/** (B, T, H·D) → (B, H, T, D) view (the fused kernels read it through strides). */
export function splitHeads(x: Tensor, H: number): Tensor {
  const [B, T, E] = x.shape;
  return x.reshape([B, T, H, E / H]).permute(0, 2, 1, 3);
}
/** (B, H, T, D) → (B, T, H·D). */
export function mergeHeads(x: Tensor): Tensor {
  const [B, H, T, D] = x.shape;
  return x.permute(0, 2, 1, 3).reshape([B, T, H * D]);
}

// ---------------------------------------------------------------------------------------------- checkpoints
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

// ---------------------------------------------------------------------------------------------- naming and init
/**
 * Base of the HF modules: submodule fields are named in camelCase and map to HF's names through torchName, except the
 * names listed in `hfNames` (HF names that snake_case cannot produce, e.g. BERT's "LayerNorm", GPT-2's "ln_1").
 */
export abstract class HFModule extends Module {
  protected hfNames(): Record<string, string> { return {}; }
  protected override childName(field: string): string { return this.hfNames()[field] ?? torchName(field); }
}

let initSkipped = false;
/** Build without HF's random initialisation nor the layers' own (every weight is about to be overwritten by a checkpoint). */
export function withoutInit<T>(fn: () => T): T {
  const prev = initSkipped;
  initSkipped = true;
  try { return nnWithoutInit(fn); } finally { initSkipped = prev; }
}
export function initEnabled(): boolean { return !initSkipped; }

/** HF's _init_weights for Linear / Embedding / LayerNorm: N(0, std) weights (trunc-normal for ViT), zero biases. */
export function hfInit(root: Module, std: number, opts: { truncated?: boolean; paddingIdx?: number | null } = {}): void {
  if (initSkipped) return;
  for (const m of root.modules()) {
    if (m instanceof Linear) {
      if (opts.truncated) truncNormal_(m.weight, 0, std, -2, 2); else normal_(m.weight, 0, std);
      if (m.bias) zeros_(m.bias);
    } else if (m instanceof Embedding) {
      normal_(m.weight, 0, std);
      const pad = m.opts.paddingIdx;
      if (pad !== undefined) m.weight.storage.data.fill(0, pad * m.embeddingDim, (pad + 1) * m.embeddingDim);
    } else if (m instanceof LayerNorm) {
      if (m.weight) ones_(m.weight);
      if (m.bias) zeros_(m.bias);
    }
  }
}

