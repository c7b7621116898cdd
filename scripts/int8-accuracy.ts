// The accuracy table of docs/quantization.md: every shipped model, float32 vs dynamic int8 (full held-out sets,
// 50 explained inputs each). Run: node dist/scripts/int8-accuracy.js [--inputs 50] [--limit N] [--model NAME] > out.json
import "../src/node.js";
import { quantizedAccuracy } from "../src/node/quantize-accuracy.js";
import type { ExplainMethod } from "../src/explain/explain-run.js";

const argv = process.argv;
const n = argv.includes("--inputs") ? Number(argv[argv.indexOf("--inputs") + 1]) : 50;
const limit = argv.includes("--limit") ? Number(argv[argv.indexOf("--limit") + 1]) : undefined;
const only = argv.includes("--model") ? argv[argv.indexOf("--model") + 1] : null;
const methods = (argv.includes("--methods") ? argv[argv.indexOf("--methods") + 1] : "raw,rollout,flow,grad,inputgrad").split(",") as ExplainMethod[];
const out = [];
for (const m of ["fortunes-classifier", "fashion-vit", "dates", "char-lm"].filter((x) => !only || x === only)) {
  process.stderr.write(`${m} ...\n`);
  out.push({ model: `models/${m}.safetensors`, ...await quantizedAccuracy(`models/${m}.safetensors`, { inputs: n, limit, methods }) });
}
console.log(JSON.stringify(out, null, 1));
