// The whole kernel set for one ISA. Each isa-*.cc defines AF_VW (floats per vector), AF_NS (its namespace) and
// AF_ISA_NAME, then includes this file; everything lands in an anonymous namespace inside AF_NS, so no symbol
// compiled with one ISA's flags can be linked into another's code paths.
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>  // only always-inline intrinsics: nothing with linkage
#endif
#if defined(AF_NEON)
#include <arm_neon.h>  // likewise
#endif
#include "af-common.h"
#include "amx.h"

namespace AF_NS {
namespace {
using namespace af;
#include "simd.inc.h"
#include "microkernel.inc.h"
#include "gemm.inc.h"
#include "attention-fwd.inc.h"
#include "attention-bwd.inc.h"
#include "attention-weights.inc.h"
#include "rows.inc.h"
#include "elementwise.inc.h"
#include "qlinear.inc.h"

const KernelTable kTable = {AF_ISA_NAME,     gemm,      attnForward,    attnBackward, attnWeights,
                            layerNormForward, layerNormBackward, softmax, softmaxBackward, unary,
                            binary,          reduceSum, adamUpdate, gemmUsesPackedB, packedBFloats,
                            packBFull,       qlinear,   qlinearPath, gemmGroup};
}  // namespace
}  // namespace AF_NS
