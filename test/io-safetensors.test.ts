import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  fromBool, fromFloat32, fromInt32, parseSafetensors, SafetensorsError, serializeSafetensors,
  ST_ITEMSIZE, toBool, toFloat32, toInt32, type StTensor,
} from "../src/io/safetensors.js";
import { fromBfloat16Bits, fromFloat16Bits, toBfloat16Bits, toFloat16Bits } from "../src/io/dtype-convert.js";
import { readSafetensorsFile, writeFileAtomic, writeSafetensorsFile } from "../src/node/safetensors-file.js";

// Fixture lookup: repo root is normally the cwd; fall back to the location of dist/test/<this file>.
function fixture(name: string): string {
  const candidates = [join(process.cwd(), "test/fixtures/io", name), fileURLToPath(new URL(`../../test/fixtures/io/${name}`, import.meta.url))];
  const found = candidates.find((p) => existsSync(p));
  assert.ok(found, `fixture ${name} not found in ${candidates.join(" or ")}`);
  return found;
}

const enc = new TextEncoder();

/** A file from a raw header string and `dataLen` data bytes (0, 1, 2, ... mod 256). */
function rawFile(header: string, dataLen: number): Uint8Array {
  const h = enc.encode(header);
  const out = new Uint8Array(8 + h.length + dataLen);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  for (let i = 0; i < dataLen; i++) out[8 + h.length + i] = i & 255;
  return out;
}

