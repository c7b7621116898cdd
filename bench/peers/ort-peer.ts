// onnxruntime-node peer (CPU execution provider) at 1 and 2 intra-op threads. Each row is the
// best of the plain ONNX graph and the fused com.microsoft contrib op for that case.
import { measure, median } from "../lib/measure.js";
import { errorText, type PeerContext, type PeerRun } from "../lib/peer-types.js";
import { peerVersion, requirePeer } from "../lib/peer-modules.js";
import { bhtdToBthd, bthdToBhtd, type Task } from "../lib/tasks.js";
import { mhaFusedModel, mhaPlainModel, sdpaFusedModel, sdpaPlainModel, type OnnxModel } from "./onnx-models.js";

interface OrtTensor { readonly data: unknown; readonly dims: readonly number[] }
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface OrtModule {
  InferenceSession: { create(bytes: Uint8Array, opts: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => OrtTensor;
}

export const ORT_THREADS = [1, 2] as const;

export function loadOrt(): OrtModule {
  return requirePeer<OrtModule>("onnxruntime-node");
}

export function ortVersion(): string | null { return peerVersion("onnxruntime-node"); }

/** Create a CPU session for `model`; sequential execution, all graph optimizations. */
export function ortSession(ort: OrtModule, model: OnnxModel, threads: number): Promise<OrtSession> {
  return ort.InferenceSession.create(model.bytes, {
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
}

/** Run `model` once on named Float32Array inputs; returns its output data. */
export async function ortRunOnce(ort: OrtModule, session: OrtSession, model: OnnxModel, data: Record<string, Float32Array>): Promise<Float32Array> {
  const feeds: Record<string, OrtTensor> = {};
  for (const i of model.inputs) feeds[i.name] = new ort.Tensor("float32", data[i.name], i.dims);
  return (await session.run(feeds))[model.output].data as Float32Array;
}

export interface Variant { model: OnnxModel; data: Record<string, Float32Array>; toCanonical(o: Float32Array): Float32Array }

/** The ONNX graphs of `task` (plain and fused) with their inputs; shared with the onnxruntime-web peer. */
export function variantsFor(task: Task): Variant[] {
  if (task.kind === "mha") {
    const { B, T, D, H, x, w } = task;
    const id = (o: Float32Array) => o;
    return [
      { model: mhaPlainModel(B, T, D, H, w), data: { x }, toCanonical: id },
      { model: mhaFusedModel(B, T, D, H, w), data: { x }, toCanonical: id },
    ];
  }
  if (task.kind === "sdpa") {
    const { B, H, T, d, causal, q, k, v } = task;
    const bsnh = { q: bhtdToBthd(q, B, H, T, d), k: bhtdToBthd(k, B, H, T, d), v: bhtdToBthd(v, B, H, T, d) };
    return [
      { model: sdpaPlainModel(B, H, T, d, causal), data: { q, k, v }, toCanonical: (o) => o },
      { model: sdpaFusedModel(B, H, T, d, causal), data: bsnh, toCanonical: (o) => bthdToBhtd(o, B, H, T, d) },
    ];
  }
  return [];
}

/**
 * The rows of one onnxruntime flavour (`prefix`-1t, -2t), shared by the node and web peers: per thread count (unless
 * the harness skips it), every variant timed by `time` (samples and raw output; throws on failure), and the row is the
 * variant with the lowest median, its note naming every variant's median or failure.
 */
export async function ortRows<V extends Variant>(prefix: string, task: Task, ctx: PeerContext, unavailable: () => string | null, variants: () => V[],
  time: (v: V, threads: number) => Promise<{ timesMs: number[]; output: Float32Array }>, afterThreads?: (threads: number) => void): Promise<PeerRun[]> {
  const rows = ORT_THREADS.map((t) => `${prefix}-${t}t`);
  if (task.kind === "train") return rows.map((impl) => ({ impl, note: "no training API" }));
  const why = unavailable();
  if (why) return rows.map((impl) => ({ impl, note: why }));
  const vs = variants();
  const out: PeerRun[] = [];
  for (const threads of ORT_THREADS) {
    const impl = `${prefix}-${threads}t`;
    const skip = ctx.skipReason(impl);
    if (skip) { out.push({ impl, note: skip }); continue; }
    let best: PeerRun | null = null;
    let bestMs = Infinity;
    const parts: string[] = [];
    for (const v of vs) {
      try {
        const r = await time(v, threads);
        const med = median(r.timesMs);
        parts.push(`${v.model.variant} ${med.toFixed(med < 10 ? 2 : 1)} ms`);
        if (med < bestMs) { bestMs = med; best = { impl, timesMs: r.timesMs, output: v.toCanonical(r.output), note: v.model.variant }; }
      } catch (e) {
        parts.push(`${v.model.variant} failed: ${errorText(e)}`);
      }
    }
    afterThreads?.(threads);
    out.push(best ? { ...best, note: `best: ${best.note} (${parts.join("; ")})` } : { impl, note: parts.join("; ") });
  }
  return out;
}

export function runOrt(task: Task, ctx: PeerContext): Promise<PeerRun[]> {
  let ort: OrtModule | null = null;
  const unavailable = () => {
    try {
      ort = loadOrt();
      return null;
    } catch (e) {
      return `onnxruntime-node unavailable: ${errorText(e)}`;
    }
  };
  return ortRows("onnxruntime-node", task, ctx, unavailable, () => variantsFor(task), async (v, threads) => {
    const session = await ortSession(ort!, v.model, threads);
    try {
      const m = await measure(() => ortRunOnce(ort!, session, v.model, v.data), ctx.policy);
      return { timesMs: m.timesMs, output: m.last };
    } finally {
      await session.release();
    }
  });
}
