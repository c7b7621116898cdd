// The browser-safe half of the "fashion-vit" task: the model config (defaults, overrides, checks), the model, and
// prediction / explanation of one 28×28 grey image in [0, 1]. The Node task (src/node/tasks/fashion-vit.ts) adds the
// dataset, augmentation, training loss and evaluation, and reads image files; a web page decodes images itself
// (src/data/grey-image.ts) and uses `imageClassifierFromCheckpoint(bytes)`.
import { Tensor } from "../tensor.js";
import { noGrad } from "../autograd.js";
import { tidy } from "../scope.js";
import { defaultGenerator, type Generator } from "../random.js";
import { VisionTransformer, resolveVitConfig, type VitConfig } from "../models/vit.js";
import { trainedModelFromBytes } from "../io/checkpoint-bytes.js";
import type { ExplainTarget, ModelConfig, Prediction } from "./task.js";
import { checkConfigFields, LIMITS, rules as r, type FieldRule } from "./config-check.js";

/** Fashion-MNIST label names, index = label. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
];

export const IMAGE_SIDE = 28;
const SIDE = IMAGE_SIDE, PIXELS = SIDE * SIDE;
/** Mean and standard deviation of the Fashion-MNIST training pixels (scaled to [0, 1]). */
export const FASHION_PIXEL_MEAN = 0.2860, FASHION_PIXEL_STD = 0.3530;

/** Training-only knobs stored next to the architecture in the model config. */
export interface FashionTrainKnobs {
  labelSmoothing: number;
  /** Random shift of up to ±cropPad pixels (zero fill), as random-crop-with-padding; 0 = off. */
  cropPad: number;
  /** Horizontal flip with probability 1/2. */
  flip: boolean;
}

export type FashionVitConfig = VitConfig & FashionTrainKnobs & { classNames: string[] };

export const FASHION_VIT_DEFAULT_CONFIG: FashionVitConfig = {
  imageSize: SIDE, patchSize: 4, patchOverlap: 2, channels: 1, numClasses: 10,
  dModel: 64, depth: 6, heads: 4, mlpDim: 256, dropout: 0, embDropout: 0, pool: "mean", activation: "gelu",
  pixelMean: FASHION_PIXEL_MEAN, pixelStd: FASHION_PIXEL_STD,
  stemChannels: [16, 32], stemStride: 2,
  labelSmoothing: 0.1, cropPad: 0, flip: true,
  classNames: [...FASHION_MNIST_CLASSES],
};

/** One line per model option of `attnflow train fashion-vit` (the defaults come from the config above). */
const OPTION_HELP: Record<string, string> = {
  patchSize: "patch side in pixels (after the stem)", patchOverlap: "overlap of neighbouring patches in pixels",
  dModel: "embedding width", depth: "Transformer layers", heads: "attention heads per layer (must divide d-model)",
  mlpDim: "hidden width of each layer's MLP", dropout: "dropout probability in [0, 1)", embDropout: "dropout after the patch embedding",
  pool: "mean (of the patch tokens) or cls", activation: "gelu or relu", pixelMean: "input normalisation: mean",
  pixelStd: "input normalisation: standard deviation", stemChannels: "convolutional stem channels, comma list (none: no stem)",
  stemStride: "stride of the stem's first convolution", labelSmoothing: "label smoothing of the training loss, in [0, 1)",
  cropPad: "random shift of up to +-N pixels while training; 0: off", flip: "random horizontal flips while training",
  layerNormEps: "LayerNorm epsilon",
};

/** The model options with their defaults; the image size, channels and classes are fixed by the dataset. */
export function fashionVitModelOptions(): Record<string, { default: unknown; help: string }> {
  const d = { ...FASHION_VIT_DEFAULT_CONFIG, layerNormEps: 1e-6 } as unknown as Record<string, unknown>;
  return Object.fromEntries(Object.entries(OPTION_HELP).map(([k, help]) => [k, { default: d[k], help }]));
}

const knobsOf = new WeakMap<VisionTransformer, FashionTrainKnobs>();
/** The training knobs a model was built with (defaults for a model made elsewhere). */
export function trainKnobs(model: VisionTransformer): FashionTrainKnobs { return knobsOf.get(model) ?? FASHION_VIT_DEFAULT_CONFIG; }


