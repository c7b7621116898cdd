import { test } from "node:test";
import assert from "node:assert/strict";
import { fuseHeads, prepareLayers, discardLowest, matrixStack, checkAttentionStack } from "../src/explain/attention-stack.js";
import { attentionRollout, attentionRolloutRow, rolloutPerHead, rolloutOfLayers, rolloutRowOfLayers, matmulSquare } from "../src/explain/rollout.js";
import { assertClose, loadFlowFixture, randomAttention } from "./explain-helpers.js";

for (const name of ["small", "medium", "larger"] as const) {
  test(`rollout fixture parity: ${name}`, () => {
    const fx = loadFlowFixture(name);
    assertClose(fuseHeads(fx.att).data, fx.t("output.head_averaged").data, `${name} head_averaged`);
    assertClose(prepareLayers(fx.att).data, fx.t("output.residual_normalised").data, `${name} residual_normalised`);
    const r = attentionRollout(fx.att);
    assert.deepEqual(r.shape, [fx.L, fx.T, fx.T]);
    assertClose(r.data, fx.t("output.rollout").data, `${name} rollout`);
    assertClose(attentionRollout(fx.att, { residual: false }).data, fx.t("output.rollout_no_residual").data, `${name} rollout_no_residual`);
  });
}

test("rollout recursion: rollout[l] = res[l] @ rollout[l-1], startLayer drops the first layers", () => {
  const att = randomAttention(4, 3, 6, 11);
  const res = prepareLayers(att);
  const T = 6, TT = 36;
  const full = attentionRollout(att);
  // independent triple loop
  let prev = res.data.slice(0, TT);
  for (let l = 1; l < 4; l++) {
    const next = new Float64Array(TT);
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      let s = 0;
      for (let k = 0; k < T; k++) s += res.data[l * TT + i * T + k] * prev[k * T + j];
      next[i * T + j] = s;
    }
    assertClose(full.data.subarray(l * TT, (l + 1) * TT), next, `rollout layer ${l}`, 1e-12, 1e-12);
    prev = next;
  }
  // rows of a rollout of row-stochastic matrices sum to 1
  for (let r = 0; r < 4 * T; r++) {
    let s = 0;
    for (let j = 0; j < T; j++) s += full.data[r * T + j];
    assert.ok(Math.abs(s - 1) < 1e-12, `row ${r} sums to ${s}`);
  }
  const from2 = attentionRollout(att, { startLayer: 2 });
  assert.deepEqual(from2.shape, [2, T, T]);
  assertClose(from2.data.subarray(0, TT), res.data.subarray(2 * TT, 3 * TT), "startLayer=2 first matrix", 0, 0);
  assert.throws(() => attentionRollout(att, { startLayer: 4 }), /startLayer/);
});

