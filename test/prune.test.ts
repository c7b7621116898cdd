// Attention-head pruning: head masks, physical pruning (= masking), Michel et al.'s mask gradient (finite differences
// and Hugging Face's own autograd), rollout/flow head importance (against the library's rollout and flow of the stack
// with the head removed), HF BERT parity of prune_heads and pruned_heads (test/fixtures/hf-prune, made by
// scripts/hf-prune-refs.py with unmodified transformers 4.44.2), checkpoints and the CLI round trip.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/node.js";
import { Tensor } from "../src/tensor.js";
import { ones, randn } from "../src/creation.js";
import * as F from "../src/functional.js";
import { noGrad } from "../src/autograd.js";
import { Generator, defaultGenerator } from "../src/random.js";
import { MultiheadAttention } from "../src/nn/attention.js";
import { pruneHeads, prunedHeadsOf, setHeadMask, headCounts } from "../src/nn/prune.js";
import { TextClassifier } from "../src/models/text-classifier.js";
import { VisionTransformer } from "../src/models/vit.js";
import {
  gradientHeadImportance, rolloutHeadShift, flowHeadShift, headsToPrune, parseHeadCount, exampleAttention, attributionHeadImportance,
} from "../src/explain/head-importance.js";
import { attentionRolloutRow } from "../src/explain/rollout.js";
import { attentionFlow } from "../src/explain/flow.js";
import { targetAttention } from "../src/explain/attribution.js";
import { parseSafetensors, toFloat32, toInt32 } from "../src/io/safetensors.js";
import { fromPretrainedDir, savePretrainedDir } from "../src/hf/node-pretrained.js";
import { loadCheckpoint } from "../src/node/checkpoint.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "bin", "attnflow.js");
const dir = mkdtempSync(join(tmpdir(), "attnflow-prune-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} > ${tol}`);
}
const data = (t: Tensor) => Float32Array.from(t.dataSync() as Float32Array);

function tinyClassifier(seed = 3): TextClassifier {
  const m = new TextClassifier({ vocabSize: 30, dModel: 16, depth: 2, heads: 4, ff: 32, maxLen: 12, dropout: 0, numClasses: 3, pooling: "cls" }, new Generator(seed));
  // BERT init (std 0.02) makes attention nearly uniform; larger weights make the heads differ
  noGrad(() => { for (const p of m.parameters()) if (p.ndim >= 2) p.storage.data.set(data(randn(p.shape, { generator: new Generator(seed + p.numel()) }).mul(0.4))); });
  return m.eval();
}
const IDS = Tensor.fromArray(Int32Array.from([1, 5, 9, 3, 7, 2, 8, 11, 4, 6, 0, 0, 1, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]), [3, 8]);
const LABELS = Tensor.fromArray(Int32Array.from([0, 2, 1]), [3]);

test("MultiheadAttention: a zero head mask equals pruning those heads (outputs within 1e-5), both layouts and padding", () => {
  for (const batchFirst of [true, false]) {
    defaultGenerator.manualSeed(7);
    const mha = new MultiheadAttention(16, 4, { batchFirst });
    noGrad(() => { mha.inProjBias!.storage.data.set(data(randn([48]))); });
    const x = randn(batchFirst ? [2, 5, 16] : [5, 2, 16]);
    const kpm = Tensor.fromArray(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 1, 1]), [2, 5], "bool");
    const mask = Tensor.fromArray(Float32Array.from([1, 0, 1, 0]), [4]);
    const [masked, wMasked] = noGrad(() => mha.forward(x, x, x, { keyPaddingMask: kpm, headMask: mask, averageAttnWeights: false }));
    mha.pruneHeads([3, 1]);
    assert.equal(mha.numHeads, 2);
    assert.deepEqual(mha.inProjWeight!.shape, [24, 16]);
    assert.deepEqual((mha.outProj as { weight: Tensor }).weight.shape, [16, 8]);
    const [pruned, wPruned] = noGrad(() => mha.forward(x, x, x, { keyPaddingMask: kpm, averageAttnWeights: false }));
    close(data(pruned), data(masked), 1e-5, `output (batchFirst ${batchFirst})`);
    // the kept heads' weights are unchanged, the masked ones are zero
    const wm = data(wMasked!), wp = data(wPruned!), TT = 25;
    for (let b = 0; b < 2; b++) {
      for (const [i, h] of [[0, 0], [1, 2]]) close(wp.subarray((b * 2 + i) * TT, (b * 2 + i + 1) * TT), wm.subarray((b * 4 + h) * TT, (b * 4 + h + 1) * TT), 1e-6, "weights");
      assert.ok(wm.subarray((b * 4 + 1) * TT, (b * 4 + 2) * TT).every((v) => v === 0));
    }
  }
});

