// Runs a peer script of bench/peers/ under the system Python: the request goes in a JSON file, the reply is the
// last line of stdout (JSON). Used by the flow and rollout cases (SciPy, networkx, NumPy, PyTorch).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PEERS_DIR } from "./paths.js";

export interface PythonReply { ok: boolean; error?: string }

/** ATTNFLOW_BENCH_PYTHON, else /usr/bin/python3; null when that file does not exist. */
export function pythonPath(): string | null {
  const p = process.env.ATTNFLOW_BENCH_PYTHON ?? "/usr/bin/python3";
  return existsSync(p) ? p : null;
}

/** Run bench/peers/<script> with `request`; a missing Python, a crash or an unreadable reply come back as ok: false. */
export function runPythonPeer<R extends PythonReply>(script: string, request: object, maxBuffer = 16 << 20): R | PythonReply {
  const py = pythonPath();
  if (py === null) return { ok: false, error: `python3 not found (${process.env.ATTNFLOW_BENCH_PYTHON ?? "/usr/bin/python3"}; set ATTNFLOW_BENCH_PYTHON)` };
  const dir = mkdtempSync(join(tmpdir(), "attnflow-pypeer-"));
  try {
    const req = join(dir, "req.json");
    writeFileSync(req, JSON.stringify(request));
    const r = spawnSync(py, [join(PEERS_DIR, script), req], { encoding: "utf8", maxBuffer });
    if (r.error) return { ok: false, error: r.error.message };
    const line = r.stdout.trim().split("\n").pop() ?? "";
    try { return JSON.parse(line) as R; } catch { return { ok: false, error: `no reply (exit ${r.status}): ${r.stderr.trim().slice(-300)}` }; }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
