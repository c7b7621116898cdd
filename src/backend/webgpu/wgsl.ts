// WGSL building blocks shared by the WebGPU kernels: element types, math the language lacks (erf, log1p, expm1,
// IEEE-safe NaN/Inf tests), strided indexing through the i32 parameter block P, and the launch grid.
import type { DType } from "../../dtype.js";

export const WG = 256;           // threads per workgroup of the one-thread-per-element kernels
export const MAX_DIMS = 8;

export function wgslType(d: DType): "f32" | "i32" | "u32" { return d === "float32" ? "f32" : d === "int32" ? "i32" : "u32"; }

/** Math helpers (f32). inf()/ninf() come from a private variable: a literal infinity is a shader-creation error. */
export const MATH = /* wgsl */ `
var<private> INF_BITS: u32 = 0x7f800000u;
fn inf() -> f32 { return bitcast<f32>(INF_BITS); }
fn ninf() -> f32 { return -bitcast<f32>(INF_BITS); }
fn nan() -> f32 { return bitcast<f32>(INF_BITS | 0x400000u); }
fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn erfc_pos(z: f32) -> f32 {  // z >= 0, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7)
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return poly * exp(-z * z);
}
fn erfc_(z: f32) -> f32 { if (isnan_(z)) { return z; } if (z >= 0.0) { return erfc_pos(z); } return 2.0 - erfc_pos(-z); }
fn erf_(x: f32) -> f32 { if (isnan_(x)) { return x; } let e = 1.0 - erfc_pos(abs(x)); return select(e, -e, x < 0.0); }
fn tanh_(x: f32) -> f32 { if (isnan_(x)) { return x; } let e = exp(-2.0 * abs(x)); let t = (1.0 - e) / (1.0 + e); return select(t, -t, x < 0.0); }
fn log1p_(x: f32) -> f32 { let u = 1.0 + x; if (u == 1.0) { return x; } if (isnan_(x) || u == inf()) { return log(u); } return log(u) * x / (u - 1.0); }
fn expm1_(x: f32) -> f32 {  // Kahan: (u − 1)·x / log u keeps full relative accuracy near 0
  let u = exp(x);
  if (u == 1.0) { return x; }
  let um1 = u - 1.0;
  if (um1 == -1.0 || u == inf() || isnan_(x)) { return um1; }
  return um1 * x / log(u);
}
fn round_even(x: f32) -> f32 {
  let f = floor(x); let d = x - f;
  if (d > 0.5) { return f + 1.0; } if (d < 0.5) { return f; }
  return select(f + 1.0, f, f - 2.0 * floor(f * 0.5) == 0.0);
}
fn powf(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (isnan_(a) || isnan_(b)) { return nan(); }
  if (a == 0.0) { if (b > 0.0) { return select(0.0, a, b == floor(b) && (b - 2.0 * floor(b * 0.5)) == 1.0); } return inf(); }
  if (a < 0.0) {
    if (b != floor(b)) { return nan(); }
    let m = exp2(b * log2(-a));
    return select(m, -m, (b - 2.0 * floor(b * 0.5)) == 1.0);
  }
  return exp2(b * log2(a));
}
`;

/** Unary ops: an expression of x (f32) giving f32 (or u32 for "not"). */
export const UNARY: Record<string, string> = {
  neg: "-x", exp: "exp(x)", log: "log(x)", sqrt: "sqrt(x)", rsqrt: "1.0 / sqrt(x)", abs: "abs(x)", sin: "sin(x)", cos: "cos(x)",
  tanh: "tanh_(x)", sigmoid: "1.0 / (1.0 + exp(-x))", relu: "select(0.0, x, x > 0.0)", erf: "erf_(x)", reciprocal: "1.0 / x",
  square: "x * x", sign: "select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0)", floor: "floor(x)", ceil: "ceil(x)",
  round: "round_even(x)", gelu: "0.5 * x * erfc_(-x * 0.70710678118654752)",
  geluTanh: "0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
  log1p: "log1p_(x)", expm1: "expm1_(x)", not: "select(0u, 1u, x == 0.0 || isnan_(x))",
  geluGrad: "0.5 * erfc_(-x * 0.70710678118654752) + x * exp(-0.5 * x * x) * 0.3989422804014327",
  geluTanhGrad: "geluTanhGrad_(x)",
};
export const UNARY_EXTRA = /* wgsl */ `
fn geluTanhGrad_(x: f32) -> f32 {
  let c = 0.7978845608028654;
  let t = tanh_(c * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
}`;

