// The Wasm SIMD backend against the reference kernels: GEMM (odd sizes, transposes, batch, broadcast, offsets and
// leading dimensions, alpha/beta, fused bias + activation), row kernels, elementwise fast paths, and fused attention
// forward / backward / weights (GQA, causal with Tq ≠ Tk, key padding, additive masks with −inf, dropout, layouts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { instantiateSync, wasmRelaxedSimdActive, wasmSimdSupported } from "../src/backend/wasm/module.js";
import { makeWasmKernels } from "../src/backend/wasm/wasm-kernels.js";
import { rowKeyMatches } from "../src/backend/wasm/attention.js";
import { refKernels } from "../src/backend/ref/index.js";
import type { AttnArgs, AttnLayout, Kernels, UnaryOp, BinaryOp } from "../src/backend/kernels.js";
import { mulberry32 } from "../bench/lib/prng.js";
import { startOneWorkerPool } from "./helpers/wasm-pool.js";

const skip = wasmSimdSupported() ? false : "this engine has no Wasm SIMD128";
const INSTANCE = skip ? null : instantiateSync();
const W = (INSTANCE ? makeWasmKernels(INSTANCE) : {}) as Kernels;
const R = refKernels;

const rand = mulberry32(0x2545f491);
function randn(n: number, s = 1): Float32Array { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * s; return a; }

/** max |got − want| ≤ tol·max(1, max|want|); non-finite references must match exactly. */
function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 2e-5, n = want.length): void {
  let scale = 1;
  for (let i = 0; i < n; i++) if (Number.isFinite(want[i])) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < n; i++) {
    const g = got[i], w = want[i];
    if (!Number.isFinite(w)) {
      if (!(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)))) assert.fail(`${what}[${i}]: got ${g}, want ${w}`);
    } else if (!(Math.abs(g - w) <= tol * scale)) assert.fail(`${what}[${i}]: got ${g}, want ${w} (tolerance ${tol * scale})`);
  }
}

// test/wasm-relaxed-simd.test.ts runs this file again in a Node with relaxed SIMD and ATTNFLOW_TEST_EXPECT_RELAXED=1:
// every check below then runs the fused-multiply-add kernels.
test("instruction set: relaxed SIMD exactly when the engine has it and it is wanted", { skip }, () => {
  assert.equal(INSTANCE!.relaxed, wasmRelaxedSimdActive());
  if (process.env.ATTNFLOW_TEST_EXPECT_RELAXED === "1") assert.equal(INSTANCE!.relaxed, true);
  if (process.env.ATTNFLOW_TEST_EXPECT_RELAXED === "0") assert.equal(INSTANCE!.relaxed, false);
});

test("gemm: odd sizes, transposes, alpha/beta, leading dimensions and offsets", { skip }, () => {
  const sizes = [1, 3, 17, 63, 65];
  let cases = 0;
  for (const M of sizes) for (const N of [1, 5, 17, 65]) for (const K of [1, 3, 64, 65, 300]) {
    for (const tA of [false, true]) for (const tB of [false, true]) {
      if ((M * N * K) % 3 !== cases % 3) { cases++; continue; }   // a third of the grid, all flag combinations
      cases++;
      const lda = (tA ? M : K) + (cases % 2), ldb = (tB ? K : N) + (cases % 3), ldc = N + 2;
      const aOff = 3, bOff = 1, cOff = 5;
      const A = randn(aOff + (tA ? K : M) * lda), B = randn(bOff + (tB ? N : K) * ldb);
      const C0 = randn(cOff + M * ldc);
      const alpha = 0.75, beta = cases % 2 ? 0 : -0.5;
      if (beta === 0) C0.fill(NaN);   // beta = 0 must not read C
      const Cw = C0.slice(), Cr = C0.slice();
      W.gemm(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, Cw, cOff, ldc, 1, 0, 0, 0);
      R.gemm(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, Cr, cOff, ldc, 1, 0, 0, 0);
      for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) assert.ok(Object.is(Cw[cOff + i * ldc + j], C0[cOff + i * ldc + j]), "gemm wrote outside C");
      for (let i = 0; i < M; i++) close(`gemm ${M}x${N}x${K} tA=${tA} tB=${tB} row ${i}`, Cw.subarray(cOff + i * ldc, cOff + i * ldc + N), Cr.subarray(cOff + i * ldc, cOff + i * ldc + N));
    }
  }
});

