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
