// AMX-INT8 integer GEMM of the dynamic-int8 linear (amx-int8.cc, compiled alone with -mamx-tile -mamx-int8 and the
// AVX-512 flags), and which int8 kernel the AVX-512 table runs (a process-wide choice: auto, amx, vnni or bw).
// Plain declarations only (see af-common.h on why).
#pragma once
#include <cstdint>

namespace af {

// Whether this process may run AMX-INT8 tiles: CPUID.(7,0):EDX bits 24 (AMX-TILE) and 25 (AMX-INT8), XCR0 bits 17/18
// (the OS manages XTILECFG/XTILEDATA), and on Linux the permission arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)
// (kernels ≥ 5.16 require it; refused → false, and the VNNI kernel runs). Checked once, thread-safe.
bool amxInt8Available();
// Why AMX is not used ("" when it is available): "no AMX-INT8", "OS does not enable tiles", "arch_prctl refused", ...
const char* amxInt8Why();

// The integer GEMM + epilogue on AMX tiles (threads over column pairs × row chunks; each task loads the tile
// configuration on its own thread and releases the tiles when done):
//   acc[r, n] = Σ_k xq[r, k] · W[n, k]  (u8 [0, 127] × s8, _tile_dpbusd: the very same int32 as the other kernels)
//   y[r, n]   = f32(acc − zp_r·colSum_n) · f32(sx_r · s_n) + bias_n
// xq: M rows padded with zero rows up to a multiple of 16, row stride ldx = K rounded up to 64 (zero columns).
// w: the packed weights of src/backend/ref/qlinear.ts (panels of 16 channels; per group of 4 k, 16 channels × 4
// bytes), which is exactly AMX's tile-B layout ("VNNI-4": one 64-byte tile row per 4 k): a B tile is 1 KB of a
// panel, read in place with stride 64. wTail: when Kp % 64 ≠ 0, one zero-padded 1 KB tile per panel holding the
// panel's last Kp % 64 k (so no tile load reads past a panel), else null.
struct AmxQGemmArgs {
  const uint8_t* xq; int64_t ldx;
  const float* sx; const int32_t* zp;
  const int8_t* w; int64_t Kp;
  const int8_t* wTail;
  int64_t M, N;
  const int32_t* colSum; const float* wScale; const float* bias;
  float* y; int64_t ldy;
  int32_t* acc;  // raw accumulators (M, N) or null
  // activation of y, applied per 16-channel row piece by the calling table's unary kernel (null: none)
  void (*act)(int op, const float* x, float* y, int64_t n); int actOp;
};
void amxQGemm(const AmxQGemmArgs& a);

// The int8 kernel preference for the AVX-512 table: INT8_AUTO (AMX where available, else VNNI, else BW).
// Initial value from ATTNFLOW_INT8 (auto|amx|avx512-vnni|avx512bw) or ATTNFLOW_VNNI=0 (= avx512bw).
enum Int8Pref : int { INT8_AUTO = 0, INT8_AMX = 1, INT8_VNNI = 2, INT8_BW = 3 };
int int8Pref();
// Set it by name ("auto", "amx", "avx512-vnni", "avx512bw"); false (and unchanged) for an unknown name or a kernel
// this CPU/OS cannot run.
bool setInt8Pref(const char* name);

}  // namespace af
