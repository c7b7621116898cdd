// Registers the Node native backend (C++ kernels: AVX-512/AVX2 GEMM, fused FlashAttention-style attention, row
// and elementwise kernels) when its addon is built. Kernels it does not provide fall back to the reference backend;
// the elementwise ones take the native path only for large float32 arrays laid out the way the C++ loops read them
// (contiguous, or a scalar / trailing row / per-row column broadcast), and hand everything else to the reference.
import { getBackend, registerBackend } from "../backend/registry.js";
import type { AttnArgs, AttnLayout, BinaryOp, Kernels, OperandKey, ReduceOp, StridedView, UnaryOp } from "../backend/kernels.js";
import { refKernels } from "../backend/ref/index.js";
import { loadNativeKernels, type NativeAttnLayout, type NativeKernels } from "./native-addon.js";

let done = false;

/**
 * Below this many elements the JavaScript loops win: an N-API call with its argument checks costs about as much as a
 * few thousand simple float operations in JavaScript.
 */
export const NATIVE_ELEMENTWISE_MIN = 4096;

const UNARY_CODES: Partial<Record<UnaryOp, number>> = {
  neg: 0, abs: 1, relu: 2, square: 3, sqrt: 4, rsqrt: 5, reciprocal: 6, exp: 7, tanh: 8, sigmoid: 9, erf: 10, gelu: 11,
  geluGrad: 12, geluTanh: 13, geluTanhGrad: 14,
};
const BINARY_CODES: Partial<Record<BinaryOp, number>> = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, eq: 6, ne: 7, lt: 8, le: 9, gt: 10, ge: 11,
};
const MODE_FULL = 0, MODE_SCALAR = 1, MODE_ROW = 2, MODE_COL = 3;
type Mode = typeof MODE_FULL | typeof MODE_SCALAR | typeof MODE_ROW | typeof MODE_COL;

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i];
  return n;
}

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

/**
 * How the native binary loop can read a view broadcast to `shape`: [mode, R] with R the row length for row/col
 * modes (0 for full/scalar), or null when it cannot (then the reference kernel runs).
 */
function operandMode(shape: readonly number[], strides: readonly number[]): [Mode, number] | null {
  const nd = shape.length;
  if (denseRange(shape, strides, 0, nd)) return [MODE_FULL, 0];
  if (zeroRange(shape, strides, 0, nd)) return [MODE_SCALAR, 0];
  for (let s = 1; s < nd; s++) {
    // row: broadcast over dims < s, contiguous over dims ≥ s; col: contiguous over dims < s, broadcast over dims ≥ s
    if (zeroRange(shape, strides, 0, s) && denseRange(shape, strides, s, nd)) return [MODE_ROW, numelOf(shape.slice(s))];
    if (denseRange(shape, strides, 0, s) && zeroRange(shape, strides, s, nd)) return [MODE_COL, numelOf(shape.slice(s))];
  }
  return null;
}

function makeElementwise(n: NativeKernels): Pick<Kernels, "unary" | "binary" | "reduce"> {
  return {
    unary(op: UnaryOp, x: StridedView<Float32Array | Int32Array | Uint8Array>, shape: readonly number[], out: Float32Array | Uint8Array): void {
      const code = UNARY_CODES[op];
      const len = numelOf(shape);
      if (code !== undefined && len >= NATIVE_ELEMENTWISE_MIN && x.data instanceof Float32Array && out instanceof Float32Array &&
        denseRange(shape, x.strides, 0, shape.length)) {
        n.unary(code, x.data, x.offset, out, 0, len);
        return;
      }
      refKernels.unary(op, x, shape, out);
    },
    binary(op: BinaryOp, a: StridedView<Float32Array | Int32Array | Uint8Array>, b: StridedView<Float32Array | Int32Array | Uint8Array>,
      shape: readonly number[], out: Float32Array | Int32Array | Uint8Array): void {
      const code = BINARY_CODES[op];
      const len = numelOf(shape);
      if (code !== undefined && len >= NATIVE_ELEMENTWISE_MIN && a.data instanceof Float32Array && b.data instanceof Float32Array &&
        (code < 6 ? out instanceof Float32Array : out instanceof Uint8Array)) {
        const ma = operandMode(shape, a.strides), mb = ma && operandMode(shape, b.strides);
        if (ma && mb && (ma[1] === 0 || mb[1] === 0 || ma[1] === mb[1])) {
          n.binary(code, a.data, a.offset, ma[0], b.data, b.offset, mb[0], out as Float32Array | Uint8Array, 0, len,
            Math.max(ma[1], mb[1], 1));
          return;
        }
      }
      refKernels.binary(op, a, b, shape, out);
    },
    reduce(op: ReduceOp, x: Float32Array | Int32Array | Uint8Array, outer: number, len: number, inner: number, out: Float32Array | Int32Array): void {
      if (op === "sum" && x instanceof Float32Array && out instanceof Float32Array && outer * len * inner >= NATIVE_ELEMENTWISE_MIN) {
        n.reduceSum(x, 0, outer, len, inner, out, 0);
        return;
      }
      refKernels.reduce(op, x, outer, len, inner, out);
    },
  };
}

