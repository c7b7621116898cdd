// Batched GEMM on the Wasm kernels: C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b] (the Kernels.gemm contract).
// Goto/BLIS blocking: for each NC-wide column block and KC-deep slice, op(B) is packed once into NR-column panels;
// for each MC-tall row block op(A) is packed into MR-row panels; the macro kernel runs the register-blocked
// micro-kernel over every panel pair. Operands are copied into the arena per batch item (a broadcast A or B,
// stride 0, only once); C is computed compactly there and copied out. A B named by an OperandKey (a weight) may
// instead stay packed in Wasm memory between calls (pack-cache.ts): then it is neither copied nor packed, and the
// whole product is one hand-off to the threads.
import type { WasmInstance } from "./module.js";
import type { Executor, ExecutorFor } from "./executor.js";
import type { OperandKey } from "../kernels.js";
import type { WasmPackCache } from "./pack-cache.js";
import { gemmShape } from "./gen-gemm.js";
import { checkSpan, gatherInto, placeMatrix, takeMatrix, type Placed } from "./copy.js";

const KC = 256;
/** Row and column blocks: about 128 rows and 2048 columns, multiples of the micro-kernel's rows and columns. */
const mcFor = (mr: number) => Math.floor(128 / mr) * mr;
const ncFor = (nr: number) => Math.floor(2048 / nr) * nr;

export type GemmFn = (transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
  beta: number, C: Float32Array, cOff: number, ldc: number,
  batch: number, strideA: number, strideB: number, strideC: number) => void;

/**
 * Fused epilogue of gemmBiasAct: C = act(C + bias[biasOff + col]) on the compact C of each batch item before it is
 * copied out (bias_act; act codes of gen-elementwise.ts). With B cached it runs on each thread's own row blocks.
 */
export interface Epilogue { bias: Float32Array | null; biasOff: number; act: number }

function checkDims(M: number, N: number, K: number, batch: number): void {
  for (const [n, v] of [["M", M], ["N", N], ["K", K], ["batch", batch]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`gemm: ${n} must be a non-negative integer, got ${v}`);
  }
}

export type GemmRun = (transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
  beta: number, C: Float32Array, cOff: number, ldc: number,
  batch: number, strideA: number, strideB: number, strideC: number, epilogue?: Epilogue, bKey?: OperandKey | null) => void;

/**
 * Float offset of block (jc, pc) in a whole packed op(B) (K × N, nr-column panels): blocks ncFor(nr) columns wide (a
 * multiple of nr, so the blocks before column jc hold exactly jc·K floats), column blocks outer.
 */
const blockOffset = (jc: number, pc: number, N: number, K: number, nr: number) => jc * K + Math.ceil(Math.min(ncFor(nr), N - jc) / nr) * nr * pc;
/** Bytes of a whole packed op(B). */
export const packedBytes = (N: number, K: number, nr: number) => 4 * Math.ceil(N / nr) * nr * K;

