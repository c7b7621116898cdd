// The encoder–decoder that HF's Marian and BART share (modeling_marian.py is "Copied from ... Bart" almost line for
// line): post-norm layers, q/k/v/out projections with biases and q scaled by head_dim^-0.5, a causal decoder with
// cross-attention, lm_head (tied to the shared embedding or not) + the final_logits_bias buffer. What differs is
// passed in (BartLikeSpec): the position table (Marian's sinusoidal, BART's learned with offset 2), whether a
// LayerNorm follows the embeddings (BART's layernorm_embedding), and the config keys. marian.ts and bart.ts read
// their configs into a spec; this file holds the modules. Browser-safe.
//
// HF names (MarianMTModel / BartForConditionalGeneration):
//   model.shared.weight (V, D)                    — token embeddings; absent when Marian's share_encoder_decoder_embeddings
//                                                   is false (then model.{encoder,decoder}.embed_tokens.weight)
//   model.{encoder,decoder}.embed_positions.weight — BART only: (max_position_embeddings + 2, D)
//   model.{encoder,decoder}.layernorm_embedding.{weight,bias} — BART only
//   model.encoder.layers.i.{self_attn.{q,k,v,out}_proj, self_attn_layer_norm, fc1, fc2, final_layer_norm}.{weight,bias}
//   model.decoder.layers.i.{self_attn.*, self_attn_layer_norm, encoder_attn.*, encoder_attn_layer_norm, fc1, fc2,
//                           final_layer_norm}.{weight,bias}
//   lm_head.weight (V, D) — left out of model.safetensors when tied; final_logits_bias (1, V) — a buffer
import { Tensor } from "../tensor.js";
import { zeros } from "../creation.js";
import { noGrad } from "../autograd.js";
import { copyInto, Module, Parameter } from "../nn/module.js";
import { Embedding, LayerNorm, Linear, ModuleList } from "../nn/layers.js";
import { normal_, zeros_ } from "../nn/init.js";
import * as F from "../functional.js";
import { activationFn, ACTIVATION_NAMES, addBasePrefix, applyCheckpointRules, attend, checkIds, paddingFromMask, pickArchitecture, type Activation, type ConfigReader } from "./common.js";
import { EncoderDecoderLM, KVCache, type DecodeArgs, type DecoderOut, type EncoderMemory, type EncoderOut, type LayerCaches } from "./seq2seq-common.js";
export type { EncoderOut } from "./seq2seq-common.js";
import type { HFConfig, HFFamily, HFInputs, HFModel } from "./types.js";
import { HFImportError } from "./types.js";

/** Absolute positions: rows past..past+T−1 of a table, (T, D). */
export interface PositionTable extends Module { forward(T: number, past: number): Tensor }

export interface BartLikeSpec {
  modelType: string;
  architecture: string;
  vocab: number;
  dModel: number;
  encoderLayers: number;
  decoderLayers: number;
  encoderHeads: number;
  decoderHeads: number;
  encoderFfn: number;
  decoderFfn: number;
  maxPositions: number;
  act: Activation;
  /** Token embeddings times √d_model (scale_embedding). */
  scaleEmbedding: boolean;
  /** A LayerNorm right after token + position embeddings (BART). */
  layernormEmbedding: boolean;
  positions: () => PositionTable;
  /** One embedding table for encoder, decoder (model.shared). */
  shareEmbeddings: boolean;
  /** lm_head.weight is the decoder's token embedding. */
  tieHead: boolean;
  padId: number | null;
  decoderStartId: number;
  initStd: number;
  /** Training-time dropout: on embeddings and sublayer outputs, on attention probabilities, after the activation. */
  dropout: number;
  attentionDropout: number;
  activationDropout: number;
}

/** The spec fields BART's and Marian's configs spell alike (same keys, same HF defaults); d_model must divide by
 *  each head count. bart.ts and marian.ts add vocabulary, positions, embedding sharing and token ids. */
export type BartLikeCommon = Pick<BartLikeSpec, "encoderLayers" | "decoderLayers" | "encoderHeads" | "decoderHeads" |
  "encoderFfn" | "decoderFfn" | "maxPositions" | "act" | "scaleEmbedding" | "tieHead" | "initStd" | "dropout" |
  "attentionDropout" | "activationDropout">;

