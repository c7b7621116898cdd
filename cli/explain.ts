// `attnflow explain`: explain one input of a trained model (checkpoint) with one or more methods; terminal bars,
// --json (every matrix and score) and --html (self-contained report).
//
//   attnflow explain --model <ckpt> (--text "..." | --image <file> | --input 3,14,15) [--method rollout|raw|flow|
//     grad|blankout|inputgrad|a,b|all] [--layer N] [--head N] [--target <class|token|index>] [--json [out.json]]
//     [--html report.html] [--no-color] [--flow-matrices all|layer|none]
import { explanationDiagnostics, unreliableWarnings } from "../src/explain/faithfulness.js";
import { existsSync, writeFileSync } from "node:fs";
import type { Module } from "../src/nn/module.js";
import type { ExplainInput, ModelConfig, Task, Truncation } from "../src/tasks/task.js";
import { type Explanation, type ExplainMethod, type ExplainRunOptions, type FlowRowsFn, type RolloutMethodOptions, flowRowsLocal, parseMethods, runExplanation } from "../src/explain/explain-run.js";
import type { MatrixStack } from "../src/explain/attention-stack.js";
import { FlowWorkerPool, defaultFlowWorkers } from "../src/node/flow-workers.js";
import { ProgressBar } from "../src/node/progress.js";
import { barChart, heatmap, imageOverlay, patchGrid, tokenStrip } from "../src/viz/terminal.js";
import { renderHtmlReport } from "../src/viz/html-report.js";
import { explanationViews, type AttentionViews } from "../src/explain/views.js";
import { hfExplainTarget, isHFFolder, kindOf, loadHF, occlusionToken } from "./hf.js";

export interface CliArgs { _: string[]; flags: Record<string, string | boolean> }
export interface LoadedCheckpoint { task: Task; model: Module; config: ModelConfig; meta: Record<string, unknown> }
export type CheckpointLoader = (path: string) => Promise<LoadedCheckpoint>;
/** Test hooks: checkpoint loader and output sinks (default: src/node/checkpoint.ts, process.stdout / stderr). */
export interface CliIo { load?: CheckpointLoader; out?: (s: string) => void; err?: (s: string) => void; color?: boolean }

export const EXPLAIN_USAGE = `usage: attnflow explain --model <checkpoint> (--text "<sentence>" | --image <file> | --input <id,id,...>)
         [--method rollout|raw|flow|grad|blankout|inputgrad (comma list or all; default rollout)]
         [--layer N (0-based, -1 = last)] [--head N (raw attention; default head mean)]
         [--target <class|token|index>] [--json [out.json]] [--html report.html] [--no-color]
         [--flow-matrices all|layer|none (full T x T flow matrices in --json/--html; default by cost)]
         [--head-fusion mean|max|min] [--discard-ratio X (0 <= X < 1)] [--start-layer N] (rollout only)
       --model also takes a Hugging Face folder (config.json, model.safetensors, tokenizer.json): --text, --image or
         --input-ids 1,2,3; encoder-decoders: --target K explains the K-th generated token (--max-tokens N generated)`;

/** A usage error: reported with the usage text and exit code 2. */
import { UsageError } from "./args.js";
export { UsageError };   // one class: a usage mistake anywhere exits with code 2

/** The lead's checkpoint loader (src/node/checkpoint.ts), imported lazily so that this file builds without it. */
export async function defaultLoadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const spec = "../src/node/checkpoint.js";
  let mod: { loadCheckpoint?: CheckpointLoader };
  try {
    mod = await import(spec) as { loadCheckpoint?: CheckpointLoader };
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_MODULE_NOT_FOUND") throw new Error("checkpoint loading is not available in this build (src/node/checkpoint.ts is missing)");
    throw e;
  }
  if (typeof mod.loadCheckpoint !== "function") throw new Error("src/node/checkpoint.ts does not export loadCheckpoint");
  return mod.loadCheckpoint(path);
}

export function checkFlags(flags: Record<string, string | boolean>, known: readonly string[], cmd: string): void {
  const bad = Object.keys(flags).filter((k) => !known.includes(k));
  if (bad.length) throw new UsageError(`unknown option${bad.length > 1 ? "s" : ""} ${bad.map((b) => `--${b}`).join(", ")} for ${cmd}`);
}

