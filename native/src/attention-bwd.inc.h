// Fused attention backward (FlashAttention-2 style, recomputing P from q, k and the saved lse) for one ISA.
// One task = (b, kv head, chunk c of key blocks): it owns dK/dV of its key blocks (summed over the query heads that
// share the kv head), so they are written without atomics. Tiles are key-major in lanes:
//   S  = Q_blk · K^T                      P = 2^(S·scale·log2e + mask − lse·log2e)        (BQ × BKp)
//   dP̃ = dO_blk · V^T                     dS = P ⊙ (dP̃ ⊙ z/(1−p) − Δ)·scale, Δ_i = dO_i · O_i
//   dV^T += dO_blk^T · P̃                  dK^T += Q_blk^T · dS                dQ_blk += dS · K
// With a sliding window a key block visits only the query blocks whose band reaches it.
// dQ is accumulated per chunk (one buffer per chunk, summed in chunk order at the end, so results are bitwise
// reproducible whatever thread ran what); with a single chunk it accumulates straight into dq.

constexpr int64_t BWD_BQ = 64;
constexpr int64_t BWD_BK = ATT_NV * VW * (VW == 16 ? 1 : 2);

struct BwdCtx {
  const AttnArgs* a;
  int64_t nkb, chunks, Dp, BKp;
  float qscale, invKeep;
  uint32_t thr;
  bool dropout;
  const float* delta;  // (B,H,Tq)  Δ = rowsum(dout ⊙ out)
  const float* lse2;   // (B,H,Tq)  lse·log2e, +inf for rows with no visible key (P = 0)
  float* dqAcc;        // chunks × (B,H,Tq,Dp)
  bool dqDirect;       // one chunk and Dp = D: accumulate straight into dq through its strides (any layout)
};

// P for lanes j0+v·VW … of one query row from its raw score q·k (key-major lanes): scale, additive mask (row mrow,
// valid for the first nk columns), −inf columns (colNeg), causal j > i, minus lse·log2e, then 2^x.
// Padded columns are replaced by −inf, not added to: a NaN key there must not show in the weights (the forward never
// reads its score either).
// ALiBi (slope2 = slope·log2e ≠ 0): minus slope2·|row + offset − j|.
// Sliding window (window): −inf for keys j < row + winLo or j > row + winHi.
AF_INLINE vf probVec(vf raw, float qscale, const float* colNeg, const float* mrow, int64_t v, int64_t nk, vi jv,
                     bool causal, int64_t row, float L2, float slope2 = 0.0f, int64_t alibiOffset = 0,
                     bool window = false, int64_t winLo = 0, int64_t winHi = 0) {
  vf neg = load(colNeg + v * VW);
  vf x = select(neg < 0.0f, neg, raw * qscale);
  if (slope2 != 0.0f) {
    vf d = splat((float)(row + alibiOffset)) - __builtin_convertvector(jv, vf);
    x -= splat(slope2) * vmax(d, -d);
  }
  if (mrow) {
    if (v * VW + VW <= nk) {
      x += load(mrow + v * VW) * kLog2e;
    } else {
      alignas(64) float tmp[VW];
      for (int l = 0; l < VW; l++) tmp[l] = v * VW + l < nk ? mrow[v * VW + l] : 0.0f;
      x += load(tmp) * kLog2e;
    }
  }
  if (causal) x = select(jv > (int32_t)row, splat(-__builtin_inff()), x);
  if (window) x = select((jv < (int32_t)(row + winLo)) | (jv > (int32_t)(row + winHi)), splat(-__builtin_inff()), x);
  return vexp2(x - L2);
}

