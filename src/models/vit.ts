// Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words") built from attnflow's nn blocks:
//   pixels (B, C, H, W) in [0, 1] → normalise → cut into P×P patches (B, N, K·K·C), N = (H/P)·(W/P), each patch
//   optionally widened by `patchOverlap` pixels of context (K = P + 2·overlap; K = P is the standard ViT)
//   → patch_embed.proj: Linear(K·K·C, D) → prepend a learned [CLS] token → + learned position embeddings (1, N+1, D)
//   With a convolutional stem (`stemChannels`, a "hybrid" ViT as in Dosovitskiy et al. §3.1 and Xiao et al. 2021,
//   "Early Convolutions Help Transformers See Better"): normalised pixels → 3×3 convolutions with GELU
//   (stem.<i>; the last one has stride `stemStride`) → the patches are cut from the stem's feature map instead of
//   the pixels (a P×P image cell is a (P/stride)×(P/stride) feature cell) → patch_embed.proj as before.
//   → depth × pre-norm TransformerEncoderLayer (GELU MLP, batch-first) → final LayerNorm
//   → pool ([CLS] token, or the mean of the patch tokens) → head: Linear(D, numClasses) → logits (B, numClasses).
// Browser-safe. State-dict names follow timm's ViT where they can (patch_embed.proj, cls_token, pos_embed, norm, head);
// the encoder keeps PyTorch's nn.TransformerEncoder names (encoder.layers.0.self_attn.in_proj_weight, ...).
import { Tensor } from "../tensor.js";
import { zeros } from "../creation.js";
import { cat } from "../ops/movement.js";
import { shapeStr } from "../shape.js";
import { defaultGenerator, type Generator } from "../random.js";
import { Module, Parameter } from "../nn/module.js";
import { Dropout, LayerNorm, Linear } from "../nn/layers.js";
import { TransformerEncoder, TransformerEncoderLayer } from "../nn/transformer.js";
import { Conv2d } from "../nn/conv.js";
import { ModuleList } from "../nn/layers.js";
import { gatherRowsPadded } from "../ops/conv.js";
import { where } from "../ops/elementwise.js";
import { MultiheadAttention } from "../nn/attention.js";
import { truncNormal_, uniform_, zeros_, ones_ } from "../nn/init.js";

export interface VitConfig {
  /** Square input side in pixels (28 for Fashion-MNIST). */
  imageSize: number;
  /** Square patch side; must divide imageSize. */
  patchSize: number;
  channels: number;
  numClasses: number;
  dModel: number;
  depth: number;
  heads: number;
  /** Hidden width of each layer's MLP. */
  mlpDim: number;
  /** Dropout inside the encoder layers (attention weights, MLP, residual branches). */
  dropout: number;
  /**
   * Pixels of context each patch token also sees on every side (overlapping patch embedding, zero outside the
   * image); 0 (default) is the standard ViT. The token still stands for its P×P cell in explanations.
   */
  patchOverlap?: number;
  /**
   * Output channels of the convolutional stem's 3×3 layers (padding 1, GELU after each), in order; [] (default) = no
   * stem, patches are cut from the pixels. E.g. [32] or [16, 32].
   */
  stemChannels?: number[];
  /** Stride of the stem's last convolution (the others have stride 1); must divide patchSize and patchOverlap. Default 2. */
  stemStride?: number;
  /** MLP activation (default "gelu"; "relu" is cheaper on CPU). */
  activation?: "gelu" | "relu";
  /** Dropout on the token embeddings after the position embeddings are added (default 0). */
  embDropout?: number;
  /** Read the class from the [CLS] token, or from the mean of the patch tokens. */
  pool: "cls" | "mean";
  /** Per-channel normalisation applied inside the model: x ← (pixel − mean) / std (defaults 0 and 1). */
  pixelMean?: number;
  pixelStd?: number;
  layerNormEps?: number;
}

export interface VitForwardOptions {
  /**
   * Token positions to blank out: 1..N are patches in row-major order (position 0 is [CLS] and cannot be occluded).
   * An occluded patch has all its pixels set to `occludeValue` before the patch embedding.
   */
  occlude?: readonly number[];
  /** Pixel value (input scale, [0, 1]) of an occluded patch; default pixelMean (the "mean patch", 0 after normalising). */
  occludeValue?: number;
  /**
   * Sees the token embeddings (B, N+1, D) = [CLS; patch_embed(patches)] before the position embeddings are added and
   * may return a replacement (same shape); used for input × gradient.
   */
  onEmbeddings?: (x: Tensor) => Tensor;
}

