// Transformer encoder–decoder (Vaswani et al. 2017) built from attnflow's nn blocks, batch-first:
//   src ids (B, Ts) → src_embed·√D + sinusoidal positions → encoder (self-attention, key padding mask) → memory (B, Ts, D)
//   tgt ids (B, Tt) → tgt_embed·√D + positions → decoder (causal self-attention; cross-attention over memory with the
//   source key padding mask) → generator Linear(D, Vt) (or the transposed target embedding when tied) → logits (B, Tt, Vt).
// Browser-safe. Attention is recorded by captureAttention(): encoder "encoder.layers.i.self_attn" (kind "self"), decoder
// "decoder.layers.i.self_attn" (kind "self", causal) and "decoder.layers.i.multihead_attn" (kind "cross", (B, H, Tt, Ts)).
import { Tensor } from "../tensor.js";
import { zeros } from "../creation.js";
import { shapeStr } from "../shape.js";
import { noGrad } from "../autograd.js";
import { keep } from "../scope.js";
import { cat } from "../ops/movement.js";
import * as F from "../functional.js";
import { defaultGenerator, type Generator } from "../random.js";
import { Module, Parameter } from "../nn/module.js";
import { Embedding, LayerNorm, Linear } from "../nn/layers.js";
import { MultiheadAttention } from "../nn/attention.js";
import { SinusoidalPositionalEncoding } from "../nn/positional.js";
import { TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer } from "../nn/transformer.js";
import { normal_, ones_, xavierUniform_, zeros_ } from "../nn/init.js";

export interface Seq2SeqConfig {
  srcVocab: number;
  tgtVocab: number;
  dModel: number;
  heads: number;
  encoderLayers: number;
  decoderLayers: number;
  /** Hidden width of every layer's feed-forward block. */
  dimFeedforward: number;
  /** Dropout on embeddings, attention weights, feed-forward and residual branches. */
  dropout: number;
  /** Longest source / target sequence (the target counts [BOS]). */
  maxSrcLen: number;
  maxTgtLen: number;
  /** One embedding table for source and target (needs srcVocab === tgtVocab). Default false. */
  shareEmbeddings?: boolean;
  /** Output projection = target embedding table transposed (plus a bias). Default false. */
  tieOutput?: boolean;
  /** Pre-norm layers with a final LayerNorm on each stack (default true); false = the original post-norm. */
  normFirst?: boolean;
  activation?: "relu" | "gelu";
  /** Id of padding in both vocabularies (default 0, attnflow's [PAD]). */
  padId?: number;
}

/** The encoder's output plus what the decoder needs to ignore padded source positions. */
export interface EncoderState {
  /** (B, Ts, D) */
  memory: Tensor;
  /** (B, Ts) bool, true = padded (ignored) source position; null when nothing is padded. */
  srcPad: Tensor | null;
}

export interface EncodeOptions {
  /** Source positions to blank out (every row): embedding zeroed and the key masked out of attention. */
  occlude?: readonly number[];
  /** Sees the scaled source embeddings (B, Ts, D) before positions are added; may return a replacement. */
  onEmbeddings?: (x: Tensor) => Tensor;
}

/** Fill a config's optional fields and check it; throws naming the offending field. */
export function resolveSeq2SeqConfig(c: Seq2SeqConfig): Required<Seq2SeqConfig> {
  const full: Required<Seq2SeqConfig> = { shareEmbeddings: false, tieOutput: false, normFirst: true, activation: "relu", padId: 0, ...c };
  const posInt = ["srcVocab", "tgtVocab", "dModel", "heads", "encoderLayers", "decoderLayers", "dimFeedforward", "maxSrcLen", "maxTgtLen"] as const;
  for (const k of posInt) {
    const v = full[k];
    if (!Number.isInteger(v) || v < 1) throw new Error(`Seq2SeqTransformer: config.${k} must be a positive integer, got ${String(v)}`);
  }
  if (full.dModel % full.heads !== 0) throw new Error(`Seq2SeqTransformer: config.dModel ${full.dModel} must be divisible by config.heads ${full.heads}`);
  if (!(full.dropout >= 0 && full.dropout < 1)) throw new Error(`Seq2SeqTransformer: config.dropout must be in [0, 1), got ${String(full.dropout)}`);
  if (full.shareEmbeddings && full.srcVocab !== full.tgtVocab) {
    throw new Error(`Seq2SeqTransformer: config.shareEmbeddings needs srcVocab === tgtVocab, got ${full.srcVocab} and ${full.tgtVocab}`);
  }
  if (!Number.isInteger(full.padId) || full.padId < 0 || full.padId >= Math.min(full.srcVocab, full.tgtVocab)) {
    throw new Error(`Seq2SeqTransformer: config.padId ${String(full.padId)} is not an id of both vocabularies`);
  }
  if (full.activation !== "relu" && full.activation !== "gelu") throw new Error(`Seq2SeqTransformer: config.activation must be "relu" or "gelu", got ${String(full.activation)}`);
  return full;
}

