import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { hashBucket100, isHeldOut, stableHash32 } from "../src/data/hash.js";
import { buildCharCorpus, buildFortuneDataset, FORTUNE_CATEGORIES, normalizeFortune, parseFortuneFile } from "../src/data/fortunes.js";
import { FORTUNES_DIR, hasFortunes, listFortuneFiles, loadFortuneCharCorpus, loadFortunes, readFortuneFiles } from "../src/node/datasets.js";

/** test/fixtures/data, found from the compiled file's location or the working directory. */
function fixtureDir(): string {
  const starts = [dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    let d = start;
    for (let i = 0; i < 6; i++) {
      const cand = join(d, "test", "fixtures", "data");
      if (existsSync(cand)) return cand;
      d = resolve(d, "..");
    }
  }
  throw new Error("test/fixtures/data not found above " + starts.join(" or "));
}
const FIX = join(fixtureDir(), "fortunes");
// FNV-1a 32 + murmur3 fmix32 of the UTF-8 bytes, cross-checked with an independent Python implementation.
const FROZEN = { "": 2872998923, hello: 2290972270, chocolate: 1371727828, "été": 2709345069 };

test("parseFortuneFile splits on lines that hold only %", () => {
  assert.deepEqual(parseFortuneFile("a\nb\n%\nc\n%\n"), ["a\nb", "c"]);
  assert.deepEqual(parseFortuneFile("x 100%\n%\n%\ny\r\n%  \r\nz"), ["x 100%", "y", "z"]);
  assert.deepEqual(parseFortuneFile(""), []);
});

test("normalizeFortune collapses whitespace and strips overstrike/control characters", () => {
  assert.equal(normalizeFortune("  A \t cat\n\nhas\r\n nine  "), "A cat has nine");
  assert.equal(normalizeFortune("a  b\n\n  c d \n", { keepLines: true }), "a b\nc d");
  assert.equal(normalizeFortune("_\bc_\ba_\bt B\bBIG\u0007!"), "cat BIG!");
  // NFC: "e" + combining acute equals precomposed "é"
  assert.equal(normalizeFortune("cafe\u0301"), "caf\u00e9");
});

test("fixture files parse into the expected entries", () => {
  const files = readFortuneFiles(["cats", "dogs", "space"], FIX);
  const raw = files.map((f) => parseFortuneFile(f.text).length);
  assert.deepEqual(raw, [6, 3, 3]);
  const ds = buildFortuneDataset(files, { testFraction: 0.5 });
  const all = [...ds.train, ...ds.test];
  const texts = all.map((e) => e.text);
  assert.equal(ds.stats.withinCategoryDuplicates, 1, "the whitespace variant of 'A cat has nine lives.'");
  assert.equal(ds.stats.crossCategoryDuplicates, 2, "'Every animal...' in cats and dogs is dropped from both");
  assert.ok(!texts.some((t) => t.startsWith("Every animal")));
  assert.deepEqual(ds.stats.perCategory.map((c) => c.kept), [4, 2, 3]);
  assert.ok(texts.includes("The cat sat on the mat."));
  assert.ok(texts.includes("A dog is the only thing on earth that loves you more than he loves himself. -- Josh Billings"));
  const byCat = ds.categories.map((_, c) => all.filter((e) => e.label === c).map((e) => e.text.slice(0, 12)).sort());
  assert.deepEqual(byCat, [
    ["A cat has ni", "Cats sleep s", "Curiosity ki", "The cat sat "],
    ["A dog is the", "Dogs have ow"],
    ["Space is big", "The Moon is ", "There is no "],
  ]);
  // every entry is in the split its hash says, independently of the other entries
  for (const e of ds.test) assert.ok(hashBucket100(e.text) < 50);
  for (const e of ds.train) assert.ok(hashBucket100(e.text) >= 50);
});

test("buildFortuneDataset validates its input", () => {
  assert.throws(() => buildFortuneDataset([{ name: "a", text: "x" }]), /at least 2 categories/);
  assert.throws(() => buildFortuneDataset([{ name: "a", text: "x" }, { name: "a", text: "y" }]), /'a' given twice/);
  assert.throws(() => isHeldOut("x", 1.5), /\[0, 1\]/);
});

