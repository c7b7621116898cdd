// `attnflow info | predict | explain --model <hf-folder>` run as a user runs them (the real CLI in a child process) on
// the HF fixture folders; every printed number is checked against the library (fromPretrained + model.forward).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/node.js";   // registers the tokenizer loader: fromPretrainedDir fills `tokenizer`
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import { tensor } from "../src/creation.js";
import { noGrad } from "../src/autograd.js";
import { encodePng } from "../src/node/image-file.js";
import type { HFTokenizer } from "../src/hf/tokenizer.js";
import type { Explanation } from "../src/explain/explain-run.js";
import { attentionRollout } from "../src/explain/rollout.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "bin", "attnflow.js");
const fixtures = join(root, "test", "fixtures", "hf");
const dir = mkdtempSync(join(tmpdir(), "attnflow-hf-cli-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// A small WordPiece tokenizer (the BERT fixture's pipeline with a 20-entry vocabulary, so that every id fits the
// 64- and 128-token fixture models).
const WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "##s", "and", ".", "big", "red", "hat"];
function addTokenizer(folder: string, size = WORDS.length): void {
  const tj = JSON.parse(readFileSync(join(root, "test", "fixtures", "hf-tokenizer", "bert", "tokenizer.json"), "utf8"));
  const words = [...WORDS, ...Array.from({ length: size - WORDS.length }, (_, i) => `w${WORDS.length + i}`)];
  tj.model.vocab = Object.fromEntries(words.map((w, i) => [w, i]));
  for (const t of tj.added_tokens) assert.equal(WORDS[t.id], t.content, "the fixture's special tokens keep their ids");
  writeFileSync(join(folder, "tokenizer.json"), JSON.stringify(tj));
}

/** A copy of a fixture case (optionally with the small tokenizer). */
function caseFolder(name: string, tokenizer = false): string {
  const to = join(dir, name + (tokenizer ? "-tok" : ""));
  cpSync(join(fixtures, name), to, { recursive: true });
  rmSync(join(to, "reference.safetensors"));
  if (tokenizer) addTokenizer(to);
  return to;
}

const argmax = (a: ArrayLike<number>, off = 0, n = a.length) => { let b = 0; for (let i = 1; i < n; i++) if (a[off + i] > a[off + b]) b = i; return b; };
function softmax(a: ArrayLike<number>, off: number, n: number): number[] {
  const row = Array.from({ length: n }, (_, i) => a[off + i]), mx = Math.max(...row), e = row.map((x) => Math.exp(x - mx)), s = e.reduce((x, y) => x + y, 0);
  return e.map((x) => x / s);
}

test("info: a Hugging Face folder's config, parameter count, dtype and tokenizer", async () => {
  const f = caseFolder("llama-gqa4-linear");
  const r = cli("info", "--model", f, "--json");
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out);
  const cfg = JSON.parse(readFileSync(join(f, "config.json"), "utf8"));
  const { model } = await fromPretrainedDir(f);
  const params = model.parameters().reduce((s, p) => s + p.numel(), 0);
  assert.deepEqual([info.modelType, info.architecture, info.layers, info.hidden, info.heads, info.kvHeads, info.vocab, info.maxPositions],
    ["llama", "LlamaForCausalLM", cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.vocab_size, cfg.max_position_embeddings]);
  assert.ok(info.kvHeads < info.heads, "a GQA case");
  assert.equal(info.parameters, params);
  assert.equal(info.dtype, "F32");
  assert.equal(info.tokenizer, false);
  const text = cli("info", "--model", caseFolder("bert-seqcls", true));
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /architecture {2}BertForSequenceClassification/);
  assert.match(text.out, /tokenizer +tokenizer\.json/);
});

