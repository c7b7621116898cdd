// State and residual-graph primitives of the layered max-flow solver (see maxflow.ts for the algorithm).
//
// Nodes: v = (k-1)*T + i for node (k, i), k = 1..l-1 (the intermediate layers between the source at layer l and
// the input layer); index nNodes = (l-1)*T is the sink (input node b). Flow on the edge (m+1, i) -> (m, j),
// 1 <= m <= l-2, is theta[m+1][i] * R[m][i, j] + D[m][i, j]: a per-row fraction of the capacity plus a delta.
// D is mirrored in DT (per-layer transpose) so that column scans are contiguous, and only touched rows are reset
// between sinks. Layer-1 node x has one down-edge, to the sink, with residual sinkRes[x].
// Arcs of a node: [0, T) down to (k-1, j) (for k = 1 only arc 0, the sink); [T, 2T) up to (k+1, h), the reverse
// of edge (k+1, h) -> (k, i), whose residual is that edge's flow. Residuals <= eps count as saturated.
//
// Token windows: every scan over the tokens of a neighbouring layer k is limited to [lo[k], hi[k]], a window that
// holds every node that can carry flow in the current solve: nodes the source reaches (bounded from the first/last
// nonzero capacity of each row) and, for the per-sink strategy, nodes that can reach the sink. Skipped nodes never
// hold flow and never receive any (their arcs to the sink side do not exist or their label is INF), so skipping
// them changes no push, no label and no value. Dense attention keeps the full window; causal attention from
// source token a to sink b shrinks it to [b, a].

import { type MatrixStack, checkMatrixStack } from "./attention-stack.js";

export class LayeredResidual {
  readonly layers: number;
  readonly tokens: number;
  protected readonly R: Float64Array;      // (L, T, T) capacities, edge layer m: (m+1, i) -> (m, j)
  protected readonly RT: Float64Array;     // (L, T, T) per-layer transposes
  protected readonly rowSum: Float64Array; // (L, T) out-capacity of (m+1, i)
  protected eps = 0;
  protected srcLayer = 0;
  protected srcToken = -1;                 // source token; T = a weighted (virtual) source, -1 = none yet
  protected readonly srcRow: Float64Array;  // (T) capacities of the source's edges into layer srcLayer - 1
  protected srcCap = 0;                     // their sum
  protected sinkToken = -1;
  protected readonly theta: Float64Array;  // (L+1, T) filled fraction of the down-edges of node (k, i)
  protected readonly om: Float64Array;     // 1 - theta
  protected readonly D: Float64Array;      // (L, T, T) flow delta on edge layer m, row = upper node
  protected readonly DT: Float64Array;     // transpose of D per layer, row = lower node
  protected readonly dirtyRow: Uint8Array; // (L, T) rows of D with nonzero entries
  protected readonly dirtyList: Int32Array;
  protected nDirty = 0;
  protected readonly dirtyRowT: Uint8Array; // (L, T) rows of DT with nonzero entries
  protected readonly dirtyListT: Int32Array;
  protected nDirtyT = 0;
  protected readonly sinkRes: Float64Array; // (T) residual of layer-1 node x -> sink
  protected readonly supply: Float64Array;  // (L*T) excess of node v
  protected readonly level: Int32Array;     // (L*T + 1) distance labels, last entry = the sink
  protected readonly cur: Int32Array;       // current-arc pointer per node
  protected readonly queue: Int32Array;
  protected readonly near: Int32Array;      // (L*T) scratch distances for relabelFromSink
  protected readonly live: Uint8Array;      // ((L+1) T) per sink: node can reach the sink (per-sink strategy only)
  protected readonly rowLo: Int32Array;     // (L, T) first column j with R[m][i, j] > 0 (T when none)
  protected readonly rowHi: Int32Array;     // (L, T) last such column (-1 when none)
  protected readonly srcLo: Int32Array;     // (L+1) token window the current source reaches, per layer
  protected readonly srcHi: Int32Array;
  protected readonly lo: Int32Array;        // (L+1) token window scanned in the current solve, per layer
  protected readonly hi: Int32Array;
  protected perSink = false;                // true: per-sink preflow (maxflow.ts), flows all in D
  protected value = 0;
  protected arcRes = 0;                     // residual of the arc nextArc() returned
  /** Work counters over the solver's lifetime (for profiling). */
  pushes = 0;
  relabels = 0;
  globals = 0;
  gaps = 0;
  /** Residual entries examined by arc searches, relabels and label BFS (the solver's inner-loop work). */
  scans = 0;
  /** The part of `scans` spent in label BFS (initial, near-sink and global relabels). */
  bfsScans = 0;

