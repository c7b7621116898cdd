// T5ForConditionalGeneration (HF transformers 4.44 modeling_t5.py), built from attnflow modules. Browser-safe.
//   Pre-norm blocks with T5LayerNorm (RMS: x·rsqrt(mean(x²) + eps)·weight, no mean, no bias); attention without
//   biases and without 1/√d scaling; relative-position buckets: layer 0 of each stack owns relative_attention_bias
//   (num_buckets, heads), the additive (1, H, Tq, Tk) bias it computes is shared by every layer of that stack —
//   bidirectional buckets in the encoder, causal ones in the decoder; cross-attention has no position bias.
//   Feed-forward: wi → act → wo, or gated (wi_0 → act) · wi_1 → wo ("gated-{act}"; "gated-gelu" means gelu_new).
//   Output: lm_head, or when tie_word_embeddings the shared embedding with the decoder output scaled by d_model^-0.5.
//
// HF names: shared.weight (V, D); {encoder,decoder}.block.i.layer.0.SelfAttention.{q,k,v,o}.weight ((H·d_kv, D) and
// (D, H·d_kv)); {encoder,decoder}.block.0.layer.0.SelfAttention.relative_attention_bias.weight (buckets, H);
// decoder.block.i.layer.1.EncDecAttention.{q,k,v,o}.weight; block.i.layer.{1 enc | 2 dec}.DenseReluDense.{wi | wi_0,
// wi_1, wo}.weight; block.i.layer.j.layer_norm.weight; {encoder,decoder}.final_layer_norm.weight; lm_head.weight (V, D)
// (left out of model.safetensors when tied, as are {encoder,decoder}.embed_tokens.weight).
//
// Config keys read (HF defaults in brackets): vocab_size [32128], d_model [512], d_kv [64], d_ff [2048], num_layers
// [6], num_decoder_layers [= num_layers], num_heads [8], relative_attention_num_buckets [32],
// relative_attention_max_distance [128], layer_norm_epsilon [1e-6], feed_forward_proj ["relu"],
// tie_word_embeddings [true], dropout_rate [0.1], pad_token_id [0], decoder_start_token_id [= pad], initializer_factor [1].
import { Tensor } from "../tensor.js";
import { ones } from "../creation.js";
import { noGrad } from "../autograd.js";
import { Module, Parameter } from "../nn/module.js";
import { Embedding, Linear, ModuleList } from "../nn/layers.js";
import { normal_ } from "../nn/init.js";
import * as F from "../functional.js";
import {
  activationFn, ACTIVATION_NAMES, applyCheckpointRules, attend, checkIds, ConfigReader, paddingFromMask, pickArchitecture, type Activation,
} from "./common.js";
import { EncoderDecoderLM, KVCache, type DecodeArgs, type DecoderOut, type EncoderMemory, type EncoderOut, type LayerCaches } from "./seq2seq-common.js";
import { HFImportError, type HFConfig, type HFFamily, type HFInputs, type HFModel } from "./types.js";

interface T5Spec {
  vocab: number; dModel: number; dKv: number; dFf: number; heads: number;
  encoderLayers: number; decoderLayers: number;
  buckets: number; maxDistance: number; eps: number;
  act: Activation; gated: boolean; tie: boolean;
  padId: number | null; decoderStartId: number; initFactor: number;
  /** dropout_rate: on embeddings, sublayer outputs, attention probabilities, inside the feed-forward, after the final norm. */
  dropout: number;
}

/**
 * HF's T5Attention._relative_position_bucket for one relative position (key − query), in float32 as torch computes
 * it: small distances get a bucket each, larger ones log-spaced buckets up to maxDistance; bidirectional halves the
 * buckets between past (and the query itself) and future.
 */
export function t5RelativePositionBucket(rel: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  const f = Math.fround;
  let bucket = 0, n = numBuckets, r: number;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (rel > 0) bucket += n;
    r = Math.abs(rel);
  } else r = -Math.min(rel, 0);
  const maxExact = Math.floor(n / 2);
  if (r < maxExact) return bucket + r;
  const logRatio = f(Math.log(f(r / maxExact)));                              // torch.log(float32)
  const scaled = f(f(logRatio / f(Math.log(maxDistance / maxExact))) * (n - maxExact));
  return bucket + Math.min(maxExact + Math.trunc(scaled), n - 1);
}

