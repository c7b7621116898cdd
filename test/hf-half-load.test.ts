// float16 / bfloat16 checkpoints load straight into the float32 parameters: the half-width bytes are read into the
// upper half of each parameter's own storage and widened in place (readers with readInto: Node's folder reader), or
// read and widened in chunks (Blob / in-memory readers: the browser's picked files). The fixtures under
// test/fixtures/hf-half were cast by PyTorch (make_half.py); reference-f32.safetensors holds PyTorch's widening of the
// same values, which every loaded parameter must equal bit for bit (both widenings are exact).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import { blobReader, fromPretrained, memoryReader, widenInPlace } from "../src/hf/pretrained.js";
import { parseSafetensors, toFloat32 } from "../src/io/safetensors.js";
import { bfloat16ArrayToFloat32, float16ArrayToFloat32 } from "../src/io/dtype-convert.js";
import type { HFModel } from "../src/hf/types.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const half = join(root, "test", "fixtures", "hf-half");
const CASES = ["bert-seqcls-bf16", "bert-seqcls-f16", "gpt2-bf16", "gpt2-f16"];

/** Every tensor of reference-f32.safetensors equals the model's parameter of that name, bit for bit. */
function assertExact(model: HFModel, dir: string, how: string): void {
  const ref = parseSafetensors(readFileSync(join(dir, "reference-f32.safetensors")));
  const sd = model.stateDict();
  let n = 0;
  for (const [name, t] of ref.tensors) {
    const p = sd[name];
    assert.ok(p, `${how}: the model has ${name}`);
    const want = new Uint32Array(toFloat32(t, name).buffer), got = new Uint32Array(Float32Array.from(p!.dataSync() as Float32Array).buffer);
    assert.equal(got.length, want.length, `${how} ${name}: size`);
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) assert.fail(`${how} ${name}[${i}]: bits ${got[i].toString(16)} but PyTorch's ${want[i].toString(16)}`);
    n++;
  }
  assert.ok(n >= 10, `${how}: ${n} tensors compared`);
}

test("the fixtures are half-width files (BF16 / F16 in the header), not float32", () => {
  for (const c of CASES) {
    const f = parseSafetensors(readFileSync(join(half, c, "model.safetensors")));
    const dtypes = new Set([...f.tensors.values()].map((t) => t.dtype));
    assert.deepEqual([...dtypes], [c.endsWith("bf16") ? "BF16" : "F16"], c);
  }
});

test("bf16 and f16 folders load (Node's reader: read into the parameter, widened in place) to exactly PyTorch's float32 values", async () => {
  for (const c of CASES) assertExact((await fromPretrainedDir(join(half, c), { tokenizer: false })).model, join(half, c), `${c} folderReader`);
});

test("the chunked path (Blob and in-memory readers, tiny odd chunks, unaligned ranges) gives the same bits", async () => {
  for (const c of CASES) {
    const dir = join(half, c);
    const files = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))] as const));
    const blobs = new Map([...files].map(([n, b]) => [n, new Blob([b])] as const));
    for (const chunkBytes of [102, 1 << 20]) {
      assertExact((await fromPretrained(blobReader(blobs), { tokenizer: false, chunkBytes })).model, dir, `${c} blobReader chunk ${chunkBytes}`);
    }
    // in memory: ranges are subarrays of the file, at whatever offset the header leaves
    const mem = new Map([...files].map(([n, b]) => [n, new Uint8Array(b.buffer, b.byteOffset, b.byteLength)] as const));
    assertExact((await fromPretrained(memoryReader(mem), { tokenizer: false, chunkBytes: 34 })).model, dir, `${c} memoryReader`);
  }
});

test("widening in place (half-width bits in the upper half of the float32 buffer) equals widening into a separate buffer, all 65536 patterns", () => {
  const n = 65536, all = Uint16Array.from({ length: n }, (_, i) => i);
  for (const dt of ["BF16", "F16"] as const) {
    const want = new Uint32Array((dt === "BF16" ? bfloat16ArrayToFloat32 : float16ArrayToFloat32)(all).buffer);
    const buf = new ArrayBuffer(4 * n);
    new Uint16Array(buf, 2 * n, n).set(all);
    widenInPlace(dt, new Uint16Array(buf, 2 * n, n), new Float32Array(buf, 0, n));
    assert.deepEqual(new Uint32Array(buf), want, dt);
  }
  // and bfloat16 is the float32's top half exactly
  const x = new Float32Array(new Uint32Array([0x3f810000, 0xc2f60000, 0x00010000, 0x7f800000]).buffer);
  const bits = new Uint16Array([0x3f81, 0xc2f6, 0x0001, 0x7f80]), out = new Float32Array(4);
  widenInPlace("BF16", bits, out);
  assert.deepEqual(Array.from(out), Array.from(x));
});
