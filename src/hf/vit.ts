// ViT (transformers' modeling_vit.py, eager attention): ViTModel and ViTForImageClassification.
// pixels (B, C, H, W) → Conv2d(patch, stride patch) → (B, N, E) patches; [CLS] prepended; + learned positions (1, N+1, E).
// Pre-norm layers: h += Wo·Attn(layernorm_before(h)); h += W2·act(W1·layernorm_after(h)); final vit.layernorm;
// logits = classifier(h[:, 0]). Position interpolation for other image sizes is not supported (the size must match).
//
// HF name mapping: vit.embeddings.{cls_token (1, 1, E), position_embeddings (1, N+1, E)},
//   vit.embeddings.patch_embeddings.projection.{weight (E, C, p, p), bias},
//   vit.encoder.layer.<i>.{layernorm_before, layernorm_after}.*, vit.encoder.layer.<i>.attention.attention.{query,key,value}.*,
//   vit.encoder.layer.<i>.attention.output.dense.*, vit.encoder.layer.<i>.intermediate.dense.*,
//   vit.encoder.layer.<i>.output.dense.*, vit.layernorm.*, classifier.*
import type { Tensor } from "../tensor.js";
import { Parameter } from "../nn/module.js";
import { Linear, LayerNorm, Dropout, ModuleList } from "../nn/layers.js";
import { Conv2d } from "../nn/conv.js";
import { zeros } from "../creation.js";
import { cat } from "../ops/movement.js";
import { truncNormal_, zeros_ } from "../nn/init.js";
import { shapeStr } from "../shape.js";
import {
  HFModule, initEnabled, activation, attend, cfgBool, cfgChoice, cfgInt, cfgNum, hfInit, mergeHeads, numLabels, requireInput, splitHeads,
  HF_ACTIVATIONS, type HFActivation,
} from "./common.js";
import { HFImportError, type HFConfig, type HFFamily, type HFForwardOptions, type HFInputs, type HFModel, type HFOutputs } from "./types.js";

export interface ViTOptions {
  imageSize: number; patchSize: number; channels: number; hidden: number; layers: number; heads: number; intermediate: number;
  eps: number; act: HFActivation; qkvBias: boolean; hiddenDropout: number; attnDropout: number; initRange: number;
}

export function vitOptions(c: HFConfig): ViTOptions {
  const m = "vit";
  const hidden = cfgInt(c, m, "hidden_size", 768), heads = cfgInt(c, m, "num_attention_heads", 12);
  if (hidden % heads) throw new HFImportError(`vit config.json: "hidden_size" ${hidden} is not a multiple of "num_attention_heads" ${heads}`);
  const imageSize = cfgInt(c, m, "image_size", 224), patchSize = cfgInt(c, m, "patch_size", 16);
  if (imageSize % patchSize) throw new HFImportError(`vit config.json: "image_size" ${imageSize} is not a multiple of "patch_size" ${patchSize}`);
  return {
    imageSize, patchSize, channels: cfgInt(c, m, "num_channels", 3), hidden, heads, layers: cfgInt(c, m, "num_hidden_layers", 12),
    intermediate: cfgInt(c, m, "intermediate_size", 3072), eps: cfgNum(c, m, "layer_norm_eps", 1e-12),
    act: cfgChoice(c, m, "hidden_act", "gelu", HF_ACTIVATIONS), qkvBias: cfgBool(c, m, "qkv_bias", true),
    hiddenDropout: cfgNum(c, m, "hidden_dropout_prob", 0), attnDropout: cfgNum(c, m, "attention_probs_dropout_prob", 0),
    initRange: cfgNum(c, m, "initializer_range", 0.02),
  };
}

