// nn position options and grouped-query attention: RoPE (nn.RotaryEmbedding), ALiBi (slopes from the paper, the bias
// computed inside the attention kernel), nn.GroupedQueryAttention (GQA/MQA) and its KV cache, nn.RMSNorm.
import { test } from "node:test";
import assert from "node:assert/strict";
import { availableBackends, cat, getBackend, registerBackend, manualSeed, nn, F, randn, setBackend, Tensor, noGrad } from "../src/node.js";
import { attnArgsFor } from "../src/ops/attention.js";
import { loadNativeKernels, type NativeIsa } from "../src/node/native-addon.js";

function maxDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.contiguous().dataSync() as Float32Array, y = b.contiguous().dataSync() as Float32Array;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
function onEveryBackend(fn: (backend: string) => void): void {
  const saved = getBackend();
  try { for (const b of availableBackends()) { setBackend(b); fn(b); } } finally { setBackend(saved); }
}

test("alibiSlopes follows the paper: 2^(-8i/H) for powers of two, interleaved slopes of 2n otherwise", () => {
  const p = (e: number) => Math.fround(Math.pow(2, e));
  assert.deepEqual([...nn.alibiSlopes(8)], [-1, -2, -3, -4, -5, -6, -7, -8].map(p));
  assert.deepEqual([...nn.alibiSlopes(4)], [-2, -4, -6, -8].map(p));
  assert.deepEqual([...nn.alibiSlopes(1)], [p(-8)]);
  // H = 6: the 4 slopes of n = 4, then slopes 1 and 3 of 2n = 8 (2^-1, 2^-3)
  assert.deepEqual([...nn.alibiSlopes(6)], [-2, -4, -6, -8, -1, -3].map(p));
  // H = 12: the 8 slopes of n = 8, then every other slope of 16 (2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5)
  assert.deepEqual([...nn.alibiSlopes(12)], [-1, -2, -3, -4, -5, -6, -7, -8, -0.5, -1.5, -2.5, -3.5].map(p));
  assert.throws(() => nn.alibiSlopes(0), /heads/);
});

/** The ALiBi bias as an explicit additive (1, H, Tq, Tk) mask: −slope_h·|i + offset − j|. */
function alibiMask(slopes: Float32Array, Tq: number, Tk: number, offset: number): Tensor {
  const H = slopes.length, m = new Float32Array(H * Tq * Tk);
  for (let h = 0; h < H; h++) for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) m[(h * Tq + i) * Tk + j] = -slopes[h] * Math.abs(i + offset - j);
  return Tensor.fromArray(m, [1, H, Tq, Tk]);
}

test("ALiBi in scaledDotProductAttention equals the explicit bias (outputs, weights, gradients; GQA, causal, padding, offset) on every backend", () => {
  const B = 2, H = 6, Hkv = 2, D = 8;
  const slopes = nn.alibiSlopes(H);
  const keyPad = Tensor.fromArray(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), [B, 9], "bool");
  for (const [Tq, Tk, offset, causal, pad] of [[9, 9, 0, true, false], [9, 9, 0, false, true], [3, 9, 6, false, true], [5, 7, 2, false, false]] as const) {
    onEveryBackend((be) => {
      manualSeed(11);
      const q0 = randn([B, H, Tq, D]), k0 = randn([B, Hkv, Tk, D]), v0 = randn([B, Hkv, Tk, D]), g = randn([B, H, Tq, D]);
      const kp = pad ? keyPad.narrow(1, 0, Tk) : null;
      const run = (withSlopes: boolean, impl: "fused" | "math") => {
        const q = q0.clone().requiresGrad_(), k = k0.clone().requiresGrad_(), v = v0.clone().requiresGrad_();
        const r = F.scaledDotProductAttention(q, k, v, {
          causal, keyPaddingMask: kp, returnWeights: true, impl,
          ...(withSlopes ? { alibiSlopes: slopes, alibiOffset: offset } : { attnMask: alibiMask(slopes, Tq, Tk, offset) }),
        });
        r.out.mul(g).sum().backward();
        return [r.out, r.weights!, q.grad!, k.grad!, v.grad!];
      };
      const want = run(false, "fused");
      for (const impl of ["fused", "math"] as const) {
        const got = run(true, impl);
        got.forEach((t, i) => assert.ok(maxDiff(t, want[i]) < 2e-5, `${be} ${impl} Tq=${Tq} Tk=${Tk} offset=${offset} tensor ${i}: ${maxDiff(t, want[i])}`));
      }
    });
  }
});

