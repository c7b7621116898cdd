import { test } from "node:test";
import assert from "node:assert/strict";
import { nn, optim, F, randn, zeros, tensor, manualSeed, saveModule, loadModule, captureAttention, noGrad } from "../src/index.js";
import { trainReversal } from "../examples/reverse-sequences.js";

test("state dict names are PyTorch's", () => {
  const enc = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }), 2, new nn.LayerNorm(8));
  const keys = Object.keys(enc.stateDict());
  assert.deepEqual(keys.slice(0, 12), [
    "layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_bias", "layers.0.self_attn.out_proj.weight",
    "layers.0.self_attn.out_proj.bias", "layers.0.linear1.weight", "layers.0.linear1.bias", "layers.0.linear2.weight",
    "layers.0.linear2.bias", "layers.0.norm1.weight", "layers.0.norm1.bias", "layers.0.norm2.weight", "layers.0.norm2.bias",
  ]);
  assert.ok(keys.includes("norm.weight"));
  const sa = new nn.SelfAttention(4);
  assert.deepEqual(Object.keys(sa.stateDict()), ["query_linear.weight", "query_linear.bias", "key_linear.weight", "key_linear.bias", "value_linear.weight", "value_linear.bias"]);
  const dec = new nn.TransformerDecoderLayer(8, 2);
  assert.ok(Object.keys(dec.stateDict()).includes("multihead_attn.in_proj_weight"));
});

test("loadStateDict reports missing/unexpected keys and shape mismatches", () => {
  const lin = new nn.Linear(3, 2);
  assert.throws(() => lin.loadStateDict({ weight: zeros([2, 3]) }), /missing keys: bias/);
  assert.throws(() => lin.loadStateDict({ weight: zeros([2, 3]), bias: zeros([2]), extra: zeros([1]) }), /unexpected keys: extra/);
  assert.throws(() => lin.loadStateDict({ weight: zeros([3, 2]), bias: zeros([2]) }), /"weight" has shape \[3, 2\] in the state dict but \[2, 3\] in the model/);
});

test("safetensors round trip of a module", () => {
  manualSeed(2);
  const a = new nn.MultiheadAttention(8, 2, { batchFirst: true }), b = new nn.MultiheadAttention(8, 2, { batchFirst: true });
  loadModule(b, saveModule(a, { metadata: { note: "x" } }));
  const x = randn([1, 3, 8]);
  assert.deepEqual(noGrad(() => b.forward(x, x, x)[0].dataSync()), noGrad(() => a.forward(x, x, x)[0].dataSync()));
});

test("MultiheadAttention: batchFirst=false (PyTorch default) and masks", () => {
  manualSeed(3);
  const m = new nn.MultiheadAttention(8, 2);
  const x = randn([5, 2, 8]);                            // (T, B, E)
  const [y, w] = m.forward(x, x, x, { keyPaddingMask: tensor([[false, false, false, true, true], [false, false, false, false, false]]) });
  assert.deepEqual(y.shape, [5, 2, 8]);
  assert.deepEqual(w!.shape, [2, 5, 5]);
  const wd = w!.dataSync();
  for (let i = 0; i < 5; i++) { assert.equal(wd[i * 5 + 3], 0); assert.equal(wd[i * 5 + 4], 0); }
  assert.throws(() => m.forward(x, x, x, { attnMask: zeros([4, 4]) }), /attnMask must be \(5, 5\)/);
});

test("captureAttention records every layer without changing the model", () => {
  manualSeed(4);
  const enc = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true, dropout: 0 }), 3);
  const x = randn([2, 4, 8]);
  const plain = noGrad(() => enc.forward(x)).dataSync();
  const { result, records } = captureAttention(enc, () => noGrad(() => enc.forward(x)));
  assert.deepEqual(result.dataSync(), plain);
  assert.deepEqual(records.map((r) => r.name), ["layers.0.self_attn", "layers.1.self_attn", "layers.2.self_attn"]);
  assert.deepEqual(records[0].weights.shape, [2, 2, 4, 4]);
  const mean = captureAttention(enc, () => noGrad(() => enc.forward(x)), { mode: "mean" }).records;
  assert.deepEqual(mean[0].weights.shape, [2, 4, 4]);
  const full = records[0].weights.mean(1).dataSync(), m0 = mean[0].weights.dataSync();
  for (let i = 0; i < m0.length; i++) assert.ok(Math.abs(full[i] - m0[i]) < 1e-6);
  // withGrad: the captured weights receive gradients
  const g = captureAttention(enc, () => enc.forward(x), { withGrad: true });
  g.result.sum().backward();
  assert.ok(g.records[1].weights.grad, "captured weights have .grad");
});

test("a 2-layer encoder learns to reverse sequences", () => {
  const r = trainReversal({ steps: 300, batch: 16, cfg: { seqLen: 5, vocab: 6, dModel: 24 } });
  const first = r.losses.slice(0, 5).reduce((a, b) => a + b) / 5, last = r.losses.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(last < 0.25 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(r.accuracy > 0.9, `held-out accuracy ${r.accuracy}`);
});

test("optimizers: state dict round trip continues identically", () => {
  manualSeed(5);
  const make = () => { manualSeed(5); const l = new nn.Linear(4, 3); return { l, o: new optim.Adam(l.parameters(), { lr: 0.01 }) }; };
  const stepOnce = (l: nn.Linear, o: optim.Adam, seed: number) => { manualSeed(seed); const x = randn([2, 4]); o.zeroGrad(); F.mseLoss(l.forward(x), zeros([2, 3])).backward(); o.step(); };
  const a = make(), b = make();
  stepOnce(a.l, a.o, 10); stepOnce(b.l, b.o, 10);
  const c = make();
  c.l.loadStateDict(b.l.stateDict()); c.o.loadStateDict(b.o.stateDict());
  stepOnce(a.l, a.o, 11); stepOnce(c.l, c.o, 11);
  assert.deepEqual(c.l.weight.dataSync(), a.l.weight.dataSync());
});
