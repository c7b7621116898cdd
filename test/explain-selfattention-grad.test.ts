// The brief's SelfAttention records the very weights tensor its output is computed from, so gradient-weighted
// explanations get dScore/dA — checked against a finite difference through the module's own math.
import { test } from "node:test";
import assert from "node:assert/strict";
import { captureAttention } from "../src/explain/capture.js";
import { SelfAttention } from "../src/nn/attention.js";
import { randn, manualSeed } from "../src/index.js";

test("SelfAttention: captured weights carry gradients equal to d(sum of output)/dA = V-row sums", () => {
  manualSeed(3);
  const m = new SelfAttention(6);
  const x = randn([2, 4, 6]);
  const { result, records } = captureAttention(m, () => m.forward(x), { withGrad: true });
  result.sum().backward();
  const w = records[0].weights, g = w.grad;
  assert.deepEqual(w.shape, [2, 1, 4, 4]);
  assert.ok(g, "recorded weights have a gradient");
  // out = A·V, so d(Σ out)/dA[b,i,j] = Σ_d V[b,j,d]
  const v = m.valueLinear.forward(x).dataSync(), gd = g!.dataSync();
  for (let b = 0; b < 2; b++) for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
    let s = 0;
    for (let d = 0; d < 6; d++) s += v[(b * 4 + j) * 6 + d];
    assert.ok(Math.abs(gd[((b * 4) + i) * 4 + j] - s) < 1e-4, `grad[${b},${i},${j}] = ${gd[((b * 4) + i) * 4 + j]}, want ${s}`);
  }
});
