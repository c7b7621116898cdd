// Dynamic int8 linear (src/backend/ref/qlinear.ts defines the arithmetic and the packed weight layout; the tests
// compare every path's int32 accumulators with it exactly). Included by kernels.inc.h once per ISA:
//   AVX-512 TU: AMX-INT8 tiles (amx-int8.cc, its own TU with the AMX flags) where the CPU and OS allow them and the
//               call has ≥ 8 rows; else vpdpbusd (AVX-512 VNNI, a target attribute) or vpmaddubsw+vpmaddwd (BW).
//               amx.h's preference (ATTNFLOW_INT8, native setInt8) picks one for tests and benchmarks.
//   AVX2 TU:    vpmaddubsw + vpmaddwd on ymm (xq ≤ 127, so the int16 pair sums never saturate)
//   generic:    plain C++
// Rows of x are quantized first (in parallel; one vector loop for every ISA), to u8 with a per-row scale and zero
// point; then tasks of (up to 64 rows) × (64 output channels) run the integer GEMM over the whole depth into an
// int32 tile (AMX: amxQGemm's 32 × 32 tile blocks), and the epilogue writes y = (acc − zp·colSum)·(sx·sw) + bias,
// then the activation (the table's own unary kernel, so fused = unfused), and the raw acc when asked.

struct QRowJob { const QLinearArgs* a; int64_t Kp; uint8_t* xq; float* sx; int32_t* zp; int64_t rowsPerTask; };

// One loop for every ISA, in the vector extensions of simd.inc.h (AVX-512 16 lanes, AVX2 8, SSE/NEON 4).
typedef uint8_t vb __attribute__((vector_size(AF_VW)));
// round half to even of |t| < 2^22 (here |t| ≤ 128): adding and removing 1.5·2^23 leaves the rounded value, in the
// default rounding mode, exactly nearbyintf's (no -ffast-math here, so the compiler cannot fold it away)
AF_INLINE vf roundEven(vf t) { return (t + 12582912.0f) - 12582912.0f; }
// x·inv rounded to float32 before the rounding above: the empty asm hides the product from the compiler, which
// would otherwise contract it and the add into one FMA (GCC's default -ffp-contract=fast), skipping that rounding
AF_INLINE vf product(vf x, vf inv) {
  vf t = x * inv;
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+v"(t));
#elif defined(__aarch64__)
  __asm__("" : "+w"(t));
#endif
  return t;
}

void qQuantRows(void* ctx, int64_t task, int) {
  const QRowJob& j = *static_cast<const QRowJob*>(ctx);
  const QLinearArgs& a = *j.a;
  const int64_t r0 = task * j.rowsPerTask, r1 = r0 + j.rowsPerTask < a.M ? r0 + j.rowsPerTask : a.M;
  for (int64_t r = r0; r < r1; r++) {
    const float* x = a.x + r * a.lda;
    uint8_t* q = j.xq + r * j.Kp;
    vf vlo = splat(0.f), vhi = splat(0.f), vbad = splat(0.f);
    int64_t k0 = 0;
    for (; k0 + VW <= a.K; k0 += VW) {
      const vf v = load(x + k0);
      vlo = vmin(vlo, v);
      vhi = vmax(vhi, v);
      vbad += v - v;  // NaN once any element is NaN or ±Inf
    }
    float lo = -hmax(-vlo), hi = hmax(vhi);
    int bad = !(hsum(vbad) == 0.f);
    for (int64_t k = k0; k < a.K; k++) {
      const float v = x[k];
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
      bad |= !(v - v == 0.f);
    }
    float scale = (hi - lo) / 127.0f;
    if (scale == 0.f) scale = 1.f;
    if (bad || !(scale < __builtin_huge_valf())) {
      memset(q, 0, (size_t)j.Kp);
      j.sx[r] = __builtin_nanf("");
      j.zp[r] = 0;
      continue;
    }
    const float inv = 1.0f / scale;
    // nearbyintf: round half to even like the reference; a separate operation, so no FMA contraction changes x·inv
    int32_t zp = (int32_t)nearbyintf(-lo / scale);
    zp = zp < 0 ? 0 : zp > 127 ? 127 : zp;
    const vf vinv = splat(inv);
    const vi vzp = (vi)AF_LANES(zp), v0 = (vi)AF_LANES(0), v127 = (vi)AF_LANES(127);
    int64_t k1 = 0;
    for (; k1 + VW <= a.K; k1 += VW) {
      vi v = __builtin_convertvector(roundEven(product(load(x + k1), vinv)), vi) + vzp;
      v = v < v0 ? v0 : v > v127 ? v127 : v;
      const vb b8 = __builtin_convertvector(v, vb);
      memcpy(q + k1, &b8, VW);
    }
    for (int64_t k = k1; k < a.K; k++) {
      int32_t v = (int32_t)nearbyintf(x[k] * inv) + zp;
      q[k] = (uint8_t)(v < 0 ? 0 : v > 127 ? 127 : v);
    }
    for (int64_t k = a.K; k < j.Kp; k++) q[k] = 0;
    j.sx[r] = scale;
    j.zp[r] = zp;
  }
}