test("attentionRolloutRow equals a row of the full rollout (any layer, startLayer, options); bad arguments are named", () => {
  for (const T of [1, 5, 9]) {
    const att = randomAttention(5, 2, T, 100 + T);
    for (const o of [{}, { startLayer: 1 }, { layer: 2 }, { layer: 3, startLayer: 1, causal: true }, { discardRatio: 0.3, headFusion: "max" as const }, { headFusion: "min" as const, alpha: 0.3 }, { residual: false, headFusion: "max" as const }]) {
      const layer = (o as { layer?: number }).layer ?? 4, start = (o as { startLayer?: number }).startLayer ?? 0;
      const full = attentionRollout(att, o);
      for (let tok = 0; tok < T; tok++) {
        const row = attentionRolloutRow(att, tok, o);
        const off = (layer - start) * T * T + tok * T;
        assertClose(row, full.data.subarray(off, off + T), `T ${T} token ${tok} ${JSON.stringify(o)}`, 1e-12, 1e-12);
      }
    }
  }
  const fx = loadFlowFixture("small");
  const last = fx.t("output.rollout").data, TT = fx.T * fx.T;
  assertClose(attentionRolloutRow(fx.att, fx.T - 1), last.subarray((fx.L - 1) * TT + (fx.T - 1) * fx.T, fx.L * TT), "fixture last row");
  const att = randomAttention(3, 2, 4, 7);
  assert.throws(() => attentionRolloutRow(att, 4), /token must be an integer in \[0, 3\], got 4/);
  assert.throws(() => attentionRolloutRow(att, 0, { layer: 3 }), /layer must be/);
  assert.throws(() => attentionRolloutRow(att, 0, { layer: 1, startLayer: 2 }), /startLayer/);
  // the row path builds prepared rows itself: same numbers, bit for bit, as the prepared stack
  const big = randomAttention(4, 3, 11, 5);
  for (const o of [{}, { causal: true, alpha: 0.7 }, { headFusion: "min" as const }]) {
    assert.deepEqual(attentionRolloutRow(big, 10, o), rolloutRowOfLayers(prepareLayers(big, o), 10), JSON.stringify(o));
  }
  const bad = randomAttention(3, 2, 4, 7);
  bad.data[(1 * 2 + 1) * 16 + 2 * 4 + 3] = NaN;            // layer 1, head 1, query 2, key 3
  assert.throws(() => attentionRolloutRow(bad, 0), /weight at \[layer 1, head 1, query 2, key 3\] is NaN/);
  assert.throws(() => attentionRolloutRow({ ...att, data: att.data.subarray(1) }, 0), /data has 95 elements but \(layers, heads, tokens, tokens\) = \(3, 2, 4, 4\) needs 96/);
  assert.throws(() => attentionRolloutRow(att, 0, { headFusion: "median" as never }), /headFusion must be/);
});

test("head fusion max/min and residual alpha", () => {
  const att = randomAttention(2, 3, 4, 5);
  const mx = fuseHeads(att, "max"), mn = fuseHeads(att, "min");
  for (let l = 0; l < 2; l++) for (let e = 0; e < 16; e++) {
    const vals = [0, 1, 2].map((h) => att.data[(l * 3 + h) * 16 + e]);
    assert.equal(mx.data[l * 16 + e], Math.max(...vals));
    assert.equal(mn.data[l * 16 + e], Math.min(...vals));
  }
  // alpha = 0.3: A = (0.3 W + 0.7 I) / rowsum
  const p = prepareLayers(att, { alpha: 0.3, headFusion: "max" });
  for (let i = 0; i < 4; i++) {
    let s = 0;
    for (let j = 0; j < 4; j++) s += 0.3 * mx.data[i * 4 + j] + (i === j ? 0.7 : 0);
    for (let j = 0; j < 4; j++) {
      const want = (0.3 * mx.data[i * 4 + j] + (i === j ? 0.7 : 0)) / s;
      assert.ok(Math.abs(p.data[i * 4 + j] - want) < 1e-15);
    }
  }
  assert.throws(() => prepareLayers(att, { alpha: 1.5 }), /alpha/);
  assert.throws(() => fuseHeads(att, "median" as never), /headFusion/);
});

