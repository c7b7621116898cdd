// Stand-alone check of the native kernel tables against plain float64 references, without Node: built for
// arm64 with a cross compiler and run under qemu-user by scripts/native-cross-check.mjs (test/native-neon.test.ts),
// so the NEON kernels are checked where no ARM machine is at hand. It also builds natively (x86: avx512/avx2 when the
// CPU has them). Odd shapes throughout (1, 3, 17, 33, 63, 65, 129 … and depths past one KC block), every transpose
// combination, alpha/beta, bias + each activation, batch broadcast, the pre-packed-B path; attention with causal
// masks (Tq ≠ Tk), key padding, additive masks with −∞ and an all-masked row, GQA/MQA, ALiBi, forward, backward and
// recomputed weights (per head and head mean, row subsets); layer norm, softmax (both directions), every unary and
// binary op, float64-accumulated sums, Adam. Dropout and the elementwise ops are compared with the generic table
// (same hash, same formulas). Each check runs on 1 and on 3 pool threads.
// Usage: kernel-check [isa ...]   (default: every table this CPU runs). Prints one line per check group and
// "N passed, M failed"; exit status 1 on any failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "af-common.h"

using af::KernelTable;
using std::vector;

namespace {

uint64_t rngState = 0x9e3779b97f4a7c15ull;
float urand() {  // [-1, 1)
  rngState = rngState * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rngState >> 40) * (1.0 / 8388608.0) - 1.0);
}
vector<float> rnd(size_t n, float s = 1.0f) {
  vector<float> v(n);
  for (auto& x : v) x = urand() * s;
  return v;
}

int passed = 0, failed = 0;
std::string group;

// |got − want| ≤ atol + rtol·|scale| elementwise (scale: the magnitude of the terms that were summed); NaN must match.
bool close(const float* got, const double* want, const double* scale, size_t n, double atol, double rtol, const char* what) {
  for (size_t i = 0; i < n; i++) {
    double g = got[i], w = want[i], s = scale ? scale[i] : std::fabs(w);
    bool ok = std::isnan(w) ? std::isnan(g) : std::isinf(w) ? g == w : std::fabs(g - w) <= atol + rtol * s;
    if (!ok) {
      std::printf("FAIL %s: %s[%zu] = %.9g, want %.9g (scale %.3g)\n", group.c_str(), what, i, g, w, s);
      failed++;
      return false;
    }
  }
  passed++;
  return true;
}
bool closeF(const float* got, const float* want, size_t n, double atol, double rtol, const char* what) {
  vector<double> w(want, want + n);
  return close(got, w.data(), nullptr, n, atol, rtol, what);
}

