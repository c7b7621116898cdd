// Emitted element-wise parts of the fused attention kernels (the products run on tgemm, gen-tiles.ts). Scores are
// in base-2 units: log2(e) is folded into the query scale and the additive mask, so softmax uses exp2.
// Forward tiles are query-major in lanes (Sᵀ: keys × BQ, one lane per query); backward tiles key-major (S: BQ × keys).
//   fwd_softmax(ST, nk, bq, m, l, alpha, rk, j0, thr, invKeep, cm)
//       online softmax over the nk key rows of Sᵀ: m' = max(m, colmax), alpha = 2^(m − m'), P = 2^(S − m') in place,
//       l = l·alpha + colsum P; rk ≠ 0: dropout with row keys rk[i] (P̃ = keep ? P/(1−p) : 0, l uses P);
//       cm ≠ 0: m' was already found (by tgemm's column maxima) and is read from cm
//   causal_t(ST, bq, nk, q0, j0)             Sᵀ[j, i] = −inf where key j0+j > query q0+i
//   band_t(ST, bq, nk, q0, j0, lo, hi)       Sᵀ[j, i] = −inf where key j0+j < q0+i + lo or > q0+i + hi (sliding window)
//   mask_t(ST, bq, M, ldm, nq, nk, factor)   Sᵀ[j, i] += factor·M[i, j]
//   fwd_finalize(OT, bq, dv, nq, l, O, ldo)  O[i, d] = Oᵀ[d, i] / l[i] (0 where l = 0)
//   bwd_ds(...)                              P, P̃ and dS of one (query block × key block) tile, see below
//   rows_dot(a, b, out, rows, n)             out[r] = Σ a[r, :]·b[r, :]
//   axpy(x, y, n, s)                         y += s·x
import { F32, F32x4, I32, I32x4, ModuleBuilder, V128, f32, get, i32, select, set, v128, type Expr, type FuncBuilder } from "./emit.js";
import { emitTranspose4 } from "./gen-gemm.js";
import { hsum, splatConst as sp, vexp2 } from "./simd-math.js";
import { madd } from "./tile.js";
import { negInf4, rowLoop, setZero } from "./row-loop.js";

const LOG2E = Math.LOG2E;

/** lowbias32 mix of each lane (the dropout hash of dropout-hash.ts). */
function mix32(f: FuncBuilder, x: Expr): Expr {
  const t = f.local(v128);
  f.emit(set(t, x));
  f.emit(set(t, V128.xor(get(t), I32x4.shru(get(t), I32.const(16)))));
  f.emit(set(t, I32x4.mul(get(t), I32x4.splat(I32.const(0x7feb352d)))));
  f.emit(set(t, V128.xor(get(t), I32x4.shru(get(t), I32.const(15)))));
  f.emit(set(t, I32x4.mul(get(t), I32x4.splat(I32.const(0x846ca68b | 0)))));
  f.emit(set(t, V128.xor(get(t), I32x4.shru(get(t), I32.const(16)))));
  return get(t);
}

const lane = (): Expr => V128.constI32(0, 1, 2, 3);
const at = (base: Expr, idx: Expr, shift = 2): Expr => I32.add(base, I32.shl(idx, I32.const(shift)));

