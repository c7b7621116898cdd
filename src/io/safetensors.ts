// safetensors codec (browser-safe: Uint8Array / DataView / TextDecoder only).
//
// File layout:
//   [0, 8)          N: u64 little-endian, byte length of the JSON header
//   [8, 8+N)        UTF-8 JSON object: { "__metadata__"?: {str: str}, name: {dtype, shape, data_offsets: [b, e]} }
//   [8+N, end)      data section; tensor `name` occupies bytes [8+N+b, 8+N+e), little-endian, C order.
// Like the reference implementation, the tensors must tile the data section exactly: sorted by offset, each
// begins where the previous ended, the first at 0 and the last ends at the end of the file (no gaps, no
// overlaps, no trailing bytes).

import {
  bfloat16ArrayToFloat32,
  float16ArrayToFloat32,
  float32ArrayToBfloat16,
  float32ArrayToFloat16,
} from "./dtype-convert.js";
import { sha256Hex } from "./sha256.js";

export type StDType = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export interface StTensor {
  dtype: StDType;
  shape: number[];
  /** Raw little-endian bytes; from the parser either a view aligned to the item size or an own copy. */
  data: Uint8Array;
}

export class SafetensorsError extends Error {
  /** Absolute byte offset in the file the problem refers to, when there is one. */
  offset?: number;
  /** Header field at fault, e.g. `tensor "w".shape` or `__metadata__`. */
  field?: string;
  constructor(message: string, opts: { offset?: number; field?: string } = {}) {
    super(message);
    this.name = "SafetensorsError";
    if (opts.offset !== undefined) this.offset = opts.offset;
    if (opts.field !== undefined) this.field = opts.field;
  }
}

