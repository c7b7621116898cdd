// Shape and layout ops. reshape/permute/transpose/expand/narrow/select/squeeze are views (shared storage, new
// strides); everything else copies. Gradients undo the movement (permute back, sum over expanded dims, pad slices).
import { contiguousStrides, isContiguous, normAxis, numel, shapeStr, checkShape } from "../shape.js";
import { record } from "../autograd.js";
import { K } from "../backend/registry.js";
import { forEachStrided } from "../backend/ref/elementwise.js";
import type { AnyTypedArray } from "../dtype.js";
import { Tensor, type NestedArray } from "../tensor.js";
import { devOps, onDevice, sumToShape, uninit, view as sview, zerosOf } from "./util.js";
import { commonDevice } from "../device.js";

function makeView(x: Tensor, shape: number[], strides: number[], offset: number): Tensor {
  return new Tensor(x.storage, shape, strides, offset);
}

/** x's elements in row-major order: a view into its buffer when x is contiguous (to read, never to write), else a copy. */
export function contiguousData(x: Tensor): AnyTypedArray {
  // read-only (every caller reads): does not count as a write to x's storage (Storage.version)
  const d = x.storage.dataForRead();
  if (x.isContiguous()) return d.subarray(x.offset, x.offset + x.numel());
  const out = new (d.constructor as { new (n: number): AnyTypedArray })(x.numel());
  K.copy(sview(x), x.shape, out);
  return out;
}

export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous()) return x;
  return clone(x);
}

export function clone(x: Tensor): Tensor {
  const out = uninit(x.shape, x.dtype, x);
  if (onDevice(x)) devOps(x).copy(x, x.strides, out);
  else K.copy(sview(x), x.shape, out.storage.data);
  return record(out, "clone", [x], (g) => [g]);
}

function inferShape(x: Tensor, shape: number[], op: string): number[] {
  const n = x.numel();
  const neg = shape.filter((d) => d === -1).length;
  if (neg > 1) throw new Error(`${op}: only one dimension can be -1, got ${shapeStr(shape)}`);
  const known = shape.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const out = shape.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  checkShape(out, op);
  if (numel(out) !== n) throw new Error(`${op}: shape ${shapeStr(shape)} is invalid for input of shape ${shapeStr(x.shape)} (${n} elements)`);
  return out;
}

export function view(x: Tensor, shape: number[]): Tensor {
  const s = inferShape(x, shape, "view");
  if (!x.isContiguous()) throw new Error(`view: input of shape ${shapeStr(x.shape)} is not contiguous; use reshape()`);
  const y = makeView(x, s, contiguousStrides(s), x.offset);
  return record(y, "view", [x], (g) => [g.reshape(x.shape)]);
}

export function reshape(x: Tensor, shape: number[]): Tensor {
  const s = inferShape(x, shape, "reshape");
  const src = x.isContiguous() ? x : clone(x);
  const y = makeView(src, s, contiguousStrides(s), src.offset);
  return record(y, "reshape", [x], (g) => [g.reshape(x.shape)]);
}

export function permute(x: Tensor, dims: number[]): Tensor {
  if (dims.length !== x.ndim) throw new Error(`permute: got ${dims.length} dims ${shapeStr(dims)} for a tensor of shape ${shapeStr(x.shape)}`);
  const p = dims.map((d) => normAxis(d, x.ndim, "permute"));
  if (new Set(p).size !== p.length) throw new Error(`permute: repeated dim in ${shapeStr(dims)}`);
  const y = makeView(x, p.map((d) => x.shape[d]), p.map((d) => x.strides[d]), x.offset);
  const inv = new Array<number>(p.length);
  p.forEach((d, i) => (inv[d] = i));
  return record(y, "permute", [x], (g) => [g.permute(inv)]);
}

export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const a = normAxis(d0, x.ndim, "transpose"), b = normAxis(d1, x.ndim, "transpose");
  const p = x.shape.map((_, i) => i);
  p[a] = b; p[b] = a;
  return permute(x, p);
}

export function expand(x: Tensor, shape: number[]): Tensor {
  if (shape.length < x.ndim) throw new Error(`expand: target ${shapeStr(shape)} has fewer dims than input ${shapeStr(x.shape)}`);
  const lead = shape.length - x.ndim;
  const outShape: number[] = [], strides: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    const src = i < lead ? 1 : x.shape[i - lead];
    const want = shape[i] === -1 ? src : shape[i];
    if (src !== want && src !== 1) throw new Error(`expand: cannot expand ${shapeStr(x.shape)} to ${shapeStr(shape)} (dim ${i}: ${src} vs ${want})`);
    outShape.push(want);
    strides.push(i < lead || (src === 1 && want !== 1) ? 0 : x.strides[i - lead]);
  }
  const y = makeView(x, outShape, strides, x.offset);
  return record(y, "expand", [x], (g) => [sumToShape(g, x.shape)]);
}

