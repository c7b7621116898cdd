// Mistral (MistralForCausalLM: Llama without biases + sliding-window attention) against Hugging Face's own code:
// test/fixtures/hf/mistral-* (scripts/hf-ref/make_mistral_cases.py, transformers 4.44.2; T and generation longer than
// the window). `npm run parity` checks logits, hidden states, attentions and cached greedy generation on every backend
// (test/hf-parity.test.ts); here: the window is what makes the match, the cache path slides it, config checks, save.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import "../src/node.js";
import { noGrad } from "../src/autograd.js";
import { loadSafetensors } from "../src/io/state-dict.js";
import { fromPretrainedDir, savePretrainedDir } from "../src/hf/node-pretrained.js";
import { modelFromConfig } from "../src/hf/registry.js";
import { MistralForCausalLM } from "../src/hf/mistral.js";
import type { Tensor } from "../src/tensor.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const fx = (n: string) => join(root, "test/fixtures/hf", n);
const ref = (n: string) => loadSafetensors(new Uint8Array(readFileSync(join(fx(n), "reference.safetensors")))).tensors;
const maxDiff = (a: Tensor, b: Tensor) => { const x = a.contiguous().dataSync(), y = b.contiguous().dataSync(); let m = 0; for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i])); return m; };

for (const name of ["mistral-sw4-gqa", "mistral-sw3-mqa"]) {
  test(`${name}: logits and attentions equal HF's with the window, not without it; no weight outside the band`, async () => {
    const { model } = await fromPretrainedDir(fx(name));
    assert.ok(model instanceof MistralForCausalLM);
    assert.equal(model.architecture, "MistralForCausalLM");
    const r = ref(name), W = (model as MistralForCausalLM).settings.slidingWindow!;
    const inputs = { inputIds: r.get("in.input_ids")!, attentionMask: r.get("in.attention_mask")! };
    const T = inputs.inputIds.shape[1];
    assert.ok(T > W, `T ${T} > window ${W}`);
    const out = noGrad(() => model.forward(inputs, { outputAttentions: true }));
    assert.ok(maxDiff(out.logits!, r.get("out.logits")!) < 1e-4);
    // the same weights as a Llama (no window) disagree with HF's Mistral: the window is what matches
    const cfg = JSON.parse(readFileSync(join(fx(name), "config.json"), "utf8"));
    const noWindow = modelFromConfig({ ...cfg, sliding_window: null }) as MistralForCausalLM;
    noWindow.loadStateDict(model.stateDict());
    noWindow.eval();
    assert.ok(maxDiff(noGrad(() => noWindow.forward(inputs).logits!), r.get("out.logits")!) > 1e-2, "without the window the logits move");
    // row 0 (no padding on sw4; padding rows average everything as HF's eager attention does): nothing beyond the band
    const row = inputs.attentionMask.contiguous().dataSync().slice(0, T).every((v) => v === 1) ? 0 : 1;
    for (const a of out.attentions!) {
      const d = a.contiguous().dataSync(), H = a.shape[1];
      for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
        const v = d[((row * H + h) * T + i) * T + j];
        if (j <= i - W || j > i) assert.equal(v, 0, `layer weight at q ${i} k ${j} outside the window`);
      }
    }
  });
}

test("Mistral: generate() with the KV cache past the window equals one uncached pass over the same tokens", async () => {
  const { model } = await fromPretrainedDir(fx("mistral-sw4-gqa"));
  const r = ref("mistral-sw4-gqa");
  const ids = r.get("in.input_ids")!, mask = r.get("in.attention_mask")!;
  const g = model.generate!({ inputIds: ids, attentionMask: mask }, { maxNewTokens: 8, eosTokenId: null, returnStepLogits: true });
  const seq = g.sequences, [B, S] = seq.shape, T = ids.shape[1];
  assert.equal(S, T + 8);
  assert.deepEqual((seq.narrow(1, 0, T + 5).toArray() as number[][]), r.get("gen.sequences")!.toArray(), "HF's 5 greedy tokens, then 3 more");
  // score all S tokens at once (positions cumsum(mask) − 1, as generate derives them): each step's logits agree
  const m = Array.from({ length: B }, (_, b) => [...(mask.toArray() as number[][])[b], ...Array(8).fill(1)]);
  const { Tensor } = await import("../src/tensor.js");
  const pos = m.map((row) => { let c = 0; return row.map((v) => { c += v; return Math.max(c - 1, 0); }); });
  const logits = noGrad(() => model.forward({ inputIds: seq, attentionMask: Tensor.fromArray(Int32Array.from(m.flat()), [B, S]), positionIds: Tensor.fromArray(Int32Array.from(pos.flat()), [B, S]) }).logits!);
  for (let s = 0; s < 8; s++) assert.ok(maxDiff(g.stepLogits![s].reshape([B, -1]), logits.narrow(1, T - 1 + s, 1).reshape([B, -1])) < 1e-4, `step ${s}`);
});

