// The encoder–decoders (Marian, BART, T5) against Hugging Face's own outputs. Every folder under test/fixtures/hf whose
// config.json names one of these model types was written by transformers 4.44.2 (scripts/hf-ref/make_seq2seq_refs.py):
// the model is rebuilt from config.json + model.safetensors and compared with reference.safetensors — logits, encoder
// and decoder hidden states, encoder/decoder/cross attentions within 1e-4, greedy tokens identical, step logits within
// 1e-4. Also: cached decoding = a full recompute, finite-difference gradients, and config errors that name the key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor } from "../src/tensor.js";
import { availableBackends, getBackend, setBackend } from "../src/node.js";
import { noGrad } from "../src/autograd.js";
import { loadSafetensors } from "../src/io/state-dict.js";
import { captureAttention } from "../src/explain/capture.js";
import { HFImportError, type HFConfig, type HFFamily, type HFModel, type HFOutputs } from "../src/hf/types.js";
import { marianFamily, marianSinusoidalTable } from "../src/hf/marian.js";
import { bartFamily } from "../src/hf/bart.js";
import { t5Family, t5RelativePositionBucket } from "../src/hf/t5.js";

const FAMILIES: HFFamily[] = [marianFamily, bartFamily, t5Family];
const familyOf = (t: string) => FAMILIES.find((f) => f.modelTypes.includes(t));

function fixturesDir(): string {
  const c = [join(process.cwd(), "test/fixtures/hf"), fileURLToPath(new URL("../../test/fixtures/hf", import.meta.url))];
  const d = c.find((p) => existsSync(p));
  assert.ok(d, `fixtures not found in ${c.join(" or ")}`);
  return d;
}

interface Case { name: string; config: HFConfig; model: HFModel; ref: Map<string, Tensor> }
function loadCase(dir: string, name: string): Case {
  const config = JSON.parse(readFileSync(join(dir, name, "config.json"), "utf8")) as HFConfig;
  const fam = familyOf(config.model_type!);
  assert.ok(fam, `${name}: no family for ${config.model_type}`);
  const model = fam.fromConfig(config);
  const weights = loadSafetensors(readFileSync(join(dir, name, "model.safetensors"))).tensors;
  model.loadStateDict(weights, { strict: true });
  const ref = loadSafetensors(readFileSync(join(dir, name, "reference.safetensors"))).tensors;
  return { name, config, model, ref };
}

function caseNames(): string[] {
  const dir = fixturesDir();
  return readdirSync(dir).filter((n) => {
    const p = join(dir, n, "config.json");
    if (!existsSync(p)) return false;
    const t = (JSON.parse(readFileSync(p, "utf8")) as HFConfig).model_type;
    return !!t && !!familyOf(t);
  }).sort();
}

