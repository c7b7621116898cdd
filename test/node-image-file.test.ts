import { test } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  decodePng, decodePnm, decodeImage, encodePng, greySquare, loadGreyImage, resizeGrey, toGrey, ImageFormatError,
} from "../src/node/image-file.js";

// An independent PNG writer for the tests (bitwise CRC, explicit filters) so decodePng is not checked against itself.
function crcBitwise(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); }
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, data: Uint8Array): number[] {
  const body = new Uint8Array([...Buffer.from(type, "latin1"), ...data]);
  const len = data.length, crc = crcBitwise(body);
  return [len >>> 24, (len >>> 16) & 255, (len >>> 8) & 255, len & 255, ...body, crc >>> 24, (crc >>> 16) & 255, (crc >>> 8) & 255, crc & 255];
}
function be32(v: number): number[] { return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]; }
/** Rows already packed at the file's bit depth; filters[y] is applied to row y (bpp bytes per pixel for Sub/Avg/Paeth). */
function handPng(w: number, h: number, depth: number, ctype: number, rows: number[][], filters: number[], bpp: number,
  extra: { plte?: number[]; trns?: number[]; interlace?: number } = {}): Uint8Array {
  const raw: number[] = [];
  rows.forEach((row, y) => {
    const prev = y > 0 ? rows[y - 1] : row.map(() => 0), f = filters[y];
    raw.push(f);
    row.forEach((x, i) => {
      const a = i >= bpp ? row[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][f];
      raw.push((x - pred) & 255);
    });
  });
  const ihdr = new Uint8Array([...be32(w), ...be32(h), depth, ctype, 0, 0, extra.interlace ?? 0]);
  return new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, ...pngChunk("IHDR", ihdr),
    ...(extra.plte ? pngChunk("PLTE", new Uint8Array(extra.plte)) : []),
    ...(extra.trns ? pngChunk("tRNS", new Uint8Array(extra.trns)) : []),
    ...pngChunk("tEXt", new Uint8Array(Buffer.from("Comment\0hand-built", "latin1"))),
    ...pngChunk("IDAT", new Uint8Array(deflateSync(new Uint8Array(raw)))), ...pngChunk("IEND", new Uint8Array(0))]);
}

test("hand-built RGB PNG with all five filter types decodes exactly", () => {
  const w = 5, h = 5, rows: number[][] = [];
  for (let y = 0; y < h; y++) rows.push(Array.from({ length: w * 3 }, (_, i) => (y * 53 + i * 29 + ((i * y) % 7) * 31) & 255));
  const img = decodePng(handPng(w, h, 8, 2, rows, [0, 1, 2, 3, 4], 3));
  assert.equal(img.width, 5); assert.equal(img.height, 5); assert.equal(img.channels, 3);
  assert.deepEqual(Array.from(img.data), rows.flat());
});

test("palette + tRNS, 1-bit grey and 16-bit grey", () => {
  // 2-bit palette: 3 colours, the second half transparent
  const plte = [255, 0, 0, 0, 255, 0, 0, 0, 255], idx = [0, 1, 2, 1];
  const packed = [(idx[0] << 6) | (idx[1] << 4) | (idx[2] << 2) | idx[3]];
  const pal = decodePng(handPng(4, 1, 2, 3, [packed], [0], 1, { plte, trns: [255, 128] }));
  assert.equal(pal.channels, 4);
  assert.deepEqual(Array.from(pal.data), [255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 255, 0, 255, 0, 128]);
  const bits = decodePng(handPng(10, 1, 1, 0, [[0b10110000, 0b01000000]], [0], 1));
  assert.deepEqual(Array.from(bits.data), [255, 0, 255, 255, 0, 0, 0, 0, 0, 255]);
  const g16 = decodePng(handPng(2, 1, 16, 0, [[0x12, 0x34, 0xff, 0x00]], [1], 2));
  assert.deepEqual(Array.from(g16.data), [0x12, 0xff]);
  assert.throws(() => decodePng(handPng(4, 1, 2, 3, [[0b11000000]], [0], 1, { plte })), /palette index 3 but PLTE has 3 entries/);
});

test("encodePng → decodePng round trip for 1..4 channels", () => {
  for (const ch of [1, 2, 3, 4] as const) {
    const w = 7, h = 3, data = Uint8Array.from({ length: w * h * ch }, (_, i) => (i * 37 + ch * 11) & 255);
    const png = ch === 4 ? encodePng(w, h, data) : encodePng(w, h, data, { channels: ch });
    const back = decodePng(png);
    assert.equal(back.channels, ch);
    assert.deepEqual([back.width, back.height], [w, h]);
    assert.deepEqual(Array.from(back.data), Array.from(data));
  }
  assert.throws(() => encodePng(2, 2, new Uint8Array(15)), /expected 2·2·4 = 16 bytes, got 15/);
});

