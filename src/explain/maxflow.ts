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
// Algorithm: push-relabel (FIFO selection, phase 1 only: the value of a maximum preflow is the max-flow value)
// started from a preflow that already does most of the work.
//  1. Shared preflow ("shared" strategy, per source, reused by all T sinks): u saturates its edges; every node
//     (k, i), k >= 3, pushes the same fraction theta = min(1, inflow / outcap) of each of its down-edges, i.e.
//     the rollout of u's row. For row-stochastic R every inflow is <= 1 = outcap, so nothing is stuck above layer 2.
//     With many zero capacities (causal masks) the "per-sink" strategy instead restricts that push, per sink, to
//     nodes that can reach b at all (reach bitsets), so no flow is poured into dead ends.
//  2. Per sink: each layer-2 node hands its inflow greedily to layer-1 nodes that still have spare capacity to b
//     (b first); what it cannot place stays as excess. Often this already reaches min(out(u), in(b)): done.
//  3. Otherwise push-relabel on the rest, active nodes taken in FIFO order, with exact distance labels near the sink
//     (a BFS from the sink truncated at distance 3, valid lower bounds elsewhere) and the gap heuristic (when no
//     node is left at some label d, every node labelled above d is cut off from the sink and leaves phase 1 at once).
//     Label refreshes are scheduled by work, as in Cherkassky & Goldberg's hi_pr: the near-sink labels after a few
//     relabels of nodes next to the sink once the relabel work since the last refresh reaches 1/8 of that BFS's
//     cost, every label once it reaches twice a full BFS's cost. It stops when the flow reaches the upper bound,
//     or when no node holding excess can reach the sink (then the sink-reachable set is a saturated cut: the value
//     is exact).
//     Why FIFO and work-based refreshes (issue 16, "fewer layers is slower"; bench/flow-depth.ts counts the work):
//     the excess the greedy step leaves sits mostly at layer 2 and most of it is never needed (the flow stops at
//     the sink's in-capacity). Highest-label selection discharges the nodes farthest from the sink first, so it
//     moved that excess up to layer 3 and back down in thousands of tiny pushes (on peaked synthetic attention at
//     L 4, 29 units of flow up and down per 7 delivered) before the nodes next to the sink delivered; on trained
//     attention FIFO does 2.5x less work at every depth. And the near-sink refresh every 4 low relabels was, for a
//     shallow source (L <= 4: distance 3 covers the whole graph), a full BFS every 4 relabels: 60-75% of all the
//     work there. Both made a row from a shallow layer cost more than one from a deep layer. For a source at
//     layer 3 (two intermediate layers) the near-sink BFS is a full one, and refreshing it at 1/8 of its cost still
//     made BFS half of all the work (5.0 of 9.4 M entries per row on peaked synthetic attention, T 128): there it
//     waits for 1/2 of its cost, 16-25% less work on five workloads (peaked synthetic with three seeds, causal,
//     the classifier's attention); at layer 4 and above 1/2 does more work than 1/8.
// Capacities are float64; residuals <= eps = 1e-13 * (largest row sum) count as saturated, so values are exact to
// about 1e-12 relative.
// Every scan over a layer's tokens is limited to a window (maxflow-residual.ts): the tokens the source reaches and,
// per sink, those that reach the sink. For causal attention from token a to input b that is [b, a], which makes
// decoder flow 2-3x cheaper than full scans; dense attention keeps full windows.

import type { MatrixStack } from "./attention-stack.js";
import { LayeredResidual } from "./maxflow-residual.js";

/** Depth of the cheap partial relabel from the sink (exact labels for nodes at distance <= NEAR). */
const NEAR = 3;
/** The near-sink labels are refreshed after this many relabels of nodes labelled below NEAR ... */
const STALE_EVERY = 4;
/** ... once the relabel work since the last refresh is at least this fraction of that BFS's cost, */
const NEAR_REFRESH_WORK = 0.125;
/** (for a source at layer 3 or below, where the near-sink BFS spans every layer: this fraction) */
const NEAR_REFRESH_WORK_SHALLOW = 0.5;
/** and every label is recomputed once the relabel work since the last global relabel is this multiple of its cost. */
const GLOBAL_RELABEL_WORK = 2;
/** Work charged per relabel on top of the residual entries it scans (as in Cherkassky & Goldberg's hi_pr). */
const RELABEL_BETA = 12;
/** Work charged per node in a BFS's cost (hi_pr's ALPHA), on top of its residual entries. */
const BFS_ALPHA = 6;

