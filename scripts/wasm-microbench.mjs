#!/usr/bin/env node
// Micro-benchmark of the Wasm backend's MHA pieces (median ms of repeated runs; wall and CPU time of this thread):
//   ATTNFLOW_THREADS=1|2 node scripts/wasm-microbench.mjs [--B 1] [--T 128] [--quick]
// Rows: the whole nn.MultiheadAttention forward, and its kernels called directly (in-projection gemmBiasAct,
// fused attention through the token-major layout, out-projection gemmBiasAct), each with the same operands.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadavg } from "node:os";

const root = process.env.ATTNFLOW_ROOT ?? resolve(dirname(fileURLToPath(import.meta.url)), "..");
const af = await import(pathToFileURL(join(root, "dist", "src", "node.js")).href);
const reg = await import(pathToFileURL(join(root, "dist", "src", "backend", "registry.js")).href);
const argv = process.argv.slice(2);
const opt = (name, d) => { const i = argv.indexOf(name); return i >= 0 ? Number(argv[i + 1]) : d; };
const B = opt("--B", 1), T = opt("--T", 128), D = 768, H = 12, dh = 64;
const minMs = argv.includes("--quick") ? 300 : 1000;
af.setBackend("wasm");
await af.wasmBackendReady();

function randn(n) { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1; return a; }
function time(fn) {
  for (let i = 0; i < 3; i++) fn();
  const wall = [], cpu = [];
  const t0 = performance.now();
  while (wall.length < 7 || (performance.now() - t0 < minMs && wall.length < 400)) {
    const c = process.cpuUsage(), s = performance.now();
    fn();
    wall.push(performance.now() - s);
    const d = process.cpuUsage(c); cpu.push((d.user + d.system) / 1000);
  }
  const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
  return [med(wall), med(cpu)];
}
/** Two variants timed alternately (A/B in one run: the machine's load hits both alike). */
function pair(name, fa, fb, flops) {
  for (let i = 0; i < 3; i++) { fa(); fb(); }
  const ws = [[], []], cs = [[], []];
  const t0 = performance.now();
  while (ws[0].length < 7 || (performance.now() - t0 < 2 * minMs && ws[0].length < 400)) {
    [fa, fb].forEach((fn, k) => {
      const c = process.cpuUsage(), s = performance.now();
      fn();
      ws[k].push(performance.now() - s);
      const d = process.cpuUsage(c); cs[k].push((d.user + d.system) / 1000);
    });
  }
  const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
  for (const k of [0, 1]) {
    console.log(`${(name + (k ? " [B]" : " [A]")).padEnd(40)} wall ${med(ws[k]).toFixed(3).padStart(8)} ms  cpu ${med(cs[k]).toFixed(3).padStart(8)} ms  ${(flops / med(ws[k]) / 1e6).toFixed(1).padStart(6)} GFLOP/s`);
  }
}
const rows = [];
function row(name, fn, flops) {
  const [w, c] = time(fn);
  rows.push(name);
  console.log(`${name.padEnd(40)} wall ${w.toFixed(3).padStart(8)} ms  cpu ${c.toFixed(3).padStart(8)} ms  ${(flops / w / 1e6).toFixed(1).padStart(6)} GFLOP/s`);
}

const Kt = () => reg.K;
const x = randn(B * T * D), Win = randn(3 * D * D), bin = randn(3 * D), Wout = randn(D * D), bout = randn(D);
const qkv = new Float32Array(B * T * 3 * D), att = new Float32Array(B * T * D), y = new Float32Array(B * T * D), lse = new Float32Array(B * H * T);
const M = B * T;
const keyIn = { id: -1, version: 0 }, keyOut = { id: -2, version: 0 };
// the Wasm module starts at the first kernel call and its workers asynchronously: wait for them (up to 10 s)
reg.K.gemm(false, false, 1, 1, 1, 1, new Float32Array(1), 0, 1, new Float32Array(1), 0, 1, 0, new Float32Array(1), 0, 1, 1, 0, 0, 0);
const want = Number(process.env.ATTNFLOW_THREADS ?? 1) - 1;
for (let i = 0; i < 100 && af.wasmWorkerCount() < want; i++) await new Promise((r) => setTimeout(r, 100));
console.log(`wasm MHA (${B}, ${T}, ${D}) threads ${af.wasmWorkerCount() + 1} load ${loadavg()[0].toFixed(2)} (${reg.backendInfo("wasm").description})`);
const mha = new af.nn.MultiheadAttention(D, H, { batchFirst: true }); mha.eval();
const xt = af.Tensor.fromArray(x, [B, T, D]);
const mhaFlops = 2 * B * T * D * D * 4 + 4 * B * T * T * D;
row("mha forward (module)", () => af.tidy(() => af.noGrad(() => mha.forward(xt, xt, xt, { needWeights: false })[0].dataSync())), mhaFlops);
row("in-proj gemmBiasAct (M×2304×768)", () => Kt().gemmBiasAct(false, true, M, 3 * D, D, 1, x, 0, D, Win, 0, D, 0, qkv, 0, 3 * D, 1, 0, 0, 0, bin, 0, "none", keyIn), 2 * M * 3 * D * D);
const a = { B, H, Hkv: H, Tq: T, Tk: T, D: dh, Dv: dh, scale: 1 / 8, causal: false, dropoutP: 0, seed: 0, keyPad: null, attnMask: null, maskB: 1, maskH: 1 };
const lay = { q: [0, T * 3 * D, dh, 3 * D], k: [D, T * 3 * D, dh, 3 * D], v: [2 * D, T * 3 * D, dh, 3 * D], out: [0, T * D, dh, D] };
row("attnForwardLayout", () => Kt().attnForwardLayout(qkv, qkv, qkv, att, lse, a, lay), 4 * B * T * T * D);
row("out-proj gemmBiasAct (M×768×768)", () => Kt().gemmBiasAct(false, true, M, D, D, 1, att, 0, D, Wout, 0, D, 0, y, 0, D, 1, 0, 0, 0, bout, 0, "none", keyOut), 2 * M * D * D);
pair("in-proj: A uncached, B cached", () => Kt().gemmBiasAct(false, true, M, 3 * D, D, 1, x, 0, D, Win, 0, D, 0, qkv, 0, 3 * D, 1, 0, 0, 0, bin, 0, "none", null),
  () => Kt().gemmBiasAct(false, true, M, 3 * D, D, 1, x, 0, D, Win, 0, D, 0, qkv, 0, 3 * D, 1, 0, 0, 0, bin, 0, "none", keyIn), 2 * M * 3 * D * D);
console.log(JSON.stringify(af.wasmPackCacheInfo()));