test("predict: sequence classification prints id2label's classes with the model's probabilities", async () => {
  const f = caseFolder("bert-seqcls", true);
  const r = cli("predict", "--model", f, "--text", "the big cat sat on the mat", "--json");
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  const p = await fromPretrainedDir(f);
  const tok = p.tokenizer as HFTokenizer;
  const enc = tok.encodeDetailed("the big cat sat on the mat");
  assert.deepEqual(enc.ids, [2, 5, 17, 6, 7, 8, 5, 9, 3], "the test tokenizer knows every word");
  const logits = noGrad(() => p.model.forward({ inputIds: tensor([enc.ids], { dtype: "int32" }), tokenTypeIds: tensor([enc.typeIds], { dtype: "int32" }) }).logits!);
  const d = logits.dataSync() as Float32Array, probs = softmax(d, 0, 3);
  assert.equal(got.top[0].index, argmax(d));
  assert.equal(got.top[0].label, (p.config.id2label as Record<string, string>)[String(argmax(d))]);
  for (const t of got.top) assert.ok(Math.abs(t.probability - probs[t.index]) < 1e-6, `${t.label}: ${t.probability} vs ${probs[t.index]}`);
  const plain = cli("predict", "--model", f, "--text", "the big cat sat on the mat");
  assert.equal(plain.out.split("\n")[0], got.top[0].label);
});

test("predict: masked LM fills [MASK] with the top 5 of the logits at that position", async () => {
  const f = caseFolder("bert-mlm-h3", true);
  const r = cli("predict", "--model", f, "--text", "the cat [MASK] on the mat", "--json");
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  const p = await fromPretrainedDir(f);
  const ids = (p.tokenizer as HFTokenizer).encode("the cat [MASK] on the mat");
  const pos = ids.indexOf(4);
  const logits = noGrad(() => p.model.forward({ inputIds: tensor([ids], { dtype: "int32" }) }).logits!);
  const V = logits.shape[2], probs = softmax(logits.dataSync() as Float32Array, pos * V, V);
  const top5 = probs.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 5).map((x) => x[1]);
  assert.equal(got.masks.length, 1);
  assert.equal(got.masks[0].position, pos);
  assert.deepEqual(got.masks[0].top.map((t: { id: number }) => t.id), top5);
  const none = cli("predict", "--model", f, "--text", "the cat sat");
  assert.equal(none.code, 2); assert.match(none.err, /no \[MASK\] token to fill/);
});

test("predict: greedy generation of decoders and encoder-decoders equals model.generate; no tokenizer: a clear error", async () => {
  for (const name of ["gpt2", "llama-mqa-tied", "marian-swish-tied", "t5-relu-tied"]) {
    const f = caseFolder(name);
    const r = cli("predict", "--model", f, "--input-ids", "5,6,7,8", "--max-tokens", "4", "--json");
    assert.equal(r.code, 0, `${name}: ${r.err}`);
    const got = JSON.parse(r.out);
    const { model, config } = await fromPretrainedDir(f);
    const eos = typeof config.eos_token_id === "number" ? config.eos_token_id : null;
    const seq = Array.from(model.generate!({ inputIds: tensor([[5, 6, 7, 8]], { dtype: "int32" }), attentionMask: tensor([[1, 1, 1, 1]], { dtype: "int32" }) }, { maxNewTokens: 4, eosTokenId: eos }).sequences.dataSync() as Int32Array, Number);
    const seq2seq = !name.startsWith("gpt2") && !name.startsWith("llama");
    assert.deepEqual(got.ids, seq.slice(seq2seq ? 1 : 4), name);
    assert.ok(got.ids.length >= 1 && got.ids.length <= 4);
  }
  const r = cli("predict", "--model", join(dir, "gpt2"), "--text", "hello");
  assert.equal(r.code, 1);
  assert.match(r.err, /has no tokenizer\.json.*--input-ids 1,2,3/);
  const big = cli("predict", "--model", join(dir, "gpt2"), "--input-ids", "5,100000");
  assert.equal(big.code, 2); assert.match(big.err, /token id 100000 is outside the vocabulary \(vocab_size \d+\)/);
});

