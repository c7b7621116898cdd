// A full training run on the WebGPU device: the char-lm task's model (CharGPT, src/tasks/char-lm.ts, at a tiny size)
// trained for 200 steps on its windows of a small text with the trainer's recipe — AdamW (decay on matrices only),
// linear warm-up + cosine decay, gradient clipping (clipGradNormTensor: nothing read back), dropout 0.1 (residual,
// embedding and attention dropout) — everything on the device. Checks: parameters equal to the same run on the
// reference backend after 4 steps (same data, same dropout masks from the same generator state), and the loss going
// down over the run. Skips without an adapter, fails under CI=true (test/helpers/webgpu.ts).
import assert from "node:assert/strict";
import { gpuTest, close } from "./helpers/webgpu.js";
import * as af from "../src/index.js";
import { CharGPT } from "../src/models/char-gpt.js";
import { windows } from "../src/tasks/char-lm.js";
import { CosineWithWarmup } from "../src/optim/schedulers.js";
import type { Tensor } from "../src/tensor.js";

af.setBackend("reference");

const TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat by a log. ".repeat(6);
const chars = [...new Set(TEXT)].sort();
const ids = Int32Array.from(TEXT, (c) => chars.indexOf(c));
const T = 16, B = 8, STEPS = 150;

/** The run: `steps` optimizer steps on `device`; returns the model, the per-step losses (read back at the end). */
async function run(device: "cpu" | "webgpu", steps: number): Promise<{ model: CharGPT; losses: number[] }> {
  af.manualSeed(77);                                                   // dropout stream (the trainer seeds it too)
  const model = new CharGPT({ vocabSize: chars.length, blockSize: T, dModel: 24, nHeads: 2, nLayers: 2, dropout: 0.1 }, new af.Generator(3));
  if (device !== "cpu") model.to(device);
  const decay: Tensor[] = [], plain: Tensor[] = [];
  for (const p of model.parameters()) (p.ndim >= 2 ? decay : plain).push(p);
  const opt = new af.optim.AdamW([{ params: decay, weightDecay: 0.01 }, { params: plain, weightDecay: 0 }], { lr: 3e-3 });
  const sched = new CosineWithWarmup(opt, 10, STEPS, 0.1);
  const data = new af.Generator(5);                                    // window starts: the same on both runs
  const losses: Tensor[] = [];
  model.train();
  for (let s = 0; s < steps; s++) {
    const starts = Array.from({ length: B }, () => data.int(ids.length - T - 1));
    const { x, y } = windows(ids, starts, T);                           // host token ids (uploaded by the embedding)
    losses.push(af.tidy(() => {
      const loss = model.lossOn(x, y);
      opt.zeroGrad();
      loss.backward();
      if (device === "cpu") af.clipGradNorm(model.parameters(), 1.0); else af.clipGradNormTensor(model.parameters(), 1.0);
      opt.step();
      return loss.detach();
    }));
    sched.step();
  }
  const out: number[] = [];
  for (const l of losses) out.push((await l.data())[0]);
  return { model, losses: out };
}

gpuTest("training run: a char-lm CharGPT trains on the device (AdamW + schedule + clipping + dropout), equal to the reference run for 4 steps, loss going down over 150", async () => {
  const cpu = await run("cpu", 4), gpu4 = await run("webgpu", 4);
  for (let s = 0; s < 4; s++) assert.ok(Math.abs(cpu.losses[s] - gpu4.losses[s]) < 1e-4, `step ${s}: loss ${gpu4.losses[s]} on webgpu vs ${cpu.losses[s]}`);
  const cp = cpu.model.namedParameters(), gp = new Map(gpu4.model.namedParameters());
  for (const [name, p] of cp) {
    const g = gp.get(name)!;
    assert.equal(g.device, "webgpu", `${name} stays on the device`);
    await close(g, p, `${name} after 4 steps`, 2e-5, 1e-3);
  }
  const { losses } = await run("webgpu", STEPS);
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const first = mean(losses.slice(0, 10)), last = mean(losses.slice(-20));
  assert.ok(losses.every(Number.isFinite), "finite losses");
  assert.ok(last < 0.5 * first, `loss goes down: first 10 steps ${first.toFixed(3)}, last 20 ${last.toFixed(3)}`);
});

gpuTest("generate() with the KV cache on the device: a CharGPT's greedy continuation (cache on the device) equals the reference's", async () => {
  const { generate, generateAsync } = await import("../src/models/generate.js");
  const { model } = await run("cpu", 60);                               // trained a little: its tokens follow the context
  model.eval();
  const prompt = Array.from(ids.subarray(0, 5));
  // 20 tokens from a prompt of 5 in a block of 16: the cache fills and is refilled once
  const cpu = generate(model, prompt, { maxNewTokens: 20, temperature: 0 });
  model.to("webgpu");
  const gpu = await generateAsync(model, prompt, { maxNewTokens: 20, temperature: 0 });
  assert.deepEqual(gpu.ids, cpu.ids);
  assert.equal(gpu.ids.length, 20);
  assert.ok(new Set(cpu.ids).size >= 4, `a continuation that depends on its context: ${cpu.ids.map((i) => chars[i]).join("")}`);
});
