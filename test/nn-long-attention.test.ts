// Linear attention (elu+1 kernel, O(T) causal prefix sums) and Linformer low-rank attention: against float64 torch
// references of the papers' definitions (fixture), causality, masks, errors, training, and explanations
// (capture → rollout / flow / gradient rollout) on models built from them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { availableBackends, cat, F, getBackend, manualSeed, nn, randn, setBackend, Tensor, optim, noGrad } from "../src/node.js";
import { Module } from "../src/nn/module.js";
import { targetAttention } from "../src/explain/attribution.js";
import { attentionRollout } from "../src/explain/rollout.js";
import { attentionFlow } from "../src/explain/flow.js";
import { gradRollout } from "../src/explain/grad-rollout.js";
import type { ExplainTarget } from "../src/tasks/task.js";

const fx = JSON.parse(readFileSync(new URL("../../test/fixtures/pytorch/long-attention.json", import.meta.url), "utf8"));
const T32 = (a: number[], s: readonly number[]) => Tensor.fromArray(Float32Array.from(a), [...s]);
function maxRel(a: Tensor, ref: Tensor): number {
  assert.deepEqual(a.shape, ref.shape);
  const x = a.contiguous().dataSync() as Float32Array, y = ref.contiguous().dataSync() as Float32Array;
  let m = 0, s = 0;
  for (let i = 0; i < y.length; i++) s = Math.max(s, Math.abs(y[i]));
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m / Math.max(s, 1e-6);
}
const backends = () => availableBackends().filter((b) => !b.startsWith("test-"));
function withBackend<T>(b: string, fn: () => T): T {
  const saved = getBackend();
  try { setBackend(b); return fn(); } finally { setBackend(saved); }
}

test("linear attention (chunked O(T) prefix sums and the non-causal factorisation) = the quadratic torch reference: out, dq, dk, dv", () => {
  for (const c of fx.linear) {
    const sh = [c.B, c.H, c.T, c.D], shv = [c.B, c.H, c.T, c.Dv];
    for (const be of backends()) for (const chunk of [16, 64]) withBackend(be, () => {
      const q = T32(c.q, sh).requiresGrad_(), k = T32(c.k, sh).requiresGrad_(), v = T32(c.v, shv).requiresGrad_();
      const out = nn.linearAttentionCore(nn.eluFeatureMap(q), nn.eluFeatureMap(k), v, c.causal, c.eps, chunk);
      out.mul(T32(c.g, shv)).sum().backward();
      for (const [n, t, s] of [["out", out, shv], ["dq", q.grad!, sh], ["dk", k.grad!, sh], ["dv", v.grad!, shv]] as const) {
        const e = maxRel(t, T32(c[n], s));
        assert.ok(e < 2e-5, `${be} chunk ${chunk} T=${c.T} causal=${c.causal} ${n}: relative error ${e}`);
      }
    });
  }
});

test("Linformer core = the torch reference softmax(q(Ek)ᵀ/√D)(Fv): out, slot weights, and gradients into q, k, v, E, F", () => {
  for (const c of fx.linformer) {
    const sh = [c.B, c.H, c.T, c.D];
    for (const be of backends()) withBackend(be, () => {
      const q = T32(c.q, sh).requiresGrad_(), k = T32(c.kk, sh).requiresGrad_(), v = T32(c.v, sh).requiresGrad_();
      const E = T32(c.E, [c.k, c.T]).requiresGrad_(), F = T32(c.F, [c.k, c.T]).requiresGrad_();
      const r = nn.linformerCore(q, k, v, E, F, { returnWeights: true });
      r.out.mul(T32(c.g, sh)).sum().backward();
      for (const [n, t, s] of [["out", r.out, sh], ["P", r.weights!, [c.B, c.H, c.T, c.k]], ["dq", q.grad!, sh], ["dk", k.grad!, sh],
        ["dv", v.grad!, sh], ["dE", E.grad!, [c.k, c.T]], ["dF", F.grad!, [c.k, c.T]]] as const) {
        const e = maxRel(t, T32(c[n], s));
        assert.ok(e < 2e-5, `${be} T=${c.T} k=${c.k} ${n}: relative error ${e}`);
      }
    });
  }
});

