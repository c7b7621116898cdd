// The models the in-browser explainer knows, behind one interface (used by its Web Worker, explain-worker.ts): a
// checkpoint's task decides how to read the input, predict and explain — the topic classifier for a text, the Vision
// Transformer for an image, the date translator (one output character, through its cross-attention), the character
// GPT (the next character after the prompt) — and a Hugging Face model folder picked in the page (its Files, read
// here by range with fromPretrained: text classifiers, masked and causal LMs, encoder–decoders, ViT). Inputs are plain
// values and Blobs (no DOM), so this runs in a worker.
import type { ExplainTarget, Prediction } from "../../src/tasks/task.js";
import type { runExplanation } from "../../src/explain/explain-run.js";
import { classifierFromConfig, explainText, explainTextAsync, predictText, predictTextAsync } from "../../src/tasks/fortunes-classifier-model.js";
import { explainPixels, predictPixels, vitFromStoredConfig } from "../../src/tasks/fashion-vit-model.js";
import { checkpointFromBytes, trainedModel } from "../../src/io/checkpoint-bytes.js";
import { task as datesTask } from "../../src/tasks/dates.js";
import { charLmTaskBase as charLm } from "../../src/tasks/char-lm.js";
import { blobReader, fromPretrained, setTokenizerLoader } from "../../src/hf/pretrained.js";
import {
  type HFImage, type HFLoaded, hfImagePrediction, hfImageTarget, hfTextPrediction, hfTextTarget, inputLimit, kindOf, textInputOf, vitImageSize, vitPixelsFromRgba,
} from "../../src/hf/explain-target.js";
import type { HFTokenizer } from "../../src/hf/tokenizer.js";

export type Kind = "text" | "image" | "translation" | "generation";
/** What the page sends: the text (text, translation, generation), the 28×28 grey pixels (image), the output position
 *  (translation), the picture file itself (a Hugging Face ViT: decoded here at the model's size). */
export interface PageInput { text?: string; pixels?: Float32Array; target?: string; image?: Blob; decoded?: HFImage }

