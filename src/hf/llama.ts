// Llama family (Hugging Face LlamaForCausalLM, transformers 4.44.2 semantics) from attnflow nn modules:
//   h₀ = embed_tokens[ids]                                                        (B, T, E)
//   hₗ = hₗ₋₁ + o_proj(Attn(RoPE(q_proj·n), RoPE(k_proj·n), v_proj·n)), n = RMSNorm₁(hₗ₋₁)   H query / Hkv key-value heads
//   hₗ = hₗ + down_proj(SiLU(gate_proj·m) ⊙ up_proj·m), m = RMSNorm₂(hₗ)
//   logits = lm_head(RMSNorm_f(h_L))  (lm_head = embed_tokens when tie_word_embeddings)   (B, T, V)
// State-dict names are HF's, from the field names (see torchName):
//   model.embed_tokens.weight                       model.layers.<i>.input_layernorm.weight
//   model.layers.<i>.self_attn.{q,k,v,o}_proj.{weight,bias}   model.layers.<i>.post_attention_layernorm.weight
//   model.layers.<i>.mlp.{gate,up,down}_proj.{weight,bias}    model.norm.weight      lm_head.weight (absent when tied)
// Padding follows HF: a plain forward uses positions 0..T−1 (no shift for left padding); generate() derives them
// from the mask (cumsum − 1, padding at 1); a query that may see no key (left padding) averages all values, as HF's
// eager attention does with its finite minimum mask. Browser-safe.
import { Tensor } from "../tensor.js";
import { noGrad } from "../autograd.js";
import { shapeStr } from "../shape.js";
import * as F from "../functional.js";
import { contiguousData } from "../ops/movement.js";
import { Module } from "../nn/module.js";
import { Embedding, Linear, ModuleList, RMSNorm } from "../nn/layers.js";
import { normal_ } from "../nn/init.js";
import { GroupedQueryAttention } from "../nn/gqa.js";
import type { RopeScaling } from "../nn/rotary.js";
import { KVCache } from "../models/generate.js";
import { HFImportError, type HFConfig, type HFDecodingOptions, type HFDecodingSession, type HFFamily, type HFForwardOptions,
  type HFGenerateOptions, type HFGenerateResult, type HFInputs, type HFModel, type HFOutputs } from "./types.js";
import { greedyGenerate } from "./generation.js";

/** The config fields the model reads, validated. */
export interface LlamaSettings {
  vocabSize: number; hiddenSize: number; intermediateSize: number; layers: number; heads: number; kvHeads: number;
  ropeTheta: number; ropeScaling: RopeScaling | null; eps: number; tied: boolean; attentionBias: boolean; mlpBias: boolean;
  attentionDropout: number; initializerRange: number; padTokenId: number | null;
  /** Sliding-window attention (Mistral's sliding_window: query i sees keys i − W < j ≤ i); null for Llama (full causal). */
  slidingWindow?: number | null;
}

const ROPE_TYPES = ["default", "linear", "llama3"];

function fail(key: string, msg: string): never { throw new HFImportError(`Llama config: ${key} ${msg}`); }

function int(c: HFConfig, key: string, dflt?: number): number {
  const v = c[key] ?? dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) fail(key, `must be a positive integer, got ${JSON.stringify(c[key])}`);
  return v;
}
function num(c: HFConfig, key: string, dflt: number, ok: (x: number) => boolean, want: string): number {
  const v = c[key] ?? dflt;
  if (typeof v !== "number" || !ok(v)) fail(key, `must be ${want}, got ${JSON.stringify(c[key])}`);
  return v;
}
function bool(c: HFConfig, key: string, dflt: boolean): boolean {
  const v = c[key] ?? dflt;
  if (typeof v !== "boolean") fail(key, `must be true or false, got ${JSON.stringify(c[key])}`);
  return v;
}

