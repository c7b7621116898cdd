// Greedy and beam-search decoding over any step function (memory, prefixes) → next-token logits. Browser-safe, model-free:
// the step function is where a model lives (e.g. Seq2SeqTransformer.decodeStep), so the search is testable on hand-made
// scores. Log-softmax is applied here (in float64), so a step function may return raw logits.
//
// Scores: a hypothesis y_1..y_n has logProb = Σ log p(y_t | y_<t, source). Beam search ranks by
// score = logProb / lp(n) with the GNMT length penalty lp(n) = ((5 + n) / 6)^α (Wu et al. 2016; α = 0 → raw logProb),
// where n counts the generated tokens including [EOS].

/**
 * Next-token logits for a batch of prefixes: prefixes[i] (starting with [BOS]) continues source `sources[i]` of the
 * memory. Returns (N, V) row-major, N = prefixes.length. From the second call of a search on, `parents[i]` is the row
 * of the previous call whose prefix prefixes[i] extends by one token, so a step function may keep per-row state (a
 * key/value cache) and reorder it; stateless step functions ignore it.
 */
export type StepFunction<M> = (memory: M, prefixes: readonly (readonly number[])[], sources: readonly number[],
  parents?: readonly number[]) => ArrayLike<number>;

export interface DecodeOptions {
  bos: number;
  eos: number;
  /** Most tokens generated per hypothesis, [EOS] included. */
  maxLen: number;
  /** Sources in the memory (decoded in one batch), default 1. */
  numSources?: number;
}

export interface BeamOptions extends DecodeOptions {
  beamWidth: number;
  /** α of the GNMT length penalty (default 0: rank by total log-probability). */
  lengthPenalty?: number;
  /** Hypotheses returned per source (default beamWidth, at most beamWidth). */
  numReturn?: number;
}

export interface Hypothesis {
  /** Generated tokens, without [BOS] and [EOS]. */
  tokens: number[];
  /** Σ log-probabilities of the generated tokens ([EOS] included when finished). */
  logProb: number;
  /** logProb / lp(n): the ranking score. */
  score: number;
  /** true when the hypothesis ended with [EOS]; false when it hit maxLen. */
  finished: boolean;
}

/** GNMT length penalty ((5 + n) / 6)^α. */
export function lengthPenaltyFactor(n: number, alpha: number): number {
  return alpha === 0 ? 1 : Math.pow((5 + n) / 6, alpha);
}

