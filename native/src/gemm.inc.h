// Packed, cache-blocked, multithreaded SGEMM (BLIS loop order):
//   for jc (NC columns)  for pc (KC depth): pack B panel   for ic (MC rows): pack A block
//     for jr (NR) for ir (MR): micro-kernel MR×NR on packed panels, C updated in place.
// C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b], then (+bias per column, activation) after the last depth block.

#ifndef AF_GEMM_MR  // (each overridable for tuning experiments)
#if AF_VW == 16
#define AF_GEMM_MR 6
#define AF_GEMM_NV 4  // 6×64 tile: 24 zmm accumulators
#else
#define AF_GEMM_MR 6
#define AF_GEMM_NV 2  // 6×16 (AVX2) / 6×8 (SSE) tiles: 12 accumulators
#endif
#endif
#ifndef AF_GEMM_KC
#if AF_VW == 16
#define AF_GEMM_KC 768  // measured best on Zen 5 (2 threads) among KC ∈ {256,512,768} × MC ∈ {72,144,192,288}
#else
#define AF_GEMM_KC 256
#endif
#endif
#ifndef AF_GEMM_MC
#define AF_GEMM_MC (AF_VW == 16 ? 288 : 120)
#endif
#ifndef AF_GEMM_NC
#define AF_GEMM_NC 2048
#endif
#ifndef AF_GEMM_COLS_TASKS  // tasks per thread when every task covers all rows (see gemmImpl)
#define AF_GEMM_COLS_TASKS 6
#endif
#ifndef AF_GEMM_BPF  // micro-kernel: prefetch B this many depth steps ahead into L1 (0: off)
#if AF_VW == 16
#define AF_GEMM_BPF 16  // AVX-512 (Intel Xeon, 2 threads): 1.4-4.6 % less CPU than 0 over five A/B runs; 8, 12 no better
#else
#define AF_GEMM_BPF 0   // not measured on AVX2 / NEON
#endif
#endif
#ifndef AF_GEMM_PREFETCH
#define AF_GEMM_PREFETCH 1  // prefetch the next pre-packed B panel (0: off, for A/B measurements)
#endif
constexpr int GEMM_MR = AF_GEMM_MR, GEMM_NV = AF_GEMM_NV;
static_assert(GEMM_MR <= 16, "kMicroTile has entries for up to 16 rows");

constexpr int64_t GEMM_KC = AF_GEMM_KC, GEMM_MC = AF_GEMM_MC, GEMM_NC = AF_GEMM_NC;
constexpr int GEMM_NR = GEMM_NV * VW;

// Ap: ceil(mc/MR) panels, each kc × MR (k-major), zero padded past the last row.
void packA(const float* A, bool trans, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* Ap) {
  for (int64_t ip = 0; ip < mc; ip += GEMM_MR) {
    int rv = (int)imin(GEMM_MR, mc - ip);
    float* dst = Ap + ip * kc;
    if (trans) {  // op(A)(i,k) = A[k·lda + i]: rows of a panel are contiguous
      const float* src = A + p0 * lda + i0 + ip;
      for (int64_t k = 0; k < kc; k++) {
        const float* s = src + k * lda;
        float* d = dst + k * GEMM_MR;
        for (int r = 0; r < rv; r++) d[r] = s[r];
        for (int r = rv; r < GEMM_MR; r++) d[r] = 0.0f;
      }
    } else {  // op(A)(i,k) = A[i·lda + k]
      const float* src = A + (i0 + ip) * lda + p0;
      if (rv == GEMM_MR) {
        const float* s[GEMM_MR];
        for (int r = 0; r < GEMM_MR; r++) s[r] = src + r * lda;
        for (int64_t k = 0; k < kc; k++)
#pragma GCC unroll 16
          for (int r = 0; r < GEMM_MR; r++) dst[k * GEMM_MR + r] = s[r][k];
      } else {
        for (int64_t k = 0; k < kc; k++) {
          for (int r = 0; r < rv; r++) dst[k * GEMM_MR + r] = src[r * lda + k];
          for (int r = rv; r < GEMM_MR; r++) dst[k * GEMM_MR + r] = 0.0f;
        }
      }
    }
  }
}

