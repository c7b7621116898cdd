// The Wasm backend's packed-weight cache (src/backend/wasm/pack-cache.ts) and the persistent blocks of its arena:
// a keyed weight is cached on its second unchanged use, served bit-identically to the uncached GEMM, re-packed when
// its version changes, never served for another array, bounded by its limit (LRU eviction, 0 = off); the arena's
// persistent region reuses and returns freed blocks. Also the cached path split over a worker thread.
import { test } from "node:test";
import assert from "node:assert/strict";
import { instantiateSync, wasmSimdSupported, wasmSharedMemorySupported } from "../src/backend/wasm/module.js";
import { makeWasmKernels } from "../src/backend/wasm/wasm-kernels.js";
import { WasmPackCache } from "../src/backend/wasm/pack-cache.js";
import { ARENA_BASE } from "../src/backend/wasm/arena.js";
import { refKernels as R } from "../src/backend/ref/index.js";
import type { Kernels, OperandKey } from "../src/backend/kernels.js";
import { startOneWorkerPool } from "./helpers/wasm-pool.js";

const skip = wasmSimdSupported() ? false : "this engine has no Wasm SIMD128";

let seed = 12345;
function randn(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) { seed = (Math.imul(seed, 1103515245) + 12345) | 0; a[i] = ((seed >>> 8) / 16777216) * 2 - 1; }
  return a;
}

/** y = x·Wᵀ + b through gemmBiasAct (the nn.Linear call), optionally naming W by key. */
function linear(k: Kernels, x: Float32Array, W: Float32Array, b: Float32Array, M: number, N: number, K: number, key: OperandKey | null,
  wOff = 0): Float32Array {
  const y = new Float32Array(M * N).fill(NaN);
  k.gemmBiasAct!(false, true, M, N, K, 1, x, 0, K, W, wOff, K, 0, y, 0, N, 1, 0, 0, 0, b, 0, "gelu", key);
  return y;
}

function reference(x: Float32Array, W: Float32Array, b: Float32Array, M: number, N: number, K: number, wOff = 0): Float32Array {
  const z = new Float32Array(M * N);
  R.gemm(false, true, M, N, K, 1, x, 0, K, W, wOff, K, 0, z, 0, N, 1, 0, 0, 0);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) z[i * N + j] += b[j];
  const y = new Float32Array(M * N);
  R.unary("gelu", { data: z, offset: 0, strides: [1] }, [M * N], y);
  return y;
}