test("head masks: wrong shapes name both, pruning every head of a layer is refused, bad specs name the layer", () => {
  defaultGenerator.manualSeed(1);
  const mha = new MultiheadAttention(8, 2, { batchFirst: true });
  const x = randn([1, 3, 8]);
  assert.throws(() => mha.forward(x, x, x, { headMask: ones([3]) }), /headMask must be \[2\] or \[1, 2\].*got \[3\]/);
  assert.throws(() => mha.pruneHeads([0, 1]), /would leave no head/);
  assert.throws(() => mha.pruneHeads([2]), /head 2 is not in \[0, 2\)/);
  const m = tinyClassifier();
  assert.throws(() => pruneHeads(m, { 2: [0] }), /layer "2" is not in \[0, 2\)/);
  assert.throws(() => pruneHeads(m, { 0: [0, 1, 2, 3] }), /layer 0 would keep no head/);
  assert.throws(() => setHeadMask(m, ones([2, 3])), /every layer to have H heads.*got \[2, 3\]/);
});

test("TextClassifier and ViT: physical pruning equals masking (logits within 1e-5), heads per layer, repeated pruning skips heads already pruned", () => {
  const m = tinyClassifier();
  const spec = { 0: [2], 1: [0, 3] };
  setHeadMask(m, Tensor.fromArray(Float32Array.from([1, 1, 0, 1, 0, 1, 1, 0]), [2, 4]));
  const masked = data(noGrad(() => m.forward(IDS)));
  setHeadMask(m, null);
  const full = data(noGrad(() => m.forward(IDS)));
  assert.ok(full.some((v, i) => Math.abs(v - masked[i]) > 1e-3), "the mask changes the logits");
  pruneHeads(m, { 0: [2], 1: [0] });
  assert.deepEqual(pruneHeads(m, { 1: [0, 3] }), spec);
  assert.deepEqual(headCounts(m), [{ left: 3, original: 4 }, { left: 2, original: 4 }]);
  close(data(noGrad(() => m.forward(IDS))), masked, 1e-5, "classifier logits");

  const vit = new VisionTransformer({ imageSize: 8, patchSize: 4, channels: 1, numClasses: 3, dModel: 16, depth: 2, heads: 4, mlpDim: 16, dropout: 0, pool: "cls" }, new Generator(5)).eval();
  const img = randn([2, 8, 8], { generator: new Generator(9) }).abs().clamp(0, 1);
  setHeadMask(vit, [Tensor.fromArray(Float32Array.from([0, 1, 1, 1]), [4]), Tensor.fromArray(Float32Array.from([1, 1, 0, 0]), [4])]);
  const vm = data(noGrad(() => vit.forward(img)));
  setHeadMask(vit, null);
  pruneHeads(vit, { 0: [0], 1: [2, 3] });
  close(data(noGrad(() => vit.forward(img))), vm, 1e-5, "ViT logits");
});

test("Michel et al.'s importance: the head-mask gradient matches central finite differences", () => {
  const m = tinyClassifier(11);
  const lossAt = (mask: Float32Array) => {
    setHeadMask(m, Tensor.fromArray(mask, [2, 4]));
    try { return noGrad(() => F.crossEntropy(m.forward(IDS), LABELS).item()); } finally { setHeadMask(m, null); }
  };
  const s = gradientHeadImportance(m, () => F.crossEntropy(m.forward(IDS), LABELS), 1, { normalizeLayers: false, normalizeGlobal: false });
  const eps = 1e-2;
  for (let l = 0; l < 2; l++) {
    for (let h = 0; h < 4; h++) {
      const up = new Float32Array(8).fill(1), dn = new Float32Array(8).fill(1);
      up[l * 4 + h] += eps; dn[l * 4 + h] -= eps;
      const fd = (lossAt(up) - lossAt(dn)) / (2 * eps);
      assert.ok(Math.abs(s.scores[l][h] - Math.abs(fd)) <= 2e-3 + 0.02 * Math.abs(fd), `layer ${l} head ${h}: |grad| ${s.scores[l][h]} vs |finite difference| ${Math.abs(fd)}`);
    }
  }
  assert.ok(m.parameters().every((p) => p.grad === null), "parameter gradients are cleared");
  // normalised: per layer L2 then min-max over all heads (an order-preserving map of the raw scores)
  const n = gradientHeadImportance(m, () => F.crossEntropy(m.forward(IDS), LABELS), 1);
  assert.equal(Math.min(...n.scores.flatMap((v) => [...v])), 0);
  assert.equal(Math.max(...n.scores.flatMap((v) => [...v])), 1);
});

