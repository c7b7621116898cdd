// Child process for the memory cases: causal SDPA forward+backward once on attnflow, reporting
// peak RSS above a baseline taken after the inputs are loaded and the kernels warmed up.
// Protocol: one JSON request line on stdin → one JSON reply line on stdout (lib/child-peer.ts).
import { readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { attnflowCausalTrain, loadAttnflow } from "./attnflow-adapter.js";
import { randnArray } from "./lib/prng.js";
import { readF32File } from "./lib/tensor-files.js";

interface MemoryRequest {
  id: number;
  backend: string;
  shape: { B: number; H: number; T: number; d: number };
  files: Record<"q" | "k" | "v" | "g", string>;
  out?: string;
}

function statusKB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : 0;
}

async function handle(req: MemoryRequest): Promise<Record<string, unknown>> {
  const loaded = await loadAttnflow();
  if (!loaded.ok) return { ok: false, error: `attnflow unavailable: ${loaded.reason}` };
  const { B, H, T, d } = req.shape;
  const [q, k, v, g] = (["q", "k", "v", "g"] as const).map((n) => readF32File(req.files[n]));
  // warm-up on a tiny problem so code loading and buffer pools are part of the baseline
  const small = [B, H, 32, d], n = B * H * 32 * d;
  attnflowCausalTrain(loaded.api, req.backend, small, randnArray(n, 1), randnArray(n, 2), randnArray(n, 3), randnArray(n, 4))();
  const step = attnflowCausalTrain(loaded.api, req.backend, [B, H, T, d], q, k, v, g);
  (globalThis as { gc?: () => void }).gc?.();
  let reset = true;
  try { writeFileSync("/proc/self/clear_refs", "5"); } catch { reset = false; } // VmHWM := VmRSS
  const baseKB = statusKB("VmRSS");
  const t0 = performance.now();
  const o = step();
  const ms = performance.now() - t0;
  const peakKB = reset ? statusKB("VmHWM") : process.resourceUsage().maxRSS;
  if (req.out) writeFileSync(req.out, new Uint8Array(o.buffer, o.byteOffset, o.byteLength));
  return {
    ok: true, timesMs: [ms], peakMB: Math.max(0, peakKB - baseKB) / 1024, baselineMB: baseKB / 1024,
    note: reset ? undefined : "peak RSS could not be reset; includes setup",
  };
}

const rl = createInterface({ input: process.stdin });
rl.once("line", (line) => {
  const req = JSON.parse(line) as MemoryRequest;
  const reply = (r: Record<string, unknown>) => process.stdout.write(JSON.stringify({ id: req.id, ...r }) + "\n", () => process.exit(0));
  handle(req).then(reply, (e) => reply({ ok: false, error: e instanceof Error ? e.message : String(e) }));
});