export type MaxFlowStrategy = "auto" | "shared" | "per-sink";

export class LayeredMaxFlow extends LayeredResidual {
  private resolved: "shared" | "per-sink" = "shared";
  private readonly requested: MaxFlowStrategy;
  private reach: Uint32Array | null = null; // ((L+1) T, W) reach bitsets (per-sink strategy only)
  private words = 0;
  private srcLive = 0;                      // capacity of the source's edges into live nodes (per-sink)
  private readonly inflow: Float64Array;    // (L+1, T) inflow of node (k, i) in the preflow
  private readonly stuck: Float64Array;     // (L+1, T) shared-preflow excess of node (k, i), k >= 3
  private readonly fifo: Int32Array;        // ring buffer of active nodes (each at most once, inQ)
  private fifoHead = 0;
  private fifoLen = 0;
  private readonly inQ: Uint8Array;
  private readonly count: Int32Array;      // nodes per label (gap heuristic)
  private readonly needy: Int32Array;       // (T) scratch: layer-1 nodes with spare sink capacity
  private relabelWork = 0;                  // relabel work since the last full global relabel
  private nearWork = 0;                     // relabel work since the last near-sink refresh
  private globalCost = 0;                   // cost estimates of a full BFS and of the near-sink BFS (same units)
  private nearCost = 0;
  private bound = 0;
  /** Sinks solved by the preflow alone (its value reached the upper bound at once), and after push-relabel. */
  atOnce = 0;
  atBound = 0;

  /**
   * `res` holds the capacities: res[m][i, j] is the capacity of edge (m+1, i) -> (m, j); all must be >= 0.
   * strategy: "shared" starts every solve from the per-source rollout preflow (best for dense attention),
   * "per-sink" rebuilds that preflow per sink over the nodes that can reach the sink (best when many capacities
   * are 0, e.g. causal masks); "auto" (default) picks "per-sink" when more than 1% of the capacities are 0.
   */
  constructor(res: MatrixStack, strategy: MaxFlowStrategy = "auto") {
    super(res);
    if (strategy !== "auto" && strategy !== "shared" && strategy !== "per-sink") {
      throw new RangeError(`LayeredMaxFlow: strategy must be "auto", "shared" or "per-sink", got ${String(strategy)}`);
    }
    this.requested = strategy;
    const L = this.layers, T = this.tokens;
    this.resolveStrategy();
    this.inflow = new Float64Array((L + 1) * T);
    this.stuck = new Float64Array((L + 1) * T);
    this.fifo = new Int32Array(L * T);
    this.inQ = new Uint8Array(L * T);
    this.count = new Int32Array(L * T + 2);
    this.needy = new Int32Array(T);
  }

  /** The strategy in use ("auto" resolved from the capacities). */
  get strategy(): "shared" | "per-sink" { return this.resolved; }

  /**
   * Re-reads the capacity array after its values were changed in place (same shape): transposes, row sums, the
   * "auto" strategy choice and the reach bitsets are recomputed; buffers are kept.
   */
  refresh(): void {
    this.loadCapacities();
    this.resolveStrategy();
  }