function expectError(bytes: Uint8Array, ...patterns: RegExp[]): SafetensorsError {
  let err: unknown;
  try {
    parseSafetensors(bytes);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${String(err)}`);
  for (const p of patterns) assert.match(err.message, p);
  return err;
}

const T = (dtype: string, shape: number[], offsets: unknown[]): string =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

// ------------------------------------------------------------------ round trips

test("round trip of every dtype, scalars and zero-size tensors", () => {
  const f = new Float32Array([0, -0, 1.5, -3.25, 1e-3, 65504, Infinity, -Infinity, NaN, 3.4028234663852886e38]);
  const ints = new Int32Array([0, 1, -1, 2147483647, -2147483648, 12345]);
  const tensors: Record<string, StTensor> = {
    f32: fromFloat32(f, [2, 5], "F32"),
    f16: fromFloat32(new Float32Array([0, -0, 1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, NaN]), [10], "F16"),
    bf16: fromFloat32(new Float32Array([1, -1.5, 2 ** 100, -(2 ** -130), Infinity, NaN]), [3, 2], "BF16"),
    f64: { dtype: "F64", shape: [3], data: new Uint8Array(new Float64Array([0.1, -2, 1e300]).buffer) },
    i64: fromInt32(ints, [6], "I64"),
    i32: fromInt32(ints, [3, 2], "I32"),
    i16: { dtype: "I16", shape: [3], data: new Uint8Array(new Int16Array([-32768, 0, 32767]).buffer) },
    i8: { dtype: "I8", shape: [3], data: new Uint8Array(new Int8Array([-128, 0, 127]).buffer) },
    u8: { dtype: "U8", shape: [2], data: new Uint8Array([0, 255]) },
    bool: fromBool(new Uint8Array([0, 1, 7, 0]), [2, 2]),
    scalar: fromFloat32(new Float32Array([42.5]), [], "F32"),
    empty: fromFloat32(new Float32Array(0), [0, 3], "F16"),
    empty_i64: fromInt32(new Int32Array(0), [4, 0], "I64"),
  };
  const meta = { format: "pt", note: "ünïcødé ✓" };
  const bytes = serializeSafetensors(tensors, meta);
  const { tensors: back, metadata } = parseSafetensors(bytes);
  assert.deepEqual(metadata, meta);
  assert.deepEqual([...back.keys()].sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const b = back.get(name)!;
    assert.equal(b.dtype, t.dtype, name);
    assert.deepEqual(b.shape, t.shape, name);
    assert.deepEqual(Array.from(b.data), Array.from(t.data), name);
  }
  assert.deepEqual(Array.from(toFloat32(back.get("f32")!)), Array.from(f));
  assert.deepEqual(Array.from(toFloat32(back.get("f16")!)), [0, -0, 1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, NaN]);
  assert.deepEqual(Array.from(toFloat32(back.get("bf16")!)), [1, -1.5, 2 ** 100, -(2 ** -130), Infinity, NaN]);
  assert.deepEqual(Array.from(toFloat32(back.get("f64")!)), [Math.fround(0.1), -2, Infinity]);
  assert.deepEqual(Array.from(toInt32(back.get("i64")!)), Array.from(ints));
  assert.deepEqual(Array.from(toFloat32(back.get("i64")!)), Array.from(ints, (v) => Math.fround(v)));
  assert.deepEqual(Array.from(toInt32(back.get("i32")!)), Array.from(ints));
  assert.deepEqual(Array.from(toInt32(back.get("i16")!)), [-32768, 0, 32767]);
  assert.deepEqual(Array.from(toInt32(back.get("i8")!)), [-128, 0, 127]);
  assert.deepEqual(Array.from(toFloat32(back.get("u8")!)), [0, 255]);
  assert.deepEqual(Array.from(toBool(back.get("bool")!)), [0, 1, 1, 0]);
  assert.deepEqual(Array.from(toInt32(back.get("bool")!)), [0, 1, 1, 0]);
  assert.deepEqual(Array.from(toFloat32(back.get("scalar")!)), [42.5]);
  assert.equal(toFloat32(back.get("empty")!).length, 0);
  assert.equal(toInt32(back.get("empty_i64")!).length, 0);
  // Layout: header padded to a multiple of 8 with spaces, and every tensor aligned to its item size.
  const n = new DataView(bytes.buffer).getUint32(0, true);
  assert.equal(n % 8, 0);
  for (const [name, t] of back) {
    assert.equal(t.data.buffer, bytes.buffer, `${name} is a zero-copy view`);
    assert.equal(t.data.byteOffset % ST_ITEMSIZE[t.dtype], 0, `${name} aligned`);
  }
});

test("serialization is deterministic and matches the reference byte layout", () => {
  const data = new Float32Array([0, 1, 2, 3, 4, 5]);
  const a = serializeSafetensors({ "attn.0": fromFloat32(data, [1, 2, 3]) });
  // Byte vector from the reference implementation's own test-suite (header exactly 64 bytes, no padding).
  const expectedHeader = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  assert.deepEqual(Array.from(a.subarray(0, 8)), [64, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(new TextDecoder().decode(a.subarray(8, 72)), expectedHeader);
  assert.deepEqual(Array.from(a.subarray(72, 80)), [0, 0, 0, 0, 0, 0, 128, 63]);
  assert.deepEqual(Array.from(serializeSafetensors({})), [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  assert.equal(new TextDecoder().decode(serializeSafetensors({}, { framework: "pt" }).subarray(8)), '{"__metadata__":{"framework":"pt"}}     ');

  const x = fromFloat32(new Float32Array([1, 2]), [2]);
  const m = fromBool(new Uint8Array([1, 0, 1]), [3]);
  const y = fromFloat32(new Float32Array([3]), [1], "F16");
  const b1 = serializeSafetensors([["x", x], ["m", m], ["y", y]], { b: "2", a: "1" });
  const b2 = serializeSafetensors(new Map([["y", y], ["x", x], ["m", m]]), { a: "1", b: "2" });
  assert.deepEqual(b1, b2);
  assert.throws(() => serializeSafetensors([["x", x], ["x", x]]), /duplicate tensor name "x"/);
  assert.throws(() => serializeSafetensors({ w: { dtype: "F32", shape: [3], data: new Uint8Array(8) } }), /tensor "w" has 8 data bytes but shape \[3\] x F32 needs 12/);
  assert.throws(() => serializeSafetensors({ __metadata__: x }), /reserved/);
  assert.throws(() => serializeSafetensors({ x }, { a: 1 as unknown as string }), /metadata\["a"\] must be a string/);
});

// ------------------------------------------------------------------ dtype conversion

test("float16 / bfloat16 conversion: exact edge values and round-to-nearest-even", () => {
  const cases: [number, number][] = [
    [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00], [2 ** -24, 0x0001], [2 ** -25, 0x0000],
    [3 * 2 ** -25, 0x0002], [2 ** -14, 0x0400], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66],
    [-0, 0x8000], [1e-8, 0], [Infinity, 0x7c00], [-Infinity, 0xfc00], [1e6, 0x7c00],
  ];
  for (const [x, h] of cases) assert.equal(toFloat16Bits(x), h, `f16(${x})`);
  const nan = toFloat16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
  // 48 float32 values spanning subnormal..overflow, with their float16 casts computed by numpy.
  const f32 = "32000000,b2b0d322,3361a645,b3927967,34434c89,b4f41fac,3524f2ce,b5d5c5f0,36069912,b6b76c35,37683f57,b7991279,3849e59c,b8fab8be,392b8be0,b9dc5f03,3a0d3225,babe0547,3b6ed86a,bb9fab8c,3c507eae,bc8151d0,3d3224f3,bde2f815,3e13cb37,bec49e5a,3f75717c,bfa6449e,405717c1,c087eae3,4138be05,c1e99128,421a644a,c2cb376c,437c0a8f,c3acddb1,445db0d3,c48e83f5,453f5718,c5f02a3a,4620fd5c,c6d1d07f,4702a3a1,c7b376c3,486449e6,c8951d08,4945f02a,c9f6c34d";
  const f16 = "0,8000,1,8001,3,8008,a,801b,22,805c,e8,8132,328,87d6,95c,8ee3,106a,95f0,1b77,9cfd,2284,a40b,2991,af18,309e,b625,3bac,bd32,42b9,c43f,49c6,cf4d,50d3,d65a,5be0,dd67,62ee,e474,69fb,ef81,7108,f68f,7815,fc00,7c00,fc00,7c00,fc00";
  const bits = new Uint32Array(f32.split(",").map((s) => parseInt(s, 16)));
  const got = Array.from(new Float32Array(bits.buffer), toFloat16Bits);
  assert.deepEqual(got, f16.split(",").map((s) => parseInt(s, 16)));
  // Every float16 bit pattern decodes and re-encodes to itself (NaNs stay NaN).
  for (let h = 0; h < 0x10000; h++) {
    const v = fromFloat16Bits(h);
    if (Number.isNaN(v)) assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
    else assert.equal(toFloat16Bits(v), h, `f16 bits ${h.toString(16)}`);
  }
  // Random float32s: the encoding is the nearest float16, ties to even (oracle built from the exact decoder).
  let s = 12345;
  const rnd = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 3000; i++) {
    const x = Math.fround((rnd() - 0.5) * 2 ** (Math.floor(rnd() * 44) - 28));
    const h = toFloat16Bits(x);
    const err = Math.abs(fromFloat16Bits(h) - x);
    for (const nb of [h - 1, h + 1]) {
      if ((nb & 0x7fff) >= 0x7c00 || (nb & 0x8000) !== (h & 0x8000) || nb < 0) continue;
      const e2 = Math.abs(fromFloat16Bits(nb) - x);
      assert.ok(err < e2 || (err === e2 && (h & 1) === 0), `f16(${x}) = ${h.toString(16)} not nearest-even`);
    }
  }
  // bfloat16: top half of float32 with RNE on the dropped 16 bits.
  const bcases: [number, number][] = [[1, 0x3f80], [0.1, 0x3dcd], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82],
    [-0, 0x8000], [3.4028234663852886e38, 0x7f80], [Infinity, 0x7f80], [-Infinity, 0xff80], [2 ** -133, 0x0001]];
  for (const [x, h] of bcases) assert.equal(toBfloat16Bits(x), h, `bf16(${x})`);
  assert.ok(Number.isNaN(fromBfloat16Bits(toBfloat16Bits(NaN))));
  for (let h = 0; h < 0x10000; h += 7) {
    const v = fromBfloat16Bits(h);
    if (!Number.isNaN(v)) assert.equal(toBfloat16Bits(v), h);
  }
});

test("typed-array helpers reject wrong dtypes and out-of-range values, naming the tensor", () => {
  const big = fromInt32(new Int32Array([1, 2]), [2], "I64");
  big.data[12] = 1; // element 1 high word = 1 -> 2^32 + 2
  assert.throws(() => toInt32(big, "ids"), (e: unknown) => e instanceof SafetensorsError && /tensor "ids" \(I64\) element 1 = 4294967298 does not fit in int32/.test(e.message));
  assert.equal(toFloat32(big)[1], Math.fround(4294967298));
  const neg = fromInt32(new Int32Array([-5]), [1], "I64");
  assert.deepEqual(Array.from(neg.data), [251, 255, 255, 255, 255, 255, 255, 255]);
  assert.throws(() => toInt32(fromFloat32(new Float32Array(1), [1]), "w"), /tensor "w" has dtype F32, expected an integer/);
  assert.throws(() => toBool({ dtype: "BOOL", shape: [2], data: new Uint8Array([1, 2]) }, "mask"), /tensor "mask" \(BOOL\) element 1 has byte value 2/);
  assert.throws(() => toBool(fromInt32(new Int32Array(1), [1]), "mask"), /expected BOOL/);
  assert.throws(() => fromFloat32(new Float32Array(5), [2, 3]), /shape \[2, 3\] has 6 elements but data has 5/);
  assert.throws(() => fromFloat32(new Float32Array(1), [1], "F64" as "F32"), /unsupported target dtype/);
});

// ------------------------------------------------------------------ real PyTorch fixtures

test("reads the PyTorch linear fixture", async () => {
  const { tensors, metadata } = await readSafetensorsFile(fixture("linear.safetensors"));
  assert.equal(metadata.torch_version, "1.13.0a0");
  assert.match(metadata.config, /"op": "linear"/);
  assert.equal(tensors.size, 8);
  const x = tensors.get("input.x")!;
  assert.equal(x.dtype, "F32");
  assert.deepEqual(x.shape, [2, 3, 7]);
  assert.deepEqual(tensors.get("grad.weight")!.shape, [5, 7]);
  const xf = toFloat32(x);
  assert.deepEqual(Array.from(xf.subarray(0, 3)), [-1.4256224632263184, -0.7310596704483032, -0.6426066160202026]);
  assert.equal(xf[41], 1.1516048908233643);
  const bias = toFloat32(tensors.get("param.bias")!);
  assert.deepEqual(Array.from(bias.subarray(0, 3)), [0.12740924954414368, 0.020039094612002373, 0.006861118134111166]);
  assert.equal(bias[4], -0.07983854413032532);
  const gw = toFloat32(tensors.get("grad.weight")!);
  assert.ok(Math.abs(gw.reduce((a, b) => a + b, 0) - 43.239093942567706) < 1e-4);
});

test("reads the PyTorch key_padding fixture (BOOL mask, unaligned F32 tensors)", async () => {
  const { tensors, metadata } = await readSafetensorsFile(fixture("key_padding.safetensors"));
  assert.match(metadata.description, /key padding mask/);
  const mask = tensors.get("input.key_padding_mask")!;
  assert.equal(mask.dtype, "BOOL");
  assert.deepEqual(mask.shape, [3, 5]);
  assert.deepEqual(Array.from(toBool(mask)), [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1]);
  const go = tensors.get("input.grad_output")!; // data_offsets start at 2895: not 4-aligned in the file
  assert.deepEqual(go.shape, [3, 2, 5, 8]);
  assert.equal(go.data.byteOffset % 4, 0, "unaligned tensors are copied");
  const gof = toFloat32(go);
  assert.deepEqual(Array.from(gof.subarray(0, 3)), [-1.0375521183013916, -0.8752027750015259, 0.7136437892913818]);
  assert.equal(gof[239], -0.5644106864929199);
  const w = toFloat32(tensors.get("output.weights")!);
  assert.deepEqual(Array.from(w.subarray(0, 3)), [0.6690273284912109, 0.06694964319467545, 0.11462970077991486]);
  // Re-serialising and parsing again preserves every tensor bit for bit.
  const again = parseSafetensors(serializeSafetensors(tensors, metadata));
  for (const [k, t] of tensors) assert.deepEqual(Array.from(again.tensors.get(k)!.data), Array.from(t.data), k);
});

// ------------------------------------------------------------------ malformed input, one test per class

test("malformed: file shorter than 8 bytes", () => {
  expectError(new Uint8Array(5), /too short: 5 bytes/);
});
test("malformed: header length past end of file", () => {
  const f = rawFile("{}", 0);
  new DataView(f.buffer).setUint32(0, 100, true);
  assert.equal(expectError(f, /header length 100 runs past end of file \(file is 10 bytes/).offset, 0);
});
test("malformed: absurdly large header length", () => {
  const f = rawFile("{}", 0);
  new DataView(f.buffer).setUint32(4, 1, true);
  expectError(f, /header length >= 2\^32.*too large/);
  new DataView(f.buffer).setUint32(4, 0, true);
  new DataView(f.buffer).setUint32(0, 200_000_000, true);
  expectError(f, /header length 200000000 is too large/);
});
test("malformed: header not valid UTF-8", () => {
  const f = rawFile("{}      ", 0);
  f[10] = 0xc3; // lone lead byte
  expectError(f, /not valid UTF-8/);
});
test("malformed: header not valid JSON", () => {
  expectError(rawFile('{"a": {"dtype": ', 0), /not valid JSON/);
  expectError(rawFile("\uFEFF{}", 0), /not valid JSON/); // a BOM is not JSON whitespace
});
test("malformed: header not an object", () => {
  expectError(rawFile("[]", 0), /must be a JSON object, got an array/);
  expectError(rawFile("null", 0), /must be a JSON object, got null/);
  expectError(rawFile("42", 0), /must be a JSON object, got 42/);
});
test("malformed: entry missing dtype / shape / data_offsets", () => {
  expectError(rawFile('{"w":{"shape":[1],"data_offsets":[0,4]}}', 4), /tensor "w" is missing "dtype"/);
  expectError(rawFile('{"w":{"dtype":"F32","data_offsets":[0,4]}}', 4), /tensor "w" is missing "shape"/);
  expectError(rawFile('{"w":{"dtype":"F32","shape":[1]}}', 4), /tensor "w" is missing "data_offsets"/);
});
test("malformed: entry fields with wrong types", () => {
  expectError(rawFile('{"w":[1,2]}', 0), /tensor "w" must be an object/);
  expectError(rawFile(`{"w":${T("F32", [1], [0, 4]).replace('"F32"', "7")}}`, 4), /tensor "w".dtype must be a string, got 7/);
  expectError(rawFile('{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}', 4), /tensor "w".shape must be an array/);
  expectError(rawFile(`{"w":${T("F32", [1], [0, 4]).replace("[1]", '["1"]')}}`, 4), /tensor "w".shape\[0\] must be a non-negative integer/);
});
test("malformed: unknown dtype", () => {
  const e = expectError(rawFile(`{"w":${T("F8_E4M3", [1], [0, 1])}}`, 1), /tensor "w" has unknown\/unsupported dtype "F8_E4M3"/);
  assert.equal(e.field, 'tensor "w".dtype');
});
test("malformed: negative or non-integer dims", () => {
  expectError(rawFile(`{"w":${T("F32", [2, -1], [0, 4])}}`, 4), /tensor "w".shape\[1\] must be a non-negative integer dimension, got -1/);
  expectError(rawFile(`{"w":${T("F32", [1.5], [0, 4])}}`, 4), /tensor "w".shape\[0\] .* got 1.5/);
});
test("malformed: data_offsets not [begin, end] integers, or begin > end", () => {
  expectError(rawFile(`{"w":${T("F32", [1], [0, 4, 8])}}`, 4), /tensor "w".data_offsets must be \[begin, end\]/);
  expectError(rawFile(`{"w":${T("F32", [1], ["0", 4])}}`, 4), /data_offsets must be \[begin, end\] non-negative integers, got \["0",4\]/);
  expectError(rawFile(`{"w":${T("F32", [1], [0.5, 4])}}`, 4), /data_offsets must be/);
  expectError(rawFile(`{"w":${T("F32", [0], [4, 0])}}`, 4), /tensor "w".data_offsets \[4, 0\] has begin > end/);
});
test("malformed: end past the data section", () => {
  expectError(rawFile(`{"w":${T("F32", [2], [0, 8])}}`, 4), /tensor "w".data_offsets \[0, 8\] run past the end of the data section \(4 bytes\)/);
});
test("malformed: byte size differs from product(shape) * itemsize", () => {
  expectError(rawFile(`{"w":${T("F32", [3], [0, 8])}}`, 8), /tensor "w" byte size mismatch: shape \[3\] x F32 \(4 B\) needs 12 bytes but data_offsets \[0, 8\] span 8/);
  expectError(rawFile(`{"s":${T("I64", [], [0, 4])}}`, 4), /tensor "s" byte size mismatch: shape \[\] x I64 \(8 B\) needs 8 bytes/);
  expectError(rawFile(`{"w":${T("U8", [2 ** 30, 2 ** 30, 2 ** 30], [0, 4])}}`, 4), /needs > 2\^53 bytes/);
});
test("malformed: overlapping tensor ranges", () => {
  const header = `{"a":${T("F32", [2], [0, 8])},"b":${T("F32", [2], [4, 12])}}`;
  const e = expectError(rawFile(header, 12), /tensor "b" data_offsets \[4, 12\] overlap tensor "a" \[0, 8\]/);
  assert.equal(e.offset, 8 + header.length + 4);
});
test("malformed: gaps and trailing bytes in the data section (the reference implementation rejects both)", () => {
  expectError(rawFile(`{"a":${T("U8", [2], [0, 2])},"b":${T("U8", [2], [4, 6])}}`, 6), /gap in data section: bytes \[2, 4\) before tensor "b"/);
  expectError(rawFile(`{"a":${T("U8", [2], [0, 2])}}`, 5), /3 trailing bytes after the last tensor/);
});
test("malformed: __metadata__ not a string -> string map", () => {
  expectError(rawFile('{"__metadata__":"x"}', 0), /__metadata__ must be an object mapping strings to strings/);
  expectError(rawFile('{"__metadata__":{"epochs":3}}', 0), /__metadata__\["epochs"\] must be a string, got 3/);
  const ok = parseSafetensors(rawFile('{"__metadata__":{"__proto__":"p","k":"v"}}', 0));
  assert.equal(Object.getPrototypeOf(ok.metadata), Object.prototype);
  assert.equal(ok.metadata["__proto__"], "p");
});
test("accepts: empty file body, scalars, zero-size tensors, out-of-order offsets, unaligned input buffer", () => {
  assert.equal(parseSafetensors(rawFile("{}", 0)).tensors.size, 0);
  const f = rawFile(`{"b":${T("F32", [], [4, 8])},"z":${T("F32", [0, 5], [0, 0])},"a":${T("F32", [1], [0, 4])}}`, 8);
  const shifted = new Uint8Array(f.length + 1);
  shifted.set(f, 1);
  const { tensors } = parseSafetensors(shifted.subarray(1));
  assert.deepEqual(tensors.get("b")!.shape, []);
  assert.equal(toFloat32(tensors.get("b")!).length, 1);
  assert.equal(tensors.get("z")!.data.length, 0);
  assert.equal(tensors.get("a")!.data.byteOffset % 4, 0);
  assert.deepEqual(Array.from(tensors.get("a")!.data), [0, 1, 2, 3]);
});

// ------------------------------------------------------------------ fuzz

test("fuzz: random mutations and truncations yield a parse or a SafetensorsError, nothing else", () => {
  const base: Record<string, StTensor> = {
    w: fromFloat32(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], "F32"),
    h: fromFloat32(new Float32Array([1, -1, 0.5]), [3], "F16"),
    ids: fromInt32(new Int32Array([7, -7]), [2], "I64"),
    m: fromBool(new Uint8Array([1, 0, 1]), [3]),
    s: fromInt32(new Int32Array([9]), [], "I32"),
    e: fromFloat32(new Float32Array(0), [0], "BF16"),
  };
  const seeds = [serializeSafetensors(base, { k: "v" }), new Uint8Array(readFileSync(fixture("linear.safetensors")))];
  let s = 0x9e3779b9;
  const rnd = (n: number): number => { // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
  const CHARS = enc.encode('0123456789-.eE[]{}",: \\u0aZ');
  let ok = 0, bad = 0;
  for (let iter = 0; iter < 4000; iter++) {
    const src = seeds[iter % 2];
    let f = src.slice();
    const hdrEnd = 8 + new DataView(src.buffer).getUint32(0, true);
    for (let k = 1 + rnd(3); k > 0; k--) {
      switch (rnd(7)) {
        case 0: f[rnd(f.length)] ^= 1 << rnd(8); break; // bit flip anywhere
        case 1: f[8 + rnd(hdrEnd - 8)] = CHARS[rnd(CHARS.length)]; break; // JSON-ish byte in the header
        case 2: f = f.slice(0, rnd(f.length + 1)); break; // truncate
        case 3: { const g = new Uint8Array(f.length + 1 + rnd(16)); g.set(f); f = g; break; } // append zeros
        case 4: if (f.length >= 8) new DataView(f.buffer).setUint32(0, rnd(2) ? hdrEnd - 8 + rnd(17) - 8 : rnd(2 ** 31), true); break;
        case 5: { const i = 8 + rnd(hdrEnd - 8); f = new Uint8Array([...f.subarray(0, i), ...f.subarray(i + 1)]); break; } // delete
        default: { const i = 8 + rnd(hdrEnd - 8); const digit = 48 + rnd(10); f = new Uint8Array([...f.subarray(0, i), digit, ...f.subarray(i)]); } // insert
      }
    }
    try {
      const { tensors } = parseSafetensors(f);
      for (const [name, t] of tensors) {
        assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1) * ST_ITEMSIZE[t.dtype]);
        try {
          toFloat32(t, name);
        } catch (e) {
          assert.ok(e instanceof SafetensorsError, `toFloat32 threw ${String(e)}`);
        }
      }
      ok++;
    } catch (e) {
      if (!(e instanceof SafetensorsError)) assert.fail(`iteration ${iter}: non-SafetensorsError ${String(e)}`);
      assert.ok(e.message.length > 10);
      bad++;
    }
  }
  if (process.env.ST_FUZZ_STATS) console.log({ ok, bad });
  assert.ok(ok > 20 && bad > 1000, `fuzz coverage: ${ok} parsed, ${bad} rejected`);
});

// ------------------------------------------------------------------ files

test("file I/O: atomic write leaves no temp files, read errors name the path", async () => {
  const dir = await mkdtemp(join(tmpdir(), "attnflow-st-"));
  try {
    const p = join(dir, "model.safetensors");
    const tensors = { w: fromFloat32(new Float32Array([1, 2, 3]), [3]) };
    await writeSafetensorsFile(p, tensors, { step: "1" });
    await writeSafetensorsFile(p, { w: fromFloat32(new Float32Array([4, 5, 6]), [3]) }, { step: "2" });
    assert.deepEqual(await readdir(dir), ["model.safetensors"]);
    const back = await readSafetensorsFile(p);
    assert.equal(back.metadata.step, "2");
    assert.deepEqual(Array.from(toFloat32(back.tensors.get("w")!)), [4, 5, 6]);

    const missing = join(dir, "nope.safetensors");
    await assert.rejects(readSafetensorsFile(missing), (e: unknown) => e instanceof SafetensorsError && e.message.includes(missing));
    const broken = join(dir, "broken.safetensors");
    await writeFile(broken, rawFile(`{"w":${T("F32", [3], [0, 8])}}`, 8));
    await assert.rejects(readSafetensorsFile(broken), (e: unknown) =>
      e instanceof SafetensorsError && e.message.startsWith(`${broken}: tensor "w" byte size mismatch`) && e.field === 'tensor "w".data_offsets');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("file I/O: the old file survives a failed write", async () => {
  const dir = await mkdtemp(join(tmpdir(), "attnflow-st-"));
  try {
    const p = join(dir, "ckpt.safetensors");
    await writeSafetensorsFile(p, { w: fromFloat32(new Float32Array([1, 2]), [2]) });
    const before = await readFile(p);
    // Crash mid-write: half of the bytes reach the temp file, then the writer throws.
    let called = 0;
    await assert.rejects(
      writeSafetensorsFile(p, { w: fromFloat32(new Float32Array(1000), [1000]) }, undefined, {
        write: async (fh, bytes) => {
          called++;
          await fh.write(bytes, 0, bytes.length >> 1, 0);
          throw new Error("simulated crash");
        },
      }),
      (e: unknown) => e instanceof Error && e.message.includes(p) && e.message.includes("simulated crash"),
    );
    assert.equal(called, 1);
    assert.deepEqual(await readFile(p), before);
    assert.deepEqual(await readdir(dir), ["ckpt.safetensors"]);
    // Target directory does not exist: error names the path, nothing is created.
    const nowhere = join(dir, "missing-dir", "x.safetensors");
    await assert.rejects(writeFileAtomic(nowhere, new Uint8Array(8)), (e: unknown) => e instanceof Error && e.message.includes(nowhere));
    assert.deepEqual(await readdir(dir), ["ckpt.safetensors"]);
    assert.deepEqual(await readFile(p), before);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("loads from a Node Buffer view into a larger pool (slice() of a Buffer is a view, not a copy)", async () => {
  const { loadSafetensors, saveSafetensors } = await import("../src/io/state-dict.js");
  const { tensor } = await import("../src/creation.js");
  const bytes = saveSafetensors({ a: tensor([1, 2, 3]), b: tensor([[4, 5], [6, 7]]) });
  const big = Buffer.alloc(bytes.length + 100);
  Buffer.from(bytes).copy(big, 37);
  const view = big.subarray(37, 37 + bytes.length);
  const { tensors } = loadSafetensors(view);
  assert.deepEqual(Array.from(tensors.get("b")!.dataSync()), [4, 5, 6, 7]);
  assert.deepEqual(tensors.get("b")!.shape, [2, 2]);
});