test("rollout and flow head importance: the shift equals the library's rollout / flow of the stack without that head", () => {
  const m = tinyClassifier(21);
  const one = Tensor.fromArray(Int32Array.from([1, 5, 9, 3, 7, 2]), [1, 6]);
  const ex = exampleAttention(m, () => m.forward(one));
  assert.deepEqual(ex.heads, [4, 4]);
  const T = ex.tokens, L = 2, H = 4;
  const stack = (skipL: number, skipH: number) => {
    // the (L, H', T, T) stack with head skipH removed from layer skipL: both layers need equal H, so the removed head
    // is replaced by the mean of the others there — the mean over H heads then equals the mean over the H−1 others
    const d = new Float64Array(L * H * T * T);
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const src = ex.layers[l].subarray(h * T * T, (h + 1) * T * T), dst = d.subarray((l * H + h) * T * T, (l * H + h + 1) * T * T);
        if (l === skipL && h === skipH) {
          for (let g = 0; g < H; g++) if (g !== h) for (let e = 0; e < T * T; e++) dst[e] += ex.layers[l][g * T * T + e] / (H - 1);
        } else dst.set(src);
      }
    }
    return { data: d, layers: L, heads: H, tokens: T };
  };
  const tv = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]); return s / 2; };
  const rs = rolloutHeadShift(ex, 0), fs = flowHeadShift(ex, 0);
  const rFull = attentionRolloutRow(stack(-1, -1), 0), fFull = attentionFlow(stack(-1, -1), { fromTokens: [0] }).flows;
  let any = 0;
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const r = attentionRolloutRow(stack(l, h), 0), f = attentionFlow(stack(l, h), { fromTokens: [0] }).flows;
      assert.ok(Math.abs(rs[l][h] - tv(rFull, r)) < 1e-9, `rollout (${l}, ${h}): ${rs[l][h]} vs ${tv(rFull, r)}`);
      assert.ok(Math.abs(fs[l][h] - tv(fFull, f)) < 1e-6, `flow (${l}, ${h}): ${fs[l][h]} vs ${tv(fFull, f)}`);
      any = Math.max(any, rs[l][h]);
    }
  }
  assert.ok(any > 1e-3, "the heads move some relevance");
  // averaged over examples and normalised like the gradient
  const s = attributionHeadImportance(m, "rollout", () => m.forward(one), 2, { query: 0 });
  assert.equal(Math.max(...s.scores.flatMap((v) => [...v])), 1);
});

test("headsToPrune: global ranking, one head kept per layer; parseHeadCount", () => {
  const s = { method: "gradient" as const, scores: [Float64Array.of(0.1, 0.2, 0.05), Float64Array.of(0.9, 0.01)], heads: [[0, 2, 3], [1, 3]], samples: 1 };
  assert.deepEqual(headsToPrune(s, 2), { 0: [3], 1: [3] });
  assert.deepEqual(headsToPrune(s, 3), { 0: [0, 3], 1: [3] });
  assert.throws(() => headsToPrune(s, 4), /cannot prune 4 of 5 heads/);
  assert.equal(parseHeadCount("25%", 16), 4);
  assert.equal(parseHeadCount("0.5", 24), 12);
  assert.equal(parseHeadCount("3", 24), 3);
  assert.throws(() => parseHeadCount("lots", 16), /--heads must be/);
});

