// The buffer pool (src/storage.ts) keeps disposed buffers for reuse by exact length, up to `maxBytes`. When full it
// must make room by dropping the least recently used lengths — not refuse new ones — or a loop whose shapes changed
// (e.g. a new sequence length) would keep stale buffers forever and never pool its current ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bufferPool, Tensor, tidy, zeros } from "../src/node.js";

function withPool(maxBytes: number, fn: () => void): void {
  const prev = bufferPool.maxBytes;
  bufferPool.clear();
  bufferPool.maxBytes = maxBytes;
  try { fn(); } finally { bufferPool.maxBytes = prev; bufferPool.clear(); }
}

test("buffer pool: past maxBytes the least recently used lengths are dropped, and the newest buffer is kept", () => {
  withPool(64 * 1024, () => {
    const lengths = [2048, 2049, 2050, 2051, 2052, 2053, 2054];    // ~8 KB each: 56 KB in all
    for (const n of lengths) bufferPool.give(new Float32Array(n));
    assert.equal(bufferPool.bytes, lengths.reduce((s, n) => s + 4 * n, 0));
    // use the oldest length again: it becomes the most recently used
    const reused = bufferPool.take("float32", 2048);
    bufferPool.give(reused);
    const fresh = new Float32Array(4096);                              // 16 KB: needs room
    bufferPool.give(fresh);
    assert.ok(bufferPool.bytes <= 64 * 1024, `pool holds ${bufferPool.bytes} bytes, more than maxBytes`);
    assert.equal(bufferPool.take("float32", 4096), fresh, "the newest buffer is pooled");
    assert.equal(bufferPool.take("float32", 2048), reused, "a recently used length survives");
    const hits = bufferPool.hits;
    bufferPool.take("float32", 2049);
    assert.equal(bufferPool.hits, hits, "the least recently used length was dropped");
  });
});

test("buffer pool: a tidy() loop whose shapes keep changing stays within maxBytes", () => {
  withPool(256 * 1024, () => {
    for (let t = 1; t <= 64; t++) tidy(() => { zeros([t, 1024]).add(1).mul(2); });
    assert.ok(bufferPool.bytes <= 256 * 1024, `pool holds ${bufferPool.bytes} bytes`);
    // the latest shapes are the ones kept
    const before = bufferPool.hits;
    tidy(() => { Tensor.empty([64, 1024]); });
    assert.equal(bufferPool.hits, before + 1, "the last shape's buffer was reused");
  });
});
