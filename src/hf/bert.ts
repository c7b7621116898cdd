// BERT (transformers' modeling_bert.py, eager attention): BertModel, BertForSequenceClassification, BertForMaskedLM.
// Post-norm encoder: word + absolute position + token-type embeddings → LayerNorm; each layer
//   h = LayerNorm(h + Wo·Attn(h));  h = LayerNorm(h + W2·act(W1·h));  pooler = tanh(W·h[:, 0]).
// Padding is HF's additive (1 − attention_mask)·finfo.min on the keys (right padding in practice).
//
// HF name mapping (every state-dict key is HF's own; fields map through torchName unless hfNames says otherwise):
//   bert.embeddings.{word,position,token_type}_embeddings.weight, bert.embeddings.LayerNorm.{weight,bias}
//   bert.encoder.layer.<i>.attention.self.{query,key,value}.{weight,bias}
//   bert.encoder.layer.<i>.attention.output.{dense,LayerNorm}.*   bert.encoder.layer.<i>.intermediate.dense.*
//   bert.encoder.layer.<i>.output.{dense,LayerNorm}.*             bert.pooler.dense.*
//   classifier.*  (sequence classification)
//   cls.predictions.bias, cls.predictions.transform.{dense,LayerNorm}.*, cls.predictions.decoder.{weight,bias}
//   (masked LM: decoder.weight is word_embeddings.weight and decoder.bias is predictions.bias — tied, as in HF)
// A bare BertModel checkpoint has no "bert." prefix; the loader adds/strips the prefix like HF's base_model_prefix.
import type { Tensor } from "../tensor.js";
import { Parameter } from "../nn/module.js";
import { Linear, Embedding, LayerNorm, Dropout, ModuleList } from "../nn/layers.js";
import { arange, zeros } from "../creation.js";
import * as F from "../functional.js";
import { shapeStr } from "../shape.js";
import { pruneLinear, pruneableHeadsAndIndices } from "../nn/prune.js";
import {
  HFModule, activation, linearActivation, linearResidualNorm, attend, cfgChoice, cfgInt, cfgNum, cfgUnsupported, checkIds, hfInit,
  numLabels, paddedKeys, projections, requireInput, HF_ACTIVATIONS, type HFActivation,
} from "./common.js";
import { HFImportError, type HFConfig, type HFFamily, type HFForwardOptions, type HFInputs, type HFModel, type HFOutputs } from "./types.js";

/** The BERT options attnflow reads; everything else in config.json is either irrelevant to inference or refused. */
export interface BertOptions {
  vocabSize: number; hidden: number; layers: number; heads: number; intermediate: number;
  maxPositions: number; typeVocab: number; eps: number; act: HFActivation; padTokenId: number | null;
  hiddenDropout: number; attnDropout: number; classifierDropout: number; initRange: number;
}

export function bertOptions(c: HFConfig): BertOptions {
  const m = "bert";
  cfgChoice(c, m, "position_embedding_type", "absolute", ["absolute"]);
  cfgUnsupported(c, m, "is_decoder", false);
  cfgUnsupported(c, m, "add_cross_attention", false);
  const hidden = cfgInt(c, m, "hidden_size", 768), heads = cfgInt(c, m, "num_attention_heads", 12);
  if (hidden % heads) throw new HFImportError(`bert config.json: "hidden_size" ${hidden} is not a multiple of "num_attention_heads" ${heads}`);
  const pad = c.pad_token_id;
  const hiddenDropout = cfgNum(c, m, "hidden_dropout_prob", 0.1);
  return {
    vocabSize: cfgInt(c, m, "vocab_size", 30522), hidden, heads, layers: cfgInt(c, m, "num_hidden_layers", 12),
    intermediate: cfgInt(c, m, "intermediate_size", 3072), maxPositions: cfgInt(c, m, "max_position_embeddings", 512),
    typeVocab: cfgInt(c, m, "type_vocab_size", 2), eps: cfgNum(c, m, "layer_norm_eps", 1e-12),
    act: cfgChoice(c, m, "hidden_act", "gelu", HF_ACTIVATIONS), padTokenId: typeof pad === "number" ? pad : null,
    hiddenDropout, attnDropout: cfgNum(c, m, "attention_probs_dropout_prob", 0.1),
    classifierDropout: c.classifier_dropout == null ? hiddenDropout : cfgNum(c, m, "classifier_dropout", 0.1),
    initRange: cfgNum(c, m, "initializer_range", 0.02),
  };
}

