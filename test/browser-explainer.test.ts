// The in-browser explainer (`attnflow web`: examples/browser/explain.html) in headless Chromium: the page loads a
// shipped model from the local server — the topic classifier with the brief's sentence, the ViT with the sample
// Fashion-MNIST image — classifies and explains with every method on the Wasm backend (Web Workers, cross-origin
// isolated), and its numbers match the same model and input explained in Node. Skips without Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runExplanation, EXPLAIN_METHODS } from "../src/explain/explain-run.js";
import { BRIEF_SENTENCE, explainText, predictText, textClassifierFromCheckpoint } from "../src/tasks/fortunes-classifier-model.js";
import { IMAGE_SIDE, explainPixels, imageClassifierFromCheckpoint, predictPixels } from "../src/tasks/fashion-vit-model.js";
import { loadGreyImage } from "../src/node/image-file.js";
import type { Explanation } from "../src/explain/explain-run.js";
import type { Prediction } from "../src/tasks/task.js";
import { trainedModelFromBytes } from "../src/io/checkpoint-bytes.js";
import { task as datesTask } from "../src/tasks/dates.js";
import { charLmTaskBase as charLm } from "../src/tasks/char-lm.js";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));   // dist/test/ → package root
const MODEL = join(ROOT, "models", "fortunes-classifier.safetensors");

interface Summary {
  kind?: "text" | "image"; pixels?: number[];
  isolated: boolean; backend?: string; workers?: number; prediction?: string; alternatives?: { output: string; score: number }[];
  tokens?: string[]; importance?: Record<string, number[]>; error?: string;
}

test("textClassifierFromCheckpoint: rejects another task's checkpoint and weights that do not fit, naming the file", () => {
  const bytes = new Uint8Array(readFileSync(MODEL));
  const { model, config } = textClassifierFromCheckpoint(bytes, "fortunes-classifier.safetensors");
  assert.equal(predictText(model, config, BRIEF_SENTENCE).alternatives!.length, config.labels.length);
  const vit = new Uint8Array(readFileSync(join(ROOT, "models", "fashion-vit.safetensors")));
  assert.throws(() => textClassifierFromCheckpoint(vit, "fashion-vit.safetensors"), /fashion-vit\.safetensors: a 'fashion-vit' checkpoint, not a fortunes-classifier one/);
  assert.throws(() => textClassifierFromCheckpoint(bytes.subarray(0, 100), "cut.safetensors"), /^SafetensorsError: cut\.safetensors: header length \d+ runs past end of file/);
});

/** Opens the page with `query` in headless Chromium and returns the summary it posts back. */
async function runPage(query: string): Promise<Summary> {
  const page = await pageReport<Summary>({
    index: join(ROOT, "examples", "browser", "explain.html"),
    mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models") },
    pathAndQuery: `/?${query}&autorun=1&report=/__result`,
  });
  assert.equal(page.error, undefined, page.error);
  assert.equal(page.isolated, true);
  assert.equal(page.backend, "wasm");
  // The page runs a thread per CPU it sees, and Chromium's navigator.hardwareConcurrency follows the CPU affinity it
  // inherits from this process: under `taskset -c 0` (one CPU) the page is rightly single-threaded.
  if (availableParallelism() > 1) assert.ok(page.workers! >= 1, `Web Workers running: ${page.workers}`);
  else assert.equal(page.workers, 0, "one CPU: no Web Workers");
  return page;
}

/** The page's prediction and every method's importance against the same model and input in Node. */
function sameAsNode(page: Summary, p: Prediction, e: Explanation): void {
  assert.equal(page.prediction, p.output);
  assert.deepEqual(page.tokens, e.tokens);
  page.alternatives!.forEach((a, i) => { assert.equal(a.output, p.alternatives![i].output); assert.ok(Math.abs(a.score - p.alternatives![i].score) < 1e-4); });
  for (const m of EXPLAIN_METHODS) {
    const want = (e.methods[m] as { importance: number[] }).importance, got = page.importance![m];
    assert.equal(got.length, want.length, m);
    const scale = Math.max(1e-6, ...want.map(Math.abs));
    want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= 1e-3 * scale, `${m}[${i}]: page ${got[i]} vs Node ${w}`));
  }
}

