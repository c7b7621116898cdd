// Dynamic-int8 linear for the Wasm backend (the arithmetic: ../ref/qlinear.ts). A small module of its own (its own
// memory, so packed weights stay resident between calls instead of being copied in each time): the rows of x are
// quantized in TypeScript (the reference's quantizeRowU8), the integer GEMM runs in Wasm, the float epilogue in
// TypeScript again. Two GEMM variants, picked by feature detection when first used:
//   relaxed SIMD  i16x8.relaxed_dot_i8x16_i7x16_s + i32x4.extadd_pairwise_i16x8_s — the packed 16-byte chunk
//                 (4 channels × 4 k) times the row's 4 bytes splatted; the second operand is xq ≤ 127, where every
//                 engine must give the exact result (x64: pmaddubsw, whose int16 pairs then never saturate). Kept
//                 only if it reproduces the reference on a small problem when first compiled (an engine self-check)
//   SIMD128       i32x4.dot_i16x8_s — weights sign-extended to int16 (i16x8.extend_low/high), the row in int16
//                 (x[4g..4g+3] twice, one load64_splat), pairs of lanes summed at the end
// Both produce the reference's int32 accumulators exactly (test/int8-kernels.test.ts). Single-threaded.
import type { Kernels } from "../kernels.js";
import { f32, packQuantizedWeights, qlinear as refQlinear, quantizeRowU8, QPANEL, type QuantizedWeights } from "../ref/qlinear.js";
import { ModuleBuilder, I32, I32x4, V128, get, set, i32, v128, type Expr, type Local, type FuncBuilder } from "./emit.js";

const simd = (op: number): number[] => [0xfd, ...uleb7(op)];
function uleb7(n: number): number[] { const out: number[] = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n); return out; }
const extendLowS = (a: Expr): Expr => [a, simd(0x87)];     // i16x8.extend_low_i8x16_s
const extendHighS = (a: Expr): Expr => [a, simd(0x88)];    // i16x8.extend_high_i8x16_s
const dotI16 = (a: Expr, b: Expr): Expr => [a, b, simd(0xba)];  // i32x4.dot_i16x8_s
const relaxedDot = (a: Expr, b: Expr, c: Expr): Expr => [a, b, c, simd(0x113)];  // i32x4.relaxed_dot_i8x16_i7x16_add_s
const relaxedDot16 = (a: Expr, b: Expr): Expr => [a, b, simd(0x112)];  // i16x8.relaxed_dot_i8x16_i7x16_s
const extaddPairs = (a: Expr): Expr => [a, simd(0x7e)];                // i32x4.extadd_pairwise_i16x8_s
const load64Splat = (addr: Expr, offset = 0): Expr => [addr, simd(0x0a), 3, uleb7(offset)];
const shuffle = (a: Expr, b: Expr, lanes32: number[]): Expr => [a, b, simd(0x0d), lanes32.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])];

/**
 * qgemm(xq, M2, G, w, P, acc): acc (M2·2 rows, P·16 columns, int32) = xq rows · packed panels, for row pairs
 * (M2 pairs; the caller pads an odd M with a zero row). relaxed: xq rows are Kp = 4G bytes; otherwise int16, 8G bytes.
 */