export class BertEmbeddings extends HFModule {
  wordEmbeddings: Embedding; positionEmbeddings: Embedding; tokenTypeEmbeddings: Embedding;
  layerNorm: LayerNorm; dropout: Dropout;
  constructor(readonly o: BertOptions) {
    super();
    this.wordEmbeddings = new Embedding(o.vocabSize, o.hidden, o.padTokenId !== null && o.padTokenId < o.vocabSize ? { paddingIdx: o.padTokenId } : {});
    this.positionEmbeddings = new Embedding(o.maxPositions, o.hidden);
    this.tokenTypeEmbeddings = new Embedding(o.typeVocab, o.hidden);
    this.layerNorm = new LayerNorm(o.hidden, { eps: o.eps });
    this.dropout = new Dropout(o.hiddenDropout);
  }
  protected override hfNames() { return { layerNorm: "LayerNorm" }; }
  /** ids, token types, positions (B, T) → (B, T, hidden). */
  forward(ids: Tensor, tokenTypes: Tensor, positions: Tensor, onEmbeddings?: (x: Tensor) => Tensor): Tensor {
    const w = this.wordEmbeddings.forward(ids);
    const e = (onEmbeddings ? onEmbeddings(w) : w).add(this.tokenTypeEmbeddings.forward(tokenTypes)).add(this.positionEmbeddings.forward(positions));
    return this.dropout.forward(this.layerNorm.forward(e));
  }
}

/** Q, K, V projections; HF's BertSelfAttention (numHeads shrinks when heads are pruned: all_head_size = numHeads·headSize). */
export class BertSelfAttention extends HFModule {
  query: Linear; key: Linear; value: Linear; dropout: number;
  numHeads: number; readonly headSize: number;
  /** HF's head_mask for this layer, (H) or (B, H): multiplies the attention probabilities of each head. */
  headMask: Tensor | null = null;
  constructor(readonly o: BertOptions) {
    super();
    this.query = new Linear(o.hidden, o.hidden); this.key = new Linear(o.hidden, o.hidden); this.value = new Linear(o.hidden, o.hidden);
    this.dropout = o.attnDropout;
    this.numHeads = o.heads; this.headSize = o.hidden / o.heads;
  }
  /** x (B, T, E), bias (B, 1, 1, T) → context (B, T, H·Dh) and weights (B, H, T, T) when asked. */
  forward(x: Tensor, bias: Tensor | null, mask: Tensor | null, needWeights: boolean): [Tensor, Tensor | null] {
    const H = this.numHeads, B = x.shape[0], T = x.shape[1];
    const [q, k, v] = projections(x, [this.query, this.key, this.value]);                  // (B, T, H·Dh) each
    let { out, weights } = attend(this, {
      q, k, v, heads: H, bias, scale: 1 / Math.sqrt(this.headSize), needWeights,
      keyPadding: paddedKeys(mask), causal: false, dropout: this.dropout,
    });                                                                                      // (B, T, H·Dh), (B, H, T, T)
    const hm = this.headMask;
    if (hm) {
      if (!((hm.ndim === 1 && hm.shape[0] === H) || (hm.ndim === 2 && hm.shape[1] === H && (hm.shape[0] === B || hm.shape[0] === 1)))) {
        throw new Error(`BertSelfAttention: head mask must be [${H}] or [${B}, ${H}], got ${shapeStr(hm.shape)}`);
      }
      const hb = hm.ndim === 1 ? 1 : hm.shape[0];
      out = out.reshape([B, T, H, this.headSize]).mul(hm.reshape([hb, 1, H, 1])).reshape([B, T, H * this.headSize]);
      if (weights) weights = weights.mul(hm.reshape([hb, H, 1, 1]));                       // (B|1, H, 1, 1)
    }
    return [out, weights];
  }
}