test("browser: `attnflow web`'s page explains a text in Chromium, matching Node", { skip, timeout: 180_000 }, async () => {
  const page = await runPage(`text=${encodeURIComponent(BRIEF_SENTENCE)}`);
  assert.equal(page.kind, "text");
  const { model, config } = textClassifierFromCheckpoint(new Uint8Array(readFileSync(MODEL)));
  const e = await runExplanation(explainText(model, config, { text: BRIEF_SENTENCE }), model, { methods: [...EXPLAIN_METHODS] });
  sameAsNode(page, predictText(model, config, BRIEF_SENTENCE), e);
});

test("browser: `attnflow web`'s page explains an image (ViT) in Chromium, matching Node", { skip, timeout: 180_000 }, async () => {
  const page = await runPage("model=/models/fashion-vit.safetensors");
  assert.equal(page.kind, "image");
  // the browser decoded the shipped PNG to the same 28×28 grey pixels as Node's decoder
  const node = loadGreyImage(join(ROOT, "models", "fashion-mnist-test-0.png"), { size: IMAGE_SIDE, invert: "auto" }).pixels;
  assert.equal(page.pixels!.length, node.length);
  node.forEach((v, i) => assert.ok(Math.abs(page.pixels![i] - v) <= 1.5 / 255, `pixel ${i}: page ${page.pixels![i]} vs Node ${v}`));
  const { model, config } = imageClassifierFromCheckpoint(new Uint8Array(readFileSync(join(ROOT, "models", "fashion-vit.safetensors"))));
  const px = Float32Array.from(page.pixels!);
  const e = await runExplanation(explainPixels(model, config, px), model, { methods: [...EXPLAIN_METHODS] });
  sameAsNode(page, predictPixels(model, config, px), e);
});

test("browser: `attnflow web`'s page explains a translation (dates, cross-attention readout) in Chromium, matching Node", { skip, timeout: 180_000 }, async () => {
  const text = "March 5th, 2021";
  const page = await runPage(`model=/models/dates.safetensors&text=${encodeURIComponent(text)}&target=6`);
  assert.equal(page.kind, "translation");
  assert.equal(page.prediction, "2021-03-05");
  const { model, config } = trainedModelFromBytes(new Uint8Array(readFileSync(join(ROOT, "models", "dates.safetensors"))), "dates", "dates", (c) => datesTask.modelFromConfig(c));
  const e = await runExplanation(datesTask.explain!(model, config, { text }, "6"), model, { methods: [...EXPLAIN_METHODS] });
  assert.match(e.target.label, /'3' \(output position 6 of 2021-03-05\)/);
  sameAsNode(page, datesTask.predict(model, config, text), e);
});

test("browser: `attnflow web`'s page explains a language model's next character (char-lm) in Chromium, matching Node", { skip, timeout: 180_000 }, async () => {
  const text = "The cat sat on the ";
  const page = await runPage(`model=/models/char-lm.safetensors&text=${encodeURIComponent(text)}`);
  assert.equal(page.kind, "generation");
  const { model, config } = trainedModelFromBytes(new Uint8Array(readFileSync(join(ROOT, "models", "char-lm.safetensors"))), "char-lm", "char-lm", (c) => charLm.modelFromConfig(c));
  const p = charLm.predict(model, config, text, { "max-tokens": "160", seed: "0", quiet: true, "no-compare": true });
  assert.ok(p.output.startsWith(text) && p.output.length > text.length, "a continuation was sampled");
  const e = await runExplanation(charLm.explain!(model, config, { text }), model, { methods: [...EXPLAIN_METHODS] });
  sameAsNode({ ...page, alternatives: [] }, { ...p, alternatives: [] }, e);
});
