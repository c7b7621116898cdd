import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor, F, rand, zeros, noGrad, tidy, captureAttention, manualSeed, Generator, optim } from "../src/index.js";
import { VisionTransformer, type VitConfig } from "../src/models/vit.js";
import { hasFashionMnist } from "../src/node/datasets.js";
import { task, augmentBatch, fashionVitConfig, type FashionData } from "../src/node/tasks/fashion-vit.js";

const tiny = (o: Partial<VitConfig> = {}): VitConfig => ({
  imageSize: 8, patchSize: 4, channels: 1, numClasses: 3, dModel: 8, depth: 2, heads: 2, mlpDim: 16, dropout: 0, pool: "cls",
  pixelMean: 0.3, pixelStd: 0.4, ...o,
});

test("ViT: shapes, state-dict names, seeded init, config errors", () => {
  const m = new VisionTransformer(tiny(), new Generator(1));
  assert.deepEqual(m.grid, [2, 2]);
  assert.equal(m.seqLen, 5);
  assert.deepEqual(m.tokenNames(), ["CLS", "r0c0", "r0c1", "r1c0", "r1c1"]);
  assert.deepEqual(noGrad(() => m.forward(rand([3, 8, 8]))).shape, [3, 3]);
  const keys = Object.keys(m.stateDict());
  for (const k of ["patch_embed.proj.weight", "cls_token", "pos_embed", "encoder.layers.1.self_attn.in_proj_weight", "encoder.layers.0.linear1.weight", "norm.weight", "head.bias"]) {
    assert.ok(keys.includes(k), `missing ${k} in ${keys.join(", ")}`);
  }
  assert.deepEqual(m.stateDict()["pos_embed"].shape, [1, 5, 8]);
  const same = new VisionTransformer(tiny(), new Generator(1)), other = new VisionTransformer(tiny(), new Generator(2));
  assert.deepEqual(same.stateDict()["pos_embed"].dataSync(), m.stateDict()["pos_embed"].dataSync());
  assert.notDeepEqual(other.stateDict()["encoder.layers.0.self_attn.in_proj_weight"].dataSync(), m.stateDict()["encoder.layers.0.self_attn.in_proj_weight"].dataSync());
  // RGB input (B, C, H, W), mean pooling, overlapping patches (K = 4 + 2·1 = 6 → 36·3 inputs per token)
  const rgb = new VisionTransformer(tiny({ channels: 3, pool: "mean", patchOverlap: 1 }));
  assert.deepEqual(rgb.patchEmbed.proj.weight.shape, [8, 108]);
  assert.deepEqual(noGrad(() => rgb.forward(rand([2, 3, 8, 8]))).shape, [2, 3]);
  assert.throws(() => rgb.forward(rand([2, 8, 8])), /expected images \(B, 3, 8, 8\), got \[2, 8, 8\]/);
  assert.throws(() => new VisionTransformer(tiny({ patchSize: 3 })), /patchSize 3 must divide config.imageSize 8/);
  assert.throws(() => new VisionTransformer(tiny({ heads: 3 })), /dModel 8 must be divisible by config.heads 3/);
  assert.throws(() => new VisionTransformer(tiny({ pool: "max" as "cls" })), /config.pool must be "cls" or "mean"/);
});

test("ViT: captureAttention records depth × (B, H, T, T), rows sum to 1", () => {
  const m = new VisionTransformer(tiny({ depth: 3 })).eval();
  const { records } = noGrad(() => captureAttention(m, () => m.forward(rand([2, 8, 8]))));
  assert.deepEqual(records.map((r) => r.name), ["encoder.layers.0.self_attn", "encoder.layers.1.self_attn", "encoder.layers.2.self_attn"]);
  for (const r of records) {
    assert.deepEqual(r.weights.shape, [2, 2, 5, 5]);
    const w = r.weights.dataSync();
    for (let i = 0; i < w.length; i += 5) assert.ok(Math.abs(w[i] + w[i + 1] + w[i + 2] + w[i + 3] + w[i + 4] - 1) < 1e-5);
  }
});

