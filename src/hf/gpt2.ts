// GPT-2 (transformers' modeling_gpt2.py, eager attention): GPT2LMHeadModel with greedy generation on a KV cache.
// Pre-norm decoder: h = wte(ids) + wpe(pos); each block h += c_proj(Attn(ln_1(h))); h += mlp(ln_2(h)); ln_f; logits =
// h·wteᵀ (lm_head tied to wte). Causal mask and padding follow HF exactly: scores of future keys are replaced by
// finfo.min and (1 − attention_mask)·finfo.min is added, so a left-padded row's padded queries attend evenly to the
// finfo.min keys, as in HF. A plain forward numbers positions 0..T−1 (HF does not shift for left padding);
// generate() numbers them cumsum(mask) − 1 (padded slots get 1), as HF's generate() does.
//
// HF name mapping: transformer.wte.weight, transformer.wpe.weight, transformer.ln_f.*,
//   transformer.h.<i>.ln_1.*, transformer.h.<i>.ln_2.*,
//   transformer.h.<i>.attn.c_attn.{weight (E, 3E), bias}, transformer.h.<i>.attn.c_proj.{weight (E, E), bias},
//   transformer.h.<i>.mlp.c_fc.{weight (E, inner), bias}, transformer.h.<i>.mlp.c_proj.{weight (inner, E), bias},
//   lm_head.weight = transformer.wte.weight (tied: HF leaves it out of model.safetensors).
// Conv1D weights are stored (in, out) — transposed relative to nn.Linear — and used as x·W + b.
// Older checkpoints carry the causal-mask buffers h.<i>.attn.bias / masked_bias: ignored, as HF ignores them.
import { Tensor } from "../tensor.js";
import { Parameter } from "../nn/module.js";
import { Embedding, LayerNorm, Dropout, ModuleList } from "../nn/layers.js";
import { arange, zeros } from "../creation.js";
import { cat, contiguousData, indexSelect } from "../ops/movement.js";
import { noGrad } from "../autograd.js";
import * as F from "../functional.js";
import { normal_ } from "../nn/init.js";
import {
  F32_MIN, HFModule, initEnabled, activation, attend, cfgBool, cfgChoice, cfgInt, cfgNum, cfgUnsupported, checkIds, hfInit, mergeHeads,
  paddedKeys, requireInput, splitHeads, HF_ACTIVATIONS, type HFActivation,
} from "./common.js";
import {
  HFImportError, type HFConfig, type HFDecodingOptions, type HFDecodingSession, type HFFamily, type HFForwardOptions,
  type HFGenerateOptions, type HFGenerateResult, type HFInputs, type HFModel, type HFOutputs,
} from "./types.js";
import { greedyGenerate } from "./generation.js";

export interface GPT2Options {
  vocabSize: number; nPositions: number; nEmbd: number; nLayer: number; nHead: number; nInner: number; eps: number;
  act: HFActivation; initRange: number; embdPdrop: number; attnPdrop: number; residPdrop: number;
  scaleAttnWeights: boolean; scaleByInverseLayerIdx: boolean; tie: boolean;
}

export function gpt2Options(c: HFConfig): GPT2Options {
  const m = "gpt2";
  cfgUnsupported(c, m, "add_cross_attention", false);
  const nEmbd = cfgInt(c, m, "n_embd", 768), nHead = cfgInt(c, m, "n_head", 12);
  if (nEmbd % nHead) throw new HFImportError(`gpt2 config.json: "n_embd" ${nEmbd} is not a multiple of "n_head" ${nHead}`);
  return {
    vocabSize: cfgInt(c, m, "vocab_size", 50257), nPositions: cfgInt(c, m, "n_positions", 1024), nEmbd, nHead,
    nLayer: cfgInt(c, m, "n_layer", 12), nInner: c.n_inner == null ? 4 * nEmbd : cfgInt(c, m, "n_inner"),
    eps: cfgNum(c, m, "layer_norm_epsilon", 1e-5), act: cfgChoice(c, m, "activation_function", "gelu_new", HF_ACTIVATIONS),
    initRange: cfgNum(c, m, "initializer_range", 0.02), embdPdrop: cfgNum(c, m, "embd_pdrop", 0.1),
    attnPdrop: cfgNum(c, m, "attn_pdrop", 0.1), residPdrop: cfgNum(c, m, "resid_pdrop", 0.1),
    scaleAttnWeights: cfgBool(c, m, "scale_attn_weights", true),
    scaleByInverseLayerIdx: cfgBool(c, m, "scale_attn_by_inverse_layer_idx", false),
    tie: cfgBool(c, m, "tie_word_embeddings", true),
  };
}

