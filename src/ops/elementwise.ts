// Elementwise ops with broadcasting, and their gradients (each gradient composed from the same ops).
import type { DType } from "../dtype.js";
import { broadcastShapes, broadcastStrides, sameShape, shapeStr } from "../shape.js";
import { record } from "../autograd.js";
import { K } from "../backend/registry.js";
import type { BinaryOp, UnaryOp } from "../backend/kernels.js";
import { Tensor, type TensorLike } from "../tensor.js";
import { devOps, lift, onDevice, scalarTensor, sumToShape, uninit, view } from "./util.js";
import { commonDevice } from "../device.js";

// ---------- unary ----------
type UnaryGrad = (g: Tensor, x: Tensor, y: Tensor) => Tensor | null;
const SQRT_2_OVER_PI = 2 / Math.sqrt(Math.PI);

const unaryGrads: Partial<Record<UnaryOp, UnaryGrad>> = {
  neg: (g) => g.neg(),
  exp: (g, _x, y) => g.mul(y),
  log: (g, x) => g.div(x),
  log1p: (g, x) => g.div(x.add(1)),
  expm1: (g, _x, y) => g.mul(y.add(1)),
  sqrt: (g, _x, y) => g.mul(0.5).div(y),
  rsqrt: (g, _x, y) => g.mul(y.mul(y).mul(y)).mul(-0.5),
  abs: (g, x) => g.mul(x.sign()),
  sin: (g, x) => g.mul(x.cos()),
  cos: (g, x) => g.mul(x.sin()).neg(),
  tanh: (g, _x, y) => g.mul(y.mul(y).neg().add(1)),
  sigmoid: (g, _x, y) => g.mul(y.mul(y.neg().add(1))),
  relu: (g, x) => g.mul(x.gt(0).float()),
  erf: (g, x) => g.mul(x.square().neg().exp().mul(SQRT_2_OVER_PI)),
  reciprocal: (g, _x, y) => g.mul(y.square()).neg(),
  square: (g, x) => g.mul(x).mul(2),
  gelu: (g, x) => g.mul(unaryOp(x, "geluGrad")),
  geluTanh: (g, x) => g.mul(unaryOp(x, "geluTanhGrad")),
};
const zeroGrad = new Set<UnaryOp>(["sign", "floor", "ceil", "round"]);

export function unaryOp(x: Tensor, op: UnaryOp): Tensor {
  const outDtype: DType = op === "not" ? "bool" : "float32";
  const y = uninit(x.shape, outDtype, x);
  if (onDevice(x)) devOps(x).unary(op, x, y);
  else K.unary(op, view(x), x.shape, y.storage.data as Float32Array);
  if (x.dtype !== "float32" || op === "not") return y;
  const gf = unaryGrads[op];
  if (!gf) {
    if (zeroGrad.has(op)) return record(y, op, [x], (g) => [g.mul(0)]);
    return y;
  }
  return record(y, op, [x], (g) => [gf(g, x, y)], [x, y]);
}

export function logicalNot(x: Tensor): Tensor { return unaryOp(x, "not"); }

// ---------- binary ----------
function resultDtype(op: BinaryOp, a: Tensor, b: Tensor): DType {
  if (["eq", "ne", "lt", "le", "gt", "ge", "and", "or"].includes(op)) return "bool";
  if (op === "div" || op === "pow") return "float32";
  return a.dtype === "float32" || b.dtype === "float32" ? "float32" : "int32";
}

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, op);
  if (a.storage.device !== b.storage.device) commonDevice(op, a, b);
  const out = uninit(shape, resultDtype(op, a, b), a);
  if (onDevice(a)) { devOps(a).binary(op, a, broadcastStrides(a.shape, a.strides, shape), b, broadcastStrides(b.shape, b.strides, shape), out); return out; }
  K.binary(op, view(a, broadcastStrides(a.shape, a.strides, shape)), view(b, broadcastStrides(b.shape, b.strides, shape)),
    shape, out.storage.data);
  return out;
}

