// WebGPU in a real browser: headless Chromium (--enable-unsafe-webgpu; SwiftShader without a GPU) loads the browser
// entry, starts the device with initWebGPU() (navigator.gpu) and checks device results against the reference backend
// in the same page: GEMM, layer norm, fused causal GQA attention with its maps and its gradients. Importing the entry
// and the WebGPU backend in the page proves they need nothing from Node. Skips without Chromium; a page without
// WebGPU fails under CI=true and skips otherwise.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";

const DIST = fileURLToPath(new URL("..", import.meta.url));

const PAGE_SCRIPT = `
import * as af from "/src/index.js";
const out = {};
try {
  const dev = await af.initWebGPU();
  out.adapter = dev.describe();
  af.setBackend("reference");
  af.manualSeed(5);
  const q = af.randn([2, 4, 19, 8]), k = af.randn([2, 2, 23, 8]), v = af.randn([2, 2, 23, 8]), g = af.randn([2, 4, 19, 8]);
  const a = af.randn([37, 45]), b = af.randn([45, 29]), w = af.randn([29]), bias = af.randn([29]);
  const run = (G) => {
    const qq = G(q).requiresGrad_(true), kk = G(k).requiresGrad_(true), vv = G(v).requiresGrad_(true);
    const r = af.F.scaledDotProductAttention(qq, kk, vv, { causal: true, returnWeights: "full" });
    r.out.mul(G(g)).sum().backward();
    const y = af.F.layerNorm(G(a).matmul(G(b)), [29], G(w), G(bias));
    return [r.out, r.weights, qq.grad, kk.grad, vv.grad, y];
  };
  const cpu = run((t) => t), gpu = run((t) => t.to("webgpu"));
  out.devices = gpu.map((t) => t.device);
  let maxDiff = 0, n = 0;
  for (let i = 0; i < cpu.length; i++) {
    const x = cpu[i].dataSync(), y = await gpu[i].data();
    for (let j = 0; j < x.length; j++, n++) maxDiff = Math.max(maxDiff, Math.abs(x[j] - y[j]) / Math.max(1, Math.abs(x[j])));
  }
  out.maxDiff = maxDiff; out.n = n;
} catch (e) {
  out.error = String(e && e.stack || e);
}
await fetch("/__result", { method: "POST", body: JSON.stringify(out) });
`;

interface PageResult { adapter?: string; devices?: string[]; maxDiff?: number; n?: number; error?: string }

test("browser: WebGPU in headless Chromium — GEMM, layer norm, fused attention forward/maps/backward match the reference", { skip, timeout: 180_000 }, async (t) => {
  const r = await pageReport<PageResult>({
    index: join(DIST, "src", "index.js"), mounts: { "/src/": join(DIST, "src") }, pathAndQuery: "/webgpu.html", timeoutMs: 150_000,
    browserArgs: ["--enable-unsafe-webgpu"],
    handle: (req, res) => {
      if (req.url !== "/webgpu.html") return false;
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(`<!doctype html><meta charset="utf-8"><title>attnflow webgpu check</title><script type="module">${PAGE_SCRIPT}</script>`);
      return true;
    },
  });
  if (r.error && /no WebGPU|no WebGPU adapter/.test(r.error) && process.env.CI !== "true") { t.skip(`no WebGPU in this Chromium: ${r.error.split("\n")[0]}`); return; }
  assert.equal(r.error, undefined, r.error);
  assert.match(r.adapter!, /^WebGPU: /);
  assert.deepEqual(r.devices, ["webgpu", "webgpu", "webgpu", "webgpu", "webgpu", "webgpu"]);
  assert.ok(r.n! > 8_000, `compared ${r.n} values`);
  t.diagnostic(`${r.adapter}: ${r.n} values, max relative difference ${r.maxDiff}`);
  assert.ok(r.maxDiff! < 1e-4, `webgpu vs reference in the page: max relative difference ${r.maxDiff}`);
});
