// N-API bindings of the elementwise kernels (elementwise.inc.h): unary, binary with broadcasting modes, the
// float64-accumulated middle-axis sum and the fused Adam/AdamW update. Validation only; the work is the active
// ISA's.
#include <node_api.h>

#include <string>

#include "af-common.h"
#include "napi-args.h"

namespace af {
namespace {

const char* const kUnaryNames[UN_COUNT] = {"neg",  "abs",     "relu", "square", "sqrt",     "rsqrt",    "reciprocal",
                                           "exp",  "tanh",    "sigmoid", "erf", "gelu",     "geluGrad", "geluTanh",
                                           "geluTanhGrad"};
const char* const kBinaryNames[BIN_COUNT] = {"add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne",
                                             "lt",  "le",  "gt",  "ge",  "reluBackward", "geluBackward",
                                             "geluTanhBackward"};
bool binaryIsCompare(int op) { return op >= BIN_EQ && op <= BIN_GE; }

const char* const kModeNames[4] = {"full", "scalar", "row", "col"};

int opCode(const Args& a, size_t i, const char* const* names, int count, const char* what) {
  if (a.isString(i)) {
    std::string s = a.str(i);
    for (int k = 0; k < count; k++)
      if (s == names[k]) return k;
    std::string list;
    for (int k = 0; k < count; k++) list += std::string(k ? ", " : "") + names[k];
    a.rangeErr(std::string("unknown ") + what + " \"" + s + "\" (expected one of " + list + ")");
  }
  return (int)a.integer(i, what, 0, count - 1);
}

// The element range [off, off + count) of an array, bounds-checked.
Span rangeOf(const Args& a, const char* name, const void* p, size_t len, int64_t off, int64_t count, size_t elem) {
  if ((__int128)off + count > (__int128)len)
    a.rangeErr(std::string("argument '") + name + "' is too short: needs offset+" + std::to_string(count) + " = " +
               std::to_string(off + count) + " elements, has " + std::to_string(len));
  return spanOf(p, off, off + count - 1, elem);
}

// Same start and extent (an in-place elementwise op), or disjoint.
void inPlaceOrDisjoint(const Args& a, Span out, const char* outName, Span in, const char* inName, bool mayAlias) {
  if (!overlaps(out, in)) return;
  if (mayAlias && out.lo == in.lo && out.hi == in.hi) return;
  a.rangeErr(std::string("'") + outName + "' overlaps '" + inName + "'" +
             (mayAlias ? " (it may be the very same elements, or disjoint)" : " (they must be disjoint)"));
}

napi_value Unary(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.unary", 6);
    int op = opCode(a, 0, kUnaryNames, UN_COUNT, "op");
    Buf<float> x = a.f32(1, "x"), y = a.f32(3, "y");
    int64_t xOff = a.integer(2, "xOff", 0, kMaxDim), yOff = a.integer(4, "yOff", 0, kMaxDim);
    int64_t n = a.integer(5, "n", 0, kMaxDim);
    if (n == 0) return undefinedValue(env);
    Span sx = rangeOf(a, "x", x.p, x.len, xOff, n, 4), sy = rangeOf(a, "y", y.p, y.len, yOff, n, 4);
    inPlaceOrDisjoint(a, sy, "y", sx, "x", true);
    activeTable()->unary(op, x.p + xOff, y.p + yOff, n);
    return undefinedValue(env);
  });
}

int modeArg(const Args& a, size_t i, const char* name) {
  if (a.isString(i)) {
    std::string s = a.str(i);
    for (int k = 0; k < 4; k++)
      if (s == kModeNames[k]) return k;
    a.rangeErr(std::string("argument '") + name + "' must be 0..3 or \"full\", \"scalar\", \"row\", \"col\"; got \"" + s + "\"");
  }
  return (int)a.integer(i, name, 0, 3);
}

