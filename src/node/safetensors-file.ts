// Node-only safetensors file I/O: reading with path-annotated errors, and crash-safe (atomic) writing.
//
// Atomic write protocol: write to a fresh temp file in the target's directory, fsync it, rename it over the
// target (atomic on POSIX within one filesystem), then fsync the directory so the rename itself is durable.
// At any crash point `path` holds either the complete old file or the complete new one, never a prefix.

import { randomBytes } from "node:crypto";
import { open, readFile, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { parseSafetensors, serializeSafetensors, SafetensorsError, type StTensor } from "../io/safetensors.js";

export type WriteFn = (fh: FileHandle, bytes: Uint8Array) => Promise<void>;

export interface AtomicWriteOptions {
  /** Writes `bytes` to the open temp file. Injectable for tests (e.g. to simulate a failure mid-write). */
  write?: WriteFn;
  /** Permission bits for a new file; defaults to the existing target's mode, else 0o644 (umask applies). */
  mode?: number;
}

/** Default writer: loop until every byte is written (a single write() may be short). */
export const writeAll: WriteFn = async (fh, bytes) => {
  let pos = 0;
  while (pos < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, pos, bytes.length - pos, pos);
    if (bytesWritten <= 0) throw new Error(`write made no progress at byte ${pos} of ${bytes.length}`);
    pos += bytesWritten;
  }
};

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Read and validate a safetensors file; every error message names `path`. */
export async function readSafetensorsFile(path: string): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string> }> {
  let buf: Uint8Array;
  try {
    const b = await readFile(path);
    buf = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw new SafetensorsError(`cannot read safetensors file ${path}: ${errMessage(e)}`);
  }
  try {
    return parseSafetensors(buf);
  } catch (e) {
    if (e instanceof SafetensorsError) {
      throw new SafetensorsError(`${path}: ${e.message}`, { offset: e.offset, field: e.field });
    }
    throw new SafetensorsError(`${path}: unexpected error while parsing: ${errMessage(e)}`);
  }
}

/** Directory fsync is unsupported on some platforms (e.g. Windows); these codes mean "not supported here". */
const DIR_SYNC_UNSUPPORTED = new Set(["EISDIR", "EPERM", "EACCES", "EINVAL", "ENOTSUP", "EBADF"]);

async function fsyncDir(dir: string): Promise<void> {
  let dh: FileHandle | undefined;
  try {
    dh = await open(dir, "r");
    await dh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code || !DIR_SYNC_UNSUPPORTED.has(code)) throw e;
  } finally {
    await dh?.close();
  }
}

/** Atomically replace `path` with `bytes` (see the protocol at the top of this file). */
export async function writeFileAtomic(path: string, bytes: Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  let mode = opts.mode;
  if (mode === undefined) {
    try {
      mode = (await stat(path)).mode & 0o777;
    } catch {
      mode = 0o644;
    }
  }
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, "wx", mode); // "wx": never clobber an existing file with the temp name
    await (opts.write ?? writeAll)(fh, bytes);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined); // absent if open() itself failed
    throw new Error(`atomic write of ${path} failed: ${errMessage(e)}`, { cause: e });
  }
  try {
    await fsyncDir(dir);
  } catch (e) {
    throw new Error(`atomic write of ${path}: file replaced but directory fsync failed: ${errMessage(e)}`, { cause: e });
  }
}

/** Serialize and atomically write a safetensors file. */
export async function writeSafetensorsFile(
  path: string,
  tensors: Iterable<[string, StTensor]> | Record<string, StTensor>,
  metadata?: Record<string, string>,
  opts?: AtomicWriteOptions,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata), opts);
}