void bwdKeyBlock(const BwdCtx& c, int64_t b, int64_t hk, int64_t kb, float* dqAcc) {
  const AttnArgs& a = *c.a;
  const int64_t D = a.D, Dv = a.Dv, Tk = a.Tk, Tq = a.Tq, Dp = c.Dp, BKp = c.BKp;
  const int64_t G = a.H / a.Hkv;
  int64_t j0 = kb * BWD_BK, nk = imin(BWD_BK, Tk - j0);
  const float* Kb = a.k + b * a.sk.b + hk * a.sk.h + j0 * a.sk.t;
  const float* Vb = a.v + b * a.sv.b + hk * a.sv.h + j0 * a.sv.t;

  float* KT = threadScratch(0, (size_t)(D * BKp));     // (D, BKp)
  float* VT = threadScratch(1, (size_t)(Dv * BKp));    // (Dv, BKp)
  float* Kp = threadScratch(2, (size_t)(nk * Dp));     // (nk, Dp)
  float* dKT = threadScratch(3, (size_t)(D * BKp));
  float* dVT = threadScratch(4, (size_t)(Dv * BKp));
  float* S = threadScratch(5, (size_t)(3 * BWD_BQ * BKp + BKp));
  float* PD = S + BWD_BQ * BKp;       // P̃ (dropped, scaled)
  float* dP = PD + BWD_BQ * BKp;
  float* colNeg = dP + BWD_BQ * BKp;  // 0 or −inf per key column (padding, columns past nk)
  transposeScaled(Kb, a.sk.t, nk, D, KT, BKp, 1.0f);
  transposeScaled(Vb, a.sv.t, nk, Dv, VT, BKp, 1.0f);
  if (nk < BKp) {
    for (int64_t d = 0; d < D; d++)
      for (int64_t j = nk; j < BKp; j++) KT[d * BKp + j] = 0.0f;
    for (int64_t d = 0; d < Dv; d++)
      for (int64_t j = nk; j < BKp; j++) VT[d * BKp + j] = 0.0f;
  }
  for (int64_t j = 0; j < nk; j++)
    for (int64_t d = 0; d < Dp; d++) Kp[j * Dp + d] = d < D ? Kb[j * a.sk.t + d] : 0.0f;
  for (int64_t x = 0; x < D * BKp; x++) dKT[x] = 0.0f;
  for (int64_t x = 0; x < Dv * BKp; x++) dVT[x] = 0.0f;
  for (int64_t j = 0; j < BKp; j++)
    colNeg[j] = (j >= nk || (a.keyPad && a.keyPad[b * Tk + j0 + j])) ? -__builtin_inff() : 0.0f;

  vi lane;
  for (int l = 0; l < VW; l++) lane[l] = l;
  const int64_t nv = BKp / VW;
  int64_t iFirst = a.causal ? j0 : 0, iEnd = Tq;  // causal: queries i < j0 see none of these keys
  if (a.window) {  // sliding window: only queries i with i + winLo <= j0 + nk - 1 and i + winHi >= j0 see any of them
    iFirst = imax(iFirst, j0 - a.winHi);
    iEnd = imin(Tq, j0 + nk - a.winLo);
  }
  iFirst = imax(iFirst, 0);
  for (int64_t h = hk * G; h < hk * G + G; h++) {
    const int64_t bh = b * a.H + h;
    const float* M = maskBase(a, b, h);
    for (int64_t i0 = iFirst / BWD_BQ * BWD_BQ; i0 < iEnd; i0 += BWD_BQ) {
      int64_t nq = imin(BWD_BQ, Tq - i0);
      const float* Qb = a.q + b * a.sq.b + h * a.sq.h + i0 * a.sq.t;
      const float* dOb = a.dout + b * a.sdo.b + h * a.sdo.h + i0 * a.sdo.t;
      blockGemm(nq, BKp, D, Qb, a.sq.t, 1, KT, BKp, S, BKp, false);
      blockGemm(nq, BKp, Dv, dOb, a.sdo.t, 1, VT, BKp, dP, BKp, false);
      for (int64_t i = 0; i < nq; i++) {
        int64_t row = i0 + i;
        float L2 = c.lse2[bh * Tq + row];
        float dl = c.delta[bh * Tq + row];
        uint32_t rk = c.dropout ? dropRowKey(a.seed, (uint32_t)b, (uint32_t)h, (uint32_t)row) : 0;
        const float* mrow = M ? M + row * Tk + j0 : nullptr;
        for (int64_t v = 0; v < nv; v++) {
          float* s = S + i * BKp + v * VW;
          float* pd = PD + i * BKp + v * VW;
          float* dp = dP + i * BKp + v * VW;
          vi jv = lane + (int32_t)(j0 + v * VW);
          vf p = probVec(load(s), c.qscale, colNeg, mrow, v, nk, jv, a.causal, row, L2, a.alibi ? a.alibi[h] * kLog2e : 0.0f, a.alibiOffset,
                         a.window, a.winLo, a.winHi);
          vf dpt = load(dp);
          vf pdrop = p, dpdrop = dpt;
          if (c.dropout) {
            vu hsh = mix32v(splatu(rk) ^ (vu)jv);
            vi keep = (vi)((hsh >> 8) >= c.thr);
            pdrop = select(keep, p * c.invKeep, splat(0.0f));
            dpdrop = select(keep, dpt * c.invKeep, splat(0.0f));
          }
          store(pd, pdrop);
          store(s, p * (dpdrop - dl) * a.scale);  // dS, with the softmax scale folded in
        }
      }
      blockGemm(Dv, BKp, nq, dOb, 1, a.sdo.t, PD, BKp, dVT, BKp, true);
      blockGemm(D, BKp, nq, Qb, 1, a.sq.t, S, BKp, dKT, BKp, true);
      if (c.dqDirect) blockGemm(nq, Dp, nk, S, BKp, 1, Kp, Dp, a.dq + b * a.sdq.b + h * a.sdq.h + i0 * a.sdq.t, a.sdq.t, true);
      else blockGemm(nq, Dp, nk, S, BKp, 1, Kp, Dp, dqAcc + (bh * Tq + i0) * Dp, Dp, true);
    }
  }
  transposeScaled(dKT, BKp, D, nk, a.dk + b * a.sdk.b + hk * a.sdk.h + j0 * a.sdk.t, a.sdk.t, 1.0f);
  transposeScaled(dVT, BKp, Dv, nk, a.dv + b * a.sdv.b + hk * a.sdv.h + j0 * a.sdv.t, a.sdv.t, 1.0f);
}

