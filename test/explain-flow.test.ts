import { test } from "node:test";
import assert from "node:assert/strict";
import { matrixStack, prepareLayers, type MatrixStack } from "../src/explain/attention-stack.js";
import { attentionFlow, attentionFlowMatrix, flowAdjacency, flowPerLayer, flowRaw } from "../src/explain/flow.js";
import { LayeredMaxFlow, type MaxFlowStrategy } from "../src/explain/maxflow.js";
import { FlowWorkerPool, attentionFlowMatrixParallel, attentionFlowParallel, flowPerLayerParallel } from "../src/node/flow-workers.js";
import { assertClose, edmondsKarp, layeredAdjacency, loadFlowFixture, randomAttention, rng } from "./explain-helpers.js";

for (const name of ["small", "medium", "larger"] as const) {
  test(`flow fixture parity: ${name}`, () => {
    const fx = loadFlowFixture(name);
    const N = (fx.L + 1) * fx.T;
    const adj = flowAdjacency(fx.att);
    assert.deepEqual(adj.shape, [N, N]);
    assertClose(adj.data, fx.t("output.adjacency").data, `${name} adjacency`);
    const fm = attentionFlowMatrix(fx.att);
    assertClose(fm.data, fx.t("output.flow").data, `${name} flow`);
    assertClose(flowPerLayer(fx.att).data, fx.t("output.flow_per_layer").data, `${name} flow_per_layer`);
    assertClose(attentionFlowMatrix(fx.att, { residual: false }).data, fx.t("output.flow_no_residual").data, `${name} flow_no_residual`);
    assertClose(flowPerLayer(fx.att, { residual: false }).data, fx.t("output.flow_no_residual_per_layer").data, `${name} flow_no_residual_per_layer`);
    // the single-layer API agrees with the matrix for the last layer and a subset of tokens
    const from = [fx.T - 1, 0];
    const f = attentionFlow(fx.att, { fromTokens: from });
    assert.deepEqual(f.shape, [2, fx.T]);
    const per = fx.t("output.flow_per_layer").data;
    for (let r = 0; r < 2; r++) {
      const off = ((fx.L - 1) * fx.T + from[r]) * fx.T;
      assertClose(f.flows.subarray(r * fx.T, (r + 1) * fx.T), per.subarray(off, off + fx.T), `${name} attentionFlow row ${from[r]}`);
    }
  });
}

test("flow from layer 1 equals res[0] (normalised rows)", () => {
  const att = randomAttention(3, 2, 7, 4);
  const res = prepareLayers(att);
  const f = attentionFlow(att, { layer: 1 });
  assertClose(f.raw, res.data.subarray(0, 49), "raw layer-1 flow", 0, 0);
  assertClose(f.flows, res.data.subarray(0, 49), "normalised layer-1 flow", 1e-15, 1e-12);
});

/** BFS from the sink over reverse residual arcs of the explicit graph; returns the cut capacity into that set. */
function residualCut(adj: Float64Array, flow: Float64Array, N: number, sink: number, source: number): number {
  const canReach = new Uint8Array(N);
  canReach[sink] = 1;
  const q = [sink];
  for (let h = 0; h < q.length; h++) {
    const w = q[h];
    for (let v = 0; v < N; v++) {
      if (canReach[v]) continue;
      // residual v -> w: forward spare capacity, or flow on w -> v that can be cancelled
      const fwd = adj[v * N + w] - flow[v * N + w], back = flow[w * N + v];
      if (fwd > 1e-12 || back > 1e-12) { canReach[v] = 1; q.push(v); }
    }
  }
  assert.equal(canReach[source], 0, "source still reaches the sink in the residual graph");
  let cut = 0;
  for (let v = 0; v < N; v++) if (!canReach[v]) for (let w = 0; w < N; w++) if (canReach[w]) cut += adj[v * N + w];
  return cut;
}

function checkSolverAgainstCut(res: MatrixStack, seedText: string, strategy: MaxFlowStrategy = "auto"): void {
  const L = res.layers, T = res.tokens, TT = T * T, N = (L + 1) * T;
  const adj = layeredAdjacency(res.data, L, T);
  const solver = new LayeredMaxFlow(res, strategy);
  if (strategy !== "auto") assert.equal(solver.strategy, strategy);
  for (let l = 1; l <= L; l++) {
    for (let a = 0; a < T; a++) {
      solver.setSource(l, a);
      for (let b = 0; b < T; b++) {
        const v = solver.solve(b);
        const ek = edmondsKarp(adj, N, l * T + a, b);
        assert.ok(Math.abs(v - ek) <= 1e-12 * Math.max(1, ek), `${seedText}: flow (${l},${a})->${b} = ${v}, Edmonds-Karp ${ek}`);
        // final preflow: capacities respected, non-negative excess, value = inflow of b = residual min cut
        const ef = solver.edgeFlows();
        const flow = new Float64Array(N * N);
        for (let m = 0; m < l; m++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
          const x = ef.flows[m * TT + i * T + j], c = res.data[m * TT + i * T + j];
          assert.ok(x >= -1e-12 && x <= c + 1e-12, `${seedText}: edge flow ${x} outside [0, ${c}]`);
          flow[((m + 1) * T + i) * N + m * T + j] = x;
        }
        let inB = 0;
        for (let x = 0; x < T; x++) inB += flow[(T + x) * N + b];
        assert.ok(Math.abs(inB - v) < 1e-12, `${seedText}: inflow of sink ${inB} vs value ${v}`);
        for (let node = T; node < l * T; node++) {
          let ex = 0;
          for (let w = 0; w < N; w++) ex += flow[w * N + node] - flow[node * N + w];
          assert.ok(ex >= -1e-12, `${seedText}: node ${node} has negative excess ${ex}`);
        }
        const cut = residualCut(adj, flow, N, b, l * T + a);
        assert.ok(Math.abs(cut - v) <= 1e-11, `${seedText}: min cut ${cut} vs flow ${v}`);
      }
    }
  }
}