/** Copy `src` into the (strided) region of `dst` described by shape/strides/offset. */
function writeRegion(dst: Tensor, shape: number[], strides: number[], offset: number, src: Tensor): void {
  if (dst.storage.device !== "cpu" || src.storage.device !== "cpu") {
    commonDevice("cat/slice", dst, src);
    devOps(dst).writeRegion(dst, shape, strides, offset, src);
    return;
  }
  const dd = dst.storage.data, sd = src.storage.data;
  forEachStrided(shape, [{ offset, strides }, sview(src)], (_o, a, b) => { dd[a] = sd[b]; });
}

/** Gradient of a strided sub-view: zeros of the input's shape with g written into the viewed region. */
function padGrad(x: Tensor, g: Tensor, shape: number[], relStrides: number[], relOffset: number): Tensor {
  const z = zerosOf(x.shape, "float32", g);
  writeRegion(z, shape, relStrides, relOffset, g);
  return z;
}

export function slice(x: Tensor, dim: number, start?: number, end?: number, step = 1): Tensor {
  const d = normAxis(dim, x.ndim, "slice"), n = x.shape[d];
  if (!Number.isInteger(step) || step <= 0) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const norm = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const s = start === undefined ? 0 : norm(start), e = end === undefined ? n : norm(end);
  const len = Math.max(0, Math.ceil((e - s) / step));
  const shape = [...x.shape]; shape[d] = len;
  const strides = [...x.strides]; strides[d] *= step;
  const y = makeView(x, shape, strides, x.offset + s * x.strides[d]);
  const cs = contiguousStrides(x.shape);
  const rel = [...cs]; rel[d] *= step;
  return record(y, "slice", [x], (g) => [padGrad(x, g, shape, rel, s * cs[d])]);
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normAxis(dim, x.ndim, "narrow");
  if (start < 0 || length < 0 || start + length > x.shape[d]) {
    throw new Error(`narrow: range [${start}, ${start + length}) out of bounds for dim ${dim} of size ${x.shape[d]}`);
  }
  return slice(x, d, start, start + length);
}

export function select(x: Tensor, dim: number, index: number): Tensor {
  const d = normAxis(dim, x.ndim, "select"), n = x.shape[d];
  const i = index < 0 ? index + n : index;
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`select: index ${index} out of range for dim ${dim} of size ${n}`);
  return squeeze(slice(x, d, i, i + 1), d);
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  const drop = dim === undefined ? x.shape.map((s, i) => (s === 1 ? i : -1)).filter((i) => i >= 0)
    : x.shape[normAxis(dim, x.ndim, "squeeze")] === 1 ? [normAxis(dim, x.ndim, "squeeze")] : [];
  const y = makeView(x, x.shape.filter((_, i) => !drop.includes(i)), x.strides.filter((_, i) => !drop.includes(i)), x.offset);
  return record(y, "squeeze", [x], (g) => [g.reshape(x.shape)]);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normAxis(dim, x.ndim + 1, "unsqueeze");
  const shape = [...x.shape], strides = [...x.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < x.ndim ? x.strides[d] * x.shape[d] : 1);
  const y = makeView(x, shape, strides, x.offset);
  return record(y, "unsqueeze", [x], (g) => [g.reshape(x.shape)]);
}

