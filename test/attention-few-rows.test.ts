// The native fused attention's path for few query rows (Tq ≤ 4: decoding with a KV cache) against the reference
// backend: outputs, weights (recomputed from the forward's lse) and gradients, with GQA, causal, key padding, additive
// and bool masks, ALiBi, strided K/V views (a cache's narrow), fully masked rows, and head dims that are not a multiple
// of the SIMD width.
import { test } from "node:test";
import assert from "node:assert/strict";
import "../src/node.js";
import { Tensor } from "../src/tensor.js";
import { randn } from "../src/creation.js";
import { manualSeed } from "../src/random.js";
import { sdpa } from "../src/ops/attention.js";
import { availableBackends, getBackend, setBackend } from "../src/backend/registry.js";

function close(what: string, a: Tensor, b: Tensor, tol = 2e-5): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shapes`);
  const x = a.dataSync() as Float32Array, y = b.dataSync() as Float32Array;
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(y[i])) { assert.ok(Number.isNaN(x[i]), `${what}[${i}]: ${x[i]} vs NaN`); continue; }
    assert.ok(Math.abs(x[i] - y[i]) <= tol * Math.max(1, Math.abs(y[i])), `${what}[${i}]: ${x[i]} vs ${y[i]}`);
  }
}

const CASES = [
  { B: 1, H: 12, Hkv: 4, Tq: 1, Tk: 37, D: 64, opts: {} },
  { B: 2, H: 6, Hkv: 2, Tq: 3, Tk: 20, D: 20, opts: { causal: true } },
  { B: 2, H: 4, Hkv: 4, Tq: 4, Tk: 33, D: 16, opts: { pad: true, alibi: true } },
  { B: 2, H: 4, Hkv: 1, Tq: 2, Tk: 17, D: 24, opts: { mask: "float" } },
  { B: 2, H: 2, Hkv: 2, Tq: 1, Tk: 9, D: 8, opts: { mask: "bool", allMaskedRow: true } },
  { B: 1, H: 3, Hkv: 3, Tq: 1, Tk: 1, D: 5, opts: {} },
];

test("few-row fused attention (Tq ≤ 4) equals the reference backend: out, weights, gradients", { skip: !availableBackends().includes("native") }, () => {
  const saved = getBackend();
  manualSeed(3);
  try {
    for (const c of CASES) {
      const { B, H, Hkv, Tq, Tk, D } = c, o = c.opts as Record<string, unknown>;
      const q = randn([B, H, Tq, D]);
      const kBuf = randn([B, Hkv, Tk + 5, D]), vBuf = randn([B, Hkv, Tk + 5, D]);           // cache-like buffers
      const pad = o.pad ? Tensor.fromArray(Uint8Array.from({ length: B * Tk }, (_, i) => (i % 7 === 3 ? 1 : 0)), [B, Tk], "bool") : null;
      let mask: Tensor | null = null;
      if (o.mask === "float") mask = randn([B, 1, Tq, Tk]);
      if (o.mask === "bool") mask = Tensor.fromArray(Uint8Array.from({ length: B * Tq * Tk }, (_, i) => (o.allMaskedRow && i < Tk ? 0 : (i * 5) % 3 ? 1 : 0)), [B, 1, Tq, Tk], "bool");
      const slopes = o.alibi ? Float32Array.from({ length: H }, (_, h) => 0.5 / (h + 1)) : null;
      const run = (be: string) => {
        setBackend(be);
        const qq = q.clone().requiresGrad_(), kk = kBuf.clone().requiresGrad_(), vv = vBuf.clone().requiresGrad_();
        const k = kk.narrow(2, 0, Tk), v = vv.narrow(2, 0, Tk);
        const r = sdpa(qq, k, v, { causal: !!o.causal, keyPaddingMask: pad, attnMask: mask, alibiSlopes: slopes, alibiOffset: o.alibi ? Tk - Tq : 0,
          returnWeights: "full", impl: "fused" });
        r.out.mul(Tensor.fromArray(Float32Array.from({ length: r.out.numel() }, (_, i) => Math.sin(i)), r.out.shape)).sum().backward();
        return { out: r.out, w: r.weights!, dq: qq.grad!, dk: kk.grad!, dv: vv.grad! };
      };
      const n = run("native"), ref = run("reference");
      const tag = `B ${B} H ${H}/${Hkv} Tq ${Tq} Tk ${Tk} D ${D} ${JSON.stringify(o)}`;
      close(`${tag} out`, n.out, ref.out);
      close(`${tag} weights`, n.w, ref.w);
      close(`${tag} dq`, n.dq, ref.dq, 1e-4);
      close(`${tag} dk`, n.dk, ref.dk, 1e-4);
      close(`${tag} dv`, n.dv, ref.dv, 1e-4);
    }
  } finally { setBackend(saved); }
});
