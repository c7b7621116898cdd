// Elementwise kernels on contiguous float32 arrays: unary math, binary arithmetic/comparisons with scalar, row and
// column broadcasting, a float64-accumulated sum over the middle axis of (outer, n, inner), and the fused
// Adam/AdamW parameter update. Simple ops are plain loops that -O3 vectorises for the ISA of this translation unit;
// the transcendental ones use the vector exp of simd.inc.h. Large arrays are split into fixed chunks over the pool
// (chunk boundaries depend only on n, so results never depend on the thread count).

// ---- accurate special functions ----
// e^x to ~1 ulp over the whole float range (the attention kernels' vexp trades that for speed on large |x|, where
// the rounding of x·log₂e costs up to ~3e-6). Cody–Waite: k = round(x·log₂e), r = x − k·ln2 in two parts (k·ln2_hi
// is exact), e^r by its degree-7 Taylor polynomial (|r| ≤ 0.347: truncation < 5e-9), times 2^k — by vscalefps, or
// as 2^⌊k/2⌋·2^(k−⌊k/2⌋) so both factors stay normal (overflow to +inf and gradual underflow come out right).
// NaN stays NaN, +inf → +inf, −inf → 0.
AF_INLINE vf vexpAcc(vf x) {
  vf xc = vmin(splat(89.0f), vmax(splat(-104.0f), x));  // keeps NaN
#if AF_VW == 16 && defined(__AVX512F__)
  vf k = _mm512_roundscale_ps(xc * kLog2e, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
  const vf magic = splat(12582912.0f);
  vf k = (xc * kLog2e + magic) - magic;  // round to nearest (|k| < 2^22)
#endif
  vf r = xc - k * 0.693359375f;           // exact: ln2_hi has 9 significant bits, |k| ≤ 150
  r = r - k * -2.12194440e-4f;            // ln2 − ln2_hi
  vf p = splat(1.0f / 5040.0f);
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
#if AF_VW == 16 && defined(__AVX512F__)
  vf e = _mm512_scalef_ps(p, k);
#else
  vi ki = __builtin_convertvector(k, vi);
  vi k1 = ki >> 1, k2 = ki - k1;
  vf e = p * (vf)((k1 + 127) << 23) * (vf)((k2 + 127) << 23);
#endif
  return select(x < -104.0f, splat(0.0f), e);
}

// erfc(z) for z ≥ 0 (any z ≥ 0 incl. +inf; NaN stays NaN): t·exp(−z² + P(t)), t = 1/(1 + z/2), P the Chebyshev-fitted
// polynomial of Numerical Recipes' erfcc (fractional error < 1.2e-7 in exact arithmetic; ~5e-7 in float, which
// is also the error of exp(−z²) from the rounding of z²). Relative accuracy holds deep into the tail, so
// Φ(x) = erfc(−x/√2)/2 for x < 0 stays accurate where 1 + erf(x/√2) would cancel.
AF_INLINE vf verfcPos(vf z) {
  vf t = 1.0f / (1.0f + 0.5f * z);
  vf p = splat(0.17087277f);
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * vexpAcc(p - z * z);
}

// erf(x): odd Taylor series 2/√π·Σ(−1)ⁿx²ⁿ⁺¹/(n!(2n+1)) for |x| < 0.8 (9 terms: relative error < 3e-9 before
// rounding), 1 − erfc(|x|) beyond (where erf ≥ 0.74, so the absolute error of erfc is a small relative one).
AF_INLINE vf verfAcc(vf x) {
  vf ax = vmax(x, -x);
  vf x2 = x * x;
  vf s = splat(1.6462114365889246e-06f);
  s = s * x2 - 1.492565035840625e-05f;
  s = s * x2 + 0.00012055332981789664f;
  s = s * x2 - 0.0008548327023450852f;
  s = s * x2 + 0.005223977625442188f;
  s = s * x2 - 0.026866170645131252f;
  s = s * x2 + 0.11283791670955126f;
  s = s * x2 - 0.37612638903183754f;
  s = s * x2 + 1.1283791670955126f;
  vf small = s * x;
  vf big = 1.0f - verfcPos(ax);
  big = select(x < 0.0f, -big, big);
  return select(ax < 0.8f, small, big);
}

// tanh(u): odd Taylor series for |u| < 0.55 (9 terms, relative error < 5e-9 before rounding; the usual
// 1 − 2/(e^{2u}+1) loses all relative accuracy near 0), that form with the sign restored beyond.
AF_INLINE vf vtanhAcc(vf u) {
  vf au = vmax(u, -u);
  vf u2 = u * u;
  vf s = splat(0.000590027440945586f);
  s = s * u2 - 0.0014558343870513183f;
  s = s * u2 + 0.003592128036572481f;
  s = s * u2 - 0.008863235529902197f;
  s = s * u2 + 0.021869488536155203f;
  s = s * u2 - 0.05396825396825397f;
  s = s * u2 + 0.13333333333333333f;
  s = s * u2 - 0.3333333333333333f;
  s = s * u2 + 1.0f;
  vf small = s * u;
  vf big = 1.0f - 2.0f / (vexpAcc(au + au) + 1.0f);
  big = select(u < 0.0f, -big, big);
  return select(au < 0.55f, small, big);
}

// Φ(x), the standard normal CDF, with relative accuracy in both tails.
AF_INLINE vf vphi(vf x) {
  vf e = 0.5f * verfcPos(vmax(x, -x) * 0.7071067811865476f);
  return select(x < 0.0f, e, 1.0f - e);
}

const float kGeluTanhC = 0.7978845608028654f;  // √(2/π)
const float kInvSqrt2Pi = 0.3989422804014327f;  // 1/√(2π)

// σ(v) and σ(−v) = 1 − σ(v), both with full relative accuracy.
AF_INLINE void sigmoidPair(vf v, vf& sp, vf& sn) {
  vf e = vexpAcc(-vmax(v, -v));
  vf r = 1.0f / (1.0f + e), er = e * r;
  sp = select(v < 0.0f, er, r);
  sn = select(v < 0.0f, r, er);
}

AF_INLINE vf unaryVec(int op, vf x) {
  switch (op) {
    case UN_EXP: return vexpAcc(x);
    case UN_TANH: return vtanhAcc(x);
    case UN_SIGMOID: {
      vf sp, sn;
      sigmoidPair(x, sp, sn);
      return sp;
    }
    case UN_ERF: return verfAcc(x);
    case UN_GELU: return x * vphi(x);
    case UN_GELU_GRAD: return vphi(x) + x * vexpAcc(-0.5f * x * x) * kInvSqrt2Pi;
    // tanh form through σ: ½(1 + tanh u) = σ(2u) and ¼(1 − tanh²u) = σ(2u)·σ(−2u), each computed without
    // cancellation, so both tails keep their relative accuracy (1 + tanh u would lose it for u ≪ 0)
    case UN_GELU_TANH: {
      vf sp, sn;
      sigmoidPair(2.0f * kGeluTanhC * (x + 0.044715f * x * x * x), sp, sn);
      return x * sp;
    }
    case UN_GELU_TANH_GRAD: {
      vf x2 = x * x, sp, sn;
      sigmoidPair(2.0f * kGeluTanhC * (x + 0.044715f * x2 * x), sp, sn);
      return sp + 2.0f * x * sp * sn * kGeluTanhC * (1.0f + 3.0f * 0.044715f * x2);
    }
    default: return x;
  }
}

// Plain loops, vectorised by the compiler.
template <int OP>
void unaryLoop(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    float r;
    switch (OP) {
      case UN_NEG: r = -v; break;
      case UN_ABS: r = __builtin_fabsf(v); break;
      case UN_RELU: r = v > 0.0f ? v : 0.0f; break;  // NaN → 0, as the reference backend
      case UN_SQUARE: r = v * v; break;
      case UN_SQRT: r = __builtin_sqrtf(v); break;
      case UN_RSQRT: r = 1.0f / __builtin_sqrtf(v); break;
      case UN_RECIPROCAL: r = 1.0f / v; break;
      default: r = v;
    }
    y[i] = r;
  }
}

