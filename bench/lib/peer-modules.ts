// Loading the peer libraries from bench/peers/node_modules (they are not dependencies of the
// attnflow package) and installing them there on first use.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { PEERS_DIR } from "./paths.js";

const peerRequire = createRequire(join(PEERS_DIR, "package.json"));

/** The npm packages bench/peers/package.json must provide. */
export const PEER_PACKAGES = [
  "onnxruntime-node",
  "onnxruntime-web",
  "@tensorflow/tfjs-core",
  "@tensorflow/tfjs", // only for its gradient registrations (training step)
  "@tensorflow/tfjs-backend-cpu",
  "@tensorflow/tfjs-backend-wasm",
  "@jax-js/jax",
] as const;

/** require() a peer package from bench/peers/node_modules. */
export function requirePeer<T = unknown>(name: string): T {
  return peerRequire(name) as T;
}

/** Absolute path of a peer package's entry point (for dynamic import() of ESM peers). */
export function resolvePeer(name: string): string {
  return peerRequire.resolve(name);
}

/** Installed version of a peer package, or null when it is missing. */
export function peerVersion(name: string): string | null {
  const pkg = join(PEERS_DIR, "node_modules", name, "package.json");
  if (!existsSync(pkg)) return null;
  return (JSON.parse(readFileSync(pkg, "utf8")) as { version?: string }).version ?? null;
}

/**
 * Install bench/peers/node_modules when missing (fresh clone). `npm ci` when a lock file is
 * there, `npm install` otherwise; ONNXRUNTIME_NODE_INSTALL=skip stops onnxruntime-node's install
 * script from downloading GPU binaries (its CPU binaries ship inside the package).
 */
export function ensurePeersInstalled(log: (msg: string) => void): void {
  const missing = PEER_PACKAGES.filter((p) => peerVersion(p) === null);
  if (missing.length === 0) return;
  const hasLock = existsSync(join(PEERS_DIR, "package-lock.json"));
  const args = hasLock ? ["ci", "--no-audit", "--no-fund"] : ["install", "--no-audit", "--no-fund"];
  log(`[bench] peer libraries missing (${missing.join(", ")}): running \`npm ${args.join(" ")}\` in ${PEERS_DIR} with ONNXRUNTIME_NODE_INSTALL=skip`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, args, {
    cwd: PEERS_DIR,
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" },
    stdio: ["ignore", 2, 2], // npm's output goes to stderr so that --json keeps stdout clean
  });
  if (r.status !== 0) log(`[bench] npm ${args[0]} failed (exit ${r.status ?? r.signal}); peers that cannot load will be reported as unavailable`);
}
