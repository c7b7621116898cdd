import { test } from "node:test";
import assert from "node:assert/strict";
import { charTokenize, padBatch, SPECIAL_TOKENS, Tokenizer, wordTokenize } from "../src/data/tokenizer.js";

const CORPUS = [
  "I really enjoy reading technical blogs.",
  "Reading blogs is fun; writing them is harder!",
  "Don't panic (it's only a test), said the author.",
  "the the the cat sat on the mat.",
];

test("special tokens have fixed ids", () => {
  assert.deepEqual(SPECIAL_TOKENS, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[BOS]", "[EOS]"]);
  const tok = Tokenizer.train("word", CORPUS);
  assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.bosId, tok.eosId], [0, 1, 2, 3, 4, 5]);
  SPECIAL_TOKENS.forEach((s, i) => assert.equal(tok.idToToken(i), s));
});

test("word tokenizer splits the reference sentence into 7 tokens", () => {
  assert.deepEqual(wordTokenize("I really enjoy reading technical blogs."), ["i", "really", "enjoy", "reading", "technical", "blogs", "."]);
  assert.deepEqual(wordTokenize("Don't stop—it's 3rd-rate, isn't it?"), ["don't", "stop", "—", "it's", "3rd", "-", "rate", ",", "isn't", "it", "?"]);
  const tok = Tokenizer.train("word", CORPUS);
  const ids = tok.encode("I really enjoy reading technical blogs.");
  assert.equal(ids.length, 7);
  assert.ok(ids.every((id) => id >= SPECIAL_TOKENS.length), "all in vocabulary");
  assert.equal(tok.decode(ids), "i really enjoy reading technical blogs.");
});

test("vocabulary: frequency order, minFreq, maxVocab, deterministic ties", () => {
  const tok = Tokenizer.train("word", CORPUS);
  assert.equal(tok.idToToken(6), "the", "most frequent word first");
  const min2 = Tokenizer.train("word", CORPUS, { minFreq: 2 });
  const words = min2.toJSON().tokens.slice(6);
  // counted by hand: the x5, . x3, blogs x2, is x2, reading x2
  assert.deepEqual(words, ["the", ".", "blogs", "is", "reading"]);
  assert.equal(min2.encode("cat")[0], min2.unkId);
  const capped = Tokenizer.train("word", CORPUS, { maxVocab: 8 });
  assert.equal(capped.vocabSize, 8);
  assert.deepEqual(Tokenizer.train("word", [...CORPUS].reverse()).toJSON(), tok.toJSON());
  assert.throws(() => Tokenizer.train("word", CORPUS, { maxVocab: 3 }), /maxVocab must be >= 6/);
});

test("encode options add specials and truncate; decode drops them", () => {
  const tok = Tokenizer.train("word", CORPUS);
  const ids = tok.encode("reading blogs is fun", { cls: true, sep: true });
  assert.equal(ids[0], tok.clsId);
  assert.equal(ids[ids.length - 1], tok.sepId);
  assert.equal(ids.length, 6);
  const lm = tok.encode("reading blogs is fun", { bos: true, eos: true, maxLength: 4 });
  assert.deepEqual([lm[0], lm[3]], [tok.bosId, tok.eosId]);
  assert.equal(lm.length, 4);
  assert.equal(tok.decode(lm), "reading blogs");
  assert.equal(tok.decode(lm, { keepSpecial: true }), "[BOS] reading blogs [EOS]");
  assert.equal(tok.decode(tok.encode("zebra crossing")), "[UNK] [UNK]");
  assert.throws(() => tok.decode([tok.vocabSize]), /out of range/);
  assert.throws(() => tok.encode("x", { cls: true, sep: true, maxLength: 1 }), /maxLength 1/);
});

test("word round trip: tokenize(decode(encode(s))) == tokenize(s) for in-vocabulary text", () => {
  const tok = Tokenizer.train("word", CORPUS);
  for (const s of CORPUS) {
    const back = tok.decode(tok.encode(s));
    assert.deepEqual(wordTokenize(back), wordTokenize(s), back);
  }
  assert.equal(tok.decode(tok.encode("Don't panic (it's only a test), said the author.")), "don't panic (it's only a test), said the author.");
});

test("JSON round trip preserves ids exactly, and bad JSON is rejected", () => {
  for (const kind of ["word", "char"] as const) {
    const tok = Tokenizer.train(kind, CORPUS);
    const copy = Tokenizer.fromJSON(JSON.stringify(tok));
    assert.deepEqual(copy.toJSON(), tok.toJSON());
    for (const s of [...CORPUS, "unseen ✓ text"]) assert.deepEqual(copy.encode(s), tok.encode(s));
  }
  const good = Tokenizer.train("word", CORPUS).toJSON();
  assert.throws(() => Tokenizer.fromJSON({ ...good, format: "x" }), /'format'/);
  assert.throws(() => Tokenizer.fromJSON({ ...good, version: 2 }), /version 2/);
  assert.throws(() => Tokenizer.fromJSON({ ...good, kind: "bpe" }), /'kind'/);
  assert.throws(() => Tokenizer.fromJSON({ ...good, tokens: ["[UNK]", ...good.tokens] }), /tokens\[0\]/);
  assert.throws(() => Tokenizer.fromJSON({ ...good, tokens: [...good.tokens, "the"] }), /duplicate token "the"/);
});

test("char tokenizer: exact round trip, case kept, code points not UTF-16 units", () => {
  const tok = Tokenizer.train("char", CORPUS);
  assert.equal(tok.lowercase, false);
  for (const s of CORPUS) assert.equal(tok.decode(tok.encode(s)), s);
  assert.notEqual(tok.tokenToId("I"), tok.tokenToId("i"));
  assert.deepEqual(charTokenize("a😀b"), ["a", "😀", "b"]);
  assert.equal(tok.decode(tok.encode("a😀")), "a\uFFFD");
  const emoji = Tokenizer.train("char", ["😀😀"]);
  assert.equal(emoji.vocabSize, 7);
  assert.equal(emoji.encode("😀").length, 1);
});

test("padBatch builds (B, T) ids and mask", () => {
  const { ids, mask, batch, length } = padBatch([[7, 8, 9], [5]], undefined);
  assert.equal(batch, 2);
  assert.equal(length, 3);
  assert.deepEqual(Array.from(ids), [7, 8, 9, 5, 0, 0]);
  assert.deepEqual(Array.from(mask), [1, 1, 1, 1, 0, 0]);
  const cut = padBatch([[7, 8, 9]], 2);
  assert.deepEqual(Array.from(cut.ids), [7, 8]);
});
