// The native packed-weight cache (native/src/pack-cache.cc): linear layers keep their weight packed between calls
// and must never compute with a stale packing. Every way of changing a weight in place (optimizer step,
// loadStateDict, init functions, in-place ops under noGrad, writes straight into its storage) must show in the next
// result; a freed weight's memory reused by another tensor must not be served the old packing; the cache stays
// within its byte cap. Results are compared with the reference backend computed from the same values.
import { test } from "node:test";
import { totalmem } from "node:os";
import assert from "node:assert/strict";
import { availableBackends, getBackend, manualSeed, nn, noGrad, optim, randn, setBackend, Tensor, F } from "../src/node.js";
import { loadNativeKernels } from "../src/node/native-addon.js";

const native = loadNativeKernels().kernels;
const skip = native && availableBackends().includes("native") ? false : "native backend not available";

function onBackend<T>(name: string, fn: () => T): T {
  const prev = getBackend();
  setBackend(name);
  try { return fn(); } finally { setBackend(prev); }
}

/** y = x·Wᵀ + b on the reference backend, from copies of the current values (the oracle). */
function refLinear(x: Tensor, w: Tensor, b: Tensor | null): Float32Array {
  return onBackend("reference", () => noGrad(() => {
    const wc = Tensor.fromArray(w.toFloat32Array(), w.shape), bc = b ? Tensor.fromArray(b.toFloat32Array(), b.shape) : null;
    return F.linear(x, wc, bc).toFloat32Array();
  }));
}

function nativeLinear(x: Tensor, w: Tensor, b: Tensor | null): Float32Array {
  return onBackend("native", () => noGrad(() => F.linear(x, w, b).toFloat32Array()));
}

function assertClose(what: string, got: Float32Array, want: Float32Array, rtol = 2e-5): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 1e-6;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= rtol * scale)) assert.fail(`${what}[${i}]: native ${got[i]} vs reference ${want[i]}`);
  }
}

/** Calls linear until the weight's packing is cached and served, checking each result; returns the cache counters. */
function warm(x: Tensor, w: Tensor, b: Tensor | null, what: string): void {
  const hits0 = native!.packCacheInfo().hits;
  const want = refLinear(x, w, b);
  for (let i = 0; i < 3; i++) assertClose(`${what} (call ${i})`, nativeLinear(x, w, b), want);
  assert.ok(native!.packCacheInfo().hits > hits0, `${what}: the third call should be served from the cache`);
}

test("pack cache: repeated linear calls are served from the cache and give bit-identical results", { skip }, () => {
  native!.packCacheClear();
  manualSeed(3);
  const lin = new nn.Linear(80, 96);
  const x = randn([2, 20, 80]);
  const first = nativeLinear(x, lin.weight, lin.bias);   // not cached yet (first sighting)
  const before = native!.packCacheInfo();
  const second = nativeLinear(x, lin.weight, lin.bias);  // admitted: packed into the cache
  const third = nativeLinear(x, lin.weight, lin.bias);   // served from the cache
  const after = native!.packCacheInfo();
  assert.equal(after.admitted - before.admitted, 1);
  assert.ok(after.hits - before.hits >= 1);
  assert.deepEqual(second, first);
  assert.deepEqual(third, first);
  assertClose("vs reference", third, refLinear(x, lin.weight, lin.bias));
});

test("pack cache: every in-place change of a weight shows in the next result", { skip }, () => {
  manualSeed(4);
  const lin = new nn.Linear(64, 72);
  const x = randn([3, 16, 64]);
  const changes: [string, () => void][] = [
    ["optimizer step (AdamW)", () => {
      const opt = new optim.AdamW(lin.parameters(), { lr: 0.05 });
      onBackend("native", () => { const y = lin.forward(x); y.mul(y).sum().backward(); });
      opt.step();
    }],
    ["optimizer step (SGD)", () => {
      const opt = new optim.SGD(lin.parameters(), { lr: 0.1 });
      lin.zeroGrad();
      onBackend("native", () => lin.forward(x).sum().backward());
      opt.step();
    }],
    ["loadStateDict", () => { lin.loadStateDict({ weight: randn([72, 64]), bias: randn([72]) }); }],
    ["init function", () => { nn.init.uniform_(lin.weight, -0.2, 0.2); }],
    ["in-place op under noGrad", () => { noGrad(() => lin.weight.addInPlace(randn([72, 64]), 0.5)); }],
    ["direct write of one element", () => { (lin.weight.storage.data as Float32Array)[5 * 64 + 7] += 3; }],
    ["direct write through a view", () => { (lin.weight.narrow(0, 10, 2).storage.data as Float32Array).fill(1, 10 * 64, 12 * 64); }],
    ["write through an array kept from earlier, then markModified()", () => {
      held[3] -= 2;
      lin.weight.storage.markModified();
    }],
  ];
  // taken before the linear calls that cache the packing: writing through it alone is not seen (hence markModified)
  const held = lin.weight.storage.data as Float32Array;
  for (const [what, change] of changes) {
    warm(x, lin.weight, lin.bias, `before ${what}`);
    change();
    assertClose(`after ${what}`, nativeLinear(x, lin.weight, lin.bias), refLinear(x, lin.weight, lin.bias));
  }
});

