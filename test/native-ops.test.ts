// The library's fast paths on the native backend against the reference backend (the oracle), forward values and
// gradients: broadcast elementwise ops and sums, linear with fused bias/activation (also on sequence-first and
// non-dense inputs), multi-head attention reading its heads in place (batchFirst true/false, self/cross, kdim/vdim,
// masks, causal, weights, dropout), attentionHeads with GQA, sdpa on permuted views, and the fused AdamW step.
// Skips when the native backend is not available.
import { test } from "node:test";
import assert from "node:assert/strict";
import { availableBackends, getBackend, manualSeed, nn, optim, F, randn, setBackend, tensor, Tensor } from "../src/node.js";
import { attentionHeads } from "../src/ops/attention-heads.js";

const skip = availableBackends().includes("native") ? false : "native backend not available";

/** Run fn on the native and on the reference backend (same seed), returning both results. */
function both<T>(fn: () => T, seed = 1): { native: T; ref: T } {
  const prev = getBackend();
  try {
    setBackend("native"); manualSeed(seed); const native = fn();
    setBackend("reference"); manualSeed(seed); const ref = fn();
    return { native, ref };
  } finally { setBackend(prev); }
}

function close(what: string, a: Tensor | null | undefined, b: Tensor | null | undefined, rtol = 2e-5): void {
  assert.ok(a && b, `${what}: missing`);
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  const x = a.toFloat32Array(), y = b.toFloat32Array();
  let scale = 1e-6;
  for (let i = 0; i < y.length; i++) if (Number.isFinite(y[i])) scale = Math.max(scale, Math.abs(y[i]));
  for (let i = 0; i < y.length; i++) {
    if (Number.isNaN(y[i])) { assert.ok(Number.isNaN(x[i]), `${what}[${i}]: ${x[i]} vs NaN`); continue; }
    if (!(Math.abs(x[i] - y[i]) <= rtol * scale)) assert.fail(`${what}[${i}]: native ${x[i]} vs reference ${y[i]} (scale ${scale})`);
  }
}

const leaf = (shape: number[], s = 1) => randn(shape).mul(s).requiresGrad_();

test("elementwise: broadcast modes, comparisons, unary ops and sums agree with the reference (values and grads)", { skip }, () => {
  const r = both(() => {
    const a = leaf([64, 96]), row = leaf([96]), col = leaf([64, 1]), s = leaf([]);
    const full = leaf([64, 96]), d = randn([64, 96]).abs().add(0.5);
    const outs = [a.add(row), a.sub(col), row.mul(a), s.div(d), a.maximum(full), col.minimum(a), a.mul(3), a.div(d),
      a.exp(), a.tanh(), a.sigmoid(), a.relu(), F.gelu(a), F.gelu(a, "tanh"), a.neg(), a.abs(), a.square(), d.sqrt(), d.rsqrt(),
      a.transpose(0, 1).add(col.transpose(0, 1)), a.pow(2)];
    const cmps = [a.gt(row), a.le(full), a.eq(a), a.ne(col)].map((t) => t.float());
    const sums = [a.sum(0), a.sum(1), a.mean(), a.reshape([8, 8, 96]).sum(1)];
    const loss = [...outs, ...sums].reduce((acc, t, i) => acc.add(t.mul(randn(t.shape)).sum().mul(1 / (i + 1))), tensor(0));
    loss.backward();
    return { outs, cmps, sums, grads: [a.grad, row.grad, col.grad, s.grad, full.grad] };
  });
  r.native.outs.forEach((t, i) => close(`out ${i}`, t, r.ref.outs[i], 5e-6));
  r.native.cmps.forEach((t, i) => close(`cmp ${i}`, t, r.ref.cmps[i], 0));
  r.native.sums.forEach((t, i) => close(`sum ${i}`, t, r.ref.sums[i], 1e-6));
  r.native.grads.forEach((t, i) => close(`grad ${i}`, t, r.ref.grads[i], 1e-5));
});

test("linear: fused bias + relu/gelu/geluTanh, sequence-first and non-dense inputs, values and gradients", { skip }, () => {
  for (const act of [null, "relu", "gelu", "geluTanh"] as const) {
    for (const layout of ["contiguous", "seq-first", "narrow"] as const) {
      for (const withBias of [true, false]) {
        const r = both(() => {
          const base = leaf(layout === "narrow" ? [3, 50, 47] : layout === "seq-first" ? [50, 3, 40] : [3, 50, 40]);
          const x = layout === "narrow" ? base.narrow(2, 5, 40) : layout === "seq-first" ? base.transpose(0, 1) : base;
          const w = leaf([64, 40], 0.3), b = withBias ? leaf([64]) : null;
          const y = F.linear(x, w, b, act);
          const g = randn(y.shape);
          y.mul(g).sum().backward();
          return { y, seqFirstKept: layout !== "seq-first" || y.transpose(0, 1).isContiguous(), grads: [base.grad, w.grad, b?.grad ?? null] };
        });
        const what = `linear act=${act} ${layout} bias=${withBias}`;
        assert.ok(r.native.seqFirstKept, `${what}: the output keeps the input's sequence-first storage`);
        close(`${what} y`, r.native.y, r.ref.y, 1e-5);
        r.native.grads.forEach((t, i) => { if (t || r.ref.grads[i]) close(`${what} grad ${i}`, t, r.ref.grads[i], 1e-5); });
      }
    }
  }
  // the unfused composition is the definition
  const x = randn([7, 40]), w = randn([64, 40]), b = randn([64]);
  close("gelu(linear) = linear(gelu)", F.linear(x, w, b, "gelu"), F.gelu(F.linear(x, w, b)), 1e-6);
  assert.throws(() => F.linear(x, w, b, "tanh" as never), /activation must be "relu", "gelu" or "geluTanh"/);
});