function binaryDiff(op: BinaryOp, ax: TensorLike, bx: TensorLike,
  grads: (g: Tensor, a: Tensor, b: Tensor, y: Tensor) => [Tensor | null, Tensor | null], saveOut = false): Tensor {
  const a = ax instanceof Tensor ? ax : lift(ax, bx as Tensor);
  const b = lift(bx, a);
  const y = binaryRaw(op, a, b);
  if (y.dtype !== "float32") return y;
  return record(y, op, [a, b], (g) => {
    const [ga, gb] = grads(g, a, b, y);
    return [ga && a.requiresGrad ? sumToShape(ga, a.shape) : null, gb && b.requiresGrad ? sumToShape(gb, b.shape) : null];
  }, saveOut ? [a, b, y] : [a, b]);
}

export const add = (a: TensorLike, b: TensorLike) => binaryDiff("add", a, b, (g) => [g, g]);
export const sub = (a: TensorLike, b: TensorLike) => binaryDiff("sub", a, b, (g, _a, b) => [g, b.requiresGrad ? g.neg() : null]);
export const mul = (a: TensorLike, b: TensorLike) => binaryDiff("mul", a, b, (g, a, b) => [a.requiresGrad ? g.mul(b) : null, b.requiresGrad ? g.mul(a) : null]);
export const div = (a: TensorLike, b: TensorLike) => binaryDiff("div", a, b,
  (g, a, b) => [a.requiresGrad ? g.div(b) : null, b.requiresGrad ? g.mul(a).div(b.square()).neg() : null]);
export const pow = (a: TensorLike, b: TensorLike) => binaryDiff("pow", a, b, (g, a, b, y) => [
  a.requiresGrad ? g.mul(b).mul(a.pow(b.sub(1))) : null,
  b.requiresGrad ? g.mul(y).mul(a.log()) : null,
], true);
// On ties the gradient is split evenly, as PyTorch does for maximum/minimum.
export const maximum = (a: TensorLike, b: TensorLike) => binaryDiff("maximum", a, b, (g, a, b) => tieSplit(g, a, b, "gt"));
export const minimum = (a: TensorLike, b: TensorLike) => binaryDiff("minimum", a, b, (g, a, b) => tieSplit(g, a, b, "lt"));

function tieSplit(g: Tensor, a: Tensor, b: Tensor, win: "gt" | "lt"): [Tensor, Tensor] {
  const wa = binaryRaw(win, a, b).float().add(binaryRaw("eq", a, b).float().mul(0.5));
  return [g.mul(wa), g.mul(wa.neg().add(1))];
}

export function compare(a: Tensor, b: TensorLike, op: BinaryOp): Tensor {
  return binaryRaw(op, a, lift(b, a));
}

export function mulScalarLike(o: TensorLike, alpha: number): TensorLike {
  return o instanceof Tensor ? o.mul(alpha) : o * alpha;
}

// ---------- selection ----------
/** torch.where(cond, a, b) with broadcasting; cond must be bool. */
export function where(cond: Tensor, ax: TensorLike, bx: TensorLike): Tensor {
  if (cond.dtype !== "bool") throw new Error(`where: condition must be a bool tensor, got ${cond.dtype}`);
  const a = ax instanceof Tensor ? ax.float() : scalarTensor(ax, "float32", cond);
  const b = bx instanceof Tensor ? bx.float() : scalarTensor(bx, "float32", cond);
  const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, "where"), b.shape, "where");
  const dev = commonDevice("where", cond, a, b);
  const out = uninit(shape, "float32", cond);
  if (dev !== "cpu") devOps(cond).where(cond, broadcastStrides(cond.shape, cond.strides, shape), a, broadcastStrides(a.shape, a.strides, shape),
    b, broadcastStrides(b.shape, b.strides, shape), out);
  else K.where(view(cond, broadcastStrides(cond.shape, cond.strides, shape)), view(a, broadcastStrides(a.shape, a.strides, shape)),
    view(b, broadcastStrides(b.shape, b.strides, shape)), shape, out.storage.data as Float32Array);
  return record(out, "where", [a, b], (g) => [
    a.requiresGrad ? sumToShape(where(cond, g, 0), a.shape) : null,
    b.requiresGrad ? sumToShape(where(cond, 0, g), b.shape) : null,
  ], [cond]);
}

