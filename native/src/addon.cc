// N-API entry points of attnflow_native: argument validation, then a call into the kernel table chosen for this
// CPU at load time (avx512 > avx2 > neon > generic; ATTNFLOW_ISA=avx2|neon|generic forces a lower one).
// Kernels run synchronously on the calling thread plus the pool; they never allocate JS memory and never keep
// references to their arguments.
#include <node_api.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "af-common.h"
#include "amx.h"
#include "napi-args.h"
#include "pack-cache.h"

#ifndef ATTNFLOW_VERSION
#define ATTNFLOW_VERSION "0.1.0"
#endif

namespace af {
namespace {

bool cpuHas(const char* isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!std::strcmp(isa, "avx512"))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  if (!std::strcmp(isa, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if defined(__aarch64__)
  if (!std::strcmp(isa, "neon")) return true;  // AdvSIMD is mandatory in ARMv8-A (Linux arm64, Apple Silicon)
#endif
  return !std::strcmp(isa, "generic");
}

const KernelTable* tableFor(const std::string& isa) {
  if (isa == "avx512" && cpuHas("avx512")) return tableAvx512();
  if (isa == "avx2" && cpuHas("avx2")) return tableAvx2();
  if (isa == "neon" && cpuHas("neon")) return tableNeon();
  if (isa == "generic") return tableGeneric();
  return nullptr;
}

const KernelTable* bestTable() {
  const KernelTable* t = nullptr;
  const char* force = std::getenv("ATTNFLOW_ISA");
  if (force && *force) t = tableFor(force);
  if (!t) t = tableFor("avx512");
  if (!t) t = tableFor("avx2");
  if (!t) t = tableFor("neon");
  if (!t) t = tableGeneric();
  return t;
}

const KernelTable* gTable = bestTable();

int parseAct(const Args& a, size_t i) {
  if (a.isString(i)) {
    std::string s = a.str(i);
    if (s == "none") return ACT_NONE;
    if (s == "relu") return ACT_RELU;
    if (s == "gelu" || s == "gelu-erf" || s == "gelu_erf") return ACT_GELU_ERF;
    if (s == "gelu-tanh" || s == "gelu_tanh" || s == "geluTanh") return ACT_GELU_TANH;
    a.rangeErr("argument 'act' must be 0..3 or one of \"none\", \"relu\", \"gelu\", \"gelu-tanh\"; got \"" + s + "\"");
  }
  return (int)a.integer(i, "act", 0, 3);
}
// ---- gemm ----
napi_value gemmImpl(napi_env env, napi_callback_info info, bool withBias) {
  const char* fn = withBias ? "attnflow.gemmBiasAct" : "attnflow.gemm";
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, fn, withBias ? 23 : 20);
    GemmArgs g{};
    g.transA = a.boolean(0, "transA");
    g.transB = a.boolean(1, "transB");
    g.M = a.integer(2, "M", 0, kMaxDim);
    g.N = a.integer(3, "N", 0, kMaxDim);
    g.K = a.integer(4, "K", 0, kMaxDim);
    g.alpha = (float)a.number(5, "alpha");
    Buf<float> A = a.f32(6, "A");
    int64_t aOff = a.integer(7, "aOff", 0, kMaxDim);
    g.lda = a.integer(8, "lda", 1, kMaxDim);
    Buf<float> B = a.f32(9, "B");
    int64_t bOff = a.integer(10, "bOff", 0, kMaxDim);
    g.ldb = a.integer(11, "ldb", 1, kMaxDim);
    g.beta = (float)a.number(12, "beta");
    Buf<float> C = a.f32(13, "C");
    int64_t cOff = a.integer(14, "cOff", 0, kMaxDim);
    g.ldc = a.integer(15, "ldc", 1, kMaxDim);
    g.batch = a.integer(16, "batch", 0, kMaxDim);
    g.strideA = a.integer(17, "strideA", 0, kMaxDim);
    g.strideB = a.integer(18, "strideB", 0, kMaxDim);
    g.strideC = a.integer(19, "strideC", 0, kMaxDim);
    Buf<float> bias;
    int64_t biasOff = 0;
    if (withBias) {
      bias = a.f32(20, "bias", true);
      biasOff = a.integer(21, "biasOff", 0, kMaxDim);
      g.act = parseAct(a, 22);
    }
    const int64_t rowsA = g.transA ? g.K : g.M, colsA = g.transA ? g.M : g.K;
    const int64_t rowsB = g.transB ? g.N : g.K, colsB = g.transB ? g.K : g.N;
    if (g.lda < colsA) a.rangeErr("lda (" + std::to_string(g.lda) + ") must be >= " + std::to_string(colsA) + (g.transA ? " (M, A is transposed)" : " (K)"));
    if (g.ldb < colsB) a.rangeErr("ldb (" + std::to_string(g.ldb) + ") must be >= " + std::to_string(colsB) + (g.transB ? " (K, B is transposed)" : " (N)"));
    if (g.ldc < g.N) a.rangeErr("ldc (" + std::to_string(g.ldc) + ") must be >= N (" + std::to_string(g.N) + ")");
    if (g.batch == 0 || g.M == 0 || g.N == 0) return undefinedValue(env);
    // Last element each operand touches, checked against its length.
    auto need = [&](const char* name, size_t len, int64_t off, int64_t stride, int64_t rows, int64_t cols, int64_t ld) -> int64_t {
      if (rows == 0 || cols == 0) return off - 1;
      __int128 last = (__int128)off + (__int128)(g.batch - 1) * stride + (__int128)(rows - 1) * ld + cols - 1;
      if (last >= (__int128)len)
        a.rangeErr(std::string("argument '") + name + "' is too short: the call reads/writes element " + Args::i128(last) +
                   " but its length is " + std::to_string(len));
      return (int64_t)last;
    };
    int64_t lastA = need("A", A.len, aOff, g.strideA, rowsA, colsA, g.lda);
    int64_t lastB = need("B", B.len, bOff, g.strideB, rowsB, colsB, g.ldb);
    int64_t lastC = need("C", C.len, cOff, g.strideC, g.M, g.N, g.ldc);
    if (g.batch > 1 && g.strideC < (g.M - 1) * g.ldc + g.N)
      a.rangeErr("strideC (" + std::to_string(g.strideC) + ") must be >= (M-1)*ldc+N = " +
                 std::to_string((g.M - 1) * g.ldc + g.N) + " so that the batch outputs do not overlap");
    Span sC = spanOf(C.p, cOff, lastC, 4);
    if (overlaps(sC, spanOf(A.p, aOff, lastA, 4))) a.rangeErr("C must not overlap A");
    if (overlaps(sC, spanOf(B.p, bOff, lastB, 4))) a.rangeErr("C must not overlap B");
    if (bias.p) {
      if ((__int128)biasOff + g.N > (__int128)bias.len)
        a.rangeErr("argument 'bias' is too short: needs biasOff+N = " + std::to_string(biasOff + g.N) +
                   " elements, has " + std::to_string(bias.len));
      g.bias = bias.p + biasOff;
      if (overlaps(sC, spanOf(bias.p, biasOff, biasOff + g.N - 1, 4))) a.rangeErr("C must not overlap bias");
    }
    g.A = A.p + aOff;
    g.B = B.p + bOff;
    g.C = C.p + cOff;
    // Optional key of B (gemmBiasAct only): [id, version] of the storage B lives in; B's packing is then served
    // from / kept in the packed-weight cache (pack-cache.h) when the shape reads packed B.
    if (withBias && a.has(23)) {
      PackKey key{a.number(23, "bKeyId"), a.has(24) ? a.number(24, "bKeyVersion") : 0.0};
      g.Bpacked = packCacheLookup(env, gTable, g, key);
    }
    gTable->gemm(g);
    return undefinedValue(env);
  });
}
napi_value Gemm(napi_env env, napi_callback_info info) { return gemmImpl(env, info, false); }

