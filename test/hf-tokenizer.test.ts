// Hugging Face tokenizer.json loading (src/hf/tokenizer.ts): BERT WordPiece against transformers' own BertTokenizer,
// a T5-style Unigram model against hand-derived segmentations and an exhaustive search, the places where
// @huggingface/tokenizers needed filling in, truncation, padding, and errors that name the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTokenizer, toHFInputs } from "../src/hf/tokenizer.js";
import { loadTokenizerFromDir } from "../src/hf/node-tokenizer.js";
import { HFImportError } from "../src/hf/types.js";
import { hfTokFixtures } from "./helpers/hf-tokenizer-data.js";

const FIX = hfTokFixtures();
const readJson = (...p: string[]): Record<string, any> => JSON.parse(readFileSync(join(FIX, ...p), "utf8"));
const bert = () => loadTokenizerFromDir(join(FIX, "bert"));
const t5 = () => loadTokenizerFromDir(join(FIX, "t5-unigram"));

interface BertCase { text: string; ids: number[]; type_ids: number[]; tokens: string[]; decoded: string; pair: string; pair_ids: number[]; pair_type_ids: number[] }

test("BERT WordPiece: ids, tokens, pairs and decoding equal transformers' BertTokenizer (reference from scripts/hf-tokenizer-refs.py)", () => {
  const tok = bert(), ref = readJson("bert", "reference.json") as { cases: BertCase[] };
  assert.ok(ref.cases.length >= 60);
  for (const c of ref.cases) {
    const what = JSON.stringify(c.text);
    const e = tok.encodeDetailed(c.text);
    assert.deepEqual(e.tokens, c.tokens, what);
    assert.deepEqual(e.ids, c.ids, what);
    assert.deepEqual(e.typeIds, c.type_ids, what);
    const p = tok.encodeDetailed(c.text, c.pair);
    assert.deepEqual(p.ids, c.pair_ids, `${what} + ${JSON.stringify(c.pair)}`);
    assert.deepEqual(p.typeIds, c.pair_type_ids, `${what} + ${JSON.stringify(c.pair)}`);
    assert.equal(tok.decode(e.ids, { skipSpecialTokens: true }), c.decoded, what);
  }
});

test("BERT: HF's lowercasing (Σ → σ even at a word's end) and CJK spacing beyond the Basic Multilingual Plane", () => {
  // Both differ in @huggingface/tokenizers as shipped: JavaScript's toLowerCase applies Final_Sigma, and its
  // BertNormalizer walks UTF-16 code units. src/hf/tokenizer-json.ts patches both.
  const tok = bert();
  assert.deepEqual(tok.tokens(tok.encode("ΟΣ", { addSpecialTokens: false })), ["ο", "##σ"]);
  assert.deepEqual(tok.tokens(tok.encode("𠀀𠀁", { addSpecialTokens: false })), ["[UNK]", "[UNK]"]);
});

test("BERT: a batch pads right with [PAD], and token type ids go to the model (BERT has token types)", () => {
  const tok = bert(), ref = readJson("bert", "reference.json");
  const b = tok.encodeBatch(ref.batch.texts);
  assert.deepEqual(b.inputIds, ref.batch.input_ids);
  assert.deepEqual(b.attentionMask, ref.batch.attention_mask);
  assert.deepEqual(b.tokenTypeIds, ref.batch.token_type_ids);
  assert.equal(b.paddingSide, "right");
  const inputs = toHFInputs(tok, b);
  assert.deepEqual(inputs.tokenTypeIds!.shape, inputs.inputIds!.shape);
  assert.deepEqual(tok.special.mask, { token: "[MASK]", id: 4 });
  assert.equal(tok.modelMaxLength, 512);
  const padded = tok.encodeBatch(["a b", "a"], { padding: "max_length", maxLength: 6 });
  assert.deepEqual(padded.inputIds, [[2, 43, 44, 3, 0, 0], [2, 43, 3, 0, 0, 0]]);
  assert.deepEqual(padded.specialTokensMask[1], [1, 0, 1, 1, 1, 1]);
  assert.throws(() => tok.encodeBatch(["a b", "a"], { padding: false }), /lengths 4, 3 and padding is off/);
});

