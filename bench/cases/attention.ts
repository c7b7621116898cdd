// Forward-pass cases: multi-head attention (D 768, 12 heads, Q/K/V/out projections with bias)
// and the SDPA core on (1, 12, T, 64), plain and causal.
import type { BenchCase } from "../types.js";
import { runTask } from "../lib/harness.js";
import { makeMhaTask, makeSdpaTask } from "../lib/tasks.js";

const D = 768, H = 12, d = 64;

function mhaCase(B: number, T: number): BenchCase {
  const name = `mha-b${B}-t${T}`;
  const description = `MHA forward (B ${B}, T ${T}, D ${D}, ${H} heads), needWeights false`;
  return { name, group: "mha", description, run: (o) => runTask({ name, group: "mha", description }, makeMhaTask(B, T, D, H, name), o) };
}

function sdpaCase(T: number, causal: boolean): BenchCase {
  const group = causal ? "sdpa-causal" : "sdpa";
  const name = `${group}-t${T}`;
  const description = `SDPA core (1, ${H}, ${T}, ${d})${causal ? ", causal" : ""}`;
  return { name, group, description, run: (o) => runTask({ name, group, description }, makeSdpaTask(1, H, T, d, causal, name), o) };
}

export const cases: BenchCase[] = [
  ...[[1, 128], [8, 128], [1, 512], [1, 2048]].map(([B, T]) => mhaCase(B, T)),
  ...[128, 512, 2048, 4096].map((T) => sdpaCase(T, false)),
  ...[128, 512, 2048, 4096].map((T) => sdpaCase(T, true)),
];
