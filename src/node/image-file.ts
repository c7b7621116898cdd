// Reading small images for `attnflow predict` / `explain` and writing PNG overlays, with no dependencies:
//   PNG  — own chunk parser (signature, CRC-32 of every chunk, IHDR/PLTE/tRNS/IDAT/IEND), zlib inflate from node:zlib,
//          the five scanline filters; colour types greyscale, RGB, palette, grey+alpha, RGBA; bit depths 1/2/4/8/16
//          (8 bits out); interlaced images are refused with a clear error.
//   PGM/PPM — binary (P5/P6) and ASCII (P2/P3), maxval up to 65535, '#' comments.
// Then: greyscale in [0, 1] (Rec. 601 luma, alpha composited over white), pad to a square, resize (area average
// when shrinking, bilinear when enlarging), and optional inversion to Fashion-MNIST's light-object-on-black look.
import { deflateSync, inflateSync } from "node:zlib";
import { readRegularFileSync } from "./read-file.js";

export class ImageFormatError extends Error {
  constructor(message: string) { super(message); this.name = "ImageFormatError"; }
}

import { greySquare, type DecodedImage, type GreyImage } from "../data/grey-image.js";

// The pixel side (grey, resize, invert) is browser-safe in src/data/grey-image.ts; re-exported for Node callers.
export { greySquare, resizeGrey, toGrey, type DecodedImage, type GreyImage } from "../data/grey-image.js";

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/**
 * Limits checked from the header, before any pixel is decoded or inflated: a 261 KB PNG can declare 16384×16384 and
 * inflate to gigabytes. The models look at 28×28 images, so these are far above any useful input (a 25-megapixel
 * photo still loads) and far below what would exhaust memory.
 */
export const MAX_IMAGE_SIDE = 16384;
export const MAX_IMAGE_PIXELS = 25_000_000;
/** Largest image file read from disk. */
export const MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024;

