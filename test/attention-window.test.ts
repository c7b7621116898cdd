// Sliding-window (local) attention: SdpaOptions.window against the same attention with the band written out as an
// explicit additive mask on the reference backend (a different code path: the kernels never see a window there),
// forward, weights and gradients, on every backend, fused and math; plus a PyTorch fixture for the HF convention.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { availableBackends, cat, getBackend, manualSeed, nn, F, noGrad, randn, setBackend, Tensor, registerBackend } from "../src/node.js";
import { attnArgsFor, windowArgs } from "../src/ops/attention.js";

function maxDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.contiguous().dataSync() as Float32Array, y = b.contiguous().dataSync() as Float32Array;
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]) !== Number.isNaN(y[i])) return Infinity;
    m = Math.max(m, Math.abs(x[i] - y[i]));
  }
  return m;
}
/** The real backends (test 4 registers a kernel-less one). */
const backends = () => availableBackends().filter((b) => !b.startsWith("test-"));
function withBackend<T>(b: string, fn: () => T): T {
  const saved = getBackend();
  try { setBackend(b); return fn(); } finally { setBackend(saved); }
}

/** The band written out: 0 where i − left ≤ j ≤ i + right (positions i + offset), −∞ elsewhere; (1, 1, Tq, Tk). */
function bandMask(Tq: number, Tk: number, left: number, right: number, offset: number): Tensor {
  const m = new Float32Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) {
    const p = i + offset;
    if ((left >= 0 && j < p - left) || (right >= 0 && j > p + right)) m[i * Tk + j] = -Infinity;
  }
  return Tensor.fromArray(m, [1, 1, Tq, Tk]);
}

interface Case { B: number; H: number; Hkv: number; Tq: number; Tk: number; D: number; Dv: number; causal: boolean;
  window: number | [number, number]; offset: number; pad: boolean; alibi: boolean }

const cases: Case[] = [
  // long enough for the native tiles (64 query lanes × 128 keys) and the Wasm ones (64 × 64): skipped and cut blocks
  { B: 1, H: 2, Hkv: 2, Tq: 301, Tk: 301, D: 16, Dv: 16, causal: true, window: 37, offset: 0, pad: false, alibi: false },
  { B: 2, H: 4, Hkv: 2, Tq: 200, Tk: 200, D: 8, Dv: 12, causal: false, window: 50, offset: 0, pad: true, alibi: false },
  { B: 1, H: 3, Hkv: 1, Tq: 259, Tk: 259, D: 7, Dv: 5, causal: true, window: 130, offset: 0, pad: false, alibi: true },
  { B: 2, H: 2, Hkv: 2, Tq: 133, Tk: 190, D: 9, Dv: 9, causal: false, window: [70, 3], offset: 57, pad: true, alibi: false },
  { B: 1, H: 2, Hkv: 2, Tq: 150, Tk: 150, D: 8, Dv: 8, causal: false, window: [-1, 0], offset: 0, pad: false, alibi: false },   // = causal
  { B: 1, H: 2, Hkv: 1, Tq: 3, Tk: 211, D: 16, Dv: 16, causal: false, window: [100, 0], offset: 208, pad: false, alibi: true }, // decode rows
  { B: 2, H: 2, Hkv: 2, Tq: 1, Tk: 9, D: 4, Dv: 4, causal: false, window: 3, offset: 8, pad: true, alibi: false },
  // rows that see no key at all (the band lies outside the keys): output 0, weights 0, no gradient
  { B: 1, H: 1, Hkv: 1, Tq: 70, Tk: 20, D: 5, Dv: 3, causal: false, window: [2, 0], offset: 0, pad: false, alibi: false },
  { B: 1, H: 2, Hkv: 2, Tq: 17, Tk: 23, D: 6, Dv: 6, causal: true, window: 1, offset: 0, pad: false, alibi: false },        // self only
];

