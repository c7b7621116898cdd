// The tile loops of fused attention, emitted so a whole query block (forward) or key block (backward) runs in one
// call — on the calling thread or on a worker executing a call list (threads.ts). The tile steps are the functions
// of gen-tiles.ts / gen-attention.ts; parameters come from a block in memory (attn-params.ts).
import { F32, I32, ModuleBuilder, call, get, i32, memoryCopy, set, type Expr, type FuncBuilder, type Local } from "./emit.js";
import { ATT_BK as BK, ATT_BQ as BQ, BWD, FWD } from "./attn-params.js";

const LOG2E = Math.LOG2E;

function paramReader(p: Local) {
  return {
    i: (field: number): Expr => I32.load(get(p), 4 * field),
    f: (field: number): Expr => F32.load(get(p), 4 * field),
  };
}

/** dst[0..n) = v (f32). */
function emitFill(f: FuncBuilder, dst: Expr, n: Expr, v: number): void {
  const q = f.local(i32), end = f.local(i32);
  f.emit(set(q, dst), set(end, I32.add(get(q), I32.shl(n, I32.const(2)))));
  f.block((done) => {
    f.brIf(done, I32.ge(get(q), get(end)));
    f.loop((again) => {
      f.emit(F32.store(get(q), F32.const(v)), set(q, I32.add(get(q), I32.const(4))));
      f.brIf(again, I32.lt(get(q), get(end)));
    });
  });
}