test("gemm: large blocked sizes, batch with strides and broadcast operands, K = 0", { skip }, () => {
  for (const [M, N, K, tA, tB] of [[130, 2100, 260, false, true], [300, 70, 520, true, false]] as const) {
    const A = randn(M * K), B = randn(K * N), Cw = new Float32Array(M * N), Cr = new Float32Array(M * N);
    W.gemm(tA, tB, M, N, K, 1, A, 0, tA ? M : K, B, 0, tB ? K : N, 0, Cw, 0, N, 1, 0, 0, 0);
    R.gemm(tA, tB, M, N, K, 1, A, 0, tA ? M : K, B, 0, tB ? K : N, 0, Cr, 0, N, 1, 0, 0, 0);
    close(`gemm ${M}x${N}x${K}`, Cw, Cr, 1e-5);
  }
  // batch 4: A broadcast (stride 0), B strided with a gap, C with a gap
  const M = 17, N = 33, K = 19, batch = 4, sB = K * N + 7, sC = M * N + 3;
  const A = randn(M * K), B = randn(batch * sB), C0 = randn(batch * sC);
  const Cw = C0.slice(), Cr = C0.slice();
  W.gemm(false, false, M, N, K, 1.5, A, 0, K, B, 0, N, 0.25, Cw, 0, N, batch, 0, sB, sC);
  R.gemm(false, false, M, N, K, 1.5, A, 0, K, B, 0, N, 0.25, Cr, 0, N, batch, 0, sB, sC);
  close("batched gemm", Cw, Cr);
  // B broadcast, attention-shaped Bᵀ
  const Bt = randn(N * K), As = randn(batch * M * K), Cw2 = new Float32Array(batch * M * N), Cr2 = new Float32Array(batch * M * N);
  W.gemm(false, true, M, N, K, 1, As, 0, K, Bt, 0, K, 0, Cw2, 0, N, batch, M * K, 0, M * N);
  R.gemm(false, true, M, N, K, 1, As, 0, K, Bt, 0, K, 0, Cr2, 0, N, batch, M * K, 0, M * N);
  close("batched gemm, B broadcast", Cw2, Cr2);
  // K = 0: C = beta·C
  const Ck = randn(6), Ckr = Ck.slice();
  W.gemm(false, false, 2, 3, 0, 1, new Float32Array(0), 0, 1, new Float32Array(0), 0, 3, 0.5, Ck, 0, 3, 1, 0, 0, 0);
  R.gemm(false, false, 2, 3, 0, 1, new Float32Array(0), 0, 1, new Float32Array(0), 0, 3, 0.5, Ckr, 0, 3, 1, 0, 0, 0);
  close("gemm K = 0", Ck, Ckr);
  assert.throws(() => W.gemm(false, false, 4, 4, 4, 1, new Float32Array(15), 0, 4, new Float32Array(16), 0, 4, 0, new Float32Array(16), 0, 4, 1, 0, 0, 0),
    /gemm \(A\).*past the array/);
});