/** HF's Conv1D: y = x·W + b with W stored (nx, nf). */
export class Conv1D extends HFModule {
  weight: Tensor; bias: Tensor;
  constructor(readonly nf: number, readonly nx: number) {
    super();
    this.weight = Parameter(zeros([nx, nf]));
    this.bias = Parameter(zeros([nf]));
  }
  forward(x: Tensor): Tensor { return x.matmul(this.weight).add(this.bias); }
}

/** lm_head: logits = h·Wᵀ with W (vocab, E); tied, W is wte's own tensor (nothing allocated for a copy). */
export class LMHead extends HFModule {
  weight: Tensor;
  constructor(vocab: number, E: number, tiedTo: Tensor | null) { super(); this.weight = tiedTo ?? Parameter(zeros([vocab, E])); }
  forward(h: Tensor): Tensor { return F.linear(h, this.weight); }
}

/** Per-layer key/value cache: (B, H, Tpast, D) each. */
export interface KVCache { k: Tensor; v: Tensor }

export class GPT2Attention extends HFModule {
  cAttn: Conv1D; cProj: Conv1D; residDropout: Dropout;
  constructor(readonly o: GPT2Options, readonly layerIdx: number) {
    super();
    this.cAttn = new Conv1D(3 * o.nEmbd, o.nEmbd); this.cProj = new Conv1D(o.nEmbd, o.nEmbd); this.residDropout = new Dropout(o.residPdrop);
  }
  /** x (B, Tq, E) → (B, Tq, E); the cache (if any) grows by Tq. */
  forward(x: Tensor, m: MaskPlan, cache: KVCache | null, needWeights: boolean): { y: Tensor; weights: Tensor | null; cache: KVCache } {
    const { nEmbd: E, nHead: H } = this.o;
    const [q, k0, v0] = this.cAttn.forward(x).split(E, 2).map((t) => splitHeads(t, H));          // (B, H, Tq, D) each
    const k = cache ? cat([cache.k, k0], 2) : k0, v = cache ? cat([cache.v, v0], 2) : v0;          // (B, H, Tk, D)
    let scale = this.o.scaleAttnWeights ? 1 / Math.sqrt(E / H) : 1;
    if (this.o.scaleByInverseLayerIdx) scale /= this.layerIdx + 1;
    const { out, weights } = attend(this, {
      q, k, v, bias: m.bias, scale, needWeights, keyPadding: m.keyPadding,
      causal: true, causalInBias: m.bias !== null, dropout: this.o.attnPdrop,
    });
    return { y: this.residDropout.forward(this.cProj.forward(mergeHeads(out))), weights, cache: { k, v } };
  }
}

export class GPT2MLP extends HFModule {
  cFc: Conv1D; cProj: Conv1D; dropout: Dropout;
  constructor(readonly o: GPT2Options) { super(); this.cFc = new Conv1D(o.nInner, o.nEmbd); this.cProj = new Conv1D(o.nEmbd, o.nInner); this.dropout = new Dropout(o.residPdrop); }
  forward(x: Tensor): Tensor { return this.dropout.forward(this.cProj.forward(activation(this.o.act, this.cFc.forward(x)))); }
}

export class GPT2Block extends HFModule {
  ln1: LayerNorm; attn: GPT2Attention; ln2: LayerNorm; mlp: GPT2MLP;
  constructor(o: GPT2Options, i: number) {
    super();
    this.ln1 = new LayerNorm(o.nEmbd, { eps: o.eps }); this.attn = new GPT2Attention(o, i);
    this.ln2 = new LayerNorm(o.nEmbd, { eps: o.eps }); this.mlp = new GPT2MLP(o);
  }
  protected override hfNames() { return { ln1: "ln_1", ln2: "ln_2" }; }
  forward(h: Tensor, m: MaskPlan, cache: KVCache | null, needWeights: boolean): { h: Tensor; weights: Tensor | null; cache: KVCache } {
    const a = this.attn.forward(this.ln1.forward(h), m, cache, needWeights);
    const h1 = h.add(a.y);
    return { h: h1.add(this.mlp.forward(this.ln2.forward(h1))), weights: a.weights, cache: a.cache };
  }
}

/** The additive bias of one forward: causal (future keys → finfo.min) plus padding ((1 − mask)·finfo.min). */
interface MaskPlan { bias: Tensor | null; keyPadding: Tensor | null }

