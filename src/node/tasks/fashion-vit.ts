// Task "fashion-vit": a Vision Transformer (src/models/vit.ts) classifying Fashion-MNIST (Debian package
// dataset-fashion-mnist, or --data DIR). Training batches are augmented with a random shift (random crop of the
// zero-padded image) and a horizontal flip, drawn from the default generator (which the trainer seeds and saves).
// Predict takes an image file (PNG / PGM, resized to 28×28 greyscale) or "test:<index>"; explain gives the patch grid.
import { Tensor } from "../../tensor.js";
import { noGrad } from "../../autograd.js";
import { tidy } from "../../scope.js";
import * as F from "../../functional.js";
import { defaultGenerator, type Generator } from "../../random.js";
import { VisionTransformer, resolveVitConfig, type VitConfig } from "../../models/vit.js";
import type { DataOptions, ExplainInput, ExplainTarget, ModelConfig, Prediction, Task, TrainDefaults } from "../../tasks/task.js";
import { FASHION_MNIST_CLASSES, loadFashionMnist } from "../datasets.js";
import { loadGreyImage } from "../image-file.js";

const SIDE = 28, PIXELS = SIDE * SIDE;
/** Mean and standard deviation of the Fashion-MNIST training pixels (scaled to [0, 1]). */
export const FASHION_PIXEL_MEAN = 0.2860, FASHION_PIXEL_STD = 0.3530;

export interface FashionData {
  trainImages: Uint8Array;   // (Ntrain, 28, 28)
  trainLabels: Uint8Array;   // (Ntrain)
  testImages: Uint8Array;    // (Ntest, 28, 28)
  testLabels: Uint8Array;    // (Ntest)
  classNames: string[];
  nTrain: number;
  nTest: number;
  /** Directory the data came from (undefined = the Debian default). */
  dir?: string;
}

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

export const FASHION_VIT_DEFAULTS: TrainDefaults = {
  epochs: 20, batchSize: 128, lr: 2e-3, weightDecay: 0.05, warmupSteps: 500, clipNorm: 1, evalLimit: 2000,
};

const knobsOf = new WeakMap<VisionTransformer, FashionTrainKnobs>();

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
  const c = out as unknown as FashionVitConfig;
  resolveVitConfig(c);
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 1)) throw new Error(`fashion-vit: labelSmoothing must be in [0, 1), got ${String(c.labelSmoothing)}`);
  if (!Number.isInteger(c.cropPad) || c.cropPad < 0 || c.cropPad >= SIDE) throw new Error(`fashion-vit: cropPad must be an integer in [0, ${SIDE - 1}], got ${String(c.cropPad)}`);
  if (typeof c.flip !== "boolean") throw new Error(`fashion-vit: flip must be true or false, got ${String(c.flip)}`);
  if (c.imageSize !== SIDE || c.channels !== 1) throw new Error(`fashion-vit: Fashion-MNIST images are ${SIDE}×${SIDE} greyscale (imageSize ${SIDE}, channels 1), got imageSize ${c.imageSize}, channels ${c.channels}`);
  if (!Array.isArray(c.classNames) || c.classNames.length !== c.numClasses) throw new Error(`fashion-vit: classNames must list numClasses (${c.numClasses}) names`);
  return c;
}

function buildModel(config: FashionVitConfig, gen?: Generator): VisionTransformer {
  const m = new VisionTransformer(config, gen ?? defaultGenerator);
  knobsOf.set(m, { labelSmoothing: config.labelSmoothing, cropPad: config.cropPad, flip: config.flip });
  return m;
}

/**
 * Copy images `indices` of `src` (N, 28, 28) uint8 into `dst` (B, 28, 28) floats in [0, 1], shifting each by a random
 * (dy, dx) in [−pad, pad]² (pixels shifted in from outside are 0 = background) and mirroring it with probability 1/2.
 */