test("gemmBiasAct and activationBackward match gemm + bias + activation", { skip }, () => {
  const M = 19, N = 37, K = 23;
  const A = randn(M * K), Bm = randn(N * K), bias = randn(N + 2);
  for (const act of ["none", "relu", "gelu", "geluTanh"] as const) {
    const Cw = new Float32Array(M * N), Cr = new Float32Array(M * N);
    W.gemmBiasAct!(false, true, M, N, K, 1, A, 0, K, Bm, 0, K, 0, Cw, 0, N, 1, 0, 0, 0, bias, 2, act);
    R.gemm(false, true, M, N, K, 1, A, 0, K, Bm, 0, K, 0, Cr, 0, N, 1, 0, 0, 0);
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) Cr[i * N + j] += bias[2 + j];
    if (act !== "none") R.unary(act, { data: Cr.slice(), offset: 0, strides: [1] }, [M * N], Cr);
    close(`gemmBiasAct ${act}`, Cw, Cr, 1e-5);
  }
  // several depth blocks (the bias joins the last one), two column blocks, beta ≠ 0, and a keyed B (packed-weight
  // cache: packed on the 2nd call, served on the 3rd) — the same result each time
  for (const [M2, N2, K2] of [[7, 2100, 600], [33, 50, 513]] as const) {
    const A2 = randn(M2 * K2), B2 = randn(N2 * K2), b2 = randn(N2), C0 = randn(M2 * N2);
    const ref = C0.slice();   // 1.5·A·Bᵀ + 0.5·C0 + bias
    R.gemm(false, true, M2, N2, K2, 1.5, A2, 0, K2, B2, 0, K2, 0.5, ref, 0, N2, 1, 0, 0, 0);
    for (let i = 0; i < M2; i++) for (let j = 0; j < N2; j++) ref[i * N2 + j] += b2[j];
    for (const act of ["none", "relu"] as const) {
      const exp = act === "none" ? ref : ref.map((v) => Math.max(v, 0));
      for (let call = 0; call < 3; call++) {
        const Cw = C0.slice();
        W.gemmBiasAct!(false, true, M2, N2, K2, 1.5, A2, 0, K2, B2, 0, K2, 0.5, Cw, 0, N2, 1, 0, 0, 0, b2, 0, act,
          { id: 9000 + N2, version: 1 });
        close(`gemmBiasAct ${M2}x${N2}x${K2} ${act} call ${call}`, Cw, exp, 1e-4);
      }
    }
  }
  const n = 5003, z = randn(n, 4), g = randn(n);
  for (const act of ["relu", "gelu", "geluTanh"] as const) {
    const got = new Float32Array(n), want = new Float32Array(n);
    W.activationBackward!(act, z, 0, g, 0, got, n);
    const d = new Float32Array(n);
    if (act === "relu") for (let i = 0; i < n; i++) d[i] = z[i] > 0 ? 1 : 0;
    else R.unary(act === "gelu" ? "geluGrad" : "geluTanhGrad", { data: z, offset: 0, strides: [1] }, [n], d);
    for (let i = 0; i < n; i++) want[i] = g[i] * d[i];
    close(`activationBackward ${act}`, got, want, 1e-5);
  }
});

test("softmax, logSoftmax, softmaxBackward: odd rows, −inf entries and fully masked rows", { skip }, () => {
  for (const n of [1, 3, 17, 64, 65, 1000]) {
    const rows = 7, x = randn(rows * n, 8);
    x[2] = -Infinity;
    for (let j = 0; j < n; j++) x[3 * n + j] = -Infinity;   // a fully masked row → NaN, like the reference
    const yw = new Float32Array(rows * n), yr = new Float32Array(rows * n);
    W.softmax(x, yw, rows, n); R.softmax(x, yr, rows, n);
    close(`softmax n=${n}`, yw, yr, 1e-6);
    const xs = randn(rows * n, 8), lw = new Float32Array(rows * n), lr = new Float32Array(rows * n);
    W.logSoftmax(xs, lw, rows, n); R.logSoftmax(xs, lr, rows, n);
    close(`logSoftmax n=${n}`, lw, lr, 1e-6);
    const y = new Float32Array(rows * n); R.softmax(xs, y, rows, n);
    const dy = randn(rows * n), dw = new Float32Array(rows * n), dr = new Float32Array(rows * n);
    W.softmaxBackward(y, dy, dw, rows, n); R.softmaxBackward(y, dy, dr, rows, n);
    close(`softmaxBackward n=${n}`, dw, dr, 1e-6);
  }
});