/** dense + dropout + residual + LayerNorm (BertSelfOutput and BertOutput have the same shape of computation). */
export class BertResidualNorm extends HFModule {
  dense: Linear; layerNorm: LayerNorm; dropout: Dropout;
  constructor(inF: number, o: BertOptions) {
    super();
    this.dense = new Linear(inF, o.hidden); this.layerNorm = new LayerNorm(o.hidden, { eps: o.eps }); this.dropout = new Dropout(o.hiddenDropout);
  }
  protected override hfNames() { return { layerNorm: "LayerNorm" }; }
  forward(h: Tensor, residual: Tensor): Tensor { return linearResidualNorm(this.dense, this.dropout, this.layerNorm, h, residual); }
}

export class BertAttention extends HFModule {
  self: BertSelfAttention; output: BertResidualNorm;
  /** Original indices of the pruned heads (HF's BertAttention.pruned_heads). */
  readonly prunedHeads = new Set<number>();
  constructor(o: BertOptions) { super(); this.self = new BertSelfAttention(o); this.output = new BertResidualNorm(o.hidden, o); }
  get numHeads(): number { return this.self.numHeads; }
  get headMask(): Tensor | null { return this.self.headMask; }
  set headMask(m: Tensor | null) { this.self.headMask = m; }
  /** HF's BertAttention.prune_heads: query/key/value lose the heads' rows, output.dense their columns. */
  pruneHeads(heads: Iterable<number>): void {
    const s = this.self;
    const { heads: drop, index } = pruneableHeadsAndIndices(heads, s.numHeads, s.headSize, this.prunedHeads);
    if (!drop.size) return;
    if (drop.size >= s.numHeads) throw new RangeError(`BertAttention.pruneHeads: pruning heads ${[...drop].join(", ")} would leave no head (${s.numHeads} left); keep at least one per layer`);
    s.query = pruneLinear(s.query, index, 0); s.key = pruneLinear(s.key, index, 0); s.value = pruneLinear(s.value, index, 0);
    this.output.dense = pruneLinear(this.output.dense, index, 1);
    s.numHeads -= drop.size;
    for (const h of drop) this.prunedHeads.add(h);
  }
  forward(x: Tensor, bias: Tensor | null, mask: Tensor | null, needWeights: boolean): [Tensor, Tensor | null] {
    const [ctx, w] = this.self.forward(x, bias, mask, needWeights);
    return [this.output.forward(ctx, x), w];
  }
}

export class BertIntermediate extends HFModule {
  dense: Linear;
  constructor(readonly o: BertOptions) { super(); this.dense = new Linear(o.hidden, o.intermediate); }
  forward(x: Tensor): Tensor { return linearActivation(this.o.act, this.dense, x); }
}

export class BertLayer extends HFModule {
  attention: BertAttention; intermediate: BertIntermediate; output: BertResidualNorm;
  constructor(o: BertOptions) { super(); this.attention = new BertAttention(o); this.intermediate = new BertIntermediate(o); this.output = new BertResidualNorm(o.intermediate, o); }
  forward(x: Tensor, bias: Tensor | null, mask: Tensor | null, needWeights: boolean): [Tensor, Tensor | null] {
    const [a, w] = this.attention.forward(x, bias, mask, needWeights);
    return [this.output.forward(this.intermediate.forward(a), a), w];
  }
}

export class BertEncoder extends HFModule {
  layer: ModuleList<BertLayer>;
  constructor(o: BertOptions) { super(); this.layer = new ModuleList(Array.from({ length: o.layers }, () => new BertLayer(o))); }
  forward(): never { throw new Error("BertEncoder: call BertModel.forward"); }
}

