// The "agreement" task (A&Z Table 1 setup): Linzen-format files → prefixes and numbers, the model's config, the
// explanation target (log-odds of the target number, blank-out with [UNK]), training on a synthetic rule, and the
// paper comparison table. Linzen's own sentences are read only when the shared folder exists (never committed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { manualSeed } from "../src/random.js";
import { Tensor } from "../src/tensor.js";
import { AdamW } from "../src/optim/index.js";
import { runExplanation } from "../src/explain/explain-run.js";
import {
  ABNAR_ZUIDEMA_TABLE1, explanationDiagnostics, faithfulnessOf, formatPaperComparison, formatReliability, summariseFaithfulness, unreliableWarnings,
} from "../src/explain/faithfulness.js";
import { UNK_ID } from "../src/data/tokenizer.js";
import { agreementState } from "../src/tasks/agreement-model.js";
import { renderExplanationText } from "../cli/explain.js";
import { classWeights, findLinzen, loadAgreement, readAgreementFiles, task, verbNumber, type AgreementData } from "../src/node/tasks/agreement.js";

const dir = mkdtempSync(join(tmpdir(), "attnflow-agreement-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const NOUNS_S = ["key", "dog", "cat", "house", "road"], NOUNS_P = ["keys", "dogs", "cats", "houses", "roads"];
const PREP = ["to", "near", "of", "behind"];

/** Synthetic Linzen-format data: "the N1 [prep the N2] VERB ..." where the verb agrees with N1 (N2 an attractor or not). */
function writeSynthetic(folder: string, n: number, seed: number, name = "train"): void {
  let s = seed;
  const rnd = (k: number) => { s = (s * 1103515245 + 12345) % 2147483648; return Math.floor(s / 65536) % k; };
  const text: string[] = [], gold: string[] = [];
  for (let i = 0; i < n; i++) {
    const plural = rnd(2) === 1;
    const n1 = (plural ? NOUNS_P : NOUNS_S)[rnd(5)];
    const words = ["the", n1];
    let attractors = 0;
    if (rnd(2) === 1) {
      const p2 = rnd(2) === 1;
      words.push(PREP[rnd(4)], "the", (p2 ? NOUNS_P : NOUNS_S)[rnd(5)]);
      if (p2 !== plural) attractors = 1;
    }
    const vi = words.length;
    const [good, bad] = plural ? ["are", "is"] : ["is", "are"];
    text.push([...words, good, "here", ".", "<eos>"].join(" "));
    gold.push(`${vi}\t${good}\t${bad}\t${attractors}`);
  }
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, `${name}.text`), text.join("\n") + "\n");
  writeFileSync(join(folder, `${name}.gold`), gold.join("\n") + "\n");
}

const data = join(dir, "mined");
writeSynthetic(join(data, "run1"), 300, 1);
writeSynthetic(join(data, "run2"), 100, 2);
writeSynthetic(join(dir, "fake-linzen"), 60, 3, "subj_agr_filtered");
symlinkSync(join(dir, "fake-linzen"), join(data, "linzen"));

