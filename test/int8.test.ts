// Dynamic int8 quantization: the TypeScript reference (backend/ref/qlinear.ts) against PyTorch's quantize_dynamic
// (test/fixtures/int8/qlinear-torch.json, made by scripts/fixtures/qlinear-torch.py), against a float64 reading of
// its own definition, and nn.QuantizedLinear / nn.quantizeDynamic / int8 MultiheadAttention (state dicts, errors).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Tensor } from "../src/tensor.js";
import { manualSeed, randn } from "../src/node.js";
import { nn } from "../src/node.js";
import { noGrad } from "../src/autograd.js";
import { packQuantizedWeights, qlinear, quantizeRowU8, quantizeWeightsPerChannel } from "../src/backend/ref/qlinear.js";
import { saveModule, loadModule } from "../src/io/state-dict.js";

const fixture = JSON.parse(readFileSync(new URL("../../test/fixtures/int8/qlinear-torch.json", import.meta.url), "utf8")) as {
  N: number; K: number; weight: number[]; bias: number[]; qweight: number[]; scales: number[]; x: number[]; yInt8: number[][]; yFloat: number[][];
};

test("int8 weights per output channel: the same int8 values and scales as PyTorch's per_channel_dynamic_qconfig", () => {
  const { N, K } = fixture;
  const { q, scale } = quantizeWeightsPerChannel(Float32Array.from(fixture.weight), N, K);
  let diff = 0;
  for (let i = 0; i < N * K; i++) if (q[i] !== fixture.qweight[i]) diff++;
  assert.equal(diff, 0, `${diff} of ${N * K} int8 weights differ from PyTorch's`);
  for (let n = 0; n < N; n++) assert.ok(Math.abs(scale[n] - fixture.scales[n]) <= 1e-7 * fixture.scales[n] + 1e-12, `scale ${n}: ${scale[n]} vs PyTorch ${fixture.scales[n]}`);
});

test("int8 linear on single rows: as close to the float layer as PyTorch's own int8 layer (7-bit vs its activations)", () => {
  const { N, K } = fixture;
  const { q, scale } = quantizeWeightsPerChannel(Float32Array.from(fixture.weight), N, K);
  const w = packQuantizedWeights(q, N, K, scale);
  const x = Float32Array.from(fixture.x), bias = Float32Array.from(fixture.bias);
  for (let r = 0; r < fixture.yInt8.length; r++) {
    const y = new Float32Array(N);
    qlinear(x, r * K, 1, K, w, bias, y, 0, N);
    let ours = 0, torch = 0, range = 0;
    for (let n = 0; n < N; n++) {
      ours = Math.max(ours, Math.abs(y[n] - fixture.yFloat[r][n]));
      torch = Math.max(torch, Math.abs(fixture.yInt8[r][n] - fixture.yFloat[r][n]));
      range = Math.max(range, Math.abs(fixture.yFloat[r][n]));
    }
    // 7-bit activations have twice PyTorch-onednn's 8-bit step: the error may be about twice PyTorch's, not more
    assert.ok(ours <= 3 * torch + 1e-3 * range, `row ${r}: max error ${ours} vs PyTorch int8's ${torch}`);
  }
});

test("reference: the integer arithmetic equals its float64 reading (acc, zero points, scales, bias), odd shapes", () => {
  manualSeed(7);
  for (const [M, N, K] of [[1, 1, 1], [3, 17, 5], [5, 33, 67], [2, 16, 4], [4, 7, 130]]) {
    const wf = randn([N, K]).dataSync() as Float32Array;
    const { q, scale } = quantizeWeightsPerChannel(wf, N, K);
    const w = packQuantizedWeights(q, N, K, scale);
    const x = randn([M, K]).mul(3).add(0.5).dataSync() as Float32Array;
    const bias = randn([N]).dataSync() as Float32Array;
    const y = new Float32Array(M * N), acc = new Int32Array(M * N);
    qlinear(x, 0, M, K, w, bias, y, 0, N, acc);
    const xq = new Uint8Array(K);
    for (let r = 0; r < M; r++) {
      const { scale: sx, zp } = quantizeRowU8(x, r * K, K, xq, 0);
      assert.ok(zp >= 0 && zp <= 127);
      for (let k = 0; k < K; k++) {
        assert.ok(xq[k] <= 127);
        assert.ok(Math.abs((xq[k] - zp) * sx - x[r * K + k]) <= sx / 2 + 1e-6, `row ${r} k ${k}: |dequantized − x| > half a step`);
      }
      for (let n = 0; n < N; n++) {
        let a = 0, cs = 0;
        for (let k = 0; k < K; k++) { a += xq[k] * q[n * K + k]; cs += q[n * K + k]; }
        assert.equal(acc[r * N + n], a, `acc[${r}, ${n}]`);
        const want = (a - zp * cs) * sx * scale[n] + bias[n];
        assert.ok(Math.abs(y[r * N + n] - want) <= 1e-5 * Math.max(1, Math.abs(want)), `y[${r}, ${n}] = ${y[r * N + n]}, want ${want}`);
      }
    }
  }
});