function addForward(m: ModuleBuilder): void {
  m.func("fwd_softmax", [i32, i32, i32, i32, i32, i32, i32, i32, i32, f32, i32], [], (f, ST, nk, bq, mP, lP, aP, rk, j0, thr, invKeep, cm) => {
    const v = f.local(i32), j = f.local(i32), ps = f.local(i32), ld = f.local(i32);
    const mx = f.local(v128), ms = f.local(v128), sum = f.local(v128), rkv = f.local(v128), keepv = f.local(v128), ik = f.local(v128);
    f.emit(set(ld, I32.shl(get(bq), I32.const(2))), set(ik, F32x4.splat(get(invKeep))));
    f.for(v, I32.const(0), get(bq), 4, () => {
      f.if(get(cm), () => f.emit(set(mx, V128.load(at(get(cm), get(v))))), () => {
        f.emit(set(mx, V128.load(at(get(mP), get(v)))));
        f.emit(set(ps, at(get(ST), get(v))));
        f.for(j, I32.const(0), get(nk), 1, () => {
          f.emit(set(mx, F32x4.pmax(get(mx), V128.load(get(ps)))), set(ps, I32.add(get(ps), get(ld))));
        });
      });
      // rows with every key masked so far keep P = 0 and no NaN: subtract 0 instead of −inf
      f.emit(set(ms, V128.andnot(get(mx), F32x4.eq(get(mx), negInf4()))));
      const al = vexp2(f, F32x4.sub(V128.load(at(get(mP), get(v))), get(ms)));
      f.emit(V128.store(at(get(aP), get(v)), get(al)), V128.store(at(get(mP), get(v)), get(mx)));
      setZero(f, sum);
      f.emit(set(ps, at(get(ST), get(v))));
      f.if(I32.eqz(get(rk)), () => {
        f.for(j, I32.const(0), get(nk), 1, () => {
          const p = vexp2(f, F32x4.sub(V128.load(get(ps)), get(ms)));
          f.emit(set(sum, F32x4.add(get(sum), get(p))), V128.store(get(ps), get(p)), set(ps, I32.add(get(ps), get(ld))));
        });
      }, () => {
        f.emit(set(rkv, V128.load(at(get(rk), get(v)))));
        f.for(j, I32.const(0), get(nk), 1, () => {
          const p = vexp2(f, F32x4.sub(V128.load(get(ps)), get(ms)));
          f.emit(set(sum, F32x4.add(get(sum), get(p))));   // the normaliser uses the weights before dropout
          const h = mix32(f, V128.xor(get(rkv), I32x4.splat(I32.add(get(j0), get(j)))));
          f.emit(set(keepv, I32x4.ge(I32x4.shru(h, I32.const(8)), I32x4.splat(get(thr)))));
          f.emit(V128.store(get(ps), V128.and(F32x4.mul(get(p), get(ik)), get(keepv))), set(ps, I32.add(get(ps), get(ld))));
        });
      });
      const pl = at(get(lP), get(v));
      f.emit(V128.store(pl, madd(get(sum), V128.load(at(get(lP), get(v))), get(al))));
    });
  });

  m.func("causal_t", [i32, i32, i32, i32, i32], [], (f, ST, bq, nk, q0, j0) => {
    const j = f.local(i32), v = f.local(i32), ps = f.local(i32), jj = f.local(v128), s = f.local(v128);
    f.emit(set(ps, get(ST)));
    f.for(j, I32.const(0), get(nk), 1, () => {
      f.emit(set(jj, I32x4.splat(I32.add(get(j0), get(j)))));
      f.for(v, I32.const(0), get(bq), 4, () => {
        const qi = I32x4.add(I32x4.splat(I32.add(get(q0), get(v))), lane());
        f.emit(set(s, V128.load(at(get(ps), get(v)))));
        f.emit(V128.store(at(get(ps), get(v)), V128.bitselect(negInf4(), get(s), I32x4.lt(qi, get(jj)))));
      });
      f.emit(set(ps, at(get(ps), get(bq))));
    });
  });

  // sliding window: Sᵀ[j, i] = −inf where key j0+j < query q0+i + lo or > q0+i + hi
  m.func("band_t", [i32, i32, i32, i32, i32, i32, i32], [], (f, ST, bq, nk, q0, j0, lo, hi) => {
    const j = f.local(i32), v = f.local(i32), ps = f.local(i32), jj = f.local(v128), s = f.local(v128), qi = f.local(v128);
    f.emit(set(ps, get(ST)));
    f.for(j, I32.const(0), get(nk), 1, () => {
      f.emit(set(jj, I32x4.splat(I32.add(get(j0), get(j)))));
      f.for(v, I32.const(0), get(bq), 4, () => {
        f.emit(set(qi, I32x4.add(I32x4.splat(I32.add(get(q0), get(v))), lane())));
        f.emit(set(s, V128.load(at(get(ps), get(v)))));
        const out = V128.or(I32x4.lt(get(jj), I32x4.add(get(qi), I32x4.splat(get(lo)))), I32x4.gt(get(jj), I32x4.add(get(qi), I32x4.splat(get(hi)))));
        f.emit(V128.store(at(get(ps), get(v)), V128.bitselect(negInf4(), get(s), out)));
      });
      f.emit(set(ps, at(get(ps), get(bq))));
    });
  });

  m.func("mask_t", [i32, i32, i32, i32, i32, i32, f32], [], (f, ST, bq, M, ldm, nq, nk, factor) => {
    const i = f.local(i32), j = f.local(i32), pm = f.local(i32), q = f.local(i32);
    f.for(i, I32.const(0), get(nq), 1, () => {
      f.emit(set(pm, I32.add(get(M), I32.mul(get(i), get(ldm)))));
      f.for(j, I32.const(0), get(nk), 1, () => {
        f.emit(set(q, at(get(ST), I32.add(I32.mul(get(j), get(bq)), get(i)))));
        f.emit(F32.store(get(q), F32.add(F32.load(get(q)), F32.mul(get(factor), F32.load(at(get(pm), get(j)))))));
      });
    });
  });

  m.func("fwd_finalize", [i32, i32, i32, i32, i32, i32, i32], [], (f, OT, bq, dv, nq, lP, O, ldo) => {
    const i = f.local(i32), d = f.local(i32), po = f.local(i32), l = f.local(f32), inv = f.local(f32);
    const i4 = f.local(i32), d4 = f.local(i32), pt = f.local(i32), lv = f.local(v128), iv = f.local(v128);
    const ivs = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)], vt = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
    f.emit(set(i4, I32.and(get(nq), I32.const(-4))), set(d4, I32.and(get(dv), I32.const(-4))));
    // 4 rows at a time: 4×4 blocks of Oᵀ transposed, each row times its 1/l (0 where l ≤ 0, NaN stays NaN)
    f.for(i, I32.const(0), get(i4), 4, () => {
      f.emit(set(lv, V128.load(at(get(lP), get(i)))));
      f.emit(set(iv, V128.andnot(F32x4.div(sp(1), get(lv)), F32x4.le(get(lv), sp(0)))));
      for (let r = 0; r < 4; r++) f.emit(set(ivs[r], V128.shuffle32(get(iv), get(iv), [r, r, r, r])));
      f.for(d, I32.const(0), get(d4), 4, () => {
        f.emit(set(pt, at(get(OT), I32.add(I32.mul(get(d), get(bq)), get(i)))));
        emitTranspose4(f, [0, 1, 2, 3].map((k) => V128.load(I32.add(get(pt), I32.shl(I32.mul(I32.const(k), get(bq)), I32.const(2))))), vt);
        for (let r = 0; r < 4; r++) {
          f.emit(V128.store(at(I32.add(get(O), I32.mul(I32.add(get(i), I32.const(r)), get(ldo))), get(d)), F32x4.mul(get(ivs[r]), get(vt[r]))));
        }
      });
    });
    // the rest element by element: columns past d4 of the first i4 rows, every column of the last rows
    f.for(i, I32.const(0), get(nq), 1, () => {
      f.emit(set(l, F32.load(at(get(lP), get(i)))));
      f.emit(set(inv, F32.div(F32.const(1), get(l))));
      f.if(F32.le(get(l), F32.const(0)), () => f.emit(set(inv, F32.const(0))));
      f.emit(set(po, I32.add(get(O), I32.mul(get(i), get(ldo)))));
      f.for(d, select(get(d4), I32.const(0), I32.lt(get(i), get(i4))), get(dv), 1, () => {
        f.emit(F32.store(at(get(po), get(d)), F32.mul(get(inv), F32.load(at(get(OT), I32.add(I32.mul(get(d), get(bq)), get(i)))))));
      });
    });
  });
}