  private resolveStrategy(): void {
    const L = this.layers, T = this.tokens, TT = T * T, R = this.R;
    let zeros = 0;
    for (let e = 0; e < R.length; e++) if (R[e] === 0) zeros++;
    this.resolved = this.requested === "auto" ? (zeros > 0.01 * R.length ? "per-sink" : "shared") : this.requested;
    this.perSink = this.resolved === "per-sink";
    if (!this.perSink) return;
    // reach[(k, i)] = set of input tokens node (k, i) reaches through positive capacities, k = 1..L
    const W = this.words = (T + 31) >>> 5;
    const reach = this.reach = this.reach?.length === (L + 1) * T * W ? this.reach.fill(0) : new Uint32Array((L + 1) * T * W);
    for (let x = 0; x < T; x++) for (let b = 0; b < T; b++) if (R[x * T + b] > 0) reach[(T + x) * W + (b >>> 5)] |= 1 << (b & 31);
    for (let k = 2; k <= L; k++) {
      for (let i = 0; i < T; i++) {
        const o = (k * T + i) * W, rb = (k - 1) * TT + i * T;
        for (let j = 0; j < T; j++) {
          if (!(R[rb + j] > 0)) continue;
          const c = ((k - 1) * T + j) * W;
          for (let w = 0; w < W; w++) reach[o + w] |= reach[c + w];
        }
      }
    }
  }

  /**
   * Selects the source node (layer, token), 1 <= layer <= L, and builds its base preflow (cost O(layer * T^2)).
   */
  setSource(layer: number, token: number): void {
    const L = this.layers, T = this.tokens;
    if (!Number.isInteger(layer) || layer < 1 || layer > L) throw new RangeError(`max-flow source layer must be an integer in [1, ${L}], got ${layer}`);
    if (!Number.isInteger(token) || token < 0 || token >= T) throw new RangeError(`max-flow source token must be an integer in [0, ${T - 1}], got ${token}`);
    this.srcRow.set(this.R.subarray((layer - 1) * T * T + token * T, (layer - 1) * T * T + token * T + T));
    this.startSource(layer, token);
  }

  /**
   * Selects a weighted source: a virtual node one layer above `layer` (0 <= layer <= L) with an edge of capacity
   * weights[i] into token i of `layer`. Its max-flow to input b is the share of the weight vector that can reach b
   * (e.g. the flow of the mean of several output rows, in one max-flow per sink instead of one per row).
   */
  setSourceWeights(layer: number, weights: ArrayLike<number>): void {
    const L = this.layers, T = this.tokens;
    if (!Number.isInteger(layer) || layer < 0 || layer > L) throw new RangeError(`max-flow weighted source: layer must be an integer in [0, ${L}], got ${layer}`);
    if (weights.length !== T) throw new RangeError(`max-flow weighted source: ${weights.length} weights for ${T} tokens`);
    for (let j = 0; j < T; j++) {
      const w = weights[j];
      if (!(w >= 0) || w === Infinity) throw new RangeError(`max-flow weighted source: weight [${j}] is ${w}; weights must be finite and >= 0`);
      this.srcRow[j] = w;
    }
    this.startSource(layer + 1, T);
  }

