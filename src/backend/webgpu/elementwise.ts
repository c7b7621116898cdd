// WGSL elementwise kernels (strided inputs broadcast through their strides, contiguous output): copy/cast, unary,
// binary, where, fill, axpy; and reductions over the middle axis of (outer, n, inner). One thread per output element,
// no barriers.
import type { DType } from "../../dtype.js";
import type { Tensor } from "../../tensor.js";
import type { BinaryOp, ReduceOp, UnaryOp } from "../kernels.js";
import { type GpuRuntime, type GpuBuf } from "./runtime.js";
import { FLAT_INDEX, MAIN_ARGS, MATH, STRIDED, UNARY, UNARY_EXTRA, binaryExpr, f32bits, grid, stridedParams, wgslType } from "./wgsl.js";

export const buf = (t: Tensor) => (t.storage.handle as GpuBuf).buffer;

const binding = (i: number, ty: string, rw = false) =>
  `@group(0) @binding(${i}) var<storage, ${rw ? "read_write" : "read"}> ${"XABCDEFGH"[i]}: array<${ty}>;`;
const params = (i: number) => `@group(0) @binding(${i}) var<storage, read> P: array<i32>;`;

/** Conversion of a value of device type `from` to `to` (float→int truncates toward zero like torch's .int()). */
function conv(v: string, from: string, to: string): string {
  if (from === to) return v;
  if (to === "u32") return from === "f32" ? `select(0u, 1u, ${v} != 0.0)` : `select(0u, 1u, ${v} != 0)`;
  if (to === "f32") return `f32(${v})`;
  return from === "f32" ? `i32(trunc(${v}))` : `i32(${v})`;
}

export function copy(rt: GpuRuntime, x: Tensor, strides: readonly number[], out: Tensor): void {
  const ti = wgslType(x.dtype), to = wgslType(out.dtype);
  const code = `${binding(0, ti)}\n${binding(1, to, true)}\n${params(2)}\n${STRIDED}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  if (i >= u32(P[0])) { return; }
  A[i] = ${conv("X[strided(i, 0)]", ti, to)};
}`;
  rt.dispatch(code, [buf(x), buf(out)], stridedParams(out.shape, [{ offset: x.offset, strides }]), grid(out.numel()));
}

/** dst[region] = x: both sides strided over `shape` (cat, slice gradients). */
export function writeRegion(rt: GpuRuntime, dst: Tensor, shape: readonly number[], strides: readonly number[], offset: number, x: Tensor): void {
  const ti = wgslType(x.dtype), to = wgslType(dst.dtype);
  const code = `${binding(0, ti)}\n${binding(1, to, true)}\n${params(2)}\n${STRIDED}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  if (i >= u32(P[0])) { return; }
  A[strided(i, 1)] = ${conv("X[strided(i, 0)]", ti, to)};
}`;
  const n = shape.reduce((a, b) => a * b, 1);
  rt.dispatch(code, [buf(x), buf(dst)], stridedParams(shape, [{ offset: x.offset, strides: x.strides }, { offset, strides }]), grid(n));
}

export function unary(rt: GpuRuntime, op: UnaryOp, x: Tensor, out: Tensor): void {
  const e = UNARY[op];
  if (!e) throw new Error(`not yet supported on webgpu: unary ${op}`);
  const ti = wgslType(x.dtype), to = wgslType(out.dtype);
  const code = `${binding(0, ti)}\n${binding(1, to, true)}\n${params(2)}\n${MATH}\n${UNARY_EXTRA}\n${STRIDED}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  if (i >= u32(P[0])) { return; }
  let x = ${conv("X[strided(i, 0)]", ti, "f32")};
  A[i] = ${op === "not" || op === "sign" || op === "relu" ? e : `select(${e}, x, isnan_(x))`};   // NaN in, NaN out (WGSL builtins need not)
}`;
  rt.dispatch(code, [buf(x), buf(out)], stridedParams(out.shape, [{ offset: x.offset, strides: x.strides }]), grid(out.numel()));
}

export function binary(rt: GpuRuntime, op: BinaryOp, a: Tensor, as: readonly number[], b: Tensor, bs: readonly number[], out: Tensor): void {
  const ta = wgslType(a.dtype), tb = wgslType(b.dtype), to = wgslType(out.dtype);
  // arithmetic in f32 unless both operands are integers (int32/bool) and the op keeps integers
  const intMath = ta !== "f32" && tb !== "f32" && op !== "div" && op !== "pow";
  const t = intMath ? "i32" : "f32";
  const code = `${binding(0, ta)}\n${binding(1, tb)}\n${binding(2, to, true)}\n${params(3)}\n${MATH}\n${STRIDED}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  if (i >= u32(P[0])) { return; }
  let a = ${conv("X[strided(i, 0)]", ta, t)};
  let b = ${conv("A[strided(i, 1)]", tb, t)};
  B[i] = ${conv(binaryExpr(op, t), /^select\(0u/.test(binaryExpr(op, t)) ? "u32" : t, to)};
}`;
  rt.dispatch(code, [buf(a), buf(b), buf(out)], stridedParams(out.shape, [{ offset: a.offset, strides: as }, { offset: b.offset, strides: bs }]), grid(out.numel()));
}