test("ALiBi reaches the kernels as slopes (no (H, Tq, Tk) bias) on every backend; a backend without attnAlibi gets it folded", () => {
  const saved = getBackend();
  try {
    for (const be of availableBackends()) {
      setBackend(be);
      const a = attnArgsFor(1, 4, 4, 64, 64, 8, 8, { alibiSlopes: nn.alibiSlopes(4), alibiOffset: 3 });
      assert.equal(a.attnMask, null, be);
      assert.deepEqual([...a.alibi!.slopes], [...nn.alibiSlopes(4)]);
      assert.equal(a.alibi!.offset, 3);
    }
    registerBackend({ name: "test-no-alibi", priority: -5, kernels: { attnForward: () => undefined }, description: "test" });
    setBackend("test-no-alibi");
    const f = attnArgsFor(1, 4, 4, 5, 6, 8, 8, { alibiSlopes: nn.alibiSlopes(4), alibiOffset: 1 });
    assert.ok(!f.alibi && f.attnMask && f.attnMask.length === 4 * 5 * 6 && f.maskH === 4);
    assert.equal(f.attnMask![((0 * 4 + 1) * 5 + 2) * 6 + 0], Math.fround(-nn.alibiSlopes(4)[1] * 3));   // head 1, row 2, key 0: −s₁·|2 + 1 − 0|
  } finally { setBackend(saved); }
  assert.throws(() => attnArgsFor(1, 4, 4, 2, 2, 8, 8, { alibiSlopes: [1, 2] }), /alibiSlopes has 2 entries, expected one per query head \(4\)/);
});

test("RotaryEmbedding rotates pairs (k, k + d/2) by p·θ^(−2k/d), and q·k depends only on the distance", () => {
  const d = 8, base = 500, rope = new nn.RotaryEmbedding(d, { base });
  manualSeed(3);
  const x = randn([1, 1, 1, d]), xd = x.dataSync() as Float32Array;
  const p = 7, y = rope.forward(x, [p]).dataSync() as Float32Array;
  for (let k = 0; k < d / 2; k++) {
    const th = p * Math.pow(base, (-2 * k) / d), c = Math.cos(th), s = Math.sin(th);
    assert.ok(Math.abs(y[k] - (xd[k] * c - xd[k + d / 2] * s)) < 1e-5, `pair ${k}`);
    assert.ok(Math.abs(y[k + d / 2] - (xd[k + d / 2] * c + xd[k] * s)) < 1e-5, `pair ${k}`);
  }
  const q = randn([1, 1, 1, d]), kk = randn([1, 1, 1, d]);
  const dot = (pq: number, pk: number) => rope.forward(q, [pq]).mul(rope.forward(kk, [pk])).sum().item();
  assert.ok(Math.abs(dot(3, 1) - dot(12, 10)) < 1e-4 && Math.abs(dot(5, 5) - dot(0, 0)) < 1e-4);
  assert.ok(Math.abs(dot(3, 1) - dot(1, 3)) > 1e-3, "a rotation, not a symmetric function of the distance");
  assert.throws(() => new nn.RotaryEmbedding(5), /dim must be even/);
});

test("ropeInverseFrequencies: linear divides every frequency; llama3 keeps high, divides low and blends the band between", () => {
  const d = 16, plain = nn.ropeInverseFrequencies(d, 10000);
  const lin = nn.ropeInverseFrequencies(d, 10000, { type: "linear", factor: 4 });
  plain.forEach((f, i) => assert.ok(Math.abs(lin[i] - f / 4) <= 1e-7 * f));
  const l3 = nn.ropeInverseFrequencies(d, 10000, { type: "llama3", factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 });
  plain.forEach((f, i) => {
    const wave = (2 * Math.PI) / f;
    if (wave < 16) assert.equal(l3[i], f);
    else if (wave > 64) assert.ok(Math.abs(l3[i] - f / 4) <= 1e-7 * f);
    else {
      const s = (64 / wave - 1) / 3;
      assert.ok(Math.abs(l3[i] - ((1 - s) * f / 4 + s * f)) <= 1e-6 * f, `band ${i}`);
    }
  });
});

