// The head-pruning report of docs/pruning.md: accuracy of the shipped classifier and ViT with 0, 10, 25, 50 and 75%
// of their attention heads pruned, heads chosen by gradient (Michel et al. 2019), flow, rollout and random importance
// (one-shot: scores measured once on the unpruned model, on clean training-split examples), and the forward time
// before/after pruning.
//   node dist/scripts/prune-report.js accuracy [--examples 64] [--limit-fortunes 400] [--limit-vit 1000] [--seeds 3]
//   node dist/scripts/prune-report.js finetune [--steps 100] [--fraction 0.5]   (accuracy after a short fine-tune)
//   flock /tmp/attnflow-bench.lock node dist/scripts/prune-report.js speed [--reps 7]
//   node dist/scripts/prune-report.js render        (docs/pruning-accuracy.svg and the tables in docs/pruning.md)
// Results accumulate in docs/pruning-results.json (each phase rewrites its own part).
import "../src/node.js";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { cpus } from "node:os";
import { loadCheckpoint } from "../src/node/checkpoint.js";
import { pruneAdapter, headImportance } from "../src/node/prune.js";
import { headsToPrune, type HeadImportanceMethod, type HeadScores } from "../src/explain/head-importance.js";
import { pruneHeads, headCounts } from "../src/nn/prune.js";
import { tidy } from "../src/scope.js";
import { noGrad } from "../src/autograd.js";
import { Tensor } from "../src/tensor.js";
import { getBackend } from "../src/backend/registry.js";
import type { Module } from "../src/nn/module.js";
import { renderPruneReport } from "../src/viz/prune-report.js";

const RESULTS = "docs/pruning-results.json", DOC = "docs/pruning.md", SVG = "docs/pruning-accuracy.svg", HTML = "docs/pruning-report.html";
const FRACTIONS = [0, 0.1, 0.25, 0.5, 0.75];
const METHODS: HeadImportanceMethod[] = ["gradient", "flow", "rollout", "random"];
const MODELS = [
  { name: "fortunes-classifier", path: "models/fortunes-classifier.safetensors", label: "fortunes classifier (4 layers × 4 heads)" },
  { name: "fashion-vit", path: "models/fashion-vit.safetensors", label: "Fashion-MNIST ViT (6 layers × 4 heads)" },
];
const argv = process.argv.slice(2);
const opt = (k: string, d: number) => (argv.includes(`--${k}`) ? Number(argv[argv.indexOf(`--${k}`) + 1]) : d);

interface Cell { fraction: number; pruned: number; accuracy: number; seeds?: number[] }
interface ModelResult {
  model: string; label: string; heads: number; evalExamples: number; importanceExamples: number;
  importanceSeconds: Record<string, number>; accuracy: Record<string, Cell[]>; prunedSets: Record<string, Record<string, Record<number, number[]>>>;
}
interface SpeedRow { model: string; fraction: number; heads: number; batch: number[]; ms: number; msBaseline: number; speedups?: number[] }
interface FinetuneRow { model: string; method: string; fraction: number; steps: number; batchSize: number; lr: number; pruned: number; tuned: number; unpruned: number; unprunedTuned: number; seconds: number }
/** The Hugging Face BERT row (scripts/prune-report-hf.ts). */
interface HFResults {
  train?: { examples: number; epochs: number; batchSize: number; lr: number; vocab: number; accuracy: number; evalExamples: number; seconds: number; config: Record<string, number> };
  accuracy?: ModelResult;
  speed?: { rows: SpeedRow[]; date: string; cpu: string; backend: string; node?: string; note: string };
  hfCheck?: { spec: Record<string, number[]>; rows: number; transformers: string; torch: string; pruned_heads: Record<string, number[]>; heads_left: number[]; max_abs_diff: number };
}
interface Results { hf?: HFResults; finetune?: { rows: FinetuneRow[]; date: string }; accuracy?: { models: ModelResult[]; date: string }; speed?: { rows: SpeedRow[]; date: string; cpu: string; backend: string; node?: string; note: string } }

const load = (): Results => (existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, "utf8")) : {});
const save = (r: Results) => writeFileSync(RESULTS, JSON.stringify(r, null, 1) + "\n");
const log = (s: string) => process.stderr.write(s + "\n");
const totalHeads = (m: Module) => headCounts(m).reduce((n, c) => n + c.left, 0);

