// `attnflow eval-faithfulness`: how faithful are attention explanations of a trained model? For n held-out inputs
// (task.faithfulnessInputs), the Spearman correlation of raw attention, rollout, flow and gradient rollout — at every
// layer — with blank-out and with input × gradient, as mean ± sd tables (Abnar & Zuidema 2020, tables 1-2).
//
// A Hugging Face folder as --model: its inputs and explained outputs are described in cli/hf-faithfulness.ts.
//
//   attnflow eval-faithfulness --model <ckpt | hf-folder> [--data DIR] [--n 50] [--methods raw,rollout,flow,grad] [--json [out.json]]
import { writeFileSync } from "node:fs";
import { type ExplainMethod, type Explanation, parseMethods, runExplanation } from "../src/explain/explain-run.js";
import {
  ABNAR_ZUIDEMA_TABLE1, FAITHFULNESS_METHODS, type FaithfulnessSample, faithfulnessOf, formatFaithfulnessTable, formatPaperComparison, formatReliability,
  summariseFaithfulness,
} from "../src/explain/faithfulness.js";
import type { ExplainTarget, Truncation } from "../src/tasks/task.js";
import type { Module } from "../src/nn/module.js";
import { isHFFolder, kindOf, loadHF, occlusionToken } from "./hf.js";
import { hfFaithfulnessInputs } from "./hf-faithfulness.js";
import { type CliArgs, type CliIo, UsageError, checkFlags, intFlag, loadModel, nodeFlowRows, stringFlag } from "./explain.js";

export const FAITHFULNESS_USAGE = `usage: attnflow eval-faithfulness --model <checkpoint | hf-folder> [--data DIR | FILE] [--n 50]
         [--methods raw,rollout,flow,grad (default all four)] [--paper] [--include-special] [--json [out.json]]
  A Hugging Face folder reads --data FILE (one input per line: text, or token ids "5,6,7" without tokenizer.json),
  a directory of images (ViT), or by default the held-out Debian fortunes; the explained output is the model's
  predicted class / [MASK] token / next token / first generated token.
  --paper: print the blank-out table beside Abnar & Zuidema 2020's Table 1 (default for the agreement task)
  --include-special: rank the special positions too ([CLS]: blanked out like a word, kept in every method's row)`;

const KNOWN = ["model", "data", "n", "methods", "method", "json", "paper", "include-special", "help", "no-color", "color"];

/** A one-line progress bar on stderr (redrawn in place on a terminal, every 10% otherwise). */
export function progressBar(total: number, write: (s: string) => void, tty: boolean): (done: number, note?: string) => void {
  const t0 = Date.now();
  let lastDecile = -1;
  return (done, note = "") => {
    const frac = total > 0 ? done / total : 1, w = 24, full = Math.round(frac * w);
    const el = (Date.now() - t0) / 1000, eta = done > 0 ? el / done * (total - done) : NaN;
    const line = `[${"#".repeat(full)}${".".repeat(w - full)}] ${done}/${total} inputs  ${el.toFixed(0)} s` +
      (done < total && Number.isFinite(eta) ? `, eta ${eta.toFixed(0)} s` : "") + (note ? `  ${note}` : "");
    if (tty) { write(`\r${line}\x1b[K${done >= total ? "\n" : ""}`); return; }
    const d = Math.floor(frac * 10);
    if (d !== lastDecile || done >= total) { lastDecile = d; write(line + "\n"); }
  };
}

/** One line for the inputs that were cut to the model's maximum positions (their explanations cover the kept part). */
export function truncationSummary(t: readonly Truncation[], n: number): string {
  const dropped = t.reduce((s, x) => s + x.dropped, 0), most = Math.max(...t.map((x) => x.dropped));
  return `WARNING: ${t.length} of ${n} input${n === 1 ? "" : "s"} truncated to the model's maximum of ${t[0].kept} positions: ` +
    `${dropped} token${dropped === 1 ? "" : "s"} dropped in all (at most ${most} from one input); only the kept tokens were evaluated`;
}