export function stringFlag(flags: Record<string, string | boolean>, name: string, what: string): string | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} needs ${what}`);
  return v;
}

export function intFlag(flags: Record<string, string | boolean>, name: string, what: string): number | undefined {
  const v = stringFlag(flags, name, what);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new UsageError(`--${name} must be ${what}, got "${v}"`);
  return Number(v);
}

/** --text / --image / --input → ExplainInput (exactly one). */
export function parseExplainInput(flags: Record<string, string | boolean>): ExplainInput {
  const given = ["text", "image", "input"].filter((k) => flags[k] !== undefined);
  if (given.length === 0) throw new UsageError('missing input: give --text "<sentence>", --image <file> or --input <id,id,...>');
  if (given.length > 1) throw new UsageError(`give only one input, got ${given.map((g) => `--${g}`).join(" and ")}`);
  if (flags.text !== undefined) {
    const t = flags.text;
    if (typeof t !== "string" || t.trim() === "") throw new UsageError("--text needs a non-empty sentence");
    return { text: t };
  }
  if (flags.image !== undefined) {
    const f = stringFlag(flags, "image", "an image file");
    // a dataset reference such as test:17 is the task's to resolve; anything else must be a file
    if (!/^[a-z]+:\d+$/i.test(f!) && !existsSync(f!)) throw new UsageError(`--image: no such file ${f}`);
    return { image: f };
  }
  const s = stringFlag(flags, "input", "comma-separated token ids")!;
  const parts = s.split(",").map((x) => x.trim());
  const bad = parts.find((p) => !/^\d+$/.test(p));
  if (bad !== undefined) throw new UsageError(`--input must be comma-separated non-negative integer token ids, got "${bad}" in "${s}"`);
  return { ids: parts.map(Number) };
}

export async function loadModel(path: string | undefined, io: CliIo): Promise<LoadedCheckpoint> {
  if (path === undefined) throw new UsageError("missing --model <checkpoint>");
  if (!existsSync(path)) throw new Error(`bad checkpoint: no such file ${path}`);
  try {
    const ck = await (io.load ?? defaultLoadCheckpoint)(path);
    if (!ck || typeof ck !== "object" || !ck.task || !ck.model) throw new Error("the loader returned no task/model");
    ck.model.eval();
    return ck;
  } catch (e) {
    throw new Error(`bad checkpoint ${path}: ${(e as Error).message}`);
  }
}

/** Flow rows on worker threads when the work is large (the pool is started per call and closed after). */
export function nodeFlowRows(workers = defaultFlowWorkers()): FlowRowsFn {
  return async (res: MatrixStack, rows, onProgress) => {
    const T = res.tokens, work = rows.length * T * T * res.layers;
    if (workers < 2 || work < 2e6) return flowRowsLocal(res, rows, onProgress);
    const pool = new FlowWorkerPool(workers);
    try { return await pool.flowRows(res, rows, "auto", onProgress); } finally { await pool.close(); }
  };
}

/** runExplanation with its out-of-range --layer / --head errors turned into usage errors. */
async function explainOrUsage(run: () => Promise<Explanation>): Promise<Explanation> {
  try { return await run(); } catch (x) {
    const msg = (x as Error).message;
    if (/^(layer|head|start-layer) .* out of range/.test(msg)) throw new UsageError(`--${msg}`);
    if (/^layer \d+ is below start-layer/.test(msg)) throw new UsageError(`--${msg.replace("start-layer", "--start-layer")}`);
    throw x;
  }
}

/** The input of an HF folder as given (checked when the model and its tokenizer are loaded). */
function hfInputOf(f: Record<string, string | boolean>): ExplainInput {
  const given = ["text", "image", "input", "input-ids"].filter((k) => f[k] !== undefined);
  if (given.length === 0) throw new UsageError('missing input: give --text "<sentence>", --image <file> or --input-ids <id,id,...>');
  if (given.length > 1) throw new UsageError(`give only one input, got ${given.map((g) => `--${g}`).join(" and ")}`);
  const k = given[0], v = f[k];
  if (typeof v !== "string" || v.trim() === "") throw new UsageError(`--${k} needs a value`);
  return k === "text" ? { text: v } : k === "image" ? { image: v } : { ids: v.split(",").map((x) => Number(x.trim())) };
}

const TITLES: Record<ExplainMethod, string> = {
  raw: "raw attention", rollout: "attention rollout", flow: "attention flow", grad: "gradient-weighted rollout (Chefer et al.)",
  blankout: "blank-out: score drop when the token is occluded", inputgrad: "input × gradient |Σ x·∂score/∂x|",
};

/** Whitespace tokens (characters of a char-level model) made visible for labels. */
function visible(t: string): string {
  return t.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥") || "∅";
}

/** One line saying that (and how) an input was cut to the model's maximum positions. */
export function truncationNote(t: Truncation): string {
  return `WARNING: input truncated — ${t.total} tokens, the model reads at most ${t.kept}: ${t.dropped} dropped from the ${t.from} ` +
    `(${t.from === "end" ? "only the beginning" : "only the latest part"} is explained)`;
}

/** The rollout options that differ from the defaults, for the section title ("" when none). */
function rolloutNote(e: Explanation): string {
  const o = e.methods.rollout?.options;
  if (!o) return "";
  const parts = [o.headFusion !== "mean" ? `head ${o.headFusion}` : "", o.discardRatio ? `discard ${o.discardRatio}` : "", o.startLayer ? `from layer ${o.startLayer}` : ""].filter(Boolean);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

/** Terminal view of an explanation: header, then per method bars over tokens (or a patch grid for images). */
export function renderExplanationText(e: Explanation, o: { color?: boolean; width?: number } = {}): string {
  const color = !!o.color, special = new Set(e.special);
  const labels = e.tokens.map(visible);
  const chars = e.tokens.every((t) => [...t].length <= 1); // character-level: the strip joins them as text
  const keep = e.tokens.map((_, i) => i).filter((i) => !special.has(i));
  const q = e.query === "mean" ? "mean over all non-special rows" : e.query === "readout" ? "rows weighted by the target's readout (cross-attention)"
    : `${JSON.stringify(e.tokens[e.query])} (position ${e.query})`;
  const lines = [
    ...(e.truncation ? [truncationNote(e.truncation)] : []),
    `target: ${e.target.label} (index ${e.target.index})   score ${e.target.score.toPrecision(5)}`,
    `positions: ${e.tokens.length}${e.special.length ? ` (special: ${e.special.join(", ")})` : ""}   explained row: ${q}`,
    `attention: ${e.layers} layer${e.layers === 1 ? "" : "s"} x ${e.heads} head${e.heads === 1 ? "" : "s"}${e.causal ? " (causal)" : ""}; ` +
      `explained layer ${e.layer}${e.head === null ? ", head mean" : `, head ${e.head}`}`,
    ...unreliableWarnings(explanationDiagnostics(e), e.layer).map((w) => `WARNING: ${w}`),
  ];
  for (const m of Object.keys(e.methods) as ExplainMethod[]) {
    const imp = e.methods[m]!.importance;
    lines.push("", `── ${TITLES[m]}${m === "rollout" ? rolloutNote(e) : ""} ──`);
    if (e.image) {
      const im = e.image, v = imp.slice(im.prefix);
      lines.push(color ? imageOverlay(im, v, { color }) : patchGrid(im.grid, v, { color }));
      const top = v.map((x, i) => [x, i] as const).sort((a, b) => Math.abs(b[0]) - Math.abs(a[0])).slice(0, 5);
      lines.push(`top patches: ${top.map(([x, i]) => `${e.tokens[im.prefix + i]} ${x.toPrecision(3)}`).join(", ")}`);
      continue;
    }
    lines.push(tokenStrip(keep.map((i) => (chars && !color ? e.tokens[i] : labels[i])), keep.map((i) => imp[i]), { color, width: o.width ?? 100, separator: chars ? "" : " " }));
    lines.push(barChart(keep.map((i) => labels[i]), keep.map((i) => imp[i]), { color, width: 36 }));
    if (m === "raw" && e.tokens.length <= 16) {
      lines.push("", `attention matrix of layer ${e.layer} (${e.head === null ? "head mean" : `head ${e.head}`}); row = query, column = key:`);
      lines.push(heatmap(labels, labels, e.methods.raw!.matrix.flat(), { color, digits: 2 }));
    }
  }
  if (e.decoder) lines.push(...decoderText(e, e.decoder, { color, width: o.width ?? 100 }));
  return lines.join("\n");
}

const DECODER_TITLES: Record<string, string> = { raw: "raw attention (last layer)", rollout: "rollout", grad: "gradient-weighted (Chefer et al. encoder–decoder rule)" };

/** Encoder–decoders: the output token's decoder self-attention (over the decoder's inputs) and cross-attention. */
function decoderText(e: Explanation, d: NonNullable<Explanation["decoder"]>, o: { color: boolean; width: number }): string[] {
  const out: string[] = [], k = /output token (\d+)/.exec(e.target.label)?.[1] ?? String(d.position);
  const show = (title: string, labels: string[], keep: number[], side: "self" | "cross") => {
    const ms = (["raw", "rollout", "grad"] as const).filter((m) => (d.methods[m] as Record<string, number[]> | undefined)?.[side]);
    if (!ms.length) return;
    out.push("", `── ${title} ──`);
    for (const m of ms) {
      const v = (d.methods[m] as Record<string, number[]>)[side];
      out.push(`${DECODER_TITLES[m]}:`, tokenStrip(keep.map((i) => visible(labels[i])), keep.map((i) => v[i]), { color: o.color, width: o.width, separator: " " }));
    }
  };
  show(`decoder self-attention of output token ${k} (over the decoder's ${d.tokens.length} input tokens)`, d.tokens, d.tokens.map((_, i) => i), "self");
  const sp = new Set(e.special);
  show(`cross-attention of output token ${k} (over the ${e.tokens.length} source tokens)`, e.tokens, e.tokens.map((_, i) => i).filter((i) => !sp.has(i)), "cross");
  return out;
}

