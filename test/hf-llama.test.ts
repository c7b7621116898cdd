// Llama family against Hugging Face's own outputs (test/fixtures/hf/llama-*, made by scripts/hf-ref/make_llama_cases.py
// with unmodified transformers 4.44.2): logits, hidden states, attentions, greedy generation with the KV cache;
// gradients by finite differences; config errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/node.js";              // registers the Wasm and native backends, so every backend is checked
import { Tensor } from "../src/tensor.js";
import { parseSafetensors, toFloat32, toInt32, type StTensor } from "../src/io/safetensors.js";
import { noGrad } from "../src/autograd.js";
import * as F from "../src/functional.js";
import * as optim from "../src/optim/index.js";
import { getBackend, setBackend, availableBackends } from "../src/backend/registry.js";
import { captureAttention } from "../src/explain/capture.js";
import { LlamaForCausalLM, llamaFamily } from "../src/hf/llama.js";
import { HFImportError, type HFConfig } from "../src/hf/types.js";

// The committed cases, plus any Llama case under $ATTNFLOW_HF_REF_DIR (e.g. a fresh `make_refs.py OUTDIR llama`).
const roots = [join(process.cwd(), "test/fixtures/hf"), fileURLToPath(new URL("../../test/fixtures/hf", import.meta.url))].filter((p) => existsSync(p)).slice(0, 1);
if (process.env.ATTNFLOW_HF_REF_DIR) roots.push(process.env.ATTNFLOW_HF_REF_DIR);
const cases = roots.flatMap((r) => readdirSync(r).map((d) => join(r, d))).filter((dir) =>
  existsSync(join(dir, "reference.safetensors")) && existsSync(join(dir, "config.json")) &&
  JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).model_type === "llama");
test("the committed Llama fixtures are found", () => assert.ok(cases.length >= 4, `found ${cases.length} Llama cases in ${roots.join(", ")}`));

interface Case { config: HFConfig; weights: Map<string, StTensor>; ref: Map<string, StTensor> }
function load(dir: string): Case {
  return {
    config: JSON.parse(readFileSync(join(dir, "config.json"), "utf8")),
    weights: parseSafetensors(readFileSync(join(dir, "model.safetensors"))).tensors,
    ref: parseSafetensors(readFileSync(join(dir, "reference.safetensors"))).tensors,
  };
}
const f32 = (t: StTensor) => Tensor.fromArray(toFloat32(t), t.shape);
const i32 = (t: StTensor) => Tensor.fromArray(toInt32(t), t.shape, "int32");

function build(c: Case): LlamaForCausalLM {
  const m = llamaFamily.fromConfig(c.config) as LlamaForCausalLM;
  const sd = new Map([...c.weights].map(([k, v]) => [k, f32(v)]));
  m.loadStateDict(sd);           // strict: every HF name present, nothing extra (tied lm_head absent on both sides)
  return m.eval();
}

function close(name: string, got: Tensor, want: StTensor, tol = 1e-4): void {
  assert.deepEqual(got.shape, want.shape, `${name}: shape ${JSON.stringify(got.shape)} vs HF ${JSON.stringify(want.shape)}`);
  const g = got.contiguous().dataSync() as Float32Array, w = toFloat32(want);
  let worst = 0, at = 0;
  for (let i = 0; i < w.length; i++) { const d = Math.abs(g[i] - w[i]); if (!(d <= worst)) { worst = d; at = i; } }
  assert.ok(worst <= tol, `${name}: max |diff| ${worst} at ${at} (got ${g[at]}, HF ${w[at]})`);
}

for (const dir of cases) {
  const name = dir.split(/[\\/]/).pop()!;
  test(`Llama ${name}: forward matches HF (logits, hidden states, attentions) on every backend`, () => {
    const c = load(dir), m = build(c), saved = getBackend();
    try {
      for (const be of availableBackends()) {
        setBackend(be);
        const out = noGrad(() => m.forward({ inputIds: i32(c.ref.get("in.input_ids")!), attentionMask: i32(c.ref.get("in.attention_mask")!) },
          { outputAttentions: true, outputHiddenStates: true }));
        close(`${be} logits`, out.logits!, c.ref.get("out.logits")!);
        const L = c.config.num_hidden_layers as number;
        assert.equal(out.hiddenStates!.length, L + 1);
        assert.equal(out.attentions!.length, L);
        out.hiddenStates!.forEach((h, i) => close(`${be} hidden_states.${i}`, h, c.ref.get(`out.hidden_states.${i}`)!));
        out.attentions!.forEach((a, i) => close(`${be} attentions.${i}`, a, c.ref.get(`out.attentions.${i}`)!));
      }
    } finally { setBackend(saved); }
  });

  test(`Llama ${name}: greedy generation with the KV cache matches HF (tokens identical, step logits within 1e-4)`, () => {
    const c = load(dir), m = build(c);
    const r = m.generate({ inputIds: i32(c.ref.get("in.input_ids")!), attentionMask: i32(c.ref.get("in.attention_mask")!) },
      { maxNewTokens: 5, eosTokenId: null, returnStepLogits: true });
    const want = c.ref.get("gen.sequences")!;
    assert.deepEqual(r.sequences.shape, want.shape);
    assert.deepEqual([...(r.sequences.dataSync() as Int32Array)], [...toInt32(want)]);
    const steps = r.stepLogits!;                                        // 5 × (B, V) → (B, 5, V)
    const sl = c.ref.get("gen.step_logits")!, [B, S, V] = sl.shape, w = toFloat32(sl);
    assert.equal(steps.length, S);
    for (let s = 0; s < S; s++) {
      const g = steps[s].dataSync() as Float32Array;
      for (let b = 0; b < B; b++) for (let v = 0; v < V; v++) {
        const d = Math.abs(g[b * V + v] - w[(b * S + s) * V + v]);
        assert.ok(d <= 1e-4, `step ${s} row ${b} token ${v}: |diff| ${d}`);
      }
    }
  });
}

