// The in-browser explainer (examples/browser/explain.html, served by `attnflow web`): loads a checkpoint over HTTP
// from the local server (or from a file the user picks, read in the page) and picks the explainer by its task — the
// topic classifier for a text, the Vision Transformer for an image, the date translator (one output character,
// through its cross-attention; chosen in the page or ?target=N), the character GPT (the next character after the
// prompt) — runs the model and explains its output with every method, drawn by the same HTML report as
// `attnflow explain --html` (with its head, model, neuron and flow views). All model work runs in a Web Worker
// (explain-worker.ts): this thread only shows progress, offers Cancel and shows the result. A Hugging Face model
// folder picked or dropped in the page (hf-picker.ts collects its File objects) is read by the worker too: its
// picture, for a ViT, is sent as the file itself and decoded there at the model's size. Nothing leaves the page.
// URL parameters: ?model=<path> picks the checkpoint, ?text=… prefills the text, ?image=<path> loads an image,
// ?backend=webgpu runs the model on the GPU through WebGPU (default: the CPU, WebAssembly), ?autorun=1 explains at once, ?report=<path> POSTs a JSON summary when done (automation, browser test). Paths must
// name this server (start with /, same origin): anything else is ignored with a notice, because a crafted link could
// otherwise send the summary of the user's input to another site, or load a model or image from one.
import { escapeHtml, truncationBanner } from "../../src/viz/html-report.js";
import type { Prediction } from "../../src/tasks/task.js";
import { greySquare } from "../../src/data/grey-image.js";
import { BRIEF_SENTENCE } from "../../src/brief.js";
import type { Kind } from "./explainers.js";
import { installHFPicker } from "./hf-picker.js";

import { IMAGE_SIDE } from "../../src/tasks/fashion-vit-model.js";
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const status = (s: string) => { $("status").textContent = s; };
interface Loaded { kind: Kind; name: string; maxPositions?: number; hf: boolean; backend: string }
interface Summary { backend: string; adapter?: string; workers: number; isolated: boolean; tokens: string[]; truncation?: { total: number; kept: number; dropped: number; from: string }; target: unknown; groups: string[]; importance: Record<string, number[]> }
let current: Loaded | null = null;
let pixels: Float32Array | null = null;    // the image input, 28×28 grey in [0, 1]
let picture: Blob | null = null;           // the image input's file itself (a Hugging Face ViT decodes it at its own size)
// kept to reload a fresh worker after Cancel: a checkpoint's bytes, or a Hugging Face folder's File list
let model: { bytes: Uint8Array; source: string } | { files: File[]; name: string } | null = null;

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

/** The backend chosen in the page: "cpu" (WebAssembly, the default) or "webgpu" (sent with every load). */
function backendChoice(): "cpu" | "webgpu" {
  return ($("backend") as HTMLSelectElement).value === "webgpu" ? "webgpu" : "cpu";
}

function textInput(): string {
  return ($("text") as HTMLTextAreaElement).value;
}

// ---- the worker: one request at a time; Cancel terminates it and starts a fresh one with the same model
let worker: Worker | null = null;
let lastPrediction: Prediction | null = null;
let pending: { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void; until: string } | null = null;

function startWorker(): Worker {
  const w = new Worker(new URL("./explain-worker.js", import.meta.url), { type: "module" });
  w.onmessage = (ev: MessageEvent) => {
    const m = ev.data as Record<string, unknown> & { type: string };
    if (m.type === "progress") { progress(m.stage as string, m.done as number, m.total as number); return; }
    if (m.type === "status") { status(m.text as string); return; }
    if (m.type === "load-progress") { loadProgress(m.done as number, m.total as number); return; }
    if (m.type === "prediction") { lastPrediction = m.prediction as Prediction; showPrediction(lastPrediction); return; }
    const p = pending;
    if (!p) return;
    if (m.type === "error") { pending = null; p.reject(new Error(m.message as string)); }
    else if (m.type === p.until) { pending = null; p.resolve(m); }
  };
  w.onerror = (ev) => { const p = pending; pending = null; p?.reject(new Error(`the explainer's worker failed: ${ev.message}`)); };
  return w;
}

function request(msg: Record<string, unknown>, until: string, transfer: Transferable[] = []): Promise<Record<string, unknown>> {
  if (pending) return Promise.reject(new Error("busy: wait for the current run, or cancel it"));
  worker ??= startWorker();
  return new Promise((resolve, reject) => { pending = { resolve, reject, until }; worker!.postMessage(msg, transfer); });
}

