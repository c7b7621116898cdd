// Head pruning of the shipped task models (attnflow prune, scripts/prune-report.ts): clean (un-augmented) batches of
// the training split for the importance scores, so the held-out test split stays untouched for the accuracy that
// follows. One adapter per task: the fortunes classifier (text, mean pooling) and the Fashion-MNIST ViT.
import { Tensor } from "../tensor.js";
import * as F from "../functional.js";
import type { Module } from "../nn/module.js";
import type { Task } from "../tasks/task.js";
import { padIds, type TextClassifier } from "../models/text-classifier.js";
import type { VisionTransformer } from "../models/vit.js";
import { classifierState, encodeText } from "../tasks/fortunes-classifier-model.js";
import { IMAGE_SIDE } from "../tasks/fashion-vit-model.js";
import type { FortunesClsData } from "./tasks/fortunes-classifier.js";
import type { FashionData } from "./tasks/fashion-vit.js";
import { Generator } from "../random.js";
import {
  attributionHeadImportance, gradientHeadImportance, randomHeadImportance, type HeadImportanceMethod, type HeadScores,
} from "../explain/head-importance.js";

/** What head importance needs from a task: `n` clean examples, a batch's logits and labels, the explained row. */
export interface PruneAdapter {
  /** Examples available (a prefix of a fixed shuffle of the training split). */
  n: number;
  /** Logits (B, C) of examples `idx` (positions in the adapter's order), and their labels (B) int32. */
  batch(idx: readonly number[]): { logits: Tensor; labels: Tensor };
  /** The explained output row of the attribution methods: a token, or the source weights over the tokens of example i. */
  query(T: number): number | Float64Array;
}

/** A fixed pseudo-random order of 0..n−1 (seeded), so the importance examples do not depend on the file order. */
function order(n: number, seed = 1234): number[] {
  const g = new Generator(seed), p = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) { const j = g.int(i + 1); [p[i], p[j]] = [p[j], p[i]]; }
  return p;
}

export function pruneAdapter(task: Task, model: Module, data: unknown, limit: number): PruneAdapter {
  if (task.name === "fortunes-classifier") {
    const m = model as TextClassifier, d = data as FortunesClsData, { tok } = classifierState(m);
    const pick = order(d.train.length).slice(0, limit);
    const seqs = pick.map((i) => encodeText(tok, d.train[i].text, m.config.maxLen));
    return {
      n: pick.length,
      batch(idx) {
        const { ids, B, T } = padIds(idx.map((i) => seqs[i]));
        return { logits: m.forward(Tensor.fromArray(ids, [B, T])), labels: Tensor.fromArray(Int32Array.from(idx, (i) => d.train[pick[i]].label), [B]) };
      },
      query: (T) => (m.config.pooling === "cls" ? 0 : new Float64Array(T).fill(1 / T)),
    };
  }
  if (task.name === "fashion-vit") {
    const m = model as VisionTransformer, d = data as FashionData, P = IMAGE_SIDE * IMAGE_SIDE;
    const pick = order(d.nTrain).slice(0, limit);
    return {
      n: pick.length,
      batch(idx) {
        const px = new Float32Array(idx.length * P);
        idx.forEach((i, b) => { for (let j = 0; j < P; j++) px[b * P + j] = d.trainImages[pick[i] * P + j] / 255; });
        return {
          logits: m.forward(Tensor.fromArray(px, [idx.length, IMAGE_SIDE, IMAGE_SIDE])),
          labels: Tensor.fromArray(Int32Array.from(idx, (i) => d.trainLabels[pick[i]]), [idx.length]),
        };
      },
      // mean pooling averages the patch tokens 1..N (not [CLS])
      query: (T) => (m.config.pool === "cls" ? 0 : Float64Array.from({ length: T }, (_, i) => (i === 0 ? 0 : 1 / (T - 1)))),
    };
  }
  throw new Error(`prune: task "${task.name}" has no pruning adapter (supported: fortunes-classifier, fashion-vit, and Hugging Face BERT folders)`);
}

/**
 * Head importance of `model` by `method` on the adapter's examples: gradient over batches of `batchSize` (cross-entropy
 * of the labels, as Michel et al.), rollout/flow one example at a time, random from `seed`. The model is put in eval mode.
 */
export function headImportance(model: Module, a: PruneAdapter, method: HeadImportanceMethod,
  o: { batchSize?: number; seed?: number; onProgress?: (done: number, total: number) => void } = {}): HeadScores {
  model.eval();
  if (method === "random") { const g = new Generator(o.seed ?? 0); return randomHeadImportance(model, () => g.random()); }
  if (method === "gradient") {
    const bs = o.batchSize ?? 16, nb = Math.ceil(a.n / bs);
    return gradientHeadImportance(model, (b) => {
      const idx = [...Array(Math.min(bs, a.n - b * bs)).keys()].map((k) => b * bs + k);
      const { logits, labels } = a.batch(idx);
      return F.crossEntropy(logits, labels);
    }, nb, { onProgress: o.onProgress });
  }
  return attributionHeadImportance(model, method, (i) => a.batch([i]).logits, a.n, { queryFor: (T) => a.query(T), onProgress: o.onProgress });
}
