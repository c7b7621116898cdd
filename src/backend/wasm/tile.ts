// Register-blocked f32x4 micro-kernels, emitted inline: C tile (mr × 4·nv) accumulated over k in SIMD registers.
//   acc[r][v] += splat(A[r, k]) · B[k, 4v … 4v+3]
// A is read element by element (broadcast loads), so it can be any strided view: rows of a row-major matrix
// (column stride 4 bytes), columns of one (row stride 4 bytes, i.e. Aᵀ read in place), or a packed panel. B is read
// as rows of f32x4 vectors with a row stride. Constant strides become load offsets of an unrolled body; run-time
// strides cost one pointer add per step.
import { F32x4, FuncBuilder, I32, Local, V128, get, i32, set, v128, type Expr } from "./emit.js";

/** A stride in bytes: a compile-time constant or a run-time local. */
export type Stride = Local | number;

export interface TileShape {
  mr: number;        // rows of the C tile
  nv: number;        // f32x4 vectors per C row (4·nv columns)
  unroll: number;    // k steps per loop iteration when the strides allow offsets
  aRs: Stride;       // A element (r, k) at a + r·aRs + k·aCs; aCs or aRs must be a constant
  aCs: Stride;
  bLd: Stride;       // B element (k, c) at b + k·bLd + 4c
}

const sx = (s: Stride): Expr => (typeof s === "number" ? I32.const(s) : get(s));

/**
 * Code generation option of the module being built (module.ts sets it around the generators): with relaxed SIMD the
 * micro-kernel's acc + a·b is one f32x4.relaxed_madd (an FMA where the CPU has one: half the instructions of the
 * inner loop, one rounding instead of two); without it, f32x4.mul then f32x4.add (standard SIMD128 has no FMA).
 */
let relaxedMadd = false;
export function setTileCodegen(o: { relaxedMadd: boolean }): void { relaxedMadd = o.relaxedMadd; }

/** acc + a·b: one relaxed_madd when the module is built with relaxed SIMD. */
export function madd(acc: Expr, a: Expr, b: Expr): Expr {
  return relaxedMadd ? F32x4.relaxedMadd(a, b, acc) : F32x4.add(acc, F32x4.mul(a, b));
}

/** Fresh zeroed accumulators acc[r][v] (locals of f). */
export function makeAcc(f: FuncBuilder, mr: number, nv: number): Local[][] {
  return Array.from({ length: mr }, () => Array.from({ length: nv }, () => f.local(v128)));
}

/**
 * Emit the k loop: acc += A(mr × k) · B(k × 4nv) with a, b the tile's first elements (byte addresses; not
 * modified) and k the depth (an i32 expression, evaluated once).
 */
