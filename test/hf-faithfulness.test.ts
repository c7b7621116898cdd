// `attnflow eval-faithfulness --model <hf-folder>` run as a user runs it (the real CLI in a child process) on the HF
// fixture folders: the correlations it prints are recomputed here from the model's own forward (attention
// probabilities, logit drops) with an independent Spearman, and the explained outputs are the documented ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/node.js";
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import { tensor } from "../src/creation.js";
import { noGrad } from "../src/autograd.js";
import { encodePng } from "../src/node/image-file.js";
import type { HFTokenizer } from "../src/hf/tokenizer.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "bin", "attnflow.js");
const fixtures = join(root, "test", "fixtures", "hf");
const dir = mkdtempSync(join(tmpdir(), "attnflow-hf-faith-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 180_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "##s", "and", ".", "big", "red", "hat"];
function caseFolder(name: string, tokenizer = false): string {
  const to = join(dir, name + (tokenizer ? "-tok" : ""));
  cpSync(join(fixtures, name), to, { recursive: true });
  rmSync(join(to, "reference.safetensors"));
  if (tokenizer) {
    const tj = JSON.parse(readFileSync(join(root, "test", "fixtures", "hf-tokenizer", "bert", "tokenizer.json"), "utf8"));
    tj.model.vocab = Object.fromEntries(WORDS.map((w, i) => [w, i]));
    writeFileSync(join(to, "tokenizer.json"), JSON.stringify(tj));
  }
  return to;
}
const argmax = (a: ArrayLike<number>, off = 0, n = a.length) => { let b = 0; for (let i = 1; i < n; i++) if (a[off + i] > a[off + b]) b = i; return b; };

/** Spearman's rho as the Pearson correlation of average ranks (ties share their mean rank). */
function rho(a: number[], b: number[]): number {
  const rank = (v: number[]) => {
    const o = v.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]), r = new Array<number>(v.length);
    for (let i = 0; i < o.length;) { let j = i; while (j + 1 < o.length && o[j + 1][0] === o[i][0]) j++; for (let k = i; k <= j; k++) r[o[k][1]] = (i + j) / 2; i = j + 1; }
    return r;
  };
  const x = rank(a), y = rank(b), n = a.length, mx = x.reduce((s, v) => s + v, 0) / n, my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ** 2; syy += (y[i] - my) ** 2; }
  return sxy / Math.sqrt(sxx * syy);
}

interface Doc { task: string; inputs: number; references: string[]; truncation: { inputs: number; perInput: { input: number; total: number; kept: number; from: string }[] };
  samples: { corr: Record<string, Record<string, (number | null)[]>>; positions: number; target: { label: string; index: number; score: number }; tokens: string[] }[] }

test("eval-faithfulness on an HF classifier: raw attention vs blank-out equals Spearman of the model's own attention and logit drops", async () => {
  const f = caseFolder("bert-seqcls");
  const lines = [[2, 5, 6, 7, 8, 3], [2, 9, 10, 11, 3], [2, 17, 18, 19, 12, 13, 3]];
  const data = join(dir, "ids.txt");
  writeFileSync(data, lines.map((l) => l.join(",")).join("\n") + "\n\n");
  const r = cli("eval-faithfulness", "--model", f, "--data", data, "--methods", "raw", "--json");
  assert.equal(r.code, 0, r.err);
  const doc = JSON.parse(r.out) as Doc;
  assert.equal(doc.task, "BertForSequenceClassification");
  assert.equal(doc.inputs, 3);
  assert.deepEqual(doc.references, ["blankout", "inputgrad"]);
  assert.ok(doc.samples.every((s) => s.corr.raw.inputgrad.length === 2));
  const { model } = await fromPretrainedDir(f);
  const fwd = (ids: number[]) => noGrad(() => model.forward({ inputIds: tensor([ids], { dtype: "int32" }) }, { outputAttentions: true }));
  lines.forEach((ids, i) => {
    const out = fwd(ids), lg = out.logits!.dataSync() as Float32Array, c = argmax(lg), T = ids.length;
    const s = doc.samples[i];
    assert.equal(s.target.index, c);
    assert.ok(Math.abs(s.target.score - lg[c]) < 1e-4);
    // blank-out with config.json's pad_token_id (0): no tokenizer, so no specials
    const drop = ids.map((_, j) => { const o = ids.slice(); o[j] = 0; return lg[c] - (fwd(o).logits!.dataSync() as Float32Array)[c]; });
    out.attentions!.forEach((a, l) => {
      const H = a.shape[1], d = a.dataSync() as Float32Array;
      const row = ids.map((_, j) => { let v = 0; for (let h = 0; h < H; h++) v += d[h * T * T + j]; return v / H; });   // [CLS] row
      assert.ok(Math.abs((s.corr.raw.blankout[l] as number) - rho(row, drop)) < 1e-6, `input ${i} layer ${l}`);
    });
  });
  // the terminal table names the folder and architecture
  const t = cli("eval-faithfulness", "--model", f, "--data", data, "--n", "2", "--methods", "raw,rollout");
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /BertForSequenceClassification, Hugging Face folder .*2 inputs/);
  assert.match(t.out, /rollout/);
});