async function accuracy(): Promise<void> {
  const examples = opt("examples", 64), seeds = opt("seeds", 3);
  const out: ModelResult[] = [];
  for (const M of MODELS) {
    const limit = opt(M.name === "fashion-vit" ? "limit-vit" : "limit-fortunes", M.name === "fashion-vit" ? 1000 : 400);
    const base = await loadCheckpoint(M.path);
    const data = base.task.loadData({ limitTest: limit });
    const H = totalHeads(base.model);
    const evaluate = (m: Module) => tidy(() => noGrad(() => { m.eval(); return base.task.evaluate(m, data, { limit }).accuracy; }));
    const r: ModelResult = { model: M.path, label: M.label, heads: H, evalExamples: limit, importanceExamples: examples, importanceSeconds: {}, accuracy: {}, prunedSets: {} };
    const acc0 = evaluate(base.model);
    log(`${M.name}: ${H} heads, unpruned accuracy ${acc0.toFixed(4)} on ${limit} test examples`);
    for (const method of METHODS) {
      const runs = method === "random" ? seeds : 1;
      const cells: Cell[] = FRACTIONS.map((f) => ({ fraction: f, pruned: Math.round(f * H), accuracy: f === 0 ? acc0 : 0, seeds: method === "random" ? [] : undefined }));
      r.prunedSets[method] = {};
      for (let s = 0; s < runs; s++) {
        const t0 = performance.now();
        const scores: HeadScores = headImportance(base.model, pruneAdapter(base.task, base.model, data, examples), method, { seed: s });
        r.importanceSeconds[method] = (performance.now() - t0) / 1000;
        for (const c of cells) {
          if (c.fraction === 0) continue;
          const spec = headsToPrune(scores, c.pruned);
          const ck = await loadCheckpoint(M.path);
          pruneHeads(ck.model, spec);
          const a = evaluate(ck.model);
          if (c.seeds) c.seeds.push(a);
          c.accuracy += a / runs;
          if (s === 0) r.prunedSets[method][String(c.fraction)] = spec;
          log(`  ${method}${runs > 1 ? ` seed ${s}` : ""} ${Math.round(c.fraction * 100)}% (${c.pruned} heads): accuracy ${a.toFixed(4)}`);
        }
      }
      r.accuracy[method] = cells;
    }
    out.push(r);
  }
  const res = load();
  res.accuracy = { models: out, date: new Date().toISOString() };
  save(res);
}

