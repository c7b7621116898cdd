// Writes this machine class's section of bench/RESULTS.md (the lead commits it): machine, versions, date and the
// tables; the sections of other machine classes and text outside the sections are kept.
//   node dist/bench/write-results.js [--from report.json] [--out FILE] [run.js options...]
// With --from it renders a document saved by `npm run bench -- --json > report.json`;
// otherwise it runs the benchmark (same options as run.js, e.g. --quick, --case mha) first.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH_SRC } from "./lib/paths.js";
import { machineClass, mergeResults, type BenchReport } from "./lib/report.js";
import { parseArgs, runBenchmark } from "./run.js";

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let from: string | null = null;
  let out = join(BENCH_SRC, "RESULTS.md");
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--from" || argv[i] === "--out") {
      const v = argv[i + 1];
      if (v === undefined) { process.stderr.write(`write-results: ${argv[i]} needs a value\n`); return 2; }
      if (argv[i] === "--from") from = v; else out = v;
      i++;
    } else rest.push(argv[i]);
  }
  let rep: BenchReport;
  if (from) {
    rep = JSON.parse(readFileSync(from, "utf8")) as BenchReport;
    if (rep.tool !== "attnflow-bench" || !Array.isArray(rep.results)) {
      process.stderr.write(`write-results: ${from} is not an attnflow-bench --json document\n`);
      return 2;
    }
  } else {
    const log = (m: string) => process.stderr.write(m + "\n");
    rep = await runBenchmark(parseArgs(rest), log);
  }
  const before = existsSync(out) ? readFileSync(out, "utf8") : "";
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, mergeResults(before, rep));
  renameSync(tmp, out);
  process.stderr.write(`wrote ${out}: the section for ${machineClass(rep.machine)} (${rep.results.length} cases); other sections kept\n`);
  return 0;
}

main().then((c) => process.exit(c), (e) => { console.error(e); process.exit(1); });