test("eval-faithfulness on HF folders: masked LM masks a token, causal LM explains the next token, encoder-decoder its first output, ViT images", async () => {
  // masked LM with a tokenizer: text lines, the middle word masked when a line has no [MASK]; long lines truncated
  const mf = caseFolder("bert-mlm-h3", true);
  const data = join(dir, "text.txt");
  const long = Array.from({ length: 40 }, () => "the cat").join(" ");
  writeFileSync(data, ["the red dog ran far", "a cat [MASK] on the mat", long].join("\n"));
  const r = cli("eval-faithfulness", "--model", mf, "--data", data, "--methods", "raw", "--json");
  assert.equal(r.code, 0, r.err);
  const doc = JSON.parse(r.out) as Doc;
  assert.equal(doc.inputs, 3);
  assert.deepEqual(doc.samples[0].tokens, ["[CLS]", "the", "red", "[MASK]", "ran", "far", "[SEP]"]);
  const p = await fromPretrainedDir(mf), tok = p.tokenizer as HFTokenizer;
  const ids = tok.encode("the red [MASK] ran far"), lm = noGrad(() => p.model.forward({ inputIds: tensor([ids], { dtype: "int32" }) }).logits!), V = lm.shape[2];
  assert.equal(doc.samples[0].target.index, argmax(lm.dataSync() as Float32Array, 3 * V, V));
  assert.equal(doc.samples[1].tokens[3], "[MASK]");
  assert.deepEqual(doc.truncation.perInput.map((x) => [x.input, x.total, x.kept, x.from]), [[2, 82, 32, "end"]]);
  assert.equal(doc.samples[2].tokens.length, 32);
  assert.equal(doc.samples[2].tokens.at(-1), "[SEP]");

  // causal LM: the predicted next token after the ids
  const g = caseFolder("gpt2"), gd = join(dir, "g.txt");
  writeFileSync(gd, "5,6,7,8\n9,10,11\n");
  const rg = cli("eval-faithfulness", "--model", g, "--data", gd, "--methods", "raw,grad", "--json");
  assert.equal(rg.code, 0, rg.err);
  const dg = JSON.parse(rg.out) as Doc;
  const pg = await fromPretrainedDir(g);
  const lg = noGrad(() => pg.model.forward({ inputIds: tensor([[5, 6, 7, 8]], { dtype: "int32" }) }).logits!), Vg = lg.shape[2];
  assert.equal(dg.samples[0].target.index, argmax(lg.dataSync() as Float32Array, 3 * Vg, Vg));

  // encoder-decoder: the first generated token
  const m = caseFolder("marian-unshared-relu");
  const rm = cli("eval-faithfulness", "--model", m, "--data", gd, "--methods", "raw,rollout", "--json");
  assert.equal(rm.code, 0, rm.err);
  const dm = JSON.parse(rm.out) as Doc;
  const pm = await fromPretrainedDir(m);
  const eos = (JSON.parse(readFileSync(join(m, "config.json"), "utf8")).eos_token_id) as number;
  const first = noGrad(() => pm.model.generate!({ inputIds: tensor([[5, 6, 7, 8]], { dtype: "int32" }) }, { maxNewTokens: 1, eosTokenId: eos }).sequences.dataSync()[1]);
  assert.equal(dm.samples[0].target.index, first);
  assert.match(dm.samples[0].target.label, /output token 0/);

  // ViT: a directory of images
  const v = caseFolder("vit"), S = JSON.parse(readFileSync(join(v, "config.json"), "utf8")).image_size as number;
  const imgs = join(dir, "imgs"); mkdirSync(imgs);
  for (let k = 0; k < 2; k++) {
    const rgba = new Uint8Array(S * S * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * (7 + k * 6)) % 256));
    writeFileSync(join(imgs, `im${k}.png`), encodePng(S, S, rgba));
  }
  writeFileSync(join(imgs, "notes.txt"), "not an image");
  const rv = cli("eval-faithfulness", "--model", v, "--data", imgs, "--methods", "raw", "--json");
  assert.equal(rv.code, 0, rv.err);
  const dv = JSON.parse(rv.out) as Doc;
  assert.equal(dv.inputs, 2);
  assert.ok(dv.references.includes("blankout"));
  const noData = cli("eval-faithfulness", "--model", v);
  assert.equal(noData.code, 2); assert.match(noData.err, /reads images: give --data DIR/);
  // no --data: the held-out Debian fortunes (when installed), read by the folder's tokenizer
  const fortunes = cli("eval-faithfulness", "--model", caseFolder("bert-seqcls", true), "--n", "2", "--methods", "raw", "--json");
  if (existsSync("/usr/share/games/fortunes/computers")) {
    assert.equal(fortunes.code, 0, fortunes.err);
    const df = JSON.parse(fortunes.out) as Doc;
    assert.equal(df.inputs, 2);
    assert.match(fortunes.err, /Debian fortunes/);
  } else assert.match(fortunes.err, /Debian's fortunes are not installed/);
  const badLine = join(dir, "bad.txt"); writeFileSync(badLine, "hello world\n");
  const rb = cli("eval-faithfulness", "--model", g, "--data", badLine);
  assert.equal(rb.code, 2); assert.match(rb.err, /has no tokenizer.json, so each line of --data must be comma-separated token ids/);
});
