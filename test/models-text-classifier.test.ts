// TextClassifier (src/models/text-classifier.ts) and the fortunes-classifier / fortunes-mlm tasks: padding is masked,
// configs and tokenizers round-trip through JSON, unknown words become [UNK], a masked-LM checkpoint initialises the
// classifier, and tiny models learn (synthetic topics always; the real fortunes split when the Debian data is there).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../src/tensor.js";
import { tidy } from "../src/scope.js";
import { noGrad } from "../src/autograd.js";
import { Generator, manualSeed } from "../src/random.js";
import { AdamW, clipGradNorm } from "../src/optim/index.js";
import { captureAttention } from "../src/explain/capture.js";
import { Rng } from "../src/data/hash.js";
import { UNK_ID } from "../src/data/tokenizer.js";
import { serializeCheckpoint } from "../src/node/checkpoint.js";
import { hasFortunes } from "../src/node/datasets.js";
import { TextClassifier, lengthGroups, maskTokens } from "../src/models/text-classifier.js";
import { BRIEF_SENTENCE, MASK_ID, task as cls, tokenizerFromConfig, type FortunesClsData } from "../src/node/tasks/fortunes-classifier.js";
import { task as mlm, type FortunesMlmData } from "../src/node/tasks/fortunes-mlm.js";
import type { ModelConfig, Task } from "../src/tasks/task.js";
import type { Module } from "../src/nn/module.js";

const TINY = { dModel: 16, depth: 1, heads: 2, ff: 32, minFreq: 1, dropout: 0 };
const CHINESE = "猫坐在垫子上，看着鸟。";

/** Three synthetic "topics": each text mixes shared filler words with two keywords of its class. */
function synthetic(nTrain: number, nTest: number, seed = 1): FortunesClsData {
  const rng = new Rng(seed);
  const pick = <T>(a: readonly T[]) => a[Math.floor(rng.next() * a.length)];
  const keys = [["compiler", "kernel", "byte", "program"], ["senate", "vote", "president", "law"], ["pizza", "bread", "cheese", "wine"]];
  const filler = "the a of and to is in that it was for on are as with his they be at one have this from".split(" ");
  const make = (n: number) => Array.from({ length: n }, (_, i) => {
    const label = i % 3;
    const words = Array.from({ length: 4 + Math.floor(rng.next() * 6) }, () => pick(filler));
    for (let k = 0; k < 2; k++) words.splice(Math.floor(rng.next() * (words.length + 1)), 0, pick(keys[label]));
    return { text: words.join(" ") + ".", label };
  });
  const train = make(nTrain);
  return { categories: ["computers", "politics", "food"], train, test: make(nTest), allTrain: train, corpus: train.map((e) => e.text), cache: new WeakMap() };
}

/** Plain AdamW loop over the task's loss (the trainer's job in production); returns the mean loss per epoch. */
function fit<M extends Module, D>(t: Task<M, D>, model: M, data: D, o: { epochs: number; batch: number; lr: number }): number[] {
  const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: 0.01 });
  const n = t.trainSize(data), g = new Generator(3), losses: number[] = [];
  model.train();
  for (let e = 0; e < o.epochs; e++) {
    const perm = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) { const j = g.int(i + 1); [perm[i], perm[j]] = [perm[j], perm[i]]; }
    let sum = 0, steps = 0;
    for (let s = 0; s < n; s += o.batch) {
      sum += tidy(() => {
        opt.zeroGrad();
        const l = t.loss(model, data, Int32Array.from(perm.slice(s, s + o.batch)));
        l.backward();
        clipGradNorm(model.parameters(), 1);
        opt.step();
        return l.item();
      });
      steps++;
    }
    losses.push(sum / steps);
  }
  model.eval();
  return losses;
}

