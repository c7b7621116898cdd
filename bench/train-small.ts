// Small-model training step timing (not a peer comparison): Embedding → TransformerEncoder (batch-first) →
// mean over tokens → Linear → cross-entropy, AdamW, inside tidy() as a training loop would run it.
//   node dist/bench/train-small.js [--layers 4] [--d 64] [--heads 4] [--ff 128] [--batch 128] [--tokens 50]
//     [--dropout 0.1] [--steps 12] [--backend native|reference] [--json]
// Prints the median step time over the timed steps (after 2 warm-up steps) and the load average.
import { loadavg } from "node:os";
import * as af from "../src/node.js";

const argv = process.argv.slice(2);
function opt(name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`train-small: --${name} needs a number, got ${argv[i + 1]}`);
  return v;
}
const L = opt("layers", 4), D = opt("d", 64), H = opt("heads", 4), FF = opt("ff", 128);
const B = opt("batch", 128), T = opt("tokens", 50), P = opt("dropout", 0.1), STEPS = opt("steps", 12);
const V = 1000, C = 10;
const bi = argv.indexOf("--backend");
if (bi >= 0) af.setBackend(argv[bi + 1]);

class Model extends af.nn.Module {
  emb = new af.nn.Embedding(V, D);
  enc = new af.nn.TransformerEncoder(() => new af.nn.TransformerEncoderLayer(D, H, { dimFeedforward: FF, dropout: P, batchFirst: true }), L);
  head = new af.nn.Linear(D, C);
  forward(tokens: af.Tensor): af.Tensor {
    return this.head.forward(this.enc.forward(this.emb.forward(tokens)).mean(1)); // (B, C)
  }
}

af.manualSeed(1);
const model = new Model();
model.train();
const opt_ = new af.optim.AdamW(model.parameters(), { lr: 1e-3 });
const tokens = af.randint(0, V, [B, T], { dtype: "int32" });
const labels = af.randint(0, C, [B], { dtype: "int32" });

function step(): number {
  return af.tidy(() => {
    opt_.zeroGrad();
    const loss = af.functional.crossEntropy(model.forward(tokens), labels);
    loss.backward();
    opt_.step();
    return loss.item();
  });
}

const times: number[] = [];
let last = 0, cpu = Infinity; // minimum process CPU time per step (all threads): steadier than wall time on a busy machine
for (let s = 0; s < STEPS + 2; s++) {
  const c0 = process.cpuUsage(), t0 = performance.now();
  last = step();
  if (s >= 2) {
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1000);
  }
}
times.sort((a, b) => a - b);
const med = times[Math.floor(times.length / 2)];
const res = { backend: af.getBackend(), L, D, H, FF, B, T, dropout: P, medianMs: med, minMs: times[0], maxMs: times[times.length - 1],
  minCpuMs: cpu, loss: last, load: loadavg()[0] };
if (argv.includes("--json")) console.log(JSON.stringify(res));
else console.log(`train-small ${res.backend} L${L} d${D} h${H} ff${FF} (${B}×${T}) dropout ${P}: median ${med.toFixed(1)} ms ` +
  `(min ${res.minMs.toFixed(1)}, max ${res.maxMs.toFixed(1)}, min cpu ${cpu.toFixed(1)}), loss ${last.toFixed(4)}, load ${res.load.toFixed(2)}`);
