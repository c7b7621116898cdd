// Loader for the optional C++ backend (native/, built by scripts/build-native.mjs at install time).
// Never throws: when the addon is missing, stale or disabled, loadNativeKernels() returns { kernels: null, reason }.
// Search order: $ATTNFLOW_NATIVE_PATH (a .node file), then native/build/Release/attnflow_native.node in the
// directories above this module (works from src/node/ and dist/src/node/), then above the working directory.
// ATTNFLOW_NATIVE=0 disables it.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export type NativeIsa = "avx512" | "avx2" | "neon" | "generic";
/** Fused GEMM epilogue activation: 0 none, 1 relu, 2 exact (erf) GELU, 3 tanh-approximated GELU. */
export type NativeActivation = 0 | 1 | 2 | 3 | "none" | "relu" | "gelu" | "gelu-tanh";

/**
 * Where an attention tensor lives in its buffer: element (b, h, t, d) is at
 * offset + b·strideB + h·strideH + t·strideT + d (the feature axis stays contiguous). Lets q/k/v be column blocks of
 * one fused QKV projection (T, 3·H·D) and out/dq/dk/dv be written token-major, with no copies. Tensors not named
 * here are contiguous (B, heads, T, features). Outputs with custom layouts must not overlap each other (unchecked).
 */
export type NativeTensorLayout = readonly [offset: number, strideB: number, strideH: number, strideT: number];
export interface NativeAttnLayout {
  q?: NativeTensorLayout; k?: NativeTensorLayout; v?: NativeTensorLayout; out?: NativeTensorLayout;
  dout?: NativeTensorLayout; dq?: NativeTensorLayout; dk?: NativeTensorLayout; dv?: NativeTensorLayout;
}

/** Elementwise op names of `unary` (or their codes 0…14 in this order). */
export type NativeUnaryOp = "neg" | "abs" | "relu" | "square" | "sqrt" | "rsqrt" | "reciprocal" | "exp" | "tanh" | "sigmoid"
  | "erf" | "gelu" | "geluGrad" | "geluTanh" | "geluTanhGrad";
/**
 * Ops of `binary` (codes 0…14 in this order): codes 6…11 are comparisons writing 0/1 into a Uint8Array; 12…14 are
 * activation backwards a·act'(b) with a = dy and b = the pre-activation (relu: or its output); gelu ones need
 * both operands "full".
 */
export type NativeBinaryOp = "add" | "sub" | "mul" | "div" | "maximum" | "minimum" | "eq" | "ne" | "lt" | "le" | "gt" | "ge"
  | "reluBackward" | "geluBackward" | "geluTanhBackward";
/**
 * How a binary operand is read for element i of an output laid out as (n/R, R): 0/"full" a[i], 1/"scalar" a[0],
 * 2/"row" a[i mod R] (a trailing row repeated, e.g. a bias), 3/"col" a[⌊i/R⌋] (one value per row).
 */
export type NativeBinaryMode = 0 | 1 | 2 | 3 | "full" | "scalar" | "row" | "col";

export interface NativePackCacheInfo {
  entries: number; bytes: number; limit: number; hits: number; packs: number; admitted: number; evicted: number;
}

export interface NativeInfo {
  isa: NativeIsa;
  threads: number;
  version: string;
  /** What the addon did to glibc's malloc thresholds at load (native/src/malloc-tuning.cc explains why). */
  malloc: string;
  /** The attention kernels take ALiBi slopes and their offset after the layout argument (addons built before lack it). */
  attnAlibi?: boolean;
  /** The attention kernels take a sliding window (windowLo, windowHi) after the ALiBi arguments (addons built before lack it). */
  attnWindow?: boolean;
  /** The dynamic-int8 linear kernel in use: "amx", "avx512-vnni", "avx512bw", "avx2" or "generic" (addons built before lack it). */
  int8?: string;
  /** "" when AMX-INT8 tiles can run in this process, else why not (no AMX-INT8, arch_prctl refused, …). */
  int8AmxUnavailable?: string;
  /** qlinear takes an activation as its 15th argument (addons built before lack it). */
  qlinearAct?: boolean;
}

