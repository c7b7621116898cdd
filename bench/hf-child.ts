// The attnflow and onnxruntime-node sides of the hf-* cases (cases/hf.ts), in a child process (JSON lines, see
// lib/child-peer.ts), one child per implementation so that neither shares a heap or an allocator with the other.
//   { op: "attnflow-bert" | "ort-bert", dir, ids, T, backend? | threads?, policy, out }
//       BertModel forward on (1, T) ids, mask all ones; `out` gets last_hidden_state (1, T, 768)
//   { op: "attnflow-llama" | "ort-llama", dir, ids, T, N, genRuns, backend? | threads?, out }
//       prefill T tokens, then N greedy steps with the KV cache; times are ms per decode step (one per run, after a
//       warm-up run); `out` gets the prefill's last logits and each step's (N + 1, V)
//   { op: "load", dir, backend } → load time, peak RSS and V8 external memory of fromPretrained (fresh child only)
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadAttnflow } from "./attnflow-adapter.js";
import { serveRequests } from "./lib/child-serve.js";
import { measure, type MeasurePolicy } from "./lib/measure.js";
import { requirePeer } from "./lib/peer-modules.js";

interface Request {
  id: number; op: string; dir: string; ids?: string; T?: number; N?: number; genRuns?: number;
  backend?: string; threads?: number; policy?: MeasurePolicy; out?: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

function readIds(path: string, T: number): Int32Array {
  const b = readFileSync(path);
  if (b.byteLength !== 4 * T) throw new Error(`${path}: ${b.byteLength / 4} ids, expected ${T}`);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function writeOut(path: string, a: Float32Array): void { writeFileSync(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength)); }

function argmax(a: Float32Array, off = 0, n = a.length - off): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + best]) best = i;
  return best;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Peak RSS (VmHWM) and current RSS of this process in MB. */