export function bartLikeCommon(c: ConfigReader, dModel: number): BartLikeCommon {
  const encoderHeads = c.int("encoder_attention_heads", 16), decoderHeads = c.int("decoder_attention_heads", 16);
  c.divisible("d_model", dModel, "encoder_attention_heads", encoderHeads);
  c.divisible("d_model", dModel, "decoder_attention_heads", decoderHeads);
  return {
    encoderLayers: c.int("encoder_layers", 12, 0), decoderLayers: c.int("decoder_layers", 12, 0),
    encoderHeads, decoderHeads,
    encoderFfn: c.int("encoder_ffn_dim", 4096), decoderFfn: c.int("decoder_ffn_dim", 4096),
    maxPositions: c.int("max_position_embeddings", 1024),
    act: activationFn(c.str("activation_function", "gelu", ACTIVATION_NAMES)),
    scaleEmbedding: c.bool("scale_embedding", false),
    tieHead: c.bool("tie_word_embeddings", true),
    initStd: c.num("init_std", 0.02),
    dropout: c.prob("dropout", 0.1), attentionDropout: c.prob("attention_dropout", 0), activationDropout: c.prob("activation_dropout", 0),
  };
}

// ---------------------------------------------------------------- attention and layers
class BartLikeAttention extends Module {
  kProj: Linear;
  vProj: Linear;
  qProj: Linear;
  outProj: Linear;
  constructor(readonly dModel: number, readonly heads: number, readonly kind: "self" | "cross", readonly dropout: number) {
    super();
    this.kProj = new Linear(dModel, dModel); this.vProj = new Linear(dModel, dModel);
    this.qProj = new Linear(dModel, dModel); this.outProj = new Linear(dModel, dModel);
  }
  /**
   * h (B, Tq, D) attends to itself (self) or to kv (B, Tk, D) (cross). With a cache: self-attention appends this
   * step's K/V; cross-attention computes K/V of the encoder states once and reuses them.
   */
  forward(h: Tensor, o: { kv?: Tensor; keyPadding: Tensor | null; causal: boolean; cache?: KVCache; wantWeights: boolean }): { out: Tensor; weights: Tensor | null } {
    const q = this.qProj.forward(h);                                          // (B, Tq, D)
    let k: Tensor, v: Tensor;
    if (this.kind === "cross" && o.cache?.k) { k = o.cache.k; v = o.cache.v!; }
    else {
      const src = o.kv ?? h;
      k = this.kProj.forward(src); v = this.vProj.forward(src);             // (B, Tnew, D)
      if (o.cache) [k, v] = o.cache.append(k, v);                           // (B, Tk, D)
    }
    const r = attend(this, { q, k, v, heads: this.heads, bias: null, scale: (this.dModel / this.heads) ** -0.5, keyPadding: o.keyPadding,
      causal: o.causal, kind: this.kind, needWeights: o.wantWeights, dropout: this.dropout });
    return { out: this.outProj.forward(r.out), weights: r.weights };       // (B, Tq, D), (B, H, Tq, Tk)
  }
}

class EncoderLayer extends Module {
  selfAttn: BartLikeAttention;
  selfAttnLayerNorm: LayerNorm;
  fc1: Linear;
  fc2: Linear;
  finalLayerNorm: LayerNorm;
  private s: BartLikeSpec;
  constructor(s: BartLikeSpec) {
    super();
    this.selfAttn = new BartLikeAttention(s.dModel, s.encoderHeads, "self", s.attentionDropout);
    this.selfAttnLayerNorm = new LayerNorm(s.dModel);
    this.fc1 = new Linear(s.dModel, s.encoderFfn); this.fc2 = new Linear(s.encoderFfn, s.dModel);
    this.finalLayerNorm = new LayerNorm(s.dModel);
    this.s = s;
  }
  /** Post-norm: LN(h + drop(SelfAttn(h))), then LN(h + drop(fc2(drop_act(act(fc1(h)))))). */
  forward(h: Tensor, pad: Tensor | null, wantWeights: boolean): { h: Tensor; weights: Tensor | null } {
    const a = this.selfAttn.forward(h, { keyPadding: pad, causal: false, wantWeights });
    const x = this.selfAttnLayerNorm.forward(h.add(this.drop(a.out, this.s.dropout)));
    const y = this.fc2.forward(this.drop(this.s.act(this.fc1.forward(x)), this.s.activationDropout));
    return { h: this.finalLayerNorm.forward(x.add(this.drop(y, this.s.dropout))), weights: a.weights };
  }
  private drop(x: Tensor, p: number): Tensor { return F.dropout(x, p, this.training); }
}