test("Mistral config: MistralConfig's defaults fill omitted keys; bad values name the key; saved folders reload as Mistral", async () => {
  const small = { model_type: "mistral", vocab_size: 32, hidden_size: 16, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 4 };
  const m = modelFromConfig({ ...small, num_key_value_heads: 2 }) as MistralForCausalLM;
  assert.equal(m.settings.slidingWindow, 4096, "MistralConfig's default sliding_window");
  assert.equal((modelFromConfig({ ...small, num_attention_heads: 8, hidden_size: 64 }) as MistralForCausalLM).settings.kvHeads, 8, "default num_key_value_heads 8");
  assert.equal((modelFromConfig({ ...small, num_key_value_heads: 2, sliding_window: null }) as MistralForCausalLM).settings.slidingWindow, null);
  assert.throws(() => modelFromConfig({ ...small, num_key_value_heads: 2, sliding_window: 0 }), /Mistral config: sliding_window must be a positive integer or null/);
  assert.throws(() => modelFromConfig({ ...small, num_key_value_heads: 3 }), /Mistral config: num_key_value_heads 3 must divide num_attention_heads 4/);
  assert.throws(() => modelFromConfig({ ...small, num_key_value_heads: 2, architectures: ["MistralForSequenceClassification"] }), /MistralForSequenceClassification.*not supported/);
  const dir = mkdtempSync(join(tmpdir(), "attnflow-mistral-"));
  try {
    const { model } = await fromPretrainedDir(fx("mistral-sw3-mqa"));
    await savePretrainedDir(model, dir);
    const back = await fromPretrainedDir(dir);
    assert.equal(back.model.architecture, "MistralForCausalLM");
    const r = ref("mistral-sw3-mqa"), x = { inputIds: r.get("in.input_ids")!, attentionMask: r.get("in.attention_mask")! };
    assert.equal(maxDiff(noGrad(() => back.model.forward(x).logits!), r.get("out.logits")!) < 1e-4, true);
    assert.equal(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).sliding_window, 3);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("Mistral: a padded prompt fed in chunks through forwardWithCache (queries after cached keys, past the window) equals HF's uncached logits", async () => {
  const { model } = await fromPretrainedDir(fx("mistral-sw4-gqa"));
  const r = ref("mistral-sw4-gqa"), ids = r.get("in.input_ids")!, mask = r.get("in.attention_mask")!, want = r.get("out.logits")!;
  const [B, T] = ids.shape;
  const m = model as MistralForCausalLM, cache = m.createCache(B, T);
  const parts: Tensor[] = [];
  for (const [a, b] of [[0, 3], [3, 7], [7, T]]) {
    parts.push(m.forwardWithCache({ inputIds: ids.narrow(1, a, b - a).contiguous(), attentionMask: mask.narrow(1, 0, b).contiguous() }, cache).logits!);
  }
  cache.dispose();
  const { cat } = await import("../src/ops/movement.js");
  // padding positions are compared nowhere: a padding query sees no key and averages all Tk keys (HF's eager rule),
  // and Tk differs between a chunk and the whole prompt; real positions never read a padding key
  const got = cat(parts, 1).contiguous().dataSync(), w = want.contiguous().dataSync(), md = mask.contiguous().dataSync(), V = want.shape[2];
  let worst = 0, real = 0;
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
    if (!md[b * T + t]) continue;
    real++;
    for (let c = 0; c < V; c++) worst = Math.max(worst, Math.abs(got[(b * T + t) * V + c] - w[(b * T + t) * V + c]));
  }
  assert.equal(real, 2 * T - 3);
  assert.ok(worst < 1e-4, `chunked logits vs HF at real positions: ${worst}`);
});
