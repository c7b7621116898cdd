// Portable SIMD layer for one ISA translation unit, written with GCC vector extensions so the same kernel source
// compiles to AVX-512 (AF_VW = 16), AVX2 (8) or baseline SSE/NEON (4). Included inside an anonymous namespace of
// the ISA's own namespace, so every helper has internal linkage (no cross-ISA symbol clashes).
// Only C library math (math.h) and compiler builtins are used here: no inline/template code from the C++ std lib.

constexpr int VW = AF_VW;
typedef float vf __attribute__((vector_size(AF_VW * 4)));
typedef int32_t vi __attribute__((vector_size(AF_VW * 4)));
typedef uint32_t vu __attribute__((vector_size(AF_VW * 4)));
typedef float vf_u __attribute__((vector_size(AF_VW * 4), aligned(4), may_alias));

#define AF_INLINE inline __attribute__((always_inline))

AF_INLINE vf load(const float* p) { return *reinterpret_cast<const vf_u*>(p); }
AF_INLINE void store(float* p, vf v) { *reinterpret_cast<vf_u*>(p) = v; }
// Broadcast by a vector literal with every lane = x: GCC emits a single vbroadcastss (vf{} + x would add 0.0
// first, since −0 + 0 ≠ −0 forbids folding it away).
#if AF_VW == 16
#define AF_LANES(x) {x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}
#elif AF_VW == 8
#define AF_LANES(x) {x, x, x, x, x, x, x, x}
#else
#define AF_LANES(x) {x, x, x, x}
#endif
AF_INLINE vf splat(float x) { return (vf)AF_LANES(x); }
AF_INLINE vu splatu(uint32_t x) { return (vu)AF_LANES(x); }

// Lane-wise max/min with x86 maxps/minps semantics (GCC emits exactly those instructions for this pattern):
// when either lane is NaN the second operand is returned, so max(c, x) propagates a NaN x.
AF_INLINE vf vmax(vf a, vf b) { return a > b ? a : b; }
AF_INLINE vf vmin(vf a, vf b) { return a < b ? a : b; }
AF_INLINE vf select(vi m, vf a, vf b) { return m ? a : b; }  // m lanes are 0 or -1

#if defined(AF_NEON)
AF_INLINE float hsum(vf v) { return vaddvq_f32((float32x4_t)v); }  // one faddp tree instead of 3 dependent adds
#else
AF_INLINE float hsum(vf v) {
  float s = 0.f;
  for (int i = 0; i < VW; i++) s += v[i];
  return s;
}
#endif
AF_INLINE float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < VW; i++) m = v[i] > m ? v[i] : m;
  return m;
}

// 2^x for a vector, |relative error| ≤ 3e-7. Split x = k + f with k = round(x), f ∈ [-0.5, 0.5]; 2^f by a
// degree-5 minimax polynomial. x below −127 (including −inf) gives exactly 0 and NaN stays NaN. With AVX-512,
// vscalefps applies 2^k (overflowing to +inf past 128); elsewhere 2^k is built from exponent bits (x clamped to
// ≤ 127) and multiplied in, so a NaN polynomial can never turn into a finite number.
AF_INLINE vf exp2Poly(vf f) {
  vf p = splat(1.3276466800e-03f);
  p = p * f + 9.6755412930e-03f;
  p = p * f + 5.5507132896e-02f;
  p = p * f + 2.4022119725e-01f;
  p = p * f + 6.9314696705e-01f;
  return p * f + 1.0000000717e+00f;
}
#if AF_VW == 16 && defined(__AVX512F__)
AF_INLINE vf vexp2(vf x) {
  vf xc = vmax(splat(-160.0f), x);  // 2^-160 rounds to 0; keeps NaN
  vf k = _mm512_roundscale_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm512_scalef_ps(exp2Poly(xc - k), k);
}
#elif defined(AF_NEON)
// NEON: frintn rounds to nearest-even (as the magic-number trick does) and fcvtzs gives k exactly; vmaxq/vminq keep
// NaN (and then k = 0, so NaN·1 stays NaN), −inf clamps to −127 and 2^−127 is built as +0, as below.
AF_INLINE vf vexp2(vf x) {
  float32x4_t xc = vminq_f32(vdupq_n_f32(127.0f), vmaxq_f32(vdupq_n_f32(-127.0f), (float32x4_t)x));
  float32x4_t k = vrndnq_f32(xc);
  int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127)), 23);
  return exp2Poly((vf)vsubq_f32(xc, k)) * (vf)vreinterpretq_f32_s32(e);
}
#else
AF_INLINE vf vexp2(vf x) {
  const vf magic = splat(12582912.0f);  // 1.5·2^23: adding it rounds to an integer in the low mantissa bits
  vf xc = vmin(splat(127.0f), vmax(splat(-127.0f), x));
  vf t = xc + magic;
  vf f = xc - (t - magic);
  vi k = (vi)t - (vi)magic;
  vf scale = (vf)((k + 127) << 23);  // k = −127 gives +0
  return exp2Poly(f) * scale;
}
#endif
AF_INLINE vf vexp(vf x) { return vexp2(x * 1.4426950408889634f); }

// tanh(u) = 1 − 2/(e^{2u}+1): saturates cleanly to ±1 at both ends.
AF_INLINE vf vtanh(vf u) { return 1.0f - 2.0f / (vexp(u + u) + 1.0f); }

