// The dynamic-int8 linear kernels against the TypeScript reference (backend/ref/qlinear.ts): exact equality of the
// int32 accumulators, and y to float32 rounding (an FMA in the epilogue), on odd shapes, strides and offsets, rows at
// the u8 edges (xq = 127 next to weights −128 / 127: the pairs vpmaddubsw sums into int16 are at their extremes),
// all-zero and non-finite rows. Native: every ISA variant this CPU runs, and the AVX-512 path with VNNI switched off
// (ATTNFLOW_VNNI=0, in a child process). Wasm: SIMD128 i32x4.dot_i16x8_s, and relaxed SIMD (in a child process with the flag Node 20 needs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { loadNativeKernels, type NativeIsa, type NativeKernels } from "../src/node/native-addon.js";
import { packQuantizedWeights, qlinear as refQlinear, type QuantizedWeights } from "../src/backend/ref/qlinear.js";
import { wasmSimdSupported } from "../src/backend/wasm/module.js";
import { makeWasmQlinear, wasmInt8Path } from "../src/backend/wasm/qlinear.js";
import { mulberry32 } from "../bench/lib/prng.js";

const rand = mulberry32(0x18188);
const randInt8 = (n: number) => Int8Array.from({ length: n }, () => Math.floor(rand() * 256) - 128);

type Qlinear = (x: Float32Array, xOff: number, M: number, lda: number, w: QuantizedWeights, bias: Float32Array | null,
  y: Float32Array, yOff: number, ldy: number, acc: Int32Array | null) => void;

interface Case { M: number; N: number; K: number; lda: number; ldy: number; xOff: number; yOff: number; x: Float32Array; w: QuantizedWeights; bias: Float32Array | null; what: string }

function cases(): Case[] {
  const out: Case[] = [];
  // odd M, N, K around the kernels' blocks: VNNI 4 rows × 64 channels, AMX 16/32 rows × 16/32 channels × 64 k
  // (K tails of every size class, a lone last panel, a one-A-tile last row block)
  const shapes: [number, number, number][] = [[1, 1, 1], [1, 17, 3], [3, 15, 4], [5, 16, 5], [2, 33, 63], [7, 64, 64], [67, 65, 130],
    [4, 100, 257], [130, 48, 7], [9, 129, 768], [2, 7, 4099], [16, 32, 64], [17, 31, 65], [33, 47, 124], [48, 80, 192],
    [31, 16, 1], [100, 200, 300], [45, 49, 1000]];
  for (const [M, N, K] of shapes) {
    const lda = K + (M % 3), ldy = N + (N % 2), xOff = M % 4, yOff = N % 3;
    const x = new Float32Array(xOff + (M - 1) * lda + K);
    for (let i = 0; i < x.length; i++) x[i] = (rand() * 2 - 1) * 4 + (rand() < 0.1 ? 10 : 0);
    const q = randInt8(N * K);
    const scale = Float32Array.from({ length: N }, () => 0.001 + rand() * 0.01);
    const w = packQuantizedWeights(q, N, K, scale);
    const bias = M % 2 ? Float32Array.from({ length: N }, () => rand() - 0.5) : null;
    out.push({ M, N, K, lda, ldy, xOff, yOff, x, w, bias, what: `random M=${M} N=${N} K=${K}` });
  }
  // u8 edges: rows quantized to all 127 (x all equal and positive), weights at −128 and 127: the int16 pair sums of
  // vpmaddubsw reach 2·127·(−128) = −32,512 and 2·127·127 = 32,258 (a u8 of 255 would saturate them)
  for (const [N, K] of [[16, 64], [37, 129]]) {
    const M = 3;
    const x = new Float32Array(M * K);
    x.fill(2.5, 0, K);                                         // all 127, zero point 0
    for (let k = 0; k < K; k++) x[K + k] = k % 2 ? 2.5 : 0;     // 127 and 0 alternating
    x.fill(-1, 2 * K, 3 * K);                                   // all 0 with zero point 127
    const q = new Int8Array(N * K);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) q[n * K + k] = n % 3 === 0 ? -128 : n % 3 === 1 ? 127 : (k % 2 ? -128 : 127);
    const w = packQuantizedWeights(q, N, K, new Float32Array(N).fill(0.01));
    out.push({ M, N, K, lda: K, ldy: N, xOff: 0, yOff: 0, x, w, bias: null, what: `u8 edges N=${N} K=${K}` });
  }
  { // all-zero, NaN and Infinity rows between ordinary ones
    const M = 5, N = 20, K = 9;
    const x = Float32Array.from({ length: M * K }, () => rand() - 0.5);
    x.fill(0, K, 2 * K); x[2 * K + 3] = NaN; x[3 * K + 8] = -Infinity;
    const w = packQuantizedWeights(randInt8(N * K), N, K, new Float32Array(N).fill(0.02));
    out.push({ M, N, K, lda: K, ldy: N, xOff: 0, yOff: 0, x, w, bias: new Float32Array(N).fill(1), what: "zero / NaN / -Infinity rows" });
  }
  return out;
}
const CASES = cases();