function buildModule(relaxed: boolean): Uint8Array<ArrayBuffer> {
  const mb = new ModuleBuilder();
  mb.importMemory({ module: "env", name: "memory", initialPages: 1, maxPages: 65536, shared: false });
  mb.func("qgemm", [i32, i32, i32, i32, i32, i32], [], (f: FuncBuilder, xq: Local, M2: Local, G: Local, w: Local, P: Local, acc: Local) => {
    const r = f.local(i32), p = f.local(i32), g = f.local(i32), h = f.local(i32);
    const x0 = f.local(i32), x1 = f.local(i32), wp = f.local(i32), out = f.local(i32), rowBytes = f.local(i32), ldacc = f.local(i32);
    const a = Array.from({ length: 8 }, () => f.local(v128));
    const e = Array.from({ length: 4 }, () => f.local(v128));
    const xa = f.local(v128), xb = f.local(v128);
    f.emit(set(rowBytes, I32.shl(get(G), I32.const(relaxed ? 2 : 3))), set(ldacc, I32.shl(get(P), I32.const(6)))); // bytes
    f.for(r, I32.const(0), get(M2), 1, () => {
      f.emit(set(x0, I32.add(get(xq), I32.mul(I32.shl(get(r), I32.const(1)), get(rowBytes)))), set(x1, I32.add(get(x0), get(rowBytes))));
      f.for(p, I32.const(0), get(P), 1, () => {
        if (relaxed) {
          // 2 rows × 16 channels: a[0..3] row 0, a[4..7] row 1 (lanes are channels)
          f.emit(...a.map((l) => set(l, V128.constI32(0, 0, 0, 0))));
          f.emit(set(wp, I32.add(get(w), I32.mul(get(p), I32.shl(get(G), I32.const(6))))));
          f.for(g, I32.const(0), get(G), 1, () => {
            f.emit(set(xa, V128.loadSplat32(I32.add(get(x0), I32.shl(get(g), I32.const(2))))),
              set(xb, V128.loadSplat32(I32.add(get(x1), I32.shl(get(g), I32.const(2))))));
            for (let c = 0; c < 4; c++) {
              // i16x8.relaxed_dot + extadd_pairwise rather than i32x4.relaxed_dot_i8x16_i7x16_add_s: V8 11.3 (Node 20,
              // --experimental-wasm-relaxed-simd) doubled some lanes of the latter inside this loop
              f.emit(set(e[c], V128.load(get(wp), 16 * c)),
                set(a[c], I32x4.add(get(a[c]), extaddPairs(relaxedDot16(get(e[c]), get(xa))))),
                set(a[4 + c], I32x4.add(get(a[4 + c]), extaddPairs(relaxedDot16(get(e[c]), get(xb))))));
            }
            f.emit(set(wp, I32.add(get(wp), I32.const(64))));
          });
          f.emit(set(out, I32.add(get(acc), I32.add(I32.mul(I32.shl(get(r), I32.const(1)), get(ldacc)), I32.shl(get(p), I32.const(6))))));
          for (let c = 0; c < 4; c++) f.emit(V128.store(get(out), get(a[c]), 16 * c), V128.store(I32.add(get(out), get(ldacc)), get(a[4 + c]), 16 * c));
        } else {
          // two halves of 8 channels; per half and row 4 accumulators of [chA k01, chA k23, chB k01, chB k23]
          f.for(h, I32.const(0), I32.const(2), 1, () => {
            f.emit(...a.map((l) => set(l, V128.constI32(0, 0, 0, 0))));
            f.emit(set(wp, I32.add(I32.add(get(w), I32.mul(get(p), I32.shl(get(G), I32.const(6)))), I32.shl(get(h), I32.const(5)))));
            f.for(g, I32.const(0), get(G), 1, () => {
              f.emit(set(xa, load64Splat(I32.add(get(x0), I32.shl(get(g), I32.const(3))))),
                set(xb, load64Splat(I32.add(get(x1), I32.shl(get(g), I32.const(3))))));
              f.emit(set(e[0], V128.load(get(wp), 0)), set(e[2], V128.load(get(wp), 16)));
              f.emit(set(e[1], extendHighS(get(e[0]))), set(e[0], extendLowS(get(e[0]))),
                set(e[3], extendHighS(get(e[2]))), set(e[2], extendLowS(get(e[2]))));
              for (let c = 0; c < 4; c++) {
                f.emit(set(a[c], I32x4.add(get(a[c]), dotI16(get(e[c]), get(xa)))),
                  set(a[4 + c], I32x4.add(get(a[4 + c]), dotI16(get(e[c]), get(xb)))));
              }
              f.emit(set(wp, I32.add(get(wp), I32.const(64))));
            });
            f.emit(set(out, I32.add(get(acc), I32.add(I32.mul(I32.shl(get(r), I32.const(1)), get(ldacc)),
              I32.add(I32.shl(get(p), I32.const(6)), I32.shl(get(h), I32.const(5)))))));
            for (let row = 0; row < 2; row++) {
              const dst: Expr = row ? I32.add(get(out), get(ldacc)) : get(out);
              for (let q = 0; q < 2; q++) {
                const lo = a[row * 4 + 2 * q], hi = a[row * 4 + 2 * q + 1];
                f.emit(V128.store(dst, I32x4.add(shuffle(get(lo), get(hi), [0, 2, 4, 6]), shuffle(get(lo), get(hi), [1, 3, 5, 7])), 16 * q));
              }
            }
          });
        }
      });
    });
  });
  return mb.bytes();
}

interface Engine {
  relaxed: boolean;
  memory: WebAssembly.Memory;
  qgemm: (xq: number, M2: number, G: number, w: number, P: number, acc: number) => void;
}

let engine: Engine | null | undefined;
let relaxedRejected = false;
function getEngine(): Engine | null {
  if (engine !== undefined) return engine;
  engine = null;
  for (const relaxed of [true, false]) {
    const bytes = buildModule(relaxed);
    if (!WebAssembly.validate(bytes)) continue;            // no relaxed SIMD here: the SIMD128 variant
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    engine = { relaxed, memory, qgemm: inst.exports.qgemm as Engine["qgemm"] };
    // relaxed SIMD is new in engines: keep it only if it reproduces the reference on a small problem
    if (relaxed && !selfCheck()) { relaxedRejected = true; engine = null; continue; }
    break;
  }
  return engine;
}

