// ARM64 NEON variant (AdvSIMD is part of ARMv8-A; compiled with -ffp-contract=fast so every a·b + c is one fmla).
// The same kernel templates as the x86 variants, with NEON-specific pieces in simd.inc.h (AF_NEON: exp2 by
// frintn/fcvtns, across-lane sums, 4×4 register transposes for packing) and tiles sized for the 32 vector
// registers: 6×16 GEMM and attention micro-tiles (24 accumulators + 4 B vectors + broadcasts), where SSE's 16
// registers only fit 6×8. Selected at load on arm64 Linux and macOS; the generic variant remains the fallback.
#include "af-common.h"
#if defined(__aarch64__) && defined(__ARM_NEON)
#define AF_VW 4
#define AF_NEON 1
#define AF_NS af_neon
#define AF_ISA_NAME "neon"
#define AF_GEMM_MR 6
#define AF_GEMM_NV 4    // 6×16 tile: 24 of the 32 q registers accumulate
#define AF_GEMM_KC 256  // A panel 6×256 and B panel 256×16 floats (6 + 16 KB) stay in L1
#define AF_GEMM_MC 120
#define AF_GEMM_NC 2048
#define AF_ATT_NV 4     // attention tiles 6×16 as well (16 query lanes per block, like AVX2)
#include "kernels.inc.h"
const af::KernelTable* af::tableNeon() { return &af_neon::kTable; }
#else
const af::KernelTable* af::tableNeon() { return nullptr; }
#endif
