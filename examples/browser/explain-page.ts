// The in-browser explainer (examples/browser/explain.html, served by `attnflow web`): loads a checkpoint over HTTP
// from the local server (or from a file the user picks, read in the page) and picks the explainer by its task — the
// topic classifier for a text, the Vision Transformer for an image, the date translator (one output character,
// through its cross-attention; chosen in the page or ?target=N), the character GPT (the next character after the
// prompt) — runs the model and explains its output with every method, drawn by the same HTML report as
// `attnflow explain --html`. Nothing leaves the page.
// URL parameters: ?model=<path> picks the checkpoint, ?text=… prefills the text, ?image=<path> loads an image,
// ?autorun=1 explains at once, ?report=<path> POSTs a JSON summary when done (automation, browser test). Paths must
// name this server (start with /, same origin): anything else is ignored with a notice, because a crafted link could
// otherwise send the summary of the user's input to another site, or load a model or image from one.
import { availableBackends, configureBrowserWasmThreads, getBackend, renderHtmlReport, wasmBackendReady, wasmWorkerCount } from "../../src/index.js";
import { escapeHtml, truncationBanner } from "../../src/viz/html-report.js";
import { runExplanation, EXPLAIN_METHODS, type Explanation } from "../../src/explain/explain-run.js";
import type { ExplainTarget, Prediction } from "../../src/tasks/task.js";
import { greySquare } from "../../src/data/grey-image.js";
import { classifierFromConfig, explainText, predictText } from "../../src/tasks/fortunes-classifier-model.js";
import { BRIEF_SENTENCE } from "../../src/brief.js";
import { IMAGE_SIDE, explainPixels, predictPixels, vitFromStoredConfig } from "../../src/tasks/fashion-vit-model.js";
import { checkpointFromBytes, trainedModel } from "../../src/io/checkpoint-bytes.js";
import { task as datesTask } from "../../src/tasks/dates.js";
import { charLmTaskBase as charLm } from "../../src/tasks/char-lm.js";
import { installHFPicker } from "./hf-picker.js";