test("window = the band as an explicit mask: outputs, weights and gradients on every backend, fused and math, odd shapes", () => {
  for (const c of cases) {
    manualSeed(5);
    const q0 = randn([c.B, c.H, c.Tq, c.D]), k0 = randn([c.B, c.Hkv, c.Tk, c.D]), v0 = randn([c.B, c.Hkv, c.Tk, c.Dv]);
    const g = randn([c.B, c.H, c.Tq, c.Dv]);
    let kp: Tensor | null = null;
    if (c.pad) {
      const p = new Uint8Array(c.B * c.Tk);
      for (let j = 0; j < c.Tk; j++) p[(c.B - 1) * c.Tk + j] = +(j % 7 === 3 || j >= c.Tk - 4);
      kp = Tensor.fromArray(p, [c.B, c.Tk], "bool");
    }
    const slopes = c.alibi ? nn.alibiSlopes(c.H) : null;
    const [left, right] = typeof c.window === "number" ? [c.window - 1, c.causal ? 0 : c.window - 1] : c.window;
    const run = (windowed: boolean, impl: "fused" | "math") => {
      const q = q0.clone().requiresGrad_(), k = k0.clone().requiresGrad_(), v = v0.clone().requiresGrad_();
      const r = F.scaledDotProductAttention(q, k, v, {
        causal: c.causal, keyPaddingMask: kp, returnWeights: true, impl, alibiSlopes: slopes, alibiOffset: c.offset,
        ...(windowed ? { window: c.window, windowOffset: c.offset } : { attnMask: bandMask(c.Tq, c.Tk, left, right, c.offset) }),
      });
      r.out.mul(g).sum().backward();
      return [r.out, r.weights!, q.grad!, k.grad!, v.grad!];
    };
    const want = withBackend("reference", () => run(false, "fused"));
    for (const be of backends()) {
      for (const impl of ["fused", "math"] as const) {
        const got = withBackend(be, () => run(true, impl));
        got.forEach((t, i) => assert.ok(maxDiff(t, want[i]) < 3e-5,
          `${be} ${impl} ${JSON.stringify(c)} tensor ${["out", "weights", "dq", "dk", "dv"][i]}: ${maxDiff(t, want[i])}`));
      }
    }
  }
});

test("window: the weights are 0 outside the band and rows still sum to 1 (Mistral convention i − W < j ≤ i with causal)", () => {
  manualSeed(2);
  const T = 40, W = 6, q = randn([1, 2, T, 8]), k = randn([1, 2, T, 8]), v = randn([1, 2, T, 8]);
  for (const be of backends()) withBackend(be, () => {
    const w = F.scaledDotProductAttention(q, k, v, { causal: true, window: W, returnWeights: true }).weights!.dataSync() as Float32Array;
    for (let h = 0; h < 2; h++) for (let i = 0; i < T; i++) {
      let s = 0;
      for (let j = 0; j < T; j++) {
        const x = w[(h * T + i) * T + j];
        if (!(i - W < j && j <= i)) assert.equal(x, 0, `${be} h${h} i${i} j${j}`);
        else assert.ok(x > 0);
        s += x;
      }
      assert.ok(Math.abs(s - 1) < 1e-5);
    }
  });
});

test("window matches PyTorch SDPA with the sliding-window mask Hugging Face builds (fixture)", () => {
  const fx = JSON.parse(readFileSync(new URL("../../test/fixtures/pytorch/sliding-window-sdpa.json", import.meta.url), "utf8")) as {
    cases: { B: number; H: number; T: number; D: number; window: number; causal: boolean; q: number[]; k: number[]; v: number[]; g: number[];
      out: number[]; dq: number[]; dk: number[]; dv: number[] }[];
  };
  for (const c of fx.cases) {
    const sh = [c.B, c.H, c.T, c.D];
    for (const be of backends()) withBackend(be, () => {
      const q = Tensor.fromArray(Float32Array.from(c.q), sh).requiresGrad_(), k = Tensor.fromArray(Float32Array.from(c.k), sh).requiresGrad_();
      const v = Tensor.fromArray(Float32Array.from(c.v), sh).requiresGrad_();
      const out = F.scaledDotProductAttention(q, k, v, { causal: c.causal, window: c.window });
      out.mul(Tensor.fromArray(Float32Array.from(c.g), sh)).sum().backward();
      for (const [name, t] of [["out", out], ["dq", q.grad!], ["dk", k.grad!], ["dv", v.grad!]] as const) {
        const ref = Tensor.fromArray(Float32Array.from(c[name]), sh);
        assert.ok(maxDiff(t, ref) < 2e-5, `${be} T=${c.T} W=${c.window} causal=${c.causal} ${name}: ${maxDiff(t, ref)}`);
      }
    });
  }
});

