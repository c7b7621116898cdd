// ATTNFLOW_BACKEND: a name that is unknown or unavailable here is an error naming the available backends (never a
// silent fallback to another backend); parity prints the backend its cases ran on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const root = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
const run = (args: string[], backend: string) =>
  spawnSync(process.execPath, args, { cwd: root, encoding: "utf8", env: { ...process.env, ATTNFLOW_BACKEND: backend, ATTNFLOW_QUIET: "1" } });

test("ATTNFLOW_BACKEND: an unknown backend stops parity, the CLI and the library with one line naming the available ones", () => {
  const p = run(["dist/cli/parity.js", "test/fixtures/hf-gen"], "metal");
  assert.equal(p.status, 2, p.stderr);
  assert.match(p.stderr, /^attnflow: ATTNFLOW_BACKEND="metal": no such backend here \(available: [a-z, ]*reference\)\n$/);
  assert.equal(p.stdout, "", "no case ran");
  const c = run(["bin/attnflow.js", "info", "--model", "models/dates.safetensors"], "gpu");
  assert.equal(c.status, 2, c.stderr);
  assert.match(c.stderr, /ATTNFLOW_BACKEND="gpu": no such backend here/);
  const lib = run(["--input-type=module", "-e", 'await import("./dist/src/node.js")'], "cuda");
  assert.notEqual(lib.status, 0);
  assert.match(lib.stderr, /ATTNFLOW_BACKEND="cuda": no such backend here \(available: .*reference\)/);
});

test("ATTNFLOW_BACKEND: parity names the backend it ran on; 'ref' is the reference backend", () => {
  const p = run(["dist/cli/parity.js", "test/fixtures/hf-gen"], "ref");
  assert.equal(p.status, 0, p.stdout + p.stderr);
  assert.match(p.stdout.split("\n")[0], /^backend: reference \(plain TypeScript reference kernels\) — from ATTNFLOW_BACKEND$/);
  assert.match(p.stdout, /\n5 passed, 0 failed\n$/);
  const w = run(["dist/cli/parity.js", "test/fixtures/hf-gen"], "wasm");
  assert.equal(w.status, 0, w.stdout + w.stderr);
  assert.match(w.stdout.split("\n")[0], /^backend: wasm \(WebAssembly /);
});