export class Seq2SeqTransformer extends Module {
  readonly config: Required<Seq2SeqConfig>;
  srcEmbed: Embedding;
  tgtEmbed: Embedding;
  pos: SinusoidalPositionalEncoding;
  encoder: TransformerEncoder;
  decoder: TransformerDecoder;
  generator: Linear | null;
  /** Output bias when the projection is tied to the target embedding. */
  generatorBias: Tensor | null;

  /** Every weight is drawn from `gen` (default: the global generator), so one seed fixes the model. */
  constructor(config: Seq2SeqConfig, gen: Generator = defaultGenerator) {
    super();
    const c = (this.config = resolveSeq2SeqConfig(config));
    const D = c.dModel;
    this.srcEmbed = new Embedding(c.srcVocab, D, { paddingIdx: c.padId, generator: gen });
    this.tgtEmbed = c.shareEmbeddings ? this.srcEmbed : new Embedding(c.tgtVocab, D, { paddingIdx: c.padId, generator: gen });
    this.pos = new SinusoidalPositionalEncoding(D, { maxLen: Math.max(c.maxSrcLen, c.maxTgtLen), dropout: c.dropout, batchFirst: true });
    const layer = { dimFeedforward: c.dimFeedforward, dropout: c.dropout, activation: c.activation, batchFirst: true, normFirst: c.normFirst };
    this.encoder = new TransformerEncoder(() => new TransformerEncoderLayer(D, c.heads, layer), c.encoderLayers,
      c.normFirst ? new LayerNorm(D) : null);
    this.decoder = new TransformerDecoder(() => new TransformerDecoderLayer(D, c.heads, layer), c.decoderLayers,
      c.normFirst ? new LayerNorm(D) : null);
    this.generator = c.tieOutput ? null : new Linear(D, c.tgtVocab);
    this.generatorBias = c.tieOutput ? Parameter(zeros([c.tgtVocab])) : null;
    this.initWeights(gen);
  }

  /**
   * Embeddings ~ N(0, 1/D) (times √D at the input → unit variance; as logits weights when tied, unit-scale logits),
   * padding rows 0; every other matrix Xavier-uniform (the fused (3D, D) in-projection as three (D, D) blocks); biases 0;
   * LayerNorms 1 / 0.
   */
  private initWeights(gen: Generator): void {
    const D = this.config.dModel;
    for (const m of this.modules()) {
      if (m instanceof Embedding) {
        normal_(m.weight, 0, 1 / Math.sqrt(D), gen);
        m.weight.storage.data.fill(0, this.config.padId * D, (this.config.padId + 1) * D);
      } else if (m instanceof Linear) {
        xavierUniform_(m.weight, 1, gen);
        if (m.bias) zeros_(m.bias);
      } else if (m instanceof LayerNorm) {
        if (m.weight) ones_(m.weight);
        if (m.bias) zeros_(m.bias);
      } else if (m instanceof MultiheadAttention && m.inProjWeight) {
        const a = Math.sqrt(6 / (2 * D)); // Xavier bound of one (D, D) block
        const w = m.inProjWeight.storage.data;
        for (let i = 0; i < w.length; i++) w[i] = -a + 2 * a * gen.random();
        if (m.inProjBias) zeros_(m.inProjBias);
      }
    }
  }

  private checkIds(ids: Tensor, what: string, maxLen: number): void {
    if (ids.dtype !== "int32" || ids.ndim !== 2) throw new Error(`Seq2SeqTransformer: ${what} ids must be int32 (B, T), got ${ids.dtype} ${shapeStr(ids.shape)}`);
    if (ids.shape[1] < 1 || ids.shape[1] > maxLen) throw new Error(`Seq2SeqTransformer: ${what} length ${ids.shape[1]} must be in [1, ${maxLen}] (config max${what === "source" ? "Src" : "Tgt"}Len)`);
  }

