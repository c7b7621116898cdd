// Shared set-up of the WebGPU tests: SwiftShader's ICD when there is no VK_ICD_FILENAMES (before Dawn starts), the
// device started once, gpuTest() that skips with the reason without an adapter — or fails under CI=true — and
// close(), a device result against the reference elementwise.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
export const ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";
if (!process.env.VK_ICD_FILENAMES && existsSync(ICD)) process.env.VK_ICD_FILENAMES = ICD;
import { initWebGPUNode } from "../../src/node/webgpu.js";
import type { Tensor } from "../../src/tensor.js";

let why = "";
try { await initWebGPUNode(); } catch (e) { why = (e as Error).message; }
const skip = why && process.env.CI !== "true" ? `no WebGPU here: ${why}` : false;

export const gpuTest = (name: string, fn: () => Promise<void>) => test(`webgpu: ${name}`, { skip }, async () => {
  if (why) assert.fail(`CI=true and no WebGPU adapter: ${why}`);
  await fn();
});

/** Device result against the reference, elementwise: |a − b| ≤ atol + rtol·|b|, NaN where the reference is NaN. */
export async function close(gpu: Tensor, cpu: Tensor, what: string, atol = 1e-5, rtol = 1e-5): Promise<void> {
  assert.equal(gpu.device, "webgpu", `${what}: result is on ${gpu.device}`);
  assert.deepEqual(gpu.shape, cpu.shape, `${what}: shape`);
  assert.equal(gpu.dtype, cpu.dtype, `${what}: dtype`);
  const a = await gpu.data(), b = cpu.dataSync();
  for (let i = 0; i < b.length; i++) {
    const x = a[i], y = b[i];
    if (Number.isNaN(y)) { assert.ok(Number.isNaN(x), `${what}[${i}]: ${x}, reference NaN`); continue; }
    if (!Number.isFinite(y)) { assert.equal(x, y, `${what}[${i}]`); continue; }
    assert.ok(Math.abs(x - y) <= atol + rtol * Math.abs(y), `${what}[${i}]: ${x} vs reference ${y}`);
  }
}
