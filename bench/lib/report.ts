// The benchmark's JSON document and its two renderings: console tables (human mode) and the
// Markdown written to bench/RESULTS.md.
import type { BenchResult, BenchRow } from "../types.js";
import type { MachineInfo } from "./machine.js";

export interface BenchReport {
  tool: "attnflow-bench";
  date: string; // ISO 8601
  command: string;
  machine: MachineInfo;
  versions: Record<string, unknown>;
  options: { quick: boolean; repeats: number | null; maxRunS: number; cases: string[] };
  results: BenchResult[];
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  return ms >= 1000 ? ms.toFixed(0) : ms >= 100 ? ms.toFixed(1) : ms.toFixed(2);
}

function fmtGf(g: number | undefined): string {
  return g === undefined ? "" : g >= 10 ? g.toFixed(0) : g.toFixed(1);
}

function fmtDiff(x: number | undefined): string {
  return x === undefined ? "" : x === 0 ? "0" : Number.isNaN(x) ? "NaN" : x.toExponential(1);
}

export function fmtRatio(r: number | null | undefined): string {
  if (r === null || r === undefined) return "—";
  return `${r.toFixed(2)}${r < 1 ? " (attnflow faster)" : r > 1 ? " (peer faster)" : ""}`;
}

function groupsOf(results: BenchResult[]): Map<string, BenchResult[]> {
  const g = new Map<string, BenchResult[]>();
  for (const r of results) g.set(r.group, [...(g.get(r.group) ?? []), r]);
  return g;
}

function pad(cells: string[], widths: number[], right: boolean[]): string {
  return cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
}

/** Console tables: one per group, one line per (case, impl), then the ratio line. */
export function renderConsole(results: BenchResult[]): string {
  const lines: string[] = [];
  for (const [group, rs] of groupsOf(results)) {
    const memory = rs.some((r) => r.rows.some((x) => x.peakMemMB !== undefined));
    const head = ["case", "impl", "median ms", "GFLOP/s", ...(memory ? ["peak MB"] : []), "max|Δ|", "note"];
    const right = [false, false, true, true, ...(memory ? [true] : []), true, false];
    const body: string[][] = [];
    for (const r of rs) {
      r.rows.forEach((row, i) => {
        const note = (row.note ?? "").length > 90 ? row.note!.slice(0, 87) + "..." : row.note ?? "";
        body.push([i === 0 ? r.case : "", row.impl, fmtMs(row.medianMs), fmtGf(row.gflops),
          ...(memory ? [row.peakMemMB === undefined ? "" : row.peakMemMB.toFixed(0)] : []), fmtDiff(row.maxAbsDiff), note]);
      });
      const vs = r.checkedAgainst ? `   [max|Δ| vs ${r.checkedAgainst}]` : "";
      body.push(["", `attnflow / best peer: ${fmtRatio(r.ratioToBestPeer)}${vs}`, "", "", ...(memory ? [""] : []), "", ""]);
    }
    const widths = head.map((h, i) => Math.max(h.length, ...body.filter((b) => !b[1].startsWith("attnflow / best")).map((b) => b[i].length)));
    lines.push("", `== ${group} ==`, pad(head, widths, right), widths.map((w) => "-".repeat(w)).join("  "));
    for (const b of body) lines.push(b[1].startsWith("attnflow / best") ? `${"".padEnd(widths[0])}  ${b[1]}` : pad(b, widths, right));
  }
  return lines.join("\n");
}

function mdCell(row: BenchRow | undefined): string {
  if (!row) return "";
  if (row.medianMs === null) return "—";
  const mem = row.peakMemMB !== undefined ? `, ${row.peakMemMB.toFixed(0)} MB` : "";
  return `${fmtMs(row.medianMs)} (${fmtGf(row.gflops)}${mem})`;
}

