// linearCat (ops/matmul.ts) and the linearGroup kernel behind it: several linear layers of one input side by side,
// cat([x·W₀ᵀ + b₀, x·W₁ᵀ + b₁, …], −1) — what BERT's query/key/value projections run as one call. Checked on every
// backend Node has against a float64 sum written from the definition on odd shapes (rows not a multiple of the
// micro-tile, widths not a multiple of the vector, one part, a part of one column, no bias); on the native backend
// each part must equal F.linear's result bit for bit, before and after the weights' packings are cached, and a weight
// written in place must show in the next call. With gradients it is linear + cat (the gradients are linear's).
import { test } from "node:test";
import assert from "node:assert/strict";
import { availableBackends, F, getBackend, noGrad, setBackend, Tensor } from "../src/node.js";
import { linearCat } from "../src/ops/matmul.js";
import { loadNativeKernels } from "../src/node/native-addon.js";
import { mulberry32 } from "../bench/lib/prng.js";

const rand = mulberry32(0x6c67);
const arr = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);

/** float64 oracle: (rows, ΣN) = the parts' x·Wᵀ + b side by side. */
function oracle(x: Float32Array, rows: number, inF: number, ws: Float32Array[], Ns: number[], bs: (Float32Array | null)[]): Float64Array {
  const total = Ns.reduce((a, b) => a + b, 0), y = new Float64Array(rows * total);
  let col = 0;
  Ns.forEach((N, p) => {
    for (let r = 0; r < rows; r++) for (let j = 0; j < N; j++) {
      let s = bs[p] ? bs[p]![j] : 0;
      for (let k = 0; k < inF; k++) s += x[r * inF + k] * ws[p][j * inF + k];
      y[r * total + col + j] = s;
    }
    col += N;
  });
  return y;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function onBackend<T>(name: string, fn: () => T): T {
  const prev = getBackend();
  setBackend(name);
  try { return fn(); } finally { setBackend(prev); }
}

// [batch, T, in, part widths, which parts have a bias]
const SHAPES: Array<[number, number, number, number[], boolean[]]> = [
  [1, 7, 13, [9, 1, 17], [true, false, true]],
  [2, 37, 70, [130], [true]],
  [1, 131, 200, [160, 48, 160], [true, true, false]],   // rows 131 = 21·6 + 5; 2·131·160·200 flops: the grouped path
  [3, 5, 64, [64, 64, 64], [false, false, false]],
];

for (const backend of ["reference", "wasm", "native"].filter((b) => availableBackends().includes(b))) {
  test(`linearCat (${backend}): the parts' x·Wᵀ + b side by side, equal to the float64 definition on odd shapes`, () => {
    onBackend(backend, () => {
      for (const [B, T, inF, Ns, hasBias] of SHAPES) {
        const rows = B * T;
        const xd = arr(rows * inF), wds = Ns.map((N) => arr(N * inF)), bds = Ns.map((N, i) => (hasBias[i] ? arr(N) : null));
        const x = Tensor.fromArray(xd, [B, T, inF]);
        const ws = wds.map((w, i) => Tensor.fromArray(w, [Ns[i], inF])), bs = bds.map((b) => (b ? Tensor.fromArray(b, [b.length]) : null));
        const want = oracle(xd, rows, inF, wds, Ns, bds);
        for (let call = 0; call < 3; call++) {   // native: the third call reads the cached packings
          const y = noGrad(() => linearCat(x, ws, bs));
          assert.deepEqual(y.shape, [B, T, Ns.reduce((a, b) => a + b, 0)]);
          const d = maxDiff(y.dataSync(), want);
          assert.ok(d < 1e-4, `${backend} ${B}x${T}x${inF} -> ${Ns.join("+")} (call ${call}): max diff ${d}`);
          // each part is exactly F.linear's result
          let col = 0;
          for (let p = 0; p < Ns.length; p++) {
            const part = noGrad(() => F.linear(x, ws[p], bs[p]));
            assert.deepEqual(y.narrow(2, col, Ns[p]).contiguous().dataSync(), part.dataSync(), `${backend} part ${p}: not bit-identical to F.linear`);
            col += Ns[p];
          }
        }
        // an input that is a non-contiguous view
        const xt = Tensor.fromArray(xd, [T, B, inF]).transpose(0, 1);
        const yt = noGrad(() => linearCat(xt, ws, bs));
        const wantT = oracle(xt.contiguous().dataSync() as Float32Array, rows, inF, wds, Ns, bds);
        assert.ok(maxDiff(yt.dataSync(), wantT) < 1e-4, `${backend}: transposed input`);
      }
    });
  });

  test(`linearCat (${backend}): with gradients it is linear + cat, with linear's gradients`, () => {
    onBackend(backend, () => {
      const [B, T, inF, Ns] = [2, 9, 24, [8, 5, 8]];
      const x = Tensor.fromArray(arr(B * T * inF), [B, T, inF]);
      const ws = Ns.map((N) => Tensor.fromArray(arr(N * inF), [N, inF])), bs = Ns.map((N) => Tensor.fromArray(arr(N), [N]));
      const g = Tensor.fromArray(arr(B * T * 21), [B, T, 21]);
      const leaf = () => ({ x: x.clone().requiresGrad_(), ws: ws.map((w) => w.clone().requiresGrad_()), bs: bs.map((b) => b.clone().requiresGrad_()) });
      const a = leaf(), c = leaf();
      linearCat(a.x, a.ws, a.bs).mul(g).sum().backward();
      const parts = c.ws.map((w, i) => F.linear(c.x, w, c.bs[i]));
      parts[0].mul(g.narrow(2, 0, 8)).sum().add(parts[1].mul(g.narrow(2, 8, 5)).sum()).add(parts[2].mul(g.narrow(2, 13, 8)).sum()).backward();
      assert.ok(maxDiff(a.x.grad!.dataSync(), c.x.grad!.dataSync()) < 1e-5, "grad of x");
      for (let i = 0; i < 3; i++) {
        assert.ok(maxDiff(a.ws[i].grad!.dataSync(), c.ws[i].grad!.dataSync()) < 1e-5, `grad of W${i}`);
        assert.ok(maxDiff(a.bs[i].grad!.dataSync(), c.bs[i].grad!.dataSync()) < 1e-5, `grad of b${i}`);
      }
    });
  });
}

test("linearCat: a weight or bias of the wrong shape is an error naming the shapes", () => {
  const x = Tensor.fromArray(arr(2 * 3 * 4), [2, 3, 4]);
  const w = Tensor.fromArray(arr(5 * 4), [5, 4]), bad = Tensor.fromArray(arr(5 * 3), [5, 3]);
  assert.throws(() => noGrad(() => linearCat(x, [w, bad], [null, null])), /weight 1 \[5, 3\] does not match input \[2, 3, 4\]/);
  assert.throws(() => noGrad(() => linearCat(x, [w], [Tensor.fromArray(arr(4), [4])])), /bias 0 \[4\] does not match weight \[5, 4\]/);
  assert.throws(() => noGrad(() => linearCat(x, [w], [])), /one bias \(or null\) per weight/);
});

const native = loadNativeKernels().kernels;
const skipNative = native?.linearGroup && availableBackends().includes("native") ? false : "native linearGroup not available";

test("linearCat (native): a weight written in place between calls shows in the next result (no stale packing)", { skip: skipNative }, () => {
  onBackend("native", () => {
    const [T, inF, N] = [64, 192, 128];
    const x = Tensor.fromArray(arr(T * inF), [1, T, inF]);
    const ws = [0, 1, 2].map(() => Tensor.fromArray(arr(N * inF), [N, inF])), bs = [0, 1, 2].map(() => Tensor.fromArray(arr(N), [N]));
    for (let i = 0; i < 3; i++) noGrad(() => linearCat(x, ws, bs));   // packings cached
    noGrad(() => { ws[1].addInPlace(Tensor.fromArray(arr(N * inF), [N, inF]), 0.5); });
    const y = noGrad(() => linearCat(x, ws, bs));
    const want = oracle(x.dataSync() as Float32Array, T, inF, ws.map((w) => w.dataSync() as Float32Array), [N, N, N], bs.map((b) => b.dataSync() as Float32Array));
    assert.ok(maxDiff(y.dataSync(), want) < 1e-4, `after an in-place update: ${maxDiff(y.dataSync(), want)}`);
  });
});

test("native linearGroup: overlapping column ranges, a short output or a bad part are RangeErrors/TypeErrors naming them", { skip: skipNative }, () => {
  const x = arr(4 * 8), w = arr(3 * 8), C = new Float32Array(4 * 6);
  assert.throws(() => native!.linearGroup!(x, 0, 4, 8, 8, C, 0, 6, "none", [[w, 0, 3, null, 0, 0, null, 0], [w, 0, 3, null, 0, 2, null, 0]]),
    /parts\[1\] columns 2…4 overlap parts\[0\]'s/);
  assert.throws(() => native!.linearGroup!(x, 0, 4, 8, 8, C, 0, 6, "none", [[w, 0, 3, null, 0, 4, null, 0]]), /parts\[0\] writes columns 4…6 but ldc is 6/);
  assert.throws(() => native!.linearGroup!(x, 0, 4, 8, 8, new Float32Array(10), 0, 6, "none", [[w, 0, 3, null, 0, 0, null, 0]]), /'C' is too short/);
  assert.throws(() => native!.linearGroup!(x, 0, 4, 8, 8, C, 0, 6, "none", [[w, 0, 4, null, 0, 0, null, 0]]), /parts\[0\]\.W is too short/);
  assert.throws(() => native!.linearGroup!(x, 0, 4, 8, 8, C, 0, 6, "none", [[x.subarray(0, 24) as unknown as Float32Array, 0, 3, new Float32Array(2), 0, 0, null, 0]]),
    /parts\[0\]\.bias is too short/);
  assert.throws(() => native!.linearGroup!(x, 0, 4, 8, 8, C, 0, 6, "none", [[new Int32Array(24) as unknown as Float32Array, 0, 3, null, 0, 0, null, 0]]),
    /parts\[0\]: argument 'W' must be a Float32Array/);
  assert.throws(() => native!.linearGroup!(x, 0, 4, 8, 8, C, 0, 6, "none", []), /1 to 8 parts, got 0/);
});