/** Bytes per element of each dtype. */
export const ST_ITEMSIZE: Readonly<Record<StDType, number>> = {
  F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Same limit as the reference implementation: headers above 100 MB are refused. */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Deepest nesting of objects and arrays accepted in a header. A valid header needs 3 (root, tensor entry, shape);
 * the limit stops hostile headers (200,000 nested arrays) before JSON.parse recurses into a stack overflow.
 */
export const MAX_HEADER_DEPTH = 64;

/**
 * Metadata key of the integrity record attnflow writes into its checkpoints (serializeSafetensors with
 * `integrity: true`): each tensor's dtype, shape, data_offsets and the SHA-256 of its bytes, and the SHA-256 of every
 * other metadata value. parseSafetensors verifies it whenever it is present, so a header edited after writing (a dtype
 * flipped F16 ↔ BF16 has the same byte size and would load as garbage) or corrupted data is an error, not wrong weights.
 */
export const INTEGRITY_KEY = "attnflow.integrity";

export interface ParseOptions {
  /**
   * Require every tensor's data_offsets to be a multiple of its item size (what serializeSafetensors and the reference
   * writer produce). Off by default: older PyTorch writers left tensors unaligned, and those files are valid.
   */
  aligned?: boolean;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDType(x: unknown): x is StDType {
  return typeof x === "string" && Object.prototype.hasOwnProperty.call(ST_ITEMSIZE, x);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Product of dims, or -1 if it exceeds 2^53 - 1 (dims are already validated as safe non-negative ints). */
function elementCount(shape: readonly number[]): number {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return -1;
  }
  return n;
}

function checkShape(shape: unknown, field: string): number[] {
  if (!Array.isArray(shape)) throw new SafetensorsError(`${field} must be an array of integers, got ${describe(shape)}`, { field });
  shape.forEach((d, i) => {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError(`${field}[${i}] must be a non-negative integer dimension, got ${describe(d)}`, { field });
    }
  });
  return shape as number[];
}

function describe(x: unknown): string {
  if (x === undefined) return "undefined";
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

function addField(obj: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty so that keys like "__proto__" become plain own properties.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

type Entry = StHeaderEntry;

/** Bytes 0..8 of a file: the header length N (the header is bytes [8, 8 + N)); checked against the limit and the file size. */
export function safetensorsHeaderLength(first8: Uint8Array, size: number): number {
  if (size < 8 || first8.length < 8) {
    throw new SafetensorsError(`file too short: ${size} bytes, need at least 8 for the header length`, { offset: 0 });
  }
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const n = hi * 2 ** 32 + lo; // may be inexact above 2^53, but then it is far above the limit anyway
  if (hi !== 0 || n > MAX_HEADER_BYTES) {
    throw new SafetensorsError(`header length ${hi !== 0 ? `>= 2^32 (${n})` : n} is too large (limit ${MAX_HEADER_BYTES} bytes)`, { offset: 0, field: "header_length" });
  }
  if (8 + n > size) {
    throw new SafetensorsError(`header length ${n} runs past end of file (file is ${size} bytes, header would end at byte ${8 + n})`, { offset: 0, field: "header_length" });
  }
  return n;
}

/** One tensor of a parsed header: its bytes are [dataStart + begin, dataStart + end) of the file. */
export interface StHeaderEntry { name: string; dtype: StDType; shape: number[]; begin: number; end: number }
export interface StHeader { entries: Map<string, StHeaderEntry>; metadata: Record<string, string>; dataStart: number }

/**
 * Parse and validate only the header, given the file's first 8 + N bytes (or more) and its total size — so a large
 * checkpoint can be read tensor by tensor without holding the whole file. Same checks as parseSafetensors.
 */
export function parseSafetensorsHeader(prefix: Uint8Array, size: number, opts: ParseOptions = {}): StHeader {
  if (!(prefix instanceof Uint8Array)) throw new SafetensorsError(`parseSafetensorsHeader expects a Uint8Array, got ${typeof prefix}`);
  const n = safetensorsHeaderLength(prefix, size);
  if (prefix.length < 8 + n) throw new SafetensorsError(`parseSafetensorsHeader: got ${prefix.length} bytes, the header needs ${8 + n}`, { offset: 8, field: "header" });
  const bytes = prefix;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError(`header is not valid UTF-8 (bytes 8..${8 + n})`, { offset: 8, field: "header" });
  }
  scanHeaderStructure(bytes.subarray(8, 8 + n), 8);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`header is not valid JSON: ${(e as Error).message}`, { offset: 8, field: "header" });
  }
  if (!isPlainObject(header)) {
    throw new SafetensorsError(`header must be a JSON object, got ${Array.isArray(header) ? "an array" : describe(header)}`, { offset: 8, field: "header" });
  }

  const dataStart = 8 + n;
  const dataLen = size - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isPlainObject(raw)) {
        throw new SafetensorsError(`__metadata__ must be an object mapping strings to strings, got ${describe(raw)}`, { offset: 8, field: "__metadata__" });
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") {
          throw new SafetensorsError(`__metadata__["${k}"] must be a string, got ${describe(v)}`, { offset: 8, field: `__metadata__.${k}` });
        }
        addField(metadata, k, v);
      }
      continue;
    }
    entries.push(checkEntry(name, raw, dataLen, dataStart, opts.aligned === true));
  }

  // Tiling check: sorted by (begin, end), every tensor must start exactly where the previous one ended.
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < pos) {
      throw new SafetensorsError(
        `tensor "${e.name}" data_offsets [${e.begin}, ${e.end}] overlap tensor "${prev!.name}" [${prev!.begin}, ${prev!.end}]`,
        { offset: dataStart + e.begin, field: `tensor "${e.name}".data_offsets` });
    }
    if (e.begin > pos) {
      throw new SafetensorsError(
        `gap in data section: bytes [${pos}, ${e.begin}) before tensor "${e.name}" belong to no tensor`,
        { offset: dataStart + pos, field: `tensor "${e.name}".data_offsets` });
    }
    pos = e.end;
    prev = e;
  }
  if (pos !== dataLen) {
    throw new SafetensorsError(
      `data section has ${dataLen - pos} trailing bytes after the last tensor (tensors end at ${pos}, data section is ${dataLen} bytes)`,
      { offset: dataStart + pos, field: "data" });
  }

  const map = new Map<string, StHeaderEntry>();
  for (const e of entries) map.set(e.name, e);
  return { entries: map, metadata, dataStart };
}

