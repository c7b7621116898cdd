// onnxruntime-web peer: the Wasm build (SIMD + threads) that runs in browsers and under transformers.js, in Node, at
// 1 and 2 threads. Each thread count lives in a child process of its own (ort-web-child.ts; the Wasm runtime's
// thread count is fixed when it starts) and runs the same ONNX graphs as onnxruntime-node (peers/onnx-models.ts via
// ort-peer.ts's variantsFor); each row is the best of the plain graph and the fused com.microsoft op.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ChildPeer } from "../lib/child-peer.js";
import { median } from "../lib/measure.js";
import { errorText, type PeerContext, type PeerRun } from "../lib/peer-types.js";
import { peerVersion } from "../lib/peer-modules.js";
import { outputPath, readTensorFile, tensorFile } from "../lib/tensor-files.js";
import type { Task } from "../lib/tasks.js";
import { ORT_THREADS, variantsFor } from "./ort-peer.js";

const children = new Map<number, ChildPeer>();

export function ortWebVersion(): string | null { return peerVersion("onnxruntime-web"); }

function getChild(threads: number, log: (m: string) => void): ChildPeer {
  let c = children.get(threads);
  if (!c) {
    c = new ChildPeer(`onnxruntime-web-${threads}t`, process.execPath, [fileURLToPath(new URL("./ort-web-child.js", import.meta.url)), String(threads)], { log });
    children.set(threads, c);
  }
  return c;
}

export function closeOrtWeb(): void {
  for (const c of children.values()) c.close();
  children.clear();
}

export async function runOrtWeb(task: Task, ctx: PeerContext): Promise<PeerRun[]> {
  const rows = ORT_THREADS.map((t) => `onnxruntime-web-${t}t`);
  if (task.kind === "train") return rows.map((impl) => ({ impl, note: "no training API" }));
  if (ortWebVersion() === null) return rows.map((impl) => ({ impl, note: "onnxruntime-web not installed in bench/peers" }));
  const variants = variantsFor(task).map((v) => {
    const model = outputPath("ortweb-model");
    writeFileSync(model, v.model.bytes);
    const inputs = v.model.inputs.map((i) => ({ ...i, file: tensorFile(v.data[i.name], `ortweb-${i.name}`) }));
    return { ...v, file: model, inputs };
  });
  const out: PeerRun[] = [];
  for (const threads of ORT_THREADS) {
    const impl = `onnxruntime-web-${threads}t`;
    const skip = ctx.skipReason(impl);
    if (skip) { out.push({ impl, note: skip }); continue; }
    let best: PeerRun | null = null;
    let bestMs = Infinity;
    const parts: string[] = [];
    for (const v of variants) {
      const file = outputPath("ortweb-out");
      try {
        const r = await getChild(threads, ctx.log).request({ op: "run", model: v.file, inputs: v.inputs, output: v.model.output, out: file, policy: ctx.policy });
        if (!r.ok || !r.timesMs?.length) { parts.push(`${v.model.variant} failed: ${r.error ?? "no samples"}`); continue; }
        const med = median(r.timesMs);
        parts.push(`${v.model.variant} ${med.toFixed(med < 10 ? 2 : 1)} ms`);
        const output = v.toCanonical(readTensorFile(file));
        if (med < bestMs) { bestMs = med; best = { impl, timesMs: r.timesMs, output, note: v.model.variant }; }
      } catch (e) {
        parts.push(`${v.model.variant} failed: ${errorText(e)}`);
        children.get(threads)?.close();
        children.delete(threads);
      }
    }
    // one Wasm runtime at a time: the other thread count's workers are gone before the next is timed
    children.get(threads)?.close();
    children.delete(threads);
    out.push(best ? { ...best, note: `best: ${best.note} (${parts.join("; ")})` } : { impl, note: parts.join("; ") });
  }
  return out;
}