test("Hugging Face BERT: head_mask logits and d loss / d head_mask, prune_heads and pruned_heads as transformers 4.44.2 computes them", async () => {
  const refBytes = readFileSync(join(root, "test", "fixtures", "hf-prune", "reference.safetensors"));
  const ref = parseSafetensors(new Uint8Array(refBytes.buffer, refBytes.byteOffset, refBytes.length)).tensors;
  const f32 = (k: string) => toFloat32(ref.get(k)!), i32 = (k: string) => Tensor.fromArray(toInt32(ref.get(k)!), ref.get(k)!.shape, "int32");
  const inputs = { inputIds: i32("in.input_ids"), attentionMask: i32("in.attention_mask"), tokenTypeIds: i32("in.token_type_ids") };
  const p = await fromPretrainedDir(join(root, "test", "fixtures", "hf", "bert-seqcls"));
  const model = p.model as unknown as TextClassifier;   // any Module
  setHeadMask(model, Tensor.fromArray(f32("head_mask"), [2, 4]));
  close(data(noGrad(() => p.model.forward(inputs).logits!)), f32("out.masked_logits"), 1e-5, "masked logits");
  setHeadMask(model, null);
  const labels = i32("in.labels");
  const g = gradientHeadImportance(model, () => F.crossEntropy(p.model.forward(inputs).logits!, labels), 1, { normalizeLayers: false, normalizeGlobal: false });
  close(g.scores.flatMap((v) => [...v]), Array.from(f32("head_mask_grad"), Math.abs), 1e-5, "|d loss / d head_mask|");

  pruneHeads(model, { 0: [1], 1: [2] });
  pruneHeads(model, { 0: [1, 3] });
  assert.deepEqual(prunedHeadsOf(model), { 0: [1, 3], 1: [2] });
  const out = noGrad(() => p.model.forward(inputs, { outputAttentions: true, outputHiddenStates: true }));
  close(data(out.logits!), f32("out.pruned_logits"), 1e-5, "pruned logits");
  close(data(out.hiddenStates![2]), f32("out.pruned_last_hidden_state"), 1e-5, "pruned last hidden state");
  for (const l of [0, 1]) close(data(out.attentions![l]), f32(`out.pruned_attentions.${l}`), 1e-5, `pruned attentions ${l}`);

  // HF's saved pruned folder loads here (config.json pruned_heads), and ours has HF's config entry and weights
  const hfPruned = await fromPretrainedDir(join(root, "test", "fixtures", "hf-prune", "bert-seqcls-pruned"));
  close(data(noGrad(() => hfPruned.model.forward(inputs).logits!)), f32("out.pruned_logits"), 1e-5, "HF's pruned folder");
  const ours = join(dir, "ours");
  await savePretrainedDir(p.model, ours);
  const cfg = JSON.parse(readFileSync(join(ours, "config.json"), "utf8"));
  assert.deepEqual(cfg.pruned_heads, { 0: [1, 3], 1: [2] });
  const hfW = parseSafetensors(new Uint8Array(readFileSync(join(root, "test", "fixtures", "hf-prune", "bert-seqcls-pruned", "model.safetensors")))).tensors;
  const ourW = parseSafetensors(new Uint8Array(readFileSync(join(ours, "model.safetensors")))).tensors;
  assert.deepEqual([...ourW.keys()].sort(), [...hfW.keys()].sort());
  for (const [k, t] of hfW) {
    assert.deepEqual(ourW.get(k)!.shape, t.shape, k);
    close(toFloat32(ourW.get(k)!), toFloat32(t), 0, k);
  }
  const back = await fromPretrainedDir(ours);
  close(data(noGrad(() => back.model.forward(inputs).logits!)), f32("out.pruned_logits"), 1e-5, "our pruned folder reloaded");
});

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 300_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("CLI: attnflow prune --spec writes a checkpoint that loads pruned and predicts like the model pruned in memory", async () => {
  const out = join(dir, "fc-pruned.safetensors");
  const r = cli("prune", "--model", "models/fortunes-classifier.safetensors", "--spec", "0:1;2:0,3", "--out", out, "--json");
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split("\n").pop()!);
  assert.deepEqual(res.prunedHeads, { 0: [1], 2: [0, 3] });
  assert.deepEqual(res.heads, { before: 16, after: 13 });
  const ck = await loadCheckpoint(out);
  assert.deepEqual(headCounts(ck.model).map((c) => c.left), [3, 4, 2, 4]);
  const ref = await loadCheckpoint("models/fortunes-classifier.safetensors");
  pruneHeads(ref.model, { 0: [1], 2: [0, 3] });
  const ids = Tensor.fromArray(Int32Array.from([2, 40, 41, 42, 43, 44, 45]), [1, 7]);
  close(data(noGrad(() => (ck.model as TextClassifier).forward(ids))), data(noGrad(() => (ref.model as TextClassifier).forward(ids))), 0, "reloaded logits");
  const info = cli("info", "--model", out);
  assert.match(info.out, /pruned +3 attention heads \(layer:heads\) 0:1 2:0,3/);
  // the explanation's HTML report has the per-head rollout shift of the explained input, one row per layer
  const html = join(dir, "r.html");
  assert.equal(cli("explain", "--model", out, "--text", "you will meet a tall dark stranger", "--html", html).code, 0);
  const page = readFileSync(html, "utf8");
  assert.match(page, /Head importance for this input/);
  assert.equal((page.slice(page.indexOf("Head importance for this input")).match(/<th>layer \d<\/th>/g) ?? []).length, 4);
  // pruned, then int8: both recorded, both applied on load
  const q = join(dir, "fc-pruned-int8.safetensors");
  assert.equal(cli("quantize", "--model", out, "--out", q).code, 0);
  const qk = await loadCheckpoint(q);
  assert.deepEqual(prunedHeadsOf(qk.model), { 0: [1], 2: [0, 3] });
  assert.ok(qk.raw.quantization);
  close(data(noGrad(() => (qk.model as TextClassifier).forward(ids))), data(noGrad(() => (ref.model as TextClassifier).forward(ids))), 0.05, "pruned int8 logits");
  assert.equal(cli("prune", "--model", out, "--spec", "0:9", "--out", join(dir, "x.safetensors")).code, 1);
  const bad = cli("prune", "--model", "models/fortunes-classifier.safetensors", "--out", join(dir, "y.safetensors"));
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--heads/);
});

