// N-API bindings of the fused attention kernels: shape/mask/dropout/layout validation, then the active ISA's
// attnForward / attnBackward / attnWeights.
#include <node_api.h>

#include <cmath>
#include <string>

#include "af-common.h"
#include "napi-args.h"

namespace af {
namespace {

// One attention tensor: its buffer, logical extents (B, heads, T, features) and element strides. By default it is
// contiguous and must have exactly B·heads·T·features elements; an entry in the optional layout argument
// ({ name: [offset, strideB, strideH, strideT] }) places it anywhere in its buffer instead (bounds-checked).
struct Tensor {
  const char* name;
  const char* formula;  // its default length, for messages
  Buf<float> buf;
  int64_t B, heads, T, feat;
  bool output;
  bool custom = false;
  int64_t offset = 0;
  Strides st{0, 0, 0};
  int64_t last = -1;  // last element index touched

  void setDefault() {
    st = {heads * T * feat, T * feat, feat};
    offset = 0;
    last = B * heads * T * feat - 1;
  }
};

void layoutTensor(const Args& a, napi_value layout, Tensor& t) {
  t.setDefault();
  bool hasProp = false;
  if (layout) napi_has_named_property(a.env(), layout, t.name, &hasProp);
  if (!hasProp) {
    a.exactLen(t.buf, t.name, (__int128)t.B * t.heads * t.T * t.feat, t.formula);
    return;
  }
  napi_value arr;
  napi_get_named_property(a.env(), layout, t.name, &arr);
  bool isArr = false;
  uint32_t n = 0;
  napi_is_array(a.env(), arr, &isArr);
  if (isArr) napi_get_array_length(a.env(), arr, &n);
  if (!isArr || n != 4) a.typeErr(std::string("layout.") + t.name + " must be [offset, strideB, strideH, strideT]");
  int64_t v[4];
  for (uint32_t i = 0; i < 4; i++) {
    napi_value e;
    napi_get_element(a.env(), arr, i, &e);
    double x = 0;
    napi_valuetype ty;
    napi_typeof(a.env(), e, &ty);
    if (ty != napi_number || napi_get_value_double(a.env(), e, &x) != napi_ok || !(x >= 0) || x != std::floor(x) || x > (double)kMaxDim)
      a.rangeErr(std::string("layout.") + t.name + " entries must be non-negative integers");
    v[i] = (int64_t)x;
  }
  t.custom = true;
  t.offset = v[0];
  t.st = {v[1], v[2], v[3]};
  if (t.B * t.heads * t.T == 0) { t.last = t.offset - 1; return; }
  __int128 last = (__int128)t.offset + (__int128)(t.B - 1) * t.st.b + (__int128)(t.heads - 1) * t.st.h +
                  (__int128)(t.T - 1) * t.st.t + t.feat - 1;
  if (last >= (__int128)t.buf.len)
    a.rangeErr(std::string("argument '") + t.name + "' is too short for its layout: element " + Args::i128(last) +
               " is addressed but its length is " + std::to_string(t.buf.len));
  t.last = (int64_t)last;
  if (t.output) {
    // Writes must not alias: sorted by stride, each axis must step past everything the smaller axes cover.
    int64_t ext[4] = {t.feat, t.T, t.heads, t.B}, str[4] = {1, t.st.t, t.st.h, t.st.b};
    for (int i = 1; i < 4; i++)
      for (int j = i; j > 0 && str[j] < str[j - 1]; j--) {
        int64_t x = str[j]; str[j] = str[j - 1]; str[j - 1] = x;
        x = ext[j]; ext[j] = ext[j - 1]; ext[j - 1] = x;
      }
    __int128 covered = 0;
    for (int i = 0; i < 4; i++) {
      if (ext[i] <= 1) continue;
      if ((__int128)str[i] <= covered)
        a.rangeErr(std::string("layout.") + t.name + " makes distinct elements of the output share memory");
      covered += (__int128)str[i] * (ext[i] - 1);
    }
  }
}

Span spanOfTensor(const Tensor& t) { return spanOf(t.buf.p, t.offset, t.last, 4); }

// Outputs must not share memory with inputs (checked on the address range each one spans) nor with each other
// (checked when both are laid out by default: with custom layouts, disjointness is up to the caller).
void checkAliasing(const Args& a, Tensor* const* ts, size_t n, const Buf<float>& mask, const Buf<uint8_t>& pad) {
  for (size_t i = 0; i < n; i++) {
    if (!ts[i]->output) continue;
    Span so = spanOfTensor(*ts[i]);
    for (size_t j = 0; j < n; j++) {
      if (j == i) continue;
      if (ts[j]->output && (j < i || ts[i]->custom || ts[j]->custom)) continue;
      if (overlaps(so, spanOfTensor(*ts[j])))
        a.rangeErr(std::string(ts[j]->output ? "outputs '" : "output '") + ts[i]->name + (ts[j]->output ? "' and '" : "' must not share memory with '") +
                   ts[j]->name + (ts[j]->output ? "' must not share memory" : "'"));
    }
    if (overlaps(so, spanOf(mask.p, 0, (int64_t)mask.len - 1, 4))) a.rangeErr(std::string("output '") + ts[i]->name + "' must not share memory with 'attnMask'");
    if (overlaps(so, spanOf(pad.p, 0, (int64_t)pad.len - 1, 1))) a.rangeErr(std::string("output '") + ts[i]->name + "' must not share memory with 'keyPad'");
  }
}

napi_value layoutArg(const Args& a, size_t i) {
  if (!a.has(i)) return nullptr;
  napi_valuetype t;
  napi_typeof(a.env(), a.at(i), &t);
  if (t != napi_object) a.typeErr("argument 'layout' must be an object or undefined");
  return a.at(i);
}

// Dims at i..i+5 (+Dv when withDv): B, H, Hkv, Tq, Tk, D[, Dv]; returns the index after them.
size_t parseDims(const Args& a, size_t i, AttnArgs& o, bool withDv) {
  o.B = a.integer(i++, "B", 0, kMaxDim);
  o.H = a.integer(i++, "H", 1, kMaxDim);
  o.Hkv = a.integer(i++, "Hkv", 1, kMaxDim);
  o.Tq = a.integer(i++, "Tq", 0, kMaxSeq);
  o.Tk = a.integer(i++, "Tk", 0, kMaxSeq);
  o.D = a.integer(i++, "D", 1, kMaxDim);
  o.Dv = withDv ? a.integer(i++, "Dv", 1, kMaxDim) : 1;
  if (o.H % o.Hkv != 0)
    a.rangeErr("H (" + std::to_string(o.H) + ") must be a multiple of Hkv (" + std::to_string(o.Hkv) + ")");
  return i;
}

// scale, causal, keyPad, attnMask, maskB, maskH at i..i+5.
size_t parseMasking(const Args& a, size_t i, AttnArgs& o, Buf<uint8_t>& pad, Buf<float>& mask) {
  o.scale = (float)a.number(i++, "scale");
  o.causal = a.boolean(i++, "causal");
  pad = a.u8(i++, "keyPad", true);
  mask = a.f32(i++, "attnMask", true);
  if (pad.p || pad.len) a.exactLen(pad, "keyPad", (__int128)o.B * o.Tk, "B*Tk");
  o.keyPad = pad.len ? pad.p : nullptr;
  if (mask.p || mask.len) {
    o.maskB = a.integer(i, "maskB", 1, kMaxDim);
    o.maskH = a.integer(i + 1, "maskH", 1, kMaxDim);
    if (o.maskB != 1 && o.maskB != o.B) a.rangeErr("maskB must be 1 or B (" + std::to_string(o.B) + "), got " + std::to_string(o.maskB));
    if (o.maskH != 1 && o.maskH != o.H) a.rangeErr("maskH must be 1 or H (" + std::to_string(o.H) + "), got " + std::to_string(o.maskH));
    a.exactLen(mask, "attnMask", (__int128)o.maskB * o.maskH * o.Tq * o.Tk, "maskB*maskH*Tq*Tk");
    o.mask = mask.len ? mask.p : nullptr;
  } else {
    o.maskB = o.maskH = 1;
  }
  return i + 2;
}

// Optional ALiBi slopes (Float32Array of H, or null/undefined) and the query offset, after the layout argument.
void parseAlibi(const Args& a, size_t i, AttnArgs& o, Buf<float>& slopes) {
  o.alibi = nullptr;
  o.alibiOffset = 0;
  if (!a.has(i)) return;
  slopes = a.f32(i, "alibiSlopes");
  a.exactLen(slopes, "alibiSlopes", (__int128)o.H, "H");
  o.alibi = slopes.p;
  o.alibiOffset = a.has(i + 1) ? a.integer(i + 1, "alibiOffset", -kMaxSeq, kMaxSeq) : 0;
}

// Optional sliding window (winLo, winHi: key j visible from query i iff i + winLo <= j <= i + winHi) after the ALiBi
// arguments; both null/undefined = no window.
void parseWindow(const Args& a, size_t i, AttnArgs& o) {
  o.window = false;
  o.winLo = o.winHi = 0;
  if (!a.has(i) && !a.has(i + 1)) return;
  o.winLo = a.integer(i, "windowLo", -o.Tq, o.Tk);
  o.winHi = a.integer(i + 1, "windowHi", -o.Tq, o.Tk);
  o.window = true;
}

void parseDropout(const Args& a, size_t i, AttnArgs& o) {
  o.dropoutP = a.number(i, "dropoutP");
  if (!(o.dropoutP >= 0.0 && o.dropoutP < 1.0)) a.rangeErr("dropoutP must be in [0, 1), got " + Args::fmt(o.dropoutP));
  o.seed = toUint32(a.number(i + 1, "seed"));
}

}  // namespace

napi_value AttnForward(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.attnForward", 20);
    AttnArgs o{};
    size_t i = parseDims(a, 5, o, true);
    Buf<uint8_t> pad;
    Buf<float> mask;
    i = parseMasking(a, i, o, pad, mask);
    parseDropout(a, i, o);
    napi_value layout = layoutArg(a, 20);
    Buf<float> alibi;
    parseAlibi(a, 21, o, alibi);
    parseWindow(a, 23, o);
    Tensor q{"q", "B*H*Tq*D", a.f32(0, "q"), o.B, o.H, o.Tq, o.D, false}, k{"k", "B*Hkv*Tk*D", a.f32(1, "k"), o.B, o.Hkv, o.Tk, o.D, false},
        v{"v", "B*Hkv*Tk*Dv", a.f32(2, "v"), o.B, o.Hkv, o.Tk, o.Dv, false}, out{"out", "B*H*Tq*Dv", a.f32(3, "out"), o.B, o.H, o.Tq, o.Dv, true},
        lse{"lse", "B*H*Tq", a.f32(4, "lse", true), o.B, o.H, o.Tq, 1, true};
    for (Tensor* t : {&q, &k, &v, &out}) layoutTensor(a, layout, *t);
    if (lse.buf.p || lse.buf.len) layoutTensor(a, nullptr, lse);
    Tensor* all[] = {&q, &k, &v, &out, &lse};
    checkAliasing(a, all, lse.buf.len ? 5 : 4, mask, pad);
    o.q = q.buf.p + q.offset; o.sq = q.st;
    o.k = k.buf.p + k.offset; o.sk = k.st;
    o.v = v.buf.p + v.offset; o.sv = v.st;
    o.outW = out.buf.p + out.offset; o.so = out.st;
    o.lseW = lse.buf.len ? lse.buf.p : nullptr;
    activeTable()->attnForward(o);
    return undefinedValue(env);
  });
}

