// AVX-512 variant (compiled with -mavx512f -mavx512bw -mavx512vl -mfma); selected at load time when the CPU has it.
#include "af-common.h"
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__FMA__)
#define AF_VW 16
#define AF_NS af_avx512
#define AF_ISA_NAME "avx512"
#include "kernels.inc.h"
const af::KernelTable* af::tableAvx512() { return &af_avx512::kTable; }
#else
const af::KernelTable* af::tableAvx512() { return nullptr; }
#endif
