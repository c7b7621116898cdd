// Row kernels: layer norm forward/backward and last-axis softmax forward/backward, vectorised along the row and
// parallel over blocks of rows. Row tails shorter than a vector run in scalar code.

struct RowJob {
  const float *x, *w, *b, *dy, *mean, *rstd;
  float *y, *meanOut, *rstdOut, *dx, *partial;  // partial: per task (2·D) dw/db sums for layer norm backward
  int64_t rows, n, per;
  float eps;
};

void runRows(RowJob& j, TaskFn fn) {
  int64_t tasks = ceilDiv(j.rows, j.per);
  if (numThreads() > 1 && j.rows * j.n >= 32768 && tasks > 1) parallelFor(tasks, fn, &j);
  else for (int64_t t = 0; t < tasks; t++) fn(&j, t, 0);
}

void lnFwdTask(void* ctx, int64_t t, int) {
  const RowJob& j = *static_cast<const RowJob*>(ctx);
  const int64_t D = j.n, Dv = D / VW * VW;
  for (int64_t r = t * j.per; r < imin(j.rows, (t + 1) * j.per); r++) {
    const float* x = j.x + r * D;
    float* y = j.y + r * D;
    vf acc = splat(0.0f);
    for (int64_t i = 0; i < Dv; i += VW) acc += load(x + i);
    float s = hsum(acc);
    for (int64_t i = Dv; i < D; i++) s += x[i];
    float m = s / (float)D;
    acc = splat(0.0f);
    for (int64_t i = 0; i < Dv; i += VW) { vf d = load(x + i) - m; acc += d * d; }
    float v = hsum(acc);
    for (int64_t i = Dv; i < D; i++) { float d = x[i] - m; v += d * d; }
    float rs = 1.0f / sqrtf(v / (float)D + j.eps);  // biased variance, as PyTorch
    if (j.meanOut) j.meanOut[r] = m;
    if (j.rstdOut) j.rstdOut[r] = rs;
    for (int64_t i = 0; i < Dv; i += VW) {
      vf o = (load(x + i) - m) * rs;
      if (j.w) o *= load(j.w + i);
      if (j.b) o += load(j.b + i);
      store(y + i, o);
    }
    for (int64_t i = Dv; i < D; i++) {
      float o = (x[i] - m) * rs;
      if (j.w) o *= j.w[i];
      if (j.b) o += j.b[i];
      y[i] = o;
    }
  }
}

// x̂ = (x−μ)·rstd, g = dy⊙w:  dx = rstd·(g − mean(g) − x̂·mean(g⊙x̂));  partial dw = Σ dy⊙x̂, db = Σ dy.
void lnBwdTask(void* ctx, int64_t t, int) {
  const RowJob& j = *static_cast<const RowJob*>(ctx);
  const int64_t D = j.n, Dv = D / VW * VW;
  float* pw = j.partial + t * 2 * D;
  float* pb = pw + D;
  for (int64_t i = 0; i < 2 * D; i++) pw[i] = 0.0f;
  for (int64_t r = t * j.per; r < imin(j.rows, (t + 1) * j.per); r++) {
    const float* x = j.x + r * D;
    const float* dy = j.dy + r * D;
    float* dx = j.dx + r * D;
    const float m = j.mean[r], rs = j.rstd[r];
    vf ag = splat(0.0f), agx = splat(0.0f);
    for (int64_t i = 0; i < Dv; i += VW) {
      vf xh = (load(x + i) - m) * rs, g = load(dy + i);
      store(pw + i, load(pw + i) + g * xh);
      store(pb + i, load(pb + i) + g);
      if (j.w) g *= load(j.w + i);
      ag += g;
      agx += g * xh;
    }
    float sg = hsum(ag), sgx = hsum(agx);
    for (int64_t i = Dv; i < D; i++) {
      float xh = (x[i] - m) * rs, g = dy[i];
      pw[i] += g * xh;
      pb[i] += g;
      if (j.w) g *= j.w[i];
      sg += g;
      sgx += g * xh;
    }
    sg /= (float)D;
    sgx /= (float)D;
    for (int64_t i = 0; i < Dv; i += VW) {
      vf xh = (load(x + i) - m) * rs, g = load(dy + i);
      if (j.w) g *= load(j.w + i);
      store(dx + i, rs * (g - sg - xh * sgx));
    }
    for (int64_t i = Dv; i < D; i++) {
      float xh = (x[i] - m) * rs, g = dy[i];
      if (j.w) g *= j.w[i];
      dx[i] = rs * (g - sg - xh * sgx);
    }
  }
}