test("LinearAttention module: the implied weights reproduce the output exactly (out = A·V), rows sum to 1; causal sees no future", () => {
  manualSeed(4);
  const m = new nn.LinearAttention(16, 2, { chunk: 8 });
  const x = randn([2, 29, 16]);
  for (const causal of [false, true]) {
    const r = noGrad(() => m.forward(x, { isCausal: causal, needWeights: true }));
    const w = r.weights!.dataSync() as Float32Array, T = 29;
    for (let row = 0; row < w.length / T; row++) {
      let s = 0;
      for (let j = 0; j < T; j++) { s += w[row * T + j]; assert.ok(w[row * T + j] >= 0); if (causal && j > row % T) assert.equal(w[row * T + j], 0); }
      assert.ok(Math.abs(s - 1) < 1e-4, `row ${row} sums to ${s}`);
    }
    const fast = noGrad(() => m.forward(x, { isCausal: causal })).out;
    assert.ok(maxRel(fast, r.out) < 1e-5, `fast path = weights path (${maxRel(fast, r.out)})`);
  }
  // causality: changing token 20 leaves outputs 0..19 unchanged
  const y0 = noGrad(() => m.forward(x, { isCausal: true }).out);
  const x2 = x.clone(); (x2.storage.data as Float32Array)[20 * 16 + 3] += 5;
  const y1 = noGrad(() => m.forward(x2, { isCausal: true }).out);
  assert.ok(maxRel(y1.narrow(1, 0, 20), y0.narrow(1, 0, 20)) === 0);
  assert.ok(maxRel(y1.narrow(1, 20, 1), y0.narrow(1, 20, 1)) > 1e-4);
  // padding: padded keys change nothing for the others
  const pad = Tensor.fromArray(Uint8Array.from({ length: 58 }, (_, i) => +(i % 29 >= 25)), [2, 29], "bool");
  const a = noGrad(() => m.forward(x, { keyPaddingMask: pad }).out);
  const x3 = x.clone(); (x3.storage.data as Float32Array)[27 * 16] += 9;
  const b = noGrad(() => m.forward(x3, { keyPaddingMask: pad }).out);
  assert.ok(maxRel(b.narrow(1, 0, 25), a.narrow(1, 0, 25)) < 1e-6);
  assert.throws(() => m.forward(randn([1, 3, 8])), /expected x \(B, T, 16\), got \[1, 3, 8\]/);
  assert.throws(() => new nn.LinearAttention(10, 3), /divisible/);
});

test("LinformerAttention module: token weights are distributions, errors name the shapes, E/F train", () => {
  manualSeed(6);
  const m = new nn.LinformerAttention(16, 2, 40, 8);
  const x = randn([1, 33, 16]);
  const r = noGrad(() => m.forward(x, { needWeights: true }));
  assert.deepEqual(r.slotWeights!.shape, [1, 2, 33, 8]);
  const w = r.weights!.dataSync() as Float32Array;
  for (let row = 0; row < 66; row++) {
    let s = 0;
    for (let j = 0; j < 33; j++) { assert.ok(w[row * 33 + j] >= 0); s += w[row * 33 + j]; }
    assert.ok(Math.abs(s - 1) < 1e-5);
  }
  assert.throws(() => m.forward(randn([1, 41, 16])), /input length 41 exceeds maxLength 40 \(x \[1, 41, 16\], proj_k \[8, 40\]\)/);
  assert.throws(() => m.forward(x, { isCausal: true }), /no causal form/);
  assert.ok(Object.keys(m.stateDict()).includes("proj_k") && Object.keys(m.stateDict()).includes("proj_v"));
  // a few Adam steps on a regression target move E and F and lower the loss
  const target = randn([1, 33, 16]);
  const opt = new optim.Adam(m.parameters(), { lr: 1e-2 });
  const E0 = m.projK.clone();
  const loss = () => m.forward(x).out.sub(target).square().mean();
  const l0 = noGrad(() => loss().item());
  for (let s = 0; s < 20; s++) { opt.zeroGrad(); const l = loss(); l.backward(); opt.step(); }
  assert.ok(noGrad(() => loss().item()) < l0 * 0.9);
  assert.ok(maxRel(m.projK, E0) > 1e-4);
});

/** Two attention layers with residuals over embedded tokens; score = logit of class 1 from the mean. */
class Tiny extends Module {
  emb: nn.Embedding;
  layers: nn.ModuleList<Module & { forward(x: Tensor, o?: object): { out: Tensor } }>;
  head: nn.Linear;
  constructor(kind: "linear" | "linformer") {
    super();
    this.emb = new nn.Embedding(20, 16);
    this.layers = new nn.ModuleList([0, 1].map(() => kind === "linear" ? new nn.LinearAttention(16, 2) : new nn.LinformerAttention(16, 2, 32, 6)));
    this.head = new nn.Linear(16, 2);
  }
  forward(ids: Tensor): Tensor {
    let h = this.emb.forward(ids);
    for (const l of this.layers) h = h.add(l.forward(h).out);
    return this.head.forward(h.mean(1));
  }
}