export function emitKLoop(f: FuncBuilder, s: TileShape, a: Expr, b: Expr, k: Expr, acc: Local[][]): void {
  const { mr, nv } = s;
  const aConstCs = typeof s.aCs === "number", aConstRs = typeof s.aRs === "number", bConst = typeof s.bLd === "number";
  if (!aConstCs && !aConstRs) throw new Error("emitKLoop: one of A's strides must be a constant");
  // A pointers: one per row when the row stride is run-time, else one
  const pa: Local[] = aConstRs ? [f.local(i32)] : Array.from({ length: mr }, () => f.local(i32));
  const pb = f.local(i32), kk = f.local(i32), bv = Array.from({ length: nv }, () => f.local(v128)), av = f.local(v128);
  f.emit(set(pa[0], a));
  for (let r = 1; r < pa.length; r++) f.emit(set(pa[r], I32.add(get(pa[r - 1]), sx(s.aRs))));
  f.emit(set(pb, b));
  const aOff = (r: number, u: number): [Local, number] => {
    const row = aConstRs ? (s.aRs as number) * r : 0;
    const col = aConstCs ? (s.aCs as number) * u : 0;
    return [aConstRs ? pa[0] : pa[r], row + col];
  };
  const step = (u: number) => {
    const bo = bConst ? (s.bLd as number) * u : 0;
    for (let v = 0; v < nv; v++) f.emit(set(bv[v], V128.load(get(pb), bo + 16 * v)));
    for (let r = 0; r < mr; r++) {
      const [p, o] = aOff(r, u);
      f.emit(set(av, V128.loadSplat32(get(p), o)));
      for (let v = 0; v < nv; v++) f.emit(set(acc[r][v], madd(get(acc[r][v]), get(av), get(bv[v]))));
    }
    if (!aConstCs) for (const p of pa) f.emit(set(p, I32.add(get(p), sx(s.aCs))));
    if (!bConst) f.emit(set(pb, I32.add(get(pb), sx(s.bLd))));
  };
  const advanceConst = (u: number) => {
    if (aConstCs) for (const p of pa) f.emit(set(p, I32.add(get(p), I32.const((s.aCs as number) * u))));
    if (bConst) f.emit(set(pb, I32.add(get(pb), I32.const((s.bLd as number) * u))));
  };
  const U = s.unroll;
  f.emit(set(kk, k));
  if (U > 1) {
    f.block((done) => {
      f.brIf(done, I32.lt(get(kk), I32.const(U)));
      f.loop((again) => {
        for (let u = 0; u < U; u++) step(u);
        advanceConst(U);
        f.emit(set(kk, I32.sub(get(kk), I32.const(U))));
        f.brIf(again, I32.ge(get(kk), I32.const(U)));
      });
    });
  }
  f.block((done) => {
    f.brIf(done, I32.le(get(kk), I32.const(0)));
    f.loop((again) => {
      step(0);
      advanceConst(1);
      f.emit(set(kk, I32.sub(get(kk), I32.const(1))));
      f.brIf(again, I32.gt(get(kk), I32.const(0)));
    });
  });
}

/** acc[r][v] = 0. */
export function emitZero(f: FuncBuilder, acc: Local[][]): void {
  const z = V128.constF32(0, 0, 0, 0);
  for (const row of acc) for (const a of row) f.emit(set(a, z));
}

/** acc[r][v] = C[r, 4v…] (c byte address, ldc stride), optionally ⊙ scale[4v…] (per-column factors). */
export function emitLoadC(f: FuncBuilder, acc: Local[][], c: Local, ldc: Stride, scale: Local | null): void {
  const pc = f.local(i32);
  f.emit(set(pc, get(c)));
  acc.forEach((row, r) => {
    if (r > 0) f.emit(set(pc, I32.add(get(pc), sx(ldc))));
    row.forEach((a, v) => {
      const x = V128.load(get(pc), 16 * v);
      f.emit(set(a, scale ? F32x4.mul(x, V128.load(get(scale), 16 * v)) : x));
    });
  });
}

/**
 * C[r, 4v…] = acc (optionally alpha·acc + beta·C: pass splatted v128 locals; beta null = not read; then + bias[4v…],
 * the per-column values at byte address `bias`).
 */
export function emitStoreC(f: FuncBuilder, acc: Local[][], c: Local, ldc: Stride, alpha: Local | null = null, beta: Local | null = null,
  bias: Local | null = null): void {
  const pc = f.local(i32);
  const bv = bias ? acc[0].map(() => f.local(v128)) : [];
  bv.forEach((b, v) => f.emit(set(b, V128.load(get(bias!), 16 * v))));
  f.emit(set(pc, get(c)));
  acc.forEach((row, r) => {
    if (r > 0) f.emit(set(pc, I32.add(get(pc), sx(ldc))));
    row.forEach((a, v) => {
      let x: Expr = get(a);
      if (alpha) x = F32x4.mul(x, get(alpha));
      if (beta) x = F32x4.add(x, F32x4.mul(get(beta), V128.load(get(pc), 16 * v)));
      if (bias) x = F32x4.add(x, get(bv[v]));
      f.emit(V128.store(get(pc), x, 16 * v));
    });
  });
}