  /** `res` holds the capacities: res[m][i, j] is the capacity of edge (m+1, i) -> (m, j); all must be >= 0. */
  constructor(res: MatrixStack) {
    checkMatrixStack(res, "LayeredMaxFlow");
    const L = res.layers, T = res.tokens, TT = T * T;
    this.layers = L; this.tokens = T;
    this.R = res.data;
    this.RT = new Float64Array(L * TT);
    this.rowSum = new Float64Array(L * T);
    this.rowLo = new Int32Array(L * T);
    this.rowHi = new Int32Array(L * T);
    // layers 0..L+1: a weighted source sits one layer above the tokens it feeds (L + 1 for layer L)
    this.srcLo = new Int32Array(L + 2);
    this.srcHi = new Int32Array(L + 2).fill(T - 1);
    this.lo = new Int32Array(L + 2);
    this.hi = new Int32Array(L + 2).fill(T - 1);
    this.srcRow = new Float64Array(T);
    this.loadCapacities();
    this.theta = new Float64Array((L + 1) * T);
    this.om = new Float64Array((L + 1) * T).fill(1);
    this.D = new Float64Array(L * TT);
    this.DT = new Float64Array(L * TT);
    this.dirtyRow = new Uint8Array(L * T);
    this.dirtyList = new Int32Array(L * T);
    this.dirtyRowT = new Uint8Array(L * T);
    this.dirtyListT = new Int32Array(L * T);
    this.sinkRes = new Float64Array(T);
    this.supply = new Float64Array(L * T);
    this.level = new Int32Array(L * T + 1);
    this.cur = new Int32Array(L * T);
    this.queue = new Int32Array(L * T + 1);
    this.near = new Int32Array(L * T);
    this.live = new Uint8Array((L + 1) * T);
  }

  /**
   * (Re)reads the capacities from R: validation, per-layer transposes, row sums and eps. Call after the values of
   * the capacity array changed in place (the solver keeps a reference to it, not a copy).
   */
  protected loadCapacities(): void {
    const L = this.layers, T = this.tokens, TT = T * T, R = this.R, RT = this.RT;
    let scale = 0;
    for (let m = 0; m < L; m++) {
      for (let i = 0; i < T; i++) {
        let s = 0, first = T, last = -1;
        for (let j = 0; j < T; j++) {
          const c = R[m * TT + i * T + j];
          if (!(c >= 0) || c === Infinity) throw new RangeError(`LayeredMaxFlow: capacity [${m}, ${i}, ${j}] is ${c}; capacities must be finite and >= 0`);
          RT[m * TT + j * T + i] = c;
          s += c;
          if (c > 0) { if (first === T) first = j; last = j; }
        }
        this.rowSum[m * T + i] = s;
        this.rowLo[m * T + i] = first; this.rowHi[m * T + i] = last;
        if (s > scale) scale = s;
      }
    }
    this.eps = 1e-13 * (scale > 0 ? scale : 1);
    this.resetSink();
    this.srcToken = -1;
  }