async function finetune(): Promise<void> {
  const steps = opt("steps", 100), fraction = opt("fraction", 0.5);
  const res = load();
  if (!res.accuracy) throw new Error(`${RESULTS} has no accuracy part: run the accuracy phase first (fine-tuning starts from its pruned sets)`);
  const rows: FinetuneRow[] = [];
  const { train } = await import("../src/node/train/trainer.js");
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "attnflow-prune-ft-"));
  try {
    for (const M of MODELS) {
      const mr = res.accuracy.models.find((m) => m.model === M.path)!;
      const limit = mr.evalExamples;
      const base = await loadCheckpoint(M.path);
      const data = base.task.loadData({ limitTest: limit });
      const evaluate = (m: Module) => tidy(() => noGrad(() => { m.eval(); return base.task.evaluate(m, data, { limit }).accuracy; }));
      const bs = base.task.defaults.batchSize, lr = base.task.defaults.lr / 10;
      const tune = async (m: Module) => {
        const t0 = performance.now();
        const r = await train(base.task, { out: join(dir, "ft.safetensors"), start: { model: m, config: base.config }, epochs: 1, batchSize: bs,
          limitTrain: steps * bs, limitTest: limit, lr, warmupSteps: Math.floor(steps / 10), seed: 0, quiet: true, log: () => {} });
        return { acc: evaluate(r.model), seconds: (performance.now() - t0) / 1000 };
      };
      // the unpruned model fine-tuned the same way: separates the effect of pruning from that of the extra training
      const unprunedTuned = (await tune((await loadCheckpoint(M.path)).model)).acc;
      for (const method of METHODS) {
        const cell = mr.accuracy[method].find((c) => c.fraction === fraction)!;
        const ck = await loadCheckpoint(M.path);
        pruneHeads(ck.model, mr.prunedSets[method][String(fraction)]);
        const pruned = evaluate(ck.model);
        const t = await tune(ck.model);
        rows.push({ model: M.path, method, fraction, steps, batchSize: bs, lr, pruned, tuned: t.acc, unpruned: mr.accuracy[method][0].accuracy, unprunedTuned, seconds: t.seconds });
        log(`${M.name} ${method}${method === "random" ? " (seed 0)" : ""} ${Math.round(fraction * 100)}% (${cell.pruned} heads): ${pruned.toFixed(4)} → fine-tuned ${t.acc.toFixed(4)} (${t.seconds.toFixed(0)} s); unpruned fine-tuned ${unprunedTuned.toFixed(4)}`);
      }
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
  res.finetune = { rows, date: new Date().toISOString() };
  save(res);
}

async function speed(): Promise<void> {
  const reps = opt("reps", 7);
  const rows: SpeedRow[] = [];
  const res = load();
  if (!res.accuracy) throw new Error(`${RESULTS} has no accuracy part: run the accuracy phase first (the speed phase times its gradient-pruned models)`);
  for (const M of MODELS) {
    const mr = res.accuracy.models.find((m) => m.model === M.path)!;
    // a fixed input: a batch of 32 sequences of 64 tokens / 64 images
    const input = M.name === "fashion-vit"
      ? Tensor.fromArray(Float32Array.from({ length: 64 * 28 * 28 }, (_, i) => ((i * 2654435761) >>> 24) / 255), [64, 28, 28])
      : Tensor.fromArray(Int32Array.from({ length: 32 * 64 }, (_, i) => (i % 64 === 0 ? 2 : 7 + ((i * 40503) % 1000))), [32, 64]);
    const time = (m: Module) => {
      const fwd = () => noGrad(() => tidy(() => { (m as unknown as { forward(x: Tensor): Tensor }).forward(input).dataSync(); }));
      fwd(); fwd();
      const t: number[] = [];
      for (let i = 0; i < reps; i++) { const s = performance.now(); fwd(); t.push(performance.now() - s); }
      return t.sort((a, b) => a - b)[Math.floor(reps / 2)];
    };
    const base = await loadCheckpoint(M.path);
    const b0 = time(base.model);
    for (const f of FRACTIONS) {
      const ck = await loadCheckpoint(M.path);
      if (f > 0) pruneHeads(ck.model, mr.prunedSets.gradient[String(f)]);
      // interleave with the unpruned model so both see the same machine load
      const ms = time(ck.model), msBaseline = f === 0 ? b0 : time(base.model);
      rows.push({ model: M.path, fraction: f, heads: totalHeads(ck.model), batch: input.shape, ms, msBaseline });
      log(`${M.name} ${Math.round(f * 100)}%: ${ms.toFixed(1)} ms (unpruned ${msBaseline.toFixed(1)} ms)`);
    }
  }
  res.speed = {
    rows, date: new Date().toISOString(), cpu: `${cpus()[0]?.model ?? "?"} × ${cpus().length}${isa()}`, backend: getBackend(), node: process.version,
    note: `median of the forward time (no grad) over ${reps} runs after 2 warm-ups, under flock /tmp/attnflow-bench.lock; the machine (2 cores) was shared with other sessions`,
  };
  save(res);
}

/** The vector ISA extensions of this CPU that the kernels use (Linux /proc/cpuinfo), e.g. " (AVX2, AVX-512, VNNI, AMX)". */
function isa(): string {
  let flags = "";
  try { flags = readFileSync("/proc/cpuinfo", "utf8"); } catch { return ""; }
  const has = (f: string) => new RegExp(`\\b${f}\\b`).test(flags);
  const names = [["avx2", "AVX2"], ["avx512f", "AVX-512"], ["avx512_vnni", "VNNI"], ["amx_tile", "AMX"]].filter(([f]) => has(f)).map(([, n]) => n);
  return names.length ? ` (${names.join(", ")})` : "";
}

function render(): void {
  const res = load();
  if (!res.accuracy) throw new Error(`${RESULTS} has no accuracy part`);
  const colors: Record<string, string> = { gradient: "#1f77b4", flow: "#d62728", rollout: "#2ca02c", random: "#7f7f7f" };
  const W = 360, Hh = 240, pad = { l: 48, r: 12, t: 28, b: 40 };
  const models = [...res.accuracy.models, ...(res.hf?.accuracy ? [res.hf.accuracy] : [])];
  const panels = models.map((m, k) => {
    const all = Object.values(m.accuracy).flatMap((c) => c.map((x) => x.accuracy));
    const lo = Math.max(0, Math.floor((Math.min(...all) - 0.02) * 20) / 20), hi = Math.min(1, Math.ceil((Math.max(...all) + 0.01) * 20) / 20);
    const x = (f: number) => pad.l + (f / 0.75) * (W - pad.l - pad.r), y = (a: number) => pad.t + (1 - (a - lo) / (hi - lo)) * (Hh - pad.t - pad.b);
    const ox = k * W;
    const g: string[] = [`<g transform="translate(${ox},0)">`, `<text x="${W / 2}" y="16" text-anchor="middle" font-size="12">${m.label}</text>`];
    for (let t = lo; t <= hi + 1e-9; t += (hi - lo) / 4) {
      g.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`, `<text x="${pad.l - 4}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" font-size="10">${t.toFixed(2)}</text>`);
    }
    for (const f of FRACTIONS) g.push(`<text x="${x(f).toFixed(1)}" y="${Hh - pad.b + 14}" text-anchor="middle" font-size="10">${Math.round(f * 100)}%</text>`);
    g.push(`<text x="${(pad.l + W - pad.r) / 2}" y="${Hh - 8}" text-anchor="middle" font-size="11">heads pruned (of ${m.heads})</text>`);
    if (k === 0) g.push(`<text transform="translate(12,${(pad.t + Hh - pad.b) / 2}) rotate(-90)" text-anchor="middle" font-size="11">test accuracy</text>`);
    for (const [meth, cells] of Object.entries(m.accuracy)) {
      g.push(`<polyline fill="none" stroke="${colors[meth]}" stroke-width="2"${meth === "random" ? ' stroke-dasharray="4 3"' : ""} points="${cells.map((c) => `${x(c.fraction).toFixed(1)},${y(c.accuracy).toFixed(1)}`).join(" ")}"/>`);
      for (const c of cells) g.push(`<circle cx="${x(c.fraction).toFixed(1)}" cy="${y(c.accuracy).toFixed(1)}" r="2.5" fill="${colors[meth]}"/>`);
    }
    g.push("</g>");
    return g.join("\n");
  });
  const legend = METHODS.map((m, i) => `<g transform="translate(${pad.l + i * 90},${Hh + 6})"><line x1="0" x2="18" y1="0" y2="0" stroke="${colors[m]}" stroke-width="2"${m === "random" ? ' stroke-dasharray="4 3"' : ""}/><text x="22" y="4" font-size="11">${m}</text></g>`).join("\n");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W * panels.length}" height="${Hh + 20}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${panels.join("\n")}\n${legend}\n</svg>\n`;
  writeFileSync(SVG, svg);

  const lines: string[] = [];
  for (const m of models) {
    if (m === res.hf?.accuracy && res.hf.train) {
      const t = res.hf.train;
      lines.push(`The Hugging Face folder \`${m.model}\` (\`scripts/prune-report-hf.ts train\`): BertForSequenceClassification, ${t.config.layers} layers, hidden ${t.config.hidden}, ` +
        `${t.config.heads} heads, intermediate ${t.config.intermediate}, WordPiece tokenizer.json of ${t.vocab} tokens from the training split; trained from HF's initialisation in attnflow ` +
        `on the fortunes topic task (${t.examples} training examples, ${t.epochs} epochs, batch ${t.batchSize}, AdamW lr ${t.lr}, ${Math.round(t.seconds / 60)} min on the shared machine), ` +
        `held-out accuracy ${t.accuracy.toFixed(3)} (8 classes). Each pruned model is written with savePretrained and read back with fromPretrained before it is scored.`, "");
    }
    lines.push(`**${m.label}** — test accuracy on ${m.evalExamples} held-out examples; importance from ${m.importanceExamples} training examples` +
      ` (random: mean of ${m.accuracy.random?.[1]?.seeds?.length ?? 1} seeds)`, "");
    lines.push(`| heads pruned | ${METHODS.join(" | ")} |`, `|---|${METHODS.map(() => "---:").join("|")}|`);
    FRACTIONS.forEach((f, i) => lines.push(`| ${Math.round(f * 100)}% (${m.accuracy.gradient[i].pruned}) | ${METHODS.map((meth) => m.accuracy[meth][i].accuracy.toFixed(3)).join(" | ")} |`));
    lines.push("", `Importance time (s): ${METHODS.map((meth) => `${meth} ${(m.importanceSeconds[meth] ?? 0).toFixed(1)}`).join(", ")}.`, "");
  }
  if (res.finetune) {
    const f = res.finetune.rows[0];
    lines.push(`**After a short fine-tune** (${Math.round(f.fraction * 100)}% of the heads pruned, then ${f.steps} steps of the task's training loop on the training split, ` +
      `the task's batch size and a tenth of its learning rate; random: seed 0 only). The unpruned model fine-tuned the same way is the reference.`, "");
    lines.push("| model | importance | batch, lr | pruned | pruned + fine-tuned | unpruned | unpruned + fine-tuned |", "|---|---|---|---:|---:|---:|---:|");
    for (const r of res.finetune.rows) lines.push(`| ${r.model.replace(/^models\/|\.safetensors$/g, "")} | ${r.method} | ${r.batchSize}, ${r.lr} | ${r.pruned.toFixed(3)} | ${r.tuned.toFixed(3)} | ${r.unpruned.toFixed(3)} | ${r.unprunedTuned.toFixed(3)} |`);
    lines.push("");
  }
  if (res.speed) {
    lines.push(`**Forward time** (gradient-pruned models; ${res.speed.cpu}, backend ${res.speed.backend}${res.speed.node ? `, Node ${res.speed.node}` : ""}; ${res.speed.note}; ${res.speed.date.slice(0, 10)})`, "");
    lines.push("| model | input | heads pruned | heads left | forward ms | unpruned ms (same run) | speed-up |", "|---|---|---:|---:|---:|---:|---:|");
    for (const r of res.speed.rows) {
      lines.push(`| ${r.model.replace(/^models\/|\.safetensors$/g, "")} | (${r.batch.join(", ")}) | ${Math.round(r.fraction * 100)}% | ${r.heads} | ${r.ms.toFixed(1)} | ${r.msBaseline.toFixed(1)} | ${(r.msBaseline / r.ms).toFixed(2)}× |`);
    }
    lines.push("");
  }
  if (res.hf?.speed) {
    const sp = res.hf.speed;
    lines.push(`**Forward time, Hugging Face BERT folder** (gradient-pruned; ${sp.cpu}, backend ${sp.backend}, Node ${sp.node}; ${sp.note}; ${sp.date.slice(0, 10)})`, "");
    lines.push("| input ids | heads pruned | heads left | forward ms | unpruned ms (same run) | speed-up | speed-up of each sweep |", "|---|---:|---:|---:|---:|---:|---|");
    for (const r of sp.rows) lines.push(`| (${r.batch.join(", ")}) | ${Math.round(r.fraction * 100)}% | ${r.heads} | ${r.ms.toFixed(1)} | ${r.msBaseline.toFixed(1)} | ${(r.msBaseline / r.ms).toFixed(2)}× | ${(r.speedups ?? []).map((x) => x.toFixed(2)).join(", ")} |`);
    lines.push("");
  }
  if (res.hf?.hfCheck) {
    const c = res.hf.hfCheck;
    lines.push(`**Read back by Hugging Face**: the folder pruned by flow at 50% (\`pruned_heads\` ${JSON.stringify(c.pruned_heads)}, heads left per layer ${c.heads_left.join(", ")}) ` +
      `loads with transformers ${c.transformers}'s own \`from_pretrained\` (\`scripts/hf-check-pruned.py\`), whose logits on ${c.rows} held-out lines are within ${c.max_abs_diff.toExponential(1)} of attnflow's.`, "");
  }
  writeFileSync(HTML, renderPruneReport(models.map((m) => {
    const sp = m === res.hf?.accuracy ? res.hf.speed : res.speed;
    return {
      label: m.label, heads: m.heads, metric: "accuracy", metricNote: `${m.evalExamples} held-out examples; importance from ${m.importanceExamples} training examples; random: mean of ${m.accuracy.random?.[1]?.seeds?.length ?? 1} seeds`,
      curves: Object.fromEntries(Object.entries(m.accuracy).map(([k, cells]) => [k, cells.map((c) => ({ fraction: c.fraction, pruned: c.pruned, value: c.accuracy }))])),
      speed: sp?.rows.filter((r) => r.model === m.model).map((r) => ({ fraction: r.fraction, heads: r.heads, ms: r.ms, msBaseline: r.msBaseline })),
      speedNote: sp ? `gradient-pruned models; ${sp.cpu}, backend ${sp.backend}; ${sp.note}` : undefined,
    };
  }), { title: "attnflow head pruning: accuracy vs heads pruned", notes: "Made by scripts/prune-report.ts render from docs/pruning-results.json (docs/pruning.md)." }));
  const doc = readFileSync(DOC, "utf8");
  const a = "<!-- prune-report:start -->", b = "<!-- prune-report:end -->";
  if (!doc.includes(a) || !doc.includes(b)) throw new Error(`${DOC} lacks the ${a} … ${b} markers`);
  writeFileSync(DOC, doc.slice(0, doc.indexOf(a) + a.length) + "\n" + lines.join("\n") + "\n" + doc.slice(doc.indexOf(b)));
  log(`wrote ${SVG}, ${HTML} and the tables of ${DOC}`);
}

const phase = argv[0];
if (phase === "accuracy") await accuracy();
else if (phase === "speed") await speed();
else if (phase === "finetune") await finetune();
else if (phase === "render") render();
else { log("usage: node dist/scripts/prune-report.js accuracy|finetune|speed|render [options]"); process.exitCode = 2; }