function selfCheck(): boolean {
  const N = 37, K = 45, M = 3;
  const q = Int8Array.from({ length: N * K }, (_, i) => ((i * 97 + 13) % 256) - 128);
  const w = packQuantizedWeights(q, N, K, new Float32Array(N).fill(1));
  const x = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
  const a = new Int32Array(M * N), b = new Int32Array(M * N), y = new Float32Array(M * N);
  refQlinear(x, 0, M, K, w, null, y, 0, N, a);
  run(x, 0, M, K, w, null, y, 0, N, b);
  resident = new WeakMap(); weightsEnd = 0;
  return a.every((v, i) => v === b[i]);
}

/**
 * Which integer dot product the Wasm int8 kernel uses here: "relaxed-simd", "simd128" (with " (relaxed SIMD failed
 * its self-check)" when the engine has relaxed SIMD but got it wrong), or null without SIMD.
 */
export function wasmInt8Path(): string | null {
  const e = getEngine();
  return e ? (e.relaxed ? "relaxed-simd" : relaxedRejected ? "simd128 (relaxed SIMD failed its self-check)" : "simd128") : null;
}

// Packed weights stay in the module's memory (bump-allocated after the scratch area) while the QuantizedWeights
// object lives; past WEIGHT_CAP bytes the region starts over (older weights are copied in again when next used).
const WEIGHT_CAP = 512 * 1024 * 1024;
let resident = new WeakMap<QuantizedWeights, number>();
let weightsEnd = 0;
let scratchBytes = 1 << 20;

function ensure(e: Engine, bytes: number): void {
  const have = e.memory.buffer.byteLength;
  if (bytes > have) e.memory.grow(Math.ceil((bytes - have) / 65536));
}

export function makeWasmQlinear(): Kernels["qlinear"] | undefined {
  return getEngine() ? run : undefined;
}

const run: NonNullable<Kernels["qlinear"]> = (x, xOff, M, lda, w, bias, y, yOff, ldy, acc) => {
    const e = engine!;
    const { N, K, packed, colSum, scale } = w;
    const Kp = Math.ceil(K / 4) * 4, G = Kp / 4, P = Math.ceil(N / QPANEL), M2 = Math.ceil(M / 2);
    const rowBytes = e.relaxed ? Kp : 2 * Kp;
    const need = 2 * M2 * rowBytes + 2 * M2 * P * QPANEL * 4 + 64;
    if (need > scratchBytes) {                              // a larger scratch area: weights move up, so start over
      scratchBytes = Math.max(need, 2 * scratchBytes);
      resident = new WeakMap(); weightsEnd = 0;
    }
    let wOff = resident.get(w);
    if (wOff === undefined) {
      if (weightsEnd === 0 || weightsEnd + packed.length > scratchBytes + WEIGHT_CAP) { resident = new WeakMap(); weightsEnd = scratchBytes; }
      wOff = weightsEnd;
      ensure(e, wOff + packed.length);
      new Int8Array(e.memory.buffer, wOff, packed.length).set(packed);
      weightsEnd = (wOff + packed.length + 15) & ~15;
      resident.set(w, wOff);
    }
    ensure(e, scratchBytes);
    const buf = e.memory.buffer;
    const xq8 = new Uint8Array(buf, 0, 2 * M2 * rowBytes);
    const xq16 = e.relaxed ? null : new Int16Array(buf, 0, M2 * Kp * 2);
    const row = new Uint8Array(K);
    const sx = new Float32Array(M), zp = new Int32Array(M);
    for (let r = 0; r < 2 * M2; r++) {
      if (r >= M) { xq8.fill(0, r * rowBytes, (r + 1) * rowBytes); continue; }
      const q = quantizeRowU8(x, xOff + r * lda, K, row, 0);
      sx[r] = q.scale; zp[r] = q.zp;
      if (xq16) { const o = r * Kp; for (let k = 0; k < K; k++) xq16[o + k] = row[k]; xq16.fill(0, o + K, o + Kp); }
      else { xq8.set(row, r * Kp); xq8.fill(0, r * Kp + K, (r + 1) * Kp); }
    }
    const accOff = 2 * M2 * rowBytes;
    e.qgemm(0, M2, G, wOff, P, accOff);
    const a32 = new Int32Array(e.memory.buffer, accOff, 2 * M2 * P * QPANEL);
    const lda32 = P * QPANEL;
    for (let r = 0; r < M; r++) {
      const s = sx[r], z = zp[r], ar = r * lda32, yr = yOff + r * ldy;
      for (let n = 0; n < N; n++) {
        const av = a32[ar + n];
        if (acc) acc[r * N + n] = av;
        y[yr + n] = f32(f32(f32(av - z * colSum[n]) * f32(s * scale[n])) + (bias ? bias[n] : 0));
      }
    }
};