function maxAbsDiff(a: Tensor, b: Tensor, what: string): number {
  assert.deepEqual(a.shape, b.shape, `${what}: shape ${JSON.stringify(a.shape)} vs HF ${JSON.stringify(b.shape)}`);
  const x = a.toFloat32Array(), y = b.toFloat32Array();
  let m = 0;
  for (let i = 0; i < x.length; i++) { const d = Math.abs(x[i] - y[i]); if (!(d <= m)) m = d; }
  return m;
}
function close(a: Tensor | undefined, b: Tensor | undefined, what: string, tol = 1e-4): void {
  assert.ok(a, `${what}: missing from our outputs`);
  assert.ok(b, `${what}: missing from the reference`);
  const d = maxAbsDiff(a, b, what);
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}`);
}

function inputs(ref: Map<string, Tensor>) {
  return { inputIds: ref.get("in.input_ids")!, attentionMask: ref.get("in.attention_mask")!, decoderInputIds: ref.get("in.decoder_input_ids")!,
    decoderAttentionMask: ref.get("in.decoder_attention_mask") };
}

function compareForward(c: Case, out: HFOutputs): void {
  const r = c.ref, n = c.name;
  close(out.logits, r.get("out.logits"), `${n} logits`);
  close(out.encoderLastHiddenState, r.get("out.encoder_last_hidden_state"), `${n} encoder_last_hidden_state`);
  const lists: [Tensor[] | undefined, string][] = [
    [out.encoderHiddenStates, "encoder_hidden_states"], [out.decoderHiddenStates, "decoder_hidden_states"],
    [out.encoderAttentions, "encoder_attentions"], [out.decoderAttentions, "decoder_attentions"], [out.crossAttentions, "cross_attentions"],
  ];
  for (const [ours, key] of lists) {
    const count = [...r.keys()].filter((k) => k.startsWith(`out.${key}.`)).length;
    assert.ok(count > 0, `${n}: reference has no ${key}`);
    assert.equal(ours?.length, count, `${n} ${key}: ${ours?.length} entries, HF has ${count}`);
    for (let i = 0; i < count; i++) close(ours![i], r.get(`out.${key}.${i}`), `${n} ${key}.${i}`);
  }
}

for (const name of caseNames()) {
  test(`HF ${name}: forward matches transformers (logits, hidden states, all attentions)`, () => {
    const c = loadCase(fixturesDir(), name);
    const out = noGrad(() => c.model.forward(inputs(c.ref), { outputAttentions: true, outputHiddenStates: true }));
    compareForward(c, out);
  });

  test(`HF ${name}: greedy generation with the KV cache matches transformers`, () => {
    const c = loadCase(fixturesDir(), name);
    const seq = c.ref.get("gen.sequences")!, steps = c.ref.get("gen.step_logits")!;   // (B, 1 + n), (B, n, V)
    const n = steps.shape[1];
    const { inputIds, attentionMask } = inputs(c.ref);
    const g = c.model.generate!({ inputIds, attentionMask }, { maxNewTokens: n, eosTokenId: null, returnStepLogits: true });
    assert.deepEqual(g.sequences.toArray(), seq.toArray(), `${name}: generated tokens`);
    assert.equal(g.stepLogits!.length, n);
    for (let s = 0; s < n; s++) close(g.stepLogits![s], steps.select(1, s), `${name} step_logits[${s}]`);
  });
}

test("every backend Node has (reference, wasm, native) reproduces HF: forward and cached generation, each family", () => {
  const backends = ["reference", "wasm", "native"].filter((b) => availableBackends().includes(b));
  assert.ok(backends.includes("reference"));
  const prev = getBackend();
  try {
    for (const b of backends) {
      setBackend(b);
      for (const name of ["marian-swish-tied", "bart-gelu-tied", "t5-relu-tied", "marian-fully-masked-rows", "t5-fully-masked-rows"]) {
        const c = loadCase(fixturesDir(), name);
        compareForward({ ...c, name: `${b} ${name}` }, noGrad(() => c.model.forward(inputs(c.ref), { outputAttentions: true, outputHiddenStates: true })));
        const { inputIds, attentionMask } = inputs(c.ref);
        const g = c.model.generate!({ inputIds, attentionMask }, { maxNewTokens: 5, returnStepLogits: true });
        assert.deepEqual(g.sequences.toArray(), c.ref.get("gen.sequences")!.toArray(), `${b} ${name} tokens`);
      }
    }
  } finally { setBackend(prev); }
});

test("HF seq2seq fixtures cover Marian, BART and T5", () => {
  const types = new Set(caseNames().map((n) => (JSON.parse(readFileSync(join(fixturesDir(), n, "config.json"), "utf8")) as HFConfig).model_type));
  assert.deepEqual([...types].sort(), ["bart", "marian", "t5"]);
});

test("cached decoding equals a full recompute (per step, every family)", () => {
  for (const name of ["marian-swish-tied", "bart-gelu-tied", "t5-gated-gelu-untied"]) {
    const c = loadCase(fixturesDir(), name);
    const { inputIds, attentionMask } = inputs(c.ref);
    const g = c.model.generate!({ inputIds, attentionMask }, { maxNewTokens: 6, returnStepLogits: true });
    const seq = g.sequences, T = seq.shape[1];
    const full = noGrad(() => c.model.forward({ inputIds, attentionMask, decoderInputIds: seq.narrow(1, 0, T - 1).contiguous() })).logits!;
    for (let s = 0; s < T - 1; s++) close(g.stepLogits![s], full.select(1, s), `${name} step ${s} cached vs full`, 2e-5);
  }
});

test("eosTokenId: a finished row continues with the pad token, decoding stops when every row finished", () => {
  const c = loadCase(fixturesDir(), "marian-swish-tied");
  const { inputIds, attentionMask } = inputs(c.ref);
  const n = 5, pad = c.config.pad_token_id as number;
  const free = c.model.generate!({ inputIds, attentionMask }, { maxNewTokens: n }).sequences.toArray() as number[][];
  for (const eos of new Set([free[0][1], free[1][1], free[1][3]])) {
    // HF's rule applied to the free run (greedy tokens agree until a row finishes)
    const first = free.map((r) => r.slice(1).indexOf(eos));                 // step at which each row emits eos, or -1
    const len = first.every((f) => f >= 0) ? Math.max(...first) + 1 : n;
    const want = free.map((r, b) => [r[0], ...r.slice(1, 1 + len).map((t, s) => (first[b] >= 0 && s > first[b] ? pad : t))]);
    const g = c.model.generate!({ inputIds, attentionMask }, { maxNewTokens: n, eosTokenId: eos });
    assert.deepEqual(g.sequences.toArray(), want, `eos ${eos}`);
  }
});

test("gradients: finite differences on parameters of every family (including T5's relative_attention_bias)", () => {
  const pick: Record<string, string[]> = {
    "marian-swish-tied": ["model.shared.weight", "model.encoder.layers.0.self_attn.q_proj.weight", "model.decoder.layers.1.encoder_attn.v_proj.bias", "model.decoder.layers.0.fc1.weight"],
    "bart-gelu-tied": ["model.encoder.embed_positions.weight", "model.decoder.layernorm_embedding.weight", "model.decoder.layers.0.self_attn.k_proj.weight"],
    "t5-gated-gelu-untied": ["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
      "decoder.block.1.layer.1.EncDecAttention.k.weight", "encoder.block.1.layer.1.DenseReluDense.wi_0.weight", "encoder.final_layer_norm.weight", "lm_head.weight"],
  };
  for (const [name, params] of Object.entries(pick)) {
    const c = loadCase(fixturesDir(), name);
    const inp = inputs(c.ref);
    // a fixed random projection of the logits: every logit contributes
    const V = c.ref.get("out.logits")!;
    const proj = Tensor.fromArray(Float32Array.from({ length: V.numel() }, (_, i) => Math.sin(i * 0.37)), V.shape);
    const loss = () => c.model.forward(inp).logits!.mul(proj).sum();
    const sd = c.model.stateDict();
    c.model.zeroGrad();
    loss().backward();
    for (const p of params) {
      const w = sd[p];
      assert.ok(w, `${name}: no parameter ${p}`);
      assert.ok(w.grad, `${name}: ${p} got no gradient`);
      const g = w.grad.toFloat32Array();
      // each write goes through storage.data (it bumps the version the native packed-weight cache is keyed on)
      const set = (o: number, v: number) => { (w.storage.data as Float32Array)[o] = v; };
      // the three largest-gradient entries, so the check is never on a zero
      const idx = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 3);
      for (const i of idx) {
        const h = 1e-2, o = w.offset + i, keep = w.storage.dataForRead()[o];
        set(o, keep + h); const up = noGrad(() => loss().item());
        set(o, keep - h); const down = noGrad(() => loss().item());
        set(o, keep);
        const fd = (up - down) / (2 * h);
        assert.ok(Math.abs(fd - g[i]) <= 2e-2 * Math.max(1, Math.abs(fd)), `${name} ${p}[${i}]: autograd ${g[i]} vs finite difference ${fd}`);
      }
    }
  }
});

test("captureAttention records encoder, decoder self- and cross-attention of the HF encoder–decoders", () => {
  for (const name of ["marian-swish-tied", "t5-gated-gelu-untied"]) {
    const c = loadCase(fixturesDir(), name);
    const { records, result } = captureAttention(c.model, () => noGrad(() => c.model.forward(inputs(c.ref), { outputAttentions: true })));
    const cross = records.filter((r) => r.kind === "cross");
    assert.equal(cross.length, result.crossAttentions!.length, `${name}: cross records`);
    close(cross[0].weights, c.ref.get("out.cross_attentions.0"), `${name} captured cross-attention`);
    const selfCausal = records.filter((r) => r.kind === "self" && r.causal);
    assert.equal(selfCausal.length, result.decoderAttentions!.length, `${name}: decoder self-attention records`);
  }
});

test("Marian's sinusoidal table is HF's (sin half, then cos half; odd widths)", () => {
  const t = marianSinusoidalTable(5, 5).toArray() as number[][];
  // dim 5: sentinel 3 sin columns (angles i = 0, 1, 2), then 2 cos columns (i = 0, 1)
  const ang = (p: number, i: number) => p / Math.pow(10000, (2 * i) / 5);
  for (let p = 0; p < 5; p++) {
    const want = [Math.sin(ang(p, 0)), Math.sin(ang(p, 1)), Math.sin(ang(p, 2)), Math.cos(ang(p, 0)), Math.cos(ang(p, 1))];
    for (let j = 0; j < 5; j++) assert.ok(Math.abs(t[p][j] - want[j]) < 1e-6, `p ${p} col ${j}`);
  }
});

test("T5 relative position buckets equal HF's _relative_position_bucket (incl. the log-spaced boundaries)", () => {
  const ref = JSON.parse(readFileSync(join(fixturesDir(), "t5-buckets.json"), "utf8")) as
    { cases: { num_buckets: number; max_distance: number; bidirectional: boolean; relative_positions: number[]; buckets: number[] }[] };
  assert.ok(ref.cases.length >= 4);
  for (const c of ref.cases) {
    const ours = c.relative_positions.map((r) => t5RelativePositionBucket(r, c.bidirectional, c.num_buckets, c.max_distance));
    assert.deepEqual(ours, c.buckets, `num_buckets ${c.num_buckets}, max_distance ${c.max_distance}, bidirectional ${c.bidirectional}`);
  }
});

test("config errors name the key and the supported set", () => {
  const base = JSON.parse(readFileSync(join(fixturesDir(), "marian-swish-tied", "config.json"), "utf8")) as HFConfig;
  const t5 = JSON.parse(readFileSync(join(fixturesDir(), "t5-gated-gelu-untied", "config.json"), "utf8")) as HFConfig;
  const bart = JSON.parse(readFileSync(join(fixturesDir(), "bart-gelu-tied", "config.json"), "utf8")) as HFConfig;
  const bad: [HFFamily, HFConfig, RegExp][] = [
    [marianFamily, { ...base, activation_function: "mish" }, /"activation_function".*"mish".*supported: .*swish/],
    [marianFamily, { ...base, d_model: 18 }, /"d_model" \(18\) must be divisible by "encoder_attention_heads" \(4\)/],
    [marianFamily, { ...base, encoder_layers: "2" }, /"encoder_layers" must be an integer/],
    [marianFamily, { ...base, decoder_vocab_size: 65 }, /"decoder_vocab_size"/],
    [marianFamily, { ...base, architectures: ["MarianForCausalLM"] }, /"MarianForCausalLM" is not supported \(supported: MarianMTModel\)/],
    [bartFamily, { ...bart, activation_function: "gelu_10" }, /"activation_function" = "gelu_10" is not supported/],
    [bartFamily, { ...bart, dropout: 1 }, /"dropout" must be a probability in \[0, 1\)/],
    [bartFamily, { ...bart, pad_token_id: 999 }, /"pad_token_id" must be a token id in \[0, 63\]/],
    [t5Family, { ...t5, feed_forward_proj: "gated-mish", dense_act_fn: undefined }, /"feed_forward_proj".*"gated-mish"/],
    [t5Family, { ...t5, dense_act_fn: "mish" }, /"dense_act_fn" = "mish" names an unsupported activation/],
    [t5Family, { ...t5, feed_forward_proj: "double-gated-gelu" }, /"feed_forward_proj"/],
    [t5Family, { ...t5, relative_attention_num_buckets: 2 }, /"relative_attention_num_buckets"/],
  ];
  for (const [fam, cfg, re] of bad) assert.throws(() => fam.fromConfig(cfg), (e: Error) => e instanceof HFImportError && re.test(e.message), JSON.stringify(re.source));
});

test("T5: dense_act_fn / is_gated_act in config.json take precedence over feed_forward_proj, as in HF", () => {
  const t5 = JSON.parse(readFileSync(join(fixturesDir(), "t5-gated-gelu-untied", "config.json"), "utf8")) as HFConfig;
  const keys = Object.keys(t5Family.fromConfig({ ...t5, dense_act_fn: "relu", is_gated_act: false }).stateDict());
  assert.ok(keys.includes("encoder.block.0.layer.1.DenseReluDense.wi.weight") && !keys.some((k) => k.includes("wi_0")));
  const c = loadCase(fixturesDir(), "t5-gated-gelu-untied");
  const exact = t5Family.fromConfig({ ...t5, dense_act_fn: "gelu" });
  exact.loadStateDict(loadSafetensors(readFileSync(join(fixturesDir(), "t5-gated-gelu-untied", "model.safetensors"))).tensors);
  const d = maxAbsDiff(noGrad(() => exact.forward(inputs(c.ref)).logits!), c.ref.get("out.logits")!, "logits");
  assert.ok(d > 1e-4, `exact gelu instead of gelu_new must change the logits (diff ${d})`);
});

test("bad inputs: out-of-vocabulary ids, mismatched masks, missing decoder ids, too many positions", () => {
  const c = loadCase(fixturesDir(), "marian-swish-tied");
  const { inputIds, attentionMask, decoderInputIds } = inputs(c.ref);
  const oov = Tensor.fromArray(Int32Array.from([3, 64]), [1, 2], "int32");
  assert.throws(() => c.model.forward({ inputIds: oov, decoderInputIds: oov }), /inputIds: token id 64 at flat index 1 is outside the vocabulary \[0, 63\]/);
  assert.throws(() => c.model.forward({ inputIds, attentionMask: attentionMask.narrow(1, 0, 3), decoderInputIds }), /attentionMask has shape \[2, 3\] but the ids have \[2, 7\]/);
  assert.throws(() => c.model.forward({ inputIds, attentionMask }), /decoderInputIds is required/);
  const long = Tensor.fromArray(new Int32Array(40).fill(3), [1, 40], "int32");
  assert.throws(() => c.model.forward({ inputIds: long, decoderInputIds: long }), /40 positions exceed max_position_embeddings 32/);
});

test("state-dict names are HF's: the same keys as model.safetensors, tied weights listed", () => {
  for (const name of caseNames()) {
    const c = loadCase(fixturesDir(), name);
    const file = loadSafetensors(readFileSync(join(fixturesDir(), name, "model.safetensors"))).tensors;
    assert.deepEqual(Object.keys(c.model.stateDict()).sort(), [...file.keys()].sort(), name);
    for (const t of c.model.tiedWeights?.() ?? []) assert.ok(!file.has(t), `${name}: ${t} is tied, HF leaves it out`);
  }
});

test("checkpoints load as HF's from_pretrained loads them: tied copies, ignorable extras, optional final_logits_bias", () => {
  const dir = fixturesDir();
  const file = (n: string) => loadSafetensors(readFileSync(join(dir, n, "model.safetensors"))).tensors;
  const check = (name: string, sd: Map<string, Tensor>) => {
    const c = loadCase(dir, name);
    const fam = familyOf(c.config.model_type!)!;
    const m = fam.fromConfig(c.config);
    m.loadStateDict(sd);
    compareForward({ ...c, model: m }, noGrad(() => m.forward(inputs(c.ref), { outputAttentions: true, outputHiddenStates: true })));
  };
  // Marian as older checkpoints store it: every tied copy and the sinusoidal tables present
  const marian = file("marian-swish-tied"), shared = marian.get("model.shared.weight")!;
  const c = loadCase(dir, "marian-swish-tied");
  const table = marianSinusoidalTable(c.config.max_position_embeddings as number, c.config.d_model as number);
  check("marian-swish-tied", new Map([...marian, ["lm_head.weight", shared], ["model.encoder.embed_tokens.weight", shared], ["model.decoder.embed_tokens.weight", shared],
    ["model.encoder.embed_positions.weight", table], ["model.decoder.embed_positions.weight", table]]));
  // only a tied copy of the embedding (no model.shared.weight)
  const onlyAlias = new Map(marian); onlyAlias.delete("model.shared.weight"); onlyAlias.set("model.encoder.embed_tokens.weight", shared);
  check("marian-swish-tied", onlyAlias);
  // T5 with its tied embed_tokens copies and the unused cross-attention bias of old checkpoints
  const t5 = file("t5-relu-tied"), t5s = t5.get("shared.weight")!;
  check("t5-relu-tied", new Map([...t5, ["encoder.embed_tokens.weight", t5s], ["decoder.embed_tokens.weight", t5s], ["lm_head.weight", t5s],
    ["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight", Tensor.fromArray(new Float32Array(32 * 6), [32, 6])]]));
  // BART's "*.version" entries
  check("bart-gelu-tied", new Map([...file("bart-gelu-tied"), ["model.encoder.version", Tensor.fromArray([2], [1])], ["model.decoder.version", Tensor.fromArray([2], [1])]]));

  // final_logits_bias missing: HF keeps zeros
  const noBias = new Map(marian); noBias.delete("final_logits_bias");
  const m = marianFamily.fromConfig(c.config);
  m.loadStateDict(noBias);
  assert.ok((m.stateDict()["final_logits_bias"].toFloat32Array()).every((v) => v === 0));
  // a wrong position table and unknown names are errors that name them
  assert.throws(() => marianFamily.fromConfig(c.config).loadStateDict(new Map([...marian, ["model.encoder.embed_positions.weight", marianSinusoidalTable(8, 16)]])),
    /model\.encoder\.embed_positions\.weight has shape \[8,16\] in the checkpoint but \[32,16\]/);
  assert.throws(() => marianFamily.fromConfig(c.config).loadStateDict(new Map([...marian, ["model.encoder.layers.9.fc1.weight", shared]])),
    /unexpected keys: model\.encoder\.layers\.9\.fc1\.weight/);
  const missing = new Map(marian); missing.delete("model.decoder.layers.1.fc2.bias");
  assert.throws(() => marianFamily.fromConfig(c.config).loadStateDict(missing), /missing keys: model\.decoder\.layers\.1\.fc2\.bias/);
});

test("training mode applies HF's dropouts (eval reproduces HF); a few AdamW steps lower the loss of each family", async () => {
  const { AdamW } = await import("../src/optim/index.js");
  const { crossEntropy } = await import("../src/functional.js");
  for (const name of ["marian-swish-tied", "bart-gelu-tied", "t5-gated-gelu-untied"]) {
    const c = loadCase(fixturesDir(), name);
    const inp = inputs(c.ref);
    c.model.train();
    const a = noGrad(() => c.model.forward(inp).logits!), b = noGrad(() => c.model.forward(inp).logits!);
    assert.ok(maxAbsDiff(a, b, name) > 1e-3, `${name}: dropout should make two training forwards differ`);
    // labels: the decoder inputs shifted left (any fixed target works)
    const dec = inp.decoderInputIds.toArray() as number[][];
    const labels = Tensor.fromArray(Int32Array.from(dec.flatMap((r) => [...r.slice(1), r[0]])), [dec.length * dec[0].length], "int32");
    const lossOf = () => crossEntropy(c.model.forward(inp).logits!.reshape([labels.shape[0], -1]), labels);
    c.model.eval();
    const before = noGrad(() => lossOf().item());
    const opt = new AdamW(c.model.parameters(), { lr: 3e-3 });
    c.model.train();
    for (let i = 0; i < 8; i++) { opt.zeroGrad(); lossOf().backward(); opt.step(); }
    c.model.eval();
    const after = noGrad(() => lossOf().item());
    assert.ok(after < before, `${name}: loss ${before} → ${after}`);
  }
});

test("a base-model folder (config lists BartModel / MarianModel / T5Model, weights without the \"model.\" prefix) loads as the generation class", () => {
  for (const [name, base] of [["bart-gelu-tied", "BartModel"], ["marian-swish-tied", "MarianModel"], ["t5-relu-tied", "T5Model"]]) {
    const c = loadCase(fixturesDir(), name);
    const fam = familyOf(c.config.model_type!)!;
    const m = fam.fromConfig({ ...c.config, architectures: [base] });
    assert.equal(m.architecture, fam.architectures[0]);
    const file = loadSafetensors(readFileSync(join(fixturesDir(), name, "model.safetensors"))).tensors;
    const stripped = new Map([...file].filter(([k]) => k !== "final_logits_bias").map(([k, t]) => [k.replace(/^model\./, ""), t] as [string, Tensor]));
    m.loadStateDict(stripped);
    compareForward({ ...c, model: m }, noGrad(() => m.forward(inputs(c.ref), { outputAttentions: true, outputHiddenStates: true })));
  }
  assert.throws(() => bartFamily.fromConfig({ model_type: "bart", architectures: ["BartForSequenceClassification"] }),
    /"BartForSequenceClassification" is not supported \(supported: BartForConditionalGeneration\)/);
});

test("generation: the cross-attention K/V are projected once, the self-attention cache grows by one token a step", () => {
  for (const name of ["marian-swish-tied", "t5-gated-gelu-untied"]) {
    const c = loadCase(fixturesDir(), name);
    const crossK: { forward: (x: Tensor) => Tensor }[] = [], selfK: { forward: (x: Tensor) => Tensor }[] = [];
    for (const [n, mod] of c.model.namedModules()) {
      if (/decoder\.layers\.\d+\.encoder_attn\.k_proj$|EncDecAttention\.k$/.test(n)) crossK.push(mod as never);
      if (/decoder\.layers\.\d+\.self_attn\.k_proj$|decoder\.block\.\d+\.layer\.0\.SelfAttention\.k$/.test(n)) selfK.push(mod as never);
    }
    assert.equal(crossK.length, 2, name); assert.equal(selfK.length, 2, name);
    const seen = new Map<object, number[]>();
    for (const mod of [...crossK, ...selfK]) {
      const orig = mod.forward.bind(mod);
      seen.set(mod, []);
      mod.forward = (x: Tensor) => { seen.get(mod)!.push(x.shape[1]); return orig(x); };
    }
    const { inputIds, attentionMask } = inputs(c.ref);
    c.model.generate!({ inputIds, attentionMask }, { maxNewTokens: 4 });
    for (const m of crossK) assert.deepEqual(seen.get(m), [inputIds.shape[1]], `${name}: cross K once, over the source`);
    for (const m of selfK) assert.deepEqual(seen.get(m), [1, 1, 1, 1], `${name}: self K one new token per step`);
  }
});

test("generate without an attentionMask masks the pad tokens of inputIds, as HF's generate() does", () => {
  for (const name of ["marian-swish-tied", "t5-gated-gelu-untied", "bart-gelu-tied"]) {
    const c = loadCase(fixturesDir(), name);
    const { inputIds } = inputs(c.ref);
    assert.ok((inputIds.dataSync() as Int32Array).includes(c.config.pad_token_id as number), `${name}: the fixture pads row 1`);
    const g = c.model.generate!({ inputIds }, { maxNewTokens: 5 });
    assert.deepEqual(g.sequences.toArray(), c.ref.get("gen.sequences")!.toArray(), name);
  }
});

test("startDecoding: token-by-token logits equal generate's, and reorder (beam search) moves the memory and every cache", () => {
  for (const name of ["marian-swish-tied", "bart-gelu-tied", "t5-gated-gelu-untied"]) {
    const c = loadCase(fixturesDir(), name);
    const m = c.model as HFModel & { startDecoding(i: object): { next(t: Tensor): Tensor; reorder(r: number[]): void; batch: number } };
    const { inputIds, attentionMask } = inputs(c.ref);
    const seq = c.ref.get("gen.sequences")!.toArray() as number[][], steps = c.ref.get("gen.step_logits")!;
    const col = (s: number, rows: number[]) => Tensor.fromArray(Int32Array.from(rows.map((r) => seq[r][s])), [rows.length, 1], "int32");
    // decode two steps of both rows, then continue as rows [1, 1, 0]: each must continue its own source's logits
    const d = m.startDecoding({ inputIds, attentionMask });
    d.next(col(0, [0, 1])); d.next(col(1, [0, 1]));
    d.reorder([1, 1, 0]);
    assert.equal(d.batch, 3);
    const l = d.next(col(2, [1, 1, 0]));                                        // (3, V)
    [1, 1, 0].forEach((r, i) => close(l.select(0, i), steps.select(0, r).select(0, 2), `${name} reordered row ${i}`));
    assert.throws(() => d.reorder([3]), /row 3 outside \[0, 2\]/);
    assert.throws(() => d.next(col(3, [0])), /tokens must be int32 \(3, 1\)/);
  }
});
