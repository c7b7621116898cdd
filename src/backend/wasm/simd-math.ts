// Vector special functions, emitted inline into a function body (each call site gets its own temporaries).
// Accuracy (float32, relative): exp2 ≤ 2.4e-7 on its reduced range, exp ≤ 1.1e-7 (+ the rounding of x·log2e is
// avoided by a two-constant Cody–Waite reduction), erfc ≤ 1.2e-7 (the Numerical Recipes Chebyshev form the
// reference backend uses). exp flushes results below ~2^-126 to 0 (x < −87.98); NaN propagates.
import { F32x4, FuncBuilder, I32, I32x4, V128, get, set, v128, type Expr, type Local } from "./emit.js";
import { madd } from "./tile.js";

const sp = (c: number): Expr => F32x4.splat([0x43, ...new Uint8Array(new Float32Array([c]).buffer)]);
export const splatConst = sp;

/** Horner evaluation of Σ c[i]·x^i (x a local). */
function horner(x: Local, c: number[]): Expr {
  let r = sp(c[c.length - 1]);
  for (let i = c.length - 2; i >= 0; i--) r = madd(sp(c[i]), r, get(x)); // Horner: one FMA a step with relaxed SIMD
  return r;
}

// Rounding to an integer without nearest/trunc_sat (the latter is a long sequence on x64): adding 1.5·2^23 leaves
// round(x) in the low mantissa bits of the sum t, so 2^round(x) = bits((t << 23) + (127 << 23)) — the magic's own
// bits shift out. Valid for |x| < 2^22; callers clamp to [−127, 128] (−127 → exponent field 0 → 2^n = 0).
const MAGIC = 12582912;
const pow2FromMagic = (t: Expr): Expr => I32x4.add(I32x4.shl(t, I32.const(23)), I32x4.splat(I32.const(127 << 23)));

const EXP2_C = [1.0000001192092896, 0.6931469440460205, 0.24022118747234344, 0.055507078766822815, 0.009675555862486362,
  0.0013278163969516754];
const EXP_C = [1.0, 1.0, 0.49999991059303284, 0.16666419804096222, 0.041668202728033066, 0.00837482325732708, 0.001383816939778626];

/** 2^x. pmax/pmin clamp (single instructions; a NaN x stays NaN through the polynomial). */
export function vexp2(f: FuncBuilder, x: Expr): Local {
  const c = f.local(v128), t = f.local(v128), r = f.local(v128);
  f.emit(set(c, F32x4.pmin(F32x4.pmax(x, sp(-127)), sp(128))));
  f.emit(set(t, F32x4.add(get(c), sp(MAGIC))));
  f.emit(set(c, F32x4.sub(get(c), F32x4.sub(get(t), sp(MAGIC)))));   // f = x − round(x) ∈ [−½, ½]
  f.emit(set(r, F32x4.mul(horner(c, EXP2_C), pow2FromMagic(get(t)))));
  return r;
}

/** e^x. */
export function vexp(f: FuncBuilder, x: Expr): Local {
  const c = f.local(v128), t = f.local(v128), n = f.local(v128), r = f.local(v128);
  f.emit(set(c, F32x4.pmin(F32x4.pmax(x, sp(-88)), sp(88.7))));
  f.emit(set(t, F32x4.add(F32x4.mul(get(c), sp(Math.LOG2E)), sp(MAGIC))));
  f.emit(set(n, F32x4.sub(get(t), sp(MAGIC))));
  // r = x − n·ln2 in two steps (ln2 = 0.693359375 − 2.12194440e−4, the first part exact in few bits)
  f.emit(set(c, F32x4.sub(F32x4.sub(get(c), F32x4.mul(get(n), sp(0.693359375))), F32x4.mul(get(n), sp(-2.12194440e-4)))));
  f.emit(set(r, F32x4.mul(horner(c, EXP_C), pow2FromMagic(get(t)))));
  return r;
}

/** erfc(x) for any x (Numerical Recipes erfcc: t = 1/(1+z/2), z = |x|). */
export function verfc(f: FuncBuilder, x: Expr): Local {
  const xv = f.local(v128), z = f.local(v128), t = f.local(v128), r = f.local(v128);
  f.emit(set(xv, x), set(z, F32x4.abs(get(xv))));
  f.emit(set(t, F32x4.div(sp(1), F32x4.add(sp(1), F32x4.mul(sp(0.5), get(z))))));
  const c = [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277];
  const e = vexp(f, F32x4.sub(horner(t, c), F32x4.mul(get(z), get(z))));
  f.emit(set(r, F32x4.mul(get(t), get(e))));
  // x < 0: 2 − r
  f.emit(set(r, V128.bitselect(F32x4.sub(sp(2), get(r)), get(r), F32x4.lt(get(xv), sp(0)))));
  return r;
}