void unaryRange(int op, const float* x, float* y, int64_t n) {
  switch (op) {
    case UN_NEG: unaryLoop<UN_NEG>(x, y, n); return;
    case UN_ABS: unaryLoop<UN_ABS>(x, y, n); return;
    case UN_RELU: unaryLoop<UN_RELU>(x, y, n); return;
    case UN_SQUARE: unaryLoop<UN_SQUARE>(x, y, n); return;
    case UN_SQRT: unaryLoop<UN_SQRT>(x, y, n); return;
    case UN_RSQRT: unaryLoop<UN_RSQRT>(x, y, n); return;
    case UN_RECIPROCAL: unaryLoop<UN_RECIPROCAL>(x, y, n); return;
    default: break;
  }
  // x and y may be the same array (in place): each vector is loaded before its store
  int64_t i = 0;
  for (; i + VW <= n; i += VW) store(y + i, unaryVec(op, load(x + i)));
  if (i < n) {
    float tmp[VW];
    for (int64_t k = 0; k < VW; k++) tmp[k] = i + k < n ? x[i + k] : 0.0f;
    vf r = unaryVec(op, load(tmp));
    for (int64_t k = 0; i + k < n; k++) y[i + k] = r[k];
  }
}

// Work split: fixed chunks of kEwChunk elements. They go to the pool only when an array is large enough for a second
// thread to pay off. The simple loops stream memory at ~35 GB/s on one core (measured: an 819200-element mul in
// 0.27 ms), about what the memory delivers, so a second core adds little and waking it (or, on a busy machine,
// waiting for one preempted mid-chunk) costs more: only from 2^20 elements. The transcendental ones are compute-
// bound (~0.65 ns per gelu) and split from 2^17.
const int64_t kEwChunk = 32768;
const int64_t kParallelSimple = int64_t(1) << 20;
const int64_t kParallelMath = int64_t(1) << 17;