/** (Tq, Tk) bucket ids for queries at positions past.. and keys 0..Tk−1, as int32. */
function bucketTable(Tq: number, Tk: number, past: number, bidirectional: boolean, s: T5Spec): Tensor {
  const b = new Int32Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) b[i * Tk + j] = t5RelativePositionBucket(j - (past + i), bidirectional, s.buckets, s.maxDistance);
  return Tensor.fromArray(b, [Tq, Tk], "int32");
}

// ---------------------------------------------------------------- modules (HF names; see childName for the capitals)
/** Keeps HF's capitalised child names (SelfAttention, EncDecAttention, DenseReluDense) as they are. */
abstract class T5Module extends Module {
  protected override childName(field: string): string { return /^[A-Z]/.test(field) ? field : super.childName(field); }
}

class T5LayerNorm extends Module {
  weight: Tensor;
  constructor(d: number, readonly eps: number) { super(); this.weight = Parameter(ones([d])); }
  forward(x: Tensor): Tensor { return x.mul(x.square().mean(-1, true).add(this.eps).rsqrt()).mul(this.weight); }
}

class T5Attention extends Module {
  q: Linear; k: Linear; v: Linear; o: Linear;
  relativeAttentionBias: Embedding | null;
  constructor(readonly s: T5Spec, readonly kind: "self" | "cross", hasBias: boolean, readonly bidirectional: boolean) {
    super();
    const inner = s.heads * s.dKv;
    this.q = new Linear(s.dModel, inner, { bias: false }); this.k = new Linear(s.dModel, inner, { bias: false });
    this.v = new Linear(s.dModel, inner, { bias: false }); this.o = new Linear(inner, s.dModel, { bias: false });
    this.relativeAttentionBias = hasBias ? new Embedding(s.buckets, s.heads) : null;
  }
  /** compute_bias: (1, H, Tq, Tk) for queries at past.. over keys 0..Tk−1. */
  positionBias(Tq: number, Tk: number, past: number): Tensor {
    const table = this.relativeAttentionBias!.forward(bucketTable(Tq, Tk, past, this.bidirectional, this.s)); // (Tq, Tk, H)
    return table.permute(2, 0, 1).unsqueeze(0);
  }
  forward(h: Tensor, o: { kv?: Tensor; bias: Tensor | null; keyPadding: Tensor | null; causal: boolean; cache?: KVCache; wantWeights: boolean }):
    { out: Tensor; weights: Tensor | null } {
    const q = this.q.forward(h);                                               // (B, Tq, H·d_kv)
    let k: Tensor, v: Tensor;
    if (this.kind === "cross" && o.cache?.k) { k = o.cache.k; v = o.cache.v!; }
    else {
      const src = o.kv ?? h;
      k = this.k.forward(src); v = this.v.forward(src);
      if (o.cache) [k, v] = o.cache.append(k, v);                             // (B, Tk, H·d_kv)
    }
    const r = attend(this, { q, k, v, heads: this.s.heads, scale: 1, bias: o.bias ?? null, keyPadding: o.keyPadding, causal: o.causal,
      kind: this.kind, needWeights: o.wantWeights, dropout: this.s.dropout });
    return { out: this.o.forward(r.out), weights: r.weights };               // (B, Tq, D)
  }
}

class T5LayerSelfAttention extends T5Module {
  SelfAttention: T5Attention;
  layerNorm: T5LayerNorm;
  constructor(s: T5Spec, first: boolean, isDecoder: boolean) {
    super();
    this.SelfAttention = new T5Attention(s, "self", first, !isDecoder);
    this.layerNorm = new T5LayerNorm(s.dModel, s.eps);
  }
  forward(): never { throw new Error("T5LayerSelfAttention is driven by T5ForConditionalGeneration"); }
}

