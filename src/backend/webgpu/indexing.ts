// WGSL index kernels along one axis: gather (torch.gather, indexSelect, conv2d's im2col rows) and its backward, a
// scatter-add written as one thread per destination element that sums its sources in index order (WGSL has no float
// atomics; the order matches the reference's accumulation order).
import type { Tensor } from "../../tensor.js";
import type { GpuRuntime } from "./runtime.js";
import { buf } from "./elementwise.js";
import { FLAT_INDEX, MAIN_ARGS, MATH, MAX_DIMS, STRIDED, grid, stridedParams, wgslType } from "./wgsl.js";

/**
 * out (contiguous, out.shape) [p] = x[p with coordinate `dim` replaced by index(p)], index read through `idxStrides`
 * over out.shape (a 1-D indexSelect index has stride 0 on the other axes). An index outside [0, x.shape[dim]) gives
 * NaN (float) or 0 — or 0 for −1 when `negativeIsZero` (conv2d's padding taps).
 */
export function gatherAxis(rt: GpuRuntime, x: Tensor, index: Tensor, idxStrides: readonly number[], dim: number, out: Tensor, negativeIsZero = false): void {
  const t = wgslType(x.dtype);
  const xs = x.strides.map((s, k) => (k === dim ? 0 : s));
  const bad = t === "f32" ? "nan()" : t === "i32" ? "0" : "0u";
  const code = `@group(0) @binding(0) var<storage, read> X: array<${t}>;
@group(0) @binding(1) var<storage, read> I: array<i32>;
@group(0) @binding(2) var<storage, read_write> O: array<${t}>;
@group(0) @binding(3) var<storage, read> P: array<i32>;
${MATH}\n${STRIDED}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  if (i >= u32(P[0])) { return; }
  let k = I[strided(i, 1)];
  let e = 10 + 9 * 2;
  if (k < 0 || k >= P[e + 1]) { O[i] = select(${bad}, ${t}(0), P[e + 2] != 0 && k == -1); return; }
  O[i] = X[strided(i, 0) + k * P[e]];
}`;
  const p = stridedParams(out.shape, [{ offset: x.offset, strides: xs }, { offset: index.offset, strides: idxStrides }],
    [x.strides[dim], x.shape[dim], negativeIsZero ? 1 : 0]);
  rt.dispatch(code, [buf(x), buf(index), buf(out)], p, grid(out.numel()));
}

/**
 * The backward of gatherAxis: dx (contiguous, float32, its own shape) [r] = Σ over i along `dim` of g[p_i] where
 * index(p_i) = r's coordinate on `dim` (p_i: r's other coordinates, i on `dim`; zero where they fall outside g's
 * shape). g contiguous with g.shape = the index's (broadcast) shape.
 */
export function scatterAxis(rt: GpuRuntime, g: Tensor, index: Tensor, idxStrides: readonly number[], dim: number, dx: Tensor): void {
  const nd = dx.ndim;
  if (nd > MAX_DIMS) throw new Error(`not yet supported on webgpu: tensors of more than ${MAX_DIMS} dims (shape [${dx.shape}])`);
  const p = new Int32Array(40);
  p[0] = dx.numel(); p[1] = nd;
  dx.shape.forEach((d, k) => (p[2 + k] = d));
  g.shape.forEach((d, k) => (p[10 + k] = d));
  idxStrides.forEach((s, k) => (p[18 + k] = s));
  p[26] = index.offset; p[27] = dim; p[28] = g.offset; p[29] = dx.offset;
  const code = `@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read> I: array<i32>;
@group(0) @binding(2) var<storage, read_write> D: array<f32>;
@group(0) @binding(3) var<storage, read> P: array<i32>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  if (i >= u32(P[0])) { return; }
  let nd = P[1]; let dim = P[27];
  // coordinates of dx element i; the base offsets of its line along dim in g (contiguous) and in the index
  var rem = i32(i); var r = 0; var gOff = 0; var iOff = P[26]; var gStride = 1; var gs = 1; var inside = true;
  for (var k = nd - 1; k >= 0; k--) {
    let c = rem % P[2 + k]; rem = rem / P[2 + k];
    if (k == dim) { r = c; gStride = gs; } else {
      if (c >= P[10 + k]) { inside = false; }
      gOff += c * gs; iOff += c * P[18 + k];
    }
    gs *= P[10 + k];
  }
  var s = 0.0;
  if (inside) {
    for (var j = 0; j < P[10 + dim]; j++) {
      if (I[iOff + j * P[18 + dim]] == r) { s += G[P[28] + gOff + j * gStride]; }
    }
  }
  D[u32(P[29]) + i] = s;
}`;
  rt.dispatch(code, [buf(g), buf(index), buf(dx)], p, grid(dx.numel()));
}