AF_INLINE bool goParallel(int64_t n, bool math) {
  return numThreads() > 1 && n >= (math ? kParallelMath : kParallelSimple);
}

struct UnaryJob {
  int op;
  const float* x;
  float* y;
  int64_t n;
};
void unaryTask(void* ctx, int64_t t, int) {
  const UnaryJob& j = *static_cast<const UnaryJob*>(ctx);
  int64_t s = t * kEwChunk, e = imin(j.n, s + kEwChunk);
  unaryRange(j.op, j.x + s, j.y + s, e - s);
}

void unary(int op, const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  UnaryJob j{op, x, y, n};
  if (goParallel(n, op >= UN_EXP)) parallelFor(ceilDiv(n, kEwChunk), unaryTask, &j);
  else unaryRange(op, x, y, n);
}

// ---- binary ----
// Operand modes: element i of the (rows, R) output reads a[i] (BM_FULL), a[0] (BM_SCALAR), a[i mod R] (BM_ROW, a
// trailing row repeated) or a[i div R] (BM_COL, one value per row).
template <int OP>
AF_INLINE float binScalar(float a, float b) {
  switch (OP) {
    case BIN_ADD: return a + b;
    case BIN_SUB: return a - b;
    case BIN_MUL: return a * b;
    case BIN_DIV: return a / b;
    case BIN_MAX: return (a != a || b != b) ? a + b : (a > b ? a : b);  // NaN if either is NaN
    case BIN_MIN: return (a != a || b != b) ? a + b : (a < b ? a : b);
    case BIN_RELU_BWD: return b > 0.0f ? a : 0.0f;
    default: return 0.0f;
  }
}
template <int OP>
AF_INLINE uint8_t cmpScalar(float a, float b) {
  switch (OP) {
    case BIN_EQ: return a == b;
    case BIN_NE: return a != b;
    case BIN_LT: return a < b;
    case BIN_LE: return a <= b;
    case BIN_GT: return a > b;
    case BIN_GE: return a >= b;
    default: return 0;
  }
}