function check(label: string, fn: Qlinear): number {
  let n = 0;
  for (const c of CASES) {
    const accR = new Int32Array(c.M * c.N), accK = new Int32Array(c.M * c.N).fill(-7);
    const yLen = c.yOff + (c.M - 1) * c.ldy + c.N + 3;
    const yR = new Float32Array(yLen).fill(-99), yK = new Float32Array(yLen).fill(-99);
    refQlinear(c.x, c.xOff, c.M, c.lda, c.w, c.bias, yR, c.yOff, c.ldy, accR);
    fn(c.x, c.xOff, c.M, c.lda, c.w, c.bias, yK, c.yOff, c.ldy, accK);
    for (let i = 0; i < accR.length; i++) {
      if (accK[i] !== accR[i]) assert.fail(`${label} ${c.what}: acc[${Math.floor(i / c.N)}, ${i % c.N}] = ${accK[i]}, reference ${accR[i]}`);
    }
    for (let i = 0; i < yLen; i++) {
      const a = yK[i], b = yR[i];
      if (Number.isNaN(b)) { if (!Number.isNaN(a)) assert.fail(`${label} ${c.what}: y[${i}] = ${a}, reference NaN`); continue; }
      if (!(Math.abs(a - b) <= 2e-6 * Math.max(1, Math.abs(b)))) assert.fail(`${label} ${c.what}: y[${i}] = ${a}, reference ${b}`);
    }
    n++;
  }
  return n;
}

const load = loadNativeKernels();
const nk = load.kernels;
const nativeSkip = !nk ? `native addon not built: ${load.reason}` : !nk.qlinear ? "the native addon predates qlinear (rebuild it)" : false;

test("native qlinear: exact int32 accumulators on every ISA variant (AMX tiles, VNNI, AVX-512 BW, AVX2 vpmaddubsw, generic)", { skip: nativeSkip }, () => {
  const n = nk as NativeKernels;
  const best = n.info().isa;
  const seen: string[] = [];
  const run = () => {
    const path = n.info().int8!;
    if (seen.includes(path)) return;
    seen.push(path);
    check(`native ${path}`, (x, xOff, M, lda, w, bias, y, yOff, ldy, acc) =>
      n.qlinear!(x, xOff, M, w.K, lda, w.packed, w.N, w.colSum, w.scale, bias, y, yOff, ldy, acc));
  };
  try {
    for (const isa of ["avx512", "avx2", "generic"] as NativeIsa[]) {
      if (!n.setIsa(isa)) continue;
      if (isa === "avx512" && n.setInt8 && !process.env.ATTNFLOW_VNNI && !process.env.ATTNFLOW_INT8) {
        try {
          for (const k of ["amx", "avx512-vnni", "avx512bw"] as const) if (n.setInt8(k)) run();
        } finally { n.setInt8("auto"); }
      } else run();
    }
  } finally { n.setIsa(best); }
  assert.ok(seen.includes("generic"));
  // what this CPU offers must have run: AMX where the addon says it is usable, VNNI where the CPU has it
  if (n.setInt8 && n.info().int8AmxUnavailable === "" && !process.env.ATTNFLOW_VNNI && !process.env.ATTNFLOW_INT8) {
    assert.ok(seen.includes("amx"), `AMX is available but did not run: ${seen}`);
  }
  if (process.env.ATTNFLOW_VNNI === "0") assert.ok(!seen.includes("avx512-vnni") && !seen.includes("amx"), `ATTNFLOW_VNNI=0 still ran ${seen}`);
});

test("native qlinear: ReLU / GELU in the epilogue = the float path's unary kernel run after, on every int8 kernel", { skip: nativeSkip || (nk && !nk.info().qlinearAct ? "addon without fused activations" : false) }, () => {
  const n = nk as NativeKernels;
  const kernels = n.setInt8 ? (["amx", "avx512-vnni", "avx512bw"] as const).filter((k) => n.setInt8!(k)) : [];
  n.setInt8?.("auto");
  const ops = { relu: 2, gelu: 11, "gelu-tanh": 13 } as const;  // NativeUnaryOp codes of the float path
  try {
    for (const k of kernels.length ? kernels : [null]) {
      if (k) n.setInt8!(k);
      for (const [M, N, K] of [[3, 20, 9], [40, 70, 200], [130, 48, 64]] as const) {
        const x = Float32Array.from({ length: M * K }, () => rand() * 4 - 2);
        const w = packQuantizedWeights(randInt8(N * K), N, K, Float32Array.from({ length: N }, () => 0.002 + rand() * 0.01));
        const bias = Float32Array.from({ length: N }, () => rand() - 0.5);
        const plain = new Float32Array(M * N);
        n.qlinear!(x, 0, M, K, K, w.packed, N, w.colSum, w.scale, bias, plain, 0, N, null);
        for (const act of ["relu", "gelu", "gelu-tanh"] as const) {
          const want = new Float32Array(M * N), got = new Float32Array(M * N);
          n.unary(ops[act], plain, 0, want, 0, M * N);
          n.qlinear!(x, 0, M, K, K, w.packed, N, w.colSum, w.scale, bias, got, 0, N, null, act);
          let neg = 0;
          for (let i = 0; i < want.length; i++) {
            if (plain[i] < -0.5) neg++;
            if (!(Math.abs(got[i] - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])))) {
              assert.fail(`${k ?? n.info().int8} ${act} M=${M} N=${N} K=${K}: y[${i}] = ${got[i]}, unfused ${want[i]}`);
            }
          }
          assert.ok(neg > 0, "the activation was never exercised on negative inputs");
        }
      }
    }
  } finally { n.setInt8?.("auto"); }
});

