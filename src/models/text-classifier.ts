// A small BERT-like text encoder with a classification head and an optional masked-LM head. Browser-safe.
//
//   ids (B, T) int32 ── token embedding (V, D) ─┐
//                                                +── LayerNorm ── dropout ── TransformerEncoder (batchFirst) ── h (B, T, D)
//   positions 0..T-1 ── learned positions (maxLen, D) ─┘
//   classification: pool h over T ([CLS] row 0, or the mean over real tokens) ── dropout ── Linear(D, C) ── logits (B, C)
//   masked LM:      h at the masked positions (M, D) ── Linear(D, D) ── GELU ── LayerNorm ── ·Eᵀ + b ── logits (M, V)
//                   (decoder tied to the token embedding E, like BERT)
//
// Padding: positions whose id is padId (0) are padding. They are excluded as attention keys with a (B, T) key
// padding mask (so captured attention has zero weight on them) and from mean pooling. A batch without padding
// passes no mask (the fast path). The embedding and classifier field names are shared by both heads, so a
// masked-LM checkpoint loads into a classifier with loadPretrained() (the heads that do not exist are skipped).
import { Tensor } from "../tensor.js";
import * as F from "../functional.js";
import { shapeStr } from "../shape.js";
import { defaultGenerator, type Generator } from "../random.js";
import { Module, Parameter } from "../nn/module.js";
import { Dropout, Embedding, LayerNorm, Linear } from "../nn/layers.js";
import { LearnedPositionalEmbedding } from "../nn/positional.js";
import { TransformerEncoder, TransformerEncoderLayer } from "../nn/transformer.js";
import { truncNormal_, zeros_, ones_ } from "../nn/init.js";

export interface TextClassifierConfig {
  vocabSize: number;
  dModel: number;
  /** Number of encoder layers. */
  depth: number;
  heads: number;
  /** Feed-forward width. */
  ff: number;
  /** Longest input (including [CLS]). */
  maxLen: number;
  dropout: number;
  /** Classes of the classification head; 0 = no classification head (masked-LM pre-training). */
  numClasses: number;
  /** "cls": the output at position 0 ([CLS]); "mean": the mean over non-padding positions. */
  pooling: "cls" | "mean";
  /** Attach the masked-LM head (pre-training, or an auxiliary loss during fine-tuning). Default false. */
  mlmHead?: boolean;
  /** Pre-norm layers (default true; a final LayerNorm follows the stack). */
  normFirst?: boolean;
  activation?: "gelu" | "relu";
  /** Padding id (default 0). */
  padId?: number;
}