// Bp: ceil(nc/NR) panels, each kc × NR (k-major), zero padded past the last column.
void packB(const float* B, bool trans, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* Bp) {
  for (int64_t jp = 0; jp < nc; jp += GEMM_NR) {
    int cv = (int)imin(GEMM_NR, nc - jp);
    float* dst = Bp + jp * kc;
    if (!trans) {  // op(B)(k,j) = B[k·ldb + j]: contiguous rows
      const float* src = B + p0 * ldb + j0 + jp;
      if (cv == GEMM_NR) {
        for (int64_t k = 0; k < kc; k++)
#pragma GCC unroll 4
          for (int v = 0; v < GEMM_NV; v++) store(dst + k * GEMM_NR + v * VW, load(src + k * ldb + v * VW));
      } else {
        for (int64_t k = 0; k < kc; k++) {
          for (int c = 0; c < cv; c++) dst[k * GEMM_NR + c] = src[k * ldb + c];
          for (int c = cv; c < GEMM_NR; c++) dst[k * GEMM_NR + c] = 0.0f;
        }
      }
    } else {  // op(B)(k,j) = B[j·ldb + k]: a transpose of the cv × kc source block
      transposeScaled(B + (j0 + jp) * ldb + p0, ldb, cv, kc, dst, GEMM_NR, 1.0f);
      if (cv < GEMM_NR)
        for (int64_t k = 0; k < kc; k++)
          for (int c = cv; c < GEMM_NR; c++) dst[k * GEMM_NR + c] = 0.0f;
    }
  }
}

struct Epilogue {
  float alpha, beta;
  bool first, last;  // first depth block applies beta; last applies bias + activation
  const float* bias; // already offset to the tile's first column, or null
  int act;
};

// Updates an R×NR tile at C (row stride ldc) from the accumulators (R = MR for full tiles, fewer for the last rows).
template <int R>
AF_INLINE void storeTile(vf (&acc)[R][GEMM_NV], float* C, int64_t ldc, const Epilogue& e) {
  vf bias[GEMM_NV] = {};
  if (e.last && e.bias)
    for (int v = 0; v < GEMM_NV; v++) bias[v] = load(e.bias + v * VW);
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int v = 0; v < GEMM_NV; v++) {
      float* c = C + r * ldc + v * VW;
      vf x = acc[r][v] * e.alpha;
      if (!e.first) x += load(c);
      else if (e.beta != 0.0f) x += e.beta * load(c);
      if (e.last) {
        if (e.bias) x += bias[v];
        if (e.act != ACT_NONE) x = applyAct(x, e.act);
      }
      store(c, x);
    }
}

// An R-row tile (R ≤ MR; the A panel keeps its MR stride): the micro-kernel runs only the R valid rows, so the
// ragged last row panel of M = 128 (6·21 + 2) costs 2/6 of a full tile, not a whole one. nr < NR columns go through
// a padded copy and only the valid part is written back.
template <int R, bool PF>
void microTileRows(int64_t kc, const float* Ap, int64_t sai, int64_t sak, const float* Bp, int64_t ldb, float* C,
                   int64_t ldc, int nr, const Epilogue& e, const char* pf) {
  vf acc[R][GEMM_NV];
  if (PF) mkAcc<R, GEMM_NV, AF_GEMM_BPF>(acc, kc, Ap, sai, sak, Bp, ldb, pf);
  else mkAcc<R, GEMM_NV, AF_GEMM_BPF>(acc, kc, Ap, sai, sak, Bp, ldb);
  if (nr == GEMM_NR) {
    storeTile<R>(acc, C, ldc, e);
    return;
  }
  alignas(64) float tmp[R * GEMM_NR];
  alignas(64) float btmp[GEMM_NR];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < GEMM_NR; c++) tmp[r * GEMM_NR + c] = (c < nr && (!e.first || e.beta != 0.0f)) ? C[r * ldc + c] : 0.0f;
  Epilogue e2 = e;
  if (e.last && e.bias) {
    for (int c = 0; c < GEMM_NR; c++) btmp[c] = c < nr ? e.bias[c] : 0.0f;
    e2.bias = btmp;
  }
  storeTile<R>(acc, tmp, GEMM_NR, e2);
  for (int r = 0; r < R; r++)
    for (int c = 0; c < nr; c++) C[r * ldc + c] = tmp[r * GEMM_NR + c];
}

typedef void (*MicroTileFn)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, int,
                            const Epilogue&, const char*);
#define AF_MT(R, PF) microTileRows<(R <= GEMM_MR ? R : 1), PF>
#define AF_MT_ROW(PF)                                                                                      \
  {AF_MT(1, PF),  AF_MT(2, PF),  AF_MT(3, PF),  AF_MT(4, PF),  AF_MT(5, PF),  AF_MT(6, PF),  AF_MT(7, PF),  \
   AF_MT(8, PF),  AF_MT(9, PF),  AF_MT(10, PF), AF_MT(11, PF), AF_MT(12, PF), AF_MT(13, PF), AF_MT(14, PF), \
   AF_MT(15, PF), AF_MT(16, PF)}
const MicroTileFn kMicroTile[2][16] = {AF_MT_ROW(false), AF_MT_ROW(true)};
#undef AF_MT_ROW
#undef AF_MT