test("native qlinear: AVX-512 without VNNI (vpmaddubsw on zmm), in a child process with ATTNFLOW_VNNI=0", {
  skip: nativeSkip || process.env.ATTNFLOW_VNNI === "0" || (nk && !["avx512-vnni", "amx"].includes(nk.info().int8 ?? "") ? "this CPU runs no VNNI path to switch off" : false),
}, () => {
  // the file itself, run directly (node:test prints its TAP summary); this test skips itself there
  const out = execFileSync(process.execPath, ["--test-name-pattern", "every ISA variant", fileURLToPath(import.meta.url)],
    { env: { ...process.env, ATTNFLOW_VNNI: "0", NODE_TEST_CONTEXT: undefined }, encoding: "utf8" });
  assert.match(out, /^ok \d+ - native qlinear: exact int32 accumulators on every ISA variant/m);
  assert.match(out, /# fail 0\n/);
});

test("native qlinear: bad arguments are RangeErrors naming them", { skip: nativeSkip }, () => {
  const n = nk as NativeKernels;
  const w = packQuantizedWeights(new Int8Array(10 * 6), 10, 6, new Float32Array(10));
  const y = new Float32Array(20);
  if (n.setInt8) assert.throws(() => n.setInt8!("sse" as "amx"), /attnflow\.setInt8: argument 'kernel' must be "auto", "amx", "avx512-vnni" or "avx512bw"; got "sse"/);
  assert.throws(() => n.qlinear!(new Float32Array(12), 0, 2, 6, 6, w.packed.subarray(1), 10, w.colSum, w.scale, null, y, 0, 10, null),
    /packed weights 'w' have 127 bytes, expected 128/);
  assert.throws(() => n.qlinear!(new Float32Array(11), 0, 2, 6, 6, w.packed, 10, w.colSum, w.scale, null, y, 0, 10, null), /'x' is too short/);
  assert.throws(() => n.qlinear!(new Float32Array(12), 0, 2, 6, 5, w.packed, 10, w.colSum, w.scale, null, y, 0, 10, null), /lda \(5\) must be >= K \(6\)/);
  assert.throws(() => n.qlinear!(new Float32Array(12), 0, 2, 6, 6, w.packed, 10, w.colSum, w.scale, null, y, 0, 10, new Int32Array(19)), /'acc' has 19 values, needs M·N = 20/);
});

const wasmSkip = wasmSimdSupported() ? false : "this engine has no Wasm SIMD128";

test("wasm qlinear: exact int32 accumulators (SIMD128 i32x4.dot_i16x8_s here, or relaxed SIMD where the engine has it)", { skip: wasmSkip }, () => {
  const q = makeWasmQlinear();
  assert.ok(q, "no Wasm int8 kernel");
  check(`wasm ${wasmInt8Path()}`, q);
  // the same weights again (resident in the module's memory) and a larger call that grows its scratch area
  check(`wasm ${wasmInt8Path()} (again)`, q);
  if (process.env.INT8_WANT_RELAXED) assert.equal(wasmInt8Path(), "relaxed-simd");
});

test("wasm qlinear: the relaxed-SIMD variant (i16x8.relaxed_dot_i8x16_i7x16_s), in a child with relaxed SIMD on", {
  skip: wasmSkip || process.env.INT8_WANT_RELAXED ? "in the child itself" : wasmInt8Path() === "relaxed-simd" ? "already tested above" : false,
}, (t) => {
  let out: string;
  try {
    out = execFileSync(process.execPath, ["--experimental-wasm-relaxed-simd", "--test-name-pattern", "wasm qlinear: exact", fileURLToPath(import.meta.url)],
      { env: { ...process.env, INT8_WANT_RELAXED: "1", NODE_TEST_CONTEXT: undefined }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = (e as { stderr?: string; stdout?: string });
    if (/bad option|unknown option/i.test(err.stderr ?? "")) { t.skip("this Node has no relaxed SIMD flag"); return; }
    throw new Error(`child failed: ${err.stdout}\n${err.stderr}`);
  }
  assert.match(out, /^ok \d+ - wasm qlinear: exact int32 accumulators/m);
  assert.match(out, /# fail 0\n/);
});