  /** Source ids (B, Ts) → memory (B, Ts, D) and the key padding mask (true where src == padId). */
  encode(src: Tensor, o: EncodeOptions = {}): EncoderState {
    this.checkIds(src, "source", this.config.maxSrcLen);
    const [B, Ts] = src.shape, D = this.config.dModel;
    const ids = src.dataSync() as Int32Array;
    const pad = new Uint8Array(B * Ts);                                      // (B, Ts) 1 = padded
    for (let i = 0; i < ids.length; i++) pad[i] = ids[i] === this.config.padId ? 1 : 0;
    let x = this.srcEmbed.forward(src).mul(Math.sqrt(D));                   // (B, Ts, D)
    if (o.occlude?.length) {
      const keep = new Float32Array(Ts).fill(1);
      for (const p of o.occlude) {
        if (!Number.isInteger(p) || p < 0 || p >= Ts) throw new RangeError(`Seq2SeqTransformer: occluded position ${p} outside the source [0, ${Ts - 1}]`);
        keep[p] = 0;
      }
      x = x.mul(Tensor.fromArray(keep, [1, Ts, 1]));
      // mask the occluded keys too, unless that would leave a row with no visible key
      for (let b = 0; b < B; b++) {
        const row = pad.subarray(b * Ts, (b + 1) * Ts), masked = Uint8Array.from(row);
        for (let t = 0; t < Ts; t++) if (keep[t] === 0) masked[t] = 1;
        if (masked.includes(0)) row.set(masked);
      }
    }
    if (o.onEmbeddings) x = o.onEmbeddings(x);
    const srcPad = pad.includes(1) ? Tensor.fromArray(pad, [B, Ts], "bool") : null;
    const memory = this.encoder.forward(this.pos.forward(x), { srcKeyPaddingMask: srcPad }); // (B, Ts, D)
    return { memory, srcPad };
  }

  /** Decoder input ids (B, Tt) (starting with [BOS]) over an encoded source → logits (B, Tt, Vt). */
  decode(tgtIn: Tensor, enc: EncoderState): Tensor {
    this.checkIds(tgtIn, "target", this.config.maxTgtLen);
    const [B] = tgtIn.shape;
    if (enc.memory.ndim !== 3 || enc.memory.shape[0] !== B) {
      throw new Error(`Seq2SeqTransformer: memory ${shapeStr(enc.memory.shape)} does not match the target batch ${B}`);
    }
    const y = this.pos.forward(this.tgtEmbed.forward(tgtIn).mul(Math.sqrt(this.config.dModel))); // (B, Tt, D)
    // causal self-attention: target query i sees target keys 0..i; cross-attention sees every unpadded source key
    const h = this.decoder.forward(y, enc.memory, { tgtIsCausal: true, memoryKeyPaddingMask: enc.srcPad }); // (B, Tt, D)
    return this.generator ? this.generator.forward(h) : F.linear(h, this.tgtEmbed.weight, this.generatorBias); // (B, Tt, Vt)
  }

  /** Teacher-forced logits (B, Tt, Vt) for source ids (B, Ts) and decoder input ids (B, Tt). */
  forward(src: Tensor, tgtIn: Tensor): Tensor { return this.decode(tgtIn, this.encode(src)); }