class T5LayerCrossAttention extends T5Module {
  EncDecAttention: T5Attention;
  layerNorm: T5LayerNorm;
  constructor(s: T5Spec) {
    super();
    this.EncDecAttention = new T5Attention(s, "cross", false, true);
    this.layerNorm = new T5LayerNorm(s.dModel, s.eps);
  }
  forward(): never { throw new Error("T5LayerCrossAttention is driven by T5ForConditionalGeneration"); }
}

/** T5DenseActDense (wi, wo) or T5DenseGatedActDense (wi_0, wi_1, wo). */
class T5Dense extends Module {
  wi: Linear | null; wi_0: Linear | null; wi_1: Linear | null; wo: Linear;
  constructor(readonly s: T5Spec) {
    super();
    const lin = (i: number, o: number) => new Linear(i, o, { bias: false });
    this.wi = s.gated ? null : lin(s.dModel, s.dFf);
    this.wi_0 = s.gated ? lin(s.dModel, s.dFf) : null;
    this.wi_1 = s.gated ? lin(s.dModel, s.dFf) : null;
    this.wo = lin(s.dFf, s.dModel);
  }
  forward(x: Tensor): Tensor {
    const hidden = this.wi ? this.s.act(this.wi.forward(x)) : this.s.act(this.wi_0!.forward(x)).mul(this.wi_1!.forward(x));
    return this.wo.forward(F.dropout(hidden, this.s.dropout, this.training));
  }
}

class T5LayerFF extends T5Module {
  DenseReluDense: T5Dense;
  layerNorm: T5LayerNorm;
  constructor(readonly s: T5Spec) { super(); this.DenseReluDense = new T5Dense(s); this.layerNorm = new T5LayerNorm(s.dModel, s.eps); }
  /** x + drop(DenseReluDense(layer_norm(x))) */
  forward(x: Tensor): Tensor { return x.add(F.dropout(this.DenseReluDense.forward(this.layerNorm.forward(x)), this.s.dropout, this.training)); }
}

class T5Block extends Module {
  layer: ModuleList;
  constructor(s: T5Spec, first: boolean, readonly isDecoder: boolean) {
    super();
    const parts: Module[] = [new T5LayerSelfAttention(s, first, isDecoder)];
    if (isDecoder) parts.push(new T5LayerCrossAttention(s));
    parts.push(new T5LayerFF(s));
    this.layer = new ModuleList(parts);
  }
  get selfLayer(): T5LayerSelfAttention { return this.layer.at(0) as T5LayerSelfAttention; }
  get crossLayer(): T5LayerCrossAttention { return this.layer.at(1) as T5LayerCrossAttention; }
  get ffLayer(): T5LayerFF { return this.layer.at(-1) as T5LayerFF; }
  forward(): never { throw new Error("T5Block is driven by T5ForConditionalGeneration"); }
}

class T5Stack extends Module {
  embedTokens: Embedding;
  block: ModuleList<T5Block>;
  finalLayerNorm: T5LayerNorm;
  constructor(s: T5Spec, embed: Embedding, n: number, readonly isDecoder: boolean) {
    super();
    this.embedTokens = embed;
    this.block = new ModuleList(Array.from({ length: n }, (_, i) => new T5Block(s, i === 0, isDecoder)));
    this.finalLayerNorm = new T5LayerNorm(s.dModel, s.eps);
  }
  forward(): never { throw new Error("T5Stack is driven by T5ForConditionalGeneration"); }
}

interface StackOut { last: Tensor; hidden: Tensor[]; self: Tensor[]; cross: Tensor[] }

// ---------------------------------------------------------------- the HF model
export class T5ForConditionalGeneration extends EncoderDecoderLM {
  readonly architecture = "T5ForConditionalGeneration";
  protected get vocab(): number { return this.spec.vocab; }
  protected get decoderLayerCount(): number { return this.spec.decoderLayers; }
  protected get decoderStartId(): number { return this.spec.decoderStartId; }
  shared: Embedding;
  encoder: T5Stack;
  decoder: T5Stack;
  lmHead: Linear | null;