enum { Q_PANEL = 16, Q_COLS = 64, Q_ROWS = 64 };

// tile[r·64 + c] (c < 16·NP) = Σ_g Σ_t xq[r][4g+t]·w[panel c/16][g][c%16][t], for MR rows.
#if defined(__AVX512BW__)
// MR rows × NP panels, one zmm accumulator each; Q_DOT is the only difference between the two kernels (VNNI's
// vpdpbusd needs its target attribute, so the body is stamped twice rather than templated on the dot product).
#define Q_TILE_BODY(Q_DOT)                                                                               \
  __m512i acc[MR][NP];                                                                                   \
  for (int r = 0; r < MR; r++)                                                                           \
    for (int p = 0; p < NP; p++) acc[r][p] = _mm512_setzero_si512();                                     \
  for (int64_t g = 0; g < G; g++) {                                                                      \
    __m512i wv[NP];                                                                                      \
    for (int p = 0; p < NP; p++) wv[p] = _mm512_loadu_si512((const void*)(w + p * pstride + g * 64));   \
    for (int r = 0; r < MR; r++) {                                                                       \
      int32_t xv;                                                                                        \
      memcpy(&xv, xq + r * ldx + g * 4, 4);                                                              \
      const __m512i xb = _mm512_set1_epi32(xv);                                                          \
      for (int p = 0; p < NP; p++) acc[r][p] = Q_DOT(acc[r][p], xb, wv[p]);                             \
    }                                                                                                    \
  }                                                                                                      \
  for (int r = 0; r < MR; r++)                                                                           \
    for (int p = 0; p < NP; p++) _mm512_storeu_si512((void*)(tile + r * Q_COLS + p * 16), acc[r][p]);