test("reference: rows at the edges (all zero, one sign only, a NaN / Infinity row gives NaN, the rest untouched)", () => {
  const N = 3, K = 5;
  const { q, scale } = quantizeWeightsPerChannel(Float32Array.from({ length: N * K }, (_, i) => (i % 7) - 3), N, K);
  const w = packQuantizedWeights(q, N, K, scale);
  const x = Float32Array.from([0, 0, 0, 0, 0, 1, 2, 3, 4, 5, -1, -2, -3, -4, -5, 1, NaN, 2, 3, 4, 1, Infinity, 0, 0, 0]);
  const y = new Float32Array(5 * N), acc = new Int32Array(5 * N);
  qlinear(x, 0, 5, K, w, null, y, 0, N, acc);
  for (let n = 0; n < N; n++) assert.equal(y[n], 0);
  const xq = new Uint8Array(K);
  assert.deepEqual(quantizeRowU8(x, 5, K, xq, 0).zp, 0);
  assert.deepEqual([...xq], [25, 51, 76, 102, 127]);
  assert.equal(quantizeRowU8(x, 10, K, xq, 0).zp, 127);
  assert.deepEqual([...xq], [102, 76, 51, 25, 0]);
  for (let i = 3 * N; i < 5 * N; i++) assert.ok(Number.isNaN(y[i]), `y[${i}] = ${y[i]} for a non-finite row`);
  for (let i = N; i < 3 * N; i++) assert.ok(Number.isFinite(y[i]));
});