  /**
   * Token windows the source (layer l, row srcRow) reaches: layer l-1 spans the first/last nonzero entries of srcRow;
   * layer k-1 spans the first/last nonzero columns of the rows in layer k's window (an interval superset of the
   * reachable set). Sets lo/hi to them.
   */
  protected sourceWindows(l: number): void {
    const T = this.tokens, srcLo = this.srcLo, srcHi = this.srcHi, row = this.srcRow;
    srcLo.fill(T); srcHi.fill(-1);
    let first = T, last = -1;
    for (let j = 0; j < T; j++) if (row[j] > 0) { if (first === T) first = j; last = j; }
    srcLo[l - 1] = first; srcHi[l - 1] = last;
    for (let k = l - 1; k >= 1; k--) {
      let nlo = T, nhi = -1;
      for (let i = srcLo[k]; i <= srcHi[k]; i++) {
        const r = (k - 1) * T + i;
        if (this.rowLo[r] < nlo) nlo = this.rowLo[r];
        if (this.rowHi[r] > nhi) nhi = this.rowHi[r];
      }
      srcLo[k - 1] = nlo; srcHi[k - 1] = nhi;
    }
    this.lo.set(srcLo); this.hi.set(srcHi);
  }

  protected resetSink(): void {
    const T = this.tokens, D = this.D, DT = this.DT;
    for (let q = 0; q < this.nDirty; q++) {
      const r = this.dirtyList[q];
      D.fill(0, r * T, r * T + T);
      this.dirtyRow[r] = 0;
    }
    for (let q = 0; q < this.nDirtyT; q++) {
      const r = this.dirtyListT[q];
      DT.fill(0, r * T, r * T + T);
      this.dirtyRowT[r] = 0;
    }
    this.nDirty = 0; this.nDirtyT = 0;
    this.sinkToken = -1;
  }

  protected markDirty(m: number, row: number, colRow: number): void {
    this.markRow(m, row);
    this.markRowT(m, colRow);
  }

  protected markRow(m: number, row: number): void {
    const r = m * this.tokens + row;
    if (this.dirtyRow[r] === 0) { this.dirtyRow[r] = 1; this.dirtyList[this.nDirty++] = r; }
  }

  protected markRowT(m: number, row: number): void {
    const r = m * this.tokens + row;
    if (this.dirtyRowT[r] === 0) { this.dirtyRowT[r] = 1; this.dirtyListT[this.nDirtyT++] = r; }
  }

  /** Pushes d along arc `a` of node v. */
  protected push(v: number, a: number, d: number): void {
    const T = this.tokens, TT = T * T;
    const k = (v / T | 0) + 1, i = v - (k - 1) * T;
    if (k === 1) {
      if (a < T) { this.sinkRes[i] -= d; return; }
      const h = a - T;
      this.D[TT + h * T + i] -= d; this.DT[TT + i * T + h] -= d; this.markDirty(1, h, i);
      return;
    }
    if (a < T) {
      const m = k - 1;
      this.D[m * TT + i * T + a] += d; this.DT[m * TT + a * T + i] += d; this.markDirty(m, i, a);
      return;
    }
    const h = a - T;
    this.D[k * TT + h * T + i] -= d; this.DT[k * TT + i * T + h] -= d; this.markDirty(k, h, i);
  }

  /** Node reached by arc a of v (nNodes = the sink). */
  protected head(v: number, a: number, nNodes: number): number {
    const T = this.tokens;
    const k = (v / T | 0) + 1;
    if (k === 1) return a < T ? nNodes : T + (a - T);
    if (a < T) return (k - 2) * T + a;
    return k * T + (a - T);
  }