  constructor(readonly config: HFConfig, readonly spec: T5Spec) {
    super();
    this.shared = new Embedding(spec.vocab, spec.dModel);
    this.encoder = new T5Stack(spec, this.shared, spec.encoderLayers, false);
    this.decoder = new T5Stack(spec, this.shared, spec.decoderLayers, true);
    this.lmHead = spec.tie ? null : new Linear(spec.dModel, spec.vocab, { bias: false });
    this.initWeights();
    this.eval(); // like from_pretrained: dropout off; train() for fine-tuning
  }

  /** HF's T5PreTrainedModel._init_weights (factor = initializer_factor). */
  private initWeights(): void {
    const s = this.spec, f = s.initFactor;
    noGrad(() => {
      normal_(this.shared.weight, 0, f);
      if (this.lmHead) normal_(this.lmHead.weight, 0, f);
      for (const m of this.modules()) {
        if (m instanceof T5Dense) {
          for (const w of [m.wi, m.wi_0, m.wi_1]) if (w) normal_(w.weight, 0, f * s.dModel ** -0.5);
          normal_(m.wo.weight, 0, f * s.dFf ** -0.5);
        } else if (m instanceof T5Attention) {
          normal_(m.q.weight, 0, f * (s.dModel * s.dKv) ** -0.5);
          for (const w of [m.k, m.v]) normal_(w.weight, 0, f * s.dModel ** -0.5);
          normal_(m.o.weight, 0, f * (s.heads * s.dKv) ** -0.5);
          if (m.relativeAttentionBias) normal_(m.relativeAttentionBias.weight, 0, f * s.dModel ** -0.5);
        }
      }
    });
  }

  tiedWeights(): string[] {
    return ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight", ...(this.spec.tie ? ["lm_head.weight"] : [])];
  }

  /**
   * Loads HF checkpoints as from_pretrained does: the tied copies (encoder/decoder embed_tokens, a tied lm_head) may be
   * present or absent, and the unused decoder.block.0.layer.1.EncDecAttention.relative_attention_bias that old
   * checkpoints carry is ignored.
   */
  override loadStateDict(sd: Record<string, Tensor> | Map<string, Tensor>, opts: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    const m = applyCheckpointRules(sd, this.stateDict(), {
      tied: { "shared.weight": this.tiedWeights() },
      ignore: ["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"],
    });
    return super.loadStateDict(m, opts);
  }

  /** Runs one stack over ids (B, T) at positions past.. (hidden[0] = embeddings, last entry after final_layer_norm). */
  private runStack(stack: T5Stack, ids: Tensor, o: { past: number; selfPad: Tensor | null; enc?: EncoderMemory; caches?: LayerCaches[]; wantWeights: boolean; onEmbeddings?: (x: Tensor) => Tensor }): StackOut {
    const drop = (x: Tensor) => F.dropout(x, this.spec.dropout, this.training);
    const w = stack.embedTokens.forward(ids);
    let h = drop(o.onEmbeddings ? o.onEmbeddings(w) : w);                              // (B, T, D)
    const [, T] = ids.shape, Tk = o.past + T;
    const hidden: Tensor[] = [], self: Tensor[] = [], cross: Tensor[] = [];
    // computed by block 0's relative_attention_bias, then shared by every block (HF passes position_bias along)
    const bias = stack.block.at(0).selfLayer.SelfAttention.positionBias(T, Tk, o.past); // (1, H, T, Tk)
    let i = 0;
    for (const blk of stack.block) {
      hidden.push(h);
      const cache = o.caches?.[i++];
      const sl = blk.selfLayer;
      const a = sl.SelfAttention.forward(sl.layerNorm.forward(h), { bias, keyPadding: o.selfPad, causal: stack.isDecoder, cache: cache?.self, wantWeights: o.wantWeights });
      h = h.add(drop(a.out));
      if (a.weights) self.push(a.weights);                                       // (B, H, T, Tk)
      if (stack.isDecoder) {
        const cl = blk.crossLayer;
        const c = cl.EncDecAttention.forward(cl.layerNorm.forward(h), { kv: o.enc!.last, bias: null, keyPadding: o.enc!.pad, causal: false, cache: cache?.cross, wantWeights: o.wantWeights });
        h = h.add(drop(c.out));
        if (c.weights) cross.push(c.weights);                                    // (B, H, T, Ts)
      }
      h = blk.ffLayer.forward(h);
    }
    h = drop(stack.finalLayerNorm.forward(h));
    hidden.push(h);
    return { last: h, hidden, self, cross };
  }

