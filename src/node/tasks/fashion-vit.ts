// Task "fashion-vit": a Vision Transformer (src/models/vit.ts) classifying Fashion-MNIST (Debian package
// dataset-fashion-mnist, or --data DIR). Training batches are augmented with a random shift (random crop of the
// zero-padded image) and a horizontal flip, drawn from the default generator (which the trainer seeds and saves).
// Predict takes an image file (PNG / PGM, resized to 28×28 greyscale) or "test:<index>"; explain gives the patch grid.
import { Tensor } from "../../tensor.js";
import * as F from "../../functional.js";
import { defaultGenerator, type Generator } from "../../random.js";
import type { VisionTransformer } from "../../models/vit.js";
import type { DataOptions, ExplainInput, ModelConfig, Task, TrainDefaults } from "../../tasks/task.js";
import { loadFashionMnist } from "../datasets.js";
import { loadGreyImage } from "../image-file.js";
import {
  IMAGE_SIDE, buildModel, explainPixels, fashionVitConfig, fashionVitModelOptions, logitsInChunks, predictPixels, softmaxRow, trainKnobs, vitFromStoredConfig,
} from "../../tasks/fashion-vit-model.js";

// The model half lives in src/tasks/fashion-vit-model.ts (browser-safe); these names are imported from here too.
export {
  FASHION_PIXEL_MEAN, FASHION_PIXEL_STD, FASHION_VIT_DEFAULT_CONFIG, fashionVitConfig, type FashionTrainKnobs, type FashionVitConfig,
} from "../../tasks/fashion-vit-model.js";

const SIDE = IMAGE_SIDE, PIXELS = SIDE * SIDE;

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

export const FASHION_VIT_DEFAULTS: TrainDefaults = {
  epochs: 20, batchSize: 128, lr: 2e-3, weightDecay: 0.05, warmupSteps: 500, clipNorm: 1, evalLimit: 2000,
};

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

  modelOptions: fashionVitModelOptions(),
  predictFlags: [
    { name: "invert", kind: "value", choices: ["auto", "true", "false"], help: "invert the image's grey levels (Fashion-MNIST is light on black)", default: "auto" },
    { name: "data", kind: "value", arg: "DIR", help: "Fashion-MNIST folder for test:<index> inputs" },
  ],
  createModel(_data, overrides, gen) {
    const config = fashionVitConfig(overrides);
    return { model: buildModel(config, gen), config: config as unknown as ModelConfig };
  },

  modelFromConfig: (config) => vitFromStoredConfig(config),

  loss(model, data, indices) {
    checkIndices(indices, data.nTrain, "training");
    const k = trainKnobs(model);
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
    const invert = o.invert === undefined || o.invert === "auto" ? "auto" : o.invert === true || o.invert === "true";
    const dataDir = typeof o.data === "string" ? o.data : undefined;
    const img = resolveImage(input, () => task.loadData({ data: dataDir }), { invert });
    return predictPixels(model, config, img.pixels, { source: img.source, ...img.details });
  },

  explain(model, config, input, target) {
    return explainPixels(model, config, resolveImage(input, () => task.loadData({})).pixels, target);
  },

  faithfulnessInputs(data, n) {
    const k = Math.min(n, data.nTest), step = data.nTest / Math.max(k, 1);
    return Array.from({ length: k }, (_, i) => ({ pixels: testPixels(data, Math.floor(i * step)) }));
  },
};
