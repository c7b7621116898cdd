// What dynamic int8 costs a trained model: held-out metrics of the float and the int8 model, the drift of the
// explained logit on held-out inputs, and how well the int8 model's explanations agree with the float model's
// (Spearman rank correlation of the token importances, per method). Used by scripts/int8-accuracy.ts (the numbers in
// docs/quantization.md) and test/int8-accuracy.test.ts.
import { loadCheckpoint } from "./checkpoint.js";
import { quantizeDynamic } from "../nn/quantize.js";
import { runExplanation, type ExplainMethod } from "../explain/explain-run.js";
import { spearman } from "../explain/importance.js";
import { noGrad } from "../autograd.js";
import { tidy } from "../scope.js";

export interface QuantizedAccuracy {
  task: string;
  floatMetrics: Record<string, number>;
  int8Metrics: Record<string, number>;
  /** Inputs compared, and those where the int8 model explains another output (its prediction changed). */
  inputs: number; targetChanged: number;
  /** |int8 − float| of the explained output's logit over the inputs whose target is the same. */
  logitDrift: { max: number; mean: number; meanAbsLogit: number };
  /** Mean Spearman correlation of the float and int8 importances per method (inputs whose target is the same). */
  spearman: Partial<Record<ExplainMethod, number>>;
}

export async function quantizedAccuracy(checkpoint: string, o: { inputs?: number; limit?: number; methods?: ExplainMethod[]; data?: string } = {}): Promise<QuantizedAccuracy> {
  const f = await loadCheckpoint(checkpoint), q = await loadCheckpoint(checkpoint);
  quantizeDynamic(q.model);
  const task = f.task;
  const data = task.loadData({ data: o.data, limitTest: o.limit, limitTrain: 0 });
  const floatMetrics = tidy(() => noGrad(() => task.evaluate(f.model, data, { limit: o.limit })));
  const int8Metrics = tidy(() => noGrad(() => task.evaluate(q.model, data, { limit: o.limit })));
  const methods = o.methods ?? ["raw", "rollout", "flow", "grad", "inputgrad"];
  const inputs = task.faithfulnessInputs && task.explain ? task.faithfulnessInputs(data, o.inputs ?? 20) : [];
  let changed = 0, maxD = 0, sumD = 0, sumAbs = 0, same = 0;
  const rho: Record<string, number[]> = {};
  for (const input of inputs) {
    const tf = task.explain!(f.model, f.config, input), tq = task.explain!(q.model, q.config, input);
    if (tf.targetIndex !== tq.targetIndex) { changed++; continue; }
    const sf = noGrad(() => tf.score().item()), sq = noGrad(() => tq.score().item());
    const d = Math.abs(sf - sq);
    maxD = Math.max(maxD, d); sumD += d; sumAbs += Math.abs(sf); same++;
    const run = async (t: typeof tf, m: typeof f.model, ms: ExplainMethod[]) => runExplanation(t, m, { methods: ms, matrices: false, flowMatrices: "none" });
    let ms = methods;
    let ef, eq;
    try { ef = await run(tf, f.model, ms); eq = await run(tq, q.model, ms); } catch (e) {
      if (!/onEmbeddings/.test((e as Error).message)) throw e;
      ms = methods.filter((m) => m !== "inputgrad");                     // a task without input × gradient
      ef = await run(tf, f.model, ms); eq = await run(tq, q.model, ms);
    }
    for (const m of ms) {
      const a = ef.methods[m]?.importance, b = eq.methods[m]?.importance;
      if (!a || !b) continue;
      const r = spearman(a, b);
      if (Number.isFinite(r)) (rho[m] ??= []).push(r);
    }
  }
  const spear: Partial<Record<ExplainMethod, number>> = {};
  for (const [m, rs] of Object.entries(rho)) spear[m as ExplainMethod] = rs.reduce((s, r) => s + r, 0) / rs.length;
  return {
    task: task.name, floatMetrics, int8Metrics, inputs: inputs.length, targetChanged: changed,
    logitDrift: { max: maxD, mean: same ? sumD / same : NaN, meanAbsLogit: same ? sumAbs / same : NaN }, spearman: spear,
  };
}