test("padding is masked: a padded row gives the same logits and zero attention on padding", () => {
  manualSeed(5);
  for (const pooling of ["cls", "mean"] as const) {
    const m = new TextClassifier({ vocabSize: 30, dModel: 16, depth: 2, heads: 2, ff: 32, maxLen: 12, dropout: 0, numClasses: 3, pooling }, new Generator(1)).eval();
    const short = [2, 7, 8, 9], long = [2, 10, 11, 12, 13, 14, 15];
    const alone = noGrad(() => m.forward(Tensor.fromArray(Int32Array.from(short), [1, 4])).dataSync());
    const batch = Int32Array.from([...short, 0, 0, 0, ...long]);
    const { result, records } = captureAttention(m, () => noGrad(() => m.forward(Tensor.fromArray(batch, [2, 7])).dataSync()));
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(result[c] - alone[c]) < 1e-4, `${pooling}: class ${c} ${result[c]} vs ${alone[c]}`);
    assert.equal(records.length, 2);
    for (const r of records) {
      assert.deepEqual(r.weights.shape, [2, 2, 7, 7]);
      const w = r.weights.dataSync();
      for (let h = 0; h < 2; h++) for (let q = 0; q < 7; q++) for (let k = 4; k < 7; k++) assert.equal(w[((0 * 2 + h) * 7 + q) * 7 + k], 0, `${r.name} attends to padding`);
    }
  }
  assert.throws(() => new TextClassifier({ vocabSize: 30, dModel: 15, depth: 1, heads: 2, ff: 8, maxLen: 8, dropout: 0, numClasses: 2, pooling: "cls" }), /dModel 15 must be divisible by heads 2/);
  assert.throws(() => new TextClassifier({ vocabSize: 30, dModel: 16, depth: 1, heads: 2, ff: 8, maxLen: 8, dropout: 0, numClasses: 2, pooling: "max" as "cls" }), /'pooling'/);
  const m = new TextClassifier({ vocabSize: 30, dModel: 16, depth: 1, heads: 2, ff: 8, maxLen: 8, dropout: 0, numClasses: 2, pooling: "cls" });
  assert.throws(() => m.forward(Tensor.fromArray(new Int32Array(9).fill(3), [1, 9])), /sequence length 9 must be in \[1, maxLen=8\]/);
});

test("lengthGroups bounds padded tokens; maskTokens never touches protected ids", () => {
  const lens = [5, 50, 7, 48, 6, 49];
  const groups = lengthGroups([0, 1, 2, 3, 4, 5], (i) => lens[i], 100);
  assert.deepEqual(groups.flat().sort(), [0, 1, 2, 3, 4, 5]);
  for (const g of groups) assert.ok(g.length === 1 || g.length * Math.max(...g.map((i) => lens[i])) <= 100, `group ${g} too large`);
  assert.deepEqual(groups[0], [1, 5]);                                               // the two longest go together
  const ids = Int32Array.from([2, 10, 11, 12, 13, 0, 2, 14, 15, 0, 0, 0]), before = Int32Array.from(ids);
  const g = new Generator(4);
  const r = maskTokens(ids, 2, 6, { rate: 0.5, maskId: 6, firstRandomId: 7, vocabSize: 20, protect: new Set([0, 2]), atLeastOne: true }, () => g.random());
  assert.ok(r.positions.length >= 2);
  for (const p of r.positions) assert.ok(![0, 2].includes(before[p]), `protected position ${p} chosen`);
  r.positions.forEach((p, k) => assert.equal(r.targets[k], before[p]));
  for (let i = 0; i < ids.length; i++) if (![...r.positions].includes(i)) assert.equal(ids[i], before[i]);
});

