// LlamaForCausalLM.forwardWithCache (HF's forward with past_key_values, step by step) against HF's own greedy step
// logits (test/fixtures/hf/llama-*, transformers 4.44.2), and nn.init.withoutInit (what fromPretrained builds under).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import "../src/node.js";
import { Tensor } from "../src/tensor.js";
import { parseSafetensors, toFloat32, toInt32, type StTensor } from "../src/io/safetensors.js";
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import { fromPretrained } from "../src/hf/pretrained.js";
import type { LlamaForCausalLM } from "../src/hf/llama.js";
import { Embedding, Linear } from "../src/nn/layers.js";
import { withoutInit } from "../src/nn/init.js";
import { randn } from "../src/creation.js";
import { manualSeed } from "../src/random.js";
import { noGrad } from "../src/autograd.js";
import * as F from "../src/functional.js";
import { applyRotary, RotaryEmbedding } from "../src/nn/rotary.js";

const FIX = join(process.cwd(), "test/fixtures/hf");

function ref(dir: string): Map<string, StTensor> {
  return parseSafetensors(new Uint8Array(readFileSync(join(dir, "reference.safetensors")))).tensors;
}

/** Columns [a, b) of a (B, n) int tensor as an int32 (B, b − a) tensor. */
function cols(t: StTensor, a: number, b: number): Tensor {
  const [B, n] = t.shape, d = toInt32(t), out = new Int32Array(B * (b - a));
  for (let r = 0; r < B; r++) out.set(d.subarray(r * n + a, r * n + b), r * (b - a));
  return Tensor.fromArray(out, [B, b - a]);
}

for (const name of ["llama-gqa4-linear", "llama-mqa-tied"]) {
  test(`${name}: prefill + one-token forwardWithCache steps give HF's greedy step logits (within 1e-4), left padding included`, async () => {
    const dir = join(FIX, name), r = ref(dir);
    const model = (await fromPretrainedDir(dir, { tokenizer: false })).model as LlamaForCausalLM;
    const ids = r.get("in.input_ids")!, mask = r.get("in.attention_mask")!, pos = r.get("gen.position_ids")!, seq = r.get("gen.sequences")!;
    const sl = r.get("gen.step_logits")!, [B, S, V] = sl.shape, want = toFloat32(sl), T = ids.shape[1];
    const cache = model.createCache(B, T + S);
    const maskRows = Array.from({ length: B }, (_, b) => Array.from(toInt32(mask).subarray(b * T, (b + 1) * T)));
    for (let s = 0; s < S; s++) {
      const input = s === 0 ? cols(ids, 0, T) : cols(seq, T + s - 1, T + s);
      if (s > 0) maskRows.forEach((m) => m.push(1));
      const m = Tensor.fromArray(Int32Array.from(maskRows.flat()), [B, maskRows[0].length]);
      const p = s === 0 ? cols(pos, 0, T) : cols(pos, T + s - 1, T + s);
      const out = model.forwardWithCache({ inputIds: input, attentionMask: m, positionIds: p }, cache, { lastOnly: true });
      assert.deepEqual(out.logits!.shape, [B, 1, V]);
      assert.equal(cache.length, T + s);
      const got = out.logits!.dataSync() as Float32Array;
      for (let b = 0; b < B; b++) for (let v = 0; v < V; v++) {
        const d = Math.abs(got[b * V + v] - want[(b * S + s) * V + v]);
        assert.ok(d <= 1e-4, `step ${s} row ${b} token ${v}: |diff| ${d}`);
      }
    }
    cache.dispose();
  });
}

