// Weighted (virtual) flow sources and real-attention-like graphs: every value against a generic max-flow
// (Edmonds–Karp on the explicit graph, test/explain-helpers.ts), not against the solver itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type AttentionStack, type MatrixStack, matrixStack, prepareLayers } from "../src/explain/attention-stack.js";
import { attentionFlow, attentionFlowOfWeights, flowRawWeighted } from "../src/explain/flow.js";
import { LayeredMaxFlow, type MaxFlowStrategy } from "../src/explain/maxflow.js";
import { flowRowsLocal } from "../src/explain/explain-run.js";
import { FlowWorkerPool } from "../src/node/flow-workers.js";
import { edmondsKarp, randomAttention, rng } from "./explain-helpers.js";

/**
 * Attention shaped like a trained encoder's (the patterns BertViz shows): per head one of near-uniform, previous /
 * next token, attend-to-[CLS] (a sink), attend-to-self, or peaked random; rows are softmax-normalised mixtures.
 */
function realLikeAttention(L: number, H: number, T: number, seed: number): AttentionStack {
  const r = rng(seed), data = new Float64Array(L * H * T * T);
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) {
    const kind = Math.floor(r() * 5), sharp = 1 + 4 * r();
    for (let i = 0; i < T; i++) {
      const row = ((l * H + h) * T + i) * T;
      let s = 0;
      for (let j = 0; j < T; j++) {
        let z = 0.3 * (r() - 0.5);
        if (kind === 1 && j === Math.max(0, i - 1)) z += sharp;
        if (kind === 2 && j === Math.min(T - 1, i + 1)) z += sharp;
        if (kind === 3 && j === 0) z += sharp;
        if (kind === 4) z += sharp * (r() - 0.5) * 2;
        if (kind === 0 && j === i) z += 0.2;
        const e = Math.exp(z);
        data[row + j] = e; s += e;
      }
      for (let j = 0; j < T; j++) data[row + j] /= s;
    }
  }
  return { data, layers: L, heads: H, tokens: T };
}

/** Explicit graph with one extra node N = (L+1)T (the weighted source) feeding token i of `layer` with w[i]. */
function adjacencyWithSource(res: MatrixStack, layer: number, w: ArrayLike<number>): { adj: Float64Array; n: number } {
  const L = res.layers, T = res.tokens, N = (L + 1) * T, n = N + 1;
  const adj = new Float64Array(n * n);
  for (let l = 1; l <= L; l++) for (let a = 0; a < T; a++) for (let b = 0; b < T; b++) {
    adj[(l * T + a) * n + (l - 1) * T + b] = res.data[((l - 1) * T + a) * T + b];
  }
  for (let i = 0; i < T; i++) adj[N * n + layer * T + i] = w[i];
  return { adj, n };
}

function checkWeighted(res: MatrixStack, what: string, strategy: MaxFlowStrategy, seed: number): void {
  const L = res.layers, T = res.tokens, r = rng(seed);
  const solver = new LayeredMaxFlow(res, strategy);
  for (let layer = 0; layer <= L; layer++) {
    // sparse and dense weight vectors, summing to 1 or not
    for (const kind of ["dense", "sparse", "one"] as const) {
      const w = new Float64Array(T);
      if (kind === "one") w[Math.floor(r() * T)] = 1;
      else for (let i = 0; i < T; i++) w[i] = kind === "sparse" && r() < 0.5 ? 0 : r();
      if (!w.some((x) => x > 0)) w[0] = 0.5;
      const { adj, n } = adjacencyWithSource(res, layer, w);
      const got = solver.flowsFromWeights(layer, w);
      for (let b = 0; b < T; b++) {
        const ek = edmondsKarp(adj, n, n - 1, b);
        assert.ok(Math.abs(got[b] - ek) <= 1e-12 * Math.max(1, ek), `${what} ${strategy} layer ${layer} ${kind} weights, sink ${b}: ${got[b]} vs Edmonds–Karp ${ek}`);
      }
    }
  }
}

