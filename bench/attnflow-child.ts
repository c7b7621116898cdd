// attnflow's own rows, run in a child process (JSON lines, see lib/child-peer.ts) so that no peer library shares its
// V8 heap: with onnxruntime-node and tfjs loaded in the same process, V8 was seen to run a mark-compact every
// 20–60 ms of attnflow's calls at T = 128 (external-memory pressure from the per-call readback arrays), which
// tripled their time (still seen, more rarely, in this child: RESULTS.md). jax-js and PyTorch run in children too.
//   request: { id, op: "backends" } → { backends }
//            { id, op: "mha" | "sdpa" | "train", backend, shape, causal?, files, out, policy } → { timesMs, note }
import { readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { attnflowBackends, attnflowMha, attnflowSdpa, attnflowTrain, loadAttnflow } from "./attnflow-adapter.js";
import { measure, type MeasurePolicy } from "./lib/measure.js";
import type { MhaWeights, Task } from "./lib/tasks.js";

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

function readF32(p: string): Float32Array {
  const b = readFileSync(p);
  const a = new Float32Array(b.byteLength / 4);
  new Uint8Array(a.buffer).set(b);
  return a;
}

function taskOf(req: Request): Task {
  const s = req.shape ?? {}, f = req.files ?? {};
  const need = (n: string) => { if (!f[n]) throw new Error(`attnflow-child: request ${req.op} lacks file '${n}'`); return readF32(f[n]); };
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
  const step = task.kind === "mha" ? attnflowMha(api, req.backend, task)
    : task.kind === "sdpa" ? attnflowSdpa(api, req.backend, task) : attnflowTrain(api, req.backend, task);
  const m = await measure(step, req.policy);
  writeFileSync(req.out, new Uint8Array(m.last.buffer, m.last.byteOffset, m.last.byteLength));
  return { ok: true, timesMs: m.timesMs, note: m.note };
}

const rl = createInterface({ input: process.stdin });
const queue: string[] = [];
let busy = false;
async function pump(): Promise<void> {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const req = JSON.parse(queue.shift()!) as Request;
    let reply: Record<string, unknown>;
    try { reply = await handle(req); } catch (e) { reply = { ok: false, error: e instanceof Error ? e.message : String(e) }; }
    process.stdout.write(JSON.stringify({ id: req.id, ...reply }) + "\n");
  }
  busy = false;
}
rl.on("line", (l) => { if (l.trim()) { queue.push(l); void pump(); } });
rl.on("close", () => process.exit(0));
