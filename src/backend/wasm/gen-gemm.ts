// Emitted kernels of the packed GEMM (Goto/BLIS scheme; the driver with the cache blocking is gemm.ts):
//   gemm_pack_a: an (mc × kc) block of op(A) → MR-row panels, k-major: panel[k·MR + r]   (rows past mc zero)
//   gemm_pack_b: a (kc × nc) block of op(B) → NR-column panels, k-major: panel[k·NR + c] (columns past nc zero)
//   gemm_macro:  C(mc × nc) = alpha·Ã·B̃ + beta·C (+ bias[col]) over all panel pairs with the MR × NR register-blocked
//                micro-kernel (beta = 0: C is not read). Edge tiles go through a scratch tile.
// All addresses and leading dimensions are in bytes.
import { F32, F32x4, I32, ModuleBuilder, V128, get, i32, f32, set, v128, select, type Expr, type FuncBuilder, type Local } from "./emit.js";
import { emitKLoop, emitStoreC, emitZero, makeAcc } from "./tile.js";

export const GEMM_UNROLL = 1;

/** Register block of the micro-kernel: mr rows × nr = 4·nv columns of C in f32x4 accumulators. */
export interface GemmShape { mr: number; nv: number; nr: number; unroll?: number }
/**
 * 2×16 for standard SIMD128 and relaxed SIMD alike: 8 accumulators, 4 B vectors and one A broadcast (+ the product
 * temporary without FMA) fit V8's 15 usable xmm registers; 8 FMA chains cover the FMA latency (2 ports × 4 cycles).
 * Against 4×8 (same accumulator count, same 6 loads per step) each micro-tile reads half the A panel bytes: the B
 * panel (16 KB at KC 256) stays in L1 while the macro kernel streams A panels past it from L2. gemm_macro on packed
 * 128 × 2304 × 256 operands, best-of CPU time, Intel Xeon (AVX-512 class) under load: SIMD128 4×8 34–36 → 2×16
 * 38–40.5 GFLOP/s; relaxed 3×12 45–46, 4×8 40–46 → 2×16 45–51. 3×12, 5×8, 6×8 and 4×12 spill or stall (28–34), and
 * unrolling k twice was slower (V8 already unrolls the loop once).
 */
export function gemmShape(_relaxed: boolean): GemmShape { return { mr: 2, nv: 4, nr: 16 }; }

/** 4×4 transpose of the vectors at p0…p3 (+off) into the four vectors out[0..3] (locals). */
export function emitTranspose4(f: FuncBuilder, rows: Expr[], out: Local[]): void {
  const t = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
  const r = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
  rows.forEach((e, i) => f.emit(set(r[i], e)));
  f.emit(set(t[0], V128.shuffle32(get(r[0]), get(r[1]), [0, 4, 1, 5])));  // a0 b0 a1 b1
  f.emit(set(t[1], V128.shuffle32(get(r[0]), get(r[1]), [2, 6, 3, 7])));  // a2 b2 a3 b3
  f.emit(set(t[2], V128.shuffle32(get(r[2]), get(r[3]), [0, 4, 1, 5])));  // c0 d0 c1 d1
  f.emit(set(t[3], V128.shuffle32(get(r[2]), get(r[3]), [2, 6, 3, 7])));  // c2 d2 c3 d3
  f.emit(set(out[0], V128.shuffle32(get(t[0]), get(t[2]), [0, 1, 4, 5])));
  f.emit(set(out[1], V128.shuffle32(get(t[0]), get(t[2]), [2, 3, 6, 7])));
  f.emit(set(out[2], V128.shuffle32(get(t[1]), get(t[3]), [0, 1, 4, 5])));
  f.emit(set(out[3], V128.shuffle32(get(t[1]), get(t[3]), [2, 3, 6, 7])));
}

/**
 * Pack into W-wide panels, k-major. Source element (w, k) (w = the panel axis: A rows / B columns) lives at
 * src + w·sw + k·sk where exactly one of sw, sk is 4 bytes (the other is the run-time leading dimension `ld`):
 *   "wk": sk = 4 (A untransposed, B transposed)     "kw": sw = 4 (A transposed, B untransposed)
 */