test("discardRatio zeroes the smallest off-diagonal weights and never the diagonal", () => {
  const m = matrixStack(1, 3, Float64Array.from([0.01, 0.5, 0.49, 0.3, 0.02, 0.68, 0.2, 0.05, 0.75]));
  discardLowest(m, 0.34); // floor(0.34 * 9) = 3 of the 6 off-diagonal entries: 0.05, 0.2, 0.3
  assert.deepEqual(Array.from(m.data), [0.01, 0.5, 0.49, 0, 0.02, 0.68, 0, 0, 0.75]);
  const att = randomAttention(2, 2, 5, 3);
  const r = attentionRollout(att, { discardRatio: 0.9 });
  // discarded rows are renormalised by the residual step
  for (let row = 0; row < 10; row++) {
    let s = 0;
    for (let j = 0; j < 5; j++) s += r.data[row * 5 + j];
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
  assert.throws(() => attentionRollout(att, { discardRatio: 1 }), /discardRatio/);
});

test("causal receptive field: rows renormalised over visible tokens, rollout stays lower-triangular", () => {
  const att = randomAttention(3, 2, 5, 9);
  const r = attentionRollout(att, { causal: true });
  for (let l = 0; l < 3; l++) for (let i = 0; i < 5; i++) {
    let s = 0;
    for (let j = 0; j < 5; j++) {
      const x = r.data[(l * 5 + i) * 5 + j];
      if (j > i) assert.equal(x, 0, `layer ${l} row ${i} sees future token ${j}`);
      s += x;
    }
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
  const p = prepareLayers(att, { causal: true, residual: false });
  // row 2 of layer 0: fused weights [w0, w1, w2] / (w0 + w1 + w2)
  const f = fuseHeads(att);
  const s = f.data[10] + f.data[11] + f.data[12];
  assert.ok(Math.abs(p.data[11] - f.data[11] / s) < 1e-15);
});

test("per-head rollout: mean over heads equals the ordinary rollout; single-head layer alone at startLayer", () => {
  const att = randomAttention(3, 4, 5, 21);
  const ph = rolloutPerHead(att);
  assert.deepEqual(ph.shape, [4, 5, 5]);
  const r = attentionRollout(att);
  const mean = new Float64Array(25);
  for (let h = 0; h < 4; h++) for (let e = 0; e < 25; e++) mean[e] += ph.data[h * 25 + e] / 4;
  assertClose(mean, r.data.subarray(2 * 25, 3 * 25), "mean of per-head rollouts", 1e-12, 1e-12);
  // head h of layer 0 alone
  const ph0 = rolloutPerHead(att, { layer: 0 });
  const h2 = new Float64Array(25);
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) h2[i * 5 + j] = 0.5 * att.data[(0 * 4 + 2) * 25 + i * 5 + j] + (i === j ? 0.5 : 0);
  assertClose(ph0.data.subarray(50, 75), h2, "layer-0 head 2", 1e-15, 1e-12);
  // and through one earlier layer explicitly
  const prep = prepareLayers(att);
  const below = rolloutOfLayers(matrixStack(2, 5, prep.data.slice(0, 50))).data.subarray(25, 50);
  const single = new Float64Array(25);
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) single[i * 5 + j] = 0.5 * att.data[(2 * 4 + 1) * 25 + i * 5 + j] + (i === j ? 0.5 : 0);
  const want = new Float64Array(25);
  matmulSquare(single, 0, below, 0, want, 0, 5);
  assertClose(ph.data.subarray(25, 50), want, "layer-2 head 1", 1e-13, 1e-12);
});

test("bad attention input is rejected with a message naming the problem", () => {
  assert.throws(() => checkAttentionStack({ data: new Float32Array(7), layers: 1, heads: 1, tokens: 3 }), /9/);
  const bad = randomAttention(1, 2, 3, 1);
  bad.data[10] = -0.1;
  assert.throws(() => attentionRollout(bad), /layer 0, head 1, query 0, key 1/);
  assert.throws(() => attentionRollout({ data: new Float64Array(4), layers: 0, heads: 1, tokens: 2 }), /layers/);
});

test("matmulSquare: register-blocked product equals the plain k-ascending sum, every size and offset", () => {
  let seed = 9;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.3; };
  for (const T of [1, 2, 3, 4, 5, 7, 8, 13, 16]) {
    const TT = T * T, buf = new Float64Array(3 * TT + 7).map(rnd);
    const aOff = 3, bOff = 3 + TT, cOff = 3 + 2 * TT;
    const want = new Float64Array(TT);
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      let acc = 0;
      for (let k = 0; k < T; k++) acc += buf[aOff + i * T + k] * buf[bOff + k * T + j];
      want[i * T + j] = acc;
    }
    const before = buf.slice();
    matmulSquare(buf, aOff, buf, bOff, buf, cOff, T);
    assert.deepEqual(buf.subarray(cOff, cOff + TT), want, `T ${T}`);
    assert.deepEqual(buf.subarray(0, cOff), before.subarray(0, cOff), `T ${T}: only C is written`);
    assert.deepEqual(buf.subarray(cOff + TT), before.subarray(cOff + TT), `T ${T}: nothing after C is written`);
  }
});