// ---------------- GEMM ----------------
void checkGemm(const KernelTable* t) {
  struct S { int64_t M, N, K; };
  const S shapes[] = {{1, 1, 1}, {3, 5, 7}, {4, 33, 65}, {17, 33, 65}, {63, 129, 31}, {130, 47, 300}, {6, 16, 1},
                      {2, 200, 600}, {65, 17, 513}, {7, 2100, 9}, {128, 64, 64}};
  for (const S& s : shapes)
    for (int tr = 0; tr < 4; tr++)
      for (int variant = 0; variant < 3; variant++) {
        const bool tA = tr & 1, tB = tr & 2;
        const int64_t M = s.M, N = s.N, K = s.K, batch = variant == 2 ? 3 : 1;
        const int64_t lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 2, ldc = N + 1;
        const int64_t sA = (tA ? K : M) * lda, sB = variant == 2 ? 0 : (tB ? N : K) * ldb, sC = M * ldc;
        vector<float> A = rnd(sA * batch + 8), B = rnd((tB ? N : K) * ldb + 8), C = rnd(sC * batch), bias = rnd(N);
        vector<float> C0 = C;
        af::GemmArgs g{};
        g.transA = tA; g.transB = tB; g.M = M; g.N = N; g.K = K;
        g.alpha = variant == 0 ? 1.0f : 1.5f;
        g.beta = variant == 1 ? 0.5f : 0.0f;
        g.A = A.data() + 1; g.lda = lda; g.strideA = sA;
        g.B = B.data() + 2; g.ldb = ldb; g.strideB = sB;
        g.C = C.data(); g.ldc = ldc; g.strideC = sC; g.batch = batch;
        g.bias = variant == 1 ? bias.data() : nullptr;
        g.act = variant == 1 ? (int)((M + N + tr) % 4) : 0;
        if (variant == 0) for (auto& c : C) c = NAN;  // beta = 0 never reads C
        vector<float> packed;
        if (variant == 1 && t->gemmUsesPackedB(g)) {  // the packed-weight cache's path
          packed.resize((size_t)t->packedBFloats(N, K));
          t->packBFull(g, packed.data());
          g.Bpacked = packed.data();
        }
        t->gemm(g);
        vector<double> want(C.size()), scale(C.size());
        vector<float> got;
        for (int64_t b = 0; b < batch; b++)
          for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
              double acc = 0, mag = 0;
              for (int64_t k = 0; k < K; k++) {
                double a = g.A[b * sA + (tA ? k * lda + i : i * lda + k)], bb = g.B[b * sB + (tB ? j * ldb + k : k * ldb + j)];
                acc += a * bb;
                mag += std::fabs(a * bb);
              }
              double z = g.alpha * acc + (g.beta != 0 ? g.beta * (double)C0[b * sC + i * ldc + j] : 0.0);
              mag = std::fabs(g.alpha) * mag + std::fabs(g.beta * (double)C0[b * sC + i * ldc + j]);
              if (g.bias) { z += bias[j]; mag += std::fabs(bias[j]); }
              if (g.act == af::ACT_RELU) z = z > 0 ? z : 0;
              if (g.act == af::ACT_GELU_ERF) z = 0.5 * z * (1 + std::erf(z / std::sqrt(2.0)));
              if (g.act == af::ACT_GELU_TANH) z = 0.5 * z * (1 + std::tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
              size_t n = got.size();
              got.push_back(C[b * sC + i * ldc + j]);
              want.resize(n + 1); scale.resize(n + 1);
              want[n] = z; scale[n] = mag;
            }
        char what[96];
        std::snprintf(what, sizeof what, "gemm %lldx%lldx%lld tA=%d tB=%d v%d", (long long)M, (long long)N, (long long)K, tA, tB, variant);
        close(got.data(), want.data(), scale.data(), got.size(), 1e-5, 2e-6 * std::sqrt((double)K) + 1e-6, what);
        // the padding column between rows of C must be untouched (NaN when variant 0 filled C with NaN)
        for (int64_t b = 0; b < batch; b++)
          for (int64_t i = 0; i < M; i++) {
            const float c = C[b * sC + i * ldc + N];
            if (variant == 0 ? !std::isnan(c) : c != C0[b * sC + i * ldc + N]) {
              std::printf("FAIL %s: %s wrote past column N\n", group.c_str(), what);
              failed++;
            }
          }
      }
}

// ---------------- attention ----------------
struct AttnCase {
  int64_t B, H, Hkv, Tq, Tk, D, Dv;
  bool causal, pad, mask, alibi;
};

struct AttnData {
  AttnCase c;
  vector<float> q, k, v, dout, mask, slopes;
  vector<uint8_t> keyPad;
  af::AttnArgs a{};
  // reference (float64): P (B,H,Tq,Tk), out, lse
  vector<double> P, out, lse;
};