function nativeLayout(l: Partial<AttnLayout>): NativeAttnLayout {
  // the addon takes the same [offset, strideB, strideH, strideT] tuples
  return l as NativeAttnLayout;
}

/** Whether `l` places a (B, heads, T, feat) tensor exactly where the addon's default (contiguous, whole array) would. */
function isDefaultPlacement(l: NativeAttnLayout[keyof NativeAttnLayout], data: Float32Array, B: number, heads: number, T: number, feat: number): boolean {
  return !!l && l[0] === 0 && data.length === B * heads * T * feat && (B === 1 || l[1] === heads * T * feat) &&
    (heads === 1 || l[2] === T * feat) && (T === 1 || l[3] === feat);
}

/**
 * The forward's layout without the entries that say what the default already does (contiguous tensors, e.g. sdpa on
 * fresh (B, H, T, D) tensors): each entry costs the addon a dozen N-API property reads, a few % of a small call.
 */
function fwdLayout(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, a: AttnArgs, l: NativeAttnLayout): NativeAttnLayout | undefined {
  const keep: NativeAttnLayout = {};
  let any = false;
  if (l.q && !isDefaultPlacement(l.q, q, a.B, a.H, a.Tq, a.D)) { keep.q = l.q; any = true; }
  if (l.k && !isDefaultPlacement(l.k, k, a.B, a.Hkv, a.Tk, a.D)) { keep.k = l.k; any = true; }
  if (l.v && !isDefaultPlacement(l.v, v, a.B, a.Hkv, a.Tk, a.Dv)) { keep.v = l.v; any = true; }
  if (l.out && !isDefaultPlacement(l.out, out, a.B, a.H, a.Tq, a.Dv)) { keep.out = l.out; any = true; }
  return any ? keep : undefined;
}

function attnKernels(n: NativeKernels): Partial<Kernels> {
  const fwd = (q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, a: AttnArgs, layout?: NativeAttnLayout) =>
    n.attnForward(q, k, v, out, lse, a.B, a.H, a.Hkv, a.Tq, a.Tk, a.D, a.Dv, a.scale, a.causal, a.keyPad, a.attnMask, a.maskB, a.maskH,
      a.dropoutP, a.seed, layout && fwdLayout(q, k, v, out, a, layout), a.alibi?.slopes ?? null, a.alibi?.offset ?? 0,
      a.window?.lo ?? null, a.window?.hi ?? null);
  const bwd = (q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, dout: Float32Array, lse: Float32Array,
    dq: Float32Array, dk: Float32Array, dv: Float32Array, a: AttnArgs, layout?: NativeAttnLayout) =>
    n.attnBackward(q, k, v, out, dout, lse, dq, dk, dv, a.B, a.H, a.Hkv, a.Tq, a.Tk, a.D, a.Dv, a.scale, a.causal, a.keyPad,
      a.attnMask, a.maskB, a.maskH, a.dropoutP, a.seed, layout, a.alibi?.slopes ?? null, a.alibi?.offset ?? 0,
      a.window?.lo ?? null, a.window?.hi ?? null);
  const wts = (q: Float32Array, k: Float32Array, lse: Float32Array, out: Float32Array, a: AttnArgs, mode: "full" | "mean",
    rowStart: number, rowCount: number, layout?: NativeAttnLayout) =>
    n.attnWeights(q, k, lse, out, a.B, a.H, a.Hkv, a.Tq, a.Tk, a.D, a.scale, a.causal, a.keyPad, a.attnMask, a.maskB, a.maskH,
      mode, rowStart, rowCount, layout, a.alibi?.slopes ?? null, a.alibi?.offset ?? 0, a.window?.lo ?? null, a.window?.hi ?? null);
  return {
    attnForward: (q, k, v, out, lse, a) => fwd(q, k, v, out, lse, a),
    attnBackward: (q, k, v, out, dout, lse, dq, dk, dv, a) => bwd(q, k, v, out, dout, lse, dq, dk, dv, a),
    attnWeights: (q, k, lse, out, a, mode, rowStart, rowCount) => wts(q, k, lse, out, a, mode, rowStart, rowCount),
    attnForwardLayout: (q, k, v, out, lse, a, layout) => fwd(q, k, v, out, lse, a, nativeLayout(layout)),
    attnBackwardLayout: (q, k, v, out, dout, lse, dq, dk, dv, a, layout) => bwd(q, k, v, out, dout, lse, dq, dk, dv, a, nativeLayout(layout)),
    attnWeightsLayout: (q, k, lse, out, a, mode, rowStart, rowCount, layout) =>
      wts(q, k, lse, out, a, mode, rowStart, rowCount, nativeLayout(layout)),
  };
}

