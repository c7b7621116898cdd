// Node-only safetensors file I/O: reading with path-annotated errors, and crash-safe (atomic) writing.
//
// Atomic write protocol: write to a fresh temp file in the target's directory, fsync it, rename it over the
// target (atomic on POSIX within one filesystem), then fsync the directory so the rename itself is durable.
// At any crash point `path` holds either the complete old file or the complete new one, never a prefix.

import { randomBytes } from "node:crypto";
import { lstat, open, readdir, readlink, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { parseSafetensors, serializeSafetensors, SafetensorsError, type ParseOptions, type StTensor } from "../io/safetensors.js";
import { FileReadError, readSafetensorsBytesSync } from "./read-file.js";

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

/**
 * Read and validate a safetensors file; every error message names `path`. Only regular files, and only the bytes the
 * header declares (see readSafetensorsBytesSync).
 */
export async function readSafetensorsFile(path: string, opts: ParseOptions = {}): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string> }> {
  return readSafetensorsFileSync(path, opts);
}

/** readSafetensorsFile, synchronously (e.g. for a model config's `init` checkpoint). */
export function readSafetensorsFileSync(path: string, opts: ParseOptions = {}): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  let buf: Uint8Array;
  try {
    buf = readSafetensorsBytesSync(path);
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(e instanceof FileReadError ? e.message : `cannot read safetensors file ${path}: ${errMessage(e)}`);
  }
  try {
    return parseSafetensors(buf, opts);
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

/**
 * The file a write to `path` must replace: `path` itself, or — when it is a symbolic link — the file the link points
 * to (renaming over the link would replace the link with a regular file). An existing target that is not a regular
 * file (a device such as /dev/full, a FIFO, a directory) is refused: renaming over it would replace the node itself.
 */
export async function atomicWriteTarget(path: string): Promise<string> {
  let target = resolve(path);
  for (let hops = 0; ; hops++) {
    let st;
    try {
      st = await lstat(target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return target; // a new file (or a dangling link's target)
      throw e;
    }
    if (st.isSymbolicLink()) {
      if (hops >= 40) throw new Error(`refusing to write ${path}: too many levels of symbolic links`);
      try {
        target = await realpath(target); // resolves the whole chain when it ends at an existing file
      } catch {
        target = resolve(dirname(target), await readlink(target)); // dangling: follow one hop and look again
      }
      continue;
    }
    if (!st.isFile()) {
      const what = st.isDirectory() ? "a directory" : st.isCharacterDevice() ? "a character device" : st.isBlockDevice() ? "a block device"
        : st.isFIFO() ? "a FIFO (named pipe)" : st.isSocket() ? "a socket" : "not a regular file";
      throw new Error(`refusing to write ${path}${target !== resolve(path) ? ` (a link to ${target})` : ""}: it is ${what}, not a regular file; choose a file path`);
    }
    return target;
  }
}

/** Whether a process with this id exists (EPERM: it does, owned by another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function tempPattern(base: string): RegExp {
  return new RegExp(`^\\.${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.tmp-(\\d+)-[0-9a-f]{12}$`);
}

/**
 * Remove temp files of earlier writes of the same target whose writer process is gone (killed mid-save: no code of
 * its own could clean up). Temp files of live processes, including this one, are left alone. Returns the removed names.
 */
export async function removeStaleTempFiles(target: string): Promise<string[]> {
  const dir = dirname(target), re = tempPattern(basename(target)), removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed; // the write itself will report an unusable directory
  }
  for (const name of names) {
    const m = re.exec(name);
    if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    try {
      await unlink(join(dir, name));
      removed.push(name);
    } catch { /* another writer removed it first */ }
  }
  return removed;
}

/** Atomically replace `path` with `bytes` (see the protocol at the top of this file). */
export async function writeFileAtomic(path: string, bytes: Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const target = await atomicWriteTarget(path);
  const dir = dirname(target);
  await removeStaleTempFiles(target);
  const tmp = join(dir, `.${basename(target)}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  let mode = opts.mode;
  if (mode === undefined) {
    try {
      mode = (await stat(target)).mode & 0o777;
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
    await rename(tmp, target);
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
