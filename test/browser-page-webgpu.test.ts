// The explain page (examples/browser/explain.html, as `attnflow web` serves it) on the WebGPU backend in headless
// Chromium (--enable-unsafe-webgpu; SwiftShader without a GPU): ?backend=webgpu makes its Web Worker start the device
// (navigator.gpu in the worker), move the shipped topic classifier there and explain a short text with every method
// (forward and backward passes on the device, results read back with await); the importance of each method equals the
// same page on the CPU backend (WebAssembly). A model the page cannot yet run on WebGPU is refused with a message that
// says so. Skips without Chromium; a page without WebGPU fails under CI=true and skips otherwise.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";

const ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";
if (!process.env.VK_ICD_FILENAMES && existsSync(ICD)) process.env.VK_ICD_FILENAMES = ICD;
const ROOT = fileURLToPath(new URL("../..", import.meta.url));   // dist/test/ → package root
const TEXT = "the cat sat on the mat";

interface Summary {
  error?: string; backend?: string; adapter?: string; prediction?: string; alternatives?: { output: string; score: number }[];
  tokens?: string[]; importance?: Record<string, number[]>; groups?: string[];
}

function openPage(query: string): Promise<Summary> {
  return pageReport<Summary>({
    index: join(ROOT, "examples", "browser", "explain.html"),
    mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models") },
    pathAndQuery: `/?${query}&autorun=1&report=/__result`, timeoutMs: 240_000,
    browserArgs: ["--enable-unsafe-webgpu"],
  });
}

const noWebGPU = (r: Summary) => r.error !== undefined && /WebGPU backend is not available/.test(r.error);

test("browser: the explain page on WebGPU explains the shipped classifier with every method, equal to the CPU backend", { skip, timeout: 600_000 }, async (t) => {
  const gpu = await openPage(`text=${encodeURIComponent(TEXT)}&backend=webgpu`);
  if (noWebGPU(gpu) && process.env.CI !== "true") { t.skip(`no WebGPU in this Chromium: ${gpu.error!.split("\n")[0]}`); return; }
  assert.equal(gpu.error, undefined, gpu.error);
  assert.equal(gpu.backend, "webgpu");
  assert.match(gpu.adapter!, /^WebGPU: /);
  const cpu = await openPage(`text=${encodeURIComponent(TEXT)}`);
  assert.equal(cpu.error, undefined, cpu.error);
  assert.notEqual(cpu.backend, "webgpu");
  assert.equal(gpu.prediction, cpu.prediction);
  gpu.alternatives!.forEach((a, i) => { assert.equal(a.output, cpu.alternatives![i].output); assert.ok(Math.abs(a.score - cpu.alternatives![i].score) < 1e-4, `${a.output}: ${a.score} vs ${cpu.alternatives![i].score}`); });
  assert.deepEqual(gpu.tokens, cpu.tokens);
  assert.deepEqual(gpu.groups, cpu.groups);
  assert.deepEqual(Object.keys(gpu.importance!).sort(), ["blankout", "flow", "grad", "inputgrad", "raw", "rollout"]);
  let max = 0, at = "";
  for (const [m, want] of Object.entries(cpu.importance!)) {
    const got = gpu.importance![m];
    assert.equal(got.length, want.length, m);
    assert.ok(want.some((x) => x !== 0), `${m}: all zero on the CPU`);
    want.forEach((x, i) => { const d = Math.abs(got[i] - x) / Math.max(1e-3, Math.abs(x)); if (d > max) { max = d; at = `${m}[${i}]: ${got[i]} vs ${x}`; } });
  }
  t.diagnostic(`${gpu.adapter}: largest relative difference to the CPU backend ${max} (${at})`);
  assert.ok(max < 2e-3, `webgpu vs cpu in the page: ${at}`);
});

test("browser: a model the page cannot yet run on WebGPU is refused, saying so", { skip, timeout: 300_000 }, async (t) => {
  const r = await openPage("model=/models/dates.safetensors&backend=webgpu");
  if (noWebGPU(r) && process.env.CI !== "true") { t.skip(`no WebGPU in this Chromium: ${r.error!.split("\n")[0]}`); return; }
  assert.match(r.error ?? "", /'dates' model on the WebGPU backend is not yet supported in this page \(it is for fortunes-classifier\); choose the CPU backend/);
});
