// attnflow's own decoders (CharGPT through src/models/generate.ts) generate with the search of hf.generate
// (src/hf/generation.ts runSearch, shared, not copied): greedy is unchanged (the argmax of a full forward at every
// step), sampling obeys temperature / top-k / top-p and its seed, and beam search finds the best sequences of a tiny
// model as a brute-force enumeration of every continuation does. The char-lm predict flags reach it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CharGPT } from "../src/models/char-gpt.js";
import { generate } from "../src/models/generate.js";
import { samplingDistribution } from "./helpers/sampling-reference.js";
import { Generator } from "../src/random.js";
import { Tensor } from "../src/tensor.js";
import { noGrad } from "../src/autograd.js";
import { parsePredictFlags } from "../src/tasks/char-lm.js";

const tiny = { vocabSize: 5, blockSize: 8, dModel: 16, nHeads: 2, nLayers: 2, dropout: 0 };
const model = (seed: number) => new CharGPT(tiny, new Generator(seed)).eval();

/** The last position's logits of a full forward over the context's last blockSize tokens (float64 copy). */
function nextLogits(m: CharGPT, ctx: readonly number[]): Float64Array {
  const c = ctx.slice(-m.maxLength);
  return noGrad(() => Float64Array.from(m.forward(Tensor.fromArray(Int32Array.from(c), [1, c.length])).select(0, 0).select(0, c.length - 1).toFloat32Array()));
}
const logSoftmax = (x: Float64Array) => { const mx = Math.max(...x), z = Math.log(x.reduce((s, v) => s + Math.exp(v - mx), 0)); return x.map((v) => v - mx - z); };
const argmax = (x: ArrayLike<number>) => { let b = 0; for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i; return b; };

test("greedy (temperature 0) is the argmax of a full forward at every step, with and without the cache, past the context", () => {
  const m = model(7), prompt = [1, 3, 2];
  for (const useCache of [true, false]) {
    const got = generate(m, prompt, { maxNewTokens: 4, temperature: 0, useCache }).ids;
    const ctx = [...prompt];
    for (const id of got) { assert.equal(id, argmax(nextLogits(m, ctx))); ctx.push(id); }
    assert.equal(got.length, 4);
  }
  // without the cache, past blockSize too (the window slides)
  const long = generate(m, prompt, { maxNewTokens: 12, temperature: 0, useCache: false }).ids, ctx = [...prompt];
  for (const id of long) { assert.equal(id, argmax(nextLogits(m, ctx))); ctx.push(id); }
  // banned ids never occur
  const banned = generate(m, prompt, { maxNewTokens: 6, temperature: 0, banned: [long[0]] }).ids;
  assert.ok(!banned.includes(long[0]));
});

test("sampling: the seed fixes the tokens; top-k 1 is greedy; every token lies in the top-k / top-p set of its step", () => {
  const m = model(3), prompt = [4, 0];
  const a = generate(m, prompt, { maxNewTokens: 6, temperature: 1.3, generator: new Generator(9) }).ids;
  assert.deepEqual(generate(m, prompt, { maxNewTokens: 6, temperature: 1.3, seed: 9 }).ids, a, "seed N = Generator(N)");
  assert.deepEqual(generate(m, prompt, { maxNewTokens: 6, temperature: 1.3, generator: new Generator(9), useCache: false }).ids, a);
  assert.deepEqual(generate(m, prompt, { maxNewTokens: 5, topK: 1, seed: 1 }).ids, generate(m, prompt, { maxNewTokens: 5, temperature: 0 }).ids);
  for (let s = 0; s < 30; s++) {
    for (const o of [{ topK: 2 }, { topP: 0.6 }]) {
      const ids = generate(m, prompt, { maxNewTokens: 3, temperature: 0.9, seed: s, ...o }).ids, ctx = [...prompt];
      for (const id of ids) {
        const allowed = samplingDistribution(Float32Array.from(nextLogits(m, ctx)), { temperature: 0.9, ...o });
        assert.ok(allowed[id] > 0, `seed ${s} ${JSON.stringify(o)}: token ${id} outside the kept set ${Array.from(allowed)}`);
        ctx.push(id);
      }
    }
  }
  // N samples at once
  const many = generate(m, prompt, { maxNewTokens: 3, numReturnSequences: 4, seed: 2 });
  assert.equal(many.sequences.length, 4);
  assert.deepEqual(many.ids, many.sequences[0]);
});

