// The trainer and checkpoints: learning is visible, --resume continues to bit-identical weights, a checkpoint file
// survives SIGKILL at any moment of a save, and bad checkpoints give clear errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { train, epochOrder } from "../src/node/train/trainer.js";
import { exportCheckpoint, readCheckpoint, saveCheckpoint } from "../src/node/checkpoint.js";
import { toyTask, ToyModel } from "./helpers/toy-task.js";

const dir = mkdtempSync(join(tmpdir(), "attnflow-train-"));
const quiet = { quiet: true, log: () => undefined };

test("epoch order is a permutation that depends only on (seed, epoch)", () => {
  const a = epochOrder(50, 3, 1), b = epochOrder(50, 3, 1), c = epochOrder(50, 3, 2);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
});

test("training learns the toy task and writes a checkpoint with metrics", async () => {
  const out = join(dir, "learn.safetensors");
  const r = await train(toyTask, { out, epochs: 6, seed: 1, ...quiet });
  const first = r.state.history[0].loss!, last = r.state.history[r.state.history.length - 1].loss!;
  assert.ok(last < first * 0.8, `loss should fall: ${first} → ${last}`);
  assert.ok(r.metrics!.accuracy > 0.7, `accuracy ${r.metrics!.accuracy}`);
  const ck = await readCheckpoint(out);
  assert.equal(ck.task, "toy");
  assert.equal(ck.trainer!.finished, true);
  assert.ok(ck.optimizer && Object.keys(ck.optimizer.tensors).length > 0, "optimizer state stored");
  assert.deepEqual(ck.metrics, r.metrics);
  // inference-only export: half-precision weights, no optimizer/trainer state, metrics and history kept
  const small = join(dir, "small.safetensors");
  const { bytes } = await exportCheckpoint(out, small, { half: true, notes: "toy" });
  const ex = await readCheckpoint(small);
  assert.equal(ex.optimizer, undefined);
  assert.equal(ex.trainer, undefined);
  assert.deepEqual(ex.metrics, r.metrics);
  assert.equal(ex.notes, "toy");
  assert.ok(bytes < readFileSync(out).length / 2, "export is smaller");
  for (const [k, w] of ck.weights) {
    const a = w.dataSync(), b = ex.weights.get(k)!.dataSync();
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-3 * Math.max(1, Math.abs(a[i])), `${k}[${i}] half rounding`);
  }
});

test("resume continues to exactly the same weights as an uninterrupted run", async () => {
  const full = join(dir, "full.safetensors"), part = join(dir, "part.safetensors");
  const a = await train(toyTask, { out: full, epochs: 3, seed: 7, ...quiet });
  // stop mid-epoch (batch 5 of 16 in epoch 2), then resume from the checkpoint
  const stopped = await train(toyTask, { out: part, epochs: 3, seed: 7, stopAfterSteps: 21, ...quiet });
  assert.equal(stopped.interrupted, true);
  assert.equal(stopped.state.globalStep, 21);
  const b = await train(toyTask, { out: part, resume: part, ...quiet });
  assert.equal(b.state.globalStep, a.state.globalStep);
  const wa = a.model.stateDict(), wb = b.model.stateDict();
  for (const k of Object.keys(wa)) assert.deepEqual(wb[k].dataSync(), wa[k].dataSync(), `parameter ${k} differs after resume`);
  assert.deepEqual(b.metrics, a.metrics);
  // the resumed epoch's train loss averages all its batches, as the uninterrupted run's does (issue 14, item 5)
  assert.deepEqual(b.state.history, a.state.history);
});

test("a run killed after an epoch's last periodic save and before its end-of-epoch save records the epoch's real loss", async () => {
  const full = join(dir, "full-e.safetensors"), part = join(dir, "part-e.safetensors");
  const a = await train(toyTask, { out: full, epochs: 2, seed: 5, ...quiet });
  // 16 batches an epoch; saves at steps 8 and 16, then the end-of-epoch evaluation "crashes" (as a kill would land):
  // the file on disk is at batch 16 of 16 of epoch 1, with no history entry for it yet
  let evals = 0;
  const crashing = { ...toyTask, evaluate: (...x: Parameters<typeof toyTask.evaluate>) => { if (evals++ === 0) throw new Error("killed"); return toyTask.evaluate(...x); } };
  await assert.rejects(train(crashing, { out: part, epochs: 2, seed: 5, checkpointEverySteps: 8, ...quiet }), /killed/);
  const mid = await readCheckpoint(part);
  assert.equal(mid.trainer!.batchInEpoch, 16);
  assert.equal(mid.trainer!.history.length, 0);
  const b = await train(toyTask, { out: part, resume: part, ...quiet });
  assert.ok(b.state.history[0].loss! > 0, `epoch 1 loss ${b.state.history[0].loss}`);
  assert.deepEqual(b.state.history, a.state.history);
});