// A (mr rows) is a packed panel (sai = 1, sak = MR) or read in place (row-major: sai = lda, sak = 1). pf: null, or
// where to prefetch kc/2 cache lines from into L2 while the tile computes.
void microTile(int64_t kc, const float* A, int64_t sai, int64_t sak, const float* Bp, int64_t ldb, float* C,
               int64_t ldc, int mr, int nr, const Epilogue& e, const char* pf) {
  kMicroTile[pf != nullptr][mr - 1](kc, A, sai, sak, Bp, ldb, C, ldc, nr, e, pf);
}

// The A block this thread packed last into its scratch slot 1, and for which gemm() call (callId, unique per call:
// a later call with the same pointers may see new contents). 0 = nothing reusable.
struct PackedATag {
  uint64_t callId;
  const float* A;
  const float* Ap;
  int64_t ic, mc, pc, kc;
  bool operator==(const PackedATag& o) const {
    return callId == o.callId && A == o.A && Ap == o.Ap && ic == o.ic && mc == o.mc && pc == o.pc && kc == o.kc;
  }
};
thread_local PackedATag tlPackedA{};

// Where gemmRange gets its B micro-panels: packed here per (KC, NC) block, from panels packed beforehand (full
// depth K×NR, first column preCol0; see gemm()), or read in place (B not transposed, rows ldb apart: for few
// rows of A, packing B would cost more than it saves; only a ragged last panel is packed).
enum BSource { B_PACK, B_PREPACKED, B_DIRECT };

// A row-major (not transposed) and a task of at most MC rows: the micro-kernel broadcasts A straight from its rows
// (6 sequential streams, in L2 for these sizes) instead of packing them first. Measured on Zen 5, 2 threads: M = 128
// linear layers 3–5 % faster (packing was a private copy of all of A per thread), M = 512…1024 equal or ~2 % faster.
bool useDirectA(const GemmArgs& g, int64_t rows) { return !g.transA && rows <= GEMM_MC; }

// C[m0:m1, n0:n1] of batch entry bi, single-threaded.
// pfAfter (B_PREPACKED only, may be null): the first full-depth panel of the work this thread will probably run
// next (see gemmBlockTask), prefetched during the range's last panel.
void gemmRange(const GemmArgs& g, int64_t bi, int64_t m0, int64_t m1, int64_t n0, int64_t n1, BSource src,
               const float* Bpre, int64_t preCol0, const float* pfAfter = nullptr) {
  const float* A = g.A + bi * g.strideA;
  const float* B = g.B + bi * g.strideB;
  float* C = g.C + bi * g.strideC;
  int64_t K = g.K;
  if (K == 0 || g.alpha == 0.0f) {  // no product: C = beta·C, then the epilogue
    for (int64_t i = m0; i < m1; i++)
      for (int64_t j = n0; j < n1; j++) {
        float* c = C + i * g.ldc + j;
        float x = g.beta == 0.0f ? 0.0f : g.beta * *c;
        if (g.bias) x += g.bias[j];
        if (g.act != ACT_NONE) x = applyAct(splat(x), g.act)[0];
        *c = x;
      }
    return;
  }
  int64_t ncMax = imin(GEMM_NC, roundUp(n1 - n0, GEMM_NR));
  int64_t kcMax = imin(GEMM_KC, K);
  int64_t mcMax = imin(GEMM_MC, roundUp(m1 - m0, GEMM_MR));
  float* Bp = src == B_PREPACKED ? nullptr : threadScratch(0, (size_t)((src == B_PACK ? ncMax : GEMM_NR) * kcMax));
  float* Ap = threadScratch(1, (size_t)(mcMax * kcMax));
  PackedATag& lastA = tlPackedA;
  const bool directA = useDirectA(g, m1 - m0);
  for (int64_t jc = n0; jc < n1; jc += GEMM_NC) {
    int64_t nc = imin(GEMM_NC, n1 - jc);
    for (int64_t pc = 0; pc < K; pc += GEMM_KC) {
      int64_t kc = imin(GEMM_KC, K - pc);
      if (src == B_PACK) packB(B, g.transB, g.ldb, pc, kc, jc, nc, Bp);
      if (src == B_DIRECT && nc % GEMM_NR) packB(B, false, g.ldb, pc, kc, jc + nc / GEMM_NR * GEMM_NR, nc % GEMM_NR, Bp);
      Epilogue e{g.alpha, g.beta, pc == 0, pc + kc >= K, nullptr, g.act};
      for (int64_t ic = m0; ic < m1; ic += GEMM_MC) {
        int64_t mc = imin(GEMM_MC, m1 - ic);
        // Tasks of one call that cover the same rows (column blocks of few rows) reuse this thread's packed A.
        PackedATag tag{g.callId, A, Ap, ic, mc, pc, kc};
        if (!directA && (!g.callId || !(tag == lastA))) {
          packA(A, g.transA, g.lda, ic, mc, pc, kc, Ap);
          lastA = g.callId ? tag : PackedATag{};
        }
        for (int64_t jr = 0; jr < nc; jr += GEMM_NR) {
          int nr = (int)imin(GEMM_NR, nc - jr);
          e.bias = g.bias ? g.bias + jc + jr : nullptr;
          const float* Bpanel = Bp + jr * kc;
          int64_t ldb = GEMM_NR;
          if (src == B_PREPACKED) Bpanel = Bpre + (jc + jr - preCol0) * K + pc * GEMM_NR;
          if (src == B_DIRECT) {
            Bpanel = nr == GEMM_NR ? B + pc * g.ldb + jc + jr : Bp;
            ldb = nr == GEMM_NR ? g.ldb : GEMM_NR;
          }
          // Pre-packed B comes from memory the first time (each weight of a forward pass is used once): while
          // the row tiles run over this panel, they prefetch the next panel of the range (kc·NR floats) into L2,
          // each tile a slice of kc/2 lines, so only a range's first panel is read cold.
          // After the range's last panel of this depth block come its first panel at the next depth block, or
          // (last depth block) the panel of the next likely task, pfAfter.
          const float* pfPanel = nullptr;
          int64_t pfDepth = 0;
          if (AF_GEMM_PREFETCH && src == B_PREPACKED) {
            if (jr + GEMM_NR < nc) pfPanel = Bpanel + K * GEMM_NR, pfDepth = kc;
            else if (pc + kc < K) pfPanel = Bpre + (jc - preCol0) * K + (pc + kc) * GEMM_NR, pfDepth = imin(GEMM_KC, K - pc - kc);
            else if (jc + GEMM_NC < n1) pfPanel = Bpre + (jc + GEMM_NC - preCol0) * K, pfDepth = imin(GEMM_KC, K);
            else if (pfAfter) pfPanel = pfAfter, pfDepth = imin(GEMM_KC, K);
          }
          const char* pfNext = reinterpret_cast<const char*>(pfPanel);
          const char* pfEnd = pfNext + pfDepth * GEMM_NR * sizeof(float);
          for (int64_t ir = 0; ir < mc; ir += GEMM_MR) {
            int mr = (int)imin(GEMM_MR, mc - ir);
            float* Ct = C + (ic + ir) * g.ldc + jc + jr;
            const char* pf = pfNext && pfNext < pfEnd ? pfNext : nullptr;
            if (pf) pfNext += kc / 2 * 64;
            if (directA) microTile(kc, A + (ic + ir) * g.lda + pc, g.lda, 1, Bpanel, ldb, Ct, g.ldc, mr, nr, e, pf);
            else microTile(kc, Ap + ir * kc, 1, GEMM_MR, Bpanel, ldb, Ct, g.ldc, mr, nr, e, pf);
          }
        }
      }
    }
  }
}