function close(what: string, got: Float32Array, want: Float32Array, tol = 2e-5): void {
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])))) assert.fail(`${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

test("arena: persistent blocks below the scratch arena are reused, coalesced and given back", { skip }, () => {
  const inst = instantiateSync();
  const a = inst.arena;
  a.reset();
  const p1 = a.allocPersistent(1000), p2 = a.allocPersistent(64), p3 = a.allocPersistent(5000);
  assert.equal(p1, ARENA_BASE);
  assert.ok(p2 >= p1 + 1000 && p3 >= p2 + 64 && p1 % 64 === 0 && p2 % 64 === 0 && p3 % 64 === 0);
  const s = a.alloc(16);
  assert.ok(s >= p3 + 5000, "scratch allocations start above the persistent blocks");
  assert.throws(() => a.allocPersistent(8), /scratch allocations are live/);
  a.reset();
  a.freePersistent(p2, 64);
  assert.equal(a.allocPersistent(40), p2, "a freed block is reused (first fit)");
  a.freePersistent(p1, 1000); a.freePersistent(p2, 40);
  assert.equal(a.allocPersistent(1064), p1, "neighbouring free blocks coalesce");
  a.freePersistent(p1, 1064); a.freePersistent(p3, 5000);
  assert.equal(a.persistentBytes, 0, "freeing every block gives the region back to the scratch arena");
  assert.equal(a.alloc(16), ARENA_BASE);
});

test("pack cache: admitted on the second unchanged use, bit-identical to the uncached GEMM, re-packed on a new version", { skip }, () => {
  const inst = instantiateSync();
  const cache = new WasmPackCache(inst.arena, 64 << 20);
  const k = makeWasmKernels(inst, undefined, cache) as Kernels;
  // N > 2048 and K > 256: several column and depth blocks of the packed layout (with either micro-kernel's column
  // blocks); odd sizes for the edge panels
  const M = 37, N = 2069, K = 301;
  const x = randn(M * K), W = randn(N * K + 5), b = randn(N);
  const plain = linear(k, x, W, b, M, N, K, null, 5);
  close("uncached vs reference", plain, reference(x, W, b, M, N, K, 5));
  const key = { id: 1, version: 0 };
  assert.deepEqual(linear(k, x, W, b, M, N, K, key, 5), plain);
  assert.equal(cache.info().entries, 0, "a first sighting is not cached");
  assert.deepEqual(linear(k, x, W, b, M, N, K, key, 5), plain);
  assert.equal(cache.info().admitted, 1, "the second unchanged use is");
  for (let i = 0; i < 2; i++) assert.deepEqual(linear(k, x, W, b, M, N, K, key, 5), plain, "served from the cache: same bits");
  assert.equal(cache.info().hits, 2);
  // the weight is written (the storage's version changes): the next call packs the new values
  W[5 + 7 * K + 3] += 1; W[5 + (N - 1) * K] -= 2;
  key.version = 1;
  const after = linear(k, x, W, b, M, N, K, key, 5);
  close("after a write", after, reference(x, W, b, M, N, K, 5));
  assert.deepEqual(after, linear(k, x, W, b, M, N, K, null, 5));
  // another array under the same key (never served: the cache checks the array it packed)
  const W2 = randn(N * K + 5);
  close("another array, same key", linear(k, x, W2, b, M, N, K, key, 5), reference(x, W2, b, M, N, K, 5));
  // another row count reuses the packing
  const x3 = randn(3 * K);
  close("M = 3", linear(k, x3, W2, b, 3, N, K, key, 5), reference(x3, W2, b, 3, N, K, 5));
});

test("pack cache: bounded by its limit (LRU eviction), 0 disables it and frees the blocks", { skip }, () => {
  const inst = instantiateSync();
  const M = 8, N = 48, K = 64, bytes = 4 * N * K;   // N a multiple of both micro-kernels' panel widths (8, 12)
  const cache = new WasmPackCache(inst.arena, 2 * bytes);
  const k = makeWasmKernels(inst, undefined, cache) as Kernels;
  const x = randn(M * K), b = randn(N);
  const Ws = [randn(N * K), randn(N * K), randn(N * K)], keys = [1, 2, 3].map((id) => ({ id, version: 0 }));
  // two weights fill the cache
  for (let r = 0; r < 2; r++) for (let i = 0; i < 2; i++) linear(k, x, Ws[i], b, M, N, K, keys[i]);
  assert.equal(cache.info().entries, 2);
  assert.equal(cache.info().bytes, 2 * bytes);
  // a third used many times: the least recently used one makes room once it is outside the protection window
  for (let r = 0; r < 8; r++) close(`third weight, call ${r}`, linear(k, x, Ws[2], b, M, N, K, keys[2]), reference(x, Ws[2], b, M, N, K));
  assert.equal(cache.info().entries, 2);
  assert.ok(cache.info().evicted >= 1);
  assert.ok(cache.info().bytes <= 2 * bytes);
  for (let i = 0; i < 3; i++) close(`weight ${i} after eviction`, linear(k, x, Ws[i], b, M, N, K, keys[i]), reference(x, Ws[i], b, M, N, K));
  cache.setLimit(0);
  assert.equal(cache.info().entries, 0);
  assert.equal(inst.arena.persistentBytes, 0, "every block returned");
  for (let r = 0; r < 3; r++) close("disabled", linear(k, x, Ws[0], b, M, N, K, keys[0]), reference(x, Ws[0], b, M, N, K));
  assert.equal(cache.info().entries, 0);
  assert.throws(() => cache.setLimit(-1), /non-negative/);
});

test("pack cache: the cached product split over a worker thread gives the single-thread bits", { skip: skip || (wasmSharedMemorySupported() ? false : "no shared Wasm memory") }, async () => {
  const { inst, pool, executorFor } = await startOneWorkerPool();
  try {
    const cache = new WasmPackCache(inst.arena);
    const k2 = makeWasmKernels(inst, executorFor, cache) as Kernels;
    const single = makeWasmKernels(instantiateSync()) as Kernels;
    const M = 130, N = 2100, K = 300;
    const x = randn(M * K), W = randn(N * K), b = randn(N), key = { id: 7, version: 3 };
    const want = linear(single, x, W, b, M, N, K, null);
    for (let r = 0; r < 4; r++) assert.deepEqual(linear(k2, x, W, b, M, N, K, key), want, `call ${r}`);
    assert.equal(cache.info().hits, 2);
  } finally {
    pool.terminate();
  }
});

test("nn.Linear on the wasm backend: the weight is served from the cache until it is written, then re-packed", { skip }, async () => {
  const af = await import("../src/index.js");
  const prev = af.getBackend();
  af.setBackend("wasm");
  try {
    af.manualSeed(11);
    const lin = new af.nn.Linear(96, 300), x = af.randn([5, 96]);
    const ref = () => { af.setBackend("reference"); const y = af.noGrad(() => lin.forward(x)).dataSync() as Float32Array; af.setBackend("wasm"); return y; };
    const run = () => af.noGrad(() => lin.forward(x)).dataSync() as Float32Array;
    const before = af.wasmPackCacheInfo();
    for (let i = 0; i < 3; i++) close(`forward ${i}`, run(), ref());
    const mid = af.wasmPackCacheInfo();
    assert.equal(mid.admitted - before.admitted, 1, "the weight was admitted");
    assert.ok(mid.hits > before.hits, "and served from the cache");
    // an in-place write through the storage (as an optimizer step does) changes its version: no stale packing
    const w = lin.weight.storage.data as Float32Array;
    for (let i = 0; i < w.length; i += 7) w[i] *= -2;
    close("after an in-place update", run(), ref());
    af.setWasmPackCacheLimit(0);
    assert.equal(af.wasmPackCacheInfo().entries, 0);
    close("cache off", run(), ref());
  } finally {
    af.setWasmPackCacheLimit(256 << 20);
    af.setBackend(prev);
  }
});