  /**
   * First admissible arc of node v at index >= a (an arc to a node one level closer to the sink with residual >
   * eps), or 2T if none. Arcs [0, T): down to (k-1, j) (for k = 1 only arc 0, the sink); [T, 2T): up to (k+1, h).
   * Leaves the arc's residual in this.arcRes.
   */
  protected nextArc(v: number, a: number): number {
    const T = this.tokens, TT = T * T, l = this.srcLayer, eps = this.eps, level = this.level;
    const k = (v / T | 0) + 1, i = v - (k - 1) * T, tl = level[v] - 1;
    if (a < T) {
      if (k === 1) {
        if (a === 0 && tl === 0 && this.sinkRes[i] > eps) { this.arcRes = this.sinkRes[i]; return 0; }
        a = T;
      } else {
        const R = this.R, D = this.D, rb = (k - 1) * TT + i * T, o = this.om[k * T + i], lb = (k - 2) * T, hi = this.hi[k - 1];
        if (a < this.lo[k - 1]) a = this.lo[k - 1];
        const a0 = a;
        for (; a <= hi; a++) {
          if (level[lb + a] !== tl) continue;
          const r = R[rb + a] * o - D[rb + a];
          if (r > eps) { this.arcRes = r; this.scans += a - a0 + 1; return a; }
        }
        this.scans += a - a0;
      }
    }
    if (k + 1 <= l - 1) {
      const RT = this.RT, DT = this.DT, theta = this.theta, rb = k * TT + i * T - T, tb = (k + 1) * T - T, lb = k * T - T;
      const alo = T + this.lo[k + 1], ahi = T + this.hi[k + 1];
      if (a < alo) a = alo;
      const a0 = a;
      for (; a <= ahi; a++) {
        if (level[lb + a] !== tl) continue;
        const r = theta[tb + a] * RT[rb + a] + DT[rb + a];
        if (r > eps) { this.arcRes = r; this.scans += a - a0 + 1; return a; }
      }
      this.scans += a - a0;
    }
    return 2 * T;
  }

  /** label[v] = 1 + min label over residual arcs of v (INF when it has none). */
  protected relabel(v: number, nNodes: number): void {
    const T = this.tokens, TT = T * T, l = this.srcLayer, eps = this.eps, label = this.level;
    const k = (v / T | 0) + 1, i = v - (k - 1) * T;
    let m = nNodes; // INF - 1
    if (k === 1) {
      if (this.sinkRes[i] > eps) m = 0;
    } else {
      const R = this.R, D = this.D, rb = (k - 1) * TT + i * T, o = this.om[k * T + i], lb = (k - 2) * T, hi = this.hi[k - 1];
      for (let j = this.lo[k - 1]; j <= hi; j++) if (label[lb + j] < m && R[rb + j] * o - D[rb + j] > eps) m = label[lb + j];
      this.scans += hi - this.lo[k - 1] + 1;
    }
    if (k + 1 <= l - 1) {
      const RT = this.RT, DT = this.DT, theta = this.theta, rb = k * TT + i * T, tb = (k + 1) * T, lb = k * T, hi = this.hi[k + 1];
      for (let h = this.lo[k + 1]; h <= hi; h++) if (label[lb + h] < m && theta[tb + h] * RT[rb + h] + DT[rb + h] > eps) m = label[lb + h];
      this.scans += hi - this.lo[k + 1] + 1;
    }
    label[v] = m + 1;
  }

