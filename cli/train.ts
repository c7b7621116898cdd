// `attnflow train | eval | predict | info`: argv → the trainer and the task hooks.
import { findTask, listTasks } from "../src/node/tasks/index.js";
import { train, fmtMetric } from "../src/node/train/trainer.js";
import { exportCheckpoint, loadCheckpoint, readCheckpoint } from "../src/node/checkpoint.js";
import { tidy } from "../src/scope.js";
import { noGrad } from "../src/autograd.js";
import { ProgressBar } from "../src/node/progress.js";
import type { ModelConfig, Task } from "../src/tasks/task.js";

import type { Args } from "./args.js";
import { UsageError } from "./args.js";
import { PREDICT_FLAGS, TRAIN_FLAGS } from "./commands.js";
import { hfInfo, hfPredict, isHFFolder } from "./hf.js";

export type { Args } from "./args.js";

const TRAINER_FLAGS = new Set(TRAIN_FLAGS.map((f) => f.name));

function num(flags: Args["flags"], name: string, integer = false): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v === true || !Number.isFinite(x) || (integer && !Number.isInteger(x))) {
    throw new Error(`--${name} needs ${integer ? "an integer" : "a number"}, got ${v === true ? "nothing" : JSON.stringify(v)}`);
  }
  return x;
}

function str(flags: Args["flags"], name: string): string | undefined {
  const v = flags[name];
  if (v === true) throw new Error(`--${name} needs a value`);
  return typeof v === "string" ? v : undefined;
}