function addPack(m: ModuleBuilder, name: string, W: number): void {
  m.func(name, [i32, i32, i32, i32, i32, i32], [], (f, src, ld, kw, nw, kc, dst) => {
    // kw ≠ 0: sw = 4, sk = ld; else sw = ld, sk = 4.  nw = extent along the panel axis, kc = depth.
    const w0 = f.local(i32), k = f.local(i32), w = f.local(i32), base = f.local(i32), ps = f.local(i32), p = f.local(i32);
    const sw = f.local(i32), sk = f.local(i32), x = f.local(i32);
    const vt = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
    f.emit(set(sw, select(I32.const(4), get(ld), get(kw))), set(sk, select(get(ld), I32.const(4), get(kw))));
    f.for(w0, I32.const(0), get(nw), W, () => {
      // panel base = dst + (w0 / W)·kc·W·4 = dst + w0·kc·4
      f.emit(set(base, I32.add(get(dst), I32.mul(I32.mul(get(w0), get(kc)), I32.const(4)))));
      f.emit(set(ps, I32.add(get(src), I32.mul(get(w0), get(sw)))));
      // full panels: vector paths (W a multiple of 4; W = 3 only when contiguous along k, see below), else element-wise
      f.if(I32.and(I32.ge(I32.sub(get(nw), get(w0)), I32.const(W)), W % 4 === 0 || W === 2 ? I32.const(1) : W === 3 ? I32.eqz(get(kw)) : I32.const(0)), () => {
        f.if(get(kw), () => {
          // contiguous along w: each k is W/4 vector copies (W = 2: one 8-byte copy)
          f.for(k, I32.const(0), get(kc), 1, () => {
            f.emit(set(p, I32.add(get(ps), I32.mul(get(k), get(sk)))));
            for (let v = 0; v < Math.floor(W / 4); v++) f.emit(V128.store(get(base), V128.load(get(p), 16 * v), 16 * v));
            if (W === 2) f.emit(V128.store64Lane(get(base), V128.load64Zero(get(p)), 0));
            f.emit(set(base, I32.add(get(base), I32.const(4 * W))));
          });
        }, () => {
          // contiguous along k: 4×4 transposes of groups of 4 panel lines (W = 2: the two lines interleaved), then the
          // k tail one by one
          f.for(k, I32.const(0), I32.and(get(kc), I32.const(-4)), 4, () => {
            if (W === 2) {
              f.emit(set(p, I32.add(get(ps), I32.mul(get(k), I32.const(4)))));
              f.emit(set(vt[0], V128.load(get(p))), set(vt[1], V128.load(I32.add(get(p), get(sw)))));
              f.emit(V128.store(get(base), V128.shuffle32(get(vt[0]), get(vt[1]), [0, 4, 1, 5])));
              f.emit(V128.store(get(base), V128.shuffle32(get(vt[0]), get(vt[1]), [2, 6, 3, 7]), 16));
            } else if (W === 3) {
              // lines 0, 1, 2 (and 2 again) transposed; each k's 3 values stored as a 16-byte vector whose 4th lane
              // lands on the next k's first value, written by the next store (the caller leaves 4 floats of slack
              // after the last panel)
              f.emit(set(p, I32.add(get(ps), I32.mul(get(k), I32.const(4)))));
              emitTranspose4(f, [0, 1, 2, 2].map((i) => V128.load(I32.add(get(p), I32.mul(I32.const(i), get(sw))))), vt);
              for (let i = 0; i < 4; i++) f.emit(V128.store(get(base), get(vt[i]), 4 * W * i));
            } else {
              for (let g = 0; g < W / 4; g++) {
                f.emit(set(p, I32.add(I32.add(get(ps), I32.mul(I32.const(4 * g), get(sw))), I32.mul(get(k), I32.const(4)))));
                emitTranspose4(f, [0, 1, 2, 3].map((i) => V128.load(I32.add(get(p), I32.mul(I32.const(i), get(sw))))), vt);
                for (let i = 0; i < 4; i++) f.emit(V128.store(get(base), get(vt[i]), 4 * W * i + 16 * g));
              }
            }
            f.emit(set(base, I32.add(get(base), I32.const(16 * W))));
          });
          f.for(k, I32.and(get(kc), I32.const(-4)), get(kc), 1, () => {
            for (let i = 0; i < W; i++) {
              f.emit(F32.store(get(base), F32.load(I32.add(I32.add(get(ps), I32.mul(I32.const(i), get(sw))), I32.mul(get(k), I32.const(4)))), 4 * i));
            }
            f.emit(set(base, I32.add(get(base), I32.const(4 * W))));
          });
        });
      }, () => {
        // partial panel: element by element, zero past nw (select evaluates both operands: lines past nw read line
        // nw − 1 instead, never memory past the operand)
        f.for(k, I32.const(0), get(kc), 1, () => {
          f.for(w, I32.const(0), I32.const(W), 1, () => {
            f.emit(set(x, I32.add(get(w0), get(w))));
            f.emit(F32.store(I32.add(get(base), I32.shl(get(w), I32.const(2))),
              select(F32.load(I32.add(I32.add(get(src), I32.mul(I32.min(get(x), I32.sub(get(nw), I32.const(1))), get(sw))), I32.mul(get(k), get(sk)))),
                F32.const(0), I32.lt(get(x), get(nw)))));
          });
          f.emit(set(base, I32.add(get(base), I32.const(4 * W))));
        });
      });
    });
  });
}