test("nn.QuantizedLinear: forward close to the float Linear, PyTorch-style state dict, save/load, clear errors", () => {
  manualSeed(3);
  const lin = new nn.Linear(40, 24);
  const ql = nn.QuantizedLinear.fromFloat(lin);
  assert.deepEqual(Object.keys(ql.stateDict()).sort(), ["bias", "weight", "weight_scale"]);
  assert.equal(ql.weight.dtype, "int32");
  const x = randn([2, 7, 40]);
  const yf = noGrad(() => lin.forward(x)).dataSync(), yq = ql.forward(x).dataSync();
  let err = 0, mag = 0;
  for (let i = 0; i < yf.length; i++) { err = Math.max(err, Math.abs(yf[i] - yq[i])); mag = Math.max(mag, Math.abs(yf[i])); }
  assert.ok(err < 0.03 * mag, `max |int8 − float| = ${err} (outputs up to ${mag})`);
  const back = new nn.QuantizedLinear(40, 24);
  loadModule(back, saveModule(ql, { intDType: "I32" }));
  assert.deepEqual([...back.forward(x).dataSync()], [...yq]);
  assert.throws(() => ql.forward(randn([3, 39])), /input \[3, 39\] does not match weight \[24, 40\]/);
  assert.match(ql.toString(), /QuantizedLinear\(inFeatures=40, outFeatures=24, bias=true, dtype=qint8/);
  // the input still gets a gradient (through the dequantized weights), for gradient-based explanations
  const xg = randn([3, 40]).requiresGrad_(true);
  ql.forward(xg).sum().backward();
  const want = ql.int8.dequantize().sum(0).dataSync();
  const got = xg.grad!.dataSync();
  for (let i = 0; i < 40; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-5);
});

test("nn.quantizeDynamic: a TransformerEncoder's Linears and attention in-projections become int8; outputs stay close", () => {
  manualSeed(11);
  const enc = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(32, 4, { dimFeedforward: 64, dropout: 0, batchFirst: true }), 2);
  enc.eval();
  const x = randn([2, 9, 32]);
  const yf = noGrad(() => enc.forward(x)).dataSync();
  const floatKeys = Object.keys(enc.stateDict());
  const { report } = nn.quantizeDynamic(enc);
  assert.deepEqual([...report.quantized].sort(), [
    "layers.0.self_attn.in_proj", "layers.0.self_attn.out_proj", "layers.0.linear1", "layers.0.linear2",
    "layers.1.self_attn.in_proj", "layers.1.self_attn.out_proj", "layers.1.linear1", "layers.1.linear2"].sort());
  assert.ok(nn.isQuantized(enc));
  const sd = enc.stateDict();
  assert.equal(sd["layers.0.self_attn.in_proj_weight"].dtype, "int32");
  assert.deepEqual(sd["layers.0.self_attn.in_proj_weight_scale"].shape, [96]);
  assert.deepEqual(Object.keys(sd).filter((k) => !k.endsWith("_scale")).sort(), [...floatKeys].sort());
  const yq = noGrad(() => enc.forward(x)).dataSync();
  let err = 0, mag = 0;
  for (let i = 0; i < yf.length; i++) { err = Math.max(err, Math.abs(yf[i] - yq[i])); mag = Math.max(mag, Math.abs(yf[i])); }
  assert.ok(err > 0 && err < 0.06 * mag, `max |int8 − float| = ${err} (outputs up to ${mag})`);
  // cross-attention / separate projections use the same int8 rows as the packed self-attention projection
  const mha = new nn.MultiheadAttention(16, 2, { batchFirst: true });
  const q = randn([1, 5, 16]);
  nn.quantizeDynamic(mha);
  const [self] = mha.forward(q, q, q);
  const [cross] = mha.forward(q, q.mul(1), q.mul(1));
  assert.deepEqual([...cross.dataSync()], [...self.dataSync()]);
  // a second call changes nothing; exclude keeps a module float
  assert.deepEqual(nn.quantizeDynamic(enc).report.quantized, []);
  const enc2 = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true }), 1);
  const r2 = nn.quantizeDynamic(enc2, { exclude: ["layers.0.linear2"], attention: false }).report;
  assert.deepEqual([...r2.quantized].sort(), ["layers.0.linear1", "layers.0.self_attn.out_proj"]);
  assert.ok(Tensor.fromArray([1]).numel() === 1);
});

