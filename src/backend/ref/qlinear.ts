// Dynamic int8 linear, the reference (plain TypeScript, the oracle of the native and Wasm kernels): the integer
// arithmetic of PyTorch's quantize_dynamic for nn.Linear on x86 (fbgemm / onednn), with activations per row.
//
//   weights  W (N, K) float → Wq int8 per output channel n, symmetric (qint8, zero point 0, PyTorch's
//            per_channel_symmetric): s_n = max|W[n,:]| / 127.5, Wq = clamp(round(W / s_n), −128, 127)
//   input    each row r of x (M, K), at run time: lo = min(0, min x_r), hi = max(0, max x_r),
//            sx = (hi − lo) / 127, zp = round(−lo / sx) ∈ [0, 127], xq = clamp(round(x · (1/sx)) + zp, 0, 127)
//            — asymmetric unsigned, 7 bits (PyTorch's reduce_range=True on x86): the u8 × s8 instructions are
//            vpdpbusd (VNNI), vpmaddubsw (AVX2: adds two u8·s8 products into an int16 with saturation; with
//            xq ≤ 127 the pair is at most 2·127·128 = 32,512 < 32,767, so it never saturates) and Wasm's
//            relaxed i32x4.dot_i8x16_i7x16_add (deterministic only when the unsigned operand is < 128).
//   product  acc[r, n] = Σ_k xq[r,k] · Wq[n,k], in int32 (exact for K ≤ 131,072: |acc| ≤ K·127·128)
//   output   y[r, n] = (acc − zp_r · Σ_k Wq[n,k]) · (sx_r · s_n) + b_n, float32
// All float steps are float32 operations (Math.fround), and round() is round-half-to-even (C's nearbyint), so the
// native and Wasm kernels produce the very same xq, zp and acc; y may differ in the last bit where a compiler
// contracts the epilogue into an FMA.
//
// Packed weights (one layout for every kernel): Kp = K rounded up to 4, Np = N rounded up to 16; panels of 16 output
// channels, and in each panel, for each group of 4 k: 16 channels × 4 bytes (64 bytes: one zmm, two ymm, four
// v128 — the operand layout of vpdpbusd, vpmaddubsw+vpmaddwd and i32x4.dot_i8x16_i7x16_add). Padding is 0.

/** Largest K whose int32 accumulators cannot overflow (K · 127 · 128 < 2³¹). */
export const QLINEAR_MAX_K = 131072;
export const QPANEL = 16;

export const f32 = Math.fround;
/** Round half to even (C's nearbyint in the default rounding mode). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

export interface QuantizedWeights {
  N: number; K: number;
  /** Packed int8 weights (see the layout above), Np·Kp bytes. */
  packed: Int8Array;
  /** Σ_k Wq[n, k] per output channel (N). */
  colSum: Int32Array;
  /** s_n per output channel (N). */
  scale: Float32Array;
}

/** Per-output-channel symmetric int8 quantization of W (N, K) row-major: values and scales. */
export function quantizeWeightsPerChannel(w: Float32Array | ArrayLike<number>, N: number, K: number): { q: Int8Array; scale: Float32Array } {
  const q = new Int8Array(N * K), scale = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let amax = 0;
    for (let k = 0; k < K; k++) {
      const v = w[n * K + k];
      if (!Number.isFinite(v)) throw new Error(`quantizeWeightsPerChannel: weight [${n}, ${k}] is ${v}; only finite weights can be quantized`);
      amax = Math.max(amax, Math.abs(v));
    }
    // PyTorch's per_channel_symmetric observer: scale = amax / ((qmax − qmin) / 2), at least float32 eps
    const s = Math.max(f32(amax / 127.5), 1.1920928955078125e-7);
    scale[n] = s;
    const inv = f32(1 / s);
    for (let k = 0; k < K; k++) q[n * K + k] = Math.max(-128, Math.min(127, roundHalfEven(f32(w[n * K + k] * inv))));
  }
  return { q, scale };
}