void setup(AttnData& d) {
  const AttnCase& c = d.c;
  d.q = rnd(c.B * c.H * c.Tq * c.D, 1.5f);
  d.k = rnd(c.B * c.Hkv * c.Tk * c.D, 1.5f);
  d.v = rnd(c.B * c.Hkv * c.Tk * c.Dv);
  d.dout = rnd(c.B * c.H * c.Tq * c.Dv);
  if (c.pad) {
    d.keyPad.assign(c.B * c.Tk, 0);
    for (auto& p : d.keyPad) p = urand() > 0.5f;
    d.keyPad[0] = 0;
    if (c.B > 1) for (int64_t j = 0; j < c.Tk; j++) d.keyPad[(c.B - 1) * c.Tk + j] = 1;  // a batch with every key padded
  }
  if (c.mask) {
    d.mask = rnd(c.H * c.Tq * c.Tk, 2.0f);  // maskB = 1, maskH = H
    for (auto& m : d.mask) if (urand() > 0.8f) m = -INFINITY;
    for (int64_t j = 0; j < c.Tk; j++) d.mask[(c.Tq / 2) * c.Tk + j] = -INFINITY;  // an all-masked row (head 0)
  }
  if (c.alibi) {
    d.slopes.resize(c.H);
    for (int64_t h = 0; h < c.H; h++) d.slopes[h] = std::pow(2.0f, -8.0f * (h + 1) / c.H);
  }
  af::AttnArgs& a = d.a;
  a = af::AttnArgs{};
  a.q = d.q.data(); a.k = d.k.data(); a.v = d.v.data();
  a.B = c.B; a.H = c.H; a.Hkv = c.Hkv; a.Tq = c.Tq; a.Tk = c.Tk; a.D = c.D; a.Dv = c.Dv;
  a.sq = {c.H * c.Tq * c.D, c.Tq * c.D, c.D};
  a.sk = {c.Hkv * c.Tk * c.D, c.Tk * c.D, c.D};
  a.sv = {c.Hkv * c.Tk * c.Dv, c.Tk * c.Dv, c.Dv};
  a.so = a.sdo = {c.H * c.Tq * c.Dv, c.Tq * c.Dv, c.Dv};
  a.sdq = a.sq; a.sdk = a.sk; a.sdv = a.sv;
  a.scale = 1.0f / std::sqrt((float)c.D);
  a.causal = c.causal;
  a.keyPad = c.pad ? d.keyPad.data() : nullptr;
  a.mask = c.mask ? d.mask.data() : nullptr;
  a.maskB = 1; a.maskH = c.mask ? c.H : 1;
  a.alibi = c.alibi ? d.slopes.data() : nullptr;
  a.alibiOffset = c.alibi ? c.Tk - c.Tq : 0;

  // float64 reference
  const int64_t G = c.H / c.Hkv;
  d.P.assign(c.B * c.H * c.Tq * c.Tk, 0.0);
  d.out.assign(c.B * c.H * c.Tq * c.Dv, 0.0);
  d.lse.assign(c.B * c.H * c.Tq, 0.0);
  vector<double> s(c.Tk);
  for (int64_t b = 0; b < c.B; b++)
    for (int64_t h = 0; h < c.H; h++)
      for (int64_t i = 0; i < c.Tq; i++) {
        const int64_t hk = h / G;
        double mx = -INFINITY;
        for (int64_t j = 0; j < c.Tk; j++) {
          bool masked = (c.causal && j > i) || (c.pad && d.keyPad[b * c.Tk + j]);
          double x = 0;
          for (int64_t e = 0; e < c.D; e++) x += (double)d.q[((b * c.H + h) * c.Tq + i) * c.D + e] * d.k[((b * c.Hkv + hk) * c.Tk + j) * c.D + e];
          x *= a.scale;
          if (c.mask) x += d.mask[(h * c.Tq + i) * c.Tk + j];
          if (c.alibi) x -= d.slopes[h] * std::fabs((double)(i + a.alibiOffset - j));
          s[j] = masked ? -INFINITY : x;
          mx = std::max(mx, s[j]);
        }
        const size_t row = (b * c.H + h) * c.Tq + i;
        if (mx == -INFINITY) { d.lse[row] = -INFINITY; continue; }  // all masked: out 0, P 0
        double sum = 0;
        for (int64_t j = 0; j < c.Tk; j++) sum += std::exp(s[j] - mx);
        d.lse[row] = mx + std::log(sum);
        for (int64_t j = 0; j < c.Tk; j++) {
          double p = std::exp(s[j] - mx) / sum;
          d.P[row * c.Tk + j] = p;
          for (int64_t e = 0; e < c.Dv; e++) d.out[row * c.Dv + e] += p * d.v[((b * c.Hkv + hk) * c.Tk + j) * c.Dv + e];
        }
      }
}

const AttnCase kAttnCases[] = {
    {1, 1, 1, 1, 1, 1, 1, false, false, false, false},
    {2, 4, 2, 17, 33, 8, 5, true, true, false, false},
    {1, 3, 1, 65, 63, 64, 64, true, false, true, false},
    {2, 2, 2, 33, 70, 17, 23, false, true, true, false},
    {1, 2, 1, 129, 130, 64, 32, true, false, false, true},
    {2, 4, 4, 40, 40, 3, 9, false, false, false, true},
    {1, 2, 2, 200, 150, 64, 64, false, false, false, false},
};