/** Fill a config's optional fields and check it; throws naming the offending field. */
export function resolveVitConfig(c: VitConfig): Required<VitConfig> {
  const full: Required<VitConfig> = { patchOverlap: 0, stemChannels: [], stemStride: 2, activation: "gelu", embDropout: 0, pixelMean: 0, pixelStd: 1, layerNormEps: 1e-6, ...c };
  if (!Number.isInteger(full.patchOverlap) || full.patchOverlap < 0 || full.patchOverlap > full.imageSize) {
    throw new Error(`VisionTransformer: config.patchOverlap must be an integer in [0, ${full.imageSize}], got ${String(full.patchOverlap)}`);
  }
  const posInt = ["imageSize", "patchSize", "channels", "numClasses", "dModel", "depth", "heads", "mlpDim"] as const;
  for (const k of posInt) {
    const v = full[k];
    if (!Number.isInteger(v) || v < 1) throw new Error(`VisionTransformer: config.${k} must be a positive integer, got ${String(v)}`);
  }
  if (!Array.isArray(full.stemChannels) || full.stemChannels.some((ch) => !Number.isInteger(ch) || ch < 1)) {
    throw new Error(`VisionTransformer: config.stemChannels must be a list of positive integers, got ${JSON.stringify(full.stemChannels)}`);
  }
  if (!Number.isInteger(full.stemStride) || full.stemStride < 1) throw new Error(`VisionTransformer: config.stemStride must be a positive integer, got ${String(full.stemStride)}`);
  if (full.stemChannels.length > 0) {
    const r = full.stemStride;
    if (full.patchSize % r !== 0 || full.patchOverlap % r !== 0) {
      throw new Error(`VisionTransformer: config.stemStride ${r} must divide config.patchSize ${full.patchSize} and config.patchOverlap ${full.patchOverlap}`);
    }
  }
  if (full.imageSize % full.patchSize !== 0) {
    throw new Error(`VisionTransformer: config.patchSize ${full.patchSize} must divide config.imageSize ${full.imageSize}`);
  }
  if (full.dModel % full.heads !== 0) throw new Error(`VisionTransformer: config.dModel ${full.dModel} must be divisible by config.heads ${full.heads}`);
  for (const k of ["dropout", "embDropout"] as const) {
    if (!(full[k] >= 0 && full[k] < 1)) throw new Error(`VisionTransformer: config.${k} must be in [0, 1), got ${String(full[k])}`);
  }
  if (full.activation !== "gelu" && full.activation !== "relu") throw new Error(`VisionTransformer: config.activation must be "gelu" or "relu", got ${String(full.activation)}`);
  if (full.pool !== "cls" && full.pool !== "mean") throw new Error(`VisionTransformer: config.pool must be "cls" or "mean", got ${String(full.pool)}`);
  if (!(full.pixelStd > 0) || !Number.isFinite(full.pixelMean)) {
    throw new Error(`VisionTransformer: config.pixelStd must be > 0 and pixelMean finite, got ${full.pixelMean} / ${full.pixelStd}`);
  }
  return full;
}

/** patch_embed: flattened P×P×C patches → D. */
export class PatchEmbedding extends Module {
  proj: Linear;
  constructor(readonly patchDim: number, readonly dModel: number) {
    super();
    this.proj = new Linear(patchDim, dModel);
  }
  /** (B, N, K·K·C) → (B, N, D). */
  forward(patches: Tensor): Tensor { return this.proj.forward(patches); }
}

export class VisionTransformer extends Module {
  readonly config: Required<VitConfig>;
  /** Patch grid [rows, cols] and patch count N = rows · cols; the sequence length is N + 1. */
  readonly grid: [number, number];
  readonly numPatches: number;
  /** Inputs per token, K·K·C with K = patchSize + 2·patchOverlap. */
  readonly patchDim: number;
  /** (N·K·K·C): flat pixel index (channel, y, x) feeding each patch input, −1 outside the image. */
  private readonly patchIndex: Int32Array;
  /** The convolutional stem (empty without one). */
  stem: ModuleList;
  /** With a stem: (N·K'·K') rows of the stem's feature map feeding each patch, K' = K / stemStride, −1 outside it. */
  private readonly featureIndex: Int32Array | null = null;
  /** Side of the stem's (square) feature map. */
  private readonly featureSide: number;
  patchEmbed: PatchEmbedding;
  clsToken: Tensor;   // (1, 1, D)
  posEmbed: Tensor;   // (1, N+1, D)
  posDrop: Dropout;
  encoder: TransformerEncoder;
  norm: LayerNorm;
  head: Linear;