#define Q_DOT_VNNI(acc, x, w) _mm512_dpbusd_epi32(acc, x, w)
#define Q_DOT_BW(acc, x, w) _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(x, w), _mm512_set1_epi16(1)))
template <int MR, int NP>
__attribute__((target("avx512vnni"))) void qTileVnni(const uint8_t* xq, int64_t ldx, const int8_t* w, int64_t pstride, int64_t G, int32_t* tile) {
  Q_TILE_BODY(Q_DOT_VNNI)
}
template <int MR, int NP>
void qTileBw(const uint8_t* xq, int64_t ldx, const int8_t* w, int64_t pstride, int64_t G, int32_t* tile) {
  Q_TILE_BODY(Q_DOT_BW)
}
// The hot shape (4 rows × 64 channels) with named accumulators: GCC keeps the array version's 16 accumulators
// in registers but copies them around every iteration.
template <>
__attribute__((target("avx512vnni"))) void qTileVnni<4, 4>(const uint8_t* xq, int64_t ldx, const int8_t* w, int64_t pstride, int64_t G, int32_t* tile) {
#define Q_Z(r) __m512i a##r##0 = _mm512_setzero_si512(), a##r##1 = a##r##0, a##r##2 = a##r##0, a##r##3 = a##r##0;
  Q_Z(0) Q_Z(1) Q_Z(2) Q_Z(3)
#undef Q_Z
  const int8_t *w0 = w, *w1 = w + pstride, *w2 = w + 2 * pstride, *w3 = w + 3 * pstride;
  const uint8_t *x0 = xq, *x1 = xq + ldx, *x2 = xq + 2 * ldx, *x3 = xq + 3 * ldx;
  for (int64_t g = 0; g < G; g++) {
    const __m512i b0 = _mm512_loadu_si512((const void*)(w0 + g * 64)), b1 = _mm512_loadu_si512((const void*)(w1 + g * 64));
    const __m512i b2 = _mm512_loadu_si512((const void*)(w2 + g * 64)), b3 = _mm512_loadu_si512((const void*)(w3 + g * 64));
    int32_t v;
#define Q_R(r)                                                                           \
  memcpy(&v, x##r + g * 4, 4);                                                           \
  {                                                                                      \
    const __m512i xb = _mm512_set1_epi32(v);                                             \
    a##r##0 = _mm512_dpbusd_epi32(a##r##0, xb, b0); a##r##1 = _mm512_dpbusd_epi32(a##r##1, xb, b1); \
    a##r##2 = _mm512_dpbusd_epi32(a##r##2, xb, b2); a##r##3 = _mm512_dpbusd_epi32(a##r##3, xb, b3); \
  }
    Q_R(0) Q_R(1) Q_R(2) Q_R(3)
#undef Q_R
  }
#define Q_S(r)                                                                                         \
  _mm512_storeu_si512((void*)(tile + r * Q_COLS), a##r##0); _mm512_storeu_si512((void*)(tile + r * Q_COLS + 16), a##r##1); \
  _mm512_storeu_si512((void*)(tile + r * Q_COLS + 32), a##r##2); _mm512_storeu_si512((void*)(tile + r * Q_COLS + 48), a##r##3);
  Q_S(0) Q_S(1) Q_S(2) Q_S(3)
#undef Q_S
}
#define Q_MR 4
#elif defined(__AVX2__)
// one panel (16 channels = 2 ymm) at a time: MR·2 accumulators fit the 16 ymm registers
template <int MR>
void qPanelAvx2(const uint8_t* xq, int64_t ldx, const int8_t* w, int64_t G, int32_t* tile) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[MR][2];
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t g = 0; g < G; g++) {
    const __m256i w0 = _mm256_loadu_si256((const __m256i*)(w + g * 64));
    const __m256i w1 = _mm256_loadu_si256((const __m256i*)(w + g * 64 + 32));
    for (int r = 0; r < MR; r++) {
      int32_t xv;
      memcpy(&xv, xq + r * ldx + g * 4, 4);
      const __m256i xb = _mm256_set1_epi32(xv);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w0), ones));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w1), ones));
    }
  }
  for (int r = 0; r < MR; r++) {
    _mm256_storeu_si256((__m256i*)(tile + r * Q_COLS), acc[r][0]);
    _mm256_storeu_si256((__m256i*)(tile + r * Q_COLS + 8), acc[r][1]);
  }
}
template <int MR, int NP>
void qTileAvx2(const uint8_t* xq, int64_t ldx, const int8_t* w, int64_t pstride, int64_t G, int32_t* tile) {
  for (int p = 0; p < NP; p++) qPanelAvx2<MR>(xq, ldx, w + p * pstride, G, tile + p * 16);
}
#define Q_MR 4
#else
template <int MR, int NP>
void qTileGeneric(const uint8_t* xq, int64_t ldx, const int8_t* w, int64_t pstride, int64_t G, int32_t* tile) {
  for (int r = 0; r < MR; r++) {
    for (int p = 0; p < NP; p++) {
      int32_t acc[16] = {0};
      const int8_t* wp = w + p * pstride;
      const uint8_t* xr = xq + r * ldx;
      for (int64_t g = 0; g < G; g++)
        for (int c = 0; c < 16; c++)
          for (int t = 0; t < 4; t++) acc[c] += (int32_t)xr[4 * g + t] * (int32_t)wp[g * 64 + c * 4 + t];
      for (int c = 0; c < 16; c++) tile[r * Q_COLS + p * 16 + c] = acc[c];
    }
  }
}
#define Q_MR 4
#endif

typedef void (*QTileFn)(const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, int32_t*);

#if defined(__AVX512BW__)
#define Q_FN(MR, NP) (useVnni ? qTileVnni<MR, NP> : qTileBw<MR, NP>)
#elif defined(__AVX2__)
#define Q_FN(MR, NP) qTileAvx2<MR, NP>
#else
#define Q_FN(MR, NP) qTileGeneric<MR, NP>
#endif

