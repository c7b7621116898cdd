// `npm run bench`: attnflow side by side with onnxruntime-node, PyTorch, tfjs and jax-js.
// Case files are discovered by scanning dist/bench/cases/*.js (each exports `cases: BenchCase[]`).
//
//   node dist/bench/run.js [--case NAME]... [--impl SUBSTR]... [--quick] [--repeats N]
//                          [--max-run-s S] [--json] [--write-md FILE] [--list] [--no-install]
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchCase, BenchResult } from "./types.js";
import { closeAttnflowChild, configureHarness } from "./lib/harness.js";
import { loadAvg1m, machineInfo, versions } from "./lib/machine.js";
import { reexecWithHugePages } from "./lib/malloc-env.js";
import { ensurePeersInstalled } from "./lib/peer-modules.js";
import { mergeResults, renderConsole, type BenchReport } from "./lib/report.js";
import { closeJax } from "./peers/jax-peer.js";
import { closeOrtWeb } from "./peers/ort-web-peer.js";
import { closeTorch } from "./peers/torch-peer.js";

export interface RunOptions {
  cases: string[];   // case or group names; empty = all
  impls: string[];   // impl substrings; empty = all
  json: boolean;
  quick: boolean;
  repeats: number | null;
  maxRunS: number | null;
  list: boolean;
  writeMd: string | null;
  install: boolean;
  help: boolean;
}

const USAGE = `usage: node dist/bench/run.js [options]      (npm run bench -- [options])
  --case NAME      run a case (e.g. mha-b1-t128) or a whole group (mha, sdpa, sdpa-causal,
                   train, memory, ...); repeatable; default: every case
  --impl SUBSTR    run only peer rows whose name contains SUBSTR (attnflow always runs); repeatable
  --quick          fewer warm-ups/repeats, smaller time budgets
  --repeats N      maximum timed repeats per implementation (default 10, quick 3)
  --max-run-s S    skip an implementation whose estimated single run exceeds S seconds
                   (default 60, quick 8)
  --json           one JSON document on stdout (machine, versions, date, results); progress on stderr
  --write-md FILE  also write this machine class's section of the Markdown report (bench/RESULTS.md format) into FILE,
                   keeping the sections of other machine classes
  --list           list the discovered cases and exit
  --no-install     do not run npm in bench/peers when the peer libraries are missing`;

export function parseArgs(argv: string[]): RunOptions {
  const o: RunOptions = { cases: [], impls: [], json: false, quick: false, repeats: null, maxRunS: null, list: false, writeMd: null, install: true, help: false };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value`);
    return v;
  };
  const positive = (s: string, flag: string): number => {
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a positive number, got "${s}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--case": o.cases.push(value(i++, a)); break;
      case "--impl": o.impls.push(value(i++, a)); break;
      case "--json": o.json = true; break;
      case "--quick": o.quick = true; break;
      case "--repeats": o.repeats = Math.round(positive(value(i++, a), a)); break;
      case "--max-run-s": o.maxRunS = positive(value(i++, a), a); break;
      case "--write-md": o.writeMd = value(i++, a); break;
      case "--list": o.list = true; break;
      case "--no-install": o.install = false; break;
      case "--help": case "-h": o.help = true; break;
      default: throw new Error(`unknown option "${a}"`);
    }
  }
  return o;
}

function isBenchCase(c: unknown): c is BenchCase {
  const x = c as BenchCase;
  return !!x && typeof x.name === "string" && typeof x.group === "string" && typeof x.run === "function";
}

/** Import every dist/bench/cases/*.js and collect their `cases` exports (sorted by file name). */
export async function discoverCases(log: (m: string) => void): Promise<BenchCase[]> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), "cases");
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".js")).sort();
  } catch {
    throw new Error(`no case folder at ${dir}: run \`npm run build\` first`);
  }
  const all: BenchCase[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    let mod: { cases?: unknown };
    try {
      mod = (await import(pathToFileURL(join(dir, f)).href)) as { cases?: unknown };
    } catch (e) {
      log(`[bench] skipping cases/${f}: it failed to load (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`);
      continue;
    }
    if (!Array.isArray(mod.cases)) { log(`[bench] skipping cases/${f}: it exports no \`cases\` array`); continue; }
    for (const c of mod.cases) {
      if (!isBenchCase(c)) { log(`[bench] cases/${f}: ignoring an entry without name/group/run`); continue; }
      if (seen.has(c.name)) throw new Error(`case "${c.name}" is defined in both cases/${seen.get(c.name)} and cases/${f}`);
      seen.set(c.name, f);
      all.push(c);
    }
  }
  // stable order: forward cases, training, other groups (e.g. flow), memory (slowest) last
  const rank = (g: string) => { const i = GROUP_ORDER.indexOf(g); return i >= 0 ? i : g === "memory" ? 99 : 50; };
  return all.map((c, i) => ({ c, i })).sort((a, b) => rank(a.c.group) - rank(b.c.group) || a.i - b.i).map((x) => x.c);
}

