// Writes bench/RESULTS.md (the lead commits it): machine, versions, date and the tables.
//   node dist/bench/write-results.js [--from report.json] [--out FILE] [run.js options...]
// With --from it renders a document saved by `npm run bench -- --json > report.json`;
// otherwise it runs the benchmark (same options as run.js, e.g. --quick, --case mha) first.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH_SRC } from "./lib/paths.js";
import { renderMarkdown, type BenchReport } from "./lib/report.js";
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
  writeFileSync(out, renderMarkdown(rep));
  process.stderr.write(`wrote ${out} (${rep.results.length} cases)\n`);
  return 0;
}

main().then((c) => process.exit(c), (e) => { console.error(e); process.exit(1); });
