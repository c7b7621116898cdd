// Register-blocked micro-kernels shared by the packed GEMM and the attention tiles.
//   acc[r][v] = Σ_k A(r, k) · B(k, v·VW … v·VW+VW−1)
// A is read by broadcast through two strides (A(r,k) = A[r·sai + k·sak]), so it can be a packed panel, a row-major
// matrix or a transposed one without copying; B rows are contiguous vectors (B(k, ·) = B + k·ldb).
// R×NV accumulators stay in registers: AVX-512 6×4 (24 zmm), NEON 6×4 (24 of 32 q regs), AVX2/SSE 6×2 (12 regs).

// pf (optional): every second depth step prefetches the next 64-byte line from pf into L2 (the GEMM warms the
// B panel its next tiles will read while this one computes; see gemmRange).
// BPF > 0: each depth step also prefetches B's row BPF steps ahead into L1 (one prefetcht0 per 64-byte line).
template <int R, int NV, int BPF = 0>
AF_INLINE void mkAcc(vf (&acc)[R][NV], int64_t K, const float* __restrict A, int64_t sai, int64_t sak,
                     const float* __restrict B, int64_t ldb, const char* pf = nullptr) {
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[r][v] = splat(0.0f);
  for (int64_t k = 0; k < K; k++) {
    if (pf && !(k & 1)) {
      __builtin_prefetch(pf, 0, 2);
      pf += 64;
    }
    if (BPF > 0)
#pragma GCC unroll 4
      for (int l = 0; l < NV * VW * 4; l += 64) __builtin_prefetch(reinterpret_cast<const char*>(B + BPF * ldb) + l, 0, 3);
    vf b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) b[v] = load(B + v * VW);
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      vf a = splat(A[r * sai]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[r][v] += a * b[v];
    }
    A += sak;
    B += ldb;
  }
}

// C (R × NV·VW, row stride ldc) = acc, or += acc when accumulate.
template <int R, int NV>
void mkBlock(int64_t K, const float* A, int64_t sai, int64_t sak, const float* B, int64_t ldb, float* C,
             int64_t ldc, bool accumulate) {
  vf acc[R][NV];
  mkAcc<R, NV>(acc, K, A, sai, sak, B, ldb);
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      float* c = C + r * ldc + v * VW;
      store(c, accumulate ? load(c) + acc[r][v] : acc[r][v]);
    }
}

// C = acc (R × ATT_NV·VW) and colmax[v] = max(colmax[v], max over the R rows): the attention score tile with its
// column maxima taken while the values are still in registers.
template <int R>
void mkBlockMax(int64_t K, const float* A, int64_t sai, int64_t sak, const float* B, int64_t ldb, float* C,
                int64_t ldc, vf* colmax);

#ifndef AF_ATT_R
#define AF_ATT_R 6
#endif
constexpr int ATT_R = AF_ATT_R;
#ifndef AF_ATT_NV
#define AF_ATT_NV (AF_VW == 16 ? 4 : 2)  // NEON: 4 (32 registers; isa-neon.cc)
#endif
constexpr int ATT_NV = AF_ATT_NV;

typedef void (*MkBlockFn)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, bool);

// kMkTable[r−1][nv−1] = mkBlock<r, nv> for r ≤ ATT_R, nv ≤ ATT_NV (other entries are never called).
#define AF_MK_ROW(R)                                                                                  \
  {mkBlock<(R <= ATT_R ? R : 1), 1>, mkBlock<(R <= ATT_R ? R : 1), (ATT_NV >= 2 ? 2 : 1)>,           \
   mkBlock<(R <= ATT_R ? R : 1), (ATT_NV >= 3 ? 3 : 1)>, mkBlock<(R <= ATT_R ? R : 1), (ATT_NV >= 4 ? 4 : 1)>}
const MkBlockFn kMkTable[8][4] = {AF_MK_ROW(1), AF_MK_ROW(2), AF_MK_ROW(3), AF_MK_ROW(4),
                                  AF_MK_ROW(5), AF_MK_ROW(6), AF_MK_ROW(7), AF_MK_ROW(8)};
#undef AF_MK_ROW

template <int R>
void mkBlockMax(int64_t K, const float* A, int64_t sai, int64_t sak, const float* B, int64_t ldb, float* C,
                int64_t ldc, vf* colmax) {
  vf acc[R][ATT_NV];
  mkAcc<R, ATT_NV>(acc, K, A, sai, sak, B, ldb);
#pragma GCC unroll 4
  for (int v = 0; v < ATT_NV; v++) {
    vf m = colmax[v];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      store(C + r * ldc + v * VW, acc[r][v]);
      m = vmax(m, acc[r][v]);
    }
    colmax[v] = m;
  }
}

typedef void (*MkMaxFn)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, vf*);
#define AF_MKM(R) mkBlockMax<(R <= ATT_R ? R : 1)>
const MkMaxFn kMkMaxTable[8] = {AF_MKM(1), AF_MKM(2), AF_MKM(3), AF_MKM(4), AF_MKM(5), AF_MKM(6), AF_MKM(7), AF_MKM(8)};
#undef AF_MKM

// C (M × ATT_NV·VW) = A · B with running column maxima (see mkBlockMax).
void blockGemmMax(int64_t M, int64_t K, const float* A, int64_t sai, int64_t sak, const float* B, int64_t ldb,
                  float* C, int64_t ldc, vf* colmax) {
  for (int64_t i0 = 0; i0 < M; i0 += ATT_R)
    kMkMaxTable[imin(ATT_R, M - i0) - 1](K, A + i0 * sai, sai, sak, B, ldb, C + i0 * ldc, ldc, colmax);
}

// C (M × N) = A (M × K) · B (K × N), or C += …; N must be a multiple of VW (callers pad their scratch tiles).
// Used for the small in-cache products inside the attention kernels.
void blockGemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t sai, int64_t sak, const float* B,
               int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  for (int64_t i0 = 0; i0 < M; i0 += ATT_R) {
    int r = (int)imin(ATT_R, M - i0);
    for (int64_t j0 = 0; j0 < N; j0 += ATT_NV * VW) {
      int nv = (int)imin(ATT_NV, (N - j0) / VW);
      kMkTable[r - 1][nv - 1](K, A + i0 * sai, sai, sak, B + j0, ldb, C + i0 * ldc + j0, ldc, accumulate);
    }
  }
}