test("layerNorm forward and backward, with and without affine parameters", { skip }, () => {
  for (const D of [1, 3, 17, 64, 65, 768]) for (const affine of [0, 1, 2, 3]) {
    const rows = 9, x = randn(rows * D, 3);
    for (let i = 0; i < x.length; i++) x[i] += 1.5;
    const w = affine & 1 ? randn(D) : null, b = affine & 2 ? randn(D) : null;
    const out = () => ({ y: new Float32Array(rows * D), m: new Float32Array(rows), r: new Float32Array(rows) });
    const gw = out(), gr = out();
    W.layerNormForward(x, w, b, gw.y, gw.m, gw.r, rows, D, 1e-5);
    R.layerNormForward(x, w, b, gr.y, gr.m, gr.r, rows, D, 1e-5);
    close(`layerNorm y D=${D} affine=${affine}`, gw.y, gr.y, 3e-5); close("mean", gw.m, gr.m, 1e-5); close("rstd", gw.r, gr.r, 3e-5);
    const dy = randn(rows * D), dxw = new Float32Array(rows * D), dxr = new Float32Array(rows * D);
    const dww = w ? randn(D) : null, dbw = b ? randn(D) : null, dwr = dww?.slice() ?? null, dbr = dbw?.slice() ?? null;
    W.layerNormBackward(dy, x, w, gr.m, gr.r, dxw, dww, dbw, rows, D);
    R.layerNormBackward(dy, x, w, gr.m, gr.r, dxr, dwr, dbr, rows, D);
    close(`layerNorm dx D=${D}`, dxw, dxr, 3e-5);
    if (dww) close("dw", dww, dwr!, 3e-5);
    if (dbw) close("db", dbw, dbr!, 3e-5);
  }
});

test("unary and binary fast paths (large contiguous and broadcast operands) match the reference", { skip }, () => {
  const n = 4099, x = randn(n, 6);
  x[0] = NaN; x[1] = -0; x[2] = Infinity; x[3] = -Infinity;
  const pos = x.map((v) => Math.abs(v) + 0.01);
  for (const op of ["neg", "abs", "relu", "square", "sqrt", "rsqrt", "reciprocal", "exp", "sigmoid", "gelu", "geluGrad", "geluTanh", "geluTanhGrad"] as UnaryOp[]) {
    const src = op === "sqrt" || op === "rsqrt" || op === "reciprocal" ? pos : x;
    const gw = new Float32Array(n), gr = new Float32Array(n);
    W.unary(op, { data: src, offset: 0, strides: [1] }, [n], gw);
    R.unary(op, { data: src, offset: 0, strides: [1] }, [n], gr);
    close(`unary ${op}`, gw.subarray(4), gr.subarray(4), 2e-6);
    for (let i = 0; i < 4; i++) {
      const a = gw[i], b = gr[i];
      assert.ok(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `unary ${op}(${src[i]}): got ${a}, want ${b}`);
    }
  }
  const rows = 37, cols = 113, N = rows * cols;
  const a = randn(N), b = randn(N), row = randn(cols), col = randn(rows), s = randn(1);
  const views: [string, { data: Float32Array; offset: number; strides: number[] }][] = [
    ["full", { data: b, offset: 0, strides: [cols, 1] }], ["row", { data: row, offset: 0, strides: [0, 1] }],
    ["col", { data: col, offset: 0, strides: [1, 0] }], ["scalar", { data: s, offset: 0, strides: [0, 0] }],
  ];
  for (const op of ["add", "sub", "mul", "div", "maximum", "minimum"] as BinaryOp[]) for (const [name, v] of views) {
    for (const swap of [false, true]) {
      const av = { data: a, offset: 0, strides: [cols, 1] };
      const gw = new Float32Array(N), gr = new Float32Array(N);
      const [l, r] = swap ? [v, av] : [av, v];
      W.binary(op, l, r, [rows, cols], gw); R.binary(op, l, r, [rows, cols], gr);
      close(`binary ${op} ${name}${swap ? " (swapped)" : ""}`, gw, gr, 1e-6);
    }
  }
});

// ---------------------------------------------------------------- attention
function attnArgs(p: Partial<AttnArgs> & Pick<AttnArgs, "B" | "H" | "Tq" | "Tk" | "D">): AttnArgs {
  return { Hkv: p.H, Dv: p.D, scale: 1 / Math.sqrt(p.D), causal: false, keyPad: null, attnMask: null, maskB: 1, maskH: 1,
    dropoutP: 0, seed: 0, ...p };
}

