// The README's code blocks, for test/readme.test.ts (which documents the conventions) and test/own-project.test.ts:
// fenced blocks with their readme-test markers, sh commands, console sessions, and output matching.

export interface Block {
  lang: string;
  body: string;
  /** 1-based line of the opening fence */
  line: number;
  /** the `readme-test:` marker on the line(s) before the fence, or null */
  marker: string | null;
  /** prose between the previous block's closing fence and this one */
  before: string;
}

export function parseBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  let prose: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) {
      prose.push(lines[i]);
      continue;
    }
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]);
    if (i >= lines.length) throw new Error(`README.md:${start + 1}: code block never closed`);
    const lastProse = [...prose].reverse().find((l) => l.trim() !== "") ?? "";
    const m = /^<!--\s*readme-test:\s*(.*?)\s*-->$/.exec(lastProse.trim());
    blocks.push({ lang: open[1], body: body.join("\n"), line: start + 1, marker: m ? m[1] : null, before: prose.join("\n") });
    prose = [];
  }
  return blocks;
}

export interface Skips {
  /** reason the whole block is skipped, or null */
  block: string | null;
  commands: { prefix: string; reason: string }[];
}

export function parseMarker(marker: string | null): Skips {
  const skips: Skips = { block: null, commands: [] };
  if (marker === null) return skips;
  const whole = /^skip\s+\(([^)]+)\)$/.exec(marker);
  if (whole) return { ...skips, block: whole[1] };
  // skip "prefix" (reason); … — a reason may hold ";" and one level of parentheses
  const item = /\s*skip\s+"([^"]+)"\s+\(((?:[^()]|\([^()]*\))+)\)\s*(?:;|$)/y;
  while (item.lastIndex < marker.length) {
    const at = item.lastIndex;
    const m = item.exec(marker);
    if (!m) throw new Error(`readme-test marker not understood at "${marker.slice(at)}" (use skip (reason) or skip "command prefix" (reason); …)`);
    skips.commands.push({ prefix: m[1], reason: m[2] });
  }
  return skips;
}

/** The commands of an sh block: one per line (a trailing backslash continues it), comments and blank lines dropped. */
export function shCommands(body: string): string[] {
  const out: string[] = [];
  let pending = "";
  for (const raw of body.split("\n")) {
    const line = pending + raw;
    if (line.trimEnd().endsWith("\\")) {
      pending = line.trimEnd().slice(0, -1) + " ";
      continue;
    }
    pending = "";
    if (line.trim() !== "" && !line.trim().startsWith("#")) out.push(line.trim());
  }
  return out;
}

/** A console block's `$ command` lines with the output lines under each. */
export function consoleSessions(body: string): { command: string; expected: string }[] {
  const sessions: { command: string; lines: string[] }[] = [];
  for (const line of body.split("\n")) {
    if (line.startsWith("$ ")) sessions.push({ command: line.slice(2).trim(), lines: [] });
    else if (sessions.length) sessions[sessions.length - 1].lines.push(line);
    else if (line.trim() !== "") throw new Error(`console block: output before any "$ command" line: ${line}`);
  }
  return sessions.map((s) => ({ command: s.command, expected: s.lines.join("\n") }));
}

function decimalsEqual(expected: string, actual: string): boolean {
  const places = expected.split(".")[1]?.length ?? 0;
  return Math.abs(Number(expected) - Number(actual)) <= 2 * 10 ** -places + 1e-12;
}

export function linesMatch(expected: string, actual: string): boolean {
  const e = expected.trimEnd().split(/(-?\d+\.\d+)/), a = actual.trimEnd().split(/(-?\d+\.\d+)/);
  if (e.length !== a.length) return false;
  return e.every((part, i) => (i % 2 === 0 ? part === a[i] : decimalsEqual(part, a[i])));
}

const ELLIPSIS = /^\s*(…|\.\.\.)\s*$/;

/** null when `actual` matches `expected`, else a description of the first difference. */
export function compareOutput(expected: string, actual: string): string | null {
  const trim = (s: string) => s.replace(/\s+$/, "").split("\n");
  const exp = trim(expected), act = trim(actual);
  // memoised matcher: an ellipsis line matches any run of lines (including none)
  const memo = new Map<string, boolean>();
  let deepest = { e: 0, a: 0 };
  const match = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    if (i + j > deepest.e + deepest.a) deepest = { e: i, a: j };
    let ok: boolean;
    if (i === exp.length) ok = j === act.length;
    else if (ELLIPSIS.test(exp[i])) ok = match(i + 1, j) || (j < act.length && match(i, j + 1));
    else ok = j < act.length && linesMatch(exp[i], act[j]) && match(i + 1, j + 1);
    memo.set(key, ok);
    return ok;
  };
  if (match(0, 0)) return null;
  const { e, a } = deepest;
  return `output differs at README line ${e + 1} of the block:\n  README: ${JSON.stringify(exp[e] ?? "(end)")}\n  actual: ${JSON.stringify(act[a] ?? "(end)")}`;
}

