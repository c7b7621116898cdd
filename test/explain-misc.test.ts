import { test } from "node:test";
import assert from "node:assert/strict";
import { gradRollout, gradWeightedLayer } from "../src/explain/grad-rollout.js";
import {
  attentionImportance, flowImportance, gradRolloutImportance, inputXGradient, normaliseScores, rankData, rolloutImportance, spearman,
} from "../src/explain/importance.js";
import { attentionRollout } from "../src/explain/rollout.js";
import { attentionFlow } from "../src/explain/flow.js";
import { assertClose, randomAttention } from "./explain-helpers.js";

test("spearman against hand-computed values (average ranks for ties)", () => {
  // ranks of b: [1, 2, 3.5, 5, 3.5]; sum xy = 8, sum xx = 10, sum yy = 9.5
  assert.ok(Math.abs(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) - 8 / Math.sqrt(95)) < 1e-15);
  // ties on both sides: ranks a = [4,1.5,5,1.5,6,8,3,7], b = [3.5,5,1.5,7,3.5,7,1.5,7]
  assert.ok(Math.abs(spearman([3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]) - 8 / Math.sqrt(41.5 * 39)) < 1e-15);
  assert.equal(spearman([1, 2, 3], [30, 20, 10]), -1);
  assert.equal(spearman([0.1, 0.5, 0.2], [1, 9, 3]), 1); // monotone, not linear
  assert.ok(Number.isNaN(spearman([1, 2, 3], [4, 4, 4])));
  assert.deepEqual(Array.from(rankData([10, 20, 10, 30, 20, 10])), [2, 4.5, 2, 6, 4.5, 2]);
  assert.throws(() => spearman([1, 2], [1, 2, 3]), /lengths differ/);
  assert.throws(() => spearman([1], [1]), /at least 2/);
  assert.throws(() => rankData([1, NaN]), /NaN/);
});

const A1 = Float64Array.from([0.6, 0.4, 0.3, 0.7, /* layer 1 */ 0.5, 0.5, 0.9, 0.1]);
const G1 = Float64Array.from([1, -1, 2, 0.5, /* layer 1 */ -1, 2, 1, 1]);

test("gradient rollout on a hand-made 2-layer example", () => {
  // layer 0: (A ⊙ G)+ = [[0.6, 0], [0.6, 0.35]]  ->  R = I + that = [[1.6, 0], [0.6, 1.35]]
  // layer 1: (A ⊙ G)+ = [[0, 1], [0.9, 0.1]]     ->  R + Abar R = [[2.2, 1.35], [2.1, 1.485]]
  const att = { data: A1, layers: 2, heads: 1, tokens: 2 };
  const r = gradRollout(att, { data: G1, layers: 2, heads: 1, tokens: 2 });
  assert.deepEqual(r.shape, [2, 2]);
  assertClose(r.data, [2.2, 1.35, 2.1, 1.485], "R, one head", 1e-14, 0);
  // a second head with zero gradient halves every Abar (mean over heads)
  const att2 = { data: new Float64Array(16), layers: 2, heads: 2, tokens: 2 };
  const g2 = { data: new Float64Array(16), layers: 2, heads: 2, tokens: 2 };
  for (let l = 0; l < 2; l++) for (let h = 0; h < 2; h++) for (let e = 0; e < 4; e++) {
    att2.data[(l * 2 + h) * 4 + e] = A1[l * 4 + e];
    g2.data[(l * 2 + h) * 4 + e] = h === 0 ? G1[l * 4 + e] : 0;
  }
  assertClose(gradWeightedLayer(att2, g2, 0), [0.3, 0, 0.3, 0.175], "Abar_0, two heads", 1e-15, 0);
  assertClose(gradRollout(att2, g2).data, [1.45, 0.5875, 0.9, 1.23375], "R, two heads", 1e-14, 0);
  // only layer 1
  assertClose(gradRollout(att, { data: G1, layers: 2, heads: 1, tokens: 2 }, { startLayer: 1 }).data, [1, 1, 0.9, 1.1], "R from layer 1", 1e-15, 0);
  // importance of query 1 without its own entry: [2.1, 0] -> [1, 0]; with it: [2.1, 1.485] / 3.585
  const gi = gradRolloutImportance(att, { data: G1, layers: 2, heads: 1, tokens: 2 }, { query: 1 });
  assertClose(gi, [1, 0], "gradRolloutImportance", 1e-15, 0);
  const gk = gradRolloutImportance(att, { data: G1, layers: 2, heads: 1, tokens: 2 }, { query: 1, keepSelf: true });
  assertClose(gk, [2.1 / 3.585, 1.485 / 3.585], "gradRolloutImportance keepSelf", 1e-15, 0);
  assert.throws(() => gradRollout(att, { data: G1, layers: 2, heads: 2, tokens: 2 }), /gradients have shape \(2, 2, 2, 2\)/);
  assert.throws(() => gradRollout(att, { data: Float64Array.from([...G1.slice(0, 7), NaN]), layers: 2, heads: 1, tokens: 2 }), /element 7/);
});