test("window reaches the kernels as a band (no Tq×Tk mask) where they take it; otherwise folded into the mask; bad values throw", () => {
  for (const be of backends()) withBackend(be, () => {
    const a = attnArgsFor(1, 2, 2, 100, 100, 8, 8, { causal: true, window: 10 });
    assert.equal(a.attnMask, null, be);
    assert.deepEqual(a.window, { lo: -9, hi: 0 });
  });
  registerBackend({ name: "test-no-window", priority: -5, kernels: { attnForward: () => undefined }, description: "test" });
  withBackend("test-no-window", () => {
    const f = attnArgsFor(1, 2, 2, 5, 6, 8, 8, { window: [1, 0] });
    assert.ok(f.attnMask && f.attnMask.length === 30);
    assert.equal(f.attnMask![2 * 6 + 0], -Infinity);   // row 2 sees keys 1, 2 only
    assert.equal(f.attnMask![2 * 6 + 1], 0);
    assert.equal(f.attnMask![2 * 6 + 3], -Infinity);
  });
  assert.equal(windowArgs({ window: 100 }, 50, 50), null, "a band wider than the sequence hides nothing");
  assert.deepEqual(windowArgs({ window: [-1, 2], windowOffset: 3 }, 4, 10), { lo: -4, hi: 5 });
  assert.throws(() => attnArgsFor(1, 1, 1, 4, 4, 8, 8, { window: 0 }), /window must be a positive integer/);
  assert.throws(() => attnArgsFor(1, 1, 1, 4, 4, 8, 8, { window: [2, -3] as [number, number] }), /\[left, right\]/);
  assert.throws(() => attnArgsFor(1, 1, 1, 4, 4, 8, 8, { window: 2, windowOffset: 0.5 }), /windowOffset must be an integer/);
});

test("nn.MultiheadAttention window (RoPE, ALiBi, causal or not) = the same module with the band as attnMask; gradients too", () => {
  for (const position of ["rope", "alibi"] as const) for (const causal of [true, false]) {
    manualSeed(7);
    const E = 24, H = 3, T = 150, W = 20, B = 2;
    const mha = new nn.MultiheadAttention(E, H, { batchFirst: true, position, window: W });
    const x0 = randn([B, T, E]);
    const blocked = new Uint8Array(T * T);
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) blocked[i * T + j] = +(causal ? !(i - W < j && j <= i) : Math.abs(i - j) >= W);
    const mask = Tensor.fromArray(blocked, [T, T], "bool");
    for (const be of backends()) withBackend(be, () => {
      const run = (windowed: boolean) => {
        const x = x0.clone().requiresGrad_();
        mha.zeroGrad();
        const saved = (mha as unknown as { window: unknown }).window;
        if (!windowed) (mha as unknown as { window: unknown }).window = null;
        try {
          const [y, w] = mha.forward(x, x, x, windowed ? { isCausal: causal, averageAttnWeights: false } : { attnMask: mask, averageAttnWeights: false });
          y.square().sum().backward();
          return [y, w!, x.grad!, mha.outProj.weight.grad!];
        } finally { (mha as unknown as { window: unknown }).window = saved; }
      };
      const want = run(false), got = run(true);
      got.forEach((t, i) => assert.ok(maxDiff(t, want[i]) < 5e-5, `${be} ${position} causal=${causal} tensor ${i}: ${maxDiff(t, want[i])}`));
    });
  }
  assert.throws(() => new nn.MultiheadAttention(8, 2, { window: 0 }), /window must be a positive integer/);
});

test("nn.GroupedQueryAttention window: decoding token by token with a KVCache equals the windowed full forward", () => {
  manualSeed(9);
  const E = 32, T = 40, W = 7;
  const gqa = new nn.GroupedQueryAttention(E, 4, { numKvHeads: 2, position: "rope", window: W });
  const x = randn([1, T, E]);
  for (const be of backends()) withBackend(be, () => {
    const full = gqa.forward(x, { isCausal: true }).out;
    const cache = gqa.createCache(1, 1, T);
    const steps: Tensor[] = [];
    noGrad(() => {
      for (let t = 0; t < T; t++) { steps.push(gqa.forward(x.narrow(1, t, 1), { isCausal: true, cache }).out); cache.advance(1); }
    });
    assert.ok(maxDiff(full, cat(steps, 1)) < 2e-5, `${be}: ${maxDiff(full, cat(steps, 1))}`);
    // and it is a real window: differs from full causal attention
    const plain = new nn.GroupedQueryAttention(E, 4, { numKvHeads: 2, position: "rope" });
    plain.loadStateDict(gqa.stateDict());
    const d = maxDiff(plain.forward(x, { isCausal: true }).out, full);
    assert.ok(d > 1e-3, `${be}: windowed vs full ${d}`);
  });
});