class DecoderLayer extends Module {
  selfAttn: BartLikeAttention;
  selfAttnLayerNorm: LayerNorm;
  encoderAttn: BartLikeAttention;
  encoderAttnLayerNorm: LayerNorm;
  fc1: Linear;
  fc2: Linear;
  finalLayerNorm: LayerNorm;
  private s: BartLikeSpec;
  constructor(s: BartLikeSpec) {
    super();
    this.selfAttn = new BartLikeAttention(s.dModel, s.decoderHeads, "self", s.attentionDropout);
    this.selfAttnLayerNorm = new LayerNorm(s.dModel);
    this.encoderAttn = new BartLikeAttention(s.dModel, s.decoderHeads, "cross", s.attentionDropout);
    this.encoderAttnLayerNorm = new LayerNorm(s.dModel);
    this.fc1 = new Linear(s.dModel, s.decoderFfn); this.fc2 = new Linear(s.decoderFfn, s.dModel);
    this.finalLayerNorm = new LayerNorm(s.dModel);
    this.s = s;
  }
  private drop(x: Tensor, p: number): Tensor { return F.dropout(x, p, this.training); }
  forward(h: Tensor, o: { enc: Tensor; encPad: Tensor | null; selfPad: Tensor | null; cache?: LayerCaches; wantWeights: boolean }):
    { h: Tensor; self: Tensor | null; cross: Tensor | null } {
    const a = this.selfAttn.forward(h, { keyPadding: o.selfPad, causal: true, cache: o.cache?.self, wantWeights: o.wantWeights });
    const x = this.selfAttnLayerNorm.forward(h.add(this.drop(a.out, this.s.dropout)));
    const c = this.encoderAttn.forward(x, { kv: o.enc, keyPadding: o.encPad, causal: false, cache: o.cache?.cross, wantWeights: o.wantWeights });
    const y = this.encoderAttnLayerNorm.forward(x.add(this.drop(c.out, this.s.dropout)));
    const z = this.fc2.forward(this.drop(this.s.act(this.fc1.forward(y)), this.s.activationDropout));
    return { h: this.finalLayerNorm.forward(y.add(this.drop(z, this.s.dropout))), self: a.weights, cross: c.weights };
  }
}

// ---------------------------------------------------------------- stacks
class Stack<L extends Module> extends Module {
  embedTokens: Embedding;
  embedPositions: PositionTable;
  layernormEmbedding: LayerNorm | null;
  layers: ModuleList<L>;
  private embedScale: number;
  private dropout: number;
  constructor(s: BartLikeSpec, embed: Embedding, layer: () => L, n: number) {
    super();
    this.embedTokens = embed;
    this.embedPositions = s.positions();
    this.layernormEmbedding = s.layernormEmbedding ? new LayerNorm(s.dModel) : null;
    this.layers = new ModuleList(Array.from({ length: n }, layer));
    this.embedScale = s.scaleEmbedding ? Math.sqrt(s.dModel) : 1;
    this.dropout = s.dropout;
  }
  /** ids (B, T) at positions past.. → drop(embed_tokens(ids)·scale + positions (→ layernorm_embedding)): (B, T, D). */
  embed(ids: Tensor, past: number, onEmbeddings?: (x: Tensor) => Tensor): Tensor {
    let x = this.embedTokens.forward(ids);
    if (this.embedScale !== 1) x = x.mul(this.embedScale);
    if (onEmbeddings) x = onEmbeddings(x);
    x = x.add(this.embedPositions.forward(ids.shape[1], past));
    if (this.layernormEmbedding) x = this.layernormEmbedding.forward(x);
    return F.dropout(x, this.dropout, this.training);
  }
  forward(): never { throw new Error("call the model's forward()"); }
}

