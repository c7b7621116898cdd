// The Wasm backend's kernel table (a partial Kernels: everything not here runs on the reference kernels).
// Every kernel copies its inputs into the arena, runs the emitted code and copies results out; row and
// elementwise kernels work in chunks of ≤ CHUNK floats so the arena stays small and the data stays in cache.
import type { BinaryOp, GemmActivation, Kernels, StridedView, UnaryOp } from "../kernels.js";
import { refKernels } from "../ref/index.js";
import type { WasmInstance } from "./module.js";
import { makeGemm } from "./gemm.js";
import { makeAttention } from "./attention.js";
import { SerialExecutor, type ExecutorFor } from "./executor.js";
import type { WasmPackCache } from "./pack-cache.js";
import { ACT_CODES, BINARY_OPS, UNARY_OPS } from "./gen-elementwise.js";

/** Floats per chunk of the row/elementwise kernels (1 MiB). */
const CHUNK = 1 << 18;
/** Below this many elements the reference loops win (the copies and the call cost more than they save). */
export const WASM_ELEMENTWISE_MIN = 1024;

const UNARY_CODE = new Map<string, number>(UNARY_OPS.map((o, i) => [o, i]));
const BINARY_CODE = new Map<string, number>(BINARY_OPS.map((o, i) => [o, i]));

function checkLen(what: string, arr: ArrayLike<number>, need: number): void {
  if (arr.length < need) throw new RangeError(`${what}: array has ${arr.length} elements, need ${need}`);
}

function numel(shape: readonly number[]): number { let n = 1; for (const s of shape) n *= s; return n; }

/** Whether dims [from, to) of a view are laid out contiguously among themselves (size-1 dims ignored). */
function denseRange(shape: readonly number[], strides: readonly number[], from: number, to: number): boolean {
  let expect = 1;
  for (let d = to - 1; d >= from; d--) {
    if (shape[d] === 1) continue;
    if (strides[d] !== expect) return false;
    expect *= shape[d];
  }
  return true;
}
function zeroRange(shape: readonly number[], strides: readonly number[], from: number, to: number): boolean {
  for (let d = from; d < to; d++) if (shape[d] !== 1 && strides[d] !== 0) return false;
  return true;
}

/** How a broadcast operand reads: full (dense), scalar, row (dense trailing R, repeated) or col (one per row of R). */
type Mode = { kind: "full" | "scalar" } | { kind: "row" | "col"; R: number };
function operandMode(shape: readonly number[], strides: readonly number[]): Mode | null {
  const nd = shape.length;
  if (denseRange(shape, strides, 0, nd)) return { kind: "full" };
  if (zeroRange(shape, strides, 0, nd)) return { kind: "scalar" };
  for (let s = 1; s < nd; s++) {
    if (zeroRange(shape, strides, 0, s) && denseRange(shape, strides, s, nd)) return { kind: "row", R: numel(shape.slice(s)) };
    if (denseRange(shape, strides, 0, s) && zeroRange(shape, strides, s, nd)) return { kind: "col", R: numel(shape.slice(s)) };
  }
  return null;
}

/**
 * The kernel table over one instance. `executor` (default: the calling thread only) picks how a call of some work
 * is spread over threads (threads.ts); `packCache` (pack-cache.ts, over the same instance's arena) keeps weights packed
 * between gemmBiasAct calls that name them (bKey).
 */
