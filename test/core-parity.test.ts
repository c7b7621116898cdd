// Every PyTorch reference case in test/fixtures/pytorch (copied from the shared fixtures) through the parity runner.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));

for (const backend of ["reference", "auto"]) {
  test(`npm run parity passes every PyTorch fixture (forward values and gradients), backend ${backend}`, () => {
    let out: string;
    const env = { ...process.env, ATTNFLOW_QUIET: "1", ...(backend === "auto" ? {} : { ATTNFLOW_BACKEND: backend }) };
    try {
      out = execFileSync(process.execPath, ["dist/cli/parity.js", "test/fixtures/pytorch"], { cwd: root, encoding: "utf8", env });
    } catch (e) {
      assert.fail(`parity runner failed:\n${(e as { stdout?: string }).stdout}`);
    }
    const last = out.trim().split("\n").pop()!;
    const m = /^(\d+) passed, (\d+) failed$/.exec(last);
    assert.ok(m, `unexpected summary line: ${last}`);
    assert.equal(Number(m[2]), 0, out);
    assert.ok(Number(m[1]) >= 54, `expected all 54 cases, got ${m[1]}`);
  });
}

test("parity runner reports a failing case and exits non-zero", async () => {
  const { mkdtempSync, copyFileSync, readFileSync, writeFileSync } = await import("node:fs");
  const dir = mkdtempSync("/tmp/attnflow-parity-");
  copyFileSync(`${root}/test/fixtures/pytorch/primitives/softmax.safetensors`, `${dir}/a.safetensors`);
  // corrupt one expected value: flip a float of output.y
  const bytes = readFileSync(`${dir}/a.safetensors`);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString("utf8", 8, 8 + n));
  const [b] = header["output.y"].data_offsets;
  bytes.writeFloatLE(bytes.readFloatLE(8 + n + b) + 0.01, 8 + n + b);
  writeFileSync(`${dir}/b.safetensors`, bytes);
  try {
    execFileSync(process.execPath, ["dist/cli/parity.js", dir], { cwd: root, encoding: "utf8" });
    assert.fail("expected a non-zero exit");
  } catch (e) {
    const out = (e as { stdout: string }).stdout;
    assert.match(out, /PASS a \[softmax\]/);
    assert.match(out, /FAIL b \[softmax\].*\n\s+output\.y: element 0/);
    assert.match(out, /1 passed, 1 failed/);
  }
});