test("CLI: attnflow prune --heads 25% --by rollout on a Hugging Face folder with --texts writes pruned_heads that our loader reads", async () => {
  const texts = join(dir, "texts.txt");
  const { writeFileSync, cpSync } = await import("node:fs");
  const src = join(dir, "bert-mlm");
  cpSync(join(root, "test", "fixtures", "hf", "bert-mlm-h3"), src, { recursive: true });
  // the fixture's WordPiece tokenizer.json with a 20-word vocabulary that fits the model's 128 ids
  const tj = JSON.parse(readFileSync(join(root, "test", "fixtures", "hf-tokenizer", "bert", "tokenizer.json"), "utf8"));
  const words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "##s", "and", ".", "big", "red", "hat"];
  tj.model.vocab = Object.fromEntries(words.map((w, i) => [w, i]));
  writeFileSync(join(src, "tokenizer.json"), JSON.stringify(tj));
  writeFileSync(texts, "the cat sat on the mat\na dog ran far\n");
  const out = join(dir, "bert-pruned");
  const r = cli("prune", "--model", src, "--heads", "2", "--by", "rollout", "--texts", texts, "--out", out, "--json");
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split("\n").pop()!);
  assert.equal(res.heads.after, res.heads.before - 2);
  const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
  assert.deepEqual(cfg.pruned_heads, res.prunedHeads);
  const back = await fromPretrainedDir(out);
  assert.equal(headCounts(back.model as unknown as TextClassifier).reduce((n, c) => n + c.left, 0), res.heads.after);
});

test("CLI: prune --finetune-steps trains the pruned model with the task's loop and writes a resumable checkpoint that keeps the heads pruned", async () => {
  const out = join(dir, "vit-ft.safetensors");
  const r = cli("prune", "--model", "models/fashion-vit.safetensors", "--heads", "25%", "--by", "random", "--finetune-steps", "2", "--batch-size", "8", "--limit", "50", "--out", out, "--json");
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split("\n").pop()!);
  assert.equal(res.heads.after, 18);
  assert.ok(res.finetuned.accuracy > 0.5, `fine-tuned accuracy ${res.finetuned.accuracy}`);
  const ck = await loadCheckpoint(out);
  assert.equal(headCounts(ck.model).reduce((n, c) => n + c.left, 0), 18);
  assert.deepEqual(prunedHeadsOf(ck.model), res.prunedHeads);
  assert.equal(ck.raw.trainer?.globalStep, 2);
  assert.ok(ck.raw.optimizer, "optimizer state kept for --resume");
  // the task's trainer resumes it (pruning the fresh model before loading the weights) and keeps the heads pruned
  const resumed = cli("train", "fashion-vit", "--resume", out, "--epochs", "2");
  assert.equal(resumed.code, 0, resumed.err);
  const again = await loadCheckpoint(out);
  assert.equal(again.raw.trainer?.globalStep, 4);
  assert.deepEqual(prunedHeadsOf(again.model), res.prunedHeads);
});