/** --d-model 128 → { dModel: 128 }: numbers, true/false and strings. */
function modelOverrides(flags: Args["flags"]): ModelConfig {
  const o: ModelConfig = {};
  for (const [k, v] of Object.entries(flags)) {
    if (TRAINER_FLAGS.has(k)) continue;
    const key = k.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    o[key] = v === true ? true : v === "false" ? false : v === "true" ? true : v !== "" && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return o;
}

export async function taskList(): Promise<string> {
  const tasks = await listTasks();
  const w = Math.max(...[...tasks.keys()].map((k) => k.length), 4);
  return [...tasks.values()].map((t) => `  ${t.name.padEnd(w)}  ${t.description}\n  ${" ".repeat(w)}  defaults: ${t.defaults.epochs} epochs, batch ${t.defaults.batchSize}, lr ${t.defaults.lr}`).join("\n");
}

export async function trainCommand(a: Args): Promise<number> {
  const name = a._[1];
  if (!name || a.flags.list) { console.log(`tasks:\n${await taskList()}`); return name || a.flags.list ? 0 : 2; }
  const task = await findTask(name);
  // --resume CKPT without --out keeps writing to CKPT (the run continues where it lives); bare --resume reads --out.
  const resumeFrom = a.flags.resume === true ? undefined : str(a.flags, "resume");
  const out = str(a.flags, "out") ?? resumeFrom ?? `runs/${task.name}.safetensors`;
  const resume = a.flags.resume === true ? out : resumeFrom;
  const r = await train(task, {
    out, resume,
    epochs: num(a.flags, "epochs", true), batchSize: num(a.flags, "batch-size", true), lr: num(a.flags, "lr"),
    weightDecay: num(a.flags, "weight-decay"), warmupSteps: num(a.flags, "warmup", true), clipNorm: num(a.flags, "clip"),
    seed: num(a.flags, "seed", true), data: str(a.flags, "data"),
    limitTrain: num(a.flags, "limit-train", true), limitTest: num(a.flags, "limit-test", true),
    stopAfterSteps: num(a.flags, "stop-after", true), checkpointEverySteps: num(a.flags, "checkpoint-every", true),
    overrides: modelOverrides(a.flags), quiet: a.flags.quiet === true,
  });
  if (a.flags.json) console.log(JSON.stringify({ task: task.name, out, metrics: r.metrics, interrupted: r.interrupted, seconds: r.seconds, steps: r.state.globalStep }));
  return r.interrupted && !a.flags["stop-after"] ? 130 : 0;
}

export async function evalCommand(a: Args): Promise<number> {
  const path = str(a.flags, "model") ?? a._[1];
  if (!path) throw new Error("eval: --model <checkpoint> is required");
  const ck = await loadCheckpoint(path);
  const data = ck.task.loadData({ data: str(a.flags, "data"), limitTest: num(a.flags, "limit", true), limitTrain: 0 });
  const bar = new ProgressBar({ total: 1, label: "eval", unit: "ex", quiet: a.flags.json === true });
  const t0 = performance.now();
  const m = tidy(() => noGrad(() => ck.task.evaluate(ck.model, data, {
    limit: num(a.flags, "limit", true), onProgress: (done, total) => { (bar as unknown as { o: { total: number } }).o.total = total; bar.update(done); },
  })));
  bar.finish();
  if (a.flags.json) { console.log(JSON.stringify({ task: ck.task.name, model: path, metrics: m })); return 0; }
  console.log(`${ck.task.name} — ${path}  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const w = Math.max(...Object.keys(m).map((k) => k.length));
  for (const [k, v] of Object.entries(m)) console.log(`  ${k.padEnd(w)}  ${fmtMetric(v)}`);
  return 0;
}

export async function predictCommand(a: Args): Promise<number> {
  const path = str(a.flags, "model");
  if (!path) throw new Error("predict: --model <checkpoint> is required");
  if (isHFFolder(path)) return hfPredict(path, a.flags, a._.slice(1).join(" "));
  const input = str(a.flags, "text") ?? str(a.flags, "image") ?? str(a.flags, "input") ?? a._.slice(1).join(" ");
  if (!input) throw new Error("predict: give the input as an argument or with --text / --image / --input");
  const ck = await loadCheckpoint(path);
  checkPredictFlags(a.flags, ck.task);
  const p = tidy(() => noGrad(() => ck.task.predict(ck.model, ck.config, input, a.flags)));
  if (a.flags.json) { console.log(JSON.stringify(p)); return 0; }
  if (!p.streamed) console.log(p.output);
  if (p.alternatives?.length) {
    const w = Math.max(...p.alternatives.map((x) => x.output.length));
    for (const alt of p.alternatives) console.log(`  ${alt.output.padEnd(w)}  ${p.scoreName ?? "score"} ${alt.score.toFixed(4)}`);
  }
  // the other returned sequences (--num-return-sequences) as text, each under a rule with its score
  const seqs = p.details?.sequences as { text: string; score?: number }[] | undefined;
  if (Array.isArray(seqs)) {
    seqs.forEach((q, i) => {
      if (i === 0) return;   // the output above
      console.log(`── sequence ${i + 1} of ${seqs.length}${q.score === undefined ? "" : ` (score ${q.score.toFixed(4)})`} ──`);
      console.log(q.text);
    });
  }
  if (p.details) for (const [k, v] of Object.entries(p.details)) {
    if (k === "sequences" && Array.isArray(seqs)) continue;
    console.log(`  ${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  }
  return 0;
}

/** The command line accepts every task's predict flags; the checkpoint's task must declare those given. */
function checkPredictFlags(flags: Args["flags"], task: Task): void {
  if (!task.predictFlags) return;   // a task that does not declare them reads what it understands
  const own = new Set([...PREDICT_FLAGS, ...task.predictFlags].map((f) => f.name));
  const other = Object.keys(flags).filter((k) => !own.has(k));
  if (other.length) {
    const list = task.predictFlags.map((f) => `--${f.name}`).join(", ") || "none";
    throw new UsageError(`predict: ${other.map((k) => `--${k}`).join(", ")} ${other.length > 1 ? "are not options" : "is not an option"} of task ${task.name} (its own options: ${list})`);
  }
}

export async function infoCommand(a: Args): Promise<number> {
  const path = str(a.flags, "model") ?? a._[1];
  if (!path) throw new Error("info: --model <checkpoint> is required");
  if (isHFFolder(path)) return hfInfo(path, a.flags.json === true);
  const raw = await readCheckpoint(path);
  const params = [...raw.weights.values()].reduce((s, t) => s + t.numel(), 0);
  const info = { task: raw.task, parameters: params, config: raw.config, metrics: raw.metrics, notes: raw.notes,
    trainer: raw.trainer && { epoch: raw.trainer.epoch, step: raw.trainer.globalStep, of: raw.trainer.totalSteps, finished: raw.trainer.finished, options: raw.trainer.options, seed: raw.trainer.seed },
    optimizerState: raw.optimizer !== undefined, quantization: raw.quantization, prunedHeads: raw.prunedHeads };
  if (a.flags.json) { console.log(JSON.stringify({ ...info, history: raw.trainer?.history })); return 0; }
  const cfg = JSON.stringify(raw.config, (_k, v) => Array.isArray(v) && v.length > 12 ? `[${v.length} items]` : v);
  console.log(`${path}\n  task        ${raw.task}\n  parameters  ${params.toLocaleString("en-US")}\n  config      ${cfg}`);
  if (raw.trainer) console.log(`  trained     step ${raw.trainer.globalStep}/${raw.trainer.totalSteps}, epoch ${raw.trainer.epoch}/${raw.trainer.options.epochs}${raw.trainer.finished ? "" : " (unfinished: --resume to continue)"}`);
  if (raw.metrics) console.log(`  metrics     ${Object.entries(raw.metrics).map(([k, v]) => `${k} ${fmtMetric(v)}`).join("  ")}`);
  if (raw.notes) console.log(`  notes       ${raw.notes}`);
  if (raw.prunedHeads) {
    const n = Object.values(raw.prunedHeads).reduce((k, hs) => k + hs.length, 0);
    console.log(`  pruned      ${n} attention head${n === 1 ? "" : "s"} (layer:heads) ${Object.entries(raw.prunedHeads).map(([l, hs]) => `${l}:${hs.join(",")}`).join(" ")}`);
  }
  if (raw.quantization) {
    const q = raw.quantization;
    console.log(`  quantized   ${q.method}: ${q.modules.length} int8 layers (${q.scheme ?? "int8 weights per output channel, u8 activations per row"})`);
    if (q.floatMetrics) console.log(`  float model ${Object.entries(q.floatMetrics).map(([k, v]) => `${k} ${fmtMetric(v)}`).join("  ")}`);
  }
  return 0;
}

export async function exportCommand(a: Args): Promise<number> {
  const src = str(a.flags, "model") ?? a._[1], dst = str(a.flags, "out");
  if (!src || !dst) throw new Error("export: --model <checkpoint> and --out <file> are required");
  const r = await exportCheckpoint(src, dst, { half: a.flags.half === true, notes: str(a.flags, "notes") });
  console.log(`wrote ${dst} (${(r.bytes / 1024).toFixed(0)} KiB${a.flags.half ? ", float16 weights" : ""}; inference only, no optimizer state)`);
  return 0;
}