// ---- few rows (M ≤ 4, e.g. one decoding step): stream B once, no packing ----
// C[i, n0:n1] for all i < M: with B not transposed each k adds A(i,k)·B[k, cols] to vector accumulators; with B
// transposed each C element is a dot product of contiguous rows.
constexpr int64_t SMALL_M = 4;

AF_INLINE void storeRowVec(const GemmArgs& g, float* c, vf x, int64_t j, int64_t cnt) {
  alignas(64) float buf[VW];
  if (cnt < VW) {
    store(buf, x);
    for (int64_t l = cnt; l < VW; l++) buf[l] = 0.0f;
    x = load(buf);
  }
  x *= g.alpha;
  if (g.beta != 0.0f) {
    if (cnt == VW) x += g.beta * load(c);
    else {
      for (int64_t l = 0; l < VW; l++) buf[l] = l < cnt ? c[l] : 0.0f;
      x += g.beta * load(buf);
    }
  }
  if (g.bias) {
    if (cnt == VW) x += load(g.bias + j);
    else {
      for (int64_t l = 0; l < VW; l++) buf[l] = l < cnt ? g.bias[j + l] : 0.0f;
      x += load(buf);
    }
  }
  if (g.act != ACT_NONE) x = applyAct(x, g.act);
  if (cnt == VW) store(c, x);
  else {
    store(buf, x);
    for (int64_t l = 0; l < cnt; l++) c[l] = buf[l];
  }
}

