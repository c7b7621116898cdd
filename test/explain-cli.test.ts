import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CliIo, type LoadedCheckpoint, explainCommand, renderExplanationText } from "../cli/explain.js";
import { evalFaithfulnessCommand } from "../cli/eval-faithfulness.js";
import type { Explanation } from "../src/explain/explain-run.js";
import { tinyModel, tinyTask } from "./explain-tiny-task.js";

const dir = mkdtempSync(join(tmpdir(), "attnflow-explain-cli-"));
const ckpt = join(dir, "tiny.safetensors");
writeFileSync(ckpt, "placeholder: the test loader ignores the file's content");
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

function loaded(): LoadedCheckpoint {
  const { model, config } = tinyModel();
  return { task: tinyTask, model, config, meta: {} };
}

/** Runs a command with captured output; flags as the lead's parseArgs produces them. */
async function run(cmd: typeof explainCommand, flags: Record<string, string | boolean>, load: CliIo["load"] = async () => loaded()) {
  const out: string[] = [], err: string[] = [];
  const code = await cmd({ _: [], flags }, { load, out: (s) => out.push(s), err: (s) => err.push(s), color: false });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

test("explain: argument errors are clear and exit 2", async () => {
  let r = await run(explainCommand, { text: "the cat sat" });
  assert.equal(r.code, 2); assert.match(r.err, /missing --model <checkpoint>/); assert.match(r.err, /usage: attnflow explain/);
  r = await run(explainCommand, { model: ckpt });
  assert.equal(r.code, 2); assert.match(r.err, /missing input: give --text/);
  r = await run(explainCommand, { model: ckpt, text: "the cat", input: "2,3" });
  assert.equal(r.code, 2); assert.match(r.err, /give only one input, got --text and --input/);
  r = await run(explainCommand, { model: ckpt, text: "the cat", method: "rollout,saliency" });
  assert.equal(r.code, 2); assert.match(r.err, /unknown method "saliency": choose from raw, rollout, flow, grad, blankout, inputgrad/);
  r = await run(explainCommand, { model: ckpt, input: "2,x,3" });
  assert.equal(r.code, 2); assert.match(r.err, /--input must be comma-separated non-negative integer token ids, got "x"/);
  r = await run(explainCommand, { model: ckpt, text: "the cat", layer: "two" });
  assert.equal(r.code, 2); assert.match(r.err, /--layer must be an integer layer index/);
  r = await run(explainCommand, { model: ckpt, text: "the cat", layer: "5" });
  assert.equal(r.code, 2); assert.match(r.err, /--layer 5 is out of range: the explained stack has 2 attention layers \(use 0\.\.1, or -1 for the last\)/);
  r = await run(explainCommand, { model: ckpt, text: "the cat", method: "raw", head: "7" });
  assert.equal(r.code, 2); assert.match(r.err, /--head 7 is out of range: the attention layers have 2 heads/);
  r = await run(explainCommand, { model: ckpt, text: "the cat", colour: true });
  assert.equal(r.code, 2); assert.match(r.err, /unknown option --colour/);
  r = await run(explainCommand, { model: ckpt, text: "the cat", "flow-matrices": "some" });
  assert.equal(r.code, 2); assert.match(r.err, /--flow-matrices must be all, layer or none, got "some"/);
  r = await run(explainCommand, { model: ckpt, image: join(dir, "missing.png") });
  assert.equal(r.code, 2); assert.match(r.err, /--image: no such file/);
});

test("explain: bad checkpoints exit 1 with the reason", async () => {
  let r = await run(explainCommand, { model: join(dir, "nope.safetensors"), text: "the cat" });
  assert.equal(r.code, 1); assert.match(r.err, /bad checkpoint: no such file .*nope\.safetensors/);
  r = await run(explainCommand, { model: ckpt, text: "the cat" }, async () => { throw new Error("header length 99999 exceeds the file"); });
  assert.equal(r.code, 1); assert.match(r.err, /bad checkpoint .*tiny\.safetensors: header length 99999 exceeds the file/);
  r = await run(explainCommand, { model: ckpt, text: "the unicorn" });
  assert.equal(r.code, 1); assert.match(r.err, /unknown word "unicorn"/);
});

test("explain: terminal bars, --json to stdout and to a file, --html report", async () => {
  let r = await run(explainCommand, { model: ckpt, text: "the cat sat on the mat", method: "rollout,blankout", target: "place" });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /task tiny-test/);
  assert.match(r.out, /target: place \(index 1\)/);
  assert.match(r.out, /── attention rollout ──/);
  assert.match(r.out, /── blank-out: score drop when the token is occluded ──/);
  assert.match(r.out, /\s+cat │█*/, "a bar per token");
  assert.doesNotMatch(r.out, /\x1b\[/, "no colour codes with color: false");
  assert.doesNotMatch(r.out, /\[CLS\] │/, "the special [CLS] position gets no bar");
  r = await run(explainCommand, { model: ckpt, input: "2,3,5", method: "flow", json: true, "flow-matrices": "layer", layer: "0" });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((JSON.parse(r.out) as Explanation).methods.flow!.matrices!.map((m) => m.layer), [0]);
  r = await run(explainCommand, { model: ckpt, input: "2,3,5", method: "all", json: true });
  assert.equal(r.code, 0, r.err);
  const e = JSON.parse(r.out) as Explanation;
  assert.equal(e.format, "attnflow-explanation");
  assert.deepEqual(e.tokens, ["[CLS]", "the", "cat", "sat"]);
  assert.deepEqual(Object.keys(e.methods).sort(), ["blankout", "flow", "grad", "inputgrad", "raw", "rollout"]);
  assert.equal(e.attention!.length, 2);
  assert.equal(e.methods.rollout!.matrices!.length, 2);
  assert.deepEqual(e.meta, { task: "tiny-test", checkpoint: ckpt, input: { ids: [2, 3, 5] } });
  const jf = join(dir, "out.json"), hf = join(dir, "report.html");
  r = await run(explainCommand, { model: ckpt, text: "dog ran", method: "raw", layer: "0", head: "1", json: jf, html: hf });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /attention matrix of layer 0 \(head 1\)/);
  assert.match(r.err, /wrote .*out\.json/); assert.match(r.err, /wrote .*report\.html/);
  const fromFile = JSON.parse(readFileSync(jf, "utf8")) as Explanation;
  assert.equal(fromFile.layer, 0); assert.equal(fromFile.head, 1);
  const html = readFileSync(hf, "utf8");
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /<canvas class="heatmap"/);
  // the terminal renderer is a pure function of the JSON
  const t = fromFile.target;
  assert.equal(renderExplanationText(fromFile).split("\n")[0], `target: ${t.label} (index ${t.index})   score ${t.score.toPrecision(5)}`);
  assert.ok(["animal", "place"].includes(t.label));
});

