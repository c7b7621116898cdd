// Issue 16, "fewer layers is slower": the max-flow solver's work per output row must not grow when the source
// sits in a shallower layer. Work is counted, not timed (LayeredMaxFlow's counters: residual entries examined by
// arc searches, relabels and label BFS, plus pushes), so the test is independent of the machine's speed and load.
// The attention is real: the shipped fortunes classifier (4 layers, 4 heads) on three fixed texts, its layers
// stacked to 12 (the bench's "stack12" workload, bench/flow-depth.ts), and a seeded peaked synthetic stack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type MatrixStack, matrixStack, prepareLayers } from "../src/explain/attention-stack.js";
import { LayeredMaxFlow } from "../src/explain/maxflow.js";
import { targetAttention } from "../src/explain/attribution.js";
import { loadCheckpoint } from "../src/node/checkpoint.js";
import { edmondsKarp, layeredAdjacency, rng } from "./explain-helpers.js";

const TEXTS = [
  "The build broke again this morning because somebody upgraded the compiler on the shared machine without telling " +
  "anyone. Half of the tests now fail with messages about missing symbols, and the other half pass for reasons nobody " +
  "understands. The team lead asked for a list of every change made since Friday. The list is long, and most entries " +
  "say only that something was fixed. A program is never finished; it is only abandoned when the deadline arrives and " +
  "the last bug report is filed under known issues. Meanwhile the old server in the corner keeps running the payroll " +
  "job it was set up for twenty years ago, and nobody dares to reboot it.",
  "Every experiment starts with a question and ends with a table of numbers that answers a slightly different one. " +
  "The students measured the speed of sound in the corridor by clapping and timing the echo from the far wall. Their " +
  "result was close to the value in the book, which pleased them more than it should have, since the stopwatch had a " +
  "resolution of a tenth of a second. A good scientist doubts the instrument first and the theory second. The stars " +
  "we see tonight left their light long before anyone thought to look up, and some of them may not exist any more.",
  "The council met on Tuesday to discuss the new bridge, the budget for the library and the question of who should pay " +
  "for the broken street lights. After three hours the members agreed only that they should meet again next week. The " +
  "mayor promised a decision before the summer, as the mayor before him had promised the summer before. Voters say " +
  "they want honest answers, but they elect the candidate with the best slogans. In the end the bridge was built by a " +
  "private company that now charges a toll, and the street lights are still broken.",
];

/** The classifier's attention on the three texts, cut to the first `maxT` tokens (rows renormalised), stacked to L 12. */
async function realStack(maxT = Infinity): Promise<MatrixStack> {
  const ck = await loadCheckpoint(fileURLToPath(new URL("../../models/fortunes-classifier.safetensors", import.meta.url)));
  ck.model.eval();
  const stacks = TEXTS.map((text) => targetAttention(ck.task.explain!(ck.model, ck.config, { text }), ck.model).stack);
  const T = Math.min(maxT, ...stacks.map((s) => s.tokens));
  const H = stacks[0].heads, L1 = stacks[0].layers, TT = T * T;
  const data = new Float32Array(stacks.length * L1 * H * TT);
  // each text's attention cut to the first T tokens (a prefix of a prefix-closed mask), rows renormalised below
  stacks.forEach((s, n) => {
    for (let l = 0; l < L1; l++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
      let sum = 0;
      const src = ((l * H + h) * s.tokens + i) * s.tokens, dst = (((n * L1 + l) * H + h) * T + i) * T;
      for (let j = 0; j < T; j++) sum += s.data[src + j];
      for (let j = 0; j < T; j++) data[dst + j] = s.data[src + j] / sum;
    }
  });
  return prepareLayers({ data, layers: stacks.length * L1, heads: H, tokens: T });
}