export function addAttentionLoops(m: ModuleBuilder): void {
  const fn = (name: string) => m.indexOf(name);
  const [tgemmRows, tgemmCols, transposeScaled, copyTile] = ["tgemm_rows", "tgemm_cols", "transpose_scaled", "copy_tile"].map(fn);
  const [fwdSoftmax, causalT, maskT, fwdFinalize, bwdDs, bandT] = ["fwd_softmax", "causal_t", "mask_t", "fwd_finalize", "bwd_ds", "band_t"].map(fn);
  const c = I32.const;

  m.func("attn_fwd_qblock", [i32], [], (f, p) => {
    const P = paramReader(p);
    const QT = f.local(i32), ST = f.local(i32), OT = f.local(i32), mP = f.local(i32), lP = f.local(i32), aP = f.local(i32), cm = f.local(i32);
    const j0 = f.local(i32), nk = f.local(i32), kEnd = f.local(i32), j = f.local(i32), pad = f.local(i32), padded = f.local(i32);
    const plain = f.local(i32), diag = f.local(i32), D = f.local(i32), Dv = f.local(i32), nq = f.local(i32), q0 = f.local(i32);
    const Tk = f.local(i32), M = f.local(i32), cut = f.local(i32);
    f.emit(set(D, P.i(FWD.D)), set(Dv, P.i(FWD.Dv)), set(nq, P.i(FWD.nq)), set(q0, P.i(FWD.q0)), set(Tk, P.i(FWD.Tk)));
    f.emit(set(M, P.i(FWD.M)), set(pad, P.i(FWD.pad)));
    f.emit(set(QT, P.i(FWD.scratch)));
    f.emit(set(ST, I32.add(get(QT), I32.mul(get(D), c(4 * BQ)))));
    f.emit(set(OT, I32.add(get(ST), c(4 * BK * BQ))));
    f.emit(set(mP, I32.add(get(OT), I32.mul(I32.max(get(Dv), c(1)), c(4 * BQ)))));
    f.emit(set(lP, I32.add(get(mP), c(4 * BQ))), set(aP, I32.add(get(lP), c(4 * BQ))), set(cm, I32.add(get(aP), c(4 * BQ))));
    f.emit(call(transposeScaled, P.i(FWD.Q), P.i(FWD.ldq), get(nq), get(D), get(QT), c(4 * BQ), c(BQ), P.f(FWD.qscale)));
    emitFill(f, get(mP), c(BQ), -Infinity);
    emitFill(f, get(lP), c(BQ), 0);
    emitFill(f, get(OT), I32.mul(get(Dv), c(BQ)), 0);
    // causal and the sliding window: key blocks wholly outside every query's reach are never visited ([kBeg, kEnd))
    f.emit(set(kEnd, P.i(FWD.kEnd)));
    f.for(j0, P.i(FWD.kBeg), get(kEnd), BK, () => {
      f.emit(set(nk, I32.min(I32.sub(get(kEnd), get(j0)), c(BK))));
      // the band cuts this tile: a key left of the last query's window or right of the first query's
      f.emit(set(cut, I32.and(I32.ne(P.i(FWD.band), c(0)), I32.or(
        I32.lt(get(j0), I32.add(I32.sub(I32.add(get(q0), get(nq)), c(1)), P.i(FWD.lo))),
        I32.gt(I32.sub(I32.add(get(j0), get(nk)), c(1)), I32.add(get(q0), P.i(FWD.hi)))))));
      f.emit(set(padded, c(0)));
      f.if(get(pad), () => f.for(j, c(0), get(nk), 1, () =>
        f.emit(set(padded, I32.or(get(padded), I32.load8u(I32.add(get(pad), I32.add(get(j0), get(j)))))))));
      f.emit(set(diag, I32.and(I32.ne(P.i(FWD.causal), c(0)), I32.gt(I32.sub(I32.add(get(j0), get(nk)), c(1)), get(q0)))));
      // tiles with nothing to mask take the new running maxima from tgemm (mode 4) instead of a second pass
      f.emit(set(plain, I32.and(I32.and(I32.and(I32.eqz(get(M)), I32.eqz(get(padded))), I32.eqz(get(diag))), I32.eqz(get(cut)))));
      f.if(get(plain), () => f.emit(memoryCopy(get(cm), get(mP), c(4 * BQ))));
      f.emit(call(tgemmRows, I32.add(P.i(FWD.K), I32.mul(get(j0), P.i(FWD.ldk))), P.i(FWD.ldk), c(4), get(QT), c(4 * BQ), get(ST), c(4 * BQ),
        get(nk), c(BQ), get(D), I32.shl(get(plain), c(2)), get(cm)));
      f.if(get(M), () => f.emit(call(maskT, get(ST), c(BQ), I32.add(get(M), I32.shl(get(j0), c(2))), P.i(FWD.ldm), get(nq), get(nk), F32.const(LOG2E))));
      f.if(get(padded), () => f.for(j, c(0), get(nk), 1, () =>
        f.if(I32.load8u(I32.add(get(pad), I32.add(get(j0), get(j)))), () => emitFill(f, I32.add(get(ST), I32.mul(get(j), c(4 * BQ))), c(BQ), -Infinity))));
      f.if(get(diag), () => f.emit(call(causalT, get(ST), c(BQ), get(nk), get(q0), get(j0))));
      f.if(get(cut), () => f.emit(call(bandT, get(ST), c(BQ), get(nk), get(q0), get(j0), P.i(FWD.lo), P.i(FWD.hi))));
      f.emit(call(fwdSoftmax, get(ST), get(nk), c(BQ), get(mP), get(lP), get(aP), P.i(FWD.rk), get(j0), P.i(FWD.thr), P.f(FWD.invKeep),
        I32.mul(get(plain), get(cm))));
      f.emit(call(tgemmCols, I32.add(P.i(FWD.V), I32.mul(get(j0), P.i(FWD.ldv))), c(4), P.i(FWD.ldv), get(ST), c(4 * BQ), get(OT), c(4 * BQ),
        get(Dv), c(BQ), get(nk), c(2), get(aP)));
    });
    f.emit(call(fwdFinalize, get(OT), c(BQ), get(Dv), get(nq), get(lP), P.i(FWD.O), P.i(FWD.ldo)));
    f.emit(memoryCopy(P.i(FWD.mOut), get(mP), I32.shl(get(nq), c(2))));
    f.emit(memoryCopy(P.i(FWD.lOut), get(lP), I32.shl(get(nq), c(2))));
  });

  m.func("attn_bwd_kblock", [i32], [], (f, p) => {
    const P = paramReader(p);
    const KT = f.local(i32), VT = f.local(i32), S = f.local(i32), dP = f.local(i32), PD = f.local(i32), MT = f.local(i32), colNeg = f.local(i32);
    const D = f.local(i32), Dv = f.local(i32), Dp = f.local(i32), j0 = f.local(i32), nk = f.local(i32), Tq = f.local(i32), M = f.local(i32);
    const pad = f.local(i32), j = f.local(i32), nq = f.local(i32), rk = f.local(i32), i = f.local(i32);
    const Q = f.local(i32), ldq = f.local(i32), dO = f.local(i32), ldo = f.local(i32);
    f.emit(set(D, P.i(BWD.D)), set(Dv, P.i(BWD.Dv)), set(Dp, P.i(BWD.Dp)), set(j0, P.i(BWD.j0)), set(nk, P.i(BWD.nk)), set(Tq, P.i(BWD.Tq)));
    f.emit(set(M, P.i(BWD.M)), set(pad, P.i(BWD.pad)), set(rk, P.i(BWD.rk)));
    f.emit(set(Q, P.i(BWD.Q)), set(ldq, P.i(BWD.ldq)), set(dO, P.i(BWD.dO)), set(ldo, P.i(BWD.ldo)));
    f.emit(set(KT, P.i(BWD.scratch)));
    f.emit(set(VT, I32.add(get(KT), I32.mul(get(D), c(4 * BK)))));
    f.emit(set(S, I32.add(get(VT), I32.mul(I32.max(get(Dv), c(1)), c(4 * BK)))));
    f.emit(set(dP, I32.add(get(S), c(4 * BQ * BK))), set(PD, I32.add(get(dP), c(4 * BQ * BK))), set(MT, I32.add(get(PD), c(4 * BQ * BK))));
    f.emit(set(colNeg, I32.add(get(MT), c(4 * BQ * BK))));
    const kRow = (base: Expr, ld: Expr) => I32.add(base, I32.mul(get(j0), ld));
    f.emit(call(transposeScaled, kRow(P.i(BWD.K), P.i(BWD.ldk)), P.i(BWD.ldk), get(nk), get(D), get(KT), c(4 * BK), c(BK), F32.const(1)));
    f.emit(call(transposeScaled, kRow(P.i(BWD.V), P.i(BWD.ldv)), P.i(BWD.ldv), get(nk), get(Dv), get(VT), c(4 * BK), c(BK), F32.const(1)));
    // colNeg[j] = −inf for key columns past nk or padded, else 0
    f.for(j, c(0), c(BK), 1, () => {
      const at = I32.add(get(colNeg), I32.shl(get(j), c(2)));
      f.emit(F32.store(at, F32.const(0)));
      f.if(I32.ge(get(j), get(nk)), () => f.emit(F32.store(at, F32.const(-Infinity))), () =>
        f.if(get(pad), () => f.if(I32.load8u(I32.add(get(pad), I32.add(get(j0), get(j)))), () => f.emit(F32.store(at, F32.const(-Infinity))))));
    });
    // mask tile columns past nk stay 0 (they meet −inf in colNeg; a stale +inf there would make NaN)
    f.if(I32.and(I32.ne(get(M), c(0)), I32.lt(get(nk), c(BK))), () => f.for(i, c(0), c(BQ), 1, () =>
      emitFill(f, I32.add(I32.add(get(MT), I32.mul(get(i), c(4 * BK))), I32.shl(get(nk), c(2))), I32.sub(c(BK), get(nk)), 0)));
    // causal / sliding window: only the query blocks [iBeg, iEnd) can see these keys
    f.for(i, P.i(BWD.iBeg), P.i(BWD.iEnd), BQ, () => {
      f.emit(set(nq, I32.min(I32.sub(get(Tq), get(i)), c(BQ))));
      const qRow = I32.add(get(Q), I32.mul(get(i), get(ldq))), oRow = I32.add(get(dO), I32.mul(get(i), get(ldo)));
      f.emit(call(tgemmRows, qRow, get(ldq), c(4), get(KT), c(4 * BK), get(S), c(4 * BK), get(nq), c(BK), get(D), c(0), c(0)));
      f.emit(call(tgemmRows, oRow, get(ldo), c(4), get(VT), c(4 * BK), get(dP), c(4 * BK), get(nq), c(BK), get(Dv), c(0), c(0)));
      f.if(get(M), () => f.emit(call(copyTile, I32.add(I32.add(get(M), I32.mul(get(i), P.i(BWD.ldm))), I32.shl(get(j0), c(2))), P.i(BWD.ldm),
        get(nq), get(nk), get(MT), c(4 * BK))));
      const i4 = I32.shl(get(i), c(2));
      f.emit(call(bwdDs, get(S), get(dP), get(PD), c(BK), get(nq), I32.add(P.i(BWD.lse2), i4), I32.add(P.i(BWD.delta), i4),
        P.f(BWD.qscale), P.f(BWD.scale), get(colNeg), P.i(BWD.causal), get(i), get(j0), I32.mul(I32.ne(get(M), c(0)), get(MT)),
        I32.mul(I32.ne(get(rk), c(0)), I32.add(get(rk), i4)), P.i(BWD.thr), P.f(BWD.invKeep), c(0), P.i(BWD.band), P.i(BWD.lo), P.i(BWD.hi)));
      f.emit(call(tgemmCols, oRow, c(4), get(ldo), get(PD), c(4 * BK), P.i(BWD.dVT), c(4 * BK), get(Dv), c(BK), get(nq), c(1), c(0)));
      f.emit(call(tgemmCols, qRow, c(4), get(ldq), get(S), c(4 * BK), P.i(BWD.dKT), c(4 * BK), get(D), c(BK), get(nq), c(1), c(0)));
      f.emit(call(tgemmRows, get(S), c(4 * BK), c(4), kRow(P.i(BWD.K), P.i(BWD.ldk)), P.i(BWD.ldk),
        I32.add(P.i(BWD.dQ), I32.mul(get(i), P.i(BWD.lddq))), P.i(BWD.lddq), get(nq), get(Dp), get(nk), c(1), c(0)));
    });
  });
}