// ---- several linear layers of one input, one parallel region ----
// linearGroup(x, xOff, M, K, lda, C, cOff, ldc, act, parts): for each part [W, wOff, N, bias|null, biasOff, col,
// keyId|null, keyVersion], C[r, col + j] = act(x[r, :]·W[j, :] + bias[j]) for r < M, j < N — e.g. the Q, K and V
// projections of one input written side by side into one (M, ldc) output. The parts' column ranges must not
// overlap; a keyed W is served from the packed-weight cache exactly as gemmBiasAct serves it.
napi_value LinearGroup(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.linearGroup", 10);
    Buf<float> x = a.f32(0, "x");
    const int64_t xOff = a.integer(1, "xOff", 0, kMaxDim);
    const int64_t M = a.integer(2, "M", 0, kMaxDim), K = a.integer(3, "K", 0, kMaxDim);
    const int64_t lda = a.integer(4, "lda", 1, kMaxDim);
    Buf<float> C = a.f32(5, "C");
    const int64_t cOff = a.integer(6, "cOff", 0, kMaxDim), ldc = a.integer(7, "ldc", 1, kMaxDim);
    const int act = parseAct(a, 8);
    bool isArr = false;
    napi_is_array(env, a.at(9), &isArr);
    uint32_t n = 0;
    if (!isArr || napi_get_array_length(env, a.at(9), &n) != napi_ok) a.typeErr("argument 'parts' must be an array");
    if (n < 1 || n > (uint32_t)GEMM_GROUP_MAX)
      a.rangeErr("argument 'parts' must hold 1 to " + std::to_string(GEMM_GROUP_MAX) + " parts, got " + std::to_string(n));
    if (lda < K) a.rangeErr("lda (" + std::to_string(lda) + ") must be >= K (" + std::to_string(K) + ")");
    if (M > 0 && K > 0 && (__int128)xOff + (__int128)(M - 1) * lda + K > (__int128)x.len)
      a.rangeErr("argument 'x' is too short for M = " + std::to_string(M) + " rows of K = " + std::to_string(K) +
                 " at xOff with stride lda (length " + std::to_string(x.len) + ")");
    const Span sX = M > 0 && K > 0 ? spanOf(x.p, xOff, xOff + (M - 1) * lda + K - 1, 4) : Span{nullptr, nullptr};
    GemmArgs gs[GEMM_GROUP_MAX];
    int64_t cols[GEMM_GROUP_MAX][2];
    for (uint32_t i = 0; i < n; i++) {
      const std::string at = "parts[" + std::to_string(i) + "]";
      napi_value part;
      bool pa = false;
      uint32_t plen = 0;
      napi_get_element(env, a.at(9), i, &part);
      napi_is_array(env, part, &pa);
      if (!pa || napi_get_array_length(env, part, &plen) != napi_ok || plen < 8)
        a.typeErr(at + " must be an array [W, wOff, N, bias|null, biasOff, col, keyId|null, keyVersion]");
      napi_value v[8];
      for (uint32_t j = 0; j < 8; j++) napi_get_element(env, part, j, &v[j]);
      const std::string pfn = std::string("attnflow.linearGroup: ") + at;
      Args p(env, pfn.c_str(), v, 8);
      Buf<float> W = p.f32(0, "W");
      const int64_t wOff = p.integer(1, "wOff", 0, kMaxDim), N = p.integer(2, "N", 0, kMaxDim);
      Buf<float> bias = p.f32(3, "bias", true);
      const int64_t biasOff = p.integer(4, "biasOff", 0, kMaxDim), col = p.integer(5, "col", 0, kMaxDim);
      if (N > 0 && K > 0 && (__int128)wOff + (__int128)N * K > (__int128)W.len)
        a.rangeErr(at + ".W is too short for N × K = " + std::to_string(N) + " × " + std::to_string(K) + " at wOff (length " +
                   std::to_string(W.len) + ")");
      if (bias.p && (__int128)biasOff + N > (__int128)bias.len)
        a.rangeErr(at + ".bias is too short: needs biasOff + N = " + std::to_string(biasOff + N) + " values, has " + std::to_string(bias.len));
      if (col + N > ldc)
        a.rangeErr(at + " writes columns " + std::to_string(col) + "…" + std::to_string(col + N - 1) + " but ldc is " + std::to_string(ldc));
      for (uint32_t j = 0; j < i; j++)
        if (N > 0 && cols[j][1] > cols[j][0] && col < cols[j][1] && cols[j][0] < col + N)
          a.rangeErr(at + " columns " + std::to_string(col) + "…" + std::to_string(col + N - 1) + " overlap parts[" + std::to_string(j) + "]'s");
      cols[i][0] = col;
      cols[i][1] = col + N;
      if (M > 0 && N > 0 && (__int128)cOff + (__int128)(M - 1) * ldc + col + N > (__int128)C.len)
        a.rangeErr("argument 'C' is too short for M = " + std::to_string(M) + " rows of ldc = " + std::to_string(ldc) + " at cOff (length " +
                   std::to_string(C.len) + ")");
      const Span sC = M > 0 && N > 0 ? spanOf(C.p, cOff + col, cOff + (M - 1) * ldc + col + N - 1, 4) : Span{nullptr, nullptr};
      if (overlaps(sC, sX)) a.rangeErr("C must not overlap x");
      if (K > 0 && N > 0 && overlaps(sC, spanOf(W.p, wOff, wOff + N * K - 1, 4))) a.rangeErr("C must not overlap " + at + ".W");
      if (bias.p && N > 0 && overlaps(sC, spanOf(bias.p, biasOff, biasOff + N - 1, 4))) a.rangeErr("C must not overlap " + at + ".bias");
      GemmArgs& g = gs[i];
      g = GemmArgs{};
      g.transA = false;
      g.transB = true;
      g.M = M; g.N = N; g.K = K;
      g.alpha = 1.0f; g.beta = 0.0f;
      g.A = x.p + xOff; g.lda = lda;
      g.B = W.p + wOff; g.ldb = K;
      g.C = C.p + cOff + col; g.ldc = ldc;
      g.batch = 1;
      g.bias = bias.p ? bias.p + biasOff : nullptr;
      g.act = act;
      if (p.has(6)) {
        PackKey key{p.number(6, "keyId"), p.has(7) ? p.number(7, "keyVersion") : 0.0};
        // Entries looked up earlier in this loop stay valid: the cache never evicts an entry used within the last
        // 2 × (entries held) lookups (pack-cache.cc), and these were used within the last GEMM_GROUP_MAX.
        if (M > 0 && N > 0) g.Bpacked = packCacheLookup(env, gTable, g, key);
      }
    }
    gTable->gemmGroup(gs, (int)n);
    return undefinedValue(env);
  });
}