/** Throws unless width × height is within MAX_IMAGE_SIDE per side and MAX_IMAGE_PIXELS in all. */
function checkImageSize(format: string, width: number, height: number): void {
  if (width < 1 || height < 1 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new ImageFormatError(`${format}: image size ${width}x${height} is not supported (1..${MAX_IMAGE_SIDE} pixels per side)`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new ImageFormatError(`${format}: image size ${width}x${height} = ${width * height} pixels is above the limit of ${MAX_IMAGE_PIXELS} pixels (checked before decoding)`);
  }
}

let crcTable: Uint32Array | null = null;
/** CRC-32 (ISO 3309 / PNG), polynomial 0xEDB88320. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const u32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

export function isPng(bytes: Uint8Array): boolean { return bytes.length >= 8 && PNG_SIGNATURE.every((v, i) => bytes[i] === v); }

/** Decode a non-interlaced PNG to 8-bit pixels (palette images expand to RGB, or RGBA when they have tRNS). */
export function decodePng(bytes: Uint8Array): DecodedImage {
  if (bytes.length < 8 || !isPng(bytes)) throw new ImageFormatError("PNG: bad signature at offset 0 (not a PNG file)");
  let pos = 8, width = 0, height = 0, depth = 0, ctype = -1, seenEnd = false;
  let palette: Uint8Array | null = null, trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  while (pos < bytes.length) {
    if (pos + 8 > bytes.length) throw new ImageFormatError(`PNG: truncated chunk header at offset ${pos} (file has ${bytes.length} bytes)`);
    const len = u32(bytes, pos), type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw new ImageFormatError(`PNG: invalid chunk type at offset ${pos + 4}`);
    const dataStart = pos + 8, dataEnd = dataStart + len;
    if (len > 0x7fffffff || dataEnd + 4 > bytes.length) {
      throw new ImageFormatError(`PNG: chunk ${type} at offset ${pos} declares ${len} data bytes but the file ends at ${bytes.length} (truncated)`);
    }
    const want = u32(bytes, dataEnd), got = crc32(bytes, pos + 4, dataEnd);
    if (want !== got) {
      throw new ImageFormatError(`PNG: CRC mismatch in chunk ${type} at offset ${pos} (stored 0x${want.toString(16).padStart(8, "0")}, computed 0x${got.toString(16).padStart(8, "0")})`);
    }
    const d = bytes.subarray(dataStart, dataEnd);
    if (pos === 8 && type !== "IHDR") throw new ImageFormatError(`PNG: first chunk must be IHDR, found ${type} at offset 8`);
    if (type === "IHDR") {
      if (len !== 13) throw new ImageFormatError(`PNG: IHDR at offset ${pos} has ${len} bytes, expected 13`);
      width = u32(d, 0); height = u32(d, 4); depth = d[8]; ctype = d[9];
      checkImageSize("PNG", width, height);
      if (!(ctype in CHANNELS)) throw new ImageFormatError(`PNG: IHDR colour type ${ctype} is invalid (0, 2, 3, 4 or 6)`);
      if (!DEPTHS[ctype].includes(depth)) throw new ImageFormatError(`PNG: IHDR bit depth ${depth} is invalid for colour type ${ctype} (allowed ${DEPTHS[ctype].join(", ")})`);
      if (d[10] !== 0 || d[11] !== 0) throw new ImageFormatError(`PNG: IHDR compression method ${d[10]} / filter method ${d[11]} must be 0`);
      if (d[12] !== 0) throw new ImageFormatError(`PNG: interlaced (Adam7) images are not supported (IHDR interlace method ${d[12]}); re-save the image without interlacing`);
    } else if (type === "PLTE") {
      if (len % 3 !== 0 || len === 0 || len > 768) throw new ImageFormatError(`PNG: PLTE at offset ${pos} has ${len} bytes (must be 3..768, a multiple of 3)`);
      palette = d.slice();
    } else if (type === "tRNS") {
      trns = d.slice();
    } else if (type === "IDAT") {
      idat.push(d);
    } else if (type === "IEND") {
      seenEnd = true;
      break;
    } else if ((bytes[pos + 4] & 0x20) === 0) {
      throw new ImageFormatError(`PNG: unknown critical chunk ${type} at offset ${pos}`);
    }
    pos = dataEnd + 4;
  }
  if (ctype < 0) throw new ImageFormatError("PNG: missing IHDR chunk");
  if (!idat.length) throw new ImageFormatError("PNG: no IDAT chunk (no image data)");
  if (!seenEnd) throw new ImageFormatError(`PNG: missing IEND chunk (file truncated at offset ${bytes.length}?)`);
  if (ctype === 3 && !palette) throw new ImageFormatError("PNG: palette image (colour type 3) without a PLTE chunk");

  const ch = CHANNELS[ctype], bitsPerPixel = ch * depth, stride = Math.ceil((width * bitsPerPixel) / 8), bpp = Math.max(1, bitsPerPixel >> 3);
  let raw: Uint8Array;
  try {
    // Inflate at most what the declared size needs: a zlib bomb stops here instead of filling memory.
    raw = new Uint8Array(inflateSync(Buffer.concat(idat), { maxOutputLength: height * (stride + 1) }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new ImageFormatError(`PNG: IDAT data inflates to more than the ${height * (stride + 1)} bytes a ${width}x${height} image needs`);
    }
    throw new ImageFormatError(`PNG: IDAT data does not inflate (${(e as Error).message})`);
  }
  if (raw.length < height * (stride + 1)) {
    throw new ImageFormatError(`PNG: image data has ${raw.length} bytes after inflating, expected ${height * (stride + 1)} for ${width}x${height} (truncated IDAT?)`);
  }
  const px = unfilter(raw, height, stride, bpp);
  return expand(px, width, height, stride, depth, ctype, palette, trns);
}

/** Undo the per-scanline filters (None, Sub, Up, Average, Paeth) in place of a fresh (height, stride) buffer. */
function unfilter(raw: Uint8Array, height: number, stride: number, bpp: number): Uint8Array {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], src = y * (stride + 1) + 1, row = y * stride, prev = row - stride;
    for (let i = 0; i < stride; i++) {
      const x = raw[src + i];
      const a = i >= bpp ? out[row + i - bpp] : 0, b = y > 0 ? out[prev + i] : 0, c = y > 0 && i >= bpp ? out[prev + i - bpp] : 0;
      let v: number;
      switch (f) {
        case 0: v = x; break;
        case 1: v = x + a; break;
        case 2: v = x + b; break;
        case 3: v = x + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new ImageFormatError(`PNG: scanline ${y} has unknown filter type ${f}`);
      }
      out[row + i] = v & 0xff;
    }
  }
  return out;
}

