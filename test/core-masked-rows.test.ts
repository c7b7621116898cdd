// One rule for query rows that can attend to nothing (PyTorch ≥ 2.5 scaled_dot_product_attention): output 0, weights
// 0, and no gradient from or into such a row (dq row 0, nothing into dk/dv) — on the fused and the composed ("math")
// path, through nn.MultiheadAttention and the Transformer layers, on every backend Node has (reference, wasm, native),
// checked against a float64 oracle written from the definition. And NaN/Inf propagation: a row whose scores hold a NaN
// (from NaN or ±Inf in q/k) is NaN in all of its output and all of its weights on every path, so the fused path's
// weights agree with its output; other rows are untouched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { availableBackends, captureAttention, F, getBackend, manualSeed, nn, randn, setBackend, Tensor } from "../src/node.js";
import { loadNativeKernels, type NativeIsa } from "../src/node/native-addon.js";
import { mulberry32 } from "../bench/lib/prng.js";

// "native:avx2" runs the native backend on that ISA variant (every variant this CPU runs is checked)
const nativeAddon = loadNativeKernels().kernels;
const nativeIsas = nativeAddon && availableBackends().includes("native")
  ? (["avx512", "avx2", "neon", "generic"] as NativeIsa[]).filter((i) => nativeAddon.setIsa(i)) : [];
if (nativeAddon && nativeIsas.length) nativeAddon.setIsa(nativeIsas[0]);
const BACKENDS = [...["reference", "wasm"].filter((b) => availableBackends().includes(b)), ...nativeIsas.map((i) => `native:${i}`)];
const IMPLS = ["fused", "math"] as const;

function withBackend<T>(label: string, fn: () => T): T {
  const prev = getBackend(), [name, isa] = label.split(":") as [string, NativeIsa | undefined];
  try {
    setBackend(name);
    if (isa) nativeAddon!.setIsa(isa);
    return fn();
  } finally {
    setBackend(prev);
    if (isa) nativeAddon!.setIsa(nativeIsas[0]);
  }
}

const rand = mulberry32(0x1234567);
const randArr = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * s);

interface Case {
  B: number; H: number; Hkv: number; Tq: number; Tk: number; D: number; Dv: number;
  q: Float32Array; k: Float32Array; v: Float32Array; g: Float32Array;
  /** sdpa options (masks as tensors) */
  opts: () => F.SdpaOptions;
  /** the same masks as the oracle sees them: −inf (blocked) or an additive value */
  bias: (b: number, h: number, i: number, j: number) => number;
}

function makeCase(B: number, H: number, Hkv: number, Tq: number, Tk: number, D: number, Dv: number,
  opts: () => F.SdpaOptions, bias: Case["bias"]): Case {
  return { B, H, Hkv, Tq, Tk, D, Dv, opts, bias, q: randArr(B * H * Tq * D), k: randArr(B * Hkv * Tk * D),
    v: randArr(B * Hkv * Tk * Dv), g: randArr(B * H * Tq * Dv) };
}

/** Float64 attention from the definition, with the rule: a row whose scores are all −inf has P = 0. */
function oracle(c: Case) {
  const { B, H, Hkv, Tq, Tk, D, Dv } = c, scale = 1 / Math.sqrt(D), G = H / Hkv;
  const out = new Float64Array(B * H * Tq * Dv), w = new Float64Array(B * H * Tq * Tk);
  const dq = new Float64Array(c.q.length), dk = new Float64Array(c.k.length), dv = new Float64Array(c.v.length);
  const dead: boolean[] = [];
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Tq; i++) {
    const hk = Math.floor(h / G), row = (b * H + h) * Tq + i;
    const s = new Float64Array(Tk);
    let m = -Infinity;
    for (let j = 0; j < Tk; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += c.q[row * D + d] * c.k[((b * Hkv + hk) * Tk + j) * D + d];
      s[j] = dot * scale + c.bias(b, h, i, j);
      m = Math.max(m, s[j]);
    }
    dead[row] = m === -Infinity;
    if (dead[row]) continue;
    let sum = 0;
    for (let j = 0; j < Tk; j++) sum += Math.exp(s[j] - m);
    const P = Array.from(s, (x) => Math.exp(x - m) / sum);
    const dP = new Float64Array(Tk);
    let delta = 0;
    for (let j = 0; j < Tk; j++) {
      w[row * Tk + j] = P[j];
      const vo = ((b * Hkv + hk) * Tk + j) * Dv;
      for (let d = 0; d < Dv; d++) {
        out[row * Dv + d] += P[j] * c.v[vo + d];
        dP[j] += c.g[row * Dv + d] * c.v[vo + d];
        dv[vo + d] += P[j] * c.g[row * Dv + d];
      }
      delta += P[j] * dP[j];
    }
    for (let j = 0; j < Tk; j++) {
      const dS = P[j] * (dP[j] - delta) * scale, ko = ((b * Hkv + hk) * Tk + j) * D;
      for (let d = 0; d < D; d++) { dq[row * D + d] += dS * c.k[ko + d]; dk[ko + d] += dS * c.q[row * D + d]; }
    }
  }
  const mean = new Float64Array(B * Tq * Tk);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let x = 0; x < Tq * Tk; x++) mean[b * Tq * Tk + x] += w[(b * H + h) * Tq * Tk + x] / H;
  return { out, w, mean, dq, dk, dv, dead };
}

