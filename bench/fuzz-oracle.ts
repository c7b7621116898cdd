// The fuzz suite's judge of "structurally invalid": written apart from the library (its own JSON parser, node:crypto,
// node:zlib), so that a loader that accepts a file this says is invalid is a real silent acceptance, not the same bug
// agreeing with itself. Each function returns null for a structurally valid file, or the first reason it is not.
//
// Definitions (also in README.md, "Reliability"):
//  safetensors — 8-byte little-endian header length N <= 1e8; 8 + N <= size; header is UTF-8 JSON (RFC 8259) holding one
//    object, nested at most 64 deep, with no key twice in any object; "__metadata__" (optional) maps strings to strings;
//    every other key is a tensor {dtype in F64 I64 F32 I32 F16 BF16 I16 I8 U8 BOOL, shape: non-negative integers,
//    data_offsets: [b, e] integers with b <= e}; (e − b) = prod(shape) × itemsize; sorted by offset the ranges tile the
//    data section exactly (no gap, overlap or trailing byte), so the file is exactly 8 + N + the declared data size.
//    When __metadata__ holds "attnflow.integrity", every tensor's dtype, shape, offsets and SHA-256 and every metadata
//    value's SHA-256 must match it.
//  attnflow checkpoint — a valid safetensors file whose offsets are multiples of the item size, metadata "format" is
//    "attnflow-checkpoint-v1", "task" is non-empty, "config" is a JSON object and trainer/metrics/optimizer/history (when
//    present) are JSON, with trainer/metrics/optimizer of the shapes stateInvalid() spells out; and, for loaders that build the model, the tensor names and shapes are the seed's whenever task
//    and config are the seed's. A legacy checkpoint (no integrity record) whose config text was edited is "unjudged":
//    the config rules are the library's own range checks, which this file does not duplicate; such cases count only
//    towards crashes and hangs.
//  PNG — signature; chunks with lengths inside the file and correct CRC-32 up to IEND; IHDR first (13 bytes, size within
//    16384 per side and 25 megapixels, a valid bit depth for the colour type, methods 0, not interlaced: interlaced files
//    are valid PNG but unsupported, and must be refused); no unknown critical chunk; a palette image has PLTE; the IDAT
//    stream inflates to exactly height × (1 + row bytes); every row's filter type is 0..4.
//  PNM — P2/P3/P5/P6; width, height, maxval as decimal numbers of at most 9 digits ('#' comments between them), the same
//    size limits, maxval 1..65535; binary: one whitespace byte, then at least the raster's bytes; ASCII: that many decimal
//    samples; every sample <= maxval.
//  tokenizer JSON — JSON.parse accepts it; an object with format "attnflow.tokenizer", version 1, kind "word" | "char",
//    lowercase boolean, tokens an array of distinct strings whose first six are the special tokens.
import { createHash } from "node:crypto";
import { inflateSync } from "node:zlib";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const MAX_DEPTH = 64;

/** A strict RFC 8259 parser that also refuses duplicate keys and nesting deeper than MAX_DEPTH. Throws a string. */
export function strictJson(text: string): Json {
  let i = 0;
  const ws = () => { while (i < text.length && " \t\n\r".includes(text[i])) i++; };
  const value = (depth: number): Json => {
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      if (depth >= MAX_DEPTH) throw `nesting deeper than ${MAX_DEPTH}`;
      i++;
      ws();
      if (c === "[") {
        const arr: Json[] = [];
        if (text[i] === "]") { i++; return arr; }
        for (;;) {
          arr.push(value(depth + 1));
          ws();
          if (text[i] === ",") { i++; continue; }
          if (text[i] === "]") { i++; return arr; }
          throw `expected , or ] at ${i}`;
        }
      }
      const obj: { [k: string]: Json } = Object.create(null);
      if (text[i] === "}") { i++; return obj; }
      for (;;) {
        ws();
        if (text[i] !== '"') throw `expected a key at ${i}`;
        const k = str();
        if (Object.prototype.hasOwnProperty.call(obj, k)) throw `duplicate key ${JSON.stringify(k)}`;
        ws();
        if (text[i] !== ":") throw `expected : at ${i}`;
        i++;
        obj[k] = value(depth + 1);
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; return obj; }
        throw `expected , or } at ${i}`;
      }
    }
    if (c === '"') return str();
    for (const [lit, v] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(lit, i)) { i += lit.length; return v; }
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === "") throw `unexpected character at ${i}`;
    i += m[0].length;
    return Number(m[0]);
  };
  const str = (): string => {
    let out = "";
    i++; // opening quote
    for (;;) {
      if (i >= text.length) throw "unterminated string";
      const ch = text[i++];
      if (ch === '"') return out;
      if (ch.charCodeAt(0) < 0x20) throw `control character in string at ${i - 1}`;
      if (ch !== "\\") { out += ch; continue; }
      const e = text[i++];
      const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e in simple) out += simple[e];
      else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i, i + 4))) { out += String.fromCharCode(parseInt(text.slice(i, i + 4), 16)); i += 4; }
      else throw `bad escape at ${i - 1}`;
    }
  };
  const v = value(0);
  ws();
  if (i !== text.length) throw `trailing characters at ${i}`;
  return v;
}

