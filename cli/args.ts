// Command-line parsing against a declaration: every command lists its flags with their kinds (switch, value,
// optional-value), so the parser knows which words are values and which are positional arguments; an unknown flag is
// an error with the closest known name ("did you mean --max-tokens?"), and values are checked before anything runs.
import type { FlagSpec } from "../src/tasks/task.js";

export type { FlagSpec } from "../src/tasks/task.js";

export interface Args { _: string[]; flags: Record<string, string | boolean> }

export interface PositionalSpec { name: string; help: string; optional?: boolean; variadic?: boolean }

export interface CommandSpec {
  /** "train", "train dates": what usage lines and errors call it. */
  name: string;
  /** The usage line's words after `attnflow` when not `name` and the positionals (train dates [options]). */
  usage?: string;
  summary: string;
  positionals?: PositionalSpec[];
  flags: FlagSpec[];
  /** Accept flags not declared here as value flags (a task that does not declare its model options checks them). */
  otherFlagsTakeValues?: boolean;
  /** Extra sections for --help (e.g. the task's model options). */
  sections?: { title: string; lines: string[] }[];
}

/** A mistake in the command line: reported with a pointer to --help and exit code 2. */
export class UsageError extends Error {}

export const HELP_FLAG: FlagSpec = { name: "help", kind: "switch", help: "show this help" };

/** Levenshtein distance (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The closest candidate, when it is close enough to be a plausible typo (a third of the name, at least 2 edits). */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestD) { best = c; bestD = d; }
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** Checks a value against the flag's declared type and range; returns the reason it is wrong, or undefined. */
export function checkValue(f: FlagSpec, v: string): string | undefined {
  if (f.choices && !f.choices.includes(v)) return `must be one of ${f.choices.join(", ")}, got "${v}"`;
  if (!f.type) return v === "" && !f.allowEmpty ? "needs a non-empty value" : undefined;
  const x = v.trim() === "" ? NaN : Number(v);
  const want = describeRange(f);
  if (!Number.isFinite(x) || (f.type === "int" && !Number.isInteger(x))) return `must be ${want}, got "${v}"`;
  if (f.min !== undefined && (x < f.min || (f.minExclusive && x === f.min))) return `must be ${want}, got ${v}`;
  if (f.max !== undefined && (x > f.max || (f.maxExclusive && x === f.max))) return `must be ${want}, got ${v}`;
  return undefined;
}

function describeRange(f: FlagSpec): string {
  const what = f.type === "int" ? "an integer" : "a number";
  const lo = f.min === undefined ? "" : `${f.minExclusive ? ">" : ">="} ${f.min}`;
  const hi = f.max === undefined ? "" : `${f.maxExclusive ? "<" : "<="} ${f.max}`;
  return [what, [lo, hi].filter(Boolean).join(" and ")].filter(Boolean).join(" ");
}

const isFlagWord = (w: string) => w.startsWith("--") && w.length > 2;

/**
 * Parses `argv` (the command's name first, as in `_[0]`) against `spec`. A value flag takes the next word (or
 * `--name=value`); a switch never does; an optional-value flag takes the next word only when every positional slot is
 * already filled, so `predict --json "a prompt"` keeps the prompt. `--` ends the flags; `-h` is `--help`.
 * `--help` anywhere short-cuts the checks of the other words (they are not parsed further).
 */
