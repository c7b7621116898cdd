import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/tensor.js";
import { noGrad } from "../src/autograd.js";
import { tidy } from "../src/scope.js";
import { Generator } from "../src/random.js";
import { AdamW } from "../src/optim/optimizers.js";
import { clipGradNorm } from "../src/optim/clip.js";
import { captureAttention } from "../src/explain/capture.js";
import { generateDateDataset } from "../src/data/dates.js";
import { dateSourceTokenizer, dateTargetTokenizer } from "../src/data/dates.js";
import { Seq2SeqTransformer, alignmentAgreement, cachedSearchStep, type Seq2SeqConfig } from "../src/models/seq2seq.js";
import { beamSearch, greedyDecode, lengthPenaltyFactor, type StepFunction } from "../src/models/beam-search.js";
import { task, encodeDate, dateCharTokenizer, type DatesData } from "../src/node/tasks/dates.js";

// ---------- beam search on hand-made scores ----------
// tokens: 0 = EOS, 1 = a, 2 = b, 3 = BOS. Probabilities depend on the prefix only.
const EOS = 0, BOS = 3;
function toyProbs(prefix: readonly number[]): number[] {
  const p = prefix.slice(1).join("");
  if (p === "") return [0, 0.6, 0.4];               // a is the greedy first choice ...
  if (p === "1") return [0.34, 0.33, 0.33];         // ... but nothing after it is likely
  if (p === "2") return [0.9, 0.05, 0.05];          // b then EOS is the best sequence (0.36 > 0.204)
  return [1, 0, 0];
}
const toyStep: StepFunction<null> = (_m, prefixes) => {
  const out: number[] = [];
  for (const pr of prefixes) out.push(...toyProbs(pr).map((x) => (x > 0 ? Math.log(x) + 5 : -1e9)), -1e9); // logits, BOS never
  return out;
};

test("greedy and beam search differ on a hand-made scorer; beam finds the best sequence", () => {
  const g = greedyDecode(toyStep, null, { bos: BOS, eos: EOS, maxLen: 5 })[0];
  assert.deepEqual(g.tokens, [1]);
  assert.ok(g.finished);
  assert.ok(Math.abs(g.logProb - Math.log(0.6 * 0.34)) < 1e-9, `greedy logProb ${g.logProb}`);
  const beams = beamSearch(toyStep, null, { bos: BOS, eos: EOS, maxLen: 5, beamWidth: 2 })[0];
  assert.deepEqual(beams[0].tokens, [2]);
  assert.ok(Math.abs(beams[0].logProb - Math.log(0.36)) < 1e-9, `beam logProb ${beams[0].logProb}`);
  assert.deepEqual(beams[1].tokens, [1]);
  assert.ok(beams[0].score >= beams[1].score);
  // width 1 is greedy
  assert.deepEqual(beamSearch(toyStep, null, { bos: BOS, eos: EOS, maxLen: 5, beamWidth: 1 })[0][0].tokens, [1]);
});

test("length penalty favours the longer hypothesis when alpha is large", () => {
  const a0 = beamSearch(toyStep, null, { bos: BOS, eos: EOS, maxLen: 5, beamWidth: 2, lengthPenalty: 0 })[0][0];
  const a5 = beamSearch(toyStep, null, { bos: BOS, eos: EOS, maxLen: 5, beamWidth: 2, lengthPenalty: 5 })[0][0];
  assert.deepEqual(a0.tokens, [2]);
  assert.equal(a5.tokens.length, 2, `alpha=5 picks ${a5.tokens}`);
  assert.ok(Math.abs(a5.score - a5.logProb / lengthPenaltyFactor(3, 5)) < 1e-12);
  assert.equal(lengthPenaltyFactor(7, 0), 1);
});

