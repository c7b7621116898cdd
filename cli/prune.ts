// `attnflow prune --model in --out out --heads 25% --by gradient|flow|rollout|random [--finetune-steps N]`: remove the
// least important attention heads physically (nn.pruneHeads: the projections shrink) and write a checkpoint that
// records them (metadata pruned_heads), or for a Hugging Face folder a folder whose config.json has HF's
// pruned_heads (HF's from_pretrained prunes the same heads). --spec names the heads instead ("0:1,2;3:0").
// Importance (src/explain/head-importance.ts) is measured on clean examples of the training split (checkpoints) or on
// the lines of --texts (Hugging Face folders); --eval reports the held-out metrics before and after.
import { copyFile, mkdir, readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadCheckpoint, serializeCheckpoint } from "../src/node/checkpoint.js";
import { writeFileAtomic } from "../src/node/safetensors-file.js";
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import { savePretrained } from "../src/hf/pretrained.js";
import type { HFModel } from "../src/hf/types.js";
import type { HFTokenizer } from "../src/hf/tokenizer.js";
import type { HFLoaded } from "../src/hf/explain-target.js";
import { pruneHeads, prunedHeadsOf, headCounts, checkPruneSpec } from "../src/nn/prune.js";
import {
  HEAD_IMPORTANCE_METHODS, attributionHeadImportance, gradientHeadImportance, headsToPrune, parseHeadCount, randomHeadImportance,
  type HeadImportanceMethod, type HeadScores,
} from "../src/explain/head-importance.js";
import { pruneAdapter, headImportance } from "../src/node/prune.js";
import { ProgressBar } from "../src/node/progress.js";
import { train } from "../src/node/train/trainer.js";
import { fmtMetric } from "../src/node/train/trainer.js";
import { tidy } from "../src/scope.js";
import { noGrad } from "../src/autograd.js";
import { Tensor } from "../src/tensor.js";
import * as F from "../src/functional.js";
import { Generator } from "../src/random.js";
import type { Module } from "../src/nn/module.js";
import type { Args } from "./args.js";
import { isHFFolder, loadHF } from "./hf.js";
import { hfEvalInputs, hfEvalLogits, hfEvalMetrics } from "./hf-quantize-eval.js";
import { renderPruneReport, type PrunePoint } from "../src/viz/prune-report.js";
import { writeFile } from "node:fs/promises";

/** The fractions of heads the --html report's curve evaluates (with the requested one added). */
export const CURVE_FRACTIONS = [0, 0.1, 0.25, 0.5, 0.75];

function str(flags: Args["flags"], name: string): string | undefined {
  const v = flags[name];
  if (v === true) throw new Error(`--${name} needs a value`);
  return typeof v === "string" ? v : undefined;
}
function int(flags: Args["flags"], name: string, def: number): number {
  const v = flags[name];
  return v === undefined ? def : Number(v);
}

/** "0:1,2;3:0" → { 0: [1, 2], 3: [0] }. */
export function parsePruneSpec(s: string): Record<number, number[]> {
  const out: Record<number, number[]> = {};
  for (const part of s.split(/[;\s]+/).filter(Boolean)) {
    const m = /^(\d+):(\d+(?:,\d+)*)$/.exec(part);
    if (!m) throw new Error(`--spec: "${part}" is not LAYER:HEAD[,HEAD...] (e.g. --spec "0:1,2;3:0")`);
    (out[Number(m[1])] ??= []).push(...m[2].split(",").map(Number));
  }
  return out;
}

const total = (m: Module) => headCounts(m).reduce((n, c) => n + c.left, 0);
const describe = (spec: Record<number, number[]>) => Object.entries(spec).map(([l, hs]) => `${l}:${hs.join(",")}`).join(" ") || "(none)";