  /**
   * One decoding step for search: logits (N, Vt) row-major of the token after each prefix. prefixes[i] (starting with
   * [BOS], lengths may differ) continues source row sources[i] of `enc`. Runs without gradients.
   */
  decodeStep(enc: EncoderState, prefixes: readonly (readonly number[])[], sources: readonly number[]): Float32Array {
    const N = prefixes.length, V = this.config.tgtVocab;
    if (sources.length !== N) throw new Error(`decodeStep: ${N} prefixes but ${sources.length} source indices`);
    if (N === 0) return new Float32Array(0);
    const B = enc.memory.shape[0];
    for (const s of sources) if (!Number.isInteger(s) || s < 0 || s >= B) throw new RangeError(`decodeStep: source index ${s} outside [0, ${B - 1}]`);
    const T = Math.max(...prefixes.map((p) => p.length));
    if (Math.min(...prefixes.map((p) => p.length)) < 1) throw new Error("decodeStep: every prefix needs at least the [BOS] token");
    const ids = new Int32Array(N * T).fill(this.config.padId);                // (N, T) right-padded: causal → no effect
    prefixes.forEach((p, i) => ids.set(p, i * T));
    return noGrad(() => {
      const idx = Tensor.fromArray(Int32Array.from(sources), [N]);
      const same = N === B && sources.every((s, i) => s === i);
      const sub: EncoderState = same ? enc : {
        memory: enc.memory.indexSelect(0, idx),                              // (N, Ts, D)
        srcPad: enc.srcPad ? enc.srcPad.indexSelect(0, idx) : null,
      };
      const logits = this.decode(Tensor.fromArray(ids, [N, T]), sub).dataSync() as Float32Array; // (N, T, V)
      const out = new Float32Array(N * V);
      prefixes.forEach((p, i) => out.set(logits.subarray((i * T + p.length - 1) * V, (i * T + p.length) * V), i * V));
      return out;
    });
  }
}

/** Per decoder layer: self-attention keys/values of the tokens fed so far, (N, H, t, hd) each. */
interface SelfCache { k: Tensor[]; v: Tensor[]; length: number }

/**
 * A step function for greedy/beam search (src/models/beam-search.ts) over `enc` that feeds only each prefix's last
 * token and keeps the decoder's self-attention keys/values between calls (reordered by `parents`); the memory's
 * cross-attention keys/values are projected once. Same logits as decodeStep (tested), ~T× less work per step.
 * Falls back to decodeStep when called without parents on a later step or with prefixes of unequal length.
 */
export function cachedSearchStep(model: Seq2SeqTransformer, enc: EncoderState):
  (memory: EncoderState, prefixes: readonly (readonly number[])[], sources: readonly number[], parents?: readonly number[]) => Float32Array {
  const c = model.config, E = c.dModel, H = c.heads, hd = E / H;
  const layers = [...model.decoder.layers];
  const heads = (t: Tensor, T: number) => t.reshape([t.shape[0], T, H, hd]).permute([0, 2, 1, 3]).contiguous(); // (N, H, T, hd)
  const proj = (m: MultiheadAttention, x: Tensor, i: number) => {
    if (!m.inProjWeight && !m.inProjInt8) throw new Error("cachedSearchStep: attention with separate q/k/v projections is not supported");
    if (m.prunedHeads.size) throw new Error("cachedSearchStep: cached decoding of a model with pruned heads (nn.pruneHeads) is not supported");
    return m.inProjection(x, i as 0 | 1 | 2);
  };
  // cross-attention keys/values of every source, per layer: (B, H, Ts, hd)
  const Ts = enc.memory.shape[1];
  const cross = noGrad(() => layers.map((ly) => ({ k: keep(heads(proj(ly.multiheadAttn, enc.memory, 1), Ts)), v: keep(heads(proj(ly.multiheadAttn, enc.memory, 2), Ts)) })));
  let cache: SelfCache | null = null;
  // the cross keys/values (and padding) gathered for the last `sources` list: beams keep the same list for most steps
  let gathered: { key: string; k: Tensor[]; v: Tensor[]; pad: Tensor | null } | null = null;
  const act = c.activation === "gelu" ? (x: Tensor) => F.gelu(x) : F.relu;
  return (memory, prefixes, sources, parents) => {
    const N = prefixes.length, t = prefixes[0]?.length ?? 0;
    const sameLength = prefixes.every((p) => p.length === t);
    const first = t === 1 && sameLength;
    if (memory !== enc || !sameLength || (!first && (!parents || !cache || cache.length !== t - 1))) {
      cache = null;
      return model.decodeStep(memory, prefixes, sources);
    }
    return noGrad(() => {
      const key = sources.join(",");
      if (gathered?.key !== key) {
        const idx = Tensor.fromArray(Int32Array.from(sources), [N]);
        gathered = { key, k: cross.map((x) => keep(x.k.indexSelect(0, idx))), v: cross.map((x) => keep(x.v.indexSelect(0, idx))), // (N, H, Ts, hd)
          pad: enc.srcPad ? keep(enc.srcPad.indexSelect(0, idx)) : null };               // (N, Ts)
      }
      const { k: crossK, v: crossV, pad } = gathered;
      const identity = !first && N === cache!.k[0]?.shape[0] && parents!.every((p, i) => p === i);
      const reorder = first || identity ? null : Tensor.fromArray(Int32Array.from(parents!), [N]);
      const pe = model.pos.getBuffer("pe")!.narrow(0, t - 1, 1);                          // (1, D) position of the new token
      const last = Tensor.fromArray(Int32Array.from(prefixes.map((p) => p[t - 1])), [N, 1]);
      let x = model.tgtEmbed.forward(last).mul(Math.sqrt(E)).add(pe);                    // (N, 1, D)
      const next: SelfCache = { k: [], v: [], length: t };
      layers.forEach((ly, l) => {
        const selfAttn = (y: Tensor) => {
          let k = heads(proj(ly.selfAttn, y, 1), 1), v = heads(proj(ly.selfAttn, y, 2), 1); // (N, H, 1, hd)
          if (!first) {
            const ck = reorder ? cache!.k[l].indexSelect(0, reorder) : cache!.k[l], cv = reorder ? cache!.v[l].indexSelect(0, reorder) : cache!.v[l];
            k = cat([ck, k], 2); v = cat([cv, v], 2);                                      // (N, H, t, hd)
          }
          next.k.push(keep(k)); next.v.push(keep(v));
          const o = F.scaledDotProductAttention(heads(proj(ly.selfAttn, y, 0), 1), k, v);  // (N, H, 1, hd): all earlier keys
          return ly.selfAttn.outProj.forward(o.permute([0, 2, 1, 3]).reshape([N, 1, E]));
        };
        const crossAttn = (y: Tensor) => {
          const o = F.scaledDotProductAttention(heads(proj(ly.multiheadAttn, y, 0), 1), crossK[l], crossV[l], { keyPaddingMask: pad }); // (N, H, 1, hd)
          return ly.multiheadAttn.outProj.forward(o.permute([0, 2, 1, 3]).reshape([N, 1, E]));
        };
        const ff = (y: Tensor) => ly.linear2.forward(act(ly.linear1.forward(y)));
        if (c.normFirst) {
          x = x.add(selfAttn(ly.norm1.forward(x)));
          x = x.add(crossAttn(ly.norm2.forward(x)));
          x = x.add(ff(ly.norm3.forward(x)));
        } else {
          x = ly.norm1.forward(x.add(selfAttn(x)));
          x = ly.norm2.forward(x.add(crossAttn(x)));
          x = ly.norm3.forward(x.add(ff(x)));
        }
      });
      cache = next;
      if (model.decoder.norm) x = model.decoder.norm.forward(x);
      const logits = model.generator ? model.generator.forward(x) : F.linear(x, model.tgtEmbed.weight, model.generatorBias); // (N, 1, V)
      return logits.dataSync() as Float32Array;
    });
  };
}