function ropeScaling(c: HFConfig): RopeScaling | null {
  const rs = c.rope_scaling;
  if (rs === undefined || rs === null) return null;
  if (typeof rs !== "object" || Array.isArray(rs)) fail("rope_scaling", `must be null or an object, got ${JSON.stringify(rs)}`);
  const r = rs as Record<string, unknown>, type = r.rope_type ?? r.type;
  if (typeof type !== "string" || !ROPE_TYPES.includes(type)) {
    fail("rope_scaling.rope_type", `${JSON.stringify(type)} is not supported (supported: ${ROPE_TYPES.join(", ")}; dynamic, yarn and longrope are not)`);
  }
  const pos = (k: string) => {
    const v = r[k];
    if (typeof v !== "number" || !(v > 0)) fail(`rope_scaling.${k}`, `must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  if (type === "default") return null;
  if (type === "linear") return { type, factor: pos("factor") };
  const lo = pos("low_freq_factor"), hi = pos("high_freq_factor");
  if (!(hi > lo)) fail("rope_scaling.high_freq_factor", `must exceed low_freq_factor (${lo}), got ${hi}`);
  return { type: "llama3", factor: pos("factor"), lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: pos("original_max_position_embeddings") };
}

/** Read and check a Llama config.json; unsupported options are HFImportErrors naming the key. */
export function llamaSettings(c: HFConfig): LlamaSettings {
  if (c.model_type !== undefined && c.model_type !== "llama") fail("model_type", `must be "llama", got ${JSON.stringify(c.model_type)}`);
  const hiddenSize = int(c, "hidden_size"), heads = int(c, "num_attention_heads"), kvHeads = int(c, "num_key_value_heads", heads);
  if (hiddenSize % heads !== 0) fail("hidden_size", `${hiddenSize} must be divisible by num_attention_heads ${heads}`);
  if (heads % kvHeads !== 0) fail("num_key_value_heads", `${kvHeads} must divide num_attention_heads ${heads}`);
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== hiddenSize / heads) {
    fail("head_dim", `${JSON.stringify(c.head_dim)} is not supported (only hidden_size / num_attention_heads = ${hiddenSize / heads}, as in transformers 4.44)`);
  }
  const act = c.hidden_act ?? "silu";
  if (act !== "silu" && act !== "swish") fail("hidden_act", `${JSON.stringify(act)} is not supported (supported: silu, swish)`);
  int(c, "pretraining_tp", 1);   // any value: HF's tensor-parallel slicing computes the same products
  const pad = c.pad_token_id;
  return {
    vocabSize: int(c, "vocab_size"), hiddenSize, intermediateSize: int(c, "intermediate_size"), layers: int(c, "num_hidden_layers"),
    heads, kvHeads,
    ropeTheta: num(c, "rope_theta", 10000, (x) => x > 0 && Number.isFinite(x), "a positive number"), ropeScaling: ropeScaling(c),
    eps: num(c, "rms_norm_eps", 1e-6, (x) => x > 0, "a positive number"),
    tied: bool(c, "tie_word_embeddings", false), attentionBias: bool(c, "attention_bias", false), mlpBias: bool(c, "mlp_bias", false),
    attentionDropout: num(c, "attention_dropout", 0, (x) => x >= 0 && x < 1, "in [0, 1)"),
    initializerRange: num(c, "initializer_range", 0.02, (x) => x >= 0, "a number >= 0"),
    padTokenId: typeof pad === "number" && Number.isInteger(pad) ? pad : null,
  };
}

/** gate/up/down: down_proj(SiLU(gate_proj(x)) ⊙ up_proj(x)), (B, T, E) → (B, T, E). */
export class LlamaMLP extends Module {
  gateProj: Linear; upProj: Linear; downProj: Linear;
  constructor(s: LlamaSettings) {
    super();
    this.gateProj = new Linear(s.hiddenSize, s.intermediateSize, { bias: s.mlpBias });
    this.upProj = new Linear(s.hiddenSize, s.intermediateSize, { bias: s.mlpBias });
    this.downProj = new Linear(s.intermediateSize, s.hiddenSize, { bias: s.mlpBias });
  }
  forward(x: Tensor): Tensor { return this.downProj.forward(F.silu(this.gateProj.forward(x)).mul(this.upProj.forward(x))); }
}

interface LayerContext { mask: Tensor | null; positions: Tensor; cache: KVCache | null; layer: number; needWeights: boolean }

export class LlamaDecoderLayer extends Module {
  selfAttn: GroupedQueryAttention; mlp: LlamaMLP; inputLayernorm: RMSNorm; postAttentionLayernorm: RMSNorm;
  constructor(s: LlamaSettings) {
    super();
    this.selfAttn = new GroupedQueryAttention(s.hiddenSize, s.heads, {
      numKvHeads: s.kvHeads, bias: s.attentionBias, position: "rope", ropeBase: s.ropeTheta, ropeScaling: s.ropeScaling,
      dropout: s.attentionDropout, maskedRows: "uniform", window: s.slidingWindow ?? null,
    });
    this.mlp = new LlamaMLP(s);
    this.inputLayernorm = new RMSNorm(s.hiddenSize, { eps: s.eps });
    this.postAttentionLayernorm = new RMSNorm(s.hiddenSize, { eps: s.eps });
  }
  /** x (B, T, E) → (B, T, E) and this layer's attention probabilities (B, H, T, Tk) when asked. */
  forward(x: Tensor, ctx: LayerContext): { out: Tensor; weights: Tensor | null } {
    const a = this.selfAttn.forward(this.inputLayernorm.forward(x), {
      attentionMask: ctx.mask, positionIds: ctx.positions, isCausal: true, cache: ctx.cache, layer: ctx.layer, needWeights: ctx.needWeights,
    });
    const h = x.add(a.out);
    return { out: h.add(this.mlp.forward(this.postAttentionLayernorm.forward(h))), weights: a.weights };
  }
}

export class LlamaModel extends Module {
  embedTokens: Embedding; layers: ModuleList<LlamaDecoderLayer>; norm: RMSNorm;
  constructor(s: LlamaSettings) {
    super();
    this.embedTokens = new Embedding(s.vocabSize, s.hiddenSize, s.padTokenId !== null && s.padTokenId >= 0 && s.padTokenId < s.vocabSize ? { paddingIdx: s.padTokenId } : {});
    this.layers = new ModuleList(Array.from({ length: s.layers }, () => new LlamaDecoderLayer(s)));
    this.norm = new RMSNorm(s.hiddenSize, { eps: s.eps });
  }
  forward(): never { throw new Error("LlamaModel: call LlamaForCausalLM.forward"); }
}

export class LlamaForCausalLM extends Module implements HFModel {
  readonly architecture: string = "LlamaForCausalLM";
  readonly settings: LlamaSettings;
  model: LlamaModel;
  lmHead: Linear | null;

  /** settings: a family built on Llama (Mistral) passes its own checked settings. */
  constructor(readonly config: HFConfig, settings?: LlamaSettings) {
    super();
    const s = (this.settings = settings ?? llamaSettings(config));
    this.model = new LlamaModel(s);
    this.lmHead = s.tied ? null : new Linear(s.hiddenSize, s.vocabSize, { bias: false });
    this.initWeights();
  }

  /** HF's _init_weights: N(0, initializer_range²) for Linear and Embedding weights, zero biases and padding row, RMSNorm 1. */
  initWeights(): void {
    const std = this.settings.initializerRange;
    noGrad(() => {
      for (const m of this.modules()) {
        if (m instanceof Linear) { normal_(m.weight, 0, std); m.bias?.storage.data.fill(0); }
        if (m instanceof Embedding) {
          normal_(m.weight, 0, std);
          const p = m.opts.paddingIdx;
          if (p !== undefined) m.weight.storage.data.fill(0, p * m.embeddingDim, (p + 1) * m.embeddingDim);
        }
      }
    });
  }

  tiedWeights(): string[] { return this.settings.tied ? ["lm_head.weight"] : []; }

  private logits(h: Tensor): Tensor {
    return this.lmHead ? this.lmHead.forward(h) : F.linear(h, this.model.embedTokens.weight);      // (B, T, V)
  }

  /** Checked (B, T) int32 ids and the optional mask / positions. */
  private checkInputs(inputs: HFInputs, what: string): { ids: Tensor; B: number; T: number } {
    const ids = inputs.inputIds;
    if (!ids) throw new Error(`LlamaForCausalLM.${what}: inputIds is required`);
    if (ids.ndim !== 2 || ids.dtype !== "int32") throw new Error(`LlamaForCausalLM.${what}: inputIds must be int32 (B, T), got ${ids.dtype} ${shapeStr(ids.shape)}`);
    const [B, T] = ids.shape;
    for (const [t, n] of [[inputs.attentionMask, "attentionMask"], [inputs.positionIds, "positionIds"]] as const) {
      if (t && (t.ndim !== 2 || t.shape[0] !== B || t.shape[1] !== T)) {
        throw new Error(`LlamaForCausalLM.${what}: ${n} ${shapeStr(t.shape)} does not match inputIds ${shapeStr(ids.shape)}`);
      }
    }
    return { ids, B, T };
  }

  /** Run the decoder stack on ids (B, t) at `positions`, appending to `cache` when given; returns HF-named outputs. */
  private run(ids: Tensor, mask: Tensor | null, positions: Tensor, cache: KVCache | null, opts: HFForwardOptions, lastOnly = false): HFOutputs {
    let h = this.model.embedTokens.forward(ids);                                                     // (B, t, E)
    if (opts.onEmbeddings) h = opts.onEmbeddings(h);
    const hidden: Tensor[] = [], attns: Tensor[] = [];
    let i = 0;
    for (const layer of this.model.layers) {
      if (opts.outputHiddenStates) hidden.push(h);
      const r = layer.forward(h, { mask, positions, cache, layer: i++, needWeights: !!opts.outputAttentions });
      h = r.out;
      if (opts.outputAttentions && r.weights) attns.push(r.weights);
    }
    if (cache) cache.advance(ids.shape[1]);
    if (lastOnly) h = h.narrow(1, h.shape[1] - 1, 1);                                               // generation scores the last position only
    h = this.model.norm.forward(h);
    if (opts.outputHiddenStates) hidden.push(h);                                                     // HF: the last entry is after the final norm
    return { logits: this.logits(h), lastHiddenState: h, ...(opts.outputHiddenStates ? { hiddenStates: hidden } : {}),
      ...(opts.outputAttentions ? { attentions: attns } : {}) };
  }

  /** HF's forward: logits (B, T, V); positions default to 0..T−1 whatever the padding (as HF's plain forward). */
  forward(inputs: HFInputs, opts: HFForwardOptions = {}): HFOutputs {
    const { ids, T } = this.checkInputs(inputs, "forward");
    const positions = inputs.positionIds ?? Tensor.fromArray(Int32Array.from({ length: T }, (_, i) => i), [1, T]);
    return this.run(ids, inputs.attentionMask ?? null, positions, null, opts);
  }

  /** Greedy decoding (HF's generate(do_sample=False)); sampling and beam search: generate() in src/hf/generation.ts. */
  generate(inputs: HFInputs, opts: HFGenerateOptions): HFGenerateResult { return greedyGenerate(this, inputs, opts); }

  /** An empty KV cache for `batch` sequences of up to `maxLength` positions (keys/values of the KV heads only). */
  createCache(batch: number, maxLength: number): KVCache {
    const s = this.settings;
    return new KVCache(s.layers, batch, s.kvHeads, s.hiddenSize / s.heads, maxLength);
  }

  /**
   * HF's forward(input_ids, past_key_values=cache, use_cache=True), inside noGrad(): ids (B, t) at positions
   * cache.length.. (or inputs.positionIds (B, t)) attend to everything cached, are appended, and the cache advances.
   * attentionMask, when given, covers cached + new positions (B, cache.length + t). lastOnly: logits of the last
   * position only (B, 1, V), as generate() scores them.
   */
  forwardWithCache(inputs: HFInputs, cache: KVCache, opts: { lastOnly?: boolean } = {}): HFOutputs {
    const ids = inputs.inputIds;
    if (!ids || ids.ndim !== 2 || ids.dtype !== "int32") throw new Error(`LlamaForCausalLM.forwardWithCache: inputIds must be int32 (B, t), got ${ids ? `${ids.dtype} ${shapeStr(ids.shape)}` : "nothing"}`);
    const [B, t] = ids.shape, P = cache.length;
    if (cache.batch !== B) throw new Error(`LlamaForCausalLM.forwardWithCache: the cache holds ${cache.batch} sequences, inputIds ${shapeStr(ids.shape)} has ${B}`);
    const m = inputs.attentionMask ?? null, pos = inputs.positionIds ?? null;
    if (m && (m.ndim !== 2 || m.shape[0] !== B || m.shape[1] !== P + t)) {
      throw new Error(`LlamaForCausalLM.forwardWithCache: attentionMask ${shapeStr(m.shape)} must be (${B}, ${P + t}) (cached + new positions; inputIds ${shapeStr(ids.shape)})`);
    }
    if (pos && (pos.ndim !== 2 || pos.shape[0] !== B || pos.shape[1] !== t)) {
      throw new Error(`LlamaForCausalLM.forwardWithCache: positionIds ${shapeStr(pos.shape)} does not match inputIds ${shapeStr(ids.shape)}`);
    }
    const positions = pos ?? Tensor.fromArray(Int32Array.from({ length: B * t }, (_, i) => P + (i % t)), [B, t]);
    return noGrad(() => this.run(ids, m, positions, cache, {}, opts.lastOnly ?? false));
  }

  /**
   * Token-by-token decoding with a preallocated KV cache, fed as HF generate() feeds Llama: positions cumsum(mask) − 1
   * (1 on padding), each new token appended with mask 1.
   */
  startDecoding(inputs: HFInputs, opts: HFDecodingOptions): HFDecodingSession {
    const { ids, B, T } = this.checkInputs(inputs, "generate");
    const n = opts.maxNewTokens;
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`LlamaForCausalLM.generate: maxNewTokens must be an integer >= 0, got ${n}`);
    const V = this.settings.vocabSize;
    const mask = inputs.attentionMask ? Int32Array.from(contiguousData(inputs.attentionMask.ne(0).int()) as Int32Array) : new Int32Array(B * T).fill(1);
    const idData = Array.from(contiguousData(ids) as Int32Array);
    let masks = Array.from({ length: B }, (_, b) => Array.from(mask.slice(b * T, (b + 1) * T)));
    const cache = new KVCache(this.settings.layers, B, this.settings.kvHeads, this.settings.hiddenSize / this.settings.heads, Math.max(1, T + n));
    let started = false;
    return {
      batch: B, prefix: Array.from({ length: B }, (_, b) => idData.slice(b * T, (b + 1) * T)),
      step: (tokens) => noGrad(() => {
        let next = ids, t = T;
        if (started) {
          if (!tokens || tokens.length !== B) throw new HFImportError(`LlamaForCausalLM: step() needs ${B} tokens, got ${tokens?.length ?? "none"}`);
          for (const m of masks) m.push(1);
          next = Tensor.fromArray(Int32Array.from(tokens), [B, 1]); t = 1;
        }
        started = true;
        const m = Tensor.fromArray(Int32Array.from(masks.flat()), [B, masks[0].length]);
        return this.run(next, m, generatePositions(masks, t), cache, {}, true).logits!.reshape([B, V]).contiguous();   // (B, 1, V) → (B, V)
      }),
      reorder: (rows) => { cache.reorder(rows); masks = rows.map((r) => [...masks[r]]); },
      dispose: () => cache.dispose(),
    };
  }
}

/** The positions of the last `t` tokens: cumsum(mask) − 1, and 1 where the mask is 0 (HF prepare_inputs_for_generation). */
function generatePositions(masks: number[][], t: number): Tensor {
  const B = masks.length, out = new Int32Array(B * t);
  masks.forEach((m, b) => {
    let c = 0;
    m.forEach((v, j) => {
      c += v;
      if (j >= m.length - t) out[b * t + j - (m.length - t)] = v === 0 ? 1 : c - 1;
    });
  });
  return Tensor.fromArray(out, [B, t]);
}

export const llamaFamily: HFFamily = {
  modelTypes: ["llama"],
  architectures: ["LlamaForCausalLM"],
  fromConfig(config: HFConfig, architecture?: string): HFModel {
    const arch = architecture ?? config.architectures?.[0] ?? "LlamaForCausalLM";
    if (arch !== "LlamaForCausalLM") throw new HFImportError(`Llama: architecture ${JSON.stringify(arch)} is not supported (supported: LlamaForCausalLM)`);
    return new LlamaForCausalLM(config);
  },
};