test("pack cache: row blocks of one weight (narrow views) are cached separately and stay correct", { skip }, () => {
  manualSeed(5);
  const mha = new nn.MultiheadAttention(48, 4, { batchFirst: true, kdim: 32, vdim: 32 });
  const self = new nn.MultiheadAttention(48, 4, { batchFirst: true });
  self.eval();
  const x = randn([2, 12, 48]);
  const ws = [0, 1, 2].map((i) => self.inProjWeight!.narrow(0, i * 48, 48));
  for (const [i, w] of ws.entries()) warm(x, w, null, `block ${i}`);
  noGrad(() => self.inProjWeight!.addInPlace(randn([144, 48]), 0.1));
  for (const [i, w] of ws.entries()) assertClose(`block ${i} after update`, nativeLinear(x, w, null), refLinear(x, w, null));
  // the module's own paths (one fused projection / three narrowed ones) agree with the reference after the change
  const kv = randn([2, 9, 32]);
  const run = (m: nn.MultiheadAttention, q: Tensor, k: Tensor) => noGrad(() => m.forward(q, k, k, { needWeights: false })[0].toFloat32Array());
  for (let i = 0; i < 3; i++) run(self, x, x);
  noGrad(() => self.inProjWeight!.addInPlace(randn([144, 48]), 0.1));
  const refSelf = onBackend("reference", () => run(self, x, x));
  assertClose("self-attention after update", onBackend("native", () => run(self, x, x)), refSelf, 5e-5);
  mha.eval();
  for (let i = 0; i < 3; i++) onBackend("native", () => run(mha, x, kv));
  assertClose("cross-attention", onBackend("native", () => run(mha, x, kv)), onBackend("reference", () => run(mha, x, kv)), 5e-5);
});

test("pack cache: a freed weight's memory reused by a new tensor is not served the old packing", { skip }, () => {
  manualSeed(6);
  const x = randn([4, 8, 96]);
  for (let round = 0; round < 3; round++) {
    const w = randn([160, 96]);
    warm(x, w, null, `round ${round}`);
    const buf = w.storage.dataForRead();
    w.dispose();                                   // the buffer goes back to the pool
    const w2 = randn([160, 96]);                   // and comes straight back, under a new storage
    assert.equal(w2.storage.dataForRead(), buf, "test premise: the pool hands the same buffer to the new tensor");
    assertClose(`round ${round}: new tensor in the old memory`, nativeLinear(x, w2, null), refLinear(x, w2, null));
    w2.dispose();
  }
});

