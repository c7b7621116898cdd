// The ARM64 NEON kernel table checked against float64 references without an ARM machine: scripts/native-cross-check.mjs
// cross-compiles native/test/kernel-check.cc with the kernel sources for arm64 (Debian's g++-aarch64-linux-gnu) and
// runs it under qemu-user (on an arm64 machine: natively). GEMM (every transpose, alpha/beta, bias + activations,
// batch broadcast, pre-packed B), fused attention forward/backward/weights (causal with Tq ≠ Tk, key padding,
// additive −∞ masks with an all-masked row, GQA/MQA, ALiBi, dropout vs the generic table), layer norm, softmax and
// every elementwise op, on odd shapes, with 1 and 3 pool threads. Skipped without the cross toolchain or qemu —
// except in CI (CI=true), where .ci/run installs them and a missing tool fails the test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SKIP_STATUS = 77;

test("NEON kernels (arm64, under qemu-user) match float64 references on odd shapes", { timeout: 900_000 }, (t) => {
  const r = spawnSync(process.execPath, [join(root, "scripts", "native-cross-check.mjs"), "neon"], { encoding: "utf8", maxBuffer: 64 << 20 });
  const output = `${r.stdout}${r.stderr}`;
  if (r.status === SKIP_STATUS) {
    if (process.env.CI === "true") assert.fail(`CI must run the NEON kernel check: ${output.trim()}`);
    t.skip(output.trim().split("\n").pop());
    return;
  }
  assert.equal(r.status, 0, `kernel check failed:\n${output.slice(-4000)}`);
  assert.match(output, /^neon 1t \(neon\): \d+ checks passed, 0 failed$/m);
  assert.match(output, /^neon 3t \(neon\): \d+ checks passed, 0 failed$/m);
  const total = /^(\d+) passed, 0 failed$/m.exec(output);
  assert.ok(total && Number(total[1]) > 800, `expected the full set of checks:\n${output.slice(-2000)}`);
});
