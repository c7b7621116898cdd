// scripts/build-native.mjs (the install step): an up-to-date addon is not rebuilt, a changed input is, and a
// build says what it is doing. Nothing is compiled here: the script runs on a copy of native/ with a fake addon
// and a fake node-gyp.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const scriptUrl = new URL("scripts/build-native.mjs", `file://${repo}`);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const bn: any = await import(scriptUrl.href);

const inputs = {
  sources: "aaa", node: "v20.20.2", abi: "115", napi: "9", platform: "linux", arch: "x64",
  compiler: "c++ 12.2.0", nodedir: "/usr", env: {} as Record<string, string>,
};

test("decideBuild: skips only an addon whose record matches everything that went into it", () => {
  const stamp = { builtAt: "2026-12-07T00:00:00Z", addon: "h1", inputs };
  const up = bn.decideBuild({ stamp, now: inputs, addonHash: "h1" });
  assert.equal(up.build, false);
  assert.match(up.reason, /up to date .*v20\.20\.2 x64/);
  const cases: [string, object, RegExp][] = [
    ["no addon", { stamp, now: inputs, addonHash: null }, /no addon built yet/],
    ["no record", { stamp: null, now: inputs, addonHash: "h1" }, /no record/],
    ["forced", { stamp, now: inputs, addonHash: "h1", force: true }, /ATTNFLOW_NATIVE_REBUILD/],
    ["replaced addon", { stamp, now: inputs, addonHash: "h2" }, /not the one the last build produced/],
    ["sources", { stamp, now: { ...inputs, sources: "bbb" }, addonHash: "h1" }, /native sources .* changed/],
    ["node", { stamp, now: { ...inputs, node: "v22.1.0", abi: "127" }, addonHash: "h1" }, /Node changed \(v20\.20\.2 → v22\.1\.0\)/],
    ["arch", { stamp, now: { ...inputs, arch: "arm64" }, addonHash: "h1" }, /architecture changed \(x64 → arm64\)/],
    ["compiler", { stamp, now: { ...inputs, compiler: "clang 17" }, addonHash: "h1" }, /compiler changed/],
    ["headers", { stamp, now: { ...inputs, nodedir: "/opt/node" }, addonHash: "h1" }, /headers' folder changed \(\/usr → \/opt\/node\)/],
    ["flags", { stamp, now: { ...inputs, env: { CXXFLAGS: "-march=native" } }, addonHash: "h1" }, /build settings changed \(CXXFLAGS\)/],
    ["flag removed", { stamp: { ...stamp, inputs: { ...inputs, env: { CC: "gcc" } } }, now: inputs, addonHash: "h1" }, /build settings changed \(CC\)/],
  ];
  for (const [name, args, reason] of cases) {
    const d = bn.decideBuild(args);
    assert.equal(d.build, true, name);
    assert.match(d.reason, reason, name);
  }
});

test("currentInputs: the sources hash follows every native source, binding.gyp and the package version", () => {
  const dir = mkdtempSync(join(tmpdir(), "af-native-"));
  try {
    mkdirSync(join(dir, "native", "src"), { recursive: true });
    writeFileSync(join(dir, "package.json"), JSON.stringify({ version: "1.0.0" }));
    writeFileSync(join(dir, "native", "binding.gyp"), "{}");
    writeFileSync(join(dir, "native", "src", "a.cc"), "int a;");
    const native = join(dir, "native");
    const h0 = bn.sourcesHash(native);
    assert.equal(bn.sourcesHash(native), h0, "deterministic");
    writeFileSync(join(dir, "native", "src", "a.cc"), "int a = 1;");
    const h1 = bn.sourcesHash(native);
    assert.notEqual(h1, h0, "a source edit");
    writeFileSync(join(dir, "native", "src", "b.inc.h"), "");
    const h2 = bn.sourcesHash(native);
    assert.notEqual(h2, h1, "a new header");
    writeFileSync(join(dir, "package.json"), JSON.stringify({ version: "1.0.1" }));
    assert.notEqual(bn.sourcesHash(native), h2, "the version binding.gyp embeds");
    const env = { CXXFLAGS: "-O1", HOME: "/x", npm_config_nodedir: "/opt/node", npm_config_debug: "true", npm_config_cache: "/c" };
    const now = bn.currentInputs(env, native);
    assert.deepEqual(now.env, { CXXFLAGS: "-O1", npm_config_debug: "true" }, "only build-relevant variables");
    assert.equal(now.nodedir, "/opt/node", "the headers the build would use");
    // npm's scripts get npm_config_nodedir=<node's prefix> on some systems; run directly, the script passes that
    // same folder itself: the same build, so the same record (it rebuilt once under npm link because of this)
    const prefix = join(process.execPath, "..", "..");
    if (existsSync(join(prefix, "include", "node", "node_api.h"))) {
      assert.deepEqual(bn.currentInputs({ npm_config_nodedir: prefix }, native), bn.currentInputs({}, native));
    }
    assert.equal(now.node, process.version);
    assert.equal(now.abi, process.versions.modules);
    assert.equal(now.arch, process.arch);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("progress lines come from make's quiet output; the count comes from binding.gyp", () => {
  const gyp = readFileSync(join(repo, "native", "binding.gyp"), "utf8");
  assert.equal(bn.countSources(gyp), 12); // 4 ISA variants (avx512, avx2, neon, generic) + the AMX kernel + 7 addon sources
  const state = { compiled: 0, total: 9 };
  assert.equal(bn.progressLine("  CXX(target) Release/obj.target/attnflow_kernels_avx2/src/isa-avx2.o", state), "compiling isa-avx2 [1/9]");
  assert.equal(bn.progressLine("  AR(target) Release/obj.target/attnflow_kernels_avx2.a", state), "archiving attnflow_kernels_avx2.a");
  assert.equal(bn.progressLine("  SOLINK_MODULE(target) Release/obj.target/attnflow_native.node", state), "linking attnflow_native.node");
  assert.equal(bn.progressLine("gyp info spawn make", state), null);
  assert.equal(bn.formatElapsed(5_400), "5s");
  assert.equal(bn.formatElapsed(200_000), "3m20s");
});

/** A copy of the package's build inputs with a fake addon, and a fake node-gyp that logs its calls. */
function fakePackage(): { dir: string; env: NodeJS.ProcessEnv; run: () => { out: string; gypCalls: number } } {
  const dir = mkdtempSync(join(tmpdir(), "af-native-pkg-"));
  mkdirSync(join(dir, "scripts"));
  cpSync(join(repo, "scripts", "build-native.mjs"), join(dir, "scripts", "build-native.mjs"));
  cpSync(join(repo, "native", "src"), join(dir, "native", "src"), { recursive: true });
  cpSync(join(repo, "native", "binding.gyp"), join(dir, "native", "binding.gyp"));
  cpSync(join(repo, "package.json"), join(dir, "package.json"));
  mkdirSync(join(dir, "native", "build", "Release"), { recursive: true });
  writeFileSync(join(dir, "native", "build", "Release", "attnflow_native.node"), "not really an addon");
  const gyp = join(dir, "fake-node-gyp.cjs");
  // Prints what make prints for two files, then fails like a compiler error: the script must show the progress,
  // then give up cleanly (exit 0) without recording a build.
  writeFileSync(gyp, [
    `require("fs").appendFileSync(${JSON.stringify(join(dir, "gyp-calls"))}, "x");`,
    `console.log("  CXX(target) Release/obj.target/attnflow_kernels_generic/src/isa-generic.o");`,
    `console.log("  CXX(target) Release/obj.target/attnflow_native/src/addon.cc.o");`,
    `console.error("src/addon.cc:1:1: error: fake compiler failure");`,
    `process.exit(1);`,
  ].join("\n"));
  chmodSync(gyp, 0o755);
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_node_gyp: gyp };
  delete env.ATTNFLOW_SKIP_NATIVE;
  delete env.ATTNFLOW_NATIVE_REBUILD;
  delete env.ATTNFLOW_NATIVE_VERBOSE;
  const run = () => {
    const r = spawnSync(process.execPath, [join(dir, "scripts", "build-native.mjs")], { env, encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, `the install step must never fail: ${r.stderr}`);
    let gypCalls = 0;
    try {
      gypCalls = readFileSync(join(dir, "gyp-calls"), "utf8").length;
    } catch {
      // never called
    }
    return { out: r.stdout, gypCalls };
  };
  return { dir, env, run };
}

test("build-native.mjs: an up-to-date addon is left alone, a changed source rebuilds with progress", async () => {
  const { dir, env, run } = fakePackage();
  try {
    const native = join(dir, "native");
    const addonPath = join(native, "build", "Release", "attnflow_native.node");
    const stampPath = join(native, "build", "Release", "attnflow_native.stamp.json");
    // The record a successful build would have left, computed the way the script computes it.
    const now = bn.currentInputs(env, native);
    writeFileSync(stampPath, JSON.stringify({ builtAt: "2026-12-07T00:00:00.000Z", addon: bn.fileHash(addonPath), inputs: now }));

    for (let i = 0; i < 2; i++) {
      const { out, gypCalls } = run();
      assert.match(out, /native backend up to date .*not rebuilding/, out);
      assert.equal(gypCalls, 0, "node-gyp must not run for an up-to-date addon");
    }

    writeFileSync(join(native, "src", "addon.cc"), readFileSync(join(native, "src", "addon.cc"), "utf8") + "\n// edited\n");
    const { out, gypCalls } = run();
    assert.equal(gypCalls, 1, out);
    assert.match(out, /building the native backend \(the native sources .* changed\)/, out);
    assert.match(out, /compiling isa-generic \[1\/12\]  \(\d+s\)/, out);
    assert.match(out, /compiling addon\.cc \[2\/12\]/, out);
    assert.match(out, /not built \(.*fake compiler failure\); falling back to the portable backend/, out);
    // A failed build records nothing: the next run tries again.
    assert.equal(JSON.parse(readFileSync(stampPath, "utf8")).inputs.sources, now.sources);
    assert.equal(run().gypCalls, 2);

    env.ATTNFLOW_SKIP_NATIVE = "1";
    assert.match(run().out, /not built \(ATTNFLOW_SKIP_NATIVE=1\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
