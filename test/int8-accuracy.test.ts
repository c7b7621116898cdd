// What dynamic int8 costs the shipped models (a small slice of what docs/quantization.md reports in full): held-out
// metrics before and after on a few hundred examples, the drift of the explained logit, and the agreement of the
// int8 model's explanations with the float model's (Spearman per method). Tolerances are looser than the full-set
// numbers (a subset is noisier) but would catch a broken kernel, scale or zero point (every one of those moves the
// metrics by points and the rank correlations far below them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { quantizedAccuracy } from "../src/node/quantize-accuracy.js";
import { hasFortunes } from "../src/node/datasets.js";
import "../src/node.js";

const methods = ["raw", "rollout", "grad"] as const;

function checkCommon(r: Awaited<ReturnType<typeof quantizedAccuracy>>, metric: string): void {
  const drop = r.floatMetrics[metric] - r.int8Metrics[metric];
  assert.ok(drop <= 0.01, `${r.task}: ${metric} ${r.floatMetrics[metric]} → ${r.int8Metrics[metric]} (a drop of ${(100 * drop).toFixed(2)} points)`);
  assert.ok(r.inputs >= 4 && r.targetChanged <= 1, `${r.task}: ${r.targetChanged} of ${r.inputs} predictions changed`);
  assert.ok(r.logitDrift.mean > 0, `${r.task}: int8 logits identical to float ones: is the model quantized at all?`);
  assert.ok(r.logitDrift.mean <= 0.05 * Math.max(1, r.logitDrift.meanAbsLogit), `${r.task}: mean logit drift ${r.logitDrift.mean} (|logit| ≈ ${r.logitDrift.meanAbsLogit})`);
  for (const m of methods) assert.ok((r.spearman[m] ?? NaN) >= (m === "grad" ? 0.8 : 0.95), `${r.task}: Spearman(${m}) float vs int8 = ${r.spearman[m]}`);
}

test("int8 dates model: exact match kept, logits and explanations close to float32", async () => {
  const r = await quantizedAccuracy("models/dates.safetensors", { limit: 200, inputs: 5, methods: [...methods] });
  checkCommon(r, "exactMatch");
});

test("int8 fortunes classifier: accuracy kept, logits and explanations close to float32", { skip: hasFortunes() ? false : "Debian packages fortunes/fortunes-min not installed" }, async () => {
  const r = await quantizedAccuracy("models/fortunes-classifier.safetensors", { limit: 300, inputs: 5, methods: [...methods] });
  checkCommon(r, "accuracy");
});