test("ViT: occlusion, onEmbeddings and the differentiable patch path", () => {
  manualSeed(4);
  const m = new VisionTransformer(tiny({ patchOverlap: 1 }), new Generator(3)).eval();
  const x = rand([2, 8, 8]);
  // the fast (JS) and differentiable (gather) patch extractions agree, with and without occlusion
  for (const occ of [undefined, [2, 4]]) {
    const fast = m.patchify(x, { occlude: occ }).dataSync(), slow = m.patchify(x.clone().requiresGrad_(true), { occlude: occ }).dataSync();
    fast.forEach((v, i) => assert.ok(Math.abs(v - slow[i]) < 1e-6, `patch value ${i}: ${v} vs ${slow[i]}`));
  }
  // occluding cell r0c1 (token 2) equals feeding an image whose top-right 4×4 cell is the mean pixel
  const img = x.dataSync() as Float32Array, blanked = img.slice();
  for (let b = 0; b < 2; b++) for (let y = 0; y < 4; y++) for (let c = 4; c < 8; c++) blanked[b * 64 + y * 8 + c] = 0.3;
  const a = noGrad(() => m.forward(x, { occlude: [2] })).dataSync(), e = noGrad(() => m.forward(Tensor.fromArray(blanked, [2, 8, 8]))).dataSync();
  a.forEach((v, i) => assert.ok(Math.abs(v - e[i]) < 1e-5));
  assert.notDeepEqual(a, noGrad(() => m.forward(x)).dataSync());
  // pixel gradients through an occlusion: zero on the blanked cell r0c1, non-zero elsewhere
  const xg = x.clone().requiresGrad_(true);
  m.forward(xg, { occlude: [2] }).square().sum().backward();
  const g = xg.grad!.dataSync();
  for (let b = 0; b < 2; b++) for (let y = 0; y < 8; y++) for (let c = 0; c < 8; c++) {
    const v = g[b * 64 + y * 8 + c];
    if (y < 4 && c >= 4) assert.equal(v, 0, `occluded pixel (${b}, ${y}, ${c}) has gradient ${v}`);
  }
  assert.ok(Array.from(g).filter((v) => v !== 0).length > 2 * 48 * 0.9, "shown pixels receive gradient");
  assert.throws(() => m.forward(x, { occlude: [0] }), /occlude position 0 is not a patch token \(1\.\.4; 0 is \[CLS\]\)/);
  // onEmbeddings sees (B, N+1, D) once; its replacement is what the encoder uses; gradients reach it
  let seen: number[] = [];
  const leaf = zeros([2, 5, 8]).requiresGrad_(true);
  const out = m.forward(x, { onEmbeddings: (t) => { seen = t.shape; return leaf; } });
  assert.deepEqual(seen, [2, 5, 8]);
  const zeroIn = noGrad(() => m.forward(rand([2, 8, 8]), { onEmbeddings: () => zeros([2, 5, 8]) })).dataSync();
  out.dataSync().forEach((v, i) => assert.ok(Math.abs(v - zeroIn[i]) < 1e-5));
  out.sum().backward();
  assert.ok(leaf.grad && (leaf.grad.dataSync() as Float32Array).some((v) => v !== 0));
  assert.throws(() => m.forward(x, { onEmbeddings: () => zeros([2, 4, 8]) }), /onEmbeddings must return \[2, 5, 8\], got \[2, 4, 8\]/);
  // pixel gradients through the differentiable path
  const px = x.clone().requiresGrad_(true);
  m.forward(px).select(1, 0).sum().backward();
  assert.ok((px.grad!.dataSync() as Float32Array).some((v) => v !== 0));
});

test("augmentBatch: shifts with zero fill and mirrors, deterministic for a generator state", () => {
  const src = Uint8Array.from({ length: 2 * 784 }, (_, i) => (i * 7) % 256);
  const a = new Float32Array(2 * 784), b = new Float32Array(2 * 784), none = new Float32Array(784);
  augmentBatch(src, [1, 0], a, { pad: 3, flip: true, gen: new Generator(9) });
  augmentBatch(src, [1, 0], b, { pad: 3, flip: true, gen: new Generator(9) });
  assert.deepEqual(a, b);
  augmentBatch(src, [1], none, { pad: 0, flip: false, gen: new Generator(9) });
  const f = (v: number) => Math.fround(v / 255);
  none.forEach((v, i) => assert.equal(v, f(src[784 + i])));
  // a pure mirror (pad 0, flip forced by trying seeds until the coin says flip) reverses each row
  for (let s = 0; s < 20; s++) {
    const out = new Float32Array(784);
    augmentBatch(src, [0], out, { pad: 0, flip: true, gen: new Generator(s) });
    if (out[0] !== f(src[0])) { assert.equal(out[0], f(src[27])); assert.equal(out[28 + 5], f(src[28 + 22])); return; }
  }
  assert.fail("no seed in 0..19 flipped the image");
});