function progress(stage: string, done: number, total: number): void {
  const bar = $("progress") as HTMLProgressElement;
  bar.hidden = false;
  bar.max = Math.max(1, total); bar.value = Math.min(done, total);
  status(`explaining: ${stage}${total > 1 ? ` ${done}/${total}` : ""}…`);
}

/** A folder's weights being read: bytes read of the total, the rate so far and the time left, on the progress bar. */
let reading: { name: string; t0: number } | null = null;
const mb = (b: number) => (b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 2 : 0);
function loadProgress(done: number, total: number): void {
  if (!reading) return;
  const bar = $("progress") as HTMLProgressElement;
  bar.hidden = false;
  bar.max = Math.max(1, total); bar.value = Math.min(done, total);
  const s = (performance.now() - reading.t0) / 1000, rate = s > 0 ? done / s : 0;
  const eta = rate > 0 && done < total ? ` · about ${Math.ceil((total - done) / rate)} s left` : "";
  status(`reading ${reading.name}: ${mb(done)} / ${mb(total)} MB of weights${rate > 0 && done > 0 ? ` · ${mb(rate)} MB/s` : ""}${eta} (Cancel stops it)`);
}

function busy(on: boolean): void {
  ($("run") as HTMLButtonElement).disabled = on || !current;
  ($("cancel") as HTMLButtonElement).hidden = !on;
  if (!on) ($("progress") as HTMLProgressElement).hidden = true;
}

/** Cancel: the worker is stopped at once (whatever it was doing) and a fresh one loads the same model — or, when a
 *  folder was being read, the model loaded before it. */
function cancel(): void {
  worker?.terminate();
  worker = null;
  const p = pending, was = reading;
  pending = null;
  reading = null;
  p?.reject(new Error("cancelled"));
  busy(false);
  const what = was ? `cancelled reading ${was.name}` : "cancelled";
  if (model) reload(model).then(() => status(`${what} · ${current?.name ?? ""} · ${current?.backend ?? ""}`)).catch(showError);
  else status(what);
}

/** The backend changed: the model loaded now is loaded again on it (a failure leaves none, and says why). */
function reloadForBackend(): void {
  if (pending) { showError(new Error("busy: the backend applies to the next load (wait for the current run, or cancel it)")); return; }
  if (model) reload(model).then(() => status(`${current?.name ?? ""} loaded · ${current?.backend ?? ""}`)).catch((e) => { showError(e); status("no model loaded"); });
}

function reload(m: NonNullable<typeof model>): Promise<void> {
  return "files" in m ? loadFolder(m.files, m.name) : load(m.bytes, m.source);
}

/** A Hugging Face folder's files, posted to the worker (which reads them by range: nothing is read here). */
async function loadFolder(files: File[], name: string): Promise<void> {
  if (pending) throw new Error("busy: wait for the current run, or cancel it");
  current = null;
  busy(true);   // Cancel stops the read too (and brings back the model loaded before)
  reading = { name, t0: performance.now() };
  status(`reading ${name} (${files.length} files) in a Web Worker…`);
  try {
    const loaded = await request({ type: "load-hf", files, name, backend: backendChoice() }, "loaded") as unknown as Loaded;
    model = { files, name };   // what Cancel reloads from now on
    useExplainer(loaded);
  } finally {
    reading = null;
    if (!pending) busy(false);   // unless Cancel already started the reload
  }
}

async function load(bytes: Uint8Array, source: string): Promise<void> {
  model = { bytes, source };
  current = null;   // a failed load (e.g. no WebGPU adapter) leaves no model to explain
  busy(false);
  const m = await request({ type: "load", bytes: bytes.slice(), source, backend: backendChoice() }, "loaded");
  useExplainer(m as unknown as Loaded);
}

function useExplainer(e: Loaded): void {
  current = e;
  $("text-input").hidden = e.kind === "image";
  $("image-input").hidden = e.kind !== "image";
  $("target-input").hidden = e.kind !== "translation";
  $("preview").hidden = e.hf;   // the preview shows the shipped ViT's 28×28 grey input; an HF ViT reads the picture itself
  const text = $("text") as HTMLTextAreaElement;
  // the example input of each kind, unless the user typed their own
  const examples: Record<string, string> = { text: BRIEF_SENTENCE, translation: "March 5th, 2021", generation: "The cat sat on the " };
  if (Object.values(examples).includes(text.value) && examples[e.kind]) text.value = examples[e.kind];
  $("limit").textContent = e.maxPositions ? `This model reads at most ${e.maxPositions} tokens; a longer input is cut, and the result says so.` : "";
  busy(false);
  status(`${e.name} loaded · ${e.backend}`);
}

