// Argument parsing and validation for the N-API functions (generic flags only). Every check throws an ArgError
// naming the function and the argument; the entry points turn it into a JS TypeError or RangeError.
#pragma once
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>

#include "af-common.h"

namespace af {

struct ArgError {
  bool range;  // RangeError (bad value/length) vs TypeError (bad type/count)
  std::string msg;
};

template <typename T>
struct Buf {
  T* p = nullptr;
  size_t len = 0;
  bool present() const { return p != nullptr || len > 0; }
};

// exports.<name> = fn for each entry (the N-API property-descriptor boilerplate, once).
struct NamedFunction {
  const char* name;
  napi_callback fn;
};
template <size_t N>
inline void defineFunctions(napi_env env, napi_value exports, const NamedFunction (&fns)[N]) {
  napi_property_descriptor props[N];
  for (size_t i = 0; i < N; i++) props[i] = {fns[i].name, nullptr, fns[i].fn, nullptr, nullptr, nullptr, napi_enumerable, nullptr};
  napi_define_properties(env, exports, N, props);
}

class Args {
 public:
  Args(napi_env env, napi_callback_info info, const char* fn, size_t expected) : env_(env), fn_(fn) {
    argc_ = kMax;
    if (napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr) != napi_ok) typeErr("could not read arguments");
    if (argc_ < expected)
      throw ArgError{false, std::string(fn) + ": expected " + std::to_string(expected) + " arguments, got " +
                                std::to_string(argc_)};
  }

  // The values of a JS array (e.g. one entry of a list argument) read with the same checks; errors name `fn`.
  Args(napi_env env, const char* fn, const napi_value* values, size_t n) : env_(env), fn_(fn) {
    argc_ = n < kMax ? n : kMax;
    for (size_t i = 0; i < argc_; i++) argv_[i] = values[i];
  }

  [[noreturn]] void typeErr(const std::string& m) const { throw ArgError{false, std::string(fn_) + ": " + m}; }
  [[noreturn]] void rangeErr(const std::string& m) const { throw ArgError{true, std::string(fn_) + ": " + m}; }

  napi_env env() const { return env_; }
  size_t count() const { return argc_; }
  napi_value at(size_t i) const { return argv_[i]; }
  // Whether optional argument i was passed (and is not null/undefined).
  bool has(size_t i) const { return i < argc_ && !isNullish(i); }

  bool isNullish(size_t i) const {
    napi_valuetype t;
    napi_typeof(env_, argv_[i], &t);
    return t == napi_null || t == napi_undefined;
  }

  template <typename T>
  Buf<T> typed(size_t i, const char* name, napi_typedarray_type want, const char* wantName, bool nullable) const {
    Buf<T> b;
    if (nullable && isNullish(i)) return b;
    bool is = false;
    napi_is_typedarray(env_, argv_[i], &is);
    napi_typedarray_type type;
    void* data = nullptr;
    size_t len = 0;
    if (!is || napi_get_typedarray_info(env_, argv_[i], &type, &len, &data, nullptr, nullptr) != napi_ok ||
        type != want)
      typeErr(std::string("argument '") + name + "' must be a " + wantName + (nullable ? " or null" : ""));
    b.p = static_cast<T*>(data);
    b.len = len;
    return b;
  }
  Buf<float> f32(size_t i, const char* name, bool nullable = false) const {
    return typed<float>(i, name, napi_float32_array, "Float32Array", nullable);
  }
  Buf<uint8_t> u8(size_t i, const char* name, bool nullable = false) const {
    return typed<uint8_t>(i, name, napi_uint8_array, "Uint8Array", nullable);
  }

  double number(size_t i, const char* name) const {
    napi_valuetype t;
    napi_typeof(env_, argv_[i], &t);
    double v = 0;
    if (t != napi_number || napi_get_value_double(env_, argv_[i], &v) != napi_ok)
      typeErr(std::string("argument '") + name + "' must be a number");
    if (!std::isfinite(v)) rangeErr(std::string("argument '") + name + "' must be finite");
    return v;
  }