const FASHION_VIT_RULES: Record<string, FieldRule> = {
  imageSize: r.int(SIDE, SIDE), channels: r.int(1, 1), patchSize: r.int(1, SIDE), patchOverlap: r.int(0, SIDE), numClasses: r.int(1, 100_000),
  dModel: r.width(), depth: r.layers(), heads: r.width(), mlpDim: r.width(), dropout: r.fraction(), embDropout: r.fraction(),
  pool: r.oneOf(["cls", "mean"]), activation: r.oneOf(["gelu", "relu"]), pixelMean: r.number(-1e6, 1e6),
  pixelStd: { type: "number", min: 0, max: 1e6, minExclusive: true }, stemChannels: r.ints(1, LIMITS.width), stemStride: r.int(1, SIDE),
  labelSmoothing: r.fraction(), cropPad: r.int(0, SIDE - 1), flip: r.bool(), classNames: r.strings(1),
  layerNormEps: { type: "number", min: 0, max: 1, minExclusive: true, optional: true },
};

/** Merge CLI/config overrides (camelCase or kebab-case keys) into the defaults; unknown keys are an error. */
export function fashionVitConfig(overrides: ModelConfig = {}): FashionVitConfig {
  const out: Record<string, unknown> = { ...FASHION_VIT_DEFAULT_CONFIG };
  const known = new Set([...Object.keys(FASHION_VIT_DEFAULT_CONFIG), "layerNormEps"]);
  for (const [k0, v] of Object.entries(overrides)) {
    const k = k0.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!known.has(k)) throw new Error(`fashion-vit: unknown model option "${k0}" (known: ${[...known].join(", ")})`);
    const def = (FASHION_VIT_DEFAULT_CONFIG as unknown as Record<string, unknown>)[k];
    out[k] = Array.isArray(def) && typeof v === "number" ? [v]
      : Array.isArray(def) && typeof v === "string" ? (v.trim() === "" || v.trim() === "none" ? [] : v.split(",").map((e) => Number(e.trim())))
      : typeof def === "number" && typeof v === "string" ? Number(v)
      : typeof def === "boolean" && typeof v === "string" ? v === "true" || v === "1" : v;
  }
  checkConfigFields("fashion-vit", out, FASHION_VIT_RULES);
  const c = out as unknown as FashionVitConfig;
  resolveVitConfig(c);
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 1)) throw new Error(`fashion-vit: labelSmoothing must be in [0, 1), got ${String(c.labelSmoothing)}`);
  if (!Number.isInteger(c.cropPad) || c.cropPad < 0 || c.cropPad >= SIDE) throw new Error(`fashion-vit: cropPad must be an integer in [0, ${SIDE - 1}], got ${String(c.cropPad)}`);
  if (typeof c.flip !== "boolean") throw new Error(`fashion-vit: flip must be true or false, got ${String(c.flip)}`);
  if (c.imageSize !== SIDE || c.channels !== 1) throw new Error(`fashion-vit: Fashion-MNIST images are ${SIDE}×${SIDE} greyscale (imageSize ${SIDE}, channels 1), got imageSize ${c.imageSize}, channels ${c.channels}`);
  if (!Array.isArray(c.classNames) || c.classNames.length !== c.numClasses) throw new Error(`fashion-vit: classNames must list numClasses (${c.numClasses}) names`);
  return c;
}

/** The model for a resolved config (the knobs are remembered for the training loss). */
export function buildModel(config: FashionVitConfig, gen?: Generator): VisionTransformer {
  const m = new VisionTransformer(config, gen ?? defaultGenerator);
  knobsOf.set(m, { labelSmoothing: config.labelSmoothing, cropPad: config.cropPad, flip: config.flip });
  return m;
}

/** Evaluate logits over `n` images taken by `get(i)` in chunks (eval mode, no grad). */
export function logitsInChunks(model: VisionTransformer, n: number, fill: (start: number, count: number, dst: Float32Array) => void,
  each: (logits: Float32Array, start: number, count: number) => void, onProgress?: (d: number, t: number) => void, chunk = 64): void {
  const buf = new Float32Array(Math.min(chunk, n) * PIXELS);
  for (let s = 0; s < n; s += chunk) {
    const c = Math.min(chunk, n - s);
    fill(s, c, buf);
    const out = noGrad(() => tidy(() => model.forward(Tensor.fromArray(buf.subarray(0, c * PIXELS), [c, SIDE, SIDE])).dataSync() as Float32Array));
    each(out, s, c);
    onProgress?.(s + c, n);
  }
}