/** 1 / (1 + e^−x). */
export function vsigmoid(f: FuncBuilder, x: Expr): Local {
  const e = vexp(f, F32x4.neg(x));
  const r = f.local(v128);
  f.emit(set(r, F32x4.div(sp(1), F32x4.add(sp(1), get(e)))));
  return r;
}

const SQRT1_2 = Math.SQRT1_2, INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI), GELU_TANH_C = Math.sqrt(2 / Math.PI);

/** gelu(x) = ½·x·erfc(−x/√2). */
export function vgelu(f: FuncBuilder, x: Expr): Local {
  const xv = f.local(v128), r = f.local(v128);
  f.emit(set(xv, x));
  const e = verfc(f, F32x4.mul(get(xv), sp(-SQRT1_2)));
  f.emit(set(r, F32x4.mul(F32x4.mul(get(xv), sp(0.5)), get(e))));
  return r;
}

/** d/dx gelu = ½·erfc(−x/√2) + x·e^(−x²/2)/√(2π). */
export function vgeluGrad(f: FuncBuilder, x: Expr): Local {
  const xv = f.local(v128), r = f.local(v128);
  f.emit(set(xv, x));
  const e = verfc(f, F32x4.mul(get(xv), sp(-SQRT1_2)));
  const g = vexp(f, F32x4.mul(F32x4.mul(get(xv), get(xv)), sp(-0.5)));
  f.emit(set(r, F32x4.add(F32x4.mul(get(e), sp(0.5)), F32x4.mul(F32x4.mul(get(xv), get(g)), sp(INV_SQRT_2PI)))));
  return r;
}

/** s = sigmoid(2y), y = c·(x + 0.044715x³): ½(1 + tanh y) = s. Returns [s, y'] locals. */
function tanhForm(f: FuncBuilder, xv: Local): [Local, Local] {
  const x2 = f.local(v128), dy = f.local(v128);
  f.emit(set(x2, F32x4.mul(get(xv), get(xv))));
  const s = vsigmoid(f, F32x4.mul(F32x4.mul(get(xv), F32x4.add(sp(1), F32x4.mul(get(x2), sp(0.044715)))), sp(2 * GELU_TANH_C)));
  f.emit(set(dy, F32x4.mul(F32x4.add(sp(1), F32x4.mul(get(x2), sp(3 * 0.044715))), sp(GELU_TANH_C))));
  return [s, dy];
}

/** geluTanh(x) = ½x(1 + tanh y) = x·sigmoid(2y) (accurate in both tails). */
export function vgeluTanh(f: FuncBuilder, x: Expr): Local {
  const xv = f.local(v128), r = f.local(v128);
  f.emit(set(xv, x));
  const [s] = tanhForm(f, xv);
  f.emit(set(r, F32x4.mul(get(xv), get(s))));
  return r;
}

/** d/dx geluTanh = s + 2x·s(1−s)·y'. */
export function vgeluTanhGrad(f: FuncBuilder, x: Expr): Local {
  const xv = f.local(v128), r = f.local(v128);
  f.emit(set(xv, x));
  const [s, dy] = tanhForm(f, xv);
  f.emit(set(r, F32x4.add(get(s), F32x4.mul(F32x4.mul(F32x4.mul(get(xv), sp(2)), get(dy)),
    F32x4.mul(get(s), F32x4.sub(sp(1), get(s)))))));
  return r;
}

/** Horizontal reductions of a vector to lane 0 (result: the full vector's reduction splatted in every lane). */
export function hsum(f: FuncBuilder, v: Expr): Local {
  const a = f.local(v128);
  f.emit(set(a, v));
  f.emit(set(a, F32x4.add(get(a), V128.shuffle32(get(a), get(a), [2, 3, 0, 1]))));
  f.emit(set(a, F32x4.add(get(a), V128.shuffle32(get(a), get(a), [1, 0, 3, 2]))));
  return a;
}
export function hmax(f: FuncBuilder, v: Expr): Local {
  const a = f.local(v128);
  f.emit(set(a, v));
  f.emit(set(a, F32x4.pmax(get(a), V128.shuffle32(get(a), get(a), [2, 3, 0, 1]))));
  f.emit(set(a, F32x4.pmax(get(a), V128.shuffle32(get(a), get(a), [1, 0, 3, 2]))));
  return a;
}

