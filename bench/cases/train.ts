// Training step: MHA forward + backward at (8, 128, 768), loss = sum(out · g). The cross-check
// compares dLoss/d in_proj_weight. onnxruntime has no training API and reports so.
import type { BenchCase } from "../types.js";
import { runTask } from "../lib/harness.js";
import { makeTrainTask } from "../lib/tasks.js";

const name = "train-mha-b8-t128";
const description = "MHA forward+backward (B 8, T 128, D 768, 12 heads), loss = sum(out·g); FLOPs = 3× forward";

export const cases: BenchCase[] = [
  { name, group: "train", description, run: (o) => runTask({ name, group: "train", description }, makeTrainTask(8, 128, 768, 12, name), o) },
];
