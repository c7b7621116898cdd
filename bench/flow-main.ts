// Standalone runner for the attention-flow and rollout benchmark cases (bench/cases/flow.ts, rollout.ts): one table.
//
//   node dist/bench/flow-main.js [--quick] [--slow] [--t 32,64,128] [--only row|matrix|causal-row|rollout-row|rollout-matrix] [--repeats N] [--json]
//   node dist/bench/flow-main.js --real [--case SUBSTR]... [--quick] [--repeats N] [--json]   (bench/cases/flow-real.ts)
//
// --slow lifts the time budgets (no extrapolation, SciPy full matrix beyond T=128, networkx beyond T=32).
import { cases as flowCases } from "./cases/flow.js";
import { cases as rolloutCases } from "./cases/rollout.js";
import { cases as realCases } from "./cases/flow-real.js";

const cases = [...rolloutCases, ...flowCases];
const KINDS = ["row", "matrix", "causal-row", "rollout-row", "rollout-matrix"];
import type { BenchResult } from "./types.js";

function parse(argv: string[]) {
  const o = { quick: false, slow: false, ts: null as number[] | null, only: null as string | null, repeats: 5, json: false, real: false, case: [] as string[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") o.quick = true;
    else if (a === "--slow") o.slow = true;
    else if (a === "--json") o.json = true;
    else if (a === "--real") o.real = true;
    else if (a === "--case") o.case.push(argv[++i] ?? "");
    else if (a === "--t") o.ts = (argv[++i] ?? "").split(",").map(Number);
    else if (a === "--only") o.only = argv[++i] ?? null;
    else if (a === "--repeats") o.repeats = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}; usage: flow-main [--quick] [--slow] [--t 32,64] [--only row|matrix|causal-row|rollout-row|rollout-matrix] [--repeats N] [--json] | --real [--case SUBSTR]...`);
  }
  if (o.ts?.some((t) => !Number.isInteger(t) || t < 2)) throw new Error("--t takes a comma-separated list of token counts");
  if (o.only !== null && !o.only.split(",").every((k) => KINDS.includes(k))) throw new Error(`--only takes ${KINDS.join(", ")} (comma-separated)`);
  if (!(o.repeats >= 1)) throw new Error("--repeats must be >= 1");
  return o;
}

function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

function renderFlowTable(results: BenchResult[]): string {
  const lines = ["| case | impl | median | max abs diff | note |", "|---|---|---|---|---|"];
  for (const r of results) {
    for (const row of r.rows) {
      lines.push(`| ${r.case} | ${row.impl} | ${fmtMs(row.medianMs)} | ${row.maxAbsDiff === undefined ? "" : row.maxAbsDiff.toExponential(1)} | ${row.note ?? ""} |`);
    }
    const ratio = r.ratioToBestPeer;
    lines.push(`| ${r.case} | **attnflow / best peer** | ${ratio === null || ratio === undefined ? "—" : ratio < 0.01 ? `1/${(1 / ratio).toFixed(0)}` : ratio.toFixed(3)} | | |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  if (o.slow) process.env.ATTNFLOW_BENCH_SLOW = "1";
  const selected = o.real ? realCases.filter((c) => o.case.length === 0 || o.case.some((s) => c.name.includes(s))) : cases.filter((c) => {
    const m = /^(flow|rollout)-(row|matrix|causal-row)-t(\d+)$/.exec(c.name);
    if (!m) return false;
    const kind = m[1] === "rollout" ? `rollout-${m[2]}` : m[2];
    return (o.only === null || o.only.split(",").includes(kind)) && (o.ts === null || o.ts.includes(Number(m[3])));
  });
  const results: BenchResult[] = [];
  for (const c of selected) {
    process.stderr.write(`running ${c.name}\n`);
    results.push(await c.run({ repeats: o.repeats, quick: o.quick }));
  }
  process.stdout.write(o.json ? JSON.stringify(results, null, 1) + "\n" : renderFlowTable(results) + "\n");
}

main().catch((e) => { process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`); process.exit(1); });
