// Attention-head pruning and head masks, with Hugging Face's semantics (PreTrainedModel.prune_heads, head_mask).
//
// A prunable attention module (nn.MultiheadAttention, HF BertAttention) has `numHeads` (heads left), `prunedHeads`
// (original indices removed), `headMask` (a (H) mask its forward multiplies each head's output by when none is passed)
// and `pruneHeads(original indices)`. Layers are numbered by the order of these modules in model.namedModules()
// (= encoder layer order), so `pruneHeads(model, { 0: [1, 2], 3: [0] })` means what HF's model.prune_heads means.
// Browser-safe.
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { Module, Parameter } from "./module.js";
import { Linear } from "./layers.js";

export interface PrunableAttention {
  numHeads: number;
  readonly prunedHeads: Set<number>;
  headMask: Tensor | null;
  pruneHeads(heads: Iterable<number>): void;
}

function isPrunable(m: unknown): m is PrunableAttention & Module {
  const p = m as Partial<PrunableAttention>;
  return m instanceof Module && typeof p.pruneHeads === "function" && p.prunedHeads instanceof Set && typeof p.numHeads === "number";
}

/** The model's prunable attention modules in layer order, with their state-dict names. */
export function attentionLayers(model: Module): [string, PrunableAttention & Module][] {
  return model.namedModules().filter((e): e is [string, PrunableAttention & Module] => isPrunable(e[1]));
}

/** Heads per layer: [left, original] for each prunable attention layer. */
export function headCounts(model: Module): { left: number; original: number }[] {
  return attentionLayers(model).map(([, m]) => ({ left: m.numHeads, original: m.numHeads + m.prunedHeads.size }));
}

/** Pruned heads per layer index (original indices, sorted), only layers with pruned heads: HF's config.pruned_heads. */
export function prunedHeadsOf(model: Module): Record<number, number[]> {
  const out: Record<number, number[]> = {};
  attentionLayers(model).forEach(([, m], i) => { if (m.prunedHeads.size) out[i] = [...m.prunedHeads].sort((a, b) => a - b); });
  return out;
}

/** Check a {layer: heads} spec (JSON keys may be strings) against the model; returns it with numeric layers. */
export function checkPruneSpec(model: Module, spec: Record<string | number, readonly number[]>, what = "pruneHeads"): Map<number, number[]> {
  const layers = attentionLayers(model);
  if (!layers.length) throw new Error(`${what}: the model has no prunable attention layers (nn.MultiheadAttention, HF BERT attention)`);
  const out = new Map<number, number[]>();
  for (const [k, heads] of Object.entries(spec)) {
    const l = Number(k);
    if (!Number.isInteger(l) || l < 0 || l >= layers.length) throw new RangeError(`${what}: layer ${JSON.stringify(k)} is not in [0, ${layers.length}) (the model has ${layers.length} attention layers)`);
    if (!Array.isArray(heads)) throw new TypeError(`${what}: layer ${l} must list head indices, got ${JSON.stringify(heads)}`);
    const m = layers[l][1], original = m.numHeads + m.prunedHeads.size;
    for (const h of heads) {
      if (!Number.isInteger(h) || h < 0 || h >= original) throw new RangeError(`${what}: head ${JSON.stringify(h)} of layer ${l} is not in [0, ${original})`);
    }
    out.set(l, [...new Set([...(out.get(l) ?? []), ...heads])]);
  }
  return out;
}

/**
 * Remove heads physically: { layer: [original head indices] } (HF's model.prune_heads). Heads already pruned are
 * skipped; at least one head must stay in each layer. Returns the model's pruned heads afterwards.
 */
