// The browser entry in a real browser: headless Chromium loads dist/src/index.js from a local server that sends the
// cross-origin-isolation headers (COOP/COEP), runs the Wasm backend on a Web Worker over shared memory, and checks
// matmul + causal multi-head attention forward/backward against the reference backend in the same page (with the
// relaxed-SIMD kernels where the browser has relaxed SIMD, as Chromium does). Importing
// the entry at all proves it has no Node-only imports. Skips when no Chromium is installed (browser-helpers.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { configureBrowserWasmThreads } from "../src/backend/wasm/web-workers.js";
import { wasmThreadConfig } from "../src/backend/wasm/threads.js";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";

const DIST = fileURLToPath(new URL("..", import.meta.url));  // dist/ (this file runs as dist/test/…)

const PAGE_SCRIPT = `
import * as af from "/src/index.js";
const out = { isolated: globalThis.crossOriginIsolated === true };
try {
  out.configured = af.configureBrowserWasmThreads(2);
  out.ready = await af.wasmBackendReady();
  out.relaxed = af.wasmRelaxedSimdSupported();
  out.relaxedActive = af.wasmRelaxedSimdActive();
  out.ua = navigator.userAgent;
  out.backends = af.availableBackends();
  out.autoBackend = af.getBackend();
  const run = () => {
    af.manualSeed(3);
    const a = af.randn([3, 96, 200]), b = af.randn([200, 150]);
    const mha = new af.nn.MultiheadAttention(64, 4, { batchFirst: true });
    const x = af.randn([2, 120, 64], { requiresGrad: true });
    const [y] = mha.forward(x, x, x, { isCausal: true, needWeights: false });
    y.square().sum().backward();
    return { mm: Array.from(a.matmul(b).dataSync()), y: Array.from(y.dataSync()), gx: Array.from(x.grad.dataSync()) };
  };
  af.setBackend("wasm");
  run();
  // workers start asynchronously (the first run may be single-threaded): wait for them, up to 60 s (a hang guard:
  // a busy machine takes many times the idle start-up time)
  for (let i = 0; i < 600 && af.wasmWorkerCount() < 1; i++) await new Promise((r) => setTimeout(r, 100));
  out.workers = af.wasmWorkerCount();
  const w = run();
  af.setBackend("reference");
  const r = run();
  let maxDiff = 0;
  for (const k of ["mm", "y", "gx"]) for (let i = 0; i < r[k].length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(w[k][i] - r[k][i]) / Math.max(1, Math.abs(r[k][i])));
  }
  out.maxDiff = maxDiff;
  out.n = r.mm.length + r.y.length + r.gx.length;
} catch (e) {
  out.error = String(e && e.stack || e);
}
await fetch("/__result", { method: "POST", body: JSON.stringify(out) });
`;

interface PageResult { isolated: boolean; ua?: string; relaxed?: boolean; relaxedActive?: boolean; configured?: boolean; ready?: boolean; backends?: string[]; autoBackend?: string; workers?: number; maxDiff?: number; n?: number; error?: string }

test("browser: the Wasm backend runs on a Web Worker under cross-origin isolation and matches the reference", { skip, timeout: 120_000 }, async () => {
  const r = await pageReport<PageResult>({
    index: join(DIST, "src", "index.js"), mounts: { "/src/": join(DIST, "src") }, pathAndQuery: "/check.html", timeoutMs: 90_000,
    handle: (req, res) => {
      if (req.url !== "/check.html") return false;
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(`<!doctype html><meta charset="utf-8"><title>attnflow browser check</title><script type="module">${PAGE_SCRIPT}</script>`);
      return true;
    },
  });
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.isolated, true, "the page must be cross-origin isolated (SharedArrayBuffer)");
  assert.equal(r.configured, true, "configureBrowserWasmThreads accepts an isolated page");
  assert.equal(r.ready, true);
  assert.deepEqual(r.backends, ["wasm", "reference"]);
  assert.equal(r.autoBackend, "wasm", "automatic selection picks wasm in a browser");
  assert.equal(r.workers, 1, "threads: 2 runs one Web Worker beside the page's thread");
  assert.ok(r.n! > 40_000, `compared ${r.n} values`);
  assert.ok(r.maxDiff! < 1e-4, `wasm (Web Worker) vs reference: max relative difference ${r.maxDiff}`);
  // Chromium ships relaxed SIMD (114+): the kernels compared above were then the fused-multiply-add ones
  const chrome = Number(/Chrome\/(\d+)/.exec(r.ua ?? "")?.[1] ?? 0);
  if (chrome >= 114) assert.equal(r.relaxed, true, `Chromium ${chrome} has relaxed SIMD`);
  assert.equal(typeof r.relaxed, "boolean");
  assert.equal(r.relaxedActive, r.relaxed, "relaxed SIMD is used exactly where the browser has it");
});

test("configureBrowserWasmThreads: false and no change outside a cross-origin-isolated page with Web Workers", () => {
  const before = wasmThreadConfig();
  assert.equal(configureBrowserWasmThreads(2), false);   // Node: no global Worker, not cross-origin isolated
  assert.equal(wasmThreadConfig(), before);
});
