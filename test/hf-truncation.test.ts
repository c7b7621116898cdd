// A Hugging Face folder's text longer than the model reads (max_position_embeddings / n_positions, the tokenizer's
// model_max_length) is cut as HF's tokenizer(…, truncation=True, max_length=N) cuts it — special tokens kept — with a
// notice of how many tokens were dropped; --no-truncation refuses it with an error naming the length and the limit.
// Before, the model raised its own "sequence length exceeds" error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/node.js";
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import { HFInputError, hfInputs, hfTextTarget, inputLimit, textInputOf, type HFLoaded } from "../src/hf/explain-target.js";
import type { HFTokenizer } from "../src/hf/tokenizer.js";
import { noGrad } from "../src/autograd.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "bin", "attnflow.js");
const dir = mkdtempSync(join(tmpdir(), "attnflow-hf-trunc-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "##s", "and", ".", "big", "red", "hat"];
/** A fixture model with a small WordPiece tokenizer (ids fit the fixture's vocabulary). */
function folder(name: string, fixture: string, tokenizerConfig?: Record<string, unknown>): string {
  const to = join(dir, name);
  cpSync(join(root, "test", "fixtures", "hf", fixture), to, { recursive: true });
  rmSync(join(to, "reference.safetensors"));
  const tj = JSON.parse(readFileSync(join(root, "test", "fixtures", "hf-tokenizer", "bert", "tokenizer.json"), "utf8"));
  const V = JSON.parse(readFileSync(join(to, "config.json"), "utf8")).vocab_size as number;
  tj.model.vocab = Object.fromEntries([...WORDS, ...Array.from({ length: V - WORDS.length }, (_, i) => `w${WORDS.length + i}`)].map((w, i) => [w, i]));
  writeFileSync(join(to, "tokenizer.json"), JSON.stringify(tj));
  if (tokenizerConfig) writeFileSync(join(to, "tokenizer_config.json"), JSON.stringify(tokenizerConfig));
  return to;
}
async function loaded(f: string): Promise<HFLoaded> {
  const p = await fromPretrainedDir(f);
  p.model.eval();
  return { model: p.model, config: p.config, tokenizer: p.tokenizer as HFTokenizer, generationConfig: p.generationConfig, dir: f };
}
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const LONG = "the big red dog ran far and the cat sat on a mat . ".repeat(8);   // 104 words + [CLS] [SEP]
const bert = folder("bert", "bert-seqcls");
const gpt2 = folder("gpt2", "gpt2");

test("the limit is the smaller of config.json's positions and the tokenizer's model_max_length; T5 has none of its own", async () => {
  const m = await loaded(bert);
  assert.deepEqual(inputLimit(m), { limit: 64, source: "max_position_embeddings 64 in config.json" });
  const small = await loaded(folder("bert-small", "bert-seqcls", { tokenizer_class: "BertTokenizer", model_max_length: 20 }));
  assert.deepEqual(inputLimit(small), { limit: 20, source: "model_max_length 20 of the tokenizer" });
  const t5 = await fromPretrainedDir(join(root, "test", "fixtures", "hf", "t5-relu-tied"));
  assert.equal(inputLimit({ model: t5.model, config: t5.config, tokenizer: null, generationConfig: null, dir: "t5" }), null);
});

test("a long text is cut as HF's right truncation cuts it ([CLS] … [SEP] kept), with how many tokens were dropped", async () => {
  const m = await loaded(bert), tok = m.tokenizer!;
  const full = tok.encode(LONG);
  assert.ok(full.length > 64, `the text is longer than the model reads (${full.length})`);
  const inp = textInputOf(m, { text: LONG });
  // the tokenizer's own max_length truncation (the Rust crate's rule, tested in hf-tokenizer.test.ts) is the reference
  assert.deepEqual(inp.ids, tok.encode(LONG, { maxLength: 64 }));
  assert.deepEqual(inp.truncation, { total: full.length, kept: 64, dropped: full.length - 64, from: "end" });
  assert.deepEqual(inp.special, [0, 63]);
  assert.equal(inp.labels.length, 64);
  assert.equal(inp.typeIds!.length, 64);
  // --max-length: the same rule at another length
  const ml = textInputOf(m, { text: LONG }, { maxLength: 10 });
  assert.deepEqual(ml.ids, tok.encode(LONG, { maxLength: 10 }));
  // left: the end of the text is kept, [CLS] and [SEP] stay where they are
  const left = textInputOf(m, { text: LONG }, { maxLength: 10, side: "left" });
  assert.deepEqual(left.ids, [full[0], ...full.slice(full.length - 9, full.length - 1), full.at(-1)]);
  assert.equal(left.truncation!.from, "start");
  // a short text is untouched
  assert.equal(textInputOf(m, { text: "the cat sat" }).truncation, undefined);
  // the explanation carries it (the terminal view, JSON and HTML report print it)
  assert.deepEqual(hfTextTarget(m, inp, undefined).truncation, inp.truncation);
  // and the model runs on it (it raised "sequence length 106 exceeds max_position_embeddings 64" before)
  assert.deepEqual(noGrad(() => m.model.forward(hfInputs(inp)).logits!.shape), [1, 3]);
});

test("--no-truncation and impossible lengths are errors naming the length and the limit", async () => {
  const m = await loaded(bert), n = m.tokenizer!.encode(LONG).length;
  assert.throws(() => textInputOf(m, { text: LONG }, { truncation: false }),
    (e: Error) => e instanceof HFInputError && e.message.includes(`the input is ${n} tokens, but the model reads at most 64 (max_position_embeddings 64 in config.json)`));
  assert.throws(() => textInputOf(m, { text: LONG }, { maxLength: 65 }), /--max-length 65 exceeds what the model reads: at most 64 tokens/);
  assert.throws(() => textInputOf(m, { text: LONG }, { maxLength: 2 }), /special tokens alone take 2/);
  const g = await loaded(gpt2);
  assert.throws(() => textInputOf(g, { ids: "5,6,7" }, { reserve: 64 }), /64 new tokens leave no room for the prompt: the model reads at most 64 positions/);
});

test("CLI: predict and explain cut a long text with a one-line notice; --no-truncation exits 2 naming both numbers", async () => {
  const m = await loaded(bert), n = m.tokenizer!.encode(LONG).length;
  const p = cli("predict", "--model", bert, "--text", LONG, "--json");
  assert.equal(p.code, 0, p.err);
  assert.match(p.err, new RegExp(`input truncated: ${n} tokens, the model reads at most 64; ${n - 64} dropped from the end`));
  const got = JSON.parse(p.out);
  assert.deepEqual(got.truncation, { total: n, kept: 64, dropped: n - 64, from: "end" });
  // the same answer as the model on the HF-truncated ids
  const ids = m.tokenizer!.encode(LONG, { maxLength: 64 }).join(",");
  const q = cli("predict", "--model", bert, "--input-ids", ids, "--json");
  assert.equal(q.code, 0, q.err);
  assert.deepEqual(JSON.parse(q.out).top, got.top);
  const no = cli("predict", "--model", bert, "--text", LONG, "--no-truncation");
  assert.equal(no.code, 2);
  assert.match(no.err, new RegExp(`the input is ${n} tokens, but the model reads at most 64`));
  const e = cli("explain", "--model", bert, "--text", LONG, "--method", "raw");
  assert.equal(e.code, 0, e.err);
  assert.match(e.out, new RegExp(`WARNING: input truncated — ${n} tokens, the model reads at most 64: ${n - 64} dropped from the end`));
  const ml = cli("explain", "--model", bert, "--text", LONG, "--method", "raw", "--max-length", "12", "--json");
  assert.equal(ml.code, 0, ml.err);
  assert.equal(JSON.parse(ml.out).tokens.length, 12);
});

test("CLI: a causal LM's long prompt keeps its end and leaves room for the generated tokens", async () => {
  const g = await loaded(gpt2), enc = g.tokenizer!.encodeDetailed(LONG), prompt = enc.ids;
  // the leading and trailing special tokens the tokenizer adds stay; the text loses its beginning
  const a = enc.specialTokensMask.indexOf(0), b = enc.specialTokensMask.lastIndexOf(0) + 1;
  const kept = [...prompt.slice(0, a), ...prompt.slice(b - (60 - a - (prompt.length - b)), b), ...prompt.slice(b)];
  assert.equal(kept.length, 60);
  const r = cli("predict", "--model", gpt2, "--text", LONG, "--max-tokens", "4", "--json");
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  assert.deepEqual(got.truncation, { total: prompt.length, kept: 60, dropped: prompt.length - 60, from: "start" });
  const same = cli("predict", "--model", gpt2, "--input-ids", kept.join(","), "--max-tokens", "4", "--json");
  assert.equal(same.code, 0, same.err);
  assert.deepEqual(got.ids, JSON.parse(same.out).ids);
});