/**
 * The native kernels. All buffers are caller-owned and written in place; shapes are validated and misuse throws a
 * TypeError/RangeError naming the argument. q (B,H,Tq,D), k (B,Hkv,Tk,D), v (B,Hkv,Tk,Dv) are contiguous; query
 * head h uses kv head ⌊h/(H/Hkv)⌋. causal masks key j for query i iff j > i (top-left aligned).
 */
export interface NativeKernels {
  /** C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b], row-major; strides of A/B may be 0 to broadcast. */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
    beta: number, C: Float32Array, cOff: number, ldc: number,
    batch: number, strideA: number, strideB: number, strideC: number): void;
  /**
   * gemm, then C = act(C + bias[biasOff + col]) (bias may be null). With `bKeyId`/`bKeyVersion` (the id of the
   * storage B lives in, never reused for other data, and a version that changes whenever it may have been written)
   * B's packed form is kept in the packed-weight cache and reused while id, version, address and shape match.
   */
  gemmBiasAct(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
    beta: number, C: Float32Array, cOff: number, ldc: number,
    batch: number, strideA: number, strideB: number, strideC: number,
    bias: Float32Array | null, biasOff: number, act: NativeActivation, bKeyId?: number, bKeyVersion?: number): void;
  /**
   * Several linear layers of one input, one parallel region: each part [W, wOff, N, bias|null, biasOff, col,
   * keyId|null, keyVersion] writes C columns col … col + N − 1 of M rows (stride ldc) = act(x·Wᵀ + bias), as
   * gemmBiasAct(false, true, …) would. Absent from addons built before it.
   */
  linearGroup?(x: Float32Array, xOff: number, M: number, K: number, lda: number, C: Float32Array, cOff: number, ldc: number,
    act: NativeActivation, parts: Array<[Float32Array, number, number, Float32Array | null, number, number, number | null, number]>): void;
  /**
   * y = LayerNorm(x·Wᵀ + bias + r) (rows of N; gamma/beta may be null), every array contiguous at its offset; W's
   * packing cached under keyId/keyVersion like gemmBiasAct's. Absent from addons built before it.
   */
  linearAddNorm?(x: Float32Array, xOff: number, M: number, K: number, W: Float32Array, wOff: number, N: number,
    bias: Float32Array | null, biasOff: number, r: Float32Array, rOff: number, gamma: Float32Array | null, gOff: number,
    beta: Float32Array | null, bOff: number, eps: number, y: Float32Array, yOff: number, keyId?: number | null, keyVersion?: number): void;
  /**
   * Dynamic-int8 linear (src/backend/ref/qlinear.ts): y rows = per-row u8 quantized x rows · packed int8 w, int32
   * accumulation, (acc − zp·colSum)·(sx·wScale) + bias; acc (M·N), when given, receives the raw accumulators.
   * Absent from addons built before it.
   */
  qlinear?(x: Float32Array, xOff: number, M: number, K: number, lda: number, w: Int8Array, N: number, colSum: Int32Array,
    wScale: Float32Array, bias: Float32Array | null, y: Float32Array, yOff: number, ldy: number, acc: Int32Array | null,
    act?: "none" | "relu" | "gelu" | "gelu-tanh"): void;
  /** out (B,H,Tq,Dv); lse (B,H,Tq) natural-log log-sum-exp (−inf, with out = 0, for rows with no visible key). */
  attnForward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array | null,
    B: number, H: number, Hkv: number, Tq: number, Tk: number, D: number, Dv: number, scale: number,
    causal: boolean, keyPad: Uint8Array | null, attnMask: Float32Array | null, maskB: number, maskH: number,
    dropoutP: number, seed: number, layout?: NativeAttnLayout, alibiSlopes?: Float32Array | null, alibiOffset?: number,
    windowLo?: number | null, windowHi?: number | null): void;
  /** Writes dq (B,H,Tq,D), dk (B,Hkv,Tk,D), dv (B,Hkv,Tk,Dv) from the forward's out and lse. */
  attnBackward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, dout: Float32Array,
    lse: Float32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array,
    B: number, H: number, Hkv: number, Tq: number, Tk: number, D: number, Dv: number, scale: number,
    causal: boolean, keyPad: Uint8Array | null, attnMask: Float32Array | null, maskB: number, maskH: number,
    dropoutP: number, seed: number, layout?: NativeAttnLayout, alibiSlopes?: Float32Array | null, alibiOffset?: number,
    windowLo?: number | null, windowHi?: number | null): void;
  /** Pre-dropout weights of rows [rowStart, rowStart+rowCount): mode 0/"full" → (B,H,rowCount,Tk), 1/"mean" → (B,rowCount,Tk). */
  attnWeights(q: Float32Array, k: Float32Array, lse: Float32Array, outW: Float32Array,
    B: number, H: number, Hkv: number, Tq: number, Tk: number, D: number, scale: number,
    causal: boolean, keyPad: Uint8Array | null, attnMask: Float32Array | null, maskB: number, maskH: number,
    mode: 0 | 1 | "full" | "mean", rowStart: number, rowCount: number, layout?: Pick<NativeAttnLayout, "q" | "k">,
    alibiSlopes?: Float32Array | null, alibiOffset?: number, windowLo?: number | null, windowHi?: number | null): void;
  /** y = (x−mean)·rstd·w + b per row of D; w, b, mean, rstd may be null; y may be x. */
  layerNormForward(x: Float32Array, w: Float32Array | null, b: Float32Array | null, y: Float32Array,
    mean: Float32Array | null, rstd: Float32Array | null, rows: number, D: number, eps: number): void;
  /** Writes dx; accumulates dw += Σ dy·x̂ and db += Σ dy when given (the caller zeroes them). */
  layerNormBackward(dy: Float32Array, x: Float32Array, w: Float32Array | null, mean: Float32Array,
    rstd: Float32Array, dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, rows: number, D: number): void;
  /** Row softmax of (rows, n); a row of all −inf gives NaN (as PyTorch); y may be x. */
  softmaxLastDim(x: Float32Array, y: Float32Array, rows: number, n: number): void;
  /** dx = y ⊙ (dy − rowsum(y ⊙ dy)). */
  softmaxBackward(y: Float32Array, dy: Float32Array, dx: Float32Array, rows: number, n: number): void;
  /** y[yOff..+n) = op(x[xOff..+n)); y may be exactly x (in place). Transcendentals are accurate to a few ulp. */
  unary(op: NativeUnaryOp | number, x: Float32Array, xOff: number, y: Float32Array, yOff: number, n: number): void;
  /** out[outOff + i] = a op b for i < n, operands read by their modes over (n/R, R); out is a Uint8Array for comparisons. */
  binary(op: NativeBinaryOp | number, a: Float32Array, aOff: number, aMode: NativeBinaryMode, b: Float32Array, bOff: number,
    bMode: NativeBinaryMode, out: Float32Array | Uint8Array, outOff: number, n: number, R: number): void;
  /** out (outer, inner) = Σ over the middle axis of x (outer, n, inner), accumulated in float64; deterministic. */
  reduceSum(x: Float32Array, xOff: number, outer: number, n: number, inner: number, out: Float32Array, outOff: number): void;
  /**
   * Fused Adam/AdamW step over whole arrays (pass subarrays), PyTorch's update rule: p, m, v (and vmax with amsgrad,
   * else null) updated in place. stepSize = lr/(1−β1ᵗ), bc2sqrt = √(1−β2ᵗ).
   */
  adamUpdate(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, vmax: Float32Array | null,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, stepSize: number, bc2sqrt: number,
    decoupled: boolean, maximize: boolean): void;
  /** The attention dropout hash of src/backend/dropout-hash.ts (uint32). */
  dropoutHash(seed: number, b: number, h: number, i: number, j: number): number;
  /** Whether element (b,h,i,j) is kept by attention dropout with probability p. */
  dropoutKeep(seed: number, b: number, h: number, i: number, j: number, p: number): boolean;
  info(): NativeInfo;
  /** Resizes the thread pool (1..256). */
  setNumThreads(n: number): void;
  /** Switches the kernel variant; returns false (and changes nothing) when this CPU lacks it. */
  setIsa(isa: NativeIsa): boolean;
  /**
   * Chooses the AVX-512 table's int8 kernel ("auto" = AMX where the CPU and OS allow it, else VNNI, else BW; also
   * $ATTNFLOW_INT8); returns false (and changes nothing) when this CPU/OS cannot run it. Addons built before lack it.
   */
  setInt8?(kernel: "auto" | "amx" | "avx512-vnni" | "avx512bw"): boolean;
  /** Packed-weight cache counters: entries and bytes held, the byte cap, and hits / packings / admissions / evictions. */
  packCacheInfo(): NativePackCacheInfo;
  /** Cap on the cache's bytes (default 1/16 of physical memory within 256 MiB…2 GiB, or $ATTNFLOW_PACK_CACHE_MB); 0 disables it and frees everything. */
  setPackCacheLimit(bytes: number): void;
  packCacheClear(): void;
  /** Forget every packing of storage `id` (called when that storage is garbage-collected). */
  packCacheDrop(id: number): void;
}

