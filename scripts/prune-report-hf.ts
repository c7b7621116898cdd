// The Hugging Face BERT row of the head-pruning report (docs/pruning.md): a BertForSequenceClassification folder in
// Hugging Face's format, trained in attnflow on the fortunes topic task (the shipped classifier's data and split), then
// pruned through `attnflow prune`'s own code paths at 10/25/50/75% of its heads by gradient, flow, rollout and random
// importance, each pruned folder written with savePretrained, read back with fromPretrained and scored on the held-out
// lines. The folder has a WordPiece tokenizer.json (vocabulary from the training split), so
// `attnflow prune --model runs/fortunes-bert --texts runs/fortunes-bert/train.tsv --eval --data runs/fortunes-bert/test.tsv`
// runs on it as on any downloaded BERT.
//   node dist/scripts/prune-report-hf.js train [--epochs 4] [--limit-train N]
//   node dist/scripts/prune-report-hf.js accuracy [--seeds 3]
//   flock /tmp/attnflow-bench.lock node dist/scripts/prune-report-hf.js speed [--reps 41] [--runs 3]
//   node dist/scripts/prune-report-hf.js hf-check     (Hugging Face's own from_pretrained on a pruned folder, ../shared/hf-ref)
// Results go to docs/pruning-results.json (key "hf"); `node dist/scripts/prune-report.js render` draws them.
import "../src/node.js";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { loadAvg1m, machineInfo } from "../bench/lib/machine.js";
import { join } from "node:path";
import { task as fortunes, hashOrder } from "../src/node/tasks/fortunes-classifier.js";
import type { FortunesClsData } from "../src/node/tasks/fortunes-classifier.js";
import { modelFromConfig } from "../src/hf/registry.js";
import { fromPretrainedDir, savePretrainedDir } from "../src/hf/node-pretrained.js";
import { loadTokenizerFromDir } from "../src/hf/node-tokenizer.js";
import type { HFModel } from "../src/hf/types.js";
import { hfImportance } from "../cli/prune.js";
import { loadHF } from "../cli/hf.js";
import { hfEvalInputs, hfEvalLogits, hfEvalMetrics } from "../cli/hf-quantize-eval.js";
import { headsToPrune, type HeadImportanceMethod, type HeadScores } from "../src/explain/head-importance.js";
import { pruneHeads, headCounts, prunedHeadsOf } from "../src/nn/prune.js";
import { AdamW } from "../src/optim/optimizers.js";
import { clipGradNorm } from "../src/optim/clip.js";
import { crossEntropy } from "../src/ops/loss.js";
import { Generator, manualSeed } from "../src/random.js";
import { noGrad } from "../src/autograd.js";
import { tidy } from "../src/scope.js";
import { Tensor } from "../src/tensor.js";
import { getBackend } from "../src/backend/registry.js";
import { saveSafetensors } from "../src/io/state-dict.js";
import type { Module } from "../src/nn/module.js";

export const DIR = "runs/fortunes-bert", RESULTS = "docs/pruning-results.json";
export const FRACTIONS = [0, 0.1, 0.25, 0.5, 0.75];
const METHODS: HeadImportanceMethod[] = ["gradient", "flow", "rollout", "random"];
const MAXLEN = 64, EVAL = 400, IMPORTANCE = 64;
const argv = process.argv.slice(2);
const opt = (k: string, d: number) => (argv.includes(`--${k}`) ? Number(argv[argv.indexOf(`--${k}`) + 1]) : d);
const log = (s: string) => process.stderr.write(s + "\n");
const load = (): Record<string, unknown> => (existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, "utf8")) : {});
const saveHF = (part: string, v: unknown) => { const r = load(); r.hf = { ...((r.hf ?? {}) as object), [part]: v }; writeFileSync(RESULTS, JSON.stringify(r, null, 1) + "\n"); };

// ---------- the folder: WordPiece tokenizer.json, config.json, weights ----------

const SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
/** BERT's basic split (BertNormalizer lowercase + BertPreTokenizer): whitespace, and every punctuation character alone. */
const basicSplit = (t: string) => t.toLowerCase().normalize("NFD").replace(/\p{Mn}/gu, "").match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];

