// onnxruntime-web peer, run as a child process per thread count: ort.env.wasm.numThreads is fixed when the Wasm
// runtime starts (the first session), so `node ort-web-child.js THREADS` serves one thread count for the whole run.
// The parent writes the same ONNX graphs onnxruntime-node runs (peers/onnx-models.ts) to files; the child creates a
// session on the wasm execution provider, times `session.run` plus reading the output (lib/measure.ts policy) and
// writes the last output back. Node: onnxruntime-web's Node build runs its pthreads on worker_threads.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { serveRequests } from "../lib/child-serve.js";
import { measure, type MeasurePolicy } from "../lib/measure.js";
import { peerVersion, resolvePeer } from "../lib/peer-modules.js";
import { readF32File } from "../lib/tensor-files.js";

interface OrtTensor { readonly data: unknown; readonly dims: readonly number[]; dispose?(): void }
interface OrtSession { run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>; release(): Promise<void> }
interface OrtWeb {
  env: { wasm: { numThreads?: number; simd?: boolean; proxy?: boolean }; logLevel?: string };
  InferenceSession: { create(bytes: Uint8Array, opts: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => OrtTensor;
}

interface Request {
  id: number;
  op: "version" | "run";
  model?: string;
  inputs?: { name: string; dims: number[]; file: string }[];
  output?: string;
  out?: string;
  policy?: MeasurePolicy;
}

const threads = Number(process.argv[2] ?? "1");

async function handle(ort: OrtWeb, req: Request): Promise<Record<string, unknown>> {
  if (req.op === "version") return { ok: true, version: peerVersion("onnxruntime-web"), threads: ort.env.wasm.numThreads };
  const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(req.model!)), {
    executionProviders: ["wasm"], graphOptimizationLevel: "all", executionMode: "sequential",
  });
  try {
    const feeds: Record<string, OrtTensor> = {};
    for (const i of req.inputs!) feeds[i.name] = new ort.Tensor("float32", readF32File(i.file), i.dims);
    const step = async () => {
      const r = await session.run(feeds);
      const t = r[req.output!];
      const data = (t.data as Float32Array).slice(); // the readback, as every peer's is timed
      for (const v of Object.values(r)) v.dispose?.();
      return data;
    };
    const m = await measure(step, req.policy!);
    if (req.out) writeFileSync(req.out, new Uint8Array(m.last.buffer, m.last.byteOffset, m.last.byteLength));
    return { ok: true, timesMs: m.timesMs, note: m.note };
  } finally {
    await session.release();
  }
}

async function main(): Promise<void> {
  const ort = (await import(pathToFileURL(resolvePeer("onnxruntime-web").replace(/ort\.node\.min\.js$/, "ort.node.min.mjs")).href)) as OrtWeb;
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  serveRequests((req: Request) => handle(ort, req));
}

main().catch((e) => { console.error(e); process.exit(1); });