test("forwardWithCache: positions default to cache.length.. (same logits as one uncached forward); bad shapes name both", async () => {
  const model = (await fromPretrainedDir(join(FIX, "llama-gqa4-linear"), { tokenizer: false })).model as LlamaForCausalLM;
  const V = model.settings.vocabSize, T = 7;
  const ids = Int32Array.from({ length: T }, (_, i) => (i * 11 + 3) % V);
  const full = model.forward({ inputIds: Tensor.fromArray(ids, [1, T]) }).logits!.dataSync() as Float32Array;   // (1, T, V)
  const cache = model.createCache(1, T);
  const a = model.forwardWithCache({ inputIds: Tensor.fromArray(ids.slice(0, 4), [1, 4]) }, cache).logits!.dataSync() as Float32Array;
  const b = model.forwardWithCache({ inputIds: Tensor.fromArray(ids.slice(4), [1, 3]) }, cache).logits!.dataSync() as Float32Array;
  const both = [...a, ...b];
  assert.equal(both.length, full.length);
  for (let i = 0; i < full.length; i++) assert.ok(Math.abs(both[i] - full[i]) <= 1e-5, `logit ${i}: ${both[i]} vs ${full[i]}`);
  assert.throws(() => model.forwardWithCache({ inputIds: Tensor.fromArray(Int32Array.of(1), [1, 1]), attentionMask: Tensor.fromArray(Int32Array.of(1), [1, 1]) }, cache),
    /attentionMask \[1, 1\] must be \(1, 8\).*inputIds \[1, 1\]/);
  assert.throws(() => model.forwardWithCache({ inputIds: Tensor.fromArray(Int32Array.of(1, 2), [2, 1]) }, cache), /cache holds 1 sequences, inputIds \[2, 1\] has 2/);
  assert.throws(() => model.forwardWithCache({ inputIds: Tensor.fromArray(Int32Array.of(1), [1, 1]) }, cache), /exceed maxLength 7/);
  cache.dispose();
});

test("nn.init.withoutInit: layers keep zeros and draw nothing from the generator; outside it they initialise as before", () => {
  manualSeed(5);
  const ref1 = new Linear(4, 3), refE = new Embedding(5, 2), after = randn([3]).dataSync();
  manualSeed(5);
  const [l, e] = withoutInit(() => [new Linear(4, 3), new Embedding(5, 2)]);
  assert.ok([...l.weight.dataSync(), ...l.bias!.dataSync(), ...e.weight.dataSync()].every((x) => x === 0));
  // the generator was not advanced: the next draws are those a fresh seed gives first
  const first = new Linear(4, 3);
  assert.deepEqual([...first.weight.dataSync()], [...ref1.weight.dataSync()]);
  assert.deepEqual([...new Embedding(5, 2).weight.dataSync()], [...refE.weight.dataSync()]);
  assert.deepEqual([...randn([3]).dataSync()], [...after]);
});

test("inference paths of applyRotary and rmsNorm (no gradient needed) equal their differentiable compositions", () => {
  manualSeed(11);
  for (const [B, H, T, D, cb] of [[2, 3, 5, 8, 2], [1, 4, 1, 64, 1], [3, 2, 4, 6, 1]]) {
    const x = randn([B, H, T, D]), rope = new RotaryEmbedding(D, { base: 500 });
    const pos = Tensor.fromArray(Int32Array.from({ length: cb * T }, (_, i) => (i * 3) % 17), [cb, T]);
    const { cos, sin } = rope.cosSin(pos);
    const fast = noGrad(() => applyRotary(x, cos.unsqueeze(1), sin.unsqueeze(1))).dataSync();
    const slow = applyRotary(x.clone().requiresGrad_(), cos.unsqueeze(1), sin.unsqueeze(1)).dataSync();   // the op graph
    assert.deepEqual([...fast], [...slow], `rotary (${B}, ${H}, ${T}, ${D}), cos batch ${cb}: bit-identical`);
    const xt = x.transpose(1, 2);                                                                  // a strided view
    const w = randn([D]);
    const a = noGrad(() => F.rmsNorm(xt, [D], w, 1e-6)).dataSync(), b = F.rmsNorm(xt.clone().requiresGrad_(), [D], w, 1e-6).dataSync();
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 2e-6 * Math.max(1, Math.abs(b[i])), `rmsNorm ${i}: ${a[i]} vs ${b[i]}`);
  }
});

test("a folder loads float32 weights straight into the parameters (readInto): the same values as through byte ranges", async () => {
  for (const name of ["llama-gqa4-linear", "bert"]) {
    const dir = join(FIX, name);
    const direct = (await fromPretrainedDir(dir, { tokenizer: false })).model;
    const files = { "config.json": new Uint8Array(readFileSync(join(dir, "config.json"))), "model.safetensors": new Uint8Array(readFileSync(join(dir, "model.safetensors"))) };
    const viaRanges = (await fromPretrained(files, { tokenizer: false })).model;
    const a = [...direct.namedParameters()], b = new Map(viaRanges.namedParameters());
    assert.ok(a.length > 0);
    for (const [n, p] of a) assert.deepEqual([...p.dataSync()], [...b.get(n)!.dataSync()], `${name}: ${n}`);
  }
});
