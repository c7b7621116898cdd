// Exact max-flow on the layered attention graph of Abnar & Zuidema (2020), specialised to its structure.
//
// Graph for per-layer capacity matrices R (L, T, T): node (k, i) is token i at layer k, k = 0..L (layer 0 =
// inputs). Edge (k, i) -> (k-1, j) has capacity R[k-1][i, j]; edges only go down one layer. We want the max-flow
// value from the source u = (l, a) to the sink, input node (0, b).
//
// Reductions (exact):
//  * Only layers 0..l matter; other layer-l nodes have no path from u.
//  * Input nodes other than b have no out-edges, so flow into them never reaches b: drop them. Layer-1 node x
//    then has a single down-edge, to b, with capacity c_x = R[0][x, b].
//  * No max flow ever sends flow back into u (u has no in-edges), so reverse arcs into u are dropped.
//
// Algorithm: a preflow that is the same for every sink, then Dinic on what is left.
//  1. Base preflow (per source, shared by all T sinks): u saturates its edges; every node (k, i), k >= 2, pushes
//     the same fraction theta = min(1, inflow / outcap) of each of its down-edges (the rollout of u's row). For
//     row-stochastic R the inflow of every node is <= 1 = outcap, so nothing gets stuck above layer 1.
//  2. Per sink b: layer-1 node x forwards min(inflow_x, c_x) to b; what it cannot forward is stuck excess.
//  3. Blocked excess is routed on with Dinic from a virtual super-source feeding every excess node (at most its
//     excess): BFS levels on the residual graph, stopped at the level where the sink appears; blocking flow by
//     DFS with current-arc pointers. The answer is the flow into b when no excess can reach b (a maximum
//     preflow has the max-flow value: the nodes that can still reach b in the residual form a cut saturated
//     from outside with zero flow going out of it).
// Flows are stored as the implicit base theta*R plus a delta D (and its transpose, for column scans) that is
// reset, row by row, after each sink. Capacities are float64; residuals <= eps are treated as saturated, eps =
// 1e-13 times the largest row sum, so values are exact to about 1e-12 relative.

import { type MatrixStack, checkMatrixStack } from "./attention-stack.js";

/** Depth of the cheap partial relabel from the sink (exact labels for nodes at distance <= NEAR). */
const NEAR = 3;

export class LayeredMaxFlow {
  readonly layers: number;
  readonly tokens: number;
  private readonly R: Float64Array;      // (L, T, T) capacities, edge layer m: (m+1, i) -> (m, j)
  private readonly RT: Float64Array;     // (L, T, T) per-layer transposes
  private readonly rowSum: Float64Array; // (L, T) out-capacity of (m+1, i)
  private readonly eps: number;
  // per source
  private srcLayer = 0;
  private srcToken = -1;
  private readonly theta: Float64Array;  // (L+1, T) filled fraction of the down-edges of node (k, i), k >= 2
  private readonly om: Float64Array;     // 1 - theta
  private readonly inflow: Float64Array; // (L+1, T) base inflow of node (k, i)
  private readonly stuck: Float64Array;  // (L+1, T) base excess of node (k, i), k >= 2
  // per sink
  private sinkToken = -1;
  private readonly D: Float64Array;      // (L, T, T) flow delta on edge layer m, row = upper node
  private readonly DT: Float64Array;     // transpose of D per layer, row = lower node
  private readonly dirtyRow: Uint8Array; // (L, T) rows of D (and the matching columns of DT) with nonzero delta
  private readonly dirtyList: Int32Array;
  private nDirty = 0;
  private readonly dirtyRowT: Uint8Array;
  private readonly dirtyListT: Int32Array;
  private nDirtyT = 0;
  private readonly sinkRes: Float64Array; // (T) residual of layer-1 node x -> sink
  private readonly supply: Float64Array;  // (L*T) remaining excess of node v = (k-1)*T + i
  private readonly level: Int32Array;     // (L*T + 1), last entry = the sink
  private readonly cur: Int32Array;       // current-arc pointer per node
  private readonly queue: Int32Array;
  private readonly bHead: Int32Array;     // active nodes bucketed by label (singly linked through bNext)
  private readonly bNext: Int32Array;
  private readonly inQ: Uint8Array;
  private readonly near: Int32Array;     // (L*T) scratch distances for relabelFromSink
  private maxB = 0;
  private relabelsSinceGlobal = 0;
  private value = 0;
  private bound = 0;
  private arcRes = 0;                     // residual of the arc nextArc() returned
  /** Work counters over the solver's lifetime (for profiling). */
  pushes = 0;
  relabels = 0;
  globals = 0;

