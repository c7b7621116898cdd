// Emitted row kernels over contiguous (rows, n) arrays (byte addresses):
//   softmax_rows        y = exp(x − max) / Σ exp(x − max)                (a row of −inf gives NaN, like PyTorch)
//   lse_rows            stats[2r] = max_r, stats[2r+1] = Σ exp(x − max_r) (log-softmax: the driver takes the log)
//   sub_rows            y = (x − c[2r]) − c[2r+1]
//   softmax_bwd_rows    dx = y ⊙ (dy − Σ dy⊙y)
//   layernorm_fwd       y = (x − μ)·rstd·w + b, saves μ, rstd (w, b may be 0 = absent)
//   layernorm_bwd       dx = rstd·(g − mean g − x̂·mean(g⊙x̂)), g = dy⊙w;  dw += Σ dy⊙x̂, db += Σ dy (0 = absent)
import { F32, F32x4, I32, ModuleBuilder, V128, f32, get, i32, set, v128, type Expr, type Local } from "./emit.js";
import { hmax, hsum, splatConst as sp, vexp } from "./simd-math.js";
import { negInf4, rowLoop, setZero } from "./row-loop.js";

function rowBase(p: Local, r: Local, n: Local): Expr { return I32.add(get(p), I32.shl(I32.mul(get(r), get(n)), I32.const(2))); }

function addSoftmax(m: ModuleBuilder): void {
  m.func("softmax_rows", [i32, i32, i32, i32], [], (f, x, y, rows, n) => {
    const r = f.local(i32), j = f.local(i32), px = f.local(i32), py = f.local(i32);
    const mv = f.local(v128), sv = f.local(v128), inv = f.local(v128);
    f.for(r, I32.const(0), get(rows), 1, () => {
      f.emit(set(px, rowBase(x, r, n)), set(py, rowBase(y, r, n)));
      f.emit(set(mv, negInf4()));
      rowLoop(f, j, get(n), (io) => f.emit(set(mv, F32x4.pmax(get(mv), io.ld(get(px))))));
      const M = hmax(f, get(mv));
      setZero(f, sv);
      rowLoop(f, j, get(n), (io) => {
        const e = vexp(f, F32x4.sub(io.ld(get(px)), get(M)));
        f.emit(io.st(get(py), get(e)), set(sv, F32x4.add(get(sv), io.acc(get(e)))));
      });
      const S = hsum(f, get(sv));
      f.emit(set(inv, F32x4.div(sp(1), get(S))));
      rowLoop(f, j, get(n), (io) => f.emit(io.st(get(py), F32x4.mul(io.ld(get(py)), get(inv)))));
    });
  });

  m.func("lse_rows", [i32, i32, i32, i32], [], (f, x, stats, rows, n) => {
    const r = f.local(i32), j = f.local(i32), px = f.local(i32), mv = f.local(v128), sv = f.local(v128);
    f.for(r, I32.const(0), get(rows), 1, () => {
      f.emit(set(px, rowBase(x, r, n)), set(mv, negInf4()));
      rowLoop(f, j, get(n), (io) => f.emit(set(mv, F32x4.pmax(get(mv), io.ld(get(px))))));
      const M = hmax(f, get(mv));
      setZero(f, sv);
      rowLoop(f, j, get(n), (io) => {
        const e = vexp(f, F32x4.sub(io.ld(get(px)), get(M)));
        f.emit(set(sv, F32x4.add(get(sv), io.acc(get(e)))));
      });
      const S = hsum(f, get(sv));
      const ps = I32.add(get(stats), I32.shl(get(r), I32.const(3)));
      f.emit(F32.store(ps, F32x4.extract(get(M), 0)), F32.store(ps, F32x4.extract(get(S), 0), 4));
    });
  });

  m.func("sub_rows", [i32, i32, i32, i32, i32], [], (f, x, c, y, rows, n) => {
    // y = (x − c[2r]) − c[2r+1]: subtracting the max first keeps large logits exact
    const r = f.local(i32), j = f.local(i32), px = f.local(i32), py = f.local(i32), c0 = f.local(v128), c1 = f.local(v128);
    f.for(r, I32.const(0), get(rows), 1, () => {
      f.emit(set(px, rowBase(x, r, n)), set(py, rowBase(y, r, n)));
      const pc = I32.add(get(c), I32.shl(get(r), I32.const(3)));
      f.emit(set(c0, V128.loadSplat32(pc)), set(c1, V128.loadSplat32(pc, 4)));
      rowLoop(f, j, get(n), (io) => f.emit(io.st(get(py), F32x4.sub(F32x4.sub(io.ld(get(px)), get(c0)), get(c1)))));
    });
  });

  m.func("softmax_bwd_rows", [i32, i32, i32, i32, i32], [], (f, y, dy, dx, rows, n) => {
    const r = f.local(i32), j = f.local(i32), py = f.local(i32), pg = f.local(i32), pd = f.local(i32), sv = f.local(v128);
    f.for(r, I32.const(0), get(rows), 1, () => {
      f.emit(set(py, rowBase(y, r, n)), set(pg, rowBase(dy, r, n)), set(pd, rowBase(dx, r, n)));
      setZero(f, sv);
      rowLoop(f, j, get(n), (io) => f.emit(set(sv, F32x4.add(get(sv), io.acc(F32x4.mul(io.ld(get(py)), io.ld(get(pg))))))));
      const dot = hsum(f, get(sv));
      rowLoop(f, j, get(n), (io) => f.emit(io.st(get(pd), F32x4.mul(io.ld(get(py)), F32x4.sub(io.ld(get(pg)), get(dot))))));
    });
  });
}

