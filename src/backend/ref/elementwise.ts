// Reference elementwise kernels: the readable definition of every unary/binary op, over strided inputs.
import type { BinaryOp, StridedView, UnaryOp } from "../kernels.js";
import { erf } from "./math.js";

type Arr = Float32Array | Int32Array | Uint8Array;
const SQRT1_2 = Math.SQRT1_2;
const GELU_TANH_C = Math.sqrt(2 / Math.PI);

export const unaryFns: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  abs: Math.abs,
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  relu: (x) => (x > 0 ? x : 0),
  erf,
  reciprocal: (x) => 1 / x,
  square: (x) => x * x,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundHalfEven,
  gelu: (x) => 0.5 * x * (1 + erf(x * SQRT1_2)),
  geluTanh: (x) => 0.5 * x * (1 + Math.tanh(GELU_TANH_C * (x + 0.044715 * x * x * x))),
  log1p: Math.log1p,
  expm1: Math.expm1,
  not: (x) => (x ? 0 : 1),
  // d/dx of gelu: Φ(x) + x·φ(x)
  geluGrad: (x) => 0.5 * (1 + erf(x * SQRT1_2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI),
  // d/dx of the tanh form: ½(1+t) + ½x(1−t²)·c·(1 + 3·0.044715x²), t = tanh(c(x + 0.044715x³))
  geluTanhGrad: (x) => {
    const t = Math.tanh(GELU_TANH_C * (x + 0.044715 * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_TANH_C * (1 + 3 * 0.044715 * x * x);
  },
};

export const binaryFns: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: (a, b) => (a !== a || b !== b ? NaN : a > b ? a : b),
  minimum: (a, b) => (a !== a || b !== b ? NaN : a < b ? a : b),
  eq: (a, b) => +(a === b),
  ne: (a, b) => +(a !== b),
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
  and: (a, b) => +(a !== 0 && b !== 0),
  or: (a, b) => +(a !== 0 || b !== 0),
};

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Visit every element of `shape` in row-major order, calling fn(outIndex, offA, offB, offC) with the
 * element offsets of up to three strided inputs. The innermost dimension is a tight loop.
 */
export function forEachStrided(shape: readonly number[], views: readonly { offset: number; strides: readonly number[] }[],
  fn: (o: number, a: number, b: number, c: number) => void): void {
  const nd = shape.length;
  const n = shape.reduce((p, d) => p * d, 1);
  if (n === 0) return;
  const sa = views[0]?.strides ?? [], sb = views[1]?.strides ?? [], sc = views[2]?.strides ?? [];
  let a = views[0]?.offset ?? 0, b = views[1]?.offset ?? 0, c = views[2]?.offset ?? 0;
  if (nd === 0) { fn(0, a, b, c); return; }
  const last = nd - 1, len = shape[last];
  const la = sa[last] ?? 0, lb = sb[last] ?? 0, lc = sc[last] ?? 0;
  const idx = new Array<number>(nd).fill(0);
  for (let o = 0; o < n; o += len) {
    for (let j = 0; j < len; j++) fn(o + j, a + j * la, b + j * lb, c + j * lc);
    // advance the outer multi-index (odometer), updating the offsets incrementally
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      a += sa[d] ?? 0; b += sb[d] ?? 0; c += sc[d] ?? 0;
      if (idx[d] < shape[d]) break;
      a -= (sa[d] ?? 0) * shape[d]; b -= (sb[d] ?? 0) * shape[d]; c -= (sc[d] ?? 0) * shape[d];
      idx[d] = 0;
    }
  }
}

export function unary(op: UnaryOp, x: StridedView<Arr>, shape: readonly number[], out: Float32Array | Uint8Array): void {
  const f = unaryFns[op], xd = x.data;
  forEachStrided(shape, [x], (o, a) => { out[o] = f(xd[a]); });
}

export function binary(op: BinaryOp, a: StridedView<Arr>, b: StridedView<Arr>, shape: readonly number[], out: Arr): void {
  const f = binaryFns[op], ad = a.data, bd = b.data;
  forEachStrided(shape, [a, b], (o, ia, ib) => { out[o] = f(ad[ia], bd[ib]); });
}

export function where(cond: StridedView<Uint8Array>, a: StridedView, b: StridedView, shape: readonly number[], out: Float32Array): void {
  const cd = cond.data, ad = a.data, bd = b.data;
  forEachStrided(shape, [cond, a, b], (o, ic, ia, ib) => { out[o] = cd[ic] ? ad[ia] : bd[ib]; });
}

export function copy(x: StridedView<Arr>, shape: readonly number[], out: Arr): void {
  const xd = x.data;
  forEachStrided(shape, [x], (o, a) => { out[o] = xd[a]; });
}
