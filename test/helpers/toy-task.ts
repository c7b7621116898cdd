// A tiny, fast task for testing the trainer and checkpoints: classify whether a random 6-token sequence contains
// token 1 more often than token 2 — a small Transformer encoder learns it in a few dozen steps.
import { tensor } from "../../src/creation.js";
import { Generator } from "../../src/random.js";
import { Module } from "../../src/nn/module.js";
import { Embedding, Linear } from "../../src/nn/layers.js";
import { TransformerEncoder, TransformerEncoderLayer } from "../../src/nn/transformer.js";
import * as F from "../../src/functional.js";
import type { Tensor } from "../../src/tensor.js";
import type { ModelConfig, Task } from "../../src/tasks/task.js";

export class ToyModel extends Module {
  embed: Embedding; encoder: TransformerEncoder; head: Linear;
  constructor(readonly cfg: { vocab: number; dModel: number; layers: number; dropout: number }) {
    super();
    this.embed = new Embedding(cfg.vocab, cfg.dModel);
    this.encoder = new TransformerEncoder(() => new TransformerEncoderLayer(cfg.dModel, 2,
      { dimFeedforward: 2 * cfg.dModel, dropout: cfg.dropout, batchFirst: true, normFirst: true }), cfg.layers);
    this.head = new Linear(cfg.dModel, 2);
  }
  forward(ids: Tensor): Tensor { return this.head.forward(this.encoder.forward(this.embed.forward(ids)).mean(1)); }
}

export interface ToyData { x: Int32Array; y: Int32Array; n: number; testX: Int32Array; testY: Int32Array; nTest: number }
const T = 6;

function make(n: number, seed: number): { x: Int32Array; y: Int32Array } {
  const g = new Generator(seed), x = new Int32Array(n * T), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let t = 0; t < T; t++) { const v = g.int(4); x[i * T + t] = v; c += v === 1 ? 1 : v === 2 ? -1 : 0; }
    y[i] = c > 0 ? 1 : 0;
  }
  return { x, y };
}

function batch(x: Int32Array, y: Int32Array, idx: ArrayLike<number>): [Tensor, Tensor] {
  const bx = new Int32Array(idx.length * T), by = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) { bx.set(x.subarray(idx[i] * T, idx[i] * T + T), i * T); by[i] = y[idx[i]]; }
  return [tensor(bx, { dtype: "int32" }).reshape([idx.length, T]), tensor(by, { dtype: "int32" })];
}

export const toyTask: Task<ToyModel, ToyData> = {
  name: "toy",
  description: "count tokens (test task)",
  defaults: { epochs: 2, batchSize: 16, lr: 3e-3, weightDecay: 0.01, warmupSteps: 4, clipNorm: 1, evalLimit: 200 },
  loadData(o) {
    const tr = make(o.limitTrain ?? 256, 1), te = make(o.limitTest ?? 200, 2);
    return { x: tr.x, y: tr.y, n: tr.y.length, testX: te.x, testY: te.y, nTest: te.y.length };
  },
  trainSize: (d) => d.n,
  createModel(_d, over, _g) {
    const config = { vocab: 4, dModel: 16, layers: 1, dropout: 0.1, ...over } as ToyModel["cfg"];
    return { model: new ToyModel(config), config: config as unknown as ModelConfig };
  },
  modelFromConfig: (c) => new ToyModel(c as unknown as ToyModel["cfg"]),
  loss(m, d, idx) { const [x, y] = batch(d.x, d.y, idx); return F.crossEntropy(m.forward(x), y); },
  evaluate(m, d, o) {
    const n = Math.min(d.nTest, o?.limit ?? d.nTest);
    const [x, y] = batch(d.testX, d.testY, Array.from({ length: n }, (_, i) => i));
    const logits = m.forward(x), pred = logits.argmax(-1).dataSync(), yy = y.dataSync();
    let ok = 0;
    for (let i = 0; i < n; i++) ok += pred[i] === yy[i] ? 1 : 0;
    return { accuracy: ok / n, loss: F.crossEntropy(logits, y).item() };
  },
  predict(m, _c, input) {
    const ids = input.split(",").map(Number);
    const p = m.forward(tensor(Int32Array.from(ids), { dtype: "int32" }).reshape([1, ids.length])).softmax(-1).dataSync();
    return { output: p[1] > p[0] ? "more ones" : "not more ones", alternatives: [{ output: "1", score: p[1] }], scoreName: "p" };
  },
};