test("weighted-source flow equals Edmonds–Karp with an explicit super-source (random, real-like, causal; both strategies)", () => {
  for (let seed = 1; seed <= 3; seed++) {
    for (const st of ["shared", "per-sink"] as const) {
      checkWeighted(prepareLayers(randomAttention(4, 2, 6, seed, 2.5)), `softmax seed ${seed}`, st, seed);
      checkWeighted(prepareLayers(realLikeAttention(4, 3, 7, seed)), `real-like seed ${seed}`, st, seed + 10);
      checkWeighted(prepareLayers(realLikeAttention(3, 3, 7, seed), { causal: true }), `real-like causal seed ${seed}`, st, seed + 20);
    }
  }
  // arbitrary capacities with zeros and unnormalised rows
  const r = rng(99), data = new Float64Array(3 * 25);
  for (let e = 0; e < data.length; e++) data[e] = r() < 0.3 ? 0 : r() * 2;
  checkWeighted(matrixStack(3, 5, data), "random capacities", "shared", 5);
});

test("node-source flow equals Edmonds–Karp on real-attention-like graphs (deeper, wider)", () => {
  for (const [L, T, seed] of [[6, 10, 1], [3, 14, 2], [8, 8, 3]] as const) {
    const res = prepareLayers(realLikeAttention(L, 4, T, seed));
    const solver = new LayeredMaxFlow(res);
    const N = (L + 1) * T, adj = new Float64Array(N * N);
    for (let l = 1; l <= L; l++) for (let a = 0; a < T; a++) for (let b = 0; b < T; b++) adj[(l * T + a) * N + (l - 1) * T + b] = res.data[((l - 1) * T + a) * T + b];
    for (const l of [L, Math.max(1, L - 2), 2]) {
      for (const a of [0, T - 1]) {
        const got = solver.flowsFrom(l, a);
        for (let b = 0; b < T; b++) {
          const ek = edmondsKarp(adj, N, l * T + a, b);
          assert.ok(Math.abs(got[b] - ek) <= 1e-12 * Math.max(1, ek), `L ${L} T ${T}: (${l},${a}) -> ${b}: ${got[b]} vs ${ek}`);
        }
      }
    }
  }
});

test("a weighted source with weight 1 on one token is that token's A&Z flow; uniform weights via attentionFlowOfWeights", () => {
  const att = realLikeAttention(5, 3, 9, 4);
  const res = prepareLayers(att);
  const solver = new LayeredMaxFlow(res);
  for (const l of [1, 3, 5]) for (const a of [0, 4, 8]) {
    const w = new Float64Array(9); w[a] = 1;
    const v = solver.flowsFromWeights(l, w).slice(), ref = solver.flowsFrom(l, a);
    for (let b = 0; b < 9; b++) assert.ok(Math.abs(v[b] - ref[b]) <= 1e-13, `(${l},${a}) -> ${b}: ${v[b]} vs ${ref[b]}`);
  }
  // attentionFlowOfWeights: weights scaled to sum 1; normalised flows sum to 1
  const f = attentionFlowOfWeights(att, { layer: 4 });
  const raw = flowRawWeighted(res, 4, new Float64Array(9).fill(3));
  assert.deepEqual(Array.from(f.raw), Array.from(raw));
  assert.ok(Math.abs(f.flows.reduce((s, x) => s + x, 0) - 1) < 1e-12);
  // bounds from the rows' own flows m_a: what passes row a is at most min(1/9, m_a) (only the source feeds it), and
  // the source can always send 1/9 of any one row's max flow
  const rows = attentionFlow(att, { layer: 4 });
  for (let b = 0; b < 9; b++) {
    let upper = 0, lower = 0;
    for (let a = 0; a < 9; a++) { const m = rows.raw[a * 9 + b]; upper += Math.min(1 / 9, m); lower = Math.max(lower, m / 9); }
    assert.ok(f.raw[b] <= upper + 1e-12 && f.raw[b] >= lower - 1e-12, `sink ${b}: mean-source flow ${f.raw[b]} outside [${lower}, ${upper}]`);
  }
});

test("weighted-source errors name the problem", () => {
  const att = randomAttention(2, 1, 4, 2);
  assert.throws(() => attentionFlowOfWeights(att, { layer: 3 }), /layer must be an integer in \[0, 2\], got 3/);
  assert.throws(() => attentionFlowOfWeights(att, { weights: [1, 2, 3] }), /needs 4 weights \(one per token\), got 3/);
  assert.throws(() => attentionFlowOfWeights(att, { weights: [1, -1, 0, 0] }), /weight \[1\] is -1/);
  assert.throws(() => attentionFlowOfWeights(att, { weights: [0, 0, 0, 0] }), /all 0/);
  assert.throws(() => new LayeredMaxFlow(prepareLayers(att)).setSourceWeights(1, [1, NaN, 0, 0]), /weight \[1\] is NaN/);
});

