// Multinomial logistic regression on CSR features, trained with full-batch L-BFGS. Browser-safe, deterministic
// (plain Float64Array arithmetic in a fixed order; no randomness — weights start at zero).
//
//   logits z_n = W x_n + b                     W: (C, D), b: (C,), x_n: (D,) sparse
//   loss       = (1/N) Σ_n w_n · −log softmax(z_n)[y_n] + (l2/2) ||W||²   (bias not penalised; w_n = 1 unless
//                class-weighted, weights normalised to mean 1)
//   ∂loss/∂W   = (1/N) Σ_n w_n (p_n − onehot(y_n)) x_nᵀ + l2 W,   ∂loss/∂b = (1/N) Σ_n w_n (p_n − onehot(y_n))

import type { CsrMatrix } from "./tfidf.js";

export interface LogRegOptions {
  /** L2 strength on W (default 1e-4). */
  l2?: number;
  /** L-BFGS iterations (default 200). */
  maxIter?: number;
  /** L-BFGS history size (default 10). */
  history?: number;
  /** Stop when the max-abs gradient entry falls below this (default 1e-6). */
  gradTol?: number;
  /**
   * Per-example weights in the data term. "balanced" weighs class c by N / (C · count_c), so every class
   * contributes equally (helps macro-F1 on imbalanced data). Default: all 1.
   */
  classWeight?: "balanced" | readonly number[];
}

export class LogisticRegression {
  /** (C, D) row-major weights followed by (C,) biases — the flat L-BFGS parameter vector. */
  params: Float64Array = new Float64Array(0);
  classes = 0;
  features = 0;
  /** Loss after each iteration (for inspection / tests). */
  lossHistory: number[] = [];

  fit(X: CsrMatrix, y: ArrayLike<number>, numClasses: number, opts: LogRegOptions = {}): this {
    const { l2 = 1e-4, maxIter = 200, history = 10, gradTol = 1e-6, classWeight } = opts;
    if (y.length !== X.rows) throw new Error(`LogisticRegression.fit: X has ${X.rows} rows but y has ${y.length} labels`);
    if (!(numClasses >= 2)) throw new Error(`LogisticRegression.fit: numClasses must be >= 2, got ${numClasses}`);
    for (let n = 0; n < y.length; n++) {
      if (!Number.isInteger(y[n]) || y[n] < 0 || y[n] >= numClasses) throw new RangeError(`label y[${n}] = ${y[n]} not in [0, ${numClasses})`);
    }
    this.classes = numClasses;
    this.features = X.cols;
    const weights = exampleWeights(y, numClasses, classWeight);
    const objective = (theta: Float64Array, grad: Float64Array) => softmaxLoss(X, y, numClasses, theta, grad, l2, weights);
    const res = lbfgs(objective, new Float64Array(numClasses * X.cols + numClasses), { maxIter, history, gradTol });
    this.params = res.x;
    this.lossHistory = res.losses;
    return this;
  }

  /** (N, C) row-major class probabilities. */
  predictProba(X: CsrMatrix): Float64Array {
    this.checkInput(X);
    const C = this.classes;
    const out = new Float64Array(X.rows * C);
    const z = new Float64Array(C);
    for (let n = 0; n < X.rows; n++) {
      logits(X, n, this.params, C, z);
      softmaxInPlace(z);
      out.set(z, n * C);
    }
    return out;
  }

  /** (N,) argmax class (lowest index wins ties). */
  predict(X: CsrMatrix): Int32Array {
    const C = this.classes;
    const p = this.predictProba(X);
    const out = new Int32Array(X.rows);
    for (let n = 0; n < X.rows; n++) {
      let best = 0;
      for (let c = 1; c < C; c++) if (p[n * C + c] > p[n * C + best]) best = c;
      out[n] = best;
    }
    return out;
  }

  private checkInput(X: CsrMatrix): void {
    if (this.classes === 0) throw new Error("LogisticRegression used before fit()");
    if (X.cols !== this.features) throw new Error(`LogisticRegression: X has ${X.cols} columns, model was fit on ${this.features}`);
  }
}

/** (N,) example weights from a class-weight spec, normalised to mean 1 (undefined = unweighted). */
function exampleWeights(y: ArrayLike<number>, C: number, spec: LogRegOptions["classWeight"]): Float64Array | undefined {
  if (spec === undefined) return undefined;
  const counts = new Float64Array(C);
  for (let n = 0; n < y.length; n++) counts[y[n]]++;
  let perClass: Float64Array;
  if (spec === "balanced") perClass = Float64Array.from(counts, (k) => (k > 0 ? y.length / (C * k) : 0));
  else {
    if (spec.length !== C) throw new Error(`classWeight has ${spec.length} entries, expected one per class (${C})`);
    if (spec.some((w) => !(w >= 0))) throw new RangeError(`classWeight entries must be >= 0, got [${spec.join(", ")}]`);
    perClass = Float64Array.from(spec);
  }
  const w = new Float64Array(y.length);
  let total = 0;
  for (let n = 0; n < y.length; n++) { w[n] = perClass[y[n]]; total += w[n]; }
  if (!(total > 0)) throw new Error("classWeight gives every training example weight 0");
  for (let n = 0; n < y.length; n++) w[n] *= y.length / total;
  return w;
}