export function where(rt: GpuRuntime, c: Tensor, cs: readonly number[], a: Tensor, as: readonly number[], b: Tensor, bs: readonly number[], out: Tensor): void {
  const code = `${binding(0, "u32")}\n${binding(1, "f32")}\n${binding(2, "f32")}\n${binding(3, "f32", true)}\n${params(4)}\n${STRIDED}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  if (i >= u32(P[0])) { return; }
  C[i] = select(B[strided(i, 2)], A[strided(i, 1)], X[strided(i, 0)] != 0u);
}`;
  rt.dispatch(code, [buf(c), buf(a), buf(b), buf(out)], stridedParams(out.shape,
    [{ offset: c.offset, strides: cs }, { offset: a.offset, strides: as }, { offset: b.offset, strides: bs }]), grid(out.numel()));
}

export function fill(rt: GpuRuntime, out: Tensor, value: number): void {
  const to = wgslType(out.dtype);
  const v = to === "f32" ? "bitcast<f32>(P[1])" : to === "i32" ? "P[1]" : "u32(P[1] != 0)";
  const code = `${binding(0, to, true)}\n${params(1)}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  if (i >= u32(P[0])) { return; }
  X[u32(P[2]) + i] = ${v};
}`;
  const n = out.numel();
  rt.dispatch(code, [buf(out)], Int32Array.of(n, to === "f32" ? f32bits(value) : value | 0, out.offset), grid(n));
}

/** t (contiguous) += alpha·o (o read through strides). */
export function axpy(rt: GpuRuntime, t: Tensor, o: Tensor, os: readonly number[], alpha: number): void {
  const code = `${binding(0, "f32", true)}\n${binding(1, "f32")}\n${params(2)}\n${STRIDED}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  if (i >= u32(P[0])) { return; }
  let j = u32(P[19]) + i;
  X[j] = X[j] + bitcast<f32>(P[20]) * A[strided(i, 0)];
}`;
  rt.dispatch(code, [buf(t), buf(o)], stridedParams(t.shape, [{ offset: o.offset, strides: os }], [t.offset, f32bits(alpha)]), grid(t.numel()));
}

/**
 * Reduce the middle axis of contiguous (outer, n, inner) starting at x.offset. Sums accumulate with Kahan
 * compensation (the reference sums in float64); max/min/argmax/argmin propagate NaN like the reference.
 */
export function reduce(rt: GpuRuntime, op: ReduceOp, x: Tensor, outer: number, n: number, inner: number, out: Tensor): void {
  const ti = wgslType(x.dtype), to = wgslType(out.dtype);
  const isF = ti === "f32";
  let body: string;
  switch (op) {
    case "sum":
      body = isF
        ? "var s = 0.0; var c = 0.0; for (var j = 0; j < n; j++) { let y = X[base + j * inner] - c; let t = s + y; c = (t - s) - y; s = t; } let r = s;"
        : "var r = 0; for (var j = 0; j < n; j++) { r += i32(X[base + j * inner]); }";
      break;
    case "prod":
      body = isF ? "var r = 1.0; for (var j = 0; j < n; j++) { r *= X[base + j * inner]; }" : "var r = 1; for (var j = 0; j < n; j++) { r *= i32(X[base + j * inner]); }";
      break;
    case "max": case "min": {
      const cmp = op === "max" ? ">" : "<";
      body = isF
        ? `var r = ${op === "max" ? "ninf()" : "inf()"}; for (var j = 0; j < n; j++) { let v = X[base + j * inner]; if (isnan_(v)) { r = v; break; } if (v ${cmp} r) { r = v; } }`
        : `var r = i32(X[base]); for (var j = 1; j < n; j++) { let v = i32(X[base + j * inner]); if (v ${cmp} r) { r = v; } }`;
      break;
    }
    case "argmax": case "argmin": {
      const cmp = op === "argmax" ? ">" : "<";
      body = `var best = ${op === "argmax" ? "ninf()" : "inf()"}; var r = 0; for (var j = 0; j < n; j++) { let v = f32(X[base + j * inner]); if (isnan_(v)) { r = j; break; } if (v ${cmp} best) { best = v; r = j; } }`;
      break;
    }
  }
  const code = `${binding(0, ti)}\n${binding(1, to, true)}\n${params(2)}\n${MATH}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  let total = u32(P[0]);
  if (i >= total) { return; }
  let n = P[1]; let inner = P[2];
  let o = i32(i) / inner; let k = i32(i) % inner;
  let base = P[3] + o * n * inner + k;
  ${body}
  A[u32(P[4]) + i] = ${to === "f32" ? "f32(r)" : "i32(r)"};
}`;
  rt.dispatch(code, [buf(x), buf(out)], Int32Array.of(outer * inner, n, inner, x.offset, out.offset), grid(outer * inner));
}

export type { DType };