function checkAttention(name: string, a: AttnArgs, withBackward = true): void {
  const { B, H, Hkv, Tq, Tk, D, Dv } = a;
  const q = randn(B * H * Tq * D), k = randn(B * Hkv * Tk * D), v = randn(B * Hkv * Tk * Dv);
  const ow = new Float32Array(B * H * Tq * Dv), lw = new Float32Array(B * H * Tq);
  const or = new Float32Array(ow.length), lr = new Float32Array(lw.length);
  W.attnForward(q, k, v, ow, lw, a); R.attnForward(q, k, v, or, lr, a);
  close(`${name}: out`, ow, or, 3e-5); close(`${name}: lse`, lw, lr, 3e-5);
  for (const mode of ["full", "mean"] as const) {
    const r0 = Math.min(1, Tq - 1), rc = Math.max(1, Tq - r0 - 1);
    const n = (mode === "full" ? B * H : B) * rc * Tk;
    const ww = new Float32Array(n), wr = new Float32Array(n);
    W.attnWeights(q, k, lr, ww, a, mode, r0, rc); R.attnWeights(q, k, lr, wr, a, mode, r0, rc);
    close(`${name}: weights ${mode}`, ww, wr, 3e-5);
  }
  if (!withBackward) return;
  const dout = randn(ow.length);
  const g = () => [new Float32Array(q.length), new Float32Array(k.length), new Float32Array(v.length)];
  const [dqw, dkw, dvw] = g(), [dqr, dkr, dvr] = g();
  dqw.fill(NaN); dkw.fill(NaN); dvw.fill(NaN);   // outputs are overwritten, not accumulated
  W.attnBackward(q, k, v, or, dout, lr, dqw, dkw, dvw, a); R.attnBackward(q, k, v, or, dout, lr, dqr, dkr, dvr, a);
  close(`${name}: dq`, dqw, dqr, 5e-5); close(`${name}: dk`, dkw, dkr, 5e-5); close(`${name}: dv`, dvw, dvr, 5e-5);
}

test("attention forward/backward/weights: odd sizes, GQA, causal with Tq ≠ Tk", { skip }, () => {
  checkAttention("1x1 tiny", attnArgs({ B: 1, H: 1, Tq: 1, Tk: 1, D: 1 }));
  checkAttention("odd", attnArgs({ B: 2, H: 3, Tq: 17, Tk: 63, D: 3, Dv: 5 }));
  checkAttention("blocks", attnArgs({ B: 1, H: 2, Tq: 65, Tk: 130, D: 17 }));
  checkAttention("gqa", attnArgs({ B: 2, H: 4, Hkv: 2, Tq: 33, Tk: 65, D: 8 }));
  checkAttention("mqa causal", attnArgs({ B: 1, H: 3, Hkv: 1, Tq: 70, Tk: 70, D: 16, causal: true }));
  checkAttention("causal Tq<Tk", attnArgs({ B: 1, H: 2, Tq: 20, Tk: 129, D: 12, causal: true }));
  checkAttention("causal Tq>Tk", attnArgs({ B: 2, H: 1, Tq: 131, Tk: 65, D: 9, causal: true }));
});

test("attention with key padding, additive masks (broadcast, −inf, fully masked rows) and dropout", { skip }, () => {
  const B = 2, H = 2, Tq = 19, Tk = 67, D = 12;
  const keyPad = new Uint8Array(B * Tk);
  for (let j = 0; j < Tk; j++) keyPad[j] = j % 5 === 3 ? 1 : 0;
  for (let j = 0; j < Tk; j++) keyPad[Tk + j] = j > 40 ? 1 : 0;
  checkAttention("keyPad", attnArgs({ B, H, Tq, Tk, D, keyPad }));
  for (const [maskB, maskH] of [[1, 1], [B, 1], [1, H], [B, H]]) {
    const attnMask = randn(maskB * maskH * Tq * Tk, 2);
    for (let i = 0; i < attnMask.length; i += 7) attnMask[i] = -Infinity;
    for (let j = 0; j < Tk; j++) attnMask[3 * Tk + j] = -Infinity;   // row 3 fully masked: out 0, lse −inf
    checkAttention(`mask ${maskB}x${maskH}`, attnArgs({ B, H, Tq, Tk, D, attnMask, maskB, maskH, causal: maskB === maskH }));
  }
  checkAttention("dropout", attnArgs({ B, H, Tq: 70, Tk, D, dropoutP: 0.3, seed: 1234567, causal: true, keyPad }));
  for (const [i, j] of [[0, 0], [5, 66], [1000, 3]]) assert.ok(rowKeyMatches(99, 1, 2, i, j), "dropout row keys reproduce dropout-hash.ts");
});