napi_value Binary(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.binary", 11);
    int op = opCode(a, 0, kBinaryNames, BIN_COUNT, "op");
    Buf<float> A = a.f32(1, "a"), B = a.f32(4, "b");
    int64_t aOff = a.integer(2, "aOff", 0, kMaxDim), bOff = a.integer(5, "bOff", 0, kMaxDim);
    int modeA = modeArg(a, 3, "aMode"), modeB = modeArg(a, 6, "bMode");
    const bool cmp = binaryIsCompare(op);
    Buf<float> outF;
    Buf<uint8_t> outU;
    if (cmp) outU = a.u8(7, "out");
    else outF = a.f32(7, "out");
    int64_t outOff = a.integer(8, "outOff", 0, kMaxDim);
    int64_t n = a.integer(9, "n", 0, kMaxDim), R = a.integer(10, "R", 1, kMaxDim);
    const bool rowwise = modeA >= BM_ROW || modeB >= BM_ROW;
    if (op >= BIN_GELU_BWD && (modeA != BM_FULL || modeB != BM_FULL))
      a.rangeErr(std::string(kBinaryNames[op]) + " needs both operands in mode full");
    if (rowwise && n % R != 0)
      a.rangeErr("n (" + std::to_string(n) + ") must be a multiple of R (" + std::to_string(R) + ") with row/col operands");
    if (n == 0) return undefinedValue(env);
    auto extent = [&](int mode) -> int64_t { return mode == BM_FULL ? n : mode == BM_SCALAR ? 1 : mode == BM_ROW ? R : n / R; };
    Span sa = rangeOf(a, "a", A.p, A.len, aOff, extent(modeA), 4), sb = rangeOf(a, "b", B.p, B.len, bOff, extent(modeB), 4);
    void* outP = cmp ? (void*)(outU.p + outOff) : (void*)(outF.p + outOff);
    Span so = cmp ? rangeOf(a, "out", outU.p, outU.len, outOff, n, 1) : rangeOf(a, "out", outF.p, outF.len, outOff, n, 4);
    inPlaceOrDisjoint(a, so, "out", sa, "a", !cmp && modeA == BM_FULL);
    inPlaceOrDisjoint(a, so, "out", sb, "b", !cmp && modeB == BM_FULL);
    activeTable()->binary(op, A.p + aOff, modeA, B.p + bOff, modeB, outP, n, R);
    return undefinedValue(env);
  });
}

napi_value ReduceSum(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.reduceSum", 7);
    Buf<float> x = a.f32(0, "x"), out = a.f32(5, "out");
    int64_t xOff = a.integer(1, "xOff", 0, kMaxDim);
    int64_t outer = a.integer(2, "outer", 0, kMaxDim), n = a.integer(3, "n", 0, kMaxDim), inner = a.integer(4, "inner", 0, kMaxDim);
    int64_t outOff = a.integer(6, "outOff", 0, kMaxDim);
    if ((__int128)outer * n * inner > (__int128)kMaxDim) a.rangeErr("outer*n*inner is too large");
    if (outer == 0 || inner == 0) return undefinedValue(env);
    Span sx = rangeOf(a, "x", x.p, x.len, xOff, outer * n * inner, 4);
    Span so = rangeOf(a, "out", out.p, out.len, outOff, outer * inner, 4);
    inPlaceOrDisjoint(a, so, "out", sx, "x", false);
    if (!activeTable()->reduceSum(x.p + xOff, out.p + outOff, outer, n, inner)) throw std::bad_alloc();
    return undefinedValue(env);
  });
}

napi_value AdamUpdate(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.adamUpdate", 14);
    Buf<float> p = a.f32(0, "p"), g = a.f32(1, "g"), m = a.f32(2, "m"), v = a.f32(3, "v"), vmax = a.f32(4, "vmax", true);
    const int64_t n = (int64_t)p.len;
    a.exactLen(g, "g", n, "p.length");
    a.exactLen(m, "m", n, "p.length");
    a.exactLen(v, "v", n, "p.length");
    if (vmax.present()) a.exactLen(vmax, "vmax", n, "p.length");
    AdamHyper h{};
    h.lr = (float)a.number(5, "lr");
    h.beta1 = (float)a.number(6, "beta1");
    h.beta2 = (float)a.number(7, "beta2");
    h.eps = (float)a.number(8, "eps");
    h.weightDecay = (float)a.number(9, "weightDecay");
    h.stepSize = (float)a.number(10, "stepSize");
    h.bc2sqrt = (float)a.number(11, "bc2sqrt");
    h.decoupled = a.boolean(12, "decoupled");
    h.maximize = a.boolean(13, "maximize");
    if (!(h.bc2sqrt > 0.0f)) a.rangeErr("bc2sqrt must be > 0");
    if (n == 0) return undefinedValue(env);
    const Buf<float>* bufs[] = {&p, &g, &m, &v, &vmax};
    const char* names[] = {"p", "g", "m", "v", "vmax"};
    for (int i = 0; i < 5; i++)
      for (int k = i + 1; k < 5; k++)
        if (overlaps(spanOf(bufs[i]->p, 0, (int64_t)bufs[i]->len - 1, 4), spanOf(bufs[k]->p, 0, (int64_t)bufs[k]->len - 1, 4)))
          a.rangeErr(std::string("'") + names[i] + "' and '" + names[k] + "' must not share memory");
    activeTable()->adamUpdate(p.p, g.p, m.p, v.p, vmax.len ? vmax.p : nullptr, n, h);
    return undefinedValue(env);
  });
}

}  // namespace

void registerElementwise(napi_env env, napi_value exports) {
  const NamedFunction fns[] = {
      {"unary", Unary},
      {"binary", Binary},
      {"reduceSum", ReduceSum},
      {"adamUpdate", AdamUpdate},
  };
  defineFunctions(env, exports, fns);
}

}  // namespace af