function esc(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** What attnflow's native addon did to malloc: it happens in every process that loads attnflow, peers' included. */
function nativeMallocLine(versions: Record<string, unknown>): string[] {
  const af = versions.attnflow as { native?: { malloc?: unknown } | null } | undefined;
  const note = af?.native?.malloc;
  return typeof note === "string"
    ? [`- attnflow's native addon set glibc's malloc to "${note}" in each process that loaded attnflow: its own child and the bench process, where onnxruntime-node and tfjs run`]
    : [];
}

/** The class of machine a run belongs to: CPU model, architecture and the widest vector ISA it has. Timings are
 *  only comparable within a class, so bench/RESULTS.md keeps one section per class. */
export function machineClass(m: MachineInfo): string {
  const f = new Set(m.cpuFlags);
  const isa = f.has("amx_tile") ? "AVX-512 + AMX" : f.has("avx512f") ? "AVX-512" : f.has("avx2") ? "AVX2" : m.arch === "arm64" ? "NEON" : "generic";
  return `${m.cpu} (${m.arch}, ${isa})`;
}

const TITLE = "# attnflow benchmark results";
const PREAMBLE = [
  "",
  "One section per machine class (CPU model and widest ISA): timings compare only within a section. `node",
  "dist/bench/write-results.js` (or `npm run bench -- --write-md bench/RESULTS.md`) replaces the section of the machine",
  "it runs on and keeps every other section and any text outside the sections. Cells: median ms (GFLOP/s); memory",
  "cases add the peak RSS above baseline. The last column is attnflow's best time divided by the best peer's",
  "(< 1: attnflow faster).",
];

function marker(kind: "begin" | "end", cls: string): string {
  return `<!-- bench-results ${kind}: ${cls.replace(/--/g, "- -")} -->`;
}

/** One machine class's section: machine, versions, date, a matrix per group and per-row details. */
export function renderSection(rep: BenchReport): string {
  const m = rep.machine;
  const cls = machineClass(m);
  const out: string[] = [
    marker("begin", cls),
    `## ${cls}, ${m.cores} cores`,
    "",
    `Generated by \`${rep.command}\` on ${rep.date}.`,
    "",
    "### Machine",
    "",
    `- CPU: ${m.cpu}, ${m.cores} cores (${m.arch}); flags: ${m.cpuFlags.join(" ") || "n/a"}`,
    `- Memory: ${m.totalMemGB} GB; OS: ${m.platform} ${m.kernel}; Node ${m.node}${m.malloc ? `; malloc: ${m.malloc} (in-process peers and the PyTorch child)` : ""}`,
    ...nativeMallocLine(rep.versions),
    ...(m.loadAvg ? [`- 1-minute load average: ${m.loadAvg.start} at start, ${m.loadAvg.end} at end (the benchmark itself accounts for up to ~${m.cores}; more means other work competed for the cores)`] : []),
    `- Options: ${rep.options.quick ? "quick" : "full"}, repeats ${rep.options.repeats ?? "default"}, max run ${rep.options.maxRunS} s`,
    "",
    "### Versions",
    "",
    ...Object.entries(rep.versions).map(([k, v]) => `- ${k}: ${typeof v === "object" && v !== null ? esc(JSON.stringify(v)) : String(v)}`),
  ];
  for (const [group, rs] of groupsOf(rep.results)) {
    const impls = [...new Set(rs.flatMap((r) => r.rows.map((x) => x.impl)))];
    out.push("", `### ${group}`, "", `| case | ${impls.join(" | ")} | attnflow / best peer |`, `|---|${impls.map(() => "---:").join("|")}|---:|`);
    for (const r of rs) out.push(`| ${r.case} | ${impls.map((i) => mdCell(r.rows.find((x) => x.impl === i))).join(" | ")} | ${fmtRatio(r.ratioToBestPeer)} |`);
    out.push("", "<details><summary>details: min–max, cross-check, notes</summary>", "", "| case | impl | median ms | min–max ms | max abs diff | note |", "|---|---|---:|---:|---:|---|");
    for (const r of rs) {
      for (const x of r.rows) {
        const range = x.minMs !== undefined ? `${fmtMs(x.minMs)}–${fmtMs(x.maxMs)}` : "";
        out.push(`| ${r.case} | ${x.impl} | ${fmtMs(x.medianMs)} | ${range} | ${fmtDiff(x.maxAbsDiff)} | ${esc(x.note ?? "")} |`);
      }
    }
    const refs = [...new Set(rs.map((r) => r.checkedAgainst).filter(Boolean))];
    out.push("", `max abs diff is against ${refs.length ? refs.join(", ") : "attnflow"}'s output.`, "", "</details>");
  }
  out.push(marker("end", cls));
  return out.join("\n") + "\n";
}

/** bench/RESULTS.md with this run's machine-class section replaced (or appended when the class is new); other
 *  classes' sections and hand-written text outside the sections are kept byte for byte. */
export function mergeResults(existing: string, rep: BenchReport): string {
  const section = renderSection(rep);
  const cls = machineClass(rep.machine);
  const begin = marker("begin", cls), end = marker("end", cls);
  const doc = existing.trim() === "" ? [TITLE, ...PREAMBLE, ""].join("\n") + "\n" : existing;
  const b = doc.indexOf(begin);
  if (b >= 0) {
    const e = doc.indexOf(end, b);
    if (e < 0) throw new Error(`bench/RESULTS.md: the section for "${cls}" has a begin marker but no end marker (${end})`);
    return doc.slice(0, b) + section + doc.slice(e + end.length).replace(/^\n/, "");
  }
  return doc.replace(/\n*$/, "\n\n") + section;
}

/** A whole RESULTS.md document holding only this run's section. */
export function renderMarkdown(rep: BenchReport): string {
  return mergeResults("", rep);
}
