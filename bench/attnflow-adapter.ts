// The only file of the benchmark that touches attnflow's public API. It is loaded dynamically so
// the benchmark still compiles and runs (with attnflow rows marked unavailable) while src/ is
// being written; the interfaces below are the slice of the API the benchmark relies on.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "./lib/paths.js";
import type { MhaTask, MhaWeights, SdpaTask, Task, TrainTask } from "./lib/tasks.js";

export interface AfTensor {
  readonly shape: number[];
  grad: AfTensor | null;
  requiresGrad?: boolean;
  requiresGrad_?(on?: boolean): AfTensor;
  toFloat32Array(): Float32Array;
  /** Flat copy in the tensor's dtype (a Float32Array for float32 tensors: one memcpy). */
  dataSync?(): ArrayLike<number>;
  backward(): void;
  mul(other: AfTensor): AfTensor;
  sum(): AfTensor;
}

interface AfMha {
  forward(q: AfTensor, k: AfTensor, v: AfTensor, opts?: { needWeights?: boolean }): [AfTensor, AfTensor | null];
  loadStateDict(sd: Record<string, AfTensor>): unknown;
  parameters?(): AfTensor[];
  namedParameters?(): Iterable<[string, AfTensor]> | Record<string, AfTensor>;
  train?(on?: boolean): unknown;
  eval?(): unknown;
}

export interface AttnflowApi {
  setBackend(name: string): unknown;
  availableBackends(): string[];
  noGrad<T>(fn: () => T): T;
  /** Memory scope: tensors made inside are released (to the buffer pool) when fn returns. */
  tidy?<T>(fn: () => T): T;
  nn: { MultiheadAttention: new (D: number, H: number, opts: { batchFirst: boolean }) => AfMha };
  functional: { scaledDotProductAttention(q: AfTensor, k: AfTensor, v: AfTensor, opts?: { causal?: boolean }): AfTensor };
  Tensor: { fromArray(a: Float32Array, shape: number[]): AfTensor };
  /** Wasm backend: worker threads running kernels now, and the thread count the Node entry configures. */
  wasmWorkerCount?(): number;
  wasmThreadsFromEnv?(): number;
}

export type AttnflowLoad = { ok: true; api: AttnflowApi; entry: string } | { ok: false; reason: string };

let cached: Promise<AttnflowLoad> | null = null;

