// Attention weights recomputed from the saved lse, without materialising anything but the requested rows:
//   W[b,h,r,j] = 2^(q_i·k_j·scale·log2e + mask·log2e − lse_i·log2e),  i = rowStart + r   (pre-dropout)
// mode 0 writes per head (B,H,rowCount,Tk); mode 1 writes the head mean (B,rowCount,Tk), summed in head order.
// One task = (b, h or all heads, block of 64 rows); key blocks of BWD_BK reuse the backward's packed K^T tile.

constexpr int64_t W_BQ = 64;

struct WCtx {
  const AttnArgs* a;
  int64_t nrb, BKp;
  float qscale;
};

void weightsTask(void* vctx, int64_t t, int) {
  const WCtx& c = *static_cast<const WCtx*>(vctx);
  const AttnArgs& a = *c.a;
  const int64_t D = a.D, Tk = a.Tk, Tq = a.Tq, BKp = c.BKp, G = a.H / a.Hkv;
  const bool mean = a.mode == 1;
  int64_t rb = t % c.nrb, rest = t / c.nrb;
  int64_t b = mean ? rest : rest / a.H;
  int64_t hBegin = mean ? 0 : rest % a.H, hEnd = mean ? a.H : hBegin + 1;
  int64_t r0 = rb * W_BQ, nr = imin(W_BQ, a.rowCount - r0);
  int64_t i0 = a.rowStart + r0;
  float invH = 1.0f / (float)a.H;

  float* KT = threadScratch(0, (size_t)(D * BKp));
  float* S = threadScratch(1, (size_t)(W_BQ * BKp + BKp));
  float* colNeg = S + W_BQ * BKp;
  vi lane;
  for (int l = 0; l < VW; l++) lane[l] = l;

  for (int64_t j0 = 0; j0 < Tk; j0 += BWD_BK) {
    int64_t nk = imin(BWD_BK, Tk - j0);
    for (int64_t j = 0; j < BKp; j++)
      colNeg[j] = (j >= nk || (a.keyPad && a.keyPad[b * Tk + j0 + j])) ? -__builtin_inff() : 0.0f;
    int64_t packedHk = -1;
    for (int64_t h = hBegin; h < hEnd; h++) {
      int64_t hk = h / G, bh = b * a.H + h;
      if (hk != packedHk) {
        const float* Kb = a.k + b * a.sk.b + hk * a.sk.h + j0 * a.sk.t;
        transposeScaled(Kb, a.sk.t, nk, D, KT, BKp, 1.0f);
        for (int64_t d = 0; d < D; d++)
          for (int64_t j = nk; j < BKp; j++) KT[d * BKp + j] = 0.0f;
        packedHk = hk;
      }
      blockGemm(nr, BKp, D, a.q + b * a.sq.b + h * a.sq.h + i0 * a.sq.t, a.sq.t, 1, KT, BKp, S, BKp, false);
      const float* M = maskBase(a, b, h);
      for (int64_t r = 0; r < nr; r++) {
        int64_t row = i0 + r;
        float L = a.lse[bh * Tq + row];
        float L2 = L == -__builtin_inff() ? __builtin_inff() : L * kLog2e;
        const float* mrow = M ? M + row * Tk + j0 : nullptr;
        float* o = a.outW + (mean ? (b * a.rowCount + r0 + r) : (bh * a.rowCount + r0 + r)) * Tk + j0;
        for (int64_t v = 0; v * VW < nk; v++) {
          vi jv = lane + (int32_t)(j0 + v * VW);
          vf p = probVec(load(S + r * BKp + v * VW), c.qscale, colNeg, mrow, v, nk, jv, a.causal, row, L2,
                         a.alibi ? a.alibi[h] * kLog2e : 0.0f, a.alibiOffset, a.window, a.winLo, a.winHi);
          int64_t cnt = imin(VW, nk - v * VW);
          float* dst = o + v * VW;
          if (mean) {
            p *= invH;
            if (h == 0) {
              if (cnt == VW) store(dst, p);
              else for (int l = 0; l < cnt; l++) dst[l] = p[l];
            } else {
              if (cnt == VW) store(dst, load(dst) + p);
              else for (int l = 0; l < cnt; l++) dst[l] += p[l];
            }
          } else {
            if (cnt == VW) store(dst, p);
            else for (int l = 0; l < cnt; l++) dst[l] = p[l];
          }
        }
      }
    }
  }
}

void attnWeights(const AttnArgs& a) {
  if (a.B == 0 || a.rowCount == 0 || a.Tk == 0) return;
  WCtx c;
  c.a = &a;
  c.nrb = ceilDiv(a.rowCount, W_BQ);
  c.BKp = roundUp(imin(BWD_BK, a.Tk), VW);
  c.qscale = a.scale * kLog2e;
  int64_t tasks = c.nrb * a.B * (a.mode == 1 ? 1 : a.H);
  double work = (double)a.B * a.H * a.rowCount * a.Tk * (a.D + 8);
  if (work < 2e5) {
    for (int64_t t = 0; t < tasks; t++) weightsTask(&c, t, 0);
    return;
  }
  parallelFor(tasks, weightsTask, &c);
}