void checkAttention(const KernelTable* t, const KernelTable* generic) {
  for (const AttnCase& c : kAttnCases) {
    AttnData d;
    d.c = c;
    setup(d);
    char tag[128];
    std::snprintf(tag, sizeof tag, "attn B%lld H%lld/%lld Tq%lld Tk%lld D%lld Dv%lld%s%s%s%s", (long long)c.B, (long long)c.H,
                  (long long)c.Hkv, (long long)c.Tq, (long long)c.Tk, (long long)c.D, (long long)c.Dv, c.causal ? " causal" : "",
                  c.pad ? " pad" : "", c.mask ? " mask" : "", c.alibi ? " alibi" : "");
    // forward
    vector<float> out(d.out.size(), NAN), lse(d.lse.size(), NAN);
    af::AttnArgs a = d.a;
    a.outW = out.data(); a.lseW = lse.data();
    t->attnForward(a);
    std::string w = std::string(tag) + " out";
    close(out.data(), d.out.data(), nullptr, out.size(), 2e-5, 2e-5, w.c_str());
    w = std::string(tag) + " lse";
    close(lse.data(), d.lse.data(), nullptr, lse.size(), 2e-5, 2e-6, w.c_str());

    // backward (reference from the float64 P)
    const int64_t G = c.H / c.Hkv;
    vector<double> dq(d.q.size(), 0.0), dk(d.k.size(), 0.0), dv(d.v.size(), 0.0);
    vector<double> sdq(d.q.size(), 0.0), sdk(d.k.size(), 0.0), sdv(d.v.size(), 0.0);
    for (int64_t b = 0; b < c.B; b++)
      for (int64_t h = 0; h < c.H; h++)
        for (int64_t i = 0; i < c.Tq; i++) {
          const int64_t hk = h / G;
          const size_t row = (b * c.H + h) * c.Tq + i;
          double Di = 0;
          for (int64_t e = 0; e < c.Dv; e++) Di += (double)d.dout[row * c.Dv + e] * d.out[row * c.Dv + e];
          for (int64_t j = 0; j < c.Tk; j++) {
            double p = d.P[row * c.Tk + j];
            if (p == 0) continue;
            const size_t kr = (b * c.Hkv + hk) * c.Tk + j;
            double dp = 0;
            for (int64_t e = 0; e < c.Dv; e++) {
              dp += (double)d.dout[row * c.Dv + e] * d.v[kr * c.Dv + e];
              dv[kr * c.Dv + e] += p * d.dout[row * c.Dv + e];
              sdv[kr * c.Dv + e] += std::fabs(p * d.dout[row * c.Dv + e]);
            }
            double ds = p * (dp - Di) * a.scale;
            for (int64_t e = 0; e < c.D; e++) {
              dq[row * c.D + e] += ds * d.k[kr * c.D + e];
              sdq[row * c.D + e] += std::fabs(p * d.k[kr * c.D + e]) * 4;
              dk[kr * c.D + e] += ds * d.q[row * c.D + e];
              sdk[kr * c.D + e] += std::fabs(p * d.q[row * c.D + e]) * 4;
            }
          }
        }
    vector<float> gq(dq.size(), NAN), gk(dk.size(), NAN), gv(dv.size(), NAN);
    a = d.a;
    a.out = out.data(); a.lse = lse.data(); a.dout = d.dout.data();
    a.dq = gq.data(); a.dk = gk.data(); a.dv = gv.data();
    if (!t->attnBackward(a)) { std::printf("FAIL %s: %s backward ran out of scratch\n", group.c_str(), tag); failed++; }
    w = std::string(tag) + " dq";
    close(gq.data(), dq.data(), sdq.data(), gq.size(), 2e-5, 2e-5, w.c_str());
    w = std::string(tag) + " dk";
    close(gk.data(), dk.data(), sdk.data(), gk.size(), 2e-5, 2e-5, w.c_str());
    w = std::string(tag) + " dv";
    close(gv.data(), dv.data(), sdv.data(), gv.size(), 2e-5, 2e-5, w.c_str());

    // weights from lse: per head and head mean, all rows and a subset
    for (int mode = 0; mode < 2; mode++)
      for (int sub = 0; sub < 2; sub++) {
        a = d.a;
        a.lse = lse.data();
        a.mode = mode;
        a.rowStart = sub ? c.Tq / 3 : 0;
        a.rowCount = sub ? c.Tq - c.Tq / 3 - (c.Tq > 2 ? 1 : 0) : c.Tq;
        const int64_t HW = mode == 0 ? c.H : 1;
        vector<float> W(c.B * HW * a.rowCount * c.Tk, NAN);
        vector<double> ref(W.size(), 0.0);
        for (int64_t b = 0; b < c.B; b++)
          for (int64_t h = 0; h < c.H; h++)
            for (int64_t r = 0; r < a.rowCount; r++)
              for (int64_t j = 0; j < c.Tk; j++) {
                double p = d.P[((b * c.H + h) * c.Tq + a.rowStart + r) * c.Tk + j];
                if (mode == 0) ref[((b * c.H + h) * a.rowCount + r) * c.Tk + j] = p;
                else ref[(b * a.rowCount + r) * c.Tk + j] += p / c.H;
              }
        a.outW = W.data();
        t->attnWeights(a);
        w = std::string(tag) + (mode ? " weights mean" : " weights") + (sub ? " rows" : "");
        close(W.data(), ref.data(), nullptr, W.size(), 2e-6, 2e-5, w.c_str());
      }

    // dropout: the same hash and scaling as the generic table
    if (generic && generic != t) {
      vector<float> o1(out.size()), o2(out.size()), l1(lse.size()), l2(lse.size());
      a = d.a;
      a.dropoutP = 0.3; a.seed = 12345u;
      a.outW = o1.data(); a.lseW = l1.data();
      t->attnForward(a);
      a.outW = o2.data(); a.lseW = l2.data();
      generic->attnForward(a);
      w = std::string(tag) + " dropout out vs generic";
      closeF(o1.data(), o2.data(), o1.size(), 3e-5, 3e-5, w.c_str());
    }
  }
}