test("max-flow equals Edmonds–Karp and the residual min cut on random attention graphs (both strategies)", () => {
  for (let seed = 1; seed <= 4; seed++) {
    const att = randomAttention(4, 2, 5, seed, 2.5);
    for (const st of ["shared", "per-sink"] as const) {
      checkSolverAgainstCut(prepareLayers(att), `softmax seed ${seed} ${st}`, st);
      checkSolverAgainstCut(prepareLayers(att, { residual: false }), `no-residual seed ${seed} ${st}`, st);
      checkSolverAgainstCut(prepareLayers(att, { causal: true }), `causal seed ${seed} ${st}`, st);
    }
  }
  // a deeper, wider graph where the push-relabel phase has real work to do
  const big = randomAttention(6, 1, 9, 77, 4);
  checkSolverAgainstCut(prepareLayers(big), "L=6 T=9 peaked", "shared");
  checkSolverAgainstCut(prepareLayers(big, { causal: true, residual: false }), "L=6 T=9 causal no residual", "per-sink");
});

test("max-flow on arbitrary non-negative capacities (zeros, unnormalised rows) matches Edmonds–Karp", () => {
  for (let seed = 10; seed < 16; seed++) {
    const r = rng(seed);
    const L = 2 + (seed % 3), T = 3 + (seed % 4);
    const data = new Float64Array(L * T * T);
    for (let e = 0; e < data.length; e++) data[e] = r() < 0.3 ? 0 : r() * (r() < 0.2 ? 3 : 1);
    checkSolverAgainstCut(matrixStack(L, T, data), `random caps seed ${seed} shared`, "shared");
    checkSolverAgainstCut(matrixStack(L, T, data), `random caps seed ${seed} per-sink`, "per-sink");
  }
});

test("flow errors name the bad argument", () => {
  const att = randomAttention(2, 1, 3, 2);
  assert.throws(() => attentionFlow(att, { layer: 3 }), /layer must be an integer in \[1, 2\]/);
  assert.throws(() => attentionFlow(att, { fromTokens: [3] }), /fromTokens entry 3/);
  const res = prepareLayers(att);
  res.data[4] = -1;
  assert.throws(() => flowRaw(res, 2, [0]), /capacity \[0, 1, 1\]/);
});

test("worker-thread flow is bit-identical to the single-threaded flow", async () => {
  const att = randomAttention(4, 3, 12, 99);
  const pool = new FlowWorkerPool(2);
  try {
    const single = flowPerLayer(att);
    const par = await flowPerLayerParallel(att, { pool });
    assert.deepEqual(par.shape, single.shape);
    assert.deepEqual(Array.from(par.data), Array.from(single.data));
    const causal = { causal: true } as const;
    const s1 = attentionFlow(att, { ...causal, fromTokens: [11, 3, 7] });
    const p1 = await attentionFlowParallel(att, { ...causal, fromTokens: [11, 3, 7], pool });
    assert.equal(p1.layer, 4);
    assert.deepEqual(Array.from(p1.raw), Array.from(s1.raw));
    assert.deepEqual(Array.from(p1.flows), Array.from(s1.flows));
    await assert.rejects(pool.flowRows(prepareLayers(att), [[5, 0]]), /layer must be an integer in \[1, 4\]/);
  } finally {
    await pool.close();
  }
  // one-shot helper that owns its pool
  const fm = await attentionFlowMatrixParallel(att, { workers: 2 });
  assert.deepEqual(Array.from(fm.data), Array.from(attentionFlowMatrix(att).data));
});

test("both max-flow strategies give the same flows; auto picks per-sink for causal attention", () => {
  const att = randomAttention(5, 2, 10, 123);
  for (const causal of [false, true]) {
    const a = attentionFlow(att, { causal, strategy: "shared" });
    const b = attentionFlow(att, { causal, strategy: "per-sink" });
    assertClose(a.raw, b.raw, `causal=${causal} shared vs per-sink`, 1e-12, 1e-12);
  }
  assert.equal(new LayeredMaxFlow(prepareLayers(att, { causal: true })).strategy, "per-sink");
  assert.equal(new LayeredMaxFlow(prepareLayers(att)).strategy, "shared");
  // causal flow never reaches future inputs: flow from token i only goes to inputs <= i
  const c = attentionFlow(att, { causal: true });
  for (let i = 0; i < 10; i++) for (let j = i + 1; j < 10; j++) assert.equal(c.raw[i * 10 + j], 0);
  assert.throws(() => new LayeredMaxFlow(prepareLayers(att), "fast" as never), /strategy must be/);
});