/** Unpacked scanlines → 8-bit interleaved pixels (palette → RGB/RGBA; tRNS colour keys → an alpha channel). */
function expand(px: Uint8Array, w: number, h: number, stride: number, depth: number, ctype: number, palette: Uint8Array | null, trns: Uint8Array | null): DecodedImage {
  const ch = CHANNELS[ctype];
  // sample s (0-based) of row y, at the file's bit depth
  const sample = (y: number, s: number): number => {
    if (depth === 8) return px[y * stride + s];
    if (depth === 16) return (px[y * stride + 2 * s] << 8) | px[y * stride + 2 * s + 1];
    const bit = s * depth, byte = px[y * stride + (bit >> 3)];
    return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  const to8 = (v: number) => (depth === 16 ? v >> 8 : depth === 8 ? v : Math.round((v * 255) / ((1 << depth) - 1)));
  if (ctype === 3) {
    const n = palette!.length / 3, alpha = trns !== null;
    const out = new Uint8Array(w * h * (alpha ? 4 : 3));
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const k = sample(y, x);
      if (k >= n) throw new ImageFormatError(`PNG: pixel (${x}, ${y}) uses palette index ${k} but PLTE has ${n} entries`);
      const o = (y * w + x) * (alpha ? 4 : 3);
      out[o] = palette![3 * k]; out[o + 1] = palette![3 * k + 1]; out[o + 2] = palette![3 * k + 2];
      if (alpha) out[o + 3] = k < trns!.length ? trns![k] : 255;
    }
    return { width: w, height: h, channels: alpha ? 4 : 3, data: out };
  }
  // greyscale / RGB with a tRNS colour key gain an alpha channel
  const key = trns && (ctype === 0 || ctype === 2) ? Array.from({ length: ch }, (_, i) => (trns[2 * i] << 8) | trns[2 * i + 1]) : null;
  const outCh = (key ? ch + 1 : ch) as 1 | 2 | 3 | 4;
  const out = new Uint8Array(w * h * outCh);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    let isKey = !!key;
    for (let c = 0; c < ch; c++) {
      const v = sample(y, x * ch + c);
      if (key && v !== key[c]) isKey = false;
      out[(y * w + x) * outCh + c] = to8(v);
    }
    if (key) out[(y * w + x) * outCh + ch] = isKey ? 0 : 255;
  }
  return { width: w, height: h, channels: outCh, data: out };
}

/** Encode 8-bit pixels as PNG (rgba: width·height·channels bytes; channels 4 by default), Sub filter, zlib level 9. */
export function encodePng(width: number, height: number, rgba: Uint8Array, o: { channels?: 1 | 2 | 3 | 4 } = {}): Uint8Array {
  const ch = o.channels ?? 4;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new RangeError(`encodePng: width and height must be positive integers, got ${width}x${height}`);
  if (![1, 2, 3, 4].includes(ch)) throw new RangeError(`encodePng: channels must be 1, 2, 3 or 4, got ${String(ch)}`);
  if (rgba.length !== width * height * ch) throw new RangeError(`encodePng: expected ${width}·${height}·${ch} = ${width * height * ch} bytes, got ${rgba.length}`);
  const stride = width * ch, raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const r = y * (stride + 1), s = y * stride;
    raw[r] = 1; // Sub: each byte minus the byte one pixel to the left
    for (let i = 0; i < stride; i++) raw[r + 1 + i] = (rgba[s + i] - (i >= ch ? rgba[s + i - ch] : 0)) & 0xff;
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width); dv.setUint32(4, height);
  ihdr[8] = 8; ihdr[9] = [0, 0, 4, 2, 6][ch]; // bit depth 8; colour type
  const chunks = [chunk("IHDR", ihdr), chunk("IDAT", new Uint8Array(deflateSync(raw, { level: 9 }))), chunk("IEND", new Uint8Array(0))];
  const out = new Uint8Array(8 + chunks.reduce((s, c) => s + c.length, 0));
  out.set(PNG_SIGNATURE, 0);
  let at = 8;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const c = new Uint8Array(12 + data.length), dv = new DataView(c.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) c[4 + i] = type.charCodeAt(i);
  c.set(data, 8);
  dv.setUint32(8 + data.length, crc32(c, 4, 8 + data.length));
  return c;
}