// ---- post-norm residual block: y = LayerNorm(x·Wᵀ + bias + r) ----
// linearAddNorm(x, xOff, M, K, W, wOff, N, bias|null, biasOff, r, rOff, gamma|null, gOff, beta|null, bOff, eps, y, yOff,
// keyId|null, keyVersion): rows of x (M × K, contiguous), W (N × K), r and y (M × N, contiguous). Exactly what
// gemmBiasAct(false, true, …, beta 1) into a copy of r followed by layerNormForward computes, in one call: the
// GEMM accumulates into y and the normalization runs in place (BERT's attention and FFN outputs).
napi_value LinearAddNorm(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.linearAddNorm", 18);
    Buf<float> x = a.f32(0, "x");
    const int64_t xOff = a.integer(1, "xOff", 0, kMaxDim), M = a.integer(2, "M", 0, kMaxDim), K = a.integer(3, "K", 0, kMaxDim);
    Buf<float> W = a.f32(4, "W");
    const int64_t wOff = a.integer(5, "wOff", 0, kMaxDim), N = a.integer(6, "N", 1, kMaxDim);
    Buf<float> bias = a.f32(7, "bias", true);
    const int64_t biasOff = a.integer(8, "biasOff", 0, kMaxDim);
    Buf<float> r = a.f32(9, "r");
    const int64_t rOff = a.integer(10, "rOff", 0, kMaxDim);
    Buf<float> gamma = a.f32(11, "gamma", true);
    const int64_t gOff = a.integer(12, "gOff", 0, kMaxDim);
    Buf<float> beta = a.f32(13, "beta", true);
    const int64_t bOff = a.integer(14, "bOff", 0, kMaxDim);
    const double eps = a.number(15, "eps");
    if (eps < 0) a.rangeErr("eps must be >= 0");
    Buf<float> y = a.f32(16, "y");
    const int64_t yOff = a.integer(17, "yOff", 0, kMaxDim);
    const __int128 MN = (__int128)M * N, MK = (__int128)M * K;
    auto fits = [&](const char* name, size_t len, int64_t off, __int128 n, const std::string& what) {
      if ((__int128)off + n > (__int128)len)
        a.rangeErr(std::string("argument '") + name + "' is too short for " + what + " at its offset (length " + std::to_string(len) + ")");
    };
    fits("x", x.len, xOff, MK, "M × K = " + std::to_string(M) + " × " + std::to_string(K));
    fits("W", W.len, wOff, (__int128)N * K, "N × K = " + std::to_string(N) + " × " + std::to_string(K));
    fits("r", r.len, rOff, MN, "M × N = " + std::to_string(M) + " × " + std::to_string(N));
    fits("y", y.len, yOff, MN, "M × N = " + std::to_string(M) + " × " + std::to_string(N));
    if (bias.p) fits("bias", bias.len, biasOff, N, "N = " + std::to_string(N));
    if (gamma.p) fits("gamma", gamma.len, gOff, N, "N = " + std::to_string(N));
    if (beta.p) fits("beta", beta.len, bOff, N, "N = " + std::to_string(N));
    if (M == 0) return undefinedValue(env);
    const Span sY = spanOf(y.p, yOff, yOff + (int64_t)MN - 1, 4);
    if (K > 0 && overlaps(sY, spanOf(x.p, xOff, xOff + (int64_t)MK - 1, 4))) a.rangeErr("y must not overlap x");
    if (K > 0 && overlaps(sY, spanOf(W.p, wOff, wOff + N * K - 1, 4))) a.rangeErr("y must not overlap W");
    if (overlaps(sY, spanOf(r.p, rOff, rOff + (int64_t)MN - 1, 4))) a.rangeErr("y must not overlap r");
    if (bias.p && overlaps(sY, spanOf(bias.p, biasOff, biasOff + N - 1, 4))) a.rangeErr("y must not overlap bias");
    if (gamma.p && overlaps(sY, spanOf(gamma.p, gOff, gOff + N - 1, 4))) a.rangeErr("y must not overlap gamma");
    if (beta.p && overlaps(sY, spanOf(beta.p, bOff, bOff + N - 1, 4))) a.rangeErr("y must not overlap beta");
    std::memcpy(y.p + yOff, r.p + rOff, (size_t)MN * sizeof(float));
    GemmArgs g{};
    g.transA = false; g.transB = true;
    g.M = M; g.N = N; g.K = K;
    g.alpha = 1.0f; g.beta = 1.0f;
    g.A = x.p + xOff; g.lda = K > 0 ? K : 1;
    g.B = W.p + wOff; g.ldb = K > 0 ? K : 1;
    g.C = y.p + yOff; g.ldc = N;
    g.batch = 1;
    g.bias = bias.p ? bias.p + biasOff : nullptr;
    g.act = ACT_NONE;
    if (a.has(18)) {
      PackKey key{a.number(18, "keyId"), a.has(19) ? a.number(19, "keyVersion") : 0.0};
      g.Bpacked = packCacheLookup(env, gTable, g, key);
    }
    gTable->gemm(g);
    gTable->layerNormForward(y.p + yOff, gamma.p ? gamma.p + gOff : nullptr, beta.p ? beta.p + bOff : nullptr, y.p + yOff, nullptr,
                             nullptr, M, N, (float)eps);
    return undefinedValue(env);
  });
}