void gemmSmallM(const GemmArgs& g, int64_t bi, int64_t n0, int64_t n1) {
  const float* A = g.A + bi * g.strideA;
  const float* B = g.B + bi * g.strideB;
  float* C = g.C + bi * g.strideC;
  const int64_t M = g.M, K = g.K;
  auto a = [&](int64_t i, int64_t k) { return g.transA ? A[k * g.lda + i] : A[i * g.lda + k]; };
  if (!g.transB) {
    for (int64_t j0 = n0; j0 < n1; j0 += 4 * VW) {
      const int64_t cnt = imin(4 * VW, n1 - j0), nvec = ceilDiv(cnt, VW);
      vf acc[SMALL_M][4];
      for (int64_t i = 0; i < SMALL_M; i++)
        for (int v = 0; v < 4; v++) acc[i][v] = splat(0.0f);
      alignas(64) float tail[VW];
      for (int64_t k = 0; k < K; k++) {
        const float* brow = B + k * g.ldb + j0;
        vf b[4];
        for (int64_t v = 0; v < nvec; v++) {
          if ((v + 1) * VW <= cnt) b[v] = load(brow + v * VW);
          else {
            for (int64_t l = 0; l < VW; l++) tail[l] = v * VW + l < cnt ? brow[v * VW + l] : 0.0f;
            b[v] = load(tail);
          }
        }
        for (int64_t i = 0; i < M; i++) {
          vf av = splat(a(i, k));
          for (int64_t v = 0; v < nvec; v++) acc[i][v] += av * b[v];
        }
      }
      for (int64_t i = 0; i < M; i++)
        for (int64_t v = 0; v < nvec; v++)
          storeRowVec(g, C + i * g.ldc + j0 + v * VW, acc[i][v], j0 + v * VW, imin(VW, cnt - v * VW));
    }
    return;
  }
  const int64_t Kv = K / VW * VW;
  for (int64_t i = 0; i < M; i++) {
    const float* ai = A + i * g.lda;
    if (g.transA) {  // gather the row of op(A) once
      float* row = threadScratch(2, (size_t)K);
      for (int64_t k = 0; k < K; k++) row[k] = a(i, k);
      ai = row;
    }
    for (int64_t j0 = n0; j0 < n1; j0 += VW) {
      const int64_t cnt = imin(VW, n1 - j0);
      alignas(64) float dots[VW] = {};
      for (int64_t l = 0; l < cnt; l++) {
        const float* brow = B + (j0 + l) * g.ldb;
        vf acc = splat(0.0f);
        float s = 0.0f;
        for (int64_t k = 0; k < Kv; k += VW) acc += load(ai + k) * load(brow + k);
        for (int64_t k = Kv; k < K; k++) s += ai[k] * brow[k];
        dots[l] = hsum(acc) + s;
      }
      storeRowVec(g, C + i * g.ldc + j0, load(dots), j0, cnt);
    }
  }
}

struct SmallMPlan {
  const GemmArgs* g;
  int64_t pieces, colsPer;
};

void gemmSmallMTask(void* ctx, int64_t t, int) {
  const SmallMPlan& p = *static_cast<const SmallMPlan*>(ctx);
  int64_t bi = t / p.pieces, n0 = t % p.pieces * p.colsPer;
  gemmSmallM(*p.g, bi, n0, imin(p.g->N, n0 + p.colsPer));
}

// ---- parallel driver ----
// Few rows (M ≤ 4): column blocks of gemmSmallM. Many independent products (batch ≥ 2·threads): one task per
// product. Otherwise B is packed once into shared full-depth panels (in parallel, per column super-block so the
// buffer stays ≤ 16 MB) — or read in place when M ≤ GEMM_DIRECT_MAX_M and B is not transposed — and tasks over
// blocks of rows (and, when rows alone give too few tasks, of columns) each pack only their own A rows: no operand
// is packed twice unless it has to be, and ~4 dynamic tasks per thread keep both cores busy.
constexpr int64_t GEMM_SHARED_FLOATS = int64_t(4) << 20;
// Measured (2 threads, N = 768…3072, K = 768): reading B in place wins up to M = 512 (+38% at M = 128), packing
// wins from M = 768 on.
constexpr int64_t GEMM_DIRECT_MAX_M = 512;

struct GemmShared {
  const GemmArgs* g;
  float* Bp;              // nB entries × panels × (K × NR)
  int64_t nB, panels, col0, cols;
  int64_t rowsPer, mPieces, colsPer, nPieces;
};

void gemmEntryTask(void* ctx, int64_t t, int) {
  const GemmArgs& g = *static_cast<const GemmArgs*>(ctx);
  gemmRange(g, t, 0, g.M, 0, g.N, B_PACK, nullptr, 0);
}

void gemmPackTask(void* ctx, int64_t t, int) {
  const GemmShared& s = *static_cast<const GemmShared*>(ctx);
  const GemmArgs& g = *s.g;
  int64_t e = t / s.panels, p = t % s.panels;
  int64_t j0 = s.col0 + p * GEMM_NR;
  packB(g.B + e * g.strideB, g.transB, g.ldb, 0, g.K, j0, imin(GEMM_NR, s.col0 + s.cols - j0),
        s.Bp + (e * s.panels + p) * g.K * GEMM_NR);
}

