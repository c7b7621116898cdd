// Explaining on the WebGPU device: the shipped topic classifier (models/fortunes-classifier.safetensors) moved to the
// device explains a short text with every method — raw, rollout, flow (maps read back with await), grad (attention
// gradients after a backward pass on the device), blank-out (one device forward per occluded position) and input ×
// gradient — and every number equals the reference backend's within float32 noise. Also: predictTextAsync equals
// predictText, a synchronous targetAttention on the device fails naming what to call, an encoder–decoder's output is
// refused on the device with a clear error. Skips without an adapter, fails under CI=true (test/helpers/webgpu.ts).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gpuTest } from "./helpers/webgpu.js";
import * as af from "../src/index.js";
import { EXPLAIN_METHODS, runExplanation, type Explanation } from "../src/explain/explain-run.js";
import { targetAttention } from "../src/explain/attribution.js";
import { explainText, explainTextAsync, predictText, predictTextAsync, textClassifierFromCheckpoint } from "../src/tasks/fortunes-classifier-model.js";

af.setBackend("reference");
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BYTES = new Uint8Array(readFileSync(join(ROOT, "models", "fortunes-classifier.safetensors")));
const TEXT = "the cat sat on the mat";

/** Every number of two explanations, paired by path (timings left out). */
function compare(gpu: unknown, cpu: unknown, path: string, out: { n: number; max: number; at: string }): void {
  if (typeof cpu === "number") {
    assert.equal(typeof gpu, "number", `${path}: ${String(gpu)} vs reference ${cpu}`);
    const d = Math.abs((gpu as number) - cpu) / Math.max(1e-3, Math.abs(cpu));
    out.n++;
    if (d > out.max) { out.max = d; out.at = `${path}: ${String(gpu)} vs ${cpu}`; }
    return;
  }
  if (cpu === null || typeof cpu !== "object") { assert.deepEqual(gpu, cpu, path); return; }
  assert.ok(gpu !== null && typeof gpu === "object", `${path}: missing on the device`);
  assert.deepEqual(Object.keys(gpu as object).sort(), Object.keys(cpu).sort(), `${path}: keys`);
  for (const k of Object.keys(cpu)) if (k !== "timings") compare((gpu as Record<string, unknown>)[k], (cpu as Record<string, unknown>)[k], `${path}.${k}`, out);
}

gpuTest("the shipped classifier explained on the device with every method equals the reference backend", async () => {
  const cpu = textClassifierFromCheckpoint(BYTES), gpu = textClassifierFromCheckpoint(BYTES);
  gpu.model.to("webgpu");
  assert.equal(gpu.model.parameters()[0].device, "webgpu");
  const pc = predictText(cpu.model, cpu.config, TEXT), pg = await predictTextAsync(gpu.model, gpu.config, TEXT);
  assert.equal(pg.output, pc.output);
  pg.alternatives!.forEach((a, i) => { assert.equal(a.output, pc.alternatives![i].output); assert.ok(Math.abs(a.score - pc.alternatives![i].score) < 1e-5); });
  const methods = [...EXPLAIN_METHODS];
  const ec: Explanation = await runExplanation(explainText(cpu.model, cpu.config, TEXT), cpu.model, { methods });
  const stages = new Set<string>();
  const eg: Explanation = await runExplanation(await explainTextAsync(gpu.model, gpu.config, TEXT), gpu.model, { methods, onProgress: (s) => stages.add(s) });
  assert.ok(stages.has("blankout"), [...stages].join(","));
  assert.deepEqual(Object.keys(eg.methods).sort(), [...methods].sort());
  const d = { n: 0, max: 0, at: "" };
  compare(eg, ec, "explanation", d);
  assert.ok(d.n > 500, `compared ${d.n} numbers`);
  assert.ok(d.max < 2e-3, `largest relative difference ${d.max} at ${d.at}`);
  // the device's parameter gradients are left as they were (none)
  assert.ok(gpu.model.parameters().every((p) => p.grad === null));
});

gpuTest("on the device: a synchronous capture says what to call; an encoder–decoder target is refused clearly", async () => {
  const gpu = textClassifierFromCheckpoint(BYTES);
  gpu.model.to("webgpu");
  const target = await explainTextAsync(gpu.model, gpu.config, TEXT);
  assert.throws(() => targetAttention(target, gpu.model), /webgpu.*(await|data\(\))|(await|data\(\)).*webgpu/s);
  await assert.rejects(runExplanation({ ...target, decoder: {} as never }, gpu.model, { methods: ["rollout"] }), /encoder–decoder.*not yet supported on webgpu: use a CPU backend/);
});

gpuTest("sdpa impl \"math\" on the device (weights that carry gradients): GQA, causal, key padding, a row with no key, a float mask", async () => {
  af.manualSeed(11);
  const B = 2, H = 4, Hkv = 2, T = 7, D = 5;
  const q = af.randn([B, H, T, D]), k = af.randn([B, Hkv, T, D]), v = af.randn([B, Hkv, T, D]), g = af.randn([B, H, T, D]), gw = af.randn([B, H, T, T]);
  const pad = af.tensor([[0, 0, 0, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1, 1]]).bool();   // the second input: every key padded
  const mask = af.randn([T, T]);
  const run = (G: (t: af.Tensor) => af.Tensor, opts: { causal?: boolean; keyPaddingMask?: af.Tensor; attnMask?: af.Tensor }) => {
    const qq = G(q.detach()).requiresGrad_(true), kk = G(k.detach()).requiresGrad_(true), vv = G(v.detach()).requiresGrad_(true);
    const r = af.F.scaledDotProductAttention(qq, kk, vv, { ...opts, impl: "math", returnWeights: "full" });
    r.weights!.retainGrad();
    r.out.mul(G(g)).sum().add(r.weights!.mul(G(gw)).sum()).backward();
    return [r.out, r.weights!, r.weights!.grad!, qq.grad!, kk.grad!, vv.grad!];
  };
  for (const opts of [{ causal: true }, { keyPaddingMask: pad }, { attnMask: mask, causal: true }]) {
    const cpu = run((t) => t, opts), gpu = run((t) => t.to("webgpu"), opts);
    for (let i = 0; i < cpu.length; i++) {
      assert.equal(gpu[i].device, "webgpu");
      const a = await gpu[i].data(), b = cpu[i].dataSync();
      for (let j = 0; j < b.length; j++) assert.ok(Math.abs(a[j] - b[j]) <= 1e-4 * (1 + Math.abs(b[j])), `${JSON.stringify(Object.keys(opts))} tensor ${i}[${j}]: ${a[j]} vs ${b[j]}`);
    }
  }
  // masks must be host tensors for the math path on the device
  assert.throws(() => af.F.scaledDotProductAttention(q.to("webgpu"), k.to("webgpu"), v.to("webgpu"), { impl: "math", attnMask: mask.to("webgpu") }), /not yet supported on webgpu: scaledDotProductAttention impl "math" with a mask on the device/);
});