test("attention layouts: q/k/v read from a fused token-major projection, out/dq/dk/dv written token-major", { skip }, () => {
  const B = 2, H = 3, T = 37, D = 8, a = attnArgs({ B, H, Tq: T, Tk: T, D, causal: true });
  const C = 3 * H * D;   // (B, T, 3·H·D): q | k | v column blocks
  const qkv = randn(B * T * C);
  const lay = (blk: number): readonly [number, number, number, number] => [blk * H * D, T * C, D, C];
  const tm = (): readonly [number, number, number, number] => [0, T * H * D, D, H * D];
  const layout: Required<AttnLayout> = { q: lay(0), k: lay(1), v: lay(2), out: tm(), dout: tm(), dq: lay(0), dk: lay(1), dv: lay(2) };
  // the same tensors, contiguous (B, H, T, D)
  const pick = (blk: number) => {
    const o = new Float32Array(B * H * T * D);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++)
      o[((b * H + h) * T + t) * D + d] = qkv[b * T * C + t * C + blk * H * D + h * D + d];
    return o;
  };
  const q = pick(0), k = pick(1), v = pick(2);
  const out = new Float32Array(B * T * H * D), lse = new Float32Array(B * H * T);
  W.attnForwardLayout!(qkv, qkv, qkv, out, lse, a, layout);
  const oref = new Float32Array(B * H * T * D), lref = new Float32Array(B * H * T);
  R.attnForward(q, k, v, oref, lref, a);
  const toTm = (x: Float32Array) => {
    const o = new Float32Array(x.length);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++)
      o[b * T * H * D + t * H * D + h * D + d] = x[((b * H + h) * T + t) * D + d];
    return o;
  };
  close("layout out", out, toTm(oref), 3e-5); close("layout lse", lse, lref, 3e-5);
  // out in a wider buffer (offset 2, 5 spare floats per row): the elements between the heads' rows keep their values
  // (the span is copied in before the heads are written in place; only an output the heads tile skips that copy)
  const F = H * D + 5, wide = new Float32Array(2 + B * T * F + 3).fill(7);
  W.attnForwardLayout!(qkv, qkv, qkv, wide, lse, a, { ...layout, out: [2, T * F, D, F] });
  const ref = toTm(oref);
  for (let i = 0; i < wide.length; i++) {
    const r = i - 2, row = Math.floor(r / F), col = r - row * F;
    if (r < 0 || row >= B * T || col >= H * D) assert.equal(wide[i], 7, `element ${i} outside the heads was overwritten`);
    else assert.ok(Math.abs(wide[i] - ref[row * H * D + col]) <= 3e-5, `wide out element ${i}`);
  }
  const doutTm = randn(out.length), dqkv = new Float32Array(qkv.length).fill(NaN);
  W.attnBackwardLayout!(qkv, qkv, qkv, out, doutTm, lse, dqkv, dqkv, dqkv, a, layout);
  const dout = new Float32Array(out.length);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++)
    dout[((b * H + h) * T + t) * D + d] = doutTm[b * T * H * D + t * H * D + h * D + d];
  const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
  R.attnBackward(q, k, v, oref, dout, lref, dq, dk, dv, a);
  const want = new Float32Array(qkv.length);
  [dq, dk, dv].forEach((g, blk) => {
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++)
      want[b * T * C + t * C + blk * H * D + h * D + d] = g[((b * H + h) * T + t) * D + d];
  });
  close("layout dqkv", dqkv, want, 5e-5);
  const wl = new Float32Array(B * H * T * T), wr = new Float32Array(wl.length);
  W.attnWeightsLayout!(qkv, qkv, lse, wl, a, "full", 0, T, { q: layout.q, k: layout.k });
  R.attnWeights(q, k, lref, wr, a, "full", 0, T);
  close("layout weights", wl, wr, 3e-5);
});

