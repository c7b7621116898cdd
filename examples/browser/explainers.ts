// The models the in-browser explainer knows, behind one interface (used by its Web Worker, explain-worker.ts): a
// checkpoint's task decides how to read the input, predict and explain — the topic classifier for a text, the Vision
// Transformer for an image, the date translator (one output character, through its cross-attention), the character
// GPT (the next character after the prompt). Inputs are plain values (no DOM), so this runs in a worker.
import type { ExplainTarget, Prediction } from "../../src/tasks/task.js";
import type { runExplanation } from "../../src/explain/explain-run.js";
import { classifierFromConfig, explainText, predictText } from "../../src/tasks/fortunes-classifier-model.js";
import { explainPixels, predictPixels, vitFromStoredConfig } from "../../src/tasks/fashion-vit-model.js";
import { checkpointFromBytes, trainedModel } from "../../src/io/checkpoint-bytes.js";
import { task as datesTask } from "../../src/tasks/dates.js";
import { charLmTaskBase as charLm } from "../../src/tasks/char-lm.js";

export type Kind = "text" | "image" | "translation" | "generation";
/** What the page sends: the text (text, translation, generation), the 28×28 grey pixels (image), the output position (translation). */
export interface PageInput { text?: string; pixels?: Float32Array; target?: string }

export interface Explainer {
  kind: Kind;
  name: string;
  /** The most input positions the model reads (longer inputs are cut, and the report says so). */
  maxPositions?: number;
  predict(input: PageInput): Prediction;
  target(input: PageInput): ExplainTarget;
  model: Parameters<typeof runExplanation>[1];
}

function text(input: PageInput): string {
  const t = input.text ?? "";
  if (t.trim() === "") throw new Error("type a text to classify");
  return t;
}

function pixels(input: PageInput): Float32Array {
  if (!input.pixels) throw new Error("choose an image");
  return input.pixels;
}

/** The checkpoint's task decides the explainer (and which input the page shows). */
export function explainerFor(bytes: Uint8Array, source: string): Explainer {
  const raw = checkpointFromBytes(bytes, source);   // parsed once; its task decides the explainer
  const num = (x: unknown) => (typeof x === "number" ? x : undefined);
  if (raw.task === "fortunes-classifier") {
    const { model, config } = trainedModel(raw, raw.task, (c) => classifierFromConfig(c));
    return { kind: "text", name: source, model, maxPositions: num(config.maxLen), predict: (i) => predictText(model, config, text(i)), target: (i) => explainText(model, config, { text: text(i) }) };
  }
  if (raw.task === "fashion-vit") {
    const { model, config } = trainedModel(raw, raw.task, vitFromStoredConfig);
    return { kind: "image", name: source, model, predict: (i) => predictPixels(model, config, pixels(i)), target: (i) => explainPixels(model, config, pixels(i)) };
  }
  if (raw.task === "dates") {
    const { model, config } = trainedModel(raw, raw.task, (c) => datesTask.modelFromConfig(c));
    return {
      kind: "translation", name: source, model, maxPositions: num(config.maxSrcLen),
      predict: (i) => datesTask.predict(model, config, text(i)),
      target: (i) => datesTask.explain!(model, config, { text: text(i) }, (i.target ?? "").trim()),
    };
  }
  if (raw.task === "char-lm") {
    const { model, config } = trainedModel(raw, raw.task, (c) => charLm.modelFromConfig(c));
    return {
      kind: "generation", name: source, model, maxPositions: num(config.blockSize),
      // a fixed seed: the same prompt gives the same continuation
      predict: (i) => charLm.predict(model, config, text(i), { "max-tokens": "160", seed: "0", quiet: true, "no-compare": true }),
      target: (i) => charLm.explain!(model, config, { text: text(i) }),
    };
  }
  throw new Error(`${source}: a '${raw.task}' checkpoint; this page explains fortunes-classifier (text), fashion-vit (image), dates (translation) and char-lm (generation) models`);
}
