// Emitted elementwise kernels (byte addresses, contiguous float32):
//   bias_act(c, rows, cols, bias, act)      c = act(c + bias[col]) in place (bias 0 = none); act 0 none 1 relu 2 gelu 3 geluTanh
//   act_bwd(act, z, g, out, n)              out = g ⊙ act'(z)                act 1 relu 2 gelu 3 geluTanh
//   unary(op, x, y, n)                      y = op(x), op = UNARY_OPS index
//   binary(op, a, aSplat, aStep, b, bSplat, bStep, out, rows, R)
//       row r of out (R elements) = a_r op b_r; operand row r starts at base + r·step bytes and is either read as R
//       elements (splat 0) or as one element broadcast over the row (splat 1): covers full, scalar, row and column
//       broadcasts with the step chosen by the driver.
import { F32x4, FuncBuilder, I32, ModuleBuilder, V128, get, i32, set, type Expr } from "./emit.js";
import { splatConst as sp, vexp, vgelu, vgeluGrad, vgeluTanh, vgeluTanhGrad, vsigmoid } from "./simd-math.js";
import { rowLoop, zero4 } from "./row-loop.js";

export const ACT_CODES = { none: 0, relu: 1, gelu: 2, geluTanh: 3 } as const;

/** Vector activation of x (an expression evaluated once). */
function act(f: FuncBuilder, code: number, x: Expr): Expr {
  switch (code) {
    case 1: { const t = f.local(0x7b); f.emit(set(t, x)); return V128.and(get(t), F32x4.gt(get(t), zero4())); }
    case 2: return get(vgelu(f, x));
    case 3: return get(vgeluTanh(f, x));
    default: return x;
  }
}

export const UNARY_OPS = ["neg", "abs", "relu", "square", "sqrt", "rsqrt", "reciprocal", "exp", "sigmoid", "gelu", "geluGrad",
  "geluTanh", "geluTanhGrad"] as const;

function unaryOp(f: FuncBuilder, op: (typeof UNARY_OPS)[number], x: Expr): Expr {
  switch (op) {
    case "neg": return F32x4.neg(x);
    case "abs": return F32x4.abs(x);
    case "relu": return act(f, 1, x);               // v > 0 ? v : 0 (NaN → 0, like the reference)
    case "square": { const t = f.local(0x7b); f.emit(set(t, x)); return F32x4.mul(get(t), get(t)); }
    case "sqrt": return F32x4.sqrt(x);
    case "rsqrt": return F32x4.div(sp(1), F32x4.sqrt(x));
    case "reciprocal": return F32x4.div(sp(1), x);
    case "exp": return get(vexp(f, x));
    case "sigmoid": return get(vsigmoid(f, x));
    case "gelu": return get(vgelu(f, x));
    case "geluGrad": return get(vgeluGrad(f, x));
    case "geluTanh": return get(vgeluTanh(f, x));
    case "geluTanhGrad": return get(vgeluTanhGrad(f, x));
  }
}

export const BINARY_OPS = ["add", "sub", "mul", "div", "maximum", "minimum"] as const;

function binaryOp(op: (typeof BINARY_OPS)[number], a: Expr, b: Expr): Expr {
  switch (op) {
    case "add": return F32x4.add(a, b);
    case "sub": return F32x4.sub(a, b);
    case "mul": return F32x4.mul(a, b);
    case "div": return F32x4.div(a, b);
    case "maximum": return F32x4.max(a, b);   // NaN-propagating, like Math.max
    case "minimum": return F32x4.min(a, b);
  }
}