test("truncation follows the Rust tokenizers crate's longest_first rule (transformers' fast tokenizers)", () => {
  const tok = bert();
  const words = (n: number) => "abcdefghij".slice(0, n).split("").join(" ");
  const count = (ids: number[]) => { const sep = ids.indexOf(3); return [sep - 1, ids.length - sep - 2]; };
  // [CLS] A [SEP] B [SEP]: room = 12 - 3 = 9. Equal lengths: the first gets floor(9 / 2).
  assert.deepEqual(count(tok.encodePair(words(5), words(5), { maxLength: 12 })), [4, 5]);
  // The longer first sequence: it keeps the larger half (transformers' slow tokenizers would give [4, 5] here).
  assert.deepEqual(count(tok.encodePair(words(7), words(6), { maxLength: 12 })), [5, 4]);
  // Only the longer one needs cutting: it keeps room - shorter.
  assert.deepEqual(count(tok.encodePair(words(9), words(2), { maxLength: 12 })), [7, 2]);
  assert.deepEqual(tok.encode(words(8), { maxLength: 4 }), [2, 43, 44, 3]);
  assert.deepEqual(tok.encode(words(8), { maxLength: 2, addSpecialTokens: false }), [43, 44]);
  assert.throws(() => tok.encodePair("a", "b", { maxLength: 2 }), /maxLength 2 leaves no room: the special tokens alone take 3/);
  assert.throws(() => tok.encode("a", { maxLength: 0 }), /maxLength must be a positive integer/);
});

test("T5-style Unigram: hand-derived segmentations, </s> appended, <extra_id_0> kept whole, unknown runs fused", () => {
  const tok = t5();
  assert.equal(tok.modelType, "Unigram");
  // ▁cat + s (-3.13 - 3.54 = -6.67) beats ▁cats (-7.15); ▁the (-1.52) beats ▁t + he (-6.07).
  assert.deepEqual(tok.encode("the cats"), [4, 14, 15, 1]);
  // ▁un + happy (-5.67) beats ▁unhappy (-6.12).
  assert.deepEqual(tok.encode("unhappy"), [10, 11, 1]);
  // Runs of spaces collapse; z, b and r have no piece: z alone and "br" fused each become one <unk>.
  assert.deepEqual(tok.encode("the   zebra."), [4, 3, 2, 8, 2, 17, 24, 1]);
  assert.deepEqual(tok.encode("<extra_id_0> the"), [25, 4, 1]);
  assert.deepEqual(tok.encodePair("the", "cats"), [4, 1, 14, 15, 1]);
  assert.equal(tok.decode([4, 14, 15, 1], { skipSpecialTokens: true }), "the cats");
  assert.deepEqual(tok.labels([4, 14, 15, 1]), [" the", " cat", "s", "</s>"]);
  const b = tok.encodeBatch(["the", "the cats"]);
  assert.deepEqual(b.inputIds, [[4, 1, 0, 0], [4, 14, 15, 1]]);
  assert.deepEqual(b.attentionMask, [[1, 1, 0, 0], [1, 1, 1, 1]]);
  assert.ok(tok.specialIds.has(25), "additional_special_tokens are special");
  assert.equal(toHFInputs(tok, b).tokenTypeIds, undefined);
});

test("T5-style Unigram: every segmentation has the best total score an exhaustive search finds", () => {
  const tok = t5();
  const vocab = (readJson("t5-unigram", "tokenizer.json").model.vocab as [string, number][]);
  const score = new Map(vocab.slice(3, 25).map(([p, s]) => [p, s]));
  const best = (w: string): number => {
    if (w === "") return 0;
    let top = -Infinity;
    for (let k = 1; k <= w.length; k++) {
      const s = score.get(w.slice(0, k));
      if (s !== undefined) top = Math.max(top, s + best(w.slice(k)));
    }
    return top;
  };
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const letters = "thecasunpy.";
  for (let i = 0; i < 300; i++) {
    const word = Array.from({ length: 1 + Math.floor(rand() * 9) }, () => letters[Math.floor(rand() * letters.length)]).join("");
    const ids = tok.encode(word, { addSpecialTokens: false });
    const got = ids.reduce((s, id) => s + vocab[id][1], 0);
    assert.ok(Math.abs(got - best("\u2581" + word)) < 1e-9, `${word}: ${tok.tokens(ids)} scores ${got}, best ${best("\u2581" + word)}`);
  }
});