napi_value AttnBackward(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.attnBackward", 24);
    AttnArgs o{};
    size_t i = parseDims(a, 9, o, true);
    Buf<uint8_t> pad;
    Buf<float> mask;
    i = parseMasking(a, i, o, pad, mask);
    parseDropout(a, i, o);
    napi_value layout = layoutArg(a, 24);
    Buf<float> alibi;
    parseAlibi(a, 25, o, alibi);
    parseWindow(a, 27, o);
    Tensor q{"q", "B*H*Tq*D", a.f32(0, "q"), o.B, o.H, o.Tq, o.D, false}, k{"k", "B*Hkv*Tk*D", a.f32(1, "k"), o.B, o.Hkv, o.Tk, o.D, false},
        v{"v", "B*Hkv*Tk*Dv", a.f32(2, "v"), o.B, o.Hkv, o.Tk, o.Dv, false}, out{"out", "B*H*Tq*Dv", a.f32(3, "out"), o.B, o.H, o.Tq, o.Dv, false},
        dout{"dout", "B*H*Tq*Dv", a.f32(4, "dout"), o.B, o.H, o.Tq, o.Dv, false}, lse{"lse", "B*H*Tq", a.f32(5, "lse"), o.B, o.H, o.Tq, 1, false},
        dq{"dq", "B*H*Tq*D", a.f32(6, "dq"), o.B, o.H, o.Tq, o.D, true}, dk{"dk", "B*Hkv*Tk*D", a.f32(7, "dk"), o.B, o.Hkv, o.Tk, o.D, true},
        dv{"dv", "B*Hkv*Tk*Dv", a.f32(8, "dv"), o.B, o.Hkv, o.Tk, o.Dv, true};
    for (Tensor* t : {&q, &k, &v, &out, &dout, &dq, &dk, &dv}) layoutTensor(a, layout, *t);
    layoutTensor(a, nullptr, lse);
    Tensor* all[] = {&q, &k, &v, &out, &dout, &lse, &dq, &dk, &dv};
    checkAliasing(a, all, 9, mask, pad);
    o.q = q.buf.p + q.offset; o.sq = q.st;
    o.k = k.buf.p + k.offset; o.sk = k.st;
    o.v = v.buf.p + v.offset; o.sv = v.st;
    o.out = out.buf.p + out.offset; o.so = out.st;
    o.dout = dout.buf.p + dout.offset; o.sdo = dout.st;
    o.lse = lse.buf.p;
    o.dq = dq.buf.p + dq.offset; o.sdq = dq.st;
    o.dk = dk.buf.p + dk.offset; o.sdk = dk.st;
    o.dv = dv.buf.p + dv.offset; o.sdv = dv.st;
    if (!activeTable()->attnBackward(o)) throw std::bad_alloc();
    return undefinedValue(env);
  });
}