QTileFn qTileFor(int mr, int np, bool useVnni) {
  (void)useVnni;
#define Q_ROW(MR) \
  switch (np) { case 1: return Q_FN(MR, 1); case 2: return Q_FN(MR, 2); case 3: return Q_FN(MR, 3); default: return Q_FN(MR, 4); }
  switch (mr) {
    case 1: Q_ROW(1)
    case 2: Q_ROW(2)
#if Q_MR >= 3
    case 3: Q_ROW(3)
#endif
#if Q_MR >= 4
    case 4: Q_ROW(4)
#endif
    default: break;
  }
#undef Q_ROW
  return nullptr;
}

// Act → the unary op the float path runs for it (so an int8 layer's fused activation equals the unfused one)
int qActOp(int act) { return act == ACT_RELU ? UN_RELU : act == ACT_GELU_ERF ? UN_GELU : UN_GELU_TANH; }

struct QGemmJob {
  const QLinearArgs* a;
  int64_t Kp, G, rowBlocks, colBlocks;
  const uint8_t* xq; const float* sx; const int32_t* zp;
  bool vnni;
};

void qGemmTask(void* ctx, int64_t task, int) {
  const QGemmJob& j = *static_cast<const QGemmJob*>(ctx);
  const QLinearArgs& a = *j.a;
  const int64_t cb = task % j.colBlocks, rb = task / j.colBlocks;
  const int64_t c0 = cb * Q_COLS, r0 = rb * Q_ROWS;
  const int64_t r1 = r0 + (int64_t)Q_ROWS < a.M ? r0 + (int64_t)Q_ROWS : a.M;
  const int64_t cols = a.N - c0 < (int64_t)Q_COLS ? a.N - c0 : (int64_t)Q_COLS;
  const int np = (int)((cols + Q_PANEL - 1) / Q_PANEL);
  const int64_t pstride = (int64_t)Q_PANEL * j.Kp;
  const int8_t* wblk = a.w + (c0 / Q_PANEL) * pstride;
  alignas(64) int32_t tile[Q_MR * Q_COLS];
  for (int64_t r = r0; r < r1; r += Q_MR) {
    const int mr = (int)(r1 - r < Q_MR ? r1 - r : Q_MR);
    qTileFor(mr, np, j.vnni)(j.xq + r * j.Kp, j.Kp, wblk, pstride, j.G, tile);
    for (int i = 0; i < mr; i++) {
      const int64_t row = r + i;
      const float sx = j.sx[row];
      const int32_t zp = j.zp[row];
      const int32_t* t = tile + i * Q_COLS;
      float* y = a.y + row * a.ldy + c0;
      const int32_t* cs = a.colSum + c0;
      const float* ws = a.wScale + c0;
      if (a.bias) {
        const float* b = a.bias + c0;
        for (int64_t c = 0; c < cols; c++) y[c] = (float)(t[c] - zp * cs[c]) * (sx * ws[c]) + b[c];
      } else {
        for (int64_t c = 0; c < cols; c++) y[c] = (float)(t[c] - zp * cs[c]) * (sx * ws[c]);
      }
      if (a.act) unaryRange(qActOp(a.act), y, y, cols);
      if (a.acc) memcpy(a.acc + row * a.N + c0, t, (size_t)cols * 4);
    }
  }
}

#if defined(__AVX512BW__)
// The kernel this table runs: AMX where the preference (amx.h) allows and the CPU/OS has it, else VNNI, else BW.
int qPath() {
  static const bool vnni = [] { __builtin_cpu_init(); return __builtin_cpu_supports("avx512vnni") != 0; }();
  const int pref = int8Pref();
  if ((pref == INT8_AUTO || pref == INT8_AMX) && amxInt8Available()) return INT8_AMX;
  if (pref != INT8_BW && vnni) return INT8_VNNI;
  return INT8_BW;
}