void layerNormForward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                      int64_t rows, int64_t D, float eps) {
  if (rows <= 0 || D <= 0) return;
  RowJob j{};
  j.x = x; j.w = w; j.b = b; j.y = y; j.meanOut = mean; j.rstdOut = rstd;
  j.rows = rows; j.n = D; j.eps = eps;
  j.per = imax(1, imin(ceilDiv(rows, 8 * numThreads()), ceilDiv(16384, D)));
  runRows(j, lnFwdTask);
}

bool layerNormBackward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                       float* dx, float* dw, float* db, int64_t rows, int64_t D) {
  if (rows <= 0 || D <= 0) return true;
  RowJob j{};
  j.dy = dy; j.x = x; j.w = w; j.mean = mean; j.rstd = rstd; j.dx = dx;
  j.rows = rows; j.n = D;
  // Row blocks depend only on the shape and partial sums are added in block order: results do not depend on
  // the number of threads or on scheduling.
  j.per = imax(1, ceilDiv(rows, 64));
  int64_t tasks = ceilDiv(rows, j.per);
  j.partial = sharedScratch((size_t)(tasks * 2 * D));
  if (!j.partial) return false;
  runRows(j, lnBwdTask);
  for (int64_t t = 0; t < tasks; t++) {
    const float* pw = j.partial + t * 2 * D;
    if (dw) for (int64_t i = 0; i < D; i++) dw[i] += pw[i];
    if (db) for (int64_t i = 0; i < D; i++) db[i] += pw[D + i];
  }
  return true;
}

void softmaxTask(void* ctx, int64_t t, int) {
  const RowJob& j = *static_cast<const RowJob*>(ctx);
  const int64_t n = j.n, nv = n / VW * VW;
  for (int64_t r = t * j.per; r < imin(j.rows, (t + 1) * j.per); r++) {
    const float* x = j.x + r * n;
    float* y = j.y + r * n;
    vf mx = splat(-__builtin_inff());
    for (int64_t i = 0; i < nv; i += VW) mx = vmax(mx, load(x + i));
    float m = hmax(mx);
    for (int64_t i = nv; i < n; i++) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
    if (m == -__builtin_inff()) {  // fully masked row: NaN, like PyTorch and the reference backend
      for (int64_t i = 0; i < n; i++) y[i] = __builtin_nanf("");
      continue;
    }
    vf acc = splat(0.0f);
    for (int64_t i = 0; i < nv; i += VW) {
      vf e = vexp(load(x + i) - m);
      acc += e;
      store(y + i, e);
    }
    float s = hsum(acc);
    for (int64_t i = nv; i < n; i++) {
      float e = vexp(splat(x[i] - m))[0];
      s += e;
      y[i] = e;
    }
    float inv = 1.0f / s;
    for (int64_t i = 0; i < nv; i += VW) store(y + i, load(y + i) * inv);
    for (int64_t i = nv; i < n; i++) y[i] *= inv;
  }
}

// dx = y ⊙ (dy − Σ y⊙dy)
void softmaxBwdTask(void* ctx, int64_t t, int) {
  const RowJob& j = *static_cast<const RowJob*>(ctx);
  const int64_t n = j.n, nv = n / VW * VW;
  for (int64_t r = t * j.per; r < imin(j.rows, (t + 1) * j.per); r++) {
    const float* y = j.y + r * n;
    const float* dy = j.dy + r * n;
    float* dx = j.dx + r * n;
    vf acc = splat(0.0f);
    for (int64_t i = 0; i < nv; i += VW) acc += load(y + i) * load(dy + i);
    float s = hsum(acc);
    for (int64_t i = nv; i < n; i++) s += y[i] * dy[i];
    for (int64_t i = 0; i < nv; i += VW) store(dx + i, load(y + i) * (load(dy + i) - s));
    for (int64_t i = nv; i < n; i++) dx[i] = y[i] * (dy[i] - s);
  }
}

void softmax(const float* x, float* y, int64_t rows, int64_t n) {
  if (rows <= 0 || n <= 0) return;
  RowJob j{};
  j.x = x; j.y = y; j.rows = rows; j.n = n;
  j.per = imax(1, imin(ceilDiv(rows, 8 * numThreads()), ceilDiv(16384, n)));
  runRows(j, softmaxTask);
}

void softmaxBackward(const float* y, const float* dy, float* dx, int64_t rows, int64_t n) {
  if (rows <= 0 || n <= 0) return;
  RowJob j{};
  j.y = const_cast<float*>(y); j.dy = dy; j.dx = dx; j.rows = rows; j.n = n;
  j.per = imax(1, imin(ceilDiv(rows, 8 * numThreads()), ceilDiv(16384, n)));
  runRows(j, softmaxBwdTask);
}
