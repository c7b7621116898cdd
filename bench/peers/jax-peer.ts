// Parent side of the jax-js peer: one long-lived child (jax-child.ts) per benchmark run.
import { fileURLToPath } from "node:url";
import { ChildPeer } from "../lib/child-peer.js";
import { errorText, type PeerContext, type PeerRun } from "../lib/peer-types.js";
import { peerVersion } from "../lib/peer-modules.js";
import { outputPath, readTensorFile, tensorFile } from "../lib/tensor-files.js";
import { bhtdToBthd, bthdToBhtd, transpose2d, type MhaWeights, type Task } from "../lib/tasks.js";

const IMPL = "jax-js-wasm";
let child: ChildPeer | null = null;

export function jaxVersion(): string | null { return peerVersion("@jax-js/jax"); }

/** Node < 22 lacks Iterator helpers, which jax-js uses: the child then needs the V8 flag. */
function nodeFlags(): string[] {
  const it = (globalThis as { Iterator?: { prototype?: { map?: unknown } } }).Iterator;
  return typeof it?.prototype?.map === "function" ? [] : ["--harmony-iterator-helpers"];
}

function getChild(log: (m: string) => void): ChildPeer {
  child ??= new ChildPeer("jax-js", process.execPath, [...nodeFlags(), fileURLToPath(new URL("./jax-child.js", import.meta.url))], { log });
  return child;
}

export function closeJax(): void { child?.close(); child = null; }

/** Split PyTorch-layout weights into per-projection Wᵀ (D, D) blocks and bias slices. */
function jaxWeights(w: MhaWeights, D: number): Record<string, string> {
  const files: Record<string, string> = {};
  ["q", "k", "v"].forEach((n, i) => {
    files[`w${n}`] = tensorFile(transpose2d(w.inProjWeight.subarray(i * D * D, (i + 1) * D * D), D, D), `jax-w${n}`);
    files[`b${n}`] = tensorFile(w.inProjBias.subarray(i * D, (i + 1) * D).slice(), `jax-b${n}`);
  });
  files.wo = tensorFile(transpose2d(w.outProjWeight, D, D), "jax-wo");
  files.bo = tensorFile(w.outProjBias, "jax-bo");
  return files;
}

export async function runJax(task: Task, ctx: PeerContext): Promise<PeerRun[]> {
  const skip = ctx.skipReason(IMPL);
  if (skip) return [{ impl: IMPL, note: skip }];
  const out = outputPath("jax");
  let req: Record<string, unknown>;
  let post: (o: Float32Array) => Float32Array;
  if (task.kind === "sdpa") {
    const { B, H, T, d } = task;
    const files = Object.fromEntries((["q", "k", "v"] as const).map((n) => [n, tensorFile(bhtdToBthd(task[n], B, H, T, d), `jax-${n}`)]));
    req = { op: "sdpa", shape: { B, H, T, d }, causal: task.causal, files };
    post = (o) => bthdToBhtd(o, B, H, T, d);
  } else {
    const { B, T, D, H } = task;
    const files = { x: tensorFile(task.x, "x"), ...jaxWeights(task.w, D) };
    if (task.kind === "train") Object.assign(files, { g: tensorFile(task.g, "g") });
    req = { op: task.kind, shape: { B, T, D, H }, files };
    // train: the child writes dWqᵀ, dWkᵀ, dWvᵀ; transpose each back into in_proj_weight (3D, D)
    post = task.kind === "mha" ? (o) => o : (o) => {
      const g = new Float32Array(3 * D * D);
      for (let i = 0; i < 3; i++) g.set(transpose2d(o.subarray(i * D * D, (i + 1) * D * D), D, D), i * D * D);
      return g;
    };
  }
  try {
    const r = await getChild(ctx.log).request({ ...req, out, policy: ctx.policy });
    if (!r.ok) return [{ impl: IMPL, note: `failed: ${r.error ?? "unknown error"}` }];
    return [{ impl: IMPL, timesMs: r.timesMs, output: post(readTensorFile(out)), note: r.note }];
  } catch (e) {
    closeJax();
    return [{ impl: IMPL, note: `jax-js child failed: ${errorText(e)}` }];
  }
}