test("predict: generated ids are decoded by the folder's tokenizer; text prompts are encoded by it", async () => {
  const f = join(dir, "gpt2-vocab");
  cpSync(join(fixtures, "gpt2"), f, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(f, "config.json"), "utf8"));
  addTokenizer(f, cfg.vocab_size);   // every id the model can produce has a token
  const r = cli("predict", "--model", f, "--text", "the cat sat", "--max-tokens", "6", "--json");
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  const { model, tokenizer } = await fromPretrainedDir(f);
  const tok = tokenizer as HFTokenizer, prompt = tok.encode("the cat sat");
  const seq = Array.from(model.generate!({ inputIds: tensor([prompt], { dtype: "int32" }) }, { maxNewTokens: 6, eosTokenId: cfg.eos_token_id }).sequences.dataSync() as Int32Array, Number);
  assert.deepEqual(got.ids, seq.slice(prompt.length));
  assert.equal(got.text, tok.decode(got.ids, { skipSpecialTokens: true }));
  assert.ok(got.text.length > 0);
  const plain = cli("predict", "--model", f, "--text", "the cat sat", "--max-tokens", "6");
  assert.equal(plain.out.trim(), got.text.trim());
});

test("predict: ViT classifies an image file, normalised with mean 0.5 / std 0.5", async () => {
  const f = caseFolder("vit");
  const cfg = JSON.parse(readFileSync(join(f, "config.json"), "utf8"));
  const S = cfg.image_size as number;
  const rgba = new Uint8Array(S * S * 4);
  for (let i = 0; i < S * S; i++) { rgba[i * 4] = (i * 37) % 256; rgba[i * 4 + 1] = (i * 11) % 256; rgba[i * 4 + 2] = (i * 5) % 256; rgba[i * 4 + 3] = 255; }
  const png = join(dir, "img.png");
  writeFileSync(png, encodePng(S, S, rgba));
  const r = cli("predict", "--model", f, "--image", png, "--json");
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  // the image already has the model's size: no resize, only (x/255 - 0.5) / 0.5 per channel
  const px = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++) for (let i = 0; i < S * S; i++) px[c * S * S + i] = (rgba[i * 4 + c] / 255 - 0.5) / 0.5;
  const { model } = await fromPretrainedDir(f);
  const logits = noGrad(() => model.forward({ pixelValues: tensor(px).reshape([1, 3, S, S]) }).logits!);
  const d = logits.dataSync() as Float32Array, probs = softmax(d, 0, d.length);
  assert.equal(got.top[0].index, argmax(d));
  for (const t of got.top) assert.ok(Math.abs(t.probability - probs[t.index]) < 1e-5);
  // explain: the [CLS] row over the patches, the picture kept for the overlay
  const ex = cli("explain", "--model", f, "--image", png, "--method", "raw", "--json");
  assert.equal(ex.code, 0, ex.err);
  const e = JSON.parse(ex.out) as Explanation;
  const g = S / cfg.patch_size;
  assert.equal(e.target.index, argmax(d));
  assert.equal(e.tokens.length, 1 + g * g);
  assert.deepEqual(e.image!.grid, [g, g]);
  assert.ok(Math.abs(e.image!.pixels[0] - rgba[0] / 255) < 1e-6);
});

test("explain: raw attention and the target come from the model's own forward (classifier, decoder)", async () => {
  const f = caseFolder("bert-seqcls", true);
  const text = "the red dog ran far";
  const r = cli("explain", "--model", f, "--text", text, "--method", "raw,rollout,flow", "--json");
  assert.equal(r.code, 0, r.err);
  const e = JSON.parse(r.out) as Explanation;
  const p = await fromPretrainedDir(f);
  const enc = (p.tokenizer as HFTokenizer).encodeDetailed(text);
  const out = noGrad(() => p.model.forward({ inputIds: tensor([enc.ids], { dtype: "int32" }) }, { outputAttentions: true }));
  assert.deepEqual(e.tokens, ["[CLS]", "the", "red", "dog", "ran", "far", "[SEP]"]);
  assert.deepEqual(e.special, [0, 6]);
  assert.equal(e.target.index, argmax(out.logits!.dataSync() as Float32Array));
  // raw: the last layer's [CLS] row, head mean, specials zeroed, renormalised
  const att = out.attentions!.at(-1)!, [, H, T] = att.shape, a = att.dataSync() as Float32Array;
  const row = Array.from({ length: T }, (_, j) => (j === 0 || j === T - 1 ? 0 : Array.from({ length: H }, (_, h) => a[h * T * T + j]).reduce((x, y) => x + y, 0)));
  const s = row.reduce((x, y) => x + y, 0);
  row.forEach((v, j) => assert.ok(Math.abs(e.methods.raw!.importance[j] - v / s) < 1e-5, `raw[${j}]`));
  for (const m of ["rollout", "flow"] as const) assert.ok(Math.abs(e.methods[m]!.importance.reduce((x, y) => x + y, 0) - 1) < 1e-5, m);
  const term = cli("explain", "--model", f, "--text", text, "--method", "rollout");
  assert.equal(term.code, 0, term.err);
  assert.match(term.out, /BertForSequenceClassification/);
  assert.match(term.out, /── attention rollout ──/);
  assert.match(term.out, /\bdog\b/);

  const g = caseFolder("gpt2");
  const rg = cli("explain", "--model", g, "--input-ids", "5,6,7,8", "--method", "all", "--json");
  assert.equal(rg.code, 0, rg.err);
  const eg = JSON.parse(rg.out) as Explanation;
  const { model } = await fromPretrainedDir(g);
  const lg = noGrad(() => model.forward({ inputIds: tensor([[5, 6, 7, 8]], { dtype: "int32" }) }).logits!);
  const V = lg.shape[2];
  assert.equal(eg.target.index, argmax(lg.dataSync() as Float32Array, 3 * V, V));
  assert.equal(eg.query, 3);
  assert.ok(eg.causal);
  assert.deepEqual(Object.keys(eg.methods).sort(), ["flow", "grad", "inputgrad", "raw", "rollout"]);   // no blank token: no blank-out
});