  private startSource(layer: number, token: number): void {
    const T = this.tokens, TT = T * T;
    this.resetSink();
    this.srcLayer = layer; this.srcToken = token;
    let cap = 0;
    for (let j = 0; j < T; j++) cap += this.srcRow[j];
    this.srcCap = cap;
    this.sourceWindows(layer);
    const R = this.R, inflow = this.inflow, theta = this.theta, om = this.om, stuck = this.stuck;
    if (layer === 1) return;
    // inflow of layer l-1: u saturates its down-edges
    const l = layer, top = (l - 1) * T, srcRow = this.srcRow;
    for (let j = 0; j < T; j++) inflow[top + j] = srcRow[j];
    // layer 2 does not push here: solve() spreads its inflow over layer 1 per sink (theta_2 = 0, flows in D)
    for (let i = 0; i < T; i++) { theta[2 * T + i] = 0; om[2 * T + i] = 1; stuck[2 * T + i] = 0; }
    if (this.perSink) {
      // the preflow is built per sink in solve(); nothing is shared
      theta.fill(0); om.fill(1); stuck.fill(0);
      return;
    }
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

  /** Max-flow value from the current source to input token b. */
  solve(b: number): number {
    const T = this.tokens, l = this.srcLayer;
    if (this.srcToken < 0) throw new Error("LayeredMaxFlow.solve: call setSource(layer, token) first");
    if (!Number.isInteger(b) || b < 0 || b >= T) throw new RangeError(`max-flow sink token must be an integer in [0, ${T - 1}], got ${b}`);
    this.resetSink();
    this.sinkToken = b;
    const R = this.R;
    if (l === 1) { this.value = this.srcRow[b]; return this.value; }
    const inflow = this.inflow, sinkRes = this.sinkRes, excess = this.supply, eps = this.eps, label = this.level;
    const nNodes = (l - 1) * T, INF = nNodes + 1;
    let sinkCap = 0;
    for (let x = 0; x < T; x++) { const c = R[x * T + b]; sinkCap += c; sinkRes[x] = c; }
    if (this.perSink) {
      // live[(k, i)]: node (k, i) can reach b through positive capacities
      const reach = this.reach!, W = this.words, wb = b >>> 5, bit = 1 << (b & 31), live = this.live;
      // (layers 1..l-1; the source's own layer is never scanned)
      for (let v = T; v < l * T; v++) live[v] = (reach[v * W + wb] & bit) !== 0 ? 1 : 0;
      // token windows: reached from the source and able to reach b
      for (let k = 1; k <= l - 1; k++) {
        let a0 = this.srcLo[k], a1 = this.srcHi[k];
        while (a0 <= a1 && live[k * T + a0] === 0) a0++;
        while (a1 >= a0 && live[k * T + a1] === 0) a1--;
        this.lo[k] = a0; this.hi[k] = a1;
      }
      let srcLive = 0;
      const top = (l - 1) * T, srcRow = this.srcRow;
      for (let j = 0; j < T; j++) if (live[top + j]) srcLive += srcRow[j];
      this.srcLive = srcLive;
    }
    if (l === 2) {
      // layer 1 is fed by the source directly and forwards what it can; the rest is stuck for good
      for (let x = 0; x < T; x++) {
        const e = inflow[T + x], c = sinkRes[x];
        if (e >= c) { sinkRes[x] = 0; excess[x] = e - c; } else { sinkRes[x] = c - e; excess[x] = 0; }
      }
    } else {
      if (this.perSink) this.livePreflow();
      // layer 2 -> layer 1, per sink: each layer-2 node y gives its inflow greedily to layer-1 nodes that can still
      // pass flow to b (b first), up to the edge capacity; what it cannot place stays as excess at y
      // (the layer-1 nodes with spare capacity are kept in a compact list, b first, filled ones swapped out)
      const D = this.D, DT = this.DT, needy = this.needy;
      let nNeedy = 0;
      if (sinkRes[b] > 0) needy[nNeedy++] = b;
      for (let x = 0; x < T; x++) if (x !== b && sinkRes[x] > 0) needy[nNeedy++] = x;
      for (let y = 0; y < T; y++) {
        let rem = inflow[2 * T + y];
        const rb = T * T + y * T;
        for (let q = 0; q < nNeedy && rem > 0;) {
          const x = needy[q], need = sinkRes[x];
          let f = R[rb + x];
          if (f > rem) f = rem;
          if (f > need) f = need;
          if (f > 0) {
            D[rb + x] = f; DT[T * T + x * T + y] = f;
            this.markDirty(1, y, x);
            sinkRes[x] = need - f; rem -= f;
          }
          if (sinkRes[x] > 0) q++; else needy[q] = needy[--nNeedy];
        }
        excess[T + y] = rem;
      }
      for (let x = 0; x < T; x++) excess[x] = 0;
    }
    if (!this.perSink) for (let k = 3; k <= l - 1; k++) for (let i = 0; i < T; i++) excess[(k - 1) * T + i] = this.stuck[k * T + i];
    let value = 0;
    for (let x = 0; x < T; x++) value += R[x * T + b] - sinkRes[x];
    this.value = value;
    // no flow can exceed what leaves the source or what enters the sink: stop as soon as one is reached
    this.bound = Math.min(this.perSink ? this.srcLive : this.srcCap, sinkCap) - eps;
    if (this.value >= this.bound) { this.atOnce++; return this.value; }
    // exact labels near the sink (distance <= NEAR), valid lower bounds elsewhere; stop if nothing can move
    label[nNodes] = 0;
    const more = this.relabelFromSink(nNodes, NEAR, false);
    if (this.perSink) {
      // nodes that cannot reach b even in the original graph never carry flow: they stay out for good
      for (let v = 0; v < nNodes; v++) if (this.live[v + T] === 0) label[v] = INF;
    }
    if (!more) return this.value;
    this.rebuildQueue(nNodes);
    // relabel-work thresholds for the label refreshes: the cost of the BFS they replace (nodes and residual
    // entries of the token windows; the near one spans the NEAR layers next to the sink)
    let m = 0, mNear = 0;
    for (let k = 1; k <= l - 1; k++) {
      const w = this.hi[k] - this.lo[k] + 1;
      m += w * (BFS_ALPHA + (k >= 2 ? this.hi[k - 1] - this.lo[k - 1] + 1 : 1) + (k + 1 <= l - 1 ? this.hi[k + 1] - this.lo[k + 1] + 1 : 0));
      if (k === Math.min(NEAR, l - 1)) mNear = m;
    }
    this.globalCost = m; this.nearCost = mNear;
    this.relabelWork = 0; this.nearWork = 0;
    this.pushRelabel(nNodes);
    if (this.value >= this.bound) this.atBound++;
    return this.value;
  }

  /**
   * Per-sink strategy, sink b: the rollout preflow restricted to nodes that can reach b in the original graph
   * (reach bitsets). From the top, each such node pushes theta * R[i, j] to every such child j, theta =
   * min(1, inflow / capacity to such children); the rest stays as excess. Layer 2's inflow is left for the greedy.
   */
  private livePreflow(): void {
    const T = this.tokens, TT = T * T, l = this.srcLayer, R = this.R, D = this.D, DT = this.DT;
    const inflow = this.inflow, excess = this.supply, live = this.live;
    // inflow[k*T + i] for k < l-1 is per-sink scratch here; the source's row stays in inflow[(l-1)*T ..]
    const srcRow = this.srcRow;
    for (let k = l - 1; k >= 3; k--) {
      const kb = k * T, lb = (k - 1) * T, m = k - 1, jlo = this.lo[k - 1], jhi = this.hi[k - 1];
      for (let j = 0; j < T; j++) inflow[lb + j] = 0;
      for (let i = 0; i < T; i++) excess[kb - T + i] = 0;
      for (let i = this.lo[k]; i <= this.hi[k]; i++) {
        const e = k === l - 1 ? (live[kb + i] ? srcRow[i] : 0) : inflow[kb + i];
        if (!(e > 0)) continue;
        const rb = m * TT + i * T;
        let cap = 0;
        for (let j = jlo; j <= jhi; j++) if (live[lb + j]) cap += R[rb + j];
        const th = cap <= 0 ? 0 : e >= cap ? 1 : e / cap;
        excess[kb - T + i] = th === 0 ? e : th < 1 ? 0 : e - cap;
        if (th === 0) continue;
        this.markRow(m, i);
        for (let j = jlo; j <= jhi; j++) {
          if (!live[lb + j]) continue;
          const f = th * R[rb + j];
          D[rb + j] = f; DT[m * TT + j * T + i] = f; inflow[lb + j] += f;
        }
      }
      for (let j = jlo; j <= jhi; j++) if (live[lb + j]) this.markRowT(m, j);
    }
  }

  /** Label counts from scratch, and every node with excess (and a finite label) queued, in node order. */
  private rebuildQueue(nNodes: number): void {
    const label = this.level, excess = this.supply, eps = this.eps, INF = nNodes + 1, count = this.count;
    count.fill(0, 0, INF + 1);
    this.fifoHead = 0; this.fifoLen = 0;
    for (let v = 0; v < nNodes; v++) {
      this.inQ[v] = 0;
      const d = label[v];
      if (d < INF) { count[d]++; if (excess[v] > eps) this.activate(v); }
    }
  }

  /**
   * Gap heuristic: no node is left with label d (0 < d), so no node labelled above d can reach the sink (every
   * residual path to the sink steps down one label at a time): they get label INF and drop out of phase 1.
   */
  private gap(d: number, nNodes: number): void {
    const label = this.level, INF = nNodes + 1, count = this.count;
    for (let v = 0; v < nNodes; v++) {
      const x = label[v];
      if (x > d && x < INF) { count[x]--; label[v] = INF; }
    }
    this.gaps++;
  }

  private activate(v: number): void {
    const n = this.fifo.length;
    let t = this.fifoHead + this.fifoLen;
    if (t >= n) t -= n;
    this.fifo[t] = v; this.fifoLen++; this.inQ[v] = 1;
  }

  /**
   * FIFO push-relabel until no active node is left (or the flow reaches its upper bound). Each active node is
   * discharged in turn (pushes until its excess is gone, relabels when it has no admissible arc), and nodes that
   * receive excess join the back of the queue. FIFO, not highest-label first: with the rollout preflow, most of
   * the excess left after the greedy step cannot (or need not) reach the sink, and highest-label selection spends
   * its work moving exactly that excess (the nodes farthest from the sink) up and down the layers before it lets
   * nodes next to the sink deliver; FIFO lets excess accumulate and moves ~2.5x less on trained attention.
   */
  private pushRelabel(nNodes: number): void {
    const T = this.tokens, end = 2 * T, INF = nNodes + 1, eps = this.eps, fifo = this.fifo, n = fifo.length;
    const label = this.level, excess = this.supply, cur = this.cur, inQ = this.inQ;
    let staleNear = false, lowRelabels = 0;
    const nearRefresh = this.srcLayer - 1 < NEAR ? NEAR_REFRESH_WORK_SHALLOW : NEAR_REFRESH_WORK;
    for (;;) {
      if (this.fifoLen === 0) return;
      const v = fifo[this.fifoHead];
      if (++this.fifoHead === n) this.fifoHead = 0;
      this.fifoLen--; inQ[v] = 0;
      if (label[v] >= INF) continue;   // cut off by a gap while queued
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
          // a node next to the sink relabels: the near-sink structure changed; refresh those labels every few times
          if (label[v] < NEAR && ++lowRelabels >= STALE_EVERY) { staleNear = true; lowRelabels = 0; }
          const d0 = label[v], s0 = this.scans;
          this.relabel(v, nNodes);
          this.relabels++;
          const w = RELABEL_BETA + this.scans - s0;
          this.relabelWork += w; this.nearWork += w;
          cur[v] = 0;
          if (label[v] < INF) this.count[label[v]]++;
          if (--this.count[d0] === 0) this.gap(d0, nNodes);
          if (label[v] >= INF) break;
          if (this.relabelWork > GLOBAL_RELABEL_WORK * this.globalCost) break;
        }
      }
      excess[v] = ex;
      if (ex > eps && label[v] < INF && inQ[v] === 0) this.activate(v);
      if (this.relabelWork > GLOBAL_RELABEL_WORK * this.globalCost) {
        // periodic complete global relabel: exact labels everywhere, INF for nodes cut off from the sink
        this.relabelWork = 0; this.nearWork = 0;
        staleNear = false;
        if (!this.relabelFromSink(nNodes, INF, true)) return;
        this.rebuildQueue(nNodes);
      } else if (staleNear && this.nearWork > nearRefresh * this.nearCost) {
        staleNear = false; this.nearWork = 0;
        if (!this.relabelFromSink(nNodes, NEAR, true)) return;
        this.rebuildQueue(nNodes);
      }
    }
  }

  /** Max-flow values from the weighted source over `layer`'s tokens (setSourceWeights) to every input token. */
  flowsFromWeights(layer: number, weights: ArrayLike<number>, out: Float64Array = new Float64Array(this.tokens)): Float64Array {
    this.setSourceWeights(layer, weights);
    for (let b = 0; b < this.tokens; b++) out[b] = this.solve(b);
    return out;
  }

  /** Max-flow values from source (layer, token) to every input token, written to out[0..T). */
  flowsFrom(layer: number, token: number, out: Float64Array = new Float64Array(this.tokens)): Float64Array {
    this.setSource(layer, token);
    for (let b = 0; b < this.tokens; b++) out[b] = this.solve(b);
    return out;
  }
}
