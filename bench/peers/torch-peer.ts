// Parent side of the PyTorch peer: bench/peers/torch_peer.py under the system Python with
// Debian's python3-torch (`apt-get install -y python3-torch`), 2 threads, OPENBLAS_CORETYPE unset.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ChildPeer } from "../lib/child-peer.js";
import { errorText, type PeerContext, type PeerRun } from "../lib/peer-types.js";
import { PEERS_DIR } from "../lib/paths.js";
import { outputPath, readTensorFile, tensorFile } from "../lib/tensor-files.js";
import type { Task } from "../lib/tasks.js";
import { untunedEnv, withHugePages } from "../lib/malloc-env.js";

export const TORCH_IMPL = "pytorch-cpu";
let child: ChildPeer | null = null;
let versionInfo: Record<string, unknown> | null | undefined;

export function pythonPath(): string {
  return process.env.ATTNFLOW_BENCH_PYTHON ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
}

/**
 * The PyTorch child's environment: OPENBLAS_CORETYPE unset (a forced Haswell halves OpenBLAS
 * speed); for timing runs glibc's malloc.hugetlb tunable, so the large tensors PyTorch mallocs
 * get transparent huge pages and first touch costs far less than the ~4 ms/MB of 4 KiB faults.
 * Memory runs keep the default malloc so that peak RSS is not rounded up to 2 MiB pages.
 */
function torchEnv(hugePages: boolean): NodeJS.ProcessEnv {
  const env = hugePages ? withHugePages(untunedEnv()) : untunedEnv();
  delete env.OPENBLAS_CORETYPE;
  return env;
}

/** A fresh torch_peer.py process; `maxRssMB` arms the parent-side memory watchdog (memory runs). */
export function torchProcess(log: (m: string) => void, maxRssMB?: number): ChildPeer {
  return new ChildPeer("pytorch", pythonPath(), [join(PEERS_DIR, "torch_peer.py")], { env: torchEnv(maxRssMB === undefined), log, maxRssMB });
}

function getChild(log: (m: string) => void): ChildPeer {
  child ??= torchProcess(log);
  return child;
}

export function closeTorch(): void { child?.close(); child = null; }

/** torch / python / BLAS versions, or an `error` entry when PyTorch cannot load. */
export async function torchVersion(log: (m: string) => void): Promise<Record<string, unknown>> {
  if (versionInfo === undefined) {
    try {
      const r = await getChild(log).request({ op: "version" });
      versionInfo = r.ok ? { torch: r.torch, python: r.python, threads: r.threads, blas: r.blas } : { error: r.error };
    } catch (e) {
      versionInfo = { error: errorText(e) };
    }
  }
  return versionInfo ?? {};
}

export function mhaWeightFiles(w: { inProjWeight: Float32Array; inProjBias: Float32Array; outProjWeight: Float32Array; outProjBias: Float32Array }): Record<string, string> {
  return {
    in_proj_weight: tensorFile(w.inProjWeight, "in_proj_weight"), in_proj_bias: tensorFile(w.inProjBias, "in_proj_bias"),
    out_proj_weight: tensorFile(w.outProjWeight, "out_proj_weight"), out_proj_bias: tensorFile(w.outProjBias, "out_proj_bias"),
  };
}

export async function runTorch(task: Task, ctx: PeerContext): Promise<PeerRun[]> {
  const skip = ctx.skipReason(TORCH_IMPL);
  if (skip) return [{ impl: TORCH_IMPL, note: skip }];
  const v = await torchVersion(ctx.log);
  if (v.error) return [{ impl: TORCH_IMPL, note: `PyTorch unavailable: ${String(v.error)} (apt-get install -y python3-torch)` }];
  const out = outputPath("torch");
  let req: Record<string, unknown>;
  if (task.kind === "sdpa") {
    const { B, H, T, d, causal } = task;
    req = { op: "sdpa", shape: { B, H, T, d }, causal, files: { q: tensorFile(task.q, "q"), k: tensorFile(task.k, "k"), v: tensorFile(task.v, "v") } };
  } else {
    const { B, T, D, H } = task;
    const files: Record<string, string> = { x: tensorFile(task.x, "x"), ...mhaWeightFiles(task.w) };
    if (task.kind === "train") files.g = tensorFile(task.g, "g");
    req = { op: task.kind, shape: { B, T, D, H }, files };
  }
  try {
    const r = await getChild(ctx.log).request({ ...req, out, policy: ctx.policy });
    if (!r.ok) return [{ impl: TORCH_IMPL, note: `failed: ${r.error ?? "unknown error"}` }];
    return [{ impl: TORCH_IMPL, timesMs: r.timesMs, output: readTensorFile(out), note: r.note }];
  } catch (e) {
    closeTorch();
    return [{ impl: TORCH_IMPL, note: `PyTorch child failed: ${errorText(e)}` }];
  }
}