// AMX: rows quantized into xq with stride Kp64 (K rounded up to 64, zero columns) and zero rows up to a multiple
// of 16, then amxQGemm (amx-int8.cc) runs the tiles and the epilogue.
bool qlinearAmx(const QLinearArgs& a, int64_t Kp) {
  const int64_t Kp64 = (Kp + 63) / 64 * 64, M16 = (a.M + 15) / 16 * 16, panels = (a.N + 15) / 16;
  const bool tail = Kp64 != Kp;
  const size_t xqBytes = (size_t)(M16 * Kp64), tailBytes = tail ? (size_t)panels * 1024 : 0;
  const size_t xqFloats = (xqBytes + tailBytes + 63) / 64 * 16;
  float* buf = sharedScratch(xqFloats + 2 * (size_t)a.M);
  if (!buf) return false;
  uint8_t* xq = reinterpret_cast<uint8_t*>(buf);
  int8_t* wTail = tail ? reinterpret_cast<int8_t*>(xq + xqBytes) : nullptr;
  float* sx = buf + xqFloats;
  int32_t* zp = reinterpret_cast<int32_t*>(sx + a.M);
  QRowJob rj{&a, Kp64, xq, sx, zp, 0};
  rj.rowsPerTask = a.M * a.K >= 131072 ? (a.M + 7) / 8 : a.M;  // below: ~20 µs on one core, less than a parallel region costs a loaded machine
  parallelFor((a.M + rj.rowsPerTask - 1) / rj.rowsPerTask, qQuantRows, &rj);
  if (M16 > a.M) memset(xq + a.M * Kp64, 0, (size_t)((M16 - a.M) * Kp64));
  if (tail) {
    const int64_t full = Kp64 - 64, have = (Kp - full) / 4 * 64;  // bytes of the last (partial) tile in a panel
    for (int64_t p = 0; p < panels; p++) {
      memcpy(wTail + p * 1024, a.w + p * 16 * Kp + full / 4 * 64, (size_t)have);
      memset(wTail + p * 1024 + have, 0, (size_t)(1024 - have));
    }
  }
  AmxQGemmArgs g{xq, Kp64, sx, zp, a.w, Kp, wTail, a.M, a.N, a.colSum, a.wScale, a.bias, a.y, a.ldy, a.acc,
                 a.act ? unaryRange : nullptr, a.act ? qActOp(a.act) : 0};
  amxQGemm(g);
  return true;
}
#endif

bool qlinear(const QLinearArgs& a) {
  if (a.M <= 0 || a.N <= 0) return true;
  const int64_t Kp = (a.K + 3) / 4 * 4;
#if defined(__AVX512BW__)
  const int path = qPath();
  // A few rows (token-by-token decoding) read the weights once either way, and a mostly empty 16-row A tile only
  // adds work: VNNI streams them faster there (bench/int8-kernel.ts, M = 1).
  if (path == INT8_AMX && a.M >= 8) return qlinearAmx(a, Kp);
#endif
  // shared: xq (M·Kp bytes), sx (M floats), zp (M ints)
  const size_t xqFloats = (size_t)((a.M * Kp + 3) / 4);
  float* buf = sharedScratch(xqFloats + 2 * (size_t)a.M);
  if (!buf) return false;
  uint8_t* xq = reinterpret_cast<uint8_t*>(buf);
  float* sx = buf + xqFloats;
  int32_t* zp = reinterpret_cast<int32_t*>(sx + a.M);
  QRowJob rj{&a, Kp, xq, sx, zp, 0};
  rj.rowsPerTask = a.M * a.K >= 131072 ? (a.M + 7) / 8 : a.M;  // below: ~20 µs on one core, less than a parallel region costs a loaded machine
  parallelFor((a.M + rj.rowsPerTask - 1) / rj.rowsPerTask, qQuantRows, &rj);
  QGemmJob gj{&a, Kp, Kp / 4, (a.M + Q_ROWS - 1) / Q_ROWS, (a.N + Q_COLS - 1) / Q_COLS, xq, sx, zp, false};
#if defined(__AVX512BW__)
  gj.vnni = path != INT8_BW;  // AMX's few-row calls take VNNI (every AMX CPU has it)
#endif
  const int64_t tasks = gj.rowBlocks * gj.colBlocks;
  if (a.M * a.N * a.K < 65536) {
    for (int64_t t = 0; t < tasks; t++) qGemmTask(&gj, t, 0);
  } else {
    parallelFor(tasks, qGemmTask, &gj);
  }
  return true;
}

const char* qlinearPath() {
#if defined(__AVX512BW__)
  switch (qPath()) {
    case INT8_AMX: return "amx";
    case INT8_VNNI: return "avx512-vnni";
    default: return "avx512bw";
  }
#elif defined(__AVX2__)
  return "avx2";
#else
  return "generic";
#endif
}