test("flow rows with weighted sources: local and worker pool agree bit for bit", async () => {
  const att = realLikeAttention(4, 2, 12, 8);
  const res = prepareLayers(att);
  const w = Float64Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? 0 : 1 / 8));
  const rows = [[4, w], [4, 3], [2, w], [0, w], [1, 0]] as const;
  const local = flowRowsLocal(res, rows);
  const pool = new FlowWorkerPool(2);
  try {
    const par = await pool.flowRows(res, rows);
    assert.deepEqual(Array.from(par), Array.from(local));
    await assert.rejects(pool.flowRows(res, [[5, w]]), /weighted source layer must be an integer in \[0, 4\]/);
  } finally {
    await pool.close();
  }
  // layer 0: the flow to input b is the weight of b itself
  for (let b = 0; b < 12; b++) assert.equal(local[3 * 12 + b], w[b]);
});

test("blank-out through scoreBatch: the same drops as one forward per position, in ceil(n / batch) batched passes", async () => {
  const { tinyModel, tinyTarget } = await import("./explain-tiny-task.js");
  const { blankOut } = await import("../src/explain/attribution.js");
  const { Tensor } = await import("../src/tensor.js");
  const { model } = tinyModel(3);
  const words = ["the", "cat", "sat", "on", "the", "mat", "dog", "ran"];
  const single = tinyTarget(model, words);
  const ids = [1, ...words.map((w) => ["[PAD]", "[CLS]", "the", "cat", "dog", "sat", "ran", "on", "mat", "<b>"].indexOf(w))];
  const T = ids.length;
  let calls = 0;
  const batched = {
    ...single,
    scoreBatch: (occ: ReadonlyArray<readonly number[]>) => {
      calls++;
      const v = new Int32Array(occ.length * T);
      occ.forEach((ps, k) => { v.set(ids, k * T); for (const p of ps) v[k * T + p] = 0; });
      return model.forward(Tensor.fromArray(v, [occ.length, T])).select(1, single.targetIndex);
    },
  };
  const a = blankOut(single, T, { skip: [0] }), b = blankOut(batched, T, { skip: [0], batch: 3 });
  assert.equal(calls, Math.ceil((T - 1) / 3));
  assert.deepEqual(b.positions, a.positions);
  for (let p = 0; p < T; p++) {
    if (p === 0) { assert.ok(Number.isNaN(b.occluded[p])); continue; }
    assert.ok(Math.abs(a.drop[p] - b.drop[p]) < 1e-5, `position ${p}: ${a.drop[p]} vs batched ${b.drop[p]}`);
  }
  const bad = { ...single, scoreBatch: () => Tensor.fromArray(new Float32Array(1), [1]) };
  assert.throws(() => blankOut(bad, T, { batch: 4 }), /scoreBatch returned 1 scores for 4 occluded copies/);
});

test("explain's flow work does not grow with the number of explained rows: one weighted source per layer (rows: T per layer)", async () => {
  const { runExplanation } = await import("../src/explain/explain-run.js");
  const { tinyModel, tinyTarget } = await import("./explain-tiny-task.js");
  // a mean-pooled target (query "mean"): the default flow runs ONE weighted source per layer (T max-flows each),
  // A&Z's per-row mean runs every row of every layer (the old default: T times the work)
  const { model, config } = tinyModel(3, { layers: 3 });
  const words = ["the", "cat", "sat", "on", "the", "mat", "dog", "ran", "on", "the"];
  const target = { ...tinyTarget(model, words), special: [] as number[], query: "mean" as const };
  const T = words.length + 1;
  let sources = 0, maxflows = 0;
  const counting = (res: MatrixStack, rows: Parameters<typeof flowRowsLocal>[1]) => { sources += rows.length; maxflows += rows.length * res.tokens; return flowRowsLocal(res, rows); };
  const e = await runExplanation(target, model, { methods: ["flow"], flowRows: counting, flowMatrices: "none" });
  assert.equal(e.methods.flow!.aggregate, "source");
  assert.equal(sources, config.layers); assert.equal(maxflows, config.layers * T);
  sources = 0;
  const rowsMean = await runExplanation(target, model, { methods: ["flow"], flowRows: counting, flowMatrices: "none", flowAggregate: "rows" });
  assert.equal(rowsMean.methods.flow!.aggregate, "rows");
  assert.equal(sources, config.layers * T);
  // both are distributions over the tokens
  for (const x of [e, rowsMean]) assert.ok(Math.abs(x.methods.flow!.importance.reduce((s, v) => s + v, 0) - 1) < 1e-5);
});
