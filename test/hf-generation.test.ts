// generate() for the Hugging Face decoders and encoder–decoders: HF's own beam search / processor outputs
// (test/fixtures/hf-gen, written by scripts/hf-gen-refs.py with transformers 4.44.2) through `npm run parity` on every
// backend, and the sampling properties that do not depend on torch's RNG (support of top-k / top-p, temperature 0 =
// greedy, the sampled frequencies follow the warped softmax, the same seed gives the same tokens).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { fromPretrained } from "../src/hf/node-pretrained.js";
import { generate } from "../src/hf/generation.js";
import { logitsWarpers, resolveGeneration } from "../src/hf/generation-config.js";
import { loadSafetensors } from "../src/io/state-dict.js";
import { Tensor } from "../src/tensor.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const fixtures = join(root, "test/fixtures/hf-gen");
const cases = readdirSync(fixtures, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

function run(args: string[], env: Record<string, string> = {}): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync(process.execPath, args, { cwd: root, encoding: "utf8", env: { ...process.env, ATTNFLOW_QUIET: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] }) };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: err.stdout + err.stderr };
  }
}

for (const backend of ["reference", "wasm", undefined]) {
  test(`npm run parity -- test/fixtures/hf-gen: HF's beam search and processors, identical tokens, backend ${backend ?? "auto"}`, () => {
    const { code, out } = run(["dist/cli/parity.js", "test/fixtures/hf-gen"], backend ? { ATTNFLOW_BACKEND: backend } : {});
    assert.equal(code, 0, out);
    assert.equal(out.trim().split("\n").pop(), `${cases.length} passed, 0 failed`, out);
    for (const c of cases) assert.match(out, new RegExp(`^PASS ${c} \\[`, "m"), out);
    assert.match(out, /^ {5}generate beam4-lp2-never \{"eosTokenId":\d+,"numBeams":4,.*\}: [\d |]+$/m, "tokens are printed per case");
  });
}

