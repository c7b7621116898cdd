// The max-flow solver limits its scans to token windows (nodes the source reaches and, per sink, nodes that reach
// the sink). These graphs make the windows narrow and irregular — causal, sliding-window (banded) and
// "attention sink" patterns with random zeros — and compare every value with plain Edmonds–Karp.
import { test } from "node:test";
import assert from "node:assert/strict";
import { matrixStack, prepareLayers } from "../src/explain/attention-stack.js";
import { LayeredMaxFlow } from "../src/explain/maxflow.js";
import { edmondsKarp, layeredAdjacency, rng } from "./explain-helpers.js";

/** Softmax-like rows over the keys `allowed(i, j)` permits (some weights dropped to exactly 0), (L, 1, T, T). */
function maskedAttention(L: number, T: number, seed: number, allowed: (i: number, j: number) => boolean, zeroFrac = 0.15) {
  const r = rng(seed);
  const data = new Float64Array(L * T * T);
  for (let row = 0; row < L * T; row++) {
    const i = row % T;
    let s = 0;
    for (let j = 0; j < T; j++) {
      if (!allowed(i, j) || (j !== i && r() < zeroFrac)) continue;
      const e = Math.exp((r() - 0.5) * 6);
      data[row * T + j] = e; s += e;
    }
    for (let j = 0; j < T; j++) data[row * T + j] /= s;
  }
  return { data, layers: L, heads: 1, tokens: T };
}

function check(name: string, caps: Float64Array, L: number, T: number, pairs: number): void {
  const N = (L + 1) * T, adj = layeredAdjacency(caps, L, T), r = rng(T * 31 + L);
  for (const strategy of ["shared", "per-sink"] as const) {
    const solver = new LayeredMaxFlow(matrixStack(L, T, caps), strategy);
    for (let p = 0; p < pairs; p++) {
      const l = 1 + Math.floor(r() * L), a = Math.floor(r() * T);
      solver.setSource(l, a);
      for (let b = 0; b < T; b++) {
        const v = solver.solve(b), ek = edmondsKarp(adj, N, l * T + a, b);
        assert.ok(Math.abs(v - ek) <= 1e-12 * Math.max(1, ek), `${name} ${strategy}: flow (${l},${a})->${b} = ${v}, Edmonds-Karp ${ek}`);
      }
    }
  }
}

test("windowed max-flow scans: causal, banded and attention-sink patterns match Edmonds–Karp", () => {
  const L = 5, T = 13;
  const patterns: Record<string, (i: number, j: number) => boolean> = {
    causal: (i, j) => j <= i,
    "sliding window 3": (i, j) => Math.abs(i - j) <= 3,
    "causal window 4": (i, j) => j <= i && i - j <= 4,
    "sink token + local": (i, j) => j === 0 || Math.abs(i - j) <= 1,
  };
  let seed = 1;
  for (const [name, allowed] of Object.entries(patterns)) {
    const att = maskedAttention(L, T, seed++, allowed);
    check(`${name} + residual`, prepareLayers(att).data, L, T, 6);
    check(`${name} no residual`, prepareLayers(att, { residual: false }).data, L, T, 6);
  }
  // rows with no capacity at all and a token nobody attends to
  const caps = prepareLayers(maskedAttention(4, 9, 42, (i, j) => j !== 4 && j <= i), { residual: false }).data;
  for (let j = 0; j < 9; j++) caps[(1 * 9 + 6) * 9 + j] = 0;
  check("empty row, unattended token", caps, 4, 9, 8);
});
