// AMX-INT8 kernel of the dynamic-int8 linear (amx.h). Compiled alone with -mavx512f -mavx512bw -mavx512vl -mfma
// -mamx-tile -mamx-int8, called only after amxInt8Available() (amx-detect.cc) said yes.
//
// Tiles (palette 1, all 16 rows × 64 bytes): tmm0–3 the int32 accumulators of a 32 × 32 block (2 × 2 tiles of 16 ×
// 16), tmm4/5 two A tiles (16 rows of xq × 64 k), tmm6/7 two B tiles (64 k × 16 channels: 1 KB of a weight panel, in
// place). Each 64-k step is 4 loads and 4 _tile_dpbusd (16·16·64 u8·s8 products each). Edges: rows are padded to 16
// by the caller (zero rows; a block of ≤ 16 real rows uses one A tile), a lone last panel uses one B tile, and the k
// tail uses the zero-padded tail tiles (zero xq columns past K times zero weights add nothing). The epilogue reads
// each accumulator tile back (one zmm per row of 16 channels) and writes y with masked stores.
#include "af-common.h"
#include "amx.h"

#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace af {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette, startRow, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

TileConfig makeConfig() {
  TileConfig c{};
  c.palette = 1;
  for (int t = 0; t < 8; t++) { c.colsb[t] = 64; c.rows[t] = 16; }
  return c;
}
const TileConfig kConfig = makeConfig();

struct Job {
  const AmxQGemmArgs* a;
  int64_t steps;        // full 64-k steps
  int64_t pairs;        // column blocks of 2 panels (32 channels)
  int64_t rowBlocks;    // blocks of 32 rows
  int64_t blocksPerTask;
};

// Dequantize the 16 × 16 accumulator tile `t` of rows [r0, r0 + rows), channels [n0, n0 + 16) ∩ [0, N).
inline void epilogue(const AmxQGemmArgs& a, const int32_t* t, int64_t r0, int rows, int64_t n0) {
  const int64_t cols = a.N - n0 < 16 ? a.N - n0 : 16;
  const __mmask16 m = (__mmask16)((1u << cols) - 1u);
  const __m512i cs = _mm512_maskz_loadu_epi32(m, a.colSum + n0);
  const __m512 ws = _mm512_maskz_loadu_ps(m, a.wScale + n0);
  const __m512 b = a.bias ? _mm512_maskz_loadu_ps(m, a.bias + n0) : _mm512_setzero_ps();
  for (int i = 0; i < rows; i++) {
    const int64_t r = r0 + i;
    const __m512i acc = _mm512_load_si512((const void*)(t + i * 16));
    // acc − zp·colSum wraps like the exact integer (|Σ (xq − zp)·w| ≤ K·127·128 fits int32); then the reference's
    // float32 steps, unfused: f32(f32(f32(·) · f32(sx·s)) + b)
    const __m512i d = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(a.zp[r]), cs));
    const __m512 s = _mm512_mul_ps(_mm512_set1_ps(a.sx[r]), ws);
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(d), s);
    if (a.bias) y = _mm512_add_ps(y, b);
    _mm512_mask_storeu_ps(a.y + r * a.ldy + n0, m, y);
    if (a.act) a.act(a.actOp, a.y + r * a.ldy + n0, a.y + r * a.ldy + n0, cols);
    if (a.acc) _mm512_mask_storeu_epi32(a.acc + r * a.N + n0, m, acc);
  }
}

// One block: rows [r0, r0 + 16·MA) × panels [p0, p0 + NB).
// Prefetch B tiles this many 64-k steps ahead when the block is the first to read its panels (they come from
// memory: a model's weights do not stay in cache between layers); later row blocks find them in L1/L2.
enum { PF_AHEAD = 2 };
inline void prefetchTile(const int8_t* p) {
  for (int i = 0; i < 16; i++) _mm_prefetch((const char*)p + i * 64, _MM_HINT_T0);
}

