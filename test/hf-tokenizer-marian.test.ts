// Marian tokenizers as HF ships them (source.spm, target.spm, vocab.json, target_vocab.json, tokenizer_config.json; no
// tokenizer.json): ids and decoded text equal transformers' own MarianTokenizer (4.44.2, on Debian's sentencepiece
// 0.1.97) on 1000 lines of Debian fortunes and hand-written edge cases (test/fixtures/hf-tokenizer/marian, made by
// scripts/marian-tokenizer-refs.py with two small SentencePiece models trained there with sentencepiece's trainer).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/node.js";
import { MarianTokenizer } from "../src/hf/marian-tokenizer.js";
import { parseSentencePieceModel, SpmNormalizer, spmTokenizerJson } from "../src/hf/sentencepiece.js";
import { loadTokenizerFromDir } from "../src/hf/node-tokenizer.js";
import { fromPretrainedDir, savePretrainedDir } from "../src/hf/node-pretrained.js";
import { architectureFor } from "../src/hf/registry.js";
import { loadTokenizer } from "../src/hf/tokenizer.js";
import { HFImportError } from "../src/hf/types.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const fx = join(root, "test", "fixtures", "hf-tokenizer", "marian");
const dir = mkdtempSync(join(tmpdir(), "attnflow-marian-tok-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const bytes = (f: string) => new Uint8Array(readFileSync(join(fx, f)));
interface Case { text: string; ids: number[]; target_ids: number[]; separate_target_ids?: number[]; decoded?: string; decoded_special?: string }
const ref = JSON.parse(readFileSync(join(fx, "reference.json"), "utf8")) as { cases: Case[]; dropped_source_pieces: string[] };

test("Marian tokenizer: source ids, target ids (shared and separate vocabularies) and decode equal HF's MarianTokenizer on 1017 sentences", () => {
  const tok = loadTokenizerFromDir(fx) as MarianTokenizer;
  assert.ok(tok instanceof MarianTokenizer);
  const sep = new MarianTokenizer({ sourceSpm: bytes("source.spm"), targetSpm: bytes("target.spm"), vocab: readFileSync(join(fx, "vocab.json"), "utf8"),
    targetVocab: readFileSync(join(fx, "target_vocab.json"), "utf8"), config: { separate_vocabs: true } });
  assert.ok(ref.cases.length > 1000);
  let decoded = 0;
  for (const c of ref.cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, `source ${JSON.stringify(c.text)}`);
    assert.deepEqual(tok.encodeTarget(c.text), c.target_ids, `target ${JSON.stringify(c.text)}`);
    if (c.separate_target_ids) assert.deepEqual(sep.encodeTarget(c.text), c.separate_target_ids, `separate ${JSON.stringify(c.text)}`);
    if (c.decoded !== undefined) {
      decoded++;
      assert.equal(tok.decode(c.target_ids, { skipSpecialTokens: true }), c.decoded, `decode ${JSON.stringify(c.text)}`);
      assert.equal(tok.decode(c.target_ids), c.decoded_special, `decode with specials ${JSON.stringify(c.text)}`);
    }
  }
  assert.ok(decoded > 200);
  // labels of target-side ids come from target_vocab.json with separate vocabularies
  const tv = Object.fromEntries(Object.entries(JSON.parse(readFileSync(join(fx, "target_vocab.json"), "utf8")) as Record<string, number>).map(([k, v]) => [v, k]));
  const c0 = ref.cases.find((c) => c.separate_target_ids && c.separate_target_ids.length > 4)!;
  assert.deepEqual(sep.targetLabels(c0.separate_target_ids!), c0.separate_target_ids!.map((i) => (tv[i] === "</s>" ? "</s>" : tv[i].replace(/\u2581/g, " "))));
  // the pieces vocab.json lacks tokenize as <unk>; specials and eos as MarianTokenizer has them
  const unk = tok.special.unk!.id;
  for (const p of ref.dropped_source_pieces) assert.equal(tok.tokenToId(p), undefined);
  assert.ok(ref.cases.some((c) => c.ids.includes(unk)));
  assert.deepEqual([tok.special.eos!.token, tok.special.unk!.token, tok.special.pad!.token], ["</s>", "<unk>", "<pad>"]);
  assert.equal(tok.encode("").at(-1), tok.special.eos!.id);
  // batches pad on the right with <pad>, mask 0
  const b = tok.encodeBatch(["a", "a longer line"]);
  assert.equal(b.inputIds[0].at(-1), tok.special.pad!.id);
  assert.equal(b.attentionMask[0].at(-1), 0);
  assert.deepEqual(tok.encode("a longer line", { maxLength: 3 }), [...tok.encode("a longer line").slice(0, 2), tok.special.eos!.id]);
});

test("SentencePiece model reader: pieces, trainer and normaliser specs; the converter's tokenizer.json loads in @huggingface/tokenizers", () => {
  const m = parseSentencePieceModel(bytes("source.spm"), "source.spm");
  assert.equal(m.pieces.length, 400);
  assert.deepEqual(m.pieces.slice(1, 3).map((p) => [p.piece, p.type]), [["</s>", 3], ["<unk>", 2]]);
  assert.equal(m.trainerSpec.unkId, 2);
  assert.equal(m.normalizerSpec.name, "nmt_nfkc");
  assert.ok(m.normalizerSpec.precompiledCharsmap.length > 1000);
  const t = parseSentencePieceModel(bytes("target.spm"), "target.spm");
  assert.equal(t.normalizerSpec.name, "identity");
  assert.equal(t.normalizerSpec.precompiledCharsmap.length, 0);
  // nmt_nfkc: NFKC-like folding, whitespace collapsed, dummy prefix
  const n = new SpmNormalizer(m.normalizerSpec);
  assert.equal(n.normalize("  ＡＢ\u00a0ﬁne  x\t"), "\u2581AB\u2581fine\u2581x");
  assert.equal(n.normalize("   "), "");
  // what transformers' SpmConverter writes: the library reads it; on a text without score ties it segments alike
  const lib = loadTokenizer(spmTokenizerJson(m), { eos_token: "</s>" });
  assert.equal(lib.modelType, "Unigram");
  const V = JSON.parse(readFileSync(join(fx, "vocab.json"), "utf8")) as Record<string, number>;
  const same = ref.cases.filter((c) => JSON.stringify([...lib.tokens(lib.encode(c.text)).map((x) => V[x] ?? 1), 0]) === JSON.stringify(c.ids)).length;
  assert.ok(same / ref.cases.length > 0.95, `the converted tokenizer.json agrees with SentencePiece on ${same} of ${ref.cases.length} sentences`);
  assert.throws(() => parseSentencePieceModel(new Uint8Array([1, 2, 3]), "x.spm"), (e: unknown) => e instanceof HFImportError && /x\.spm is not a SentencePiece model/.test((e as Error).message));
  assert.throws(() => parseSentencePieceModel(new Uint8Array(0), "empty.spm"), /empty\.spm has no pieces/);
});

test("a Marian folder without tokenizer.json: fromPretrained finds its tokenizer, predict and explain read text, clear errors for missing files", async () => {
  // a small MarianMTModel whose vocabulary is the fixture's vocab.json
  const V = JSON.parse(readFileSync(join(fx, "vocab.json"), "utf8")) as Record<string, number>, n = Object.keys(V).length;
  const cfg = JSON.parse(readFileSync(join(root, "test", "fixtures", "hf", "marian-swish-tied", "config.json"), "utf8"));
  Object.assign(cfg, { vocab_size: n, decoder_vocab_size: n, pad_token_id: V["<pad>"], eos_token_id: V["</s>"], decoder_start_token_id: V["<pad>"] });
  const { family } = architectureFor(cfg);
  const f = join(dir, "marian");
  await savePretrainedDir(family.fromConfig(cfg), f);
  writeFileSync(join(f, "config.json"), JSON.stringify(cfg));
  for (const x of ["source.spm", "target.spm", "vocab.json", "tokenizer_config.json"]) cpSync(join(fx, x), join(f, x));
  const p = await fromPretrainedDir(f);
  const tok = p.tokenizer as MarianTokenizer;
  assert.ok(tok instanceof MarianTokenizer);
  assert.deepEqual(tok.encode(ref.cases[0].text), ref.cases[0].ids);
  const bin = join(root, "bin", "attnflow.js");
  const run = (...a: string[]) => spawnSync(process.execPath, [bin, ...a], { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  const e = run("explain", "--model", f, "--text", "the computer works", "--max-tokens", "2", "--method", "raw", "--json");
  assert.equal(e.status, 0, e.stderr);
  const ex = JSON.parse(e.stdout);
  assert.deepEqual(ex.tokens, tok.labels(tok.encode("the computer works")));
  assert.equal(ex.tokens.at(-1), "</s>");
  const pr = run("predict", "--model", f, "--text", "the computer works", "--max-tokens", "3", "--json");
  assert.equal(pr.status, 0, pr.stderr);
  assert.equal(JSON.parse(pr.stdout).text, tok.decode(JSON.parse(pr.stdout).ids, { skipSpecialTokens: true }));
  rmSync(join(f, "target.spm"));
  await assert.rejects(fromPretrainedDir(f), /has source\.spm but no target\.spm/);
});