/** --head-fusion / --discard-ratio / --start-layer (values checked again here: tests call explainCommand directly). */
function rolloutFlags(f: Record<string, string | boolean>, methods: ExplainMethod[]): RolloutMethodOptions {
  const given = ["head-fusion", "discard-ratio", "start-layer"].filter((k) => f[k] !== undefined);
  if (given.length && !methods.includes("rollout")) {
    throw new UsageError(`${given.map((g) => `--${g}`).join(", ")} ${given.length > 1 ? "apply" : "applies"} to rollout only, but --method ${methods.join(",")} has no rollout`);
  }
  const hfu = stringFlag(f, "head-fusion", "mean, max or min");
  if (hfu !== undefined && hfu !== "mean" && hfu !== "max" && hfu !== "min") throw new UsageError(`--head-fusion must be one of mean, max, min, got "${hfu}"`);
  const dr = stringFlag(f, "discard-ratio", "a number >= 0 and < 1");
  const ratio = dr === undefined ? undefined : Number(dr);
  if (ratio !== undefined && (dr!.trim() === "" || !(ratio >= 0 && ratio < 1))) throw new UsageError(`--discard-ratio must be a number >= 0 and < 1, got ${dr}`);
  const start = intFlag(f, "start-layer", "an integer >= 0");
  if (start !== undefined && start < 0) throw new UsageError(`--start-layer must be an integer >= 0, got ${start}`);
  return { headFusion: hfu, discardRatio: ratio, startLayer: start };
}