export function makeGemm(inst: WasmInstance, executor: ExecutorFor, cache: WasmPackCache | null = null): GemmRun {
  const { exports: x, arena } = inst;
  const { mr: GEMM_MR, nr: GEMM_NR } = gemmShape(inst.relaxed), MC = mcFor(GEMM_MR), NC = ncFor(GEMM_NR);
  /** Pack every (jc, pc) block of op(B) (placed at b) into dst, the panels split between the executor's threads. */
  const packAll = (ex: Executor, b: Placed, transB: boolean, N: number, K: number, dst: number) => {
    const T = ex.threads;
    for (let jc = 0; jc < N; jc += NC) {
      const nc = Math.min(NC, N - jc), panels = Math.ceil(nc / GEMM_NR), per = Math.ceil(panels / T);
      for (let pc = 0; pc < K; pc += KC) {
        const kc = Math.min(KC, K - pc);
        for (let t = 0; t < T; t++) {
          const p0 = t * per, p1 = Math.min(panels, p0 + per);
          if (p0 >= p1) continue;
          const j = jc + p0 * GEMM_NR, w = Math.min(nc, p1 * GEMM_NR) - p0 * GEMM_NR;
          ex.push(t, "gemm_pack_b", b.addr + (transB ? j * b.ld + pc * 4 : pc * b.ld + j * 4), b.ld, transB ? 0 : 1, w, kc,
            dst + 4 * (blockOffset(jc, pc, N, K, GEMM_NR) + p0 * kc * GEMM_NR));
        }
      }
    }
    ex.run();
  };
  return (transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc, batch, strideA, strideB, strideC, epilogue, bKey) => {
    checkDims(M, N, K, batch);
    if (M === 0 || N === 0 || batch === 0) return;
    const [aRows, aCols] = transA ? [K, M] : [M, K];
    const [bRows, bCols] = transB ? [N, K] : [K, N];
    for (let bt = 0; bt < batch; bt++) {
      checkSpan("gemm (A)", A.length, aOff + bt * strideA, aRows, aCols, lda);
      checkSpan("gemm (B)", B.length, bOff + bt * strideB, bRows, bCols, ldb);
      checkSpan("gemm (C)", C.length, cOff + bt * strideC, M, N, ldc);
    }
    arena.reset();
    const ex = executor(2 * M * N * K * batch), T = ex.threads;
    // a weight used again unchanged: op(B) stays packed in Wasm memory between calls (pack-cache.ts)
    const cached = bKey && cache && (batch === 1 || strideB === 0) && K > 0 && alpha !== 0
      ? cache.lookup(bKey, B, bOff, ldb, N, K, transB, packedBytes(N, K, GEMM_NR)) : null;
    if (cached?.fill) {
      try {
        packAll(ex, placeMatrix(arena, B, bOff, bRows, bCols, ldb), transB, N, K, cached.addr);
      } catch (e) { cache!.fillFailed(cached.addr); throw e; }
      arena.reset();
    }
    // row blocks: MC, or smaller so every thread gets one
    const mcEff = T > 1 ? Math.min(MC, Math.ceil(Math.ceil(M / T) / GEMM_MR) * GEMM_MR) : MC;
    const ncMax = Math.min(NC, N), kcMax = Math.min(KC, Math.max(K, 1)), mcMax = Math.min(mcEff, M);
    // (+4 floats: the 3-row packing stores whole vectors, one float past a panel)
    const pAs = Array.from({ length: T }, () => arena.allocF32(Math.ceil(mcMax / GEMM_MR) * GEMM_MR * kcMax + 4));
    const pB = cached ? 0 : arena.allocF32(Math.ceil(ncMax / GEMM_NR) * GEMM_NR * kcMax);
    const tmps = Array.from({ length: T }, () => arena.allocF32(GEMM_MR * GEMM_NR));
    const cAddr = arena.allocF32(M * N);
    if ((K === 0 || alpha === 0) && !epilogue) {
      for (let bt = 0; bt < batch; bt++) {
        const c0 = cOff + bt * strideC;
        for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) { const q = c0 + i * ldc + j; C[q] = beta === 0 ? 0 : beta * C[q]; }
      }
      return;
    }
    let biasAddr = 0;
    if (epilogue?.bias) {
      biasAddr = arena.allocF32(N);
      arena.f32.set(epilogue.bias.subarray(epilogue.biasOff, epilogue.biasOff + N), biasAddr >> 2);
    }
    // no activation: the bias is added by the micro-kernel's store of the last depth block (no pass over C of its own)
    const fuseBias = !!epilogue && epilogue.act === 0;
    const biasArg = (pc: number, kc: number, jc: number) => (fuseBias && biasAddr && pc + kc >= K ? biasAddr + 4 * jc : 0);
    // broadcast operands (batch stride 0) are placed once, below the per-item mark
    const fixedA = strideA === 0 || batch === 1 ? placeMatrix(arena, A, aOff, aRows, aCols, lda) : null;
    const fixedB = cached ? null : strideB === 0 || batch === 1 ? placeMatrix(arena, B, bOff, bRows, bCols, ldb) : null;
    const top = arena.mark();
    for (let bt = 0; bt < batch; bt++) {
      const c0 = cOff + bt * strideC;
      arena.release(top);
      const a = fixedA ?? placeMatrix(arena, A, aOff + bt * strideA, aRows, aCols, lda);
      if (beta !== 0) gatherInto(arena, cAddr, C, c0, M, N, ldc);
      else if (K === 0 || alpha === 0) arena.f32.fill(0, cAddr >> 2, (cAddr >> 2) + M * N);
      if (K === 0 || alpha === 0) { if (beta !== 0) x.scale_inplace(cAddr, M * N, beta); }
      else if (cached) {
        // B already packed: one hand-off for the whole product; each thread runs its row blocks over every (pc, jc)
        for (let ic = 0, blk = 0; ic < M; ic += mcEff, blk++) {
          const mc = Math.min(mcEff, M - ic), t = blk % T;
          for (let pc = 0; pc < K; pc += KC) {
            const kc = Math.min(KC, K - pc);
            ex.push(t, "gemm_pack_a", a.addr + (transA ? pc * a.ld + ic * 4 : ic * a.ld + pc * 4), a.ld, transA ? 1 : 0, mc, kc, pAs[t]);
            for (let jc = 0; jc < N; jc += NC) {
              ex.push(t, "gemm_macro", pAs[t], cached.addr + 4 * blockOffset(jc, pc, N, K, GEMM_NR), cAddr + (ic * N + jc) * 4, N * 4, mc,
                Math.min(NC, N - jc), kc, alpha, pc === 0 ? beta : 1, tmps[t], biasArg(pc, kc, jc));
            }
          }
          if (epilogue && !fuseBias) ex.push(t, "bias_act", cAddr + ic * N * 4, mc, N, biasAddr, epilogue.act);
        }
        ex.run();
      } else {
        const b = fixedB ?? placeMatrix(arena, B, bOff + bt * strideB, bRows, bCols, ldb);
        for (let jc = 0; jc < N; jc += NC) {
          const nc = Math.min(NC, N - jc);
          for (let pc = 0; pc < K; pc += KC) {
            const kc = Math.min(KC, K - pc);
            // B block → panels, the panels split between the threads
            const panels = Math.ceil(nc / GEMM_NR), per = Math.ceil(panels / T);
            for (let t = 0; t < T; t++) {
              const p0 = t * per, p1 = Math.min(panels, p0 + per);
              if (p0 >= p1) continue;
              const j = jc + p0 * GEMM_NR, w = Math.min(nc, p1 * GEMM_NR) - p0 * GEMM_NR;
              ex.push(t, "gemm_pack_b", b.addr + (transB ? j * b.ld + pc * 4 : pc * b.ld + j * 4), b.ld, transB ? 0 : 1, w, kc,
                pB + 4 * p0 * kc * GEMM_NR);
            }
            ex.run();
            // row blocks round-robin over the threads, each packing its own A panels
            for (let ic = 0, blk = 0; ic < M; ic += mcEff, blk++) {
              const mc = Math.min(mcEff, M - ic), t = blk % T;
              ex.push(t, "gemm_pack_a", a.addr + (transA ? pc * a.ld + ic * 4 : ic * a.ld + pc * 4), a.ld, transA ? 1 : 0, mc, kc, pAs[t]);
              ex.push(t, "gemm_macro", pAs[t], pB, cAddr + (ic * N + jc) * 4, N * 4, mc, nc, kc, alpha, pc === 0 ? beta : 1, tmps[t],
                biasArg(pc, kc, jc));
            }
            ex.run();
          }
        }
      }
      // (the products above applied the epilogue already unless K = 0 or alpha = 0)
      if (epilogue && (K === 0 || alpha === 0 || (!cached && !fuseBias))) x.bias_act(cAddr, M, N, biasAddr, epilogue.act);
      takeMatrix(arena, cAddr, 4 * N, M, N, C, c0, ldc);
    }
  };
}
