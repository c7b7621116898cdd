// The kernel contract every backend implements (fully: the reference backend; partially: fast backends, which fall
// back to the reference for anything they leave out). Buffers are CPU typed arrays owned by the tensor storage;
// kernels never allocate their outputs and never keep references to their arguments.

/** A strided read of a buffer: element at multi-index i is data[offset + Σ i_k·strides[k]]. */
import type { QuantizedWeights } from "./ref/qlinear.js";

export interface StridedView<A = Float32Array> {
  data: A;
  offset: number;
  strides: readonly number[];
}

export type UnaryOp =
  | "neg" | "exp" | "log" | "sqrt" | "rsqrt" | "abs" | "sin" | "cos" | "tanh" | "sigmoid" | "relu"
  | "erf" | "reciprocal" | "square" | "sign" | "floor" | "ceil" | "round" | "gelu" | "geluTanh" | "log1p" | "expm1"
  | "not" | "geluGrad" | "geluTanhGrad";
export type BinaryOp = "add" | "sub" | "mul" | "div" | "pow" | "maximum" | "minimum"
  | "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "and" | "or";
export type ReduceOp = "sum" | "max" | "min" | "prod" | "argmax" | "argmin";

export interface AttnArgs {
  B: number; H: number; Hkv: number; Tq: number; Tk: number; D: number; Dv: number;
  scale: number;
  causal: boolean;                    // key j masked for query i iff j > i (top-left aligned, like PyTorch)
  keyPad: Uint8Array | null;          // (B, Tk): 1 = padded key, ignored
  attnMask: Float32Array | null;      // additive, (maskB, maskH, Tq, Tk) with maskB ∈ {1,B}, maskH ∈ {1,H}
  maskB: number; maskH: number;
  dropoutP: number; seed: number;
  /**
   * ALiBi (Press et al. 2022), computed in the kernel instead of stored as a (Tq, Tk) mask: query i of head h adds
   * −slopes[h]·|i + offset − j| to its score for key j (offset = the query's position minus its row index, e.g. the
   * cached length). Only kernels that declare `attnAlibi` read it; ops/attention.ts folds it into attnMask otherwise.
   */
  alibi?: { slopes: Float32Array; offset: number } | null;
  /**
   * Sliding-window (banded) attention, computed in the kernel instead of stored as a mask: key j is visible from query
   * i only if i + lo ≤ j ≤ i + hi (on top of causal, padding and attnMask). Kernels skip the key (forward) and query
   * (backward) blocks outside the band. Integers with −Tq ≤ lo and hi ≤ Tk. Only kernels that declare `attnWindow`
   * read it; ops/attention.ts folds it into attnMask otherwise.
   */
  window?: { lo: number; hi: number } | null;
}

/** Activation applied in a fused GEMM epilogue (exact erf GELU, or its tanh approximation). */
/** Identity of a kernel operand's storage for backend caches: `id` is never reused; `version` changes on every possible write. */
export interface OperandKey { readonly id: number; readonly version: number }

export type GemmActivation = "none" | "relu" | "gelu" | "geluTanh";

/** One weight of a linearGroup call: w (N, K) rows at wOff, optional bias, output columns col … col + N − 1. */
export interface LinearPart {
  w: Float32Array; wOff: number; N: number;
  bias: Float32Array | null; biasOff: number;
  col: number;
  /** The storage w lives in (see gemmBiasAct's bKey), or null. */
  key: OperandKey | null;
}

/**
 * Where one attention tensor lives in its buffer: element (b, h, t, d) is data[offset + b·strideB + h·strideH +
 * t·strideT + d] (the feature axis contiguous). Lets q/k/v be read straight out of a token-major projection
 * (B, T, 3·H·D) or (T, B, 3·H·D), and out/dq/dk/dv be written token-major, with no transposes or copies.
 */
export type AttnTensorLayout = readonly [offset: number, strideB: number, strideH: number, strideT: number];
/** Layouts of the attention tensors; every tensor of a call must be given. */
export interface AttnLayout {
  q: AttnTensorLayout; k: AttnTensorLayout; v: AttnTensorLayout; out: AttnTensorLayout;
  /** Backward only. */
  dout?: AttnTensorLayout; dq?: AttnTensorLayout; dk?: AttnTensorLayout; dv?: AttnTensorLayout;
}