test("eval-faithfulness: correlation table, --json, argument errors", async () => {
  let r = await run(evalFaithfulnessCommand, { model: ckpt, n: "3", methods: "raw,rollout" });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /3 inputs/);
  assert.match(r.out, /Spearman correlation with blank-out.*mean ± sd over 3 inputs/);
  assert.match(r.out, /Spearman correlation with input × gradient/);
  assert.match(r.out, /^rollout\s+-?\d\.\d\d ± \d\.\d\d/m);
  assert.match(r.err, /3\/3 inputs/);
  r = await run(evalFaithfulnessCommand, { model: ckpt, n: "2", json: true });
  assert.equal(r.code, 0, r.err);
  const doc = JSON.parse(r.out) as { inputs: number; summary: { methods: string[]; layers: number }; samples: unknown[] };
  assert.equal(doc.inputs, 2);
  assert.deepEqual(doc.summary.methods, ["raw", "rollout", "flow", "grad"]);
  assert.equal(doc.summary.layers, 2);
  assert.equal(doc.samples.length, 2);
  r = await run(evalFaithfulnessCommand, { model: ckpt, n: "0" });
  assert.equal(r.code, 2); assert.match(r.err, /--n must be a positive integer/);
  r = await run(evalFaithfulnessCommand, { model: ckpt, methods: "rollout,blankout" });
  assert.equal(r.code, 2); assert.match(r.err, /blankout is a reference, not an evaluated method/);
  const noInputs = async (): Promise<LoadedCheckpoint> => ({ ...loaded(), task: { ...tinyTask, faithfulnessInputs: undefined } });
  r = await run(evalFaithfulnessCommand, { model: ckpt }, noInputs);
  assert.equal(r.code, 1); assert.match(r.err, /does not provide faithfulnessInputs/);
});