void gemmBlockTask(void* ctx, int64_t t, int) {
  const GemmShared& s = *static_cast<const GemmShared*>(ctx);
  const GemmArgs& g = *s.g;
  int64_t np = t % s.nPieces, mp = t / s.nPieces % s.mPieces, bi = t / (s.nPieces * s.mPieces);
  int64_t m0 = mp * s.rowsPer, m1 = imin(g.M, m0 + s.rowsPer);
  int64_t n0 = s.col0 + np * s.colsPer, n1 = imin(s.col0 + s.cols, n0 + s.colsPer);
  if (m0 >= m1 || n0 >= n1) return;
  if (!s.Bp) {
    gemmRange(g, bi, m0, m1, n0, n1, B_DIRECT, nullptr, 0);
    return;
  }
  const float* Bpre = s.Bp + (s.nB == 1 ? 0 : bi) * s.panels * g.K * GEMM_NR;
  // Tasks are handed out in order to whichever thread is free, so with equal tasks this thread's next one is
  // usually t + threads: its first B panel is warmed into this core's L2 during our last panel.
  const float* pfAfter = nullptr;
  const int64_t tn = t + numThreads();
  if (AF_GEMM_PREFETCH && tn < g.batch * s.mPieces * s.nPieces) {
    const int64_t npn = tn % s.nPieces, bin = tn / (s.nPieces * s.mPieces);
    const int64_t n0n = s.col0 + npn * s.colsPer;
    if (n0n < s.col0 + s.cols) pfAfter = s.Bp + (s.nB == 1 ? 0 : bin) * s.panels * g.K * GEMM_NR + (n0n - s.col0) * g.K;
  }
  gemmRange(g, bi, m0, m1, n0, n1, B_PREPACKED, Bpre, s.col0, pfAfter);
}

// ---- few outputs, long depth (weight gradients dW = dYᵀ·X of small layers: M·N small, K = tokens) ----
// Row/column blocks give too few tasks here, so the depth is cut into fixed blocks computed as independent products
// into private partial C's, summed in block order, then alpha/beta/bias/act. The blocks depend only on K, so the
// result is the same whatever the thread count (one thread runs the same blocks in turn).
constexpr int64_t KSPLIT_MAX_MN = 256 * 256;
constexpr int64_t KSPLIT_MIN_K = 2048;

bool kSplitShape(const GemmArgs& g) {
  return g.batch == 1 && g.M > SMALL_M && g.M * g.N <= KSPLIT_MAX_MN && g.K >= KSPLIT_MIN_K && g.K >= 8 * imax(g.M, g.N);
}

struct KSplit {
  const GemmArgs* g;
  float* partial;  // pieces × (M × N)
  int64_t kPer, pieces;
};

void kSplitTask(void* ctx, int64_t t, int) {
  const KSplit& s = *static_cast<const KSplit*>(ctx);
  const GemmArgs& g = *s.g;
  const int64_t k0 = t * s.kPer;
  GemmArgs p = g;
  p.K = imin(s.kPer, g.K - k0);
  p.A = g.transA ? g.A + k0 * g.lda : g.A + k0;  // op(A) columns k0…: rows of a stored Aᵀ, columns of A
  p.B = g.transB ? g.B + k0 : g.B + k0 * g.ldb;
  p.C = s.partial + t * g.M * g.N;
  p.ldc = g.N;
  p.alpha = 1.0f;
  p.beta = 0.0f;
  p.bias = nullptr;
  p.act = ACT_NONE;
  gemmRange(p, 0, 0, g.M, 0, g.N, B_PACK, nullptr, 0);
}

// false: no memory for the partial products (the caller takes the regular path)
bool gemmKSplit(const GemmArgs& g) {
  KSplit s{&g, nullptr, 0, 0};
  s.kPer = imax(512, roundUp(ceilDiv(g.K, 8), 64));
  s.pieces = ceilDiv(g.K, s.kPer);
  s.partial = sharedScratch((size_t)(s.pieces * g.M * g.N));
  if (!s.partial) return false;
  if (numThreads() > 1) parallelFor(s.pieces, kSplitTask, &s);
  else for (int64_t t = 0; t < s.pieces; t++) kSplitTask(&s, t, 0);
  const int64_t MN = g.M * g.N;
  for (int64_t i = 0; i < g.M; i++)
    for (int64_t j = 0; j < g.N; j += VW) {
      const int64_t cnt = imin(VW, g.N - j);
      alignas(64) float buf[VW];
      vf acc = splat(0.0f);
      for (int64_t t = 0; t < s.pieces; t++) {
        const float* src = s.partial + t * MN + i * g.N + j;
        if (cnt == VW) acc += load(src);
        else {
          for (int64_t l = 0; l < VW; l++) buf[l] = l < cnt ? src[l] : 0.0f;
          acc += load(buf);
        }
      }
      storeRowVec(g, g.C + i * g.ldc + j, acc, j, cnt);
    }
  return true;
}

