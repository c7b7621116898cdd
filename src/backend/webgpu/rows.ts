// WGSL row kernels over contiguous (rows, n) tensors: softmax / log-softmax and softmax backward, layer norm forward and
// backward, embedding gather and scatter-add. One 64-thread workgroup per row with tree reductions in workgroup memory
// (rows beyond 65535 fold into a 2-D grid); dw/db and scatter-add run one thread per column over the rows, in row
// order (no float atomics in WGSL), so sums match the reference's order.
import type { Tensor } from "../../tensor.js";
import type { GpuRuntime } from "./runtime.js";
import { buf } from "./elementwise.js";
import { MATH, f32bits, grid } from "./wgsl.js";

const R = 64;
const REDUCE = /* wgsl */ `
var<workgroup> red: array<f32, ${R}>;
fn wgSum(v: f32, l: u32) -> f32 {
  red[l] = v; workgroupBarrier();
  for (var s = ${R / 2}u; s > 0u; s >>= 1u) { if (l < s) { red[l] = red[l] + red[l + s]; } workgroupBarrier(); }
  let r = red[0]; workgroupBarrier(); return r;
}
fn wgMax(v: f32, l: u32) -> f32 {   // NaN-skipping like the reference (x > m is false for NaN)
  red[l] = v; workgroupBarrier();
  for (var s = ${R / 2}u; s > 0u; s >>= 1u) { if (l < s && red[l + s] > red[l]) { red[l] = red[l + s]; } workgroupBarrier(); }
  let r = red[0]; workgroupBarrier(); return r;
}`;
const ROW_ARGS = "@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u";

/**
 * Two shapes of the same row kernels: rows longer than SMALL_ROW get a 64-thread workgroup each (strided loops, tree
 * reductions through workgroup memory); short rows get one thread each, 64 rows per workgroup, no barriers (a
 * workgroup per 20-element row would leave most threads idle, and barriers are what software rasterisers like
 * SwiftShader run slowest). The kernels are written once with ROW (row, lane l), STEP (the loops' stride) and REDUCE.
 */
const SMALL_ROW = 64;
interface Shape_ { row: string; step: number; reduce: string; grid(rows: number): [number, number, number] }
const WIDE: Shape_ = { row: "let row = i32(wid.y * nwg.x + wid.x); let l = lid.x;", step: R, reduce: REDUCE, grid: (rows) => grid(rows, 1) };
const NARROW: Shape_ = {
  row: "let row = i32((wid.y * nwg.x + wid.x) * 64u + lid.x); let l = 0u;", step: 1,
  reduce: "fn wgSum(v: f32, l: u32) -> f32 { return v; }\nfn wgMax(v: f32, l: u32) -> f32 { return v; }", grid: (rows) => grid(rows, 64),
};
const shapeFor = (n: number) => (n <= SMALL_ROW ? NARROW : WIDE);
const bind = (i: number, name: string, rw = false, ty = "f32") => `@group(0) @binding(${i}) var<storage, ${rw ? "read_write" : "read"}> ${name}: array<${ty}>;`;

export function softmax(rt: GpuRuntime, x: Tensor, y: Tensor, rows: number, n: number, log: boolean): void {
  const K = shapeFor(n);
  const code = `${bind(0, "X")}\n${bind(1, "Y", true)}\n${bind(2, "P", false, "i32")}\n${MATH}\n${K.reduce}
@compute @workgroup_size(${R}) fn main(${ROW_ARGS}) {
  ${K.row}
  if (row >= P[0]) { return; }
  let n = P[1]; let xo = P[2] + row * n; let yo = P[3] + row * n;
  var m = ninf();
  for (var j = i32(l); j < n; j += ${K.step}) { let v = X[xo + j]; if (v > m) { m = v; } }
  m = wgMax(m, l);
  var s = 0.0;
  for (var j = i32(l); j < n; j += ${K.step}) { s += exp(X[xo + j] - m); }
  s = wgSum(s, l);
  ${log
    ? "let ls = log(s); for (var j = i32(l); j < n; j += " + K.step + ") { Y[yo + j] = X[xo + j] - m - ls; }"
    : "let inv = 1.0 / s; for (var j = i32(l); j < n; j += " + K.step + ") { Y[yo + j] = select(exp(X[xo + j] - m) * inv, nan(), m == ninf()); }"}
}`;
  rt.dispatch(code, [buf(x), buf(y)], Int32Array.of(rows, n, x.offset, y.offset), K.grid(rows));
}

