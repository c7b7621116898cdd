// Tensor factories (torch.tensor, zeros, ones, full, arange, linspace, eye, randn, rand, randint, …).
import type { DType } from "./dtype.js";
import { checkShape, numel, type Shape } from "./shape.js";
import { defaultGenerator, type Generator } from "./random.js";
import { Tensor, type NestedArray } from "./tensor.js";
import { uninit, zerosOf } from "./ops/util.js";

export interface CreateOptions { dtype?: DType; requiresGrad?: boolean }

function finish(t: Tensor, o: CreateOptions): Tensor { return o.requiresGrad ? t.requiresGrad_(true) : t; }

/** torch.tensor: from a number, a (nested) array or a typed array. */
export function tensor(data: NestedArray | ArrayLike<number>, o: CreateOptions = {}): Tensor {
  if (ArrayBuffer.isView(data)) return finish(Tensor.fromArray(data as unknown as ArrayLike<number>, undefined, o.dtype), o);
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) { shape.push(probe.length); probe = probe[0]; }
  const flat: number[] = [];
  let sawBool = typeof probe === "boolean";
  const walk = (v: unknown, dim: number): void => {
    if (dim === shape.length) {
      if (typeof v === "boolean") { sawBool = true; flat.push(v ? 1 : 0); return; }
      if (typeof v !== "number") throw new Error(`tensor: expected numbers, found ${typeof v} at depth ${dim}`);
      flat.push(v); return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) throw new Error(`tensor: ragged nested array (expected length ${shape[dim]} at depth ${dim})`);
    for (const x of v) walk(x, dim + 1);
  };
  walk(data, 0);
  const dtype = o.dtype ?? (sawBool ? "bool" : "float32");
  return finish(Tensor.fromArray(flat, shape, dtype), o);
}

export function zeros(shape: Shape, o: CreateOptions = {}): Tensor { checkShape(shape, "zeros"); return finish(zerosOf(shape, o.dtype), o); }
export function ones(shape: Shape, o: CreateOptions = {}): Tensor { return full(shape, 1, o); }
export function full(shape: Shape, value: number, o: CreateOptions = {}): Tensor {
  checkShape(shape, "full");
  const t = uninit(shape, o.dtype);
  t.storage.data.fill(value);
  return finish(t, o);
}
export function zerosLike(t: Tensor, o: CreateOptions = {}): Tensor { return zeros(t.shape, { dtype: t.dtype, ...o }); }
export function onesLike(t: Tensor, o: CreateOptions = {}): Tensor { return ones(t.shape, { dtype: t.dtype, ...o }); }
export function fullLike(t: Tensor, v: number, o: CreateOptions = {}): Tensor { return full(t.shape, v, { dtype: t.dtype, ...o }); }

/** arange(end) or arange(start, end, step); int32 when all arguments are integers (like torch). */
export function arange(a: number, b?: number, step = 1, o: CreateOptions = {}): Tensor {
  const [start, end] = b === undefined ? [0, a] : [a, b];
  if (step === 0) throw new Error("arange: step must be non-zero");
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dtype = o.dtype ?? ([start, end, step].every(Number.isInteger) ? "int32" : "float32");
  const t = uninit([n], dtype), d = t.storage.data;
  for (let i = 0; i < n; i++) d[i] = start + i * step;
  return finish(t, o);
}

export function linspace(start: number, end: number, steps: number, o: CreateOptions = {}): Tensor {
  const t = uninit([steps], o.dtype ?? "float32"), d = t.storage.data;
  for (let i = 0; i < steps; i++) d[i] = steps === 1 ? start : start + ((end - start) * i) / (steps - 1);
  return finish(t, o);
}

export function eye(n: number, m = n, o: CreateOptions = {}): Tensor {
  const t = zerosOf([n, m], o.dtype), d = t.storage.data;
  for (let i = 0; i < Math.min(n, m); i++) d[i * m + i] = 1;
  return finish(t, o);
}

export interface RandOptions extends CreateOptions { generator?: Generator }

/** Standard normal samples from the (seedable) generator. */
export function randn(shape: Shape, o: RandOptions = {}): Tensor {
  checkShape(shape, "randn");
  const g = o.generator ?? defaultGenerator, t = uninit(shape), d = t.storage.data;
  for (let i = 0; i < d.length; i++) d[i] = g.normal();
  return finish(t, o);
}

/** Uniform samples in [0, 1). */
export function rand(shape: Shape, o: RandOptions = {}): Tensor {
  checkShape(shape, "rand");
  const g = o.generator ?? defaultGenerator, t = uninit(shape), d = t.storage.data;
  for (let i = 0; i < d.length; i++) d[i] = g.random();
  return finish(t, o);
}

/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: Shape, o: RandOptions = {}): Tensor {
  if (!(high > low)) throw new Error(`randint: high (${high}) must be greater than low (${low})`);
  const g = o.generator ?? defaultGenerator, t = uninit(shape, "int32"), d = t.storage.data;
  for (let i = 0; i < d.length; i++) d[i] = low + g.int(high - low);
  return t;
}

/** A random permutation of 0..n-1 (Fisher–Yates). */
export function randperm(n: number, o: RandOptions = {}): Tensor {
  const g = o.generator ?? defaultGenerator, t = uninit([n], "int32"), d = t.storage.data;
  for (let i = 0; i < n; i++) d[i] = i;
  for (let i = n - 1; i > 0; i--) { const j = g.int(i + 1); const tmp = d[i]; d[i] = d[j]; d[j] = tmp; }
  return t;
}

export { numel };
