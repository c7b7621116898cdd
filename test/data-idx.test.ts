import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { encodeIdx, IdxFormatError, parseIdx } from "../src/data/idx.js";
import { FASHION_MNIST_DIR, hasFashionMnist, loadFashionMnist } from "../src/node/datasets.js";

// Hand-written: magic 00 00, dtype 0x08 (uint8), ndim 2, dims 2 x 3 (big-endian), then 6 bytes.
const TINY_U8 = Uint8Array.from([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 250]);

test("parseIdx reads a hand-made uint8 buffer", () => {
  const a = parseIdx(TINY_U8);
  assert.equal(a.dtype, "uint8");
  assert.deepEqual(a.dims, [2, 3]);
  assert.deepEqual(Array.from(a.data), [1, 2, 3, 4, 5, 250]);
});

test("parseIdx decodes big-endian int16 / int32 / float32 / float64", () => {
  // int16 dims [2]: 0x0102 = 258, 0xFFFE = -2
  const i16 = parseIdx(Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe]));
  assert.deepEqual(Array.from(i16.data), [258, -2]);
  // int32 dims [1]: 0x00010000 = 65536
  const i32 = parseIdx(Uint8Array.from([0, 0, 0x0c, 1, 0, 0, 0, 1, 0x00, 0x01, 0x00, 0x00]));
  assert.deepEqual(Array.from(i32.data), [65536]);
  // float32 1.5 = 0x3FC00000
  const f32 = parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0]));
  assert.deepEqual(Array.from(f32.data), [1.5]);
  // float64 via the encoder, round trip with a 3-d shape
  const vals = [0.1, -2.5, 1e300, 7, 8, 9];
  const f64 = parseIdx(encodeIdx("float64", [1, 2, 3], vals));
  assert.equal(f64.dtype, "float64");
  assert.deepEqual(f64.dims, [1, 2, 3]);
  assert.deepEqual(Array.from(f64.data), vals);
  // int8 sign
  assert.deepEqual(Array.from(parseIdx(Uint8Array.from([0, 0, 0x09, 1, 0, 0, 0, 2, 0xff, 0x05])).data), [-1, 5]);
});

test("parseIdx errors name the field and offset", () => {
  const err = (bytes: Uint8Array, field: string, offset: number, re: RegExp) =>
    assert.throws(() => parseIdx(bytes, "x.idx"), (e: unknown) => {
      assert.ok(e instanceof IdxFormatError, String(e));
      assert.equal(e.field, field);
      assert.equal(e.offset, offset);
      assert.match(e.message, re);
      assert.match(e.message, /x\.idx/);
      return true;
    });
  err(Uint8Array.from([0, 0]), "magic", 2, /truncated header/);
  err(Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]), "magic", 0, /bad magic/);
  err(Uint8Array.from([0x1f, 0x8b, 8, 0]), "magic", 0, /gzip/);
  err(Uint8Array.from([0, 0, 0x42, 1, 0, 0, 0, 0]), "dtype", 2, /unknown dtype code 0x42/);
  err(Uint8Array.from([0, 0, 8, 0]), "ndim", 3, /ndim is 0/);
  err(Uint8Array.from([0, 0, 8, 2, 0, 0, 0, 2, 0, 0]), "dims[1]", 10, /truncated header/);
  err(TINY_U8.subarray(0, TINY_U8.length - 2), "data", 16, /truncated data.*\[2, 3\].*= 6 data bytes, found 4/);
  const long = new Uint8Array(TINY_U8.length + 1);
  long.set(TINY_U8);
  err(long, "data", 18, /trailing bytes.*found 7/);
  // int32 with a body that is not a multiple of 4
  err(Uint8Array.from([0, 0, 0x0c, 1, 0, 0, 0, 1, 0, 0]), "data", 10, /int32/);
});

test("encodeIdx rejects a dims/data mismatch", () => {
  assert.throws(() => encodeIdx("uint8", [2, 2], [1, 2, 3]), /4 elements but data has 3/);
});

test("loadFashionMnist reads gzipped and raw files from a user directory", () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-idx-"));
  try {
    const img = (n: number, seed: number) => encodeIdx("uint8", [n, 28, 28], Array.from({ length: n * 784 }, (_, i) => (i * seed) % 256));
    writeFileSync(join(dir, "train-images-idx3-ubyte.gz"), gzipSync(img(3, 7)));
    writeFileSync(join(dir, "train-labels-idx1-ubyte"), encodeIdx("uint8", [3], [9, 0, 4]));
    writeFileSync(join(dir, "t10k-images.idx3-ubyte"), img(2, 3));
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte.gz"), gzipSync(encodeIdx("uint8", [2], [1, 8])));
    const ds = loadFashionMnist({ dir });
    assert.deepEqual(ds.trainShape, [3, 28, 28]);
    assert.deepEqual(ds.testShape, [2, 28, 28]);
    assert.equal(ds.trainImages[785], (785 * 7) % 256);
    assert.equal(ds.testImages[1000], (1000 * 3) % 256);
    assert.deepEqual(Array.from(ds.trainLabels), [9, 0, 4]);
    assert.deepEqual(Array.from(ds.testLabels), [1, 8]);
    assert.equal(ds.classNames[9], "Ankle boot");
    const cut = loadFashionMnist({ dir, maxTrain: 1 });
    assert.equal(cut.trainImages.length, 784);
    // a labels/images count mismatch is reported
    writeFileSync(join(dir, "train-labels-idx1-ubyte"), encodeIdx("uint8", [2], [9, 0]));
    assert.throws(() => loadFashionMnist({ dir }), /3 images but 2 labels/);
    writeFileSync(join(dir, "train-labels-idx1-ubyte"), encodeIdx("uint8", [3], [9, 10, 4]));
    assert.throws(() => loadFashionMnist({ dir }), /label\[1\] = 10/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("loadFashionMnist tells which Debian package to install when files are missing", () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-idx-empty-"));
  try {
    assert.throws(() => loadFashionMnist({ dir }), /apt-get install dataset-fashion-mnist.*--data DIR/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Debian Fashion-MNIST: 60000/10000 images, 6000/1000 per class", (t) => {
  if (!hasFashionMnist()) return t.skip(`${FASHION_MNIST_DIR} absent (apt-get install dataset-fashion-mnist)`);
  const ds = loadFashionMnist();
  assert.deepEqual(ds.trainShape, [60000, 28, 28]);
  assert.deepEqual(ds.testShape, [10000, 28, 28]);
  assert.equal(ds.trainImages.length, 60000 * 784);
  const hist = (labels: Uint8Array) => labels.reduce((h, v) => (h[v]++, h), new Array(10).fill(0));
  assert.deepEqual(hist(ds.trainLabels), new Array(10).fill(6000));
  assert.deepEqual(hist(ds.testLabels), new Array(10).fill(1000));
  // pixels span the full range and the background (corner pixel) is mostly black
  let max = 0;
  let blackCorners = 0;
  for (let n = 0; n < 1000; n++) {
    blackCorners += ds.trainImages[n * 784] === 0 ? 1 : 0;
    for (let i = 0; i < 784; i++) max = Math.max(max, ds.trainImages[n * 784 + i]);
  }
  assert.equal(max, 255);
  assert.ok(blackCorners > 950, `only ${blackCorners}/1000 images have a black corner`);
});
