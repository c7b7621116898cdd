#!/usr/bin/env node
// Builds native/test/kernel-check.cc with the kernel sources for arm64 and runs it: the NEON kernels (and the
// generic ones, on request) against float64 references on odd shapes, without an ARM machine.
//   node scripts/native-cross-check.mjs [isa ...]     (default: neon)
// On x86 it cross-compiles with Debian's g++-aarch64-linux-gnu (`aarch64-linux-gnu-g++`, or $ATTNFLOW_CROSS_CXX)
// into a static binary and runs it under qemu-user (`qemu-aarch64-static` or `qemu-aarch64`, or
// $ATTNFLOW_QEMU); on an arm64 machine it builds with the native compiler and runs it directly.
// Install: apt-get install g++-aarch64-linux-gnu qemu-user. The build goes to native/cross-build/aarch64/, its own
// ignored folder (a node-gyp rebuild empties native/build/; the two builds never clobber each other), and is reused
// while the sources, the compiler and the flags are unchanged (a hash in its stamp file).
// Exit status: the checker's (0: all passed), 77 when the cross compiler or qemu is missing (the reason is printed).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { arch } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "native", "src");
const out = join(root, "native", "cross-build", "aarch64");
const FLAGS = ["-std=gnu++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast", "-pthread"];
const UNITS = ["isa-neon.cc", "isa-generic.cc", "thread-pool.cc"];
export const SKIP_STATUS = 77;

function onPath(cmd) {
  if (cmd.includes("/")) return existsSync(cmd) ? cmd : null;
  for (const dir of (process.env.PATH ?? "").split(":")) if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  return null;
}

function skip(reason) {
  console.log(`native-cross-check: skipped: ${reason}`);
  process.exit(SKIP_STATUS);
}

const nativeArm = arch() === "arm64"; // Linux or macOS on ARM: build and run natively
const cxx = process.env.ATTNFLOW_CROSS_CXX ?? (nativeArm ? process.env.CXX ?? "g++" : "aarch64-linux-gnu-g++");
const cxxPath = onPath(cxx);
if (!cxxPath) skip(`no ${cxx} (apt-get install g++-aarch64-linux-gnu)`);
let runner = [];
if (!nativeArm) {
  const q = process.env.ATTNFLOW_QEMU ?? ["qemu-aarch64-static", "qemu-aarch64"].find((c) => onPath(c));
  if (!q || !onPath(q)) skip("no qemu-aarch64 (apt-get install qemu-user)");
  runner = [onPath(q)];
}

const version = spawnSync(cxxPath, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0];
const h = createHash("sha256").update(`${version}\0${FLAGS.join(" ")}\0`);
for (const f of readdirSync(src).sort()) h.update(`${f}\0`).update(readFileSync(join(src, f)));
h.update(readFileSync(join(root, "native", "test", "kernel-check.cc")));
const hash = h.digest("hex");
const bin = join(out, "kernel-check");
const stamp = join(out, "stamp");

function compile(args) {
  return new Promise((res, rej) => {
    const p = spawn(cxxPath, args, { stdio: ["ignore", "inherit", "inherit"] });
    p.on("exit", (code) => (code === 0 ? res() : rej(new Error(`${cxx} ${args.slice(-3).join(" ")} failed (${code})`))));
    p.on("error", rej);
  });
}

if (!existsSync(bin) || !existsSync(stamp) || readFileSync(stamp, "utf8") !== hash) {
  mkdirSync(out, { recursive: true });
  const t0 = Date.now();
  console.log(`native-cross-check: building the kernel checker with ${version} …`);
  const objs = [...UNITS, "../test/kernel-check.cc"].map((u) => join(out, u.replace(/^.*\//, "").replace(/\.cc$/, ".o")));
  await Promise.all([...UNITS, "../test/kernel-check.cc"].map((u, i) => compile([...FLAGS, `-I${src}`, "-c", join(src, u), "-o", objs[i]])));
  await compile([...(nativeArm ? [] : ["-static"]), "-pthread", ...objs, "-o", bin]);
  writeFileSync(stamp, hash);
  console.log(`native-cross-check: built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

const isas = process.argv.slice(2);
const cmd = [...runner, bin, ...(isas.length ? isas : ["neon"])];
console.log(`native-cross-check: ${nativeArm ? "" : "qemu-user: "}${cmd.map((c) => c.replace(root + "/", "")).join(" ")}`);
const r = spawnSync(cmd[0], cmd.slice(1), { stdio: "inherit" });
process.exit(r.status ?? 1);
