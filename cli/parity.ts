// `npm run parity -- <dir>`: check every reference case under <dir> (any names, any nesting): PyTorch op fixtures
// (.safetensors files with __metadata__.config) and Hugging Face cases (a folder holding config.json,
// model.safetensors or its index, and reference.safetensors — every file in such a folder belongs to that case).
import { releaseEnvGuard } from "./env-guard.js"; // first: a bad ATTNFLOW_BACKEND is one clear line, exit 2
import "../src/node.js"; // registers the native backend when built
// One line per case, then "N passed, M failed"; exit code 1 if anything failed.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative, dirname } from "node:path";
import { loadSafetensors } from "../src/io/state-dict.js";
import { readSafetensorsBytesSync } from "../src/node/read-file.js";
import { runCase, type FixtureCase } from "../src/parity/cases.js";
import "../src/parity/explain-cases.js";
import type { Tensor } from "../src/tensor.js";
import { runHFCase, HF_ATOL } from "../src/parity/hf-cases.js";
import { folderReader } from "../src/hf/node-pretrained.js";
import type { Check } from "../src/parity/compare.js";
import { backendInfo, getBackend } from "../src/backend/registry.js";
import { defaultDevice, getDevice } from "../src/device.js";
releaseEnvGuard();

function isHFCase(dir: string): boolean {
  return existsSync(join(dir, "config.json")) && existsSync(join(dir, "reference.safetensors")) &&
    (existsSync(join(dir, "model.safetensors")) || existsSync(join(dir, "model.safetensors.index.json")));
}

/** PyTorch fixture files and HF case folders under dir, in name order. */
function walk(dir: string, hf: string[]): string[] {
  if (isHFCase(dir)) { hf.push(dir); return []; }
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, hf));
    else if (name.endsWith(".safetensors")) out.push(p);
  }
  return out;
}

function report(name: string, kind: string, checks: Check[], ms: string): boolean {
  const bad = checks.filter((k) => !k.ok);
  const worst = Math.max(...checks.map((k) => k.maxErr));
  if (bad.length) {
    console.log(`FAIL ${name} [${kind}] ${bad.length}/${checks.length} checks failed (${ms} ms)`);
    for (const b of bad) console.log(`     ${b.name}: ${b.detail}`);
    return false;
  }
  console.log(`PASS ${name} [${kind}] ${checks.length} checks, max abs err ${worst.toExponential(2)} (${ms} ms)`);
  return true;
}

/** Each HF case: one line; an unsupported model or a bad folder is a failed case with the reason. */
async function runHF(root: string, dirs: string[]): Promise<[number, number]> {
  let passed = 0, failed = 0;
  for (const dir of dirs) {
    const name = relative(root, dir) || dir, t0 = performance.now();
    try {
      const r = await runHFCase(folderReader(dir), readSafetensorsBytesSync(join(dir, "reference.safetensors"), "reference"));
      if (!r.checks.length) throw new Error("reference.safetensors has no out.* or gen.* tensors to compare");
      if (report(name, `${r.architecture}, atol ${HF_ATOL}`, r.checks, (performance.now() - t0).toFixed(0))) passed++; else failed++;
      for (const n of r.notes) console.log(`     generate ${n}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${(e as Error).message}`);
    }
  }
  return [passed, failed];
}

interface Loaded { file: string; tensors: Map<string, Tensor>; meta: Record<string, string> }

/** Group files into cases: a sharded case (metadata "case" + "shards") is merged across its files. */
function collectCases(root: string, files: string[]): { name: string; parts: Loaded[]; error?: string }[] {
  const cases = new Map<string, { name: string; parts: Loaded[]; error?: string }>();
  for (const file of files) {
    const rel = relative(root, file) || file;
    let loaded: Loaded;
    try {
      const { tensors, metadata } = loadSafetensors(readSafetensorsBytesSync(file, "fixture"));
      loaded = { file: rel, tensors, meta: metadata };
    } catch (e) {
      cases.set(rel, { name: rel, parts: [], error: (e as Error).message });
      continue;
    }
    const key = loaded.meta.shards && loaded.meta.case ? `${dirname(rel)}#${loaded.meta.case}` : rel;
    const name = loaded.meta.shards && loaded.meta.case ? `${dirname(rel)}/ (${loaded.meta.case}, sharded)` : rel.replace(/\.safetensors$/, "");
    const entry = cases.get(key) ?? { name, parts: [] };
    entry.parts.push(loaded);
    cases.set(key, entry);
  }
  return [...cases.values()];
}

async function main(argv: string[]): Promise<number> {
  const dir = argv.find((a) => !a.startsWith("-"));
  if (!dir) { console.error("usage: npm run parity -- <fixtures dir>"); return 2; }
  let files: string[];
  const hfDirs: string[] = [];
  try { files = statSync(dir).isDirectory() ? walk(dir, hfDirs) : [dir]; }
  catch { console.error(`parity: cannot read "${dir}"`); return 2; }
  if (!files.length && !hfDirs.length) { console.error(`parity: no .safetensors files under "${dir}"`); return 2; }
  // the backend every case runs on (ATTNFLOW_BACKEND picks it; an unknown or unavailable one stopped us already)
  const dev = defaultDevice();
  if (dev !== "cpu") console.log(`backend: ${dev} (${getDevice(dev).describe()}) — from ATTNFLOW_BACKEND; CPU kernels: ${getBackend()}`);
  else console.log(`backend: ${getBackend()} (${backendInfo()?.description ?? "?"})${process.env.ATTNFLOW_BACKEND ? " — from ATTNFLOW_BACKEND" : " — automatic choice"}`);
  let [passed, failed] = await runHF(dir, hfDirs);
  for (const c of collectCases(dir, files)) {
    const t0 = performance.now();
    try {
      if (c.error) throw new Error(c.error);
      const tensors = new Map<string, Tensor>();
      for (const p of c.parts) for (const [k, v] of p.tensors) tensors.set(k, v);
      const cfgText = c.parts.find((p) => p.meta.config)?.meta.config;
      if (!cfgText) throw new Error("no __metadata__.config in the file");
      // on a device, inputs and parameters move there and results are read back asynchronously (src/parity/cases.ts)
      const fc: FixtureCase = { name: c.name, tensors, config: JSON.parse(cfgText), device: dev };
      const checks = await runCase(fc);
      if (!checks.length) throw new Error("the case has no outputs to compare");
      if (report(c.name, String(fc.config.op), checks, (performance.now() - t0).toFixed(0))) passed++; else failed++;
    } catch (e) {
      failed++;
      console.log(`FAIL ${c.name}: ${(e as Error).message}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