// ---- dynamic int8 linear ----
// qlinear(x, xOff, M, K, lda, w: Int8Array (packed), N, colSum: Int32Array, wScale, bias|null, y, yOff, ldy, acc: Int32Array|null
//         [, act: 0..3 | "none" | "relu" | "gelu" | "gelu-tanh"])
napi_value QLinear(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.qlinear", 14);
    QLinearArgs q{};
    Buf<float> x = a.f32(0, "x");
    const int64_t xOff = a.integer(1, "xOff", 0, kMaxDim);
    q.M = a.integer(2, "M", 0, kMaxDim);
    q.K = a.integer(3, "K", 1, 131072);
    q.lda = a.integer(4, "lda", 1, kMaxDim);
    Buf<int8_t> w = a.typed<int8_t>(5, "w", napi_int8_array, "Int8Array", false);
    q.N = a.integer(6, "N", 1, kMaxDim);
    Buf<int32_t> cs = a.typed<int32_t>(7, "colSum", napi_int32_array, "Int32Array", false);
    Buf<float> ws = a.f32(8, "wScale");
    Buf<float> bias = a.f32(9, "bias", true);
    Buf<float> y = a.f32(10, "y");
    const int64_t yOff = a.integer(11, "yOff", 0, kMaxDim);
    q.ldy = a.integer(12, "ldy", 1, kMaxDim);
    Buf<int32_t> acc = a.typed<int32_t>(13, "acc", napi_int32_array, "Int32Array", true);
    const int64_t Kp = (q.K + 3) / 4 * 4, Np = (q.N + 15) / 16 * 16;
    if (q.lda < q.K) a.rangeErr("lda (" + std::to_string(q.lda) + ") must be >= K (" + std::to_string(q.K) + ")");
    if (q.ldy < q.N) a.rangeErr("ldy (" + std::to_string(q.ldy) + ") must be >= N (" + std::to_string(q.N) + ")");
    if ((__int128)w.len != (__int128)Np * Kp)
      a.rangeErr("packed weights 'w' have " + std::to_string(w.len) + " bytes, expected " + std::to_string(Np * Kp) + " (N=" +
                 std::to_string(q.N) + " rounded up to 16, times K=" + std::to_string(q.K) + " rounded up to 4)");
    if ((int64_t)cs.len < q.N) a.rangeErr("'colSum' has " + std::to_string(cs.len) + " values, needs N = " + std::to_string(q.N));
    if ((int64_t)ws.len < q.N) a.rangeErr("'wScale' has " + std::to_string(ws.len) + " values, needs N = " + std::to_string(q.N));
    if (bias.p && (int64_t)bias.len < q.N) a.rangeErr("'bias' has " + std::to_string(bias.len) + " values, needs N = " + std::to_string(q.N));
    if (q.M == 0) return undefinedValue(env);
    if ((__int128)xOff + (__int128)(q.M - 1) * q.lda + q.K > (__int128)x.len) a.rangeErr("argument 'x' is too short for M rows of K at xOff with stride lda");
    if ((__int128)yOff + (__int128)(q.M - 1) * q.ldy + q.N > (__int128)y.len) a.rangeErr("argument 'y' is too short for M rows of N at yOff with stride ldy");
    if (acc.p && (__int128)acc.len < (__int128)q.M * q.N) a.rangeErr("'acc' has " + std::to_string(acc.len) + " values, needs M·N = " + std::to_string(q.M * q.N));
    Span sY = spanOf(y.p, yOff, yOff + (q.M - 1) * q.ldy + q.N - 1, 4);
    if (overlaps(sY, spanOf(x.p, xOff, xOff + (q.M - 1) * q.lda + q.K - 1, 4))) a.rangeErr("y must not overlap x");
    q.act = a.has(14) ? parseAct(a, 14) : ACT_NONE;
    q.x = x.p + xOff; q.w = w.p; q.colSum = cs.p; q.wScale = ws.p; q.bias = bias.p; q.y = y.p + yOff; q.acc = acc.p;
    if (!gTable->qlinear(q)) a.rangeErr("out of memory for the quantized rows of x");
    return undefinedValue(env);
  });
}
napi_value GemmBiasAct(napi_env env, napi_callback_info info) { return gemmImpl(env, info, true); }