test("parity fails a generate case whose HF tokens differ, naming the case and showing both", () => {
  const dir = mkdtempSync("/tmp/attnflow-hfgen-");
  try {
    cpSync(join(fixtures, "gen-gpt2"), join(dir, "bad"), { recursive: true });
    const file = join(dir, "bad/reference.safetensors"), bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const [b] = JSON.parse(bytes.toString("utf8", 8, 8 + n))["generate.beam3-ret2.sequences"].data_offsets;
    const at = 8 + n + b + 8 * 8;                                             // row 0, token 8 (a generated one), int64
    bytes.writeBigInt64LE(bytes.readBigInt64LE(at) + 1n, at);
    writeFileSync(file, bytes);
    const { code, out } = run(["dist/cli/parity.js", dir]);
    assert.equal(code, 1, out);
    assert.match(out, /^FAIL bad \[GPT2LMHeadModel.*1\/\d+ checks failed/m);
    assert.match(out, /generate\.beam3-ret2\.sequences: got \[\[.*\]\], HF \[\[/);
    assert.match(out, /generate beam3-ret2 .*\(HF: /);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

async function tiny(name: string) {
  const p = await fromPretrained(join(fixtures, name));
  const ref = loadSafetensors(new Uint8Array(readFileSync(join(fixtures, name, "reference.safetensors")))).tensors;
  return { ...p, inputs: { inputIds: ref.get("in.input_ids")!, attentionMask: ref.get("in.attention_mask")! } };
}
const rows = (t: Tensor) => t.toArray() as number[][];

test("sampling: the same seed gives the same tokens, another seed other tokens; topK 1 and temperature 0 give greedy", async () => {
  for (const name of ["gen-gpt2", "gen-t5"]) {
    const { model, inputs, generationConfig } = await tiny(name);
    const o = { generationConfig, doSample: true, maxNewTokens: 8, eosTokenId: null, topK: 0 };
    const a = rows(generate(model, inputs, { ...o, seed: 7 }).sequences), b = rows(generate(model, inputs, { ...o, seed: 7 }).sequences);
    assert.deepEqual(a, b, `${name}: same seed`);
    const others = [8, 9, 10].map((s) => JSON.stringify(rows(generate(model, inputs, { ...o, seed: s }).sequences)));
    assert.ok(others.some((x) => x !== JSON.stringify(a)), `${name}: other seeds draw other tokens`);
    const greedy = rows(generate(model, inputs, { generationConfig, maxNewTokens: 8, eosTokenId: null }).sequences);
    assert.deepEqual(rows(generate(model, inputs, { ...o, topK: 1, seed: 3 }).sequences), greedy, `${name}: topK 1`);
    assert.deepEqual(rows(generate(model, inputs, { ...o, temperature: 0, seed: 3 }).sequences), greedy, `${name}: temperature 0`);
  }
});

test("sampling: every drawn token lies in the top-k / top-p support of its step's warped scores", async () => {
  const { model, inputs, generationConfig } = await tiny("gen-llama");
  for (const [topK, topP] of [[4, 1], [0, 0.6], [6, 0.8]]) {
    const out = generate(model, inputs, { generationConfig, doSample: true, topK, topP, temperature: 1.5, maxNewTokens: 6, eosTokenId: null,
      numReturnSequences: 3, seed: 11, returnScores: true });
    const seqs = rows(out.sequences), T = inputs.inputIds.shape[1];
    out.scores!.forEach((s, step) => {
      const sc = s.toArray() as number[][];
      sc.forEach((row, i) => {
        const kept = row.filter(Number.isFinite).length;
        if (topK) assert.ok(kept <= topK, `top-k ${topK}: ${kept} tokens kept`);
        assert.ok(Number.isFinite(row[seqs[i][T + step]]), `step ${step} row ${i}: drawn token outside the support`);
        if (topP < 1 && !topK) {
          // the kept set is the nucleus: the fewest most likely tokens (after the temperature) whose mass reaches topP
          const raw = softmax(rowLogits(out.logits![step], i, 1.5)).sort((x, y) => y - x);
          let mass = 0, need = 0;
          while (mass < topP && need < raw.length) mass += raw[need++];
          assert.ok(Math.abs(kept - need) <= 1, `top-p ${topP}: kept ${kept}, the nucleus has ${need}`);
        }
      });
    });
  }
});

const softmax = (r: number[]) => { const m = Math.max(...r), e = r.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0); return e.map((x) => x / z); };
const rowLogits = (t: Tensor, i: number, temp: number) => (t.toArray() as number[][])[i].map((x) => x / temp);

test("sampling: the first tokens' frequencies follow softmax(logits / temperature) restricted to the top-k", async () => {
  const { model, generationConfig } = await tiny("gen-gpt2");
  const prompt = Tensor.fromArray(Int32Array.from([5, 9, 17]), [1, 3], "int32");
  const N = 3000, k = 5, temp = 0.7;
  const out = generate(model, { inputIds: prompt }, { generationConfig, doSample: true, topK: k, temperature: temp, maxNewTokens: 1,
    numReturnSequences: N, seed: 1, eosTokenId: null, returnScores: true });
  const first = rows(out.sequences).map((r) => r[3]);
  const logits = rowLogits(out.logits![0], 0, temp);
  const top = logits.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0]).slice(0, k);
  const p = softmax(top.map(([x]) => x));
  const counts = new Map<number, number>();
  for (const t of first) counts.set(t, (counts.get(t) ?? 0) + 1);
  assert.ok([...counts.keys()].every((t) => top.some(([, i]) => i === t)), `only top-${k} tokens are drawn: ${[...counts.keys()]}`);
  top.forEach(([, id], j) => {
    const f = (counts.get(id) ?? 0) / N, sd = Math.sqrt((p[j] * (1 - p[j])) / N);
    assert.ok(Math.abs(f - p[j]) < 5 * sd + 1e-3, `token ${id}: frequency ${f.toFixed(4)}, probability ${p[j].toFixed(4)}`);
  });
});

test("warpers: top-k keeps ties with the k-th score; top-p keeps the smallest set reaching p (at least one token)", () => {
  const cfg = resolveGeneration({}, {}, { doSample: true, topK: 2, topP: 1 });
  const s = Float32Array.from([1, 3, 3, 2, 0]);
  for (const w of logitsWarpers(cfg)) w(s, []);
  assert.deepEqual(Array.from(s), [-Infinity, 3, 3, -Infinity, -Infinity]);
  const p = resolveGeneration({}, {}, { doSample: true, topK: 0, topP: 0.7 });
  const t = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  for (const w of logitsWarpers(p)) w(t, []);
  assert.deepEqual(Array.from(t).map(Number.isFinite), [true, true, false, false]);
  const q = resolveGeneration({}, {}, { doSample: true, topK: 0, topP: 0.01 });
  const u = Float32Array.from([0, 5, 1]);
  for (const w of logitsWarpers(q)) w(u, []);
  assert.deepEqual(Array.from(u).map(Number.isFinite), [false, true, false]);
});

test("generate options: bad values name the option; HF's own refusals are kept", async () => {
  const { model, inputs, generationConfig } = await tiny("gen-marian");
  const g = (o: object) => generate(model, inputs, { generationConfig, ...o });
  assert.throws(() => generate(model, { ...inputs, decoderInputIds: inputs.inputIds }, { generationConfig }), /inputs.decoderInputIds is not supported/);
  assert.throws(() => g({ numBeam: 3 }), /unknown option "numBeam" \(supported: maxNewTokens, .*numBeams/);
  assert.throws(() => g({ numBeams: 2, numReturnSequences: 3 }), /numReturnSequences \(3\) must be <= numBeams \(2\)/);
  assert.throws(() => g({ numReturnSequences: 2 }), /greedy decoding returns one sequence per input/);
  assert.throws(() => g({ topP: 1.5, doSample: true }), /generate option topP must be in \(0, 1\], got 1.5/);
  assert.throws(() => g({ earlyStopping: "sometimes" }), /earlyStopping must be true, false or "never"/);
  assert.throws(() => g({ badWordsIds: [3] }), /badWordsIds must be a non-empty list of non-empty lists/);
  assert.throws(() => generate(model, inputs, { generationConfig: { max_length: 5, eos_token_id: "x" } }), /generation_config.json "eos_token_id" must be a token id/);
  // an HF strategy attnflow does not implement is an error, never a silently different generation
  assert.throws(() => generate(model, inputs, { generationConfig: { num_beams: 4, num_beam_groups: 2, diversity_penalty: 0.5 } }),
    /generation_config.json "num_beam_groups" = 2 is not implemented by attnflow's generate\(\)/);
  assert.doesNotThrow(() => generate(model, inputs, { generationConfig: { num_beam_groups: 1, renormalize_logits: false, suppress_tokens: null }, maxNewTokens: 2 }));
  const { model: gpt2, inputs: gi } = await tiny("gen-gpt2");
  assert.throws(() => generate(gpt2, gi, { maxLength: 4 }), /the prompt has 6 tokens but maxLength is 4: set maxNewTokens/);
  const bert = (await fromPretrained(join(root, "test/fixtures/hf/bert"))).model;
  assert.throws(() => generate(bert, gi, {}), /BertModel cannot generate/);
});

test("generation_config.json is HF's default: BART's forced_eos_token_id ends every beam at max length", async () => {
  const { model, inputs, generationConfig } = await tiny("gen-bart");
  assert.equal(generationConfig?.forced_eos_token_id, 2);
  const out = rows(generate(model, inputs, { generationConfig, numBeams: 2, maxNewTokens: 5, eosTokenId: 50 }).sequences);
  for (const r of out) assert.equal(r[r.length - 1], 2, JSON.stringify(out));
  const free = rows(generate(model, inputs, { generationConfig, numBeams: 2, maxNewTokens: 5, eosTokenId: 50, forcedEosTokenId: null }).sequences);
  assert.notDeepEqual(free.map((r) => r[r.length - 1]), [2, 2], "without it the model ends elsewhere (else this test proves nothing)");
});

test("attnflow predict --model <hf-folder>: --beams / --num-return-sequences print N scored lines; --sample --seed repeats", () => {
  const dir = join(fixtures, "gen-t5");
  const b = run(["dist/cli/attnflow.js", "predict", "--model", dir, "--input-ids", "5,6,7", "--beams", "3", "--num-return-sequences", "2", "--max-new-tokens", "5"]);
  assert.equal(b.code, 0, b.out);
  const lines = b.out.trim().split("\n");
  assert.equal(lines.length, 2, b.out);
  for (const l of lines) assert.match(l, /^[\d,]+ {2}\(score -?\d+\.\d{4}\)$/);
  const s = ["dist/cli/attnflow.js", "predict", "--model", dir, "--input-ids", "5,6,7", "--sample", "--top-k", "8", "--seed", "5", "--json"];
  const x = run(s), y = run(s);
  assert.equal(x.code, 0, x.out);
  assert.equal(x.out, y.out);
  assert.equal(JSON.parse(x.out).ids.length, 20);
  const bad = run(["dist/cli/attnflow.js", "predict", "--model", dir, "--input-ids", "5,6,7", "--top-p", "0.5"]);
  assert.equal(bad.code, 2, bad.out);
  assert.match(bad.out, /--temperature, --top-k and --top-p shape sampling: add --sample/);
});

test("the model carries generation_config.json (HF's model.generation_config): generate() reads it by default, savePretrained writes it back", async () => {
  const { model, inputs, generationConfig } = await tiny("gen-bart");
  assert.deepEqual(model.generationConfig, generationConfig);
  const o = { numBeams: 2, maxNewTokens: 5, eosTokenId: 50 };
  assert.deepEqual(rows(generate(model, inputs, o).sequences), rows(generate(model, inputs, { ...o, generationConfig }).sequences));
  assert.notDeepEqual(rows(generate(model, inputs, o).sequences), rows(generate(model, inputs, { ...o, generationConfig: { forced_eos_token_id: null } }).sequences));
  const { savePretrained } = await import("../src/hf/pretrained.js");
  const files = savePretrained(model);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(files.get("generation_config.json")!)), generationConfig);
});

test("onStep streams each step's tokens (greedy and beams) and returning false stops there", async () => {
  const { model, inputs } = await tiny("gen-llama");
  const T = inputs.inputIds.shape[1], seen: number[][] = [];
  const full = rows(generate(model, inputs, { maxNewTokens: 6, eosTokenId: null, onStep: (s, t) => { seen[s] = Array.from(t); } }).sequences);
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5].map((s) => full.map((r) => r[T + s])), "every step streamed");
  const cut = rows(generate(model, inputs, { maxNewTokens: 6, eosTokenId: null, onStep: (s) => s < 2 }).sequences);
  assert.deepEqual(cut, full.map((r) => r.slice(0, T + 3)));
  let calls = 0;
  const beams = generate(model, inputs, { numBeams: 3, maxNewTokens: 6, eosTokenId: null, onStep: (_, t) => { assert.equal(t.length, 6); return ++calls < 3; } });
  assert.equal(calls, 3);
  assert.equal(beams.sequences.shape[1], T + 3);
});
