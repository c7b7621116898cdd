// The malloc tuning of timing runs. First touch of fresh 4 KiB pages costs ~4 ms/MB on these machines, and glibc
// hands large blocks (every output array a peer returns, every tensor it mallocs) fresh pages whenever its mmap and
// trim heuristics say so: a random, per-call tax. The PyTorch child has always run with glibc's malloc.hugetlb
// tunable; run.ts re-executes itself with the same tunable so the peers that run in this process (attnflow,
// onnxruntime-node, tfjs) get the same treatment. Memory runs use the untuned environment (peak RSS would otherwise
// be rounded up to 2 MiB pages).
import { spawnSync } from "node:child_process";

export const HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1";
/** Set in the re-executed process: the GLIBC_TUNABLES it was started with ("" when none). */
const ORIGINAL = "ATTNFLOW_BENCH_ORIGINAL_TUNABLES";

export function withHugePages(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const cur = env.GLIBC_TUNABLES ?? "";
  if (cur.split(":").includes(HUGE_PAGES_TUNABLE)) return env;
  return { ...env, GLIBC_TUNABLES: [cur, HUGE_PAGES_TUNABLE].filter(Boolean).join(":") };
}

/** This process's environment as it was before run.ts added the tunable (for memory runs). */
export function untunedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (env[ORIGINAL] === undefined) return env;
  if (env[ORIGINAL]) env.GLIBC_TUNABLES = env[ORIGINAL];
  else delete env.GLIBC_TUNABLES;
  delete env[ORIGINAL];
  return env;
}

/** The malloc setting of this process, for the report. */
export function mallocNote(): string {
  return (process.env.GLIBC_TUNABLES ?? "").split(":").includes(HUGE_PAGES_TUNABLE) ? HUGE_PAGES_TUNABLE : "glibc default";
}

/**
 * On Linux, run this same command again with the tunable (unless this process already has it, or
 * ATTNFLOW_BENCH_NO_REEXEC is set) and return its exit code; null means: carry on in this process.
 */
export function reexecWithHugePages(): number | null {
  if (process.platform !== "linux" || process.env.ATTNFLOW_BENCH_NO_REEXEC || mallocNote() !== "glibc default") return null;
  const env = { ...withHugePages(process.env), [ORIGINAL]: process.env.GLIBC_TUNABLES ?? "" };
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit", env });
  if (r.error) return null; // could not spawn: run here, untuned
  return r.status ?? 1;
}