/** Solver work (residual entries examined + pushes) for rows `rows` of layer L of the first L layers. */
function rowWork(full: MatrixStack, L: number, rows: number[], Solver = LayeredMaxFlow): number {
  const T = full.tokens;
  const s = new Solver(matrixStack(L, T, full.data.subarray(0, L * T * T)));
  for (const r of rows) s.flowsFrom(L, r);
  return s.scans + s.pushes;
}

test("flow work per row does not grow for shallower sources on real attention (work counters, not time)", async () => {
  const full = await realStack();
  const T = full.tokens;
  assert.ok(T >= 100, `the texts give ${T} tokens`);
  const rows = [0, T >> 1, T - 1];
  const deep = rowWork(full, 12, rows);
  // Before the FIFO / work-scheduled relabels (commit 3b35d1b) the ratios were, L 3, 4, 5, 6, 8:
  // 0.09 0.79 1.52 1.32 1.06 (L 5 and 6 over the bound), with 3x today's work at L 12; now at most 1.21 (L 4).
  for (const L of [3, 4, 5, 6, 8]) {
    const w = rowWork(full, L, rows);
    assert.ok(w <= 1.3 * deep, `rows of layer ${L} cost ${w} work units, more than 1.3x the ${deep} of layer 12's rows`);
  }
});

test("peaked synthetic attention: rows from layer 3 cost at most 4x one from layer 12, from layers 4-5 at most 5x", () => {
  // seeded softmax attention (logits N(0, 1.5^2)), L 12, H 12, T 128, like the bench's synthetic case: the deep
  // source's rollout preflow solves most sinks at once, a shallow one's does not, so some gap remains by nature.
  // Before commit 3b35d1b: L 3 6.9x, L 4 7.7x, L 5 3.9x; then 4.2x, 3.9x, 2.5x; with the layer-3 near-sink refresh
  // at 1/2 of its BFS cost (maxflow.ts), L 3 3.3x (BFS work per row 5.1 M -> 2.8 M entries).
  const T = 128, L = 12, H = 12;
  const data = new Float32Array(L * H * T * T);
  const r = rng(16);
  for (let row = 0; row < L * H * T; row++) {
    let sum = 0;
    for (let j = 0; j < T; j++) {
      const g = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
      const e = Math.exp(1.5 * g); data[row * T + j] = e; sum += e;
    }
    for (let j = 0; j < T; j++) data[row * T + j] /= sum;
  }
  const full = prepareLayers({ data, layers: L, heads: H, tokens: T });
  const rows = [0, 64, 127];
  const w12 = rowWork(full, 12, rows);
  for (const [l, most] of [[3, 4], [4, 5], [5, 5]]) {
    const w = rowWork(full, l, rows);
    assert.ok(w <= most * w12, `layer-${l} rows cost ${w} work units, ${(w / w12).toFixed(2)}x layer 12's ${w12} (at most ${most}x)`);
  }
});

test("FIFO push-relabel equals Edmonds–Karp on real attention (T 20, sources at layers 3, 4 and 12)", async () => {
  const full = await realStack(20);
  const T = full.tokens;
  let prWork = 0;
  for (const L of [3, 4, 12]) {
    const res = matrixStack(L, T, full.data.subarray(0, L * T * T));
    const adj = layeredAdjacency(res.data, L, T), N = (L + 1) * T;
    const s = new LayeredMaxFlow(res);
    for (const a of L === 12 ? [0, T - 1] : [0, 7, T - 1]) {
      const got = s.flowsFrom(L, a);
      for (let b = 0; b < T; b++) {
        const ek = edmondsKarp(adj, N, L * T + a, b);
        assert.ok(Math.abs(got[b] - ek) <= 1e-12 * Math.max(1, ek), `L ${L}: flow (${L},${a})->${b} = ${got[b]}, Edmonds-Karp ${ek}`);
      }
    }
    prWork += s.pushes + s.relabels;
  }
  assert.ok(prWork > 0, "the push-relabel phase did no work: the comparison would not test it");
});