const KNOWN = ["model", "text", "image", "input", "input-ids", "max-tokens", "truncation", "no-truncation", "max-length", "truncation-side", "method", "methods", "layer", "head", "target", "json", "html", "no-color", "color", "help", "flow-matrices", "flow-aggregate", "head-fusion", "discard-ratio", "start-layer"];

/** Progress bars on stderr for the long stages (flow, blank-out): redrawn on a terminal, a line every 10 s otherwise. */
export function stageProgress(stream: NodeJS.WriteStream = process.stderr): { onProgress: (stage: string, done: number, total: number) => void; finish: () => void } {
  // a bar appears only once a stage has run for a second: quick explanations print nothing extra
  let bar: ProgressBar | null = null, stage = "", t0 = 0;
  const finish = () => { if (bar) { bar.finish(); bar = null; } stage = ""; };
  return {
    onProgress: (s, done, total) => {
      if (s !== "flow" && s !== "blankout") return;
      if (s !== stage) { finish(); stage = s; t0 = performance.now(); }
      if (bar === null && done < total && performance.now() - t0 > 1000) bar = new ProgressBar({ total, label: `explain: ${s}`, unit: s === "flow" ? "sources" : "passes", stream });
      bar?.update(done);
      if (done >= total) finish();
    },
    finish,
  };
}