export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  if (mask.dtype !== "bool") throw new Error(`maskedFill: mask must be a bool tensor, got ${mask.dtype}`);
  const shape = broadcastShapes(x.shape, mask.shape, "maskedFill");
  if (!sameShape(shape, x.shape)) throw new Error(`maskedFill: mask ${shapeStr(mask.shape)} does not broadcast to the input ${shapeStr(x.shape)}`);
  return where(mask, value, x);
}

export function clamp(x: Tensor, lo: number | null, hi: number | null): Tensor {
  let y = x;
  if (lo !== null) y = binaryRaw("maximum", y, scalarTensor(lo, "float32", x));
  if (hi !== null) y = binaryRaw("minimum", y, scalarTensor(hi, "float32", x));
  if (y === x) return x.clone();
  // gradient flows where lo ≤ x ≤ hi (inclusive, like torch.clamp)
  return record(y, "clamp", [x], (g) => {
    let m = g;
    if (lo !== null) m = m.mul(binaryRaw("ge", x, scalarTensor(lo, "float32", x)).float());
    if (hi !== null) m = m.mul(binaryRaw("le", x, scalarTensor(hi, "float32", x)).float());
    return [m];
  }, [x]);
}

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x.clone();
  const out = uninit(x.shape, dtype, x);
  if (onDevice(x)) { devOps(x).copy(x, x.strides, out); return out; }
  if (dtype === "bool") K.binary("ne", view(x), { data: new Float32Array(1), offset: 0, strides: x.shape.map(() => 0) }, x.shape, out.storage.data);
  else if (dtype === "int32" && x.dtype === "float32") castTrunc(x, out);
  else K.copy(view(x), x.shape, out.storage.data);
  return out;
}

/** float → int32 truncates toward zero like torch's .int(). */
function castTrunc(x: Tensor, out: Tensor): void {
  const tmp = uninit(x.shape, "float32");
  K.copy(view(x), x.shape, tmp.storage.data);
  const src = tmp.storage.data, dst = out.storage.data;
  for (let i = 0; i < dst.length; i++) dst[i] = Math.trunc(src[i]);
  tmp.dispose();
}

export function fullLike(x: Tensor, v: number): Tensor {
  const t = uninit(x.shape, "float32", x);
  if (onDevice(x)) { devOps(x).fill(t, v); return t; }
  (t.storage.data as Float32Array).fill(v);
  return t;
}

/** this += alpha·o in place (no graph); `this` must be contiguous, o broadcastable to its shape. */
export function addInPlace(t: Tensor, o: Tensor, alpha: number): void {
  if (!t.isContiguous()) throw new Error("addInPlace: target must be contiguous");
  const shape = broadcastShapes(t.shape, o.shape, "addInPlace");
  if (!sameShape(shape, t.shape)) throw new Error(`addInPlace: ${shapeStr(o.shape)} does not broadcast to ${shapeStr(t.shape)}`);
  if (t.storage.device !== "cpu" || o.storage.device !== "cpu") {
    commonDevice("addInPlace", t, o);
    devOps(t).axpy(t, o, broadcastStrides(o.shape, o.strides, t.shape), alpha);
    return;
  }
  const d = t.storage.data, od = o.storage.data;
  if (o.isContiguous() && sameShape(o.shape, t.shape)) {
    const off = t.offset, oo = o.offset, n = t.numel();
    for (let i = 0; i < n; i++) d[off + i] += alpha * od[oo + i];
    return;
  }
  const tmp = uninit(t.shape);
  K.copy(view(o, broadcastStrides(o.shape, o.strides, t.shape)), t.shape, tmp.storage.data);
  const td = tmp.storage.data;
  for (let i = 0; i < td.length; i++) d[t.offset + i] += alpha * td[i];
  tmp.dispose();
}
