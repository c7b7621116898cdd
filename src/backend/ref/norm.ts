// Reference row kernels: softmax, log-softmax (max-subtracted for stability) and layer norm forward/backward.

export function softmax(x: Float32Array, y: Float32Array, rows: number, n: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let m = -Infinity;
    for (let j = 0; j < n; j++) if (x[o + j] > m) m = x[o + j];
    if (m === -Infinity) { for (let j = 0; j < n; j++) y[o + j] = NaN; continue; } // fully masked row: like PyTorch
    let s = 0;
    for (let j = 0; j < n; j++) { const e = Math.exp(x[o + j] - m); y[o + j] = e; s += e; }
    const inv = 1 / s;
    for (let j = 0; j < n; j++) y[o + j] *= inv;
  }
}

export function softmaxBackward(y: Float32Array, dy: Float32Array, dx: Float32Array, rows: number, n: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let dot = 0;
    for (let j = 0; j < n; j++) dot += dy[o + j] * y[o + j];
    for (let j = 0; j < n; j++) dx[o + j] = y[o + j] * (dy[o + j] - dot);
  }
}

export function logSoftmax(x: Float32Array, y: Float32Array, rows: number, n: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let m = -Infinity;
    for (let j = 0; j < n; j++) if (x[o + j] > m) m = x[o + j];
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(x[o + j] - m);
    const lse = m + Math.log(s);
    for (let j = 0; j < n; j++) y[o + j] = x[o + j] - lse;
  }
}

export function layerNormForward(x: Float32Array, w: Float32Array | null, b: Float32Array | null, y: Float32Array,
  mean: Float32Array, rstd: Float32Array, rows: number, D: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let m = 0;
    for (let j = 0; j < D; j++) m += x[o + j];
    m /= D;
    let v = 0;
    for (let j = 0; j < D; j++) { const d = x[o + j] - m; v += d * d; }
    v /= D; // biased variance, as PyTorch
    const rs = 1 / Math.sqrt(v + eps);
    mean[r] = m; rstd[r] = rs;
    for (let j = 0; j < D; j++) {
      let t = (x[o + j] - m) * rs;
      if (w) t *= w[j];
      if (b) t += b[j];
      y[o + j] = t;
    }
  }
}

// With x̂ = (x−μ)·rstd and g = dy⊙w:  dx = rstd · (g − mean(g) − x̂·mean(g⊙x̂));  dw += Σ dy⊙x̂;  db += Σ dy.
export function layerNormBackward(dy: Float32Array, x: Float32Array, w: Float32Array | null, mean: Float32Array,
  rstd: Float32Array, dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, rows: number, D: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * D, m = mean[r], rs = rstd[r];
    let sg = 0, sgx = 0;
    for (let j = 0; j < D; j++) {
      const xh = (x[o + j] - m) * rs;
      const g = dy[o + j] * (w ? w[j] : 1);
      sg += g; sgx += g * xh;
      if (dw) dw[j] += dy[o + j] * xh;
      if (db) db[j] += dy[o + j];
    }
    sg /= D; sgx /= D;
    for (let j = 0; j < D; j++) {
      const xh = (x[o + j] - m) * rs;
      const g = dy[o + j] * (w ? w[j] : 1);
      dx[o + j] = rs * (g - sg - xh * sgx);
    }
  }
}

export function gatherRows(table: Float32Array, cols: number, idx: Int32Array, out: Float32Array): void {
  if (cols >= 32) {
    for (let i = 0; i < idx.length; i++) out.set(table.subarray(idx[i] * cols, idx[i] * cols + cols), i * cols);
    return;
  }
  // short rows (im2col of few channels): a plain copy loop beats creating a subarray per row
  for (let i = 0, o = 0; i < idx.length; i++) {
    const t = idx[i] * cols;
    for (let j = 0; j < cols; j++, o++) out[o] = table[t + j];
  }
}

export function scatterAddRows(src: Float32Array, cols: number, idx: Int32Array, table: Float32Array, skip: number): void {
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] === skip) continue;
    const t = idx[i] * cols, s = i * cols;
    for (let j = 0; j < cols; j++) table[t + j] += src[s + j];
  }
}