function rss(): { peakMB: number; rssMB: number } {
  const s = readFileSync("/proc/self/status", "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024;
  return { peakMB: kb("VmHWM"), rssMB: kb("VmRSS") };
}

interface GenRun { prefillMs: number; decodeMs: number; logits: Float32Array }

/** A warm-up run, then `runs` timed ones: ms per decode step of each, prefill ms, and the last run's logits. */
async function timeGeneration(gen: () => Promise<GenRun>, runs: number, N: number): Promise<Record<string, unknown> & { logits: Float32Array }> {
  let last = await gen();
  const decode: number[] = [], prefill: number[] = [];
  for (let i = 0; i < Math.max(1, runs); i++) {
    last = await gen();
    decode.push(last.decodeMs / N);
    prefill.push(last.prefillMs);
  }
  return { timesMs: decode, prefillMs: prefill, logits: last.logits };
}

// ------------------------------------------------------------------------------------------------ attnflow

async function attnflow(backend: string): Promise<Any> {
  const loaded = await loadAttnflow();
  if (!loaded.ok) throw new Error(`attnflow unavailable: ${loaded.reason}`);
  const api = loaded.api as Any;
  api.setBackend(backend);
  return api;
}

async function attnflowBert(req: Request): Promise<Record<string, unknown>> {
  const api = await attnflow(req.backend!);
  const { model } = await api.hf.fromPretrained(req.dir, { tokenizer: false });
  const T = req.T!, ids = api.Tensor.fromArray(readIds(req.ids!, T), [1, T]);
  const mask = api.Tensor.fromArray(new Int32Array(T).fill(1), [1, T]);
  const step = () => api.tidy(() => api.noGrad(() => model.forward({ inputIds: ids, attentionMask: mask }).lastHiddenState.toFloat32Array()));
  const m = await measure(step, req.policy!);
  writeOut(req.out!, m.last);
  return { ok: true, timesMs: m.timesMs, note: m.note };
}

async function attnflowLlama(req: Request): Promise<Record<string, unknown>> {
  const api = await attnflow(req.backend!);
  const { model } = await api.hf.fromPretrained(req.dir, { tokenizer: false });
  const T = req.T!, N = req.N!, V = model.settings.vocabSize as number;
  const ids = api.Tensor.fromArray(readIds(req.ids!, T), [1, T]);
  const cache = model.createCache(1, T + N + 1);
  const logitsOf = (input: Any) => api.tidy(() => model.forwardWithCache({ inputIds: input }, cache, { lastOnly: true }).logits.toFloat32Array()) as Float32Array;
  const gen = async (): Promise<GenRun> => {
    cache.reset();
    const t0 = performance.now();
    const out = [logitsOf(ids)];
    const t1 = performance.now();
    for (let i = 0; i < N; i++) out.push(logitsOf(api.Tensor.fromArray(Int32Array.of(argmax(out[i], 0, V)), [1, 1])));
    return { prefillMs: t1 - t0, decodeMs: performance.now() - t1, logits: concat(out) };
  };
  const r = await timeGeneration(gen, req.genRuns ?? 3, N);
  cache.dispose();
  writeOut(req.out!, r.logits);
  return { ok: true, timesMs: r.timesMs, prefillMs: r.prefillMs };
}

async function attnflowLoad(req: Request): Promise<Record<string, unknown>> {
  const api = await attnflow(req.backend ?? "native");
  (globalThis as Any).gc?.();
  const before = rss(), extBefore = process.memoryUsage().external;
  // reset the high-water mark to the current RSS (Linux: writing 5 to clear_refs)
  try { writeFileSync("/proc/self/clear_refs", "5"); } catch { /* older kernels: VmHWM stays the process's peak */ }
  let peakExt = 0;
  const poll = setInterval(() => { peakExt = Math.max(peakExt, process.memoryUsage().external); }, 5);
  const t0 = performance.now();
  const { model } = await api.hf.fromPretrained(req.dir, { tokenizer: false });
  const ms = performance.now() - t0;
  clearInterval(poll);
  const after = rss();
  let params = 0;
  for (const p of model.parameters()) params += p.numel();
  return { ok: true, loadMs: ms, baselineMB: before.rssMB, peakMB: after.peakMB, rssAfterMB: after.rssMB,
    externalPeakMB: (Math.max(peakExt, process.memoryUsage().external) - extBefore) / 2 ** 20, params };
}

// ------------------------------------------------------------------------------------------------ onnxruntime-node

interface OrtTensor { readonly data: unknown; readonly dims: readonly number[] }
interface Ort {
  InferenceSession: { create(path: string, opts: Record<string, unknown>): Promise<{ run(f: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>; inputNames: string[] }> };
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => OrtTensor;
}

function ortSession(ort: Ort, path: string, threads: number) {
  return ort.InferenceSession.create(path, {
    executionProviders: ["cpu"], intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all",
  });
}

const i64 = (ort: Ort, a: ArrayLike<number>, dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(Array.from(a, BigInt)), dims);

async function ortBert(req: Request): Promise<Record<string, unknown>> {
  const ort = requirePeer<Ort>("onnxruntime-node");
  const s = await ortSession(ort, join(req.dir, "onnx", "model.onnx"), req.threads ?? 2);
  const T = req.T!, ids = readIds(req.ids!, T);
  const feeds = { input_ids: i64(ort, ids, [1, T]), attention_mask: i64(ort, new Int32Array(T).fill(1), [1, T]), token_type_ids: i64(ort, new Int32Array(T), [1, T]) };
  const step = async () => Float32Array.from((await s.run(feeds)).last_hidden_state.data as Float32Array);   // readback included
  const m = await measure(step, req.policy!);
  writeOut(req.out!, m.last);
  return { ok: true, timesMs: m.timesMs, note: m.note };
}

async function ortLlama(req: Request): Promise<Record<string, unknown>> {
  const ort = requirePeer<Ort>("onnxruntime-node");
  const s = await ortSession(ort, join(req.dir, "onnx", "decoder_with_past.onnx"), req.threads ?? 2);
  const cfg = JSON.parse(readFileSync(join(req.dir, "config.json"), "utf8")) as Record<string, number>;
  const L = cfg.num_hidden_layers, Hkv = cfg.num_key_value_heads, Dh = cfg.hidden_size / cfg.num_attention_heads, V = cfg.vocab_size;
  const T = req.T!, N = req.N!, ids = readIds(req.ids!, T);
  const step = async (tokens: ArrayLike<number>, P: number, past: OrtTensor[]) => {
    const t = tokens.length;
    const feeds: Record<string, OrtTensor> = {
      input_ids: i64(ort, tokens, [1, t]), attention_mask: i64(ort, new Int32Array(P + t).fill(1), [1, P + t]),
      position_ids: i64(ort, Array.from({ length: t }, (_, i) => P + i), [1, t]),
    };
    for (let l = 0; l < L; l++) { feeds[`past_key_values.${l}.key`] = past[2 * l]; feeds[`past_key_values.${l}.value`] = past[2 * l + 1]; }
    const o = await s.run(feeds);
    const lg = o.logits.data as Float32Array;
    const present: OrtTensor[] = [];
    for (let l = 0; l < L; l++) present.push(o[`present.${l}.key`], o[`present.${l}.value`]);
    return { logits: lg.slice(lg.length - V), present };
  };
  const empty = Array.from({ length: 2 * L }, () => new ort.Tensor("float32", new Float32Array(0), [1, Hkv, 0, Dh]));
  const gen = async (): Promise<GenRun> => {
    const t0 = performance.now();
    let r = await step(ids, 0, empty);
    const out = [r.logits];
    const t1 = performance.now();
    for (let i = 0; i < N; i++) {
      r = await step([argmax(r.logits)], T + i, r.present);
      out.push(r.logits);
    }
    return { prefillMs: t1 - t0, decodeMs: performance.now() - t1, logits: concat(out) };
  };
  const r = await timeGeneration(gen, req.genRuns ?? 3, N);
  writeOut(req.out!, r.logits);
  return { ok: true, timesMs: r.timesMs, prefillMs: r.prefillMs };
}

const OPS: Record<string, (r: Request) => Promise<Record<string, unknown>>> = {
  "attnflow-bert": attnflowBert, "attnflow-llama": attnflowLlama, "ort-bert": ortBert, "ort-llama": ortLlama, load: attnflowLoad,
};

serveRequests<Request>(async (req) => {
  const f = OPS[req.op];
  if (!f) throw new Error(`hf-child: unknown op ${JSON.stringify(req.op)} (known: ${Object.keys(OPS).join(", ")})`);
  return f(req);
});