// ---------------- rows and elementwise ----------------
void checkRows(const KernelTable* t) {
  const int64_t Ds[] = {1, 3, 17, 64, 129, 1000};
  for (int64_t D : Ds) {
    const int64_t rows = 7;
    vector<float> x = rnd(rows * D, 3.0f), wt = rnd(D), bs = rnd(D), dy = rnd(rows * D);
    for (int64_t i = 0; i < D; i++) x[i] += 5.0f;  // a row with a large mean
    vector<float> y(rows * D, NAN), mean(rows), rstd(rows);
    t->layerNormForward(x.data(), wt.data(), bs.data(), y.data(), mean.data(), rstd.data(), rows, D, 1e-5f);
    vector<double> ry(rows * D), rmean(rows), rrstd(rows), rdx(rows * D), rdw(D, 0.0), rdb(D, 0.0);
    for (int64_t r = 0; r < rows; r++) {
      double m = 0, v = 0;
      for (int64_t i = 0; i < D; i++) m += x[r * D + i];
      m /= D;
      for (int64_t i = 0; i < D; i++) v += (x[r * D + i] - m) * (x[r * D + i] - m);
      v /= D;
      double rs = 1.0 / std::sqrt(v + 1e-5);
      rmean[r] = m; rrstd[r] = rs;
      double sg = 0, sgx = 0;
      for (int64_t i = 0; i < D; i++) {
        double xh = (x[r * D + i] - m) * rs, g = dy[r * D + i] * wt[i];
        ry[r * D + i] = xh * wt[i] + bs[i];
        rdw[i] += dy[r * D + i] * xh;
        rdb[i] += dy[r * D + i];
        sg += g; sgx += g * xh;
      }
      for (int64_t i = 0; i < D; i++) {
        double xh = (x[r * D + i] - m) * rs, g = dy[r * D + i] * wt[i];
        rdx[r * D + i] = rs * (g - sg / D - xh * sgx / D);
      }
    }
    std::string tag = "layerNorm D" + std::to_string(D);
    close(y.data(), ry.data(), nullptr, y.size(), 2e-5, 2e-5, (tag + " y").c_str());
    close(mean.data(), rmean.data(), nullptr, rows, 1e-5, 1e-6, (tag + " mean").c_str());
    close(rstd.data(), rrstd.data(), nullptr, rows, 1e-5, 1e-5, (tag + " rstd").c_str());
    vector<float> dx(rows * D, NAN), dw(D, 0.0f), db(D, 0.0f);
    t->layerNormBackward(dy.data(), x.data(), wt.data(), mean.data(), rstd.data(), dx.data(), dw.data(), db.data(), rows, D);
    close(dx.data(), rdx.data(), nullptr, dx.size(), 5e-5, 5e-5, (tag + " dx").c_str());
    close(dw.data(), rdw.data(), nullptr, D, 5e-5, 5e-5, (tag + " dw").c_str());
    close(db.data(), rdb.data(), nullptr, D, 5e-5, 5e-5, (tag + " db").c_str());

    // softmax forward and backward over rows of D
    vector<float> sy(rows * D, NAN), sdx(rows * D, NAN);
    x[D] = -INFINITY;  // one −inf entry in row 1
    t->softmax(x.data(), sy.data(), rows, D);
    vector<double> rsy(rows * D), rsdx(rows * D);
    for (int64_t r = 0; r < rows; r++) {
      double mx = -INFINITY, sum = 0, dot = 0;
      for (int64_t i = 0; i < D; i++) mx = std::max(mx, (double)x[r * D + i]);
      for (int64_t i = 0; i < D; i++) sum += std::exp(x[r * D + i] - mx);
      for (int64_t i = 0; i < D; i++) rsy[r * D + i] = std::exp(x[r * D + i] - mx) / sum;
      for (int64_t i = 0; i < D; i++) dot += (double)sy[r * D + i] * dy[r * D + i];
      for (int64_t i = 0; i < D; i++) rsdx[r * D + i] = sy[r * D + i] * (dy[r * D + i] - dot);
    }
    tag = "softmax n" + std::to_string(D);
    close(sy.data(), rsy.data(), nullptr, sy.size(), 1e-6, 2e-6, (tag + " y").c_str());
    t->softmaxBackward(sy.data(), dy.data(), sdx.data(), rows, D);
    close(sdx.data(), rsdx.data(), nullptr, sdx.size(), 1e-6, 1e-5, (tag + " dx").c_str());
  }
}