// ---- rows ----
struct Named {
  const char* name;
  const void* p;
  size_t bytes;
};
void noOverlap(const Args& a, const Named* outs, size_t nOut, const Named* ins, size_t nIn) {
  for (size_t i = 0; i < nOut; i++) {
    Span so = spanOf(outs[i].p, 0, (int64_t)outs[i].bytes - 1, 1);
    for (size_t j = 0; j < nIn; j++)
      if (overlaps(so, spanOf(ins[j].p, 0, (int64_t)ins[j].bytes - 1, 1)))
        a.rangeErr(std::string("output '") + outs[i].name + "' must not share memory with '" + ins[j].name + "'");
    for (size_t j = i + 1; j < nOut; j++)
      if (overlaps(so, spanOf(outs[j].p, 0, (int64_t)outs[j].bytes - 1, 1)))
        a.rangeErr(std::string("outputs '") + outs[i].name + "' and '" + outs[j].name + "' must not share memory");
  }
}

// Same buffer or disjoint: in-place is fine for these row kernels, partial overlap is not.
void sameOrDisjoint(const Args& a, const Buf<float>& x, const char* xn, const Buf<float>& y, const char* yn) {
  if (x.p == y.p) return;
  if (overlaps(spanOf(x.p, 0, (int64_t)x.len - 1, 4), spanOf(y.p, 0, (int64_t)y.len - 1, 4)))
    a.rangeErr(std::string("'") + yn + "' partially overlaps '" + xn + "' (it may be the same array or disjoint)");
}