/** A loaded model behind one interface: what to read from the page, how to predict and explain it. */
interface Explainer {
  kind: "text" | "image" | "translation" | "generation";
  name: string;
  predict(): Prediction;
  target(): ExplainTarget;
  model: Parameters<typeof runExplanation>[1];
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const status = (s: string) => { $("status").textContent = s; };
const threads = () => `backend ${getBackend()}, ${wasmWorkerCount() + 1} thread(s)`;
let current: Explainer | null = null;
let pixels: Float32Array | null = null;    // the image input, 28×28 grey in [0, 1]

/**
 * The value of URL parameter `name` when it is a path on this server, else null — and when it names anything else
 * (//host/…, /\host/…, http://host/…, data:…) a notice says it was ignored.
 */
function sameOriginParam(name: string): string | null {
  const value = params.get(name);
  if (value === null) return null;
  let url: URL | null = null;
  try { url = new URL(value, location.href); } catch { /* not a URL at all: refused below */ }
  if (url && value.startsWith("/") && url.origin === location.origin) return url.pathname + url.search;
  const p = document.createElement("p");
  p.className = "warn";
  p.textContent = `Ignored ?${name}=${value}: not a path on this server (it must start with /); this page uses only ` +
    "files from the server that served it, so nothing is sent to or loaded from another site.";
  $("url-notice").append(p);
  return null;
}

function showError(e: unknown): void {
  $("error").textContent = e instanceof Error ? e.message : String(e);
}

function textInput(): string {
  const text = ($("text") as HTMLTextAreaElement).value;
  if (text.trim() === "") throw new Error("type a text to classify");
  return text;
}

function imageInput(): Float32Array {
  if (!pixels) throw new Error("choose an image");
  return pixels;
}

/** The checkpoint's task decides the explainer (and which input the page shows). */
function explainerFor(bytes: Uint8Array, source: string): Explainer {
  const raw = checkpointFromBytes(bytes, source);   // parsed once; its task decides the explainer
  if (raw.task === "fortunes-classifier") {
    const { model, config } = trainedModel(raw, raw.task, (c) => classifierFromConfig(c));
    return { kind: "text", name: source, model, predict: () => predictText(model, config, textInput()), target: () => explainText(model, config, { text: textInput() }) };
  }
  if (raw.task === "fashion-vit") {
    const { model, config } = trainedModel(raw, raw.task, vitFromStoredConfig);
    return { kind: "image", name: source, model, predict: () => predictPixels(model, config, imageInput()), target: () => explainPixels(model, config, imageInput()) };
  }
  if (raw.task === "dates") {
    const { model, config } = trainedModel(raw, raw.task, (c) => datesTask.modelFromConfig(c));
    const target = () => ($("target") as HTMLInputElement).value.trim();
    return {
      kind: "translation", name: source, model,
      predict: () => datesTask.predict(model, config, textInput()),
      target: () => datesTask.explain!(model, config, { text: textInput() }, target()),
    };
  }
  if (raw.task === "char-lm") {
    const { model, config } = trainedModel(raw, raw.task, (c) => charLm.modelFromConfig(c));
    return {
      kind: "generation", name: source, model,
      // a fixed seed: the same prompt gives the same continuation
      predict: () => charLm.predict(model, config, textInput(), { "max-tokens": "160", seed: "0", quiet: true, "no-compare": true }),
      target: () => charLm.explain!(model, config, { text: textInput() }),
    };
  }
  throw new Error(`${source}: a '${raw.task}' checkpoint; this page explains fortunes-classifier (text), fashion-vit (image), dates (translation) and char-lm (generation) models`);
}

function useExplainer(e: Explainer): void {
  current = e;
  $("text-input").hidden = e.kind === "image";
  $("image-input").hidden = e.kind !== "image";
  $("target-input").hidden = e.kind !== "translation";
  const text = $("text") as HTMLTextAreaElement;
  // the example input of each kind, unless the user typed their own
  const examples: Record<string, string> = { text: BRIEF_SENTENCE, translation: "March 5th, 2021", generation: "The cat sat on the " };
  if (Object.values(examples).includes(text.value) && examples[e.kind]) text.value = examples[e.kind];
  ($("run") as HTMLButtonElement).disabled = false;
  status(`${e.name} loaded · ${threads()}`);
}

async function loadUrl(url: string): Promise<void> {
  status(`loading ${url}…`);
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  useExplainer(explainerFor(new Uint8Array(await r.arrayBuffer()), url.split("/").pop() ?? url));
  status(`${url} loaded from this server · ${threads()}`);   // say exactly what was loaded, and from where
}

/** Decode an image with the browser, then grey, invert when the background is light, pad and resize to 28×28. */
async function setImage(blob: Blob): Promise<void> {
  const bmp = await createImageBitmap(blob);
  const canvas = document.createElement("canvas");
  canvas.width = bmp.width; canvas.height = bmp.height;
  const ctx = canvas.getContext("2d")!;
  ctx.drawImage(bmp, 0, 0);
  const rgba = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
  pixels = greySquare({ width: bmp.width, height: bmp.height, channels: 4, data: new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength) },
    { size: IMAGE_SIDE, invert: "auto" }).pixels;
  const preview = $("preview") as HTMLCanvasElement, pctx = preview.getContext("2d")!, img = pctx.createImageData(IMAGE_SIDE, IMAGE_SIDE);
  pixels.forEach((v, i) => { const g = Math.round(255 * v); img.data.set([g, g, g, 255], 4 * i); });
  pctx.putImageData(img, 0, 0);
}

function showPrediction(p: Prediction): void {
  // sequence outputs are scored by log-probability: shown as the probability of the whole output
  const prob = (score: number) => (p.scoreName === "log-probability" ? Math.exp(score) : score);
  if (!p.alternatives && current?.kind === "generation") {
    $("prediction").innerHTML = `<p>Sampled continuation (seed 0; the report below explains the next character after the prompt):</p><pre class="generated">${escapeHtml(p.output)}</pre>`;
    return;
  }
  const alts = p.alternatives ?? [{ output: p.output, score: p.scoreName === "log-probability" ? 0 : 1 }];
  // bars scale with the narrower of 200 px and 45 % of the screen (phones)
  const rows = alts.map((a) =>
    `<tr><td>${escapeHtml(String(a.output))}</td><td><span class="bar" style="width:calc(${prob(a.score).toFixed(4)} * min(200px, 45vw))"></span> ${(100 * prob(a.score)).toFixed(1)} %</td></tr>`);
  const unk = [...new Set((p.details?.unknownWords as string[] | undefined) ?? [])];
  $("prediction").innerHTML = `<table class="probs">${rows.join("")}</table>` +
    (unk.length ? `<p>Words outside the vocabulary (read as [UNK]): ${unk.map(escapeHtml).join(", ")}</p>` : "");
}