export function augmentBatch(src: Uint8Array, indices: ArrayLike<number>, dst: Float32Array, o: { pad: number; flip: boolean; gen: Generator }): void {
  const s = 1 / 255;
  dst.fill(0, 0, indices.length * PIXELS);
  for (let b = 0; b < indices.length; b++) {
    const base = indices[b] * PIXELS, out = b * PIXELS;
    const dy = o.pad ? o.gen.int(2 * o.pad + 1) - o.pad : 0, dx = o.pad ? o.gen.int(2 * o.pad + 1) - o.pad : 0;
    const mirror = o.flip && o.gen.random() < 0.5;
    for (let y = 0; y < SIDE; y++) {
      const sy = y + dy;                                   // output (y, x) reads source (y + dy, x + dx) (after mirroring)
      if (sy < 0 || sy >= SIDE) continue;
      for (let x = 0; x < SIDE; x++) {
        const sx0 = x + dx;
        if (sx0 < 0 || sx0 >= SIDE) continue;
        const sx = mirror ? SIDE - 1 - sx0 : sx0;
        dst[out + y * SIDE + x] = src[base + sy * SIDE + sx] * s;
      }
    }
  }
}

function checkIndices(indices: ArrayLike<number>, n: number, what: string): void {
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= n) throw new Error(`fashion-vit: ${what} index ${k} (at ${i}) is outside [0, ${n})`);
  }
}

/** Pixels of test image `k` as floats in [0, 1] (28·28). */
function testPixels(data: FashionData, k: number): Float32Array {
  if (!Number.isInteger(k) || k < 0 || k >= data.nTest) throw new Error(`fashion-vit: test index ${k} is outside [0, ${data.nTest})`);
  const px = new Float32Array(PIXELS);
  for (let j = 0; j < PIXELS; j++) px[j] = data.testImages[k * PIXELS + j] / 255;
  return px;
}

let batchBuf = new Float32Array(0);

