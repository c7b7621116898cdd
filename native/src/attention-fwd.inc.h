// Fused attention forward (FlashAttention-2 style) for one ISA.
// One task = (b, h, query block of BQ rows). Tiles are kept "query-major in lanes": the score tile is stored
// transposed, S^T (keys × BQ), so each SIMD lane is one query row and the online softmax needs no horizontal
// reductions:
//   S^T = K_blk · (scale·log2e · Q_blk)^T          (BK × BQ)   A = K rows broadcast, B = packed Q^T
//   m' = max(m, colmax S^T);  P^T = 2^(S^T − m');  l = l·2^(m−m') + colsum P^T
//   O^T = O^T·2^(m−m') + V_blk^T · P̃^T             (Dv × BQ)   A = V read transposed, B = P̃^T rows
// Scores are kept in base-2 units (log2e folded into the scale and the additive mask), lse = (m + log2 l)·ln 2.
// Sliding window (AttnArgs::window): key tiles wholly outside every query's band are never visited, tiles the band
// cuts are masked per lane, so the cost is O(Tq·(window + tile)) rather than O(Tq·Tk).
// q, k, v and out are addressed through their strides (AttnArgs::sq …). Only O^T, m, l live across key blocks:
// O(BQ·(D+Dv)) scratch per thread, nothing of size Tq×Tk. ALiBi biases are computed per tile from the head's slope.

constexpr int64_t FWD_BQ = ATT_NV * VW;   // 64 query lanes with AVX-512
#ifndef AF_FWD_BK
#define AF_FWD_BK 128
#endif
constexpr int64_t FWD_BK = AF_FWD_BK;  // keys per tile

struct FwdCtx {
  const AttnArgs* a;
  int64_t nqb;
  float qscale, invKeep;
  uint32_t thr;
  bool dropout;
};

AF_INLINE const float* maskBase(const AttnArgs& a, int64_t b, int64_t h) {
  if (!a.mask) return nullptr;
  int64_t mb = a.maskB == 1 ? 0 : b, mh = a.maskH == 1 ? 0 : h;
  return a.mask + (mb * a.maskH + mh) * a.Tq * a.Tk;
}