async function explain(): Promise<{ prediction: Prediction; explanation: Explanation }> {
  if (!current) throw new Error("no model loaded");
  $("error").textContent = "";
  $("notice").innerHTML = "";
  const prediction = current.predict();
  showPrediction(prediction);
  const t0 = performance.now();
  const explanation = await runExplanation(current.target(), current.model, {
    methods: [...EXPLAIN_METHODS],
    onProgress: (stage) => status(`explaining: ${stage}…`),
  });
  const title = current.kind === "image" ? `${current.name}: ${prediction.output}`
    : current.kind === "generation" ? `next character after "${textInput().slice(-40)}"` : `${textInput().slice(0, 60)} → ${prediction.output}`;
  // an input longer than the model reads was cut: say so above the report too (the report repeats it)
  if (explanation.truncation) $("notice").innerHTML = truncationBanner(explanation.truncation);
  ($("report") as HTMLIFrameElement).srcdoc = renderHtmlReport(explanation, { title: `attnflow — ${title}` });
  status(`explained in ${((performance.now() - t0) / 1000).toFixed(2)} s · ${threads()}`);
  return { prediction, explanation };
}

/** Page and report widths (a browser test checks that nothing scrolls sideways on a phone-sized window). */
async function layout(): Promise<Record<string, number>> {
  const frame = $("report") as HTMLIFrameElement;
  for (let i = 0; i < 100 && frame.contentDocument?.body?.getAttribute("data-drawn") == null; i++) await new Promise((r) => setTimeout(r, 50));
  const doc = frame.contentDocument!.documentElement;
  return { innerWidth, scrollWidth: document.documentElement.scrollWidth, reportWidth: doc.clientWidth, reportScrollWidth: doc.scrollWidth };
}

async function main(): Promise<void> {
  // checked first, so that a notice for an ignored parameter shows even when loading fails
  const report = sameOriginParam("report"), model = sameOriginParam("model"), image = sameOriginParam("image");
  ($("text") as HTMLTextAreaElement).value = params.get("text") ?? BRIEF_SENTENCE;
  if (params.get("target")) ($("target") as HTMLInputElement).value = params.get("target")!;
  configureBrowserWasmThreads();            // false (one thread) when the page is not cross-origin isolated
  await wasmBackendReady();
  $("run").addEventListener("click", () => { explain().catch(showError); });
  $("file").addEventListener("change", () => {
    const f = ($("file") as HTMLInputElement).files?.[0];
    if (f) f.arrayBuffer().then((b) => useExplainer(explainerFor(new Uint8Array(b), f.name))).catch(showError);
  });
  $("image-file").addEventListener("change", () => {
    const f = ($("image-file") as HTMLInputElement).files?.[0];
    if (f) setImage(f).catch(showError);
  });
  // a Hugging Face folder picked or dropped by the user: read and run in this tab (examples/browser/hf-picker.ts)
  installHFPicker($("hf-picker"), { text: textInput, imageInput: $("image-file"), use: useExplainer, error: showError, status });
  const select = $("model") as HTMLSelectElement;
  select.addEventListener("change", () => { loadUrl(select.value).catch(showError); });
  if (model) select.value = model;
  await loadUrl(model ?? select.value);
  const imageUrl = image ?? (current?.kind === "image" ? "/models/fashion-mnist-test-0.png" : null);
  if (imageUrl) {
    const r = await fetch(imageUrl);
    if (!r.ok) throw new Error(`${imageUrl}: HTTP ${r.status}`);
    await setImage(await r.blob());
  }
  if (params.get("autorun") !== "1") return;
  // workers start asynchronously: give them a moment before the run
  for (let i = 0; i < 50 && wasmWorkerCount() < Math.min(1, (navigator.hardwareConcurrency ?? 1) - 1); i++) await new Promise((r) => setTimeout(r, 100));
  const summary: Record<string, unknown> = { isolated: globalThis.crossOriginIsolated === true, backends: availableBackends() };
  try {
    const { prediction, explanation } = await explain();
    Object.assign(summary, {
      kind: current?.kind, input: current?.kind === "image" ? undefined : textInput(), backend: getBackend(), workers: wasmWorkerCount(), prediction: prediction.output, alternatives: prediction.alternatives,
      tokens: explanation.tokens, pixels: pixels ? Array.from(pixels) : undefined, truncation: explanation.truncation,
      predictionText: $("prediction").textContent, notice: $("notice").textContent, layout: await layout(),
      importance: Object.fromEntries(Object.entries(explanation.methods).map(([k, v]) => [k, (v as { importance: number[] }).importance])),
    });
  } catch (e) {
    summary.error = e instanceof Error ? e.stack ?? e.message : String(e);
    showError(e);
  }
  if (!report) return;
  // `attnflow web` itself is read-only (405): only a server that collects results (the tests') accepts the summary
  const r = await fetch(report, { method: "POST", body: JSON.stringify(summary) });
  if (!r.ok) throw new Error(`?report=${report}: the server answered HTTP ${r.status} to the summary's POST`);
}

// <body data-done> once the page has loaded (and, with ?autorun=1, explained and reported): automation waits for it
main().catch((e) => { showError(e); status("failed"); }).finally(() => { document.body.dataset.done = "1"; });