test("explain: an encoder-decoder is read through the cross-attention of the chosen output token", async () => {
  const f = caseFolder("marian-unshared-relu");
  const r = cli("explain", "--model", f, "--input-ids", "5,6,7,8", "--target", "1", "--max-tokens", "3", "--json");
  assert.equal(r.code, 0, r.err);
  const e = JSON.parse(r.out) as Explanation;
  assert.equal(e.query, "readout");
  assert.equal(e.readout!.length, 4);
  assert.ok(Math.abs(e.readout!.reduce((x, y) => x + y, 0) - 1) < 1e-5);
  assert.ok(e.layerNames.every((n) => n.includes("encoder")), e.layerNames.join(", "));
  const far = cli("explain", "--model", f, "--input-ids", "5,6,7,8", "--target", "9", "--max-tokens", "3");
  assert.equal(far.code, 2); assert.match(far.err, /--target 9 is out of range: 3 tokens were generated/);
});

test("explain: --target by class name, masked-LM target, and blank-out scores equal the model's logit drops", async () => {
  const f = join(dir, "bert-seqcls-tok"), text = "the cat sat on a hat";
  const r = cli("explain", "--model", f, "--text", text, "--target", "LABEL_1", "--method", "blankout,rollout", "--json");
  assert.equal(r.code, 0, r.err);
  const e = JSON.parse(r.out) as Explanation;
  assert.equal(e.target.index, 1); assert.equal(e.target.label, "LABEL_1"); assert.equal(e.query, 0);
  const p = await fromPretrainedDir(f);
  const ids = (p.tokenizer as HFTokenizer).encode(text);
  const logit = (x: number[]) => (noGrad(() => p.model.forward({ inputIds: tensor([x], { dtype: "int32" }) }).logits!).dataSync() as Float32Array)[1];
  const base = logit(ids);
  assert.ok(Math.abs(e.target.score - base) < 1e-4);
  for (let j = 1; j < ids.length - 1; j++) {
    const occluded = ids.slice(); occluded[j] = 4;   // [MASK]
    assert.ok(Math.abs(e.methods.blankout!.importance[j] - (base - logit(occluded))) < 1e-4, `blankout[${j}]`);
  }
  const bad = cli("explain", "--model", f, "--text", text, "--target", "LABEL_9");
  assert.equal(bad.code, 2); assert.match(bad.err, /--target "LABEL_9" is neither a class name of this model nor an index in \[0, 2\]/);

  const mf = join(dir, "bert-mlm-h3-tok");
  const rm = cli("explain", "--model", mf, "--text", "the cat [MASK] on the mat", "--method", "raw", "--json");
  assert.equal(rm.code, 0, rm.err);
  const em = JSON.parse(rm.out) as Explanation;
  const pm = await fromPretrainedDir(mf);
  const mids = (pm.tokenizer as HFTokenizer).encode("the cat [MASK] on the mat"), pos = mids.indexOf(4);
  const lm = noGrad(() => pm.model.forward({ inputIds: tensor([mids], { dtype: "int32" }) }).logits!), V = lm.shape[2];
  assert.equal(em.query, pos);
  assert.equal(em.target.index, argmax(lm.dataSync() as Float32Array, pos * V, V));
});