interface MhaCase { batchFirst: boolean; cross: boolean; kvdim: boolean; pad: boolean; mask: boolean; causal: boolean; weights: "mean" | "full" | false; dropout: number }

test("MultiheadAttention: heads read in place match the reference (values, weights, input and parameter grads)", { skip }, () => {
  const cases: MhaCase[] = [
    { batchFirst: true, cross: false, kvdim: false, pad: false, mask: false, causal: false, weights: false, dropout: 0 },
    { batchFirst: false, cross: false, kvdim: false, pad: true, mask: false, causal: false, weights: "mean", dropout: 0 },
    { batchFirst: false, cross: true, kvdim: false, pad: true, mask: true, causal: false, weights: "full", dropout: 0 },
    { batchFirst: true, cross: true, kvdim: true, pad: false, mask: false, causal: false, weights: "mean", dropout: 0 },
    { batchFirst: true, cross: false, kvdim: false, pad: false, mask: false, causal: true, weights: false, dropout: 0.2 },
    { batchFirst: false, cross: false, kvdim: false, pad: false, mask: true, causal: false, weights: "full", dropout: 0.1 },
  ];
  const E = 32, H = 4, B = 3, Tq = 20, Tk = 13;
  for (const c of cases) {
    const r = both(() => {
      const m = new nn.MultiheadAttention(E, H, { batchFirst: c.batchFirst, dropout: c.dropout, ...(c.kvdim ? { kdim: 24, vdim: 40 } : {}) });
      const T2 = c.cross ? Tk : Tq;
      const shape = (T: number, F: number) => (c.batchFirst ? [B, T, F] : [T, B, F]);
      const q = leaf(shape(Tq, E)), k = c.cross ? leaf(shape(T2, c.kvdim ? 24 : E)) : q, v = c.cross ? leaf(shape(T2, c.kvdim ? 40 : E)) : q;
      const pad = c.pad ? tensor(Array.from({ length: B }, (_, b) => Array.from({ length: T2 }, (_, j) => j >= T2 - b))) : null;
      const mask = c.mask ? randn([Tq, T2]) : null;
      const [y, w] = m.forward(q, k, v, { keyPaddingMask: pad, attnMask: mask, isCausal: c.causal, needWeights: !!c.weights,
        averageAttnWeights: c.weights === "mean" });
      y.mul(randn(y.shape)).sum().backward();
      return { y, w, grads: [q.grad, c.cross ? k.grad : null, c.cross ? v.grad : null, ...m.parameters().map((p) => p.grad)] };
    });
    const what = `mha ${JSON.stringify(c)}`;
    close(`${what} y`, r.native.y, r.ref.y, 2e-5);
    if (c.weights) close(`${what} weights`, r.native.w, r.ref.w, 2e-5);
    else assert.equal(r.native.w, null);
    r.native.grads.forEach((t, i) => { if (t || r.ref.grads[i]) close(`${what} grad ${i}`, t, r.ref.grads[i], 5e-5); });
  }
});

test("attentionHeads: packed qkv with GQA, sequence-first storage, separate narrow views; sdpa on permuted views", { skip }, () => {
  const B = 2, T = 19, H = 4, Hkv = 2, D = 8;
  const r = both(() => {
    const qkv = leaf([T, B, (H + 2 * Hkv) * D]);
    const a = attentionHeads({ qkv: qkv.transpose(0, 1) }, { heads: H, kvHeads: Hkv, causal: true, returnWeights: "full" });
    const wide = leaf([B, T, 3 * H * D + 5]);
    const [q, k, v] = [0, 1, 2].map((i) => wide.narrow(2, 1 + i * H * D, H * D));
    const b = attentionHeads({ q, k, v }, { heads: H, returnWeights: "mean" });
    const base = leaf([B, T, H, D]);
    const perm = base.permute([0, 2, 1, 3]);                                   // (B, H, T, D) view, not contiguous
    const c = F.scaledDotProductAttention(perm, perm, perm, { causal: true });
    const loss = a.out.mul(randn(a.out.shape)).sum().add(b.out.mul(randn(b.out.shape)).sum()).add(c.mul(randn(c.shape)).sum());
    loss.backward();
    return { outs: [a.out, a.weights, b.out, b.weights, c], grads: [qkv.grad, wide.grad, base.grad], seqFirst: a.out.transpose(0, 1).isContiguous() };
  });
  assert.ok(r.native.seqFirst, "output keeps the sequence-first storage of its input");
  r.native.outs.forEach((t, i) => close(`out ${i}`, t, r.ref.outs[i], 2e-5));
  r.native.grads.forEach((t, i) => close(`grad ${i}`, t, r.ref.grads[i], 5e-5));
  assert.throws(() => attentionHeads({ qkv: randn([2, 3, 10]) }, { heads: 4, kvHeads: 2 }), /qkv must be \(B, T, \(H \+ 2·Hkv\)·D\)/);
  assert.throws(() => attentionHeads({ qkv: randn([2, 3, 16]) }, { heads: 3, kvHeads: 2 }), /heads \(3\) must be a positive multiple of kvHeads \(2\)/);
});

test("AdamW: the fused native step matches the reference loop", { skip }, () => {
  const r = both(() => {
    const big = leaf([80, 70]), small = leaf([30]);
    const opt = new optim.AdamW([big, small], { lr: 0.01, weightDecay: 0.05 });
    for (let s = 0; s < 3; s++) {
      opt.zeroGrad();
      big.square().sum().add(small.mul(big.sum()).sum()).backward();
      opt.step();
    }
    return [big, small];
  });
  r.native.forEach((t, i) => close(`param ${i}`, t, r.ref[i], 1e-5));
});