void checkElementwise(const KernelTable* t, const KernelTable* generic) {
  const int64_t n = 70001;  // two 32768-element chunks and a tail
  vector<float> x = rnd(n, 12.0f), y = rnd(n, 3.0f);
  const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-30f, -1e-30f, 88.0f, -88.0f, 200.0f, -200.0f, 1e30f};
  for (size_t i = 0; i < sizeof special / sizeof *special; i++) x[i * 97] = special[i];
  for (int op = 0; op < af::UN_COUNT; op++) {
    vector<float> o1(n), o2(n);
    t->unary(op, x.data(), o1.data(), n);
    generic->unary(op, x.data(), o2.data(), n);
    std::string w = "unary op " + std::to_string(op) + " vs generic";
    if (op >= af::UN_GELU) {
      // the GELU family: an FMA variant (avx2/avx512) against the SSE baseline differs by the rounding of the
      // cancelling Φ(x) + x·φ(x) terms and of x² in the tails; the float64 accuracy of each is test/native-elementwise's
      vector<double> want(o2.begin(), o2.end()), scale(n);
      for (int64_t i = 0; i < n; i++) scale[i] = std::fabs(want[i]) + 0.005 * (1.0 + std::fabs((double)x[i]));
      close(o1.data(), want.data(), scale.data(), n, 1e-30, 2e-5, w.c_str());
    } else {
      closeF(o1.data(), o2.data(), n, 1e-30, 4e-6, w.c_str());
    }
  }
  {  // e^x against float64 on its own
    vector<float> o(n);
    vector<double> r(n);
    t->unary(af::UN_EXP, x.data(), o.data(), n);
    for (int64_t i = 0; i < n; i++) r[i] = std::exp((double)x[i]);
    for (int64_t i = 0; i < n; i++) if (r[i] > 3.4e38) r[i] = INFINITY;
    close(o.data(), r.data(), nullptr, n, 1e-37, 1e-6, "exp vs float64");
  }
  const int64_t R = 37, nb = R * 1000;
  for (int op = 0; op < af::BIN_COUNT; op++)
    for (int ma = 0; ma < 4; ma++)
      for (int mb = 0; mb < 4; mb++) {
        if (op >= af::BIN_RELU_BWD && (ma != af::BM_FULL || mb != af::BM_FULL)) continue;
        const bool u8 = op >= af::BIN_EQ && op <= af::BIN_GE;
        vector<float> o1(nb), o2(nb);
        t->binary(op, x.data(), ma, y.data(), mb, o1.data(), nb, R);
        generic->binary(op, x.data(), ma, y.data(), mb, o2.data(), nb, R);
        std::string w = "binary op " + std::to_string(op) + " modes " + std::to_string(ma) + "/" + std::to_string(mb);
        if (u8) {
          if (std::memcmp(o1.data(), o2.data(), nb)) { std::printf("FAIL %s: %s\n", group.c_str(), w.c_str()); failed++; } else passed++;
        } else if (op >= af::BIN_GELU_BWD) {  // dy·gelu'(z): as the unary GELU family, scaled by |dy|
          vector<double> want(o2.begin(), o2.end()), scale(nb);
          for (int64_t i = 0; i < nb; i++) scale[i] = std::fabs(want[i]) + 0.005 * std::fabs((double)x[i]) * (1.0 + std::fabs((double)y[i]));
          close(o1.data(), want.data(), scale.data(), nb, 1e-30, 2e-5, w.c_str());
        } else {
          closeF(o1.data(), o2.data(), nb, 1e-30, 2e-6, w.c_str());
        }
      }
  {  // float64-accumulated sums over the middle axis
    const int64_t outer = 3, mid = 5001, inner = 7;
    vector<float> xs = rnd(outer * mid * inner), o(outer * inner);
    vector<double> r(outer * inner, 0.0);
    t->reduceSum(xs.data(), o.data(), outer, mid, inner);
    for (int64_t a = 0; a < outer; a++)
      for (int64_t m = 0; m < mid; m++)
        for (int64_t c = 0; c < inner; c++) r[a * inner + c] += xs[(a * mid + m) * inner + c];
    close(o.data(), r.data(), nullptr, o.size(), 1e-6, 1e-6, "reduceSum");
  }
  for (int variant = 0; variant < 2; variant++) {  // Adam (variant 0) and AdamW with amsgrad (1)
    const int64_t na = 10007;
    vector<float> p = rnd(na), g = rnd(na), m = rnd(na, 0.1f), v = rnd(na, 0.1f), vm = rnd(na, 0.1f);
    for (auto& e : v) e = std::fabs(e);
    for (auto& e : vm) e = std::fabs(e);
    vector<float> p2 = p, m2 = m, v2 = v, vm2 = vm;
    af::AdamHyper h{1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1e-3f / (1 - 0.9f * 0.9f), std::sqrt(1 - 0.999f * 0.999f), variant == 1, false};
    t->adamUpdate(p.data(), g.data(), m.data(), v.data(), variant ? vm.data() : nullptr, na, h);
    generic->adamUpdate(p2.data(), g.data(), m2.data(), v2.data(), variant ? vm2.data() : nullptr, na, h);
    closeF(p.data(), p2.data(), na, 1e-7, 1e-6, variant ? "adamw amsgrad p" : "adam p");
    closeF(m.data(), m2.data(), na, 1e-8, 1e-6, variant ? "adamw amsgrad m" : "adam m");
    closeF(v.data(), v2.data(), na, 1e-10, 1e-6, variant ? "adamw amsgrad v" : "adam v");
  }
}

}  // namespace