test("HF folders: clear errors for a folder that is no model and for an unsupported model_type", () => {
  const empty = join(dir, "empty");
  cpSync(join(fixtures, "gpt2"), empty, { recursive: true });
  rmSync(join(empty, "config.json"));
  for (const cmd of ["info", "predict", "explain"]) {
    const r = cli(cmd, "--model", empty, ...(cmd === "info" ? [] : ["--input-ids", "1,2"]));
    assert.equal(r.code, 1);
    assert.match(r.err, /neither an attnflow checkpoint .* nor a Hugging Face model folder \(it has no config\.json\)/, cmd);
  }
  const odd = caseFolder("gpt2-nopad");
  const cfg = JSON.parse(readFileSync(join(odd, "config.json"), "utf8"));
  writeFileSync(join(odd, "config.json"), JSON.stringify({ ...cfg, model_type: "roberta" }));
  for (const cmd of ["info", "predict"]) {
    const r = cli(cmd, "--model", odd, ...(cmd === "info" ? [] : ["--input-ids", "1,2"]));
    assert.equal(r.code, 1);
    assert.match(r.err, /"model_type" "roberta" is not supported \(supported: bart, bert, gpt2, llama, marian, mistral, t5, vit\)/, cmd);
  }
  const wrong = cli("predict", "--model", join(dir, "vit"), "--input-ids", "1,2");
  assert.equal(wrong.code, 2); assert.match(wrong.err, /ViTForImageClassification reads an image \(--image FILE\), not --input-ids/);
  const wrong2 = cli("explain", "--model", join(dir, "gpt2"), "--image", join(dir, "img.png"));
  assert.equal(wrong2.code, 2); assert.match(wrong2.err, /GPT2LMHeadModel reads text or token ids \(--text, --input-ids\), not --image/);
  const blank = cli("explain", "--model", join(dir, "gpt2"), "--input-ids", "5,6", "--method", "blankout");
  assert.equal(blank.code, 2); assert.match(blank.err, /--method blankout is not available for this Hugging Face folder .*needs a \[MASK\], unknown or padding token/);
  const ig = cli("explain", "--model", join(dir, "bert-seqcls-tok"), "--text", "the cat", "--method", "inputgrad");
  assert.equal(ig.code, 0, ig.err);   // input x gradient: checked against finite differences in hf-explain-grad.test.ts
});

test("explain --head-fusion/--discard-ratio on a Hugging Face folder: rollout with those options, recorded in the JSON", () => {
  const f = caseFolder("bert-seqcls", true);
  const r = cli("explain", "--model", f, "--text", "the red dog ran far", "--head-fusion", "min", "--discard-ratio", "0.5", "--json");
  assert.equal(r.code, 0, r.err);
  const e = JSON.parse(r.out) as Explanation;
  assert.deepEqual(e.methods.rollout!.options, { headFusion: "min", discardRatio: 0.5, startLayer: 0 });
  const T = e.tokens.length, q = e.query as number;
  const ro = (o: { headFusion?: "min"; discardRatio?: number }) => {
    const m = attentionRollout({ data: new Float64Array(e.attention!.flat(3)), layers: e.layers, heads: e.heads, tokens: T }, { ...o, causal: e.causal });
    const v = Array.from({ length: T }, (_, j) => (e.special.includes(j) ? 0 : m.data[(e.layer * T + q) * T + j]));
    const s = v.reduce((x, y) => x + y, 0);
    return v.map((x) => x / s);
  };
  const want = ro({ headFusion: "min", discardRatio: 0.5 }), plain = ro({});
  want.forEach((v, j) => assert.ok(Math.abs(e.methods.rollout!.importance[j] - v) < 1e-5, `rollout[${j}]`));
  assert.ok(plain.some((v, j) => Math.abs(v - want[j]) > 1e-3), "the options should change the rollout here");
});
