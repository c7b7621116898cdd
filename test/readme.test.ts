// Every code block of README.md runs as shown, and prints what the README says it prints.
//
//   ```js       written to a .mjs file inside the repository (so `import "attnflow"` resolves through the package's
//               self-reference, as it does in a project that installed it) and run with node; exit code 0.
//               A ```text block right after it (at most one line of prose between) is its output.
//   ```sh       each line is a command run by sh; exit code 0. `attnflow` is the command `npm link` installs
//               (a shim on PATH that runs bin/attnflow.js, which is what the link points to).
//   ```console  `$ command` lines, each followed by its output.
//   ```text     not code (a directory tree, or the output of the block before).
// Commands run in the repository's root, as a reader of the README runs them; files they write there (report.html,
// small.safetensors) are removed afterwards when they did not exist before. Output is compared line by line with
// stdout: a line `…` or `...` stands for any number of lines, and a decimal number may differ by 2 in its last
// printed digit (another CPU can round the last bit differently); everything else must match exactly.
//
// Blocks or commands that are too long or never end are skipped only by a marker on the line before the block,
// each with its reason, and each skip is reported:
//   <!-- readme-test: skip (reason) -->                            the whole block
//   <!-- readme-test: skip "command prefix" (reason); skip "…" (…) -->   commands that start with a prefix
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareOutput, consoleSessions, parseBlocks, parseMarker, shCommands, type Block, type Skips } from "./helpers/readme-blocks.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));

// ---- the runner ------------------------------------------------------------------------------------------------

interface Run { status: number | null; stdout: string; stderr: string }

let scratch: string | null = null;
const cache = new Map<string, Run>();
const rootBefore = new Set(readdirSync(repo));
const commandsRun: string[] = [];

/** A folder inside the repository (tmp/ is ignored by git) for the js blocks, with an `attnflow` shim for PATH. */
function scratchDir(): string {
  if (scratch) return scratch;
  scratch = join(repo, "tmp", `readme-${process.pid}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(join(scratch, "bin"), { recursive: true });
  const shim = join(scratch, "bin", "attnflow");
  writeFileSync(shim, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(repo, "bin", "attnflow.js"))} "$@"\n`);
  chmodSync(shim, 0o755);
  return scratch;
}

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${join(scratchDir(), "bin")}${delimiter}${process.env.PATH ?? ""}` };
  delete env.FORCE_COLOR; // what a user's pipe or terminal shows without it; the README's output has no colours
  delete env.NODE_TEST_CONTEXT; // the children are not tests of this run
  return env;
}

function runCommand(command: string): Run {
  // one run per command: the same command with a trailing comment (two spaces, then #) is the same command
  const key = command.replace(/\s{2,}#\s.*$/, "");
  const hit = cache.get(key);
  if (hit) return hit;
  commandsRun.push(command);
  const r = spawnSync("sh", ["-c", command], { cwd: repo, env: childEnv(), encoding: "utf8", timeout: 180_000, maxBuffer: 64 << 20 });
  const run = { status: r.status, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? `\n${r.error.message}` : "") };
  cache.set(key, run);
  return run;
}

function runJs(block: Block): Run {
  const file = join(scratchDir(), `block-line-${block.line}.mjs`);
  writeFileSync(file, block.body + "\n");
  const r = spawnSync(process.execPath, [file], { cwd: repo, env: childEnv(), encoding: "utf8", timeout: 180_000 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? `\n${r.error.message}` : "") };
}

function assertRan(what: string, r: Run): void {
  assert.equal(r.status, 0, `${what} exited with ${r.status}\n--- stdout ---\n${r.stdout.slice(-2000)}\n--- stderr ---\n${r.stderr.slice(-2000)}`);
}

// ---- the README's blocks ---------------------------------------------------------------------------------------

const blocks = parseBlocks(readFileSync(join(repo, "README.md"), "utf8"));

/** The ```text block right after block i when it is that block's output (at most one line of prose between). */
function outputOf(i: number): Block | null {
  const next = blocks[i + 1];
  if (!next || next.lang !== "text") return null;
  return next.before.split("\n").filter((l) => l.trim() !== "").length <= 1 ? next : null;
}

test("README.md has code blocks, each of a kind this test runs", () => {
  assert.ok(blocks.length >= 8, `only ${blocks.length} code blocks found`);
  for (const b of blocks) {
    // another language (a page's html) is allowed only under a skip marker naming the test that runs it
    assert.ok(["js", "sh", "console", "text"].includes(b.lang) || (b.marker !== null && parseMarker(b.marker).block),
      `README.md:${b.line}: a \`\`\`${b.lang || "(no language)"} block — this test runs js, sh and console blocks; tag prose \`\`\`text, or mark the block <!-- readme-test: skip (reason) -->`);
    parseMarker(b.marker); // throws on a marker it cannot read
  }
});

