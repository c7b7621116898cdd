// Every explanation method on a BERT-base-sized model (12 layers, hidden 768, 12 heads; HF BertForSequenceClassification
// with its random init, manualSeed 0), one input of T tokens: wall and CPU time per method, and blank-out (T forward
// passes) batched next to T batched forwards of the unoccluded input.
//
//   node dist/bench/explain-bert.js [--t 128] [--batch 16] [--no-blankout] [--workers 2]
//
// Blank-out FLOP bound: one BERT-base forward at T tokens is ≈ 2·T·(12·L·D²) + 4·L·T²·D multiply-adds×2 (QKV, output,
// FFN 4D; scores and context), i.e. ≈ 22 GFLOP at T 128; blank-out needs T such passes (one per occluded token):
// ≈ 2.8 TFLOP at T 128. It cannot cost less than T forwards; batching makes it cost what T batched forwards cost.
import { modelFromConfig } from "../src/hf/index.js";
import { tensor, manualSeed, noGrad, getBackend } from "../src/node.js";
import { backendInfo } from "../src/backend/registry.js"; // the Node entry: the native backend when built
import type { Tensor } from "../src/tensor.js";
import type { ExplainTarget } from "../src/tasks/task.js";
import { runExplanation } from "../src/explain/explain-run.js";
import { blankOut } from "../src/explain/attribution.js";
import { FlowWorkerPool } from "../src/node/flow-workers.js";
import { flowRowsLocal } from "../src/explain/explain-run.js";

function args() {
  const o = { t: 128, batch: 16, blankout: true, workers: 2 };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === "--t") o.t = Number(a[++i]);
    else if (a[i] === "--batch") o.batch = Number(a[++i]);
    else if (a[i] === "--no-blankout") o.blankout = false;
    else if (a[i] === "--workers") o.workers = Number(a[++i]);
    else throw new Error(`unknown argument ${a[i]}; usage: explain-bert [--t 128] [--batch 16] [--no-blankout] [--workers 2]`);
  }
  if (!(o.t >= 4 && o.t <= 512) || !(o.batch >= 1) || !(o.workers >= 1)) throw new Error("--t in 4..512, --batch >= 1, --workers >= 1");
  return o;
}

const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

async function main(): Promise<void> {
  const o = args(), T = o.t;
  manualSeed(0);
  const model = modelFromConfig({ model_type: "bert", architectures: ["BertForSequenceClassification"], num_labels: 2 });
  model.eval();
  const L = 12, D = 768;
  const ids = Array.from({ length: T }, (_, i) => (i === 0 ? 101 : i === T - 1 ? 102 : 1000 + (i * 7919) % 20000));
  const MASK = 103;
  const batchIds = (occ: ReadonlyArray<readonly number[]>) => {
    const v = new Int32Array(occ.length * T);
    occ.forEach((ps, k) => { v.set(ids, k * T); for (const p of ps) v[k * T + p] = MASK; });
    return tensor(v, { dtype: "int32" }).reshape([occ.length, T]);
  };
  const target: ExplainTarget = {
    tokens: ids.map((i) => `#${i}`), targetLabel: "LABEL_1", targetIndex: 1, special: [0, T - 1], query: 0,
    // onEmbeddings: HF's inputs_embeds point, so input x gradient runs too
    score: (s) => model.forward({ inputIds: batchIds([s?.occlude ?? []]) }, { onEmbeddings: s?.onEmbeddings }).logits!.select(0, 0).select(0, 1),
    scoreBatch: (occ) => model.forward({ inputIds: batchIds(occ) }).logits!.select(1, 1),
  };
  const pool = new FlowWorkerPool(o.workers);
  const flowRows = (res: Parameters<typeof flowRowsLocal>[0], rows: Parameters<typeof flowRowsLocal>[1], p?: (d: number, n: number) => void) => (o.workers > 1 ? pool.flowRows(res, rows, "auto", p) : flowRowsLocal(res, rows, p));
  const fwdFlop = 2 * T * 12 * L * D * D + 4 * L * T * T * D;
  const lines: string[] = [`BERT-base-sized (L ${L}, D ${D}, H 12), random init, T ${T}; one forward ≈ ${(fwdFlop / 1e9).toFixed(1)} GFLOP; backend ${getBackend()} (${backendInfo()?.description ?? "?"})`];
  try {
    // warm-up: one forward, one flow row
    noGrad(() => model.forward({ inputIds: batchIds([[]]) }).logits!.dispose());
    const w0 = performance.now(), c0 = cpuMs();
    const e = await runExplanation(target, model, { methods: ["raw", "rollout", "flow", "grad", "inputgrad"], flowRows, matrices: false });
    const wall = performance.now() - w0, cpu = cpuMs() - c0;
    lines.push(`raw, rollout, flow, grad, inputgrad together: ${(wall / 1000).toFixed(2)} s wall, ${(cpu / 1000).toFixed(2)} s CPU (this process, workers included); per method (ms, capture in the first): ${JSON.stringify(e.timings)}`);
    if (o.blankout) {
      const n = T - 2;   // the non-special positions
      // T batched forwards of the plain input (the floor blank-out is measured against)
      const f0 = performance.now(), fc0 = cpuMs();
      noGrad(() => { for (let k = 0; k < n; k += o.batch) { const s: Tensor = target.scoreBatch!(Array.from({ length: Math.min(o.batch, n - k) }, () => [])); s.dataSync(); s.dispose(); } });
      const fwall = performance.now() - f0, fcpu = cpuMs() - fc0;
      const b0 = performance.now(), bc0 = cpuMs();
      blankOut(target, T, { skip: [0, T - 1], batch: o.batch });
      const bwall = performance.now() - b0, bcpu = cpuMs() - bc0;
      lines.push(`${n} batched forwards (batch ${o.batch}): ${(fwall / 1000).toFixed(2)} s wall, ${(fcpu / 1000).toFixed(2)} s CPU (${(n * fwdFlop / 1e12).toFixed(2)} TFLOP)`);
      lines.push(`blank-out (${n} occluded copies + the base score, batch ${o.batch}): ${(bwall / 1000).toFixed(2)} s wall, ${(bcpu / 1000).toFixed(2)} s CPU: ${(bwall / fwall).toFixed(2)}x the batched forwards (wall), ${(bcpu / fcpu).toFixed(2)}x (CPU)`);
    }
  } finally {
    await pool.close();
  }
  process.stdout.write(lines.join("\n") + "\n");
}

main().catch((e) => { process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`); process.exit(1); });