const committed = (n: string) => cases.find((d) => d.endsWith(n))!;

test("Llama gradients: backward equals central finite differences of the loss (tied head, GQA, padded rows)", () => {
  for (const n of ["llama-mqa-tied", "llama-gqa4-linear"]) {
    const c = load(committed(n)), m = build(c);
    const ids = i32(c.ref.get("in.input_ids")!), mask = i32(c.ref.get("in.attention_mask")!);
    const [B, T] = ids.shape, V = c.config.vocab_size as number;
    const targets = Tensor.fromArray(Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % V), [B * T], "int32");
    const loss = () => F.crossEntropy(m.forward({ inputIds: ids, attentionMask: mask }).logits!.reshape([B * T, V]), targets);
    m.zeroGrad();
    loss().backward();
    const params = new Map(m.namedParameters());
    const picks: [string, number][] = [["model.embed_tokens.weight", 5 * 32 + 3], ["model.layers.0.self_attn.q_proj.weight", 17],
      ["model.layers.0.self_attn.k_proj.weight", 9], ["model.layers.1.self_attn.v_proj.weight", 30], ["model.layers.0.mlp.gate_proj.weight", 100],
      ["model.layers.1.mlp.down_proj.weight", 7], ["model.layers.0.input_layernorm.weight", 4], ["model.norm.weight", 11]];
    if (!m.lmHead) picks.push(["model.embed_tokens.weight", ((c.ref.get("in.input_ids")!.shape[1] + 60) % V) * 32 + 1]);
    else picks.push(["lm_head.weight", 40]);
    for (const [name, idx] of picks) {
      const p = params.get(name)!, g = (p.grad!.dataSync() as Float32Array)[idx];
      // write through storage.data each time: every access bumps the version the native packed-weight cache keys on
      const set = (x: number) => { (p.storage.data as Float32Array)[idx] = x; };
      const h = 1e-2, orig = (p.dataSync() as Float32Array)[idx];
      set(orig + h); const up = noGrad(() => loss().item());
      set(orig - h); const down = noGrad(() => loss().item());
      set(orig);
      const fd = (up - down) / (2 * h);
      assert.ok(Math.abs(fd - g) <= 2e-3 + 2e-2 * Math.abs(fd), `${n} ${name}[${idx}]: backward ${g}, finite difference ${fd}`);
    }
  }
});

test("Llama attentions are captured by captureAttention under their HF module names, equal to outputAttentions", () => {
  const c = load(committed("llama-mha-bias")), m = build(c);
  const inputs = { inputIds: i32(c.ref.get("in.input_ids")!), attentionMask: i32(c.ref.get("in.attention_mask")!) };
  const { result, records } = captureAttention(m, () => noGrad(() => m.forward(inputs, { outputAttentions: true })));
  assert.deepEqual(records.map((r) => r.name), ["model.layers.0.self_attn", "model.layers.1.self_attn", "model.layers.2.self_attn"]);
  records.forEach((r, i) => close(`captured ${i}`, r.weights, c.ref.get(`out.attentions.${i}`)!));
  assert.equal(result.attentions!.length, 3);
});