test("config, tokenizer and labels round-trip through JSON; bad options are named", () => {
  const data = synthetic(30, 9);
  const { model, config } = cls.createModel(data, { ...TINY, pooling: "mean" }, new Generator(2));
  const stored = JSON.parse(JSON.stringify(config)) as ModelConfig;
  const again = cls.modelFromConfig(stored);
  again.loadStateDict(model.stateDict());
  model.eval(); again.eval();
  const tok = tokenizerFromConfig(stored);
  assert.equal(tok.idToToken(MASK_ID), "[MASK]");
  assert.deepEqual(stored.labels, ["computers", "politics", "food"]);
  assert.equal(stored.vocabSize, tok.vocabSize);
  const text = "the compiler and the pizza";
  assert.deepEqual(tok.encode(text), tokenizerFromConfig(config).encode(text));
  const a = cls.predict(model, config, text), b = cls.predict(again, stored, text);
  assert.deepEqual(b.alternatives, a.alternatives);
  assert.throws(() => cls.createModel(data, { dModel: 16, colour: "red" }, new Generator(0)), /unknown option\(s\) colour/);
  assert.throws(() => cls.createModel(data, { vocabSize: 10 }, new Generator(0)), /vocabSize cannot be set/);
  assert.throws(() => cls.createModel(data, { ...TINY, pooling: "max" }, new Generator(0)), /'pooling' must be cls or mean/);
  assert.throws(() => cls.modelFromConfig({ ...stored, labels: ["x"] }), /1 labels but numClasses is 3/);
});

// a sentence mixing words of the synthetic vocabulary ("the") with unknown ones
const MIXED = "The cat sat on the mat and looked at the bird.";

test("unknown words map to [UNK]: a mixed sentence, the brief's sentence and a Chinese one predict and explain", () => {
  const data = synthetic(30, 9);
  const { model, config } = cls.createModel(data, { ...TINY, pooling: "cls" }, new Generator(3));
  model.eval();
  for (const text of [MIXED, BRIEF_SENTENCE, CHINESE, ""]) {
    const p = cls.predict(model, config, text);
    const sum = p.alternatives!.reduce((s, x) => s + x.score, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
    assert.ok(config.labels instanceof Array && (config.labels as string[]).includes(p.output));
    const tokens = p.details!.tokens as string[];
    assert.equal(tokens[0], "[CLS]");
    if (text === CHINESE) assert.deepEqual(tokens.slice(1), ["[UNK]", "[UNK]", "[UNK]", "[UNK]"]);
    if (text === MIXED) assert.ok(tokens.includes("[UNK]") && tokens.includes("the"), tokens.join(" "));
  }
  const ex = cls.explain!(model, config, { text: MIXED }, "politics");
  assert.equal(ex.targetLabel, "politics");
  assert.equal(ex.targetIndex, 1);
  assert.equal(ex.tokens.length, 13);                                              // [CLS] + 11 words + "."
  assert.deepEqual(ex.special, [0]);
  assert.equal(ex.query, 0);                                                          // [CLS] pooling: its row is explained
  const { result, records } = captureAttention(model, () => noGrad(() => ex.score().item()));
  assert.equal(records.filter((r) => ex.layerFilter!(r.name)).length, 1);
  const occluded = noGrad(() => ex.score({ occlude: [1, 2, 3, 4, 5] }).item());
  assert.notEqual(occluded, result, "occluding five tokens changes the logit");
  let seen: Tensor | null = null;
  const s = ex.score({ onEmbeddings: (x) => { seen = x.detach().requiresGrad_(true); return seen; } });
  s.backward();
  assert.deepEqual(seen!.grad!.shape, [1, 13, 16]);
  assert.throws(() => cls.explain!(model, config, { text: "x" }, "sports"), /unknown target 'sports'/);
  assert.throws(() => cls.explain!(model, config, { ids: [UNK_ID, 99999] }), /ids\[1\] = 99999/);
});

test("a tiny model learns synthetic topics (loss falls, held-out accuracy far above chance)", () => {
  manualSeed(11);
  const data = synthetic(150, 60);
  const { model } = cls.createModel(data, { ...TINY, dModel: 32, ff: 64, labelSmoothing: 0 }, new Generator(11));
  const losses = fit(cls, model, data, { epochs: 8, batch: 16, lr: 3e-3 });
  assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `loss ${losses.map((l) => l.toFixed(3)).join(" → ")}`);
  const m = cls.evaluate(model, data);
  assert.ok(m.accuracy > 0.8, `accuracy ${m.accuracy}`);
  assert.ok(m.baselineAccuracy > 0.8, `baseline ${m.baselineAccuracy}`);
  assert.deepEqual(Object.keys(m).slice(0, 3), ["accuracy", "macroF1", "loss"]);
});

