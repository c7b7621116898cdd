// Inputs longer than a model reads are cut to its maximum positions; explain, eval-faithfulness and the HTML report
// say so, with how many tokens were dropped (predict already did: `truncated: true`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCheckpoint } from "../src/node/checkpoint.js";
import { runExplanation } from "../src/explain/explain-run.js";
import { renderHtmlReport } from "../src/viz/html-report.js";
import { explainCommand, renderExplanationText, type CliIo } from "../cli/explain.js";
import { evalFaithfulnessCommand } from "../cli/eval-faithfulness.js";

const models = (name: string) => fileURLToPath(new URL(`../../models/${name}.safetensors`, import.meta.url));
const LONG = "the cat sat on the mat . ".repeat(40);            // [CLS] + 280 word tokens
const SHORT = "the cat sat on the mat .";

async function run(cmd: typeof explainCommand, flags: Record<string, string | boolean>, load: CliIo["load"] = loadCheckpoint) {
  const out: string[] = [], err: string[] = [];
  const code = await cmd({ _: [], flags }, { load, out: (s) => out.push(s), err: (s) => err.push(s), color: false });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

test("the classifier's explain target says how much of a long text was cut (and nothing for a short one)", async () => {
  const ck = await loadCheckpoint(models("fortunes-classifier"));
  const maxLen = ck.config.maxLen as number;
  const t = ck.task.explain!(ck.model, ck.config, { text: LONG });
  assert.equal(t.tokens.length, maxLen);
  assert.deepEqual(t.truncation, { total: 281, kept: maxLen, dropped: 281 - maxLen, from: "end" });
  assert.equal(ck.task.explain!(ck.model, ck.config, { text: SHORT }).truncation, undefined);
  const p = ck.task.predict(ck.model, ck.config, LONG);
  assert.equal(p.details!.truncated, true);
  assert.equal(p.details!.droppedTokens, 281 - maxLen);
});

test("char-lm explain keeps the latest blockSize characters and says how many were dropped from the start", async () => {
  const ck = await loadCheckpoint(models("char-lm"));
  const block = ck.config.blockSize as number;
  const prompt = "abcdefghij".repeat(Math.ceil((block + 50) / 10));
  const t = ck.task.explain!(ck.model, ck.config, { text: prompt });
  assert.equal(t.tokens.length, block);
  assert.equal(t.tokens.join(""), prompt.slice(-block));
  assert.deepEqual(t.truncation, { total: prompt.length, kept: block, dropped: prompt.length - block, from: "start" });
  assert.equal(ck.task.explain!(ck.model, ck.config, { text: "abc" }).truncation, undefined);
});

test("the explanation, its terminal view and its HTML report carry the truncation", async () => {
  const ck = await loadCheckpoint(models("fortunes-classifier"));
  const maxLen = ck.config.maxLen as number, dropped = 281 - maxLen;
  const e = await runExplanation(ck.task.explain!(ck.model, ck.config, { text: LONG }), ck.model, { methods: ["raw"], matrices: false });
  assert.deepEqual(e.truncation, { total: 281, kept: maxLen, dropped, from: "end" });
  assert.match(renderExplanationText(e), new RegExp(`input truncated — 281 tokens, the model reads at most ${maxLen}: ${dropped} dropped from the end`));
  assert.match(renderHtmlReport(e), new RegExp(`Input truncated:</b> 281 tokens, the model reads at most ${maxLen}; ${dropped} tokens were dropped from the end`));
  const short = await runExplanation(ck.task.explain!(ck.model, ck.config, { text: SHORT }), ck.model, { methods: ["raw"], matrices: false });
  assert.equal(short.truncation, undefined);
  assert.doesNotMatch(renderExplanationText(short), /truncated/);
  assert.doesNotMatch(renderHtmlReport(short), /truncated/i);
});

test("attnflow explain: the terminal output, --json and --html say the input was truncated", async () => {
  const model = models("fortunes-classifier");
  let r = await run(explainCommand, { model, text: LONG, method: "raw" });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /WARNING: input truncated — 281 tokens, the model reads at most 128: 153 dropped from the end/);
  r = await run(explainCommand, { model, text: LONG, method: "raw", json: true });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out).truncation, { total: 281, kept: 128, dropped: 153, from: "end" });
  r = await run(explainCommand, { model, text: SHORT, method: "raw", json: true });
  assert.equal(JSON.parse(r.out).truncation, undefined);
  const dir = mkdtempSync(join(tmpdir(), "attnflow-trunc-"));
  try {
    const html = join(dir, "report.html");
    r = await run(explainCommand, { model, text: LONG, method: "raw", html });
    assert.equal(r.code, 0, r.err);
    assert.match(readFileSync(html, "utf8"), /Input truncated:<\/b> 281 tokens, the model reads at most 128; 153 tokens were dropped from the end/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("attnflow eval-faithfulness: the table and --json count the truncated inputs and their dropped tokens", async () => {
  // the shipped classifier's vocabulary in a small untrained model (16 positions: blank-out stays quick), with two
  // held-out inputs of our own: one too long, one short
  const load: CliIo["load"] = async (p) => {
    const ck = await loadCheckpoint(p);
    const config = { ...ck.config, dModel: 16, depth: 1, heads: 2, ff: 32, maxLen: 16 };
    const model = ck.task.modelFromConfig(config);
    return { ...ck, model, config, task: { ...ck.task, loadData: () => ({}), faithfulnessInputs: () => [{ text: LONG }, { text: SHORT }] } };
  };
  const model = models("fortunes-classifier");
  let r = await run(evalFaithfulnessCommand, { model, methods: "raw", n: "2" }, load);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /WARNING: 1 of 2 inputs truncated to the model's maximum of 16 positions: 265 tokens dropped in all \(at most 265 from one input\)/);
  r = await run(evalFaithfulnessCommand, { model, methods: "raw", n: "2", json: true }, load);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out).truncation, { inputs: 1, droppedTokens: 265, perInput: [{ input: 0, total: 281, kept: 16, dropped: 265, from: "end" }] });
  // nothing truncated: no warning, and a zero count in the JSON
  const fits: CliIo["load"] = async (p) => { const ck = await load(p); return { ...ck, task: { ...ck.task, faithfulnessInputs: () => [{ text: SHORT }] } }; };
  r = await run(evalFaithfulnessCommand, { model, methods: "raw", n: "1" }, fits);
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.out, /truncated/);
});