  constructor(config: VitConfig, gen: Generator = defaultGenerator) {
    super();
    const c = (this.config = resolveVitConfig(config));
    const g = c.imageSize / c.patchSize;
    this.grid = [g, g];
    this.numPatches = g * g;
    const P = c.patchSize, ov = c.patchOverlap, K = P + 2 * ov, S = c.imageSize, C = c.channels;
    this.stem = new ModuleList(c.stemChannels.map((out, i) => new Conv2d(i === 0 ? C : c.stemChannels[i - 1], out, 3, {
      padding: 1, stride: i === c.stemChannels.length - 1 ? c.stemStride : 1, generator: gen,
    })));
    const hasStem = c.stemChannels.length > 0;
    const st = hasStem ? c.stemStride : 1, Cf = hasStem ? c.stemChannels[c.stemChannels.length - 1] : C;
    this.featureSide = hasStem ? Math.floor((S - 1) / st) + 1 : S;   // 3×3, padding 1, stride st
    this.patchDim = (K / st) * (K / st) * Cf;
    if (hasStem) {
      // window of patch (row, col) in feature units: cell side P/st, context ov/st, rows (y·Sf + x) of one image's map
      const Pf = P / st, ovf = ov / st, Kf = K / st, Sf = this.featureSide;
      this.featureIndex = new Int32Array(this.numPatches * Kf * Kf);
      for (let row = 0, j = 0; row < g; row++) for (let q = 0; q < g; q++) for (let ky = 0; ky < Kf; ky++) for (let kx = 0; kx < Kf; kx++, j++) {
        const y = row * Pf - ovf + ky, x = q * Pf - ovf + kx;
        this.featureIndex[j] = y < 0 || y >= Sf || x < 0 || x >= Sf ? -1 : y * Sf + x;
      }
    }
    this.patchIndex = new Int32Array(this.numPatches * K * K * C);
    for (let r = 0, j = 0; r < g; r++) for (let q = 0; q < g; q++) {
      for (let ky = 0; ky < K; ky++) for (let kx = 0; kx < K; kx++) for (let ch = 0; ch < C; ch++, j++) {
        const y = r * P - ov + ky, x = q * P - ov + kx;
        this.patchIndex[j] = y < 0 || y >= S || x < 0 || x >= S ? -1 : (ch * S + y) * S + x;
      }
    }
    this.patchEmbed = new PatchEmbedding(this.patchDim, c.dModel);
    this.clsToken = Parameter(zeros([1, 1, c.dModel]));
    this.posEmbed = Parameter(zeros([1, this.numPatches + 1, c.dModel]));
    this.posDrop = new Dropout(c.embDropout);
    this.encoder = new TransformerEncoder(() => new TransformerEncoderLayer(c.dModel, c.heads, {
      dimFeedforward: c.mlpDim, dropout: c.dropout, activation: c.activation, batchFirst: true, normFirst: true, layerNormEps: c.layerNormEps,
    }), c.depth);
    this.norm = new LayerNorm(c.dModel, { eps: c.layerNormEps });
    this.head = new Linear(c.dModel, c.numClasses);
    this.initWeights(gen);
  }

  /**
   * timm-style initialisation, all drawn from `gen` (so one seed fixes the model): Linear weights ~ N(0, 0.02²)
   * truncated at ±2σ, biases 0; the fused QKV projection Xavier-uniform over each of its three (D, D) blocks;
   * [CLS] and position embeddings ~ N(0, 0.02²) truncated; LayerNorms 1 / 0.
   */
  private initWeights(gen: Generator): void {
    const tn = (t: Tensor) => truncNormal_(t, 0, 0.02, -0.04, 0.04, gen);
    tn(this.clsToken); tn(this.posEmbed);
    for (const m of this.modules()) {
      if (m instanceof Linear) { tn(m.weight); if (m.bias) zeros_(m.bias); }
      else if (m instanceof LayerNorm) { if (m.weight) ones_(m.weight); if (m.bias) zeros_(m.bias); }
      else if (m instanceof MultiheadAttention && m.inProjWeight) {
        const D = m.embedDim, a = Math.sqrt(6 / (2 * D)); // Xavier bound of one (D, D) block
        uniform_(m.inProjWeight, -a, a, gen);
        if (m.inProjBias) zeros_(m.inProjBias);
      }
    }
  }

  /** Sequence length N + 1 ([CLS] first, then patches row-major: token 1 + r·cols + c is patch (r, c)). */
  get seqLen(): number { return this.numPatches + 1; }