// A BPE vocabulary where "▁▁" is the first merge, to see whether pieces may cross a "▁".
function metaspaceBpe(pre: Record<string, unknown>): Record<string, unknown> {
  const vocab = { "<unk>": 0, "\u2581": 1, a: 2, b: 3, "\u2581a": 4, "\u2581b": 5, "\u2581\u2581": 6 };
  return {
    model: { type: "BPE", unk_token: "<unk>", vocab, merges: ["\u2581 \u2581", "\u2581 a", "\u2581 b"] },
    pre_tokenizer: { type: "Metaspace", replacement: "\u2581", ...pre }, decoder: { type: "Metaspace", replacement: "\u2581" },
  };
}

test("Metaspace: split (HF's default) cuts before every ▁; split false lets merges cross; old add_prefix_space false prepends nothing", () => {
  // @huggingface/tokenizers never splits and always prepends without prepend_scheme; tokenizer-json.ts fills both in.
  assert.deepEqual(loadTokenizer(metaspaceBpe({ prepend_scheme: "always", split: true })).encode("a  b"), [4, 1, 5]);
  assert.deepEqual(loadTokenizer(metaspaceBpe({ prepend_scheme: "always" })).encode("a  b"), [4, 1, 5]);
  assert.deepEqual(loadTokenizer(metaspaceBpe({ prepend_scheme: "always", split: false })).encode("a  b"), [4, 6, 3]);
  assert.deepEqual(loadTokenizer(metaspaceBpe({ add_prefix_space: false })).encode("a b"), [2, 5]);
  assert.deepEqual(loadTokenizer(metaspaceBpe({ add_prefix_space: true })).encode("a b"), [4, 5]);
});

test("decode and tokens reject ids outside the vocabulary, naming the position", () => {
  const tok = bert();
  assert.equal(tok.decode([]), "");
  assert.equal(tok.decode([2, 3], { skipSpecialTokens: true }), "");
  assert.throws(() => tok.decode([2, 9999]), /id 9999 at position 1 is not in the vocabulary \(0\.\.296\)/);
  assert.throws(() => tok.tokens([1.5]), /id 1.5 at position 0/);
  assert.throws(() => tok.encode(42 as unknown as string), /text must be a string/);
});

