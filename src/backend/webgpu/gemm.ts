// Tiled, register-blocked batched GEMM in WGSL: C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b] (row-major, transposes as
// flags, element offsets/leading dims/batch strides like Kernels.gemm). A 16×16 workgroup computes a 64×64 tile of C,
// 4×4 outputs per thread, stepping K by 16 through workgroup memory; tile loads are laid out so neighbouring threads
// read neighbouring addresses for either transpose. Edges are bounds-checked (any M, N, K).
import type { Tensor } from "../../tensor.js";
import type { GpuRuntime } from "./runtime.js";
import { buf } from "./elementwise.js";
import { f32bits } from "./wgsl.js";

const TM = 64, TN = 64, TK = 16;

function code(transA: boolean, transB: boolean, betaZero: boolean): string {
  // tile element e (0..1023) → (k, m) of A and (k, n) of B, contiguous in memory along the faster global axis
  const aMap = transA ? `let kk = e / ${TM}; let mm = e % ${TM};` : `let mm = e / ${TK}; let kk = e % ${TK};`;
  const aLoad = transA ? "X[aBase + gk * lda + gm]" : "X[aBase + gm * lda + gk]";
  const bMap = transB ? `let nn = e / ${TK}; let kk = e % ${TK};` : `let kk = e / ${TN}; let nn = e % ${TN};`;
  const bLoad = transB ? "A[bBase + gn * ldb + gk]" : "A[bBase + gk * ldb + gn]";
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> P: array<i32>;
var<workgroup> As: array<f32, ${TK * TM}>;
var<workgroup> Bs: array<f32, ${TK * TN}>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let M = P[0]; let N = P[1]; let K = P[2]; let lda = P[3]; let ldb = P[4]; let ldc = P[5];
  let bz = i32(wid.z);
  let aBase = P[6] + bz * P[9]; let bBase = P[7] + bz * P[10]; let cBase = P[8] + bz * P[11];
  let alpha = bitcast<f32>(P[12]); let beta = bitcast<f32>(P[13]);
  let m0 = i32(wid.y) * ${TM}; let n0 = i32(wid.x) * ${TN};
  let tx = i32(lid.x); let ty = i32(lid.y);
  var acc: array<f32, 16>;
  for (var k0 = 0; k0 < K; k0 += ${TK}) {
    for (var r = 0; r < 4; r++) {
      let e = i32(li) + r * 256;
      {
        ${aMap}
        let gm = m0 + mm; let gk = k0 + kk;
        var v = 0.0;
        if (gm < M && gk < K) { v = ${aLoad}; }
        As[kk * ${TM} + mm] = v;
      }
      {
        ${bMap}
        let gn = n0 + nn; let gk = k0 + kk;
        var v = 0.0;
        if (gn < N && gk < K) { v = ${bLoad}; }
        Bs[kk * ${TN} + nn] = v;
      }
    }
    workgroupBarrier();
    for (var kk = 0; kk < ${TK}; kk++) {
      var a: array<f32, 4>; var b: array<f32, 4>;
      for (var r = 0; r < 4; r++) { a[r] = As[kk * ${TM} + ty + 16 * r]; b[r] = Bs[kk * ${TN} + tx + 16 * r]; }
      for (var r = 0; r < 4; r++) { for (var c = 0; c < 4; c++) { acc[r * 4 + c] = fma(a[r], b[c], acc[r * 4 + c]); } }
    }
    workgroupBarrier();
  }
  for (var r = 0; r < 4; r++) {
    let gm = m0 + ty + 16 * r;
    if (gm >= M) { continue; }
    for (var c = 0; c < 4; c++) {
      let gn = n0 + tx + 16 * c;
      if (gn >= N) { continue; }
      let o = cBase + gm * ldc + gn;
      ${betaZero ? "C[o] = alpha * acc[r * 4 + c];" : "C[o] = alpha * acc[r * 4 + c] + beta * C[o];"}
    }
  }
}`;
}

/**
 * Tiny products (≤ SMALL_MACS multiply-adds): one thread per output element walking K, no workgroup memory or
 * barriers — a 64×64 tile would leave most of a workgroup idle there, and launch cost dominates anyway.
 */
const SMALL_MACS = 1 << 20;
function smallCode(transA: boolean, transB: boolean, betaZero: boolean): string {
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> P: array<i32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let M = P[0]; let N = P[1]; let K = P[2]; let lda = P[3]; let ldb = P[4]; let ldc = P[5];
  let e = i32(gid.x); let bz = i32(gid.z);
  if (e >= M * N) { return; }
  let m = e / N; let n = e % N;
  let aBase = P[6] + bz * P[9]; let bBase = P[7] + bz * P[10];
  var acc = 0.0;
  for (var k = 0; k < K; k++) {
    acc = fma(${transA ? "X[aBase + k * lda + m]" : "X[aBase + m * lda + k]"}, ${transB ? "A[bBase + n * ldb + k]" : "A[bBase + k * ldb + n]"}, acc);
  }
  let o = P[8] + bz * P[11] + m * ldc + n;
  ${betaZero ? "C[o] = bitcast<f32>(P[12]) * acc;" : "C[o] = bitcast<f32>(P[12]) * acc + bitcast<f32>(P[13]) * C[o];"}
}`;
}

export function gemm(rt: GpuRuntime, transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Tensor, aOff: number, lda: number, B: Tensor, bOff: number, ldb: number, beta: number, C: Tensor, cOff: number, ldc: number,
  batch: number, strideA: number, strideB: number, strideC: number): void {
  if (batch > 65535) throw new Error(`not yet supported on webgpu: batched GEMM with more than 65535 matrices (${batch})`);
  if (M === 0 || N === 0 || batch === 0) return;
  const p = Int32Array.of(M, N, K, lda, ldb, ldc, aOff, bOff, cOff, strideA, strideB, strideC, f32bits(alpha), f32bits(beta));
  if (M * N * K * batch <= SMALL_MACS && Math.ceil((M * N) / 64) <= 65535) {
    rt.dispatch(smallCode(transA, transB, beta === 0), [buf(A), buf(B), buf(C)], p, [Math.ceil((M * N) / 64), 1, batch]);
    return;
  }
  rt.dispatch(code(transA, transB, beta === 0), [buf(A), buf(B), buf(C)], p, [Math.ceil(N / TN), Math.ceil(M / TM), batch]);
}