export function flatten(x: Tensor, startDim: number, endDim: number): Tensor {
  if (x.ndim === 0) return x.reshape([1]);
  const s = normAxis(startDim, x.ndim, "flatten"), e = normAxis(endDim, x.ndim, "flatten");
  const shape = [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

export function cat(xs: Tensor[], dim = 0): Tensor {
  if (!xs.length) throw new Error("cat: expects a non-empty list of tensors");
  const ref = xs[0], d = normAxis(dim, ref.ndim, "cat");
  for (const t of xs) {
    if (t.ndim !== ref.ndim || t.shape.some((s, i) => i !== d && s !== ref.shape[i])) {
      throw new Error(`cat: shapes ${shapeStr(ref.shape)} and ${shapeStr(t.shape)} differ outside dim ${dim}`);
    }
    if (t.dtype !== ref.dtype) throw new Error(`cat: dtypes ${ref.dtype} and ${t.dtype} differ`);
  }
  const shape = [...ref.shape]; shape[d] = xs.reduce((p, t) => p + t.shape[d], 0);
  const out = uninit(shape, ref.dtype, ref);
  const cs = contiguousStrides(shape);
  let at = 0;
  for (const t of xs) { writeRegion(out, t.shape, cs, at * cs[d], t); at += t.shape[d]; }
  return record(out, "cat", xs, (g) => {
    let s = 0;
    return xs.map((t) => { const piece = g.narrow(d, s, t.shape[d]); s += t.shape[d]; return piece; });
  });
}

export function stack(xs: Tensor[], dim = 0): Tensor {
  if (!xs.length) throw new Error("stack: expects a non-empty list of tensors");
  const d = normAxis(dim, xs[0].ndim + 1, "stack");
  return cat(xs.map((t) => unsqueeze(t, d)), d);
}

export function split(x: Tensor, sizeOrSections: number | number[], dim: number): Tensor[] {
  const d = normAxis(dim, x.ndim, "split"), n = x.shape[d];
  const sizes: number[] = [];
  if (Array.isArray(sizeOrSections)) {
    if (sizeOrSections.reduce((a, b) => a + b, 0) !== n) throw new Error(`split: sections ${shapeStr(sizeOrSections)} do not sum to ${n}`);
    sizes.push(...sizeOrSections);
  } else {
    if (sizeOrSections <= 0) throw new Error(`split: size must be positive, got ${sizeOrSections}`);
    for (let s = 0; s < n; s += sizeOrSections) sizes.push(Math.min(sizeOrSections, n - s));
  }
  let s = 0;
  return sizes.map((len) => { const t = narrow(x, d, s, len); s += len; return t; });
}

export function chunk(x: Tensor, chunks: number, dim: number): Tensor[] {
  const n = x.shape[normAxis(dim, x.ndim, "chunk")];
  return split(x, Math.ceil(n / chunks), dim);
}

function checkIndex(index: Tensor, bound: number, op: string): Int32Array {
  if (index.dtype !== "int32") throw new Error(`${op}: index must be an int32 tensor, got ${index.dtype}`);
  const idx = contiguousData(index) as Int32Array;
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] < 0 || idx[i] >= bound) throw new Error(`${op}: index ${idx[i]} out of range for size ${bound}`);
  }
  return idx;
}

/**
 * gather / indexSelect on a device: an index on the CPU is checked there and uploaded (host data, like embedding ids);
 * one already on the device is not checked (an out-of-range entry gives NaN). idxStrides read the index over the
 * output's shape; the backward scatter-adds on the device.
 */
function gatherOnDevice(op: string, x: Tensor, d: number, index: Tensor, outShape: number[], idxStrides: (i: Tensor) => number[]): Tensor {
  if (index.dtype !== "int32") throw new Error(`${op}: index must be an int32 tensor, got ${index.dtype}`);
  let idx = index;
  if (!onDevice(index)) { checkIndex(index, x.shape[d], op); idx = index.to(x.device); }
  commonDevice(op, x, idx);
  const out = uninit(outShape, x.dtype, x), is = idxStrides(idx);
  devOps(x).gatherAxis(x, idx, is, d, out);
  return record(out, op, [x], (g) => {
    const dx = uninit(x.shape, "float32", x);
    devOps(x).scatterAxis(g.contiguous(), idx, is, d, dx);
    return [dx];
  }, [idx]);
}