test("explanations on linear and Linformer models: capture gives (L, H, T, T) stacks, rollout and flow run; gradient rollout on linear attention", () => {
  for (const kind of ["linear", "linformer"] as const) {
    manualSeed(12);
    const model = new Tiny(kind);
    const ids = Tensor.fromArray(Int32Array.from([1, 5, 7, 2, 9, 3, 4, 11, 6, 8]), [1, 10], "int32");
    const target: ExplainTarget = {
      tokens: Array.from({ length: 10 }, (_, i) => `t${i}`), targetLabel: "one", targetIndex: 1,
      score: () => model.forward(ids).select(0, 0).select(0, 1),
    } as ExplainTarget;
    const att = targetAttention(target, model);
    assert.equal(att.stack.layers, 2); assert.equal(att.stack.heads, 2); assert.equal(att.stack.tokens, 10);
    const roll = attentionRollout(att.stack);
    for (let i = 0; i < 10; i++) {
      let s = 0;
      for (let j = 0; j < 10; j++) s += roll.data[(10 + i) * 10 + j];
      assert.ok(Math.abs(s - 1) < 1e-6, `${kind} rollout row ${i} sums to ${s}`);
    }
    const flow = attentionFlow(att.stack);
    assert.ok(flow !== null);
    if (kind === "linear") {
      const g = targetAttention(target, model, { withGrad: true });
      const gr = gradRollout(g.stack, g.grads!);
      assert.ok(gr !== null);
      // the recorded weights are the ones the output was computed with: a nonzero gradient reached them
      assert.ok((g.grads!.data as Float32Array).some((x) => x !== 0));
    } else {
      assert.throws(() => targetAttention(target, model, { withGrad: true }), /gradient rollout is unavailable/);
    }
  }
});

test("bench long-attention task: one needle of each type at distinct positions, the query last, the label the asked needle's value", async () => {
  const m = await import("../bench/long-attention-model.js");
  const text = Uint8Array.from({ length: 500 }, (_, i) => i % 95);
  const { ids, labels, pos } = m.needleBatch(text, 6, 200, m.prng(5));
  const d = ids.dataSync() as Int32Array, lab = labels.dataSync() as Int32Array;
  for (let b = 0; b < 6; b++) {
    const row = d.subarray(b * 200, (b + 1) * 200);
    const asked = row[199] - m.QUERY0;
    assert.ok(asked >= 0 && asked < m.TYPES);
    const needles = [...row.subarray(0, 199)].map((x, p) => [x, p]).filter(([x]) => x >= m.NEEDLE0 && x < m.QUERY0);
    assert.deepEqual(needles.map(([x]) => Math.floor((x - m.NEEDLE0) / m.VALUES)).sort(), [0, 1, 2, 3]);
    const hit = needles.find(([x]) => Math.floor((x - m.NEEDLE0) / m.VALUES) === asked)!;
    assert.equal(hit[1], pos[b]);
    assert.equal(lab[b], (hit[0] - m.NEEDLE0) % m.VALUES);
  }
  assert.throws(() => m.needleBatch(text, 1, 600, m.prng(1)), /shorter than T = 600/);
});

test("LinformerAttention with E = F = I (k = T = maxLength) is full attention: = nn.MultiheadAttention with the same projections", () => {
  for (const be of backends()) withBackend(be, () => {
    manualSeed(21);
    const T = 12, lf = new nn.LinformerAttention(16, 2, T, T), mha = new nn.MultiheadAttention(16, 2, { batchFirst: true });
    const eye = new Float32Array(T * T);
    for (let i = 0; i < T; i++) eye[i * T + i] = 1;
    const sd = lf.stateDict();
    lf.loadStateDict({ proj_k: Tensor.fromArray(eye, [T, T]), proj_v: Tensor.fromArray(eye.slice(), [T, T]) }, { strict: false });
    mha.loadStateDict({
      in_proj_weight: cat([sd["q_proj.weight"], sd["k_proj.weight"], sd["v_proj.weight"]], 0),
      in_proj_bias: cat([sd["q_proj.bias"], sd["k_proj.bias"], sd["v_proj.bias"]], 0),
      "out_proj.weight": sd["out_proj.weight"], "out_proj.bias": sd["out_proj.bias"],
    });
    const x = randn([2, T, 16]);
    const a = noGrad(() => lf.forward(x, { needWeights: true })), [b, w] = noGrad(() => mha.forward(x, x, x, { needWeights: true, averageAttnWeights: false }));
    assert.ok(maxRel(a.out, b) < 1e-5, `${be}: out ${maxRel(a.out, b)}`);
    assert.ok(maxRel(a.slotWeights!, w!) < 1e-5, `${be}: slot weights = softmax weights ${maxRel(a.slotWeights!, w!)}`);
  });
});

