// Workloads for the memory soak: loops written the way a user writes them from the README, with no tidy() and no
// dispose(), so every tensor they make is left to the garbage collector. The library is a parameter, so the same
// code runs in Node (bench/soak-child.ts, test/memory-soak.test.ts) and in a page (bench/soak-browser.ts).
import type * as AF from "../../src/index.js";

export type Attnflow = typeof AF;
export type SoakWorkload = "mha-adamw" | "sdpa-weights";
export const SOAK_WORKLOADS: SoakWorkload[] = ["mha-adamw", "sdpa-weights"];

/** One step of `workload`: a closure over its model, optimizer and inputs (seeded, so runs are comparable). */
export function soakStep(af: Attnflow, workload: SoakWorkload): () => void {
  af.manualSeed(0);
  if (workload === "mha-adamw") {
    // the README's quick start, as a training loop: forward, loss, zeroGrad, backward, step
    const mha = new af.nn.MultiheadAttention(64, 4, { batchFirst: true });
    const head = new af.nn.Linear(64, 3);
    const opt = new af.optim.AdamW([...mha.parameters(), ...head.parameters()], { lr: 1e-3 });
    const x = af.randn([2, 10, 64]);
    const y = af.tensor([0, 2], { dtype: "int32" });
    return () => {
      const [out] = mha.forward(x, x, x);
      const loss = af.F.crossEntropy(head.forward(out.mean(1)), y);
      opt.zeroGrad(); loss.backward(); opt.step();
    };
  }
  // the fused attention core with its weights recomputed (what explanations call), forward only
  const q = af.randn([2, 4, 32, 16]), k = af.randn([2, 4, 32, 16]), v = af.randn([2, 4, 32, 16]);
  return () => { af.F.scaledDotProductAttention(q, k, v, { causal: true, returnWeights: true }); };
}
