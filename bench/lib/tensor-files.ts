// Float32 tensors exchanged with child-process peers (jax-js, PyTorch) as raw little-endian files
// in one temporary folder per benchmark run; removed when the process exits.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let dir: string | null = null;
let counter = 0;
let written = new WeakMap<Float32Array, string>();
const live = new Set<string>();

function tensorDir(): string {
  if (!dir) {
    const d = mkdtempSync(join(tmpdir(), "attnflow-bench-"));
    dir = d;
    process.on("exit", () => rmSync(d, { recursive: true, force: true }));
  }
  return dir;
}

/** Write `a` once (cached by identity) and return its path. */
export function tensorFile(a: Float32Array, hint = "t"): string {
  const hit = written.get(a);
  if (hit) return hit;
  const p = join(tensorDir(), `${hint}-${counter++}.f32`);
  writeFileSync(p, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  written.set(a, p);
  live.add(p);
  return p;
}

/** A fresh path for a child to write its output into. */
export function outputPath(hint = "out"): string {
  return join(tensorDir(), `${hint}-${counter++}.f32`);
}

/** A tensor file's values (the file stays; child processes read their inputs with this). */
export function readF32File(p: string): Float32Array {
  const b = readFileSync(p);
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** A child's output file: its values, then the file is removed. */
export function readTensorFile(p: string): Float32Array {
  const out = readF32File(p);
  rmSync(p, { force: true });
  return out;
}

/** Delete every input file written so far (end of a case: the next case has new inputs). */
export function releaseTensorFiles(): void {
  for (const p of live) rmSync(p, { force: true });
  live.clear();
  written = new WeakMap();
}