const GROUP_ORDER = ["mha", "sdpa", "sdpa-causal", "train"];

/** Keep the cases named by --case (exact case or group names), in discovery order. */
export function selectCases(all: BenchCase[], names: string[]): BenchCase[] {
  if (names.length === 0) return all;
  for (const n of names) {
    if (!all.some((c) => c.name === n || c.group === n)) {
      const groups = [...new Set(all.map((c) => c.group))];
      throw new Error(`unknown case or group "${n}"; groups: ${groups.join(", ")}; cases: ${all.map((c) => c.name).join(", ")}`);
    }
  }
  return all.filter((c) => names.includes(c.name) || names.includes(c.group));
}

/** Run the selected cases and assemble the report document. */
export async function runBenchmark(o: RunOptions, log: (m: string) => void): Promise<BenchReport> {
  if (o.install) ensurePeersInstalled(log);
  const maxRunS = o.maxRunS ?? (o.quick ? 8 : 60);
  const loadAtStart = loadAvg1m();
  configureHarness({ maxRunS, implFilter: o.impls, log });
  const selected = selectCases(await discoverCases(log), o.cases);
  const results: BenchResult[] = [];
  try {
    for (const c of selected) {
      log(`[bench] ${c.name}: ${c.description}`);
      const t0 = performance.now();
      try {
        results.push(await c.run({ repeats: o.repeats ?? (o.quick ? 3 : 10), quick: o.quick }));
      } catch (e) {
        const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
        log(`[bench] ${c.name} failed: ${msg}`);
        results.push({ case: c.name, group: c.group, description: c.description, rows: [{ impl: "harness", medianMs: null, note: `case failed: ${msg}` }], ratioToBestPeer: null });
      }
      log(`[bench] ${c.name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    return {
      tool: "attnflow-bench",
      date: new Date().toISOString(),
      command: `node dist/bench/run.js ${process.argv.slice(2).join(" ")}`.trim(),
      machine: machineInfo(loadAtStart),
      versions: await versions(log),
      options: { quick: o.quick, repeats: o.repeats, maxRunS, cases: selected.map((c) => c.name) },
      results,
    };
  } finally {
    closeJax();
    closeOrtWeb();
    closeAttnflowChild();
    closeTorch();
  }
}

async function main(): Promise<number> {
  const reexec = reexecWithHugePages(); // the same malloc tuning as the PyTorch child (lib/malloc-env.ts)
  if (reexec !== null) return reexec;
  let o: RunOptions;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (o.help) { process.stdout.write(USAGE + "\n"); return 0; }
  const log = (m: string) => process.stderr.write(m + "\n");
  if (o.list) {
    const all = await discoverCases(log);
    for (const c of all) process.stdout.write(`${c.name.padEnd(24)} ${c.group.padEnd(12)} ${c.description}\n`);
    return 0;
  }
  // Ctrl-C / kill: exit normally so temp tensor files are removed and child peers see EOF
  process.once("SIGINT", () => process.exit(130));
  process.once("SIGTERM", () => process.exit(143));
  // peers sometimes print to stdout (console.log); keep stdout for the JSON document alone
  if (o.json) console.log = console.error;
  let rep: BenchReport;
  try {
    rep = await runBenchmark(o, log);
  } catch (e) {
    log(`bench: ${(e as Error).message}`);
    return 2;
  }
  if (o.writeMd) {
    const before = existsSync(o.writeMd) ? readFileSync(o.writeMd, "utf8") : "";
    writeFileSync(o.writeMd, mergeResults(before, rep));
    log(`[bench] wrote ${o.writeMd}`);
  }
  if (o.json) process.stdout.write(JSON.stringify(rep, null, 2) + "\n");
  else {
    const m = rep.machine;
    const v = Object.entries(rep.versions).map(([k, x]) => `${k} ${typeof x === "object" && x !== null ? JSON.stringify(x) : String(x)}`);
    const load = m.loadAvg ? `, load average ${m.loadAvg.start} → ${m.loadAvg.end}` : "";
    process.stdout.write(`attnflow bench ${rep.date}\nmachine: ${m.cpu}, ${m.cores} cores (${m.arch}; ${m.cpuFlags.join(" ") || "flags n/a"}), ${m.totalMemGB} GB, Node ${m.node}${load}\nversions: ${v.join("; ")}\n`);
    process.stdout.write(renderConsole(rep.results) + "\n");
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then((code) => process.stdout.write("", () => process.exit(code)), (e) => { console.error(e); process.exit(1); });
}