test("beam search with a wide beam is exact (brute force over a random scorer), batched over sources", () => {
  // V = 3 (EOS, x, y), BOS = 3; pseudo-random logits from a hash of (source, prefix)
  const hash = (s: string) => { let h = 2166136261; for (const c of s) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0; return h; };
  const logitsOf = (src: number, prefix: readonly number[]) => [0, 1, 2].map((v) => ((hash(`${src}|${prefix.join(",")}|${v}`) % 1000) / 250));
  const step: StepFunction<null> = (_m, prefixes, sources) => prefixes.flatMap((p, i) => [...logitsOf(sources[i], p), -1e9]);
  const lp = (src: number, prefix: number[], v: number) => {
    const l = logitsOf(src, prefix), m = Math.max(...l);
    return l[v] - (m + Math.log(l.reduce((s, x) => s + Math.exp(x - m), 0)));
  };
  const maxLen = 4;
  for (const src of [0, 1]) {
    // brute force: every sequence ending in EOS within maxLen, or any of length maxLen without EOS
    let best = { seq: [] as number[], logProb: -Infinity };
    const walk = (seq: number[], acc: number) => {
      const pre = [BOS, ...seq];
      const e = acc + lp(src, pre, EOS);
      if (e > best.logProb) best = { seq: [...seq], logProb: e };
      for (const v of [1, 2]) {
        const a = acc + lp(src, pre, v);
        if (seq.length + 1 === maxLen) { if (a > best.logProb) best = { seq: [...seq, v], logProb: a }; } else walk([...seq, v], a);
      }
    };
    walk([], 0);
    const got = beamSearch(step, null, { bos: BOS, eos: EOS, maxLen, beamWidth: 81, numSources: 2 })[src][0];
    assert.deepEqual(got.tokens, best.seq, `source ${src}`);
    assert.ok(Math.abs(got.logProb - best.logProb) < 1e-9);
  }
  const g = greedyDecode(step, null, { bos: BOS, eos: EOS, maxLen, numSources: 2 });
  assert.equal(g.length, 2);
  assert.throws(() => beamSearch(step, null, { bos: BOS, eos: EOS, maxLen, beamWidth: 0 }), /beamWidth must be a positive integer/);
  assert.throws(() => beamSearch(step, null, { bos: BOS, eos: EOS, maxLen, beamWidth: 2, numReturn: 3 }), /numReturn must be in \[1, beamWidth=2\]/);
  assert.throws(() => greedyDecode(() => [1, 2, 3], null, { bos: BOS, eos: EOS, maxLen, numSources: 2 }), /returned 3 logits for 2 prefixes/);
});

test("hypotheses that reach maxLen come back unfinished", () => {
  const h = beamSearch(toyStep, null, { bos: BOS, eos: EOS, maxLen: 1, beamWidth: 2 })[0];
  assert.deepEqual(h.map((x) => [x.tokens, x.finished]), [[[1], false], [[2], false]]);
});

// ---------- alignment agreement ----------
test("alignmentAgreement scores the argmax of each aligned row against its span", () => {
  const attn = [
    0.1, 0.7, 0.1, 0.1,   // target 0 → span [1]: hit
    0.9, 0.0, 0.1, 0.0,   // target 1 → no span: skipped
    0.5, 0.1, 0.2, 0.2,   // target 2 → span [2, 3]: miss (argmax 0)
    0.0, 0.1, 0.3, 0.6,   // target 3 → span [2]: miss, unless key 3 is padding → argmax over keys 0..2 = 2: hit
  ];
  assert.deepEqual(alignmentAgreement(attn, 4, 4, [[1], [], [2, 3], [2]]), { hits: 1, total: 3 });
  assert.deepEqual(alignmentAgreement(attn, 4, 4, [[1], [], [2], [2]], 3), { hits: 2, total: 3 });
  assert.throws(() => alignmentAgreement(attn, 3, 4, [[1]]), /expected \(3, 4\)/);
  assert.throws(() => alignmentAgreement(attn, 4, 4, [[4]]), /span position 4 of target 0/);
});

// ---------- the model ----------
const tiny: Seq2SeqConfig = { srcVocab: 20, tgtVocab: 9, dModel: 16, heads: 2, encoderLayers: 1, decoderLayers: 2, dimFeedforward: 32, dropout: 0, maxSrcLen: 10, maxTgtLen: 8 };

