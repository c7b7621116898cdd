// Shared declarations of the attnflow native backend: argument structs, the per-ISA kernel table, the thread pool
// and per-thread scratch. Included by the N-API glue (generic flags) and by every ISA translation unit.
// Nothing here instantiates a template or inline function that could be compiled with ISA-specific flags and then
// picked by the linker for another translation unit (the classic multi-ISA ODR trap): only plain declarations.
#pragma once
#include <cstddef>
#include <cstdint>

namespace af {

enum Act : int { ACT_NONE = 0, ACT_RELU = 1, ACT_GELU_ERF = 2, ACT_GELU_TANH = 3 };

// C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b] (+ bias[col], then act) for b < batch; row-major.
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
  double dropoutP;
  uint32_t seed;                   // ToUint32(seed), as the TypeScript hash does
  // attnWeights
  int mode;                        // 0 = per head (B,H,rowCount,Tk), 1 = head mean (B,rowCount,Tk)
  int64_t rowStart, rowCount;
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
};

// Per-ISA tables (defined in isa-*.cc); null when that variant was not compiled for this architecture.
const KernelTable* tableAvx512();
const KernelTable* tableAvx2();
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

}  // namespace af