function addMacro(m: ModuleBuilder, shape: GemmShape): void {
  const MR = shape.mr, NV = shape.nv, NR = shape.nr;
  // (pA, pB, C, ldc, mc, nc, kc, alpha, beta, tmp, bias): bias ≠ 0 adds bias[col] (column jp + c of this call) after
  // alpha·A·B + beta·C — the last depth block of a product with a bias epilogue and no activation
  m.func("gemm_macro", [i32, i32, i32, i32, i32, i32, i32, f32, f32, i32, i32], [], (f, pA, pB, C, ldc, mc, nc, kc, alpha, beta, tmp, bias) => {
    const jp = f.local(i32), ip = f.local(i32), pa = f.local(i32), pb = f.local(i32), pc = f.local(i32);
    const rows = f.local(i32), cols = f.local(i32), r = f.local(i32), c = f.local(i32), q = f.local(i32), pz = f.local(i32);
    const av = f.local(v128), bv = f.local(v128);
    const acc = makeAcc(f, MR, NV);
    f.emit(set(av, F32x4.splat(get(alpha))), set(bv, F32x4.splat(get(beta))));
    f.emit(set(pb, get(pB)));
    f.for(jp, I32.const(0), get(nc), NR, () => {
      f.emit(set(cols, I32.sub(get(nc), get(jp))));
      f.emit(set(pa, get(pA)));
      f.emit(set(pz, I32.add(get(bias), I32.shl(get(jp), I32.const(2)))));
      f.for(ip, I32.const(0), get(mc), MR, () => {
        f.emit(set(rows, I32.sub(get(mc), get(ip))));
        emitZero(f, acc);
        emitKLoop(f, { mr: MR, nv: NV, unroll: shape.unroll ?? GEMM_UNROLL, aRs: 4, aCs: 4 * MR, bLd: 4 * NR }, get(pa), get(pb), get(kc), acc);
        f.emit(set(pc, I32.add(I32.add(get(C), I32.mul(get(ip), get(ldc))), I32.shl(get(jp), I32.const(2)))));
        f.if(I32.and(I32.ge(get(rows), I32.const(MR)), I32.ge(get(cols), I32.const(NR))), () => {
          f.if(get(bias), () => f.if(F32.eq(get(beta), F32.const(0)), () => emitStoreC(f, acc, pc, ldc, av, null, pz),
            () => emitStoreC(f, acc, pc, ldc, av, bv, pz)), () =>
            f.if(F32.eq(get(beta), F32.const(0)), () => emitStoreC(f, acc, pc, ldc, av, null), () => emitStoreC(f, acc, pc, ldc, av, bv)));
        }, () => {
          emitStoreC(f, acc, tmp, 4 * NR);
          // C[r, c] = alpha·tmp[r, c] (+ beta·C[r, c]) (+ bias[c]) for the valid part
          f.for(r, I32.const(0), I32.min(get(rows), I32.const(MR)), 1, () => {
            f.for(c, I32.const(0), I32.min(get(cols), I32.const(NR)), 1, () => {
              f.emit(set(q, I32.add(I32.add(get(pc), I32.mul(get(r), get(ldc))), I32.shl(get(c), I32.const(2)))));
              const t = F32.mul(get(alpha), F32.load(I32.add(get(tmp), I32.shl(I32.add(I32.mul(get(r), I32.const(NR)), get(c)), I32.const(2)))));
              f.if(F32.eq(get(beta), F32.const(0)), () => f.emit(F32.store(get(q), t)),
                () => f.emit(F32.store(get(q), F32.add(t, F32.mul(get(beta), F32.load(get(q)))))));
              f.if(get(bias), () => f.emit(F32.store(get(q), F32.add(F32.load(get(q)), F32.load(I32.add(get(pz), I32.shl(get(c), I32.const(2))))))));
            });
          });
        });
        f.emit(set(pa, I32.add(get(pa), I32.mul(get(kc), I32.const(4 * MR)))));
      });
      f.emit(set(pb, I32.add(get(pb), I32.mul(get(kc), I32.const(4 * NR)))));
    });
  });
}

/** The GEMM kernels of a module built for standard SIMD128 or relaxed SIMD (their register block: gemmShape). */
export function addGemmKernels(m: ModuleBuilder, relaxed = false, shape = gemmShape(relaxed)): void {
  addPack(m, "gemm_pack_a", shape.mr);
  addPack(m, "gemm_pack_b", shape.nr);
  addMacro(m, shape);
}