// Unique id of each gemm() call (0 is never used): see PackedATag.
uint64_t nextGemmCallId() {
  static uint64_t counter = 0;
  return __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
}

// Rows up to which the parallel driver splits a product over column blocks only, every task covering all M rows
// (one A block: each thread packs it once and reuses it for all its tasks), so that small-M products — a linear
// layer over 128 tokens — give both threads the same big micro-tile loop with no ragged row blocks.
constexpr int64_t GEMM_COLS_ONLY_MAX_M = GEMM_MC;

// Row blocks of ≤ MC rows (≥ 48 unless M is smaller), about 4 tasks per thread; or, for few rows, one row block.
void planRows(GemmShared& s, const GemmArgs& g, int64_t T) {
  s.rowsPer = g.M <= GEMM_COLS_ONLY_MAX_M ? g.M : imin(GEMM_MC, imax(48, roundUp(ceilDiv(g.M, 4 * T), GEMM_MR)));
  s.mPieces = ceilDiv(g.M, s.rowsPer);
}

// Column blocks of the super-block s.col0 … + s.cols (s.panels set): about 4 tasks per thread when rows are split
// too; with whole-M tasks (A packed once per thread, so extra tasks cost only a counter increment) about 6 per
// thread, for an even finish.
void planCols(GemmShared& s, const GemmArgs& g, int64_t T) {
  const int64_t want = g.M <= GEMM_COLS_ONLY_MAX_M ? AF_GEMM_COLS_TASKS * T : 4 * T;
  s.nPieces = imin(s.panels, imax(1, ceilDiv(want, g.batch * s.mPieces)));
  s.colsPer = ceilDiv(s.panels, s.nPieces) * GEMM_NR;
  s.nPieces = ceilDiv(s.cols, s.colsPer);
}

void gemmImpl(const GemmArgs& g) {
  if (g.batch <= 0 || g.M <= 0 || g.N <= 0) return;
  const bool packedB = g.Bpacked != nullptr;
  if (!packedB && g.K > 0 && g.alpha != 0.0f && kSplitShape(g) && gemmKSplit(g)) return;
  const int64_t T = numThreads();
  double flops = 2.0 * (double)g.M * (double)g.N * (double)g.K * (double)g.batch;
  if (g.K == 0 || g.alpha == 0.0f) {
    for (int64_t bi = 0; bi < g.batch; bi++) gemmRange(g, bi, 0, g.M, 0, g.N, B_PACK, nullptr, 0);
    return;
  }
  if (T == 1 || flops < 2e6) {
    for (int64_t bi = 0; bi < g.batch; bi++)
      if (packedB) gemmRange(g, bi, 0, g.M, 0, g.N, B_PREPACKED, g.Bpacked, 0);
      else if (g.M <= SMALL_M) gemmSmallM(g, bi, 0, g.N);
      else gemmRange(g, bi, 0, g.M, 0, g.N, B_PACK, nullptr, 0);
    return;
  }
  if (!packedB && g.M <= SMALL_M) {
    SmallMPlan p{&g, 1, g.N};
    p.colsPer = imax(4 * VW, roundUp(ceilDiv(g.N, 4 * T), 4 * VW));
    p.pieces = ceilDiv(g.N, p.colsPer);
    parallelFor(g.batch * p.pieces, gemmSmallMTask, &p);
    return;
  }
  if (!packedB && g.batch >= 2 * T) {
    parallelFor(g.batch, gemmEntryTask, const_cast<GemmArgs*>(&g));
    return;
  }
  GemmShared s{};
  s.g = &g;
  s.nB = g.strideB == 0 ? 1 : g.batch;
  // Few rows of A reuse each B element too few times to pay for packing it: read B in place instead.
  const bool direct = !packedB && !g.transB && g.M <= GEMM_DIRECT_MAX_M;
  int64_t superCols = direct || packedB ? roundUp(g.N, GEMM_NR)
                                        : imax(GEMM_NR, GEMM_SHARED_FLOATS / (g.K * s.nB) / GEMM_NR * GEMM_NR);
  if (packedB) s.Bp = const_cast<float*>(g.Bpacked);
  else if (!direct) {
    s.Bp = sharedScratch((size_t)(s.nB * g.K * imin(superCols, roundUp(g.N, GEMM_NR))));
    if (!s.Bp) {  // no memory for the shared panels: one task per product, each packing for itself
      parallelFor(g.batch, gemmEntryTask, const_cast<GemmArgs*>(&g));
      return;
    }
  }
  planRows(s, g, T);
  for (s.col0 = 0; s.col0 < g.N; s.col0 += superCols) {
    s.cols = imin(superCols, g.N - s.col0);
    s.panels = ceilDiv(s.cols, GEMM_NR);
    if (!direct && !packedB) parallelFor(s.nB * s.panels, gemmPackTask, &s);
    planCols(s, g, T);
    parallelFor(g.batch * s.mPieces * s.nPieces, gemmBlockTask, &s);
  }
}

