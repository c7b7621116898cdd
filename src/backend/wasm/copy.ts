// Moving strided matrices between JavaScript Float32Arrays and the Wasm arena, with the bounds checks the
// kernels rely on (a typed-array subarray would silently clamp a bad offset instead of failing).
import type { WasmArena } from "./arena.js";

/** Where a matrix landed in the arena: byte address and row stride in bytes. */
export interface Placed { addr: number; ld: number }

/** Check that rows × cols at `off` with row stride `ld` lies inside an array of length `len`. */
export function checkSpan(what: string, len: number, off: number, rows: number, cols: number, ld: number): void {
  if (rows === 0 || cols === 0) return;
  if (!Number.isInteger(off) || off < 0 || !Number.isInteger(ld) || (rows > 1 && ld < cols)) {
    throw new RangeError(`${what}: bad offset ${off} or row stride ${ld} (row length ${cols})`);
  }
  const end = off + (rows - 1) * ld + cols;
  if (end > len) throw new RangeError(`${what}: ${rows}×${cols} at offset ${off}, row stride ${ld} ends at ${end}, past the array's ${len} elements`);
}

/**
 * Copy rows × cols of `src` (row stride ld) into the arena. Dense or nearly dense spans go in one copy keeping
 * ld (unless `compact`); sparse ones row by row into a compact block. `padTo` > cols: rows of padTo elements, the
 * extra columns zero.
 */
export function placeMatrix(arena: WasmArena, src: Float32Array, off: number, rows: number, cols: number, ld: number,
  compact = false, padTo = cols): Placed {
  if (padTo > cols) {
    const addr = arena.allocF32(rows * padTo);
    const mem = arena.f32, base = addr >> 2;
    for (let r = 0; r < rows; r++) {
      mem.set(src.subarray(off + r * ld, off + r * ld + cols), base + r * padTo);
      mem.fill(0, base + r * padTo + cols, base + (r + 1) * padTo);
    }
    return { addr, ld: 4 * padTo };
  }
  if (rows <= 1 || ld === cols) {
    const n = rows * cols;
    const addr = arena.allocF32(n);
    arena.f32.set(src.subarray(off, off + n), addr >> 2);
    return { addr, ld: 4 * cols };
  }
  const span = (rows - 1) * ld + cols;
  if (!compact && span <= 2 * rows * cols) {
    const addr = arena.allocF32(span);
    arena.f32.set(src.subarray(off, off + span), addr >> 2);
    return { addr, ld: 4 * ld };
  }
  const addr = arena.allocF32(rows * cols);
  gatherInto(arena, addr, src, off, rows, cols, ld);
  return { addr, ld: 4 * cols };
}

/** Copy rows × cols from the arena (byte address, row stride srcLd bytes) into dst at off with row stride ld. */
export function takeMatrix(arena: WasmArena, addr: number, srcLd: number, rows: number, cols: number, dst: Float32Array, off: number, ld: number): void {
  if (rows === 0 || cols === 0) return;
  const mem = arena.f32, base = addr >> 2, sl = srcLd >> 2;
  if (rows <= 1 || (ld === cols && sl === cols)) { dst.set(mem.subarray(base, base + (rows - 1) * sl + cols), off); return; }
  for (let r = 0; r < rows; r++) dst.set(mem.subarray(base + r * sl, base + r * sl + cols), off + r * ld);
}

/** Copy rows × cols of src (row stride ld) into a compact block at an existing arena address. */
export function gatherInto(arena: WasmArena, addr: number, src: Float32Array, off: number, rows: number, cols: number, ld: number): void {
  const mem = arena.f32, base = addr >> 2;
  if (rows <= 1 || ld === cols) { mem.set(src.subarray(off, off + rows * cols), base); return; }
  for (let r = 0; r < rows; r++) mem.set(src.subarray(off + r * ld, off + r * ld + cols), base + r * cols);
}