/** Check a config and fill its defaults; errors name the field. */
export function checkTextClassifierConfig(c: TextClassifierConfig): Required<TextClassifierConfig> {
  const posInt = (k: keyof TextClassifierConfig, min = 1) => {
    const v = c[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new Error(`TextClassifier config: '${k}' must be an integer >= ${min}, got ${String(v)}`);
  };
  posInt("vocabSize", 2); posInt("dModel"); posInt("depth", 0); posInt("heads"); posInt("ff"); posInt("maxLen"); posInt("numClasses", 0);
  if (c.dModel % c.heads !== 0) throw new Error(`TextClassifier config: dModel ${c.dModel} must be divisible by heads ${c.heads}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new Error(`TextClassifier config: 'dropout' must be in [0, 1), got ${String(c.dropout)}`);
  if (c.pooling !== "cls" && c.pooling !== "mean") throw new Error(`TextClassifier config: 'pooling' must be "cls" or "mean", got ${String(c.pooling)}`);
  const padId = c.padId ?? 0;
  if (!Number.isInteger(padId) || padId < 0 || padId >= c.vocabSize) throw new Error(`TextClassifier config: 'padId' ${padId} is not a token id in [0, ${c.vocabSize})`);
  if (c.numClasses === 0 && !c.mlmHead) throw new Error("TextClassifier config: needs a head: numClasses > 0 and/or mlmHead: true");
  const activation = c.activation ?? "gelu";
  if (activation !== "gelu" && activation !== "relu") throw new Error(`TextClassifier config: 'activation' must be "gelu" or "relu", got ${String(activation)}`);
  return {
    vocabSize: c.vocabSize, dModel: c.dModel, depth: c.depth, heads: c.heads, ff: c.ff, maxLen: c.maxLen, dropout: c.dropout,
    numClasses: c.numClasses, pooling: c.pooling, mlmHead: !!c.mlmHead, normFirst: c.normFirst ?? true, activation, padId,
  };
}

/** Masked-LM head: transform then the tied decoder (bias of its own). */
export class MlmHead extends Module {
  dense: Linear;
  norm: LayerNorm;
  bias: Tensor;
  constructor(dModel: number, vocabSize: number) {
    super();
    this.dense = new Linear(dModel, dModel);
    this.norm = new LayerNorm(dModel);
    this.bias = Parameter(Tensor.fromArray(new Float32Array(vocabSize), [vocabSize]));
  }
  /** h (M, D), tied embedding weight (V, D) → logits (M, V). */
  forward(h: Tensor, embedWeight: Tensor): Tensor {
    const t = this.norm.forward(F.gelu(this.dense.forward(h)));                       // (M, D)
    return F.linear(t, embedWeight, this.bias);                                        // (M, V)
  }
}

export interface EncodeOptions {
  /** Replace the token embeddings (B, T, D) (before positions are added), e.g. to take input × gradient. */
  onEmbeddings?: (x: Tensor) => Tensor;
}

export class TextClassifier extends Module {
  readonly config: Required<TextClassifierConfig>;
  tokEmbed: Embedding;
  posEmbed: LearnedPositionalEmbedding;
  embNorm: LayerNorm;
  embDropout: Dropout;
  encoder: TransformerEncoder;
  headDropout: Dropout;
  head: Linear | null;
  mlm: MlmHead | null;

  constructor(config: TextClassifierConfig, gen: Generator = defaultGenerator) {
    super();
    const c = (this.config = checkTextClassifierConfig(config));
    this.tokEmbed = new Embedding(c.vocabSize, c.dModel, { paddingIdx: c.padId });
    this.posEmbed = new LearnedPositionalEmbedding(c.maxLen, c.dModel);
    this.embNorm = new LayerNorm(c.dModel);
    this.embDropout = new Dropout(c.dropout);
    const layer = () => new TransformerEncoderLayer(c.dModel, c.heads, {
      dimFeedforward: c.ff, dropout: c.dropout, activation: c.activation, batchFirst: true, normFirst: c.normFirst,
    });
    this.encoder = new TransformerEncoder(layer, c.depth, c.normFirst ? new LayerNorm(c.dModel) : null);
    this.headDropout = new Dropout(c.dropout);
    this.head = c.numClasses > 0 ? new Linear(c.dModel, c.numClasses) : null;
    this.mlm = c.mlmHead ? new MlmHead(c.dModel, c.vocabSize) : null;
    this.initWeights(gen);
  }

  /** BERT initialisation from `gen`: matrices and embeddings ~ N(0, 0.02²) truncated at ±2σ, biases 0, norms 1/0. */
  initWeights(gen: Generator): void {
    for (const [name, p] of this.namedParameters()) {
      if (p.ndim >= 2) truncNormal_(p, 0, 0.02, -0.04, 0.04, gen);
      else if (/norm\d*\.weight$|emb_norm\.weight$/.test(name)) ones_(p);
      else zeros_(p);
    }
    const pad = this.config.padId, D = this.config.dModel;
    this.tokEmbed.weight.storage.data.fill(0, pad * D, (pad + 1) * D);
  }

  /** (B, T) bool, true = padding; null when the batch has no padding. */
  paddingMask(ids: Tensor): Tensor | null {
    const data = ids.dataSync() as Int32Array;
    if (!data.includes(this.config.padId)) return null;
    return ids.eq(this.config.padId);
  }

  /** Hidden states h (B, T, D) for ids (B, T) int32, and the padding mask used. */
  encode(ids: Tensor, o: EncodeOptions = {}): { hidden: Tensor; padMask: Tensor | null } {
    const c = this.config;
    if (ids.ndim !== 2 || ids.dtype !== "int32") throw new Error(`TextClassifier: ids must be int32 (B, T), got ${ids.dtype} ${shapeStr(ids.shape)}`);
    const T = ids.shape[1];
    if (T < 1 || T > c.maxLen) throw new Error(`TextClassifier: sequence length ${T} must be in [1, maxLen=${c.maxLen}]`);
    const padMask = this.paddingMask(ids);                                              // (B, T) bool | null
    let x = this.tokEmbed.forward(ids);                                                 // (B, T, D)
    if (o.onEmbeddings) {
      x = o.onEmbeddings(x);
      if (x.ndim !== 3 || x.shape[0] !== ids.shape[0] || x.shape[1] !== T || x.shape[2] !== c.dModel) {
        throw new Error(`TextClassifier: onEmbeddings must return (${ids.shape[0]}, ${T}, ${c.dModel}), got ${shapeStr(x.shape)}`);
      }
    }
    x = this.embDropout.forward(this.embNorm.forward(this.posEmbed.forward(x)));         // (B, T, D)
    const hidden = this.encoder.forward(x, { srcKeyPaddingMask: padMask });             // (B, T, D)
    return { hidden, padMask };
  }

  /** Pooled representation (B, D): the [CLS] row, or the mean over non-padding positions. */
  pool(hidden: Tensor, padMask: Tensor | null): Tensor {
    if (this.config.pooling === "cls") return hidden.select(1, 0);                      // (B, D)
    if (!padMask) return hidden.mean(1);                                                // (B, D)
    const keep = padMask.logicalNot().float().unsqueeze(2);                             // (B, T, 1)
    return hidden.mul(keep).sum(1).div(keep.sum(1).clamp(1));                           // (B, D)
  }

  /** Class logits (B, C) from hidden states. */
  classify(hidden: Tensor, padMask: Tensor | null): Tensor {
    if (!this.head) throw new Error("TextClassifier: this model has no classification head (numClasses = 0)");
    return this.head.forward(this.headDropout.forward(this.pool(hidden, padMask)));      // (B, C)
  }

  /** Class logits (B, C) for ids (B, T). */
  forward(ids: Tensor, o: EncodeOptions = {}): Tensor {
    const { hidden, padMask } = this.encode(ids, o);
    return this.classify(hidden, padMask);
  }

  /** Masked-LM logits (M, V) at flat positions b·T + t of hidden (B, T, D). */
  mlmLogits(hidden: Tensor, positions: Int32Array): Tensor {
    if (!this.mlm) throw new Error("TextClassifier: this model has no masked-LM head (mlmHead: false)");
    const [B, T, D] = hidden.shape;
    for (let i = 0; i < positions.length; i++) {
      if (!(positions[i] >= 0 && positions[i] < B * T)) throw new RangeError(`mlmLogits: position ${positions[i]} (entry ${i}) outside [0, ${B * T})`);
    }
    const h = hidden.reshape([B * T, D]).indexSelect(0, Tensor.fromArray(positions, [positions.length]));  // (M, D)
    return this.mlm.forward(h, this.tokEmbed.weight);                                  // (M, V)
  }

  /**
   * Explanation hook: the logit of class `classIndex` (shape []) for one sequence of ids, with the positions in
   * `occlude` replaced by `occludeId` (the [MASK] token) and optionally the token embeddings replaced.
   */
  score(ids: readonly number[], classIndex: number, o: EncodeOptions & { occlude?: readonly number[]; occludeId?: number } = {}): Tensor {
    const C = this.config.numClasses;
    if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= C) throw new RangeError(`TextClassifier.score: class ${classIndex} not in [0, ${C})`);
    const x = Int32Array.from(ids);
    for (const p of o.occlude ?? []) {
      if (!Number.isInteger(p) || p < 0 || p >= x.length) throw new RangeError(`TextClassifier.score: occluded position ${p} not in [0, ${x.length})`);
      x[p] = o.occludeId ?? this.config.padId;
    }
    const logits = this.forward(Tensor.fromArray(x, [1, x.length]), o);               // (1, C)
    return logits.select(0, 0).select(0, classIndex);                                  // ()
  }

  /**
   * Copy the weights of a pre-trained state dict (e.g. a masked-LM checkpoint) whose names match this model;
   * the embeddings and every encoder layer must be present with equal shapes, heads are optional.
   * Returns the names copied and the model's parameters left at their initial values.
   */
  loadPretrained(sd: Record<string, Tensor> | Map<string, Tensor>): { loaded: string[]; kept: string[] } {
    const entries = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const required = Object.keys(own).filter((k) => /^(tok_embed|pos_embed|emb_norm|encoder)\./.test(k));
    const missing = required.filter((k) => !entries.has(k));
    if (missing.length) throw new Error(`loadPretrained: the checkpoint lacks ${missing.length} backbone weights: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`);
    const pick = new Map<string, Tensor>();
    for (const k of Object.keys(own)) {
      const v = entries.get(k);
      if (v && v.shape.length === own[k].shape.length && v.shape.every((d, i) => d === own[k].shape[i])) pick.set(k, v);
      else if (v && required.includes(k)) throw new Error(`loadPretrained: '${k}' is ${shapeStr(v.shape)} in the checkpoint but ${shapeStr(own[k].shape)} in the model`);
    }
    this.loadStateDict(pick, { strict: false });
    return { loaded: [...pick.keys()], kept: Object.keys(own).filter((k) => !pick.has(k)) };
  }

  protected override extraRepr(): string {
    const c = this.config;
    return `vocab=${c.vocabSize}, d=${c.dModel}, depth=${c.depth}, heads=${c.heads}, ff=${c.ff}, classes=${c.numClasses}, pooling=${c.pooling}`;
  }
}

// ---------- batching helpers (shared by the classification and masked-LM tasks) ----------

/**
 * Split `indices` into groups of similar length (sorted by length, longest first) so that each group's padded
 * size (count × longest) stays within `maxTokens` (a group holds at least one sequence). Less padding, less work.
 */
export function lengthGroups(indices: ArrayLike<number>, lengthOf: (i: number) => number, maxTokens: number): number[][] {
  const order = Array.from(indices).sort((a, b) => lengthOf(b) - lengthOf(a) || a - b);
  const groups: number[][] = [];
  let cur: number[] = [];
  for (const i of order) {
    const longest = cur.length ? lengthOf(cur[0]) : lengthOf(i);
    if (cur.length && (cur.length + 1) * longest > maxTokens) { groups.push(cur); cur = []; }
    cur.push(i);
  }
  if (cur.length) groups.push(cur);
  return groups;
}

/** Right-pad id sequences to the longest one: (B, T) int32 tensor and the raw ids. */
export function padIds(seqs: readonly ArrayLike<number>[], padId = 0): { ids: Int32Array; B: number; T: number } {
  const B = seqs.length, T = Math.max(1, ...seqs.map((s) => s.length));
  const ids = new Int32Array(B * T).fill(padId);                                       // (B, T)
  seqs.forEach((s, b) => { for (let t = 0; t < s.length; t++) ids[b * T + t] = s[t]; });
  return { ids, B, T };
}

export interface MaskingOptions {
  /** Fraction of eligible positions chosen as targets. */
  rate: number;
  maskId: number;
  /** Of the chosen positions, the fraction replaced by a random token / left unchanged (BERT: 0.1 / 0.1). */
  randomFraction?: number;
  keepFraction?: number;
  /** Random replacements are drawn from ids [firstRandomId, vocabSize) (skip the special tokens). */
  firstRandomId: number;
  vocabSize: number;
  /** Ids never chosen (specials such as [PAD], [CLS], [SEP]). */
  protect: ReadonlySet<number>;
  /** Choose at least one position per sequence that has an eligible one (so every sequence has a target). */
  atLeastOne?: boolean;
}

/**
 * BERT masking of a padded (B, T) id batch in place. Returns the flat positions b·T + t chosen as targets and
 * their original ids. Randomness comes from `random()` (a generator the caller seeds/saves).
 */
export function maskTokens(ids: Int32Array, B: number, T: number, o: MaskingOptions, random: () => number): { positions: Int32Array; targets: Int32Array } {
  const pos: number[] = [], tgt: number[] = [];
  const rnd = o.randomFraction ?? 0.1, keep = o.keepFraction ?? 0.1;
  for (let b = 0; b < B; b++) {
    const eligible: number[] = [];
    for (let t = 0; t < T; t++) if (!o.protect.has(ids[b * T + t])) eligible.push(b * T + t);
    const chosen = eligible.filter(() => random() < o.rate);
    if (o.atLeastOne && chosen.length === 0 && eligible.length > 0) chosen.push(eligible[Math.floor(random() * eligible.length)]);
    for (const p of chosen) {
      pos.push(p); tgt.push(ids[p]);
      const u = random();
      if (u < 1 - rnd - keep) ids[p] = o.maskId;
      else if (u < 1 - keep) ids[p] = o.firstRandomId + Math.floor(random() * (o.vocabSize - o.firstRandomId));
    }
  }
  return { positions: Int32Array.from(pos), targets: Int32Array.from(tgt) };
}