interface Run { out: Float32Array; w: Float32Array; mean: Float32Array; dq: Float32Array; dk: Float32Array; dv: Float32Array }

function run(c: Case, backend: string, impl: "fused" | "math", threeD = false): Run {
  return withBackend(backend, () => {
    const shape = (h: number, t: number, d: number) => (threeD ? [c.B, t, d] : [c.B, h, t, d]);
    const q = Tensor.fromArray(c.q, shape(c.H, c.Tq, c.D)).requiresGrad_();
    const k = Tensor.fromArray(c.k, shape(c.Hkv, c.Tk, c.D)).requiresGrad_();
    const v = Tensor.fromArray(c.v, shape(c.Hkv, c.Tk, c.Dv)).requiresGrad_();
    const r = F.scaledDotProductAttention(q, k, v, { ...c.opts(), impl, returnWeights: "full" });
    r.out.mul(Tensor.fromArray(c.g, r.out.shape)).sum().backward();
    const mean = F.scaledDotProductAttention(q, k, v, { ...c.opts(), impl, returnWeights: "mean" }).weights!;
    return { out: r.out.toFloat32Array(), w: r.weights!.toFloat32Array(), mean: mean.toFloat32Array(),
      dq: q.grad!.toFloat32Array(), dk: k.grad!.toFloat32Array(), dv: v.grad!.toFloat32Array() };
  });
}

