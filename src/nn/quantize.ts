// torch.ao.quantization.quantize_dynamic for attnflow models: every nn.Linear becomes an nn.QuantizedLinear (int8
// weights per output channel, activations per row at run time) and every nn.MultiheadAttention's packed
// in-projection becomes int8 (its out_proj is a Linear, so it is quantized too). The attention itself (Q·Kᵀ,
// softmax, ·V) stays float. Differences from PyTorch, on purpose: activations are quantized per row (PyTorch: per
// tensor), and MultiheadAttention's projections are quantized (PyTorch leaves nn.MultiheadAttention alone: its
// out_proj is a NonDynamicallyQuantizableLinear and in_proj_weight a bare parameter).
import { Module } from "./module.js";
import { Linear, ModuleList } from "./layers.js";
import { MultiheadAttention } from "./attention.js";
import { QuantizedLinear } from "./int8.js";

export interface QuantizeDynamicOptions {
  /** State-dict prefixes of modules to keep in float (e.g. ["classifier"]): a module whose name equals one, or starts with it and a ".", is left alone. */
  exclude?: readonly string[];
  /** Also quantize MultiheadAttention in-projections (default true). */
  attention?: boolean;
  /** Quantize exactly these (names as QuantizeReport.quantized lists them), e.g. when loading a quantized checkpoint. */
  only?: readonly string[];
  /** Build the int8 layers without quantizing the current weights (they are about to be loaded from a checkpoint). */
  structureOnly?: boolean;
}

/** The metadata / config key naming a dynamic-int8 checkpoint, and its value's `method`. */
export const QUANTIZATION_KEY = "quantization";
export const QUANTIZATION_METHOD = "dynamic-int8";

export interface QuantizeReport {
  /** State-dict names of the modules quantized ("encoder.layers.0.linear1", "…self_attn.in_proj"). */
  quantized: string[];
  /** Float weights replaced, and their int8 replacements' bytes on disk (weights + scales). */
  floatBytes: number; int8Bytes: number;
}

/**
 * Quantize a model in place (and return it with a report); the model is put in eval mode, since int8 layers are
 * inference-only (inputs still get gradients, for gradient-based explanations). Idempotent.
 */
export function quantizeDynamic<M extends Module>(model: M, opts: QuantizeDynamicOptions = {}): { model: M; report: QuantizeReport } {
  const exclude = opts.exclude ?? [];
  const only = opts.only ? new Set(opts.only) : null;
  const skip = (name: string) => exclude.some((e) => name === e || name.startsWith(e + "."));
  const wanted = (name: string) => !only || only.has(name);
  const report: QuantizeReport = { quantized: [], floatBytes: 0, int8Bytes: 0 };
  const count = (N: number, K: number) => { report.floatBytes += 4 * N * K; report.int8Bytes += N * K + 4 * N; };
  for (const [prefix, m] of model.namedModules()) {
    if (skip(prefix)) continue;
    const at = (n: string) => (prefix ? `${prefix}.${n}` : n);
    if (m instanceof MultiheadAttention && opts.attention !== false && m.inProjWeight && wanted(at("in_proj"))) {
      count(m.inProjWeight.shape[0], m.inProjWeight.shape[1]);
      m.quantizeInProjection(opts.structureOnly);
      report.quantized.push(at("in_proj"));
    }
    const children = m.namedChildren();
    for (const [name, child] of children) {
      if (!(child instanceof Linear) || skip(at(name)) || !wanted(at(name))) continue;
      const q = opts.structureOnly ? new QuantizedLinear(child.inFeatures, child.outFeatures, { bias: !!child.bias }) : QuantizedLinear.fromFloat(child);
      if (!replaceChild(m, child, q)) throw new Error(`quantizeDynamic: cannot replace ${at(name)} (${m.constructor.name} keeps it where quantizeDynamic cannot reach)`);
      count(child.outFeatures, child.inFeatures);
      report.quantized.push(at(name));
    }
  }
  if (only) {
    const missing = [...only].filter((n) => !report.quantized.includes(n));
    if (missing.length) throw new Error(`quantizeDynamic: no Linear or MultiheadAttention in-projection named ${missing.join(", ")} in this model`);
  }
  model.eval();
  return { model, report };
}

/** Put `q` where `old` is held: a field of `parent`, or an item of a ModuleList. */
function replaceChild(parent: Module, old: Module, q: Module): boolean {
  if (parent instanceof ModuleList) {
    const items = (parent as unknown as { items: Module[] }).items;
    const i = items.indexOf(old);
    if (i >= 0) { items[i] = q; return true; }
  }
  const rec = parent as unknown as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (rec[k] === old) { rec[k] = q; return true; }
  return false;
}

/** Whether a model has int8 layers (QuantizedLinear or int8 attention in-projections). */
export function isQuantized(model: Module): boolean {
  return model.modules().some((m) => m instanceof QuantizedLinear || (m instanceof MultiheadAttention && m.inProjInt8 !== null));
}