napi_value LayerNormForward(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.layerNormForward", 9);
    Buf<float> x = a.f32(0, "x"), w = a.f32(1, "w", true), b = a.f32(2, "b", true), y = a.f32(3, "y"),
               mean = a.f32(4, "mean", true), rstd = a.f32(5, "rstd", true);
    int64_t rows = a.integer(6, "rows", 0, kMaxDim), D = a.integer(7, "D", 1, kMaxDim);
    double eps = a.number(8, "eps");
    if (eps < 0) a.rangeErr("eps must be >= 0");
    a.exactLen(x, "x", (__int128)rows * D, "rows*D");
    a.exactLen(y, "y", (__int128)rows * D, "rows*D");
    if (w.p || w.len) a.exactLen(w, "w", D, "D");
    if (b.p || b.len) a.exactLen(b, "b", D, "D");
    if (mean.p || mean.len) a.exactLen(mean, "mean", rows, "rows");
    if (rstd.p || rstd.len) a.exactLen(rstd, "rstd", rows, "rows");
    sameOrDisjoint(a, x, "x", y, "y");
    gTable->layerNormForward(x.p, w.len ? w.p : nullptr, b.len ? b.p : nullptr, y.p, mean.len ? mean.p : nullptr,
                             rstd.len ? rstd.p : nullptr, rows, D, (float)eps);
    return undefinedValue(env);
  });
}