test("explaining a pruned model: layers with fewer heads are padded so that rollout (mean and max fusion) and flow are those of the real heads", async () => {
  const ck = await loadCheckpoint("models/fortunes-classifier.safetensors");
  pruneHeads(ck.model, { 0: [1], 2: [0, 3] });
  const target = ck.task.explain!(ck.model, ck.config, { text: "you will meet a tall dark stranger" });
  const ta = targetAttention(target, ck.model);
  assert.deepEqual(ta.headsPerLayer, [3, 4, 2, 4]);
  const T = ta.stack.tokens, TT = T * T, H = ta.stack.heads;
  // the real heads straight from the model, and rollout / flow over them written out here
  const ex = exampleAttention(ck.model, () => target.score());
  for (const fusion of ["mean", "max"] as const) {
    const fuse = (l: number) => {
      const m = new Float64Array(TT).fill(fusion === "max" ? -Infinity : 0);
      for (let h = 0; h < ex.heads[l]; h++) for (let e = 0; e < TT; e++) m[e] = fusion === "max" ? Math.max(m[e], ex.layers[l][h * TT + e]) : m[e] + ex.layers[l][h * TT + e] / ex.heads[l];
      return m;
    };
    let row = new Float64Array(T); row[0] = 1;
    for (let l = ex.layers.length - 1; l >= 0; l--) {
      const a = fuse(l), next = new Float64Array(T);
      for (let i = 0; i < T; i++) {
        const rs = a.subarray(i * T, (i + 1) * T).reduce((x, y) => x + y, 0);
        for (let j = 0; j < T; j++) next[j] += row[i] * (a[i * T + j] + (i === j ? 1 : 0)) / (rs + 1);   // A&Z: (W + I) / rowsum
      }
      row = next;
    }
    close(attentionRolloutRow(ta.stack, 0, { headFusion: fusion }), row, 1e-6, `rollout row (${fusion} fusion)`);
  }
  assert.equal(H, 4);
  // flow: the padded stack against an unpadded one built from the real heads' mean (one head per layer)
  const meanStack = { data: new Float64Array(ex.layers.length * TT), layers: ex.layers.length, heads: 1, tokens: T };
  ex.layers.forEach((a, l) => { for (let h = 0; h < ex.heads[l]; h++) for (let e = 0; e < TT; e++) meanStack.data[l * TT + e] += a[h * TT + e] / ex.heads[l]; });
  close(attentionFlow(ta.stack, { fromTokens: [0] }).flows, attentionFlow(meanStack, { fromTokens: [0] }).flows, 1e-6, "flow");
});

/** The --html report's embedded curve data: [{ metric, heads, curves: [{ name, pts: [[fraction, value]] }] }]. */
function reportData(file: string): { metric: string; heads: number; curves: { name: string; pts: [number, number][] }[] }[] {
  const page = readFileSync(file, "utf8");
  const m = /<script type="application\/json" id="attnflow-prune-data">([\s\S]*?)<\/script>/.exec(page);
  assert.ok(m, "the report embeds its curve data");
  assert.equal((page.match(/<canvas class="curve"/g) ?? []).length, 1, "one plot");
  return JSON.parse(m[1]);
}

