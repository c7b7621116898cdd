// AVX2 + FMA variant (compiled with -mavx2 -mfma).
#include "af-common.h"
#if defined(__AVX2__) && defined(__FMA__)
#define AF_VW 8
#define AF_NS af_avx2
#define AF_ISA_NAME "avx2"
#include "kernels.inc.h"
const af::KernelTable* af::tableAvx2() { return &af_avx2::kTable; }
#else
const af::KernelTable* af::tableAvx2() { return nullptr; }
#endif