export class ViTPatchEmbeddings extends HFModule {
  projection: Conv2d;
  constructor(readonly o: ViTOptions) { super(); this.projection = new Conv2d(o.channels, o.hidden, o.patchSize, { stride: o.patchSize }); }
  /** (B, C, H, W) → (B, N, E). */
  forward(px: Tensor): Tensor {
    const o = this.o;
    if (px.ndim !== 4 || px.shape[1] !== o.channels || px.shape[2] !== o.imageSize || px.shape[3] !== o.imageSize) {
      throw new HFImportError(`ViT: pixelValues must be (B, ${o.channels}, ${o.imageSize}, ${o.imageSize}) (num_channels, image_size of config.json), got ${shapeStr(px.shape)}`);
    }
    return this.projection.forward(px).flatten(2).transpose(1, 2);
  }
}

export class ViTEmbeddings extends HFModule {
  clsToken: Tensor; positionEmbeddings: Tensor; patchEmbeddings: ViTPatchEmbeddings; dropout: Dropout;
  constructor(o: ViTOptions) {
    super();
    const n = (o.imageSize / o.patchSize) ** 2;
    this.clsToken = Parameter(truncNormal_(zeros([1, 1, o.hidden]), 0, o.initRange, -2, 2));
    this.positionEmbeddings = Parameter(truncNormal_(zeros([1, n + 1, o.hidden]), 0, o.initRange, -2, 2));
    this.patchEmbeddings = new ViTPatchEmbeddings(o);
    this.dropout = new Dropout(o.hiddenDropout);
  }
  forward(px: Tensor, onEmbeddings?: (x: Tensor) => Tensor): Tensor {
    let p = this.patchEmbeddings.forward(px);                                              // (B, N, E)
    if (onEmbeddings) p = onEmbeddings(p);
    const cls = this.clsToken.expand([p.shape[0], 1, p.shape[2]]);
    return this.dropout.forward(cat([cls, p], 1).add(this.positionEmbeddings));             // (B, N+1, E)
  }
}

export class ViTSelfAttention extends HFModule {
  query: Linear; key: Linear; value: Linear;
  constructor(readonly o: ViTOptions) {
    super();
    const b = { bias: o.qkvBias };
    this.query = new Linear(o.hidden, o.hidden, b); this.key = new Linear(o.hidden, o.hidden, b); this.value = new Linear(o.hidden, o.hidden, b);
  }
  forward(x: Tensor, needWeights: boolean): [Tensor, Tensor | null] {
    const H = this.o.heads;
    const { out, weights } = attend(this, {
      q: splitHeads(this.query.forward(x), H), k: splitHeads(this.key.forward(x), H), v: splitHeads(this.value.forward(x), H),
      bias: null, scale: 1 / Math.sqrt(this.o.hidden / H), needWeights, keyPadding: null, causal: false,
      dropout: this.o.attnDropout,
    });
    return [mergeHeads(out), weights];
  }
}

/** dense + dropout (ViTSelfOutput; the residual is added in ViTLayer). */
export class ViTDense extends HFModule {
  dense: Linear; dropout: Dropout;
  constructor(inF: number, outF: number, p: number) { super(); this.dense = new Linear(inF, outF); this.dropout = new Dropout(p); }
  forward(x: Tensor): Tensor { return this.dropout.forward(this.dense.forward(x)); }
}

export class ViTAttention extends HFModule {
  attention: ViTSelfAttention; output: ViTDense;
  constructor(o: ViTOptions) { super(); this.attention = new ViTSelfAttention(o); this.output = new ViTDense(o.hidden, o.hidden, o.hiddenDropout); }
  forward(x: Tensor, needWeights: boolean): [Tensor, Tensor | null] {
    const [ctx, w] = this.attention.forward(x, needWeights);
    return [this.output.forward(ctx), w];
  }
}

export class ViTIntermediate extends HFModule {
  dense: Linear;
  constructor(readonly o: ViTOptions) { super(); this.dense = new Linear(o.hidden, o.intermediate); }
  forward(x: Tensor): Tensor { return activation(this.o.act, this.dense.forward(x)); }
}