  /** `res` holds the capacities: res[m][i, j] is the capacity of edge (m+1, i) -> (m, j); all must be >= 0. */
  constructor(res: MatrixStack) {
    checkMatrixStack(res, "LayeredMaxFlow");
    const L = res.layers, T = res.tokens, TT = T * T;
    this.layers = L; this.tokens = T;
    this.R = res.data;
    this.RT = new Float64Array(L * TT);
    this.rowSum = new Float64Array(L * T);
    let scale = 0;
    for (let m = 0; m < L; m++) {
      for (let i = 0; i < T; i++) {
        let s = 0;
        for (let j = 0; j < T; j++) {
          const c = this.R[m * TT + i * T + j];
          if (!(c >= 0) || c === Infinity) throw new RangeError(`LayeredMaxFlow: capacity [${m}, ${i}, ${j}] is ${c}; capacities must be finite and >= 0`);
          this.RT[m * TT + j * T + i] = c;
          s += c;
        }
        this.rowSum[m * T + i] = s;
        if (s > scale) scale = s;
      }
    }
    this.eps = 1e-13 * (scale > 0 ? scale : 1);
    this.theta = new Float64Array((L + 1) * T);
    this.om = new Float64Array((L + 1) * T);
    this.inflow = new Float64Array((L + 1) * T);
    this.stuck = new Float64Array((L + 1) * T);
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
    this.bHead = new Int32Array(L * T + 2);
    this.bNext = new Int32Array(L * T);
    this.inQ = new Uint8Array(L * T);
    this.near = new Int32Array(L * T);
  }

  /**
   * Selects the source node (layer, token), 1 <= layer <= L, and builds its base preflow (cost O(layer * T^2)).
   */
  setSource(layer: number, token: number): void {
    const L = this.layers, T = this.tokens, TT = T * T;
    if (!Number.isInteger(layer) || layer < 1 || layer > L) throw new RangeError(`max-flow source layer must be an integer in [1, ${L}], got ${layer}`);
    if (!Number.isInteger(token) || token < 0 || token >= T) throw new RangeError(`max-flow source token must be an integer in [0, ${T - 1}], got ${token}`);
    this.resetSink();
    this.srcLayer = layer; this.srcToken = token;
    const R = this.R, inflow = this.inflow, theta = this.theta, om = this.om, stuck = this.stuck;
    if (layer === 1) return;
    // inflow of layer l-1: u saturates its down-edges
    const l = layer, top = (l - 1) * T, srow = (l - 1) * TT + token * T;
    for (let j = 0; j < T; j++) inflow[top + j] = R[srow + j];
    // layer 2 does not push here: solve() spreads its inflow over layer 1 per sink (theta_2 = 0, flows in D)
    for (let i = 0; i < T; i++) { theta[2 * T + i] = 0; om[2 * T + i] = 1; stuck[2 * T + i] = 0; }
    for (let k = l - 1; k >= 3; k--) {
      const kb = k * T, lb = (k - 1) * T, m = k - 1;
      for (let j = 0; j < T; j++) inflow[lb + j] = 0;
      for (let i = 0; i < T; i++) {
        const e = inflow[kb + i], s = this.rowSum[m * T + i];
        let th: number;
        if (s <= 0) { th = 0; stuck[kb + i] = e; }
        else if (e >= s) { th = 1; stuck[kb + i] = e - s; }
        else { th = e / s; stuck[kb + i] = 0; }
        theta[kb + i] = th; om[kb + i] = 1 - th;
        if (th === 0) continue;
        const rb = m * TT + i * T;
        for (let j = 0; j < T; j++) inflow[lb + j] += th * R[rb + j];
      }
    }
  }

