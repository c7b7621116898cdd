// The generic training loop behind `attnflow train <task>`: seeded initialisation and data order, AdamW with
// decoupled weight decay on matrices only, linear warm-up + cosine decay, gradient clipping, a progress bar with loss,
// throughput and ETA, periodic evaluation, and atomic checkpoints that make --resume continue to exactly the result
// of an uninterrupted run (the data order of an epoch depends only on (seed, epoch); the dropout generator's state,
// the optimizer state and the position inside the epoch are all in the checkpoint).
import { closeSync, mkdirSync, openSync, statSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { AdamW } from "../../optim/optimizers.js";
import { CosineWithWarmup } from "../../optim/schedulers.js";
import { clipGradNorm } from "../../optim/clip.js";
import { defaultGenerator, Generator } from "../../random.js";
import { tidy } from "../../scope.js";
import { noGrad } from "../../autograd.js";
import type { Module } from "../../nn/module.js";
import { pruneHeads } from "../../nn/prune.js";
import type { Tensor } from "../../tensor.js";
import type { ModelConfig, Task } from "../../tasks/task.js";
import { readCheckpoint, saveCheckpoint, type TrainerState } from "../checkpoint.js";
import { ProgressBar, formatDuration } from "../progress.js";

export interface TrainRunOptions {
  out: string;                    // checkpoint path (written periodically and at the end)
  epochs?: number; batchSize?: number; lr?: number; weightDecay?: number; warmupSteps?: number; clipNorm?: number;
  seed?: number;
  data?: string; limitTrain?: number; limitTest?: number;
  evalLimit?: number;
  overrides?: ModelConfig;        // model options (e.g. { dModel: 128 })
  resume?: string;                // checkpoint to continue from (usually the same as `out`)
  checkpointEverySeconds?: number; // default 60
  checkpointEverySteps?: number;  // default: off (time-based + end of every epoch)
  stopAfterSteps?: number;        // stop (with a resumable checkpoint) once this many optimizer steps are done
  quiet?: boolean;
  log?: (line: string) => void;
  /** Start from this model instead of a fresh one (fine-tuning, e.g. after attnflow prune); its config is stored. */
  start?: { model: Module; config: ModelConfig };
  /** Called with the model and data once they exist (e.g. to print the parameter count). */
  onStart?: (info: { model: Module; config: ModelConfig; params: number; trainSize: number; state: TrainerState }) => void;
}

export interface TrainResult {
  model: Module;
  config: ModelConfig;
  state: TrainerState;
  metrics: Record<string, number> | null;   // final full evaluation (null when stopped early)
  interrupted: boolean;
  seconds: number;
}

/** The permutation of training examples used in `epoch` (depends only on seed and epoch). */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  const g = new Generator((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) { const j = g.int(i + 1); const t = p[i]; p[i] = p[j]; p[j] = t; }
  return p;
}

function makeOptimizer(model: Module, lr: number, weightDecay: number): AdamW {
  // Decay matrices (Linear/attention/embedding weights); leave biases, LayerNorm gains and other vectors alone.
  const decay: Tensor[] = [], plain: Tensor[] = [];
  for (const p of model.parameters()) (p.ndim >= 2 ? decay : plain).push(p);
  const groups = [{ params: decay, weightDecay }, { params: plain, weightDecay: 0 }].filter((g) => g.params.length);
  return new AdamW(groups, { lr, weightDecay });
}

let interruptRequested = false;

export async function train<M extends Module, D>(task: Task<M, D>, o: TrainRunOptions): Promise<TrainResult> {
  const log = o.log ?? ((s: string) => { if (!o.quiet) process.stderr.write(s + "\n"); });
  const t0 = performance.now();
  checkOutputWritable(o.out);
  let state: TrainerState;
  let model: M, config: ModelConfig;
  let resumeOptimizer: { tensors: Record<string, Float32Array>; scalars: Record<string, number> } | undefined;

  if (o.resume) {
    const ck = await readCheckpoint(o.resume);
    if (ck.task !== task.name) throw new Error(`${o.resume}: checkpoint is for task "${ck.task}", not "${task.name}"`);
    if (!ck.trainer) throw new Error(`${o.resume}: checkpoint has no trainer state (an exported model); cannot resume`);
    state = ck.trainer;
    if (o.epochs !== undefined && o.epochs !== state.options.epochs) {
      log(`resume: extending the run from ${state.options.epochs} to ${o.epochs} epochs (the learning-rate schedule is stretched)`);
      state.options.epochs = o.epochs;
      state.finished = false;
    }
    config = ck.config;
    model = task.modelFromConfig(config) as M;
    if (ck.prunedHeads) pruneHeads(model, ck.prunedHeads);          // a pruned model being fine-tuned (attnflow prune)
    model.loadStateDict(ck.weights, { strict: true });
    resumeOptimizer = ck.optimizer;
    checkEpochSums(o.resume, state);
    const ignored = Object.keys(o.overrides ?? {});
    if (ignored.length) log(`resume: the model is the checkpoint's; ignoring the model option${ignored.length > 1 ? "s" : ""} ${ignored.join(", ")}`);
    log(`resuming ${task.name} from ${o.resume}: epoch ${state.epoch + 1}, batch ${state.batchInEpoch}, step ${state.globalStep}`);
  } else {
    const d = task.defaults;
    const seed = o.seed ?? 0;
    state = {
      epoch: 0, batchInEpoch: 0, globalStep: 0, totalSteps: 0, seed, rng: [], history: [], finished: false,
      epochLossSum: 0, epochLossBatches: 0,
      options: {
        epochs: o.epochs ?? d.epochs, batchSize: o.batchSize ?? d.batchSize, lr: o.lr ?? d.lr,
        weightDecay: o.weightDecay ?? d.weightDecay, warmupSteps: o.warmupSteps ?? d.warmupSteps, clipNorm: o.clipNorm ?? d.clipNorm,
        limitTrain: o.limitTrain, limitTest: o.limitTest, data: o.data,
      },
    };
    model = undefined as unknown as M; config = {};
  }
  const opts = state.options;
  for (const [k, v] of Object.entries({ epochs: opts.epochs, batchSize: opts.batchSize })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`train: --${k === "batchSize" ? "batch-size" : k} must be a positive integer, got ${v}`);
  }
  if (!(opts.lr > 0)) throw new Error(`train: --lr must be positive, got ${opts.lr}`);
  // options the task declares are checked before any data is loaded (others when the model is built)
  const declared = task.modelOptions ? Object.keys(task.modelOptions) : undefined;
  const unknownOption = declared && Object.keys(o.overrides ?? {}).find((k) => !declared.includes(k));
  if (unknownOption !== undefined) throw new Error(`train: unknown model option "${unknownOption}" for task "${task.name}" (options: ${declared!.join(", ")})`);

  const data = task.loadData({ data: opts.data, limitTrain: opts.limitTrain, limitTest: opts.limitTest });
  const n = task.trainSize(data);
  if (n <= 0) throw new Error(`train: task "${task.name}" has no training examples`);
  const batchesPerEpoch = Math.ceil(n / opts.batchSize);
  state.totalSteps = batchesPerEpoch * opts.epochs;

  if (!o.resume) {
    defaultGenerator.manualSeed(state.seed);
    const over = o.overrides ?? {};
    if (!task.modelOptions && Object.keys(over).length) {
      // validate option names against the task's default config (built with a throwaway generator state)
      const known = Object.keys(task.createModel(data, {}, new Generator(0)).config);
      defaultGenerator.manualSeed(state.seed);
      for (const k of Object.keys(over)) {
        if (!known.includes(k)) throw new Error(`train: unknown model option "${k}" for task "${task.name}" (options: ${known.join(", ")})`);
      }
    }
    const built = o.start ?? task.createModel(data, over, new Generator(state.seed));
    model = built.model as M; config = built.config;
  } else {
    defaultGenerator.setState(state.rng);
  }

  const params = model.parameters();
  const opt = makeOptimizer(model, opts.lr, opts.weightDecay);
  // the schedule reads its base learning rate from the fresh optimizer, before the saved (decayed) lr is loaded
  const sched = new CosineWithWarmup(opt, opts.warmupSteps, state.totalSteps, 0.0);
  if (resumeOptimizer) opt.loadStateDict(resumeOptimizer);
  for (let s = 0; s < state.globalStep; s++) sched.step();

  const nParams = params.reduce((a, p) => a + p.numel(), 0);
  o.onStart?.({ model, config, params: nParams, trainSize: n, state });
  log(`${task.name}: ${nParams.toLocaleString("en-US")} parameters, ${n} training examples, ${opts.epochs} epochs × ${batchesPerEpoch} batches of ${opts.batchSize}`);
  mkdirSync(dirname(o.out), { recursive: true });

  const save = async (finalMetrics?: Record<string, number>) => {
    state.rng = defaultGenerator.state();
    await saveCheckpoint(o.out, { task: task.name, config, model, optimizer: opt.stateDict(), trainer: state, metrics: finalMetrics });
  };
  const evaluate = (limit?: number) => {
    model.eval();
    try { return tidy(() => noGrad(() => task.evaluate(model, data, { limit }))); } finally { model.train(); }
  };

  const onSigint = () => { interruptRequested = true; };
  process.once("SIGINT", onSigint);
  interruptRequested = false;
  let interrupted = false;
  let lastSave = performance.now();
  const everySec = (o.checkpointEverySeconds ?? 60) * 1000;
  model.train();
  try {
    outer: while (state.epoch < opts.epochs) {
      const order = epochOrder(n, state.seed, state.epoch);
      const bar = new ProgressBar({ total: batchesPerEpoch, label: `epoch ${state.epoch + 1}/${opts.epochs}`, unit: "batch", quiet: o.quiet });
      bar.update(state.batchInEpoch);
      // the epoch's running loss sums live in the state (saved with every checkpoint), so an epoch resumed at any
      // batch — even after its last batch, before its end-of-epoch save — averages all of its batches
      const sums = state as Required<Pick<TrainerState, "epochLossSum" | "epochLossBatches">> & TrainerState;
      sums.epochLossSum ??= 0; sums.epochLossBatches ??= 0;
      const unmeasured = state.batchInEpoch - sums.epochLossBatches;   // > 0 only when resumed from an older checkpoint
      while (state.batchInEpoch < batchesPerEpoch) {
        if (o.stopAfterSteps !== undefined && state.globalStep >= o.stopAfterSteps) { interrupted = true; break outer; }
        if (interruptRequested) { interrupted = true; break outer; }
        const b = state.batchInEpoch;
        const idx = order.subarray(b * opts.batchSize, Math.min(n, (b + 1) * opts.batchSize));
        const loss = tidy(() => {
          const l = task.loss(model, data, idx);
          opt.zeroGrad();
          l.backward();
          if (opts.clipNorm > 0) clipGradNorm(params, opts.clipNorm);
          opt.step();
          return l.item();
        });
        if (!Number.isFinite(loss)) throw new Error(`train: loss became ${loss} at step ${state.globalStep} (epoch ${state.epoch + 1}, batch ${b}); lower --lr?`);
        sched.step();
        state.globalStep++; state.batchInEpoch++;
        sums.epochLossSum += loss; sums.epochLossBatches++;
        const rate = bar.rate();
        bar.update(state.batchInEpoch, { loss: sums.epochLossSum / sums.epochLossBatches, lr: opt.lr, "ex/s": rate * opts.batchSize });
        if (o.checkpointEverySteps && state.globalStep % o.checkpointEverySteps === 0) { await save(); lastSave = performance.now(); }
        else if (performance.now() - lastSave > everySec) { await save(); lastSave = performance.now(); }
        if (state.globalStep % 8 === 0) await new Promise((r) => setImmediate(r)); // let signals through
      }
      const batches = sums.epochLossBatches;
      const epochLoss = batches > 0 ? sums.epochLossSum / batches : null;
      bar.finish();
      const m = evaluate(task.defaults.evalLimit);
      state.history.push({ step: state.globalStep, epoch: state.epoch + 1, loss: epochLoss, batches, metrics: m });
      const lossText = epochLoss === null ? "n/a" : epochLoss.toFixed(4);
      const partial = unmeasured > 0 ? ` (over the last ${batches} of ${batchesPerEpoch} batches: the checkpoint resumed from predates saved epoch sums)` : "";
      log(`epoch ${state.epoch + 1}: train loss ${lossText}${partial}  ${Object.entries(m).map(([k, v]) => `${k} ${fmtMetric(v)}`).join("  ")}` +
        `  (${formatDuration((performance.now() - t0) / 1000)} elapsed)`);
      state.epoch++; state.batchInEpoch = 0; sums.epochLossSum = 0; sums.epochLossBatches = 0;
      await save(); lastSave = performance.now();
    }
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
  if (interrupted) {
    await save();
    log(`stopped at step ${state.globalStep}; checkpoint saved to ${o.out} — continue with --resume ${o.out}`);
    return { model, config, state, metrics: null, interrupted: true, seconds: (performance.now() - t0) / 1000 };
  }
  const metrics = evaluate(undefined);
  state.finished = true;
  await save(metrics);
  log(`final: ${Object.entries(metrics).map(([k, v]) => `${k} ${fmtMetric(v)}`).join("  ")} — saved ${o.out}`);
  return { model, config, state, metrics, interrupted: false, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Fail before any training when the checkpoint could not be saved: the path must name a regular file (or a new one),
 * and its directory must exist or be creatable and accept new files — probed by creating and removing a file, which
 * also catches read-only mounts and root-owned special folders that permission bits do not show.
 */
export function checkOutputWritable(out: string): void {
  const why = (e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOTDIR" || code === "EEXIST" ? "a part of that path is a file, not a directory"
      : code === "EACCES" || code === "EPERM" ? "permission denied" : code === "EROFS" ? "read-only file system" : code ?? (e as Error).message;
  };
  let st: ReturnType<typeof statSync> | undefined;
  try { st = statSync(out); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`train: cannot write the checkpoint ${out} (${why(e)})`);
  }
  if (st?.isDirectory()) throw new Error(`train: --out ${out} is a directory; give a file name such as ${join(out, "model.safetensors")}`);
  if (st && !st.isFile()) throw new Error(`train: --out ${out} is not a regular file (a device, pipe or socket); checkpoints are written to regular files only`);
  const dir = dirname(out);
  try { mkdirSync(dir, { recursive: true }); } catch (e) {
    throw new Error(`train: cannot create the directory ${dir} for the checkpoint ${out} (${why(e)})`);
  }
  const probe = join(dir, `.${basename(out)}.write-check-${process.pid}`);
  try { closeSync(openSync(probe, "wx")); } catch (e) {
    throw new Error(`train: the directory ${dir} is not writable, so the checkpoint ${out} could not be saved (${why(e)})`);
  }
  unlinkSync(probe);
}

/** A resumed state's epoch sums must describe the batches done so far (older checkpoints have none). */
function checkEpochSums(path: string, s: TrainerState): void {
  if (s.epochLossSum === undefined && s.epochLossBatches === undefined) return;
  if (typeof s.epochLossSum !== "number" || !Number.isFinite(s.epochLossSum) || s.epochLossBatches !== s.batchInEpoch) {
    throw new Error(`${path}: trainer state epochLossSum/epochLossBatches (${String(s.epochLossSum)}, ${String(s.epochLossBatches)}) ` +
      `do not describe the ${s.batchInEpoch} batches done in epoch ${s.epoch + 1}`);
  }
}

export function fmtMetric(v: number): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return String(v); // NaN is stored as null in JSON metadata
  return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(4) : v.toFixed(4);
}