test("int8 checkpoint: I8 weights + scales on disk, loaded by the page's path (checkpointFromBytes) into a fresh model, same outputs", async () => {
  const { loadCheckpoint, serializeCheckpoint } = await import("../src/node/checkpoint.js");
  const { checkpointFromBytes, loadCheckpointWeights } = await import("../src/io/checkpoint-bytes.js");
  const { parseSafetensors } = await import("../src/io/safetensors.js");
  const { setBackend, getBackend: current } = await import("../src/backend/registry.js");
  const ck = await loadCheckpoint("models/dates.safetensors");
  const { report } = nn.quantizeDynamic(ck.model);
  const bytes = serializeCheckpoint({ task: ck.task.name, config: ck.config, model: ck.model,
    quantization: { method: "dynamic-int8", modules: report.quantized } });
  const st = parseSafetensors(bytes);
  const wName = report.quantized[0].endsWith("in_proj") ? report.quantized[0] + "_weight" : report.quantized[0] + ".weight";
  assert.equal(st.tensors.get(wName)!.dtype, "I8");
  assert.equal(st.tensors.get(wName + "_scale")!.dtype, "F32");
  const raw = checkpointFromBytes(bytes, "dates-int8");
  assert.deepEqual(raw.quantization!.modules, report.quantized);
  const fresh = loadCheckpointWeights(ck.task.modelFromConfig(ck.config), raw);
  assert.ok(nn.isQuantized(fresh));
  const sdA = ck.model.stateDict(), sdB = fresh.stateDict();
  assert.deepEqual(Object.keys(sdB).sort(), Object.keys(sdA).sort());
  for (const k of Object.keys(sdA)) assert.deepEqual([...sdB[k].dataSync()], [...sdA[k].dataSync()], k);
  // the page runs on the Wasm backend: the same prediction there
  const prev = current();
  const p0 = noGrad(() => ck.task.predict(ck.model, ck.config, "March 3, 2021", {})).output;
  setBackend("wasm");
  try { assert.equal(noGrad(() => ck.task.predict(fresh, ck.config, "March 3, 2021", {})).output, p0); } finally { setBackend(prev); }
  assert.equal(p0, "2021-03-03");
  // a malformed quantization record is a clear error
  const bad = serializeCheckpoint({ task: ck.task.name, config: ck.config, model: ck.model, quantization: { method: "gptq" as "dynamic-int8", modules: [] } });
  assert.throws(() => checkpointFromBytes(bad, "bad.safetensors"), /bad.safetensors: metadata "quantization" must be \{"method": "dynamic-int8"/);
});

test("attnflow quantize on a Hugging Face folder: int8 model.safetensors + quantization_config, fromPretrained loads it, logits close", async () => {
  const { execFileSync } = await import("node:child_process");
  const { mkdtempSync, readFileSync: rf, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { fromPretrainedDir } = await import("../src/hf/node-pretrained.js");
  const src = "test/fixtures/hf/bert-seqcls";
  const out = join(mkdtempSync(join(tmpdir(), "attnflow-int8-")), "q");
  try {
    const line = execFileSync(process.execPath, ["bin/attnflow.js", "quantize", "--model", src, "--out", out, "--json"], { encoding: "utf8" });
    const r = JSON.parse(line) as { quantized: string[] };
    assert.ok(r.quantized.some((n) => n.endsWith("attention.self.query")), r.quantized.join(", "));
    const cfg = JSON.parse(rf(join(out, "config.json"), "utf8"));
    assert.equal(cfg.quantization_config.quant_method, "attnflow-dynamic-int8");
    const f = await fromPretrainedDir(src, { tokenizer: false }), q = await fromPretrainedDir(out, { tokenizer: false });
    assert.ok(nn.isQuantized(q.model) && !nn.isQuantized(f.model));
    const ids = Tensor.fromArray(Int32Array.from([2, 7, 11, 5, 3]), [1, 5], "int32");
    const run = (m: unknown) => noGrad(() => ((m as { forward(x: { inputIds: Tensor }): Tensor | { logits: Tensor } }).forward({ inputIds: ids })));
    const lf = run(f.model), lq = run(q.model);
    const a = ((lf as { logits?: Tensor }).logits ?? lf as Tensor).dataSync(), b = ((lq as { logits?: Tensor }).logits ?? lq as Tensor).dataSync();
    let d = 0, m = 0;
    for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(a[i])); }
    assert.ok(d > 0 && d < 0.05 * Math.max(1, m), `int8 logits drift ${d} (|logits| up to ${m})`);
    const info = execFileSync(process.execPath, ["bin/attnflow.js", "info", "--model", out], { encoding: "utf8" });
    assert.match(info, /int8|quantiz/i);
  } finally { rmSync(join(out, ".."), { recursive: true, force: true }); }
});

test("int8 TransformerEncoder: inference (activation fused into linear1's int8 kernel where the backend can, temporaries freed) = the recorded forward", () => {
  manualSeed(181);
  for (const [activation, normFirst] of [["gelu", false], ["relu", true]] as const) {
    const enc = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(32, 4, { dimFeedforward: 64, dropout: 0, activation, batchFirst: true, normFirst }), 2);
    nn.quantizeDynamic(enc);
    const x = randn([2, 5, 32]);
    const xg = x.clone().requiresGrad_();
    const inference = noGrad(() => enc.forward(x).dataSync().slice());
    const again = noGrad(() => enc.forward(x).dataSync().slice());    // buffers given back by the first call reused
    const recorded = enc.forward(xg);                                 // grad path: unfused activation, nothing freed
    assert.ok(recorded.requiresGrad);
    const r = recorded.dataSync();
    for (let i = 0; i < r.length; i++) {
      assert.equal(again[i], inference[i]);
      assert.ok(Math.abs(inference[i] - r[i]) <= 1e-5 * Math.max(1, Math.abs(r[i])), `${activation}: y[${i}] = ${inference[i]}, recorded ${r[i]}`);
    }
  }
});
