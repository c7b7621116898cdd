// A reference for next-token sampling written apart from src/hf/generation.ts (the search generate() uses): the
// distribution softmax(logits / T) restricted to the top-k and then to the top-p nucleus, renormalised. Tests check
// that every sampled token lies in its support and that sample frequencies follow it.

/** Float64Array over the vocabulary, zeros outside the kept set; temperature 0 puts all mass on the argmax. */
export function samplingDistribution(logits: ArrayLike<number>, o: { temperature?: number; topK?: number; topP?: number; banned?: readonly number[] } = {}): Float64Array {
  const V = logits.length, temp = o.temperature ?? 1, topK = o.topK ?? 0, topP = o.topP ?? 1;
  const x = Float64Array.from(logits);
  for (const b of o.banned ?? []) if (b >= 0 && b < V) x[b] = -Infinity;
  let best = 0;
  for (let i = 1; i < V; i++) if (x[i] > x[best]) best = i;
  const p = new Float64Array(V);
  if (temp === 0) { p[best] = 1; return p; }
  // ids by logit, descending (lower id first on ties)
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => x[b] - x[a] || a - b);
  let keepN = topK > 0 ? Math.min(topK, V) : V, z = 0;
  for (let r = 0; r < keepN; r++) { const i = order[r]; p[i] = Math.exp((x[i] - x[best]) / temp); z += p[i]; }
  if (topP < 1) {
    // the smallest prefix of the (top-k) sorted ids whose mass reaches topP
    let acc = 0, r = 0;
    while (r < keepN) { acc += p[order[r]] / z; r++; if (acc >= topP) break; }
    for (let s = r; s < keepN; s++) p[order[s]] = 0;
    keepN = r;
    z = 0;
    for (let s = 0; s < keepN; s++) z += p[order[s]];
  }
  for (let r = 0; r < keepN; r++) p[order[r]] /= z;
  return p;
}