export class BertPooler extends HFModule {
  dense: Linear;
  constructor(o: BertOptions) { super(); this.dense = new Linear(o.hidden, o.hidden); }
  /** tanh(W·h[:, 0]): (B, T, E) → (B, E). */
  forward(h: Tensor): Tensor { return F.tanh(this.dense.forward(h.select(1, 0))); }
}

/** HF's BertModel (base_model_prefix "bert"). */
export class BertModel extends HFModule implements HFModel {
  readonly architecture: string = "BertModel";
  embeddings: BertEmbeddings; encoder: BertEncoder; pooler: BertPooler | null;
  readonly o: BertOptions;
  constructor(readonly config: HFConfig, opts: { pooler?: boolean } = {}) {
    super();
    this.o = bertOptions(config);
    this.embeddings = new BertEmbeddings(this.o);
    this.encoder = new BertEncoder(this.o);
    this.pooler = opts.pooler === false ? null : new BertPooler(this.o);
    hfInit(this, this.o.initRange, { paddingIdx: this.o.padTokenId });
  }

  keysToIgnoreOnLoad(): RegExp[] { return [BERT_BUFFERS]; }

  forward(inputs: HFInputs, opts: HFForwardOptions = {}): HFOutputs {
    const o = this.o;
    const ids = requireInput(inputs.inputIds, this.architecture, "inputIds");
    checkIds(ids, this.architecture, "inputIds", null, null, o.vocabSize);
    const [B, T] = ids.shape;
    if (T > o.maxPositions) throw new HFImportError(`${this.architecture}: sequence length ${T} exceeds max_position_embeddings ${o.maxPositions}`);
    const mask = inputs.attentionMask ?? null;
    if (mask) checkIds(mask, this.architecture, "attentionMask", B, T, 2);
    const types = inputs.tokenTypeIds ?? zeros([B, T], { dtype: "int32" });
    checkIds(types, this.architecture, "tokenTypeIds", B, T, o.typeVocab);
    const positions = inputs.positionIds ?? arange(0, T, 1, { dtype: "int32" }).reshape([1, T]).expand([B, T]);
    checkIds(positions, this.architecture, "positionIds", B, T, o.maxPositions);

    let h = this.embeddings.forward(ids, types, positions, opts.onEmbeddings);                           // (B, T, E)
    // HF adds finfo.min to the scores of padded keys; the kernels take the same mask as key padding (those keys are
    // never scored: exp underflows to 0 either way, and a row with every key padded is spread uniformly in both, see
    // maskedRows), so no additive (B, 1, Tq, Tk) bias is built, copied and added per layer.
    const bias: Tensor | null = null;
    const hidden: Tensor[] = [h], attentions: Tensor[] = [];
    for (const layer of this.encoder.layer) {
      const [y, w] = layer.forward(h, bias, mask, !!opts.outputAttentions);
      h = y;
      if (opts.outputHiddenStates) hidden.push(h);
      if (w) attentions.push(w);
    }
    return {
      lastHiddenState: h,
      poolerOutput: this.pooler ? this.pooler.forward(h) : undefined,
      hiddenStates: opts.outputHiddenStates ? hidden : undefined,
      attentions: opts.outputAttentions ? attentions : undefined,
    };
  }
}

/** Buffers older transformers saved (position_ids, token_type_ids): not weights, HF skips them on load. */
const BERT_BUFFERS = /(^|\.)embeddings\.(position_ids|token_type_ids)$/;


/** BertForSequenceClassification: logits = W·dropout(pooler_output). */
export class BertForSequenceClassification extends HFModule implements HFModel {
  readonly architecture = "BertForSequenceClassification";
  bert: BertModel; dropout: Dropout; classifier: Linear;
  constructor(readonly config: HFConfig) {
    super();
    this.bert = new BertModel(config);
    this.dropout = new Dropout(this.bert.o.classifierDropout);
    this.classifier = new Linear(this.bert.o.hidden, numLabels(config));
    hfInit(this.classifier, this.bert.o.initRange);
  }
  keysToIgnoreOnLoad(): RegExp[] { return [BERT_BUFFERS]; }
  forward(inputs: HFInputs, opts: HFForwardOptions = {}): HFOutputs {
    const out = this.bert.forward(inputs, opts);
    return { logits: this.classifier.forward(this.dropout.forward(out.poolerOutput!)), hiddenStates: out.hiddenStates, attentions: out.attentions };
  }
}