  /** Token labels for explanations: "CLS", "r0c0", "r0c1", ... */
  tokenNames(): string[] {
    const [rows, cols] = this.grid, out = ["CLS"];
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out.push(`r${r}c${c}`);
    return out;
  }

  /**
   * Cut normalised images into patch vectors: (B, C, H, W) or (B, H, W) when C = 1 → (B, N, K·K·C) with K = P + 2·overlap:
   * token n = 1 + r·cols + c sees the P×P cell (r, c) plus `overlap` pixels of context on every side (zero pixels
   * outside the image), flattened as (ky, kx, channel). Pixels are expected in [0, 1]; pixelMean/pixelStd apply here.
   * Occluded cells are set to the fill value in the image first, so neighbouring windows see the blank too.
   */
  patchify(images: Tensor, o: { occlude?: readonly number[]; occludeValue?: number } = {}): Tensor {
    const c = this.config, S = c.imageSize, C = c.channels;
    this.checkImages(images);
    const B = images.shape[0], N = this.numPatches, pd = this.patchIndex.length / N, HW = C * S * S, idx = this.patchIndex;
    const shown = this.occludedImages(images, o);                                    // (B, C, H, W) or (B, H, W)
    if (images.requiresGrad) {
      // Differentiable path (pixel saliency): gather from the flattened image with one extra zero pixel for the border.
      const ext = cat([shown.reshape([B, HW]), zeros([B, 1])], 1);                    // (B, C·H·W + 1)
      const gatherIdx = Int32Array.from(idx, (k) => (k < 0 ? HW : k));
      const x = ext.indexSelect(1, Tensor.fromArray(gatherIdx, [N * pd], "int32")).reshape([B, N, pd]);
      return x.sub(c.pixelMean).div(c.pixelStd);
    }
    const src = shown.contiguous().dataSync() as Float32Array;
    const out = Tensor.empty([B, N, pd]);
    const dst = out.storage.data as Float32Array;
    const inv = 1 / c.pixelStd, mu = c.pixelMean, pad = -mu * inv, M = N * pd;
    for (let b = 0; b < B; b++) {
      const base = b * HW, o0 = b * M;
      for (let j = 0; j < M; j++) { const k = idx[j]; dst[o0 + j] = k < 0 ? pad : (src[base + k] - mu) * inv; }
    }
    return out;
  }