test("fashion-vit config: overrides (kebab or camel case, CLI strings) and errors", () => {
  const c = fashionVitConfig({ "d-model": "32", heads: 2, flip: "false" });
  assert.equal(c.dModel, 32); assert.equal(c.flip, false);
  assert.throws(() => fashionVitConfig({ dmodel: 3 }), /unknown model option "dmodel"/);
  assert.throws(() => fashionVitConfig({ cropPad: -1 }), /config field "cropPad" must be an integer in \[0, 27\], got -1/);
});

const skip = hasFashionMnist() ? false : "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";

test("fashion-vit: a tiny ViT learns on 512 images; predict and explain work", { skip }, () => {
  manualSeed(11);
  const data: FashionData = task.loadData({ limitTrain: 512, limitTest: 400 });
  const { model, config } = task.createModel(data, { patchSize: 7, patchOverlap: 0, stemChannels: [], dModel: 32, depth: 2, heads: 2, mlpDim: 64, cropPad: 0, flip: false }, new Generator(5));
  const opt = new optim.AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.01 });
  const gen = new Generator(1), losses: number[] = [];
  model.train();
  for (let epoch = 0; epoch < 5; epoch++) {
    const perm = Int32Array.from({ length: 512 }, (_, i) => i);
    for (let i = 511; i > 0; i--) { const j = gen.int(i + 1); [perm[i], perm[j]] = [perm[j], perm[i]]; }
    for (let s = 0; s < 512; s += 64) {
      losses.push(tidy(() => {
        const loss = task.loss(model, data, perm.subarray(s, s + 64));
        opt.zeroGrad(); loss.backward(); opt.step(); opt.zeroGrad();
        return loss.item();
      }));
    }
  }
  const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5, tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
  assert.ok(tail < head - 0.5, `loss should fall: first ${head.toFixed(3)}, last ${tail.toFixed(3)}`);
  model.eval();
  const m = task.evaluate(model, data);
  assert.ok(m.accuracy > 0.4, `test accuracy ${m.accuracy} should be well above chance (0.1)`);
  assert.ok(Object.keys(m).includes("acc_ankle_boot") && Object.keys(m).length === 12);
  // predict on a test image: class name, top-3 probabilities in decreasing order, the true label in details
  const p = task.predict(model, config, "test:0");
  assert.ok(config.classNames && (config.classNames as string[]).includes(p.output));
  assert.equal(p.alternatives!.length, 3);
  assert.ok(p.alternatives![0].score >= p.alternatives![1].score && p.alternatives![0].output === p.output);
  assert.equal(p.details!.label, "Ankle boot"); // Fashion-MNIST test image 0 is an ankle boot
  // explain: 17 tokens (CLS + 4×4 patches), a scalar score equal to the logit, attention of the two layers
  const target = task.explain!(model, config, { pixels: task.faithfulnessInputs!(data, 3)[1].pixels }, "Trouser");
  assert.equal(target.tokens.length, 17);
  assert.equal(target.targetIndex, 1);
  assert.deepEqual(target.image!.grid, [4, 4]);
  const { result, records } = noGrad(() => captureAttention(model, () => target.score()));
  assert.deepEqual(result.shape, []);
  assert.equal(records.filter((r) => target.layerFilter!(r.name)).length, 2);
  const occluded = noGrad(() => target.score({ occlude: [1, 2, 3, 4, 5, 6, 7, 8] })).item();
  assert.notEqual(occluded, result.item());
  assert.throws(() => task.explain!(model, config, { text: "test:0" }, "Hat"), /unknown target class "Hat"/);
});