export async function evalFaithfulnessCommand(args: CliArgs, io: CliIo = {}): Promise<number> {
  const out = io.out ?? ((s: string) => { process.stdout.write(s + "\n"); });
  const err = io.err ?? ((s: string) => { process.stderr.write(s + "\n"); });
  const f = args.flags;
  if (f.help === true || args._.includes("help")) { out(FAITHFULNESS_USAGE); return 0; }
  try {
    checkFlags(f, KNOWN, "eval-faithfulness");
    const modelPath = stringFlag(f, "model", "a checkpoint file");
    const data = stringFlag(f, "data", "a data directory");
    const n = intFlag(f, "n", "a positive integer") ?? 50;
    if (n < 1) throw new UsageError(`--n must be a positive integer, got ${n}`);
    const spec = f.methods ?? f.method;
    if (spec === true) throw new UsageError("--methods needs a comma list of raw, rollout, flow, grad");
    let methods: ExplainMethod[];
    try { methods = parseMethods(spec as string | undefined, [...FAITHFULNESS_METHODS]); } catch (e) { throw new UsageError((e as Error).message); }
    const bad = methods.filter((m) => !(FAITHFULNESS_METHODS as readonly string[]).includes(m));
    if (bad.length) throw new UsageError(`--methods: ${bad.join(", ")} ${bad.length > 1 ? "are references" : "is a reference"}, not an evaluated method; choose from ${FAITHFULNESS_METHODS.join(", ")}`);
    if (modelPath === undefined) throw new UsageError("missing --model <checkpoint>");
    // the inputs to evaluate, each a function building its ExplainTarget; the model that names the attention modules
    let noBlank: string | null = null;
    let taskName: string, model: Module, targets: { target: () => ExplainTarget; truncation?: Truncation }[];
    const isHF = isHFFolder(modelPath);
    if (isHF) {
      const m = await loadHF(modelPath);
      taskName = m.model.architecture; model = m.model;
      err(`reading held-out inputs for ${taskName}${data ? ` from ${data}` : " (Debian fortunes)"} ...`);
      targets = hfFaithfulnessInputs(m, data, n);
      if (occlusionToken(m) === null && kindOf(m.model.architecture) !== "image") noBlank = "blank-out skipped: the folder has no [MASK], unknown or padding token to blank tokens out with (tokenizer.json or config.json's pad_token_id)";
      if (!targets.length) throw new Error(`${data} holds no inputs (one per line)`);
    } else {
      const ck = await loadModel(modelPath, io);
      const task = ck.task;
      if (typeof task.explain !== "function") throw new Error(`task ${task.name} does not support explain`);
      if (typeof task.faithfulnessInputs !== "function") throw new Error(`task ${task.name} does not provide faithfulnessInputs (held-out inputs to evaluate)`);
      err(`loading data for ${task.name}${data ? ` from ${data}` : ""} ...`);
      const d = task.loadData({ data });
      const inputs = task.faithfulnessInputs(d, n);
      if (!inputs.length) throw new Error(`task ${task.name} returned no inputs to evaluate`);
      taskName = task.name; model = ck.model;
      targets = inputs.map((x) => ({ target: () => task.explain!(ck.model, ck.config, x, x.target) }));
    }
    const samples: (FaithfulnessSample & { target: Explanation["target"]; tokens: string[] })[] = [];
    const tty = process.stderr.isTTY === true && io.err === undefined;
    const bar = progressBar(targets.length, (s) => { if (tty) process.stderr.write(s); else err(s.trimEnd()); }, tty);
    const flowRows = nodeFlowRows();
    let refs: ExplainMethod[] = ["blankout", "inputgrad"];
    const notes: string[] = [];
    if (noBlank) { refs = ["inputgrad"]; notes.push(noBlank); }
    const truncated: ({ input: number } & Truncation)[] = [];   // inputs cut to the model's maximum positions
    bar(0);
    const includeSpecial = f["include-special"] === true;
    // --include-special: the same explained row (the query a target resolves to by default), no position left out
    const prepare = (t: ExplainTarget): ExplainTarget => (includeSpecial ? { ...t, query: t.query ?? t.special?.[0] ?? "mean", special: [] } : t);
    for (let i = 0; i < targets.length; i++) {
      let e;
      try {
        e = await runExplanation(prepare(targets[i].target()), model, { methods: [...methods, ...refs], matrices: false, flowMatrices: "none", flowRows });
      } catch (x) {
        // a task without onEmbeddings support: evaluate against blank-out only
        if (!refs.includes("inputgrad") || !/onEmbeddings/.test((x as Error).message)) throw x;
        refs = ["blankout"];
        notes.push(`input × gradient skipped: ${(x as Error).message}`);
        e = await runExplanation(prepare(targets[i].target()), model, { methods: [...methods, ...refs], matrices: false, flowMatrices: "none", flowRows });
      }
      const cut = e.truncation ?? targets[i].truncation;
      if (cut) truncated.push({ input: i, ...cut });
      samples.push({ ...faithfulnessOf(e), target: e.target, tokens: e.tokens });
      bar(i + 1);
    }
    const summary = summariseFaithfulness(samples);
    for (const nt of notes) err(`note: ${nt}`);
    const json = f.json;
    const truncation = { inputs: truncated.length, droppedTokens: truncated.reduce((s, t) => s + t.dropped, 0), perInput: truncated };
    const paper = f.paper === true || taskName === "agreement";
    const doc = { task: taskName, checkpoint: modelPath, inputs: targets.length, methods, references: refs, includeSpecial, truncation, summary,
      ...(paper ? { paper: { source: "Abnar & Zuidema 2020, Table 1 (blank-out)", ...ABNAR_ZUIDEMA_TABLE1 } } : {}), samples };
    if (json === true) out(JSON.stringify(doc, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v)));
    else {
      out(`attnflow eval-faithfulness — ${isHF ? `${taskName}, Hugging Face folder` : `task ${taskName}, checkpoint`} ${modelPath}, ${targets.length} inputs${includeSpecial ? ", special positions included" : ""}`);
      out(formatFaithfulnessTable(summary));
      if (paper && refs.includes("blankout")) out("\n" + formatPaperComparison(summary));
      const rel = formatReliability(summary);
      if (rel) out("\n" + rel);
      if (truncated.length) out(truncationSummary(truncated, targets.length));
      if (typeof json === "string") { writeFileSync(json, JSON.stringify(doc, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v))); err(`wrote ${json}`); }
    }
    return 0;
  } catch (x) {
    if (x instanceof UsageError) { err(`attnflow eval-faithfulness: ${x.message}\n\n${FAITHFULNESS_USAGE}`); return 2; }
    err(`attnflow eval-faithfulness: ${(x as Error).message}`);
    return 1;
  }
}
