// A small run of the fuzz suite (bench/fuzz.ts; the full run is 10,000 library and 500 CLI cases): mutated safetensors
// files, checkpoints, images and tokenizers through the library loaders and the CLI give no crash, no hang and no
// silent acceptance of a structurally invalid file. The per-case limit is generous: only a real hang trips it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const FUZZ = fileURLToPath(new URL("../bench/fuzz.js", import.meta.url));

interface Counts { cases: number; acceptedValid: number; rejectedInvalid: number; crashes: number; hangs: number; silentAcceptances: number; byKind: Record<string, number> }

test("fuzz smoke run: 300 library and 6 CLI cases, 0 crashes, 0 hangs, 0 silent acceptances", () => {
  const r = spawnSync(process.execPath, [FUZZ, "--lib", "300", "--cli", "6", "--seed", "7", "--timeout-s", "120", "--json"], { encoding: "utf8", timeout: 600_000 });
  assert.equal(r.signal, null, r.stderr);
  const rep = JSON.parse(r.stdout) as { library: Counts; cli: Counts; failures: unknown[] };
  assert.deepEqual(rep.failures, [], JSON.stringify(rep.failures, null, 1));
  for (const c of [rep.library, rep.cli]) {
    assert.equal(c.crashes, 0);
    assert.equal(c.hangs, 0);
    assert.equal(c.silentAcceptances, 0);
  }
  assert.equal(rep.library.cases, 300);
  assert.equal(rep.cli.cases, 6);
  // The mutations reach the checks (most files are broken) and valid mutants still load.
  assert.ok(rep.library.rejectedInvalid > 150 && rep.library.acceptedValid > 0, JSON.stringify(rep.library));
  for (const kind of ["safetensors", "checkpoint", "png", "pnm", "tokenizer"]) assert.ok(rep.library.byKind[kind] > 0, kind);
  assert.equal(r.status, 0, r.stderr);
});