void fwdTask(void* vctx, int64_t t, int) {
  const FwdCtx& c = *static_cast<const FwdCtx*>(vctx);
  const AttnArgs& a = *c.a;
  // Head-major order, so both threads sweep the same head's K/V at the same time (it stays in the shared cache);
  // within a head the heaviest blocks come first (with causal masking, later query blocks see more keys).
  int64_t bh = t / c.nqb, qb = c.nqb - 1 - t % c.nqb;
  int64_t b = bh / a.H, h = bh % a.H, hk = h / (a.H / a.Hkv);
  int64_t D = a.D, Dv = a.Dv, Tk = a.Tk;
  int64_t q0 = qb * FWD_BQ, nq = imin(FWD_BQ, a.Tq - q0);
  const float* Q = a.q + b * a.sq.b + h * a.sq.h + q0 * a.sq.t;
  const float* K = a.k + b * a.sk.b + hk * a.sk.h;
  const float* V = a.v + b * a.sv.b + hk * a.sv.h;
  const float* M = maskBase(a, b, h);
  const uint8_t* pad = a.keyPad ? a.keyPad + b * Tk : nullptr;

  float* QT = threadScratch(0, (size_t)(D * FWD_BQ));   // (D, BQ) scaled Q^T, zero lanes past nq
  float* ST = threadScratch(1, (size_t)(FWD_BK * FWD_BQ));
  float* OT = threadScratch(2, (size_t)(Dv * FWD_BQ));
  transposeScaled(Q, a.sq.t, nq, D, QT, FWD_BQ, c.qscale);
  if (nq < FWD_BQ)
    for (int64_t d = 0; d < D; d++)
      for (int64_t i = nq; i < FWD_BQ; i++) QT[d * FWD_BQ + i] = 0.0f;
  for (int64_t x = 0; x < Dv * FWD_BQ; x++) OT[x] = 0.0f;

  vf mv[ATT_NV], lv[ATT_NV], alpha[ATT_NV];
  vu rowKey[ATT_NV];
  vi lane;
  vf laneF;
  for (int l = 0; l < VW; l++) { lane[l] = l; laneF[l] = (float)l; }
  for (int v = 0; v < ATT_NV; v++) {
    mv[v] = splat(-__builtin_inff());
    lv[v] = splat(0.0f);
    if (c.dropout)
      for (int l = 0; l < VW; l++) rowKey[v][l] = dropRowKey(a.seed, (uint32_t)b, (uint32_t)h, (uint32_t)(q0 + v * VW + l));
  }

  int64_t kEnd = a.causal ? imin(Tk, q0 + nq) : Tk;  // causal: tiles entirely above the diagonal are never visited
  int64_t kBeg = 0;                                     // sliding window: nor tiles wholly outside the band
  if (a.window) {
    kBeg = imax(0, q0 + a.winLo);
    kEnd = imin(kEnd, q0 + nq + a.winHi);
  }
  for (int64_t j0 = kBeg; j0 < kEnd; j0 += FWD_BK) {
    int64_t nk = imin(FWD_BK, kEnd - j0);
    // the band cuts this tile: some key is left of the last query's window or right of the first query's
    const bool winTile = a.window && (j0 < q0 + nq - 1 + a.winLo || j0 + nk - 1 > q0 + a.winHi);
    // Tiles with no mask to apply get their column maxima from the score registers; others in a separate pass.
    bool anyPad = false;
    if (pad)
      for (int64_t j = 0; j < nk; j++) anyPad |= pad[j0 + j] != 0;
    const bool plain = !M && !a.alibi && !anyPad && !(a.causal && j0 + nk - 1 > q0) && !winTile;
    vf tileMax[ATT_NV];
    for (int v = 0; v < ATT_NV; v++) tileMax[v] = mv[v];
    if (plain) blockGemmMax(nk, D, K + j0 * a.sk.t, a.sk.t, 1, QT, FWD_BQ, ST, FWD_BQ, tileMax);
    else blockGemm(nk, FWD_BQ, D, K + j0 * a.sk.t, a.sk.t, 1, QT, FWD_BQ, ST, FWD_BQ, false);
    if (M) {  // additive mask: its (queries × keys) block transposed into lanes, then added
      float* MT = threadScratch(3, (size_t)(FWD_BK * FWD_BQ));
      transposeScaled(M + q0 * Tk + j0, Tk, nq, nk, MT, FWD_BQ, kLog2e);
      for (int64_t j = 0; j < nk; j++) {
        for (int64_t i = nq; i < FWD_BQ; i++) MT[j * FWD_BQ + i] = 0.0f;
        for (int v = 0; v < ATT_NV; v++) store(ST + j * FWD_BQ + v * VW, load(ST + j * FWD_BQ + v * VW) + load(MT + j * FWD_BQ + v * VW));
      }
    }
    if (a.alibi) {  // −slope·|i + offset − j| in base-2 units, query i in the lanes
      vf negSlope = splat(-a.alibi[h] * kLog2e);
      for (int64_t j = 0; j < nk; j++)
        for (int v = 0; v < ATT_NV; v++) {
          vf d = laneF + (float)(q0 + v * VW + a.alibiOffset - (j0 + j));
          float* s = ST + j * FWD_BQ + v * VW;
          store(s, load(s) + negSlope * vmax(d, -d));
        }
    }
    if (anyPad)
      for (int64_t j = 0; j < nk; j++)
        if (pad[j0 + j])
          for (int64_t v = 0; v < ATT_NV; v++) store(ST + j * FWD_BQ + v * VW, splat(-__builtin_inff()));
    if (a.causal && j0 + nk - 1 > q0) {  // tile crosses the diagonal: mask key j > query i
      for (int64_t j = 0; j < nk; j++) {
        int32_t jj = (int32_t)(j0 + j);
        if (jj <= q0) continue;
        for (int v = 0; v < ATT_NV; v++) {
          vi qi = lane + (int32_t)(q0 + v * VW);
          float* s = ST + j * FWD_BQ + v * VW;
          store(s, select(qi < jj, splat(-__builtin_inff()), load(s)));
        }
      }
    }
    if (winTile) {  // mask key j < query i + winLo or j > i + winHi
      for (int64_t j = 0; j < nk; j++) {
        int32_t jj = (int32_t)(j0 + j);
        for (int v = 0; v < ATT_NV; v++) {
          vi qi = lane + (int32_t)(q0 + v * VW);
          float* s = ST + j * FWD_BQ + v * VW;
          store(s, select((qi + (int32_t)a.winLo > jj) | (qi + (int32_t)a.winHi < jj), splat(-__builtin_inff()), load(s)));
        }
      }
    }
    // Online softmax, one vector of query lanes at a time.
    for (int v = 0; v < ATT_NV; v++) {
      vf mx = tileMax[v];
      if (!plain)
        for (int64_t j = 0; j < nk; j++) mx = vmax(mx, load(ST + j * FWD_BQ + v * VW));
      vf msafe = select(mx == -__builtin_inff(), splat(0.0f), mx);  // all-masked so far: keep P = 0, no NaN
      alpha[v] = vexp2(mv[v] - msafe);
      mv[v] = mx;
      vf sum = splat(0.0f);
      if (!c.dropout) {
        for (int64_t j = 0; j < nk; j++) {
          float* s = ST + j * FWD_BQ + v * VW;
          vf p = vexp2(load(s) - msafe);
          sum += p;
          store(s, p);
        }
      } else {
        for (int64_t j = 0; j < nk; j++) {
          float* s = ST + j * FWD_BQ + v * VW;
          vf p = vexp2(load(s) - msafe);
          sum += p;  // the normaliser uses the weights before dropout
          vu hsh = mix32v(rowKey[v] ^ (uint32_t)(j0 + j));
          vi keep = (vi)((hsh >> 8) >= c.thr);
          store(s, select(keep, p * c.invKeep, splat(0.0f)));
        }
      }
      lv[v] = lv[v] * alpha[v] + sum;
    }
    if (j0 > kBeg)
      for (int64_t d = 0; d < Dv; d++)
        for (int v = 0; v < ATT_NV; v++) store(OT + d * FWD_BQ + v * VW, load(OT + d * FWD_BQ + v * VW) * alpha[v]);
    blockGemm(Dv, FWD_BQ, nk, V + j0 * a.sv.t, 1, a.sv.t, ST, FWD_BQ, OT, FWD_BQ, true);
  }

  // O = O^T / l (transposed back), lse = (m + log2 l)·ln2. Rows with no visible key (l = 0): O = 0, lse = −inf.
  // A NaN score (NaN or ±inf in q/k) makes l NaN: O and lse NaN, so the weights recomputed from lse are NaN too.
  alignas(64) float inv[FWD_BQ], lse[FWD_BQ];
  for (int v = 0; v < ATT_NV; v++)
    for (int l = 0; l < VW; l++) {
      float lsum = lv[v][l];
      bool ok = lsum > 0.0f;
      inv[v * VW + l] = ok ? 1.0f / lsum : lsum == 0.0f ? 0.0f : lsum;
      lse[v * VW + l] = ok ? (mv[v][l] + log2f(lsum)) * kLn2 : lsum == 0.0f ? -__builtin_inff() : lsum;
    }
  for (int64_t d = 0; d < Dv; d++)
    for (int v = 0; v < ATT_NV; v++) store(OT + d * FWD_BQ + v * VW, load(OT + d * FWD_BQ + v * VW) * load(inv + v * VW));
  transposeScaled(OT, FWD_BQ, Dv, nq, a.outW + b * a.so.b + h * a.so.h + q0 * a.so.t, a.so.t, 1.0f);
  if (a.lseW)
    for (int64_t i = 0; i < nq; i++) a.lseW[bh * a.Tq + q0 + i] = lse[i];
}