void bwdTask(void* vctx, int64_t t, int) {
  const BwdCtx& c = *static_cast<const BwdCtx*>(vctx);
  const AttnArgs& a = *c.a;
  int64_t chunk = t % c.chunks, bk = t / c.chunks;
  int64_t b = bk / a.Hkv, hk = bk % a.Hkv;
  float* acc = c.dqAcc + chunk * (a.B * a.H * a.Tq * c.Dp);
  for (int64_t kb = chunk; kb < c.nkb; kb += c.chunks) bwdKeyBlock(c, b, hk, kb, acc);
}

struct RowsCtx {
  const BwdCtx* c;
  int64_t rows, per;
};

// Δ and lse·log2e per query row; zero the dQ accumulators.
void bwdPrepTask(void* vctx, int64_t t, int) {
  const RowsCtx& r = *static_cast<const RowsCtx*>(vctx);
  const BwdCtx& c = *r.c;
  const AttnArgs& a = *c.a;
  int64_t r0 = t * r.per, r1 = imin(r.rows, r0 + r.per);
  float* delta = const_cast<float*>(c.delta);
  float* lse2 = const_cast<float*>(c.lse2);
  for (int64_t row = r0; row < r1; row++) {
    const int64_t b = row / (a.H * a.Tq), h = row / a.Tq % a.H, i = row % a.Tq;
    const float* o = a.out + b * a.so.b + h * a.so.h + i * a.so.t;
    const float* g = a.dout + b * a.sdo.b + h * a.sdo.h + i * a.sdo.t;
    float s = 0.0f;
    for (int64_t d = 0; d < a.Dv; d++) s += o[d] * g[d];
    delta[row] = s;
    float L = a.lse[row];
    lse2[row] = L == -__builtin_inff() ? __builtin_inff() : L * kLog2e;
    if (c.dqDirect) {
      float* q = a.dq + b * a.sdq.b + h * a.sdq.h + i * a.sdq.t;
      for (int64_t d = 0; d < a.D; d++) q[d] = 0.0f;
      continue;
    }
    for (int64_t ch = 0; ch < c.chunks; ch++) {
      float* q = c.dqAcc + ch * r.rows * c.Dp + row * c.Dp;
      for (int64_t d = 0; d < c.Dp; d++) q[d] = 0.0f;
    }
  }
}