test("Llama config errors name the key and the supported set", () => {
  const base = load(committed("llama-mqa-tied")).config;
  const bad = (patch: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => llamaFamily.fromConfig({ ...base, ...patch }), (e: Error) => e instanceof HFImportError && re.test(e.message), JSON.stringify(patch));
  bad({ rope_scaling: { rope_type: "dynamic", factor: 2 } }, /rope_scaling\.rope_type.*"dynamic".*supported: default, linear, llama3/);
  bad({ rope_scaling: { type: "yarn", factor: 2 } }, /rope_scaling\.rope_type.*"yarn"/);
  bad({ rope_scaling: { rope_type: "linear" } }, /rope_scaling\.factor must be a positive number/);
  bad({ hidden_act: "gelu" }, /hidden_act "gelu" is not supported \(supported: silu, swish\)/);
  bad({ num_key_value_heads: 3 }, /num_key_value_heads 3 must divide num_attention_heads 4/);
  bad({ hidden_size: 30 }, /hidden_size 30 must be divisible by num_attention_heads 4/);
  bad({ head_dim: 16 }, /head_dim 16 is not supported/);
  bad({ attention_bias: "yes" }, /attention_bias must be true or false/);
  bad({ vocab_size: 0 }, /vocab_size must be a positive integer/);
  bad({ rms_norm_eps: -1 }, /rms_norm_eps must be a positive number/);
  bad({ model_type: "mistral" }, /model_type must be "llama"/);
  assert.throws(() => llamaFamily.fromConfig(base, "LlamaForSequenceClassification"), /architecture "LlamaForSequenceClassification" is not supported \(supported: LlamaForCausalLM\)/);
  // accepted: biases, pretraining_tp, the "default" rope type
  const ok = llamaFamily.fromConfig({ ...base, attention_bias: true, mlp_bias: true, pretraining_tp: 2, rope_scaling: { rope_type: "default" } });
  assert.ok(ok.stateDict()["model.layers.0.self_attn.q_proj.bias"] && ok.stateDict()["model.layers.0.mlp.up_proj.bias"]);
  assert.deepEqual((ok as LlamaForCausalLM).tiedWeights(), ["lm_head.weight"]);
});

test("Llama inputs with the wrong shape or dtype are errors naming both shapes", () => {
  const c = load(committed("llama-mqa-tied")), m = build(c);
  const ids = i32(c.ref.get("in.input_ids")!);
  assert.throws(() => m.forward({ inputIds: ids, attentionMask: Tensor.fromArray(new Int32Array(3), [1, 3], "int32") }), /attentionMask \[1, 3\] does not match inputIds \[2, 8\]/);
  assert.throws(() => m.forward({ inputIds: ids.float() }), /inputIds must be int32/);
  assert.throws(() => m.forward({}), /inputIds is required/);
});

test("Llama fine-tunes: an SGD step on the loss lowers it and leaves no NaN (padded rows included)", () => {
  const c = load(committed("llama-gqa4-linear")), m = build(c).train();
  const ids = i32(c.ref.get("in.input_ids")!), mask = i32(c.ref.get("in.attention_mask")!);
  const [B, T] = ids.shape, V = c.config.vocab_size as number;
  const targets = Tensor.fromArray(Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % V), [B * T], "int32");
  const opt = new optim.SGD(m.parameters(), { lr: 0.05 });
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) {
    opt.zeroGrad();
    const l = F.crossEntropy(m.forward({ inputIds: ids, attentionMask: mask }).logits!.reshape([B * T, V]), targets);
    l.backward(); opt.step(); losses.push(l.item());
  }
  assert.ok(losses.every(Number.isFinite) && losses[2] < losses[0], `losses ${losses}`);
});

test("Llama generate: eosTokenId ends a row, which then continues with the pad token; maxNewTokens 0 returns the prompt", () => {
  const c = load(committed("llama-mha-bias")), m = build(c);
  const inputs = { inputIds: i32(c.ref.get("in.input_ids")!), attentionMask: i32(c.ref.get("in.attention_mask")!) };
  const free = m.generate(inputs, { maxNewTokens: 5, eosTokenId: null });
  const [B, L] = free.sequences.shape, T = L - 5, s = free.sequences.dataSync() as Int32Array;
  const eos = s[T + 1];                                     // row 0's second new token plays end-of-sequence
  const r = m.generate(inputs, { maxNewTokens: 5, eosTokenId: eos });
  const got = r.sequences.dataSync() as Int32Array, W = r.sequences.shape[1];
  for (let b = 0; b < B; b++) {
    const stop = Array.from({ length: 5 }, (_, i) => s[b * L + T + i]).indexOf(eos);
    for (let i = 0; i < W - T; i++) {
      const want = stop >= 0 && i > stop ? (c.config.pad_token_id as number | undefined) ?? eos : s[b * L + T + i];
      assert.equal(got[b * W + T + i], want, `row ${b} step ${i}`);
    }
  }
  const none = m.generate(inputs, { maxNewTokens: 0 });
  assert.deepEqual([...(none.sequences.dataSync() as Int32Array)], [...(inputs.inputIds.dataSync() as Int32Array)]);
  assert.throws(() => m.generate(inputs, { maxNewTokens: -1 }), /maxNewTokens must be an integer >= 0/);
});