/** cls.predictions.transform: dense → act → LayerNorm. */
export class BertPredictionHeadTransform extends HFModule {
  dense: Linear; layerNorm: LayerNorm;
  constructor(readonly o: BertOptions) { super(); this.dense = new Linear(o.hidden, o.hidden); this.layerNorm = new LayerNorm(o.hidden, { eps: o.eps }); }
  protected override hfNames() { return { layerNorm: "LayerNorm" }; }
  forward(x: Tensor): Tensor { return this.layerNorm.forward(activation(this.o.act, this.dense.forward(x))); }
}

/** The decoder Linear of the MLM head, whose weight is the word-embedding table and whose bias is predictions.bias. */
export class TiedDecoder extends HFModule {
  constructor(public weight: Tensor, public bias: Tensor) { super(); }
  forward(x: Tensor): Tensor { return F.linear(x, this.weight, this.bias); }
}

export class BertLMPredictionHead extends HFModule {
  bias: Tensor; transform: BertPredictionHeadTransform; decoder: TiedDecoder;
  constructor(o: BertOptions, wordEmbeddings: Tensor) {
    super();
    this.bias = Parameter(zeros([o.vocabSize]));
    this.transform = new BertPredictionHeadTransform(o);
    this.decoder = new TiedDecoder(wordEmbeddings, this.bias);
  }
  forward(h: Tensor): Tensor { return this.decoder.forward(this.transform.forward(h)); }
}

export class BertOnlyMLMHead extends HFModule {
  predictions: BertLMPredictionHead;
  constructor(o: BertOptions, wordEmbeddings: Tensor) { super(); this.predictions = new BertLMPredictionHead(o, wordEmbeddings); }
  forward(h: Tensor): Tensor { return this.predictions.forward(h); }
}

/** BertForMaskedLM: BertModel without pooler, vocabulary logits (B, T, V) from the tied decoder. */
export class BertForMaskedLM extends HFModule implements HFModel {
  readonly architecture = "BertForMaskedLM";
  bert: BertModel; cls: BertOnlyMLMHead;
  constructor(readonly config: HFConfig) {
    super();
    this.bert = new BertModel(config, { pooler: false });
    this.cls = new BertOnlyMLMHead(this.bert.o, this.bert.embeddings.wordEmbeddings.weight);
    hfInit(this.cls, this.bert.o.initRange);
  }
  forward(inputs: HFInputs, opts: HFForwardOptions = {}): HFOutputs {
    const out = this.bert.forward(inputs, opts);
    return { logits: this.cls.forward(out.lastHiddenState!), hiddenStates: out.hiddenStates, attentions: out.attentions };
  }
  tiedWeights(): string[] { return ["cls.predictions.decoder.weight", "cls.predictions.decoder.bias"]; }
  /** bert-base-uncased and kin are BertForPreTraining checkpoints: HF drops their next-sentence head and pooler here. */
  keysToIgnoreOnLoad(): RegExp[] { return [/^cls\.seq_relationship\./, /^bert\.pooler\./, BERT_BUFFERS]; }
}

export const bertFamily: HFFamily = {
  modelTypes: ["bert"],
  baseModelPrefix: "bert",
  architectures: ["BertModel", "BertForSequenceClassification", "BertForMaskedLM"],
  fromConfig(config, architecture = "BertModel") {
    switch (architecture) {
      case "BertModel": return new BertModel(config);
      case "BertForSequenceClassification": return new BertForSequenceClassification(config);
      case "BertForMaskedLM": return new BertForMaskedLM(config);
      default: throw new HFImportError(`config.json: "architectures" names ${architecture}, not supported for model_type "bert" (supported: ${bertFamily.architectures.join(", ")})`);
    }
  },
};
