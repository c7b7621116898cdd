// CharGPT (src/models/char-gpt.ts), decoding utilities (src/models/generate.ts) and the char-lm task.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor, Generator, noGrad, tidy, optim, captureAttention, manualSeed } from "../src/node.js";
import { Tokenizer } from "../src/data/tokenizer.js";
import { CharGPT, resolveCharGPTConfig } from "../src/models/char-gpt.js";
import { KVCache, argmax, generate, type CachedDecoder } from "../src/models/generate.js";
import { samplingDistribution } from "./helpers/sampling-reference.js";
import { task, encodeChars, evaluateCharLM, parseOverrides, parsePredictFlags, parseTargetChar, windows, type CharLMData } from "../src/node/tasks/char-lm.js";
import { hasFortunes } from "../src/node/datasets.js";

const small = { vocabSize: 23, blockSize: 16, dModel: 32, nHeads: 4, nLayers: 2, dropout: 0 };
const ids = (a: ArrayLike<number>, B = 1) => Tensor.fromArray(Int32Array.from(a as ArrayLike<number>), [B, a.length / B]);
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test("cached forward gives the full forward's logits (prefill, chunks, single steps; batch 2; untied head)", () => {
  for (const tieWeights of [true, false]) {
    const m = new CharGPT({ ...small, tieWeights }, new Generator(7)).eval();
    const B = 2, T = 13, seq = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + (i >> 3)) % small.vocabSize);
    const full = noGrad(() => m.forward(ids(seq, B))).toFloat32Array();                          // (B, T, V)
    const cache = m.createCache(B);
    const V = small.vocabSize, got = new Float32Array(B * T * V);
    noGrad(() => {
      let p = 0;
      for (const len of [5, 3, 1, 1, 1, 2]) {                                                     // 5 + 3 + 1 + 1 + 1 + 2 = 13
        const chunk = new Int32Array(B * len);
        for (let b = 0; b < B; b++) chunk.set(seq.subarray(b * T + p, b * T + p + len), b * len);
        const out = m.forwardWithCache(ids(chunk, B), cache).toFloat32Array();                    // (B, len, V)
        for (let b = 0; b < B; b++) got.set(out.subarray(b * len * V, (b + 1) * len * V), (b * T + p) * V);
        p += len;
        assert.equal(cache.length, p);
      }
    });
    assert.ok(maxAbsDiff(full, got) < 1e-5, `tie=${tieWeights}: cached and full logits differ by ${maxAbsDiff(full, got)}`);
    // the logits really depend on the context (a broken cache that ignored it would not match the full forward)
    assert.ok(maxAbsDiff(full.subarray(0, V), full.subarray((T - 1) * V, T * V)) > 1e-3);
  }
});