napi_value AttnWeights(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.attnWeights", 19);
    AttnArgs o{};
    size_t i = parseDims(a, 4, o, false);
    Buf<uint8_t> pad;
    Buf<float> mask;
    i = parseMasking(a, i, o, pad, mask);
    if (a.isString(i)) {
      std::string m = a.str(i);
      if (m == "full") o.mode = 0;
      else if (m == "mean") o.mode = 1;
      else a.rangeErr("argument 'mode' must be 0/\"full\" or 1/\"mean\", got \"" + m + "\"");
    } else {
      o.mode = (int)a.integer(i, "mode", 0, 1);
    }
    o.rowStart = a.integer(i + 1, "rowStart", 0, kMaxSeq);
    o.rowCount = a.integer(i + 2, "rowCount", 0, kMaxSeq);
    if (o.rowStart + o.rowCount > o.Tq)
      a.rangeErr("rows [rowStart, rowStart+rowCount) = [" + std::to_string(o.rowStart) + ", " +
                 std::to_string(o.rowStart + o.rowCount) + ") exceed Tq (" + std::to_string(o.Tq) + ")");
    napi_value layout = layoutArg(a, 19);
    Buf<float> alibi;
    parseAlibi(a, 20, o, alibi);
    parseWindow(a, 22, o);
    Tensor q{"q", "B*H*Tq*D", a.f32(0, "q"), o.B, o.H, o.Tq, o.D, false}, k{"k", "B*Hkv*Tk*D", a.f32(1, "k"), o.B, o.Hkv, o.Tk, o.D, false},
        lse{"lse", "B*H*Tq", a.f32(2, "lse"), o.B, o.H, o.Tq, 1, false},
        w{"outW", o.mode == 0 ? "B*H*rowCount*Tk" : "B*rowCount*Tk", a.f32(3, "outW"), o.B, o.mode == 0 ? o.H : 1, o.rowCount, o.Tk, true};
    layoutTensor(a, layout, q);
    layoutTensor(a, layout, k);
    layoutTensor(a, nullptr, lse);
    layoutTensor(a, nullptr, w);
    Tensor* all[] = {&q, &k, &lse, &w};
    checkAliasing(a, all, 4, mask, pad);
    o.q = q.buf.p + q.offset; o.sq = q.st;
    o.k = k.buf.p + k.offset; o.sk = k.st;
    o.lse = lse.buf.p; o.outW = w.buf.p;
    activeTable()->attnWeights(o);
    return undefinedValue(env);
  });
}

}  // namespace af