test("attention rejects inconsistent arguments with clear errors", { skip }, () => {
  const a = attnArgs({ B: 1, H: 3, Hkv: 2, Tq: 4, Tk: 4, D: 4 });
  const z = (n: number) => new Float32Array(n);
  assert.throws(() => W.attnForward(z(48), z(32), z(32), z(48), z(12), a), /not a multiple of Hkv/);
  const b = attnArgs({ B: 1, H: 2, Tq: 4, Tk: 4, D: 4 });
  assert.throws(() => W.attnForward(z(31), z(32), z(32), z(32), z(8), b), /attention \(wasm, q\).*past the array/);
  assert.throws(() => W.attnWeights(z(32), z(32), z(8), z(64), b, "full", 3, 2), /rows \[3, 5\)/);
});

test("registration: the wasm backend sits between native and reference and runs public ops", { skip }, async () => {
  const { WASM_BACKEND_PRIORITY, WASM_KERNEL_NAMES, wasmBackendReady, wasmInstance } = await import("../src/backend/wasm/register.js");
  const reg = await import("../src/backend/registry.js");
  const { Tensor } = await import("../src/tensor.js");
  assert.ok(reg.availableBackends().includes("wasm"), "wasm is registered on import");
  assert.equal(reg.backendInfo("wasm")?.priority, WASM_BACKEND_PRIORITY);
  assert.ok(WASM_BACKEND_PRIORITY > 0 && WASM_BACKEND_PRIORITY < 20);
  for (const name of WASM_KERNEL_NAMES) assert.equal(typeof W[name], "function", `makeWasmKernels provides ${name}`);
  const before = reg.getBackend();
  try {
    const a = randn(37 * 29), b = randn(29 * 41);
    reg.setBackend("reference");
    const want = Tensor.fromArray(a, [37, 29]).matmul(Tensor.fromArray(b, [29, 41])).softmax(-1).toFloat32Array();
    reg.setBackend("wasm");
    assert.ok(reg.nativeKernelNames().includes("attnForward"));
    const got = Tensor.fromArray(a, [37, 29]).matmul(Tensor.fromArray(b, [29, 41])).softmax(-1).toFloat32Array();
    close("public matmul + softmax on wasm", got, want, 1e-5);
    assert.equal(await wasmBackendReady(), true);
    assert.ok(wasmInstance()!.arena.bytes >= 65536);
  } finally {
    reg.setBackend(before);
  }
});

test("threads: kernels split over a worker on shared memory give the single-thread results", { skip }, async () => {
  const { THREAD_MIN_FLOPS } = await import("../src/backend/wasm/threads.js");
  const { inst, pool, executorFor } = await startOneWorkerPool();
  try {
    assert.equal(executorFor(THREAD_MIN_FLOPS * 2).threads, 2);
    const T2 = makeWasmKernels(inst, executorFor) as Kernels;
    const M = 130, N = 200, K = 170;
    const A = randn(M * K), B = randn(N * K), C0 = randn(M * N), Ct = C0.slice(), Cr = C0.slice();
    T2.gemm(false, true, M, N, K, 1, A, 0, K, B, 0, K, 0.5, Ct, 0, N, 1, 0, 0, 0);
    R.gemm(false, true, M, N, K, 1, A, 0, K, B, 0, K, 0.5, Cr, 0, N, 1, 0, 0, 0);
    close("threaded gemm", Ct, Cr, 1e-5);
    const a = attnArgs({ B: 2, H: 3, Tq: 150, Tk: 150, D: 16, causal: true, dropoutP: 0.2, seed: 5 });
    const n = 2 * 3 * 150 * 16, q = randn(n), k = randn(n), v = randn(n), dout = randn(n);
    const o = [new Float32Array(n), new Float32Array(n)], l = [new Float32Array(900), new Float32Array(900)];
    T2.attnForward(q, k, v, o[0], l[0], a); R.attnForward(q, k, v, o[1], l[1], a);
    close("threaded attention out", o[0], o[1], 3e-5); close("threaded attention lse", l[0], l[1], 3e-5);
    const g = () => [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
    const dt = g(), dr = g();
    T2.attnBackward(q, k, v, o[1], dout, l[1], dt[0], dt[1], dt[2], a); R.attnBackward(q, k, v, o[1], dout, l[1], dr[0], dr[1], dr[2], a);
    ["dq", "dk", "dv"].forEach((nm, i) => close(`threaded attention ${nm}`, dt[i], dr[i], 5e-5));
  } finally {
    pool.terminate();
  }
});
