// The command line's argument handling (issue 14, item 9): flags are parsed against each command's declaration, unknown
// flags are errors with a suggestion, values are checked, switches never swallow a positional argument, and every
// command has --help listing its flags.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { UsageError, closest, editDistance, parseCommandArgs } from "../cli/args.js";
import { COMMANDS, predictSpec, trainTaskSpec } from "../cli/commands.js";
import { listTasks } from "../src/node/tasks/index.js";
import { task as dates } from "../src/node/tasks/dates.js";
import { Generator } from "../src/random.js";

const bin = fileURLToPath(new URL("../../bin/attnflow.js", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));
function cli(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 60_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("edit distance and the closest name", () => {
  assert.equal(editDistance("max-new-tokens", "max-tokens"), 4);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(closest("max-new-tokens", ["max-tokens", "temperature", "top-k"]), "max-tokens");
  assert.equal(closest("epoch", ["epochs", "lr"]), "epochs");
  assert.equal(closest("zzzzzz", ["epochs", "lr"]), undefined);
});

test("a switch never takes the next word: predict --json keeps the input", async () => {
  const spec = predictSpec((await listTasks()).values());
  const a = parseCommandArgs(spec, ["predict", "--model", "m.safetensors", "--json", "March 5th, 2021"]);
  assert.deepEqual(a._, ["predict", "March 5th, 2021"]);
  assert.equal(a.flags.json, true);
  const b = parseCommandArgs(spec, ["predict", "--model", "m", "--no-cache", "Computers are"]);
  assert.deepEqual(b._, ["predict", "Computers are"]);
  // -- ends the flags: an input that starts with dashes
  assert.deepEqual(parseCommandArgs(spec, ["predict", "--model", "m", "--", "--odd input"])._, ["predict", "--odd input"]);
});

test("an optional-value flag takes the next word only where no positional argument could stand", () => {
  const ex = parseCommandArgs(COMMANDS.explain, ["explain", "--model", "m", "--text", "hi", "--json", "out.json"]);
  assert.equal(ex.flags.json, "out.json");                                  // explain has no positionals
  assert.equal(parseCommandArgs(COMMANDS.explain, ["explain", "--json", "--text", "hi"]).flags.json, true);
  assert.equal(parseCommandArgs(COMMANDS.explain, ["explain", "--json=o.json"]).flags.json, "o.json");
  const tr = trainTaskSpec(dates);
  assert.equal(parseCommandArgs(tr, ["train", "dates", "--resume", "ck.safetensors"]).flags.resume, "ck.safetensors");
  assert.equal(parseCommandArgs(tr, ["train", "dates", "--resume", "--epochs", "4"]).flags.resume, true);
});

test("unknown flags are errors with a suggestion; values are checked", async () => {
  const spec = predictSpec((await listTasks()).values());
  assert.throws(() => parseCommandArgs(spec, ["predict", "--model", "m", "--max-tokenz", "60", "x"]),
    (e: Error) => e instanceof UsageError && /unknown option --max-tokenz/.test(e.message) && /did you mean --max-tokens\?/.test(e.message));
  const bad: [string[], RegExp][] = [
    [["train", "--epochs", "abc"], /--epochs must be an integer >= 1, got "abc"/],
    [["train", "--epochs", "2.5"], /--epochs must be an integer/],
    [["train", "--lr", "-1"], /--lr must be a number > 0, got -1/],
    [["train", "--lr", "0"], /--lr must be a number > 0, got 0/],
    [["train", "--out"], /--out needs a value/],
    [["train", "--out", "--quiet"], /--out needs a value/],
    [["train", "--quiet=yes"], /--quiet is a switch/],
    [["train", "--epochs", "2", "--epochs", "3"], /given twice/],
    [["train", "a", "b"], /unexpected extra argument "b"/],
    [["web", "--port", "70000"], /--port must be an integer >= 0 and <= 65535, got 70000/],
    [["explain", "--flow-matrices", "some"], /must be one of all, layer, none/],
    [["explain", "--text", ""], /--text needs a non-empty value/],
    [["parity"], /missing <dir>/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseCommandArgs(COMMANDS[argv[0]], argv), re, argv.join(" "));
  assert.throws(() => parseCommandArgs(trainTaskSpec(dates), ["train", "dates", "--d-modle", "32"]), /did you mean --d-model\?/);
  // negative numbers are values, not flags; an empty value where the flag allows it
  assert.equal(parseCommandArgs(COMMANDS.explain, ["explain", "--layer", "-1"]).flags.layer, "-1");
  assert.equal(parseCommandArgs(COMMANDS.export, ["export", "--notes", ""]).flags.notes, "");
});

test("dates declares its model options with the defaults createModel really uses", () => {
  const data = dates.loadData({ limitTrain: 8, limitTest: 8 });
  const { config } = dates.createModel(data, {}, new Generator(0));
  for (const [k, o] of Object.entries(dates.modelOptions!)) {
    if (k === "maxSrcLen") { assert.equal(config[k], 12); continue; }                   // "12 (word) / 40 (char)"
    assert.deepEqual(config[k], o.default, `dates option ${k}`);
  }
});

test("every declared model option of every task is accepted by its createModel (where the data is installed)", async () => {
  for (const t of (await listTasks()).values()) {
    let data: unknown;
    try { data = t.loadData({ limitTrain: 16, limitTest: 4 }); } catch { continue; }   // dataset not installed
    for (const [k, o] of Object.entries(t.modelOptions ?? {})) {
      if (typeof o.default === "string" && / /.test(o.default)) continue;                // a described default ("4 x d-model")
      if (k === "init") continue;                                                      // a checkpoint path
      assert.doesNotThrow(() => t.createModel(data, { [k]: o.default }, new Generator(0)), `${t.name} --${k} ${String(o.default)}`);
      const { config } = t.createModel(data, {}, new Generator(0));
      if (k in config) assert.deepEqual(config[k], o.default, `${t.name}: the default of ${k}`);
    }
  }
});

test("the CLI: unknown predict flags are errors, train <task> --help lists model options, every command has --help", () => {
  const p = cli("predict", "--model", "models/dates.safetensors", "--max-tokenz", "60", "March 5th, 2021");
  assert.equal(p.code, 2, p.out + p.err);
  assert.match(p.err, /did you mean --max-tokens\?/);
  // a flag of another task: known to the parser, rejected once the checkpoint's task is known
  const q = cli("predict", "--model", "models/dates.safetensors", "--no-stop", "March 5th, 2021");
  assert.equal(q.code, 2);
  assert.match(q.err, /--no-stop is not an option of task dates/);
  const h = cli("train", "dates", "--help");
  assert.equal(h.code, 0, h.err);
  assert.match(h.out, /--d-model VALUE +embedding width \(default 64\)/);
  assert.match(h.out, /--beam-width VALUE .*\(default 4\)/);
  assert.doesNotMatch(h.out, /dModel|srcTokenizer/);
  const e = cli("train", "--epochs", "abc", "dates");
  assert.equal(e.code, 2);
  assert.match(e.err, /--epochs must be an integer >= 1, got "abc"/);
  for (const [name, spec] of Object.entries(COMMANDS)) {
    const r = cli(name, "--help");
    assert.equal(r.code, 0, `${name} --help: ${r.err}`);
    assert.match(r.out, new RegExp(`^usage: attnflow ${name}`), name);
    for (const f of spec.flags) assert.match(r.out, new RegExp(`--${f.name}\\b.* \\S`), `${name} --help lists --${f.name}`);
  }
  assert.equal(cli("help", "predict").code, 0);
  const u = cli("predct");
  assert.equal(u.code, 2);
  assert.match(u.err, /did you mean "predict"\?/);
});