/**
 * Agreement of attention with a known alignment. attn (Tq, Tk) row-major (one example, e.g. head-/layer-averaged
 * cross-attention; row j = the decoder query that predicts target token j). spans[j] = source positions target j comes
 * from ([] = no known source: the row is skipped). A row counts as a hit when its argmax over the first `validKeys`
 * keys (ties → first) is in spans[j]. Returns hits and counted rows (rate = hits / total).
 */
export function alignmentAgreement(attn: ArrayLike<number>, rows: number, cols: number, spans: readonly (readonly number[])[],
  validKeys = cols): { hits: number; total: number } {
  if (attn.length !== rows * cols) throw new RangeError(`alignmentAgreement: attention has ${attn.length} values, expected (${rows}, ${cols})`);
  if (spans.length > rows) throw new RangeError(`alignmentAgreement: ${spans.length} aligned target positions but only ${rows} attention rows`);
  if (!(validKeys >= 1 && validKeys <= cols)) throw new RangeError(`alignmentAgreement: validKeys ${validKeys} outside [1, ${cols}]`);
  let hits = 0, total = 0;
  spans.forEach((span, j) => {
    if (!span.length) return;
    for (const s of span) if (!Number.isInteger(s) || s < 0 || s >= validKeys) throw new RangeError(`alignmentAgreement: span position ${s} of target ${j} outside [0, ${validKeys - 1}]`);
    let best = 0;
    for (let k = 1; k < validKeys; k++) if (attn[j * cols + k] > attn[j * cols + best]) best = k;
    total++;
    if (span.includes(best)) hits++;
  });
  return { hits, total };
}