test("agreement: verb numbers and Linzen-format files", () => {
  assert.equal(verbNumber("is", "are"), 0);
  assert.equal(verbNumber("are", "is"), 1);
  assert.equal(verbNumber("includes", "include"), 0);
  assert.equal(verbNumber("discuss", "discusses"), 1);
  assert.equal(verbNumber("has", "have"), 0);
  assert.throws(() => verbNumber("edit", "edit"), /cannot tell the number/);
  const f = join(dir, "one");
  mkdirSync(f);
  writeFileSync(join(f, "a.text"), "the keys to the cabinet are here . <eos>\nthe town wherein wherein x . <eos>\nthe dog Runs . <eos>\n");
  writeFileSync(join(f, "a.gold"), "5\tare\tis\t1\n2\twherein\twherein\t0\n2\tRuns\trun\t0\n");
  const skipped: number[] = [];
  const ex = readAgreementFiles(join(f, "a.text"), join(f, "a.gold"), skipped);
  assert.deepEqual(ex.map((e) => [e.text, e.label, e.attractors]), [["the keys to the cabinet", 1, 1], ["the dog", 0, 0]]);
  assert.deepEqual(skipped, [2]);
  writeFileSync(join(f, "b.gold"), "3\tare\tis\t1\n");
  assert.throws(() => readAgreementFiles(join(f, "a.text"), join(f, "b.gold")), /word 3 of the sentence is 'the', not the verb 'are'/);
  writeFileSync(join(f, "c.gold"), "4 are is 1\n");
  assert.throws(() => readAgreementFiles(join(f, "a.text"), join(f, "c.gold")), /line 1: expected "verb index<TAB>correct/);
});

test("agreement: data folders, the Linzen location and clear errors", () => {
  const d = loadAgreement({ data });
  assert.equal(d.sources.train.length, 2);
  assert.equal(d.train.length + d.valid.length <= 400, true);
  assert.ok(d.valid.length > 0 && d.valid.length < 60, `valid ${d.valid.length}`);
  assert.equal(d.test.length, 60);
  assert.throws(() => loadAgreement({}), /--data DIR is required/);
  assert.throws(() => loadAgreement({ data: join(dir, "nope") }), /is not a folder/);
  const empty = join(dir, "empty");
  mkdirSync(empty);
  const saved = process.env.ATTNFLOW_LINZEN_DIR;
  delete process.env.ATTNFLOW_LINZEN_DIR;
  try {
    assert.throws(() => loadAgreement({ data: empty }), /no Linzen test set .* \$ATTNFLOW_LINZEN_DIR is unset/);
    process.env.ATTNFLOW_LINZEN_DIR = join(dir, "fake-linzen");
    assert.equal(findLinzen(empty), join(dir, "fake-linzen"));
    assert.throws(() => loadAgreement({ data: empty }), /no train.text\/train.gold in/);
  } finally {
    if (saved === undefined) delete process.env.ATTNFLOW_LINZEN_DIR; else process.env.ATTNFLOW_LINZEN_DIR = saved;
  }
});

test("agreement: A&Z's encoder by default; options are checked", () => {
  manualSeed(0);
  const d = loadAgreement({ data });
  const { model, config } = task.createModel(d, {}, undefined as never);
  assert.equal(model.config.depth, 6); assert.equal(model.config.heads, 8); assert.equal(model.config.dModel, 128);
  assert.equal(model.config.pooling, "cls");
  assert.deepEqual(config.labels, ["singular", "plural"]);
  assert.throws(() => task.createModel(d, { pooling: "mean" }, undefined as never), /pooling cannot be set/);
  assert.throws(() => task.createModel(d, { depthh: 3 }, undefined as never), /unknown option\(s\) depthh/);
  assert.throws(() => task.modelFromConfig({ ...config, labels: ["plural", "singular"] }), /labels must be singular, plural/);
});

test("agreement: learns a synthetic agreement rule; the explanation blanks out with [UNK] and scores log-odds", async () => {
  manualSeed(1);
  const d = loadAgreement({ data });
  const { model } = task.createModel(d, { depth: 2, heads: 2, dModel: 32, ff: 64, dropout: 0 }, undefined as never);
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
  model.train();
  for (let step = 0; step < 100; step++) {
    const idx = Int32Array.from({ length: 32 }, (_, k) => (step * 32 + k) % d.train.length);
    opt.zeroGrad();
    task.loss(model, d, idx).backward();
    opt.step();
  }
  model.eval();
  const m = task.evaluate(model, d);
  assert.ok(m.accuracy >= 0.9, `accuracy ${m.accuracy}`);
  assert.ok(m.accuracyAttractors0 >= 0.9 && m.accuracyAttractors1 !== undefined);
  assert.equal(m.testUnknownWordRate, 0);
  // the explanation: tokens, target = the given number, score = z_target − z_other, occlusion with [UNK]
  const e = task.explain!(model, {}, { text: "the keys near the dog", target: "plural" });
  assert.deepEqual(e.tokens, ["[CLS]", "the", "keys", "near", "the", "dog"]);
  assert.equal(e.targetLabel, "plural");
  const z = model.forward(Tensor.fromArray(Int32Array.from([2, ...["the", "keys", "near", "the", "dog"].map((w) => agreementState(model).tok.tokenToId(w))]), [1, 6])).dataSync();
  assert.ok(Math.abs((e.score().item() as number) - (z[1] - z[0])) < 1e-5);
  const occ = Int32Array.from([2, ...["the", "keys", "near", "the", "dog"].map((w) => agreementState(model).tok.tokenToId(w))]);
  occ[2] = UNK_ID;
  const zo = model.forward(Tensor.fromArray(occ, [1, 6])).dataSync();
  assert.ok(Math.abs((e.score({ occlude: [2] }).item() as number) - (zo[1] - zo[0])) < 1e-5);
  assert.ok(e.score().item() as number > (e.score({ occlude: [2] }).item() as number), "blanking the subject lowers the plural log-odds");
  // faithfulness inputs carry the gold number, and the comparison table prints both rows per method
  const inputs = task.faithfulnessInputs!(d, 5);
  assert.equal(inputs.length, 5);
  assert.ok(inputs.every((x) => x.target === "singular" || x.target === "plural"));
  const samples = [];
  for (const x of inputs) {
    const r = await runExplanation(task.explain!(model, {}, x, x.target), model, { methods: ["raw", "rollout", "flow", "blankout"], matrices: false, flowMatrices: "none" });
    samples.push(faithfulnessOf(r));
  }
  const table = formatPaperComparison(summariseFaithfulness(samples));
  assert.match(table, /^rollout\s+ours\s+(-?\d\.\d\d|—)\s+/m);
  assert.match(table, new RegExp(`^\\s+A&Z\\s+${ABNAR_ZUIDEMA_TABLE1.flow.slice(0, 2).map((v) => v.toFixed(2)).join("\\s+")}`, "m"));
  assert.match(table, /L6/);
});

test("agreement: balanceClasses weights each example by N / (2 · N_class)", () => {
  const fake = { train: [0, 0, 0, 1].map((label) => ({ label })) } as unknown as AgreementData;
  assert.deepEqual(classWeights(fake), [4 / 6, 2]);
  assert.deepEqual(classWeights({ train: [0, 0].map((label) => ({ label })) } as unknown as AgreementData), [1, 1]);
  manualSeed(4);
  const d = loadAgreement({ data });
  const { model, config } = task.createModel(d, { depth: 1, heads: 2, dModel: 16, ff: 32, dropout: 0, balanceClasses: true }, undefined as never);
  assert.equal(config.balanceClasses, true);
  assert.throws(() => task.createModel(d, { balanceClasses: "yes" }, undefined as never), /balanceClasses' must be true or false/);
  const [w0, w1] = classWeights(d);
  const S = Int32Array.from(d.train.map((e, i) => (e.label === 0 ? i : -1)).filter((i) => i >= 0).slice(0, 6));
  const P = Int32Array.from(d.train.map((e, i) => (e.label === 1 ? i : -1)).filter((i) => i >= 0).slice(0, 4));
  const st = agreementState(model).cfg;
  const loss = (idx: Int32Array, balance: boolean) => { st.balanceClasses = balance; return task.loss(model, d, idx).item() as number; };
  const [lS, lP] = [loss(S, false), loss(P, false)];
  assert.ok(Math.abs(loss(S, true) - w0 * lS) < 1e-5);
  assert.ok(Math.abs(loss(P, true) - w1 * lP) < 1e-5);
  assert.ok(Math.abs(loss(Int32Array.from([...S, ...P]), true) - (6 * w0 * lS + 4 * w1 * lP) / 10) < 1e-5);
});

const PY = "/usr/bin/python3";
test("mine-agreement --method aux: auxiliaries labelled by their own number; inversions, infinitives, subjunctives skipped", { skip: !existsSync(PY) && "no /usr/bin/python3" }, () => {
  const src = join(dir, "aux-src"), out = join(dir, "aux-out");
  mkdirSync(src);
  writeFileSync(join(src, "a.txt"), [
    "The keys to the cabinet are on the table. There is a dog in the garden. The dog that chased the cats was hungry.",
    "Does the dog have a bone? The dogs do not have bones. If the king were here, we would know it.",
    "The reports of the committee have been published. So are the minutes of the meeting.",
  ].join(" ") + "\n");
  execFileSync(PY, ["scripts/mine-agreement.py", "--method", "aux", "--plain", src, "--out", out], { stdio: "pipe" });
  const gold = readFileSync(join(out, "train.gold"), "utf8").trim().split("\n");
  const text = readFileSync(join(out, "train.text"), "utf8").trim().split("\n");
  assert.deepEqual(text.map((t, i) => t.split(" ").slice(0, Number(gold[i].split("\t")[0])).join(" ") + " | " + gold[i].split("\t").slice(1).join(" ")), [
    "the keys to the cabinet | are is -1",
    "the dog that chased the cats | was were -1",
    "the reports of the committee | have has -1",
  ]);
  const ex = readAgreementFiles(join(out, "train.text"), join(out, "train.gold"));
  assert.deepEqual(ex.map((e) => e.label), [1, 0, 1]);
});

const LINZEN = "/work/shared/data/linzen-agreement";
test("agreement: Linzen's test sentences read as 7,485 prefixes (4 lines without a number)", { skip: !existsSync(LINZEN) && "Linzen's test set is not on this machine" }, () => {
  const skipped: number[] = [];
  const ex = readAgreementFiles(join(LINZEN, "subj_agr_filtered.text"), join(LINZEN, "subj_agr_filtered.gold"), skipped);
  assert.equal(ex.length + skipped.length, 7489);
  assert.equal(skipped.length, 4);
  assert.equal(ex.filter((e) => e.label === 1).length + ex.filter((e) => e.label === 0).length, ex.length);
  assert.ok(Math.abs(ex.filter((e) => e.label === 1).length - 4759) <= 4);
});

test("reliability diagnostics: near-uniform attention and saturated flow are flagged, peaked and distinct are not", () => {
  const e = {
    tokens: ["[CLS]", "a", "b", "c", "d"], special: [0],
    methods: {
      raw: { importance: [], matrix: [], perLayer: [[0.9, 0.025, 0.025, 0.025, 0.025], [0.2, 0.1, 0.1, 0.3, 0.3], [0, 0.97, 0.01, 0.01, 0.01]] },
      flow: { importance: [], perLayer: [[1, 0.1, 0.2, 0.3, 0.4], [1, 0.25, 0.25, 0.25000001, 0.1], [1, 0.3, 0.3, 0.3, 0.3]] },
    },
  } as unknown as Parameters<typeof explanationDiagnostics>[0];
  const d = explanationDiagnostics(e);
  assert.ok(Math.abs(d.uniformity![0] - 1) < 1e-12, "uniform over the non-special tokens ([CLS] left out)");
  assert.ok(d.uniformity![1] < 0.97 && d.uniformity![1] > 0.8);
  assert.ok(d.uniformity![2] < 0.2);
  assert.deepEqual(d.flowTies, [0.25, 0.75, 1]);
  assert.deepEqual(unreliableWarnings(d, 2).length, 1);
  assert.match(unreliableWarnings(d)[0], /flow is saturated: 100 % of the tokens share one value/);
  assert.match(unreliableWarnings(d, 0)[0], /near-uniform/);
  assert.deepEqual(unreliableWarnings({ uniformity: [0.5], flowTies: [0.25] }), []);
  const s = summariseFaithfulness([{ corr: {}, positions: 4, diagnostics: d }, { corr: {}, positions: 4, diagnostics: { uniformity: [0.5, 0.5, 0.5], flowTies: [0.25, 0.25, 0.25] } }]);
  assert.deepEqual(s.reliability!.flowTies!.flagged, [0, 0.5, 0.5]);
  assert.match(formatReliability(s), /flow: largest share of tokens tied at one value: mean 0\.25 0\.50 0\.63; inputs >= 0\.5: 0% 50% 50%/);
});

test("explain's text names an unreliable explanation: an untrained model's near-uniform attention", async () => {
  manualSeed(3);
  const d = loadAgreement({ data });
  const { model } = task.createModel(d, { depth: 2, heads: 2, dModel: 32, ff: 64, dropout: 0 }, undefined as never);
  model.eval();
  const e = await runExplanation(task.explain!(model, {}, { text: "the keys near the dog" }), model, { methods: ["raw", "flow"] });
  const text = renderExplanationText(e);
  assert.match(text, /^WARNING: raw attention is near-uniform \(entropy (0\.9\d+|1\.000) of the maximum\)/m);
  const peaked = { ...e, methods: { ...e.methods, raw: { ...e.methods.raw!, perLayer: e.methods.raw!.perLayer.map((v) => v.map((_, i) => (i === 2 ? 0.9 : 0.02))) } } };
  assert.doesNotMatch(renderExplanationText(peaked), /near-uniform/);
});
