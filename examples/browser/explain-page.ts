// The in-browser explainer (examples/browser/explain.html, served by `attnflow web`): loads a fortunes-classifier
// checkpoint over HTTP from the local server (or from a file the user picks, read in the page), classifies the text
// and explains the prediction with every method, drawn by the same HTML report as `attnflow explain --html`.
// URL parameters: ?text=… prefills the text, ?autorun=1 explains it at once, ?model=<url> picks the checkpoint,
// ?report=<same-origin path> POSTs a JSON summary when done (for automation and the browser test).
import { availableBackends, configureBrowserWasmThreads, getBackend, renderHtmlReport, wasmBackendReady, wasmWorkerCount } from "../../src/index.js";
import { runExplanation, EXPLAIN_METHODS, type Explanation } from "../../src/explain/explain-run.js";
import { BRIEF_SENTENCE, explainText, predictText, textClassifierFromCheckpoint } from "../../src/tasks/fortunes-classifier-model.js";

type Loaded = ReturnType<typeof textClassifierFromCheckpoint>;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const status = (s: string) => { $("status").textContent = s; };
let loaded: Loaded | null = null;

function showError(e: unknown): void {
  $("error").textContent = e instanceof Error ? e.message : String(e);
}

async function loadFrom(bytes: Uint8Array, source: string): Promise<void> {
  loaded = textClassifierFromCheckpoint(bytes, source);
  status(`${source}: ${loaded.config.labels.length} classes · backend ${getBackend()}, ${wasmWorkerCount() + 1} thread(s)`);
  ($("run") as HTMLButtonElement).disabled = false;
}

async function loadUrl(url: string): Promise<void> {
  status(`loading ${url}…`);
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  await loadFrom(new Uint8Array(await r.arrayBuffer()), url.split("/").pop() ?? url);
}

function showPrediction(p: ReturnType<typeof predictText>): void {
  const rows = (p.alternatives ?? []).map((a) =>
    `<tr><td>${escape(String(a.output))}</td><td><span class="bar" style="width:${Math.round(200 * a.score)}px"></span> ${(100 * a.score).toFixed(1)} %</td></tr>`);
  const unk = (p.details?.unknownWords as string[] | undefined) ?? [];
  $("prediction").innerHTML = `<table class="probs">${rows.join("")}</table>` +
    (unk.length ? `<p>Words outside the vocabulary (read as [UNK]): ${unk.map(escape).join(", ")}</p>` : "");
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

async function explain(): Promise<{ prediction: ReturnType<typeof predictText>; explanation: Explanation }> {
  if (!loaded) throw new Error("no model loaded");
  const text = ($("text") as HTMLTextAreaElement).value;
  if (text.trim() === "") throw new Error("type a text to classify");
  $("error").textContent = "";
  const prediction = predictText(loaded.model, loaded.config, text);
  showPrediction(prediction);
  const t0 = performance.now();
  const target = explainText(loaded.model, loaded.config, { text });
  const explanation = await runExplanation(target, loaded.model, {
    methods: [...EXPLAIN_METHODS],
    onProgress: (m) => status(`explaining: ${m}…`),
  });
  ($("report") as HTMLIFrameElement).srcdoc = renderHtmlReport(explanation, { title: `attnflow — ${text.slice(0, 60)}` });
  status(`explained in ${((performance.now() - t0) / 1000).toFixed(2)} s · backend ${getBackend()}, ${wasmWorkerCount() + 1} thread(s)`);
  return { prediction, explanation };
}

async function main(): Promise<void> {
  ($("text") as HTMLTextAreaElement).value = params.get("text") ?? BRIEF_SENTENCE;
  configureBrowserWasmThreads();            // false (one thread) when the page is not cross-origin isolated
  await wasmBackendReady();
  $("run").addEventListener("click", () => { explain().catch(showError); });
  $("file").addEventListener("change", () => {
    const f = ($("file") as HTMLInputElement).files?.[0];
    if (f) f.arrayBuffer().then((b) => loadFrom(new Uint8Array(b), f.name)).catch(showError);
  });
  $("model").addEventListener("change", () => { loadUrl(($("model") as HTMLSelectElement).value).catch(showError); });
  await loadUrl(params.get("model") ?? ($("model") as HTMLSelectElement).value);
  if (params.get("autorun") !== "1") return;
  // workers start asynchronously: give them a moment before the timed run
  for (let i = 0; i < 50 && wasmWorkerCount() < Math.min(1, (navigator.hardwareConcurrency ?? 1) - 1); i++) await new Promise((r) => setTimeout(r, 100));
  const summary: Record<string, unknown> = { isolated: globalThis.crossOriginIsolated === true, backends: availableBackends() };
  try {
    const { prediction, explanation } = await explain();
    Object.assign(summary, {
      backend: getBackend(), workers: wasmWorkerCount(), prediction: prediction.output, alternatives: prediction.alternatives,
      tokens: explanation.tokens,
      importance: Object.fromEntries(Object.entries(explanation.methods).map(([k, v]) => [k, (v as { importance: number[] }).importance])),
    });
  } catch (e) {
    summary.error = e instanceof Error ? e.stack ?? e.message : String(e);
    showError(e);
  }
  const report = params.get("report");
  if (report && report.startsWith("/")) await fetch(report, { method: "POST", body: JSON.stringify(summary) });
}

main().catch((e) => { showError(e); status("failed"); });