/** Importance on a Hugging Face BERT folder: one text per line of --texts, "LABEL<TAB>text" lines carry a label. */
export async function hfImportance(model: HFModel, tokenizer: unknown, textsPath: string | undefined, method: HeadImportanceMethod, examples: number, seed: number, quiet: boolean): Promise<HeadScores> {
  const m = model as unknown as Module;
  if (method === "random") { const g = new Generator(seed); return randomHeadImportance(m, () => g.random()); }
  if (!textsPath) throw new Error(`prune: --by ${method} on a Hugging Face folder needs --texts FILE (one text per line, optionally "LABEL<TAB>text"), or name the heads with --spec`);
  const tok = tokenizer as { encode(t: string, o?: { maxLength?: number }): number[] } | null;
  if (!tok) throw new Error("prune: --texts needs the folder's tokenizer (tokenizer.json or vocab.txt)");
  const lines = (await readFile(textsPath, "utf8")).split("\n").map((l) => l.trim()).filter(Boolean).slice(0, examples);
  if (!lines.length) throw new Error(`prune: ${textsPath} has no text lines`);
  const labels = (model.config.label2id ?? {}) as Record<string, number>;
  // texts longer than the model reads are cut to its positions (as predict and --eval cut them)
  const maxLength = typeof model.config.max_position_embeddings === "number" ? model.config.max_position_embeddings : undefined;
  const items = lines.map((l) => {
    const tab = l.indexOf("\t");
    const lab = tab > 0 ? l.slice(0, tab) : null, text = tab > 0 ? l.slice(tab + 1) : l;
    const y = lab === null ? null : /^\d+$/.test(lab) ? Number(lab) : labels[lab];
    if (lab !== null && y === undefined) throw new Error(`prune: ${textsPath}: label "${lab}" is neither a class index nor in config.json's label2id`);
    return { ids: tok.encode(text, { maxLength }), y };
  });
  m.eval();
  const logitsOf = (ids: number[]) => model.forward({ inputIds: Tensor.fromArray(Int32Array.from(ids), [1, ids.length]) }).logits!;
  const bar = new ProgressBar({ total: items.length, label: `importance (${method})`, unit: "text", quiet });
  const onProgress = (d: number) => bar.update(d);
  let s: HeadScores;
  if (method === "gradient") {
    if (model.architecture !== "BertForSequenceClassification") throw new Error(`prune: --by gradient needs a classifier (BertForSequenceClassification), not ${model.architecture}; use --by rollout or flow`);
    // no label: the model's own prediction is the target (the loss of its decision)
    s = gradientHeadImportance(m, (i) => {
      const z = logitsOf(items[i].ids);
      const y = items[i].y ?? noGrad(() => { const d = z.dataSync(); let a = 0; for (let c = 1; c < d.length; c++) if (d[c] > d[a]) a = c; return a; });
      return F.crossEntropy(z, Tensor.fromArray(Int32Array.of(y), [1]));
    }, items.length, { onProgress });
  } else {
    s = attributionHeadImportance(m, method, (i) => logitsOf(items[i].ids), items.length, { query: 0, onProgress });   // [CLS] feeds the pooler
  }
  bar.finish();
  return s;
}

/** The source's notes (which describe the unpruned model) and what was pruned. */
function pruneNote(notes: string | undefined, spec: Record<number, number[]>, by: string): string {
  return `${notes ? `Before pruning: ${notes}\n` : ""}Pruned with attnflow prune (by ${by}): heads (layer:heads) ${describe(spec)}.`;
}