/** One pre-norm Linformer layer over embedded tokens, read at the last position. */
class Retriever extends Module {
  emb: nn.Embedding; norm1: nn.LayerNorm; attn: nn.LinformerAttention; norm2: nn.LayerNorm; head: nn.Linear;
  constructor(vocab: number, classes: number, T: number, k: number) {
    super();
    this.emb = new nn.Embedding(vocab, 16); this.norm1 = new nn.LayerNorm(16); this.attn = new nn.LinformerAttention(16, 2, T, k);
    this.norm2 = new nn.LayerNorm(16); this.head = new nn.Linear(16, classes);
  }
  forward(ids: Tensor): Tensor {
    const x = this.emb.forward(ids), T = ids.shape[1];
    const h = x.add(this.attn.forward(this.norm1.forward(x)).out);
    return this.head.forward(this.norm2.forward(h.narrow(1, T - 1, 1).squeeze(1)));
  }
}

test("LinformerAttention learns: one layer, default init, retrieves the marked token at a random position (T = 16) in 150 Adam steps", () => {
  // T − 1 random values 0..3, one of them replaced by its marked form 4 + v at a random position, the query token 8
  // last; label v. Nothing but attention carries the marked token to the query (no position encoding, one layer),
  // so a Linformer whose E/F or projections got no (or wrong) gradient stays at chance, ln 4 = 1.386.
  manualSeed(4);
  const V = 4, T = 16, B = 32, m = new Retriever(2 * V + 1, V, T, T);
  let seed = 9;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  const opt = new optim.Adam(m.parameters(), { lr: 1e-2 });
  const last: number[] = [];
  for (let s = 0; s < 150; s++) {
    const ids = new Int32Array(B * T), lab = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T - 1; t++) ids[b * T + t] = Math.floor(rnd() * V);
      lab[b] = Math.floor(rnd() * V);
      ids[b * T + Math.floor(rnd() * (T - 1))] = V + lab[b];
      ids[b * T + T - 1] = 2 * V;
    }
    opt.zeroGrad();
    const loss = F.crossEntropy(m.forward(Tensor.fromArray(ids, [B, T], "int32")), Tensor.fromArray(lab, [B], "int32"));
    loss.backward(); opt.step();
    if (s >= 140) last.push(loss.item());
  }
  const mean = last.reduce((a, b) => a + b, 0) / last.length;
  assert.ok(mean < 0.2, `mean loss of the last 10 steps ${mean.toFixed(3)} (chance ${Math.log(V).toFixed(3)})`);
});

test("LinformerAttention module gradients (q/k/v/out projections, E, F) = central differences, with padding and T < maxLength", () => {
  withBackend("reference", () => {
    manualSeed(3);
    const m = new nn.LinformerAttention(8, 2, 10, 5);
    const x = randn([2, 7, 8]), g = randn([2, 7, 8]);
    const pad = Tensor.fromArray(Uint8Array.from([0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]), [2, 7], "bool");
    for (const keyPaddingMask of [null, pad]) {
      const loss = () => m.forward(x, { keyPaddingMask }).out.mul(g).sum();
      m.zeroGrad();
      loss().backward();
      for (const [name, p] of Object.entries(m.stateDict())) {
        const an = p.grad!.dataSync() as Float32Array, base = p.dataSync() as Float32Array;
        for (let i = 0; i < base.length; i += Math.max(1, Math.floor(base.length / 7))) {
          const at = (d: number) => {
            const w = base.slice(); w[i] += d;
            m.loadStateDict({ [name]: Tensor.fromArray(w, p.shape) }, { strict: false });
            return noGrad(() => loss().item());
          };
          const fd = (at(1e-2) - at(-1e-2)) / 2e-2;
          m.loadStateDict({ [name]: Tensor.fromArray(base, p.shape) }, { strict: false });
          assert.ok(Math.abs(fd - an[i]) < 2e-3 * Math.max(1, Math.abs(fd)), `${name}[${i}] padding=${!!keyPaddingMask}: analytic ${an[i]}, finite difference ${fd}`);
        }
      }
    }
  });
});