test("pack cache: stays within its byte cap, keeps serving a cyclic working set larger than the cap, evicts entries no longer used, and a zero cap disables it", { skip }, () => {
  const n = native!;
  const limit0 = n.packCacheInfo().limit;
  try {
    n.packCacheClear();
    const cap = 600_000;
    n.setPackCacheLimit(cap);
    manualSeed(7);
    const x = randn([16, 128]);
    const weights = Array.from({ length: 12 }, () => randn([256, 128]));  // ≥ 128 KB packed each
    for (let rep = 0; rep < 3; rep++) {
      for (const w of weights) {
        assertClose("under a small cap", nativeLinear(x, w, null), refLinear(x, w, null));
        const info = n.packCacheInfo();
        assert.ok(info.bytes <= cap, `cache holds ${info.bytes} bytes > cap ${cap}`);
      }
    }
    // the 12 weights (more than the cap) read in a cycle, as a model's forward passes read them: the part that fits stays
    // and is served every pass (plain LRU would evict each packing just before its next use: no hits at all)
    const cyc = n.packCacheInfo();
    assert.ok(cyc.entries >= 2 && cyc.hits >= cyc.entries, `a cyclic working set larger than the cap still hits: ${JSON.stringify(cyc)}`);
    // a new working set: the old entries, no longer used, age out and are evicted to admit the new ones
    const fresh = Array.from({ length: 3 }, () => randn([256, 128]));
    for (let rep = 0; rep < 2 * cyc.entries + 6; rep++) {
      for (const w of fresh) assertClose("new working set", nativeLinear(x, w, null), refLinear(x, w, null));
      assert.ok(n.packCacheInfo().bytes <= cap);
    }
    const info = n.packCacheInfo();
    assert.ok(info.evicted >= 1 && info.hits > cyc.hits, `expected evictions of the old set and hits on the new: ${JSON.stringify(info)}`);
    const beforeHits = info.hits;
    for (const w of fresh) nativeLinear(x, w, null);
    assert.equal(n.packCacheInfo().hits, beforeHits + fresh.length, "the new working set is served from the cache");
    n.setPackCacheLimit(0);
    assert.equal(n.packCacheInfo().bytes, 0);
    const hits = n.packCacheInfo().hits;
    for (let i = 0; i < 3; i++) assertClose("disabled", nativeLinear(x, weights[0], null), refLinear(x, weights[0], null));
    assert.equal(n.packCacheInfo().hits, hits, "a disabled cache serves nothing");
    assert.equal(n.packCacheInfo().entries, 0);
  } finally {
    n.setPackCacheLimit(limit0);
  }
});

test("pack cache: gemmBiasAct with a key equals the plain kernel on odd shapes, and follows version changes", { skip }, () => {
  const n = native!;
  n.packCacheClear();
  const rnd = (len: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * 12.9898) * 0.5);
  for (const [M, N, K] of [[5, 17, 3], [37, 65, 129], [130, 200, 70], [300, 129, 33]]) {
    for (const transB of [true, false]) {
      const A = rnd(M * K), B = rnd(N * K + 7), bias = rnd(N);
      const ldb = transB ? K : N;
      const plain = new Float32Array(M * N), keyed = new Float32Array(M * N);
      n.gemmBiasAct(false, transB, M, N, K, 1, A, 0, K, B, 7, ldb, 0, plain, 0, N, 1, 0, 0, 0, bias, 0, "relu");
      const id = 1e9 + M * 1000 + N + (transB ? 0.5 : 0);
      for (let i = 0; i < 3; i++) {
        n.gemmBiasAct(false, transB, M, N, K, 1, A, 0, K, B, 7, ldb, 0, keyed, 0, N, 1, 0, 0, 0, bias, 0, "relu", id, 1);
        assert.deepEqual(keyed, plain, `${M}x${N}x${K} transB=${transB} call ${i}`);
      }
      B[7 + 3] += 1;  // written: the caller's version changes with it
      n.gemmBiasAct(false, transB, M, N, K, 1, A, 0, K, B, 7, ldb, 0, plain, 0, N, 1, 0, 0, 0, bias, 0, "relu");
      n.gemmBiasAct(false, transB, M, N, K, 1, A, 0, K, B, 7, ldb, 0, keyed, 0, N, 1, 0, 0, 0, bias, 0, "relu", id, 2);
      assert.deepEqual(keyed, plain, `${M}x${N}x${K} transB=${transB} after a version change`);
      n.packCacheDrop(id);
    }
  }
  assert.equal(n.packCacheInfo().entries, 0, "packCacheDrop removes a storage's packings");
});

test("pack cache: the default cap is 1/16 of physical memory within 256 MiB…2 GiB (ATTNFLOW_PACK_CACHE_MB unset)", { skip: skip || (process.env.ATTNFLOW_PACK_CACHE_MB !== undefined ? "ATTNFLOW_PACK_CACHE_MB is set" : false) }, () => {
  // (the earlier tests of this file restore the cap they found)
  const limit = native!.packCacheInfo().limit;
  const expected = Math.min(2048 * 2 ** 20, Math.max(256 * 2 ** 20, totalmem() / 16));
  assert.ok(Math.abs(limit - expected) <= 0.02 * expected, `default limit ${limit}, expected ≈ ${expected} (total memory ${totalmem()})`);
});