const ITEM: Record<string, number> = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const isObj = (x: unknown): x is { [k: string]: Json } => typeof x === "object" && x !== null && !Array.isArray(x);
const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

export interface StLayout { metadata: Record<string, string>; tensors: Map<string, { dtype: string; shape: number[]; begin: number; end: number }> }

/** Safetensors structure (see the definitions above); `layout` is filled for a valid file. */
export function safetensorsInvalid(b: Uint8Array, o: { aligned?: boolean } = {}, layout?: StLayout): string | null {
  if (b.length < 8) return "shorter than 8 bytes";
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const n = dv.getUint32(0, true), hi = dv.getUint32(4, true);
  if (hi !== 0 || n > 1e8) return "header length too large";
  if (8 + n > b.length) return "header runs past the end";
  let text: string;
  try { text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(b.subarray(8, 8 + n)); } catch { return "header not UTF-8"; }
  let h: Json;
  try { h = strictJson(text); } catch (e) { return `header JSON: ${String(e)}`; }
  if (!isObj(h)) return "header not an object";
  const dataLen = b.length - 8 - n, meta: Record<string, string> = {};
  const ranges: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [k, v] of Object.entries(h)) {
    if (k === "__metadata__") {
      if (!isObj(v)) return "__metadata__ not an object";
      for (const [mk, mv] of Object.entries(v)) { if (typeof mv !== "string") return `metadata ${mk} not a string`; meta[mk] = mv; }
      continue;
    }
    if (!isObj(v)) return `entry ${k} not an object`;
    const { dtype, shape, data_offsets: off } = v;
    if (typeof dtype !== "string" || !(dtype in ITEM)) return `entry ${k} dtype`;
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)) return `entry ${k} shape`;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)) return `entry ${k} offsets`;
    const [bg, en] = off as number[];
    if (bg > en || en > dataLen) return `entry ${k} offsets out of range`;
    const count = (shape as number[]).reduce((a, d) => a * d, 1);
    if (count * ITEM[dtype] !== en - bg) return `entry ${k} size mismatch`;
    if (o.aligned && bg % ITEM[dtype] !== 0) return `entry ${k} unaligned`;
    ranges.push({ name: k, dtype, shape: shape as number[], begin: bg, end: en });
  }
  let pos = 0;
  for (const r of [...ranges].sort((a, c) => a.begin - c.begin || a.end - c.end)) {
    if (r.begin !== pos) return "ranges do not tile the data section";
    pos = r.end;
  }
  if (pos !== dataLen) return "trailing data bytes";
  const rec = meta["attnflow.integrity"];
  if (rec !== undefined) {
    let j: unknown;
    try { j = JSON.parse(rec); } catch { return "integrity record not JSON"; }
    if (!isObj(j) || j.v !== 1 || j.algorithm !== "sha256" || !isObj(j.tensors) || !isObj(j.metadata)) return "integrity record malformed";
    const data = b.subarray(8 + n);
    if (Object.keys(j.tensors).length !== ranges.length) return "integrity: tensor set differs";
    for (const r of ranges) {
      const want = `${r.dtype} [${r.shape.join(",")}] ${r.begin} ${r.end} ${sha(data.subarray(r.begin, r.end))}`;
      if (!Object.prototype.hasOwnProperty.call(j.tensors, r.name) || j.tensors[r.name] !== want) return `integrity: tensor ${r.name} differs`;
    }
    const keys = Object.keys(meta).filter((k) => k !== "attnflow.integrity");
    if (Object.keys(j.metadata).length !== keys.length) return "integrity: metadata keys differ";
    for (const k of keys) if (j.metadata[k] !== sha(meta[k])) return `integrity: metadata ${k} differs`;
  }
  if (layout) {
    layout.metadata = meta;
    layout.tensors = new Map(ranges.map((r) => [r.name, r]));
  }
  return null;
}

export interface CheckpointSeedFacts { task: string; config: string; shapes: Map<string, number[]> }

