#!/usr/bin/env node
// Builds the optional native backend (native/ → native/build/Release/attnflow_native.node) with node-gyp.
// Run by the package's install step, so it must never fail the install: whatever goes wrong, it prints one
// line saying why and that the portable backend will be used, and exits 0.
//
// The build takes minutes on a small machine, and npm re-runs install scripts more often than one would think
// (`npx attnflow` in a clone links the folder into npm's npx cache and runs them again; so do `npm link`,
// `npm rebuild` and every `npm install` of a local folder). So a successful build leaves a record next to the
// addon (native/build/Release/attnflow_native.stamp.json): a hash of what went into it (native/ sources,
// binding.gyp, the package version binding.gyp embeds), the Node version, ABI, platform and arch, the compiler
// and the build-relevant environment, and a hash of the addon it produced. The next run rebuilds only when one of
// those differs or the addon is missing or was replaced, and says which.
//   ATTNFLOW_SKIP_NATIVE=1     skip the build
//   ATTNFLOW_NATIVE_REBUILD=1  build even when the addon is up to date
//   ATTNFLOW_NATIVE_VERBOSE=1  show the compiler output
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { basename, delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const addon = join(nativeDir, "build", "Release", "attnflow_native.node");
export const stampPath = join(nativeDir, "build", "Release", "attnflow_native.stamp.json");
const verbose = process.env.ATTNFLOW_NATIVE_VERBOSE === "1";

// Environment that changes what node-gyp/make produce: the compiler and its flags, and npm's node-gyp settings
// (another target Node, a debug build, another arch). The headers' folder is recorded as the one the build would
// use (nodedir below), not as npm_config_nodedir: npm sets that variable for its scripts on some systems (Debian's
// npm: /usr) and this script passes the same folder itself when run directly, and both are the same build.
export const BUILD_ENV_KEYS = [
  "CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS",
  "npm_config_target", "npm_config_arch", "npm_config_target_arch", "npm_config_debug",
  "npm_config_runtime", "npm_config_dist_url",
];

function giveUp(reason) {
  console.log(`attnflow: native backend not built (${reason}); falling back to the portable backend`);
  process.exit(0);
}

function sha256(data) {
  return createHash("sha256").update(data).digest("hex");
}

/** Hash of every file the addon is built from: native/src/*, binding.gyp and the package version it embeds. */
export function sourcesHash(dir = nativeDir) {
  const h = createHash("sha256");
  const files = readdirSync(join(dir, "src")).filter((f) => !f.startsWith(".")).sort().map((f) => join("src", f));
  for (const rel of ["binding.gyp", ...files]) {
    h.update(`${rel}\0`).update(readFileSync(join(dir, rel))).update("\0");
  }
  let version = "";
  try {
    version = JSON.parse(readFileSync(join(dir, "..", "package.json"), "utf8")).version ?? "";
  } catch {
    // no package.json next to native/: the version define is then empty for node-gyp too
  }
  return h.update(`version\0${version}`).digest("hex");
}

/** First line of `$CXX --version` (the compiler node-gyp's make will use), or "" where it cannot be run. */
function compilerId(env) {
  const cxx = env.CXX || "c++";
  const r = spawnSync(cxx, ["--version"], { encoding: "utf8", timeout: 10_000, shell: /\s/.test(cxx) });
  return r.status === 0 ? (r.stdout.split("\n")[0] ?? "").trim() : "";
}

/** What the addon would be built from now (everything a stamp records except the addon's own hash). */
export function currentInputs(env = process.env, dir = nativeDir) {
  const buildEnv = {};
  for (const k of BUILD_ENV_KEYS) if (env[k] !== undefined && env[k] !== "") buildEnv[k] = env[k];
  return {
    sources: sourcesHash(dir),
    node: process.version,
    abi: process.versions.modules,
    napi: process.versions.napi,
    platform: process.platform,
    arch: process.arch,
    compiler: compilerId(env),
    nodedir: effectiveNodedir(env),
    env: buildEnv,
  };
}

const LABELS = {
  sources: "the native sources (native/src, binding.gyp or the package version) changed",
  node: "Node changed", abi: "the Node ABI changed", napi: "the N-API version changed",
  platform: "the platform changed", arch: "the CPU architecture changed", compiler: "the compiler changed",
  nodedir: "the Node headers' folder changed",
};

/**
 * Whether to build, and why — a pure function of what is on disk and what would be built now.
 *   stamp: the parsed record of the last successful build (null: none, or unreadable)
 *   now: currentInputs()
 *   addonHash: sha256 of the addon file (null: no addon)
 *   force: ATTNFLOW_NATIVE_REBUILD=1
 */
export function decideBuild({ stamp, now, addonHash, force = false }) {
  if (addonHash === null) return { build: true, reason: "no addon built yet" };
  if (force) return { build: true, reason: "ATTNFLOW_NATIVE_REBUILD=1" };
  if (!stamp || typeof stamp !== "object" || !stamp.inputs) {
    return { build: true, reason: "no record of how the existing addon was built" };
  }
  if (stamp.addon !== addonHash) return { build: true, reason: "the addon file is not the one the last build produced" };
  const was = stamp.inputs;
  for (const key of Object.keys(LABELS)) {
    if (was[key] !== now[key]) {
      const detail = key === "sources" ? "" : ` (${was[key] || "?"} → ${now[key] || "?"})`;
      return { build: true, reason: `${LABELS[key]}${detail}` };
    }
  }
  const keys = [...new Set([...Object.keys(was.env ?? {}), ...Object.keys(now.env)])].sort();
  const changed = keys.filter((k) => (was.env ?? {})[k] !== now.env[k]);
  if (changed.length) return { build: true, reason: `build settings changed (${changed.join(", ")})` };
  return { build: false, reason: `up to date (built ${stamp.builtAt ?? "earlier"} for Node ${was.node} ${was.arch})` };
}

export function readStamp(path = stampPath) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return null;
  }
}

