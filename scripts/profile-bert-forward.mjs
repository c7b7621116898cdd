#!/usr/bin/env node
// Where a BertModel forward's time goes on the native backend (a diagnostic, not a benchmark: run it under
// `flock /tmp/attnflow-bench.lock` on a shared machine and compare builds interleaved).
//   node scripts/profile-bert-forward.mjs [DIR] [--T 128] [--iters 20] [--mode time|prof|stub] [--dist dist]
//   DIR: an HF BERT folder (default bench/.cache/hf/bert-base-seed1, written by `npm run bench -- --case hf-bert-base-t128`)
//   time: wall and process-CPU ms per forward (median, min); with ATTNFLOW_NUM_THREADS=1 the CPU time is the work
//         itself, much less disturbed by other load than the wall time
//   prof: process-CPU ms per forward inside each kernel call, by kernel and GEMM shape (the rest is JS and N-API)
//   stub: the GEMM, attention and layer-norm kernels replaced by no-ops: what the forward costs outside them
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const dir = args.find((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--"))) ?? join("bench", ".cache", "hf", "bert-base-seed1");
const T = Number(opt("T", 128)), iters = Number(opt("iters", 20)), mode = opt("mode", "time");
const dist = resolve(opt("dist", "dist"));
if (!["time", "prof", "stub"].includes(mode)) throw new Error(`--mode must be time, prof or stub, got ${mode}`);
const api = await import(pathToFileURL(join(dist, "src", "node.js")).href);
const reg = await import(pathToFileURL(join(dist, "src", "backend", "registry.js")).href);
api.setBackend("native");
const { model } = await api.hf.fromPretrained(dir, { tokenizer: false });
const V = model.config.vocab_size ?? 30522, ids = new Int32Array(T);
for (let i = 0; i < T; i++) ids[i] = (i * 7919 + 13) % V;
const inputs = { inputIds: api.Tensor.fromArray(ids, [1, T]), attentionMask: api.Tensor.fromArray(new Int32Array(T).fill(1), [1, T]) };
const step = () => api.tidy(() => api.noGrad(() => model.forward(inputs).lastHiddenState.toFloat32Array()));
const cpuMs = (c0) => { const c = process.cpuUsage(c0); return (c.user + c.system) / 1000; };
const info = reg.backendInfo("native");
const stats = new Map();
if (mode === "prof") {
  for (const [name, f] of Object.entries(info.kernels)) {
    if (typeof f !== "function") continue;
    info.kernels[name] = function (...a) {
      const c0 = process.cpuUsage();
      const r = f.apply(this, a);
      const key = name === "gemmBiasAct" ? `${name} M${a[2]} N${a[3]} K${a[4]} ${a[22]}` : name === "linearGroup" ? `${name} M${a[2]} K${a[3]} N ${a[9].map((p) => p.N).join("+")}`
        : name === "linearAddLayerNorm" ? `${name} M${a[2]} N${a[6]} K${a[3]}` : name;
      const s = stats.get(key) ?? { n: 0, ms: 0 };
      s.n++; s.ms += cpuMs(c0);
      stats.set(key, s);
      return r;
    };
  }
  reg.setBackend("native");
}
const warm = performance.now();
while (performance.now() - warm < 1000) step();
if (mode === "stub") {
  for (const k of ["gemmBiasAct", "linearGroup", "linearAddLayerNorm", "attnForwardLayout", "layerNormForward"]) if (info.kernels[k]) info.kernels[k] = () => {};
  reg.setBackend("native");
  for (let i = 0; i < 20; i++) step();
}
stats.clear();
const wall = [], cpu = [];
for (let i = 0; i < iters; i++) {
  const c0 = process.cpuUsage(), t0 = performance.now();
  step();
  wall.push(performance.now() - t0);
  cpu.push(cpuMs(c0));
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1], min = (a) => Math.min(...a);
console.log(`BertModel forward, T ${T}, ${mode}, ${iters} runs, ${process.env.ATTNFLOW_NUM_THREADS ?? "default"} threads: wall median ${med(wall).toFixed(2)} ms (min ${min(wall).toFixed(2)}), process CPU median ${med(cpu).toFixed(2)} ms (min ${min(cpu).toFixed(2)})`);
if (mode === "prof") {
  let total = 0;
  for (const [k, s] of [...stats].sort((a, b) => b[1].ms - a[1].ms)) {
    total += s.ms;
    console.log(`${(s.ms / iters).toFixed(2).padStart(9)} ms  ${String(s.n / iters).padStart(4)}×  ${k}`);
  }
  console.log(`${(total / iters).toFixed(2).padStart(9)} ms  in kernels (process CPU per forward)`);
}
