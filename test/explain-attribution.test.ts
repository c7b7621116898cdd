import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/tensor.js";
import { manualSeed } from "../src/random.js";
import * as nn from "../src/nn/index.js";
import type { ExplainTarget } from "../src/tasks/task.js";
import { blankOut, inputGradient, targetAttention } from "../src/explain/attribution.js";
import { type Explanation, parseMethods, resolveExplainLayer, runExplanation } from "../src/explain/explain-run.js";
import { faithfulnessOf, formatFaithfulnessTable, summariseFaithfulness } from "../src/explain/faithfulness.js";
import { flowImportance, gradRolloutImportance, rolloutImportance } from "../src/explain/importance.js";
import { assertClose } from "./explain-helpers.js";
import { tinyImageTarget, tinyModel, tinyTarget } from "./explain-tiny-task.js";

// A linear "model" whose attributions are known in closed form: one-head MultiheadAttention with zero query/key
// projections (so the attention is uniform, 1/T, whatever the input), identity value and output projections;
// score = w · Σ_i out_i = Σ_t w · x_t. Then input × gradient of position t is exactly w · x_t, blank-out (x_t -> 0)
// drops the score by exactly w · x_t, and d score / d A_ij = w · x_j, so Chefer's Abar_ij = max(w · x_j, 0) / T.
const T = 5, D = 3;
const E = [0.5, 1, -1, /**/ 2, 0, 1, /**/ -1, -2, 0.5, /**/ 0, 0.25, 0, /**/ 1, 1, 1];
const W = [0.5, -1, 2];
const wx = Array.from({ length: T }, (_, t) => W.reduce((s, w, d) => s + w * E[t * D + d], 0)); // [-2.75, 3, 2, -0.25, 1.5]

