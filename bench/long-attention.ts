// Long inputs: full vs sliding-window vs linear vs Linformer attention on a long-context task, one table of quality
// and speed (docs/long-attention.md). Run under the shared lock on a busy machine:
//   flock /tmp/attnflow-bench.lock node dist/bench/long-attention.js [--steps 400] [--batch 16] [--train-len 1024]
//     [--lengths 1024,4096,16384] [--eval 64] [--kinds full,window,linear,linformer] [--out bench/long-attention-results.json]
// 1. builds the corpus: the copyright files of the installed Debian packages (/usr/share/doc/*/copyright), every
//    10th file held out for evaluation;
// 2. trains each model (bench/long-attention-model.ts) for the same steps, ending at --train-len (a length
//    curriculum, see curriculum()); Linformer, whose E/F
//    are per position (k × maxLength), cannot take longer inputs, so it is also trained at each longer length;
// 3. evaluates accuracy and cross-entropy on the same held-out problems at every length;
// 4. times one forward (batch 1, native backend, no grad) per model and length in a child process, with its peak
//    RSS above the warmed-up baseline (--child kind T is that child).
// --check-short trains full and Linformer at T = 32 only (see checkShort); --op times the attention op alone.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import * as af from "../src/node.js";
import { DEFAULT_CONFIG, KINDS, NeedleModel, VALUES, charId, needleBatch, prng, type AttnKind, type ModelConfig } from "./long-attention-model.js";

const argv = process.argv.slice(2);
function opt(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
}
const num = (name: string, dflt: number) => {
  const v = Number(opt(name, String(dflt)));
  if (!Number.isFinite(v) || v <= 0) throw new Error(`long-attention: --${name} needs a positive number, got ${opt(name, "")}`);
  return v;
};

function statusKB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : 0;
}

function configFor(maxLength: number): ModelConfig { return { ...DEFAULT_CONFIG, maxLength }; }

/** Child: forward time (median of 3 after one untimed run) and peak RSS of one batch-1 forward at length T. */
function child(kind: AttnKind, T: number): void {
  af.setBackend("native");
  af.manualSeed(1);
  const model = new NeedleModel(kind, configFor(T));
  model.eval();
  const rand = prng(3);
  const text = Uint8Array.from({ length: T + 8 }, () => Math.floor(rand() * 95));
  af.noGrad(() => af.tidy(() => model.forward(needleBatch(text, 1, Math.min(T, 256), rand).ids)));   // warm-up
  const { ids } = needleBatch(text, 1, T, rand);
  (globalThis as { gc?: () => void }).gc?.();
  let reset = true;
  try { writeFileSync("/proc/self/clear_refs", "5"); } catch { reset = false; }
  const base = statusKB("VmRSS");
  af.noGrad(() => af.tidy(() => model.forward(ids).dataSync()));
  const peakMB = (statusKB("VmHWM") - base) / 1024;
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    af.noGrad(() => af.tidy(() => model.forward(ids).dataSync()));
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ ms: times[1], peakMB: reset ? peakMB : null }) + "\n");
}

/** The corpus as char ids: train and held-out eval text (every 10th copyright file, by sorted path). */
function corpus(): { train: Uint8Array; evalText: Uint8Array; files: number; bytes: number } {
  const root = "/usr/share/doc";
  const paths = readdirSync(root).sort().map((d) => join(root, d, "copyright")).filter((p) => existsSync(p));
  const parts: [number[], number[]] = [[], []];
  let bytes = 0;
  paths.forEach((p, i) => {
    const b = readFileSync(p);
    bytes += b.length;
    const dst = parts[i % 10 === 0 ? 1 : 0];
    for (const c of b) dst.push(charId(c));
    dst.push(charId(10));
  });
  return { train: Uint8Array.from(parts[0]), evalText: Uint8Array.from(parts[1]), files: paths.length, bytes };
}

function paramCount(m: af.nn.Module): number { return m.parameters().reduce((s, p) => s + p.numel(), 0); }

