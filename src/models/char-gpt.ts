// CharGPT: a GPT-2-style decoder-only language model (Radford et al. 2019) built from attnflow's nn blocks.
//   h₀ = tokEmb[ids] + posEmb[0..T)                                   (B, T, D)
//   hₗ = hₗ₋₁ + Dropout(MHA_causal(LN₁(hₗ₋₁)))                         pre-norm blocks
//   hₗ = hₗ   + Dropout(W₂·GELU(W₁·LN₂(hₗ)))
//   logits = LN_f(h_L) · Wₕᵀ, Wₕ = tokEmb (tied) or a separate head   (B, T, V)
// The full forward uses nn.MultiheadAttention with isCausal (fused causal kernel; captureAttention records every
// block as "blocks.<i>.attn"). forwardWithCache() runs the same weights one step at a time with a KVCache and gives
// the same logits. Browser-safe.
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import * as F from "../functional.js";
import { defaultGenerator, type Generator } from "../random.js";
import { Module } from "../nn/module.js";
import { Dropout, Embedding, LayerNorm, Linear, ModuleList } from "../nn/layers.js";
import { MultiheadAttention } from "../nn/attention.js";
import { LearnedPositionalEmbedding } from "../nn/positional.js";
import { normal_, zeros_ } from "../nn/init.js";
import { KVCache, type CachedDecoder } from "./generate.js";

export interface CharGPTConfig {
  vocabSize: number;
  /** Context length (number of learned positions). */
  blockSize: number;
  dModel: number;
  nHeads: number;
  nLayers: number;
  /** MLP width (default 4·dModel). */
  dimFeedforward?: number;
  /** Dropout on embeddings, attention weights and residual branches (default 0.1). */
  dropout?: number;
  /** Output head shares the token embedding matrix (default true). */
  tieWeights?: boolean;
  /** Biases in Linear / LayerNorm (default true). */
  bias?: boolean;
  layerNormEps?: number;
}

/** Fills in defaults and rejects impossible configurations with a message naming the field. */
export function resolveCharGPTConfig(c: CharGPTConfig): Required<CharGPTConfig> {
  const r: Required<CharGPTConfig> = {
    vocabSize: c.vocabSize, blockSize: c.blockSize, dModel: c.dModel, nHeads: c.nHeads, nLayers: c.nLayers,
    dimFeedforward: c.dimFeedforward ?? 4 * c.dModel, dropout: c.dropout ?? 0.1, tieWeights: c.tieWeights ?? true, bias: c.bias ?? true,
    layerNormEps: c.layerNormEps ?? 1e-5,
  };
  for (const k of ["vocabSize", "blockSize", "dModel", "nHeads", "nLayers", "dimFeedforward"] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new RangeError(`CharGPT config: ${k} must be a positive integer, got ${String(r[k])}`);
  }
  if (r.dModel % r.nHeads !== 0) throw new RangeError(`CharGPT config: dModel ${r.dModel} must be divisible by nHeads ${r.nHeads}`);
  if (!(r.dropout >= 0 && r.dropout < 1)) throw new RangeError(`CharGPT config: dropout must be in [0, 1), got ${r.dropout}`);
  if (typeof r.tieWeights !== "boolean" || typeof r.bias !== "boolean") throw new TypeError("CharGPT config: tieWeights and bias must be booleans");
  if (!(r.layerNormEps > 0)) throw new RangeError(`CharGPT config: layerNormEps must be > 0, got ${r.layerNormEps}`);
  return r;
}

/** One pre-norm decoder block: causal self-attention and a GELU MLP, each on a residual branch. */
export class GPTBlock extends Module {
  ln1: LayerNorm;
  attn: MultiheadAttention;
  ln2: LayerNorm;
  fc: Linear;
  proj: Linear;
  dropout: Dropout;

  constructor(readonly cfg: Required<CharGPTConfig>, gen?: Generator) {
    super();
    const { dModel: D, nHeads: H, dimFeedforward: dFF, bias, layerNormEps: eps, dropout: p } = cfg;
    this.ln1 = new LayerNorm(D, { eps, bias });
    this.attn = new MultiheadAttention(D, H, { batchFirst: true, dropout: p, bias });
    this.ln2 = new LayerNorm(D, { eps, bias });
    this.fc = new Linear(D, dFF, { bias, generator: gen });
    this.proj = new Linear(dFF, D, { bias, generator: gen });
    this.dropout = new Dropout(p);
  }