export function parseCommandArgs(spec: CommandSpec, argv: string[]): Args {
  const a: Args = { _: [], flags: {} };
  const flags = new Map(spec.flags.map((f) => [f.name, f]));
  flags.set("help", HELP_FLAG);
  if (argv.slice(1).some((w) => w === "--help" || w === "-h")) { a._.push(argv[0]); a.flags.help = true; return a; }
  const pos = spec.positionals ?? [];
  const slotsLeft = () => pos.some((p) => p.variadic) ? true : a._.length - 1 < pos.length;
  let onlyPositional = false;
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i];
    if (i === 0 || onlyPositional || !isFlagWord(w)) {
      if (i > 0 && !onlyPositional && w === "--") { onlyPositional = true; continue; }
      if (i > 0 && !slotsLeft()) {
        throw new UsageError(pos.length ? `unexpected extra argument "${w}" (${spec.name} takes ${pos.map((p) => `<${p.name}>`).join(" ")})`
          : `unexpected argument "${w}" (${spec.name} takes no positional arguments; options start with --)`);
      }
      a._.push(w);
      continue;
    }
    const eq = w.indexOf("=");
    const name = eq < 0 ? w.slice(2) : w.slice(2, eq), inline = eq < 0 ? undefined : w.slice(eq + 1);
    const f = flags.get(name) ?? (spec.otherFlagsTakeValues ? { name, kind: "value", help: "" } satisfies FlagSpec : undefined);
    if (!f) {
      const near = closest(name, [...flags.keys()]);
      throw new UsageError(`unknown option --${name} for ${spec.name}${near ? `; did you mean --${near}?` : ""}`);
    }
    if (a.flags[name] !== undefined) throw new UsageError(`--${name} is given twice`);
    let value: string | boolean;
    if (f.kind === "switch") {
      if (inline !== undefined) throw new UsageError(`--${name} is a switch and takes no value (got --${name}=${inline})`);
      value = true;
    } else if (inline !== undefined) value = inline;
    else if (f.kind === "value") {
      if (i + 1 >= argv.length || isFlagWord(argv[i + 1])) throw new UsageError(`--${name} needs a value (${f.arg ?? "a value"})`);
      value = argv[++i];
    } else if (!slotsLeft() && i + 1 < argv.length && !isFlagWord(argv[i + 1])) value = argv[++i];
    else value = true;
    if (typeof value === "string") {
      const bad = checkValue(f, value);
      if (bad) throw new UsageError(`--${name} ${bad}`);
    }
    a.flags[name] = value;
  }
  const missing = pos.filter((p) => !p.optional && !p.variadic).slice(a._.length - 1);
  if (missing.length) throw new UsageError(`missing ${missing.map((p) => `<${p.name}>`).join(" ")} (${missing[0].help})`);
  return a;
}

/** A command's --help: usage line, arguments, then one line per flag with its default. */
export function formatHelp(spec: CommandSpec): string {
  const pos = (spec.positionals ?? []).map((p) => { const s = `<${p.name}>${p.variadic ? "..." : ""}`; return p.optional ? `[${s}]` : s; });
  const lines = [`usage: attnflow ${spec.usage ?? spec.name + (pos.length ? " " + pos.join(" ") : "")} [options]`, "", spec.summary];
  const rows = (items: [string, string][]) => {
    const w = Math.min(30, Math.max(...items.map(([l]) => l.length)));
    return items.map(([l, h]) => `  ${l.padEnd(w)}  ${h}`);
  };
  if (spec.positionals?.length && !spec.usage) lines.push("", "arguments:", ...rows(spec.positionals.map((p) => [`<${p.name}>`, p.help])));
  const opt = (f: FlagSpec): [string, string] => {
    const arg = f.arg ?? (f.choices ? f.choices.join("|") : f.type === "int" ? "N" : f.type === "number" ? "X" : "VALUE");
    const label = f.kind === "switch" ? `--${f.name}` : f.kind === "value" ? `--${f.name} ${arg}` : `--${f.name} [${arg}]`;
    return [label, f.help + (f.default !== undefined ? ` (default ${String(f.default)})` : "")];
  };
  lines.push("", "options:", ...rows([...spec.flags, HELP_FLAG].map(opt)));
  for (const s of spec.sections ?? []) lines.push("", s.title, ...s.lines);
  return lines.join("\n");
}

/** camelCase → kebab-case (dModel → d-model, stemChannels → stem-channels). */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