function train(kind: AttnKind, T: number, text: Uint8Array, steps: number, batch: number, extra: Partial<ModelConfig> = {}):
  { model: NeedleModel; seconds: number; finalLoss: number } {
  af.manualSeed(7);
  const model = new NeedleModel(kind, { ...configFor(T), ...extra });
  model.train();
  const opt_ = new af.optim.AdamW(model.parameters(), { lr: 5e-3, weightDecay: 0.01 });
  const rand = prng(11);
  const t0 = performance.now();
  let ema = Math.log(VALUES);
  for (let s = 1; s <= steps; s++) {
    const len = curriculum(s, steps, T);
    const l = af.tidy(() => {
      const { ids, labels } = needleBatch(text, batch, len, rand);
      opt_.zeroGrad();
      const loss = af.F.crossEntropy(model.forward(ids), labels);
      loss.backward();
      opt_.step();
      return loss.item();
    });
    ema = 0.9 * ema + 0.1 * l;
    if (s % 25 === 0 || s === steps) {
      process.stderr.write(`  ${kind} T=${len} step ${s}/${steps} loss ${ema.toFixed(3)} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
    }
  }
  model.eval();
  return { model, seconds: (performance.now() - t0) / 1000, finalLoss: ema };
}

/**
 * Length curriculum (the same for every model): 40% of the steps at T = 32, 20% at 128, 20% at 512, the last 20% at
 * the full training length (each capped by it). At the start attention is uniform, so the needle's signal is 1/T:
 * short inputs let every model find the task before it must hold it over long ones.
 */
export function curriculum(step: number, steps: number, T: number): number {
  const f = step / steps;
  return Math.min(T, f <= 0.4 ? 32 : f <= 0.6 ? 128 : f <= 0.8 ? 512 : T);
}

function evaluate(model: NeedleModel, T: number, text: Uint8Array, n: number): { accuracy: number; loss: number } {
  const rand = prng(1000 + T);   // the same held-out problems for every model at this length
  const per = Math.max(1, Math.min(8, Math.floor(16384 / T) * 2));
  let right = 0, lossSum = 0;
  for (let done = 0; done < n; done += per) {
    const b = Math.min(per, n - done);
    af.noGrad(() => af.tidy(() => {
      const { ids, labels } = needleBatch(text, b, T, rand);
      const logits = model.forward(ids);
      lossSum += af.F.crossEntropy(logits, labels).item() * b;
      const pred = logits.argmax(1).dataSync(), lab = labels.dataSync();
      for (let i = 0; i < b; i++) right += +(pred[i] === lab[i]);
    }));
  }
  return { accuracy: right / n, loss: lossSum / n };
}

/**
 * --check-short: is Linformer's failure about length? Train at T = 32 only (k = 64 slots ≥ T, so E could be
 * invertible) for the same steps: full, Linformer, Linformer with shared E = F; prints each final loss (chance ln 8).
 */
function checkShort(text: Uint8Array, steps: number, batch: number): void {
  for (const [kind, extra] of [["full", {}], ["linformer", {}], ["linformer", { shareKV: true }]] as [AttnKind, Partial<ModelConfig>][]) {
    const r = train(kind, 32, text, steps, batch, { ...extra, maxLength: 32 });
    process.stdout.write(`T=32 only: ${kind}${extra.shareKV ? " (shareKV)" : ""} final loss ${r.finalLoss.toFixed(3)} (chance ${Math.log(VALUES).toFixed(3)})\n`);
  }
}

/**
 * --op: the attention op alone, native, B = 1, H = 4, D = 64, causal — full vs window 256 — forward and forward +
 * backward (median of 3 after one untimed run), at each --lengths: how much of the O(T²) the band removes.
 */
function opTimes(lengths: number[]): void {
  const H = 4, D = 64, W = 256;
  const lines = ["| T | full fwd ms | window 256 fwd ms | full fwd+bwd ms | window 256 fwd+bwd ms |", "|---:|---:|---:|---:|---:|"];
  const time = (fn: () => void) => {
    fn();
    const ts = [0, 1, 2].map(() => { const t0 = performance.now(); fn(); return performance.now() - t0; }).sort((a, b) => a - b);
    return ts[1];
  };
  for (const T of lengths) {
    af.manualSeed(2);
    const q = af.randn([1, H, T, D]), k = af.randn([1, H, T, D]), v = af.randn([1, H, T, D]), g = af.randn([1, H, T, D]);
    const row: number[] = [];
    for (const train of [false, true]) for (const window of [null, W]) {
      row.push(time(() => af.tidy(() => {
        if (!train) { af.noGrad(() => af.F.scaledDotProductAttention(q, k, v, { causal: true, window }).dataSync()); return; }
        const [qq, kk, vv] = [q, k, v].map((t) => t.detach().requiresGrad_());
        af.F.scaledDotProductAttention(qq, kk, vv, { causal: true, window }).mul(g).sum().backward();
        qq.grad!.dataSync();
      })));
    }
    lines.push(`| ${T.toLocaleString("en")} | ${row.map((x) => x.toFixed(1)).join(" | ")} |`);
    process.stderr.write(`  op T=${T}: ${row.map((x) => x.toFixed(1)).join(", ")} ms\n`);
  }
  process.stdout.write(lines.join("\n") + `\nload average ${loadavg().map((x) => x.toFixed(2)).join(" ")}\n`);
}

function main(): void {
  const ci = argv.indexOf("--child");
  if (ci >= 0) { child(argv[ci + 1] as AttnKind, Number(argv[ci + 2])); return; }
  af.setBackend("native");
  if (argv.includes("--op")) { opTimes(opt("lengths", "1024,4096,16384").split(",").map(Number)); return; }
  if (argv.includes("--check-short")) { checkShort(corpus().train, num("steps", 400), num("batch", 16)); return; }
  const steps = num("steps", 400), batch = num("batch", 16), trainLen = num("train-len", 1024), nEval = num("eval", 64);
  const lengths = opt("lengths", "1024,4096,16384").split(",").map(Number);
  const kinds = opt("kinds", KINDS.join(",")).split(",") as AttnKind[];
  const out = opt("out", "bench/long-attention-results.json");
  const load0 = loadavg();
  const c = corpus();
  process.stderr.write(`corpus: ${c.files} copyright files, ${c.bytes} bytes (train ${c.train.length} chars, held out ${c.evalText.length})\n`);
  const rows: Record<string, unknown>[] = [];
  const trainInfo: Record<string, unknown>[] = [];
  for (const kind of kinds) {
    let trained: { model: NeedleModel; seconds: number; finalLoss: number } | null = null;
    for (const T of lengths) {
      if (!trained || (kind === "linformer" && T > trained.model.config.maxLength)) {
        const tl = kind === "linformer" ? Math.max(trainLen, T) : trainLen;
        process.stderr.write(`training ${kind} at T=${tl}\n`);
        trained = train(kind, tl, c.train, steps, batch);
        trainInfo.push({ kind, trainLength: tl, steps, batch, seconds: +trained.seconds.toFixed(1), finalLoss: +trained.finalLoss.toFixed(3), params: paramCount(trained.model) });
      }
      const q = evaluate(trained.model, T, c.evalText, nEval);
      const sp = JSON.parse(execFileSync(process.execPath, ["--expose-gc", process.argv[1], "--child", kind, String(T)], { encoding: "utf8" })) as { ms: number; peakMB: number | null };
      const row = { kind, T, trainLength: trained.model.config.maxLength, accuracy: q.accuracy,
        loss: +q.loss.toFixed(3), forwardMs: +sp.ms.toFixed(1), peakMB: sp.peakMB === null ? null : +sp.peakMB.toFixed(1), params: paramCount(trained.model) };
      process.stderr.write(`  ${JSON.stringify(row)}\n`);
      rows.push(row);
    }
  }
  const machine = { cpu: cpus()[0]?.model ?? "unknown", threads: cpus().length, backend: af.getBackend(), node: process.version,
    loadBefore: load0.map((x) => +x.toFixed(2)), loadAfter: loadavg().map((x) => +x.toFixed(2)) };
  const result = { task: "associative needle retrieval (4 typed needles, query names one) in Debian copyright text", corpus: { files: c.files, bytes: c.bytes }, config: DEFAULT_CONFIG,
    steps, batch, trainLength: trainLen, evalProblems: nEval, machine, train: trainInfo, rows, date: new Date().toISOString() };
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  process.stdout.write(table(rows) + "\n");
}

export function table(rows: Record<string, unknown>[]): string {
  const lines = ["| attention | T | trained at | accuracy | loss (nats) | forward ms | peak MB | params |", "|---|---:|---:|---:|---:|---:|---:|---:|"];
  for (const r of rows) {
    lines.push(`| ${r.kind} | ${(r.T as number).toLocaleString("en")} | ${(r.trainLength as number).toLocaleString("en")} | ${((r.accuracy as number) * 100).toFixed(1)}% | ` +
      `${r.loss} | ${r.forwardMs} | ${r.peakMB ?? "n/a"} | ${(r.params as number).toLocaleString("en")} |`);
  }
  return lines.join("\n");
}

main();