// One stretch [j0, j1) of output row r; AV/BV: operand varies along the row (FULL/ROW) or is constant (SCALAR/COL).
template <int OP, bool AV, bool BV, typename O>
AF_INLINE void binStretch(const float* __restrict a, float as, const float* __restrict b, float bs, O* __restrict o,
                          int64_t len) {
  for (int64_t k = 0; k < len; k++) {
    float x = AV ? a[k] : as, y = BV ? b[k] : bs;
    if constexpr (sizeof(O) == 1) o[k] = cmpScalar<OP>(x, y);
    else o[k] = binScalar<OP>(x, y);
  }
}

struct BinaryJob {
  int op, modeA, modeB;
  const float *a, *b;
  void* out;
  int64_t n, R;
};

template <int OP, typename O>
void binaryRangeT(const BinaryJob& j, int64_t e0, int64_t e1) {
  O* out = static_cast<O*>(j.out);
  const bool av = j.modeA == BM_FULL || j.modeA == BM_ROW, bv = j.modeB == BM_FULL || j.modeB == BM_ROW;
  int64_t e = e0;
  while (e < e1) {
    int64_t r = e / j.R, c = e % j.R;
    int64_t len = imin(j.R - c, e1 - e);
    // When both operands are FULL or SCALAR the row split is irrelevant: take the whole stretch at once.
    if ((j.modeA == BM_FULL || j.modeA == BM_SCALAR) && (j.modeB == BM_FULL || j.modeB == BM_SCALAR)) len = e1 - e;
    auto ptr = [&](const float* p, int mode) -> const float* {
      return mode == BM_FULL ? p + e : mode == BM_ROW ? p + c : p;
    };
    auto val = [&](const float* p, int mode) -> float { return mode == BM_SCALAR ? p[0] : mode == BM_COL ? p[r] : 0.0f; };
    const float *pa = ptr(j.a, j.modeA), *pb = ptr(j.b, j.modeB);
    float sa = av ? 0.0f : val(j.a, j.modeA), sb = bv ? 0.0f : val(j.b, j.modeB);
    if (av && bv) binStretch<OP, true, true>(pa, sa, pb, sb, out + e, len);
    else if (av) binStretch<OP, true, false>(pa, sa, pb, sb, out + e, len);
    else if (bv) binStretch<OP, false, true>(pa, sa, pb, sb, out + e, len);
    else binStretch<OP, false, false>(pa, sa, pb, sb, out + e, len);
    e += len;
  }
}

// dy·geluGrad(z) (exact or tanh form), both operands full: vector code.
void geluBwdRange(const BinaryJob& j, int64_t e0, int64_t e1) {
  const float* g = j.a;
  const float* z = j.b;
  float* o = static_cast<float*>(j.out);
  const int un = j.op == BIN_GELU_BWD ? UN_GELU_GRAD : UN_GELU_TANH_GRAD;
  int64_t i = e0;
  for (; i + VW <= e1; i += VW) store(o + i, load(g + i) * unaryVec(un, load(z + i)));
  if (i < e1) {
    float tz[VW], tg[VW];
    for (int64_t k = 0; k < VW; k++) {
      tz[k] = i + k < e1 ? z[i + k] : 0.0f;
      tg[k] = i + k < e1 ? g[i + k] : 0.0f;
    }
    vf r = load(tg) * unaryVec(un, load(tz));
    for (int64_t k = 0; i + k < e1; k++) o[i + k] = r[k];
  }
}