function addBackward(m: ModuleBuilder): void {
  // One (query block × key block) tile, key-major in lanes (row i = query i0+i, lane = key j0+j):
  //   x = S·qscale, or −inf where colNeg[j] is (+ MT·log2e) (causal: −inf for j0+j > i0+i),  P = 2^(x − lse2[i])
  //   probsOnly: PD = P.  Else with z = dropout keep·1/(1−p):  PD = P·z,  S = P·(dP·z − delta[i])·scale
  //   band: −inf for keys outside the sliding window, j < i + lo or j > i + hi
  // (S, dP, PD, bk, nq, lse2, delta, qscale, scale, colNeg, causal, i0, j0, MT, rk, thr, invKeep, probsOnly, band, lo, hi)
  m.func("bwd_ds", [i32, i32, i32, i32, i32, i32, i32, f32, f32, i32, i32, i32, i32, i32, i32, i32, f32, i32, i32, i32, i32], [],
    (f, S, dP, PD, bk, nq, lse2, delta, qscale, scale, colNeg, causal, i0, j0, MT, rk, thr, invKeep, probsOnly, band, lo, hi) => {
      const i = f.local(i32), v = f.local(i32), off = f.local(i32), row = f.local(i32);
      const L2 = f.local(v128), dl = f.local(v128), x = f.local(v128), keep = f.local(v128), dpv = f.local(v128);
      const qs = f.local(v128), sc = f.local(v128), ik = f.local(v128), rkv = f.local(v128), cn = f.local(v128);
      f.emit(set(qs, F32x4.splat(get(qscale))), set(sc, F32x4.splat(get(scale))), set(ik, F32x4.splat(get(invKeep))));
      f.for(i, I32.const(0), get(nq), 1, () => {
        f.emit(set(L2, V128.loadSplat32(at(get(lse2), get(i)))), set(dl, V128.loadSplat32(at(get(delta), get(i)))));
        f.emit(set(row, I32.mul(get(i), get(bk))));
        f.if(get(rk), () => f.emit(set(rkv, V128.loadSplat32(at(get(rk), get(i))))));
        f.for(v, I32.const(0), get(bk), 4, () => {
          f.emit(set(off, I32.shl(I32.add(get(row), get(v)), I32.const(2))));
          // padded columns are replaced by −inf, not added to: a NaN key there must not reach the weights
          f.emit(set(cn, V128.load(at(get(colNeg), get(v)))));
          f.emit(set(x, V128.bitselect(get(cn), F32x4.mul(V128.load(I32.add(get(S), get(off))), get(qs)), F32x4.eq(get(cn), negInf4()))));
          f.if(get(MT), () => f.emit(set(x, F32x4.add(get(x), F32x4.mul(V128.load(I32.add(get(MT), get(off))), sp(LOG2E))))));
          f.if(get(causal), () => {
            const jv = I32x4.add(I32x4.splat(I32.add(get(j0), get(v))), lane());
            f.emit(set(x, V128.bitselect(negInf4(), get(x), I32x4.gt(jv, I32x4.splat(I32.add(get(i0), get(i)))))));
          });
          f.if(get(band), () => {   // sliding window: −inf for keys j < i + lo or j > i + hi
            const jv = I32x4.add(I32x4.splat(I32.add(get(j0), get(v))), lane());
            const row = I32.add(get(i0), get(i));
            f.emit(set(x, V128.bitselect(negInf4(), get(x), V128.or(I32x4.lt(jv, I32x4.splat(I32.add(row, get(lo)))),
              I32x4.gt(jv, I32x4.splat(I32.add(row, get(hi))))))));
          });
          const p = vexp2(f, F32x4.sub(get(x), get(L2)));
          f.if(get(probsOnly), () => f.emit(V128.store(I32.add(get(PD), get(off)), get(p))), () => {
            f.emit(set(dpv, V128.load(I32.add(get(dP), get(off)))));
            f.if(get(rk), () => {
              const h = mix32(f, V128.xor(get(rkv), I32x4.add(I32x4.splat(I32.add(get(j0), get(v))), lane())));
              f.emit(set(keep, I32x4.ge(I32x4.shru(h, I32.const(8)), I32x4.splat(get(thr)))));
              f.emit(V128.store(I32.add(get(PD), get(off)), V128.and(F32x4.mul(get(p), get(ik)), get(keep))));
              f.emit(set(dpv, V128.and(F32x4.mul(get(dpv), get(ik)), get(keep))));
            }, () => f.emit(V128.store(I32.add(get(PD), get(off)), get(p))));
            f.emit(V128.store(I32.add(get(S), get(off)), F32x4.mul(F32x4.mul(get(p), F32x4.sub(get(dpv), get(dl))), get(sc))));
          });
        });
      });
    });

  m.func("rows_dot", [i32, i32, i32, i32, i32], [], (f, a, b, out, rows, n) => {
    const r = f.local(i32), j = f.local(i32), pa = f.local(i32), pb = f.local(i32), s = f.local(v128);
    f.for(r, I32.const(0), get(rows), 1, () => {
      f.emit(set(pa, at(get(a), I32.mul(get(r), get(n)))), set(pb, at(get(b), I32.mul(get(r), get(n)))));
      setZero(f, s);
      rowLoop(f, j, get(n), (io) => f.emit(set(s, F32x4.add(get(s), io.acc(F32x4.mul(io.ld(get(pa)), io.ld(get(pb))))))));
      const t = hsum(f, get(s));
      f.emit(F32.store(at(get(out), get(r)), F32x4.extract(get(t), 0)));
    });
  });

  m.func("axpy", [i32, i32, i32, f32], [], (f, x, y, n, s) => {
    const j = f.local(i32), sv = f.local(v128);
    f.emit(set(sv, F32x4.splat(get(s))));
    rowLoop(f, j, get(n), (io) => f.emit(io.st(get(y), madd(io.ld(get(y)), get(sv), io.ld(get(x))))));
  });
}

export function addAttentionKernels(m: ModuleBuilder): void {
  addForward(m);
  addBackward(m);
}