test("sampling: first-token frequencies follow softmax(logits / T)", () => {
  const m = model(11), prompt = [2, 2, 1], T = 0.7, n = 1500;
  const x = nextLogits(m, prompt), mx = Math.max(...x), e = x.map((v) => Math.exp((v - mx) / T)), z = e.reduce((s, v) => s + v, 0);
  const counts = new Float64Array(5), g = new Generator(5);
  for (let i = 0; i < n; i++) counts[generate(m, prompt, { maxNewTokens: 1, temperature: T, generator: g }).ids[0]]++;
  // each frequency within 4.5 standard deviations of its probability
  e.forEach((v, i) => { const p = v / z, sd = Math.sqrt(p * (1 - p) / n); assert.ok(Math.abs(counts[i] / n - p) <= 4.5 * sd + 1e-3, `token ${i}: ${counts[i] / n} vs ${p}`); });
});

test("beam search returns the best continuations of a brute-force enumeration (all 5^3), scores sum log p / length", () => {
  const m = model(21), prompt = [3, 1], V = 5, n = 3;
  // every continuation of n tokens, scored by the sum of its log-probabilities from full forwards
  const all: { seq: number[]; lp: number }[] = [];
  const walk = (seq: number[], lp: number) => {
    if (seq.length === n) { all.push({ seq, lp }); return; }
    const l = logSoftmax(nextLogits(m, [...prompt, ...seq]));
    for (let v = 0; v < V; v++) walk([...seq, v], lp + l[v]);
  };
  walk([], 0);
  all.sort((a, b) => b.lp - a.lp);
  // V^(n-1) beams keep every prefix: the search is exhaustive
  const r = generate(m, prompt, { maxNewTokens: n, numBeams: 25, numReturnSequences: 3 });
  assert.deepEqual(r.sequences, all.slice(0, 3).map((x) => x.seq));
  r.scores!.forEach((s, i) => assert.ok(Math.abs(s - all[i].lp / n) < 1e-4, `score ${i}: ${s} vs ${all[i].lp / n}`));
  assert.deepEqual(generate(m, prompt, { maxNewTokens: n, numBeams: 25, useCache: false }).ids, all[0].seq, "the same without the cache");
  // two beams: never worse than greedy on this model's own log-probabilities
  const lpOf = (seq: number[]) => seq.reduce((s, v, i) => s + logSoftmax(nextLogits(m, [...prompt, ...seq.slice(0, i)]))[v], 0);
  const greedy = generate(m, prompt, { maxNewTokens: n, temperature: 0 }).ids, two = generate(m, prompt, { maxNewTokens: n, numBeams: 2 }).ids;
  assert.ok(lpOf(two) >= lpOf(greedy) - 1e-9);
});

test("char-lm predict flags: --beams, --sample, --num-return-sequences, penalties reach generate", () => {
  const p = parsePredictFlags({ beams: "3", sample: true, "num-return-sequences": "2", "repetition-penalty": "1.2", "no-repeat-ngram-size": "3", "length-penalty": "0.5" });
  assert.deepEqual([p.beams, p.sample, p.numReturnSequences, p.repetitionPenalty, p.noRepeatNgramSize, p.lengthPenalty], [3, true, 2, 1.2, 3, 0.5]);
  assert.throws(() => parsePredictFlags({ beams: "0" }), /--beams must be an integer >= 1/);
  // a no-repeat 2-gram rule holds in what generate returns
  const ids = generate(model(4), [1, 2], { maxNewTokens: 6, temperature: 0, noRepeatNgramSize: 2 }).ids, all = [1, 2, ...ids];
  const grams = all.slice(1).map((t, i) => `${all[i]},${t}`);
  assert.equal(new Set(grams).size, grams.length);
});

