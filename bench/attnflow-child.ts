// attnflow's own rows, run in a child process (JSON lines, see lib/child-peer.ts) so that no peer library shares its
// V8 heap: with onnxruntime-node and tfjs loaded in the same process, V8 was seen to run a mark-compact every
// 20–60 ms of attnflow's calls at T = 128 (external-memory pressure from the per-call readback arrays), which
// tripled their time (still seen, more rarely, in this child: RESULTS.md). jax-js and PyTorch run in children too.
//   request: { id, op: "backends" } → { backends }
//            { id, op: "mha" | "sdpa" | "train", backend, shape, causal?, files, out, policy } → { timesMs, note }
import { writeFileSync } from "node:fs";
import { attnflowBackends, attnflowStep, awaitWasmWorkers, loadAttnflow } from "./attnflow-adapter.js";
import { serveRequests } from "./lib/child-serve.js";
import { measure, type MeasurePolicy } from "./lib/measure.js";
import type { MhaWeights, Task } from "./lib/tasks.js";
import { readF32File } from "./lib/tensor-files.js";

interface Request {
  id: number;
  op: "backends" | "mha" | "sdpa" | "train";
  backend?: string;
  shape?: Record<string, number>;
  causal?: boolean;
  files?: Record<string, string>;
  out?: string;
  policy?: MeasurePolicy;
}

function taskOf(req: Request): Task {
  const s = req.shape ?? {}, f = req.files ?? {};
  const need = (n: string) => { if (!f[n]) throw new Error(`attnflow-child: request ${req.op} lacks file '${n}'`); return readF32File(f[n]); };
  if (req.op === "sdpa") return { kind: "sdpa", B: s.B, H: s.H, T: s.T, d: s.d, causal: !!req.causal, q: need("q"), k: need("k"), v: need("v") };
  const w: MhaWeights = { inProjWeight: need("inProjWeight"), inProjBias: need("inProjBias"), outProjWeight: need("outProjWeight"), outProjBias: need("outProjBias") };
  if (req.op === "mha") return { kind: "mha", B: s.B, T: s.T, D: s.D, H: s.H, x: need("x"), w };
  return { kind: "train", B: s.B, T: s.T, D: s.D, H: s.H, x: need("x"), g: need("g"), w };
}

async function handle(req: Request): Promise<Record<string, unknown>> {
  const loaded = await loadAttnflow();
  if (!loaded.ok) return { ok: false, error: `attnflow unavailable: ${loaded.reason}` };
  const api = loaded.api;
  if (req.op === "backends") return { ok: true, backends: attnflowBackends(api) };
  if (!req.backend || !req.policy || !req.out) throw new Error("attnflow-child: backend, policy and out are required");
  const task = taskOf(req);
  const step = attnflowStep(api, req.backend, task);
  await awaitWasmWorkers(api, req.backend, step);
  const m = await measure(step, req.policy);
  writeFileSync(req.out, new Uint8Array(m.last.buffer, m.last.byteOffset, m.last.byteLength));
  return { ok: true, timesMs: m.timesMs, note: m.note };
}

serveRequests(handle);
