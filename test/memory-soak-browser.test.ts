// Memory soak in headless Chromium on the Wasm backend (bench/lib/chromium-soak.ts): the README-style loops without
// tidy() run synchronously in a page, and at each mark (gc() first) this process reads the renderer's RSS while the
// page waits on a synchronous request. Before the fix the renderer grew ~98 KB per step (mha-adamw) and ~49 KB per
// step (sdpa-weights); the bound is 20 KB per step over the second half (minimum of each half compared, so one late
// heap resize cannot fail it). Skips without Chromium (browser-helpers.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { browserSoak, chromiumAvailable } from "../bench/lib/chromium-soak.js";
import { SOAK_WORKLOADS } from "../bench/lib/soak-loop.js";

const skip = chromiumAvailable ? false : "no headless Chromium on Linux here (apt-get install chromium-headless-shell)";
const STEPS = 2000, EVERY = 250, MAX_BYTES_PER_STEP = 20 * 1024;

for (const workload of SOAK_WORKLOADS) {
  test(`browser memory soak: ${workload} on wasm without tidy() keeps the renderer's RSS flat`, { skip, timeout: 180_000 }, async () => {
    const r = await browserSoak({ workload, warmup: 200, steps: STEPS, every: EVERY, gc: true, timeoutMs: 150_000 });
    assert.equal(r.backend, "wasm");
    assert.equal(r.marks.length, STEPS / EVERY + 1);
    assert.ok(r.marks.every((m) => m.rendererRssMB > 0), "the renderer process was found");
    const rss = r.marks.map((m) => m.rendererRssMB * 2 ** 20);
    const half = Math.floor(rss.length / 2);
    const perStep = (Math.min(...rss.slice(half)) - Math.min(...rss.slice(0, half))) / (r.marks[half].step - r.marks[0].step);
    const trace = r.marks.map((m) => `${m.step}: ${m.rendererRssMB.toFixed(0)} MB`).join(", ");
    assert.ok(perStep < MAX_BYTES_PER_STEP, `${workload} in Chromium: renderer RSS grows ${(perStep / 1024).toFixed(1)} KB per step (${trace})`);
  });
}