// Few query rows (decoding with a KV cache: Tq = 1). The tiles above hold 64 query lanes, so one row would cost 64
// rows' work. Here one task = (b, h): per query row, the scores against its visible keys (dot products over D, in the
// same base-2 units), their softmax, and O = Σ p_j·v_j / l; masks, ALiBi, padding, lse and the l = 0 / NaN rules as
// above. Dropout goes to the tiled path.
constexpr int64_t FWD_ROWS_MAX = 4;

void fwdRowsTask(void* vctx, int64_t bh, int) {
  const FwdCtx& c = *static_cast<const FwdCtx*>(vctx);
  const AttnArgs& a = *c.a;
  int64_t b = bh / a.H, h = bh % a.H, hk = h / (a.H / a.Hkv);
  const int64_t D = a.D, Dv = a.Dv, Tk = a.Tk, Dvec = D - D % VW, DvVec = Dv - Dv % VW;
  const float* K = a.k + b * a.sk.b + hk * a.sk.h;
  const float* V = a.v + b * a.sv.b + hk * a.sv.h;
  const float* M = maskBase(a, b, h);
  const uint8_t* pad = a.keyPad ? a.keyPad + b * Tk : nullptr;
  const float inf = __builtin_inff();
  float* S = threadScratch(0, (size_t)roundUp(Tk + 1, VW));
  float* QS = threadScratch(1, (size_t)D);
  float* O = threadScratch(2, (size_t)Dv);
  for (int64_t i = 0; i < a.Tq; i++) {
    const float* q = a.q + b * a.sq.b + h * a.sq.h + i * a.sq.t;
    for (int64_t d = 0; d < D; d++) QS[d] = q[d] * c.qscale;
    int64_t kEnd = a.causal ? imin(Tk, i + 1) : Tk, kBeg = 0;  // visible keys: [kBeg, kEnd), S indexed from kBeg
    if (a.window) {
      kBeg = imax(0, i + a.winLo);
      kEnd = imax(kBeg, imin(kEnd, i + a.winHi + 1));
    }
    const int64_t nK = kEnd - kBeg;
    float m = -inf;
    for (int64_t j = kBeg; j < kEnd; j++) {
      const float* kr = K + j * a.sk.t;
      vf acc = splat(0.0f);
      int64_t d = 0;
      for (; d < Dvec; d += VW) acc += load(QS + d) * load(kr + d);
      float s = hsum(acc);
      for (; d < D; d++) s += QS[d] * kr[d];
      if (M) s += M[i * Tk + j] * kLog2e;
      if (a.alibi) s -= a.alibi[h] * kLog2e * fabsf((float)(i + a.alibiOffset - j));
      if (pad && pad[j]) s = -inf;
      S[j - kBeg] = s;
      m = s > m ? s : m;
    }
    const int64_t kPad = roundUp(nK, VW);
    for (int64_t j = nK; j < kPad; j++) S[j] = -inf;  // exp2 → 0
    const vf msafe = splat(m == -inf ? 0.0f : m);       // every key masked: P = 0, no NaN
    vf sum = splat(0.0f);
    for (int64_t j = 0; j < kPad; j += VW) {
      vf p = vexp2(load(S + j) - msafe);
      sum += p;
      store(S + j, p);
    }
    const float l = hsum(sum);
    for (int64_t d = 0; d < Dv; d++) O[d] = 0.0f;
    for (int64_t j = 0; j < nK; j++) {
      const float* vr = V + (kBeg + j) * a.sv.t;
      const vf p = splat(S[j]);
      int64_t d = 0;
      for (; d < DvVec; d += VW) store(O + d, load(O + d) + p * load(vr + d));
      for (; d < Dv; d++) O[d] += S[j] * vr[d];
    }
    const bool ok = l > 0.0f;
    const float inv = ok ? 1.0f / l : l == 0.0f ? 0.0f : l;
    float* out = a.outW + b * a.so.b + h * a.so.h + i * a.so.t;
    for (int64_t d = 0; d < Dv; d++) out[d] = O[d] * inv;
    if (a.lseW) a.lseW[bh * a.Tq + i] = ok ? (m + log2f(l)) * kLn2 : l == 0.0f ? -inf : l;
  }
}

void attnForward(const AttnArgs& a) {
  if (a.B == 0 || a.Tq == 0) return;
  FwdCtx c;
  c.a = &a;
  c.nqb = ceilDiv(a.Tq, FWD_BQ);
  c.qscale = a.scale * kLog2e;
  c.dropout = a.dropoutP > 0.0;
  c.thr = dropThreshold(a.dropoutP);
  c.invKeep = c.dropout ? (float)(1.0 / (1.0 - a.dropoutP)) : 1.0f;
  if (a.Tq <= FWD_ROWS_MAX && !c.dropout) {
    if ((double)a.B * a.H * a.Tq * (a.Tk + 1) * (a.D + a.Dv) < 2e5)
      for (int64_t t = 0; t < a.B * a.H; t++) fwdRowsTask(&c, t, 0);
    else
      parallelFor(a.B * a.H, fwdRowsTask, &c);
    return;
  }
  int64_t tasks = c.nqb * a.B * a.H;
  double work = (double)a.B * a.H * a.Tq * (a.Tk + 1) * (a.D + a.Dv);
  if (work < 2e5) {
    for (int64_t t = 0; t < tasks; t++) fwdTask(&c, t, 0);
    return;
  }
  parallelFor(tasks, fwdTask, &c);
}
