// `attnflow demo` with the shipped trained models (models/*.safetensors): the product brief's sentence through the
// quotation-topic classifier with per-token importance (raw attention, rollout, attention flow), and one Fashion-MNIST
// test image through the Vision Transformer with its patch flow. Falls back to the untrained brief demo when the
// shipped models are missing.
import { existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { loadCheckpoint } from "../src/node/checkpoint.js";
import { runExplanation } from "../src/explain/explain-run.js";
import { noGrad } from "../src/autograd.js";
import { tidy } from "../src/scope.js";
import { nodeFlowRows, renderExplanationText } from "./explain.js";
import { BRIEF_SENTENCE } from "../src/brief.js";

/** The repository's models/ folder (dist/cli/ → ../../models). */
export function shippedModelsDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..", "models");
}

export const DEMO_TEXT_MODEL = "fortunes-classifier.safetensors";
export const DEMO_IMAGE_MODEL = "fashion-vit.safetensors";
export const DEMO_IMAGE = "fashion-mnist-test-0.png";

export async function runTrainedDemo(o: { text?: string; image?: string; color?: boolean; dir?: string; out?: (s: string) => void }): Promise<boolean> {
  const dir = o.dir ?? shippedModelsDir(), out = o.out ?? ((s: string) => { process.stdout.write(s + "\n"); });
  const textModel = join(dir, DEMO_TEXT_MODEL), imageModel = join(dir, DEMO_IMAGE_MODEL);
  if (!existsSync(textModel) && !existsSync(imageModel)) return false;
  const rule = "═".repeat(100);
  if (existsSync(textModel)) {
    const ck = await loadCheckpoint(textModel);
    const text = o.text ?? BRIEF_SENTENCE;   // src/brief.ts: the same sentence as demo --untrained and the page
    const pred = tidy(() => noGrad(() => ck.task.predict(ck.model, ck.config, text, {})));
    out(rule);
    out(`attnflow demo 1/2 — quotation-topic classifier (${ck.task.name}, ${DEMO_TEXT_MODEL}; ` +
      `held-out accuracy ${fmtPct(ck.meta.metrics?.accuracy)}) on the product brief's sentence:`);
    out(`  "${text}"`);
    out(`prediction: ${pred.output}${pred.alternatives ? "   (" + pred.alternatives.slice(0, 4).map((a) => `${a.output} ${a.score.toFixed(3)}`).join(", ") + ")" : ""}`);
    if (ck.task.explain) {
      const target = ck.task.explain(ck.model, ck.config, { text });
      const e = await runExplanation(target, ck.model, { methods: ["raw", "rollout", "flow"], flowRows: nodeFlowRows() });
      out(renderExplanationText(e, { color: o.color }));
    }
  }
  if (existsSync(imageModel)) {
    const ck = await loadCheckpoint(imageModel);
    const image = o.image ?? join(dir, DEMO_IMAGE);
    const pred = tidy(() => noGrad(() => ck.task.predict(ck.model, ck.config, image, {})));
    out(""); out(rule);
    out(`attnflow demo 2/2 — Vision Transformer on Fashion-MNIST (${DEMO_IMAGE_MODEL}; test accuracy ${fmtPct(ck.meta.metrics?.accuracy)}) on ${relative(process.cwd(), image) || image}`);
    out(`prediction: ${pred.output}${pred.alternatives ? "   (" + pred.alternatives.slice(0, 3).map((a) => `${a.output} ${a.score.toFixed(3)}`).join(", ") + ")" : ""}`);
    if (ck.task.explain) {
      const target = ck.task.explain(ck.model, ck.config, { image });
      const e = await runExplanation(target, ck.model, { methods: ["rollout", "flow"], flowRows: nodeFlowRows(), flowMatrices: "none" });
      out(renderExplanationText(e, { color: o.color }));
    }
  }
  out(""); out(`Explain your own input: attnflow explain --model models/${DEMO_TEXT_MODEL} --text "..." --method all --html report.html`);
  return true;
}

function fmtPct(v: number | undefined): string { return v === undefined ? "n/a" : `${(100 * v).toFixed(1)} %`; }