void gemm(const GemmArgs& args) {
  GemmArgs g = args;
  g.callId = nextGemmCallId();
  gemmImpl(g);
}

// ---- several products in one parallel region ----
// E.g. the query, key and value projections of one input: each product with a pre-packed B is planned as gemm()
// plans it and all their tasks run as one task list, so the threads finish the group together (one wait instead of
// one per product) and a thread that is done with one product's columns goes on with the next product's. Each
// product computes exactly what gemm() would (same blocks, same order of the depth sums). Products without a
// packed B, batched ones and tiny ones run through gemm() first, one after another.
struct GemmGroupPlan {
  GemmArgs g[GEMM_GROUP_MAX];
  GemmShared s[GEMM_GROUP_MAX];
  int64_t start[GEMM_GROUP_MAX + 1];
  int n;
};

void gemmGroupTask(void* ctx, int64_t t, int tid) {
  const GemmGroupPlan& p = *static_cast<const GemmGroupPlan*>(ctx);
  int i = 0;
  while (t >= p.start[i + 1]) i++;
  gemmBlockTask(const_cast<GemmShared*>(&p.s[i]), t - p.start[i], tid);
}

void gemmGroup(const GemmArgs* gs, int n) {
  const int64_t T = numThreads();
  GemmGroupPlan p;
  p.n = 0;
  p.start[0] = 0;
  for (int i = 0; i < n && i < GEMM_GROUP_MAX; i++) {
    const GemmArgs& a = gs[i];
    if (a.batch <= 0 || a.M <= 0 || a.N <= 0) continue;
    const double flops = 2.0 * (double)a.M * (double)a.N * (double)a.K;
    if (T == 1 || !a.Bpacked || a.batch != 1 || a.K == 0 || a.alpha == 0.0f || flops < 2e6) {
      gemm(a);
      continue;
    }
    GemmArgs& g = p.g[p.n];
    GemmShared& s = p.s[p.n];
    g = a;
    g.callId = nextGemmCallId();
    s = GemmShared{};
    s.g = &g;
    s.nB = 1;
    s.Bp = const_cast<float*>(g.Bpacked);
    s.col0 = 0;
    s.cols = g.N;
    s.panels = ceilDiv(g.N, GEMM_NR);
    planRows(s, g, T);
    planCols(s, g, T);
    p.start[p.n + 1] = p.start[p.n] + s.mPieces * s.nPieces;
    p.n++;
  }
  for (int i = GEMM_GROUP_MAX; i < n; i++) gemm(gs[i]);
  if (p.n) parallelFor(p.start[p.n], gemmGroupTask, &p);
}

// ---- pre-packed B (the packed-weight cache of pack-cache.cc) ----
// Layout: ceil(N/NR) panels, panel p holding columns [p·NR, p·NR+NR) of op(B) for all K depths, k-major (K × NR,
// zero padded past column N) — the full-depth panels gemmPackTask writes, which gemmRange reads as B_PREPACKED.
int64_t packedBFloats(int64_t N, int64_t K) { return ceilDiv(N, GEMM_NR) * GEMM_NR * K; }

// Whether gemm() would read a pre-packed B for these arguments: one B for the whole batch, more than SMALL_M rows
// (a decoding step streams B unpacked), a real product, and not the split-depth path of small weight gradients.
bool gemmUsesPackedB(const GemmArgs& g) {
  if (g.batch < 1 || (g.batch > 1 && g.strideB != 0) || g.M <= SMALL_M || g.N <= 0 || g.K <= 0 || g.alpha == 0.0f)
    return false;
  return !kSplitShape(g);
}

void packBFullTask(void* ctx, int64_t t, int) {
  const GemmShared& s = *static_cast<const GemmShared*>(ctx);
  packB(s.g->B, s.g->transB, s.g->ldb, 0, s.g->K, t * GEMM_NR, imin(GEMM_NR, s.g->N - t * GEMM_NR),
        s.Bp + t * s.g->K * GEMM_NR);
}

void packBFull(const GemmArgs& g, float* dst) {
  GemmShared s{};
  s.g = &g;
  s.Bp = dst;
  const int64_t panels = ceilDiv(g.N, GEMM_NR);
  if (numThreads() > 1 && (double)g.N * (double)g.K >= 65536.0) parallelFor(panels, packBFullTask, &s);
  else for (int64_t t = 0; t < panels; t++) packBFullTask(&s, t, 0);
}