  /** Decoder output (B, T, D) → logits (B, T, V); tied: the shared embedding after rescaling by d_model^-0.5. */
  logits(h: Tensor): Tensor {
    return this.lmHead ? this.lmHead.forward(h) : F.linear(h.mul(this.spec.dModel ** -0.5), this.shared.weight);
  }

  encode(inputs: HFInputs, wantWeights: boolean, onEmbeddings?: (x: Tensor) => Tensor): EncoderOut {
    const ids = checkIds(inputs.inputIds, this.architecture, "inputIds", null, null, this.spec.vocab);
    const pad = paddingFromMask(inputs.attentionMask, ids, "attentionMask");
    const r = this.runStack(this.encoder, ids, { past: 0, selfPad: pad, wantWeights, onEmbeddings });
    return { last: r.last, pad, hidden: r.hidden, attentions: r.self };
  }

  decode(ids: Tensor, enc: EncoderMemory, o: DecodeArgs): DecoderOut { return this.runStack(this.decoder, ids, { ...o, enc }); }
}

/**
 * feed_forward_proj "{act}" or "gated-{act}" (HF: "gated-gelu" means gelu_new, kept for the original T5 v1.1 configs).
 * As in HF, dense_act_fn / is_gated_act written in config.json (save_pretrained writes both) take precedence.
 */
function parseFeedForward(c: ConfigReader): { act: Activation; gated: boolean } {
  const proj = c.str("feed_forward_proj", "relu");
  const parts = proj.split("-");
  if ((parts.length > 1 && parts[0] !== "gated") || parts.length > 2) {
    throw new HFImportError(`t5 config.json: "feed_forward_proj" = ${JSON.stringify(proj)} is not supported ` +
      `(supported: "{act}" or "gated-{act}" with act one of ${ACTIVATION_NAMES.join(", ")})`);
  }
  const derived = proj === "gated-gelu" ? "gelu_new" : parts[parts.length - 1];
  const name = c.str("dense_act_fn", derived);
  if (!ACTIVATION_NAMES.includes(name)) {
    const key = c.has("dense_act_fn") ? "dense_act_fn" : "feed_forward_proj";
    throw new HFImportError(`t5 config.json: "${key}" = ${JSON.stringify(c.config[key])} names an unsupported activation (supported: ${ACTIVATION_NAMES.join(", ")})`);
  }
  return { act: activationFn(name), gated: c.bool("is_gated_act", parts[0] === "gated") };
}

/** Reads and checks a T5 config.json. */
export function t5Spec(config: HFConfig): T5Spec {
  const c = new ConfigReader(config, "t5");
  const vocab = c.int("vocab_size", 32128);
  const encoderLayers = c.int("num_layers", 6);
  const padId = c.tokenId("pad_token_id", vocab, 0);
  return {
    vocab, dModel: c.int("d_model", 512), dKv: c.int("d_kv", 64), dFf: c.int("d_ff", 2048), heads: c.int("num_heads", 8),
    encoderLayers, decoderLayers: c.int("num_decoder_layers", encoderLayers),
    buckets: c.int("relative_attention_num_buckets", 32, 4), maxDistance: c.int("relative_attention_max_distance", 128, 1),
    eps: c.num("layer_norm_epsilon", 1e-6),
    ...parseFeedForward(c),
    tie: c.bool("tie_word_embeddings", true),
    padId, decoderStartId: c.tokenId("decoder_start_token_id", vocab, padId) ?? padId ?? 0,
    initFactor: c.num("initializer_factor", 1),
    dropout: c.prob("dropout_rate", 0.1),
  };
}

export const t5Family: HFFamily = {
  modelTypes: ["t5"],
  architectures: ["T5ForConditionalGeneration"],
  fromConfig(config: HFConfig, architecture?: string): HFModel {
    pickArchitecture("t5", this.architectures, config, architecture, "T5Model");
    return new T5ForConditionalGeneration(config, t5Spec(config));
  },
};