test("KVCache and CharGPT reject bad shapes and overflowing positions with clear errors", () => {
  const m = new CharGPT(small, new Generator(1)).eval();
  assert.throws(() => m.forward(ids(new Array(17).fill(1))), /positions 0\.\.16 exceed blockSize 16/);
  assert.throws(() => m.forward(Tensor.fromArray(new Float32Array(4), [1, 4])), /ids must be int32 \(B, T\)/);
  const cache = m.createCache(1);
  noGrad(() => m.forwardWithCache(ids(new Array(15).fill(2)), cache));
  assert.throws(() => noGrad(() => m.forwardWithCache(ids([1, 2]), cache)), /positions 15\.\.16 exceed blockSize 16/);
  assert.throws(() => noGrad(() => m.forwardWithCache(ids([1, 2], 2), cache)), /cache \(layers 2, batch 1.*batch 2/);
  const c = new KVCache(1, 1, 2, 4, 3);
  assert.throws(() => c.append(0, Tensor.empty([1, 2, 2, 5]), Tensor.empty([1, 2, 2, 5])), /k has shape \[1, 2, 2, 5\], expected \[1, 2, 2, 4\]/);
  assert.throws(() => c.append(0, Tensor.empty([1, 2, 4, 4]), Tensor.empty([1, 2, 4, 4])), /exceed maxLength 3/);
  assert.throws(() => resolveCharGPTConfig({ ...small, dModel: 30 }), /dModel 30 must be divisible by nHeads 4/);
  assert.throws(() => resolveCharGPTConfig({ ...small, blockSize: 0 }), /blockSize must be a positive integer/);
});

test("causal attention: captured weights are lower-triangular, one record per block", () => {
  const m = new CharGPT(small, new Generator(3)).eval();
  const T = 9;
  const { records } = captureAttention(m, () => noGrad(() => m.forward(ids([1, 5, 9, 3, 4, 7, 8, 2, 6]))));
  assert.deepEqual(records.map((r) => r.name), ["blocks.0.attn", "blocks.1.attn"]);
  for (const r of records) {
    assert.equal(r.causal, true);
    assert.deepEqual(r.weights.shape, [1, small.nHeads, T, T]);
    const w = r.weights.toFloat32Array();
    for (let h = 0; h < small.nHeads; h++) for (let i = 0; i < T; i++) {
      let s = 0;
      for (let j = 0; j < T; j++) { const x = w[(h * T + i) * T + j]; s += x; if (j > i) assert.equal(x, 0); }
      assert.ok(Math.abs(s - 1) < 1e-5);
    }
  }
});

/** A decoder whose next-token logits are always `logits`: generate()'s sampling seen one step at a time. */
function constantDecoder(logits: Float32Array): CachedDecoder {
  const V = logits.length;
  const out = (B: number, T: number) => Tensor.fromArray(Float32Array.from({ length: B * T * V }, (_, i) => logits[i % V]), [B, T, V]);
  return {
    maxLength: 8,
    forward: (x) => out(x.shape[0], x.shape[1]),
    forwardWithCache: (x, cache) => { cache.advance(x.shape[1]); return out(x.shape[0], x.shape[1]); },
    createCache: (batch) => new KVCache(1, batch, 1, 1, 8),
  };
}

test("sampling: temperature 0 is greedy, top-k and top-p keep only the allowed tokens, temperature sharpens", () => {
  const logits = Float32Array.from([0.5, 2.0, -1.0, 1.9, 0.0, 1.5]), m = constantDecoder(logits);
  const draw = (n: number, o: Parameters<typeof generate>[2]) => generate(m, [0], { maxNewTokens: n, ...o }).ids;
  assert.deepEqual(draw(50, { temperature: 0 }), new Array(50).fill(1));
  assert.deepEqual([...new Set(draw(2000, { topK: 3, seed: 11 }))].sort(), [1, 3, 5]);
  // top-p 0.5: p(1) ≈ 0.35, p(3) ≈ 0.32 → the nucleus is {1, 3}
  const pp = samplingDistribution(logits, { topP: 0.5 });
  assert.deepEqual([...pp].map((x) => x > 0), [false, true, false, true, false, false]);
  assert.ok(Math.abs(pp[1] + pp[3] - 1) < 1e-12);
  assert.deepEqual([...new Set(draw(500, { topP: 0.5, seed: 3 }))].sort(), [1, 3]);
  // a near-zero temperature approaches greedy; a high one approaches uniform
  assert.ok(samplingDistribution(logits, { temperature: 1e-3 })[1] > 0.999);
  const hot = samplingDistribution(logits, { temperature: 1e3 });
  assert.ok(Math.max(...hot) - Math.min(...hot) < 1e-2);
  // the empirical frequencies follow softmax(logits / T), each within 4.5 standard deviations
  const p = samplingDistribution(logits, { temperature: 0.7 }), counts = new Float64Array(6), n = 4000;
  for (const id of draw(n, { temperature: 0.7, seed: 5 })) counts[id]++;
  for (let i = 0; i < 6; i++) {
    const sd = Math.sqrt((p[i] * (1 - p[i])) / n);
    assert.ok(Math.abs(counts[i] / n - p[i]) <= 4.5 * sd + 1e-3, `token ${i}: ${counts[i] / n} vs ${p[i]}`);
  }
  assert.deepEqual(draw(3, { temperature: 0, banned: [1] }), [3, 3, 3]);
  assert.throws(() => draw(1, { topK: -1 }), /topK must be an integer >= 0/);
  assert.throws(() => draw(1, { temperature: -1 }), /temperature must be/);
  assert.throws(() => draw(1, { topP: 0 }), /topP must be in \(0, 1\]/);
});

test("generate: cached and uncached decoding give the same tokens; onToken streams and can stop", () => {
  const m = new CharGPT(small, new Generator(5)).eval();
  const prompt = [3, 9, 4];
  const a = generate(m, prompt, { maxNewTokens: 13, temperature: 1, generator: new Generator(1) });
  const b = generate(m, prompt, { maxNewTokens: 13, temperature: 1, generator: new Generator(1), useCache: false });
  assert.equal(a.ids.length, 13);
  assert.deepEqual(a.ids, b.ids);
  assert.ok(a.tokensPerSecond > 0 && b.tokensPerSecond > 0);
  const greedy = generate(m, prompt, { maxNewTokens: 5, temperature: 0 }).ids;
  // greedy = argmax of the full forward at every step
  const ctx = [...prompt];
  for (const id of greedy) {
    const row = noGrad(() => m.forward(ids(ctx)).select(0, 0).select(0, ctx.length - 1).toFloat32Array());
    assert.equal(id, argmax(row));
    ctx.push(id);
  }
  const streamed: number[] = [];
  const r = generate(m, prompt, { maxNewTokens: 50, onToken: (id, step) => { streamed.push(id); return step < 3; } });
  assert.deepEqual(r.ids, streamed);
  assert.equal(r.ids.length, 4);
  assert.equal(r.stoppedEarly, true);
  // longer than the context: still produces every token (window refills)
  assert.equal(generate(m, prompt, { maxNewTokens: 40, temperature: 0 }).ids.length, 40);
});

/** A corpus whose next character is predictable only from context: a sentence repeated with varying offsets. */
function syntheticData(): CharLMData {
  const s = "the cat sat on the mat. a dog ate the log. ";
  const text = s.repeat(60);
  const tok = Tokenizer.train("char", [text]);
  const enc = Int32Array.from(tok.encode(text));
  return { tokenizer: tok, train: enc, val: enc.slice(0, 600), trainEntries: 1, valEntries: 1 };
}

function trainSteps(data: CharLMData, overrides: Record<string, unknown>, steps: number, batch: number, lr: number): { model: CharGPT; first: number; last: number } {
  manualSeed(4);
  const { model } = task.createModel(data, overrides, new Generator(4));
  const opt = new optim.AdamW(model.parameters(), { lr, weightDecay: 0.01 });
  const g = new Generator(9), n = task.trainSize(data), losses: number[] = [];
  model.train();
  for (let s = 0; s < steps; s++) {
    const idx = Int32Array.from({ length: batch }, () => g.int(n));
    losses.push(tidy(() => {
      const loss = task.loss(model, data, idx);
      opt.zeroGrad(); loss.backward(); optim.clipGradNorm(model.parameters(), 1); opt.step();
      return loss.item();
    }));
  }
  model.eval();
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  return { model, first: losses[0], last: mean(losses.slice(-10)) };
}

test("a tiny model learns a context-dependent synthetic text (loss far below log V)", (t) => {
  const data = syntheticData(), V = data.tokenizer.vocabSize;
  const { model, first, last } = trainSteps(data, { dModel: 32, nLayers: 2, nHeads: 2, blockSize: 32, dropout: 0 }, 60, 16, 1e-2);
  assert.ok(Math.abs(first - Math.log(V)) < 0.3, `initial loss ${first} should be ≈ log V = ${Math.log(V)}`);
  const val = evaluateCharLM(model, data.val).loss;
  t.diagnostic(`loss ${first.toFixed(3)} → train ${last.toFixed(3)}, val ${val.toFixed(3)} (log V ${Math.log(V).toFixed(3)})`);
  assert.ok(last < 0.35 * Math.log(V) && val < 0.35 * Math.log(V), `train ${last}, val ${val} vs log V ${Math.log(V)}`);
});

test("evaluateCharLM scores every character once (full windows + tail) and matches a direct computation", () => {
  const m = new CharGPT({ ...small, blockSize: 8 }, new Generator(2)).eval();
  const text = Int32Array.from({ length: 8 * 3 + 5 }, (_, i) => (i * 5 + 1) % small.vocabSize);   // 3 windows + tail of 4
  const r = evaluateCharLM(m, text, { batchSize: 2 });
  assert.equal(r.chars, text.length - 1);
  let nats = 0;
  for (const [s, T] of [[0, 8], [8, 8], [16, 8], [24, 4]]) {
    const lp = noGrad(() => m.forward(ids(text.subarray(s, s + T))).logSoftmax(-1).toFloat32Array());
    for (let t = 0; t < T; t++) nats -= lp[t * small.vocabSize + text[s + t + 1]];
  }
  assert.ok(Math.abs(r.loss - nats / (text.length - 1)) < 1e-5);
  assert.ok(Math.abs(r.bitsPerChar - r.loss / Math.LN2) < 1e-9 && Math.abs(r.perplexity - Math.exp(r.loss)) < 1e-9);
  assert.equal(evaluateCharLM(m, text, { limit: 2 }).chars, 16);
  const w = windows(text, [3], 4);
  assert.deepEqual([...w.y.dataSync()], [...text.subarray(4, 8)]);
  assert.throws(() => windows(text, [27], 4), /window \[27, 32\) outside the text of 29 characters/);
});

test("char-lm task: config round trip, predict and explain hooks", () => {
  const data = syntheticData();
  const { model, config } = task.createModel(data, { "d-model": "32", "n-layers": 1, heads: 2, "block-size": "24", dropout: 0 }, new Generator(1));
  assert.equal(model.config.dModel, 32);
  assert.equal(model.config.nLayers, 1);
  assert.throws(() => task.createModel(data, { width: 3 }, new Generator(1)), /unknown model option 'width'/);
  assert.throws(() => parseOverrides({ dModel: "big" }), /option 'dModel' must be a number/);
  const copy = task.modelFromConfig(JSON.parse(JSON.stringify(config)));
  copy.loadStateDict(model.stateDict());
  model.eval(); copy.eval();
  const x = ids(data.train.subarray(0, 20));
  assert.equal(maxAbsDiff(noGrad(() => model.forward(x).toFloat32Array()), noGrad(() => copy.forward(x).toFloat32Array())), 0);

  // data whose vocabulary is ordered differently (another corpus version): ids are translated, not misread
  const toks = data.tokenizer.toJSON().tokens.slice(6).reverse();
  const tok2 = Tokenizer.fromTokens("char", toks, false);
  const text = data.tokenizer.decode(data.val);
  const data2: CharLMData = { ...data, tokenizer: tok2, train: encodeChars(tok2, text), val: encodeChars(tok2, text) };
  assert.notDeepEqual([...data2.val.subarray(0, 20)], [...data.val.subarray(0, 20)]);
  assert.ok(Math.abs(task.evaluate(copy, data2).loss - task.evaluate(copy, data).loss) < 1e-6);

  const p = parsePredictFlags({ "max-tokens": "12", temperature: "0", "top-k": "5", "no-cache": true, seed: "3", quiet: true });
  assert.deepEqual([p.maxTokens, p.temperature, p.topK, p.useCache, p.seed, p.stream], [12, 0, 5, false, 3, false]);
  assert.throws(() => parsePredictFlags({ "top-k": "2.5" }), /--top-k must be an integer >= 0/);
  const pred = task.predict(model, config, "the c", { "max-tokens": "10", temperature: "0", quiet: true, "no-stop": true });
  assert.ok(pred.output.startsWith("the c") && pred.output.length === 15, JSON.stringify(pred.output));
  assert.equal(pred.details?.sameOutputWithAndWithoutCache, true);
  assert.ok((pred.details?.tokensPerSecondCached as number) > 0 && (pred.details?.tokensPerSecondUncached as number) > 0);

  const ex = task.explain!(model, config, { text: "the cat s" }, "a");
  assert.deepEqual(ex.tokens, Array.from("the cat s"));
  assert.equal(ex.query, 8);
  assert.equal(ex.targetIndex, data.tokenizer.tokenToId("a"));
  const full = noGrad(() => model.forward(ids(data.tokenizer.encode("the cat s"))).select(0, 0).select(0, 8).toFloat32Array());
  const sc = noGrad(() => ex.score());
  assert.deepEqual(sc.shape, []);
  assert.ok(Math.abs(sc.item() - full[ex.targetIndex]) < 1e-5);
  assert.notEqual(noGrad(() => ex.score({ occlude: [8] }).item()), sc.item());
  const { records } = captureAttention(model, () => noGrad(() => ex.score()));
  assert.equal(records.filter((r) => ex.layerFilter!(r.name)).length, 1);
  assert.equal(task.explain!(model, config, { text: "the cat s" }).targetIndex, argmax(full.map((v, i) => (i < 6 ? -Infinity : v))));
  assert.equal(parseTargetChar("\\n"), "\n");
  const odd = "the cat\u00e9 e\u0301 😀 sat!";                                           // NFC, unknown and astral characters
  assert.deepEqual([...encodeChars(data.tokenizer, odd)], data.tokenizer.encode(odd));
  assert.throws(() => task.explain!(model, config, { text: "the" }, "ab"), /target must be one character/);
  assert.throws(() => task.explain!(model, config, { text: "the" }, "Z"), /"Z" is not in the model's vocabulary/);
});

test("fortunes char-LM: a tiny model on a small slice goes well below log V", (t) => {
  if (!hasFortunes()) { t.skip("Debian packages fortunes/fortunes-min not installed (apt-get install -y fortunes fortunes-min)"); return; }
  const data = task.loadData({ limitTrain: 200, limitTest: 20 });
  assert.equal(data.tokenizer.vocabSize > 90, true);
  const V = data.tokenizer.vocabSize;
  const { model, first, last } = trainSteps(data, { dModel: 32, nLayers: 2, nHeads: 4, blockSize: 32, dropout: 0 }, 120, 16, 3e-3);
  const val = task.evaluate(model, data).loss;
  t.diagnostic(`loss ${first.toFixed(3)} → train ${last.toFixed(3)}, val ${val.toFixed(3)} nats/char (log V ${Math.log(V).toFixed(3)})`);
  // log V ≈ 4.68; the unigram entropy of the corpus is 3.30 nats/char: going below it needs the context
  assert.ok(Math.abs(first - Math.log(V)) < 0.2, `initial loss ${first}`);
  assert.ok(last < 3.25 && val < 3.25, `train ${last}, val ${val}: not below the unigram entropy 3.30 (log V ${Math.log(V)})`);
});