/** z = W x_n + b for row n. */
function logits(X: CsrMatrix, n: number, theta: Float64Array, C: number, z: Float64Array): void {
  const D = X.cols;
  for (let c = 0; c < C; c++) {
    let s = theta[C * D + c];
    const wOff = c * D;
    for (let k = X.indptr[n]; k < X.indptr[n + 1]; k++) s += theta[wOff + X.indices[k]] * X.values[k];
    z[c] = s;
  }
}

function softmaxInPlace(z: Float64Array): number {
  let m = -Infinity;
  for (let c = 0; c < z.length; c++) if (z[c] > m) m = z[c];
  let s = 0;
  for (let c = 0; c < z.length; c++) { z[c] = Math.exp(z[c] - m); s += z[c]; }
  for (let c = 0; c < z.length; c++) z[c] /= s;
  return m + Math.log(s); // log-sum-exp of the input
}

/** Loss and gradient (written into grad) of the L2-regularised softmax regression objective. */
export function softmaxLoss(
  X: CsrMatrix, y: ArrayLike<number>, C: number, theta: Float64Array, grad: Float64Array, l2: number, weights?: Float64Array,
): number {
  const D = X.cols;
  const N = X.rows;
  grad.fill(0);
  const z = new Float64Array(C);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    logits(X, n, theta, C, z);
    const zy = z[y[n]];
    const lse = softmaxInPlace(z); // z now holds p_n
    const wn = weights ? weights[n] : 1;
    loss += wn * (lse - zy);
    z[y[n]] -= 1; // p_n − onehot(y_n)
    for (let c = 0; c < C; c++) {
      const r = (wn * z[c]) / N;
      grad[C * D + c] += r;
      const wOff = c * D;
      for (let k = X.indptr[n]; k < X.indptr[n + 1]; k++) grad[wOff + X.indices[k]] += r * X.values[k];
    }
  }
  loss /= N;
  let reg = 0;
  for (let i = 0; i < C * D; i++) { reg += theta[i] * theta[i]; grad[i] += l2 * theta[i]; }
  return loss + 0.5 * l2 * reg;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Limited-memory BFGS with a backtracking (Armijo) line search. `f(x, grad)` returns the objective and
 * writes its gradient. Pairs with non-positive curvature sᵀy are skipped, so the direction stays a descent
 * direction for smooth convex objectives.
 */
export function lbfgs(
  f: (x: Float64Array, grad: Float64Array) => number,
  x0: Float64Array,
  opts: { maxIter: number; history: number; gradTol: number },
): { x: Float64Array; losses: number[] } {
  const dim = x0.length;
  let x = Float64Array.from(x0);
  let g = new Float64Array(dim);
  let fx = f(x, g);
  const losses: number[] = [fx];
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const d = new Float64Array(dim);
  let xNew = new Float64Array(dim);
  let gNew = new Float64Array(dim);
  const alpha = new Float64Array(opts.history);
  for (let it = 0; it < opts.maxIter; it++) {
    let gmax = 0;
    for (let i = 0; i < dim; i++) gmax = Math.max(gmax, Math.abs(g[i]));
    if (gmax < opts.gradTol) break;
    // Two-loop recursion: d = −H g
    for (let i = 0; i < dim; i++) d[i] = -g[i];
    for (let k = S.length - 1; k >= 0; k--) {
      alpha[k] = rho[k] * dot(S[k], d);
      for (let i = 0; i < dim; i++) d[i] -= alpha[k] * Y[k][i];
    }
    if (S.length > 0) {
      const last = S.length - 1;
      const gamma = dot(S[last], Y[last]) / dot(Y[last], Y[last]);
      for (let i = 0; i < dim; i++) d[i] *= gamma;
    } else {
      const gn = Math.sqrt(dot(g, g));
      for (let i = 0; i < dim; i++) d[i] /= gn; // first step: unit length along −g
    }
    for (let k = 0; k < S.length; k++) {
      const beta = rho[k] * dot(Y[k], d);
      for (let i = 0; i < dim; i++) d[i] += (alpha[k] - beta) * S[k][i];
    }
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      S.length = Y.length = rho.length = 0;
      for (let i = 0; i < dim; i++) d[i] = -g[i];
      slope = dot(g, d);
    }
    let step = 1;
    let fNew = Infinity;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < dim; i++) xNew[i] = x[i] + step * d[i];
      fNew = f(xNew, gNew);
      if (fNew <= fx + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fNew < fx)) break; // no progress possible at machine precision
    const s = new Float64Array(dim);
    const yv = new Float64Array(dim);
    for (let i = 0; i < dim; i++) { s[i] = xNew[i] - x[i]; yv[i] = gNew[i] - g[i]; }
    const sy = dot(s, yv);
    if (sy > 1e-12) {
      if (S.length === opts.history) { S.shift(); Y.shift(); rho.shift(); }
      S.push(s); Y.push(yv); rho.push(1 / sy);
    }
    [x, xNew] = [xNew, x]; // swap buffers instead of allocating
    [g, gNew] = [gNew, g];
    fx = fNew;
    losses.push(fx);
  }
  return { x, losses };
}