export function addElementwiseKernels(m: ModuleBuilder): void {
  m.func("bias_act", [i32, i32, i32, i32, i32], [], (f, c, rows, cols, bias, code) => {
    const r = f.local(i32), j = f.local(i32), pc = f.local(i32);
    for (let a = 0; a < 4; a++) {
      f.if(I32.eq(get(code), I32.const(a)), () => {
        f.for(r, I32.const(0), get(rows), 1, () => {
          f.emit(set(pc, I32.add(get(c), I32.shl(I32.mul(get(r), get(cols)), I32.const(2)))));
          f.if(get(bias),
            () => rowLoop(f, j, get(cols), (io) => f.emit(io.st(get(pc), act(f, a, F32x4.add(io.ld(get(pc)), io.ld(get(bias))))))),
            () => rowLoop(f, j, get(cols), (io) => f.emit(io.st(get(pc), act(f, a, io.ld(get(pc)))))));
        });
      });
    }
  });

  m.func("scale_inplace", [i32, i32, 0x7d], [], (f, y, n, s) => {
    const j = f.local(i32), sv = f.local(0x7b);
    f.emit(set(sv, F32x4.splat(get(s))));
    rowLoop(f, j, get(n), (io) => f.emit(io.st(get(y), F32x4.mul(io.ld(get(y)), get(sv)))));
  });

  m.func("act_bwd", [i32, i32, i32, i32, i32], [], (f, code, z, g, out, n) => {
    const j = f.local(i32);
    f.if(I32.eq(get(code), I32.const(1)), () => rowLoop(f, j, get(n), (io) =>
      f.emit(io.st(get(out), V128.and(io.ld(get(g)), F32x4.gt(io.ld(get(z)), zero4()))))));
    f.if(I32.eq(get(code), I32.const(2)), () => rowLoop(f, j, get(n), (io) =>
      f.emit(io.st(get(out), F32x4.mul(io.ld(get(g)), get(vgeluGrad(f, io.ld(get(z)))))))));
    f.if(I32.eq(get(code), I32.const(3)), () => rowLoop(f, j, get(n), (io) =>
      f.emit(io.st(get(out), F32x4.mul(io.ld(get(g)), get(vgeluTanhGrad(f, io.ld(get(z)))))))));
  });

  m.func("unary", [i32, i32, i32, i32], [], (f, code, x, y, n) => {
    const j = f.local(i32);
    UNARY_OPS.forEach((op, k) => {
      f.if(I32.eq(get(code), I32.const(k)), () => rowLoop(f, j, get(n), (io) => f.emit(io.st(get(y), unaryOp(f, op, io.ld(get(x)))))));
    });
  });

  // (op, a, aSplat, aStep, b, bSplat, bStep, out, rows, R)
  m.func("binary", [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32], [], (f, code, a, aSplat, aStep, b, bSplat, bStep, out, rows, R) => {
    const r = f.local(i32), j = f.local(i32), pa = f.local(i32), pb = f.local(i32), po = f.local(i32);
    const va = f.local(0x7b), vb = f.local(0x7b);
    BINARY_OPS.forEach((op, k) => {
      f.if(I32.eq(get(code), I32.const(k)), () => {
        f.for(r, I32.const(0), get(rows), 1, () => {
          f.emit(set(pa, I32.add(get(a), I32.mul(get(r), get(aStep)))), set(pb, I32.add(get(b), I32.mul(get(r), get(bStep)))));
          f.emit(set(po, I32.add(get(out), I32.shl(I32.mul(get(r), get(R)), I32.const(2)))));
          f.emit(set(va, V128.loadSplat32(get(pa))), set(vb, V128.loadSplat32(get(pb))));
          f.if(get(aSplat),
            () => f.if(get(bSplat),
              () => rowLoop(f, j, get(R), (io) => f.emit(io.st(get(po), binaryOp(op, get(va), get(vb))))),
              () => rowLoop(f, j, get(R), (io) => f.emit(io.st(get(po), binaryOp(op, get(va), io.ld(get(pb))))))),
            () => f.if(get(bSplat),
              () => rowLoop(f, j, get(R), (io) => f.emit(io.st(get(po), binaryOp(op, io.ld(get(pa)), get(vb))))),
              () => rowLoop(f, j, get(R), (io) => f.emit(io.st(get(po), binaryOp(op, io.ld(get(pa)), io.ld(get(pb))))))));
        });
      });
    });
  });
}