int main(int argc, char** argv) {
  struct Entry { const char* name; const KernelTable* t; };
  vector<Entry> tables;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && af::tableAvx512())
    tables.push_back({"avx512", af::tableAvx512()});
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && af::tableAvx2()) tables.push_back({"avx2", af::tableAvx2()});
#endif
  if (af::tableNeon()) tables.push_back({"neon", af::tableNeon()});
  tables.push_back({"generic", af::tableGeneric()});
  vector<std::string> want(argv + 1, argv + argc);
  bool any = false;
  for (const Entry& e : tables) {
    if (!want.empty() && std::find(want.begin(), want.end(), e.name) == want.end()) continue;
    any = true;
    for (int threads : {1, 3}) {
      af::setNumThreads(threads);
      int f0 = failed, p0 = passed;
      group = std::string(e.name) + " " + std::to_string(threads) + "t";
      checkGemm(e.t);
      checkAttention(e.t, af::tableGeneric());
      checkRows(e.t);
      checkElementwise(e.t, af::tableGeneric());
      std::printf("%s (%s): %d checks passed, %d failed\n", group.c_str(), e.t->isa, passed - p0, failed - f0);
    }
  }
  if (!any) {
    std::printf("no kernel table matched (asked for %s)\n", argc > 1 ? argv[1] : "?");
    return 2;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