export function pruneHeads(model: Module, spec: Record<string | number, readonly number[]>): Record<number, number[]> {
  const layers = attentionLayers(model);
  const checked = checkPruneSpec(model, spec);
  for (const [l, heads] of checked) {
    const m = layers[l][1];
    const left = m.numHeads - heads.filter((h) => !m.prunedHeads.has(h)).length;
    if (left < 1) throw new RangeError(`pruneHeads: layer ${l} would keep no head (it has ${m.numHeads}, pruning ${heads.length}); keep at least one per layer`);
  }
  for (const [l, heads] of checked) layers[l][1].pruneHeads(heads);
  return prunedHeadsOf(model);
}

/**
 * Set (or clear, with null) the head mask every attention layer's forward uses when not given one: `mask` is
 * (L, H) when all layers have H heads left, or one (H_l) tensor per layer. Like HF's head_mask argument; a mask that
 * requires grad gives Michel et al.'s importance ∂loss/∂mask.
 */
export function setHeadMask(model: Module, mask: Tensor | readonly (Tensor | null)[] | null): void {
  const layers = attentionLayers(model);
  if (mask === null) { for (const [, m] of layers) m.headMask = null; return; }
  if (mask instanceof Tensor) {
    const H = layers[0]?.[1].numHeads;
    if (mask.ndim !== 2 || mask.shape[0] !== layers.length || !layers.every(([, m]) => m.numHeads === mask.shape[1])) {
      throw new Error(`setHeadMask: a (L, H) mask needs every layer to have H heads; the model has heads ${layers.map(([, m]) => m.numHeads).join(", ")} ` +
        `(expected (${layers.length}, ${H})), got ${shapeStr(mask.shape)}; pass one (H_l) tensor per layer instead`);
    }
    layers.forEach(([, m], l) => { m.headMask = mask.select(0, l); });
    return;
  }
  if (mask.length !== layers.length) throw new Error(`setHeadMask: got ${mask.length} per-layer masks for ${layers.length} attention layers`);
  layers.forEach(([, m], l) => {
    const t = mask[l];
    if (t && (t.ndim !== 1 || t.shape[0] !== m.numHeads)) throw new Error(`setHeadMask: layer ${l} has ${m.numHeads} heads, its mask is ${shapeStr(t.shape)}`);
    m.headMask = t;
  });
}

/**
 * HF's prune_linear_layer: a new Linear keeping `index` along `dim` of the weight (0: output rows and bias entries,
 * 1: input columns; the bias is kept whole).
 */
export function pruneLinear(layer: Linear, index: ArrayLike<number>, dim: 0 | 1): Linear {
  const idx = Tensor.fromArray(Int32Array.from(index), [index.length]);
  const W = layer.weight.detach().indexSelect(dim, idx).contiguous();
  const b = layer.bias ? (dim === 0 ? layer.bias.detach().indexSelect(0, idx).contiguous() : layer.bias.detach().clone()) : null;
  const [out, inF] = W.shape;
  const lin = new Linear(inF, out, { bias: !!b });
  lin.weight = Parameter(W, layer.weight.requiresGrad);
  if (b) lin.bias = Parameter(b, layer.bias!.requiresGrad);
  lin.training = layer.training;
  return lin;
}

/**
 * HF's find_pruneable_heads_and_indices: of `heads` (original indices), those not yet pruned, and the rows
 * (head-major, headSize each) of the current projections to keep. `numHeads` is the current count.
 */
export function pruneableHeadsAndIndices(heads: Iterable<number>, numHeads: number, headSize: number, alreadyPruned: Set<number>): { heads: Set<number>; index: Int32Array } {
  const original = numHeads + alreadyPruned.size;
  const drop = new Set([...heads].filter((h) => !alreadyPruned.has(h)));
  const current = [...Array(original).keys()].filter((h) => !alreadyPruned.has(h));
  const keepPos = current.map((h, i) => [h, i] as const).filter(([h]) => !drop.has(h)).map(([, i]) => i);
  const index = new Int32Array(keepPos.length * headSize);
  keepPos.forEach((i, n) => { for (let d = 0; d < headSize; d++) index[n * headSize + d] = i * headSize + d; });
  return { heads: drop, index };
}