// dq = Σ_chunks dqAcc (dropping the padding columns); a no-op when the accumulator is dq itself.
void bwdReduceTask(void* vctx, int64_t t, int) {
  const RowsCtx& r = *static_cast<const RowsCtx*>(vctx);
  const BwdCtx& c = *r.c;
  const AttnArgs& a = *c.a;
  int64_t r0 = t * r.per, r1 = imin(r.rows, r0 + r.per);
  for (int64_t row = r0; row < r1; row++) {
    const int64_t b = row / (a.H * a.Tq), h = row / a.Tq % a.H, i = row % a.Tq;
    float* dq = a.dq + b * a.sdq.b + h * a.sdq.h + i * a.sdq.t;
    for (int64_t d = 0; d < a.D; d++) {
      float s = 0.0f;
      for (int64_t ch = 0; ch < c.chunks; ch++) s += c.dqAcc[ch * r.rows * c.Dp + row * c.Dp + d];
      dq[d] = s;
    }
  }
}

void runMaybeParallel(int64_t tasks, TaskFn fn, void* ctx, bool parallel) {
  if (parallel) parallelFor(tasks, fn, ctx);
  else for (int64_t t = 0; t < tasks; t++) fn(ctx, t, 0);
}

// Returns false when the scratch memory could not be allocated.
bool attnBackward(const AttnArgs& a) {
  if (a.B == 0) return true;
  BwdCtx c;
  c.a = &a;
  c.nkb = ceilDiv(a.Tk, BWD_BK);
  c.Dp = roundUp(a.D, VW);
  c.BKp = roundUp(imin(BWD_BK, imax(a.Tk, 1)), VW);
  c.qscale = a.scale * kLog2e;
  c.dropout = a.dropoutP > 0.0;
  c.thr = dropThreshold(a.dropoutP);
  c.invKeep = c.dropout ? (float)(1.0 / (1.0 - a.dropoutP)) : 1.0f;
  const int64_t rows = a.B * a.H * a.Tq;
  const int64_t T = numThreads();
  double work = (double)a.B * a.H * a.Tq * (a.Tk + 1) * (a.D + a.Dv);
  bool parallel = T > 1 && work >= 1e5;
  // Chunks of key blocks per (b, kv head): enough tasks to keep every thread busy.
  int64_t groups = a.B * a.Hkv;
  c.chunks = 1;
  if (parallel && c.nkb > 1 && !(groups >= 4 * T || (groups >= T && groups % T == 0)))
    c.chunks = imin(c.nkb, ceilDiv(4 * T, groups));
  // dQ accumulates straight into dq (through its strides: token-major layouts too) when there is one chunk and the
  // head dim needs no padding; otherwise into per-chunk buffers summed at the end.
  bool direct = c.chunks == 1 && c.Dp == a.D;
  c.dqDirect = direct;
  size_t accSize = direct ? 0 : (size_t)(c.chunks * rows * c.Dp);
  float* buf = sharedScratch(2 * (size_t)rows + accSize);
  if (!buf) return false;
  c.delta = buf;
  c.lse2 = buf + rows;
  c.dqAcc = direct ? nullptr : buf + 2 * rows;
  RowsCtx rc{&c, rows, imax(1, ceilDiv(rows, 8 * T))};
  runMaybeParallel(ceilDiv(rows, rc.per), bwdPrepTask, &rc, parallel);
  if (a.Tk > 0) runMaybeParallel(groups * c.chunks, bwdTask, &c, parallel);
  if (!direct) runMaybeParallel(ceilDiv(rows, rc.per), bwdReduceTask, &rc, parallel);
  return true;
}