test("a masked-LM checkpoint initialises the classifier's encoder and vocabulary", () => {
  manualSeed(12);
  const base = synthetic(90, 9);
  const mdata: FortunesMlmData = { train: base.corpus, val: base.test.map((e) => e.text), corpus: base.corpus, cache: new WeakMap() };
  const { model: lm, config: lmConfig } = mlm.createModel(mdata, { ...TINY, dModel: 32, ff: 64, maxLen: 16 }, new Generator(12));
  const before = mlm.evaluate(lm, mdata).loss;
  const losses = fit(mlm, lm, mdata, { epochs: 8, batch: 16, lr: 5e-3 });
  const after = mlm.evaluate(lm, mdata);
  // filler words are uniform over 22, so ln 22 ≈ 3.1 nats is about the best reachable; the start is ≈ ln V ≈ 3.7
  assert.ok(after.loss < before - 0.25, `masked-LM loss ${before} → ${after.loss} (train ${losses.map((l) => l.toFixed(2)).join(" ")})`);
  const filled = mlm.predict(lm, lmConfig, "the [MASK] and the wine");
  assert.equal(filled.alternatives!.length, 5);
  assert.throws(() => mlm.predict(lm, lmConfig, "no mask here"), /\[MASK\]/);

  const dir = mkdtempSync(join(tmpdir(), "attnflow-cls-"));
  const path = join(dir, "mlm.safetensors");
  writeFileSync(path, serializeCheckpoint({ task: "fortunes-mlm", config: lmConfig, model: lm }));
  const { model, config } = cls.createModel(base, { init: path, dropout: 0.2 }, new Generator(0));
  assert.equal(config.init, path);
  assert.equal(config.dModel, 32);
  assert.deepEqual(config.tokenizer, lmConfig.tokenizer);
  const a = lm.stateDict(), b = model.stateDict();
  for (const k of Object.keys(b).filter((k) => k.startsWith("encoder.") || k.startsWith("tok_embed."))) {
    assert.deepEqual(b[k].dataSync(), a[k].dataSync(), `${k} not copied`);
  }
  assert.ok(!("mlm.bias" in b) && "head.weight" in b);
  assert.throws(() => cls.createModel(base, { init: path, dModel: 64 }, new Generator(0)), /'dModel' = 64 conflicts with the checkpoint/);
  assert.throws(() => cls.createModel(base, { init: join(dir, "missing.safetensors") }, new Generator(0)), /does not exist/);
});

test("fortunes: a tiny model on a subset learns (loss falls, accuracy above the majority class)", (t) => {
  if (!hasFortunes()) { t.skip("Debian packages fortunes/fortunes-min not installed (apt-get install fortunes fortunes-min)"); return; }
  manualSeed(13);
  const data = cls.loadData({ limitTrain: 600, limitTest: 200 });
  const { model, config } = cls.createModel(data, { dModel: 32, depth: 1, heads: 2, ff: 64, maxLen: 48, dropout: 0.1, tokenDropout: 0.1, classWeight: "none" }, new Generator(13));
  const losses = fit(cls, model, data, { epochs: 4, batch: 32, lr: 3e-3 });
  const counts = new Map<number, number>();
  for (const e of data.test) counts.set(e.label, (counts.get(e.label) ?? 0) + 1);
  const majority = Math.max(...counts.values()) / data.test.length;
  const m = cls.evaluate(model, data, { limit: 200 });
  assert.ok(losses[losses.length - 1] < losses[0] - 0.1, `loss ${losses.map((l) => l.toFixed(3)).join(" → ")}`);
  assert.ok(m.accuracy > majority + 0.05, `accuracy ${m.accuracy} vs majority class ${majority}`);
  assert.ok(data.categories.includes(cls.predict(model, config, BRIEF_SENTENCE).output));
});