test("hash split: stable values, per-entry independence, near-stratified fractions", () => {
  // Frozen reference values: if these change, every published split changes (docs/datasets.md).
  assert.equal(stableHash32(""), FROZEN[""]);
  assert.equal(stableHash32("hello"), FROZEN["hello"]);
  assert.equal(stableHash32("Anything is good if it's made of chocolate."), FROZEN.chocolate);
  assert.equal(stableHash32("\u00e9t\u00e9"), FROZEN["été"], "hashes UTF-8 bytes");
  assert.notEqual(stableHash32("hello"), stableHash32("hellp"));
  const mk = (cat: string, n: number) => Array.from({ length: n }, (_, i) => `${cat} entry number ${i} about ${cat}`).join("\n%\n");
  const files = [{ name: "a", text: mk("alpha", 2000) }, { name: "b", text: mk("beta", 500) }];
  const ds = buildFortuneDataset(files);
  for (const c of ds.stats.perCategory) {
    const frac = c.test / c.kept;
    // binomial(n, 0.2): 4 standard deviations
    const tol = 4 * Math.sqrt((0.2 * 0.8) / c.kept);
    assert.ok(Math.abs(frac - 0.2) < tol, `${c.name}: test fraction ${frac.toFixed(3)}`);
  }
  // Adding and removing other entries never moves an entry between splits.
  const smaller = buildFortuneDataset([{ name: "a", text: mk("alpha", 1000) }, files[1]]);
  const testSet = new Set(ds.test.map((e) => e.text));
  for (const e of smaller.test) assert.ok(testSet.has(e.text));
  for (const e of smaller.train) assert.ok(!testSet.has(e.text));
  // Determinism: same input, same output.
  assert.deepEqual(buildFortuneDataset(files), ds);
});

test("buildCharCorpus splits by entry hash and builds a train-only vocabulary", () => {
  const files = readFortuneFiles(["cats", "dogs", "space"], FIX);
  const c = buildCharCorpus(files, { valFraction: 0.5 });
  assert.equal(c.trainEntries + c.valEntries, 10, "6+3+3 entries minus a whitespace variant and a cross-file duplicate");
  for (const ch of c.train) assert.notEqual(c.tokenizer.tokenToId(ch), c.tokenizer.unkId, `train char ${JSON.stringify(ch)} missing`);
  assert.equal(c.tokenizer.decode(c.tokenizer.encode(c.train)), c.train);
  assert.ok(c.train.includes("\n"), "keepLines keeps line structure by default");
});

test("Debian fortunes: categories, sizes and split are sane", (t) => {
  if (!hasFortunes()) return t.skip(`${FORTUNES_DIR} absent (apt-get install fortunes fortunes-min)`);
  const ds = loadFortunes();
  assert.deepEqual(ds.categories, [...FORTUNE_CATEGORIES]);
  assert.ok(ds.categories.length >= 6);
  const trainTexts = new Set(ds.train.map((e) => e.text));
  for (const e of ds.test) assert.ok(!trainTexts.has(e.text), "train/test overlap");
  for (const c of ds.stats.perCategory) {
    assert.ok(c.kept >= 140, `${c.name} has only ${c.kept} entries`);
    const frac = c.test / c.kept;
    assert.ok(frac > 0.08 && frac < 0.32, `${c.name}: test fraction ${frac.toFixed(3)}`);
  }
  assert.ok(ds.train.length > 2000 && ds.test.length > 400, `${ds.train.length}/${ds.test.length}`);
});

test("Debian fortunes: char corpus covers every file and never trains on a classification test entry", (t) => {
  if (!hasFortunes()) return t.skip(`${FORTUNES_DIR} absent (apt-get install fortunes fortunes-min)`);
  assert.ok(listFortuneFiles().includes("computers"));
  const corpus = loadFortuneCharCorpus();
  assert.ok(corpus.train.length > 1_000_000, `train chars ${corpus.train.length}`);
  assert.ok(corpus.valEntries > 0.1 * (corpus.trainEntries + corpus.valEntries));
  assert.ok(corpus.tokenizer.vocabSize > 60 && corpus.tokenizer.vocabSize < 400);
  const ds = loadFortunes();
  // corpus entries are joined by a blank line and hold no blank line themselves
  const lmTrain = new Set(corpus.train.split("\n\n").map((e) => normalizeFortune(e)));
  assert.equal(lmTrain.size, corpus.trainEntries);
  for (const e of ds.test) assert.ok(!lmTrain.has(e.text), `classification test entry in LM train: ${e.text.slice(0, 40)}`);
  assert.ok(ds.train.filter((e) => lmTrain.has(e.text)).length === ds.train.length, "every classification train entry is LM train");
});
