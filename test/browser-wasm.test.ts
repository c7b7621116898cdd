// The browser entry in a real browser: headless Chromium loads dist/src/index.js from a local server that sends the
// cross-origin-isolation headers (COOP/COEP), runs the Wasm backend on a Web Worker over shared memory, and checks
// matmul + causal multi-head attention forward/backward against the reference backend in the same page. Importing
// the entry at all proves it has no Node-only imports. Skips when no Chromium is installed (browser-helpers.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { configureBrowserWasmThreads } from "../src/backend/wasm/web-workers.js";
import { wasmThreadConfig } from "../src/backend/wasm/threads.js";
import { launchChromium, skipWithoutChromium as skip } from "./browser-helpers.js";

const DIST = fileURLToPath(new URL("..", import.meta.url));  // dist/ (this file runs as dist/test/…)

const PAGE_SCRIPT = `
import * as af from "/src/index.js";
const out = { isolated: globalThis.crossOriginIsolated === true };
try {
  out.configured = af.configureBrowserWasmThreads(2);
  out.ready = await af.wasmBackendReady();
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
  // workers start asynchronously (the first run may be single-threaded): wait for them, up to 10 s
  for (let i = 0; i < 100 && af.wasmWorkerCount() < 1; i++) await new Promise((r) => setTimeout(r, 100));
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

const MIME: Record<string, string> = { ".js": "text/javascript", ".html": "text/html", ".json": "application/json", ".wasm": "application/wasm" };

interface PageResult { isolated: boolean; configured?: boolean; ready?: boolean; backends?: string[]; autoBackend?: string; workers?: number; maxDiff?: number; n?: number; error?: string }

/** Serves dist/ with COOP/COEP, plus the check page; resolves with what the page posts back. */
function serveCheck(): Promise<{ url: string; result: Promise<PageResult>; close: () => void }> {
  let deliver!: (r: PageResult) => void;
  const result = new Promise<PageResult>((res) => { deliver = res; });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const headers = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp", "Cache-Control": "no-store" };
    const path = decodeURIComponent((req.url ?? "/").split("?")[0]);
    if (req.method === "POST" && path === "/__result") {
      let body = "";
      req.on("data", (c) => { body += c; });
      req.on("end", () => { res.writeHead(204, headers).end(); deliver(JSON.parse(body) as PageResult); });
      return;
    }
    if (path === "/" || path === "/check.html") {
      res.writeHead(200, { ...headers, "Content-Type": "text/html" });
      res.end(`<!doctype html><meta charset="utf-8"><title>attnflow browser check</title><script type="module">${PAGE_SCRIPT}</script>`);
      return;
    }
    const file = normalize(join(DIST, path));
    if (!file.startsWith(DIST.endsWith(sep) ? DIST : DIST + sep) || !existsSync(file)) { res.writeHead(404, headers).end(); return; }
    res.writeHead(200, { ...headers, "Content-Type": MIME[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${port}/check.html`, result, close: () => { server.closeAllConnections(); server.close(); } });
    });
  });
}

test("browser: the Wasm backend runs on a Web Worker under cross-origin isolation and matches the reference", { skip, timeout: 120_000 }, async () => {
  const { url, result, close } = await serveCheck();
  const browser = launchChromium(url);
  const exited = browser.exited.then((code): PageResult => {
    throw new Error(`Chromium exited (${code}) before the page reported:\n${browser.stderr().slice(-2000)}`);
  });
  const timer = new Promise<PageResult>((_, reject) => setTimeout(() => reject(new Error(`no result from the page in 90 s:\n${browser.stderr().slice(-2000)}`)), 90_000).unref());
  try {
    const r = await Promise.race([result, exited, timer]);
    assert.equal(r.error, undefined, r.error);
    assert.equal(r.isolated, true, "the page must be cross-origin isolated (SharedArrayBuffer)");
    assert.equal(r.configured, true, "configureBrowserWasmThreads accepts an isolated page");
    assert.equal(r.ready, true);
    assert.deepEqual(r.backends, ["wasm", "reference"]);
    assert.equal(r.autoBackend, "wasm", "automatic selection picks wasm in a browser");
    assert.equal(r.workers, 1, "threads: 2 runs one Web Worker beside the page's thread");
    assert.ok(r.n! > 40_000, `compared ${r.n} values`);
    assert.ok(r.maxDiff! < 1e-4, `wasm (Web Worker) vs reference: max relative difference ${r.maxDiff}`);
  } finally {
    browser.stop();
    close();
  }
});

test("configureBrowserWasmThreads: false and no change outside a cross-origin-isolated page with Web Workers", () => {
  const before = wasmThreadConfig();
  assert.equal(configureBrowserWasmThreads(2), false);   // Node: no global Worker, not cross-origin isolated
  assert.equal(wasmThreadConfig(), before);
});
