// Parent side of the PyTorch peer: bench/peers/torch_peer.py under the system Python with
// Debian's python3-torch (`apt-get install -y python3-torch libopenblas0-pthread`), 2 threads, OpenBLAS forced
// (torchEnv).
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

/** Debian's OpenBLAS folder (libopenblas0-pthread / -openmp), or null when none is installed. */
export function openBlasDir(): string | null {
  const env = process.env.ATTNFLOW_BENCH_BLAS_DIR;
  if (env) return existsSync(join(env, "libblas.so.3")) ? env : null;
  const triplet = ({ x64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu" } as Record<string, string>)[process.arch];
  if (!triplet) return null;
  for (const v of ["openblas-pthread", "openblas-openmp"]) {
    const dir = `/usr/lib/${triplet}/${v}`;
    if (existsSync(join(dir, "libblas.so.3"))) return dir;
  }
  return null;
}

/** Thread and BLAS-core variables that, inherited from the machine, would cripple or skew PyTorch's BLAS. */
export const TORCH_ENV_DROPPED = [
  "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_VERBOSE", "MKL_NUM_THREADS",
  "MKL_DYNAMIC", "OMP_THREAD_LIMIT", "OMP_DYNAMIC", "OMP_PROC_BIND", "OMP_PLACES", "KMP_AFFINITY", "GOMP_CPU_AFFINITY",
] as const;

/**
 * The PyTorch child's environment. Debian's python3-torch calls BLAS through `libblas.so.3`, which is whatever
 * the machine's alternatives say — on a machine without OpenBLAS that is the netlib reference BLAS, single-threaded
 * and unblocked: MHA (1, 128, 768) took 233 ms there instead of ≈ 25 ms with OpenBLAS. So the child gets OpenBLAS's
 * folder first on LD_LIBRARY_PATH when one is installed (`apt-get install libopenblas0-pthread`), whatever the
 * alternatives say; the reply's `blas` names the library really loaded. Inherited thread/core settings are dropped
 * (a forced Haswell core type halves OpenBLAS speed; OPENBLAS_NUM_THREADS=1 or OMP_THREAD_LIMIT=1 serialise it) and
 * OMP_NUM_THREADS is set to the torch thread count. For timing runs glibc's malloc.hugetlb tunable, so the large
 * tensors PyTorch mallocs get transparent huge pages and first touch costs far less than the ~4 ms/MB of 4 KiB
 * faults; memory runs keep the default malloc so that peak RSS is not rounded up to 2 MiB pages.
 */
function torchEnv(hugePages: boolean): NodeJS.ProcessEnv {
  const env = hugePages ? withHugePages(untunedEnv()) : untunedEnv();
  for (const k of TORCH_ENV_DROPPED) delete env[k];
  env.OMP_NUM_THREADS = process.env.ATTNFLOW_BENCH_TORCH_THREADS ?? "2";
  const blas = openBlasDir();
  if (blas) env.LD_LIBRARY_PATH = [blas, env.LD_LIBRARY_PATH].filter(Boolean).join(":");
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
      versionInfo = r.ok ? { torch: r.torch, python: r.python, threads: r.threads, blas: r.blas, blasLibrary: r.blasLibrary, blasCore: r.blasCore, blasThreads: r.blasThreads, ompThreads: r.ompThreads, cpuCapability: r.cpuCapability } : { error: r.error };
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
    const crippled = String(v.blasCore ?? "").startsWith("reference") ? "reference BLAS (apt-get install libopenblas0-pthread)" : undefined;
    return [{ impl: TORCH_IMPL, timesMs: r.timesMs, output: readTensorFile(out), note: [crippled, r.note].filter(Boolean).join("; ") || undefined }];
  } catch (e) {
    closeTorch();
    return [{ impl: TORCH_IMPL, note: `PyTorch child failed: ${errorText(e)}` }];
  }
}
