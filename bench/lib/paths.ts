// Where things live, independent of whether we run from bench/*.ts sources or dist/bench/*.js.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        const name = (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name;
        if (name === "attnflow") return dir;
      } catch {
        // not JSON: keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`bench: cannot find the attnflow repo root above ${start}`);
    dir = up;
  }
}

function locateRoot(): string {
  if (process.env.ATTNFLOW_REPO_ROOT) return process.env.ATTNFLOW_REPO_ROOT;
  try {
    return findRepoRoot(dirname(fileURLToPath(import.meta.url)));
  } catch {
    return findRepoRoot(process.cwd()); // compiled to a private outDir: fall back to the cwd
  }
}

/** Repository root (the folder holding attnflow's package.json); ATTNFLOW_REPO_ROOT overrides. */
export const REPO_ROOT = locateRoot();
/** bench/ sources (peers' package.json, torch_peer.py, RESULTS.md live here). */
export const BENCH_SRC = join(REPO_ROOT, "bench");
/** bench/peers: the peers' own npm project (node_modules installed here, not at the root). */
export const PEERS_DIR = join(BENCH_SRC, "peers");
/** Compiled bench folder (dist/bench): case files are discovered in dist/bench/cases. */
export const BENCH_DIST = join(REPO_ROOT, "dist", "bench");