napi_value LayerNormBackward(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.layerNormBackward", 10);
    Buf<float> dy = a.f32(0, "dy"), x = a.f32(1, "x"), w = a.f32(2, "w", true), mean = a.f32(3, "mean"),
               rstd = a.f32(4, "rstd"), dx = a.f32(5, "dx"), dw = a.f32(6, "dw", true), db = a.f32(7, "db", true);
    int64_t rows = a.integer(8, "rows", 0, kMaxDim), D = a.integer(9, "D", 1, kMaxDim);
    a.exactLen(dy, "dy", (__int128)rows * D, "rows*D");
    a.exactLen(x, "x", (__int128)rows * D, "rows*D");
    a.exactLen(dx, "dx", (__int128)rows * D, "rows*D");
    a.exactLen(mean, "mean", rows, "rows");
    a.exactLen(rstd, "rstd", rows, "rows");
    if (w.p || w.len) a.exactLen(w, "w", D, "D");
    if (dw.p || dw.len) a.exactLen(dw, "dw", D, "D");
    if (db.p || db.len) a.exactLen(db, "db", D, "D");
    sameOrDisjoint(a, dy, "dy", dx, "dx");
    sameOrDisjoint(a, x, "x", dx, "dx");
    Named outs[] = {{"dw", dw.p, dw.len * 4}, {"db", db.p, db.len * 4}};
    Named ins[] = {{"dy", dy.p, dy.len * 4}, {"x", x.p, x.len * 4}, {"w", w.p, w.len * 4}, {"dx", dx.p, dx.len * 4}};
    noOverlap(a, outs, 2, ins, 4);
    if (!gTable->layerNormBackward(dy.p, x.p, w.len ? w.p : nullptr, mean.p, rstd.p, dx.p, dw.len ? dw.p : nullptr,
                                   db.len ? db.p : nullptr, rows, D))
      throw std::bad_alloc();
    return undefinedValue(env);
  });
}

napi_value SoftmaxLastDim(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.softmaxLastDim", 4);
    Buf<float> x = a.f32(0, "x"), y = a.f32(1, "y");
    int64_t rows = a.integer(2, "rows", 0, kMaxDim), n = a.integer(3, "n", 1, kMaxDim);
    a.exactLen(x, "x", (__int128)rows * n, "rows*n");
    a.exactLen(y, "y", (__int128)rows * n, "rows*n");
    sameOrDisjoint(a, x, "x", y, "y");
    gTable->softmax(x.p, y.p, rows, n);
    return undefinedValue(env);
  });
}

napi_value SoftmaxBackward(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.softmaxBackward", 5);
    Buf<float> y = a.f32(0, "y"), dy = a.f32(1, "dy"), dx = a.f32(2, "dx");
    int64_t rows = a.integer(3, "rows", 0, kMaxDim), n = a.integer(4, "n", 1, kMaxDim);
    a.exactLen(y, "y", (__int128)rows * n, "rows*n");
    a.exactLen(dy, "dy", (__int128)rows * n, "rows*n");
    a.exactLen(dx, "dx", (__int128)rows * n, "rows*n");
    sameOrDisjoint(a, y, "y", dx, "dx");
    sameOrDisjoint(a, dy, "dy", dx, "dx");
    gTable->softmaxBackward(y.p, dy.p, dx.p, rows, n);
    return undefinedValue(env);
  });
}

// ---- misc ----
uint32_t mix32(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352du;
  x ^= x >> 15; x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
uint32_t hashOf(const Args& a) {
  uint32_t x = mix32(toUint32(a.number(0, "seed")) ^ 0x9e3779b9u);
  x = mix32(x ^ (uint32_t)a.integer(1, "b", 0, 0xffffffffLL));
  x = mix32(x ^ (uint32_t)a.integer(2, "h", 0, 0xffffffffLL));
  x = mix32(x ^ (uint32_t)a.integer(3, "i", 0, 0xffffffffLL));
  return mix32(x ^ (uint32_t)a.integer(4, "j", 0, 0xffffffffLL));
}

napi_value DropoutHash(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.dropoutHash", 5);
    napi_value r;
    napi_create_uint32(env, hashOf(a), &r);
    return r;
  });
}