export function makeWasmKernels(inst: WasmInstance, executor?: ExecutorFor, packCache: WasmPackCache | null = null): Partial<Kernels> {
  const { exports: x, arena } = inst;
  const serial = new SerialExecutor(x);
  const exec: ExecutorFor = executor ?? (() => serial);
  const gemmRun = makeGemm(inst, exec, packCache);
  const attn = makeAttention(inst, exec);

  /** Run fn over row chunks [r0, r0 + nr) of at most CHUNK elements (≥ 1 row). */
  const chunks = (rows: number, rowLen: number, fn: (r0: number, nr: number) => void) => {
    const per = Math.max(1, Math.floor(CHUNK / Math.max(rowLen, 1)));
    for (let r0 = 0; r0 < rows; r0 += per) fn(r0, Math.min(per, rows - r0));
  };
  /** Copy src[off, off+n) into the arena; returns its byte address. */
  const put = (src: Float32Array, off: number, n: number): number => {
    const p = arena.allocF32(n);
    arena.f32.set(src.subarray(off, off + n), p >> 2);
    return p;
  };
  const get = (p: number, n: number, dst: Float32Array, off: number) => { dst.set(arena.f32.subarray(p >> 2, (p >> 2) + n), off); };

  const rowwise = (name: string, fn: (x: number, y: number, rows: number, n: number) => void) =>
    (xs: Float32Array, ys: Float32Array, rows: number, n: number): void => {
      checkLen(name, xs, rows * n); checkLen(name, ys, rows * n);
      chunks(rows, n, (r0, nr) => {
        arena.reset();
        const px = put(xs, r0 * n, nr * n), py = arena.allocF32(nr * n);
        fn(px, py, nr, n);
        get(py, nr * n, ys, r0 * n);
      });
    };

  const kernels: Partial<Kernels> = {
    gemm: (tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc, batch, sA, sB, sC) =>
      gemmRun(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc, batch, sA, sB, sC),

    gemmBiasAct: (tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc, batch, sA, sB, sC, bias, biasOff, act, bKey) => {
      const code = ACT_CODES[act as GemmActivation];
      if (code === undefined) throw new RangeError(`gemmBiasAct (wasm): unknown activation "${String(act)}"`);
      if (bias) checkLen("gemmBiasAct (bias)", bias, biasOff + N);
      gemmRun(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc, batch, sA, sB, sC, { bias, biasOff, act: code }, bKey);
    },

    activationBackward: (act, z, zOff, g, gOff, out, n) => {
      const code = ACT_CODES[act];
      if (!(code > 0)) throw new RangeError(`activationBackward (wasm): unknown activation "${String(act)}"`);
      checkLen("activationBackward (z)", z, zOff + n); checkLen("activationBackward (g)", g, gOff + n); checkLen("activationBackward (out)", out, n);
      for (let i0 = 0; i0 < n; i0 += CHUNK) {
        const m = Math.min(CHUNK, n - i0);
        arena.reset();
        const pz = put(z, zOff + i0, m), pg = put(g, gOff + i0, m), po = arena.allocF32(m);
        x.act_bwd(code, pz, pg, po, m);
        get(po, m, out, i0);
      }
    },

    softmax: rowwise("softmax (wasm)", (px, py, rows, n) => x.softmax_rows(px, py, rows, n)),

    logSoftmax: (xs, ys, rows, n) => {
      checkLen("logSoftmax (wasm)", xs, rows * n); checkLen("logSoftmax (wasm)", ys, rows * n);
      chunks(rows, n, (r0, nr) => {
        arena.reset();
        const px = put(xs, r0 * n, nr * n), py = arena.allocF32(nr * n), st = arena.allocF32(2 * nr);
        x.lse_rows(px, st, nr, n);   // (max, Σ exp(x − max)) per row
        const f = arena.f32;
        for (let r = 0; r < nr; r++) f[(st >> 2) + 2 * r + 1] = Math.log(f[(st >> 2) + 2 * r + 1]);
        x.sub_rows(px, st, py, nr, n);
        get(py, nr * n, ys, r0 * n);
      });
    },

    softmaxBackward: (y, dy, dx, rows, n) => {
      for (const [nm, a] of [["y", y], ["dy", dy], ["dx", dx]] as const) checkLen(`softmaxBackward (wasm, ${nm})`, a, rows * n);
      chunks(rows, n, (r0, nr) => {
        arena.reset();
        const py = put(y, r0 * n, nr * n), pg = put(dy, r0 * n, nr * n), pd = arena.allocF32(nr * n);
        x.softmax_bwd_rows(py, pg, pd, nr, n);
        get(pd, nr * n, dx, r0 * n);
      });
    },

    layerNormForward: (xs, w, b, y, mean, rstd, rows, D, eps) => {
      checkLen("layerNormForward (wasm, x)", xs, rows * D); checkLen("layerNormForward (wasm, y)", y, rows * D);
      if (w) checkLen("layerNormForward (wasm, weight)", w, D);
      if (b) checkLen("layerNormForward (wasm, bias)", b, D);
      checkLen("layerNormForward (wasm, mean)", mean, rows); checkLen("layerNormForward (wasm, rstd)", rstd, rows);
      arena.reset();
      const pw = w ? put(w, 0, D) : 0, pb = b ? put(b, 0, D) : 0;
      const mark = arena.mark();
      chunks(rows, D, (r0, nr) => {
        arena.release(mark);
        const px = put(xs, r0 * D, nr * D), py = arena.allocF32(nr * D), pm = arena.allocF32(nr), pr = arena.allocF32(nr);
        x.layernorm_fwd(px, pw, pb, py, pm, pr, nr, D, eps);
        get(py, nr * D, y, r0 * D); get(pm, nr, mean, r0); get(pr, nr, rstd, r0);
      });
    },

    layerNormBackward: (dy, xs, w, mean, rstd, dx, dw, db, rows, D) => {
      for (const [nm, a] of [["dy", dy], ["x", xs], ["dx", dx]] as const) checkLen(`layerNormBackward (wasm, ${nm})`, a, rows * D);
      checkLen("layerNormBackward (wasm, mean)", mean, rows); checkLen("layerNormBackward (wasm, rstd)", rstd, rows);
      for (const [nm, a] of [["weight", w], ["dw", dw], ["db", db]] as const) if (a) checkLen(`layerNormBackward (wasm, ${nm})`, a, D);
      arena.reset();
      const pw = w ? put(w, 0, D) : 0, pdw = dw ? put(dw, 0, D) : 0, pdb = db ? put(db, 0, D) : 0;
      const mark = arena.mark();
      chunks(rows, D, (r0, nr) => {
        arena.release(mark);
        const pg = put(dy, r0 * D, nr * D), px = put(xs, r0 * D, nr * D), pm = put(mean, r0, nr), pr = put(rstd, r0, nr);
        const pdx = arena.allocF32(nr * D);
        x.layernorm_bwd(pg, px, pw, pm, pr, pdx, pdw, pdb, nr, D);
        get(pdx, nr * D, dx, r0 * D);
      });
      if (dw) get(pdw, D, dw, 0);
      if (db) get(pdb, D, db, 0);
    },

    unary: (op: UnaryOp, xv: StridedView<Float32Array | Int32Array | Uint8Array>, shape: readonly number[], out: Float32Array | Uint8Array) => {
      const code = UNARY_CODE.get(op), n = numel(shape);
      if (code === undefined || n < WASM_ELEMENTWISE_MIN || !(xv.data instanceof Float32Array) || !(out instanceof Float32Array) ||
        !denseRange(shape, xv.strides, 0, shape.length)) { refKernels.unary(op, xv, shape, out); return; }
      checkLen("unary (wasm, x)", xv.data, xv.offset + n); checkLen("unary (wasm, out)", out, n);
      for (let i0 = 0; i0 < n; i0 += CHUNK) {
        const m = Math.min(CHUNK, n - i0);
        arena.reset();
        const px = put(xv.data, xv.offset + i0, m), py = arena.allocF32(m);
        x.unary(code, px, py, m);
        get(py, m, out, i0);
      }
    },

    binary: (op: BinaryOp, a, b, shape, out) => {
      const code = BINARY_CODE.get(op), n = numel(shape);
      if (code !== undefined && n >= WASM_ELEMENTWISE_MIN && a.data instanceof Float32Array && b.data instanceof Float32Array &&
        out instanceof Float32Array && binaryFast(code, a as StridedView<Float32Array>, b as StridedView<Float32Array>, shape, n, out)) return;
      refKernels.binary(op, a, b, shape, out);
    },
  };

  /** out = a op b through the row/col/scalar broadcast modes; false when the layouts do not fit them. */
  function binaryFast(code: number, a: StridedView<Float32Array>, b: StridedView<Float32Array>, shape: readonly number[], n: number,
    out: Float32Array): boolean {
    const ma = operandMode(shape, a.strides), mb = operandMode(shape, b.strides);
    if (!ma || !mb) return false;
    const Ra = "R" in ma ? ma.R : 0, Rb = "R" in mb ? mb.R : 0;
    if (Ra && Rb && Ra !== Rb) return false;
    const splat = (mo: Mode) => (mo.kind === "scalar" || mo.kind === "col" ? 1 : 0);
    checkLen("binary (wasm, out)", out, n);
    if (!Ra && !Rb) {
      // full/scalar operands only: one row per chunk of elements
      checkLen("binary (wasm, a)", a.data, a.offset + (ma.kind === "full" ? n : 1));
      checkLen("binary (wasm, b)", b.data, b.offset + (mb.kind === "full" ? n : 1));
      for (let i0 = 0; i0 < n; i0 += CHUNK) {
        const m = Math.min(CHUNK, n - i0);
        arena.reset();
        const pa = ma.kind === "full" ? put(a.data, a.offset + i0, m) : put(a.data, a.offset, 1);
        const pb = mb.kind === "full" ? put(b.data, b.offset + i0, m) : put(b.data, b.offset, 1);
        const po = arena.allocF32(m);
        x.binary(code, pa, splat(ma), 0, pb, splat(mb), 0, po, 1, m);
        get(po, m, out, i0);
      }
      return true;
    }
    const R = Ra || Rb, rows = n / R;
    // per row of R output elements: how many elements of the operand it reads, and how far the operand moves
    const span = (mo: Mode): [number, number] => mo.kind === "full" ? [R, R] : mo.kind === "scalar" ? [1, 0] : mo.kind === "row" ? [R, 0] : [1, 1];
    const [na, sa] = span(ma), [nb, sb] = span(mb);
    checkLen("binary (wasm, a)", a.data, a.offset + (rows - 1) * sa + na); checkLen("binary (wasm, b)", b.data, b.offset + (rows - 1) * sb + nb);
    chunks(rows, R, (r0, nr) => {
      arena.reset();
      const pa = put(a.data, a.offset + r0 * sa, (nr - 1) * sa + na), pb = put(b.data, b.offset + r0 * sb, (nr - 1) * sb + nb);
      const po = arena.allocF32(nr * R);
      x.binary(code, pa, splat(ma), 4 * sa, pb, splat(mb), 4 * sb, po, nr, R);
      get(po, nr * R, out, r0 * R);
    });
    return true;
  }

  // the attention kernels (plain and through layouts)
  Object.assign(kernels, {
    attnForward: (q, k, v, out, lse, a) => attn.forward(q, k, v, out, lse, a),
    attnBackward: (q, k, v, out, dout, lse, dq, dk, dv, a) => attn.backward(q, k, v, out, dout, lse, dq, dk, dv, a),
    attnWeights: (q, k, lse, out, a, mode, rowStart, rowCount) => attn.weights(q, k, lse, out, a, mode, rowStart, rowCount),
    attnForwardLayout: (q, k, v, out, lse, a, layout) => attn.forward(q, k, v, out, lse, a, layout),
    attnBackwardLayout: (q, k, v, out, dout, lse, dq, dk, dv, a, layout) => attn.backward(q, k, v, out, dout, lse, dq, dk, dv, a, layout),
    attnWeightsLayout: (q, k, lse, out, a, mode, rowStart, rowCount, layout) => attn.weights(q, k, lse, out, a, mode, rowStart, rowCount, layout),
    attnAlibi: true,   // each head's ALiBi bias is written into its mask slice in the arena (attention.ts maskSlice)
    attnWindow: true,  // the sliding window narrows the tile loops and is masked in the kernels (band_t, bwd_ds)
  } satisfies Partial<Kernels>);
  return kernels;
}