function maskPlan(mask: Tensor | null, B: number, Tq: number, Tk: number): MaskPlan {
  // No padding and a square causal block: the kernels' own causal masking gives HF's result (every row sees a key).
  if (!mask && Tq === Tk) return { bias: null, keyPadding: null };
  const past = Tk - Tq, md = mask ? mask.contiguous().dataSync() : null;
  const data = new Float32Array(B * Tq * Tk);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Tq; i++) {
      for (let j = 0; j < Tk; j++) {
        // float32 sums, as torch computes them: finfo.min + finfo.min overflows to -inf (sdpa's maskedRows "uniform"
        // then leaves such keys out of a fully masked row, as HF's softmax does)
        data[(b * Tq + i) * Tk + j] = (j > past + i ? F32_MIN : 0) + (md && md[b * Tk + j] === 0 ? F32_MIN : 0);
      }
    }
  }
  return { bias: Tensor.fromArray(data, [B, 1, Tq, Tk], "float32"), keyPadding: paddedKeys(mask) };
}

export class GPT2Model extends HFModule {
  wte: Embedding; wpe: Embedding; drop: Dropout; h: ModuleList<GPT2Block>; lnF: LayerNorm;
  constructor(readonly o: GPT2Options) {
    super();
    this.wte = new Embedding(o.vocabSize, o.nEmbd); this.wpe = new Embedding(o.nPositions, o.nEmbd); this.drop = new Dropout(o.embdPdrop);
    this.h = new ModuleList(Array.from({ length: o.nLayer }, (_, i) => new GPT2Block(o, i)));
    this.lnF = new LayerNorm(o.nEmbd, { eps: o.eps });
  }
  forward(): never { throw new Error("GPT2Model: call GPT2LMHeadModel.forward"); }
}

interface RunResult { h: Tensor; hidden: Tensor[]; attentions: Tensor[]; caches: KVCache[] }

export class GPT2LMHeadModel extends HFModule implements HFModel {
  readonly architecture = "GPT2LMHeadModel";
  transformer: GPT2Model; lmHead: LMHead;
  readonly o: GPT2Options;
  constructor(readonly config: HFConfig) {
    super();
    this.o = gpt2Options(config);
    this.transformer = new GPT2Model(this.o);
    this.lmHead = new LMHead(this.o.vocabSize, this.o.nEmbd, this.o.tie ? this.transformer.wte.weight : null);
    hfInit(this, this.o.initRange);
    if (!this.o.tie && initEnabled()) normal_(this.lmHead.weight, 0, this.o.initRange);
    for (const blk of initEnabled() ? this.transformer.h : []) {
      for (const c of [blk.attn.cAttn, blk.attn.cProj, blk.mlp.cFc, blk.mlp.cProj]) normal_(c.weight, 0, this.o.initRange);
      // HF's GPT-2 init scales the residual projections by 1/√(2·n_layer)
      for (const c of [blk.attn.cProj, blk.mlp.cProj]) normal_(c.weight, 0, this.o.initRange / Math.sqrt(2 * this.o.nLayer));
    }
  }

  tiedWeights(): string[] { return this.o.tie ? ["lm_head.weight"] : []; }
  keysToIgnoreOnLoad(): RegExp[] { return [/^(transformer\.)?h\.\d+\.attn\.(masked_)?bias$/]; }

  /** Embeddings, blocks (with optional caches) and ln_f. */
  private run(ids: Tensor, mask: Tensor | null, positions: Tensor, tokenTypes: Tensor | null, caches: KVCache[] | null, opts: HFForwardOptions): RunResult {
    const tr = this.transformer, [B, Tq] = ids.shape;
    const Tk = Tq + (caches ? caches[0].k.shape[2] : 0);
    const w = tr.wte.forward(ids);
    let h = (opts.onEmbeddings ? opts.onEmbeddings(w) : w).add(tr.wpe.forward(positions));  // (B, Tq, E)
    if (tokenTypes) h = h.add(tr.wte.forward(tokenTypes));                                 // HF embeds token types with wte
    h = tr.drop.forward(h);
    const plan = maskPlan(mask, B, Tq, Tk);
    const hidden: Tensor[] = [], attentions: Tensor[] = [], newCaches: KVCache[] = [];
    let i = 0;
    for (const blk of tr.h) {
      if (opts.outputHiddenStates) hidden.push(h);
      const r = blk.forward(h, plan, caches ? caches[i] : null, !!opts.outputAttentions);
      h = r.h; newCaches.push(r.cache); i++;
      if (r.weights) attentions.push(r.weights);
    }
    h = tr.lnF.forward(h);
    if (opts.outputHiddenStates) hidden.push(h);                                           // HF: the last entry is after ln_f
    return { h, hidden, attentions, caches: newCaches };
  }

  private checkInputs(inputs: HFInputs): { ids: Tensor; mask: Tensor | null } {
    const ids = requireInput(inputs.inputIds, this.architecture, "inputIds");
    checkIds(ids, this.architecture, "inputIds", null, null, this.o.vocabSize);
    const mask = inputs.attentionMask ?? null;
    if (mask) checkIds(mask, this.architecture, "attentionMask", ids.shape[0], ids.shape[1], 2);
    return { ids, mask };
  }