for (const [i, block] of blocks.entries()) {
  if (block.lang === "text") continue;
  const name = `README.md:${block.line} \`\`\`${block.lang}`;
  let skips: Skips;
  try {
    skips = parseMarker(block.marker);
  } catch (e) {
    test(name, () => { throw e; });
    continue;
  }
  if (skips.block) {
    test(name, { skip: `marked: ${skips.block}` }, () => {});
    continue;
  }
  if (block.lang === "js") {
    test(`${name} runs and prints the output shown under it`, () => {
      const r = runJs(block);
      assertRan(name, r);
      const out = outputOf(i);
      assert.ok(r.stdout.trim() !== "", `${name} prints nothing: show the reader what it does`);
      if (out) {
        const diff = compareOutput(out.body, r.stdout);
        assert.equal(diff, null, `${name} (output block at README.md:${out.line}): ${diff}`);
      }
    });
    continue;
  }
  const commands = block.lang === "sh" ? shCommands(block.body).map((command) => ({ command, expected: null as string | null }))
    : consoleSessions(block.body);
  test(name, async (t) => {
    for (const s of skips.commands) {
      assert.ok(commands.some((c) => c.command.startsWith(s.prefix)), `${name}: the marker skips "${s.prefix}", which no command starts with`);
    }
    for (const { command, expected } of commands) {
      const skip = skips.commands.find((s) => command.startsWith(s.prefix));
      if (skip) {
        await t.test(command, { skip: `marked: ${skip.reason}` }, () => {});
        continue;
      }
      await t.test(command, () => {
        const r = runCommand(command);
        assertRan(command, r);
        if (expected !== null) {
          const diff = compareOutput(expected, r.stdout);
          assert.equal(diff, null, `${name}: $ ${command}\n${diff}`);
        }
      });
    }
  });
}

test.after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  // the files the commands wrote in the repository's root (named in a command, absent before this run)
  for (const name of readdirSync(repo)) {
    if (!rootBefore.has(name) && commandsRun.some((c) => c.split(/\s+/).includes(name))) rmSync(join(repo, name), { force: true });
  }
});

// ---- the checker itself ----------------------------------------------------------------------------------------

test("the README checker: blocks, markers, commands and output matching", () => {
  const md = [
    "<!-- readme-test: skip (too long) -->", "```sh", "a", "```", "text", "```js", "x", "```", "prints", "```text", "1", "```",
  ].join("\n");
  const bs = parseBlocks(md);
  assert.deepEqual(bs.map((b) => [b.lang, b.line, b.marker]), [["sh", 2, "skip (too long)"], ["js", 6, null], ["text", 10, null]]);
  assert.throws(() => parseBlocks("```js\nx\n"), /never closed/);
  assert.deepEqual(parseMarker('skip "attnflow web" (serves; see (a)); skip "npm run bench" (slow)').commands,
    [{ prefix: "attnflow web", reason: "serves; see (a)" }, { prefix: "npm run bench", reason: "slow" }]);
  assert.equal(parseMarker("skip (browser code: see x.ts)").block, "browser code: see x.ts");
  assert.throws(() => parseMarker("skip"), /not understood/);
  assert.throws(() => parseMarker('skip "x"'), /not understood/);
  assert.deepEqual(shCommands("# c\nnpm test   # all\n\nnode a \\\n  --b\n"), ["npm test   # all", "node a    --b"]);
  assert.deepEqual(consoleSessions("$ a\n1\n2\n$ b\n"), [{ command: "a", expected: "1\n2" }, { command: "b", expected: "" }]);
  assert.throws(() => consoleSessions("out\n$ a"), /before any/);

  assert.equal(compareOutput("loss 0.5818\nok", "loss 0.5819\nok\n"), null, "last digit ±2");
  assert.match(compareOutput("loss 0.5818", "loss 0.5828") ?? "", /README: "loss 0.5818"/);
  assert.notEqual(compareOutput("positions: 8", "positions: 9"), null, "integers are exact");
  assert.notEqual(compareOutput("a\nb", "a"), null, "a missing line");
  assert.notEqual(compareOutput("a", "a\nb"), null, "an extra line");
  assert.notEqual(compareOutput("█▏ 0.1", "█▎ 0.1"), null, "bars are exact");
  assert.equal(compareOutput("a\n  ...\nz", "a\nb\nc\nz"), null, "an ellipsis line stands for lines");
  assert.equal(compareOutput("a\n…\nz", "a\nz"), null, "…or for none");
  assert.notEqual(compareOutput("a\n...\nz", "a\nb"), null);
});
