// The kernel contract every backend implements (fully: the reference backend; partially: fast backends, which fall
// back to the reference for anything they leave out). Buffers are CPU typed arrays owned by the tensor storage;
// kernels never allocate their outputs and never keep references to their arguments.

/** A strided read of a buffer: element at multi-index i is data[offset + Σ i_k·strides[k]]. */
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
}

export type KernelName = keyof Kernels;