/** attnflow checkpoint structure; "unjudged" when a legacy file's task/config text changed and the model is built. */
export function checkpointInvalid(b: Uint8Array, seed: CheckpointSeedFacts, buildsModel: boolean): string | null | "unjudged" {
  const lay: StLayout = { metadata: {}, tensors: new Map() };
  const st = safetensorsInvalid(b, { aligned: true }, lay);
  if (st) return st;
  const m = lay.metadata;
  if (m.format !== "attnflow-checkpoint-v1") return "format";
  if (!m.task) return "task";
  for (const k of ["config", "trainer", "metrics", "optimizer", "history"]) {
    if (m[k] === undefined) { if (k === "config") return "config missing"; continue; }
    try { JSON.parse(m[k]); } catch { return `${k} not JSON`; }
  }
  if (!isObj(JSON.parse(m.config))) return "config not an object";
  const state = stateInvalid(m);
  if (state) return state;
  if (!buildsModel) return null;
  if (m.task !== seed.task || m.config !== seed.config) return m["attnflow.integrity"] !== undefined ? null : "unjudged";
  const weights = [...lay.tensors.keys()].filter((k) => !k.startsWith("optimizer/"));
  if (weights.length !== seed.shapes.size) return "weight names differ from the model's";
  for (const w of weights) {
    const want = seed.shapes.get(w), got = lay.tensors.get(w)!.shape;
    if (!want || want.join() !== got.join()) return `weight ${w} name or shape differs from the model's`;
  }
  return null;
}

const nat = (x: unknown, min = 0) => typeof x === "number" && Number.isSafeInteger(x) && x >= min;
const num = (x: unknown, min: number, max: number, open = false) => typeof x === "number" && Number.isFinite(x) && (open ? x > min : x >= min) && x <= max;
const numbersOrNull = (x: unknown, nullable: boolean) => isObj(x) && Object.values(x).every((v) => num(v, -Infinity, Infinity) || (nullable && v === null));

/** trainer / metrics / optimizer metadata: the shapes `info` prints and `--resume` relies on. */
function stateInvalid(m: Record<string, string>): string | null {
  if (m.metrics !== undefined && !numbersOrNull(JSON.parse(m.metrics), true)) return "metrics not an object of numbers";
  if (m.optimizer !== undefined && !numbersOrNull(JSON.parse(m.optimizer), false)) return "optimizer scalars not numbers";
  if (m.trainer === undefined) return null;
  const t = JSON.parse(m.trainer) as Json;
  if (!isObj(t)) return "trainer not an object";
  if (!["epoch", "batchInEpoch", "globalStep", "totalSteps"].every((k) => nat(t[k]))) return "trainer counters";
  if (!num(t.seed, -(2 ** 53), 2 ** 53) || typeof t.finished !== "boolean") return "trainer seed/finished";
  if (!Array.isArray(t.rng) || !t.rng.every((x) => nat(x) && (x as number) < 2 ** 32)) return "trainer rng";
  const o = t.options;
  if (!isObj(o) || !nat(o.epochs, 1) || !nat(o.batchSize, 1) || !num(o.lr, 0, 1e6, true) || !num(o.weightDecay, 0, 1e6) ||
      !nat(o.warmupSteps) || !num(o.clipNorm, 0, 1e12) || (o.limitTrain !== undefined && !nat(o.limitTrain)) ||
      (o.limitTest !== undefined && !nat(o.limitTest)) || (o.data !== undefined && typeof o.data !== "string")) return "trainer options";
  if (!Array.isArray(t.history) || !t.history.every((h) => isObj(h) && nat(h.step) && nat(h.epoch) && (h.loss === null || num(h.loss, -Infinity, Infinity)) &&
      (h.metrics === undefined || numbersOrNull(h.metrics, true)))) return "trainer history";
  return null;
}