template <int MA, int NB>
void block(const Job& j, int64_t r0, int64_t p0, int32_t* buf, bool cold) {
  const AmxQGemmArgs& a = *j.a;
  _tile_zero(0);
  if (NB == 2) _tile_zero(1);
  if (MA == 2) _tile_zero(2);
  if (MA == 2 && NB == 2) _tile_zero(3);
  const uint8_t* A0 = a.xq + r0 * a.ldx;
  const uint8_t* A1 = A0 + 16 * a.ldx;
  const int8_t* B0 = a.w + p0 * 16 * a.Kp;
  const int8_t* B1 = B0 + 16 * a.Kp;
  if (cold) {
    for (int64_t s = 0; s < PF_AHEAD && s < j.steps; s++) { prefetchTile(B0 + s * 1024); if (NB == 2) prefetchTile(B1 + s * 1024); }
  }
  for (int64_t s = 0; s < j.steps; s++) {
    if (cold && s + PF_AHEAD < j.steps) {
      prefetchTile(B0 + (s + PF_AHEAD) * 1024);
      if (NB == 2) prefetchTile(B1 + (s + PF_AHEAD) * 1024);
    }
    _tile_loadd(6, B0 + s * 1024, 64);
    _tile_loadd(4, A0 + s * 64, a.ldx);
    if (NB == 2) _tile_loadd(7, B1 + s * 1024, 64);
    _tile_dpbusd(0, 4, 6);
    if (NB == 2) _tile_dpbusd(1, 4, 7);
    if (MA == 2) {
      _tile_loadd(5, A1 + s * 64, a.ldx);
      _tile_dpbusd(2, 5, 6);
      if (NB == 2) _tile_dpbusd(3, 5, 7);
    }
  }
  if (a.wTail) {
    const int64_t s = j.steps;
    _tile_loadd(6, a.wTail + p0 * 1024, 64);
    _tile_loadd(4, A0 + s * 64, a.ldx);
    if (NB == 2) _tile_loadd(7, a.wTail + (p0 + 1) * 1024, 64);
    _tile_dpbusd(0, 4, 6);
    if (NB == 2) _tile_dpbusd(1, 4, 7);
    if (MA == 2) {
      _tile_loadd(5, A1 + s * 64, a.ldx);
      _tile_dpbusd(2, 5, 6);
      if (NB == 2) _tile_dpbusd(3, 5, 7);
    }
  }
  const int64_t left = a.M - r0;
  const int rows0 = left < 16 ? (int)left : 16;
  const int rows1 = MA == 2 ? (left - 16 < 16 ? (int)(left - 16) : 16) : 0;
  _tile_stored(0, buf, 64);
  if (NB == 2) _tile_stored(1, buf + 256, 64);
  if (MA == 2) _tile_stored(2, buf + 512, 64);
  if (MA == 2 && NB == 2) _tile_stored(3, buf + 768, 64);
  epilogue(a, buf, r0, rows0, p0 * 16);
  if (NB == 2) epilogue(a, buf + 256, r0, rows0, p0 * 16 + 16);
  if (MA == 2) {
    epilogue(a, buf + 512, r0 + 16, rows1, p0 * 16);
    if (NB == 2) epilogue(a, buf + 768, r0 + 16, rows1, p0 * 16 + 16);
  }
}

// Task = one column pair × a chunk of row blocks (consecutive tasks share rows of xq; a task's two panels stay in
// L1/L2 across its row blocks).
void task(void* ctx, int64_t t, int) {
  const Job& j = *static_cast<const Job*>(ctx);
  const AmxQGemmArgs& a = *j.a;
  const int64_t pair = t % j.pairs, chunk = t / j.pairs;
  const int64_t panels = (a.N + 15) / 16;
  const int64_t p0 = pair * 2;
  const bool two = p0 + 1 < panels;
  const int64_t rb0 = chunk * j.blocksPerTask;
  const int64_t rb1 = rb0 + j.blocksPerTask < j.rowBlocks ? rb0 + j.blocksPerTask : j.rowBlocks;
  alignas(64) int32_t buf[4 * 256];
  _tile_loadconfig(&kConfig);  // per task: tile state is per thread, and another library may have configured it
  for (int64_t rb = rb0; rb < rb1; rb++) {
    const int64_t r0 = rb * 32;
    const bool twoRows = a.M - r0 > 16;
    const bool cold = rb == rb0;
    if (twoRows) two ? block<2, 2>(j, r0, p0, buf, cold) : block<2, 1>(j, r0, p0, buf, cold);
    else two ? block<1, 2>(j, r0, p0, buf, cold) : block<1, 1>(j, r0, p0, buf, cold);
  }
  _tile_release();  // back to the init state: no 8 KB of tile data to save on every context switch
}

}  // namespace

void amxQGemm(const AmxQGemmArgs& a) {
  Job j{&a, a.Kp / 64, ((a.N + 15) / 16 + 1) / 2, (a.M + 31) / 32, 1};
  // Enough tasks to keep every thread busy (4 per thread where the column pairs alone are too few), few enough
  // that a task reuses its weight panels over several row blocks.
  const int64_t want = 4 * (int64_t)numThreads();
  int64_t chunks = j.pairs >= want ? 1 : (want + j.pairs - 1) / j.pairs;
  if (chunks > j.rowBlocks) chunks = j.rowBlocks;
  j.blocksPerTask = (j.rowBlocks + chunks - 1) / chunks;
  chunks = (j.rowBlocks + j.blocksPerTask - 1) / j.blocksPerTask;
  const int64_t tasks = j.pairs * chunks;
  // Small products are not worth waking the pool for.
  if (a.M * a.N * a.Kp < 262144) {
    for (int64_t t = 0; t < tasks; t++) task(&j, t, 0);
  } else {
    parallelFor(tasks, task, &j);
  }
}

}  // namespace af
#else
namespace af {
void amxQGemm(const AmxQGemmArgs&) { __builtin_trap(); }  // never called: amxInt8Available() is false here
}  // namespace af
#endif