export async function pruneCommand(a: Args): Promise<number> {
  const src = str(a.flags, "model") ?? a._[1], out = str(a.flags, "out");
  if (!src || !out) throw new Error("prune: --model <checkpoint or HF folder> and --out <file or folder> are required");
  if (resolve(src) === resolve(out)) throw new Error(`prune: --out must differ from --model (${src})`);
  const specText = str(a.flags, "spec"), headsText = str(a.flags, "heads");
  if (!specText && !headsText) throw new Error("prune: give --heads (25%, 0.25 or a count) with --by, or the heads themselves with --spec \"0:1,2;3:0\"");
  if (specText && headsText) throw new Error("prune: --spec and --heads exclude each other");
  const by = (str(a.flags, "by") ?? "gradient") as HeadImportanceMethod;
  if (!HEAD_IMPORTANCE_METHODS.includes(by)) throw new Error(`prune: --by must be one of ${HEAD_IMPORTANCE_METHODS.join(", ")}, got "${by}"`);
  const examples = int(a.flags, "examples", 64), seed = int(a.flags, "seed", 0), json = a.flags.json === true, quiet = json || a.flags.quiet === true;
  const steps = int(a.flags, "finetune-steps", 0);
  const log = (s: string) => { if (!json) console.log(s); };

  if (isHFFolder(src)) {
    if (steps > 0) throw new Error("prune: --finetune-steps fine-tunes attnflow checkpoints (tasks with training data); a pruned Hugging Face folder fine-tunes in code: fromPretrained(out), model.train(), an optimizer (AdamW), then savePretrained — the written folder keeps its pruned_heads");
    const p = await fromPretrainedDir(src);
    const m = p.model as unknown as Module;
    const before = headCounts(m);
    const html = str(a.flags, "html");
    // --eval / --html: held-out lines of --data ("LABEL<TAB>text" for classifiers) through the model before and after
    const limit = a.flags.limit === undefined ? 400 : Number(a.flags.limit);
    let inputs: ReturnType<typeof hfEvalInputs> | undefined;   // tokenized once, by the source folder's tokenizer
    const evalOf = async (dir: string, mod?: HFModel) => {
      const l: HFLoaded = mod ? { model: mod, config: p.config, tokenizer: p.tokenizer as HFTokenizer | null, generationConfig: p.generationConfig, dir } : await loadHF(dir);
      l.model.eval();
      inputs ??= hfEvalInputs(l, str(a.flags, "data"), limit);
      return hfEvalMetrics(l, inputs, tidy(() => hfEvalLogits(l, inputs!)));
    };
    const evalBefore = a.flags.eval || html ? await evalOf(src) : undefined;
    let spec: Record<number, number[]>, scores: HeadScores | null = null;
    if (specText) spec = Object.fromEntries(checkPruneSpec(m, parsePruneSpec(specText), "prune --spec"));
    else {
      scores = await hfImportance(p.model, p.tokenizer, str(a.flags, "texts"), by, examples, seed, quiet);
      spec = headsToPrune(scores, parseHeadCount(headsText!, total(m)));
    }
    pruneHeads(m, spec);
    await mkdir(out, { recursive: true });
    for (const f of await readdir(src, { withFileTypes: true })) {
      if (!f.isFile() || f.name === "config.json" || /^model.*\.safetensors(\.index\.json)?$/.test(f.name) || /^pytorch_model/.test(f.name)) continue;
      await copyFile(join(src, f.name), join(out, f.name));
    }
    for (const [name, bytes] of savePretrained(p.model)) await writeFileAtomic(join(out, name), bytes);
    // the written folder read back, as a user's next command reads it
    const evalAfter = evalBefore ? await evalOf(out) : undefined;
    const headsBefore = before.reduce((n, c) => n + c.left, 0);
    const res = { model: src, out, by: specText ? "spec" : by, pruned: spec, prunedHeads: prunedHeadsOf(m), heads: { before: headsBefore, after: total(m) }, scores: scores?.scores.map((v) => [...v]), before: evalBefore, after: evalAfter };
    if (html) {
      const metric = metricName(evalBefore!, src);
      const curve = await pruneCurve(headsBefore, total(m), scores, evalBefore![metric], evalAfter![metric], async (sp) => {
        const q = await fromPretrainedDir(src);
        pruneHeads(q.model as unknown as Module, sp);
        return (await evalOf(src, q.model))[metric];
      }, quiet);
      await writeHtml(html, src, metric, `${evalBefore!.labelled ?? limit} held-out lines of ${str(a.flags, "data") ?? "the fortunes"}`, headsBefore, by, specText, curve, scores, res.prunedHeads);
      log(`wrote ${html}`);
    }
    if (json) console.log(JSON.stringify(res));
    else {
      log(`pruned ${describe(spec)} → ${res.heads.after} of ${res.heads.before} heads left; wrote ${out}/ (config.json pruned_heads ${JSON.stringify(res.prunedHeads)})`);
      if (evalBefore && evalAfter) for (const k of Object.keys(evalBefore).filter((x) => x !== "labelled")) log(`  ${k}: ${fmtMetric(evalBefore[k])} → ${fmtMetric(evalAfter[k])}`);
    }
    return 0;
  }

  const ck = await loadCheckpoint(src);
  // the generative tasks decode with key/value caches sized by the configured head count
  if (!["fortunes-classifier", "fashion-vit"].includes(ck.task.name)) throw new Error(`prune: ${src} is a "${ck.task.name}" checkpoint; attnflow prune supports the fortunes-classifier and fashion-vit tasks and Hugging Face BERT folders`);
  if (ck.raw.quantization) throw new Error(`prune: ${src} is ${ck.raw.quantization.method}; prune the float checkpoint, then quantize`);
  const limit = a.flags.limit === undefined ? undefined : Number(a.flags.limit);
  // the task's data only when something reads it (importance, --eval): --spec alone needs none
  let loaded: unknown;
  const data = () => (loaded ??= ck.task.loadData({ data: str(a.flags, "data"), limitTest: limit }));
  const evaluate = () => tidy(() => noGrad(() => { ck.model.eval(); return ck.task.evaluate(ck.model, data(), { limit }); }));
  const html = str(a.flags, "html");
  const before = a.flags.eval || html ? evaluate() : undefined;
  const headsBefore = total(ck.model);
  let spec: Record<number, number[]>, scores: HeadScores | null = null;
  if (specText) spec = Object.fromEntries(checkPruneSpec(ck.model, parsePruneSpec(specText), "prune --spec"));
  else {
    const adapter = pruneAdapter(ck.task, ck.model, data(), examples);
    const bar = new ProgressBar({ total: by === "gradient" ? Math.ceil(adapter.n / 16) : adapter.n, label: `importance (${by})`, unit: by === "gradient" ? "batch" : "example", quiet });
    scores = headImportance(ck.model, adapter, by, { seed, onProgress: (d) => bar.update(d) });
    bar.finish();
    spec = headsToPrune(scores, parseHeadCount(headsText!, headsBefore));
  }
  pruneHeads(ck.model, spec);
  log(`pruned ${describe(spec)} (by ${specText ? "--spec" : by}) → ${total(ck.model)} of ${headsBefore} heads left`);
  const pruned = before ? evaluate() : undefined;
  if (html) {
    const metric = metricName(before!, src);
    const curve = await pruneCurve(headsBefore, total(ck.model), scores, before![metric], pruned![metric], async (sp) => {
      const c = await loadCheckpoint(src);
      pruneHeads(c.model, sp);
      return tidy(() => noGrad(() => { c.model.eval(); return c.task.evaluate(c.model, data(), { limit }); }))[metric];
    }, quiet);
    await writeHtml(html, src, metric, `the ${ck.task.name} task's held-out split${limit !== undefined ? ` (at most ${limit} examples)` : ""}`, headsBefore, by, specText, curve, scores, prunedHeadsOf(ck.model));
    log(`wrote ${html}`);
  }
  let tuned: Record<string, number> | undefined;
  if (steps > 0) {
    // a short fine-tune with the task's training loop (resumable: `attnflow train <task> --resume OUT`)
    const d = ck.task.defaults, bs = int(a.flags, "batch-size", d.batchSize);
    const r = await train(ck.task, {
      out, start: { model: ck.model, config: ck.config }, epochs: 1, batchSize: bs, limitTrain: steps * bs, limitTest: limit,
      lr: a.flags.lr !== undefined ? Number(a.flags.lr) : d.lr / 10, warmupSteps: Math.min(d.warmupSteps, Math.floor(steps / 10)), seed, quiet,
      data: str(a.flags, "data"), log: json ? () => {} : undefined,
    });
    tuned = r.metrics ?? undefined;
    if (r.interrupted) { log(`fine-tuning stopped; continue with: attnflow train ${ck.task.name} --resume ${out}`); return 130; }
  } else {
    const bytes = serializeCheckpoint({
      task: ck.task.name, config: ck.config, model: ck.model, metrics: pruned, notes: pruneNote(ck.meta.notes, spec, specText ? "--spec" : by),
      history: ck.raw.trainer ? { options: ck.raw.trainer.options, seed: ck.raw.trainer.seed, steps: ck.raw.trainer.globalStep } : ck.raw.history,
    });
    await writeFileAtomic(out, bytes);
  }
  const res = { task: ck.task.name, model: src, out, by: specText ? "spec" : by, pruned: spec, prunedHeads: prunedHeadsOf(ck.model),
    heads: { before: headsBefore, after: total(ck.model) }, scores: scores?.scores.map((v) => [...v]), before, after: pruned, finetuned: tuned };
  if (json) { console.log(JSON.stringify(res)); return 0; }
  log(`wrote ${out}`);
  if (before && pruned) {
    const keys = Object.keys(before).filter((k) => !k.startsWith("acc_") && !k.startsWith("baseline"));
    const w = Math.max(...keys.map((k) => k.length));
    log(`  ${"metric".padEnd(w)}  before      pruned${tuned ? "      fine-tuned" : ""}`);
    for (const k of keys) log(`  ${k.padEnd(w)}  ${fmtMetric(before[k]).padEnd(10)}  ${fmtMetric(pruned[k]).padEnd(10)}${tuned ? `  ${fmtMetric(tuned[k])}` : ""}`);
  }
  return 0;
}

