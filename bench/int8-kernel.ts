// The native dynamic-int8 linear kernels alone (no module overhead), A/B interleaved in one process: for each
// projection shape of the int8 bench (BERT-base-sized D 768, FFN 3072), every int8 kernel this addon can run
// (native setInt8: amx, avx512-vnni, avx512bw), round-robin, reporting the minimum and median of each (the minimum is
// what a shared machine can still tell apart). GMAC/s = M·N·K / time.
// flock /tmp/attnflow-bench.lock node dist/bench/int8-kernel.js [--reps 50] [--threads 1] [--cold]
import { cpus, loadavg } from "node:os";
import { loadNativeKernels } from "../src/node/native-addon.js";
import { packQuantizedWeights } from "../src/backend/ref/qlinear.js";
import { mulberry32 } from "./lib/prng.js";

const args = process.argv.slice(2);
const reps = Number(args[args.indexOf("--reps") + 1]) || 50;
// --cold: cycle through 12 copies of each weight matrix (a 12-layer model's weights do not stay in cache)
const copies = args.includes("--cold") ? 12 : 1;
const threads = args.includes("--threads") ? Number(args[args.indexOf("--threads") + 1]) : 0;
const n = loadNativeKernels().kernels;
if (!n?.qlinear) throw new Error("native addon with qlinear not built");
if (threads) n.setNumThreads(threads);
const kernels = (["amx", "avx512-vnni", "avx512bw"] as const).filter((k) => n.setInt8?.(k));
n.setInt8?.("auto");
console.log(`${cpus()[0].model}, ${n.info().threads} threads, load ${loadavg()[0].toFixed(1)}; kernels ${kernels.join(", ") || n.info().int8}`);
const rand = mulberry32(7);
for (const [M, N, K] of [[1, 2304, 768], [128, 2304, 768], [128, 768, 768], [128, 3072, 768], [128, 768, 3072], [512, 3072, 768], [1024, 2304, 768]]) {
  const x = Float32Array.from({ length: M * K }, () => rand() * 2 - 1);
  const q = Int8Array.from({ length: N * K }, () => Math.floor(rand() * 256) - 128);
  const ws = Array.from({ length: copies }, () => packQuantizedWeights(q, N, K, new Float32Array(N).fill(0.01)));
  const bias = new Float32Array(N), y = new Float32Array(M * N);
  const t: Record<string, number[]> = {};
  const names: string[] = kernels.length ? [...kernels] : [n.info().int8!];
  for (const k of names) t[k] = [];
  for (let i = 0; i < reps + 3; i++) {
    for (const k of names) {
      if (kernels.length) n.setInt8!(k as "amx");
      const t0 = performance.now();
      const w = ws[i % copies];
      n.qlinear(x, 0, M, K, K, w.packed, N, w.colSum, w.scale, bias, y, 0, N, null);
      if (i >= 3) t[k].push(performance.now() - t0);
    }
  }
  n.setInt8?.("auto");
  const line = names.map((k) => {
    const s = t[k].sort((a, b) => a - b);
    return `${k} min ${s[0].toFixed(3)} med ${s[s.length >> 1].toFixed(3)} ms (${((M * N * K) / s[0] / 1e6).toFixed(0)} GMAC/s)`;
  });
  console.log(`M ${M} N ${N} K ${K}: ${line.join(" | ")}`);
}