function addLayerNorm(m: ModuleBuilder): void {
  // (x, w, b, y, mean, rstd, rows, D, eps)
  m.func("layernorm_fwd", [i32, i32, i32, i32, i32, i32, i32, i32, f32], [], (f, x, w, b, y, mean, rstd, rows, D, eps) => {
    const r = f.local(i32), j = f.local(i32), px = f.local(i32), py = f.local(i32);
    const sv = f.local(v128), mv = f.local(v128), rv = f.local(v128), d = f.local(v128), invD = f.local(v128);
    const mS = f.local(f32), rS = f.local(f32);
    f.emit(set(invD, F32x4.splat(F32.div(F32.const(1), F32.fromI32(get(D))))));
    f.for(r, I32.const(0), get(rows), 1, () => {
      f.emit(set(px, rowBase(x, r, D)), set(py, rowBase(y, r, D)));
      setZero(f, sv);
      rowLoop(f, j, get(D), (io) => f.emit(set(sv, F32x4.add(get(sv), io.acc(io.ld(get(px)))))));
      const s1 = hsum(f, get(sv));
      f.emit(set(mv, F32x4.mul(get(s1), get(invD))));
      setZero(f, sv);
      rowLoop(f, j, get(D), (io) => {
        f.emit(set(d, F32x4.sub(io.ld(get(px)), get(mv))));
        f.emit(set(sv, F32x4.add(get(sv), io.acc(F32x4.mul(get(d), get(d))))));
      });
      const s2 = hsum(f, get(sv));
      f.emit(set(mS, F32x4.extract(get(mv), 0)));
      f.emit(set(rS, F32.div(F32.const(1), F32.sqrt(F32.add(F32x4.extract(F32x4.mul(get(s2), get(invD)), 0), get(eps))))));
      f.emit(set(rv, F32x4.splat(get(rS))));
      f.if(get(mean), () => f.emit(F32.store(I32.add(get(mean), I32.shl(get(r), I32.const(2))), get(mS))));
      f.if(get(rstd), () => f.emit(F32.store(I32.add(get(rstd), I32.shl(get(r), I32.const(2))), get(rS))));
      // four variants of the affine part, chosen once per row
      const norm = (io: { ld(b: Expr): Expr }) => F32x4.mul(F32x4.sub(io.ld(get(px)), get(mv)), get(rv));
      f.if(I32.and(I32.ne(get(w), I32.const(0)), I32.ne(get(b), I32.const(0))), () =>
        rowLoop(f, j, get(D), (io) => f.emit(io.st(get(py), F32x4.add(F32x4.mul(norm(io), io.ld(get(w))), io.ld(get(b)))))),
      () => f.if(get(w), () =>
        rowLoop(f, j, get(D), (io) => f.emit(io.st(get(py), F32x4.mul(norm(io), io.ld(get(w)))))),
      () => f.if(get(b), () =>
        rowLoop(f, j, get(D), (io) => f.emit(io.st(get(py), F32x4.add(norm(io), io.ld(get(b)))))),
      () => rowLoop(f, j, get(D), (io) => f.emit(io.st(get(py), norm(io)))))));
    });
  });

  // (dy, x, w, mean, rstd, dx, dw, db, rows, D)
  m.func("layernorm_bwd", [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32], [], (f, dy, x, w, mean, rstd, dx, dw, db, rows, D) => {
    const r = f.local(i32), j = f.local(i32), px = f.local(i32), pg = f.local(i32), pd = f.local(i32);
    const mv = f.local(v128), rv = f.local(v128), xh = f.local(v128), g = f.local(v128), gy = f.local(v128);
    const sg = f.local(v128), sgx = f.local(v128), invD = f.local(v128);
    f.emit(set(invD, F32x4.splat(F32.div(F32.const(1), F32.fromI32(get(D))))));
    f.for(r, I32.const(0), get(rows), 1, () => {
      f.emit(set(px, rowBase(x, r, D)), set(pg, rowBase(dy, r, D)), set(pd, rowBase(dx, r, D)));
      f.emit(set(mv, V128.loadSplat32(I32.add(get(mean), I32.shl(get(r), I32.const(2))))));
      f.emit(set(rv, V128.loadSplat32(I32.add(get(rstd), I32.shl(get(r), I32.const(2))))));
      setZero(f, sg, sgx);
      rowLoop(f, j, get(D), (io) => {
        f.emit(set(xh, F32x4.mul(F32x4.sub(io.ld(get(px)), get(mv)), get(rv))));
        f.emit(set(gy, io.ld(get(pg))));
        f.emit(set(g, get(gy)));
        f.if(get(w), () => f.emit(set(g, F32x4.mul(get(gy), io.ld(get(w))))));
        f.emit(set(sg, F32x4.add(get(sg), io.acc(get(g)))), set(sgx, F32x4.add(get(sgx), io.acc(F32x4.mul(get(g), get(xh))))));
        f.if(get(dw), () => f.emit(io.st(get(dw), F32x4.add(io.ld(get(dw)), F32x4.mul(get(gy), get(xh))))));
        f.if(get(db), () => f.emit(io.st(get(db), F32x4.add(io.ld(get(db)), get(gy)))));
      });
      const a = hsum(f, get(sg)), c = hsum(f, get(sgx));
      f.emit(set(a, F32x4.mul(get(a), get(invD))), set(c, F32x4.mul(get(c), get(invD))));
      rowLoop(f, j, get(D), (io) => {
        f.emit(set(xh, F32x4.mul(F32x4.sub(io.ld(get(px)), get(mv)), get(rv))));
        f.emit(set(g, io.ld(get(pg))));
        f.if(get(w), () => f.emit(set(g, F32x4.mul(get(g), io.ld(get(w))))));
        f.emit(io.st(get(pd), F32x4.mul(get(rv), F32x4.sub(F32x4.sub(get(g), get(a)), F32x4.mul(get(xh), get(c))))));
      });
    });
  });
}

export function addRowKernels(m: ModuleBuilder): void {
  addSoftmax(m);
  addLayerNorm(m);
}
