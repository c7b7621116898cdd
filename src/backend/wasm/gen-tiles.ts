// Emitted tile kernels shared by the attention drivers (byte addresses and strides):
//   tgemm(A, rsA, csA, B, ldb, C, ldc, m, n, k, mode, scale)
//       C (m × n) = A·B (mode 0) | C + A·B (mode 1) | C ⊙ scale[col] + A·B (mode 2); mode | 4 (with mode 0):
//       also scale[col] = max(scale[col], max_r C[r, col]) — the column maxima of the online softmax; A element (r, k) at
//       A + r·rsA + k·csA with rsA = 4 or csA = 4 (a row-major matrix or the transpose of one, read in place);
//       B row-major (k × n, row stride ldb); n a multiple of 8.
//   transpose_scaled(src, lds, rows, cols, dst, ldd, rowsPad, s)   dst[c, r] = s·src[r, c]; r ∈ [rows, rowsPad) → 0 (4×4
//       blocks through shuffles, the edges element by element)
//   copy_tile(src, lds, rows, cols, dst, ldd)                      dst[r, c] = src[r, c]
import { F32, F32x4, I32, ModuleBuilder, V128, f32, get, i32, select, set, v128, type FuncBuilder, type Local } from "./emit.js";
import { emitTranspose4 } from "./gen-gemm.js";
import { emitKLoop, emitLoadC, emitStoreC, emitZero, makeAcc, type Stride } from "./tile.js";
import { rowLoop } from "./row-loop.js";

const NV = 2, NR = 8;

function tgemmBody(f: FuncBuilder, rowsMode: boolean, p: Local[]): void {
  const [A, rsA, csA, B, ldb, C, ldc, m, n, k, mode, scale] = p;
  const i = f.local(i32), jc = f.local(i32), pa = f.local(i32), pb = f.local(i32), pc = f.local(i32), ps = f.local(i32);
  const rest = f.local(i32);
  const aRs: Stride = rowsMode ? rsA : 4, aCs: Stride = rowsMode ? 4 : csA;
  const variant = (mr: number) => {
    const acc = makeAcc(f, mr, NV);
    f.for(jc, I32.const(0), get(n), NR, () => {
      f.emit(set(pb, I32.add(get(B), I32.shl(get(jc), I32.const(2)))));
      f.emit(set(pc, I32.add(get(C), I32.shl(get(jc), I32.const(2)))));
      f.emit(set(ps, I32.add(get(scale), I32.shl(get(jc), I32.const(2)))));
      f.if(I32.eqz(I32.and(get(mode), I32.const(3))), () => emitZero(f, acc), () =>
        f.if(I32.eq(get(mode), I32.const(1)), () => emitLoadC(f, acc, pc, ldc, null), () => emitLoadC(f, acc, pc, ldc, ps)));
      emitKLoop(f, { mr, nv: NV, unroll: 1, aRs, aCs, bLd: ldb }, get(pa), get(pb), get(k), acc);
      emitStoreC(f, acc, pc, ldc);
      f.if(I32.and(get(mode), I32.const(4)), () => {
        for (let v = 0; v < NV; v++) {
          let mx = V128.load(get(ps), 16 * v);
          for (let r = 0; r < mr; r++) mx = F32x4.pmax(mx, get(acc[r][v]));
          f.emit(V128.store(get(ps), mx, 16 * v));
        }
      });
    });
  };
  f.for(i, I32.const(0), get(m), 4, () => {
    f.emit(set(pa, I32.add(get(A), rowsMode ? I32.mul(get(i), get(rsA)) : I32.shl(get(i), I32.const(2)))));
    f.emit(set(rest, I32.sub(get(m), get(i))));
    f.if(I32.ge(get(rest), I32.const(4)), () => variant(4), () =>
      f.if(I32.eq(get(rest), I32.const(3)), () => variant(3), () =>
        f.if(I32.eq(get(rest), I32.const(2)), () => variant(2), () => variant(1))));
    f.emit(set(C, I32.add(get(C), I32.shl(get(ldc), I32.const(2)))));  // C advances 4 rows
  });
}

export function addTileKernels(m: ModuleBuilder): void {
  const sig = [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32] as const;
  // two bodies: A rows contiguous (csA = 4) or A columns contiguous (rsA = 4)
  m.func("tgemm_rows", [...sig], [], (f, ...p) => tgemmBody(f, true, p));
  m.func("tgemm_cols", [...sig], [], (f, ...p) => tgemmBody(f, false, p));

  m.func("transpose_scaled", [i32, i32, i32, i32, i32, i32, i32, f32], [], (f, src, lds, rows, cols, dst, ldd, rowsPad, s) => {
    const r = f.local(i32), c = f.local(i32), pd = f.local(i32), ps = f.local(i32), r4 = f.local(i32), c4 = f.local(i32);
    const sv = f.local(v128), vt = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
    f.emit(set(sv, F32x4.splat(get(s))), set(r4, I32.and(get(rows), I32.const(-4))), set(c4, I32.and(get(cols), I32.const(-4))));
    // 4×4 blocks: four row vectors transposed into four column vectors
    f.for(c, I32.const(0), get(c4), 4, () => {
      f.for(r, I32.const(0), get(r4), 4, () => {
        f.emit(set(ps, I32.add(I32.add(get(src), I32.mul(get(r), get(lds))), I32.shl(get(c), I32.const(2)))));
        emitTranspose4(f, [0, 1, 2, 3].map((i) => V128.load(I32.add(get(ps), I32.mul(I32.const(i), get(lds))))), vt);
        f.emit(set(pd, I32.add(I32.add(get(dst), I32.mul(get(c), get(ldd))), I32.shl(get(r), I32.const(2)))));
        for (let i = 0; i < 4; i++) f.emit(V128.store(I32.add(get(pd), I32.mul(I32.const(i), get(ldd))), F32x4.mul(get(vt[i]), get(sv))));
      });
    });
    // the rest element by element (rows past r4 of the first c4 columns, every row of the last columns), then the padding
    f.for(c, I32.const(0), get(cols), 1, () => {
      f.emit(set(pd, I32.add(get(dst), I32.mul(get(c), get(ldd)))));
      f.for(r, select(get(r4), I32.const(0), I32.lt(get(c), get(c4))), get(rows), 1, () => {
        f.emit(F32.store(I32.add(get(pd), I32.shl(get(r), I32.const(2))),
          F32.mul(get(s), F32.load(I32.add(I32.add(get(src), I32.mul(get(r), get(lds))), I32.shl(get(c), I32.const(2)))))));
      });
      f.for(r, get(rows), get(rowsPad), 1, () => f.emit(F32.store(I32.add(get(pd), I32.shl(get(r), I32.const(2))), F32.const(0))));
    });
  });

  m.func("copy_tile", [i32, i32, i32, i32, i32, i32], [], (f, src, lds, rows, cols, dst, ldd) => {
    const r = f.local(i32), j = f.local(i32), ps = f.local(i32), pd = f.local(i32);
    f.for(r, I32.const(0), get(rows), 1, () => {
      f.emit(set(ps, I32.add(get(src), I32.mul(get(r), get(lds)))), set(pd, I32.add(get(dst), I32.mul(get(r), get(ldd)))));
      rowLoop(f, j, get(cols), (io) => f.emit(io.st(get(pd), io.ld(get(ps)))));
    });
  });
}