  private resetSink(): void {
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

  /** Max-flow value from the current source to input token b. */
  solve(b: number): number {
    const T = this.tokens, l = this.srcLayer;
    if (this.srcToken < 0) throw new Error("LayeredMaxFlow.solve: call setSource(layer, token) first");
    if (!Number.isInteger(b) || b < 0 || b >= T) throw new RangeError(`max-flow sink token must be an integer in [0, ${T - 1}], got ${b}`);
    this.resetSink();
    this.sinkToken = b;
    const R = this.R;
    if (l === 1) { this.value = R[this.srcToken * T + b]; return this.value; }
    const inflow = this.inflow, sinkRes = this.sinkRes, excess = this.supply, eps = this.eps, label = this.level;
    const nNodes = (l - 1) * T, INF = nNodes + 1;
    let sinkCap = 0;
    for (let x = 0; x < T; x++) { const c = R[x * T + b]; sinkCap += c; sinkRes[x] = c; }
    if (l === 2) {
      // layer 1 is fed by the source directly and forwards what it can; the rest is stuck for good
      for (let x = 0; x < T; x++) {
        const e = inflow[T + x], c = sinkRes[x];
        if (e >= c) { sinkRes[x] = 0; excess[x] = e - c; } else { sinkRes[x] = c - e; excess[x] = 0; }
      }
    } else {
      // layer 2 -> layer 1, per sink: each layer-2 node y gives its inflow greedily to layer-1 nodes that can still
      // pass flow to b (b first), up to the edge capacity; what it cannot place stays as excess at y
      const D = this.D, DT = this.DT;
      for (let y = 0; y < T; y++) {
        let rem = inflow[2 * T + y];
        const rb = T * T + y * T;
        for (let q = -1; q < T && rem > 0; q++) {
          const x = q < 0 ? b : q;
          if (q === b) continue;
          const need = sinkRes[x];
          if (need <= 0) continue;
          let f = R[rb + x];
          if (f > rem) f = rem;
          if (f > need) f = need;
          if (f <= 0) continue;
          D[rb + x] = f; DT[T * T + x * T + y] = f;
          this.markDirty(1, y, x);
          sinkRes[x] = need - f; rem -= f;
        }
        excess[T + y] = rem;
      }
      for (let x = 0; x < T; x++) excess[x] = 0;
    }
    for (let k = 3; k <= l - 1; k++) for (let i = 0; i < T; i++) excess[(k - 1) * T + i] = this.stuck[k * T + i];
    let value = 0;
    for (let x = 0; x < T; x++) value += R[x * T + b] - sinkRes[x];
    this.value = value;
    // no flow can exceed what leaves the source or what enters the sink: stop as soon as one is reached
    this.bound = Math.min(this.rowSum[(l - 1) * T + this.srcToken], sinkCap) - eps;
    if (this.value >= this.bound) return this.value;
    // exact labels near the sink (distance <= NEAR), valid lower bounds elsewhere; stop if nothing can move
    label[nNodes] = 0;
    if (!this.relabelFromSink(nNodes, NEAR, false)) return this.value;
    this.rebuildBuckets(nNodes);
    this.relabelsSinceGlobal = 0;
    this.highestLabel(nNodes);
    return this.value;
  }

  private rebuildBuckets(nNodes: number): void {
    const label = this.level, excess = this.supply, eps = this.eps, INF = nNodes + 1;
    this.bHead.fill(-1, 0, INF + 1);
    this.maxB = 0;
    for (let v = 0; v < nNodes; v++) {
      this.inQ[v] = 0;
      if (excess[v] > eps && label[v] < INF) this.activate(v);
    }
  }

  private activate(v: number): void {
    const d = this.level[v];
    this.bNext[v] = this.bHead[d]; this.bHead[d] = v; this.inQ[v] = 1;
    if (d > this.maxB) this.maxB = d;
  }

  /** Highest-label push-relabel until no active node is left (or the flow reaches its upper bound). */
  private highestLabel(nNodes: number): void {
    const T = this.tokens, end = 2 * T, INF = nNodes + 1, eps = this.eps;
    const label = this.level, excess = this.supply, cur = this.cur, bHead = this.bHead, bNext = this.bNext, inQ = this.inQ;
    let staleNear = false;
    for (;;) {
      while (this.maxB > 0 && bHead[this.maxB] < 0) this.maxB--;
      if (this.maxB === 0) return;
      const v = bHead[this.maxB];
      bHead[this.maxB] = bNext[v]; inQ[v] = 0;
      // discharge v
      let ex = excess[v];
      for (;;) {
        const a = this.nextArc(v, cur[v]);
        if (a < end) {
          const r = this.arcRes, d = ex < r ? ex : r;
          this.push(v, a, d);
          ex -= d;
          const w = this.head(v, a, nNodes);
          if (w === nNodes) {
            this.value += d;
            if (this.value >= this.bound) { excess[v] = ex; return; }
          } else {
            excess[w] += d;
            if (inQ[w] === 0) this.activate(w);
          }
          this.pushes++;
          if (d === r) cur[v] = a + 1;
          if (!(ex > eps)) break;
        } else {
          if (label[v] < NEAR) staleNear = true; // the near-sink structure changed
          this.relabel(v, nNodes);
          this.relabels++;
          cur[v] = 0;
          if (label[v] >= INF) break;
          if (++this.relabelsSinceGlobal >= nNodes) break;
        }
      }
      excess[v] = ex;
      if (ex > eps && label[v] < INF && inQ[v] === 0) this.activate(v);
      if (this.relabelsSinceGlobal >= nNodes) {
        // periodic complete global relabel: exact labels everywhere, INF for nodes cut off from the sink
        this.relabelsSinceGlobal = 0;
        staleNear = false;
        if (!this.relabelFromSink(nNodes, INF, true)) return;
        this.rebuildBuckets(nNodes);
      } else if (staleNear) {
        staleNear = false;
        if (!this.relabelFromSink(nNodes, NEAR, true)) return;
        this.rebuildBuckets(nNodes);
      }
    }
  }

  /** label[v] = 1 + min label over residual arcs of v (INF when it has none). */
  private relabel(v: number, nNodes: number): void {
    const T = this.tokens, TT = T * T, l = this.srcLayer, eps = this.eps, label = this.level;
    const k = (v / T | 0) + 1, i = v - (k - 1) * T;
    let m = nNodes; // INF - 1
    if (k === 1) {
      if (this.sinkRes[i] > eps) m = 0;
    } else {
      const R = this.R, D = this.D, rb = (k - 1) * TT + i * T, o = this.om[k * T + i], lb = (k - 2) * T;
      for (let j = 0; j < T; j++) if (label[lb + j] < m && R[rb + j] * o - D[rb + j] > eps) m = label[lb + j];
    }
    if (k + 1 <= l - 1) {
      const RT = this.RT, DT = this.DT, theta = this.theta, rb = k * TT + i * T, tb = (k + 1) * T, lb = k * T;
      for (let h = 0; h < T; h++) if (label[lb + h] < m && theta[tb + h] * RT[rb + h] + DT[rb + h] > eps) m = label[lb + h];
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
  private relabelFromSink(nNodes: number, dmax: number, raise: boolean): boolean {
    const T = this.tokens, TT = T * T, l = this.srcLayer, eps = this.eps, INF = nNodes + 1;
    const label = this.level, near = this.near, queue = this.queue, excess = this.supply, cur = this.cur;
    const R = this.R, RT = this.RT, D = this.D, DT = this.DT, theta = this.theta, om = this.om;
    this.globals++;
    near.fill(-1, 0, nNodes);
    let qt = 0, truncated = false, alive = false;
    for (let x = 0; x < T; x++) if (this.sinkRes[x] > eps) { near[x] = 1; queue[qt++] = x; }
    for (let qh = 0; qh < qt; qh++) {
      const w = queue[qh], d = near[w], nd = d + 1;
      if (excess[w] > eps) alive = true;
      if (d >= dmax) { truncated = true; continue; }
      const k = (w / T | 0) + 1, j = w - (k - 1) * T;
      if (k + 1 <= l - 1) {
        // down arcs (k+1, i) -> (k, j), edge layer k: residual R_k[i, j] (1 - theta_{k+1}[i]) - D_k[i, j]
        const cb = k * TT + j * T, ob = (k + 1) * T, vb = k * T;
        for (let i = 0; i < T; i++) {
          const v = vb + i;
          if (near[v] < 0 && RT[cb + i] * om[ob + i] - DT[cb + i] > eps) { near[v] = nd; queue[qt++] = v; }
        }
      }
      if (k >= 2) {
        // up arcs (k-1, i) -> (k, j): residual = flow on (k, j) -> (k-1, i), edge layer k-1
        const th = theta[k * T + j], rb = (k - 1) * TT + j * T, vb = (k - 2) * T;
        for (let i = 0; i < T; i++) {
          const v = vb + i;
          if (near[v] < 0 && th * R[rb + i] + D[rb + i] > eps) { near[v] = nd; queue[qt++] = v; }
        }
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
   * First admissible arc of node v at index >= a (an arc to a node one level closer to the sink with residual >
   * eps), or 2T if none. Arcs [0, T): down to (k-1, j) (for k = 1 only arc 0, the sink); [T, 2T): up to (k+1, h).
   * Leaves the arc's residual in this.arcRes.
   */
  private nextArc(v: number, a: number): number {
    const T = this.tokens, TT = T * T, l = this.srcLayer, eps = this.eps, level = this.level;
    const k = (v / T | 0) + 1, i = v - (k - 1) * T, tl = level[v] - 1;
    if (a < T) {
      if (k === 1) {
        if (a === 0 && tl === 0 && this.sinkRes[i] > eps) { this.arcRes = this.sinkRes[i]; return 0; }
        a = T;
      } else {
        const R = this.R, D = this.D, rb = (k - 1) * TT + i * T, o = this.om[k * T + i], lb = (k - 2) * T;
        for (; a < T; a++) {
          if (level[lb + a] !== tl) continue;
          const r = R[rb + a] * o - D[rb + a];
          if (r > eps) { this.arcRes = r; return a; }
        }
      }
    }
    if (k + 1 <= l - 1) {
      const RT = this.RT, DT = this.DT, theta = this.theta, rb = k * TT + i * T - T, tb = (k + 1) * T - T, lb = k * T - T;
      for (; a < 2 * T; a++) {
        if (level[lb + a] !== tl) continue;
        const r = theta[tb + a] * RT[rb + a] + DT[rb + a];
        if (r > eps) { this.arcRes = r; return a; }
      }
    }
    return 2 * T;
  }

  /** Residual capacity of arc number `a` of node v (see arcCount for the numbering). */
  private residual(v: number, a: number): number {
    const T = this.tokens, TT = T * T;
    const k = (v / T | 0) + 1, i = v - (k - 1) * T;
    if (k === 1) {
      if (a < T) return this.sinkRes[i];
      const h = a - T; // up arc (1, i) -> (2, h): flow on edge (2, h) -> (1, i), edge layer 1
      return this.theta[2 * T + h] * this.RT[TT + i * T + h] + this.DT[TT + i * T + h];
    }
    if (a < T) { // down arc (k, i) -> (k-1, a), edge layer k-1
      const m = k - 1;
      return this.R[m * TT + i * T + a] * this.om[k * T + i] - this.D[m * TT + i * T + a];
    }
    const h = a - T; // up arc (k, i) -> (k+1, h), edge layer k
    return this.theta[(k + 1) * T + h] * this.RT[k * TT + i * T + h] + this.DT[k * TT + i * T + h];
  }

  private markDirty(m: number, row: number, colRow: number): void {
    const T = this.tokens;
    const r = m * T + row;
    if (this.dirtyRow[r] === 0) { this.dirtyRow[r] = 1; this.dirtyList[this.nDirty++] = r; }
    const rt = m * T + colRow;
    if (this.dirtyRowT[rt] === 0) { this.dirtyRowT[rt] = 1; this.dirtyListT[this.nDirtyT++] = rt; }
  }

  /** Pushes d along arc `a` of node v. */
  private push(v: number, a: number, d: number): void {
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
  private head(v: number, a: number, nNodes: number): number {
    const T = this.tokens;
    const k = (v / T | 0) + 1;
    if (k === 1) return a < T ? nNodes : T + (a - T);
    if (a < T) return (k - 2) * T + a;
    return k * T + (a - T);
  }



  /** Max-flow values from source (layer, token) to every input token, written to out[0..T). */
  flowsFrom(layer: number, token: number, out: Float64Array = new Float64Array(this.tokens)): Float64Array {
    this.setSource(layer, token);
    for (let b = 0; b < this.tokens; b++) out[b] = this.solve(b);
    return out;
  }

  /**
   * The preflow of the last solve() as dense edge flows over the original graph restricted to layers 0..l:
   * (l, T, T), entry [m][i][j] = flow on edge (m+1, i) -> (m, j). For checking; allocates.
   */
  edgeFlows(): { flows: Float64Array; layer: number; source: number; sink: number; value: number } {
    const T = this.tokens, TT = T * T, l = this.srcLayer, a0 = this.srcToken, b = this.sinkToken;
    if (a0 < 0 || b < 0) throw new Error("LayeredMaxFlow.edgeFlows: no solve() to report");
    const f = new Float64Array(l * TT);
    const R = this.R;
    if (l === 1) { f[a0 * T + b] = R[a0 * T + b]; return { flows: f, layer: l, source: a0, sink: b, value: this.value }; }
    for (let j = 0; j < T; j++) f[(l - 1) * TT + a0 * T + j] = R[(l - 1) * TT + a0 * T + j];
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
