// Shared declarations of the attnflow native backend: argument structs, the per-ISA kernel table, the thread pool
// and per-thread scratch. Included by the N-API glue (generic flags) and by every ISA translation unit.
// Nothing here instantiates a template or inline function that could be compiled with ISA-specific flags and then
// picked by the linker for another translation unit (the classic multi-ISA ODR trap): only plain declarations.
#pragma once
#include <cstddef>
#include <cstdint>

namespace af {

enum Act : int { ACT_NONE = 0, ACT_RELU = 1, ACT_GELU_ERF = 2, ACT_GELU_TANH = 3 };

// Elementwise op codes (the numbers are part of the JS API: see native/README.md).
enum UnaryOp : int {
  UN_NEG = 0, UN_ABS = 1, UN_RELU = 2, UN_SQUARE = 3, UN_SQRT = 4, UN_RSQRT = 5, UN_RECIPROCAL = 6, UN_EXP = 7,
  UN_TANH = 8, UN_SIGMOID = 9, UN_ERF = 10, UN_GELU = 11, UN_GELU_GRAD = 12, UN_GELU_TANH = 13, UN_GELU_TANH_GRAD = 14,
  UN_COUNT = 15
};
enum BinaryOp : int {
  BIN_ADD = 0, BIN_SUB = 1, BIN_MUL = 2, BIN_DIV = 3, BIN_MAX = 4, BIN_MIN = 5,  // float32 results
  BIN_EQ = 6, BIN_NE = 7, BIN_LT = 8, BIN_LE = 9, BIN_GT = 10, BIN_GE = 11,        // uint8 (0/1) results
  // activation backward, a = dy, b = pre-activation z (for relu z or its output): float32 results
  BIN_RELU_BWD = 12, BIN_GELU_BWD = 13, BIN_GELU_TANH_BWD = 14,
  BIN_COUNT = 15
};

// How a binary operand is read for element i of a (rows, R) output: a[i], a[0], a[i mod R], a[i div R].
enum BinMode : int { BM_FULL = 0, BM_SCALAR = 1, BM_ROW = 2, BM_COL = 3 };

struct AdamHyper {
  float lr, beta1, beta2, eps, weightDecay;
  float stepSize;  // lr / (1 − β1ᵗ)
  float bc2sqrt;   // √(1 − β2ᵗ)
  bool decoupled, maximize;
};

// C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b] (+ bias[col], then act) for b < batch; row-major.
constexpr int GEMM_GROUP_MAX = 8;  // products per gemmGroup call

struct GemmArgs {
  bool transA, transB;
  int64_t M, N, K;
  float alpha, beta;
  const float* A; int64_t lda, strideA;
  const float* B; int64_t ldb, strideB;
  float* C; int64_t ldc, strideC;
  int64_t batch;
  const float* bias;  // length N or null
  int act;
  // op(B) already packed in full-depth panels (packBFull's layout), or null. Set only with batch == 1 or
  // strideB == 0 and M > 4 (see gemmUsesPackedB); the kernel then reads B from here and never packs it.
  const float* Bpacked;
  uint64_t callId;  // set by gemm() itself (unique per call; lets a thread reuse the A block it packed last)
};

// Element strides of a (B, heads, T, features) tensor whose feature axis is contiguous:
// element (b, h, t, d) is at base[b·b + h·h + t·t + d]. Contiguous (B,H,T,D) is {H·T·D, T·D, D}.
struct Strides {
  int64_t b, h, t;
};

// Fused attention on q (B,H,Tq,D), k (B,Hkv,Tk,D), v (B,Hkv,Tk,Dv), each with its own strides (so q/k/v can be
// column blocks of one fused QKV projection, and out/dq/dk/dv can be written token-major).
struct AttnArgs {
  const float *q, *k, *v;
  const float *out, *dout, *lse;   // backward inputs (lse also for weights)
  float *outW, *lseW;              // forward outputs: out (B,H,Tq,Dv), lse (B,H,Tq) (lseW may be null)
  float *dq, *dk, *dv;             // backward outputs
  int64_t B, H, Hkv, Tq, Tk, D, Dv;
  Strides sq, sk, sv, so, sdo, sdq, sdk, sdv;  // q, k, v, out, dout, dq, dk, dv
  float scale;
  bool causal;
  const uint8_t* keyPad;           // (B,Tk) or null
  const float* mask;               // (maskB,maskH,Tq,Tk) additive or null
  int64_t maskB, maskH;
  const float* alibi;              // ALiBi slopes (H) or null: score(i, j) −= alibi[h]·|i + alibiOffset − j|
  int64_t alibiOffset;
  bool window;                     // sliding window: key j visible from query i only if i + winLo <= j <= i + winHi
  int64_t winLo, winHi;            // with -Tq <= winLo, winHi <= Tk (so lane arithmetic stays in int32)
  double dropoutP;
  uint32_t seed;                   // ToUint32(seed), as the TypeScript hash does
  // attnWeights
  int mode;                        // 0 = per head (B,H,rowCount,Tk), 1 = head mean (B,rowCount,Tk)
  int64_t rowStart, rowCount;
};

// Dynamic int8 linear (qlinear.inc.h; the arithmetic and the packed layout: src/backend/ref/qlinear.ts):
// y (M, N) = rows of x quantized per row to u8 ∈ [0, 127] · packed int8 w, int32 accumulation, float epilogue.
struct QLinearArgs {
  const float* x; int64_t M, K, lda;
  const int8_t* w; int64_t N;       // packed: panels of 16 channels × (K rounded up to 4)
  const int32_t* colSum;            // Σ_k w[n, k] (N)
  const float* wScale;              // (N)
  const float* bias;                // (N) or null
  float* y; int64_t ldy;
  int32_t* acc;                     // raw accumulators (M, N) or null (tests)
  int act;                          // Act applied to y in the epilogue (the table's own unary op, so fused = unfused)
};

struct KernelTable {
  const char* isa;
  void (*gemm)(const GemmArgs&);
  void (*attnForward)(const AttnArgs&);
  bool (*attnBackward)(const AttnArgs&);  // false: scratch allocation failed
  void (*attnWeights)(const AttnArgs&);
  void (*layerNormForward)(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                           int64_t rows, int64_t D, float eps);
  bool (*layerNormBackward)(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                            float* dx, float* dw, float* db, int64_t rows, int64_t D);
  void (*softmax)(const float* x, float* y, int64_t rows, int64_t n);
  void (*softmaxBackward)(const float* y, const float* dy, float* dx, int64_t rows, int64_t n);
  void (*unary)(int op, const float* x, float* y, int64_t n);  // y may be x
  // out (float32 or uint8 by op) = a op b over n elements laid out as (n/R, R); modes are BinMode
  void (*binary)(int op, const float* a, int modeA, const float* b, int modeB, void* out, int64_t n, int64_t R);
  bool (*reduceSum)(const float* x, float* out, int64_t outer, int64_t n, int64_t inner);  // false: no scratch
  void (*adamUpdate)(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, const AdamHyper& h);
  // Packed-B support (pack-cache.cc): whether gemm would read a pre-packed op(B) for these arguments, the size in
  // floats of that packing (ISA-specific: panels of NR columns × K), and the packing itself (in parallel).
  bool (*gemmUsesPackedB)(const GemmArgs&);
  int64_t (*packedBFloats)(int64_t N, int64_t K);
  void (*packBFull)(const GemmArgs&, float* dst);
  bool (*qlinear)(const QLinearArgs&);  // false: scratch allocation failed
  const char* (*qlinearPath)();         // "avx512-vnni", "avx512bw", "avx2" or "generic"
  // n ≤ GEMM_GROUP_MAX independent products (outputs must not overlap each other or any input), computed as gemm()
  // computes each, in one parallel region where they read pre-packed B (the Q, K, V projections of one input).
  void (*gemmGroup)(const GemmArgs* gs, int n);
};

// Per-ISA tables (defined in isa-*.cc); null when that variant was not compiled for this architecture.
const KernelTable* tableAvx512();
const KernelTable* tableAvx2();
const KernelTable* tableNeon();  // arm64 only
const KernelTable* tableGeneric();

// ---- thread pool (thread-pool.cc) ----
// Runs fn(ctx, task, tid) for task in [0, ntasks) on up to numThreads() threads (the caller is tid 0); tasks are
// handed out dynamically in increasing order. Returns when all are done. tid < numThreads().
typedef void (*TaskFn)(void* ctx, int64_t task, int tid);
void parallelFor(int64_t ntasks, TaskFn fn, void* ctx);
int numThreads();
void setNumThreads(int n);

// ---- scratch (thread-pool.cc) ----
// A 64-byte aligned buffer of at least n floats private to the calling OS thread, reused across calls (grows,
// never shrinks). Slots let one kernel hold several buffers at once. Aborts on allocation failure (sizes are small).
enum { SCRATCH_SLOTS = 8 };
float* threadScratch(int slot, size_t n);
// A large buffer owned by the calling (JS) thread for data shared by all workers during one call; returns null
// when the allocation fails so the caller can throw a JS error.
float* sharedScratch(size_t n);

// ---- malloc (malloc-tuning.cc) ----
// Sets glibc's mmap/trim thresholds once per process (see the file for why) and says what it did.
const char* tuneMalloc();

}  // namespace af