class BartLikeModel extends Module {
  shared: Embedding | null;
  encoder: Stack<EncoderLayer>;
  decoder: Stack<DecoderLayer>;
  constructor(s: BartLikeSpec) {
    super();
    const emb = () => new Embedding(s.vocab, s.dModel, s.padId === null ? {} : { paddingIdx: s.padId });
    this.shared = s.shareEmbeddings ? emb() : null;
    this.encoder = new Stack(s, this.shared ?? emb(), () => new EncoderLayer(s), s.encoderLayers);
    this.decoder = new Stack(s, this.shared ?? emb(), () => new DecoderLayer(s), s.decoderLayers);
  }
  forward(): never { throw new Error("call the model's forward()"); }
}

/** BART's BartLearnedPositionalEmbedding: weight (max_position_embeddings + offset, D), position p reads row p + offset. */
export class LearnedPositions extends Module implements PositionTable {
  weight: Tensor;
  constructor(readonly rows: number, readonly dModel: number, readonly offset: number) {
    super();
    this.weight = Parameter(zeros([rows, dModel]));
  }
  forward(T: number, past: number): Tensor { return this.weight.narrow(0, past + this.offset, T); } // (T, D)
}

// ---------------------------------------------------------------- the HF model
export class BartLikeForConditionalGeneration extends EncoderDecoderLM {
  readonly architecture: string;
  protected get vocab(): number { return this.spec.vocab; }
  protected get decoderLayerCount(): number { return this.spec.decoderLayers; }
  protected get decoderStartId(): number { return this.spec.decoderStartId; }
  model: BartLikeModel;
  lmHead: Linear | null;

  constructor(readonly config: HFConfig, readonly spec: BartLikeSpec) {
    super();
    this.architecture = spec.architecture;
    this.model = new BartLikeModel(spec);
    this.lmHead = spec.tieHead ? null : new Linear(spec.dModel, spec.vocab, { bias: false });
    this.registerBuffer("final_logits_bias", zeros([1, spec.vocab]));
    this.initWeights();
    this.eval(); // like from_pretrained: dropout off; train() for fine-tuning
  }

  /** HF's _init_weights: Linear and Embedding ~ N(0, init_std²), biases 0, padding rows 0; LayerNorms 1/0. */
  private initWeights(): void {
    noGrad(() => {
      for (const m of this.modules()) {
        if (m instanceof Linear) { normal_(m.weight, 0, this.spec.initStd); if (m.bias) zeros_(m.bias); }
        else if (m instanceof LearnedPositions) normal_(m.weight, 0, this.spec.initStd);
        else if (m instanceof Embedding) {
          normal_(m.weight, 0, this.spec.initStd);
          if (m.opts.paddingIdx !== undefined) m.weight.storage.data.fill(0, m.opts.paddingIdx * m.embeddingDim, (m.opts.paddingIdx + 1) * m.embeddingDim);
        }
      }
    });
  }

  tiedWeights(): string[] {
    const t = this.spec.shareEmbeddings ? ["model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"] : [];
    return this.spec.tieHead ? [...t, "lm_head.weight"] : t;
  }

  /**
   * Loads HF checkpoints as from_pretrained does: tied copies (embed_tokens, a tied lm_head) may be present or absent,
   * final_logits_bias may be absent (zeros), a base-model checkpoint (no "model." prefix) is accepted, BART's "*.version"
   * entries are ignored, and a fixed position table that
   * an older Marian checkpoint carries (model.*.embed_positions.weight) is loaded into the table, shape-checked.
   */
  override loadStateDict(sd: Record<string, Tensor> | Map<string, Tensor>, opts: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    const canon = this.spec.shareEmbeddings ? "model.shared.weight" : "model.decoder.embed_tokens.weight";
    const tied: Record<string, string[]> = {};
    if (this.spec.shareEmbeddings) tied[canon] = ["model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"];
    if (this.spec.tieHead) (tied[canon] ??= []).push("lm_head.weight");
    const own = this.stateDict();
    const prefixed = addBasePrefix(new Map(sd instanceof Map ? sd : Object.entries(sd)), "model.", new Set(Object.keys(own)));
    const m = applyCheckpointRules(prefixed, own, {
      tied, ignore: ["model.encoder.version", "model.decoder.version"], optional: ["final_logits_bias"],
    });
    for (const [side, stack] of [["encoder", this.model.encoder], ["decoder", this.model.decoder]] as const) {
      const key = `model.${side}.embed_positions.weight`, t = m.get(key), table = stack.embedPositions;
      if (t === undefined || !(table instanceof Module) || table.getBuffer("weight") === null) continue;
      const buf = table.getBuffer("weight")!;
      if (t.shape.join() !== buf.shape.join()) {
        throw new HFImportError(`${key} has shape [${t.shape}] in the checkpoint but [${buf.shape}] from max_position_embeddings and d_model`);
      }
      noGrad(() => copyInto(buf, t));
      m.delete(key);
    }
    return super.loadStateDict(m, opts);
  }

