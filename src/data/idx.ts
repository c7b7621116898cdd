// IDX file format (the MNIST / Fashion-MNIST container). Browser-safe: works on a Uint8Array.
//
// Layout (all multi-byte integers big-endian):
//   offset 0..1   magic: two zero bytes
//   offset 2      dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
//   offset 3      ndim (number of dimensions, >= 1)
//   offset 4..    ndim uint32 sizes, then prod(dims) elements in row-major (C) order.

export type IdxDtype = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  /** Sizes, outermost first, e.g. [60000, 28, 28]. */
  dims: number[];
  /** Row-major elements, converted to native byte order. For uint8 this is a zero-copy view of the input. */
  data: IdxData;
}

const CODES: Record<number, { dtype: IdxDtype; size: number }> = {
  0x08: { dtype: "uint8", size: 1 },
  0x09: { dtype: "int8", size: 1 },
  0x0b: { dtype: "int16", size: 2 },
  0x0c: { dtype: "int32", size: 4 },
  0x0d: { dtype: "float32", size: 4 },
  0x0e: { dtype: "float64", size: 8 },
};

/** Error thrown for malformed IDX input; names the byte offset and the field. */
export class IdxFormatError extends Error {
  constructor(
    message: string,
    readonly offset: number,
    readonly field: string,
  ) {
    super(`IDX: ${message} (field '${field}' at byte offset ${offset})`);
    this.name = "IdxFormatError";
  }
}

/**
 * Parse an IDX buffer. `name` (optional) is included in error messages, e.g. a file name.
 * Rejects: wrong magic, unknown dtype code, ndim 0, truncated header, truncated or over-long body
 * (the element count must equal the product of the dims exactly).
 */
export function parseIdx(bytes: Uint8Array, name = "buffer"): IdxArray {
  const where = name === "buffer" ? "" : ` in ${name}`;
  if (bytes.length < 4) {
    throw new IdxFormatError(`truncated header${where}: need 4 bytes, file has ${bytes.length}`, bytes.length, "magic");
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const hex = [bytes[0], bytes[1]].map((b) => "0x" + b.toString(16).padStart(2, "0")).join(" ");
    const hint = bytes[0] === 0x1f && bytes[1] === 0x8b ? " — this looks gzip-compressed; gunzip it first" : "";
    throw new IdxFormatError(`bad magic${where}: expected 0x00 0x00, got ${hex}${hint}`, 0, "magic");
  }
  const code = bytes[2];
  const info = CODES[code];
  if (!info) {
    throw new IdxFormatError(`unknown dtype code 0x${code.toString(16).padStart(2, "0")}${where}`, 2, "dtype");
  }
  const ndim = bytes[3];
  if (ndim === 0) throw new IdxFormatError(`ndim is 0${where}`, 3, "ndim");
  const headerLen = 4 + 4 * ndim;
  if (bytes.length < headerLen) {
    throw new IdxFormatError(
      `truncated header${where}: ${ndim} dims need ${headerLen} header bytes, file has ${bytes.length}`,
      bytes.length,
      `dims[${Math.floor((bytes.length - 4) / 4)}]`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let d = 0; d < ndim; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    count *= size;
  }
  if (!Number.isSafeInteger(count * info.size)) {
    throw new IdxFormatError(`dims [${dims.join(", ")}] describe an impossibly large array${where}`, 4, "dims");
  }
  const expected = count * info.size;
  const actual = bytes.length - headerLen;
  if (actual !== expected) {
    const what = actual < expected ? "truncated data" : "trailing bytes after data";
    throw new IdxFormatError(
      `${what}${where}: dims [${dims.join(", ")}] x ${info.size} byte(s) (${info.dtype}) = ${expected} data bytes, found ${actual}`,
      headerLen + Math.min(actual, expected),
      "data",
    );
  }
  return { dtype: info.dtype, dims, data: readData(bytes, headerLen, count, info.dtype, view) };
}

function readData(bytes: Uint8Array, start: number, n: number, dtype: IdxDtype, view: DataView): IdxData {
  switch (dtype) {
    case "uint8":
      return bytes.subarray(start, start + n);
    case "int8":
      return new Int8Array(bytes.buffer, bytes.byteOffset + start, n);
    case "int16": {
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt16(start + 2 * i, false);
      return out;
    }
    case "int32": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt32(start + 4 * i, false);
      return out;
    }
    case "float32": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(start + 4 * i, false);
      return out;
    }
    case "float64": {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(start + 8 * i, false);
      return out;
    }
  }
}

/** Encode an array as IDX bytes (big-endian). Used by tests and to write small fixture files. */
export function encodeIdx(dtype: IdxDtype, dims: readonly number[], data: ArrayLike<number>): Uint8Array {
  const code = Number(Object.keys(CODES).find((k) => CODES[Number(k)].dtype === dtype));
  const size = CODES[code].size;
  if (dims.length === 0 || dims.length > 255) throw new RangeError(`encodeIdx: ndim must be 1..255, got ${dims.length}`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new RangeError(`encodeIdx: dims [${dims.join(", ")}] hold ${count} elements but data has ${data.length}`);
  }
  const headerLen = 4 + 4 * dims.length;
  const out = new Uint8Array(headerLen + count * size);
  const view = new DataView(out.buffer);
  out[2] = code;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) {
    const o = headerLen + i * size;
    const v = data[i];
    if (dtype === "uint8") view.setUint8(o, v);
    else if (dtype === "int8") view.setInt8(o, v);
    else if (dtype === "int16") view.setInt16(o, v, false);
    else if (dtype === "int32") view.setInt32(o, v, false);
    else if (dtype === "float32") view.setFloat32(o, v, false);
    else view.setFloat64(o, v, false);
  }
  return out;
}