/** Import attnflow's compiled entry (Node entry first, then the browser-safe index). */
export function loadAttnflow(): Promise<AttnflowLoad> {
  cached ??= (async () => {
    const candidates = [
      new URL("../src/node.js", import.meta.url).href,
      new URL("../src/index.js", import.meta.url).href,
      pathToFileURL(join(REPO_ROOT, "dist", "src", "node.js")).href,
      pathToFileURL(join(REPO_ROOT, "dist", "src", "index.js")).href,
    ];
    const errors: string[] = [];
    for (const url of [...new Set(candidates)]) {
      if (!existsSync(new URL(url))) continue;
      try {
        const api = (await import(url)) as AttnflowApi;
        if (typeof api.setBackend !== "function" || !api.nn?.MultiheadAttention) {
          errors.push(`${url}: missing setBackend / nn.MultiheadAttention`);
          continue;
        }
        return { ok: true as const, api, entry: url };
      } catch (e) {
        errors.push(`${url}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
      }
    }
    return { ok: false as const, reason: errors.length ? errors.join("; ") : "attnflow is not built (no dist/src/index.js)" };
  })();
  return cached;
}

/** The native addon's info() (ISA, threads, what it did to malloc), or null when it is not built or not loadable. */
export async function attnflowNativeInfo(): Promise<Record<string, unknown> | null> {
  const url = new URL("../src/node/native-addon.js", import.meta.url);
  if (!existsSync(url)) return null;
  try {
    const m = (await import(url.href)) as { nativeKernels(): { info(): Record<string, unknown> } | null };
    return m.nativeKernels()?.info() ?? null;
  } catch {
    return null;
  }
}

/** The `attnflow-<backend>` rows: every backend availableBackends() lists. */
export function attnflowBackends(api: AttnflowApi): string[] {
  return api.availableBackends();
}

/** Run one benchmark step inside tidy() when available, as a hot loop in user code would. */
// (The result is wrapped in a closure so tidy() does not walk a Float32Array's elements looking
// for tensors.)
function scoped(api: AttnflowApi, fn: () => Float32Array): () => Float32Array {
  const tidy = api.tidy;
  return tidy ? () => tidy(() => { const a = fn(); return () => a; })() : fn;
}

/** The tensor's values as a new Float32Array (a plain copy of a float32 tensor's data). */
function readback(t: AfTensor): Float32Array {
  const d = t.dataSync?.();
  return d instanceof Float32Array ? d : t.toFloat32Array();
}

function requireGrad(t: AfTensor): AfTensor {
  if (typeof t.requiresGrad_ === "function") t.requiresGrad_(true);
  else t.requiresGrad = true;
  return t;
}

function buildMha(api: AttnflowApi, D: number, H: number, w: MhaWeights): AfMha {
  const mha = new api.nn.MultiheadAttention(D, H, { batchFirst: true });
  const T = api.Tensor.fromArray;
  mha.loadStateDict({
    in_proj_weight: T(w.inProjWeight, [3 * D, D]), in_proj_bias: T(w.inProjBias, [3 * D]),
    "out_proj.weight": T(w.outProjWeight, [D, D]), "out_proj.bias": T(w.outProjBias, [D]),
  });
  return mha;
}

function params(mha: AfMha): [string, AfTensor][] {
  const named = mha.namedParameters?.();
  if (named) return Symbol.iterator in named ? [...(named as Iterable<[string, AfTensor]>)] : Object.entries(named);
  const ps = mha.parameters?.() ?? [];
  const names = ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"];
  return ps.map((p, i) => [names[i] ?? `p${i}`, p]);
}

/** MHA forward without weights: returns a step that yields out (B, T, D). */
export function attnflowMha(api: AttnflowApi, backend: string, t: MhaTask): () => Float32Array {
  api.setBackend(backend);
  const mha = buildMha(api, t.D, t.H, t.w);
  mha.eval?.();
  const x = api.Tensor.fromArray(t.x, [t.B, t.T, t.D]);
  return scoped(api, () => readback(api.noGrad(() => mha.forward(x, x, x, { needWeights: false }))[0]));
}

/** SDPA core on (B, H, T, d): returns a step that yields out (B, H, T, d). */
export function attnflowSdpa(api: AttnflowApi, backend: string, t: SdpaTask): () => Float32Array {
  api.setBackend(backend);
  const dims = [t.B, t.H, t.T, t.d];
  const [q, k, v] = [t.q, t.k, t.v].map((a) => api.Tensor.fromArray(a, dims));
  return scoped(api, () => readback(api.noGrad(() => api.functional.scaledDotProductAttention(q, k, v, { causal: t.causal }))));
}

/** Training step: loss = sum(out · g), backward; yields dLoss/d in_proj_weight (3D, D). */
export function attnflowTrain(api: AttnflowApi, backend: string, t: TrainTask): () => Float32Array {
  api.setBackend(backend);
  const mha = buildMha(api, t.D, t.H, t.w);
  mha.train?.(true);
  const x = api.Tensor.fromArray(t.x, [t.B, t.T, t.D]);
  const g = api.Tensor.fromArray(t.g, [t.B, t.T, t.D]);
  const ps = params(mha);
  const inProj = ps.find(([n]) => n === "in_proj_weight")?.[1];
  if (!inProj) throw new Error(`attnflow MultiheadAttention: no in_proj_weight among parameters [${ps.map(([n]) => n).join(", ")}]`);
  return scoped(api, () => {
    for (const [, p] of ps) p.grad = null;
    const [out] = mha.forward(x, x, x, { needWeights: false });
    out.mul(g).sum().backward();
    if (!inProj.grad) throw new Error("attnflow: in_proj_weight.grad is empty after backward()");
    return readback(inProj.grad);
  });
}

/** Causal SDPA forward + backward (memory cases): yields the forward output (B, H, T, d). */
export function attnflowCausalTrain(api: AttnflowApi, backend: string, dims: number[], q: Float32Array, k: Float32Array, v: Float32Array, g: Float32Array): () => Float32Array {
  api.setBackend(backend);
  const [tq, tk, tv] = [q, k, v].map((a) => requireGrad(api.Tensor.fromArray(a, dims)));
  const tg = api.Tensor.fromArray(g, dims);
  return scoped(api, () => {
    for (const t of [tq, tk, tv]) t.grad = null;
    const o = api.functional.scaledDotProductAttention(tq, tk, tv, { causal: true });
    o.mul(tg).sum().backward();
    return readback(o);
  });
}

/** The timed step of any benchmark task on one backend. */
/**
 * The Wasm backend starts its worker threads asynchronously at its first kernel call, and calls made while they start
 * run on fewer threads: run `step` once, then wait (up to 20 s) until every worker runs, so that a short warm-up
 * (--quick) does not time single-threaded calls as the multi-threaded row. No-op for other backends.
 */
export async function awaitWasmWorkers(api: AttnflowApi, backend: string, step: () => unknown): Promise<void> {
  if (backend !== "wasm" || !api.wasmWorkerCount || !api.wasmThreadsFromEnv) return;
  const want = api.wasmThreadsFromEnv() - 1;
  if (want <= 0) return;
  step();
  for (let i = 0; i < 400 && api.wasmWorkerCount() < want; i++) await new Promise((r) => setTimeout(r, 50));
}

export function attnflowStep(api: AttnflowApi, backend: string, task: Task): () => Float32Array {
  return task.kind === "mha" ? attnflowMha(api, backend, task)
    : task.kind === "sdpa" ? attnflowSdpa(api, backend, task) : attnflowTrain(api, backend, task);
}
