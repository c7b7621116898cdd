// Reference elementwise kernels: the readable definition of every unary/binary op, over strided inputs.
import type { BinaryOp, StridedView, UnaryOp } from "../kernels.js";
import { erf, erfc } from "./math.js";

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
  gelu: (x) => gelu(x),
  geluTanh: (x) => 0.5 * x * (1 + Math.tanh(GELU_TANH_C * (x + 0.044715 * x * x * x))),
  log1p: Math.log1p,
  expm1: Math.expm1,
  not: (x) => (x ? 0 : 1),
  // d/dx of gelu: Φ(x) + x·φ(x)
  geluGrad: (x) => geluGrad(x),
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

/** gelu(x) = x·Φ(x), Φ(x) = ½·erfc(−x/√2); erfc keeps full relative accuracy in the far negative tail. */
function gelu(x: number): number { return 0.5 * x * erfc(-x * SQRT1_2); }
/** d/dx gelu = Φ(x) + x·φ(x). */
function geluGrad(x: number): number { return 0.5 * erfc(-x * SQRT1_2) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI; }
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

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

/**
 * Merge adjacent dimensions that every view walks contiguously (stride[d] = stride[d+1]·shape[d+1]) and drop size-1
 * dimensions, so the innermost loop is as long as possible. Element order is unchanged.
 */
export function coalesce(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const k = outShape.length - 1;
    if (k >= 0 && strides.every((s, v) => outStrides[v][k] === (s[d] ?? 0) * shape[d])) {
      outShape[k] *= shape[d];
      strides.forEach((s, v) => { outStrides[v][k] = s[d] ?? 0; });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, v) => outStrides[v].push(s[d] ?? 0));
    }
  }
  if (outShape.length === 0) { outShape.push(1); outStrides.forEach((s) => s.push(0)); }
  return { shape: outShape, strides: outStrides };
}

/**
 * Visit the rows of a (coalesced) iteration space: row(o, offA, offB, offC, len, strideA, strideB, strideC) covers the
 * innermost dimension; the outer multi-index advances like an odometer. One callback per row, not per element.
 */
function forEachRow(shape: readonly number[], views: readonly { offset: number; strides: readonly number[] }[],
  row: (o: number, a: number, b: number, c: number, len: number, la: number, lb: number, lc: number) => void): void {
  const n = shape.reduce((p, d) => p * d, 1);
  if (n === 0) return;
  const cs = coalesce(shape, views.map((v) => v.strides));
  const sh = cs.shape, nd = sh.length, last = nd - 1, len = sh[last];
  const sa = cs.strides[0] ?? [], sb = cs.strides[1] ?? [], sc = cs.strides[2] ?? [];
  let a = views[0]?.offset ?? 0, b = views[1]?.offset ?? 0, c = views[2]?.offset ?? 0;
  const la = sa[last] ?? 0, lb = sb[last] ?? 0, lc = sc[last] ?? 0;
  const idx = new Array<number>(nd).fill(0);
  for (let o = 0; o < n; o += len) {
    row(o, a, b, c, len, la, lb, lc);
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      a += sa[d] ?? 0; b += sb[d] ?? 0; c += sc[d] ?? 0;
      if (idx[d] < sh[d]) break;
      a -= (sa[d] ?? 0) * sh[d]; b -= (sb[d] ?? 0) * sh[d]; c -= (sc[d] ?? 0) * sh[d];
      idx[d] = 0;
    }
  }
}

// The row kernels below are the definitions above written as loops (one switch per row instead of one call per
// element); ops without a loop here use the definition table.
function unaryRow(op: UnaryOp, x: Arr, a: number, la: number, out: Float32Array | Uint8Array, o: number, len: number): void {
  const end = o + len;
  switch (op) {
    case "neg": for (let i = o; i < end; i++, a += la) out[i] = -x[a]; return;
    case "exp": for (let i = o; i < end; i++, a += la) out[i] = Math.exp(x[a]); return;
    case "relu": for (let i = o; i < end; i++, a += la) { const v = x[a]; out[i] = v > 0 ? v : 0; } return;
    case "square": for (let i = o; i < end; i++, a += la) { const v = x[a]; out[i] = v * v; } return;
    case "sqrt": for (let i = o; i < end; i++, a += la) out[i] = Math.sqrt(x[a]); return;
    case "rsqrt": for (let i = o; i < end; i++, a += la) out[i] = 1 / Math.sqrt(x[a]); return;
    case "reciprocal": for (let i = o; i < end; i++, a += la) out[i] = 1 / x[a]; return;
    case "tanh": for (let i = o; i < end; i++, a += la) out[i] = Math.tanh(x[a]); return;
    case "log": for (let i = o; i < end; i++, a += la) out[i] = Math.log(x[a]); return;
    case "gelu": for (let i = o; i < end; i++, a += la) out[i] = gelu(x[a]); return;
    case "geluGrad": for (let i = o; i < end; i++, a += la) out[i] = geluGrad(x[a]); return;
    default: {
      const f = unaryFns[op];
      for (let i = o; i < end; i++, a += la) out[i] = f(x[a]);
    }
  }
}