export async function explainCommand(args: CliArgs, io: CliIo = {}): Promise<number> {
  const out = io.out ?? ((s: string) => { process.stdout.write(s + "\n"); });
  const err = io.err ?? ((s: string) => { process.stderr.write(s + "\n"); });
  const f = args.flags;
  if (f.help === true || args._.includes("help")) { out(EXPLAIN_USAGE); return 0; }
  try {
    checkFlags(f, KNOWN, "explain");
    const modelPath = stringFlag(f, "model", "a checkpoint file");
    const hf = modelPath !== undefined && isHFFolder(modelPath);
    if (!hf) for (const k of ["input-ids", "max-tokens", "truncation", "no-truncation", "max-length", "truncation-side"]) if (f[k] !== undefined) throw new UsageError(`--${k} is for Hugging Face model folders; for a checkpoint give ids with --input`);
    const input = hf ? hfInputOf(f) : parseExplainInput(f);
    const methodSpec = f.method ?? f.methods;
    if (methodSpec === true) throw new UsageError("--method needs a name: rollout, raw, flow, grad, blankout, inputgrad, a comma list or all");
    let methods: ExplainMethod[];
    try { methods = parseMethods(methodSpec as string | undefined); } catch (e) { throw new UsageError((e as Error).message); }
    const layer = intFlag(f, "layer", "an integer layer index (0-based, -1 = last)");
    const head = intFlag(f, "head", "a non-negative integer head index");
    if (head !== undefined && head < 0) throw new UsageError(`--head must be a non-negative integer, got ${head}`);
    const target = f.target === undefined ? undefined : stringFlag(f, "target", "a class name, token or index");
    const html = f.html === undefined ? undefined : stringFlag(f, "html", "an output file name (report.html)");
    const json = f.json;
    const fm = f["flow-matrices"] === undefined ? "auto" : stringFlag(f, "flow-matrices", "all, layer or none");
    if (fm !== "auto" && fm !== "all" && fm !== "layer" && fm !== "none") throw new UsageError(`--flow-matrices must be all, layer or none, got "${fm}"`);
    const rollout = rolloutFlags(f, methods);
    const agg = f["flow-aggregate"] === undefined ? undefined : stringFlag(f, "flow-aggregate", "source or rows");
    if (agg !== undefined && agg !== "source" && agg !== "rows") throw new UsageError(`--flow-aggregate must be source or rows, got "${agg}"`);
    const prog = stageProgress();
    // (a function: the HF branch below narrows `methods` first)
    const common = (): ExplainRunOptions => ({ methods, layer, head, rollout, flowRows: nodeFlowRows(), flowMatrices: fm, flowAggregate: agg, onProgress: prog.onProgress });
    if (modelPath === undefined) throw new UsageError("missing --model <checkpoint>");
    if (hf) {
      const m = await loadHF(modelPath);
      // blank-out needs a token to blank out with (images blank out a patch)
      const blank = occlusionToken(m) !== null || kindOf(m.model.architecture) === "image";
      if (!blank && methodSpec !== "all" && methods.includes("blankout")) {
        throw new UsageError("--method blankout is not available for this Hugging Face folder (raw, rollout, flow, grad, inputgrad are): " +
          "blank-out needs a [MASK], unknown or padding token (tokenizer.json or config.json's pad_token_id)");
      }
      methods = methods.filter((x) => x !== "blankout" || blank);
      const e = await explainOrUsage(() => runExplanation(hfExplainTarget(m, f, target), m.model, common())).finally(prog.finish);
      e.meta = { model: modelPath, architecture: m.model.architecture, input };
      emit(e, `attnflow explain — ${m.model.architecture}, Hugging Face folder ${modelPath}`, `${m.model.architecture}: ${e.target.label}`,
        () => explanationViews(e, hfExplainTarget(m, f, target), m.model));
      return 0;
    }
    const ck = await loadModel(modelPath, io);
    if (typeof ck.task.explain !== "function") throw new Error(`task ${ck.task.name} does not support explain`);
    const t = ck.task.explain(ck.model, ck.config, input, target);
    const e = await explainOrUsage(() => runExplanation(t, ck.model, common())).finally(prog.finish);
    e.meta = { task: ck.task.name, checkpoint: modelPath, input };
    const maxPositions = [ck.config.maxLen, ck.config.maxSrcLen, ck.config.blockSize].find((x): x is number => typeof x === "number");
    emit(e, `attnflow explain — task ${ck.task.name}, checkpoint ${modelPath}`, `${ck.task.name}: ${e.target.label}`, () => explanationViews(e, t, ck.model, { maxPositions }));
    return 0;

    /** The explanation on stdout (terminal view or --json), into --json FILE and --html FILE. */
    function emit(e: Explanation, header: string, title: string, views: () => AttentionViews): void {
      if (json === true) out(JSON.stringify(e));
      else {
        const color = io.color ?? (f["no-color"] !== true && (f.color === true || (process.stdout.isTTY === true && !process.env.NO_COLOR)));
        out(header);
        out(renderExplanationText(e, { color }));
        if (typeof json === "string") { writeFileSync(json, JSON.stringify(e)); err(`wrote ${json}`); }
      }
      if (html !== undefined) { writeFileSync(html, renderHtmlReport(e, { title: `attnflow explain — ${title}`, views: views() })); err(`wrote ${html}`); }
    }
  } catch (x) {
    if (x instanceof UsageError) { err(`attnflow explain: ${x.message}\n\n${EXPLAIN_USAGE}`); return 2; }
    err(`attnflow explain: ${(x as Error).message}`);
    return 1;
  }
}
