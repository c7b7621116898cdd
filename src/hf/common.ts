// Pieces every Hugging Face architecture file shares: config readers that name the key on bad input, HF's activation
// names, HF's additive attention masks (finfo.min, exactly as its eager code builds them), an attention core that the
// explainers can capture, HF-named submodules, and HF's weight initialisation.
import { Tensor } from "../tensor.js";
import * as F from "../functional.js";
import { sdpa } from "../ops/attention.js";
import { activeRecorder } from "../explain/capture.js";
import { Module, torchName } from "../nn/module.js";
import { Linear, Embedding, LayerNorm } from "../nn/layers.js";
import { normal_, truncNormal_, zeros_, ones_, withoutInit as nnWithoutInit } from "../nn/init.js";
import { shapeStr } from "../shape.js";
import { HFImportError, type HFConfig } from "./types.js";

/** torch.finfo(torch.float32).min: HF's mask value. Adding it twice overflows to -inf, as in HF. */
export const F32_MIN = -3.4028234663852886e38;

// ---------------------------------------------------------------------------------------------- config readers
function where(model: string, key: string): string { return `${model} config.json: "${key}"`; }

export function cfgInt(c: HFConfig, model: string, key: string, dflt?: number, min = 1): number {
  const v = c[key] ?? dflt;
  if (v === undefined) throw new HFImportError(`${where(model, key)} is required`);
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new HFImportError(`${where(model, key)} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}
export function cfgNum(c: HFConfig, model: string, key: string, dflt: number): number {
  const v = c[key] ?? dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new HFImportError(`${where(model, key)} must be a number, got ${JSON.stringify(v)}`);
  return v;
}
export function cfgBool(c: HFConfig, model: string, key: string, dflt: boolean): boolean {
  const v = c[key] ?? dflt;
  if (typeof v !== "boolean") throw new HFImportError(`${where(model, key)} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}
export function cfgChoice<T extends string>(c: HFConfig, model: string, key: string, dflt: T, allowed: readonly T[]): T {
  const v = c[key] ?? dflt;
  if (typeof v !== "string" || !allowed.includes(v as T)) {
    throw new HFImportError(`${where(model, key)} = ${JSON.stringify(v)} is not supported (supported: ${allowed.join(", ")})`);
  }
  return v as T;
}
/** A feature attnflow does not implement: the key must be absent or hold its default. */
export function cfgUnsupported(c: HFConfig, model: string, key: string, dflt: unknown): void {
  const v = c[key];
  if (v !== undefined && v !== null && v !== dflt) throw new HFImportError(`${where(model, key)} = ${JSON.stringify(v)} is not supported (only ${JSON.stringify(dflt)})`);
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

/** act(dense(x)), with gelu / gelu_new-family / relu fused into the GEMM's epilogue (one pass over the output less). */
export function linearActivation(name: HFActivation, dense: Linear, x: Tensor): Tensor {
  const fused = name === "gelu" || name === "gelu_python" ? "gelu" : name === "relu" ? "relu"
    : name === "gelu_new" || name === "gelu_pytorch_tanh" || name === "gelu_fast" || name === "gelu_accurate" ? "geluTanh" : null;
  return fused ? F.linear(x, dense.weight, dense.bias, fused) : activation(name, dense.forward(x));
}

// ---------------------------------------------------------------------------------------------- inputs and masks
export function requireInput(t: Tensor | undefined, model: string, name: string): Tensor {
  if (!t) throw new HFImportError(`${model}.forward: inputs.${name} is required`);
  return t;
}

/** An int (B, T) input, checked against the expected batch/length and value range. */
export function checkIds(t: Tensor, model: string, name: string, B: number | null, T: number | null, limit?: number): void {
  if (t.ndim !== 2 || (B !== null && t.shape[0] !== B) || (T !== null && t.shape[1] !== T)) {
    throw new HFImportError(`${model}: ${name} must be (${B ?? "B"}, ${T ?? "T"}), got ${shapeStr(t.shape)}`);
  }
  if (t.dtype === "float32") throw new HFImportError(`${model}: ${name} must be an integer tensor, got float32`);
  if (limit !== undefined) {
    const d = t.dataSync();
    for (let i = 0; i < d.length; i++) {
      if (!(d[i] >= 0 && d[i] < limit)) throw new HFImportError(`${model}: ${name} element ${i} = ${d[i]} is outside [0, ${limit})`);
    }
  }
}

/** HF's extended padding mask (1 - mask) * finfo.min, shaped (B, 1, 1, Tk) to add to the scores. */
export function paddingBias(mask: Tensor): Tensor {
  return mask.float().neg().add(1).mul(F32_MIN).reshape([mask.shape[0], 1, 1, mask.shape[1]]);
}

/** (B, Tk) bool, true = padded key: what the attention recorder stores for the explainers. */
export function paddedKeys(mask: Tensor | null): Tensor | null { return mask ? mask.eq(0) : null; }

// ---------------------------------------------------------------------------------------------- attention core
export interface AttnCall {
  /** (B, H, Tq, D) each for q; (B, Hkv, Tk, D) for k and v. */
  q: Tensor; k: Tensor; v: Tensor;
  /** Additive bias broadcastable to (B, H, Tq, Tk), HF's finfo.min convention; null = none. */
  bias: Tensor | null;
  scale: number;
  needWeights: boolean;
  /** Some query row has every key at finfo.min or -inf: HF's softmax then spreads evenly over the finfo.min keys,
   *  which only the composed path reproduces (the fused kernels treat such rows as fully masked). */
  degenerateRows: boolean;
  keyPadding: Tensor | null;
  causal: boolean;
  kind?: "self" | "cross";
  /** Attention dropout probability (applied only while the owner is training). */
  dropout?: number;
  /** Let the kernel apply the causal mask itself (square self-attention without padding: same result as HF's). */
  causalFlag?: boolean;
}

/** softmax(q·kᵀ·scale + bias)·v per head; records the weights when an explainer captures this module. */
export function attend(owner: Module, a: AttnCall): { out: Tensor; weights: Tensor | null } {
  const rec = activeRecorder();
  const recording = !!rec && rec.wants(owner);
  const { out, weights } = sdpa(a.q, a.k, a.v, {
    attnMask: a.bias, scale: a.scale, causal: !!a.causalFlag, dropout: owner.training ? a.dropout ?? 0 : 0,
    returnWeights: a.needWeights || recording ? "full" : false,
    impl: a.degenerateRows || (recording && rec!.withGrad) ? "math" : "fused",
  });
  if (recording && weights) rec!.add(owner, { kind: a.kind ?? "self", weights, headMean: false, keyPaddingMask: a.keyPadding, causal: a.causal });
  return { out, weights: a.needWeights ? weights : null };
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

