// onnxruntime-web peer: the Wasm build (SIMD + threads) that runs in browsers and under transformers.js, in Node, at
// 1 and 2 threads. Each thread count lives in a child process of its own (ort-web-child.ts; the Wasm runtime's
// thread count is fixed when it starts) and runs the same ONNX graphs as onnxruntime-node (peers/onnx-models.ts via
// ort-peer.ts's variantsFor); each row is the best of the plain graph and the fused com.microsoft op.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ChildPeer } from "../lib/child-peer.js";
import type { PeerContext, PeerRun } from "../lib/peer-types.js";
import { peerVersion } from "../lib/peer-modules.js";
import { outputPath, readTensorFile, tensorFile } from "../lib/tensor-files.js";
import type { Task } from "../lib/tasks.js";
import { ortRows, variantsFor } from "./ort-peer.js";

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

function closeChild(threads: number): void {
  children.get(threads)?.close();
  children.delete(threads);
}

export function closeOrtWeb(): void {
  for (const c of children.values()) c.close();
  children.clear();
}

export function runOrtWeb(task: Task, ctx: PeerContext): Promise<PeerRun[]> {
  const unavailable = () => (ortWebVersion() === null ? "onnxruntime-web not installed in bench/peers" : null);
  // the graphs and inputs go to the child as files
  const variants = () => variantsFor(task).map((v) => {
    const model = outputPath("ortweb-model");
    writeFileSync(model, v.model.bytes);
    const inputs = v.model.inputs.map((i) => ({ ...i, file: tensorFile(v.data[i.name], `ortweb-${i.name}`) }));
    return { ...v, file: model, inputs };
  });
  return ortRows("onnxruntime-web", task, ctx, unavailable, variants, async (v, threads) => {
    const file = outputPath("ortweb-out");
    let r;
    try {
      r = await getChild(threads, ctx.log).request({ op: "run", model: v.file, inputs: v.inputs, output: v.model.output, out: file, policy: ctx.policy });
    } catch (e) {
      closeChild(threads);   // a child that failed to answer is not reused
      throw e;
    }
    if (!r.ok || !r.timesMs?.length) throw new Error(r.error ?? "no samples");
    return { timesMs: r.timesMs, output: readTensorFile(file) };
  }, closeChild);   // one Wasm runtime at a time: the other thread count's workers are gone before the next is timed
}