/** Pack int8 weights Wq (N, K) row-major into the kernels' panel layout; with the column sums. */
export function packQuantizedWeights(q: Int8Array | Int32Array, N: number, K: number, scale: Float32Array): QuantizedWeights {
  if (q.length !== N * K) throw new Error(`packQuantizedWeights: weights have ${q.length} values, expected N·K = ${N}·${K}`);
  if (scale.length !== N) throw new Error(`packQuantizedWeights: ${scale.length} scales for ${N} output channels`);
  if (K > QLINEAR_MAX_K) throw new Error(`packQuantizedWeights: K = ${K} is above ${QLINEAR_MAX_K}, where int32 accumulators could overflow`);
  const Kp = Math.ceil(K / 4) * 4, Np = Math.ceil(N / QPANEL) * QPANEL;
  const packed = new Int8Array(Np * Kp), colSum = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    const p = Math.floor(n / QPANEL), j = n % QPANEL;
    let s = 0;
    for (let k = 0; k < K; k++) {
      const v = q[n * K + k];
      if (v < -128 || v > 127 || !Number.isInteger(v)) throw new Error(`packQuantizedWeights: weight [${n}, ${k}] = ${v} is not an int8`);
      s += v;
      packed[p * QPANEL * Kp + (k >> 2) * 64 + j * 4 + (k & 3)] = v;
    }
    colSum[n] = s;
  }
  return { N, K, packed, colSum, scale: Float32Array.from(scale) };
}

/** Quantize one row x[off .. off+K) to u8 ∈ [0, 127] (into out[outOff ..]); returns its scale and zero point. */
export function quantizeRowU8(x: Float32Array, off: number, K: number, out: Uint8Array, outOff: number): { scale: number; zp: number } {
  let lo = 0, hi = 0;
  for (let k = 0; k < K; k++) { const v = x[off + k]; if (v < lo) lo = v; if (v > hi) hi = v; if (v !== v) { lo = NaN; break; } }
  let scale = f32(f32(hi - lo) / 127);
  if (scale === 0) scale = 1;                                  // an all-zero row: every xq is 0
  if (!(scale < Infinity)) { out.fill(0, outOff, outOff + K); return { scale: NaN, zp: 0 }; } // NaN/Inf in the row
  const inv = f32(1 / scale);
  const zp = Math.max(0, Math.min(127, roundHalfEven(f32(-lo / scale))));
  for (let k = 0; k < K; k++) out[outOff + k] = Math.max(0, Math.min(127, roundHalfEven(f32(x[off + k] * inv)) + zp));
  return { scale, zp };
}

/**
 * y[yOff + r·ldy + n] = dynamic-int8 linear of rows x[xOff + r·lda ..] (M rows of K) with weights w (+ bias).
 * `acc`, when given, receives the raw int32 accumulators Σ_k xq·Wq (M, N) row-major (for the kernel tests).
 * A row holding NaN or ±Infinity gives a NaN output row.
 */
export function qlinear(x: Float32Array, xOff: number, M: number, lda: number, w: QuantizedWeights, bias: Float32Array | null,
  y: Float32Array, yOff: number, ldy: number, acc: Int32Array | null = null): void {
  const { N, K, packed, colSum, scale } = w;
  const Kp = Math.ceil(K / 4) * 4;
  const xq = new Uint8Array(K);
  for (let r = 0; r < M; r++) {
    const { scale: sx, zp } = quantizeRowU8(x, xOff + r * lda, K, xq, 0);
    for (let n = 0; n < N; n++) {
      const base = Math.floor(n / QPANEL) * QPANEL * Kp + (n % QPANEL) * 4;
      let a = 0;
      for (let k = 0; k < K; k++) a += xq[k] * packed[base + (k >> 2) * 64 + (k & 3)];
      if (acc) acc[r * N + n] = a;
      y[yOff + r * ldy + n] = f32(f32(f32(a - zp * colSum[n]) * f32(sx * scale[n])) + (bias ? bias[n] : 0));
    }
  }
}