test("importance helpers: normalised rows of attention, rollout and flow", () => {
  const att = randomAttention(3, 2, 6, 31);
  const last = attentionImportance(att, { query: 4 });
  let s = 0;
  for (const x of last) s += x;
  assert.ok(Math.abs(s - 1) < 1e-12);
  // head 1 of layer 0, row 2, is already a distribution: importance equals it
  const h = attentionImportance(att, { query: 2, layer: 0, head: 1 });
  assertClose(h, att.data.subarray(36 + 12, 36 + 18), "head row", 1e-15, 1e-12);
  const mx = attentionImportance(att, { query: 2, layer: 0, head: "max" });
  const raw = [0, 1, 2, 3, 4, 5].map((j) => Math.max(att.data[12 + j], att.data[36 + 12 + j]));
  assertClose(mx, raw.map((x) => x / raw.reduce((p, q) => p + q, 0)), "max-fused row", 1e-15, 1e-12);
  const ri = rolloutImportance(att, { query: 5 });
  assertClose(ri, attentionRollout(att).data.subarray(2 * 36 + 30, 2 * 36 + 36), "rollout row", 1e-15, 1e-12);
  const ri1 = rolloutImportance(att, { query: 5, layer: 1 });
  assertClose(ri1, attentionRollout(att).data.subarray(36 + 30, 36 + 36), "rollout row layer 1", 1e-15, 1e-12);
  const fi = flowImportance(att, { query: 3, layer: 2 });
  assertClose(fi, attentionFlow(att, { layer: 2 }).flows.subarray(18, 24), "flow row", 0, 0);
  assert.throws(() => attentionImportance(att, { query: 6 }), /query must be a token index in \[0, 5\]/);
  assert.throws(() => attentionImportance(att, { query: 0, head: 2 }), /head must be in \[0, 1\]/);
  assert.throws(() => normaliseScores([0.5, -0.1]), /entry 1/);
  assert.deepEqual(Array.from(normaliseScores([0, 0])), [0, 0]);
});

test("inputXGradient: l2, signed sum and absolute sum per token", () => {
  const x = [1, 2, -3, /* token 1 */ 0.5, 0, 4];
  const g = [2, -1, 1, /* token 1 */ 4, 7, -0.25];
  // products: token 0 [2, -2, -3], token 1 [2, 0, -1]
  assertClose(inputXGradient(x, g, 2, 3), [Math.sqrt(17), Math.sqrt(5)], "l2", 1e-15, 0);
  assertClose(inputXGradient(x, g, 2, 3, "sum"), [-3, 1], "sum", 1e-15, 0);
  assertClose(inputXGradient(Float32Array.from(x), Float64Array.from(g), 2, 3, "abs-sum"), [7, 3], "abs-sum", 1e-15, 0);
  assert.throws(() => inputXGradient(x, g, 3, 3), /embeddings have 6 elements, expected T\*D = 9/);
  assert.throws(() => inputXGradient(x, g, 2, 3, "max" as never), /mode/);
});
