// Why Linformer stays at chance on the needle task (docs/long-attention.md): the bench's 2-layer model trained at
// T = 32 only (k = 64 slots ≥ T, maxLength 32), the --check-short protocol of bench/long-attention.ts (AdamW lr 5e-3,
// weight decay 0.01, batch 16, seed 7), with E and F started and trained differently:
//   independent  E, F ~ N(0, 1/k) drawn separately (the paper's and the module's default)
//   shareKV      one E for keys and values
//   tied         F starts as a copy of E, both trained        tied, frozen   the same, E and F not trained
//   identity     E = F = I (Linformer is then full attention)  identity, frozen
// and full attention as the baseline. Prints the final loss (EMA, chance ln 8 = 2.079) and the mean over positions
// p of cos(E[:, p], F[:, p]) per layer: how much slot s's value F_s·V comes from the positions its key E_s·K does.
//   npx tsc -p tsconfig.json && node dist/bench/long-attention-linformer.js [--steps 400]
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import * as af from "../src/node.js";
import { DEFAULT_CONFIG, NeedleModel, VALUES, charId, needleBatch, prng, type AttnKind } from "./long-attention-model.js";

const argv = process.argv.slice(2);
const si = argv.indexOf("--steps"), steps = si >= 0 ? Number(argv[si + 1]) : 400;
if (!Number.isInteger(steps) || steps <= 0) throw new Error(`long-attention-linformer: --steps needs a positive integer, got ${argv[si + 1]}`);
const T = 32;

/** The training text of bench/long-attention.ts (copyright files, every 10th held out) as char ids. */
function trainText(): Uint8Array {
  const root = "/usr/share/doc";
  const paths = readdirSync(root).sort().map((d) => join(root, d, "copyright")).filter((p) => existsSync(p));
  const ids: number[] = [];
  paths.forEach((p, i) => {
    if (i % 10 === 0) return;
    for (const c of readFileSync(p)) ids.push(charId(c));
    ids.push(charId(10));
  });
  return Uint8Array.from(ids);
}

type Init = "independent" | "shareKV" | "tied" | "identity";

/** Mean over positions of cos(E[:, p], F[:, p]); 1 with shareKV. */
function alignment(lf: af.nn.LinformerAttention): number {
  if (!lf.projV) return 1;
  const E = lf.projK.dataSync() as Float32Array, F = lf.projV.dataSync() as Float32Array, k = lf.projLength, n = lf.maxLength;
  let s = 0;
  for (let p = 0; p < n; p++) {
    let ef = 0, ee = 0, ff = 0;
    for (let r = 0; r < k; r++) { const a = E[r * n + p], b = F[r * n + p]; ef += a * b; ee += a * a; ff += b * b; }
    s += ef / Math.sqrt(ee * ff);
  }
  return s / n;
}

function run(text: Uint8Array, kind: AttnKind, init: Init, frozen: boolean): string {
  af.manualSeed(7);
  const model = new NeedleModel(kind, { ...DEFAULT_CONFIG, maxLength: T, shareKV: init === "shareKV" });
  const lfs = [...model.blocks].map((b) => b.attn.lf).filter((x): x is af.nn.LinformerAttention => x !== null);
  if (init === "tied" || init === "identity") {
    const sd = model.stateDict(), upd: Record<string, af.Tensor> = {};
    for (const [name, p] of Object.entries(sd)) {
      if (!/proj_[kv]$/.test(name)) continue;
      let e = sd[name.replace(/proj_v$/, "proj_k")].dataSync() as Float32Array;
      if (init === "identity") { e = new Float32Array(e.length); for (let i = 0; i < Math.min(p.shape[0], T); i++) e[i * T + i] = 1; }
      upd[name] = af.Tensor.fromArray(e, p.shape);
    }
    model.loadStateDict(upd, { strict: false });
  }
  if (frozen) for (const lf of lfs) { lf.projK.requiresGrad_(false); lf.projV?.requiresGrad_(false); }
  model.train();
  const opt = new af.optim.AdamW(model.parameters().filter((p) => p.requiresGrad), { lr: 5e-3, weightDecay: 0.01 });
  const rand = prng(11);
  let ema = Math.log(VALUES);
  for (let s = 1; s <= steps; s++) {
    const l = af.tidy(() => {
      const { ids, labels } = needleBatch(text, 16, T, rand);
      opt.zeroGrad();
      const loss = af.F.crossEntropy(model.forward(ids), labels);
      loss.backward();
      opt.step();
      return loss.item();
    });
    ema = 0.9 * ema + 0.1 * l;
  }
  const name = kind === "full" ? "full attention" : `linformer ${init}${frozen ? ", frozen" : ""}`;
  const line = `| ${name} | ${ema.toFixed(3)} | ${lfs.length ? lfs.map((lf) => alignment(lf).toFixed(2)).join(" / ") : "—"} |`;
  process.stderr.write(`  ${line}\n`);
  return line;
}

function main(): void {
  af.setBackend("native");
  const text = trainText();
  const rows = [`| T = 32 only, ${steps} steps | final loss | cos(E[:, p], F[:, p]) per layer |`, "|---|---:|---|"];
  rows.push(run(text, "full", "independent", false));
  for (const [init, frozen] of [["independent", false], ["shareKV", false], ["tied", false], ["tied", true], ["identity", false], ["identity", true]] as [Init, boolean][]) {
    rows.push(run(text, "linformer", init, frozen));
  }
  process.stdout.write(rows.join("\n") + `\n(chance ln ${VALUES} = ${Math.log(VALUES).toFixed(3)})\n`);
}

main();
