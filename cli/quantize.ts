// `attnflow quantize --model in --out out`: dynamic int8 (nn.quantizeDynamic) of an attnflow checkpoint or a Hugging
// Face folder. Checkpoints: one .safetensors with the int8 weights (I8) + per-channel scales (F32, "<name>_scale") and
// metadata "quantization"; HF folders: a copy of the folder with config.json's quantization_config and an int8
// model.safetensors. Both load wherever the float ones do (loadCheckpoint, the browser page, fromPretrained).
// --eval measures the held-out metrics of both models (HF folders: cli/hf-quantize-eval.ts) and, for HF folders, how
// far the logits drifted.
import { copyFile, mkdir, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadCheckpoint, serializeCheckpoint } from "../src/node/checkpoint.js";
import { writeFileAtomic } from "../src/node/safetensors-file.js";
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import { savePretrained, INT8_SCHEME } from "../src/hf/pretrained.js";
import { quantizeDynamic, QUANTIZATION_METHOD, type QuantizeReport } from "../src/nn/quantize.js";
import { tidy } from "../src/scope.js";
import { noGrad } from "../src/autograd.js";
import { fmtMetric } from "../src/node/train/trainer.js";
import type { Args } from "./args.js";
import { isHFFolder } from "./hf.js";
import { hfEvalInputs, hfEvalLogits, hfEvalMetrics, logitDrift } from "./hf-quantize-eval.js";
import { kindOf, type HFLoaded } from "../src/hf/explain-target.js";
import type { HFTokenizer } from "../src/hf/tokenizer.js";
import "../src/node.js";   // the tokenizer loader: --eval reads text through the folder's tokenizer.json

function str(flags: Args["flags"], name: string): string | undefined {
  const v = flags[name];
  if (v === true) throw new Error(`--${name} needs a value`);
  return typeof v === "string" ? v : undefined;
}

const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;

function summary(r: QuantizeReport): string {
  return `${r.quantized.length} layers int8: ${mib(r.floatBytes)} of float32 weights → ${mib(r.int8Bytes)} (int8 + scales)`;
}

export async function quantizeCommand(a: Args): Promise<number> {
  const src = str(a.flags, "model") ?? a._[1], out = str(a.flags, "out");
  if (!src || !out) throw new Error("quantize: --model <checkpoint or HF folder> and --out <file or folder> are required");
  if (resolve(src) === resolve(out)) throw new Error(`quantize: --out must differ from --model (${src})`);
  const exclude = (str(a.flags, "exclude") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const json = a.flags.json === true;
  if (isHFFolder(src)) {
    const p = await fromPretrainedDir(src);
    const m: HFLoaded = { model: p.model, config: p.config, tokenizer: p.tokenizer as HFTokenizer | null, generationConfig: p.generationConfig, dir: src };
    p.model.eval();
    // --eval: the held-out inputs through the float model now and the int8 one after (cli/hf-quantize-eval.ts)
    const limit = a.flags.limit === undefined ? 200 : Number(a.flags.limit);
    const inputs = a.flags.eval ? hfEvalInputs(m, str(a.flags, "data"), limit) : null;
    const before = inputs ? hfEvalLogits(m, inputs) : null;
    const { report } = quantizeDynamic(p.model, { exclude });
    await mkdir(out, { recursive: true });
    // everything but the weights and config.json (tokenizer files, generation_config.json, ...) is copied as is
    for (const f of await readdir(src, { withFileTypes: true })) {
      if (!f.isFile() || f.name === "config.json" || /^model.*\.safetensors(\.index\.json)?$/.test(f.name) || /^pytorch_model/.test(f.name)) continue;
      await copyFile(join(src, f.name), join(out, f.name));
    }
    for (const [name, bytes] of savePretrained(p.model, { quantizedModules: report.quantized })) await writeFileAtomic(join(out, name), bytes);
    let ev: Record<string, unknown> = {};
    if (inputs && before) {
      const after = hfEvalLogits(m, inputs);
      ev = { inputs: inputs.length, floatMetrics: hfEvalMetrics(m, inputs, before), int8Metrics: hfEvalMetrics(m, inputs, after), logitDrift: logitDrift(m, before, after) };
    }
    if (json) { console.log(JSON.stringify({ model: src, out, quantized: report.quantized, floatBytes: report.floatBytes, int8Bytes: report.int8Bytes, ...ev })); return 0; }
    console.log(`wrote ${out}/ (${summary(report)})`);
    if (inputs) {
      const fm = ev.floatMetrics as Record<string, number>, im = ev.int8Metrics as Record<string, number>, d = ev.logitDrift as ReturnType<typeof logitDrift>;
      console.log(`  ${inputs.length} held-out inputs`);
      const keys = Object.keys(fm).filter((k) => k !== "labelled" && k !== "tokens");
      const w = Math.max(6, ...keys.map((k) => k.length));
      if (keys.length) console.log(`  ${"metric".padEnd(w)}  float32     int8`);
      for (const k of keys) console.log(`  ${k.padEnd(w)}  ${fmtMetric(fm[k]).padEnd(10)}  ${fmtMetric(im[k])}`);
      console.log(`  logits: max |int8 − float| ${d.maxAbs.toPrecision(3)}, mean ${d.meanAbs.toPrecision(3)}; top-1 agrees on ${(100 * d.agreement).toFixed(1)} % of ${d.rows} ${kindOf(m.model.architecture) === "classify" ? "inputs" : "positions"}`);
    }
    return 0;
  }
  const ck = await loadCheckpoint(src);
  if (ck.raw.quantization) throw new Error(`quantize: ${src} is already ${ck.raw.quantization.method}`);
  const limit = a.flags.limit === undefined ? undefined : Number(a.flags.limit);
  let floatMetrics: Record<string, number> | undefined, int8Metrics: Record<string, number> | undefined;
  const data = a.flags.eval ? ck.task.loadData({ data: str(a.flags, "data"), limitTest: limit, limitTrain: 0 }) : null;
  if (data) floatMetrics = tidy(() => noGrad(() => ck.task.evaluate(ck.model, data, { limit })));
  const { report } = quantizeDynamic(ck.model, { exclude });
  if (data) int8Metrics = tidy(() => noGrad(() => ck.task.evaluate(ck.model, data, { limit })));
  const bytes = serializeCheckpoint({
    task: ck.task.name, config: ck.config, model: ck.model, metrics: int8Metrics ?? ck.meta.metrics, notes: ck.meta.notes,
    history: ck.raw.trainer ? { options: ck.raw.trainer.options, seed: ck.raw.trainer.seed, steps: ck.raw.trainer.globalStep } : ck.raw.history,
    quantization: { method: QUANTIZATION_METHOD, modules: report.quantized, scheme: INT8_SCHEME, floatMetrics: floatMetrics ?? ck.meta.metrics },
  });
  await writeFileAtomic(out, bytes);
  if (json) {
    console.log(JSON.stringify({ task: ck.task.name, model: src, out, bytes: bytes.length, quantized: report.quantized, floatMetrics, int8Metrics }));
    return 0;
  }
  console.log(`wrote ${out} (${(bytes.length / 1024).toFixed(0)} KiB; ${summary(report)})`);
  if (floatMetrics && int8Metrics) {
    const w = Math.max(...Object.keys(floatMetrics).map((k) => k.length));
    console.log(`  ${"metric".padEnd(w)}  float32     int8`);
    for (const k of Object.keys(floatMetrics)) console.log(`  ${k.padEnd(w)}  ${fmtMetric(floatMetrics[k]).padEnd(10)}  ${fmtMetric(int8Metrics[k])}`);
  }
  return 0;
}