test("encoder–decoders: searchWithStep over a step function — greedy equals greedyDecode, cached beams equal uncached, beams exhaustive on a hand-made model", async () => {
  const { loadCheckpoint } = await import("../src/node/checkpoint.js");
  const { cachedSearchStep } = await import("../src/models/seq2seq.js");
  const { greedyDecode } = await import("../src/models/beam-search.js");
  const { searchWithStep } = await import("../src/models/generate.js");
  const { fileURLToPath } = await import("node:url");
  const ck = await loadCheckpoint(fileURLToPath(new URL("../../models/dates.safetensors", import.meta.url)));
  const model = ck.model as import("../src/models/seq2seq.js").Seq2SeqTransformer;
  const { BOS_ID: BOS, EOS_ID: EOS } = await import("../src/data/tokenizer.js");
  noGrad(() => {
    const enc = model.encode(Tensor.fromArray(Int32Array.from([5, 9, 7, 12]), [1, 4]));
    const maxLen = model.config.maxTgtLen - 1;
    const greedy = greedyDecode(cachedSearchStep(model, enc), enc, { bos: BOS, eos: EOS, maxLen })[0];
    const s = searchWithStep(cachedSearchStep(model, enc), enc, { bos: BOS, eos: EOS, maxNewTokens: maxLen, temperature: 0 });
    assert.deepEqual(s.sequences[0].filter((t) => t !== EOS), greedy.tokens);
    // the cached step function follows the beams' reordering (parents): the same as the stateless decodeStep
    const stateless = (m: typeof enc, p: readonly (readonly number[])[], src: readonly number[]) => model.decodeStep(m, p, src);
    const o = { bos: BOS, eos: EOS, maxNewTokens: maxLen, numBeams: 3, numReturnSequences: 3 };
    const a = searchWithStep(cachedSearchStep(model, enc), enc, o), b = searchWithStep(stateless, enc, o);
    assert.deepEqual(a.sequences, b.sequences);
    a.scores!.forEach((x, i) => assert.ok(Math.abs(x - b.scores![i]) < 1e-5));
  });
  // a model-free step function: logits from the prefix; ids 0 (bos) and 1 banned
  const V = 5, n = 3, B0 = 0, E0 = 99;   // an eos the model never produces (HF never bans eos): every hypothesis runs to the end
  const logitsOf = (p: readonly number[]) => Array.from({ length: V }, (_, v) => Math.sin(7.3 * v + 3.1 * p.reduce((h, t, i) => h + (t + 1) * (i + 2), 0)) * 2);
  const step = (_: null, prefixes: readonly (readonly number[])[]) => Float32Array.from(prefixes.flatMap((p) => logitsOf(p)));
  const lsm = (x: number[]) => { const mx = Math.max(...x), z = Math.log(x.reduce((s, v) => s + Math.exp(v - mx), 0)); return x.map((v) => v - mx - z); };
  const all: { seq: number[]; lp: number }[] = [];
  const walk = (seq: number[], lp: number) => {
    if (seq.length === n) { all.push({ seq, lp }); return; }
    const l = lsm(logitsOf([B0, ...seq]));
    for (let v = 2; v < V; v++) walk([...seq, v], lp + l[v]);   // 0 and 1 banned
  };
  walk([], 0);
  all.sort((x, y) => y.lp - x.lp);
  const r = searchWithStep(step, null, { bos: B0, eos: E0, maxNewTokens: n, numBeams: 9, numReturnSequences: 4, banned: [B0, 1] });
  assert.deepEqual(r.sequences, all.slice(0, 4).map((x) => x.seq));
  r.scores!.forEach((s, i) => assert.ok(Math.abs(s - all[i].lp / n) < 1e-4, `${s} vs ${all[i].lp / n}`));
});

test("attnflow predict on the shipped char-lm: --beams with --num-return-sequences prints every returned sequence with its score", () => {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const out = execFileSync(process.execPath, ["dist/cli/attnflow.js", "predict", "--model", "models/char-lm.safetensors", "--text", "The cat ",
    "--beams", "3", "--num-return-sequences", "2", "--max-tokens", "16"],
  { cwd: root, encoding: "utf8", env: { ...process.env, ATTNFLOW_QUIET: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  const lines = out.split("\n");
  const rule = lines.findIndex((l) => /^── sequence 2 of 2 \(score -?\d+\.\d{4}\) ──$/.test(l));
  assert.ok(rule > 0, out);
  assert.ok(lines[0].startsWith("The cat ") && lines[rule + 1].startsWith("The cat "), out);
  assert.ok(!/^\s+sequences:/m.test(out), "the sequences are printed as text, not as a JSON detail");
});