/** The metric the --html curve plots: accuracy when the evaluation has it, else the first number. */
function metricName(m: Record<string, number>, src: string): string {
  if ("accuracy" in m) return "accuracy";
  const k = Object.keys(m).find((x) => Number.isFinite(m[x]));
  if (!k) throw new Error(`prune --html: the evaluation of ${src} gave no metric (a classifier folder needs labelled --data lines, "LABEL<TAB>text")`);
  return k;
}

/**
 * The metric at CURVE_FRACTIONS of the heads (and the requested count) pruned by the same scores, each from a fresh
 * copy of the model; with --spec only the unpruned and the pruned point.
 */
async function pruneCurve(H: number, left: number, scores: HeadScores | null, v0: number, v1: number,
  at: (spec: Record<number, number[]>) => Promise<number>, quiet: boolean): Promise<PrunePoint[]> {
  const done = H - left;
  const pts: PrunePoint[] = [{ fraction: 0, pruned: 0, value: v0 }, { fraction: done / H, pruned: done, value: v1 }];
  if (scores) {
    const most = scores.scores.reduce((n, v) => n + Math.max(0, v.length - 1), 0);   // a layer keeps one head
    const counts = [...new Set(CURVE_FRACTIONS.map((f) => Math.round(f * H)))].filter((n) => n > 0 && n !== done && n <= most);
    const bar = new ProgressBar({ total: counts.length, label: "curve", unit: "point", quiet });
    for (const n of counts) {
      const sp = headsToPrune(scores, n);
      pts.push({ fraction: n / H, pruned: n, value: await at(sp) });
      bar.update(1);
    }
    bar.finish();
  }
  return pts.sort((a, b) => a.fraction - b.fraction);
}

async function writeHtml(file: string, src: string, metric: string, note: string, H: number, by: string, specText: string | undefined,
  curve: PrunePoint[], scores: HeadScores | null, pruned: Record<string, number[]>): Promise<void> {
  const name = specText ? "spec" : by;
  await writeFile(file, renderPruneReport([{
    label: src, heads: H, metric, metricNote: note, curves: { [name]: curve }, pruned,
    scores: scores ? { method: by, values: scores.scores.map((v) => [...v]) } : undefined,
  }], { title: `attnflow prune — ${src}`, notes: `Heads pruned by ${specText ? `--spec "${specText}"` : `${by} importance (one-shot ranking over all layers)`}.` }));
}