function binaryRow(op: BinaryOp, x: Arr, a: number, la: number, y: Arr, b: number, lb: number, out: Arr, o: number, len: number): void {
  const end = o + len;
  switch (op) {
    case "add": for (let i = o; i < end; i++, a += la, b += lb) out[i] = x[a] + y[b]; return;
    case "sub": for (let i = o; i < end; i++, a += la, b += lb) out[i] = x[a] - y[b]; return;
    case "mul": for (let i = o; i < end; i++, a += la, b += lb) out[i] = x[a] * y[b]; return;
    case "div": for (let i = o; i < end; i++, a += la, b += lb) out[i] = x[a] / y[b]; return;
    default: {
      const f = binaryFns[op];
      for (let i = o; i < end; i++, a += la, b += lb) out[i] = f(x[a], y[b]);
    }
  }
}

// Float32-only copies of the hot rows: V8 specialises element access per typed-array type, and a row function that
// also sees Int32Array/Uint8Array traffic becomes several times slower for everyone.
function unaryRowF32(op: UnaryOp, x: Float32Array, a: number, la: number, out: Float32Array, o: number, len: number): boolean {
  const end = o + len;
  switch (op) {
    case "neg": for (let i = o; i < end; i++, a += la) out[i] = -x[a]; return true;
    case "exp": for (let i = o; i < end; i++, a += la) out[i] = Math.exp(x[a]); return true;
    case "relu": for (let i = o; i < end; i++, a += la) { const v = x[a]; out[i] = v > 0 ? v : 0; } return true;
    case "square": for (let i = o; i < end; i++, a += la) { const v = x[a]; out[i] = v * v; } return true;
    case "sqrt": for (let i = o; i < end; i++, a += la) out[i] = Math.sqrt(x[a]); return true;
    case "rsqrt": for (let i = o; i < end; i++, a += la) out[i] = 1 / Math.sqrt(x[a]); return true;
    case "gelu": for (let i = o; i < end; i++, a += la) out[i] = gelu(x[a]); return true;
    case "geluGrad": for (let i = o; i < end; i++, a += la) out[i] = geluGrad(x[a]); return true;
    default: return false;
  }
}

function binaryRowF32(op: BinaryOp, x: Float32Array, a: number, la: number, y: Float32Array, b: number, lb: number, out: Float32Array, o: number, len: number): boolean {
  const end = o + len;
  switch (op) {
    case "add": for (let i = o; i < end; i++, a += la, b += lb) out[i] = x[a] + y[b]; return true;
    case "sub": for (let i = o; i < end; i++, a += la, b += lb) out[i] = x[a] - y[b]; return true;
    case "mul": for (let i = o; i < end; i++, a += la, b += lb) out[i] = x[a] * y[b]; return true;
    case "div": for (let i = o; i < end; i++, a += la, b += lb) out[i] = x[a] / y[b]; return true;
    default: return false;
  }
}

function copyRowF32(x: Float32Array, a: number, la: number, out: Float32Array, o: number, len: number): void {
  for (let i = o, end = o + len; i < end; i++, a += la) out[i] = x[a];
}

export function unary(op: UnaryOp, x: StridedView<Arr>, shape: readonly number[], out: Float32Array | Uint8Array): void {
  const xd = x.data;
  if (xd instanceof Float32Array && out instanceof Float32Array) {
    forEachRow(shape, [x], (o, a, _b, _c, len, la) => { if (!unaryRowF32(op, xd, a, la, out, o, len)) unaryRow(op, xd, a, la, out, o, len); });
    return;
  }
  forEachRow(shape, [x], (o, a, _b, _c, len, la) => unaryRow(op, xd, a, la, out, o, len));
}

export function binary(op: BinaryOp, a: StridedView<Arr>, b: StridedView<Arr>, shape: readonly number[], out: Arr): void {
  const ad = a.data, bd = b.data;
  if (ad instanceof Float32Array && bd instanceof Float32Array && out instanceof Float32Array) {
    forEachRow(shape, [a, b], (o, ia, ib, _c, len, la, lb) => {
      if (!binaryRowF32(op, ad, ia, la, bd, ib, lb, out, o, len)) binaryRow(op, ad, ia, la, bd, ib, lb, out, o, len);
    });
    return;
  }
  forEachRow(shape, [a, b], (o, ia, ib, _c, len, la, lb) => binaryRow(op, ad, ia, la, bd, ib, lb, out, o, len));
}

export function where(cond: StridedView<Uint8Array>, a: StridedView, b: StridedView, shape: readonly number[], out: Float32Array): void {
  const cd = cond.data, ad = a.data, bd = b.data;
  forEachRow(shape, [cond, a, b], (o, ic, ia, ib, len, lc, la, lb) => {
    for (let i = o, end = o + len; i < end; i++, ic += lc, ia += la, ib += lb) out[i] = cd[ic] ? ad[ia] : bd[ib];
  });
}

export function copy(x: StridedView<Arr>, shape: readonly number[], out: Arr): void {
  const xd = x.data;
  if (xd instanceof Float32Array && out instanceof Float32Array) {
    forEachRow(shape, [x], (o, a, _b, _c, len, la) => {
      if (la === 1 && len >= 16) out.set(xd.subarray(a, a + len), o); else copyRowF32(xd, a, la, out, o, len);
    });
    return;
  }
  forEachRow(shape, [x], (o, a, _b, _c, len, la) => {
    if (la === 1) { out.set(xd.subarray(a, a + len), o); return; }
    for (let i = o, end = o + len; i < end; i++, a += la) out[i] = xd[a];
  });
}