test("Seq2SeqTransformer: shapes, padding and causality invariances, decodeStep, recorded cross-attention", () => {
  const m = new Seq2SeqTransformer(tiny, new Generator(3)).eval();
  const src = Tensor.fromArray(Int32Array.from([7, 8, 9, 0, 0, 11, 12, 13, 14, 15]), [2, 5]);   // row 0 padded
  const tgt = Tensor.fromArray(Int32Array.from([4, 6, 7, 8, 4, 8, 7, 6]), [2, 4]);
  noGrad(() => {
    const { result: logits, records } = captureAttention(m, () => m.forward(src, tgt));
    assert.deepEqual(logits.shape, [2, 4, 9]);
    const kinds = records.map((r) => `${r.name}:${r.kind}`);
    assert.deepEqual(kinds, ["encoder.layers.0.self_attn:self", "decoder.layers.0.self_attn:self", "decoder.layers.0.multihead_attn:cross",
      "decoder.layers.1.self_attn:self", "decoder.layers.1.multihead_attn:cross"]);
    const cross = records[2].weights;                                       // (B, H, Tt, Ts)
    assert.deepEqual(cross.shape, [2, 2, 4, 5]);
    const w = cross.dataSync();
    for (let i = 0; i < 2 * 4; i++) {                                       // row 0 never attends to its 2 padded keys
      assert.ok(w[i * 5 + 3] < 1e-7 && w[i * 5 + 4] < 1e-7, "padded keys get no attention");
    }
    assert.ok(records[1].causal, "decoder self-attention is causal");
    // padding invariance: row 0 without its padding gives the same logits
    const solo = m.forward(Tensor.fromArray(Int32Array.from([7, 8, 9]), [1, 3]), tgt.narrow(0, 0, 1)).dataSync();
    const ld = logits.dataSync();
    for (let i = 0; i < solo.length; i++) assert.ok(Math.abs(solo[i] - ld[i]) < 1e-4, `pad invariance at ${i}`);
    // causality: changing the last target token leaves earlier positions unchanged
    const tgt2 = Tensor.fromArray(Int32Array.from([4, 6, 7, 2, 4, 8, 7, 6]), [2, 4]);
    const l2 = m.forward(src, tgt2).dataSync();
    for (let i = 0; i < 3 * 9; i++) assert.ok(Math.abs(l2[i] - ld[i]) < 1e-5, `causal at ${i}`);
    assert.ok(l2.slice(3 * 9, 4 * 9).some((x, i) => Math.abs(x - ld[3 * 9 + i]) > 1e-4), "the changed position itself moves");
    // decodeStep = the last position of a teacher-forced pass, for prefixes of different lengths and source rows
    const enc = m.encode(src);
    const step = m.decodeStep(enc, [[4, 6, 7], [4]], [0, 1]);
    for (let v = 0; v < 9; v++) {
      assert.ok(Math.abs(step[v] - ld[2 * 9 + v]) < 1e-4, `decodeStep row 0, ${v}`);
      assert.ok(Math.abs(step[9 + v] - ld[4 * 9 + v]) < 1e-4, `decodeStep row 1, ${v}`);
    }
  });
});

test("Seq2SeqTransformer: tied embeddings, seeded init and config errors", () => {
  const a = new Seq2SeqTransformer({ ...tiny, tgtVocab: 20, shareEmbeddings: true, tieOutput: true }, new Generator(1));
  const names = Object.keys(a.stateDict());
  assert.ok(names.includes("src_embed.weight") && !names.includes("tgt_embed.weight") && !names.some((n) => n.startsWith("generator.")));
  assert.ok(names.includes("generator_bias"));
  const b = new Seq2SeqTransformer(tiny, new Generator(1)), c = new Seq2SeqTransformer(tiny, new Generator(1));
  assert.deepEqual(b.decoder.layers.at(1).linear2.weight.dataSync(), c.decoder.layers.at(1).linear2.weight.dataSync(), "same seed, same weights");
  assert.ok(b.numParameters() > a.numParameters() - 20 * 16);
  assert.throws(() => new Seq2SeqTransformer({ ...tiny, shareEmbeddings: true }), /shareEmbeddings needs srcVocab === tgtVocab, got 20 and 9/);
  assert.throws(() => new Seq2SeqTransformer({ ...tiny, dModel: 15 }), /dModel 15 must be divisible by config.heads 2/);
  assert.throws(() => b.forward(Tensor.fromArray(new Int32Array(11), [1, 11]), Tensor.fromArray(Int32Array.from([4]), [1, 1])), /source length 11 must be in \[1, 10\]/);
  assert.throws(() => b.encode(Tensor.fromArray(Int32Array.from([7, 8]), [1, 2]), { occlude: [2] }), /occluded position 2 outside the source \[0, 1\]/);
});

