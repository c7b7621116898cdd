// Fine-tuning an imported HF model: gradients reach every weight, agree with finite differences, and AdamW learns.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromPretrained } from "../src/hf/node-pretrained.js";
import { crossEntropy } from "../src/ops/loss.js";
import { AdamW } from "../src/optim/optimizers.js";
import { noGrad } from "../src/autograd.js";
import { captureAttention } from "../src/explain/capture.js";
import { Tensor } from "../src/tensor.js";
import { loadSafetensors } from "../src/io/state-dict.js";
import { readFileSync } from "node:fs";
import type { HFInputs, HFModel } from "../src/hf/types.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const fx = (name: string) => join(root, "test/fixtures/hf", name);
function inputs(name: string): HFInputs {
  const ref = loadSafetensors(new Uint8Array(readFileSync(join(fx(name), "reference.safetensors")))).tensors;
  return { inputIds: ref.get("in.input_ids"), attentionMask: ref.get("in.attention_mask"), tokenTypeIds: ref.get("in.token_type_ids") };
}
const labels = Tensor.fromArray(Int32Array.from([2, 0]), [2], "int32");
const loss = (m: HFModel, x: HFInputs) => crossEntropy(m.forward(x).logits!, labels);

test("BertForSequenceClassification: loss.backward gives finite-difference gradients on weights across the model", async () => {
  const { model } = await fromPretrained(fx("bert-seqcls"));   // eval mode: dropout off, so the loss is a function
  const x = inputs("bert-seqcls");
  model.zeroGrad();
  loss(model, x).backward();
  const named = Object.fromEntries(model.namedParameters());
  // one element per probed tensor: its largest gradient (so the comparison is never between two near-zeros)
  const probes = ["classifier.weight", "bert.pooler.dense.weight", "bert.encoder.layer.1.output.LayerNorm.weight",
    "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.attention.self.key.weight",
    "bert.encoder.layer.0.attention.self.value.bias", "bert.encoder.layer.0.intermediate.dense.weight",
    "bert.embeddings.position_embeddings.weight", "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.word_embeddings.weight",
  ].map((n): [string, number] => [n, named[n].grad!.abs().flatten().argmax().item()]);
  const h = 1e-2;
  for (const [name, i] of probes) {
    const p = named[name];
    assert.ok(p, name);
    const g = p.grad!.dataSync()[i];
    const f = (delta: number) => noGrad(() => { const d = p.storage.data; const old = d[p.offset + i]; d[p.offset + i] = old + delta; const l = loss(model, x).item(); d[p.offset + i] = old; return l; });
    const fd = (f(h) - f(-h)) / (2 * h);
    assert.ok(Math.abs(g) > 1e-3, `${name}[${i}]: gradient ${g} is too small to test`);
    assert.ok(Math.abs(fd - g) <= 1e-3 + 2e-2 * Math.abs(fd), `${name}[${i}]: backward ${g}, finite difference ${fd}`);
  }
  // every parameter gets a gradient (rows of unused tokens are zero, but the tensor has one)
  for (const [n, p] of model.namedParameters()) assert.ok(p.grad, `no gradient for ${n}`);
});

test("AdamW fine-tuning changes the weights and lowers the loss; the tied GPT-2 head trains its embedding", async () => {
  const { model } = await fromPretrained(fx("bert-seqcls"));
  model.train();
  const x = inputs("bert-seqcls");
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  const before = model.stateDict()["classifier.weight"].clone();
  const l0 = noGrad(() => { model.eval(); const l = loss(model, x).item(); model.train(); return l; });
  for (let s = 0; s < 15; s++) { opt.zeroGrad(); loss(model, x).backward(); opt.step(); }
  model.eval();
  const l1 = noGrad(() => loss(model, x).item());
  assert.ok(l1 < l0 * 0.5, `loss ${l0} → ${l1}`);
  assert.notDeepEqual(Array.from(model.stateDict()["classifier.weight"].dataSync()), Array.from(before.dataSync()));

  const gpt = (await fromPretrained(fx("gpt2"))).model;
  const ids = inputs("gpt2").inputIds!;
  const logits = gpt.forward({ inputIds: ids }).logits!;                                    // (B, T, V)
  const [B, T, V] = logits.shape;
  const lm = crossEntropy(logits.narrow(1, 0, T - 1).reshape([B * (T - 1), V]), ids.narrow(1, 1, T - 1).contiguous().reshape([B * (T - 1)]));
  lm.backward();
  const wte = Object.fromEntries(gpt.namedParameters())["transformer.wte.weight"];
  assert.ok(wte.grad && wte.grad.abs().sum().item() > 0, "the tied embedding gets the head's gradient");
  assert.ok(!Object.keys(gpt.stateDict()).includes("lm_head.weight"), "one tensor, listed once under HF's kept name");
});

test("explainers capture every layer's attention of an imported model, with gradients when asked", async () => {
  const { model } = await fromPretrained(fx("bert-seqcls"));
  const x = inputs("bert-seqcls");
  const { result, records } = captureAttention(model, () => model.forward(x, { outputAttentions: true }), { withGrad: true });
  assert.deepEqual(records.map((r) => r.name), ["bert.encoder.layer.0.attention.self", "bert.encoder.layer.1.attention.self"]);
  assert.deepEqual(records[0].weights.shape, [2, 4, 8, 8]);
  assert.deepEqual(Array.from(records[1].keyPaddingMask!.dataSync()).slice(8), [0, 0, 0, 0, 0, 1, 1, 1]);
  const d = records[1].weights.sub(result.attentions![1]).abs().max().item();
  assert.ok(d < 1e-6, `captured weights differ from outputAttentions by ${d}`);
  crossEntropy(result.logits!, labels).backward();
  assert.ok(records[0].weights.grad && records[0].weights.grad.abs().sum().item() > 0);
});
