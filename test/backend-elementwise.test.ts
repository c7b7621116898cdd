// The row-kernel elementwise paths (dimension coalescing, float32 specialisations) against the per-element definition.
import { test } from "node:test";
import assert from "node:assert/strict";
import { binary, binaryFns, coalesce, copy, forEachStrided, unary, unaryFns } from "../src/backend/ref/elementwise.js";
import { erfc } from "../src/backend/ref/math.js";
import { Generator } from "../src/random.js";
import type { BinaryOp, UnaryOp } from "../src/backend/kernels.js";

const g = new Generator(7);
function randomView(shape: number[]): { data: Float32Array; offset: number; strides: number[] } {
  // a random permutation of a padded buffer, some dims broadcast (stride 0)
  const nd = shape.length, order = [...shape.keys()].sort(() => g.random() - 0.5);
  const strides = new Array<number>(nd).fill(0);
  let s = 1;
  for (const d of order) { if (g.random() < 0.25) { strides[d] = 0; continue; } strides[d] = s; s *= shape[d] + (g.random() < 0.3 ? 1 : 0); }
  const offset = g.int(3), data = new Float32Array(offset + s * 2 + 8);
  for (let i = 0; i < data.length; i++) data[i] = g.normal() * 2;
  return { data, offset, strides };
}

test("coalesce merges contiguous dims and drops size-1 dims", () => {
  assert.deepEqual(coalesce([2, 3, 4], [[12, 4, 1], [0, 0, 1]]), { shape: [6, 4], strides: [[4, 1], [0, 1]] });
  assert.deepEqual(coalesce([2, 1, 4], [[4, 99, 1]]), { shape: [8], strides: [[1]] });
  assert.deepEqual(coalesce([3, 2], [[1, 3]]), { shape: [3, 2], strides: [[1, 3]] });
  assert.deepEqual(coalesce([], [[]]), { shape: [1], strides: [[0]] });
});

test("binary/unary/copy row kernels match the per-element definitions on strided, broadcast views", () => {
  const bops: BinaryOp[] = ["add", "sub", "mul", "div", "maximum", "pow", "lt"];
  const uops: UnaryOp[] = ["neg", "exp", "relu", "square", "gelu", "geluGrad", "tanh", "abs"];
  for (let trial = 0; trial < 40; trial++) {
    const nd = 1 + g.int(4), shape = Array.from({ length: nd }, () => 1 + g.int(5));
    const n = shape.reduce((p, d) => p * d, 1);
    const a = randomView(shape), b = randomView(shape);
    for (const op of bops) {
      const out = new Float32Array(n), want = new Float32Array(n), f = binaryFns[op];
      binary(op, a, b, shape, out);
      forEachStrided(shape, [a, b], (o, ia, ib) => { want[o] = f(a.data[ia], b.data[ib]); });
      assert.deepEqual(out, want, `${op} on ${JSON.stringify(shape)}`);
    }
    for (const op of uops) {
      const out = new Float32Array(n), want = new Float32Array(n), f = unaryFns[op];
      unary(op, a, shape, out);
      forEachStrided(shape, [a], (o, ia) => { want[o] = f(a.data[ia]); });
      assert.deepEqual(out, want, `${op} on ${JSON.stringify(shape)}`);
    }
    const out = new Float32Array(n), want = new Float32Array(n);
    copy(a, shape, out);
    forEachStrided(shape, [a], (o, ia) => { want[o] = a.data[ia]; });
    assert.deepEqual(out, want);
    const iv = { data: Int32Array.from(a.data, (v) => Math.round(v * 10)), offset: a.offset, strides: a.strides };
    const io = new Int32Array(n), iw = new Int32Array(n);
    binary("add", iv, iv, shape, io);
    forEachStrided(shape, [iv], (o, ia) => { iw[o] = iv.data[ia] * 2; });
    assert.deepEqual(io, iw, "int32 add");
  }
});

test("fast erfc keeps float32 relative accuracy, tails included", () => {
  // reference values of erfc (from the series/continued-fraction erf, and known constants)
  const cases: [number, number][] = [[0, 1], [0.5, 0.4795001221869535], [1, 0.15729920705028513], [2, 0.004677734981047266],
    [3, 2.209049699858544e-5], [5, 1.5374597944280349e-12], [-1, 1.8427007929497148], [-3, 1.999977909503001]];
  for (const [x, want] of cases) assert.ok(Math.abs(erfc(x) - want) / want < 2e-7, `erfc(${x}) = ${erfc(x)}, want ${want}`);
});
