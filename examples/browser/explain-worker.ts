// The in-browser explainer's Web Worker: loads the checkpoint, predicts, explains with every method, captures the
// attention views and renders the report — all off the page's main thread, which only shows progress and the result
// (and cancels by terminating this worker). Messages in: {type:"load", bytes, source} | {type:"load-hf", files, name}
// (a Hugging Face folder's File objects, picked or dropped in the page) | {type:"explain", input, title}; "load" carries
// backend "cpu" (WebAssembly, the default) or "webgpu" (the device is started here, the model moves there, forward and
// backward passes run there and their results are read back with await; the methods run on the CPU over them);
// out: {type:"loaded", kind, name, maxPositions, hf, backend} | {type:"status", text} | {type:"load-progress", done, total} | {type:"progress", stage, done, total} |
// {type:"prediction", prediction} | {type:"done", summary, html, ms} | {type:"error", message}.
import { configureBrowserWasmThreads, getBackend, initWebGPU, renderHtmlReport, wasmBackendReady, wasmWorkerCount } from "../../src/index.js";
import { runExplanation, flowRowsLocal, EXPLAIN_METHODS, type FlowRowsFn } from "../../src/explain/explain-run.js";
import { explanationViews, explanationViewsAsync } from "../../src/explain/views.js";
import { explainerFor, hfExplainer, type Explainer, type PageInput } from "./explainers.js";

interface Scope { postMessage(m: unknown): void; onmessage: ((ev: MessageEvent) => void) | null }
const self_ = globalThis as unknown as Scope;
let current: Explainer | null = null;
const ready = (async () => {
  configureBrowserWasmThreads();            // false (one thread) when the page is not cross-origin isolated
  await wasmBackendReady();
  // the kernels' own workers start asynchronously: give them a moment
  for (let i = 0; i < 50 && wasmWorkerCount() < Math.min(1, (navigator.hardwareConcurrency ?? 1) - 1); i++) await new Promise((r) => setTimeout(r, 100));
})();
let adapter = "";   // the WebGPU adapter, once the device was started (backend "webgpu" chosen in the page)
const threads = () => current?.device === "webgpu"
  ? `backend webgpu (${adapter}) in a Web Worker; methods computed on ${getBackend()} from the device's maps`
  : `backend ${getBackend()}, ${wasmWorkerCount() + 1} thread(s) in a Web Worker`;

/** Starts the WebGPU device (navigator.gpu in this worker); no WebGPU or no adapter is an error that says so. */
async function startWebGPU(): Promise<void> {
  if (adapter) return;
  try {
    adapter = (await initWebGPU()).describe();
  } catch (e) {
    throw new Error(`the WebGPU backend is not available in this browser: ${e instanceof Error ? e.message : String(e)}. Choose the CPU backend (WebAssembly).`);
  }
}
const post = (m: unknown) => self_.postMessage(m);

/** Flow rows in chunks, so that the page sees the progress of the slowest method. */
const flowRows: FlowRowsFn = (res, rows) => {
  const T = res.tokens, out = new Float64Array(rows.length * T), step = Math.max(1, Math.ceil(rows.length / 50));
  for (let a = 0; a < rows.length; a += step) {
    out.set(flowRowsLocal(res, rows.slice(a, a + step)), a * T);
    post({ type: "progress", stage: "flow", done: Math.min(rows.length, a + step), total: rows.length });
  }
  return out;
};

self_.onmessage = (ev: MessageEvent) => {
  const m = ev.data as { type: string; bytes?: Uint8Array; source?: string; files?: File[]; name?: string; input?: PageInput; title?: string; backend?: "cpu" | "webgpu" };
  (async () => {
    await ready;
    if (m.type === "load" || m.type === "load-hf") {
      current = null;   // a failed load leaves no model behind
      // a folder's weights: bytes read so far, at most every 100 ms (and the last)
      let last = 0;
      const onProgress = (done: number, total: number) => {
        const now = performance.now();
        if (done < total && done > 0 && now - last < 100) return;
        last = now;
        post({ type: "load-progress", done, total });
      };
      const device = m.backend === "webgpu" ? "webgpu" : "cpu";
      if (device === "webgpu") {
        if (m.type === "load-hf") throw new Error("Hugging Face folders are not yet explained on the WebGPU backend in this page: choose the CPU backend");
        post({ type: "status", text: "starting WebGPU…" });
        await startWebGPU();
      }
      current = m.type === "load" ? explainerFor(m.bytes!, m.source!, device) : await hfExplainer(m.files!, m.name!, (text) => post({ type: "status", text }), onProgress);
      post({ type: "loaded", kind: current.kind, name: current.name, maxPositions: current.maxPositions, hf: current.hf === true, backend: threads() });
      return;
    }
    if (m.type !== "explain") throw new Error(`unknown message ${m.type}`);
    if (!current) throw new Error("no model loaded");
    const t0 = performance.now();
    post({ type: "progress", stage: "predicting", done: 0, total: 1 });
    const input = current.prepare ? await current.prepare(m.input!) : m.input!;
    const prediction = await current.predict(input);
    post({ type: "prediction", prediction });
    const target = await current.target(input);
    const explanation = await runExplanation(target, current.model, {
      methods: [...EXPLAIN_METHODS], flowRows,
      onProgress: (stage, done, total) => post({ type: "progress", stage, done, total }),
    });
    post({ type: "progress", stage: "attention views", done: 0, total: 1 });
    const vo = { maxPositions: current.maxPositions };
    const views = current.device === "webgpu" ? await explanationViewsAsync(explanation, target, current.model, vo) : explanationViews(explanation, target, current.model, vo);
    // a generated continuation is long and shown beside the report: the title names only the explained step
    const title = current.kind === "generation" ? m.title ?? "next character" : m.title ? `${m.title} → ${prediction.output}` : prediction.output;
    const html = renderHtmlReport(explanation, { title: `attnflow — ${title}`, views });
    const summary = {
      backend: current.device === "webgpu" ? "webgpu" : getBackend(), adapter: current.device === "webgpu" ? adapter : undefined, workers: wasmWorkerCount(), isolated: globalThis.crossOriginIsolated === true,
      tokens: explanation.tokens, truncation: explanation.truncation, target: explanation.target, groups: views.groups.map((g) => g.title),
      importance: Object.fromEntries(Object.entries(explanation.methods).map(([k, v]) => [k, (v as { importance: number[] }).importance])),
    };
    post({ type: "done", summary, html, ms: performance.now() - t0, threads: threads() });
  })().catch((e: unknown) => post({ type: "error", message: e instanceof Error ? e.message : String(e) }));
};