// Packed-weight cache (native/src/pack-cache.cc): the addon keeps GEMM B operands packed under their storage's id
// and version. When a keyed storage is garbage-collected its packings are dropped at once (the cache's size cap and
// LRU eviction bound it anyway; ids are never reused, so a late drop is only memory, never a wrong result).
const watched = new WeakSet<OperandKey>();
let dropPacks: FinalizationRegistry<number> | null = null;
function watchKey(n: NativeKernels, key: OperandKey): void {
  if (watched.has(key) || typeof FinalizationRegistry === "undefined") return;
  dropPacks ??= new FinalizationRegistry<number>((id) => n.packCacheDrop(id));
  dropPacks.register(key, key.id);
  watched.add(key);
}

const ACT_CODES = { none: 0, relu: 1, gelu: 2, geluTanh: 3 } as const;
const ACT_BWD_CODES = { relu: 12, gelu: 13, geluTanh: 14 } as const;

export function registerNativeBackend(): boolean {
  if (done) return true;
  const { kernels: n, reason } = loadNativeKernels();
  if (!n) {
    if (!process.env.ATTNFLOW_QUIET) process.stderr.write(`attnflow: native backend unavailable (${reason}); using the ${getBackend()} backend\n`);
    return false;
  }
  done = true;
  const kernels: Partial<Kernels> = {
    gemm: n.gemm,
    gemmBiasAct: (transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc, batch, sA, sB, sC, bias, biasOff, act, bKey) => {
      if (!bKey) {
        n.gemmBiasAct(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc, batch, sA, sB, sC, bias, biasOff,
          ACT_CODES[act]);
        return;
      }
      watchKey(n, bKey);
      n.gemmBiasAct(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc, batch, sA, sB, sC, bias, biasOff,
        ACT_CODES[act], bKey.id, bKey.version);
    },
    ...(n.linearGroup ? {
      linearGroup: (x, xOff, M, Kd, lda, C, cOff, ldc, act, parts) => {
        n.linearGroup!(x, xOff, M, Kd, lda, C, cOff, ldc, ACT_CODES[act], parts.map((p) => {
          if (p.key) watchKey(n, p.key);
          return [p.w, p.wOff, p.N, p.bias, p.biasOff, p.col, p.key ? p.key.id : null, p.key ? p.key.version : 0];
        }));
      },
    } satisfies Partial<Kernels> : {}),
    ...(n.linearAddNorm ? {
      linearAddLayerNorm: (x, xOff, M, Kd, w, wOff, N, bias, biasOff, r, rOff, gamma, gOff, beta, bOff, eps, y, yOff, wKey) => {
        if (wKey) watchKey(n, wKey);
        n.linearAddNorm!(x, xOff, M, Kd, w, wOff, N, bias, biasOff, r, rOff, gamma, gOff, beta, bOff, eps, y, yOff,
          wKey ? wKey.id : null, wKey ? wKey.version : 0);
      },
    } satisfies Partial<Kernels> : {}),
    softmax: n.softmaxLastDim,
    softmaxBackward: n.softmaxBackward,
    layerNormForward: n.layerNormForward,
    layerNormBackward: n.layerNormBackward,
    ...makeElementwise(n),
    ...attnKernels(n),
    activationBackward: (act, z, zOff, g, gOff, out, len) =>
      n.binary(ACT_BWD_CODES[act], g, gOff, MODE_FULL, z, zOff, MODE_FULL, out, 0, len, 1),
    adamUpdate: (p, g, m, v, vmax, h) => n.adamUpdate(p, g, m, v, vmax, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.stepSize,
      h.bc2sqrt, h.decoupled, h.maximize),
  };
  const info = n.info();
  if (info.attnAlibi) kernels.attnAlibi = true;
  if (info.attnWindow) kernels.attnWindow = true;
  if (n.qlinear) {
    const q = n.qlinear.bind(n);
    kernels.qlinear = info.qlinearAct
      ? (x, xOff, M, lda, w, bias, y, yOff, ldy, acc, act) => q(x, xOff, M, w.K, lda, w.packed, w.N, w.colSum, w.scale, bias, y, yOff, ldy, acc ?? null, act ?? "none")
      : (x, xOff, M, lda, w, bias, y, yOff, ldy, acc) => q(x, xOff, M, w.K, lda, w.packed, w.N, w.colSum, w.scale, bias, y, yOff, ldy, acc ?? null);
    if (info.qlinearAct) kernels.qlinearAct = true;
  }
  registerBackend({ name: "native", priority: 20, kernels, description: `C++ kernels (${info.isa}${info.int8 ? `, int8 ${info.int8}` : ""}, ${info.threads} threads)` });
  return true;
}
