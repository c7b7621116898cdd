// `npm run parity -- <dir>`: check every PyTorch reference fixture under <dir> (any names, any nesting).
import "../src/node.js"; // registers the native backend when built
// One line per case, then "N passed, M failed"; exit code 1 if anything failed.
import { readdirSync, statSync } from "node:fs";
import { join, relative, dirname } from "node:path";
import { loadSafetensors } from "../src/io/state-dict.js";
import { readSafetensorsBytesSync } from "../src/node/read-file.js";
import { runCase, type FixtureCase } from "../src/parity/cases.js";
import "../src/parity/explain-cases.js";
import type { Tensor } from "../src/tensor.js";

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith(".safetensors")) out.push(p);
  }
  return out;
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

function main(argv: string[]): number {
  const dir = argv.find((a) => !a.startsWith("-"));
  if (!dir) { console.error("usage: npm run parity -- <fixtures dir>"); return 2; }
  let files: string[];
  try { files = statSync(dir).isDirectory() ? walk(dir) : [dir]; }
  catch { console.error(`parity: cannot read "${dir}"`); return 2; }
  if (!files.length) { console.error(`parity: no .safetensors files under "${dir}"`); return 2; }
  let passed = 0, failed = 0;
  for (const c of collectCases(dir, files)) {
    const t0 = performance.now();
    try {
      if (c.error) throw new Error(c.error);
      const tensors = new Map<string, Tensor>();
      for (const p of c.parts) for (const [k, v] of p.tensors) tensors.set(k, v);
      const cfgText = c.parts.find((p) => p.meta.config)?.meta.config;
      if (!cfgText) throw new Error("no __metadata__.config in the file");
      const fc: FixtureCase = { name: c.name, tensors, config: JSON.parse(cfgText) };
      const checks = runCase(fc);
      if (!checks.length) throw new Error("the case has no outputs to compare");
      const bad = checks.filter((k) => !k.ok);
      const ms = (performance.now() - t0).toFixed(0);
      const worst = Math.max(...checks.map((k) => k.maxErr));
      if (bad.length) {
        failed++;
        console.log(`FAIL ${c.name} [${fc.config.op}] ${bad.length}/${checks.length} checks failed (${ms} ms)`);
        for (const b of bad) console.log(`     ${b.name}: ${b.detail}`);
      } else {
        passed++;
        console.log(`PASS ${c.name} [${fc.config.op}] ${checks.length} checks, max abs err ${worst.toExponential(2)} (${ms} ms)`);
      }
    } catch (e) {
      failed++;
      console.log(`FAIL ${c.name}: ${(e as Error).message}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