function linearTarget(): { model: nn.MultiheadAttention; target: ExplainTarget } {
  manualSeed(0);
  const attn = new nn.MultiheadAttention(D, 1, { batchFirst: true });
  const inProj = attn.inProjWeight!.storage.data;                       // (3D, D): rows q | k | v
  inProj.fill(0);
  for (let d = 0; d < D; d++) inProj[(2 * D + d) * D + d] = 1;
  attn.inProjBias!.storage.data.fill(0);
  attn.outProj.weight.storage.data.set([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  attn.outProj.bias!.storage.data.fill(0);
  const w = Tensor.fromArray(Float32Array.from(W), [D, 1]);
  const target: ExplainTarget = {
    tokens: ["a", "b", "c", "d", "e"], targetLabel: "y", targetIndex: 0,
    score: (o) => {
      const e = Float32Array.from(E);
      for (const p of o?.occlude ?? []) e.fill(0, p * D, (p + 1) * D);
      let x = Tensor.fromArray(e, [1, T, D]);
      if (o?.onEmbeddings) x = o.onEmbeddings(x);
      return attn.forward(x, x, x)[0].sum(1).matmul(w).reshape([]);     // (1, T, D) -> (1, D) -> (1, 1) -> []
    },
  };
  return { model: attn, target };
}

test("attribution on a linear model: input × gradient and blank-out equal w·x_t exactly", () => {
  const { model, target } = linearTarget();
  const g = inputGradient(target, T, model);
  assertClose(g.signed, wx, "signed input × gradient", 1e-5, 1e-5);
  assertClose(g.magnitude, wx.map(Math.abs), "|input × gradient|", 1e-5, 1e-5);
  assert.ok(Math.abs(g.score - wx.reduce((a, b) => a + b, 0)) < 1e-5, "completeness: Σ_t signed = score for a linear model");
  const b = blankOut(target, T);
  assertClose(b.drop, wx, "blank-out drop", 1e-5, 1e-5);
  assert.deepEqual(b.positions, [0, 1, 2, 3, 4]);
  const s = blankOut(target, T, { skip: [1, 3] });
  assert.deepEqual(s.positions, [0, 2, 4]);
  assert.equal(s.drop[1], 0);
  assert.ok(Number.isNaN(s.occluded[3]));
  // parameter gradients are left as they were (none)
  for (const p of model.parameters()) assert.equal(p.grad, null);
});

test("attention and its gradient on the linear model: uniform A, dS/dA_ij = w·x_j, grad importance known", async () => {
  const { model, target } = linearTarget();
  const ta = targetAttention(target, model, { withGrad: true });
  assert.equal(ta.stack.layers, 1); assert.equal(ta.stack.heads, 1); assert.equal(ta.stack.tokens, T);
  assert.deepEqual(ta.names, ["attention"]);
  assert.equal(ta.causal, false);
  assertClose(ta.stack.data, new Array(T * T).fill(1 / T), "uniform attention", 1e-6, 0);
  const expectedGrad = Array.from({ length: T * T }, (_, e) => wx[e % T]);
  assertClose(ta.grads!.data, expectedGrad, "dS/dA", 1e-5, 1e-5);
  const e = await runExplanation(target, model, { methods: ["raw", "rollout", "flow", "grad", "blankout", "inputgrad"] });
  assert.equal(e.query, "mean");
  assertClose(e.methods.raw!.importance, new Array(T).fill(1 / T), "raw importance", 1e-6, 0);
  assertClose(e.methods.rollout!.importance, new Array(T).fill(1 / T), "rollout importance", 1e-6, 0);
  assertClose(e.methods.flow!.importance, new Array(T).fill(1 / T), "flow importance", 1e-6, 0);
  const pos = wx.map((v) => Math.max(v, 0)), sp = pos.reduce((a, b) => a + b, 0);
  assertClose(e.methods.grad!.importance, pos.map((v) => v / sp), "grad importance ∝ max(w·x_j, 0)", 1e-5, 1e-5);
  assertClose(e.methods.blankout!.importance, wx, "blankout importance = signed drop", 1e-5, 1e-5);
  assertClose(e.methods.inputgrad!.signed, wx, "inputgrad signed", 1e-5, 1e-5);
});

test("the brief's SelfAttention: gradient rollout either gets the true dS/dA or refuses (never silent zeros)", () => {
  manualSeed(0);
  const attn = new nn.SelfAttention(D);
  for (const l of [attn.queryLinear, attn.keyLinear]) { l.weight.storage.data.fill(0); l.bias!.storage.data.fill(0); }
  attn.valueLinear.weight.storage.data.set([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  attn.valueLinear.bias!.storage.data.fill(0);
  const w = Tensor.fromArray(Float32Array.from(W), [D, 1]);
  const target: ExplainTarget = {
    tokens: ["a", "b", "c", "d", "e"], targetLabel: "y", targetIndex: 0,
    score: () => attn.forward(Tensor.fromArray(Float32Array.from(E), [1, T, D])).sum(1).matmul(w).reshape([]),
  };
  assertClose(targetAttention(target, attn).stack.data, new Array(T * T).fill(1 / T), "uniform attention", 1e-6, 0);
  let ta;
  try { ta = targetAttention(target, attn, { withGrad: true }); } catch (e) {
    assert.match((e as Error).message, /no gradient reached the recorded attention of attention/);
    return;
  }
  assertClose(ta.grads!.data, Array.from({ length: T * T }, (_, e) => wx[e % T]), "dS/dA", 1e-5, 1e-5);
});

test("explanation of a 2-layer [CLS] transformer agrees with the explain primitives", async () => {
  const { model } = tinyModel();
  const target = tinyTarget(model, ["the", "cat", "sat", "on", "the", "mat"]);
  const e = await runExplanation(target, model, { methods: parseMethods("all") });
  const Tn = 7;
  assert.deepEqual(e.tokens, ["[CLS]", "the", "cat", "sat", "on", "the", "mat"]);
  assert.equal(e.query, 0);
  assert.deepEqual(e.special, [0]);
  assert.equal(e.layers, 2); assert.equal(e.heads, 2); assert.equal(e.layer, 1);
  assert.deepEqual(e.layerNames, ["encoder.layers.0.self_attn", "encoder.layers.1.self_attn"]);
  assert.equal(e.attention!.length, 2); assert.equal(e.attention![0].length, 2); assert.equal(e.attention![0][0].length, Tn);
  for (const m of ["raw", "rollout", "flow", "grad"] as const) {
    const r = e.methods[m]!;
    assert.equal(r.importance.length, Tn);
    assert.equal(r.importance[0], 0, `${m}: [CLS] is special`);
    assert.ok(Math.abs(r.importance.reduce((a, b) => a + b, 0) - 1) < 1e-5, `${m} sums to 1`);
    assert.equal(r.perLayer.length, 2);
    assert.deepEqual(r.perLayer[1], r.importance);
  }
  // the same numbers from the pure functions on the captured stack
  const ta = targetAttention(target, model, { withGrad: true });
  const strip = (v: ArrayLike<number>) => { const a = Array.from(v); a[0] = 0; const s = a.reduce((x, y) => x + y, 0); return a.map((x) => x / s); };
  assertClose(e.methods.rollout!.importance, strip(rolloutImportance(ta.stack, { query: 0 })), "rollout", 1e-5, 1e-4);
  assertClose(e.methods.flow!.importance, strip(flowImportance(ta.stack, { query: 0 })), "flow", 1e-5, 1e-4);
  assertClose(e.methods.grad!.importance, strip(gradRolloutImportance(ta.stack, ta.grads!, { query: 0 })), "grad", 1e-5, 1e-4);
  assert.equal(e.methods.flow!.matrices!.length, 2, "flow matrices of every layer at this size");
  // blank-out: drop = score - score with the position replaced by [PAD]
  const base = target.score().item();
  for (const t of [1, 4]) {
    const occ = target.score({ occlude: [t] }).item();
    assert.ok(Math.abs(e.methods.blankout!.importance[t] - (base - occ)) < 1e-4, `blank-out of position ${t}`);
  }
  assert.equal(e.methods.blankout!.occludedScore[0], null);
  // JSON round trip keeps everything
  const back = JSON.parse(JSON.stringify(e)) as Explanation;
  assert.deepEqual(back.methods.rollout, e.methods.rollout);
  // a chosen layer and head
  const e0 = await runExplanation(target, model, { methods: ["raw"], layer: 0, head: 1 });
  assert.equal(e0.layer, 0); assert.equal(e0.head, 1);
  const row = e0.attention![0][1][0];
  const s = row.slice(1).reduce((a, b) => a + b, 0);
  assertClose(e0.methods.raw!.importance.slice(1), row.slice(1).map((x) => x / s), "raw layer 0 head 1, [CLS] row", 1e-5, 1e-4);
  const eNeg = await runExplanation(target, model, { methods: ["raw"], layer: -2, matrices: false });
  assert.equal(eNeg.layer, 0);
  assert.equal(eNeg.attention, undefined);
});

test("explain errors: layer / head out of range, unknown methods, a filter that matches nothing", async () => {
  const { model } = tinyModel();
  const target = tinyTarget(model, ["dog", "ran"]);
  await assert.rejects(runExplanation(target, model, { layer: 2 }), /layer 2 is out of range: the explained stack has 2 attention layers \(use 0\.\.1/);
  await assert.rejects(runExplanation(target, model, { methods: ["raw"], head: 2 }), /head 2 is out of range: the attention layers have 2 heads/);
  assert.throws(() => parseMethods("rollout,attn"), /unknown method "attn": choose from raw, rollout, flow, grad, blankout, inputgrad/);
  assert.deepEqual(parseMethods("flow, raw"), ["raw", "flow"]);
  assert.deepEqual(parseMethods(undefined), ["rollout"]);
  assert.throws(() => resolveExplainLayer(3, -4), /out of range/);
  const none = { ...target, layerFilter: (n: string) => n.startsWith("decoder.") };
  await assert.rejects(runExplanation(none, model), /no self-attention was recorded.*layerFilter/);
  const one = { ...target, layerFilter: (n: string) => n === "encoder.layers.1.self_attn" };
  const e1 = await runExplanation(one, model, { methods: ["rollout"] });
  assert.equal(e1.layers, 1);
  assert.deepEqual(e1.layerNames, ["encoder.layers.1.self_attn"]);
  const badScore: ExplainTarget = { ...target, score: () => Tensor.fromArray(Float32Array.from([1, 2]), [2]) };
  await assert.rejects(runExplanation(badScore, model), /must return a scalar/);
  const noEmb: ExplainTarget = { ...target, score: (o) => target.score({ occlude: o?.occlude }) };
  await assert.rejects(runExplanation(noEmb, model, { methods: ["inputgrad"] }), /never called onEmbeddings/);
});

test("readout (encoder-decoder): rows weighted by the target's distribution; one-hot equals query", async () => {
  const { model } = tinyModel();
  const base = tinyTarget(model, ["the", "cat", "sat", "on"]);
  const methods = parseMethods("raw,rollout,flow,grad");
  const byQuery = await Promise.all([2, 4].map((q) => runExplanation({ ...base, query: q }, model, { methods })));
  const oneHot = await runExplanation({ ...base, readout: Float64Array.from([0, 0, 1, 0, 0]) }, model, { methods });
  assert.equal(oneHot.query, "readout");
  assert.deepEqual(oneHot.readout, [0, 0, 1, 0, 0]);
  for (const m of ["raw", "rollout", "flow", "grad"] as const) assertClose(oneHot.methods[m]!.importance, byQuery[0].methods[m]!.importance, `${m} one-hot readout`, 1e-12, 0);
  // 0.25 · row 2 + 0.75 · row 4 (raw attention rows each sum to 1 before the [CLS] entry is dropped)
  const mixed = await runExplanation({ ...base, readout: Float64Array.from([0, 0, 0.25, 0, 0.75]) }, model, { methods: ["raw"] });
  const a = byQuery[0].attention![1], H = a.length;
  const row = (i: number) => Array.from({ length: 5 }, (_, j) => a.reduce((s, h) => s + h[i][j], 0) / H);
  const v = row(2).map((x, j) => (j === 0 ? 0 : 0.25 * x + 0.75 * row(4)[j])), sv = v.reduce((x, y) => x + y, 0);
  assertClose(mixed.methods.raw!.importance, v.map((x) => x / sv), "mixed readout", 1e-5, 1e-4);
  await assert.rejects(runExplanation({ ...base, readout: Float64Array.from([1, 0]) }, model), /readout has 2 weights but the explained attention has 5 positions/);
  await assert.rejects(runExplanation({ ...base, readout: Float64Array.from([0, -1, 0, 0, 0]) }, model), /readout\[1\] is -1/);
});

test("image target: [CLS] prefix labelled, patch embeddings land on positions 1..4", async () => {
  const { model, target } = tinyImageTarget();
  const e = await runExplanation(target, model, { methods: ["rollout", "blankout", "inputgrad"] });
  assert.deepEqual(e.tokens, ["[CLS]", "r0c0", "r0c1", "r1c0", "r1c1"]);
  assert.deepEqual(e.special, [0]);
  assert.equal(e.query, 0);
  assert.deepEqual(e.image!.grid, [2, 2]);
  assert.equal(e.image!.pixels.length, 16);
  assert.equal(e.methods.inputgrad!.signed[0], 0);
  assert.ok(e.methods.inputgrad!.importance.slice(1).some((x) => x > 0));
  // blank-out of patch 2 (position 2) by hand
  const base = target.score().item(), occ = target.score({ occlude: [2] }).item();
  assert.ok(Math.abs(e.methods.blankout!.importance[2] - (base - occ)) < 1e-5);
});

function fakeExplanation(per: Record<string, number[][]>, blank: number[], grad: number[]): Explanation {
  const methods: Explanation["methods"] = {};
  for (const [m, p] of Object.entries(per)) (methods as Record<string, unknown>)[m] = { importance: p[p.length - 1], perLayer: p };
  methods.blankout = { importance: blank, occludedScore: [] };
  methods.inputgrad = { importance: grad, signed: grad };
  return {
    format: "attnflow-explanation", version: 1, tokens: ["[CLS]", "a", "b", "c", "d"], special: [0], query: 0,
    target: { label: "x", index: 0, score: 0 }, layers: 2, heads: 1, layerNames: [], causal: false, layer: 1, head: null, methods, timings: {},
  };
}

test("faithfulness: Spearman per method and layer over non-special positions, mean ± sd over inputs", () => {
  // position 0 is special: its (huge) values must not count
  const s1 = faithfulnessOf(fakeExplanation({ rollout: [[9, 1, 2, 3, 4], [9, 4, 3, 2, 1]], raw: [[0, 1, 1, 1, 1], [0, 1, 2, 3, 4]] }, [-5, 1, 2, 3, 4], [0, 10, 20, 40, 30]));
  assert.deepEqual(s1.corr.rollout!.blankout, [1, -1]);
  assert.ok(Number.isNaN(s1.corr.raw!.blankout![0]), "constant vector: undefined correlation");
  assert.equal(s1.corr.raw!.blankout![1], 1);
  assert.equal(s1.corr.rollout!.inputgrad![0], 0.8); // ranks [1,2,4,3] vs [1,2,3,4]: 1 - 6·2/(4·15)
  assert.equal(s1.positions, 4);
  const s2 = faithfulnessOf(fakeExplanation({ rollout: [[0, 2, 1, 3, 4], [0, 4, 3, 2, 1]], raw: [[0, 1, 2, 3, 4], [0, 4, 3, 2, 1]] }, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]));
  const sum = summariseFaithfulness([s1, s2]);
  assert.deepEqual(sum.methods, ["raw", "rollout"]);
  assert.deepEqual(sum.references, ["blankout", "inputgrad"]);
  const c = sum.cells.rollout!.blankout!;
  assert.ok(Math.abs(c[0].mean - 0.9) < 1e-12 && Math.abs(c[0].sd - Math.sqrt(0.02)) < 1e-12 && c[0].n === 2);
  assert.deepEqual(sum.cells.raw!.blankout![0], { mean: 1, sd: 0, n: 1 });
  const txt = formatFaithfulnessTable(sum);
  assert.match(txt, /Spearman correlation with blank-out/);
  assert.match(txt, /rollout\s+0\.90 ± 0\.14\s+-1\.00 ± 0\.00/);
  assert.match(txt, /raw\s+1\.00 ± 0\.00 \(n=1\)/);
});