// ---------- the task on a small, easy subset ----------
function smallData(formats: string[], nTrain: number, nTest: number, unit: "word" | "char" = "word"): DatesData {
  const srcTok = unit === "word" ? dateSourceTokenizer() : dateCharTokenizer(), tgtTok = dateTargetTokenizer();
  const { train, test: held } = generateDateDataset({ seed: 5, trainSize: nTrain, testSize: nTest, formats });
  const enc = (e: Parameters<typeof encodeDate>[0]) => encodeDate(e, unit, srcTok, tgtTok);
  return { unit, srcTok, tgtTok, train: train.map(enc), test: held.map(enc) };
}

test("char unit: spans cover the characters of the aligned token", () => {
  const d = smallData(["month_d_year"], 1, 1, "char");
  const e = d.train[0];
  assert.equal(e.labels.join(""), e.ex.source.toLowerCase());
  const year = e.ex.iso.slice(0, 4);
  assert.equal(e.spans[0].map((k) => e.labels[k]).join(""), year, "year digits align to the year's characters");
  assert.deepEqual(e.spans[4], []);
});

test("task 'dates': a tiny model learns (loss falls, exact match > 0), predict and explain work", () => {
  const data = smallData(["dmy_dot", "mdy_slash_long"], 3000, 60);
  const { model, config } = task.createModel(data, { "d-model": "32", heads: 2, encoderLayers: 1, decoderLayers: 1, dimFeedforward: 64, dropout: 0, beamWidth: 2 }, new Generator(1));
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.01 });
  const losses: number[] = [], gen = new Generator(2), B = 32;
  for (let s = 0; s < 150; s++) {
    const idx = Int32Array.from({ length: B }, () => gen.int(data.train.length));
    model.train();
    losses.push(tidy(() => {
      const loss = task.loss(model, data, idx);
      opt.zeroGrad(); loss.backward(); clipGradNorm(model.parameters(), 1); opt.step();
      return loss.item();
    }));
  }
  model.eval();
  const m = task.evaluate(model, data, {});
  const first = losses.slice(0, 10).reduce((a, b) => a + b) / 10, last = losses.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(last < first * 0.5, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(m.exactMatch > 0, `exact match ${m.exactMatch}`);
  assert.ok(m.charAccuracy > 0.5, `char accuracy ${m.charAccuracy}`);
  for (const k of ["exactMatch", "charAccuracy", "beamExactMatch", "alignmentRate", "alignmentRateLayer0", "loss"]) assert.ok(k in m && Number.isFinite(m[k]), `metric ${k}`);
  assert.equal(Object.keys(m)[0], "exactMatch", "headline metric first");

  const p = task.predict(model, config, data.test[0].ex.source, { beam: "2" });
  assert.equal(p.alternatives?.length, 2);
  assert.match(p.output, /^[0-9-]+$/);
  assert.equal(typeof p.details?.alignment, "string");
  assert.throws(() => task.predict(model, config, "", {}), /no tokens/);

  const ex = task.explain!(model, config, { text: data.test[0].ex.source }, "0");
  assert.deepEqual(ex.tokens, data.test[0].ex.sourceTokens);
  assert.equal(ex.targetIndex, 0);
  assert.ok(ex.readout && Math.abs(ex.readout.reduce((a, b) => a + b, 0) - 1) < 1e-5, "readout is a distribution");
  const s0 = noGrad(() => ex.score().item()), s1 = noGrad(() => ex.score({ occlude: [4] }).item());
  assert.ok(Number.isFinite(s0) && s0 !== s1, `occluding the year changes the score (${s0} vs ${s1})`);
  assert.ok(ex.layerFilter!("encoder.layers.0.self_attn") && !ex.layerFilter!("decoder.layers.0.multihead_attn"));
  assert.throws(() => task.explain!(model, config, { text: data.test[0].ex.source }, "42"), /target position 42 outside/);
  assert.equal(task.faithfulnessInputs!(data, 3).length, 3);
});

