#!/usr/bin/env node
// Mean per-input Spearman correlations of `attnflow eval-faithfulness --json FILE` on the agreement task, split by
// Linzen's attractor count and by whether the model's prediction is right (docs/faithfulness.md, "Why the
// correlations with blank-out are low"). Run after `npx tsc`:
//   node scripts/agreement-faithfulness-groups.mjs CHECKPOINT DATA_DIR FAITHFULNESS.json
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const [ckPath, data, jsonPath] = process.argv.slice(2);
if (!ckPath || !data || !jsonPath) {
  console.error("usage: node scripts/agreement-faithfulness-groups.mjs CHECKPOINT DATA_DIR FAITHFULNESS.json");
  process.exit(2);
}
const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const { defaultLoadCheckpoint } = await import(join(dist, "cli", "explain.js"));
const ck = await defaultLoadCheckpoint(ckPath);
if (ck.task.name !== "agreement") throw new Error(`${ckPath} is a ${ck.task.name} checkpoint, not agreement`);
ck.model.eval();
const J = JSON.parse(readFileSync(jsonPath, "utf8"));
if (J.task !== "agreement" || J.includeSpecial) throw new Error(`${jsonPath}: expected an agreement run without --include-special`);
const d = ck.task.loadData({ data });
const inputs = ck.task.faithfulnessInputs(d, J.samples.length);     // the same inputs, in the same order, as the run
const attractors = new Map(d.test.map((e) => [e.text, e.attractors]));
const groups = new Map();
const add = (k, s) => { if (!groups.has(k)) groups.set(k, []); groups.get(k).push(s); };
inputs.forEach((x, i) => {
  const right = ck.task.predict(ck.model, ck.config, x.text).output === x.target;
  const a = Math.min(attractors.get(x.text), 4);
  const s = J.samples[i];
  add("all", s); add(right ? "right" : "wrong", s); add(`${a}${a === 4 ? "+" : ""} attractors`, s);
  if (a === 0 && right) add("0 attr., right", s);
});
const mean = (xs) => { const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)); return v.length ? v.reduce((p, q) => p + q, 0) / v.length : NaN; };
const layers = J.summary.layers;
const methods = J.summary.methods;
console.log(`Spearman with blank-out, mean over inputs, by group (${ckPath}, ${J.samples.length} inputs)`);
console.log(["group".padEnd(16), "n".padStart(5), ...methods.map((m) => `${m} L1..L${layers}`.padEnd(6 * layers))].join("  "));
for (const [k, g] of [...groups].sort()) {
  const cells = methods.map((m) => Array.from({ length: layers }, (_, l) => mean(g.map((s) => s.corr[m]?.blankout?.[l])).toFixed(2).padStart(5)).join(" ").padEnd(6 * layers));
  console.log([k.padEnd(16), String(g.length).padStart(5), ...cells].join("  "));
}