export function fileHash(path) {
  return existsSync(path) ? sha256(readFileSync(path)) : null;
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
function localHeaders() {
  const prefix = resolve(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : null;
}

function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = localHeaders();
  return prefix ? [`--nodedir=${prefix}`] : [];
}

/** The headers' folder node-gyp will build against ("" where it downloads them for this Node). */
function effectiveNodedir(env) {
  return env.npm_config_nodedir ? resolve(env.npm_config_nodedir) : (localHeaders() ?? "");
}

function lastErrorLine(text) {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const err = lines.filter((l) => /error/i.test(l) && !/^gyp ERR! (cwd|node -v|node-gyp -v|command|System|not ok)/.test(l));
  const pick = err.find((l) => !/^gyp ERR! stack/.test(l)) ?? err[0] ?? lines[lines.length - 1] ?? "unknown error";
  return pick.length > 200 ? pick.slice(0, 200) + "…" : pick;
}

export function formatElapsed(ms) {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** Number of C/C++ files binding.gyp compiles (the denominator of the progress count). */
export function countSources(gypText) {
  let n = 0;
  for (const m of gypText.matchAll(/"sources"\s*:\s*\[([^\]]*)\]/g)) n += (m[1].match(/"[^"]+\.(cc|cpp|c)"/g) ?? []).length;
  return n;
}

/**
 * One line of node-gyp/make output → a progress message, or null. gyp's Makefiles print one quiet line per step:
 * "  CXX(target) Release/obj.target/x/src/a.o", "  AR(target) …", "  SOLINK_MODULE(target) …".
 */
export function progressLine(line, state) {
  const m = /^\s*(CXX|CC|AR|SOLINK_MODULE|LINK|SOLINK)\((?:target|host)\)\s+(\S+)/.exec(line);
  if (!m) return null;
  const file = basename(m[2]);
  if (m[1] === "CXX" || m[1] === "CC") {
    state.compiled += 1;
    return `compiling ${file.replace(/\.o$/, "")} [${state.compiled}/${state.total || "?"}]`;
  }
  return m[1] === "AR" ? `archiving ${file}` : `linking ${file}`;
}

/** Runs node-gyp, printing a progress line (with the elapsed time) per compiled file; resolves to its result. */
function runNodeGyp(args, env, t0, total) {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, args, { cwd: nativeDir, env, stdio: verbose ? "inherit" : "pipe" });
    let output = "";
    const state = { compiled: 0, total };
    const onData = (chunk) => {
      const text = chunk.toString();
      output += text;
      if (output.length > 4 * 1024 * 1024) output = output.slice(-1024 * 1024);
      for (const line of text.split("\n")) {
        const msg = progressLine(line, state);
        if (msg) console.log(`attnflow:   ${msg}  (${formatElapsed(Date.now() - t0)})`);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (c) => { output += c.toString(); });
    // A quiet spell (one big file on one core) still says it is alive, once a minute.
    const beat = setInterval(() => console.log(`attnflow:   still building… (${formatElapsed(Date.now() - t0)})`), 60_000);
    const killer = setTimeout(() => child.kill("SIGKILL"), 15 * 60 * 1000);
    child.on("error", (error) => { clearInterval(beat); clearTimeout(killer); resolvePromise({ error, status: null, output }); });
    child.on("close", (status) => { clearInterval(beat); clearTimeout(killer); resolvePromise({ error: null, status, output }); });
  });
}

async function main() {
  if (process.env.ATTNFLOW_SKIP_NATIVE === "1") giveUp("ATTNFLOW_SKIP_NATIVE=1");
  if (!existsSync(join(nativeDir, "binding.gyp"))) giveUp("native/binding.gyp is missing");
  const now = currentInputs();
  const decision = decideBuild({ stamp: readStamp(), now, addonHash: fileHash(addon), force: process.env.ATTNFLOW_NATIVE_REBUILD === "1" });
  if (!decision.build) {
    console.log(`attnflow: native backend ${decision.reason}; not rebuilding (ATTNFLOW_NATIVE_REBUILD=1 forces it)`);
    return;
  }
  const gyp = findNodeGyp();
  if (!gyp) giveUp("node-gyp not found");
  const jobs = String(Math.max(1, Math.min(3, cpus().length)));
  const args = [gyp, "rebuild", "--directory", nativeDir, "--jobs", jobs, ...nodedirArgs()];
  const total = countSources(readFileSync(join(nativeDir, "binding.gyp"), "utf8"));
  const t0 = Date.now();
  console.log(`attnflow: building the native backend (${decision.reason}); this takes a few minutes on a small machine…`);
  // binding.gyp runs `node` (to read the package version): make it this node.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` };
  const r = await runNodeGyp(args, env, t0, total);
  if (r.error) giveUp(`node-gyp could not run: ${r.error.message}`);
  if (r.status !== 0) giveUp(verbose ? `node-gyp exited with ${r.status}` : lastErrorLine(r.output));
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
  // Recorded only now, after the addon loaded: a failed or broken build is retried next time.
  writeFileSync(stampPath, JSON.stringify({ builtAt: new Date().toISOString(), addon: fileHash(addon), inputs: now }, null, 2) + "\n");
  console.log(`attnflow: native backend built (${info.isa}, ${info.threads} threads) in ${formatElapsed(Date.now() - t0)}`);
}

// Run only as a script: the test imports decideBuild() and friends without building anything.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => giveUp(e instanceof Error ? e.message : String(e)));
}