void binaryRange(const BinaryJob& j, int64_t e0, int64_t e1) {
  switch (j.op) {
    case BIN_RELU_BWD: binaryRangeT<BIN_RELU_BWD, float>(j, e0, e1); return;
    case BIN_GELU_BWD:
    case BIN_GELU_TANH_BWD: geluBwdRange(j, e0, e1); return;
    case BIN_ADD: binaryRangeT<BIN_ADD, float>(j, e0, e1); return;
    case BIN_SUB: binaryRangeT<BIN_SUB, float>(j, e0, e1); return;
    case BIN_MUL: binaryRangeT<BIN_MUL, float>(j, e0, e1); return;
    case BIN_DIV: binaryRangeT<BIN_DIV, float>(j, e0, e1); return;
    case BIN_MAX: binaryRangeT<BIN_MAX, float>(j, e0, e1); return;
    case BIN_MIN: binaryRangeT<BIN_MIN, float>(j, e0, e1); return;
    case BIN_EQ: binaryRangeT<BIN_EQ, uint8_t>(j, e0, e1); return;
    case BIN_NE: binaryRangeT<BIN_NE, uint8_t>(j, e0, e1); return;
    case BIN_LT: binaryRangeT<BIN_LT, uint8_t>(j, e0, e1); return;
    case BIN_LE: binaryRangeT<BIN_LE, uint8_t>(j, e0, e1); return;
    case BIN_GT: binaryRangeT<BIN_GT, uint8_t>(j, e0, e1); return;
    case BIN_GE: binaryRangeT<BIN_GE, uint8_t>(j, e0, e1); return;
    default: return;
  }
}

void binaryTask(void* ctx, int64_t t, int) {
  const BinaryJob& j = *static_cast<const BinaryJob*>(ctx);
  binaryRange(j, t * kEwChunk, imin(j.n, (t + 1) * kEwChunk));
}

void binary(int op, const float* a, int modeA, const float* b, int modeB, void* out, int64_t n, int64_t R) {
  if (n <= 0) return;
  BinaryJob j{op, modeA, modeB, a, b, out, n, R > 0 ? R : n};
  if (goParallel(n, op == BIN_GELU_BWD || op == BIN_GELU_TANH_BWD)) parallelFor(ceilDiv(n, kEwChunk), binaryTask, &j);
  else binaryRange(j, 0, n);
}

// ---- sum over the middle axis ----
// out[o·inner + i] = Σ_k x[(o·n + k)·inner + i], accumulated in float64 (the reference backend sums in float64
// too). Work is split into fixed pieces: whole outer slices when there are many, otherwise blocks of k whose
// float64 partial sums are added in block order, so the result never depends on the thread count.
struct SumJob {
  const float* x;
  float* out;
  double* partial;  // (pieces, inner) when splitting k
  int64_t outer, n, inner, kPer;
};

void sumSlice(const float* __restrict x, int64_t k0, int64_t k1, int64_t inner, double* __restrict acc) {
  if (inner == 1) {
    // one long row: several independent float64 lanes, then combined
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k = k0;
    for (; k + 8 <= k1; k += 8)
      for (int q = 0; q < 8; q++) l[q] += (double)x[k + q];
    double s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    for (; k < k1; k++) s += (double)x[k];
    acc[0] = s;
    return;
  }
  for (int64_t i = 0; i < inner; i++) acc[i] = 0.0;
  for (int64_t k = k0; k < k1; k++) {
    const float* row = x + k * inner;
    for (int64_t i = 0; i < inner; i++) acc[i] += (double)row[i];
  }
}

void sumOuterTask(void* ctx, int64_t o, int tid) {
  const SumJob& j = *static_cast<const SumJob*>(ctx);
  double* acc = reinterpret_cast<double*>(threadScratch(6, (size_t)(2 * j.inner)));
  sumSlice(j.x + o * j.n * j.inner, 0, j.n, j.inner, acc);
  for (int64_t i = 0; i < j.inner; i++) j.out[o * j.inner + i] = (float)acc[i];
  (void)tid;
}

void sumPieceTask(void* ctx, int64_t t, int) {
  const SumJob& j = *static_cast<const SumJob*>(ctx);
  sumSlice(j.x, t * j.kPer, imin(j.n, (t + 1) * j.kPer), j.inner, j.partial + t * j.inner);
}