test("CLI: prune --eval --html on a Hugging Face classifier folder: accuracy before/after of the written folder, the report's curve equals the pruned folders' accuracy", async () => {
  const { writeFileSync, cpSync } = await import("node:fs");
  const src = join(dir, "bert-cls");
  cpSync(join(root, "test", "fixtures", "hf", "bert-seqcls"), src, { recursive: true });
  const tj = JSON.parse(readFileSync(join(root, "test", "fixtures", "hf-tokenizer", "bert", "tokenizer.json"), "utf8"));
  const words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "##s", "and", ".", "big", "red", "hat"];
  tj.model.vocab = Object.fromEntries(words.map((w, i) => [w, i]));
  writeFileSync(join(src, "tokenizer.json"), JSON.stringify(tj));
  const g = new Generator(5);
  const sentence = () => Array.from({ length: 3 + g.int(6) }, () => words[5 + g.int(words.length - 5)]).join(" ").replace(/ ##/g, "");
  const lines = Array.from({ length: 40 }, (_, i) => `${i % 3}\t${sentence()}`);
  const texts = join(dir, "cls-train.tsv"), test = join(dir, "cls-test.tsv");
  writeFileSync(texts, lines.slice(0, 16).join("\n") + "\n");
  writeFileSync(test, lines.slice(16).join("\n") + "\n");
  const out = join(dir, "bert-cls-pruned"), html = join(dir, "prune.html");
  const r = cli("prune", "--model", src, "--heads", "25%", "--by", "gradient", "--texts", texts, "--eval", "--data", test, "--html", html, "--out", out, "--json");
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split("\n").pop()!);
  assert.equal(res.heads.before, 8);
  assert.equal(res.heads.after, 6);
  // accuracy recomputed here from the written folder's logits on the same lines
  const accOf = async (folder: string, spec?: Record<number, number[]>) => {
    const p = await fromPretrainedDir(folder);
    if (spec) pruneHeads(p.model as unknown as TextClassifier, spec);
    p.model.eval();
    const tok = p.tokenizer as { encode(t: string): number[] };
    const rows = lines.slice(16).map((l) => l.split("\t"));
    let ok = 0;
    for (const [y, t] of rows) {
      const ids = tok.encode(t);
      const z = noGrad(() => p.model.forward({ inputIds: Tensor.fromArray(Int32Array.from(ids), [1, ids.length]) }).logits!.dataSync());
      let a = 0;
      for (let c = 1; c < z.length; c++) if (z[c] > z[a]) a = c;
      ok += a === Number(y) ? 1 : 0;
    }
    return ok / rows.length;
  };
  assert.equal(res.before.accuracy, await accOf(src));
  assert.equal(res.after.accuracy, await accOf(out));
  assert.equal(res.before.labelled, 24);
  const [d] = reportData(html);
  assert.equal(d.metric, "accuracy");
  assert.equal(d.heads, 8);
  const pts = d.curves[0].pts;
  assert.equal(d.curves[0].name, "gradient");
  // 0, 1 (10%), 2 (25%, the written folder), 4 (50%), 6 (75%) of the 8 heads
  assert.deepEqual(pts.map((p) => p[0]), [0, 1 / 8, 2 / 8, 4 / 8, 6 / 8]);
  assert.equal(pts[0][1], res.before.accuracy);
  assert.equal(pts[2][1], res.after.accuracy);
  const scores = { scores: res.scores.map((v: number[]) => Float64Array.from(v)), heads: res.scores.map((v: number[]) => [...v.keys()]) };
  assert.equal(pts[3][1], await accOf(src, headsToPrune(scores as never, 4)), "50% point: the folder pruned by the same scores");
  const page = readFileSync(html, "utf8");
  assert.match(page, /Head importance \(gradient\)/);
  assert.equal((page.match(/<td class="pruned"/g) ?? []).length, 2, "the two pruned heads are marked");
  // --html needs a metric: unlabelled lines give none
  writeFileSync(test, "the cat sat\n");
  const bad = cli("prune", "--model", src, "--heads", "1", "--by", "random", "--html", html, "--data", test, "--out", join(dir, "x"));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /no metric.*LABEL<TAB>text/);
});

test("CLI: prune --html on a checkpoint: the curve's points are the task's held-out accuracy before and after", () => {
  const out = join(dir, "fc-random.safetensors"), html = join(dir, "fc.html");
  const r = cli("prune", "--model", "models/fortunes-classifier.safetensors", "--heads", "4", "--by", "random", "--limit", "40", "--html", html, "--out", out, "--json");
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split("\n").pop()!);
  const [d] = reportData(html);
  const pts = d.curves[0].pts;
  assert.deepEqual(pts.map((p) => Math.round(p[0] * 16)), [0, 2, 4, 8, 12]);
  assert.equal(pts[0][1], res.before.accuracy);
  assert.equal(pts[2][1], res.after.accuracy);
});