function minimal(): Record<string, any> {
  return { model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", vocab: { "[UNK]": 0, a: 1 } } };
}
function rejects(json: unknown, pattern: RegExp, config?: unknown, map?: unknown): void {
  assert.throws(() => loadTokenizer(json, config, map === undefined ? {} : { specialTokensMap: map }), (e: Error) => {
    assert.ok(e instanceof HFImportError, `${e.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test("malformed or unsupported tokenizer.json: an HFImportError names the field", () => {
  assert.deepEqual(loadTokenizer(minimal()).encode("a"), [1]);
  rejects("{not json", /tokenizer\.json is not valid JSON/);
  rejects([], /tokenizer\.json: \(top level\) must be a JSON object/);
  rejects({}, /tokenizer\.json: model is missing/);
  rejects({ model: { type: "WordLevel", vocab: {} } }, /model\.type "WordLevel" is not supported \(supported: BPE, WordPiece, Unigram\)/);
  rejects({ ...minimal(), model: { ...minimal().model, vocab: [1, 2] } }, /model\.vocab must be an object of token -> id/);
  rejects({ ...minimal(), model: { ...minimal().model, vocab: { a: -1 } } }, /model\.vocab\["a"\] must be a non-negative integer id, got -1/);
  rejects({ model: { type: "BPE", vocab: { a: 0 }, merges: ["a b", "abc"] } }, /model\.merges\[1\] must be "left right" or \[left, right\], got "abc"/);
  rejects({ model: { type: "BPE", vocab: { a: 0 }, merges: [], dropout: 0.1 } }, /model\.dropout is 0\.1/);
  rejects({ model: { type: "Unigram", vocab: [["a", -1]], unk_id: 3 } }, /model\.unk_id must be an index into model\.vocab \(0\.\.0\), got 3/);
  rejects({ model: { type: "Unigram", vocab: [["a", "x"]], unk_id: 0 } }, /model\.vocab\[0\] must be \[piece, score\]/);
  rejects({ model: { type: "Unigram", vocab: [["a", -1]], unk_id: 0, byte_fallback: true } }, /model\.byte_fallback is true/);
  rejects({ ...minimal(), pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Whitespace" }, { type: "UnicodeScripts" }] } },
    /pre_tokenizer\.pretokenizers\[1\]\.type "UnicodeScripts" is not supported/);
  rejects({ ...minimal(), pre_tokenizer: { type: "Split", pattern: { Regex: "\\s" }, behavior: "MergedWithPrevious" } },
    /pre_tokenizer\.behavior "MergedWithPrevious" is not supported \(supported: Isolated, Removed\)/);
  rejects({ ...minimal(), normalizer: { type: "Sequence", normalizers: [{ type: "Replace", pattern: { Glob: "*" }, content: "" }] } },
    /normalizer\.normalizers\[0\]\.pattern must be \{"String": \.\.\.\} or \{"Regex": \.\.\.\}/);
  rejects({ ...minimal(), post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }], pair: [], special_tokens: {} } },
    /post_processor\.single\[0\]\.SpecialToken\.id must name an entry of special_tokens, got "\[CLS\]"/);
  rejects({ ...minimal(), post_processor: { type: "BertProcessing", cls: ["[CLS]"], sep: ["[SEP]", 1] } }, /post_processor\.cls must be \[token, id\]/);
  rejects({ ...minimal(), decoder: { type: "Nope" } }, /decoder\.type "Nope" is not supported/);
  rejects({ ...minimal(), added_tokens: [{ id: -3, content: "x" }] }, /added_tokens\[0\]\.id must be a non-negative integer, got -3/);
});

test("tokenizer_config.json problems name the key", () => {
  rejects(minimal(), /tokenizer_config\.json: pad_token "\[PAD\]" is not in the vocabulary/, { pad_token: "[PAD]" });
  rejects(minimal(), /tokenizer_config\.json: padding_side must be "left" or "right", got "middle"/, { padding_side: "middle" });
  rejects(minimal(), /tokenizer_config\.json: eos_token must be a string, \{"content": \.\.\.\} or null, got 7/, { eos_token: 7 });
  rejects(minimal(), /tokenizer_config\.json is not valid JSON/, "{");
  // AddedToken dicts, as newer transformers write them, are read by content.
  const tok = loadTokenizer(minimal(), { unk_token: { __type: "AddedToken", content: "[UNK]", special: true }, padding_side: "left" });
  assert.deepEqual(tok.special.unk, { token: "[UNK]", id: 0 });
  assert.equal(tok.paddingSide, "left");
  const mapped = loadTokenizer(minimal(), { unk_token: "a" }, { specialTokensMap: '{"unk_token": "[UNK]"}' });
  assert.deepEqual(mapped.special.unk, { token: "[UNK]", id: 0 }, "special_tokens_map.json overrides the config");
  rejects(minimal(), /special_tokens_map\.json is not valid JSON/, undefined, "{x");
});

test("loadTokenizerFromDir: special_tokens_map.json overrides tokenizer_config.json; a folder without tokenizer.json is named", () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-hftok-"));
  try {
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...minimal(), model: { ...minimal().model, vocab: { "[UNK]": 0, a: 1, "<p>": 2 } } }));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ pad_token: "[UNK]" }));
    writeFileSync(join(dir, "special_tokens_map.json"), JSON.stringify({ pad_token: { content: "<p>" } }));
    assert.deepEqual(loadTokenizerFromDir(dir).special.pad, { token: "<p>", id: 2 });
    // config.json's model_type picks the class: BERT's defaults apply where the vocabulary has them.
    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "bert" }));
    const withClass = loadTokenizerFromDir(dir);
    assert.equal(withClass.tokenizerClass, "BertTokenizer");
    assert.deepEqual(withClass.special.unk, { token: "[UNK]", id: 0 });
    assert.equal(withClass.special.cls, undefined, "[CLS] is not in this vocabulary");
    assert.ok(withClass.modelInputNames.includes("token_type_ids"));
    writeFileSync(join(dir, "special_tokens_map.json"), "[1]");
    assert.throws(() => loadTokenizerFromDir(dir), /special_tokens_map\.json must be a JSON object/);
    const spm = join(dir, "marian");
    mkdirSync(spm);
    writeFileSync(join(spm, "source.spm"), "");
    writeFileSync(join(spm, "vocab.json"), "{}");
    // a Marian folder reads source.spm + target.spm + vocab.json (hf-tokenizer-marian.test.ts): a missing one is named
    assert.throws(() => loadTokenizerFromDir(spm), /marian has source\.spm but no target\.spm/);
    writeFileSync(join(spm, "target.spm"), "");
    assert.throws(() => loadTokenizerFromDir(spm), /vocab\.json has no eos token "<\/s>" \(MarianTokenizer needs <\/s>, <unk>, <pad>\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
