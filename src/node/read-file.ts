// Reading files named by users (checkpoints, images, datasets) with bounds: only regular files (a device such as
// /dev/zero, a FIFO or a directory never ends or never opens), and never more bytes than the format declares or a
// per-format limit allows. Every error names the path and says what was wrong.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { declaredDataSize, headerLength, SafetensorsError } from "../io/safetensors.js";

export class FileReadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) { super(message, options); this.name = "FileReadError"; }
}

function kindOf(st: Stats): string {
  return st.isDirectory() ? "a directory" : st.isFIFO() ? "a FIFO (named pipe)" : st.isCharacterDevice() ? "a character device"
    : st.isBlockDevice() ? "a block device" : st.isSocket() ? "a socket" : "not a regular file";
}

/** Open `path` for reading after checking it is a regular file; returns the descriptor and its size. */
export function openRegularFile(path: string, what: string): { fd: number; size: number } {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw new FileReadError(`cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isFile()) throw new FileReadError(`${what} ${path} is ${kindOf(st)}, not a regular file`);
  let fd: number;
  try {
    // O_NONBLOCK: if the path was swapped for a FIFO since the stat, open() must not wait for a writer forever.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new FileReadError(`cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
  const now = fstatSync(fd);
  if (!now.isFile()) {
    closeSync(fd);
    throw new FileReadError(`${what} ${path} is ${kindOf(now)}, not a regular file`);
  }
  return { fd, size: now.size };
}

/** Exactly `len` bytes at `pos`, or an error naming how many there were. */
function readExactly(fd: number, pos: number, len: number, path: string, what: string): Uint8Array {
  let buf: Uint8Array;
  try {
    buf = new Uint8Array(len);
  } catch (e) {
    throw new FileReadError(`${what} ${path}: cannot hold ${len} bytes in memory (${(e as Error).message})`, { cause: e });
  }
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) throw new FileReadError(`${what} ${path}: file ended after ${pos + got} bytes, expected ${pos + len} (truncated while reading?)`);
    got += n;
  }
  return buf;
}

/** A whole regular file of at most `maxBytes` bytes. */
export function readRegularFileSync(path: string, what: string, maxBytes: number): Uint8Array {
  const { fd, size } = openRegularFile(path, what);
  try {
    if (size > maxBytes) throw new FileReadError(`${what} ${path} is ${size} bytes, above the limit of ${maxBytes} bytes`);
    return readExactly(fd, 0, size, path, what);
  } finally {
    closeSync(fd);
  }
}

/**
 * The bytes of a safetensors file, read as its header declares: the 8-byte length, the header, then exactly the data
 * size the header's data_offsets declare. A file shorter or longer than declared is an error naming both sizes.
 * Structural checks of the header itself are left to parseSafetensors (which gets these bytes).
 */
export function readSafetensorsBytesSync(path: string, what = "safetensors file"): Uint8Array {
  const { fd, size } = openRegularFile(path, what);
  try {
    if (size < 8) throw new SafetensorsError(`${path}: file too short: ${size} bytes, need at least 8 for the header length`, { offset: 0 });
    let n: number;
    try {
      n = headerLength(readExactly(fd, 0, 8, path, what));
    } catch (e) {
      if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message}`, { offset: e.offset, field: e.field });
      throw e;
    }
    if (8 + n > size) {
      throw new SafetensorsError(`${path}: header length ${n} runs past end of file (file is ${size} bytes, header would end at byte ${8 + n})`, { offset: 0, field: "header_length" });
    }
    const head = readExactly(fd, 0, 8 + n, path, what);
    const data = declaredDataSize(head);
    if (data === undefined) return readExactly(fd, 0, size, path, what); // malformed header: the parser says how
    const want = 8 + n + data;
    if (size !== want) {
      throw new SafetensorsError(`${path}: file is ${size} bytes but its header declares ${want} (8 + ${n} header + ${data} data bytes): ` +
        `${size < want ? "truncated" : `${size - want} trailing bytes`}`, { offset: Math.min(size, want), field: "data" });
    }
    const out = readExactly(fd, 0, want, path, what);
    return out;
  } finally {
    closeSync(fd);
  }
}