bool reduceSum(const float* x, float* out, int64_t outer, int64_t n, int64_t inner) {
  if (outer <= 0 || inner <= 0) return true;
  SumJob j{x, out, nullptr, outer, n, inner, n};
  const int64_t total = outer * n * inner;
  const bool par = goParallel(total, false);
  if (outer >= 8 || total < 4 * kEwChunk || n < 2) {
    if (outer > 1 && par) parallelFor(outer, sumOuterTask, &j);
    else for (int64_t o = 0; o < outer; o++) sumOuterTask(&j, o, 0);
    return true;
  }
  // few outer slices with long k: split k into pieces of a fixed size
  j.kPer = imax(1, ceilDiv(kEwChunk, inner));
  const int64_t pieces = ceilDiv(n, j.kPer);
  j.partial = reinterpret_cast<double*>(sharedScratch((size_t)(2 * pieces * inner)));
  if (!j.partial) return false;
  for (int64_t o = 0; o < outer; o++) {
    SumJob jo = j;
    jo.x = x + o * n * inner;
    if (par) parallelFor(pieces, sumPieceTask, &jo);
    else for (int64_t t = 0; t < pieces; t++) sumPieceTask(&jo, t, 0);
    for (int64_t i = 0; i < inner; i++) {
      double s = 0.0;
      for (int64_t t = 0; t < pieces; t++) s += j.partial[t * inner + i];
      out[o * inner + i] = (float)s;
    }
  }
  return true;
}

// ---- Adam / AdamW ----
// PyTorch's update (as src/optim/optimizers.ts): decoupled decay p ← p·(1 − lr·wd) first (AdamW), or g += wd·p
// (Adam); m ← m + (g − m)(1 − β1); v ← β2·v + (1 − β2)·g²; v̂ = max(vmax, v) with amsgrad;
// p ← p − stepSize·m / (√v̂ / bc2sqrt + eps).
struct AdamJob {
  float *p, *m, *v, *vmax;
  const float* g;
  int64_t n;
  AdamHyper h;
};

void adamRange(const AdamJob& j, int64_t s, int64_t e) {
  float* __restrict p = j.p;
  float* __restrict m = j.m;
  float* __restrict v = j.v;
  float* __restrict vm = j.vmax;
  const float* __restrict g = j.g;
  const float decay = j.h.decoupled ? 1.0f - j.h.lr * j.h.weightDecay : 1.0f;
  const float l2 = j.h.decoupled ? 0.0f : j.h.weightDecay;
  const float omb1 = 1.0f - j.h.beta1, b2 = j.h.beta2, omb2 = 1.0f - j.h.beta2, sign = j.h.maximize ? -1.0f : 1.0f;
  const float bc2 = j.h.bc2sqrt, eps = j.h.eps, step = j.h.stepSize;
  for (int64_t i = s; i < e; i++) {
    float pi = p[i] * decay;
    float gi = sign * g[i] + l2 * pi;
    float mi = m[i] + (gi - m[i]) * omb1;
    float vi = v[i] * b2 + omb2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float vv = vi;
    if (vm) {
      vv = vm[i] > vi ? vm[i] : vi;
      vm[i] = vv;
    }
    p[i] = pi - step * (mi / (__builtin_sqrtf(vv) / bc2 + eps));
  }
}

void adamTask(void* ctx, int64_t t, int) {
  const AdamJob& j = *static_cast<const AdamJob*>(ctx);
  adamRange(j, t * kEwChunk, imin(j.n, (t + 1) * kEwChunk));
}

void adamUpdate(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, const AdamHyper& h) {
  if (n <= 0) return;
  AdamJob j{p, m, v, vmax, g, n, h};
  if (goParallel(4 * n, false)) parallelFor(ceilDiv(n, kEwChunk), adamTask, &j);  // 4 streams per element
  else adamRange(j, 0, n);
}
