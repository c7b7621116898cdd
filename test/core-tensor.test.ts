import { test } from "node:test";
import assert from "node:assert/strict";
import { tensor, randn, zeros, arange, cat, stack, where, tidy, noGrad, Tensor, F, manualSeed } from "../src/index.js";

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `index ${i}: ${a[i]} vs ${b[i]}`);
};

/** Central finite differences of a scalar function of x, compared with autograd. */
function gradCheck(f: (x: Tensor) => Tensor, shape: number[], seed = 1, tol = 2e-2): void {
  manualSeed(seed);
  const x = randn(shape).requiresGrad_();
  f(x).backward();
  const an = x.grad!.dataSync();
  const d = x.storage.data;
  for (let i = 0; i < d.length; i++) {
    const o = d[i], h = 1e-2;
    d[i] = o + h; const p = noGrad(() => f(x).item());
    d[i] = o - h; const m = noGrad(() => f(x).item());
    d[i] = o;
    const fd = (p - m) / (2 * h);
    assert.ok(Math.abs(fd - an[i]) <= tol * (1 + Math.abs(fd)), `grad[${i}]: autograd ${an[i]} vs finite difference ${fd}`);
  }
}

test("broadcasting arithmetic and reductions", () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]), b = tensor([10, 20, 30]);
  assert.deepEqual(a.add(b).toArray(), [[11, 22, 33], [14, 25, 36]]);
  assert.deepEqual(a.sum(0).toArray(), [5, 7, 9]);
  assert.deepEqual(a.sum(1, true).toArray(), [[6], [15]]);
  assert.deepEqual(a.max(1).toArray(), [3, 6]);
  assert.deepEqual(a.argmax(1).toArray(), [2, 2]);
  close(a.var(1).dataSync(), [1, 1]);
  close(a.var(1, { unbiased: false }).dataSync(), [2 / 3, 2 / 3]);
  close(a.mean().dataSync(), [3.5]);
});

test("views share storage; permute/transpose/slice/expand read the right elements", () => {
  const x = arange(24, undefined, 1, { dtype: "float32" }).reshape(2, 3, 4);
  const p = x.permute(2, 0, 1);
  assert.deepEqual(p.shape, [4, 2, 3]);
  assert.equal(p.storage, x.storage);
  assert.deepEqual(p.contiguous().dataSync().slice(0, 6), Float32Array.from([0, 4, 8, 12, 16, 20]));
  assert.deepEqual(x.slice(2, 1, 4, 2).toArray(), [[[1, 3], [5, 7], [9, 11]], [[13, 15], [17, 19], [21, 23]]]);
  assert.deepEqual(tensor([[1], [2]]).expand(2, 3).toArray(), [[1, 1, 1], [2, 2, 2]]);
  assert.deepEqual(x.select(1, -1).toArray(), [[8, 9, 10, 11], [20, 21, 22, 23]]);
  assert.deepEqual(cat([tensor([[1, 2]]), tensor([[3, 4]])], 0).toArray(), [[1, 2], [3, 4]]);
  assert.deepEqual(stack([tensor([1, 2]), tensor([3, 4])], 1).toArray(), [[1, 3], [2, 4]]);
  assert.deepEqual(where(tensor([true, false]), tensor([1, 2]), tensor([3, 4])).toArray(), [1, 4]);
});

test("matmul: 1-D promotion, batch broadcasting and transposed views agree", () => {
  manualSeed(0);
  const a = randn([2, 3, 4, 5]), b = randn([5, 6]);
  const c = a.matmul(b);
  assert.deepEqual(c.shape, [2, 3, 4, 6]);
  const c2 = a.matmul(b.t().contiguous().t());
  close(c.dataSync(), c2.dataSync());
  assert.deepEqual(tensor([1, 2]).matmul(tensor([3, 4])).item(), 11);
});