/** Decode PGM (P2 ASCII / P5 binary) or PPM (P3 / P6) to 8-bit grey or RGB. */
export function decodePnm(bytes: Uint8Array): DecodedImage {
  const magic = String.fromCharCode(bytes[0] ?? 0, bytes[1] ?? 0);
  if (!["P2", "P3", "P5", "P6"].includes(magic)) throw new ImageFormatError(`PNM: bad magic "${magic}" at offset 0 (expected P2, P3, P5 or P6)`);
  const ascii = magic === "P2" || magic === "P3", ch = magic === "P3" || magic === "P6" ? 3 : 1;
  let pos = 2;
  const isSpace = (b: number) => b === 32 || b === 9 || b === 10 || b === 13 || b === 11 || b === 12;
  const nextInt = (what: string): number => {
    for (;;) {
      while (pos < bytes.length && isSpace(bytes[pos])) pos++;
      if (bytes[pos] === 35) { while (pos < bytes.length && bytes[pos] !== 10 && bytes[pos] !== 13) pos++; continue; } // '#' comment
      break;
    }
    const start = pos;
    while (pos < bytes.length && bytes[pos] >= 48 && bytes[pos] <= 57) pos++;
    if (pos === start) throw new ImageFormatError(`PNM: expected ${what} (a decimal number) at offset ${start}${start >= bytes.length ? " (file truncated)" : ""}`);
    if (pos - start > 9) throw new ImageFormatError(`PNM: ${what} at offset ${start} has ${pos - start} digits (at most 9)`);
    return Number(String.fromCharCode(...bytes.subarray(start, pos)));
  };
  const width = nextInt("width"), height = nextInt("height"), maxval = nextInt("maxval");
  checkImageSize("PNM", width, height);
  if (maxval < 1 || maxval > 65535) throw new ImageFormatError(`PNM: maxval ${maxval} must be in 1..65535`);
  const n = width * height * ch, out = new Uint8Array(n);
  const scale = (v: number, at: number) => {
    if (v > maxval) throw new ImageFormatError(`PNM: sample ${v} at offset ${at} exceeds maxval ${maxval}`);
    return Math.round((v * 255) / maxval);
  };
  if (ascii) {
    for (let i = 0; i < n; i++) { const at = pos; out[i] = scale(nextInt(`sample ${i} of ${n}`), at); }
  } else {
    if (!isSpace(bytes[pos] ?? 0)) throw new ImageFormatError(`PNM: expected one whitespace byte after maxval at offset ${pos}`);
    pos++;
    const bps = maxval > 255 ? 2 : 1;
    if (pos + n * bps > bytes.length) throw new ImageFormatError(`PNM: raster needs ${n * bps} bytes from offset ${pos}, file has ${bytes.length - pos} (truncated)`);
    for (let i = 0; i < n; i++) {
      const at = pos + i * bps;
      out[i] = scale(bps === 2 ? (bytes[at] << 8) | bytes[at + 1] : bytes[at], at);
    }
  }
  return { width, height, channels: ch as 1 | 3, data: out };
}

/** PNG or PNM, by content. */
export function decodeImage(bytes: Uint8Array, name = "image"): DecodedImage {
  if (isPng(bytes)) return decodePng(bytes);
  if (bytes[0] === 0x50 && bytes[1] >= 0x31 && bytes[1] <= 0x37) return decodePnm(bytes);
  throw new ImageFormatError(`${name}: unsupported image format (expected PNG or binary/ASCII PGM/PPM; first bytes ${Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ")})`);
}

export function readImageFile(path: string): DecodedImage {
  const bytes = readRegularFileSync(path, "image", MAX_IMAGE_FILE_BYTES);
  try {
    return decodeImage(bytes, path);
  } catch (e) {
    if (e instanceof ImageFormatError && !e.message.startsWith(path)) e.message = `${path}: ${e.message}`;
    throw e;
  }
}

/** readImageFile + greySquare. */
export function loadGreyImage(path: string, o: { size?: number; invert?: boolean | "auto" } = {}): GreyImage {
  return greySquare(readImageFile(path), o);
}
