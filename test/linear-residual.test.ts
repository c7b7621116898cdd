// F.linear(x, W, b, null, residual): y = x·Wᵀ + b + residual. Without gradients the GEMM accumulates into a copy of
// the residual (beta 1); with gradients it is linear + add. Checked on every backend Node has against a float64 sum
// written from the definition, with and without bias, with a transposed (non-row-order) input, and the gradients
// against the unfused composition.
import { test } from "node:test";
import assert from "node:assert/strict";
import { availableBackends, F, getBackend, noGrad, setBackend, Tensor } from "../src/node.js";
import { mulberry32 } from "../bench/lib/prng.js";

const rand = mulberry32(0x5eed);
const arr = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);

function oracle(x: Float32Array, w: Float32Array, b: Float32Array | null, r: Float32Array, N: number, inF: number, outF: number): Float64Array {
  const y = new Float64Array(N * outF);
  for (let n = 0; n < N; n++) for (let o = 0; o < outF; o++) {
    let s = (b ? b[o] : 0) + r[n * outF + o];
    for (let i = 0; i < inF; i++) s += x[n * inF + i] * w[o * inF + i];
    y[n * outF + o] = s;
  }
  return y;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const backend of ["reference", "wasm", "native"].filter((b) => availableBackends().includes(b))) {
  test(`F.linear with a residual (${backend}): x·Wᵀ + b + r, fused without gradients, composed with them`, () => {
    const prev = getBackend();
    setBackend(backend);
    try {
      for (const [B, T, inF, outF, withBias] of [[1, 7, 13, 9, true], [2, 5, 64, 48, false], [3, 33, 70, 130, true]] as const) {
        const N = B * T;
        const xd = arr(N * inF), wd = arr(outF * inF), bd = arr(outF), rd = arr(N * outF);
        const want = oracle(xd, wd, withBias ? bd : null, rd, N, inF, outF);
        const x = Tensor.fromArray(xd, [B, T, inF]), w = Tensor.fromArray(wd, [outF, inF]);
        const b = withBias ? Tensor.fromArray(bd, [outF]) : null, r = Tensor.fromArray(rd, [B, T, outF]);
        const y = noGrad(() => F.linear(x, w, b, null, r));
        assert.deepEqual(y.shape, [B, T, outF]);
        assert.ok(maxDiff(y.dataSync(), want) < 1e-4, `${backend} ${B}x${T}x${inF}->${outF}: ${maxDiff(y.dataSync(), want)}`);
        // the residual is read, never written
        assert.deepEqual(r.dataSync(), rd);
        // an input whose rows are not in plain order (a transposed view): the sum is added after the GEMM
        const xt = Tensor.fromArray(xd, [T, B, inF]).transpose(0, 1);
        const xtc = xt.contiguous();
        const yt = noGrad(() => F.linear(xt, w, b, null, r));
        const wantT = oracle(xtc.dataSync() as Float32Array, wd, withBias ? bd : null, rd, N, inF, outF);
        assert.ok(maxDiff(yt.contiguous().dataSync(), wantT) < 1e-4);
        // with gradients: the same values, and the gradients of linear + add
        const xg = x.clone().requiresGrad_(), wg = w.clone().requiresGrad_(), rg = r.clone().requiresGrad_();
        const bg = b ? b.clone().requiresGrad_() : null;
        const g = Tensor.fromArray(arr(N * outF), [B, T, outF]);
        F.linear(xg, wg, bg, null, rg).mul(g).sum().backward();
        const xh = x.clone().requiresGrad_(), wh = w.clone().requiresGrad_(), rh = r.clone().requiresGrad_();
        const bh = b ? b.clone().requiresGrad_() : null;
        F.linear(xh, wh, bh, null).add(rh).mul(g).sum().backward();
        for (const [u, v, name] of [[xg, xh, "x"], [wg, wh, "W"], [rg, rh, "residual"], ...(bg ? [[bg, bh!, "b"] as const] : [])] as const) {
          assert.ok(maxDiff(u.grad!.dataSync(), v.grad!.dataSync()) < 1e-5, `${backend}: grad of ${name}`);
        }
      }
    } finally { setBackend(prev); }
  });
}

test("F.linear with a residual: a residual of another shape, or with an activation, is an error naming the shapes", () => {
  const x = Tensor.fromArray(arr(2 * 3 * 4), [2, 3, 4]), w = Tensor.fromArray(arr(5 * 4), [5, 4]);
  assert.throws(() => noGrad(() => F.linear(x, w, null, null, Tensor.fromArray(arr(2 * 3 * 4), [2, 3, 4]))),
    /residual \[2, 3, 4\] does not match the output \[2, 3, 5\] of input \[2, 3, 4\] and weight \[5, 4\]/);
  assert.throws(() => noGrad(() => F.linear(x, w, null, "relu", Tensor.fromArray(arr(2 * 3 * 5), [2, 3, 5]))), /without an activation/);
});