export function softmaxBackward(rt: GpuRuntime, y: Tensor, dy: Tensor, dx: Tensor, rows: number, n: number): void {
  const K = shapeFor(n);
  const code = `${bind(0, "Y")}\n${bind(1, "G")}\n${bind(2, "D", true)}\n${bind(3, "P", false, "i32")}\n${K.reduce}
@compute @workgroup_size(${R}) fn main(${ROW_ARGS}) {
  ${K.row}
  if (row >= P[0]) { return; }
  let n = P[1]; let yo = P[2] + row * n; let go = P[3] + row * n; let o = P[4] + row * n;
  var s = 0.0;
  for (var j = i32(l); j < n; j += ${K.step}) { s += G[go + j] * Y[yo + j]; }
  s = wgSum(s, l);
  for (var j = i32(l); j < n; j += ${K.step}) { D[o + j] = Y[yo + j] * (G[go + j] - s); }
}`;
  rt.dispatch(code, [buf(y), buf(dy), buf(dx)], Int32Array.of(rows, n, y.offset, dy.offset, dx.offset), K.grid(rows));
}

export function layerNormForward(rt: GpuRuntime, x: Tensor, w: Tensor | null, b: Tensor | null, y: Tensor, mean: Tensor, rstd: Tensor,
  rows: number, D: number, eps: number): void {
  const K = shapeFor(D);
  const code = `${bind(0, "X")}\n${bind(1, "W")}\n${bind(2, "Bi")}\n${bind(3, "Y", true)}\n${bind(4, "Mu", true)}\n${bind(5, "Rs", true)}\n${bind(6, "P", false, "i32")}\n${K.reduce}
@compute @workgroup_size(${R}) fn main(${ROW_ARGS}) {
  ${K.row}
  _ = W[0]; _ = Bi[0];   // bound even when absent ("auto" layouts drop unused bindings)
  if (row >= P[0]) { return; }
  let n = P[1]; let xo = P[2] + row * n; let yo = P[3] + row * n;
  var s = 0.0;
  for (var j = i32(l); j < n; j += ${K.step}) { s += X[xo + j]; }
  let mu = wgSum(s, l) / f32(n);
  var v = 0.0;
  for (var j = i32(l); j < n; j += ${K.step}) { let d = X[xo + j] - mu; v += d * d; }
  let rs = 1.0 / sqrt(wgSum(v, l) / f32(n) + bitcast<f32>(P[4]));
  for (var j = i32(l); j < n; j += ${K.step}) {
    var t = (X[xo + j] - mu) * rs;
    ${w ? "t = t * W[P[5] + j];" : ""}
    ${b ? "t = t + Bi[P[6] + j];" : ""}
    Y[yo + j] = t;
  }
  if (l == 0u) { Mu[P[7] + row] = mu; Rs[P[8] + row] = rs; }
}`;
  rt.dispatch(code, [buf(x), buf(w ?? x), buf(b ?? x), buf(y), buf(mean), buf(rstd)],
    Int32Array.of(rows, D, x.offset, y.offset, f32bits(eps), w?.offset ?? 0, b?.offset ?? 0, mean.offset, rstd.offset), K.grid(rows));
}