test("resuming a checkpoint saved without the epoch sums (older versions) records how many batches the loss covers", async () => {
  const part = join(dir, "legacy.safetensors");
  await train(toyTask, { out: part, epochs: 2, seed: 3, stopAfterSteps: 21, ...quiet });
  const ck = await readCheckpoint(part);
  const { epochLossSum: _s, epochLossBatches: _b, ...legacy } = ck.trainer!;
  await saveCheckpoint(part, { task: ck.task, config: ck.config, model: ck.weights, optimizer: ck.optimizer, trainer: legacy });
  const lines: string[] = [];
  const b = await train(toyTask, { out: part, resume: part, quiet: true, log: (s) => lines.push(s) });
  assert.equal(b.state.history[0].batches, 16);
  assert.equal(b.state.history[1].batches, 11);                     // batches 5..15 of epoch 2: what was measured
  assert.ok(Number.isFinite(b.state.history[1].loss!));
  assert.match(lines.join("\n"), /over the last 11 of 16 batches/);
  // sums that do not match the position in the epoch are a corrupt state, named as such
  await saveCheckpoint(part, { task: ck.task, config: ck.config, model: ck.weights, optimizer: ck.optimizer, trainer: { ...ck.trainer!, epochLossBatches: 2 } });
  await assert.rejects(train(toyTask, { out: part, resume: part, ...quiet }), /epochLossSum\/epochLossBatches/);
});

test("a checkpoint killed mid-save (SIGKILL) is never corrupt", async () => {
  const path = join(dir, "kill.safetensors");
  const model = new ToyModel({ vocab: 4, dModel: 16, layers: 1, dropout: 0 });
  await saveCheckpoint(path, { task: "toy", config: { ...model.cfg }, model });
  const script = join(dir, "saver.mjs");
  const ckUrl = new URL("../src/node/checkpoint.js", import.meta.url).href;
  const toyUrl = new URL("./helpers/toy-task.js", import.meta.url).href;
  writeFileSync(script, `
    import { saveCheckpoint } from ${JSON.stringify(ckUrl)};
    import { ToyModel } from ${JSON.stringify(toyUrl)};
    const m = new ToyModel({ vocab: 4, dModel: 16, layers: 1, dropout: 0 });
    const big = { tensors: { "0.exp_avg": new Float32Array(3_000_000).fill(1) }, scalars: { stepCount: 1 } };
    for (let i = 0; ; i++) {
      await saveCheckpoint(${JSON.stringify(path)}, { task: "toy", config: { ...m.cfg }, model: m, optimizer: big, notes: "save " + i });
      if (i === 0) process.stdout.write("saving\\n");
    }`);
  for (let round = 0; round < 4; round++) {
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((res) => child.stdout!.once("data", () => res()));
    await new Promise((r) => setTimeout(r, 20 + 37 * round));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const ck = await readCheckpoint(path); // throws if truncated or corrupt
    assert.equal(ck.task, "toy");
  }
});

test("bad checkpoints are rejected with the reason", async () => {
  const notCk = join(dir, "plain.bin");
  writeFileSync(notCk, Buffer.from("hello world, not a checkpoint"));
  await assert.rejects(readCheckpoint(notCk), /plain\.bin/);
  await assert.rejects(readCheckpoint(join(dir, "missing.safetensors")), /cannot read/);
  await assert.rejects(train(toyTask, { out: join(dir, "x.safetensors"), lr: -1, ...quiet }), /--lr must be positive/);
  await assert.rejects(train(toyTask, { out: join(dir, "x.safetensors"), overrides: { dModle: 8 }, ...quiet }), /unknown model option "dModle"/);
});

test("an output path that cannot be written is an error before training starts, naming the path", async () => {
  let loaded = 0;
  const counting = { ...toyTask, loadData: (o: Parameters<typeof toyTask.loadData>[0]) => { loaded++; return toyTask.loadData(o); } };
  const aFile = join(dir, "a-file");
  writeFileSync(aFile, "x");
  const bad: [string, RegExp][] = [
    [dir, /is a directory/],                                   // a directory, not a file name
    [join(aFile, "ck.safetensors"), /a-file/],                 // a parent that is a file
  ];
  if (process.platform === "linux") {
    bad.push(["/dev/null", /not a regular file/]);             // a device
    bad.push(["/proc/self/ck.safetensors", /not writable/]);   // a directory nobody (not even root) may create files in
  }
  for (const [out, re] of bad) {
    await assert.rejects(train(counting, { out, epochs: 1, ...quiet }), (e: Error) => re.test(e.message) && e.message.includes(out.split("/").pop()!), out);
  }
  assert.equal(loaded, 0, "no data loaded (no training) for an unwritable output");
});

test("attnflow train --list lists the tasks and succeeds; train without a task is a usage error", async () => {
  const { trainCommand } = await import("../cli/train.js");
  const log = console.log, lines: string[] = [];
  console.log = (s: string) => { lines.push(String(s)); };
  try {
    assert.equal(await trainCommand({ _: ["train"], flags: { list: true } }), 0);
    assert.match(lines.join("\n"), /fashion-vit/);
    assert.equal(await trainCommand({ _: ["train"], flags: {} }), 2);
  } finally { console.log = log; }
});
