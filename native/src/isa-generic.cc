// Portable variant (baseline flags: SSE2 on x86-64, NEON on arm64): always available.
#include "af-common.h"
#define AF_VW 4
#define AF_NS af_generic
#define AF_ISA_NAME "generic"
#include "kernels.inc.h"
const af::KernelTable* af::tableGeneric() { return &af_generic::kTable; }