/** Binary ops on values of type T (f32 or i32): expression of a, b. */
export function binaryExpr(op: string, t: "f32" | "i32"): string {
  const f = t === "f32";
  switch (op) {
    case "add": return "a + b";
    case "sub": return "a - b";
    case "mul": return "a * b";
    case "div": return "a / b";
    case "pow": return "powf(a, b)";
    case "maximum": return f ? "select(select(b, a, a > b), nan(), isnan_(a) || isnan_(b))" : "max(a, b)";
    case "minimum": return f ? "select(select(b, a, a < b), nan(), isnan_(a) || isnan_(b))" : "min(a, b)";
    case "eq": return "select(0u, 1u, a == b)";
    case "ne": return "select(0u, 1u, a != b)";
    case "lt": return "select(0u, 1u, a < b)";
    case "le": return "select(0u, 1u, a <= b)";
    case "gt": return "select(0u, 1u, a > b)";
    case "ge": return "select(0u, 1u, a >= b)";
    case "and": return "select(0u, 1u, a != " + (f ? "0.0" : "0") + " && b != " + (f ? "0.0" : "0") + ")";
    case "or": return "select(0u, 1u, a != " + (f ? "0.0" : "0") + " || b != " + (f ? "0.0" : "0") + ")";
  }
  throw new Error(`webgpu: no binary op ${op}`);
}

/**
 * Element offset of flat index i of operand `k` in a strided view. Parameter block: P[0] = n, P[1] = ndim,
 * P[2..10) = shape, then per operand k at base 10 + 9k: offset, strides[8].
 */
export const STRIDED = /* wgsl */ `
fn strided(i: u32, k: i32) -> i32 {
  let base = 10 + 9 * k;
  var rem = i32(i);
  var off = P[base];
  for (var d = P[1] - 1; d >= 0; d--) {
    let s = P[2 + d];
    off += (rem % s) * P[base + 1 + d];
    rem = rem / s;
  }
  return off;
}`;

/** Parameter block for strided elementwise kernels (see STRIDED); `extra` follows the operands. */
export function stridedParams(shape: readonly number[], ops: { offset: number; strides: readonly number[] }[], extra: number[] = []): Int32Array {
  if (shape.length > MAX_DIMS) throw new Error(`not yet supported on webgpu: tensors of more than ${MAX_DIMS} dims (shape [${shape}])`);
  const p = new Int32Array(10 + 9 * ops.length + extra.length);
  p[0] = shape.reduce((a, b) => a * b, 1);
  p[1] = shape.length;
  shape.forEach((d, i) => (p[2 + i] = d));
  ops.forEach((o, k) => { p[10 + 9 * k] = o.offset; o.strides.forEach((s, i) => (p[10 + 9 * k + 1 + i] = s)); });
  extra.forEach((v, i) => (p[10 + 9 * ops.length + i] = v));
  return p;
}

/** Flat thread index over a grid folded into x and y (x ≤ 65535 groups). */
export const FLAT_INDEX = `let i = (wid.y * nwg.x + wid.x) * ${WG}u + lid.x;`;
export const MAIN_ARGS = "@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u";

/** Workgroup grid covering `n` threads of WG each. */
export function grid(n: number, per = WG): [number, number, number] {
  const g = Math.ceil(n / per);
  if (g <= 65535) return [g, 1, 1];
  const y = Math.ceil(g / 65535);
  return [Math.ceil(g / y), y, 1];
}

export const f32bits = (x: number) => new Int32Array(new Float32Array([x]).buffer)[0];