function close(what: string, got: Float32Array, want: Float64Array, tol = 3e-5): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 1;
  for (const x of want) scale = Math.max(scale, Math.abs(x));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * scale)) assert.fail(`${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

/** Every element of the dead rows (blocks of `n`) is exactly 0. */
function zeroRows(what: string, a: Float32Array, dead: boolean[], n: number): void {
  for (let r = 0; r < dead.length; r++) {
    if (!dead[r]) continue;
    for (let x = 0; x < n; x++) if (a[r * n + x] !== 0) assert.fail(`${what}: fully masked row ${r} has ${a[r * n + x]} at ${x}, want 0`);
  }
}

const boolT = (bits: number[] | Uint8Array, shape: number[]) => Tensor.fromArray(Uint8Array.from(bits), shape, "bool");

// Mask builders: each returns sdpa options and the oracle's view of them.
function boolMaskCase(): Case {
  const B = 2, H = 2, Tq = 5, Tk = 7;
  const allow = Array.from({ length: Tq * Tk }, (_, x) => +(Math.floor(x / Tk) !== 1 && x % 3 !== 0));   // row 1 sees nothing
  return makeCase(B, H, H, Tq, Tk, 4, 3, () => ({ attnMask: boolT(allow, [Tq, Tk]) }), (_b, _h, i, j) => (allow[i * Tk + j] ? 0 : -Infinity));
}
function floatMaskCase(): Case {
  const B = 2, H = 3, Tq = 6, Tk = 5;
  const m = randArr(B * Tq * Tk, 2);
  for (let x = 0; x < m.length; x += 4) m[x] = -Infinity;
  m.fill(-Infinity, 3 * Tk, 4 * Tk);                                   // batch 0, row 3
  m.fill(-Infinity, (Tq + 5) * Tk, (Tq + 6) * Tk);                     // batch 1, row 5
  return makeCase(B, H, H, Tq, Tk, 8, 8, () => ({ attnMask: Tensor.fromArray(m, [B, 1, Tq, Tk]) }), (b, _h, i, j) => m[(b * Tq + i) * Tk + j]);
}
function keyPaddingCase(): Case {
  const B = 3, H = 4, Hkv = 2, Tq = 4, Tk = 6;
  const pad = new Uint8Array(B * Tk);
  pad[2] = pad[5] = 1;                                                 // batch 0: two padded keys
  pad.fill(1, Tk, 2 * Tk);                                             // batch 1: every key is padding
  return makeCase(B, H, Hkv, Tq, Tk, 5, 3, () => ({ keyPaddingMask: boolT(pad, [B, Tk]) }), (b, _h, _i, j) => (pad[b * Tk + j] ? -Infinity : 0));
}
function causalMaskCase(): Case {
  // causal leaves row 0 key 0 only; the bool mask blocks key 0 for rows 0 and 2 → row 0 is fully masked, row 2 not
  const B = 1, H = 2, Tq = 4, Tk = 6;
  const allow = Array.from({ length: Tq * Tk }, (_, x) => +!(x % Tk === 0 && (Math.floor(x / Tk) === 0 || Math.floor(x / Tk) === 2)));
  return makeCase(B, H, H, Tq, Tk, 4, 4, () => ({ causal: true, attnMask: boolT(allow, [Tq, Tk]) }),
    (_b, _h, i, j) => (j > i || !allow[i * Tk + j] ? -Infinity : 0));
}
function tiledCase(): Case {
  // several query and key tiles of the fast kernels, dead rows in different tiles and heads, padding on top
  const B = 2, H = 2, Tq = 70, Tk = 135;
  const m = randArr(H * Tq * Tk, 1);
  for (const [h, i] of [[0, 0], [0, 33], [1, 64], [1, 69]]) m.fill(-Infinity, (h * Tq + i) * Tk, (h * Tq + i + 1) * Tk);
  const pad = new Uint8Array(B * Tk);
  for (let j = 0; j < Tk; j++) pad[Tk + j] = +(j >= 100);
  return makeCase(B, H, H, Tq, Tk, 16, 8, () => ({ attnMask: Tensor.fromArray(m, [1, H, Tq, Tk]), keyPaddingMask: boolT(pad, [B, Tk]) }),
    (b, h, i, j) => (pad[b * Tk + j] ? -Infinity : m[(h * Tq + i) * Tk + j]));
}

function decodeStepCase(): Case {
  // one new query against cached keys (the shape of cached generation / seq2seq cross-attention): an empty source
  const B = 3, H = 2, Tk = 9;
  const pad = new Uint8Array(B * Tk);
  pad.fill(1, 2 * Tk, 3 * Tk);
  pad[4] = 1;
  return makeCase(B, H, H, 1, Tk, 8, 8, () => ({ keyPaddingMask: boolT(pad, [B, Tk]) }), (b, _h, _i, j) => (pad[b * Tk + j] ? -Infinity : 0));
}

const CASES: [string, () => Case][] = [
  ["bool attnMask", boolMaskCase], ["float −inf attnMask", floatMaskCase], ["keyPaddingMask over a whole batch element (GQA)", keyPaddingCase],
  ["causal + bool attnMask", causalMaskCase], ["several tiles, mask + padding", tiledCase], ["decode step, empty source", decodeStepCase],
];

test("fully masked rows: output 0, weights 0, no gradient from or into them — fused and math, every backend", () => {
  for (const [name, make] of CASES) {
    const c = make(), want = oracle(c);
    assert.ok(want.dead.some((d) => d) && want.dead.some((d) => !d), `${name}: the case has dead and live rows`);
    for (const backend of BACKENDS) for (const impl of IMPLS) {
      const tag = `${name} (${backend}, ${impl})`, got = run(c, backend, impl);
      zeroRows(`${tag}: out`, got.out, want.dead, c.Dv);
      zeroRows(`${tag}: weights`, got.w, want.dead, c.Tk);
      zeroRows(`${tag}: dq`, got.dq, want.dead, c.D);
      close(`${tag}: out`, got.out, want.out); close(`${tag}: weights`, got.w, want.w); close(`${tag}: mean weights`, got.mean, want.mean);
      close(`${tag}: dq`, got.dq, want.dq); close(`${tag}: dk`, got.dk, want.dk); close(`${tag}: dv`, got.dv, want.dv);
    }
  }
});

test("fully masked rows with 3-D (B, T, D) inputs and a (B, Tq, Tk) mask", () => {
  const B = 2, Tq = 3, Tk = 4;
  const allow = [1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1, /* batch 1 */ 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0];
  const c = makeCase(B, 1, 1, Tq, Tk, 3, 2, () => ({ attnMask: boolT(allow, [B, Tq, Tk]) }), (b, _h, i, j) => (allow[(b * Tq + i) * Tk + j] ? 0 : -Infinity));
  const want = oracle(c);
  for (const backend of BACKENDS) for (const impl of IMPLS) {
    const got = run(c, backend, impl, true), tag = `3-D (${backend}, ${impl})`;
    zeroRows(`${tag}: out`, got.out, want.dead, c.Dv);
    close(`${tag}: out`, got.out, want.out); close(`${tag}: weights`, got.w, want.w);
    close(`${tag}: dq`, got.dq, want.dq); close(`${tag}: dk`, got.dk, want.dk); close(`${tag}: dv`, got.dv, want.dv);
  }
});

test("a fully masked row leaves every other row bit-for-bit as it was (out and dq), fused and math", () => {
  const B = 1, H = 2, Tq = 9, Tk = 11;
  const base = randArr(Tq * Tk, 1);
  const dead = Float32Array.from(base);
  dead.fill(-Infinity, 4 * Tk, 5 * Tk);
  const c = makeCase(B, H, H, Tq, Tk, 8, 8, () => ({ attnMask: Tensor.fromArray(base, [Tq, Tk]) }), () => 0);
  const cDead: Case = { ...c, opts: () => ({ attnMask: Tensor.fromArray(dead, [Tq, Tk]) }) };
  for (const backend of BACKENDS) for (const impl of IMPLS) {
    const a = run(c, backend, impl), b = run(cDead, backend, impl);
    for (let h = 0; h < H; h++) for (let i = 0; i < Tq; i++) {
      const row = h * Tq + i;
      if (i === 4) continue;
      for (let d = 0; d < c.Dv; d++) assert.ok(Object.is(a.out[row * c.Dv + d], b.out[row * c.Dv + d]), `${backend} ${impl}: out row ${row} changed`);
      for (let d = 0; d < c.D; d++) assert.ok(Object.is(a.dq[row * c.D + d], b.dq[row * c.D + d]), `${backend} ${impl}: dq row ${row} changed`);
    }
  }
});

test("F.softmax keeps PyTorch's plain-softmax rule: an all −inf row is NaN, so is a row with NaN or +Inf (attention uses the safe form)", () => {
  for (const backend of BACKENDS) withBackend(backend, () => {
    const x = Tensor.fromArray([-Infinity, -Infinity, -Infinity, 1, -Infinity, 1], [2, 3]);
    const y = F.softmax(x, -1).toFloat32Array();
    assert.ok(y.slice(0, 3).every(Number.isNaN), `${backend}: all −inf row → NaN, got ${y.slice(0, 3)}`);
    assert.deepEqual(Array.from(y.slice(3)), [0.5, 0, 0.5], backend);
    const n = 1100, z = randArr(2 * n);                                // long rows: the SIMD bodies and tails
    z[5] = NaN; z[n + 7] = Infinity;
    assert.ok(F.softmax(Tensor.fromArray(z, [2, n]), -1).toFloat32Array().every(Number.isNaN), `${backend}: a NaN or +Inf makes its row NaN`);
  });
});

// ---------------------------------------------------------------- NaN / Inf propagation

function nanCase(): Case {
  // B 2, H 2, Tq 5, Tk 6; batch 0 key 5 is padding; causal off
  const B = 2, H = 2, Tq = 5, Tk = 6;
  const pad = new Uint8Array(B * Tk);
  pad[5] = 1;
  return makeCase(B, H, H, Tq, Tk, 4, 3, () => ({ keyPaddingMask: boolT(pad, [B, Tk]) }), (b, _h, _i, j) => (pad[b * Tk + j] ? -Infinity : 0));
}

const isNaNRow = (a: Float32Array, row: number, n: number) => a.slice(row * n, (row + 1) * n).every(Number.isNaN);
const finiteRow = (a: Float32Array, row: number, n: number) => a.slice(row * n, (row + 1) * n).every(Number.isFinite);

test("NaN or Inf in a query row: that row's output and weights are NaN everywhere, other rows unchanged", () => {
  for (const [label, val, all] of [["NaN (whole row)", NaN, true], ["NaN (one element)", NaN, false], ["+Inf", Infinity, false], ["−Inf", -Infinity, false]] as const) {
    const c = nanCase(), clean = run(c, "reference", "fused");
    const row = (0 * c.H + 1) * c.Tq + 2;                               // b 0, h 1, query 2
    if (all) c.q.fill(val, row * c.D, (row + 1) * c.D); else c.q[row * c.D + 1] = val;
    for (const backend of BACKENDS) for (const impl of IMPLS) {
      const got = run(c, backend, impl), tag = `${label} (${backend}, ${impl})`;
      assert.ok(isNaNRow(got.out, row, c.Dv), `${tag}: out row ${Array.from(got.out.slice(row * c.Dv, (row + 1) * c.Dv))}`);
      assert.ok(isNaNRow(got.w, row, c.Tk), `${tag}: weights row ${Array.from(got.w.slice(row * c.Tk, (row + 1) * c.Tk))}`);
      assert.ok(isNaNRow(got.mean, 2, c.Tk), `${tag}: mean weights of query 2 hold a NaN head`);
      assert.ok(isNaNRow(got.dq, row, c.D), `${tag}: dq row`);
      for (let r = 0; r < c.B * c.H * c.Tq; r++) {
        if (r === row) continue;
        assert.ok(finiteRow(got.out, r, c.Dv) && finiteRow(got.w, r, c.Tk), `${tag}: row ${r} is not finite`);
        for (let d = 0; d < c.Dv; d++) assert.ok(Math.abs(got.out[r * c.Dv + d] - clean.out[r * c.Dv + d]) <= 1e-5, `${tag}: row ${r} changed`);
      }
    }
  }
});

test("NaN in a key: every row that sees it is NaN (output and weights); a padded NaN key shows in neither", () => {
  const c = nanCase(), clean = run(c, "reference", "fused");
  c.k[(0 * c.H + 0) * c.Tk * c.D + 2 * c.D] = NaN;                     // b 0, kv head 0, key 2 (visible)
  c.k[(1 * c.H + 1) * c.Tk * c.D + 5 * c.D] = NaN;                     // b 1, kv head 1, key 5 (visible)
  c.k[(0 * c.H + 1) * c.Tk * c.D + 5 * c.D + 1] = NaN;                 // b 0, kv head 1, key 5 (padding)
  for (const backend of BACKENDS) for (const impl of IMPLS) {
    const got = run(c, backend, impl), tag = `${backend}, ${impl}`;
    for (let b = 0; b < c.B; b++) for (let h = 0; h < c.H; h++) for (let i = 0; i < c.Tq; i++) {
      const row = (b * c.H + h) * c.Tq + i, hit = (b === 0 && h === 0) || (b === 1 && h === 1);
      if (hit) {
        assert.ok(isNaNRow(got.out, row, c.Dv) && isNaNRow(got.w, row, c.Tk), `${tag}: row ${row} should be NaN (out and weights), ` +
          `got out ${Array.from(got.out.slice(row * c.Dv, (row + 1) * c.Dv))} weights ${Array.from(got.w.slice(row * c.Tk, (row + 1) * c.Tk))}`);
        assert.ok(isNaNRow(got.dq, row, c.D), `${tag}: dq row ${row}`);
        continue;
      }
      assert.ok(finiteRow(got.out, row, c.Dv) && finiteRow(got.w, row, c.Tk), `${tag}: row ${row} should be finite, got out ` +
        `${Array.from(got.out.slice(row * c.Dv, (row + 1) * c.Dv))} weights ${Array.from(got.w.slice(row * c.Tk, (row + 1) * c.Tk))}`);
      for (let j = 0; j < c.Tk; j++) assert.ok(Math.abs(got.w[row * c.Tk + j] - clean.w[row * c.Tk + j]) <= 1e-5, `${tag}: weights row ${row} changed`);
      // the head with the padded NaN key: its gradients may meet 0·NaN in a product (documented); the clean one may not
      if (b === 1) assert.ok(finiteRow(got.dq, row, c.D), `${tag}: dq row ${row} should be finite`);
    }
  }
});

test("causal: a NaN key is invisible to the queries before it (output and weights), NaN for the rest", () => {
  const B = 1, H = 2, T = 70, D = 8, bad = 40;                         // several tiles; key 40 is in a diagonal tile
  const c = makeCase(B, H, H, T, T, D, D, () => ({ causal: true }), (_b, _h, i, j) => (j > i ? -Infinity : 0));
  c.k[(1 * T + bad) * D + 3] = NaN;                                    // head 1
  for (const backend of BACKENDS) for (const impl of IMPLS) {
    const got = run(c, backend, impl), tag = `${backend}, ${impl}`;
    for (let i = 0; i < T; i++) {
      const row = T + i;
      if (i >= bad) assert.ok(isNaNRow(got.out, row, D) && isNaNRow(got.w, row, T), `${tag}: query ${i} sees the NaN key`);
      else assert.ok(finiteRow(got.out, row, D) && finiteRow(got.w, row, T), `${tag}: query ${i} must not see the NaN key`);
    }
    assert.ok(got.out.slice(0, T * D).every(Number.isFinite) && got.w.slice(0, T * T).every(Number.isFinite), `${tag}: head 0 finite`);
  }
});

test("NaN in a value: the output columns of the rows that weight it are NaN, the weights stay finite", () => {
  const c = nanCase();
  c.v[(1 * c.H + 0) * c.Tk * c.Dv + 3 * c.Dv + 2] = NaN;               // b 1, kv head 0, key 3, column 2
  for (const backend of BACKENDS) for (const impl of IMPLS) {
    const got = run(c, backend, impl), tag = `${backend}, ${impl}`;
    assert.ok(got.w.every(Number.isFinite), `${tag}: weights`);
    for (let r = 0; r < c.B * c.H * c.Tq; r++) for (let d = 0; d < c.Dv; d++) {
      const want = r >= (1 * c.H + 0) * c.Tq && r < (1 * c.H + 1) * c.Tq && d === 2;
      assert.equal(Number.isNaN(got.out[r * c.Dv + d]), want, `${tag}: out[${r}, ${d}] = ${got.out[r * c.Dv + d]}`);
    }
  }
});

// ---------------------------------------------------------------- modules

test("nn.MultiheadAttention: a batch element whose keys are all padding gets 0 attention (output = out-proj bias), finite grads", () => {
  manualSeed(7);
  const E = 8, H = 2, B = 3, T = 4;
  const pad = new Uint8Array(B * T);
  pad.fill(1, T, 2 * T);                                               // batch element 1: nothing to attend to
  pad[3] = 1;
  const padF = Float32Array.from(pad, (p) => (p ? -Infinity : 0));
  for (const backend of BACKENDS) withBackend(backend, () => {
    for (const [kind, kpm] of [["bool", () => boolT(pad, [B, T])], ["float", () => Tensor.fromArray(padF, [B, T])]] as const) {
      manualSeed(3);
      const mha = new nn.MultiheadAttention(E, H, { batchFirst: true });
      mha.outProj.bias!.storage.data.set(randArr(E));
      const x = randn([B, T, E]).requiresGrad_();
      for (const withGrad of [false, true]) {
        const tag = `${backend}, ${kind} mask, ${withGrad ? "math (captured with grad)" : "fused"}`;
        const { result: [y, w] } = captureAttention(mha, () => mha.forward(x, x, x, { keyPaddingMask: kpm(), averageAttnWeights: false }), { withGrad });
        const yd = y.toFloat32Array(), wd = w!.toFloat32Array(), bias = mha.outProj.bias!.toFloat32Array();
        for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) assert.equal(yd[(1 * T + t) * E + e], bias[e], `${tag}: y[1, ${t}, ${e}]`);
        assert.ok(wd.slice(H * T * T, 2 * H * T * T).every((p) => p === 0), `${tag}: weights of batch 1 are 0`);
        assert.ok(yd.every(Number.isFinite) && wd.every(Number.isFinite), `${tag}: finite`);
        x.grad = null;
        y.sum().backward();
        assert.ok(x.grad!.toFloat32Array().every(Number.isFinite), `${tag}: dx finite`);
        for (const [n, p] of mha.namedParameters()) assert.ok(!p.grad || p.grad.toFloat32Array().every(Number.isFinite), `${tag}: grad of ${n} finite`);
        mha.zeroGrad();
      }
    }
  });
});

test("nn.MultiheadAttention with a blocking attnMask row and isCausal; Transformer encoder/decoder layers with an all-padding element", () => {
  const E = 8, H = 2, B = 2, T = 5;
  for (const backend of BACKENDS) for (const withGrad of [false, true]) withBackend(backend, () => {
    const tag = `${backend}, ${withGrad ? "math (captured with grad)" : "fused"}`;
    manualSeed(5);
    const mha = new nn.MultiheadAttention(E, H, { batchFirst: true });
    const blocked = new Uint8Array(T * T);
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) blocked[i * T + j] = +(j > i || i === 2);   // causal, and row 2 blocked
    const x = randn([B, T, E]).requiresGrad_();
    const { result: [y, w] } = captureAttention(mha, () => mha.forward(x, x, x, { attnMask: boolT(blocked, [T, T]), isCausal: true }), { withGrad });
    const wd = w!.toFloat32Array();
    for (let b = 0; b < B; b++) for (let j = 0; j < T; j++) assert.equal(wd[(b * T + 2) * T + j], 0, `${tag}: blocked row weights`);
    y.sum().backward();
    assert.ok(y.toFloat32Array().every(Number.isFinite) && x.grad!.toFloat32Array().every(Number.isFinite), `${tag}: MHA finite`);

    manualSeed(6);
    const layer = new nn.TransformerEncoderLayer(E, H, { dropout: 0, batchFirst: true, dimFeedforward: 16 });
    const pad = new Uint8Array(B * T);
    pad.fill(1, T, 2 * T);
    const src = randn([B, T, E]).requiresGrad_();
    const { result: out } = captureAttention(layer, () => layer.forward(src, { srcKeyPaddingMask: boolT(pad, [B, T]) }), { withGrad });
    out.sum().backward();
    assert.ok(out.toFloat32Array().every(Number.isFinite), `${tag}: encoder output finite`);
    assert.ok(src.grad!.toFloat32Array().every(Number.isFinite), `${tag}: encoder grad finite`);

    manualSeed(8);
    const dec = new nn.TransformerDecoderLayer(E, H, { dropout: 0, batchFirst: true, dimFeedforward: 16 });
    const tgt = randn([B, 3, E]).requiresGrad_(), mem = randn([B, T, E]).requiresGrad_();
    const { result: d } = captureAttention(dec, () => dec.forward(tgt, mem, { tgtIsCausal: true, memoryKeyPaddingMask: boolT(pad, [B, T]) }), { withGrad });
    d.sum().backward();
    assert.ok(d.toFloat32Array().every(Number.isFinite), `${tag}: decoder output finite`);
    assert.ok(tgt.grad!.toFloat32Array().every(Number.isFinite) && mem.grad!.toFloat32Array().every(Number.isFinite), `${tag}: decoder grads finite`);
  });
});

// ---- maskedRows "uniform": Hugging Face eager's rule (its masks are float32's lowest value, not −∞) -------------------
const LOWEST = -3.4028234663852886e38;

/** float64 oracle of HF's eager attention: scores + mask with masked keys at finfo.min (float32 sums: min + min = −∞). */
function hfOracle(q: number[][], k: number[][], v: number[][], add: number[][], scale: number): { out: number[][]; w: number[][] } {
  const w = q.map((qi, i) => {
    const s = k.map((kj, j) => {
      const m = add[i][j];
      return m <= LOWEST ? m : qi.reduce((a, x, d) => a + x * kj[d], 0) * scale + m;      // score + finfo.min rounds to finfo.min
    });
    const mx = Math.max(...s), e = s.map((x) => (x === -Infinity ? 0 : Math.exp(x - mx))), z = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / z);
  });
  return { w, out: w.map((wi) => v[0].map((_, d) => wi.reduce((a, x, j) => a + x * v[j][d], 0))) };
}

test("maskedRows uniform: a row with no visible key spreads evenly over its finfo.min keys (not −∞ ones), as HF — fused and math, every backend", () => {
  manualSeed(31);
  const B = 1, H = 2, Tq = 3, Tk = 4, D = 5;
  const q = randn([B, H, Tq, D]), k = randn([B, H, Tk, D]), v = randn([B, H, Tk, D]);
  // row 0: live; row 1: every key finfo.min (uniform over 4); row 2: finfo.min on keys 0, 1 and −∞ on 2, 3 (GPT-2's overflow)
  const add = [[0, LOWEST, 0, -Infinity], [LOWEST, LOWEST, LOWEST, LOWEST], [LOWEST, LOWEST, -Infinity, -Infinity]];
  const mask = Tensor.fromArray(Float32Array.from(add.flat()), [1, 1, Tq, Tk]);
  for (const backend of BACKENDS) for (const impl of IMPLS) withBackend(backend, () => {
    const r = F.scaledDotProductAttention(q, k, v, { attnMask: mask, impl, returnWeights: "full", maskedRows: "uniform" });
    for (let h = 0; h < H; h++) {
      const slice = (t: Tensor) => (t.select(0, 0).select(0, h).toArray() as number[][]);
      const o = hfOracle(slice(q), slice(k), slice(v), add, 1 / Math.sqrt(D));
      const got = slice(r.out), w = slice(r.weights!);
      for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) assert.ok(Math.abs(w[i][j] - o.w[i][j]) < 1e-6, `${backend} ${impl} h${h} w[${i}][${j}] ${w[i][j]} vs ${o.w[i][j]}`);
      for (let i = 0; i < Tq; i++) for (let d = 0; d < D; d++) assert.ok(Math.abs(got[i][d] - o.out[i][d]) < 1e-5, `${backend} ${impl} h${h} out[${i}][${d}]`);
    }
    assert.deepEqual((r.weights!.select(0, 0).select(0, 0).toArray() as number[][])[2], [0.5, 0.5, 0, 0]);
  });
});

test("maskedRows uniform with key padding, causal and bool masks (GQA): uniform over every key; grads reach v only; zero mode unchanged", () => {
  manualSeed(32);
  const B = 2, H = 4, Hkv = 2, T = 3, D = 4;
  const q = randn([B, H, T, D]).requiresGrad_(), k = randn([B, Hkv, T, D]).requiresGrad_(), v = randn([B, Hkv, T, D]).requiresGrad_();
  const pad = Tensor.fromArray(Uint8Array.from([0, 0, 0, 1, 1, 0]), [B, T], "bool");      // batch 1: keys 0, 1 padded
  for (const backend of BACKENDS) for (const impl of IMPLS) withBackend(backend, () => {
    const opts = { keyPaddingMask: pad, causal: true, impl, returnWeights: "full" as const };
    const u = F.scaledDotProductAttention(q, k, v, { ...opts, maskedRows: "uniform" });
    const z = F.scaledDotProductAttention(q, k, v, opts);
    const w = u.weights!.toArray() as number[][][][];
    for (let h = 0; h < H; h++) {
      assert.deepEqual(w[1][h][0].map((x) => +x.toFixed(6)), [0.333333, 0.333333, 0.333333], `${backend} ${impl}: batch 1 row 0 (sees no key)`);
      assert.deepEqual(w[1][h][1].map((x) => +x.toFixed(6)), [0.333333, 0.333333, 0.333333]);
    }
    // the out of a dead row is the mean of its kv head's values; live rows equal the zero mode's
    const vm = v.mean(2).toArray() as number[][][], uo = u.out.toArray() as number[][][][], zo = z.out.toArray() as number[][][][];
    for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) assert.ok(Math.abs(uo[1][h][0][d] - vm[1][Math.floor(h / 2)][d]) < 1e-6);
    assert.deepEqual(uo[0], zo[0]);
    assert.deepEqual(uo[1].map((hh) => hh[2]), zo[1].map((hh) => hh[2]));
    // a bool attnMask that blocks the same keys gives the same rows
    const allow = Tensor.fromArray(Uint8Array.from({ length: B * T * T }, (_, n) => { const b = Math.floor(n / 9), i = Math.floor(n / 3) % 3, j = n % 3; return +(j <= i && !(b === 1 && j < 2)); }), [B, 1, T, T], "bool");
    const ub = F.scaledDotProductAttention(q, k, v, { attnMask: allow, impl, returnWeights: "full", maskedRows: "uniform" });
    assert.ok(ub.out.sub(u.out).abs().max().item() < 1e-6 && ub.weights!.sub(u.weights!).abs().max().item() < 1e-6, `${backend} ${impl}: bool mask`);
    // gradients: the dead rows send nothing into q (their scores are constant in HF) and 1/3 of dout into each v
    for (const t of [q, k, v]) t.grad = null;
    const g = Tensor.fromArray(Float32Array.from({ length: B * H * T * D }, (_, n) => ((n * 7) % 5) - 2), [B, H, T, D]);
    u.out.mul(g).sum().backward();
    const dq = q.grad!.toArray() as number[][][][];
    for (let h = 0; h < H; h++) for (const i of [0, 1]) assert.ok(dq[1][h][i].every((x) => x === 0), `${backend} ${impl}: dq of a dead row`);
    const gu = v.grad!.toArray() as number[][][][];
    for (const t of [q, k, v]) t.grad = null;
    F.scaledDotProductAttention(q, k, v, opts).out.mul(g).sum().backward();
    const gz = v.grad!.toArray() as number[][][][], gd = g.toArray() as number[][][][];
    for (let b = 0; b < B; b++) for (let c = 0; c < Hkv; c++) for (let j = 0; j < T; j++) for (let d = 0; d < D; d++) {
      // dv (uniform) − dv (zero) = Σ over the group's heads and the dead rows of dout / 3
      const want = b === 1 ? [2 * c, 2 * c + 1].reduce((a, h) => a + (gd[1][h][0][d] + gd[1][h][1][d]) / 3, 0) : 0;
      assert.ok(Math.abs(gu[b][c][j][d] - gz[b][c][j][d] - want) < 1e-5, `${backend} ${impl}: dv[${b}][${c}][${j}][${d}]`);
    }
  });
});

test("maskedRows uniform keeps only the rows that see no key: a left-padded T 512 prompt stores 3 rows of weights, not 512, with the same result", async () => {
  const { attnArgsFor, uniformRows } = await import("../src/ops/attention.js");
  const B = 2, H = 2, T = 512, D = 4;
  // batch 1 left-padded by 3 (keys 0..2): with causality its query rows 0..2 see no key
  const pad = Tensor.fromArray(Uint8Array.from({ length: B * T }, (_, n) => +(n >= T && n < T + 3)), [B, T], "bool");
  const u = uniformRows(attnArgsFor(B, H, H, T, T, D, D, { keyPaddingMask: pad, causal: true }), { keyPaddingMask: pad, causal: true });
  assert.ok(u, "uniform rows found");
  assert.deepEqual(u.rows, [0, 1, 2]);
  assert.deepEqual(u.shape, [B, 1, 3, T]);
  assert.equal(u.w.length, B * 3 * T);
  // as in HF, where causality and padding are both finfo.min, a dead row spreads evenly over all T keys; batch 0 has none
  for (let r = 0; r < 3; r++) assert.ok(u.w.subarray((3 + r) * T, (4 + r) * T).every((x) => x === 1 / T), `batch 1 row ${r}`);
  assert.ok(u.w.subarray(0, 3 * T).every((x) => x === 0));
  // and the output follows: a dead row is the mean of all T values; its weights row is 1/T everywhere
  manualSeed(33);
  const q = randn([B, H, T, D]), k = randn([B, H, T, D]), v = randn([B, H, T, D]);
  const r = F.scaledDotProductAttention(q, k, v, { keyPaddingMask: pad, causal: true, maskedRows: "uniform", returnWeights: "full" });
  const o = r.out.toArray() as number[][][][], vv = v.toArray() as number[][][][];
  for (let h = 0; h < H; h++) for (let i = 0; i < 3; i++) for (let d = 0; d < D; d++) {
    const want = vv[1][h].reduce((a, row) => a + row[d], 0) / T;
    assert.ok(Math.abs(o[1][h][i][d] - want) < 1e-5, `out[1][${h}][${i}][${d}] ${o[1][h][i][d]} vs ${want}`);
  }
  const w = r.weights!.toArray() as number[][][][];
  assert.ok(w[1][1][2].every((x) => Math.abs(x - 1 / T) < 1e-9) && w[1][1][3][0] === 0 && Math.abs(w[1][1][3][3] - 1) < 1e-6 && w[1][1][3][5] === 0, "row 3 sees only key 3");
});