export function parseSafetensors(bytes: Uint8Array, opts: ParseOptions = {}): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  if (!(bytes instanceof Uint8Array)) throw new SafetensorsError(`parseSafetensors expects a Uint8Array, got ${typeof bytes}`);
  const { entries: map, metadata, dataStart } = parseSafetensorsHeader(bytes, bytes.length, opts);
  const entries = [...map.values()];
  if (Object.prototype.hasOwnProperty.call(metadata, INTEGRITY_KEY)) verifyIntegrity(metadata, entries, bytes.subarray(dataStart), dataStart);
  const tensors = new Map<string, StTensor>();
  for (const e of entries) {
    const abs = dataStart + e.begin;
    const view = bytes.subarray(abs, dataStart + e.end);
    // Keep a zero-copy view only when typed-array views of it are legal (aligned to the item size).
    const aligned = (bytes.byteOffset + abs) % ST_ITEMSIZE[e.dtype] === 0;
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: aligned ? view : view.slice() });
  }
  return { tensors, metadata };
}

function checkEntry(name: string, raw: unknown, dataLen: number, dataStart: number, aligned: boolean): Entry {
  const f = `tensor "${name}"`;
  if (!isPlainObject(raw)) throw new SafetensorsError(`${f} must be an object {dtype, shape, data_offsets}, got ${describe(raw)}`, { offset: 8, field: f });
  for (const k of ["dtype", "shape", "data_offsets"]) {
    if (!Object.prototype.hasOwnProperty.call(raw, k)) throw new SafetensorsError(`${f} is missing "${k}"`, { offset: 8, field: `${f}.${k}` });
  }
  const dtype = raw.dtype;
  if (typeof dtype !== "string") throw new SafetensorsError(`${f}.dtype must be a string, got ${describe(dtype)}`, { offset: 8, field: `${f}.dtype` });
  if (!isDType(dtype)) {
    throw new SafetensorsError(`${f} has unknown/unsupported dtype "${dtype}" (supported: ${Object.keys(ST_ITEMSIZE).join(", ")})`, { offset: 8, field: `${f}.dtype` });
  }
  const shape = checkShape(raw.shape, `${f}.shape`);
  const off = raw.data_offsets;
  const of = `${f}.data_offsets`;
  if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0)) {
    throw new SafetensorsError(`${of} must be [begin, end] non-negative integers, got ${describe(off)}`, { offset: 8, field: of });
  }
  const [begin, end] = off as [number, number];
  if (begin > end) throw new SafetensorsError(`${of} [${begin}, ${end}] has begin > end`, { offset: 8, field: of });
  if (end > dataLen) {
    throw new SafetensorsError(`${of} [${begin}, ${end}] run past the end of the data section (${dataLen} bytes)`, { offset: 8, field: of });
  }
  const count = elementCount(shape);
  const need = count < 0 ? -1 : count * ST_ITEMSIZE[dtype];
  if (need !== end - begin) {
    throw new SafetensorsError(
      `${f} byte size mismatch: shape [${shape.join(", ")}] x ${dtype} (${ST_ITEMSIZE[dtype]} B) needs ${need < 0 ? "> 2^53" : need} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      { offset: 8, field: of });
  }
  if (aligned && begin % ST_ITEMSIZE[dtype] !== 0) {
    throw new SafetensorsError(`${of} begin ${begin} is not a multiple of the ${dtype} item size ${ST_ITEMSIZE[dtype]} (unaligned tensor, at file offset ${dataStart + begin})`,
      { offset: dataStart + begin, field: of });
  }
  return { name, dtype, shape: shape.slice(), begin, end };
}

// ------------------------------------------------------------------------------------------ header structure

const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c;

/**
 * One pass over the raw header bytes before JSON.parse: nesting deeper than MAX_HEADER_DEPTH, and a key that appears
 * twice in one object (JSON.parse silently keeps the last one, so a second "w" or a second "dtype" would win unseen),
 * are errors naming the byte offset. Structural characters are ASCII, so scanning UTF-8 bytes is exact; anything
 * else wrong with the JSON is left to JSON.parse.
 */
function scanHeaderStructure(h: Uint8Array, base: number): void {
  // One frame per open object/array: the keys seen so far (objects) and whether the next string is a key.
  const stack: { keys: Map<string, number> | null; expectKey: boolean }[] = [];
  const decoder = new TextDecoder("utf-8");
  for (let i = 0; i < h.length; i++) {
    const c = h[i];
    if (c === QUOTE) {
      const start = i;
      for (i++; i < h.length && h[i] !== QUOTE; i++) if (h[i] === BACKSLASH) i++;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        top.expectKey = false;
        let key: string;
        try { key = JSON.parse(decoder.decode(h.subarray(start, i + 1))) as string; } catch { continue; } // JSON.parse reports it
        const first = top.keys.get(key);
        if (first !== undefined) {
          const where = stack.length === 1 ? (key === "__metadata__" ? `"__metadata__"` : `tensor "${key}"`)
            : stack.length === 2 && stack[0].keys ? `key "${key}" inside one header entry` : `key "${key}"`;
          throw new SafetensorsError(`header defines ${where} twice (first at byte ${base + first}, again at byte ${base + start}); JSON readers would silently keep the last one`,
            { offset: base + start, field: stack.length === 1 ? (key === "__metadata__" ? key : `tensor "${key}"`) : key });
        }
        top.keys.set(key, start);
      }
    } else if (c === 0x7b || c === 0x5b) { // { [
      if (stack.length >= MAX_HEADER_DEPTH) {
        throw new SafetensorsError(`header nests objects/arrays deeper than ${MAX_HEADER_DEPTH} levels (at byte ${base + i}); a safetensors header needs 3`,
          { offset: base + i, field: "header" });
      }
      stack.push({ keys: c === 0x7b ? new Map() : null, expectKey: c === 0x7b });
    } else if (c === 0x7d || c === 0x5d) { // } ]
      stack.pop();
    } else if (c === COMMA) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    }
  }
}

// ------------------------------------------------------------------------------------------ integrity record

interface IntegrityRecord { v: 1; algorithm: "sha256"; tensors: Record<string, string>; metadata: Record<string, string> }

/** "DTYPE [d0,d1] begin end sha256" — one tensor's line of the record. */
function tensorLine(dtype: string, shape: readonly number[], begin: number, end: number, data: Uint8Array): string {
  return `${dtype} [${shape.join(",")}] ${begin} ${end} ${sha256Hex(data)}`;
}

const utf8 = new TextEncoder();

function integrityRecord(layout: { name: string; dtype: string; shape: readonly number[]; begin: number; data: Uint8Array }[], metadata: Record<string, string>): string {
  const rec: IntegrityRecord = { v: 1, algorithm: "sha256", tensors: {}, metadata: {} };
  for (const t of [...layout].sort((a, b) => cmp(a.name, b.name))) {
    addField(rec.tensors, t.name, tensorLine(t.dtype, t.shape, t.begin, t.begin + t.data.length, t.data));
  }
  for (const k of Object.keys(metadata).sort(cmp)) if (k !== INTEGRITY_KEY) addField(rec.metadata, k, sha256Hex(utf8.encode(metadata[k])));
  return JSON.stringify(rec);
}

function verifyIntegrity(metadata: Record<string, string>, entries: Entry[], data: Uint8Array, dataStart: number): void {
  const field = `__metadata__.${INTEGRITY_KEY}`;
  const fail = (msg: string, f = field, offset = 8): never => {
    throw new SafetensorsError(`${msg} (integrity record ${field}; the file was changed or corrupted after attnflow wrote it)`, { offset, field: f });
  };
  let rec: unknown;
  try { rec = JSON.parse(metadata[INTEGRITY_KEY]); } catch (e) { return fail(`integrity record is not valid JSON: ${(e as Error).message}`); }
  if (!isPlainObject(rec) || rec.v !== 1 || rec.algorithm !== "sha256" || !isPlainObject(rec.tensors) || !isPlainObject(rec.metadata) ||
      !Object.values(rec.tensors).every((x) => typeof x === "string") || !Object.values(rec.metadata).every((x) => typeof x === "string")) {
    return fail(`integrity record is malformed (expected {v: 1, algorithm: "sha256", tensors: {name: line}, metadata: {key: sha256}})`);
  }
  const tensors = rec.tensors as Record<string, string>, meta = rec.metadata as Record<string, string>;
  const names = new Set(entries.map((e) => e.name));
  for (const name of Object.keys(tensors)) if (!names.has(name)) fail(`tensor "${name}" is in the integrity record but missing from the header`, `tensor "${name}"`);
  for (const e of entries) {
    const f = `tensor "${e.name}"`;
    if (!Object.prototype.hasOwnProperty.call(tensors, e.name)) fail(`${f} is in the header but not in the integrity record`, f);
    const want = tensors[e.name].split(" ");
    if (want.length !== 5) fail(`integrity record line of ${f} is malformed: ${describe(tensors[e.name])}`);
    const [dtype, shape, begin, end, digest] = want;
    if (dtype !== e.dtype) fail(`${f}.dtype is ${e.dtype} in the header but was ${dtype} when written`, `${f}.dtype`);
    if (shape !== `[${e.shape.join(",")}]`) fail(`${f}.shape is [${e.shape.join(", ")}] in the header but was ${shape} when written`, `${f}.shape`);
    if (begin !== String(e.begin) || end !== String(e.end)) fail(`${f}.data_offsets are [${e.begin}, ${e.end}] in the header but were [${begin}, ${end}] when written`, `${f}.data_offsets`);
    const got = sha256Hex(data.subarray(e.begin, e.end));
    if (got !== digest) fail(`${f} data (file bytes [${dataStart + e.begin}, ${dataStart + e.end})) has SHA-256 ${got.slice(0, 16)}… but ${digest.slice(0, 16)}… when written`, `${f}.data`, dataStart + e.begin);
  }
  const keys = Object.keys(metadata).filter((k) => k !== INTEGRITY_KEY);
  for (const k of Object.keys(meta)) if (!keys.includes(k)) fail(`metadata field "${k}" is in the integrity record but missing from __metadata__`, `__metadata__.${k}`);
  for (const k of keys) {
    if (!Object.prototype.hasOwnProperty.call(meta, k)) fail(`metadata field "${k}" is not in the integrity record (added after writing)`, `__metadata__.${k}`);
    if (sha256Hex(utf8.encode(metadata[k])) !== meta[k]) fail(`metadata field "${k}" differs from what was written (SHA-256 mismatch)`, `__metadata__.${k}`);
  }
}

// ------------------------------------------------------------------------------------------ serialize

function collect(tensors: Iterable<[string, StTensor]> | Record<string, StTensor>): [string, StTensor][] {
  const list: [string, StTensor][] =
    Symbol.iterator in Object(tensors) ? Array.from(tensors as Iterable<[string, StTensor]>) : Object.entries(tensors);
  const seen = new Set<string>();
  for (const [name, t] of list) {
    const f = `tensor "${name}"`;
    if (typeof name !== "string") throw new SafetensorsError(`tensor names must be strings, got ${describe(name)}`);
    if (name === "__metadata__") throw new SafetensorsError(`"__metadata__" is reserved and cannot be a tensor name`, { field: f });
    if (seen.has(name)) throw new SafetensorsError(`duplicate tensor name "${name}"`, { field: f });
    seen.add(name);
    if (!t || !isDType(t.dtype)) throw new SafetensorsError(`${f} has unknown dtype ${describe(t?.dtype)}`, { field: `${f}.dtype` });
    checkShape(t.shape, `${f}.shape`);
    if (!(t.data instanceof Uint8Array)) throw new SafetensorsError(`${f}.data must be a Uint8Array`, { field: `${f}.data` });
    const need = elementCount(t.shape) * ST_ITEMSIZE[t.dtype];
    if (t.data.length !== need) {
      throw new SafetensorsError(`${f} has ${t.data.length} data bytes but shape [${t.shape.join(", ")}] x ${t.dtype} needs ${need}`, { field: `${f}.data` });
    }
  }
  return list;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Serialize tensors (+ optional string metadata) to safetensors bytes. Deterministic: tensors are laid out
 * by decreasing item size, then by name (like the reference implementation, so that with the 8-aligned header
 * every tensor is aligned to its item size in the file); metadata keys are sorted; header padded with spaces.
 */
export function serializeSafetensors(
  tensors: Iterable<[string, StTensor]> | Record<string, StTensor>,
  metadata?: Record<string, string>,
  opts: { integrity?: boolean } = {},
): Uint8Array {
  const list = collect(tensors).sort(([an, at], [bn, bt]) => ST_ITEMSIZE[bt.dtype] - ST_ITEMSIZE[at.dtype] || cmp(an, bn));
  const parts: string[] = [];
  if (metadata !== undefined && !isPlainObject(metadata)) throw new SafetensorsError(`metadata must be an object of strings`, { field: "__metadata__" });
  // An integrity record is only ever computed here: one copied in from another file would describe other tensors.
  if (metadata !== undefined && Object.prototype.hasOwnProperty.call(metadata, INTEGRITY_KEY)) {
    metadata = Object.fromEntries(Object.entries(metadata).filter(([k]) => k !== INTEGRITY_KEY));
  }
  if (opts.integrity) {
    let at = 0;
    const layout = list.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, begin: (at += t.data.length) - t.data.length, data: t.data }));
    const meta = metadata ?? {};
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v !== "string") throw new SafetensorsError(`metadata["${k}"] must be a string, got ${describe(v)}`, { field: `__metadata__.${k}` });
    }
    metadata = { ...meta, [INTEGRITY_KEY]: integrityRecord(layout, meta) };
  }
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(cmp);
    for (const k of keys) {
      if (typeof metadata[k] !== "string") {
        throw new SafetensorsError(`metadata["${k}"] must be a string, got ${describe(metadata[k])}`, { field: `__metadata__.${k}` });
      }
    }
    if (keys.length > 0) {
      parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(",")}}`);
    }
  }
  let offset = 0;
  for (const [name, t] of list) {
    const end = offset + t.data.length;
    parts.push(`${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_BYTES) throw new SafetensorsError(`header would be ${n} bytes, above the ${MAX_HEADER_BYTES}-byte limit`);
  const out = new Uint8Array(8 + n + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, n, true); // high word stays 0: n <= 1e8
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n); // pad with spaces
  let pos = 8 + n;
  for (const [, t] of list) {
    out.set(t.data, pos);
    pos += t.data.length;
  }
  return out;
}

// ------------------------------------------------------------------------------------------ typed arrays

type TypedCtor<T> = { new (buffer: ArrayBuffer): T };

/** Fresh, aligned copy of the tensor bytes viewed as native typed array (byte-swapped on big-endian hosts). */
function nativeCopy<T>(t: StTensor, Ctor: TypedCtor<T>, itemsize: number): T {
  // new Uint8Array(view) always copies into a fresh buffer (a Node Buffer's own slice() would return a view)
  const copy = new Uint8Array(t.data);
  if (!HOST_LE && itemsize > 1) swapBytes(copy, itemsize);
  return new Ctor(copy.buffer);
}

/** Little-endian bytes of a typed array's contents, as a fresh Uint8Array. */
function leBytes(a: ArrayBufferView, itemsize: number): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
  if (!HOST_LE && itemsize > 1) swapBytes(bytes, itemsize);
  return bytes;
}

function swapBytes(b: Uint8Array, k: number): void {
  for (let i = 0; i < b.length; i += k) b.subarray(i, i + k).reverse();
}

function label(name?: string): string {
  return name === undefined ? "tensor" : `tensor "${name}"`;
}

function checkedCount(shape: number[], len: number, what: string): void {
  checkShape(shape, `${what} shape`);
  const n = elementCount(shape);
  if (n !== len) throw new SafetensorsError(`${what}: shape [${shape.join(", ")}] has ${n} elements but data has ${len}`);
}

/** Decode any supported dtype to float32 (I64 / F64 are rounded to the nearest float32). */
export function toFloat32(t: StTensor, name?: string): Float32Array {
  switch (t.dtype) {
    case "F32": return nativeCopy(t, Float32Array, 4);
    case "F16": return float16ArrayToFloat32(nativeCopy(t, Uint16Array, 2));
    case "BF16": return bfloat16ArrayToFloat32(nativeCopy(t, Uint16Array, 2));
    case "F64": return Float32Array.from(nativeCopy(t, Float64Array, 8));
    case "I64": {
      const w = nativeCopy(t, Int32Array, 4); // (n, 2) LE words: low word unsigned, high word signed
      const out = new Float32Array(w.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = w[2 * i + 1] * 4294967296 + (w[2 * i] >>> 0);
      return out;
    }
    case "BOOL": return Float32Array.from(toBool(t, name));
    default: return Float32Array.from(toInt32(t, name));
  }
}

/** Decode an integer / BOOL tensor to int32; I64 values outside the int32 range are an error. */
export function toInt32(t: StTensor, name?: string): Int32Array {
  switch (t.dtype) {
    case "I32": return nativeCopy(t, Int32Array, 4);
    case "I16": return Int32Array.from(nativeCopy(t, Int16Array, 2));
    case "I8": return Int32Array.from(new Int8Array(t.data.buffer, t.data.byteOffset, t.data.length));
    case "U8": return Int32Array.from(t.data);
    case "BOOL": return Int32Array.from(toBool(t, name));
    case "I64": {
      const w = nativeCopy(t, Int32Array, 4); // (n, 2) words, low first
      const out = new Int32Array(w.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = w[2 * i], hi = w[2 * i + 1];
        // Fits in int32 iff the high word is the sign extension of the low word.
        if (hi !== lo >> 31) {
          const v = BigInt(hi) * 4294967296n + BigInt(lo >>> 0);
          throw new SafetensorsError(`${label(name)} (I64) element ${i} = ${v} does not fit in int32`, { field: name });
        }
        out[i] = lo;
      }
      return out;
    }
    default:
      throw new SafetensorsError(`${label(name)} has dtype ${t.dtype}, expected an integer or BOOL dtype for toInt32`, { field: name });
  }
}

/** Decode a BOOL tensor to 0/1 bytes; any other byte value is an error. */
export function toBool(t: StTensor, name?: string): Uint8Array {
  if (t.dtype !== "BOOL") throw new SafetensorsError(`${label(name)} has dtype ${t.dtype}, expected BOOL`, { field: name });
  const out = t.data.slice();
  const bad = out.findIndex((v) => v > 1);
  if (bad >= 0) throw new SafetensorsError(`${label(name)} (BOOL) element ${bad} has byte value ${out[bad]}, expected 0 or 1`, { field: name });
  return out;
}

export function fromFloat32(data: Float32Array, shape: number[], dtype: "F32" | "F16" | "BF16" = "F32"): StTensor {
  checkedCount(shape, data.length, `fromFloat32(${dtype})`);
  let bytes: Uint8Array;
  if (dtype === "F32") bytes = leBytes(data, 4);
  else if (dtype === "F16") bytes = leBytes(float32ArrayToFloat16(data), 2);
  else if (dtype === "BF16") bytes = leBytes(float32ArrayToBfloat16(data), 2);
  else throw new SafetensorsError(`fromFloat32: unsupported target dtype ${describe(dtype)} (F32, F16 or BF16)`);
  return { dtype, shape: shape.slice(), data: bytes };
}

export function fromInt32(data: Int32Array, shape: number[], dtype: "I8" | "I32" | "I64" = "I32"): StTensor {
  checkedCount(shape, data.length, `fromInt32(${dtype})`);
  if (dtype === "I8") {
    const bad = data.findIndex((v) => v < -128 || v > 127);
    if (bad >= 0) throw new SafetensorsError(`fromInt32(I8): element ${bad} = ${data[bad]} does not fit in int8`);
    return { dtype, shape: shape.slice(), data: new Uint8Array(Int8Array.from(data).buffer) };
  }
  if (dtype === "I32") return { dtype, shape: shape.slice(), data: leBytes(data, 4) };
  if (dtype !== "I64") throw new SafetensorsError(`fromInt32: unsupported target dtype ${describe(dtype)} (I32 or I64)`);
  const w = new Int32Array(2 * data.length); // (n, 2): sign-extend each value into a low/high word pair
  for (let i = 0; i < data.length; i++) {
    w[2 * i] = data[i];
    w[2 * i + 1] = data[i] >> 31;
  }
  const bytes = new Uint8Array(w.buffer);
  if (!HOST_LE) for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse(); // word-wise LE
  return { dtype, shape: shape.slice(), data: bytes };
}

/** Encode booleans; any non-zero byte becomes 1. */
export function fromBool(data: Uint8Array, shape: number[]): StTensor {
  checkedCount(shape, data.length, "fromBool");
  return { dtype: "BOOL", shape: shape.slice(), data: data.map((v) => (v !== 0 ? 1 : 0)) };
}

// ------------------------------------------------------------------------------------------ bounded reading

/**
 * The data-section size a header declares (the largest data_offsets end), from the file's first 8 + N bytes; undefined
 * when the header is too malformed to say (the full parse then reports why). File readers use it to read exactly the
 * declared bytes instead of "until end of file", which never comes for /dev/zero or a growing file.
 */
export function declaredDataSize(head: Uint8Array): number | undefined {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(head.subarray(8));
    scanHeaderStructure(head.subarray(8), 8);
    const header = JSON.parse(text) as unknown;
    if (!isPlainObject(header)) return undefined;
    let end = 0;
    for (const [name, raw] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const off = isPlainObject(raw) ? raw.data_offsets : undefined;
      if (!Array.isArray(off) || off.length !== 2 || !Number.isSafeInteger(off[1]) || off[1] < 0) return undefined;
      end = Math.max(end, off[1] as number);
    }
    return end;
  } catch {
    return undefined;
  }
}

/** Header length N from the first 8 bytes, checked against MAX_HEADER_BYTES (the same error the parser gives). */
export function headerLength(first8: Uint8Array): number {
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true), n = hi * 2 ** 32 + lo;
  if (hi !== 0 || n > MAX_HEADER_BYTES) {
    throw new SafetensorsError(`header length ${hi !== 0 ? `>= 2^32 (${n})` : n} is too large (limit ${MAX_HEADER_BYTES} bytes)`, { offset: 0, field: "header_length" });
  }
  return n;
}