/** A WordPiece tokenizer.json: words seen >= 3 times in the training texts, and every character alone and as "##c". */
function tokenizerJson(texts: readonly string[]): object {
  const counts = new Map<string, number>(), chars = new Set<string>();
  for (const t of texts) for (const w of basicSplit(t)) { counts.set(w, (counts.get(w) ?? 0) + 1); for (const c of w) chars.add(c); }
  const words = [...counts].filter(([w, n]) => n >= 3 && [...w].length > 1).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([w]) => w);
  const cs = [...chars].sort();
  const tokens = [...SPECIAL, ...cs, ...cs.map((c) => "##" + c), ...words];
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  const sp = (id: string) => ({ SpecialToken: { id, type_id: 0 } });
  return {
    version: "1.0", truncation: null, padding: null,
    added_tokens: SPECIAL.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing", single: [sp("[CLS]"), { Sequence: { id: "A", type_id: 0 } }, sp("[SEP]")],
      pair: [sp("[CLS]"), { Sequence: { id: "A", type_id: 0 } }, sp("[SEP]"), { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: Object.fromEntries(["[CLS]", "[SEP]"].map((t) => [t, { id: t, ids: [vocab[t]], tokens: [t] }])),
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
}

/** Held-out lines (the first EVAL of the classifier's test split in its fixed hash order) and clean training lines. */
function tsv(items: readonly { text: string; label: number }[], cats: string[]): string {
  return items.map((x) => `${cats[x.label]}\t${x.text.replace(/\s+/g, " ").trim()}`).join("\n") + "\n";
}

async function trainPhase(): Promise<void> {
  const epochs = opt("epochs", 4), lr = opt("lr", 5e-4), bs = 32;
  manualSeed(0);
  const data = fortunes.loadData({ limitTest: EVAL }) as FortunesClsData;
  const train = opt("limit-train", 0) > 0 ? hashOrder(data.train).slice(0, opt("limit-train", 0)) : data.train;
  mkdirSync(DIR, { recursive: true });
  const tj = tokenizerJson(data.allTrain.map((e) => e.text));
  writeFileSync(join(DIR, "tokenizer.json"), JSON.stringify(tj));
  writeFileSync(join(DIR, "tokenizer_config.json"), JSON.stringify({ tokenizer_class: "BertTokenizer", do_lower_case: true, model_max_length: MAXLEN,
    cls_token: "[CLS]", sep_token: "[SEP]", pad_token: "[PAD]", unk_token: "[UNK]", mask_token: "[MASK]" }, null, 1));
  const cats = data.categories;
  const vocabSize = Object.keys((tj as { model: { vocab: object } }).model.vocab).length;
  const config = {
    architectures: ["BertForSequenceClassification"], model_type: "bert", vocab_size: vocabSize, hidden_size: 128, num_hidden_layers: 4,
    num_attention_heads: 4, intermediate_size: 512, hidden_act: "gelu", hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1,
    max_position_embeddings: MAXLEN, type_vocab_size: 2, initializer_range: 0.02, layer_norm_eps: 1e-12, pad_token_id: 0,
    position_embedding_type: "absolute", problem_type: "single_label_classification",
    id2label: Object.fromEntries(cats.map((c, i) => [String(i), c])), label2id: Object.fromEntries(cats.map((c, i) => [c, i])),
  };
  const model = modelFromConfig(config as never, "BertForSequenceClassification");
  const tok = loadTokenizerFromDir(DIR);
  const enc = (t: string) => tok.encode(t, { maxLength: MAXLEN });
  const seqs = train.map((e) => enc(e.text)), labels = train.map((e) => e.label);
  log(`train: ${train.length} examples, vocab ${vocabSize}, mean length ${(seqs.reduce((n, s) => n + s.length, 0) / seqs.length).toFixed(1)}`);
  const m = model as unknown as Module;
  const optim = new AdamW(m.parameters(), { lr, weightDecay: 0.01 });
  const g = new Generator(0), steps = epochs * Math.ceil(train.length / bs), warm = Math.floor(steps / 10);
  let step = 0;
  const t0 = performance.now();
  for (let ep = 0; ep < epochs; ep++) {
    const order = [...train.keys()];
    for (let i = order.length - 1; i > 0; i--) { const j = g.int(i + 1); [order[i], order[j]] = [order[j], order[i]]; }
    m.train();
    let sum = 0, n = 0;
    for (let b = 0; b < order.length; b += bs) {
      const idx = order.slice(b, b + bs), T = Math.max(...idx.map((i) => seqs[i].length));
      const ids = new Int32Array(idx.length * T), mask = new Int32Array(idx.length * T);
      idx.forEach((i, r) => seqs[i].forEach((v, t) => { ids[r * T + t] = v; mask[r * T + t] = 1; }));
      optim.paramGroups[0].hp.lr = lr * (step < warm ? (step + 1) / warm : 0.5 * (1 + Math.cos(Math.PI * (step - warm) / (steps - warm))));
      const loss = tidy(() => {
        optim.zeroGrad();
        const l = crossEntropy(model.forward({ inputIds: Tensor.fromArray(ids, [idx.length, T]), attentionMask: Tensor.fromArray(mask, [idx.length, T]) }).logits!,
          Tensor.fromArray(Int32Array.from(idx, (i) => labels[i]), [idx.length]));
        l.backward();
        clipGradNorm(m.parameters(), 1);
        optim.step();
        return l.item();
      });
      sum += loss; n++; step++;
      if (step % 50 === 0) log(`  epoch ${ep + 1} step ${step}/${steps} loss ${(sum / n).toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    m.eval();
    await savePretrainedDir(model, DIR);
    writeFileSync(join(DIR, "test.tsv"), tsv(data.test, cats));
    writeFileSync(join(DIR, "train.tsv"), tsv(hashOrder(data.allTrain).slice(0, 256), cats));
    const acc = await accuracyOf(DIR);
    log(`epoch ${ep + 1}: loss ${(sum / n).toFixed(4)}, held-out accuracy ${acc.toFixed(4)}`);
    saveHF("train", { folder: DIR, examples: train.length, epochs: ep + 1, batchSize: bs, lr, vocab: vocabSize, config: { hidden: 128, layers: 4, heads: 4, intermediate: 512, maxLen: MAXLEN },
      accuracy: acc, evalExamples: data.test.length, seconds: (performance.now() - t0) / 1000, date: new Date().toISOString() });
  }
}

/** Held-out accuracy of a folder on its test.tsv (read back with fromPretrained, as `attnflow prune --eval` does). */
async function accuracyOf(dir: string, testDir = DIR): Promise<number> {
  const p = await loadHF(dir);
  const inputs = hfEvalInputs(p, join(testDir, "test.tsv"), EVAL);
  return hfEvalMetrics(p, inputs, tidy(() => hfEvalLogits(p, inputs))).accuracy;
}

// ---------- accuracy vs heads pruned ----------

async function accuracyPhase(): Promise<void> {
  const seeds = opt("seeds", 3);
  const base = await fromPretrainedDir(DIR);
  const H = headCounts(base.model as unknown as Module).reduce((n, c) => n + c.left, 0);
  const acc0 = await accuracyOf(DIR);
  log(`${DIR}: ${H} heads, unpruned accuracy ${acc0.toFixed(4)}`);
  const tmp = mkdtempSync(join(tmpdir(), "attnflow-prune-hf-"));
  const accuracy: Record<string, { fraction: number; pruned: number; accuracy: number; seeds?: number[] }[]> = {};
  const prunedSets: Record<string, Record<string, Record<number, number[]>>> = {}, importanceSeconds: Record<string, number> = {};
  try {
    for (const method of METHODS) {
      const runs = method === "random" ? seeds : 1;
      const cells = FRACTIONS.map((f) => ({ fraction: f, pruned: Math.round(f * H), accuracy: f === 0 ? acc0 : 0, seeds: method === "random" ? [] as number[] : undefined }));
      prunedSets[method] = {};
      for (let s = 0; s < runs; s++) {
        const t0 = performance.now();
        // the code path of `attnflow prune --model DIR --texts DIR/train.tsv --examples 64 --by METHOD`
        const scores: HeadScores = await hfImportance(base.model, base.tokenizer, join(DIR, "train.tsv"), method, IMPORTANCE, s, true);
        importanceSeconds[method] = (performance.now() - t0) / 1000;
        for (const c of cells) {
          if (c.fraction === 0) continue;
          const spec = headsToPrune(scores, c.pruned);
          const p = await fromPretrainedDir(DIR);
          pruneHeads(p.model as unknown as Module, spec);
          const out = join(tmp, `${method}-${s}-${c.fraction}`);
          await savePretrainedDir(p.model, out);   // written as HF's folder (config.json pruned_heads) and read back
          writeFileSync(join(out, "tokenizer.json"), readFileSync(join(DIR, "tokenizer.json")));
          writeFileSync(join(out, "tokenizer_config.json"), readFileSync(join(DIR, "tokenizer_config.json")));
          const a = await accuracyOf(out);
          if (c.seeds) c.seeds.push(a);
          c.accuracy += a / runs;
          if (s === 0) prunedSets[method][String(c.fraction)] = spec;
          log(`  ${method}${runs > 1 ? ` seed ${s}` : ""} ${Math.round(c.fraction * 100)}% (${c.pruned} heads): accuracy ${a.toFixed(4)}`);
        }
      }
      accuracy[method] = cells;
    }
  } finally { rmSync(tmp, { recursive: true, force: true }); }
  saveHF("accuracy", { model: DIR, label: "Hugging Face BERT folder (4 layers × 4 heads)", heads: H, evalExamples: EVAL,
    importanceExamples: IMPORTANCE, importanceSeconds, accuracy, prunedSets, date: new Date().toISOString() });
}

// ---------- forward time ----------

async function speedPhase(): Promise<void> {
  const reps = opt("reps", 41);
  const r = load().hf as { accuracy?: { prunedSets: Record<string, Record<string, Record<number, number[]>>> } } | undefined;
  if (!r?.accuracy) throw new Error(`${RESULTS} has no hf.accuracy part: run the accuracy phase first`);
  const B = 32, T = 64;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 2 : i % T === T - 1 ? 3 : 5 + ((i * 40503) % 2000)));
  const inputs = { inputIds: Tensor.fromArray(ids, [B, T]) };
  const fwd = (m: HFModel) => noGrad(() => tidy(() => { m.forward(inputs).logits!.dataSync(); }));
  // pruned and unpruned alternate run by run (A/B interleaved): both see the same machine load
  const timePair = (a: HFModel, b: HFModel) => {
    fwd(a); fwd(b); fwd(a); fwd(b);
    const ta: number[] = [], tb: number[] = [];
    for (let i = 0; i < reps; i++) {
      let s = performance.now(); fwd(a); ta.push(performance.now() - s);
      s = performance.now(); fwd(b); tb.push(performance.now() - s);
    }
    const med = (t: number[]) => t.sort((x, y) => x - y)[Math.floor(reps / 2)];
    return [med(ta), med(tb)];
  };
  const base = (await fromPretrainedDir(DIR)).model;
  (base as unknown as Module).eval();
  const rows: { model: string; fraction: number; heads: number; batch: number[]; ms: number; msBaseline: number; speedups: number[] }[] = [];
  const runs = opt("runs", 3), sets = r.accuracy.prunedSets, each: { fraction: number; ms: number; msBaseline: number }[][] = [];
  const load0 = loadAvg1m();
  const pruned = await Promise.all(FRACTIONS.map(async (f) => {
    const p = (await fromPretrainedDir(DIR)).model;
    p.eval();
    if (f > 0) pruneHeads(p as unknown as Module, sets.gradient[String(f)]);
    return p;
  }));
  // the whole sweep `runs` times: a load spike on the shared machine hits one run, the median over runs discards it
  for (let run = 0; run < runs; run++) {
    each.push(FRACTIONS.map((f, k) => { const [ms, msBaseline] = timePair(pruned[k], base); return { fraction: f, ms, msBaseline }; }));
    log(`run ${run + 1}: ${each[run].map((x) => `${Math.round(x.fraction * 100)}% ${x.ms.toFixed(1)}/${x.msBaseline.toFixed(1)} ms`).join(", ")}`);
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  FRACTIONS.forEach((f, k) => {
    const ms = median(each.map((e) => e[k].ms)), msBaseline = median(each.map((e) => e[k].msBaseline));
    rows.push({ model: DIR, fraction: f, heads: headCounts(pruned[k] as unknown as Module).reduce((n, c) => n + c.left, 0), batch: [B, T], ms, msBaseline,
      speedups: each.map((e) => +(e[k].msBaseline / e[k].ms).toFixed(3)) });
  });
  const mi = machineInfo(load0);
  saveHF("speed", { rows, date: new Date().toISOString(), cpu: `${mi.cpu} × ${mi.cores} (${mi.cpuFlags.join(" ")})`, backend: getBackend(), node: process.version,
    note: `median over ${runs} sweeps of the median of ${reps} forward passes (no grad), pruned and unpruned alternating pass by pass after 2 warm-ups each, under flock /tmp/attnflow-bench.lock; ` +
      `the machine (2 cores) was shared with other sessions (1-minute load ${mi.loadAvg!.start} at the start, ${mi.loadAvg!.end} at the end)` });
}

// ---------- Hugging Face's own from_pretrained on a pruned folder ----------

async function hfCheckPhase(): Promise<void> {
  const r = load().hf as { accuracy?: { prunedSets: Record<string, Record<string, Record<number, number[]>>> } } | undefined;
  if (!r?.accuracy) throw new Error(`${RESULTS} has no hf.accuracy part: run the accuracy phase first`);
  const spec = r.accuracy.prunedSets.flow["0.5"];
  const tmp = mkdtempSync(join(tmpdir(), "attnflow-prune-hfcheck-"));
  try {
    const p = await loadHF(DIR);
    pruneHeads(p.model as unknown as Module, spec);
    await savePretrainedDir(p.model, join(tmp, "model"));
    const inputs = hfEvalInputs(p, join(DIR, "test.tsv"), 32);
    const T = Math.max(...inputs.map((x) => x.input.ids.length));
    const ids = new Int32Array(inputs.length * T), mask = new Int32Array(inputs.length * T);
    inputs.forEach((x, b) => x.input.ids.forEach((v, t) => { ids[b * T + t] = v; mask[b * T + t] = 1; }));
    const logits = noGrad(() => p.model.forward({ inputIds: Tensor.fromArray(ids, [inputs.length, T]), attentionMask: Tensor.fromArray(mask, [inputs.length, T]) }).logits!);
    writeFileSync(join(tmp, "io.safetensors"), saveSafetensors(new Map([["input_ids", Tensor.fromArray(ids, [inputs.length, T])], ["attention_mask", Tensor.fromArray(mask, [inputs.length, T])], ["logits", logits]])));
    const out = execFileSync("/usr/bin/python3", ["scripts/hf-check-pruned.py", join(tmp, "model"), join(tmp, "io.safetensors")], { encoding: "utf8" });
    const res = JSON.parse(out.trim().split("\n").pop()!);
    log(`Hugging Face from_pretrained: pruned_heads ${JSON.stringify(res.pruned_heads)}, max |logits − attnflow's| ${res.max_abs_diff.toExponential(2)}`);
    if (JSON.stringify(res.pruned_heads) !== JSON.stringify(Object.fromEntries(Object.entries(prunedHeadsOf(p.model as unknown as Module)).map(([l, h]) => [l, [...h].sort((a, b) => a - b)])))) {
      throw new Error(`HF read pruned_heads ${JSON.stringify(res.pruned_heads)}, attnflow wrote ${JSON.stringify(prunedHeadsOf(p.model as unknown as Module))}`);
    }
    saveHF("hfCheck", { spec, rows: inputs.length, ...res, date: new Date().toISOString() });
  } finally { rmSync(tmp, { recursive: true, force: true }); }
}

const phase = argv[0];
if (phase === "train") await trainPhase();
else if (phase === "accuracy") await accuracyPhase();
else if (phase === "speed") await speedPhase();
else if (phase === "hf-check") await hfCheckPhase();
else { log("usage: node dist/scripts/prune-report-hf.js train|accuracy|speed|hf-check [options]"); process.exitCode = 2; }