export interface Explainer {
  kind: Kind;
  name: string;
  /** The most input positions the model reads (longer inputs are cut, and the report says so). */
  maxPositions?: number;
  /** A Hugging Face folder (the page sends the picture file itself for its image models). */
  hf?: boolean;
  /** Async preparation of the input before predict/target (a Hugging Face ViT decodes the picture file). */
  prepare?(input: PageInput): Promise<PageInput>;
  /** Device models (the WebGPU backend) read their results asynchronously. */
  predict(input: PageInput): Prediction | Promise<Prediction>;
  target(input: PageInput): ExplainTarget | Promise<ExplainTarget>;
  /** Where the model's tensors live: "cpu" (the CPU backends) or "webgpu". */
  device: "cpu" | "webgpu";
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

/** The tasks the page explains on the WebGPU backend (the others read their results synchronously so far). */
export const WEBGPU_TASKS = ["fortunes-classifier"];

/**
 * The checkpoint's task decides the explainer (and which input the page shows). device "webgpu": the model moves to
 * the device (started by the caller), predicts and explains there; a task not yet supported there is an error that
 * says so (never a silent run on the CPU).
 */
export function explainerFor(bytes: Uint8Array, source: string, device: "cpu" | "webgpu" = "cpu"): Explainer {
  const raw = checkpointFromBytes(bytes, source);   // parsed once; its task decides the explainer
  const num = (x: unknown) => (typeof x === "number" ? x : undefined);
  if (device === "webgpu" && !WEBGPU_TASKS.includes(String(raw.task))) {
    throw new Error(`${source}: explaining a '${raw.task}' model on the WebGPU backend is not yet supported in this page ` +
      `(it is for ${WEBGPU_TASKS.join(", ")}); choose the CPU backend for it`);
  }
  if (raw.task === "fortunes-classifier") {
    const { model, config } = trainedModel(raw, raw.task, (c) => classifierFromConfig(c));
    if (device === "webgpu") {
      model.to("webgpu");
      return {
        kind: "text", name: source, model, device, maxPositions: num(config.maxLen),
        predict: (i) => predictTextAsync(model, config, text(i)), target: (i) => explainTextAsync(model, config, { text: text(i) }),
      };
    }
    return { kind: "text", name: source, model, device, maxPositions: num(config.maxLen), predict: (i) => predictText(model, config, text(i)), target: (i) => explainText(model, config, { text: text(i) }) };
  }
  if (raw.task === "fashion-vit") {
    const { model, config } = trainedModel(raw, raw.task, vitFromStoredConfig);
    return { kind: "image", name: source, model, device: "cpu", predict: (i) => predictPixels(model, config, pixels(i)), target: (i) => explainPixels(model, config, pixels(i)) };
  }
  if (raw.task === "dates") {
    const { model, config } = trainedModel(raw, raw.task, (c) => datesTask.modelFromConfig(c));
    return {
      kind: "translation", name: source, model, device: "cpu", maxPositions: num(config.maxSrcLen),
      predict: (i) => datesTask.predict(model, config, text(i)),
      target: (i) => datesTask.explain!(model, config, { text: text(i) }, (i.target ?? "").trim()),
    };
  }
  if (raw.task === "char-lm") {
    const { model, config } = trainedModel(raw, raw.task, (c) => charLm.modelFromConfig(c));
    return {
      kind: "generation", name: source, model, device: "cpu", maxPositions: num(config.blockSize),
      // a fixed seed: the same prompt gives the same continuation
      predict: (i) => charLm.predict(model, config, text(i), { "max-tokens": "160", seed: "0", quiet: true, "no-compare": true }),
      target: (i) => charLm.explain!(model, config, { text: text(i) }),
    };
  }
  throw new Error(`${source}: a '${raw.task}' checkpoint; this page explains fortunes-classifier (text), fashion-vit (image), dates (translation) and char-lm (generation) models`);
}

/** The picture file decoded by the browser and drawn at S×S (its resampling, as the page's preview), RGBA. */
async function rgbaAt(blob: Blob, S: number): Promise<Uint8ClampedArray> {
  const bmp = await createImageBitmap(blob).catch((e: Error) => { throw new Error(`the picture could not be decoded by this browser: ${e.message}`); });
  const canvas = new OffscreenCanvas(S, S), ctx = canvas.getContext("2d")!;
  ctx.drawImage(bmp, 0, 0, S, S);
  bmp.close();
  return ctx.getImageData(0, 0, S, S).data;
}

/**
 * A Hugging Face folder from its Files (matched by base name; a large checkpoint is read by range, never whole).
 * The tokenizer module (tokenizer.json, or Marian's .spm files) is imported here on first use.
 */
export async function hfExplainer(files: File[], name: string, status: (s: string) => void = () => undefined,
  onProgress?: (bytesRead: number, totalBytes: number) => void): Promise<Explainer> {
  if (!files.length) throw new Error("no files picked");
  const tk = await import("../../src/hf/tokenizer.js").catch((e: Error) => {
    throw new Error(`the tokenizer module did not load (@huggingface/tokenizers and @bufbuild/protobuf/wire must be served under /lib/): ${e.message}`);
  });
  setTokenizerLoader(tk.tokenizerFromReader);
  status(`reading ${name} (${files.length} files) in a Web Worker…`);
  const reader = blobReader(files);
  const p = await fromPretrained(reader, { onProgress });
  p.model.eval();
  const m: HFLoaded = { model: p.model, config: p.config, tokenizer: p.tokenizer as HFTokenizer | null, generationConfig: p.generationConfig, dir: name };
  const arch = p.model.architecture, kind = kindOf(arch);
  if (kind === "base") throw new Error(`${name}: ${arch} has no head (no logits): there is nothing to predict or explain`);
  const label = `${name} (${arch}, Hugging Face folder read in this tab)`;
  if (kind === "image") {
    const preBytes = await reader.readFile("preprocessor_config.json");
    const pre = preBytes ? JSON.parse(new TextDecoder().decode(preBytes)) as Record<string, unknown> : {};
    const decoded = (i: PageInput): HFImage => { if (!i.decoded) throw new Error("choose an image"); return i.decoded; };
    return {
      kind: "image", name: label, model: p.model, hf: true, device: "cpu",
      prepare: async (i) => {
        if (!i.image) throw new Error("choose an image");
        return { ...i, decoded: vitPixelsFromRgba(m, await rgbaAt(i.image, vitImageSize(m)), pre) };
      },
      predict: (i) => hfImagePrediction(m, decoded(i)),
      target: (i) => hfImageTarget(m, decoded(i), undefined),
    };
  }
  // a text longer than the model reads is cut to its limit (a causal LM keeps room for the 20 tokens it generates);
  // the report and the page's notice say how many tokens were dropped
  const reserve = kind === "causal" ? 20 : 0;
  const input = (i: PageInput) => textInputOf(m, { text: text(i) }, { reserve });
  const limit = inputLimit(m)?.limit;
  return {
    kind: "text", name: label, model: p.model, hf: true, device: "cpu", ...(limit !== undefined ? { maxPositions: limit - reserve } : {}),
    predict: (i) => hfTextPrediction(m, input(i), 20),
    target: (i) => hfTextTarget(m, input(i), undefined, 1),
  };
}
