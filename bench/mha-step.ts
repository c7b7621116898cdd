// Quick timing of the benchmark's MHA shapes through the public API (no peers, no cross-checks): forward without
// weights and the forward+backward training step, min and median over repeated runs inside tidy().
//   node dist/bench/mha-step.js [--b 8] [--t 128] [--d 768] [--h 12] [--reps 20] [--batch-first 1] [--backend native]
import { loadavg } from "node:os";
import * as af from "../src/node.js";

const argv = process.argv.slice(2);
function opt(name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`mha-step: --${name} needs a number, got ${argv[i + 1]}`);
  return v;
}
const B = opt("b", 8), T = opt("t", 128), D = opt("d", 768), H = opt("h", 12), REPS = opt("reps", 20), BF = opt("batch-first", 1) === 1;
const bi = argv.indexOf("--backend");
if (bi >= 0) af.setBackend(argv[bi + 1]);

af.manualSeed(1);
const mha = new af.nn.MultiheadAttention(D, H, { batchFirst: BF });
const x = af.randn(BF ? [B, T, D] : [T, B, D]);
const g = af.randn(BF ? [B, T, D] : [T, B, D]);

/** Wall-clock min/median, and the minimum process CPU time (all threads): steadier than wall time on a busy machine. */
function stats(fn: () => void): { min: number; median: number; cpu: number } {
  for (let i = 0; i < 3; i++) fn();
  const s: number[] = [];
  let cpu = Infinity;
  for (let i = 0; i < REPS; i++) {
    const c0 = process.cpuUsage(), t0 = performance.now();
    fn();
    s.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1000);
  }
  s.sort((a, b) => a - b);
  return { min: s[0], median: s[s.length >> 1], cpu };
}

mha.eval();
const fwd = stats(() => af.tidy(() => { af.noGrad(() => mha.forward(x, x, x, { needWeights: false }))[0].dataSync(); }));
mha.train();
const params = mha.parameters();
const train = stats(() => af.tidy(() => {
  for (const p of params) p.grad = null;
  const [y] = mha.forward(x, x, x, { needWeights: false });
  y.mul(g).sum().backward();
  mha.inProjWeight!.grad!.dataSync();
}));
const f = (v: number) => v.toFixed(2);
console.log(`mha (${B},${T},${D}) h${H} batchFirst=${BF} ${af.getBackend()}: forward min ${f(fwd.min)} med ${f(fwd.median)} ` +
  `cpu ${f(fwd.cpu)} ms; train step min ${f(train.min)} med ${f(train.median)} cpu ${f(train.cpu)} ms; load ${loadavg()[0].toFixed(2)}`);