export class ViTLayer extends HFModule {
  attention: ViTAttention; intermediate: ViTIntermediate; output: ViTDense; layernormBefore: LayerNorm; layernormAfter: LayerNorm;
  constructor(o: ViTOptions) {
    super();
    this.attention = new ViTAttention(o); this.intermediate = new ViTIntermediate(o); this.output = new ViTDense(o.intermediate, o.hidden, o.hiddenDropout);
    this.layernormBefore = new LayerNorm(o.hidden, { eps: o.eps }); this.layernormAfter = new LayerNorm(o.hidden, { eps: o.eps });
  }
  forward(h: Tensor, needWeights: boolean): [Tensor, Tensor | null] {
    const [a, w] = this.attention.forward(this.layernormBefore.forward(h), needWeights);
    const h1 = a.add(h);
    return [this.output.forward(this.intermediate.forward(this.layernormAfter.forward(h1))).add(h1), w];
  }
}

export class ViTEncoder extends HFModule {
  layer: ModuleList<ViTLayer>;
  constructor(o: ViTOptions) { super(); this.layer = new ModuleList(Array.from({ length: o.layers }, () => new ViTLayer(o))); }
  forward(): never { throw new Error("ViTEncoder: call ViTModel.forward"); }
}

/** HF's ViTModel without the pooler (as ViTForImageClassification builds it). */
export class ViTModel extends HFModule implements HFModel {
  readonly architecture: string = "ViTModel";
  embeddings: ViTEmbeddings; encoder: ViTEncoder; layernorm: LayerNorm;
  readonly o: ViTOptions;
  constructor(readonly config: HFConfig) {
    super();
    this.o = vitOptions(config);
    this.embeddings = new ViTEmbeddings(this.o); this.encoder = new ViTEncoder(this.o); this.layernorm = new LayerNorm(this.o.hidden, { eps: this.o.eps });
    hfInit(this, this.o.initRange, { truncated: true });
    if (initEnabled()) {
      zeros_(this.embeddings.patchEmbeddings.projection.bias!);
      truncNormal_(this.embeddings.patchEmbeddings.projection.weight, 0, this.o.initRange, -2, 2);
    }
  }
  forward(inputs: HFInputs, opts: HFForwardOptions = {}): HFOutputs {
    let h = this.embeddings.forward(requireInput(inputs.pixelValues, this.architecture, "pixelValues"), opts.onEmbeddings);
    const hidden: Tensor[] = [h], attentions: Tensor[] = [];
    for (const layer of this.encoder.layer) {
      const [y, w] = layer.forward(h, !!opts.outputAttentions);
      h = y;
      hidden.push(h);
      if (w) attentions.push(w);
    }
    return {
      lastHiddenState: this.layernorm.forward(h),                                          // HF: hidden_states end BEFORE this norm
      hiddenStates: opts.outputHiddenStates ? hidden : undefined, attentions: opts.outputAttentions ? attentions : undefined,
    };
  }
}

export class ViTForImageClassification extends HFModule implements HFModel {
  readonly architecture = "ViTForImageClassification";
  vit: ViTModel; classifier: Linear;
  constructor(readonly config: HFConfig) {
    super();
    this.vit = new ViTModel(config);
    this.classifier = new Linear(this.vit.o.hidden, numLabels(config));
    hfInit(this.classifier, this.vit.o.initRange, { truncated: true });
  }
  forward(inputs: HFInputs, opts: HFForwardOptions = {}): HFOutputs {
    const out = this.vit.forward(inputs, opts);
    return { logits: this.classifier.forward(out.lastHiddenState!.select(1, 0)), hiddenStates: out.hiddenStates, attentions: out.attentions };
  }
  /** ViTModel checkpoints saved with a pooler: ViTForImageClassification has none (HF ignores it too). */
  keysToIgnoreOnLoad(): RegExp[] { return [/^vit\.pooler\./]; }
}

export const vitFamily: HFFamily = {
  modelTypes: ["vit"],
  baseModelPrefix: "vit",
  architectures: ["ViTForImageClassification"],
  fromConfig(config, architecture = "ViTForImageClassification") {
    if (architecture !== "ViTForImageClassification") {
      throw new HFImportError(`config.json: "architectures" names ${architecture}, not supported for model_type "vit" (supported: ${vitFamily.architectures.join(", ")})`);
    }
    return new ViTForImageClassification(config);
  },
};
