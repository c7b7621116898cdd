// Helpers shared by the op files: output allocation, scalar lifting, broadcast-gradient reduction.
import type { DType } from "../dtype.js";
import { numel, shapeStr, type Shape } from "../shape.js";
import { Storage } from "../storage.js";
import { Tensor, type TensorLike } from "../tensor.js";
import type { StridedView } from "../backend/kernels.js";
import type { DeviceOps } from "../device.js";

/** A fresh tensor whose contents the caller will overwrite completely; on `like`'s device when given. */
export function uninit(shape: Shape, dtype: DType = "float32", like?: Tensor | null): Tensor {
  if (like && like.storage.device !== "cpu") return new Tensor(Storage.onDevice(like.storage.deviceImpl, dtype, numel(shape)), shape);
  return new Tensor(Storage.alloc(dtype, numel(shape), false), shape);
}

export function zerosOf(shape: Shape, dtype: DType = "float32", like?: Tensor | null): Tensor {
  if (like && like.storage.device !== "cpu") { const t = uninit(shape, dtype, like); devOps(t).fill(t, 0); return t; }
  return new Tensor(Storage.alloc(dtype, numel(shape), true), shape);
}

export function scalarTensor(v: number, dtype: DType = "float32", like?: Tensor | null): Tensor {
  if (like && like.storage.device !== "cpu") { const t = uninit([], dtype, like); devOps(t).fill(t, v); return t; }
  const t = uninit([], dtype);
  t.storage.data[0] = v;
  return t;
}

/** Whether t lives on a device (not the CPU). */
export function onDevice(t: Tensor): boolean { return t.storage.device !== "cpu"; }

/** The op table of t's device. */
export function devOps(t: Tensor): DeviceOps { return t.storage.deviceImpl.ops; }

/** Lift a JS number to a 0-d tensor (int32 when the partner is int32 and the value is an integer). */
export function lift(x: TensorLike, like: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x !== "number") throw new TypeError(`expected a Tensor or a number, got ${typeof x}`);
  return scalarTensor(x, like.dtype === "int32" && Number.isInteger(x) ? "int32" : "float32", like);
}

export function view(t: Tensor, strides?: readonly number[]): StridedView<any> {
  return { data: t.storage.data, offset: t.offset, strides: strides ?? t.strides };
}

/** Sum a broadcast gradient back down to `shape` (the inverse of broadcasting). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (g.ndim === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  if (lead < 0) throw new Error(`sumToShape: gradient ${shapeStr(g.shape)} has fewer dims than ${shapeStr(shape)}`);
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  let r = dims.length ? g.sum(dims, true) : g;
  if (lead) r = r.reshape(shape as number[]);
  return r.reshape(shape as number[]);
}

export function assertFloat(t: Tensor, op: string): void {
  if (t.dtype !== "float32") throw new Error(`${op}: expected a float32 tensor, got ${t.dtype}`);
}