  /** The output projection's weight (V, D): lm_head, or the decoder's token embedding when tied. */
  private headWeight(): Tensor { return this.lmHead ? this.lmHead.weight : this.model.decoder.embedTokens.weight; }

  /** Decoder states (B, T, D) → logits (B, T, V) = lm_head(h) + final_logits_bias. */
  logits(h: Tensor): Tensor { return F.linear(h, this.headWeight(), this.getBuffer("final_logits_bias")!.reshape([this.spec.vocab])); }

  encode(inputs: HFInputs, wantWeights: boolean, onEmbeddings?: (x: Tensor) => Tensor): EncoderOut {
    const ids = checkIds(inputs.inputIds, this.architecture, "inputIds", null, null, this.spec.vocab);
    this.checkLength(ids, "inputIds");
    const pad = paddingFromMask(inputs.attentionMask, ids, "attentionMask");
    let h = this.model.encoder.embed(ids, 0, onEmbeddings);                             // (B, Ts, D)
    const hidden = [h], attentions: Tensor[] = [];
    for (const layer of this.model.encoder.layers) {
      const r = layer.forward(h, pad, wantWeights);
      h = r.h; hidden.push(h);
      if (r.weights) attentions.push(r.weights);                             // (B, H, Ts, Ts)
    }
    return { last: h, pad, hidden, attentions };
  }

  private checkLength(ids: Tensor, name: string, past = 0): void {
    if (past + ids.shape[1] > this.spec.maxPositions) {
      throw new HFImportError(`${name}: ${past + ids.shape[1]} positions exceed max_position_embeddings ${this.spec.maxPositions}`);
    }
  }

  /** Decoder over `ids` (B, T) at positions past.. with the given layer caches (generation) or none (full forward). */
  decode(ids: Tensor, enc: EncoderMemory, o: DecodeArgs): DecoderOut {
    this.checkLength(ids, "decoderInputIds", o.past);
    let h = this.model.decoder.embed(ids, o.past);                          // (B, Tt, D)
    const hidden = [h], self: Tensor[] = [], cross: Tensor[] = [];
    let i = 0;
    for (const layer of this.model.decoder.layers) {
      const r = layer.forward(h, { enc: enc.last, encPad: enc.pad, selfPad: o.selfPad, cache: o.caches?.[i++], wantWeights: o.wantWeights });
      h = r.h; hidden.push(h);
      if (r.self) self.push(r.self);                                          // (B, H, Tt, Tt)
      if (r.cross) cross.push(r.cross);                                       // (B, H, Tt, Ts)
    }
    return { last: h, hidden, self, cross };
  }
}


/**
 * The HFFamily of a BART-like model type: its config.json `model_type`, its generation head's architecture name and
 * its base model's, and how its config becomes a BartLikeSpec (Marian and BART differ only there).
 */
export function bartLikeFamily(modelType: string, architecture: string, baseArchitecture: string,
  spec: (config: HFConfig, architecture: string) => BartLikeSpec): HFFamily {
  return {
    modelTypes: [modelType],
    architectures: [architecture],
    fromConfig(config: HFConfig, arch?: string): HFModel {
      const picked = pickArchitecture(modelType, this.architectures, config, arch, baseArchitecture);
      return new BartLikeForConditionalGeneration(config, spec(config, picked));
    },
  };
}