/** A copy of `src` (Hkv KV heads) as plain multi-head attention: each KV head's rows repeated for its query group. */
function asMultiHead(src: nn.GroupedQueryAttention, opts: nn.GqaOptions): nn.GroupedQueryAttention {
  const H = src.numHeads, Hkv = src.numKvHeads, Dh = src.headDim, rep = H / Hkv;
  const dst = new nn.GroupedQueryAttention(src.embedDim, H, { ...opts, numKvHeads: H });
  const sd = src.stateDict(), out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(sd)) {
    if (/^[kv]_proj\./.test(k)) {
      const rows = t.ndim === 2 ? t.reshape([Hkv, 1, Dh, t.shape[1]]).expand([Hkv, rep, Dh, t.shape[1]]).reshape([H * Dh, t.shape[1]])
        : t.reshape([Hkv, 1, Dh]).expand([Hkv, rep, Dh]).reshape([H * Dh]);
      out[k] = rows.contiguous();
    } else out[k] = t;
  }
  dst.loadStateDict(out);
  return dst;
}

test("GroupedQueryAttention: GQA and MQA equal multi-head attention with each KV head repeated for its group", () => {
  for (const [H, Hkv, position] of [[4, 2, "rope"], [6, 1, "alibi"], [4, 4, "none"]] as const) {
    manualSeed(5);
    const opts: nn.GqaOptions = { numKvHeads: Hkv, position, headDim: 4 };
    const gqa = new nn.GroupedQueryAttention(16, H, opts), mha = asMultiHead(gqa, opts);
    const x = randn([2, 7, 16]);
    const mask = Tensor.fromArray(Int32Array.from([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), [2, 7], "int32");
    const a = gqa.forward(x, { isCausal: true, attentionMask: mask, needWeights: true });
    const b = mha.forward(x, { isCausal: true, attentionMask: mask, needWeights: true });
    assert.ok(maxDiff(a.out, b.out) < 1e-5 && maxDiff(a.weights!, b.weights!) < 1e-6, `H=${H} Hkv=${Hkv}`);
    assert.deepEqual(Object.keys(gqa.stateDict()).sort(), ["k_proj.bias", "k_proj.weight", "o_proj.bias", "o_proj.weight", "q_proj.bias", "q_proj.weight", "v_proj.bias", "v_proj.weight"]);
    assert.deepEqual(gqa.stateDict()["k_proj.weight"].shape, [Hkv * 4, 16]);
  }
  assert.throws(() => new nn.GroupedQueryAttention(16, 4, { numKvHeads: 3 }), /numHeads 4 must be a multiple of numKvHeads 3/);
});

test("GroupedQueryAttention with a KVCache: prefill + chunks + single tokens equal one full forward (RoPE, ALiBi, none; padding)", () => {
  for (const position of ["rope", "alibi", "none"] as const) {
    onEveryBackend((be) => {
      manualSeed(9);
      const att = new nn.GroupedQueryAttention(16, 4, { numKvHeads: 2, position, bias: false }).eval();
      const B = 2, T = 9, x = randn([B, T, 16]);
      const maskData = Int32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
      const mask = Tensor.fromArray(maskData, [B, T], "int32");
      const full = noGrad(() => att.forward(x, { isCausal: true, attentionMask: mask, needWeights: true }));
      const cache = att.createCache(1, B, T);
      const pieces: Tensor[] = [];
      noGrad(() => {
        for (const [s, n] of [[0, 4], [4, 3], [7, 1], [8, 1]]) {
          const r = att.forward(x.narrow(1, s, n), { isCausal: true, cache, layer: 0, attentionMask: mask.narrow(1, 0, s + n), needWeights: true });
          // the weights of these queries over the keys seen so far are the full forward's, zero beyond
          const w = full.weights!.narrow(2, s, n);
          assert.ok(maxDiff(r.weights!, w.narrow(3, 0, s + n)) < 1e-5, `${be} ${position} weights at ${s}`);
          pieces.push(r.out);
          cache.advance(n);
        }
      });
      const all = cat(pieces, 1);
      assert.throws(() => att.forward(x.narrow(1, 0, 1), { cache, layer: 0 }), /a KVCache is for inference; run cached decoding inside noGrad\(\)/);
      assert.ok(maxDiff(all, full.out) < 2e-5, `${be} ${position}: cached vs full ${maxDiff(all, full.out)}`);
      cache.dispose();
    });
  }
});

test("nn.RMSNorm: x / sqrt(mean(x²) + eps) · weight, with gradients", () => {
  manualSeed(2);
  const norm = new nn.RMSNorm(6, { eps: 1e-5 });
  (norm.weight!.storage.data as Float32Array).set([1, 2, 3, 0.5, -1, 0.25]);
  const x = randn([3, 6]).requiresGrad_();
  const y = norm.forward(x), xd = x.dataSync() as Float32Array, yd = y.dataSync() as Float32Array, w = norm.weight!.dataSync() as Float32Array;
  for (let r = 0; r < 3; r++) {
    let ms = 0;
    for (let j = 0; j < 6; j++) ms += xd[r * 6 + j] ** 2 / 6;
    for (let j = 0; j < 6; j++) assert.ok(Math.abs(yd[r * 6 + j] - (xd[r * 6 + j] / Math.sqrt(ms + 1e-5)) * w[j]) < 1e-5);
  }
  y.sum().backward();
  assert.ok(x.grad && norm.weight!.grad);
  assert.throws(() => norm.forward(randn([2, 5])), /normalizedShape \[6\] does not match the trailing dims of input \[2,5\]/);
});

/** In-kernel ALiBi vs the explicit bias on the active backend, with many query/key tiles. */
function checkAlibiTiles(label: string): void {
  const B = 2, H = 4, Hkv = 2, D = 16, slopes = nn.alibiSlopes(H);
  for (const [Tq, Tk, offset, causal] of [[150, 150, 0, true], [70, 200, 130, false], [150, 200, 50, true]] as const) {
    manualSeed(21);
    const q0 = randn([B, H, Tq, D]), k0 = randn([B, Hkv, Tk, D]), v0 = randn([B, Hkv, Tk, D]), g = randn([B, H, Tq, D]);
    const pad = new Uint8Array(B * Tk); pad.fill(1, Tk + 3, Tk + 40);
    const keyPaddingMask = Tensor.fromArray(pad, [B, Tk], "bool");
    // causal with an offset is expressed as a mask (the kernel's causal flag is top-left aligned)
    const cm = causal && offset > 0 ? Tensor.fromArray(Uint8Array.from({ length: Tq * Tk }, (_, x) => +(x % Tk <= Math.floor(x / Tk) + offset)), [Tq, Tk], "bool") : null;
    const run = (inKernel: boolean) => {
      const q = q0.clone().requiresGrad_(), k = k0.clone().requiresGrad_(), v = v0.clone().requiresGrad_();
      let attnMask: Tensor | null = inKernel ? cm : alibiMask(slopes, Tq, Tk, offset);
      if (!inKernel && cm) attnMask = attnMask!.add(Tensor.fromArray(Float32Array.from(cm.dataSync() as Uint8Array, (x) => (x ? 0 : -Infinity)), [Tq, Tk]));
      const r = F.scaledDotProductAttention(q, k, v, { causal: causal && offset === 0, keyPaddingMask, attnMask, returnWeights: true,
        ...(inKernel ? { alibiSlopes: slopes, alibiOffset: offset } : {}) });
      r.out.mul(g).sum().backward();
      return [r.out, r.weights!, q.grad!, k.grad!, v.grad!];
    };
    const want = run(false), got = run(true);
    got.forEach((x, i) => assert.ok(maxDiff(x, want[i]) < 1e-4, `${label} Tq=${Tq} Tk=${Tk} offset=${offset} tensor ${i}: ${maxDiff(x, want[i])}`));
  }
}

test("native ALiBi kernels on every ISA: many query/key tiles (T = 150, 200), causal with offset, GQA, padding, weights and gradients", (t) => {
  const load = loadNativeKernels();
  if (!load.kernels || !availableBackends().includes("native")) { t.skip(`native addon not built: ${load.reason}`); return; }
  const n = load.kernels, best = n.info().isa, saved = getBackend();
  try {
    setBackend("native");
    for (const isa of ["avx512", "avx2", "neon", "generic"] as NativeIsa[]) if (n.setIsa(isa)) checkAlibiTiles(`native ${isa}`);
  } finally { n.setIsa(best); setBackend(saved); }
});

test("Wasm ALiBi (bias written head by head): many query/key tiles, causal with offset, GQA, padding, weights and gradients", (t) => {
  if (!availableBackends().includes("wasm")) { t.skip("no wasm backend"); return; }
  const saved = getBackend();
  try { setBackend("wasm"); checkAlibiTiles("wasm"); } finally { setBackend(saved); }
});

test("nn.MultiheadAttention position options: rope equals GroupedQueryAttention's RoPE, alibi equals the explicit per-head bias", () => {
  manualSeed(4);
  const E = 16, H = 4, B = 2, T = 6;
  const mha = new nn.MultiheadAttention(E, H, { batchFirst: true, position: "rope", ropeBase: 1000 });
  const gqa = new nn.GroupedQueryAttention(E, H, { position: "rope", ropeBase: 1000 });
  const W = mha.inProjWeight!, b = mha.inProjBias!;
  noGrad(() => (b.storage.data as Float32Array).set((randn([3 * E]).dataSync() as Float32Array)));
  gqa.loadStateDict({
    "q_proj.weight": W.narrow(0, 0, E).contiguous(), "k_proj.weight": W.narrow(0, E, E).contiguous(), "v_proj.weight": W.narrow(0, 2 * E, E).contiguous(),
    "q_proj.bias": b.narrow(0, 0, E).contiguous(), "k_proj.bias": b.narrow(0, E, E).contiguous(), "v_proj.bias": b.narrow(0, 2 * E, E).contiguous(),
    "o_proj.weight": mha.outProj.weight, "o_proj.bias": mha.outProj.bias!,
  });
  const x = randn([B, T, E]);
  const pos = Tensor.fromArray(Int32Array.from([3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5]), [B, T], "int32");
  const [y, w] = mha.forward(x, x, x, { isCausal: true, positionIds: pos, averageAttnWeights: false });
  const g = gqa.forward(x, { isCausal: true, positionIds: pos, needWeights: true });
  assert.ok(maxDiff(y, g.out) < 1e-5 && maxDiff(w!, g.weights!) < 1e-6);
  // RoPE makes the output depend on positions; shifting every position by the same amount changes nothing
  const shifted = Tensor.fromArray(Int32Array.from([13, 14, 15, 16, 17, 18, 10, 11, 12, 13, 14, 15]), [B, T], "int32");
  assert.ok(maxDiff(mha.forward(x, x, x, { isCausal: true, positionIds: shifted })[0], y) < 1e-4);
  const spread = Tensor.fromArray(Int32Array.from([0, 2, 4, 6, 8, 10]), [1, T], "int32");   // other distances: other output
  assert.ok(maxDiff(mha.forward(x, x, x, { isCausal: true, positionIds: spread })[0], y) > 1e-3);

  const ali = new nn.MultiheadAttention(E, H, { batchFirst: true, position: "alibi" });
  const plain = new nn.MultiheadAttention(E, H, { batchFirst: true });
  plain.loadStateDict(ali.stateDict());
  const bias = alibiMask(nn.alibiSlopes(H), T, T, 0).expand([B, H, T, T]).reshape([B * H, T, T]);
  const [ya, wa] = ali.forward(x, x, x, { averageAttnWeights: false });
  const [yp, wp] = plain.forward(x, x, x, { attnMask: bias, averageAttnWeights: false });
  assert.ok(maxDiff(ya, yp) < 1e-5 && maxDiff(wa!, wp!) < 1e-6);
  assert.throws(() => new nn.MultiheadAttention(E, H, { position: "relative" as never }), /position must be "none", "rope" or "alibi"/);
});
