// `attnflow quantize --eval` on Hugging Face folders: the metric of the float model and of its int8 copy on the same
// held-out lines, and the logit drift. Every printed number is recomputed here from the float folder and from the
// int8 folder the command wrote (loaded again with fromPretrained): the eval measured the model that was saved.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import { tensor } from "../src/creation.js";
import { noGrad } from "../src/autograd.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "bin", "attnflow.js");
const dir = mkdtempSync(join(tmpdir(), "attnflow-hf-qeval-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const cli = (...args: string[]) => { const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 120_000 }); return { code: r.status, out: r.stdout, err: r.stderr }; };

function copy(name: string): string {
  const to = join(dir, name);
  cpSync(join(root, "test", "fixtures", "hf", name), to, { recursive: true });
  rmSync(join(to, "reference.safetensors"));
  return to;
}
/** Deterministic id lines: 3..12 ids in [5, 100). */
const lines = (n: number, seed: number) => Array.from({ length: n }, (_, i) => {
  const len = 3 + ((i * 7 + seed) % 10);
  return Array.from({ length: len }, (_, j) => 5 + ((i * 31 + j * 17 + seed * 13) % 95)).join(",");
});
async function logitsOf(folder: string, rows: string[]): Promise<Float32Array[]> {
  const { model } = await fromPretrainedDir(folder);
  model.eval();
  return rows.map((r) => {
    const ids = r.split(",").map(Number);
    return noGrad(() => Float32Array.from(model.forward({ inputIds: tensor([ids], { dtype: "int32" }), attentionMask: tensor([ids.map(() => 1)], { dtype: "int32" }) }).logits!.dataSync() as Float32Array));
  });
}
const argmax = (a: Float32Array, off = 0, n = a.length) => { let b = 0; for (let i = 1; i < n; i++) if (a[off + i] > a[off + b]) b = i; return b; };

test("quantize --eval on an HF sequence classifier: accuracy before / after on labelled lines, agreement and logit drift", async () => {
  const f = copy("bert-seqcls"), out = join(dir, "bert-int8");
  const rows = lines(40, 1);
  const float = await logitsOf(f, rows);
  // labels: the float model's own answer on most lines, another class on every fifth (so accuracy is not 1)
  const labels = float.map((l, i) => (i % 5 === 0 ? (argmax(l) + 1) % 3 : argmax(l)));
  const data = join(dir, "bert-data.txt");
  writeFileSync(data, rows.map((r, i) => `${i % 2 ? `LABEL_${labels[i]}` : labels[i]}\t${r}`).join("\n") + "\n");
  const r = cli("quantize", "--model", f, "--out", out, "--eval", "--data", data, "--json");
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  const int8 = await logitsOf(out, rows);
  const acc = (ls: Float32Array[]) => ls.filter((l, i) => argmax(l) === labels[i]).length / ls.length;
  assert.equal(got.inputs, 40);
  assert.deepEqual(got.floatMetrics, { accuracy: acc(float), labelled: 40 });
  assert.deepEqual(got.int8Metrics, { accuracy: acc(int8), labelled: 40 });
  assert.equal(got.floatMetrics.accuracy, 32 / 40);
  let max = 0, sum = 0, n = 0;
  float.forEach((l, i) => l.forEach((v, j) => { const d = Math.abs(v - int8[i][j]); max = Math.max(max, d); sum += d; n++; }));
  assert.ok(Math.abs(got.logitDrift.maxAbs - max) < 1e-6 && Math.abs(got.logitDrift.meanAbs - sum / n) < 1e-6, JSON.stringify(got.logitDrift));
  assert.ok(max > 0, "int8 changes the logits");
  assert.equal(got.logitDrift.agreement, float.filter((l, i) => argmax(l) === argmax(int8[i])).length / 40);
  // the terminal table
  const t = cli("quantize", "--model", f, "--out", join(dir, "bert-int8b"), "--eval", "--data", data);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /accuracy\s+0\.8\d*\s+\d/);
  assert.match(t.out, /logits: max \|int8 − float\| [\d.e-]+, mean [\d.e-]+; top-1 agrees on [\d.]+ % of 40 inputs/);
  // a label the model does not have is named
  writeFileSync(data, `POSITIVE\t${rows[0]}\n`);
  const bad = cli("quantize", "--model", f, "--out", join(dir, "bert-int8c"), "--eval", "--data", data);
  assert.equal(bad.code, 2, bad.err);
  assert.match(bad.err, /"POSITIVE" is neither a label of this model \(LABEL_0, LABEL_1, LABEL_2\)/);
});

test("quantize --eval on an HF causal LM: perplexity of the lines' own next tokens before / after", async () => {
  const f = copy("gpt2"), out = join(dir, "gpt2-int8"), rows = lines(12, 2);
  const data = join(dir, "gpt2-data.txt");
  writeFileSync(data, rows.join("\n"));
  const r = cli("quantize", "--model", f, "--out", out, "--eval", "--data", data, "--json");
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  const ppl = (ls: Float32Array[]) => {
    let nll = 0, c = 0;
    ls.forEach((l, i) => {
      const ids = rows[i].split(",").map(Number), V = l.length / ids.length;
      for (let t = 0; t + 1 < ids.length; t++) {
        const row = Array.from(l.subarray(t * V, (t + 1) * V)), mx = Math.max(...row);
        nll += mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0)) - row[ids[t + 1]]; c++;
      }
    });
    return { perplexity: Math.exp(nll / c), tokens: c };
  };
  const a = ppl(await logitsOf(f, rows)), b = ppl(await logitsOf(out, rows));
  assert.equal(got.floatMetrics.tokens, a.tokens);
  assert.ok(Math.abs(got.floatMetrics.perplexity - a.perplexity) < 1e-6 * a.perplexity, `${got.floatMetrics.perplexity} vs ${a.perplexity}`);
  assert.ok(Math.abs(got.int8Metrics.perplexity - b.perplexity) < 1e-6 * b.perplexity, `${got.int8Metrics.perplexity} vs ${b.perplexity}`);
  assert.equal(got.logitDrift.rows, a.tokens + rows.length, "agreement over every position");
  // an encoder-decoder: a clear error naming what is supported
  const t5 = cli("quantize", "--model", copy("t5-relu-tied"), "--out", join(dir, "t5-int8"), "--eval", "--data", data);
  assert.equal(t5.code, 2);
  assert.match(t5.err, /measures text classifiers \(accuracy\), causal LMs \(perplexity\) and masked LMs \(agreement\); T5ForConditionalGeneration is none of them/);
});