// erf(x) by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7), odd extension.
AF_INLINE vf verf(vf x) {
  vf ax = vmax(x, -x);
  vf t = 1.0f / (1.0f + 0.3275911f * ax);
  vf y = splat(1.061405429f);
  y = y * t - 1.453152027f;
  y = y * t + 1.421413741f;
  y = y * t - 0.284496736f;
  y = y * t + 0.254829592f;
  y = y * t;
  vf r = 1.0f - y * vexp(-ax * ax);
  return select(x < 0.0f, -r, r);
}

AF_INLINE vf applyAct(vf x, int act) {
  switch (act) {
    case ACT_RELU: return vmax(x, splat(0.0f));
    case ACT_GELU_ERF: return 0.5f * x * (1.0f + verf(x * 0.7071067811865476f));
    case ACT_GELU_TANH: {
      vf u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
      return 0.5f * x * (1.0f + vtanh(u));
    }
    default: return x;
  }
}

// The dropout hash of src/backend/dropout-hash.ts (lowbias32 mixing), scalar and vector forms.
AF_INLINE uint32_t mix32(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352du;
  x ^= x >> 15; x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
AF_INLINE vu mix32v(vu x) {
  x ^= x >> 16; x *= 0x7feb352du;
  x ^= x >> 15; x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
// Row key = hash state after mixing seed, b, h, i; the element hash is mix32(rowKey ^ j).
AF_INLINE uint32_t dropRowKey(uint32_t seed, uint32_t b, uint32_t h, uint32_t i) {
  uint32_t x = mix32(seed ^ 0x9e3779b9u);
  x = mix32(x ^ b);
  x = mix32(x ^ h);
  return mix32(x ^ i);
}
// keep ⇔ (hash >> 8) / 2^24 ≥ p ⇔ (hash >> 8) ≥ ceil(p·2^24).
AF_INLINE uint32_t dropThreshold(double p) {
  double t = __builtin_ceil(p * 16777216.0);
  return t <= 0 ? 0u : (uint32_t)t;
}

AF_INLINE int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
AF_INLINE int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
AF_INLINE int64_t roundUp(int64_t a, int64_t m) { return (a + m - 1) / m * m; }
AF_INLINE int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

const float kLog2e = 1.4426950408889634f;
const float kLn2 = 0.6931471805599453f;

// dst[c·ldd + r] = src[r·lds + c]·scale for r < rows, c < cols (a scaled transpose, used to pack tiles).
#if AF_VW == 16 && defined(__AVX512F__)
// 16×16 tile in registers: unpack 32-bit pairs, then 64-bit pairs, then 128-bit lanes twice.
AF_INLINE void transpose16(const float* src, int64_t lds, float* dst, int64_t ldd, float scale) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
  for (int j = 0; j < 16; j++) _mm512_storeu_ps(dst + j * ldd, _mm512_mul_ps(r[j], _mm512_set1_ps(scale)));
}
#endif

#if AF_VW == 8 && defined(__AVX2__)
// AVX2 8×8 tile in registers (unpack 32-bit, shuffle 64-bit, permute 128-bit lanes): packing a transposed B (the
// Bᵀ operand of attention-shaped and Linear-weight GEMMs) without 64 scalar moves per tile.
#define AF_TRANSPOSE_TILE 8
AF_INLINE void transposeTile(const float* src, int64_t lds, float* dst, int64_t ldd, float scale) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  const __m256 sc = _mm256_set1_ps(scale);
  for (int i = 0; i < 4; i++) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_mul_ps(_mm256_permute2f128_ps(r[i], r[i + 4], 0x20), sc));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_mul_ps(_mm256_permute2f128_ps(r[i], r[i + 4], 0x31), sc));
  }
}
#elif defined(AF_NEON)
// NEON 4×4 tile: trn1/trn2 on 32-bit pairs, then the 64-bit halves recombined.
#define AF_TRANSPOSE_TILE 4
AF_INLINE void transposeTile(const float* src, int64_t lds, float* dst, int64_t ldd, float scale) {
  float32x4x2_t a = vtrnq_f32(vld1q_f32(src), vld1q_f32(src + lds));
  float32x4x2_t b = vtrnq_f32(vld1q_f32(src + 2 * lds), vld1q_f32(src + 3 * lds));
  vst1q_f32(dst, vmulq_n_f32(vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0])), scale));
  vst1q_f32(dst + ldd, vmulq_n_f32(vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1])), scale));
  vst1q_f32(dst + 2 * ldd, vmulq_n_f32(vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0])), scale));
  vst1q_f32(dst + 3 * ldd, vmulq_n_f32(vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1])), scale));
}
#endif

void transposeScaled(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd, float scale) {
  int64_t r0 = 0;
#if defined(AF_TRANSPOSE_TILE)
  constexpr int TT = AF_TRANSPOSE_TILE;
  for (r0 = 0; r0 + TT <= rows; r0 += TT)
    for (int64_t c0 = 0; c0 + TT <= cols; c0 += TT) transposeTile(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, ldd, scale);
  for (int64_t r = 0; r < r0; r++)
    for (int64_t c = cols / TT * TT; c < cols; c++) dst[c * ldd + r] = src[r * lds + c] * scale;
#elif AF_VW == 16 && defined(__AVX512F__)
  for (r0 = 0; r0 + 16 <= rows; r0 += 16)
    for (int64_t c0 = 0; c0 + 16 <= cols; c0 += 16) transpose16(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, ldd, scale);
  // edges: the column strip right of the full tiles, then the rows below them
  for (int64_t r = 0; r < r0; r++)
    for (int64_t c = cols / 16 * 16; c < cols; c++) dst[c * ldd + r] = src[r * lds + c] * scale;
#endif
  for (int64_t r = r0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c] * scale;
}
