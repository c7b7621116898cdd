// Every Hugging Face reference case in test/fixtures/hf (outputs of HF's own transformers 4.44.2, written by
// ../shared/hf-ref/make_refs.py and scripts/hf-ref/extra_refs.py) through `npm run parity`, on every backend.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const root = fileURLToPath(new URL("../../", import.meta.url));
const fixtures = join(root, "test/fixtures/hf");
// the case folders (the folder also holds notes and tables: README-seq2seq.md, t5-buckets.json)
const cases = readdirSync(fixtures, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

function parity(dir: string, backend?: string): { code: number; out: string } {
  const env = { ...process.env, ATTNFLOW_QUIET: "1", ...(backend ? { ATTNFLOW_BACKEND: backend } : {}) };
  try {
    return { code: 0, out: execFileSync(process.execPath, ["dist/cli/parity.js", dir], { cwd: root, encoding: "utf8", env }) };
  } catch (e) {
    const err = e as { status: number; stdout: string };
    return { code: err.status, out: err.stdout };
  }
}

for (const backend of ["reference", "wasm", undefined]) {
  test(`npm run parity -- test/fixtures/hf: every HF case within 1e-4 of transformers, backend ${backend ?? "auto"}`, () => {
    const { code, out } = parity("test/fixtures/hf", backend);
    assert.equal(code, 0, out);
    assert.equal(out.trim().split("\n").pop(), `${cases.length} passed, 0 failed`, out);
    for (const c of cases) assert.match(out, new RegExp(`^PASS ${c} \\[`, "m"), out);
  });
}

test("HF parity fails a case whose reference disagrees, names the tensor, and keeps going", () => {
  const dir = mkdtempSync("/tmp/attnflow-hfparity-");
  try {
    cpSync(join(fixtures, "gpt2"), join(dir, "a-good"), { recursive: true });
    cpSync(join(fixtures, "gpt2"), join(dir, "b-bad"), { recursive: true });
    // nudge one attention probability of layer 1 by 1e-3 (above the 1e-4 tolerance)
    const file = join(dir, "b-bad/reference.safetensors");
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const [b] = JSON.parse(bytes.toString("utf8", 8, 8 + n))["out.attentions.1"].data_offsets;
    bytes.writeFloatLE(bytes.readFloatLE(8 + n + b) + 1e-3, 8 + n + b);
    writeFileSync(file, bytes);
    const { code, out } = parity(dir);
    assert.equal(code, 1);
    assert.match(out, /^PASS a-good \[GPT2LMHeadModel/m);
    assert.match(out, /^FAIL b-bad \[GPT2LMHeadModel.*1\/\d+ checks failed/m);
    assert.match(out, /out\.attentions\.1: element 0/);
    assert.equal(out.trim().split("\n").pop(), "1 passed, 1 failed");
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("an unsupported model_type is a failed case with the reason, not a crash", () => {
  const dir = mkdtempSync("/tmp/attnflow-hfparity-");
  try {
    cpSync(join(fixtures, "bert"), join(dir, "odd"), { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, "odd/config.json"), "utf8"));
    writeFileSync(join(dir, "odd/config.json"), JSON.stringify({ ...cfg, model_type: "roformer" }));
    cpSync(join(fixtures, "vit"), join(dir, "vit"), { recursive: true });
    const { code, out } = parity(dir);
    assert.equal(code, 1);
    assert.match(out, /^FAIL odd: config.json: "model_type" "roformer" is not supported \(supported: .*bert.*gpt2.*vit/m);
    assert.match(out, /^PASS vit /m);
    assert.equal(out.trim().split("\n").pop(), "1 passed, 1 failed");
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