  private mlp(x: Tensor): Tensor {
    return this.dropout.forward(this.proj.forward(F.gelu(this.fc.forward(this.ln2.forward(x)))));   // (B, T, D)
  }

  /** x (B, T, D) → (B, T, D); position i attends to positions ≤ i. */
  forward(x: Tensor): Tensor {
    const h = this.ln1.forward(x);
    const [a] = this.attn.forward(h, h, h, { isCausal: true, needWeights: false });                  // (B, T, D)
    const y = x.add(this.dropout.forward(a));
    return y.add(this.mlp(y));
  }

  /**
   * x (B, t, D) holds positions P..P+t−1 where P = cache.length; keys/values of earlier positions come from the
   * cache. Same parameters as forward(): Q, K, V = LN₁(x)·W_inᵀ + b_in split in three, heads (B, H, ·, Dh).
   */
  forwardCached(x: Tensor, cache: KVCache, layer: number): Tensor {
    const a = this.attn, E = a.embedDim, H = a.numHeads, Dh = a.headDim;
    if (a.prunedHeads.size) throw new Error("CharGPT.forwardCached: cached generation of a model with pruned heads (nn.pruneHeads) is not supported");
    const [B, t] = x.shape, P = cache.length;
    const qkv = a.inProjection(this.ln1.forward(x));                                                 // (B, t, 3E)
    const heads = (z: Tensor) => z.reshape([B, t, H, Dh]).permute([0, 2, 1, 3]);                     // (B, H, t, Dh)
    const [q, k, v] = qkv.split(E, -1).map(heads);
    const kv = cache.append(layer, k, v);                                                             // (B, H, P+t, Dh)
    // Query i sits at absolute position P+i and may see keys 0..P+i: bottom-right-aligned causality. With P = 0 this
    // is the kernel's top-left causal mask; a single new query sees everything; otherwise an additive (t, P+t) mask.
    let mask: Tensor | null = null;
    if (P > 0 && t > 1) {
      const m = new Float32Array(t * (P + t));
      for (let i = 0; i < t; i++) m.fill(-Infinity, i * (P + t) + P + i + 1, (i + 1) * (P + t));
      mask = Tensor.fromArray(m, [t, P + t]);
    }
    const o = F.scaledDotProductAttention(q, kv.k, kv.v, { causal: P === 0 && t > 1, attnMask: mask });  // (B, H, t, Dh)
    const y = x.add(this.dropout.forward(a.outProj.forward(o.permute([0, 2, 1, 3]).reshape([B, t, E]))));
    return y.add(this.mlp(y));
  }
}

export class CharGPT extends Module implements CachedDecoder {
  readonly config: Required<CharGPTConfig>;
  tokEmb: Embedding;
  posEmb: LearnedPositionalEmbedding;
  drop: Dropout;
  blocks: ModuleList<GPTBlock>;
  lnF: LayerNorm;
  head: Linear | null;

  /** `generator` seeds the GPT-2 initialisation (default: the global generator). */
  constructor(config: CharGPTConfig, generator?: Generator) {
    super();
    const c = (this.config = resolveCharGPTConfig(config));
    const g = generator ?? defaultGenerator;
    // nn.MultiheadAttention and the position table draw their (soon overwritten) initial values from the global
    // generator; restore it so that building a model never disturbs the dropout stream.
    const saved = defaultGenerator.state();
    this.tokEmb = new Embedding(c.vocabSize, c.dModel, { generator: g });
    this.posEmb = new LearnedPositionalEmbedding(c.blockSize, c.dModel);
    this.drop = new Dropout(c.dropout);
    this.blocks = new ModuleList(Array.from({ length: c.nLayers }, () => new GPTBlock(c, g)));
    this.lnF = new LayerNorm(c.dModel, { eps: c.layerNormEps, bias: c.bias });
    this.head = c.tieWeights ? null : new Linear(c.dModel, c.vocabSize, { bias: false, generator: g });
    if (generator) defaultGenerator.setState(saved);
    this.initWeights(g);
  }

  get maxLength(): number { return this.config.blockSize; }