  forward(inputs: HFInputs, opts: HFForwardOptions = {}): HFOutputs {
    const { ids, mask } = this.checkInputs(inputs);
    const [B, T] = ids.shape;
    if (T > this.o.nPositions) throw new HFImportError(`${this.architecture}: sequence length ${T} exceeds n_positions ${this.o.nPositions}`);
    const positions = inputs.positionIds ?? arange(0, T, 1, { dtype: "int32" }).reshape([1, T]).expand([B, T]);
    checkIds(positions, this.architecture, "positionIds", B, T, this.o.nPositions);
    if (inputs.tokenTypeIds) checkIds(inputs.tokenTypeIds, this.architecture, "tokenTypeIds", B, T, this.o.vocabSize);
    const r = this.run(ids, mask, positions, inputs.tokenTypeIds ?? null, null, opts);
    return {
      logits: this.lmHead.forward(r.h), lastHiddenState: r.h,
      hiddenStates: opts.outputHiddenStates ? r.hidden : undefined, attentions: opts.outputAttentions ? r.attentions : undefined,
    };
  }

  /** Greedy decoding (HF's generate(do_sample=False)); sampling and beam search: generate() in src/hf/generation.ts. */
  generate(inputs: HFInputs, opts: HFGenerateOptions): HFGenerateResult { return greedyGenerate(this, inputs, opts); }

  /**
   * Token-by-token decoding with a KV cache, fed as HF's generate() feeds GPT-2: the prompt at positions
   * cumsum(mask) − 1 (1 on padded slots), then one token per row per step with mask 1.
   */
  startDecoding(inputs: HFInputs, opts: HFDecodingOptions): HFDecodingSession {
    const { ids, mask: m0 } = this.checkInputs(inputs);
    const [B, T] = ids.shape, n = opts.maxNewTokens;
    if (!Number.isInteger(n) || n < 0) throw new HFImportError(`${this.architecture}.generate: maxNewTokens must be a non-negative integer, got ${n}`);
    if (T + n > this.o.nPositions) throw new HFImportError(`${this.architecture}.generate: ${T} prompt + ${n} new tokens exceed n_positions ${this.o.nPositions}`);
    const idData = Array.from(contiguousData(ids) as Int32Array), maskData = m0 ? Array.from(contiguousData(m0) as Int32Array, Number) : new Array<number>(B * T).fill(1);
    let masks = Array.from({ length: B }, (_, b) => maskData.slice(b * T, (b + 1) * T));
    let caches: KVCache[] | null = null;
    const last = (h: Tensor) => this.lmHead.forward(h.select(1, h.shape[1] - 1));          // (B, V)
    return {
      batch: B, prefix: Array.from({ length: B }, (_, b) => idData.slice(b * T, (b + 1) * T)),
      step: (tokens) => noGrad(() => {
        let r: RunResult;
        if (!caches) {
          const pos0 = new Int32Array(B * T);
          masks.forEach((m, b) => { let c = 0; m.forEach((v, t) => { c += v; pos0[b * T + t] = v ? c - 1 : 1; }); });
          r = this.run(ids, m0, Tensor.fromArray(pos0, [B, T], "int32"), null, null, {});
        } else {
          if (!tokens || tokens.length !== B) throw new HFImportError(`${this.architecture}: step() needs ${B} tokens, got ${tokens?.length ?? "none"}`);
          for (const m of masks) m.push(1);
          const len = masks[0].length;
          const pos = Int32Array.from(masks, (m) => m.reduce((s, x) => s + x, 0) - 1);
          r = this.run(Tensor.fromArray(Int32Array.from(tokens), [B, 1], "int32"), Tensor.fromArray(Int32Array.from(masks.flat()), [B, len], "int32"),
            Tensor.fromArray(pos, [B, 1], "int32"), null, caches, {});
        }
        caches = r.caches;
        return last(r.h);
      }),
      reorder: (rows) => {
        masks = rows.map((r) => [...masks[r]]);
        if (caches) { const idx = Tensor.fromArray(Int32Array.from(rows), [rows.length], "int32"); caches = caches.map((c) => ({ k: indexSelect(c.k, 0, idx), v: indexSelect(c.v, 0, idx) })); }
      },
    };
  }
}

export const gpt2Family: HFFamily = {
  modelTypes: ["gpt2"],
  baseModelPrefix: "transformer",
  architectures: ["GPT2LMHeadModel"],
  fromConfig(config, architecture = "GPT2LMHeadModel") {
    if (architecture !== "GPT2LMHeadModel") {
      throw new HFImportError(`config.json: "architectures" names ${architecture}, not supported for model_type "gpt2" (supported: ${gpt2Family.architectures.join(", ")})`);
    }
    return new GPT2LMHeadModel(config);
  },
};
