// Reductions over one or more axes, with keepDim, and their gradients.
import { normAxis, numel } from "../shape.js";
import { record } from "../autograd.js";
import { K } from "../backend/registry.js";
import type { ReduceOp } from "../backend/kernels.js";
import type { Tensor } from "../tensor.js";
import { devOps, onDevice, uninit } from "./util.js";

function axesOf(x: Tensor, dim: number | number[] | undefined, op: string): number[] {
  if (dim === undefined) return x.shape.map((_, i) => i);
  const dims = (Array.isArray(dim) ? dim : [dim]).map((d) => normAxis(d, x.ndim, op));
  return [...new Set(dims)].sort((a, b) => a - b);
}

/** Reduce a single axis (kept as size 1) with a raw kernel; no graph. */
function reduceAxis(x: Tensor, axis: number, op: ReduceOp): Tensor {
  const c = x.contiguous();
  const outer = numel(x.shape.slice(0, axis)), n = x.shape[axis], inner = numel(x.shape.slice(axis + 1));
  const shape = x.shape.map((d, i) => (i === axis ? 1 : d));
  const out = uninit(shape, op === "argmax" || op === "argmin" ? "int32" : x.dtype === "float32" ? "float32" : "int32", x);
  if (n === 0 && (op === "max" || op === "min" || op === "argmax" || op === "argmin")) {
    throw new Error(`${op}: cannot reduce over an empty dimension (axis ${axis} of shape [${x.shape}])`);
  }
  // the contiguous view may start at an offset into its storage (e.g. narrow(0, 1, 2)): pass its own elements
  if (onDevice(c)) devOps(c).reduce(op, c, outer, n, inner, out);
  else K.reduce(op, c.storage.data.subarray(c.offset, c.offset + c.numel()), outer, n, inner, out.storage.data as Float32Array | Int32Array);
  if (c !== x) c.dispose();
  return out;
}

function reduceAxes(x: Tensor, axes: number[], op: ReduceOp): Tensor {
  let y = x;
  for (let i = axes.length - 1; i >= 0; i--) {
    const next = reduceAxis(y, axes[i], op);
    if (y !== x) y.dispose();
    y = next;
  }
  return y === x ? x.clone() : y;
}

function dropAxes(shape: number[], axes: number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

export function sum(x: Tensor, dim: number | number[] | undefined, keepDim: boolean): Tensor {
  const axes = axesOf(x, dim, "sum");
  const kept = reduceAxes(x.dtype === "bool" ? x.int() : x, axes, "sum");
  const y = keepDim ? kept : kept.reshape(dropAxes(x.shape, axes));
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return record(y, "sum", [x], (g) => [g.reshape(keptShape).expand(x.shape)]);
}

export function mean(x: Tensor, dim: number | number[] | undefined, keepDim: boolean): Tensor {
  const axes = axesOf(x, dim, "mean");
  const n = axes.reduce((p, a) => p * x.shape[a], 1);
  return sum(x, axes, keepDim).div(n);
}

export function maxMin(x: Tensor, dim: number | undefined, keepDim: boolean, op: "max" | "min"): Tensor {
  const axes = axesOf(x, dim, op);
  const kept = reduceAxes(x, axes, op);
  const y = keepDim ? kept : kept.reshape(dropAxes(x.shape, axes));
  return record(y, op, [x], (g) => {
    // gradient shared evenly between tied extrema
    const hit = x.eq(kept).float();
    const count = hit.sum(axes, true);
    const keptShape = kept.shape;
    return [hit.div(count).mul(g.reshape(keptShape))];
  }, [x, kept]);
}

export function argReduce(x: Tensor, dim: number | undefined, keepDim: boolean, op: "argmax" | "argmin"): Tensor {
  if (dim === undefined) return reduceAxis(x.reshape([-1]), 0, op).reshape(keepDim ? x.shape.map(() => 1) : []);
  const axis = normAxis(dim, x.ndim, op);
  const y = reduceAxis(x, axis, op);
  return keepDim ? y : y.reshape(dropAxes(x.shape, [axis]));
}

export function variance(x: Tensor, dim: number | number[] | undefined, unbiased: boolean, keepDim: boolean): Tensor {
  const axes = axesOf(x, dim, "var");
  const n = axes.reduce((p, a) => p * x.shape[a], 1);
  const mu = mean(x, axes, true);
  const d = x.sub(mu);
  return d.mul(d).sum(axes, keepDim).div(Math.max(unbiased ? n - 1 : n, 0));
}

/** log Σ exp(x) along dim, stabilised by the max. */
export function logsumexp(x: Tensor, dim: number, keepDim: boolean): Tensor {
  const axis = normAxis(dim, x.ndim, "logsumexp");
  const m = reduceAxis(x, axis, "max");
  const safe = m.maskedFill(m.eq(-Infinity), 0); // rows of only -inf stay -inf
  const r = x.sub(safe).exp().sum(axis, true).log().add(safe);
  return keepDim ? r : r.squeeze(axis);
}