test("wasm: window with an additive mask, key padding and ALiBi stores only the band (outputs, weights, gradients = reference; no Tq×Tk slice)", async () => {
  if (!backends().includes("wasm")) return;
  const { wasmInstance } = await import("../src/backend/wasm/register.js");
  const shapes = [
    { B: 2, H: 4, Hkv: 2, Tq: 197, Tk: 197, D: 8, causal: true, window: 29 as number | [number, number], offset: 0 },
    { B: 1, H: 2, Hkv: 1, Tq: 150, Tk: 260, D: 6, causal: false, window: [40, 7] as [number, number], offset: 90 },
    { B: 1, H: 3, Hkv: 3, Tq: 5, Tk: 300, D: 4, causal: false, window: [60, 0] as [number, number], offset: 295 },   // cached decode rows: band right of the diagonal
    { B: 1, H: 1, Hkv: 1, Tq: 90, Tk: 90, D: 5, causal: true, window: 1, offset: 0 },                                  // Wb = 1: ldm 0
  ];
  for (const c of shapes) {
    manualSeed(11);
    const q0 = randn([c.B, c.H, c.Tq, c.D]), k0 = randn([c.B, c.Hkv, c.Tk, c.D]), v0 = randn([c.B, c.Hkv, c.Tk, c.D]), g = randn([c.B, c.H, c.Tq, c.D]);
    // a float mask per batch item (finite values, a few −inf), key padding on the last item, ALiBi
    const md = randn([c.B, 1, c.Tq, c.Tk]).contiguous().dataSync() as Float32Array;
    for (let i = 0; i < md.length; i += 13) md[i] = -Infinity;
    const mask = Tensor.fromArray(md, [c.B, 1, c.Tq, c.Tk]);
    const p = new Uint8Array(c.B * c.Tk);
    for (let j = 0; j < c.Tk; j++) p[(c.B - 1) * c.Tk + j] = +(j % 5 === 2);
    const kp = Tensor.fromArray(p, [c.B, c.Tk], "bool");
    const slopes = nn.alibiSlopes(c.H);
    const [left, right] = typeof c.window === "number" ? [c.window - 1, c.causal ? 0 : c.window - 1] : c.window;
    const run = (windowed: boolean) => {
      const q = q0.clone().requiresGrad_(), k = k0.clone().requiresGrad_(), v = v0.clone().requiresGrad_();
      const r = F.scaledDotProductAttention(q, k, v, {
        causal: c.causal, keyPaddingMask: kp, returnWeights: true, alibiSlopes: slopes, alibiOffset: c.offset,
        ...(windowed ? { attnMask: mask, window: c.window, windowOffset: c.offset } : { attnMask: mask.add(bandMask(c.Tq, c.Tk, left, right, c.offset)) }),
      });
      r.out.mul(g).sum().backward();
      return [r.out, r.weights!, q.grad!, k.grad!, v.grad!];
    };
    const want = withBackend("reference", () => run(false));
    const got = withBackend("wasm", () => run(true));
    got.forEach((t, i) => assert.ok(maxDiff(t, want[i]) < 3e-5, `${JSON.stringify(c)} ${["out", "weights", "dq", "dk", "dv"][i]}: ${maxDiff(t, want[i])}`));
  }
  // T = 8192, window 16, ALiBi and key padding: a Tq×Tk mask slice of one head alone would be 256 MiB
  const T = 8192, inst = wasmInstance()!;
  manualSeed(3);
  const q = randn([1, 1, T, 4]), k = randn([1, 1, T, 4]), v = randn([1, 1, T, 4]);
  const pad = new Uint8Array(T); pad[5] = 1;
  const opts = { causal: true, window: 16, alibiSlopes: Float32Array.of(0.25), keyPaddingMask: Tensor.fromArray(pad, [1, T], "bool") };
  const before = inst.arena.bytes;
  const got = withBackend("wasm", () => noGrad(() => F.scaledDotProductAttention(q, k, v, opts)));
  const grown = inst.arena.bytes - before;
  assert.ok(grown < 64 * 2 ** 20, `the Wasm memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB for a window of 16 at T ${T}`);
  // rows 0..299 against the reference (the same rows see the same keys: band and causal)
  const want = withBackend("reference", () => noGrad(() => F.scaledDotProductAttention(q.narrow(2, 0, 300), k.narrow(2, 0, 300), v.narrow(2, 0, 300),
    { ...opts, keyPaddingMask: Tensor.fromArray(pad.slice(0, 300), [1, 300], "bool") })));
  assert.ok(maxDiff(got.narrow(2, 0, 300), want) < 3e-5);
});