/** Hyper-parameters of one fused Adam/AdamW step (PyTorch's update rule, see optim/optimizers.ts). */
export interface AdamStep {
  lr: number; beta1: number; beta2: number; eps: number; weightDecay: number;
  /** lr / (1 − β1ᵗ) */
  stepSize: number;
  /** √(1 − β2ᵗ) */
  bc2sqrt: number;
  decoupled: boolean; maximize: boolean;
}

export interface Kernels {
  /** out (contiguous, shape) = op(x). */
  unary(op: UnaryOp, x: StridedView<Float32Array | Int32Array | Uint8Array>, shape: readonly number[], out: Float32Array | Uint8Array): void;
  /** out (contiguous, shape) = a op b; a and b are already broadcast to `shape` through their strides. */
  binary(op: BinaryOp, a: StridedView<Float32Array | Int32Array | Uint8Array>, b: StridedView<Float32Array | Int32Array | Uint8Array>,
    shape: readonly number[], out: Float32Array | Int32Array | Uint8Array): void;
  /** out = cond ? a : b, all broadcast to `shape`. */
  where(cond: StridedView<Uint8Array>, a: StridedView, b: StridedView, shape: readonly number[], out: Float32Array): void;
  /** Materialise a strided view into contiguous `out`. */
  copy(x: StridedView<Float32Array | Int32Array | Uint8Array>, shape: readonly number[], out: Float32Array | Int32Array | Uint8Array): void;
  /** Reduce the middle axis of a contiguous (outer, n, inner) array into (outer, inner). */
  reduce(op: ReduceOp, x: Float32Array | Int32Array | Uint8Array, outer: number, n: number, inner: number, out: Float32Array | Int32Array): void;
  /** C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b], row-major, op = transpose when the flag is set. */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
    beta: number, C: Float32Array, cOff: number, ldc: number,
    batch: number, strideA: number, strideB: number, strideC: number): void;
  /** Row-wise softmax over the last axis of a contiguous (rows, n) array. */
  softmax(x: Float32Array, y: Float32Array, rows: number, n: number): void;
  /** dx = y ⊙ (dy − rowsum(dy ⊙ y)). */
  softmaxBackward(y: Float32Array, dy: Float32Array, dx: Float32Array, rows: number, n: number): void;
  logSoftmax(x: Float32Array, y: Float32Array, rows: number, n: number): void;
  /** y = (x − mean)·rstd·w + b over rows of length D; saves mean and rstd (rows). w/b may be null. */
  layerNormForward(x: Float32Array, w: Float32Array | null, b: Float32Array | null, y: Float32Array,
    mean: Float32Array, rstd: Float32Array, rows: number, D: number, eps: number): void;
  /** dx written; dw, db accumulated (+=) when not null. */
  layerNormBackward(dy: Float32Array, x: Float32Array, w: Float32Array | null, mean: Float32Array, rstd: Float32Array,
    dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, rows: number, D: number): void;
  /** out (n, cols) = table[idx[i]] rows; idx values are checked by the caller. */
  gatherRows(table: Float32Array, cols: number, idx: Int32Array, out: Float32Array): void;
  /** table[idx[i]] += src[i] (rows of `cols`), skipping idx == skip. */
  scatterAddRows(src: Float32Array, cols: number, idx: Int32Array, table: Float32Array, skip: number): void;
  /** Fused attention forward: out (B,H,Tq,Dv), lse (B,H,Tq) natural-log log-sum-exp of the masked, scaled scores. */
  attnForward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, a: AttnArgs): void;
  /** Fused attention backward from saved lse; writes dq, dk, dv. */
  attnBackward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, dout: Float32Array, lse: Float32Array,
    dq: Float32Array, dk: Float32Array, dv: Float32Array, a: AttnArgs): void;
  /** Recompute attention weights from the saved lse: mode "full" → (B,H,rows,Tk); "mean" → head mean (B,rows,Tk). */
  attnWeights(q: Float32Array, k: Float32Array, lse: Float32Array, out: Float32Array, a: AttnArgs,
    mode: "full" | "mean", rowStart: number, rowCount: number): void;

  // ---- optional kernels: fast backends provide them; callers fall back to compositions of the kernels above ----
  /**
   * Set by a backend whose attention kernels (every attn* kernel it provides) read AttnArgs.alibi. Without it the
   * bias is folded into attnMask for that backend (the reference kernels read it too: see ops/attention.ts).
   * Not a kernel: a capability flag.
   */
  attnAlibi?: boolean;
  /** Set by a backend whose attention kernels read AttnArgs.window (a capability flag, like attnAlibi). */
  attnWindow?: boolean;
  /**
   * gemm (same arguments and beta semantics), then C = act(C + bias[biasOff + col]) (bias may be null). `bKey`, when
   * given, names the storage B lives in (a Storage: unique id, version that changes on every possible write), so
   * a backend may keep B in its packed form between calls (a weight used again unchanged) — never when the version
   * or the memory changed.
   */
  gemmBiasAct?(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
    beta: number, C: Float32Array, cOff: number, ldc: number,
    batch: number, strideA: number, strideB: number, strideC: number,
    bias: Float32Array | null, biasOff: number, act: GemmActivation, bKey?: OperandKey | null): void;
  /**
   * Several linear layers of one input in one call (e.g. the Q, K and V projections): for each part and r < M, j < N,
   * C[cOff + r·ldc + col + j] = act(Σ_k x[xOff + r·lda + k]·w[wOff + j·K + k] + bias[biasOff + j]). The parts' column
   * ranges must not overlap. Each part is what gemmBiasAct(false, true, …, key) computes for it, bit for bit; the
   * backend may run the parts together (one parallel region, one wait).
   */
  linearGroup?(x: Float32Array, xOff: number, M: number, K: number, lda: number, C: Float32Array, cOff: number, ldc: number,
    act: GemmActivation, parts: readonly LinearPart[]): void;
  /**
   * y (M × N) = LayerNorm(x·Wᵀ + bias + r) over each row, with gamma/beta (each may be null): x (M × K), W (N × K), r and
   * y (M × N), all contiguous at their offsets — a post-norm residual block in one call. Exactly gemmBiasAct(false, true,
   * …, beta 1, key) into a copy of r, then layerNormForward in place.
   */
  linearAddLayerNorm?(x: Float32Array, xOff: number, M: number, K: number, w: Float32Array, wOff: number, N: number,
    bias: Float32Array | null, biasOff: number, r: Float32Array, rOff: number, gamma: Float32Array | null, gOff: number,
    beta: Float32Array | null, bOff: number, eps: number, y: Float32Array, yOff: number, wKey: OperandKey | null): void;
  /** out[i] = g[gOff+i]·act'(z[zOff+i]) for i < n (relu: z may be the activation's output instead, same sign). */
  activationBackward?(act: Exclude<GemmActivation, "none">, z: Float32Array, zOff: number, g: Float32Array, gOff: number,
    out: Float32Array, n: number): void;
  /** attnForward with every tensor placed by `layout` (lse stays contiguous (B,H,Tq)). */
  attnForwardLayout?(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, a: AttnArgs,
    layout: AttnLayout): void;
  /** attnBackward with every tensor placed by `layout` (dq/dk/dv may be column blocks of one buffer). */
  attnBackwardLayout?(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, dout: Float32Array,
    lse: Float32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array, a: AttnArgs, layout: Required<AttnLayout>): void;
  /** attnWeights reading q and k through `layout` (only q and k are used). */
  attnWeightsLayout?(q: Float32Array, k: Float32Array, lse: Float32Array, out: Float32Array, a: AttnArgs,
    mode: "full" | "mean", rowStart: number, rowCount: number, layout: Pick<AttnLayout, "q" | "k">): void;
  /**
   * Dynamic-int8 linear (backend/ref/qlinear.ts defines the arithmetic): y (M rows at yOff, stride ldy) = rows of x
   * (M × K at xOff, stride lda) quantized per row to u8, times the packed int8 weights, int32 accumulation, float
   * epilogue with bias. `acc` (M·N int32), when given, receives the raw accumulators (tests). The reference always
   * has it; fast backends must match its accumulators exactly.
   */
  qlinear?(x: Float32Array, xOff: number, M: number, lda: number, w: QuantizedWeights, bias: Float32Array | null,
    y: Float32Array, yOff: number, ldy: number, acc?: Int32Array | null, act?: QlinearAct): void;
  /** qlinear applies `act` in its epilogue (the same unary kernel the float path runs); others ignore it. */
  qlinearAct?: boolean;
  /** One Adam/AdamW step in place over whole arrays (pass subarrays); vmax non-null with amsgrad. */
  adamUpdate?(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, vmax: Float32Array | null, h: AdamStep): void;
}

/** Activations a qlinear epilogue can apply (where `qlinearAct`): ReLU, erf GELU, tanh GELU. */
export type QlinearAct = "none" | "relu" | "gelu" | "gelu-tanh";

export type KernelName = keyof Kernels;