function checkOptions(o: DecodeOptions, fn: string): number {
  const n = o.numSources ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${fn}: numSources must be a positive integer, got ${String(o.numSources)}`);
  if (!Number.isInteger(o.maxLen) || o.maxLen < 1) throw new RangeError(`${fn}: maxLen must be a positive integer, got ${String(o.maxLen)}`);
  for (const k of ["bos", "eos"] as const) if (!Number.isInteger(o[k]) || o[k] < 0) throw new RangeError(`${fn}: ${k} must be a token id, got ${String(o[k])}`);
  return n;
}

/** Call the step function and turn its logits into float64 log-probabilities, one row per prefix. */
function logProbs<M>(step: StepFunction<M>, memory: M, prefixes: number[][], sources: number[], parents: number[] | undefined,
  fn: string): Float64Array[] {
  const logits = step(memory, prefixes, sources, parents);
  const N = prefixes.length;
  if (logits.length % N !== 0 || logits.length === 0) throw new Error(`${fn}: step function returned ${logits.length} logits for ${N} prefixes (expected N·V)`);
  const V = logits.length / N, rows: Float64Array[] = [];
  for (let i = 0; i < N; i++) {
    const r = new Float64Array(V);
    let m = -Infinity;
    for (let v = 0; v < V; v++) { r[v] = logits[i * V + v]; if (r[v] > m) m = r[v]; }
    if (!Number.isFinite(m)) throw new Error(`${fn}: logits row ${i} has no finite maximum (${m})`);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(r[v] - m);
    const lse = m + Math.log(s);
    for (let v = 0; v < V; v++) r[v] -= lse;
    rows.push(r);
  }
  return rows;
}

/** Greedy decoding of every source at once: the most probable token at each step until [EOS] or maxLen. */
export function greedyDecode<M>(step: StepFunction<M>, memory: M, o: DecodeOptions): Hypothesis[] {
  const n = checkOptions(o, "greedyDecode");
  const hyps: Hypothesis[] = Array.from({ length: n }, () => ({ tokens: [], logProb: 0, score: 0, finished: false }));
  let alive = Array.from({ length: n }, (_, i) => i), parents: number[] | undefined;
  for (let t = 0; t < o.maxLen && alive.length; t++) {
    const rows = logProbs(step, memory, alive.map((i) => [o.bos, ...hyps[i].tokens]), alive, parents, "greedyDecode");
    const next: number[] = [];
    parents = [];
    alive.forEach((i, r) => {
      const lp = rows[r];
      let best = 0;
      for (let v = 1; v < lp.length; v++) if (lp[v] > lp[best]) best = v;
      hyps[i].logProb += lp[best];
      if (best === o.eos) hyps[i].finished = true;
      else { hyps[i].tokens.push(best); next.push(i); parents!.push(r); }
    });
    alive = next;
  }
  for (const h of hyps) h.score = h.logProb;
  return hyps;
}

/** A live hypothesis; `row` = its parent's row in the previous step call (-1 before the first call). */
interface Beam { tokens: number[]; logProb: number; row: number }

/**
 * Beam search, all sources batched into each step call. Per step every live beam proposes its 2·W best tokens; the
 * best W non-[EOS] continuations stay alive and [EOS] continuations ranked above them become finished hypotheses.
 * A source stops when W hypotheses are finished and no live beam can still beat the W-th best (with α ≥ 0 a live
 * beam's final score is at most logProb / lp(maxLen), since log-probabilities only decrease), or at maxLen, where the
 * live beams are returned as unfinished. Returns, per source, the best hypotheses by score (best first).
 */
export function beamSearch<M>(step: StepFunction<M>, memory: M, o: BeamOptions): Hypothesis[][] {
  const n = checkOptions(o, "beamSearch");
  const W = o.beamWidth, alpha = o.lengthPenalty ?? 0, numReturn = o.numReturn ?? W;
  if (!Number.isInteger(W) || W < 1) throw new RangeError(`beamSearch: beamWidth must be a positive integer, got ${String(W)}`);
  if (!Number.isInteger(numReturn) || numReturn < 1 || numReturn > W) throw new RangeError(`beamSearch: numReturn must be in [1, beamWidth=${W}], got ${String(numReturn)}`);
  if (!Number.isFinite(alpha)) throw new RangeError(`beamSearch: lengthPenalty must be finite, got ${alpha}`);
  const pen = (len: number) => lengthPenaltyFactor(len, alpha);
  const alive: Beam[][] = Array.from({ length: n }, () => [{ tokens: [], logProb: 0, row: -1 }]);
  const finished: Hypothesis[][] = Array.from({ length: n }, () => []);
  const done = new Array<boolean>(n).fill(false);

  for (let t = 0; t < o.maxLen; t++) {
    const prefixes: number[][] = [], sources: number[] = [], owners: [number, number][] = [], parents: number[] = [];
    for (let s = 0; s < n; s++) {
      if (done[s]) continue;
      alive[s].forEach((b, k) => { prefixes.push([o.bos, ...b.tokens]); sources.push(s); owners.push([s, k]); parents.push(b.row); });
    }
    if (!prefixes.length) break;
    const rows = logProbs(step, memory, prefixes, sources, t === 0 ? undefined : parents, "beamSearch");
    // candidates per source: (beam, its row in this call, token, total logProb)
    const cands: { beam: Beam; row: number; tok: number; lp: number }[][] = Array.from({ length: n }, () => []);
    rows.forEach((lp, r) => {
      const [s, k] = owners[r], beam = alive[s][k];
      const order = Array.from(lp.keys()).sort((a, b) => lp[b] - lp[a] || a - b).slice(0, 2 * W);
      for (const tok of order) cands[s].push({ beam, row: r, tok, lp: beam.logProb + lp[tok] });
    });
    const len = t + 1; // tokens generated after this step, [EOS] included
    for (let s = 0; s < n; s++) {
      if (done[s]) continue;
      cands[s].sort((a, b) => b.lp - a.lp);
      const next: Beam[] = [];
      for (const c of cands[s]) {
        if (next.length === W) break;
        if (c.tok === o.eos) finished[s].push({ tokens: c.beam.tokens, logProb: c.lp, score: c.lp / pen(len), finished: true });
        else next.push({ tokens: [...c.beam.tokens, c.tok], logProb: c.lp, row: c.row });
      }
      alive[s] = next;
      const fin = finished[s].sort((a, b) => b.score - a.score);
      if (fin.length >= W && next.length) {
        const bound = next[0].logProb / Math.max(pen(len + 1), pen(o.maxLen));
        if (bound <= fin[W - 1].score) done[s] = true;
      }
      if (!next.length) done[s] = true;
    }
  }
  return finished.map((fin, s) => {
    const all = done[s] ? [...fin] : [...fin, ...alive[s].map((b) => ({ tokens: b.tokens, logProb: b.logProb, score: b.logProb / pen(b.tokens.length), finished: false }))];
    return all.sort((a, b) => b.score - a.score).slice(0, numReturn);
  });
}