test("task 'dates': data and option errors are clear", () => {
  assert.throws(() => task.loadData({ data: "/nope" }), /--data is not used/);
  const data = smallData(["dmy_dot"], 10, 5);
  assert.throws(() => task.createModel(data, { dModle: 8 }, new Generator(1)), /unknown model option 'dModle'/);
  assert.throws(() => task.createModel(data, { unit: "byte" }, new Generator(1)), /unit must be "word" or "char"/);
  assert.throws(() => task.createModel(data, { srcVocab: 8 }, new Generator(1)), /option 'srcVocab' is fixed by the task/);
  const { config } = task.createModel(data, { dModel: 16, heads: 2 }, new Generator(1));
  // the trainer validates CLI overrides against the config's top-level keys
  for (const k of ["dModel", "heads", "encoderLayers", "decoderLayers", "dimFeedforward", "dropout", "unit", "beamWidth", "lengthPenalty", "labelSmoothing"]) assert.ok(k in config, k);
  const m = task.modelFromConfig(JSON.parse(JSON.stringify(config)));
  assert.equal(m.config.dModel, 16);
  assert.throws(() => task.modelFromConfig({ ...config, srcVocab: 7 }), /srcVocab=7, tgtVocab=17 do not match the stored tokenizers/);
});

test("cachedSearchStep gives decodeStep's logits and the same greedy/beam results", () => {
  for (const normFirst of [true, false]) {
    const m = new Seq2SeqTransformer({ ...tiny, normFirst, activation: normFirst ? "relu" : "gelu" }, new Generator(9)).eval();
    const src = Tensor.fromArray(Int32Array.from([7, 8, 9, 0, 0, 11, 12, 13, 14, 15, 3, 3, 0, 0, 0]), [3, 5]);
    noGrad(() => {
      const enc = m.encode(src);
      const plain: StepFunction<typeof enc> = (e, p, s) => m.decodeStep(e, p, s);
      const o = { bos: 4, eos: 5, maxLen: 6, numSources: 3 };
      const g0 = greedyDecode(plain, enc, o), g1 = greedyDecode(cachedSearchStep(m, enc), enc, o);
      const b0 = beamSearch(plain, enc, { ...o, beamWidth: 3 }), b1 = beamSearch(cachedSearchStep(m, enc), enc, { ...o, beamWidth: 3 });
      assert.deepEqual(g1.map((h) => h.tokens), g0.map((h) => h.tokens));
      assert.deepEqual(b1.map((hs) => hs.map((h) => h.tokens)), b0.map((hs) => hs.map((h) => h.tokens)), `normFirst=${normFirst}`);
      b0.flat().forEach((h, i) => assert.ok(Math.abs(h.logProb - b1.flat()[i].logProb) < 1e-4));
      // direct logits after a reordering step
      const step = cachedSearchStep(m, enc);
      step(enc, [[4], [4]], [0, 2]);
      const a = step(enc, [[4, 6], [4, 7], [4, 8]], [2, 0, 0], [1, 0, 0]);
      const ref = m.decodeStep(enc, [[4, 6], [4, 7], [4, 8]], [2, 0, 0]);
      for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(a[i] - ref[i]) < 1e-4, `logit ${i}: ${a[i]} vs ${ref[i]}`);
    });
  }
});
