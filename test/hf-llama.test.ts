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
