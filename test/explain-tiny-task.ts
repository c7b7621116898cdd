// Test-side fixtures for the explain CLI / attribution / HTML tests: a tiny [CLS] transformer classifier over a
// word vocabulary, wrapped as a Task with explain() and faithfulnessInputs(), and a small patch "ViT" target.
import { Tensor } from "../src/tensor.js";
import { manualSeed } from "../src/random.js";
import * as nn from "../src/nn/index.js";
import { cat } from "../src/ops/movement.js";
import type { ExplainInput, ExplainTarget, Task } from "../src/tasks/task.js";

export const WORDS = ["[PAD]", "[CLS]", "the", "cat", "dog", "sat", "ran", "on", "mat", "<b>"];
export const CLASSES = ["animal", "place"];

export interface TinyConfig { vocab: number; d: number; heads: number; layers: number; classes: number; [k: string]: unknown }

/** Embedding → post-norm TransformerEncoder (batch-first, no dropout) → linear head on position 0 ([CLS]). */
export class TinyClassifier extends nn.Module {
  embed: nn.Embedding;
  encoder: nn.TransformerEncoder;
  head: nn.Linear;
  constructor(readonly cfg: TinyConfig) {
    super();
    this.embed = new nn.Embedding(cfg.vocab, cfg.d);
    this.encoder = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(cfg.d, cfg.heads, { dimFeedforward: 2 * cfg.d, dropout: 0, batchFirst: true }), cfg.layers);
    this.head = new nn.Linear(cfg.d, cfg.classes);
  }
  /** ids (B, T) int32 → logits (B, classes). */
  forward(ids: Tensor, onEmbeddings?: (x: Tensor) => Tensor): Tensor {
    let x = this.embed.forward(ids);                                   // (B, T, d)
    if (onEmbeddings) x = onEmbeddings(x);
    return this.head.forward(this.encoder.forward(x).select(1, 0));    // (B, classes)
  }
}

export function tinyModel(seed = 3, o: Partial<TinyConfig> = {}): { model: TinyClassifier; config: TinyConfig } {
  manualSeed(seed);
  const config: TinyConfig = { vocab: WORDS.length, d: 16, heads: 2, layers: 2, classes: CLASSES.length, ...o };
  const model = new TinyClassifier(config);
  model.eval();
  return { model, config };
}

/** ExplainTarget of the tiny classifier: [CLS] + words; occluded positions become [PAD]. */
export function tinyTarget(model: TinyClassifier, words: string[], target?: string): ExplainTarget {
  const ids = [1, ...words.map((w) => {
    const i = WORDS.indexOf(w);
    if (i < 2) throw new Error(`tiny task: unknown word "${w}"`);
    return i;
  })];
  const T = ids.length;
  const logitsOf = (o?: { occlude?: readonly number[]; onEmbeddings?: (x: Tensor) => Tensor }) => {
    const v = ids.slice();
    for (const p of o?.occlude ?? []) v[p] = 0;
    return model.forward(Tensor.fromArray(Int32Array.from(v), [1, T]), o?.onEmbeddings);
  };
  let idx: number;
  if (target === undefined) {
    const l = logitsOf().dataSync();
    idx = l[1] > l[0] ? 1 : 0;
  } else {
    idx = /^\d+$/.test(target) ? Number(target) : CLASSES.indexOf(target);
    if (idx < 0 || idx >= CLASSES.length) throw new Error(`tiny task: unknown target "${target}" (classes: ${CLASSES.join(", ")})`);
  }
  return {
    tokens: ["[CLS]", ...words], targetLabel: CLASSES[idx], targetIndex: idx, special: [0],
    score: (o) => logitsOf(o).select(1, idx).reshape([]),
  };
}

export interface TinyData { inputs: string[][] }

export const tinyTask: Task<TinyClassifier, TinyData> = {
  name: "tiny-test",
  description: "test fixture: a 2-layer [CLS] classifier over a 10-word vocabulary",
  defaults: { epochs: 1, batchSize: 4, lr: 1e-3, weightDecay: 0, warmupSteps: 0, clipNorm: 0, evalLimit: 4 },
  loadData: () => ({ inputs: [["the", "cat", "sat"], ["the", "dog", "ran", "on", "the", "mat"], ["cat", "on", "mat"], ["dog", "sat", "on", "the", "mat"]] }),
  trainSize: (d) => d.inputs.length,
  createModel: (_d, o) => tinyModel(3, o as Partial<TinyConfig>),
  modelFromConfig: (c) => new TinyClassifier(c as TinyConfig),
  loss: () => { throw new Error("tiny task: not for training"); },
  evaluate: () => ({ accuracy: 0 }),
  predict: (model, _c, input) => ({ output: tinyTarget(model, input.split(/\s+/)).targetLabel }),
  explain: (model, _c, input: ExplainInput, target?: string) => {
    if (input.ids) return tinyTarget(model, input.ids.map((i) => WORDS[i] ?? "?"), target);
    if (input.text === undefined) throw new Error("tiny task: explain needs --text or --input");
    return tinyTarget(model, input.text.trim().split(/\s+/), target);
  },
  faithfulnessInputs: (d, n) => d.inputs.slice(0, n).map((w) => ({ text: w.join(" ") })),
};

/**
 * A patch "ViT" target: a 4x4 gray image in 2x2 patches (grid 2x2), [CLS] + 4 patch tokens through one self-attention
 * layer; score = first output feature of [CLS]. Occluded patches are set to the mean patch (zeros here).
 */
export function tinyImageTarget(seed = 5): { model: nn.Module; target: ExplainTarget } {
  manualSeed(seed);
  const d = 8;
  const enc = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(d, 2, { dimFeedforward: 16, dropout: 0, batchFirst: true }), 2);
  const proj = new nn.Linear(4, d), cls = new nn.Embedding(1, d);
  const model = new (class extends nn.Module { enc = enc; proj = proj; cls = cls; forward(): Tensor { throw new Error("use target.score()"); } })();
  model.eval();
  const pixels = Float32Array.from({ length: 16 }, (_, i) => (i % 5) / 4);
  const patches = (occ: readonly number[]) => {
    const v = new Float32Array(16);
    for (let p = 0; p < 4; p++) {
      const pr = p >> 1, pc = p & 1;
      for (let k = 0; k < 4; k++) v[p * 4 + k] = occ.includes(p + 1) ? 0 : pixels[(pr * 2 + (k >> 1)) * 4 + pc * 2 + (k & 1)];
    }
    return Tensor.fromArray(v, [1, 4, 4]);
  };
  const target: ExplainTarget = {
    tokens: ["r0c0", "r0c1", "r1c0", "r1c1"], targetLabel: "feature0", targetIndex: 0,
    image: { width: 4, height: 4, pixels, patch: 2, grid: [2, 2], prefix: 1 },
    score: (o) => {
      let x = proj.forward(patches(o?.occlude ?? []));                        // (1, 4, d) patch embeddings
      if (o?.onEmbeddings) x = o.onEmbeddings(x);
      const c = cls.forward(Tensor.fromArray(Int32Array.from([0]), [1, 1]));  // (1, 1, d)
      return enc.forward(cat([c, x], 1)).select(1, 0).select(1, 0).reshape([]);
    },
  };
  return { model, target };
}
