// LLaMA-1's SentencePiece BPE with byte fallback (npm llama-tokenizer-js's vocabulary and merges, built into a legacy
// LlamaTokenizerFast tokenizer.json by scripts/hf-tokenizer-fixtures.ts): ids must equal that package's encoder.
import { test } from "node:test";
import assert from "node:assert/strict";
import llamaJs from "llama-tokenizer-js";
import { loadTokenizer } from "../src/hf/tokenizer.js";
import { llamaTokenizerFiles } from "../scripts/hf-tokenizer-fixtures.js";
import { committedSentences, fortuneSentences, llamaTokenizer, skipWithoutFortunes } from "./helpers/hf-tokenizer-data.js";

// Two documented differences, not bugs: llama-tokenizer-js returns [] for "" (HF gives [<s>]), and it does not treat
// "<s>", "</s>" or "<unk>" written in the text as special tokens (HF does). Texts with those are compared elsewhere.
const comparable = (s: string): boolean => s !== "" && !/<\/?s>|<unk>/.test(s);

async function assertSameAsLlamaJs(texts: string[]): Promise<void> {
  const tok = await llamaTokenizer();
  let diffs = 0, first = "";
  for (const s of texts.filter(comparable)) {
    const a = tok.encode(s), b = llamaJs.encode(s);
    if (a.length !== b.length || a.some((v, i) => v !== b[i])) {
      if (diffs++ === 0) first = `${JSON.stringify(s)}: ours ${JSON.stringify(a)}, llama-tokenizer-js ${JSON.stringify(b)}`;
    }
  }
  assert.equal(diffs, 0, `${diffs} of ${texts.length} texts differ; first: ${first}`);
}

test("Llama: ids equal llama-tokenizer-js's on the committed tricky sentences", async () => {
  await assertSameAsLlamaJs(committedSentences());
});

test("Llama: ids equal llama-tokenizer-js's on 3000 sentences from Debian fortunes", { skip: skipWithoutFortunes }, async () => {
  const texts = fortuneSentences(3000);
  assert.ok(texts.length >= 1000, `only ${texts.length} fortune sentences`);
  await assertSameAsLlamaJs(texts);
});

test("Llama: the package's own hand-checked cases (merge order, spaces, byte fallback)", async () => {
  const tok = await llamaTokenizer();
  assert.deepEqual(tok.encode("grabbed"), [1, 2646, 1327, 287]);
  assert.deepEqual(tok.encode(" grabbed"), [1, 29871, 2646, 1327, 287]);
  assert.deepEqual(tok.encode("           grabbed"), [1, 9651, 2646, 1327, 287]);
  assert.deepEqual(tok.encode("\n"), [1, 29871, 13]);
  assert.deepEqual(tok.encode("ax\n####\nboo"), [1, 4853, 13, 4136, 13, 833, 29877]);
  assert.deepEqual(tok.encode("🦙Ꙋ"), [1, 29871, 243, 162, 169, 156, 237, 156, 141]);
  assert.deepEqual(tok.encode(""), [1]);
  assert.deepEqual(tok.encode("grabbed", { addSpecialTokens: false }), [2646, 1327, 287]);
});

test("Llama: decode restores the text; byte-fallback tokens decode as UTF-8; labels show them as bytes", async () => {
  const tok = await llamaTokenizer();
  for (const s of committedSentences().filter(comparable)) {
    assert.equal(tok.decode(tok.encode(s), { skipSpecialTokens: true }), s, JSON.stringify(s));
  }
  assert.equal(tok.decode([1, 2646, 1327, 287]), "<s> grabbed");
  const ids = tok.encode("Hi 🦙");
  assert.deepEqual(tok.labels(ids), ["<s>", " Hi", " ", "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"]);
});

test("Llama: special tokens, left padding (LlamaTokenizerFast's default) and add_eos_token from the config", async () => {
  const tok = await llamaTokenizer();
  assert.deepEqual(tok.special.bos, { token: "<s>", id: 1 });
  assert.deepEqual(tok.special.eos, { token: "</s>", id: 2 });
  assert.equal(tok.paddingSide, "left");
  const b = tok.encodeBatch(["grabbed", "Hi"], { padTokenId: 0 });
  assert.deepEqual(b.inputIds, [[1, 2646, 1327, 287], [0, 0, 1, 6324]]);
  assert.deepEqual(b.attentionMask, [[1, 1, 1, 1], [0, 0, 1, 1]]);
  const withSpecial = tok.encode("a <s> b");
  assert.deepEqual(withSpecial.filter((id) => id === 1).length, 2, `<s> in the text is the special token: ${withSpecial}`);
  assert.ok(!tok.tokens(withSpecial).some((t) => t.includes("<") && t !== "<s>"), "no piece of '<s>' spelled out");

  const files = await llamaTokenizerFiles();
  const withEos = loadTokenizer(files.tokenizer, { ...files.config, add_eos_token: true, add_bos_token: false });
  assert.deepEqual(withEos.encode("grabbed"), [2646, 1327, 287, 2]);
  assert.deepEqual(withEos.encodePair("grabbed", "grabbed"), [2646, 1327, 287, 2, 2646, 1327, 287, 2]);
  assert.throws(() => loadTokenizer(files.tokenizer, { ...files.config, add_eos_token: true, eos_token: null }), /add_eos_token is true but there is no eos_token/);
});