  /** GPT-2 initialisation: N(0, 0.02²) weights, zero biases, residual output projections scaled by 1/√(2·nLayers). */
  initWeights(g: Generator): void {
    const std = 0.02, projStd = 0.02 / Math.sqrt(2 * this.config.nLayers);
    normal_(this.tokEmb.weight, 0, std, g);
    normal_(this.posEmb.weight, 0, std, g);
    for (const b of this.blocks) {
      normal_(b.attn.inProjWeight!, 0, std, g);
      normal_(b.attn.outProj.weight, 0, projStd, g);
      normal_(b.fc.weight, 0, std, g);
      normal_(b.proj.weight, 0, projStd, g);
      for (const t of [b.attn.inProjBias, b.attn.outProj.bias, b.fc.bias, b.proj.bias]) if (t) zeros_(t);
    }
    if (this.head) normal_(this.head.weight, 0, std, g);
  }

  private checkIds(ids: Tensor, offset: number, what: string): void {
    if (ids.dtype !== "int32" || ids.ndim !== 2) throw new Error(`CharGPT.${what}: ids must be int32 (B, T), got ${ids.dtype} ${shapeStr(ids.shape)}`);
    const T = ids.shape[1];
    if (T < 1) throw new Error(`CharGPT.${what}: empty sequence ${shapeStr(ids.shape)}`);
    if (offset + T > this.config.blockSize) {
      throw new RangeError(`CharGPT.${what}: positions ${offset}..${offset + T - 1} exceed blockSize ${this.config.blockSize}`);
    }
  }

  /** Token + position embeddings of ids (B, T) at positions offset.. → (B, T, D). */
  embed(ids: Tensor, offset = 0, onEmbeddings?: (x: Tensor) => Tensor): Tensor {
    let tok = this.tokEmb.forward(ids);                                                    // (B, T, D)
    if (onEmbeddings) {
      tok = onEmbeddings(tok);
      if (tok.ndim !== 3 || tok.shape[2] !== this.config.dModel) throw new Error(`CharGPT: onEmbeddings must return (B, T, ${this.config.dModel}), got ${shapeStr(tok.shape)}`);
    }
    return this.drop.forward(this.posEmb.forward(tok, offset));
  }

  /** Final norm and output projection: h (B, T, D) → logits (B, T, V). */
  logits(h: Tensor): Tensor {
    const n = this.lnF.forward(h);
    return this.head ? this.head.forward(n) : F.linear(n, this.tokEmb.weight);
  }

  /** ids (B, T) int32, T ≤ blockSize → logits (B, T, V); `onEmbeddings` sees/replaces the token embeddings (B, T, D). */
  forward(ids: Tensor, o: { onEmbeddings?: (x: Tensor) => Tensor } = {}): Tensor {
    this.checkIds(ids, 0, "forward");
    let h = this.embed(ids, 0, o.onEmbeddings);
    for (const b of this.blocks) h = b.forward(h);
    return this.logits(h);
  }

  /** ids (B, t) at positions cache.length.. → logits (B, t, V); fills and advances the cache. */
  forwardWithCache(ids: Tensor, cache: KVCache): Tensor {
    this.checkIds(ids, cache.length, "forwardWithCache");
    const c = this.config;
    if (cache.layers !== c.nLayers || cache.heads !== c.nHeads || cache.headDim !== c.dModel / c.nHeads || cache.batch !== ids.shape[0]) {
      throw new Error(`CharGPT.forwardWithCache: cache (layers ${cache.layers}, batch ${cache.batch}, heads ${cache.heads}, headDim ${cache.headDim}) ` +
        `does not fit the model (layers ${c.nLayers}, batch ${ids.shape[0]}, heads ${c.nHeads}, headDim ${c.dModel / c.nHeads})`);
    }
    let h = this.embed(ids, cache.length);
    let i = 0;
    for (const b of this.blocks) h = b.forwardCached(h, cache, i++);
    cache.advance(ids.shape[1]);
    return this.logits(h);
  }

  createCache(batch: number): KVCache {
    const c = this.config;
    return new KVCache(c.nLayers, batch, c.nHeads, c.dModel / c.nHeads, c.blockSize);
  }

  /** Mean next-token cross-entropy (nats) of x (B, T) predicting y (B, T); `ignoreIndex` targets are skipped. */
  lossOn(x: Tensor, y: Tensor, ignoreIndex = -100): Tensor {
    const logits = this.forward(x);                                                        // (B, T, V)
    return F.crossEntropy(logits.reshape([-1, this.config.vocabSize]), y.reshape([-1]), { ignoreIndex });
  }

  protected override extraRepr(): string {
    const c = this.config;
    return `vocab=${c.vocabSize}, blockSize=${c.blockSize}, dModel=${c.dModel}, heads=${c.nHeads}, layers=${c.nLayers}, tied=${c.tieWeights}`;
  }
}
