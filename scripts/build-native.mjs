#!/usr/bin/env node
// Builds the optional native backend (native/ → native/build/Release/attnflow_native.node) with node-gyp.
// Run by the package's install/prepare step, so it must never fail the install: whatever goes wrong, it prints one
// line saying why and that the portable backend will be used, and exits 0.
//   ATTNFLOW_SKIP_NATIVE=1     skip the build
//   ATTNFLOW_NATIVE_VERBOSE=1  show the compiler output
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const addon = join(nativeDir, "build", "Release", "attnflow_native.node");
const verbose = process.env.ATTNFLOW_NATIVE_VERBOSE === "1";

function giveUp(reason) {
  console.log(`attnflow: native backend not built (${reason}); falling back to the portable backend`);
  process.exit(0);
}

// node-gyp: the one npm runs scripts with, the one bundled with npm next to this node, or an installed package.
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const prefix = resolve(dirname(process.execPath), "..");
  candidates.push(join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push(join(prefix, "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  if (process.env.npm_execpath) {
    candidates.push(join(dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  }
  try {
    candidates.push(createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js"));
  } catch {
    // not installed as a package: fine
  }
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

// Node's headers next to this node binary (distribution packages install them there): build against them
// instead of letting node-gyp download a header tarball.
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? [`--nodedir=${prefix}`] : [];
}

function lastErrorLine(text) {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const err = lines.filter((l) => /error/i.test(l) && !/^gyp ERR! (cwd|node -v|node-gyp -v|command|System|not ok)/.test(l));
  const pick = err.find((l) => !/^gyp ERR! stack/.test(l)) ?? err[0] ?? lines[lines.length - 1] ?? "unknown error";
  return pick.length > 200 ? pick.slice(0, 200) + "…" : pick;
}

function main() {
  if (process.env.ATTNFLOW_SKIP_NATIVE === "1") giveUp("ATTNFLOW_SKIP_NATIVE=1");
  if (!existsSync(join(nativeDir, "binding.gyp"))) giveUp("native/binding.gyp is missing");
  const gyp = findNodeGyp();
  if (!gyp) giveUp("node-gyp not found");
  const jobs = String(Math.max(1, Math.min(3, cpus().length)));
  const args = [gyp, "rebuild", "--directory", nativeDir, "--jobs", jobs, ...nodedirArgs()];
  const t0 = Date.now();
  // binding.gyp runs `node` (to read the package version): make it this node.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` };
  const r = spawnSync(process.execPath, args, {
    cwd: nativeDir,
    env,
    encoding: "utf8",
    stdio: verbose ? "inherit" : "pipe",
    timeout: 15 * 60 * 1000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) giveUp(`node-gyp could not run: ${r.error.message}`);
  if (r.status !== 0) giveUp(verbose ? `node-gyp exited with ${r.status}` : lastErrorLine(`${r.stdout}\n${r.stderr}`));
  if (!existsSync(addon)) giveUp("the build produced no attnflow_native.node");
  // Load it in a child process: a broken binary must not take this script down with it.
  const probe = spawnSync(process.execPath, ["-e", `const m = require(${JSON.stringify(addon)}); process.stdout.write(JSON.stringify(m.info()))`], { encoding: "utf8", timeout: 60_000 });
  if (probe.status !== 0) giveUp(`the built addon does not load: ${lastErrorLine(`${probe.stderr}`)}`);
  let info = {};
  try {
    info = JSON.parse(probe.stdout);
  } catch {
    giveUp("the built addon did not report its info()");
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`attnflow: native backend built (${info.isa}, ${info.threads} threads) in ${secs} s`);
}

try {
  main();
} catch (e) {
  giveUp(e instanceof Error ? e.message : String(e));
}