  int64_t integer(size_t i, const char* name, int64_t lo, int64_t hi) const {
    double v = number(i, name);
    if (v != std::floor(v) || v < (double)lo || v > (double)hi)
      rangeErr(std::string("argument '") + name + "' must be an integer in [" + std::to_string(lo) + ", " +
               std::to_string(hi) + "], got " + fmt(v));
    return (int64_t)v;
  }

  bool boolean(size_t i, const char* name) const {
    napi_valuetype t;
    napi_typeof(env_, argv_[i], &t);
    if (t == napi_boolean) {
      bool b = false;
      napi_get_value_bool(env_, argv_[i], &b);
      return b;
    }
    if (t == napi_number) {
      double v = 0;
      napi_get_value_double(env_, argv_[i], &v);
      if (v == 0 || v == 1) return v == 1;
    }
    typeErr(std::string("argument '") + name + "' must be a boolean");
  }

  std::string str(size_t i) const {
    napi_valuetype t;
    napi_typeof(env_, argv_[i], &t);
    if (t != napi_string) return std::string();
    char buf[64];
    size_t n = 0;
    napi_get_value_string_utf8(env_, argv_[i], buf, sizeof buf, &n);
    return std::string(buf, n);
  }

  bool isString(size_t i) const {
    napi_valuetype t;
    napi_typeof(env_, argv_[i], &t);
    return t == napi_string;
  }

  // Checks that a buffer holds exactly `want` elements.
  template <typename T>
  void exactLen(const Buf<T>& b, const char* name, __int128 want, const char* formula) const {
    if ((__int128)b.len != want)
      rangeErr(std::string("argument '") + name + "' has length " + std::to_string(b.len) + ", expected " +
               formula + " = " + i128(want));
  }

  static std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }
  static std::string i128(__int128 v) {
    if (v < 0) return "-" + i128(-v);
    std::string s;
    do { s.insert(s.begin(), char('0' + (int)(v % 10))); v /= 10; } while (v > 0);
    return s;
  }

 private:
  static constexpr size_t kMax = 32;
  napi_env env_;
  const char* fn_;
  size_t argc_ = 0;
  napi_value argv_[kMax];
};

const int64_t kMaxDim = int64_t(1) << 40;  // shapes are checked against buffer lengths anyway
const int64_t kMaxSeq = 0x7fffffff;        // sequence lengths are used as 32-bit lane indices

inline napi_value undefinedValue(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// Runs body(); an ArgError becomes a JS TypeError/RangeError, bad_alloc a plain Error.
template <typename F>
napi_value guarded(napi_env env, F&& body) {
  try {
    return body();
  } catch (const ArgError& e) {
    if (e.range) napi_throw_range_error(env, "ERR_ATTNFLOW_ARG", e.msg.c_str());
    else napi_throw_type_error(env, "ERR_ATTNFLOW_ARG", e.msg.c_str());
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, "ERR_ATTNFLOW_OOM", "attnflow native: out of memory");
  }
  return nullptr;
}

// JS ToUint32 of a number (what `seed ^ x` does in the TypeScript hash).
inline uint32_t toUint32(double v) {
  if (!std::isfinite(v)) return 0;
  double m = std::fmod(std::trunc(v), 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return (uint32_t)m;
}

// Byte range [lo, hi) of memory an operation touches; empty when lo == hi.
struct Span {
  const void* lo;
  const void* hi;
};
inline Span spanOf(const void* base, int64_t first, int64_t last, size_t elem) {
  if (last < first || !base) return {nullptr, nullptr};
  const char* p = static_cast<const char*>(base);
  return {p + first * (int64_t)elem, p + (last + 1) * (int64_t)elem};
}
inline bool overlaps(Span a, Span b) {
  if (!a.lo || !b.lo) return false;
  return a.lo < b.hi && b.lo < a.hi;
}

// The kernel variant in use (addon.cc).
const KernelTable* activeTable();

// Attention entry points (napi-attention.cc).
napi_value AttnForward(napi_env env, napi_callback_info info);
napi_value AttnBackward(napi_env env, napi_callback_info info);
napi_value AttnWeights(napi_env env, napi_callback_info info);

// Elementwise entry points (napi-elementwise.cc): adds unary, binary, reduceSum, adamUpdate to exports.
void registerElementwise(napi_env env, napi_value exports);

}  // namespace af