/** Evaluate logits over `n` images taken by `get(i)` in chunks (eval mode, no grad). */
function logitsInChunks(model: VisionTransformer, n: number, fill: (start: number, count: number, dst: Float32Array) => void,
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

function softmaxRow(z: ArrayLike<number>, off: number, C: number): Float64Array {
  let m = -Infinity;
  for (let j = 0; j < C; j++) m = Math.max(m, z[off + j]);
  const p = new Float64Array(C);
  let s = 0;
  for (let j = 0; j < C; j++) { p[j] = Math.exp(z[off + j] - m); s += p[j]; }
  for (let j = 0; j < C; j++) p[j] /= s;
  return p;
}

/** Resolve "test:<k>" / "<k>" against the test set, or an image file path: pixels (28·28) in [0, 1]. */
function resolveImage(input: string | ExplainInput, data: () => FashionData, o: { invert?: boolean | "auto" } = {}): { pixels: Float32Array; source: string; label?: number; details: Record<string, unknown> } {
  const inp: ExplainInput = typeof input === "string" ? (input.startsWith("test:") ? { text: input } : { image: input }) : input;
  if (inp.pixels) {
    if (inp.pixels.length !== PIXELS) throw new Error(`fashion-vit: pixels must hold ${SIDE}·${SIDE} = ${PIXELS} values in [0, 1], got ${inp.pixels.length}`);
    return { pixels: Float32Array.from(inp.pixels), source: "pixels", details: {} };
  }
  const ref = inp.image ?? inp.text;
  if (ref === undefined) throw new Error("fashion-vit: input needs an image file path, \"test:<index>\" or pixels");
  const m = /^test:(\d+)$/.exec(ref.trim());
  if (m) {
    const d = data(), k = Number(m[1]);
    return { pixels: testPixels(d, k), source: `test:${k}`, label: d.testLabels[k], details: { label: d.classNames[d.testLabels[k]] } };
  }
  const img = loadGreyImage(ref, { size: SIDE, invert: o.invert ?? "auto" });
  return { pixels: img.pixels, source: ref, details: { sourceSize: `${img.sourceWidth}x${img.sourceHeight}`, inverted: img.inverted } };
}

export const task: Task<VisionTransformer, FashionData> = {
  name: "fashion-vit",
  description: "Vision Transformer (convolutional stem, 4×4 patches) classifying Fashion-MNIST clothing images (dataset-fashion-mnist)",
  defaults: FASHION_VIT_DEFAULTS,

  loadData(o: DataOptions): FashionData {
    const ds = loadFashionMnist({ dir: o.data, maxTrain: o.limitTrain, maxTest: o.limitTest });
    return {
      trainImages: ds.trainImages, trainLabels: ds.trainLabels, testImages: ds.testImages, testLabels: ds.testLabels,
      classNames: ds.classNames, nTrain: ds.trainShape[0], nTest: ds.testShape[0], dir: o.data,
    };
  },

  trainSize: (data) => data.nTrain,

  createModel(_data, overrides, gen) {
    const config = fashionVitConfig(overrides);
    return { model: buildModel(config, gen), config: config as unknown as ModelConfig };
  },

  // a stored config without stemChannels predates the stem (then the default was none), so it means []
  modelFromConfig(config) { return buildModel(fashionVitConfig({ stemChannels: [], ...config })); },

  loss(model, data, indices) {
    checkIndices(indices, data.nTrain, "training");
    const k = knobsOf.get(model) ?? FASHION_VIT_DEFAULT_CONFIG;
    const B = indices.length;
    if (batchBuf.length < B * PIXELS) batchBuf = new Float32Array(B * PIXELS);
    augmentBatch(data.trainImages, indices, batchBuf, { pad: k.cropPad, flip: k.flip, gen: defaultGenerator });
    const y = new Int32Array(B);
    for (let i = 0; i < B; i++) y[i] = data.trainLabels[indices[i]];
    const logits = model.forward(Tensor.fromArray(batchBuf.subarray(0, B * PIXELS), [B, SIDE, SIDE]));  // (B, 10)
    return F.crossEntropy(logits, Tensor.fromArray(y, [B], "int32"), { labelSmoothing: k.labelSmoothing });
  },

  evaluate(model, data, o = {}) {
    const n = Math.min(data.nTest, o.limit ?? Infinity), C = model.config.numClasses;
    let correct = 0, nll = 0;
    const perRight = new Float64Array(C), perTotal = new Float64Array(C);
    logitsInChunks(model, n, (s, c, dst) => {
      for (let j = 0; j < c * PIXELS; j++) dst[j] = data.testImages[s * PIXELS + j] / 255;
    }, (z, s, c) => {
      for (let i = 0; i < c; i++) {
        const p = softmaxRow(z, i * C, C), y = data.testLabels[s + i];
        let arg = 0;
        for (let j = 1; j < C; j++) if (p[j] > p[arg]) arg = j;
        nll -= Math.log(Math.max(p[y], 1e-12));
        perTotal[y]++;
        if (arg === y) { correct++; perRight[y]++; }
      }
    }, o.onProgress);
    const out: Record<string, number> = { accuracy: n ? correct / n : NaN, loss: n ? nll / n : NaN };
    data.classNames.forEach((name, c) => {
      if (perTotal[c]) out[`acc_${name.toLowerCase().replace(/[^a-z0-9]+/g, "_")}`] = perRight[c] / perTotal[c];
    });
    return out;
  },

  predict(model, config, input, o = {}) {
    const c = fashionVitConfig(config);
    const invert = o.invert === undefined ? "auto" : o.invert === true || o.invert === "true";
    const dataDir = typeof o.data === "string" ? o.data : undefined;
    const img = resolveImage(input, () => task.loadData({ data: dataDir }), { invert });
    let z!: Float32Array;
    logitsInChunks(model, 1, (_s, _c, dst) => dst.set(img.pixels), (l) => { z = l; });
    const p = softmaxRow(z, 0, c.numClasses);
    const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a]);
    return {
      output: c.classNames[order[0]],
      alternatives: order.slice(0, 3).map((j) => ({ output: c.classNames[j], score: p[j] })),
      scoreName: "probability",
      details: { source: img.source, ...img.details },
    } satisfies Prediction;
  },

  explain(model, config, input, target) {
    const c = fashionVitConfig(config);
    const img = resolveImage(input, () => task.loadData({}));
    const x = Tensor.fromArray(img.pixels, [1, SIDE, SIDE]);
    let targetIndex: number;
    if (target === undefined || target === "") {
      let z!: Float32Array;
      logitsInChunks(model, 1, (_s, _c, dst) => dst.set(img.pixels), (l) => { z = l; });
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
      image: { width: SIDE, height: SIDE, pixels: img.pixels, patch: c.patchSize, grid: model.grid, prefix: 1 },
    } satisfies ExplainTarget;
  },

  faithfulnessInputs(data, n) {
    const k = Math.min(n, data.nTest), step = data.nTest / Math.max(k, 1);
    return Array.from({ length: k }, (_, i) => ({ pixels: testPixels(data, Math.floor(i * step)) }));
  },
};