export function softmaxRow(z: ArrayLike<number>, off: number, C: number): Float64Array {
  let m = -Infinity;
  for (let j = 0; j < C; j++) m = Math.max(m, z[off + j]);
  const p = new Float64Array(C);
  let s = 0;
  for (let j = 0; j < C; j++) { p[j] = Math.exp(z[off + j] - m); s += p[j]; }
  for (let j = 0; j < C; j++) p[j] /= s;
  return p;
}

function checkPixels(pixels: ArrayLike<number>): void {
  if (pixels.length !== PIXELS) throw new Error(`fashion-vit: pixels must hold ${SIDE}·${SIDE} = ${PIXELS} values in [0, 1], got ${pixels.length}`);
}

/** Class probabilities of one image (28·28 grey values in [0, 1]), best three first; `details` are passed through. */
export function predictPixels(model: VisionTransformer, config: ModelConfig, pixels: Float32Array, details: Record<string, unknown> = {}): Prediction {
  checkPixels(pixels);
  const c = fashionVitConfig(config);
  let z!: Float32Array;
  logitsInChunks(model, 1, (_s, _c, dst) => dst.set(pixels), (l) => { z = l; });
  const p = softmaxRow(z, 0, c.numClasses);
  const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a]);
  return {
    output: c.classNames[order[0]],
    alternatives: order.slice(0, 3).map((j) => ({ output: c.classNames[j], score: p[j] })),
    scoreName: "probability",
    details,
  } satisfies Prediction;
}

/** What runExplanation needs to explain class `target` (name or index; default: the predicted one) for one image. */
export function explainPixels(model: VisionTransformer, config: ModelConfig, pixels: Float32Array, target?: string): ExplainTarget {
  checkPixels(pixels);
  const c = fashionVitConfig(config);
  const x = Tensor.fromArray(pixels, [1, SIDE, SIDE]);
  let targetIndex: number;
  if (target === undefined || target === "") {
    let z!: Float32Array;
    logitsInChunks(model, 1, (_s, _c, dst) => dst.set(pixels), (l) => { z = l; });
    targetIndex = 0;
    for (let j = 1; j < c.numClasses; j++) if (z[j] > z[targetIndex]) targetIndex = j;
  } else {
    const byName = c.classNames.findIndex((n) => n.toLowerCase() === target.toLowerCase());
    targetIndex = byName >= 0 ? byName : /^\d+$/.test(target) ? Number(target) : -1;
    if (targetIndex < 0 || targetIndex >= c.numClasses) {
      throw new Error(`fashion-vit: unknown target class "${target}" (use an index 0..${c.numClasses - 1} or one of: ${c.classNames.join(", ")})`);
    }
  }
  return {
    tokens: model.tokenNames(),
    targetLabel: c.classNames[targetIndex],
    targetIndex,
    score: (o = {}) => model.forward(x, { occlude: o.occlude, onEmbeddings: o.onEmbeddings }).select(0, 0).select(0, targetIndex),
    layerFilter: (name) => /^encoder\.layers\.\d+\.self_attn$/.test(name),
    special: [0],
    query: (c.pool === "cls" ? 0 : "mean") as number | "mean",
    image: { width: SIDE, height: SIDE, pixels, patch: c.patchSize, grid: model.grid, prefix: 1 },
  } satisfies ExplainTarget;
}

/** A stored config as the model was trained: one without stemChannels predates the stem (the default was none). */
export function vitFromStoredConfig(config: ModelConfig): VisionTransformer {
  return buildModel(fashionVitConfig({ stemChannels: [], ...config }));
}

/** A trained image classifier from the bytes of its checkpoint: the model in eval mode with its weights, and its config. */
export function imageClassifierFromCheckpoint(bytes: Uint8Array, source = "checkpoint"): { model: VisionTransformer; config: ModelConfig } {
  return trainedModelFromBytes(bytes, source, "fashion-vit", vitFromStoredConfig);
}