export interface NativeLoad {
  kernels: NativeKernels | null;
  /** Why kernels is null. */
  reason: string | null;
  /** The .node file that was loaded or tried. */
  path: string | null;
}

const ADDON = join("native", "build", "Release", "attnflow_native.node");
const REQUIRED: readonly (keyof NativeKernels)[] = [
  "gemm", "gemmBiasAct", "attnForward", "attnBackward", "attnWeights", "layerNormForward", "layerNormBackward",
  "softmaxLastDim", "softmaxBackward", "unary", "binary", "reduceSum", "adamUpdate", "dropoutHash", "dropoutKeep", "info",
  "setNumThreads", "setIsa", "packCacheInfo", "setPackCacheLimit", "packCacheClear", "packCacheDrop",
];

function findAbove(start: string): string | null {
  let dir = resolve(start);
  for (let depth = 0; depth < 8; depth++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return null;
}

function locate(): string | null {
  const env = process.env.ATTNFLOW_NATIVE_PATH;
  if (env) return resolve(env);
  let here: string | null = null;
  try {
    here = dirname(fileURLToPath(import.meta.url));
  } catch {
    here = null;
  }
  return (here && findAbove(here)) || findAbove(process.cwd());
}

let cached: NativeLoad | null = null;

/** Loads the addon once (later calls return the same result). */
export function loadNativeKernels(): NativeLoad {
  if (cached) return cached;
  cached = tryLoad();
  return cached;
}

/** The native kernels, or null when unavailable (see loadNativeKernels().reason). */
export function nativeKernels(): NativeKernels | null {
  return loadNativeKernels().kernels;
}

function tryLoad(): NativeLoad {
  if (process.env.ATTNFLOW_NATIVE === "0") return { kernels: null, reason: "disabled by ATTNFLOW_NATIVE=0", path: null };
  const path = locate();
  if (!path) {
    return { kernels: null, reason: `${ADDON} not found (build it with: node scripts/build-native.mjs)`, path: null };
  }
  if (!existsSync(path)) return { kernels: null, reason: `${path} does not exist`, path };
  try {
    const require = createRequire(import.meta.url);
    const mod = require(path) as Partial<NativeKernels>;
    const missing = REQUIRED.filter((name) => typeof mod[name] !== "function");
    if (missing.length > 0) {
      return { kernels: null, reason: `stale native build at ${path} (missing ${missing.join(", ")}); rebuild it`, path };
    }
    return { kernels: mod as NativeKernels, reason: null, path };
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    return { kernels: null, reason: `could not load ${path}: ${msg}`, path };
  }
}