test("ViT with a convolutional stem: names, shapes, occlusion, pixel gradients, config errors", () => {
  manualSeed(7);
  const cfg = tiny({ stemChannels: [3, 5], stemStride: 2, patchOverlap: 2 });
  const m = new VisionTransformer(cfg, new Generator(8)).eval();
  const keys = Object.keys(m.stateDict());
  for (const k of ["stem.0.weight", "stem.0.bias", "stem.1.weight", "stem.1.bias", "patch_embed.proj.weight"]) assert.ok(keys.includes(k), `missing ${k}`);
  assert.deepEqual(m.stateDict()["stem.1.weight"].shape, [5, 3, 3, 3]);
  // 8×8 image → stem map 4×4×5; a 4-pixel cell is 2×2 features, 2 pixels of context are 1 feature → K' = 4
  assert.deepEqual(m.patchEmbed.proj.weight.shape, [8, 4 * 4 * 5]);
  assert.deepEqual(m.grid, [2, 2]);
  const x = rand([2, 8, 8]);
  assert.deepEqual(noGrad(() => m.forward(x)).shape, [2, 3]);
  // the JS and the differentiable normalisation agree, with and without occlusion
  for (const occ of [undefined, [1, 4]]) {
    const fast = m.normalizedImages(x, { occlude: occ }).dataSync(), slow = m.normalizedImages(x.clone().requiresGrad_(true), { occlude: occ }).dataSync();
    fast.forEach((v, i) => assert.ok(Math.abs(v - slow[i]) < 1e-6, `pixel ${i}: ${v} vs ${slow[i]}`));
  }
  // stem patches are the feature map's windows: patch (0, 0)'s first tap lies outside the map (context row −1) → 0
  const p = noGrad(() => m.stemPatches(x));
  assert.deepEqual(p.shape, [2, 4, 80]);
  assert.ok((p.dataSync() as Float32Array).subarray(0, 5).every((v) => v === 0));
  // occluding cell r1c1 (token 4) = feeding the image with that 4×4 cell at the mean pixel
  const img = x.dataSync() as Float32Array, blanked = img.slice();
  for (let b = 0; b < 2; b++) for (let y = 4; y < 8; y++) for (let c = 4; c < 8; c++) blanked[b * 64 + y * 8 + c] = 0.3;
  const a = noGrad(() => m.forward(x, { occlude: [4] })).dataSync(), e = noGrad(() => m.forward(Tensor.fromArray(blanked, [2, 8, 8]))).dataSync();
  a.forEach((v, i) => assert.ok(Math.abs(v - e[i]) < 1e-5));
  // gradients reach the pixels and every stem parameter
  const px = x.clone().requiresGrad_(true);
  m.forward(px).select(1, 0).sum().backward();
  assert.ok((px.grad!.dataSync() as Float32Array).some((v) => v !== 0));
  for (const conv of m.stem) assert.ok((conv as unknown as { weight: Tensor }).weight.grad!.dataSync().some((v) => v !== 0));
  // a stem-less model has no stem parameters and the same names as before
  assert.ok(!Object.keys(new VisionTransformer(tiny()).stateDict()).some((k) => k.startsWith("stem.")));
  assert.throws(() => new VisionTransformer(tiny({ stemChannels: [4], stemStride: 3 })), /stemStride 3 must divide config.patchSize 4/);
  assert.throws(() => new VisionTransformer(tiny({ stemChannels: [4, 0] })), /stemChannels must be a list of positive integers, got \[4,0\]/);
  assert.throws(() => new VisionTransformer(tiny({ stemChannels: [4] })).stemPatches(rand([1, 7, 7])), /expected images \(B, 1, 8, 8\)/);
  assert.deepEqual(fashionVitConfig({ "stem-channels": "16, 32" }).stemChannels, [16, 32]);
  assert.deepEqual(fashionVitConfig({ "stem-channels": 24 }).stemChannels, [24]);
  assert.deepEqual(fashionVitConfig({ "stem-channels": "none" }).stemChannels, []);
  assert.deepEqual(fashionVitConfig({}).stemChannels, [16, 32]);
  // a checkpoint config from before the stem existed (no stemChannels key) rebuilds the stem-less model it was
  const legacy: Record<string, unknown> = { ...fashionVitConfig({ dModel: 16, depth: 1, heads: 2, mlpDim: 16 }) };
  delete legacy.stemChannels; delete legacy.stemStride;
  assert.ok(!Object.keys(task.modelFromConfig(legacy as never).stateDict()).some((k) => k.startsWith("stem.")));
});

test("ViT with a stem learns a toy task (loss falls)", () => {
  manualSeed(9);
  const m = new VisionTransformer(tiny({ stemChannels: [4], numClasses: 2 }), new Generator(9));
  const opt = new optim.AdamW([...m.parameters()], { lr: 3e-3 });
  // class 1: bright left half; class 0: bright right half
  const n = 16, px = new Float32Array(n * 64), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) { labels[i] = i % 2; for (let y = 0; y < 8; y++) for (let c = 0; c < 8; c++) px[i * 64 + y * 8 + c] = (c < 4) === (i % 2 === 1) ? 0.9 : 0.1; }
  const x = Tensor.fromArray(px, [n, 8, 8]), t = Tensor.fromArray(labels, [n], "int32");
  const losses: number[] = [];
  for (let s = 0; s < 30; s++) {
    losses.push(tidy(() => { const l = F.crossEntropy(m.forward(x), t); opt.zeroGrad(); l.backward(); opt.step(); return l.item(); }));
  }
  assert.ok(losses[29] < losses[0] * 0.5, `loss ${losses[0]} → ${losses[29]}`);
});