test("gradients match finite differences across ops", () => {
  gradCheck((x) => x.mul(x).sin().sum(), [3, 4]);
  gradCheck((x) => x.softmax(-1).mul(arange(4, undefined, 1, { dtype: "float32" })).sum(), [2, 4]);
  gradCheck((x) => x.logSoftmax(0).select(0, 1).sum(), [3, 2]);
  gradCheck((x) => x.matmul(x.t()).tanh().sum(), [3, 2]);
  gradCheck((x) => x.permute(1, 0).reshape(-1).slice(0, 1, 5).exp().sum(), [2, 3]);
  gradCheck((x) => F.layerNorm(x, [4], null, null).mul(tensor([1, 2, 3, 4])).sum(), [2, 4]);
  gradCheck((x) => F.gelu(x).add(F.gelu(x, "tanh")).sum(), [5]);
  gradCheck((x) => x.max(1).sum().add(x.var().mul(2)), [3, 3]);
  gradCheck((x) => x.div(x.abs().add(1)).pow(2).sum(), [4]);
  gradCheck((x) => cat([x, x.mul(2)], 1).std().add(x.clamp(-0.3, 0.3).sum()), [2, 3]);
  gradCheck((x) => F.scaledDotProductAttention(x, x.mul(0.5), x, { causal: true }).sum(), [1, 2, 3, 4]);
});

test("shape errors name both shapes and the op", () => {
  assert.throws(() => tensor([1, 2, 3]).add(tensor([1, 2])), /add: shapes \[3\] and \[2\] cannot be broadcast/);
  assert.throws(() => zeros([2, 3]).matmul(zeros([4, 5])), /matmul: shapes \[2, 3\] and \[4, 5\] are incompatible/);
  assert.throws(() => zeros([2, 3]).reshape(4, 2), /reshape: shape \[4, 2\] is invalid for input of shape \[2, 3\]/);
  assert.throws(() => F.crossEntropy(zeros([2, 3]), tensor([0, 5], { dtype: "int32" })), /target 5 at position 1 is out of range for 3 classes/);
  assert.throws(() => F.crossEntropy(zeros([2, 3]), tensor([0, 1])), /target must be int32/);
  assert.throws(() => F.embedding(tensor([7], { dtype: "int32" }), zeros([3, 2])), /index 7 out of range/);
  assert.throws(() => zeros([2]).backward(), /does not require grad/);
});

test("tidy disposes intermediates but keeps results and what their graph needs", () => {
  const w = randn([3, 3]).requiresGrad_();
  let inner: Tensor | null = null;
  const out = tidy(() => {
    inner = w.mul(2);
    noGrad(() => w.add(1)); // a throwaway
    return inner.sum();
  });
  assert.equal(inner!.disposed, false, "saved for backward, so kept");
  out.backward();
  assert.equal(w.grad!.shape.length, 2);
  const t = tidy(() => { const a = randn([2]); a.add(1); return 5; });
  assert.equal(t, 5);
  const d = randn([2]); d.dispose();
  assert.throws(() => d.dataSync(), /tensor was disposed/);
});

test("printing looks like PyTorch", () => {
  assert.equal(String(tensor([[1.5, -2], [0, 3]])), "tensor([[ 1.5000, -2.0000],\n        [ 0.0000,  3.0000]])");
  assert.equal(String(tensor([1, 2], { dtype: "int32" })), "tensor([1, 2], dtype=int32)");
});

test("reductions of a contiguous view with a storage offset read the view, not the storage start", async () => {
  const { tensor } = await import("../src/creation.js");
  const x = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]);
  const v = x.narrow(0, 1, 2); // rows [4,5,6], [7,8,9]: contiguous, offset 3
  assert.deepEqual(Array.from(v.sum(0).dataSync()), [11, 13, 15]);
  assert.deepEqual(Array.from(v.max(1).dataSync()), [6, 9]);
  assert.deepEqual(Array.from(v.argmax(0).dataSync()), [1, 1, 1]);
});