// ---------------------------------------------------------------------------------------------- images

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; t[n] = c; }
  return t;
})();
function crc(b: Uint8Array): number {
  let c = -1;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
export const IMAGE_LIMITS = { side: 16384, pixels: 25_000_000 };

export function pngInvalid(b: Uint8Array): string | null {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (b.length < 8 || sig.some((v, i) => b[i] !== v)) return "signature";
  const be = (o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  let pos = 8, w = 0, h = 0, depth = 0, ct = -1, plte = false, end = false;
  const idat: Uint8Array[] = [];
  while (pos < b.length) {
    if (pos + 12 > b.length) return "truncated chunk";
    const len = be(pos), type = String.fromCharCode(...b.subarray(pos + 4, pos + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) return "chunk type";
    if (len > 0x7fffffff || pos + 12 + len > b.length) return "chunk length";
    if (crc(b.subarray(pos + 4, pos + 8 + len)) !== be(pos + 8 + len)) return "CRC";
    const d = b.subarray(pos + 8, pos + 8 + len);
    if (pos === 8 && type !== "IHDR") return "IHDR not first";
    if (type === "IHDR") {
      if (len !== 13) return "IHDR length";
      w = ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0; h = ((d[4] << 24) | (d[5] << 16) | (d[6] << 8) | d[7]) >>> 0;
      depth = d[8]; ct = d[9];
      if (w < 1 || h < 1 || w > IMAGE_LIMITS.side || h > IMAGE_LIMITS.side || w * h > IMAGE_LIMITS.pixels) return "size";
      if (!(ct in DEPTHS) || !DEPTHS[ct].includes(depth)) return "depth/colour type";
      if (d[10] !== 0 || d[11] !== 0 || d[12] !== 0) return "methods/interlace";
    } else if (type === "PLTE") {
      if (len === 0 || len % 3 !== 0 || len > 768) return "PLTE";
      plte = true;
    } else if (type === "IDAT") idat.push(d);
    else if (type === "IEND") { end = true; break; }
    else if ((b[pos + 4] & 0x20) === 0) return "unknown critical chunk";
    pos += 12 + len;
  }
  if (ct < 0 || !end || !idat.length) return "missing IHDR/IDAT/IEND";
  if (ct === 3) return plte ? "palette images are not in the seeds (unjudged)" : "palette image without PLTE";
  const stride = Math.ceil((w * CHANNELS[ct] * depth) / 8), need = h * (stride + 1);
  let raw: Buffer;
  try { raw = inflateSync(Buffer.concat(idat), { maxOutputLength: need + 1 }); } catch { return "IDAT does not inflate to the image size"; }
  if (raw.length !== need) return "IDAT inflates to the wrong size";
  for (let y = 0; y < h; y++) if (raw[y * (stride + 1)] > 4) return "filter type";
  return null;
}

export function pnmInvalid(b: Uint8Array): string | null {
  const magic = String.fromCharCode(b[0] ?? 0, b[1] ?? 0);
  if (!["P2", "P3", "P5", "P6"].includes(magic)) return "magic";
  let pos = 2;
  const space = (c: number) => c === 32 || (c >= 9 && c <= 13);
  const num = (): number | null => {
    for (;;) {
      while (pos < b.length && space(b[pos])) pos++;
      if (b[pos] === 35) { while (pos < b.length && b[pos] !== 10 && b[pos] !== 13) pos++; continue; }
      break;
    }
    const s = pos;
    while (pos < b.length && b[pos] >= 48 && b[pos] <= 57) pos++;
    return pos === s || pos - s > 9 ? null : Number(String.fromCharCode(...b.subarray(s, pos)));
  };
  const w = num(), h = num(), max = num();
  if (w === null || h === null || max === null) return "header numbers";
  if (w < 1 || h < 1 || w > IMAGE_LIMITS.side || h > IMAGE_LIMITS.side || w * h > IMAGE_LIMITS.pixels) return "size";
  if (max < 1 || max > 65535) return "maxval";
  const n = w * h * (magic === "P3" || magic === "P6" ? 3 : 1);
  if (magic === "P2" || magic === "P3") {
    for (let i = 0; i < n; i++) { const v = num(); if (v === null || v > max) return "sample"; }
    return null;
  }
  if (!space(b[pos] ?? 0)) return "whitespace after maxval";
  pos++;
  const bps = max > 255 ? 2 : 1;
  if (pos + n * bps > b.length) return "raster truncated";
  for (let i = 0; i < n; i++) {
    const v = bps === 2 ? (b[pos + 2 * i] << 8) | b[pos + 2 * i + 1] : b[pos + i];
    if (v > max) return "sample > maxval";
  }
  return null;
}

export function tokenizerInvalid(text: string): string | null {
  let j: unknown;
  try { j = JSON.parse(text); } catch { return "not JSON"; }
  if (!isObj(j)) return "not an object";
  if (j.format !== "attnflow.tokenizer" || j.version !== 1 || (j.kind !== "word" && j.kind !== "char") || typeof j.lowercase !== "boolean") return "fields";
  const t = j.tokens;
  if (!Array.isArray(t) || !t.every((x) => typeof x === "string")) return "tokens";
  if (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[BOS]", "[EOS]"].some((s, i) => t[i] !== s)) return "special tokens";
  if (new Set(t).size !== t.length) return "duplicate tokens";
  return null;
}