async function loadUrl(url: string): Promise<void> {
  status(`loading ${url}…`);
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  await load(new Uint8Array(await r.arrayBuffer()), url.split("/").pop() ?? url);
  status(`${url} loaded from this server · ${current!.backend}`);   // say exactly what was loaded, and from where
}

/** Decode an image with the browser, then grey, invert when the background is light, pad and resize to 28×28. */
async function setImage(blob: Blob): Promise<void> {
  picture = blob;
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

async function explain(): Promise<{ prediction: Prediction; summary: Summary }> {
  if (!current) throw new Error("no model loaded");
  $("error").textContent = "";
  $("notice").innerHTML = "";
  $("prediction").innerHTML = "";
  if (current.kind !== "image" && textInput().trim() === "") throw new Error("type a text to classify");
  // a Hugging Face ViT reads the image input's file (decoded in the worker at the model's own size)
  const image = current.hf ? ($("image-file") as HTMLInputElement).files?.[0] ?? picture : null;
  if (current.kind === "image" && !(current.hf ? image : pixels)) throw new Error("choose an image");
  busy(true);
  lastPrediction = null;
  try {
    const title = current.kind === "image" ? current.name : current.kind === "generation" ? `next character after "${textInput().slice(-40)}"` : textInput().slice(0, 60);
    const input = current.kind === "image" ? (current.hf ? { image: image! } : { pixels: pixels!.slice() }) : { text: textInput(), target: ($("target") as HTMLInputElement).value };
    const m = await request({ type: "explain", input, title }, "done");
    const summary = m.summary as Summary;
    // an input longer than the model reads was cut: say so above the report too (the report repeats it)
    if (summary.truncation) $("notice").innerHTML = truncationBanner(summary.truncation as never);
    ($("report") as HTMLIFrameElement).srcdoc = m.html as string;
    status(`explained in ${((m.ms as number) / 1000).toFixed(2)} s · ${current.backend}`);
    return { prediction: lastPrediction!, summary };
  } finally {
    busy(false);
  }
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
  $("run").addEventListener("click", () => { explain().catch(showError); });
  $("cancel").addEventListener("click", cancel);
  $("file").addEventListener("change", () => {
    const f = ($("file") as HTMLInputElement).files?.[0];
    if (f) f.arrayBuffer().then((b) => load(new Uint8Array(b), f.name)).catch(showError);
  });
  $("image-file").addEventListener("change", () => {
    const f = ($("image-file") as HTMLInputElement).files?.[0];
    if (f) setImage(f).catch(showError);
  });
  // a Hugging Face folder picked or dropped by the user: its files go to the worker (hf-picker.ts)
  installHFPicker($("hf-picker"), { files: (files, name) => { loadFolder(files, name).catch(showError); }, error: showError });
  // the backend: WebGPU where the browser has navigator.gpu (a missing adapter is reported when the model loads)
  const backend = $("backend") as HTMLSelectElement;
  if (params.get("backend") === "webgpu") backend.value = "webgpu";
  if (!("gpu" in navigator)) $("backend-note").textContent = "this browser has no WebGPU (navigator.gpu): use the CPU backend";
  backend.addEventListener("change", () => {
    $("error").textContent = "";
    reloadForBackend();
  });
  const select = $("model") as HTMLSelectElement;
  select.addEventListener("change", () => { loadUrl(select.value).catch(showError); });
  if (model) select.value = model;
  try {
    await loadUrl(model ?? select.value);
  } catch (e) {
    // a model that does not load (e.g. no WebGPU adapter for ?backend=webgpu) is reported too, with ?autorun=1
    if (params.get("autorun") === "1" && report) await fetch(report, { method: "POST", body: JSON.stringify({ error: e instanceof Error ? e.message : String(e) }) });
    throw e;
  }
  const imageUrl = image ?? (current?.kind === "image" ? "/models/fashion-mnist-test-0.png" : null);
  if (imageUrl) {
    const r = await fetch(imageUrl);
    if (!r.ok) throw new Error(`${imageUrl}: HTTP ${r.status}`);
    await setImage(await r.blob());
  }
  if (params.get("autorun") !== "1") return;
  const summary: Record<string, unknown> = {};
  try {
    const { prediction, summary: s } = await explain();
    Object.assign(summary, {
      kind: current?.kind, input: current?.kind === "image" ? undefined : textInput(), isolated: s.isolated, backend: s.backend, adapter: s.adapter, workers: s.workers,
      prediction: prediction.output, alternatives: prediction.alternatives, tokens: s.tokens, pixels: pixels ? Array.from(pixels) : undefined,
      truncation: s.truncation, groups: s.groups, predictionText: $("prediction").textContent, notice: $("notice").textContent, limit: $("limit").textContent,
      layout: await layout(), importance: s.importance,
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