export function layerNormBackward(rt: GpuRuntime, dy: Tensor, x: Tensor, w: Tensor | null, mean: Tensor, rstd: Tensor, dx: Tensor,
  dw: Tensor | null, db: Tensor | null, rows: number, D: number): void {
  const K = shapeFor(D);
  const p = Int32Array.of(rows, D, dy.offset, x.offset, w?.offset ?? 0, mean.offset, rstd.offset, dx.offset, dw?.offset ?? 0, db?.offset ?? 0);
  const wv = w ? "W[P[4] + j]" : "1.0";
  // dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w
  const code = `${bind(0, "G")}\n${bind(1, "X")}\n${bind(2, "W")}\n${bind(3, "Mu")}\n${bind(4, "Rs")}\n${bind(5, "DX", true)}\n${bind(6, "P", false, "i32")}\n${K.reduce}
@compute @workgroup_size(${R}) fn main(${ROW_ARGS}) {
  ${K.row}
  _ = W[0];
  if (row >= P[0]) { return; }
  let n = P[1]; let go = P[2] + row * n; let xo = P[3] + row * n; let o = P[7] + row * n;
  let mu = Mu[P[5] + row]; let rs = Rs[P[6] + row];
  var s1 = 0.0; var s2 = 0.0;
  for (var j = i32(l); j < n; j += ${K.step}) { let g = G[go + j] * ${wv}; s1 += g; s2 += g * (X[xo + j] - mu) * rs; }
  let m1 = wgSum(s1, l) / f32(n); let m2 = wgSum(s2, l) / f32(n);
  for (var j = i32(l); j < n; j += ${K.step}) { let g = G[go + j] * ${wv}; DX[o + j] = rs * (g - m1 - (X[xo + j] - mu) * rs * m2); }
}`;
  rt.dispatch(code, [buf(dy), buf(x), buf(w ?? x), buf(mean), buf(rstd), buf(dx)], p, K.grid(rows));
  if (!dw && !db) return;
  // dw += Σ_rows dy·x̂, db += Σ_rows dy: one thread per column
  const code2 = `${bind(0, "G")}\n${bind(1, "X")}\n${bind(2, "Mu")}\n${bind(3, "Rs")}\n${bind(4, "DW", true)}\n${bind(5, "DB", true)}\n${bind(6, "P", false, "i32")}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = i32(gid.x); let n = P[1];
  _ = DW[0]; _ = DB[0];
  if (j >= n) { return; }
  var sw = 0.0; var sb = 0.0;
  for (var r = 0; r < P[0]; r++) {
    let g = G[P[2] + r * n + j];
    sw += g * (X[P[3] + r * n + j] - Mu[P[5] + r]) * Rs[P[6] + r]; sb += g;
  }
  ${dw ? "DW[P[8] + j] += sw;" : ""}
  ${db ? "DB[P[9] + j] += sb;" : ""}
}`;
  rt.dispatch(code2, [buf(dy), buf(x), buf(mean), buf(rstd), dw ? buf(dw) : rt.dummy(), db ? buf(db) : rt.dummy()], p, [Math.ceil(D / 64), 1, 1]);
}

/** out (n, cols) = table[idx[i]]; an index outside the table gives a NaN row (indices on the device are not checked). */
export function gatherRows(rt: GpuRuntime, table: Tensor, cols: number, idx: Tensor, out: Tensor): void {
  const n = idx.numel(), V = table.numel() / Math.max(cols, 1);
  const code = `${bind(0, "T")}\n${bind(1, "I", false, "i32")}\n${bind(2, "O", true)}\n${bind(3, "P", false, "i32")}\n${MATH}
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = i32((wid.y * nwg.x + wid.x) * 256u + lid.x);
  let cols = P[1];
  if (i >= P[0] * cols) { return; }
  let r = i / cols; let c = i % cols;
  let k = I[P[3] + r];
  O[P[5] + i] = select(nan(), T[P[4] + k * cols + c], k >= 0 && k < P[2]);
}`;
  rt.dispatch(code, [buf(table), buf(idx), buf(out)], Int32Array.of(n, cols, V, idx.offset, table.offset, out.offset), grid(n * cols));
}

export function scatterAddRows(rt: GpuRuntime, src: Tensor, cols: number, idx: Tensor, table: Tensor, skip: number): void {
  const n = idx.numel(), V = table.numel() / Math.max(cols, 1);
  const code = `${bind(0, "S")}\n${bind(1, "I", false, "i32")}\n${bind(2, "T", true)}\n${bind(3, "P", false, "i32")}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = i32(gid.x); let cols = P[1];
  if (c >= cols) { return; }
  for (var i = 0; i < P[0]; i++) {
    let k = I[P[3] + i];
    if (k == P[6] || k < 0 || k >= P[2]) { continue; }
    T[P[5] + k * cols + c] += S[P[4] + i * cols + c];
  }
}`;
  rt.dispatch(code, [buf(src), buf(idx), buf(table)], Int32Array.of(n, cols, V, idx.offset, src.offset, table.offset, skip), [Math.ceil(cols / 64), 1, 1]);
}