test("truncated PNG, bad CRC, interlaced and non-PNG input give errors naming the problem", () => {
  const good = encodePng(4, 4, new Uint8Array(64).fill(200));
  assert.throws(() => decodePng(good.subarray(0, good.length - 20)), (e: Error) =>
    e instanceof ImageFormatError && /chunk IDAT at offset 33 declares \d+ data bytes but the file ends at \d+ \(truncated\)/.test(e.message));
  assert.throws(() => decodePng(good.subarray(0, good.length - 12)), /missing IEND/);
  assert.throws(() => decodePng(good.subarray(0, 20)), /truncated|ends at 20/);
  const bad = good.slice();
  bad[20] ^= 0x01; // a byte of IHDR's data (the width)
  assert.throws(() => decodePng(bad), /CRC mismatch in chunk IHDR at offset 8/);
  assert.throws(() => decodePng(handPng(1, 1, 8, 0, [[1]], [0], 1, { interlace: 1 })), /interlaced/);
  assert.throws(() => decodePng(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])), /bad signature at offset 0/);
  assert.throws(() => decodeImage(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]), "photo.jpg"), /photo\.jpg: unsupported image format.*ff d8 ff e0/);
});

test("PGM binary and ASCII (comments, 16-bit maxval) and PPM", () => {
  const p5 = new Uint8Array([...Buffer.from("P5\n# a comment\n3 2\n255\n"), 0, 10, 20, 30, 40, 255]);
  assert.deepEqual(Array.from(decodePnm(p5).data), [0, 10, 20, 30, 40, 255]);
  const p2 = new Uint8Array(Buffer.from("P2 2 2 15 # max 15\n0 15\n 5 10\n"));
  const g = decodePnm(p2);
  assert.deepEqual([g.width, g.height, g.channels], [2, 2, 1]);
  assert.deepEqual(Array.from(g.data), [0, 255, 85, 170]);
  const p5w = new Uint8Array([...Buffer.from("P5 2 1 65535\n"), 0xff, 0xff, 0x80, 0x00]);
  assert.deepEqual(Array.from(decodeImage(p5w).data), [255, 128]);
  const p6 = decodeImage(new Uint8Array([...Buffer.from("P6 1 1 255\n"), 1, 2, 3]));
  assert.equal(p6.channels, 3);
  assert.throws(() => decodePnm(p5.subarray(0, p5.length - 2)), /raster needs 6 bytes from offset 23, file has 4 \(truncated\)/);
  assert.throws(() => decodePnm(new Uint8Array(Buffer.from("P2 2 1 10\n3 11\n"))), /sample 11 at offset \d+ exceeds maxval 10/);
  assert.throws(() => decodePnm(new Uint8Array(Buffer.from("P5 x"))), /expected width .* at offset 3/);
});

test("resize: area average when shrinking, bilinear when enlarging; constants stay constant", () => {
  const src = Float32Array.from({ length: 16 }, (_, i) => i);          // 4×4
  const half = resizeGrey(src, 4, 4, 2, 2);
  assert.deepEqual(Array.from(half), [2.5, 4.5, 10.5, 12.5]);          // 2×2 block means
  const third = resizeGrey(new Float32Array(9 * 6).fill(0.7), 9, 6, 4, 3);
  for (const v of third) assert.ok(Math.abs(v - 0.7) < 1e-6);
  const up = resizeGrey(Float32Array.from([0, 1]), 2, 1, 4, 1);       // centres at −0.25, 0.25, 0.75, 1.25 → clamp
  assert.deepEqual(Array.from(up), [0, 0.25, 0.75, 1]);
});

test("greySquare: luma, alpha over white, auto inversion, padding to a square; readImageFile from disk", () => {
  const rgba = new Uint8Array([255, 0, 0, 255, 0, 0, 0, 0]);          // a red pixel and a transparent one
  const g = toGrey({ width: 2, height: 1, channels: 4, data: rgba });
  assert.ok(Math.abs(g[0] - 0.299) < 1e-6); assert.equal(g[1], 1);
  // dark 2×2 object on a white 8×4 canvas → inverted (light on black), centred on an 8×8 square
  const w = 8, h = 4, px = new Uint8Array(w * h).fill(255);
  px[1 * w + 3] = px[1 * w + 4] = px[2 * w + 3] = px[2 * w + 4] = 0;
  const sq = greySquare({ width: w, height: h, channels: 1, data: px }, { size: 8 });
  assert.equal(sq.inverted, true);
  assert.deepEqual(Array.from(sq.pixels), Array.from({ length: 64 }, (_, i) => ((i >> 3) === 3 || (i >> 3) === 4) && (i % 8 === 3 || i % 8 === 4) ? 1 : 0));
  assert.equal(greySquare({ width: w, height: h, channels: 1, data: px }, { size: 8, invert: false }).pixels[0], 1);
  const kept = greySquare({ width: 2, height: 2, channels: 1, data: new Uint8Array([0, 255, 0, 0]) }, { size: 2 });
  assert.equal(kept.inverted, false);
  assert.deepEqual(Array.from(kept.pixels), [0, 1, 0, 0]);
  const dir = mkdtempSync(join(tmpdir(), "attnflow-img-"));
  try {
    const file = join(dir, "shirt.png");
    writeFileSync(file, encodePng(56, 56, new Uint8Array(56 * 56).fill(51), { channels: 1 }));
    const img = loadGreyImage(file);
    assert.equal(img.pixels.length, 28 * 28);
    assert.ok(img.pixels.every((v) => Math.abs(v - 0.2) < 1e-6));
    writeFileSync(join(dir, "bad.png"), encodePng(2, 2, new Uint8Array(16)).subarray(0, 30));
    assert.throws(() => loadGreyImage(join(dir, "bad.png")), /bad\.png: PNG: .*truncated/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