// linearAddLayerNorm (ops/nn.ts): layerNorm(x·Wᵀ + b + r) over the last dim, one kernel call on the native backend.
function lnOracle(s: Float64Array, rows: number, N: number, g: Float32Array | null, be: Float32Array | null, eps: number): Float64Array {
  const y = new Float64Array(rows * N);
  for (let r = 0; r < rows; r++) {
    let m = 0, v = 0;
    for (let j = 0; j < N; j++) m += s[r * N + j];
    m /= N;
    for (let j = 0; j < N; j++) v += (s[r * N + j] - m) ** 2;
    const rs = 1 / Math.sqrt(v / N + eps);
    for (let j = 0; j < N; j++) y[r * N + j] = (s[r * N + j] - m) * rs * (g ? g[j] : 1) + (be ? be[j] : 0);
  }
  return y;
}

for (const backend of ["reference", "wasm", "native"].filter((b) => availableBackends().includes(b))) {
  test(`linearAddLayerNorm (${backend}): LayerNorm(x·Wᵀ + b + r), equal to the float64 definition and to the composition`, async () => {
    const { linearAddLayerNorm } = await import("../src/ops/nn.js");
    const prev = getBackend();
    setBackend(backend);
    try {
      for (const [B, T, inF, N, withBias, affine] of [[1, 7, 13, 9, true, true], [2, 37, 70, 130, false, true], [1, 131, 200, 160, true, false],
        [1, 5, 3072, 48, true, true]] as const) {
        const rows = B * T, eps = 1e-12;
        const xd = arr(rows * inF), wd = arr(N * inF), bd = arr(N), rd = arr(rows * N), gd = arr(N), bed = arr(N);
        const x = Tensor.fromArray(xd, [B, T, inF]), w = Tensor.fromArray(wd, [N, inF]), r = Tensor.fromArray(rd, [B, T, N]);
        const b = withBias ? Tensor.fromArray(bd, [N]) : null;
        const g = affine ? Tensor.fromArray(gd, [N]) : null, be = affine ? Tensor.fromArray(bed, [N]) : null;
        const want = lnOracle(oracle(xd, wd, withBias ? bd : null, rd, rows, inF, N), rows, N, affine ? gd : null, affine ? bed : null, eps);
        for (let call = 0; call < 3; call++) {   // native: the third call reads the cached packing
          const y = noGrad(() => linearAddLayerNorm(x, w, b, r, g, be, eps));
          assert.deepEqual(y.shape, [B, T, N]);
          const d = maxDiff(y.dataSync(), want);
          assert.ok(d < 2e-4, `${backend} ${B}x${T}x${inF}->${N} (call ${call}): max diff ${d}`);
          const composed = noGrad(() => F.layerNorm(F.linear(x, w, b, null, r), [N], g, be, eps));
          assert.deepEqual(y.dataSync(), composed.dataSync(), `${backend}: not bit-identical to layerNorm(linear(…, residual))`);
        }
        assert.deepEqual(r.dataSync(), rd, "the residual is read, never written");
        // with gradients: the composition and its gradients
        const xg = x.clone().requiresGrad_(), wg = w.clone().requiresGrad_();
        const gy = Tensor.fromArray(arr(rows * N), [B, T, N]);
        linearAddLayerNorm(xg, wg, b, r, g, be, eps).mul(gy).sum().backward();
        const xh = x.clone().requiresGrad_(), wh = w.clone().requiresGrad_();
        F.layerNorm(F.linear(xh, wh, b).add(r), [N], g, be, eps).mul(gy).sum().backward();
        assert.ok(maxDiff(xg.grad!.dataSync(), xh.grad!.dataSync()) < 1e-4, `${backend}: grad of x`);
        assert.ok(maxDiff(wg.grad!.dataSync(), wh.grad!.dataSync()) < 1e-4, `${backend}: grad of W`);
      }
    } finally { setBackend(prev); }
  });
}

test("linearAddLayerNorm (native): a weight written in place between calls shows in the next result", { skip: availableBackends().includes("native") ? false : "no native backend" }, async () => {
  const { linearAddLayerNorm } = await import("../src/ops/nn.js");
  const prev = getBackend();
  setBackend("native");
  try {
    const [T, inF, N] = [64, 192, 128];
    const x = Tensor.fromArray(arr(T * inF), [1, T, inF]), w = Tensor.fromArray(arr(N * inF), [N, inF]), r = Tensor.fromArray(arr(T * N), [1, T, N]);
    for (let i = 0; i < 3; i++) noGrad(() => linearAddLayerNorm(x, w, null, r, null, null));
    noGrad(() => { w.addInPlace(Tensor.fromArray(arr(N * inF), [N, inF]), 0.5); });
    const want = lnOracle(oracle(x.dataSync() as Float32Array, w.dataSync() as Float32Array, null, r.dataSync() as Float32Array, T, inF, N), T, N, null, null, 1e-5);
    const y = noGrad(() => linearAddLayerNorm(x, w, null, r, null, null));
    assert.ok(maxDiff(y.dataSync(), want) < 2e-4, `after an in-place update: ${maxDiff(y.dataSync(), want)}`);
  } finally { setBackend(prev); }
});
