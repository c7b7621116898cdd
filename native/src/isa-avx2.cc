// AVX2 + FMA variant (compiled with -mavx2 -mfma).
#include "af-common.h"
#ifndef AF_AVX2_MC
#define AF_AVX2_MC 192
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define AF_VW 8
#define AF_NS af_avx2
#define AF_ISA_NAME "avx2"
// GEMM blocking for 16 ymm registers: the 6×16 micro-tile (12 accumulators + 2 B vectors + 1 broadcast), KC 256
// (A panel 6 KB + B panel 16 KB in L1) and MC 192 rather than the baseline's 120, so a linear layer over up to 192
// rows (T = 128 sequences, the bench's MHA) takes the "every task covers all rows" path: B is never packed twice
// and A rows are broadcast in place.
#define AF_GEMM_MR 6
#define AF_GEMM_NV 2
#define AF_GEMM_KC 256
#define AF_GEMM_MC AF_AVX2_MC
#define AF_GEMM_NC 2048
#include "kernels.inc.h"
const af::KernelTable* af::tableAvx2() { return &af_avx2::kTable; }
#else
const af::KernelTable* af::tableAvx2() { return nullptr; }
#endif