  /**
   * Distance labels by BFS from the sink over reversed residual arcs, expanding only nodes at distance < dmax.
   * Reached nodes get their exact distance. Unreached nodes get INF when the BFS ran to completion (they cannot
   * reach the sink), else max(dmax + 1, k) for a node of layer k. That labelling is valid: an unreached node is at
   * distance >= dmax + 1, a layer-k node is >= k arcs from the sink, and a residual arc from an unreached node into
   * a reached one ends at distance exactly dmax in a layer within one of its own (so k <= dmax + 1).
   * raise = true keeps max(current, new) per node (a max of valid labellings is valid, and labels never decrease),
   * resetting the current arc of raised nodes. Returns false when the preflow is known to be maximum: the BFS was
   * complete and no node that can reach the sink holds excess.
   */
  protected relabelFromSink(nNodes: number, dmax: number, raise: boolean): boolean {
    const T = this.tokens, TT = T * T, l = this.srcLayer, eps = this.eps, INF = nNodes + 1;
    const label = this.level, near = this.near, queue = this.queue, excess = this.supply, cur = this.cur;
    const R = this.R, RT = this.RT, D = this.D, DT = this.DT, theta = this.theta, om = this.om;
    this.globals++;
    near.fill(-1, 0, nNodes);
    let qt = 0, truncated = false, alive = false;
    for (let x = this.lo[1]; x <= this.hi[1]; x++) if (this.sinkRes[x] > eps) { near[x] = 1; queue[qt++] = x; }
    for (let qh = 0; qh < qt; qh++) {
      const w = queue[qh], d = near[w], nd = d + 1;
      if (excess[w] > eps) alive = true;
      if (d >= dmax) { truncated = true; continue; }
      const k = (w / T | 0) + 1, j = w - (k - 1) * T;
      if (k + 1 <= l - 1) {
        // down arcs (k+1, i) -> (k, j), edge layer k: residual R_k[i, j] (1 - theta_{k+1}[i]) - D_k[i, j]
        const cb = k * TT + j * T, ob = (k + 1) * T, vb = k * T, hi = this.hi[k + 1];
        for (let i = this.lo[k + 1]; i <= hi; i++) {
          const v = vb + i;
          if (near[v] < 0 && RT[cb + i] * om[ob + i] - DT[cb + i] > eps) { near[v] = nd; queue[qt++] = v; }
        }
        this.scans += hi - this.lo[k + 1] + 1; this.bfsScans += hi - this.lo[k + 1] + 1;
      }
      if (k >= 2) {
        // up arcs (k-1, i) -> (k, j): residual = flow on (k, j) -> (k-1, i), edge layer k-1
        const th = theta[k * T + j], rb = (k - 1) * TT + j * T, vb = (k - 2) * T, hi = this.hi[k - 1];
        for (let i = this.lo[k - 1]; i <= hi; i++) {
          const v = vb + i;
          if (near[v] < 0 && th * R[rb + i] + D[rb + i] > eps) { near[v] = nd; queue[qt++] = v; }
        }
        this.scans += hi - this.lo[k - 1] + 1; this.bfsScans += hi - this.lo[k - 1] + 1;
      }
    }
    for (let v = 0; v < nNodes; v++) {
      let nv = near[v];
      if (nv < 0) {
        if (!truncated) nv = INF;
        else { const k = (v / T | 0) + 1; nv = k > dmax + 1 ? k : dmax + 1; }
      }
      if (!raise) { label[v] = nv; cur[v] = 0; } else if (nv > label[v]) { label[v] = nv; cur[v] = 0; }
    }
    return alive || truncated;
  }

  /**
   * The preflow of the last solve() as dense edge flows over the original graph restricted to layers 0..l:
   * (l, T, T), entry [m][i][j] = flow on edge (m+1, i) -> (m, j). For checking; allocates.
   */
  edgeFlows(): { flows: Float64Array; layer: number; source: number; sink: number; value: number } {
    const T = this.tokens, TT = T * T, l = this.srcLayer, a0 = this.srcToken, b = this.sinkToken;
    if (a0 < 0 || b < 0) throw new Error("edgeFlows: no solve() to report");
    if (a0 >= T) throw new Error("edgeFlows: not available for a weighted source");
    const f = new Float64Array(l * TT);
    const R = this.R;
    if (l === 1) { f[a0 * T + b] = R[a0 * T + b]; return { flows: f, layer: l, source: a0, sink: b, value: this.value }; }
    // the source saturates its edges (per-sink strategy: only those into nodes that can reach the sink)
    for (let j = 0; j < T; j++) if (!this.perSink || this.live[(l - 1) * T + j]) f[(l - 1) * TT + a0 * T + j] = R[(l - 1) * TT + a0 * T + j];
    for (let m = 1; m <= l - 2; m++) {
      for (let i = 0; i < T; i++) {
        const th = this.theta[(m + 1) * T + i];
        for (let j = 0; j < T; j++) f[m * TT + i * T + j] = th * R[m * TT + i * T + j] + this.D[m * TT + i * T + j];
      }
    }
    for (let x = 0; x < T; x++) f[x * T + b] = R[x * T + b] - this.sinkRes[x];
    return { flows: f, layer: l, source: a0, sink: b, value: this.value };
  }
}
