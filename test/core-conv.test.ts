// conv2d / nn.Conv2d: the PyTorch parity cases live in test/fixtures/pytorch/primitives/conv2d_* (core-parity runs
// them); here: a direct-loop definition at odd sizes, the channels-last variant, gradients by finite differences,
// module names and init, and errors that name the shapes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { F, nn, Tensor, randn, manualSeed, Generator, noGrad } from "../src/index.js";

/** The definition: y[b,o,i,j] = bias[o] + Σ_{c,ky,kx} x[b,c,i·s−p+ky·d, j·s−p+kx·d] · w[o,c,ky,kx] (zero outside). */
function directConv(x: Tensor, w: Tensor, bias: Tensor | null, s: [number, number], p: [number, number], d: [number, number]): Float64Array {
  const [B, C, H, W] = x.shape, [O, , kh, kw] = w.shape;
  const Ho = Math.floor((H + 2 * p[0] - d[0] * (kh - 1) - 1) / s[0]) + 1, Wo = Math.floor((W + 2 * p[1] - d[1] * (kw - 1) - 1) / s[1]) + 1;
  const xd = x.dataSync(), wd = w.dataSync(), bd = bias?.dataSync(), out = new Float64Array(B * O * Ho * Wo);
  for (let b = 0; b < B; b++) for (let o = 0; o < O; o++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    let acc = bd ? bd[o] : 0;
    for (let c = 0; c < C; c++) for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
      const y = i * s[0] - p[0] + ky * d[0], xx = j * s[1] - p[1] + kx * d[1];
      if (y >= 0 && y < H && xx >= 0 && xx < W) acc += xd[((b * C + c) * H + y) * W + xx] * wd[((o * C + c) * kh + ky) * kw + kx];
    }
    out[((b * O + o) * Ho + i) * Wo + j] = acc;
  }
  return out;
}

test("conv2d matches the direct definition at odd sizes, strides, paddings and dilations", () => {
  manualSeed(11);
  const cases: [number[], number[], [number, number], [number, number], [number, number]][] = [
    [[1, 1, 5, 5], [1, 1, 1, 1], [1, 1], [0, 0], [1, 1]],
    [[2, 3, 7, 9], [5, 3, 3, 3], [1, 1], [1, 1], [1, 1]],
    [[3, 2, 11, 6], [4, 2, 3, 2], [2, 3], [2, 0], [1, 2]],
    [[1, 4, 13, 13], [7, 4, 5, 5], [3, 3], [2, 2], [1, 1]],
    [[2, 1, 28, 28], [16, 1, 3, 3], [2, 2], [1, 1], [1, 1]],
  ];
  for (const [xs, ws, s, p, d] of cases) {
    const x = randn(xs), w = randn(ws), b = randn([ws[0]]);
    for (const bias of [b, null]) {
      const y = F.conv2d(x, w, bias, { stride: s, padding: p, dilation: d });
      const want = directConv(x, w, bias, s, p, d);
      const got = y.dataSync();
      assert.equal(got.length, want.length, `x ${xs} w ${ws}`);
      got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-4 * (1 + Math.abs(want[i])), `x ${xs} w ${ws} at ${i}: ${v} vs ${want[i]}`));
    }
  }
});

test("conv2d gradients agree with finite differences; channels-last equals NCHW", () => {
  manualSeed(12);
  const x = randn([2, 2, 5, 4]).requiresGrad_(true), w = randn([3, 2, 3, 2]).requiresGrad_(true), b = randn([3]).requiresGrad_(true);
  const o = { stride: [2, 1] as [number, number], padding: 1 };
  const go = randn([2, 3, 3, 5]);
  const y = F.conv2d(x, w, b, o);
  assert.deepEqual(y.shape, [2, 3, 3, 5]);
  y.backward(go);
  const loss = (): number => noGrad(() => F.conv2d(x, w, b, o).mul(go).sum().item());
  for (const [t, name] of [[x, "x"], [w, "weight"], [b, "bias"]] as const) {
    const data = t.storage.data as Float32Array, g = t.grad!.dataSync();
    for (const i of new Set([0, Math.min(3, data.length - 1), data.length - 1])) {
      const keep = data[i], h = 1e-2;
      data[i] = keep + h; const up = loss();
      data[i] = keep - h; const dn = loss();
      data[i] = keep;
      const fd = (up - dn) / (2 * h);
      assert.ok(Math.abs(fd - g[i]) < 2e-2 * (1 + Math.abs(fd)), `d${name}[${i}]: autograd ${g[i]} vs finite difference ${fd}`);
    }
  }
  const last = F.conv2dChannelsLast(x.permute(0, 2, 3, 1), w, b, o).permute(0, 3, 1, 2).contiguous().dataSync();
  y.dataSync().forEach((v, i) => assert.ok(Math.abs(v - last[i]) < 1e-5));
});

test("nn.Conv2d: PyTorch names and shapes, seeded init bound, fused activation, errors name the shapes", () => {
  const c = new nn.Conv2d(3, 8, [3, 5], { stride: 2, padding: [1, 2], generator: new Generator(5) });
  assert.deepEqual(Object.keys(c.stateDict()).sort(), ["bias", "weight"]);
  assert.deepEqual(c.weight.shape, [8, 3, 3, 5]);
  const bound = 1 / Math.sqrt(3 * 3 * 5);
  for (const v of c.weight.dataSync()) assert.ok(Math.abs(v) <= bound + 1e-7);
  for (const v of c.bias!.dataSync()) assert.ok(Math.abs(v) <= bound + 1e-7);
  assert.deepEqual(noGrad(() => c.forward(randn([2, 3, 9, 10]))).shape, [2, 8, 5, 5]);
  const xl = randn([2, 9, 10, 3]);
  const relu = noGrad(() => c.forwardChannelsLast(xl, "relu")).dataSync(), plain = noGrad(() => c.forwardChannelsLast(xl)).dataSync();
  relu.forEach((v, i) => assert.ok(Math.abs(v - Math.max(0, plain[i])) < 1e-6));
  assert.equal(new nn.Conv2d(2, 4, 3, { bias: false }).bias, null);
  assert.throws(() => c.forward(randn([2, 4, 9, 10])), /input \[2, 4, 9, 10\] has 4 channels but weight \[8, 3, 3, 5\] expects 3/);
  assert.throws(() => c.forward(randn([3, 9, 10])), /input must be 4-D \(B, C, H, W\), got \[3, 9, 10\]/);
  assert.throws(() => F.conv2d(randn([1, 1, 2, 2]), randn([1, 1, 3, 3])), /kernel 3×3 \(dilation 1×1\) does not fit input 2×2/);
  assert.throws(() => F.conv2d(randn([1, 1, 4, 4]), randn([1, 1, 3, 3]), null, { stride: 0 }), /stride must be a positive integer/);
  assert.throws(() => F.conv2d(randn([1, 1, 4, 4]), randn([2, 1, 3, 3]), randn([3])), /bias \[3\] does not match weight \[2, 1, 3, 3\]/);
  assert.throws(() => new nn.Conv2d(0, 4, 3), /inChannels must be a positive integer/);
});