  /**
   * The images with every pixel of an occluded cell set to the fill value (`occludeValue`, default pixelMean), so
   * that overlapping windows and stem convolutions see the blank too; the images themselves when nothing is
   * occluded. Differentiable in the shown pixels.
   */
  private occludedImages(images: Tensor, o: { occlude?: readonly number[]; occludeValue?: number }): Tensor {
    const blank = this.occlusionMask(o.occlude);
    if (!blank) return images;
    const c = this.config, S = c.imageSize, P = c.patchSize, cols = this.grid[1];
    const pixels = new Uint8Array(S * S);                                            // pixel (y, x) lies in cell (⌊y/P⌋, ⌊x/P⌋)
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) pixels[y * S + x] = blank[((y / P) | 0) * cols + ((x / P) | 0)];
    const mask = Tensor.fromArray(pixels, images.ndim === 4 ? [1, 1, S, S] : [1, S, S], "bool");
    return where(mask, o.occludeValue ?? c.pixelMean, images);
  }

  private checkImages(images: Tensor): void {
    const S = this.config.imageSize, C = this.config.channels;
    const okShape = (images.ndim === 4 && images.shape[1] === C && images.shape[2] === S && images.shape[3] === S) ||
      (images.ndim === 3 && C === 1 && images.shape[1] === S && images.shape[2] === S);
    if (!okShape) {
      throw new Error(`VisionTransformer: expected images (B, ${C}, ${S}, ${S})${C === 1 ? ` or (B, ${S}, ${S})` : ""}, got ${shapeStr(images.shape)}`);
    }
  }

  /**
   * Normalised images, channels-last (B, H, W, C), with occluded cells set to the fill value first; differentiable
   * when `images` requires grad (pixel saliency).
   */
  normalizedImages(images: Tensor, o: { occlude?: readonly number[]; occludeValue?: number } = {}): Tensor {
    this.checkImages(images);
    const c = this.config, S = c.imageSize, C = c.channels, B = images.shape[0];
    const shown = this.occludedImages(images, o);                                    // (B, C, H, W) or (B, H, W)
    if (images.requiresGrad) {
      const x = shown.reshape([B, C, S, S]).sub(c.pixelMean).div(c.pixelStd);        // (B, C, H, W)
      return C === 1 ? x.reshape([B, S, S, 1]) : x.permute([0, 2, 3, 1]).contiguous(); // (B, H, W, C)
    }
    const src = shown.contiguous().dataSync() as Float32Array, out = Tensor.empty([B, S, S, C]);
    const dst = out.storage.data as Float32Array, inv = 1 / c.pixelStd, mu = c.pixelMean;
    for (let b = 0; b < B; b++) for (let ch = 0; ch < C; ch++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
      dst[((b * S + y) * S + x) * C + ch] = (src[((b * C + ch) * S + y) * S + x] - mu) * inv;
    }
    return out;
  }

  /**
   * With a stem: images → stem feature map (B, Sf, Sf, Cf) → patch vectors (B, N, K'·K'·Cf) (each token's window of
   * the map, flattened (ky, kx, channel), zero outside the map).
   */
  stemPatches(images: Tensor, o: { occlude?: readonly number[]; occludeValue?: number } = {}): Tensor {
    if (!this.featureIndex) throw new Error("VisionTransformer: stemPatches needs a convolutional stem (config.stemChannels is empty)");
    let x = this.normalizedImages(images, o);                                        // (B, S, S, C)
    for (const conv of this.stem.children() as Conv2d[]) x = conv.forwardChannelsLast(x, "gelu"); // (B, Sf, Sf, Cf) at the end
    const B = x.shape[0], Sf = this.featureSide, Cf = x.shape[3], N = this.numPatches, fi = this.featureIndex;
    const per = fi.length, idx = new Int32Array(B * per);
    for (let b = 0; b < B; b++) for (let j = 0; j < per; j++) idx[b * per + j] = fi[j] < 0 ? -1 : b * Sf * Sf + fi[j];
    return gatherRowsPadded(x.reshape([B * Sf * Sf, Cf]), idx).reshape([B, N, this.patchDim]); // (B, N, K'·K'·Cf)
  }

  /** Occluded token positions (1..N) → a (N) 0/1 mask over cells; errors name a bad position. */
  private occlusionMask(occlude: readonly number[] | undefined): Uint8Array | null {
    if (!occlude || occlude.length === 0) return null;
    const N = this.numPatches, m = new Uint8Array(N);
    for (const t of occlude) {
      if (!Number.isInteger(t) || t < 1 || t > N) {
        throw new Error(`VisionTransformer: occlude position ${String(t)} is not a patch token (1..${N}; 0 is [CLS])`);
      }
      m[t - 1] = 1;
    }
    return m;
  }

  /** Encoder output after the final LayerNorm: (B, N+1, D). */
  features(images: Tensor, o: VitForwardOptions = {}): Tensor {
    const D = this.config.dModel;
    const patches = this.featureIndex ? this.stemPatches(images, o) : this.patchify(images, o); // (B, N, patchDim)
    const B = patches.shape[0];
    const emb = this.patchEmbed.forward(patches);                                    // (B, N, D)
    let x = cat([this.clsToken.expand([B, 1, D]), emb], 1);                          // (B, N+1, D)
    if (o.onEmbeddings) {
      const y = o.onEmbeddings(x);
      if (y.ndim !== 3 || y.shape.some((d, i) => d !== x.shape[i])) {
        throw new Error(`VisionTransformer: onEmbeddings must return ${shapeStr(x.shape)}, got ${shapeStr(y.shape)}`);
      }
      x = y;
    }
    x = this.posDrop.forward(x.add(this.posEmbed));                                  // (B, N+1, D)
    x = this.encoder.forward(x);                                                     // (B, N+1, D); self-attention (B, H, N+1, N+1) per layer
    return this.norm.forward(x);
  }

  /** Logits (B, numClasses) for pixels in [0, 1]. */
  forward(images: Tensor, o: VitForwardOptions = {}): Tensor {
    const x = this.features(images, o);                                              // (B, N+1, D)
    const pooled = this.config.pool === "cls"
      ? x.select(1, 0)                                                               // (B, D): the [CLS] token
      : x.narrow(1, 1, this.numPatches).mean(1);                                     // (B, D): mean of the patch tokens
    return this.head.forward(pooled);                                                // (B, numClasses)
  }

  protected override extraRepr(): string {
    const c = this.config;
    return `imageSize=${c.imageSize}, patchSize=${c.patchSize}, dModel=${c.dModel}, depth=${c.depth}, heads=${c.heads}, pool=${c.pool}`;
  }
}