/** Rows of `x` along `dim` picked by a 1-D int32 index. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normAxis(dim, x.ndim, "indexSelect");
  if (index.ndim !== 1) throw new Error(`indexSelect: index must be 1-D, got shape ${shapeStr(index.shape)}`);
  if (onDevice(x) || onDevice(index)) {
    if (!onDevice(x)) commonDevice("indexSelect", x, index);
    const shape = x.shape.map((s, k) => (k === d ? index.shape[0] : s));
    return gatherOnDevice("indexSelect", x, d, index, shape, (i) => shape.map((_, k) => (k === d ? i.strides[0] : 0)));
  }
  const idx = checkIndex(index, x.shape[d], "indexSelect");
  // move dim to the front so each selected slice is one contiguous row
  const front = d === 0 ? x.contiguous() : x.transpose(0, d).contiguous();
  const cols = numel(front.shape.slice(1));
  const outFront = uninit([idx.length, ...front.shape.slice(1)], x.dtype);
  const src = front.storage.data, dst = outFront.storage.data;
  for (let i = 0; i < idx.length; i++) dst.set(src.subarray(front.offset + idx[i] * cols, front.offset + (idx[i] + 1) * cols), i * cols);
  const y = d === 0 ? outFront : outFront.transpose(0, d).contiguous();
  return record(y, "indexSelect", [x], (g) => {
    const gf = (d === 0 ? g : g.transpose(0, d)).contiguous();
    const acc = zerosOf(front.shape);
    K.scatterAddRows(gf.storage.data as Float32Array, cols, idx, acc.storage.data as Float32Array, -1);
    return [d === 0 ? acc : acc.transpose(0, d).contiguous()];
  });
}

/** torch.gather: out[..., i, ...] = x[..., index[..., i, ...], ...] along `dim`; index has x's rank. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normAxis(dim, x.ndim, "gather");
  if (index.ndim !== x.ndim) throw new Error(`gather: index rank ${index.ndim} must equal input rank ${x.ndim}`);
  if (onDevice(x) || onDevice(index)) {
    if (!onDevice(x)) commonDevice("gather", x, index);
    index.shape.forEach((s, k) => {
      if (k !== d && s > x.shape[k]) throw new Error(`gather: index ${shapeStr(index.shape)} is larger than input ${shapeStr(x.shape)} on dim ${k}`);
    });
    return gatherOnDevice("gather", x, d, index, [...index.shape], (i) => [...i.strides]);
  }
  const idx = checkIndex(index, x.shape[d], "gather");
  const xs = x.strides, out = uninit(index.shape, x.dtype), od = out.storage.data, xd = x.storage.data;
  const ishape = index.shape, cs = contiguousStrides(ishape);
  for (let o = 0; o < idx.length; o++) {
    let off = x.offset, rem = o;
    for (let k = 0; k < ishape.length; k++) {
      const c = Math.floor(rem / cs[k]); rem -= c * cs[k];
      off += (k === d ? idx[o] : c) * xs[k];
    }
    od[o] = xd[off];
  }
  return record(out, "gather", [x], (g) => {
    const gc = contiguousData(g) as Float32Array, acc = zerosOf(x.shape), ad = acc.storage.data, xcs = contiguousStrides(x.shape);
    for (let o = 0; o < idx.length; o++) {
      let off = 0, rem = o;
      for (let k = 0; k < ishape.length; k++) {
        const c = Math.floor(rem / cs[k]); rem -= c * cs[k];
        off += (k === d ? idx[o] : c) * xcs[k];
      }
      ad[off] += gc[o];
    }
    return [acc];
  });
}

export function repeat(x: Tensor, times: number[]): Tensor {
  if (times.length < x.ndim) throw new Error(`repeat: need at least ${x.ndim} repeat counts, got ${times.length}`);
  const lead = times.length - x.ndim;
  const src = [...new Array(lead).fill(1), ...x.shape];
  const inter: number[] = [], expanded: number[] = [];
  src.forEach((s, i) => { inter.push(1, s); expanded.push(times[i], s); });
  return x.reshape(inter).expand(expanded).reshape(src.map((s, i) => s * times[i]));
}

/** Keep the lower (j ≤ i + diagonal) or upper (j ≥ i + diagonal) triangle of the last two dims. */
export function triangle(x: Tensor, diagonal: number, part: "lower" | "upper"): Tensor {
  if (x.ndim < 2) throw new Error(`${part === "lower" ? "tril" : "triu"}: expects ≥ 2 dims, got ${shapeStr(x.shape)}`);
  const R = x.shape[x.ndim - 2], C = x.shape[x.ndim - 1];
  const m = uninit([R, C], "bool"), md = m.storage.data;
  for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) md[i * C + j] = part === "lower" ? +(j > i + diagonal) : +(j < i + diagonal);
  return x.maskedFill(x.device === "cpu" ? m : m.to(x.device), 0);
}

export function toNested(x: Tensor): NestedArray {
  const flat = contiguousData(x);
  const isBool = x.dtype === "bool";
  const build = (dim: number, off: number): NestedArray => {
    if (dim === x.ndim) return isBool ? flat[off] !== 0 : flat[off];
    const step = numel(x.shape.slice(dim + 1));
    const arr: NestedArray[] = [];
    for (let i = 0; i < x.shape[dim]; i++) arr.push(build(dim + 1, off + i * step));
    return arr;
  };
  return build(0, 0);
}

export { isContiguous };
