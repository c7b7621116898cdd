// README "Use it in your own project": this clone packed with `npm pack` installs offline into a new project, whose
// own `import "attnflow"` then runs the README's quick start with the output the README shows, and whose
// node_modules/.bin/attnflow runs. The native build is skipped (ATTNFLOW_SKIP_NATIVE=1: minutes, and
// test/build-native.test.ts covers the script); the package then runs on its portable backend. Skipped when npm
// is not installed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareOutput } from "./helpers/readme-blocks.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const hasNpm = spawnSync("npm", ["--version"], { encoding: "utf8" }).status === 0;

/** The README's quick start (the first js block after "## Quick start") and the text block showing its output. */
function quickStart(): { code: string; output: string } {
  const readme = readFileSync(join(repo, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Quick start"));
  const m = /```js\n([\s\S]*?)\n```[\s\S]*?```text\n([\s\S]*?)\n```/.exec(section);
  assert.ok(m, "README.md: the quick start's js block and its output block");
  return { code: m[1], output: m[2] };
}

function check(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} exited with ${r.status}\n${r.stdout}\n${r.stderr}${r.error ? `\n${r.error.message}` : ""}`);
  return r.stdout;
}

test("npm pack + npm install --offline of the tarball into a new project: import and CLI work", { skip: hasNpm ? false : "npm is not installed" }, () => {
  const dir = mkdtempSync(join(tmpdir(), "af-own-project-"));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, ATTNFLOW_SKIP_NATIVE: "1", npm_config_cache: join(dir, "npm-cache"), npm_config_update_notifier: "false" };
    // npm test's own settings must not leak into the new project's install
    for (const k of Object.keys(env)) if (/^npm_(package|lifecycle)_/.test(k)) delete env[k];
    const opts = { env, encoding: "utf8" as const, timeout: 300_000, maxBuffer: 64 << 20 };
    // --ignore-scripts: dist/ is what `npm test` has just compiled; `npm pack` would compile it once more
    const packed = JSON.parse(check(spawnSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], { ...opts, cwd: repo }), "npm pack"));
    const files = new Set<string>(packed[0].files.map((f: { path: string }) => f.path));
    for (const f of ["dist/src/node.js", "dist/src/index.d.ts", "dist/cli/attnflow.js", "bin/attnflow.js", "models/dates.safetensors", "native/binding.gyp", "scripts/build-native.mjs"]) {
      assert.ok(files.has(f), `the tarball lacks ${f}`);
    }
    for (const f of files) assert.ok(!/^(native\/build|dist\/test|dist\/bench)\//.test(f), `the tarball should not ship ${f}`);

    const app = join(dir, "my-app");
    spawnSync("mkdir", [app]);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "my-app", version: "1.0.0", private: true }));
    const install = spawnSync("npm", ["install", "--offline", "--no-audit", "--no-fund", join(dir, packed[0].filename)], { ...opts, cwd: app });
    check(install, "npm install --offline attnflow-0.1.0.tgz");
    const deps = JSON.parse(readFileSync(join(app, "package.json"), "utf8")).dependencies;
    assert.match(deps.attnflow, /^file:.*attnflow-0\.1\.0\.tgz$/);

    // The project's import resolves to its own copy, not to this clone.
    writeFileSync(join(app, "where.mjs"), 'console.log(import.meta.resolve("attnflow"));\n');
    const where = fileURLToPath(check(spawnSync(process.execPath, ["where.mjs"], { ...opts, cwd: app }), "where.mjs").trim());
    assert.ok(where.startsWith(join(realpathSync(app), "node_modules", "attnflow")), `attnflow resolved to ${where}`);

    const { code, output } = quickStart();
    writeFileSync(join(app, "quickstart.mjs"), code + "\n");
    const out = check(spawnSync(process.execPath, ["quickstart.mjs"], { ...opts, cwd: app }), "node quickstart.mjs");
    assert.equal(compareOutput(output, out), null, "the quick start prints what the README shows");

    const predict = check(spawnSync("npx", ["--offline", "attnflow", "predict", "--model", "node_modules/attnflow/models/dates.safetensors", "March 5th, 2021"], { ...opts, cwd: app }), "npx attnflow predict");
    assert.equal(predict.split("\n")[0], "2021-03-05");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