napi_value DropoutKeep(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.dropoutKeep", 6);
    double p = a.number(5, "p");
    napi_value r;
    napi_get_boolean(env, (double)(hashOf(a) >> 8) / 16777216.0 >= p, &r);
    return r;
  });
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value o, isa, th, ver, mal;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, gTable->isa, NAPI_AUTO_LENGTH, &isa);
  napi_create_int32(env, numThreads(), &th);
  napi_create_string_utf8(env, ATTNFLOW_VERSION, NAPI_AUTO_LENGTH, &ver);
  napi_set_named_property(env, o, "isa", isa);
  napi_set_named_property(env, o, "threads", th);
  napi_set_named_property(env, o, "version", ver);
  napi_create_string_utf8(env, tuneMalloc(), NAPI_AUTO_LENGTH, &mal);
  napi_set_named_property(env, o, "malloc", mal);
  napi_value alibi;  // the attention kernels take ALiBi slopes (and their offset) after the layout argument
  napi_get_boolean(env, true, &alibi);
  napi_set_named_property(env, o, "attnAlibi", alibi);
  napi_value window;  // ... and a sliding window (windowLo, windowHi) after the ALiBi arguments
  napi_get_boolean(env, true, &window);
  napi_set_named_property(env, o, "attnWindow", window);
  napi_value q8;  // which int8 kernel qlinear runs: amx, avx512-vnni, avx512bw, avx2, generic
  napi_create_string_utf8(env, gTable->qlinearPath(), NAPI_AUTO_LENGTH, &q8);
  napi_set_named_property(env, o, "int8", q8);
  napi_value qact;  // qlinear takes an activation (its 15th argument) applied in the epilogue
  napi_get_boolean(env, true, &qact);
  napi_set_named_property(env, o, "qlinearAct", qact);
  napi_value amx;  // "" when AMX-INT8 tiles can run in this process, else why not
  napi_create_string_utf8(env, amxInt8Why(), NAPI_AUTO_LENGTH, &amx);
  napi_set_named_property(env, o, "int8AmxUnavailable", amx);
  return o;
}

napi_value SetNumThreads(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.setNumThreads", 1);
    setNumThreads((int)a.integer(0, "n", 1, 256));
    return undefinedValue(env);
  });
}

// setIsa("avx512" | "avx2" | "neon" | "generic") → whether that variant is available here (and now active).
napi_value SetIsa(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.setIsa", 1);
    if (!a.isString(0)) a.typeErr("argument 'isa' must be a string");
    const KernelTable* t = tableFor(a.str(0));
    if (t) gTable = t;
    napi_value r;
    napi_get_boolean(env, t != nullptr, &r);
    return r;
  });
}

// setInt8("auto" | "amx" | "avx512-vnni" | "avx512bw") → whether this CPU/OS runs it (then the AVX-512 table's
// qlinear uses it; "auto" = the fastest available). Tables below AVX-512 have one int8 kernel each and ignore it.
napi_value SetInt8(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.setInt8", 1);
    if (!a.isString(0)) a.typeErr("argument 'kernel' must be a string");
    const std::string k = a.str(0);
    if (k != "auto" && k != "amx" && k != "avx512-vnni" && k != "avx512bw")
      a.rangeErr("argument 'kernel' must be \"auto\", \"amx\", \"avx512-vnni\" or \"avx512bw\"; got \"" + k + "\"");
    napi_value r;
    napi_get_boolean(env, setInt8Pref(k.c_str()), &r);
    return r;
  });
}

}  // namespace

const KernelTable* activeTable() { return gTable; }

}  // namespace af

NAPI_MODULE_INIT() {
  using namespace af;
  const NamedFunction fns[] = {
      {"gemm", Gemm},
      {"gemmBiasAct", GemmBiasAct},
      {"linearGroup", LinearGroup},
      {"linearAddNorm", LinearAddNorm},
      {"qlinear", QLinear},
      {"attnForward", AttnForward},
      {"attnBackward", AttnBackward},
      {"attnWeights", AttnWeights},
      {"layerNormForward", LayerNormForward},
      {"layerNormBackward", LayerNormBackward},
      {"softmaxLastDim", SoftmaxLastDim},
      {"softmaxBackward", SoftmaxBackward},
      {"dropoutHash", DropoutHash},
      {"dropoutKeep", DropoutKeep},
      {"info", Info},
      {"setNumThreads", SetNumThreads},
      {"setIsa", SetIsa},
      {"setInt8", SetInt8},
  };
  tuneMalloc();
  defineFunctions(env, exports, fns);
  registerElementwise(env, exports);
  registerPackCache(env, exports);
  return exports;
}
