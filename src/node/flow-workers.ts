// Node only: attention flow with the source rows spread over worker_threads.
//
// Every (layer, token) source row is an independent set of T max-flows, so rows (or, when there are few rows,
// chunks of a row's sinks) are handed out dynamically through an atomic counter in shared memory; the
// capacities and the output live in SharedArrayBuffers, so nothing is copied per row. Each worker runs the same
// LayeredMaxFlow as the single-threaded functions, and a max-flow value does not depend on what the solver
// computed before, so the output is bit-identical.

import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { availableParallelism } from "node:os";
import { type AttentionStack, type MatrixStack, type PrepareOptions, checkMatrixStack, matrixStack, prepareLayers } from "../explain/attention-stack.js";
import {
  type FlowMatrix, type FlowOptions, type FlowResult, blocksToFlowMatrix, normaliseRows, resolveFromTokens, resolveLayer,
} from "../explain/flow.js";
import { LayeredMaxFlow, type MaxFlowStrategy } from "../explain/maxflow.js";
import { type FlowSource, checkFlowWeights } from "../explain/flow.js";

const KIND = "attnflow-flow-worker";
const TASK = 5; // int32 fields per task

interface Job {
  id: number;
  res: SharedArrayBuffer;     // (L, T, T) float64 capacities
  resId: number;              // identifies the shared buffer (reused by the pool while the size stays)
  layers: number;
  tokens: number;
  strategy: MaxFlowStrategy;
  tasks: SharedArrayBuffer;   // int32 5-tuples (layer, token, outRow, sink0, sink1): sinks [sink0, sink1);
                              // token -1 - k: the weighted source over `layer`'s tokens with weights row k
  weights: SharedArrayBuffer; // (nWeights, T) float64 weight rows of weighted sources
  nTasks: number;
  counter: SharedArrayBuffer; // int32[1], next task index
  out: SharedArrayBuffer;     // (nTasks, T) float64 raw max-flow values
}

type Reply = { id: number; ok: true } | { id: number; ok: false; error: string };

// worker side: the solver of the last job, reused (buffers already touched) when the next job comes with the
// same shared capacity buffer: refresh() re-reads the values the pool copied into it
let cached: { resId: number; strategy: MaxFlowStrategy; solver: LayeredMaxFlow } | null = null;

function runJob(job: Job): void {
  let solver: LayeredMaxFlow;
  if (cached !== null && cached.resId === job.resId && cached.strategy === job.strategy) {
    solver = cached.solver;
    solver.refresh();
  } else {
    cached = null;
    solver = new LayeredMaxFlow(matrixStack(job.layers, job.tokens, new Float64Array(job.res)), job.strategy);
    cached = { resId: job.resId, strategy: job.strategy, solver };
  }
  const tasks = new Int32Array(job.tasks), counter = new Int32Array(job.counter), out = new Float64Array(job.out);
  const n = job.nTasks, T = job.tokens, weights = new Float64Array(job.weights);
  for (;;) {
    const q = Atomics.add(counter, 0, 1);
    if (q >= n) break;
    const [l, a, row, b0, b1] = tasks.subarray(q * TASK, q * TASK + TASK);
    if (a >= 0) solver.setSource(l, a);
    else solver.setSourceWeights(l, weights.subarray((-1 - a) * T, (-a) * T));
    for (let b = b0; b < b1; b++) out[row * T + b] = solver.solve(b);
  }
}

if (!isMainThread && parentPort !== null && (workerData as { kind?: string } | null)?.kind === KIND) {
  const port = parentPort;
  port.on("message", (job: Job) => {
    let reply: Reply;
    try { runJob(job); reply = { id: job.id, ok: true }; }
    catch (e) { reply = { id: job.id, ok: false, error: e instanceof Error ? e.message : String(e) }; }
    port.postMessage(reply);
  });
}

/** Default worker count: the machine's available parallelism. */
export function defaultFlowWorkers(): number {
  return Math.max(1, availableParallelism());
}

/**
 * A reusable pool of flow workers (starting a worker costs tens of milliseconds, so reuse one pool for many
 * calls). Call close() when done; an open pool keeps the process alive.
 */
export class FlowWorkerPool {
  readonly size: number;
  private readonly workers: Worker[] = [];
  private nextId = 1;
  private busy = false;
  private closed = false;
  private resBuf: SharedArrayBuffer | null = null; // capacities shared with the workers, reused across calls
  private resId = 0;
  private resDims = "";

  constructor(size: number = defaultFlowWorkers()) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`FlowWorkerPool: size must be a positive integer, got ${String(size)}`);
    this.size = size;
    for (let w = 0; w < size; w++) this.workers.push(new Worker(new URL(import.meta.url), { workerData: { kind: KIND } }));
  }

  /**
   * Raw max-flow values for the given sources; returns (rows.length, T). rows[r] = [layer (1..L), token] (node
   * source, as LayeredMaxFlow.flowsFrom) or [layer (0..L), weights (T)] (weighted source, as flowsFromWeights).
   * onProgress(done, total) is called about every 100 ms with the number of sources started.
   */
  async flowRows(res: MatrixStack, rows: ReadonlyArray<FlowSource>, strategy: MaxFlowStrategy = "auto", onProgress?: (done: number, total: number) => void): Promise<Float64Array> {
    if (this.closed) throw new Error("FlowWorkerPool: the pool is closed");
    if (this.busy) throw new Error("FlowWorkerPool: one job at a time; await the previous call first");
    checkMatrixStack(res, "FlowWorkerPool.flowRows");
    const L = res.layers, T = res.tokens;
    if (rows.length === 0) return new Float64Array(0);
    const weightRows: ArrayLike<number>[] = [];
    const encoded = rows.map(([l, a]): [number, number] => {
      if (typeof a === "number") {
        resolveLayer(L, l, "FlowWorkerPool.flowRows");
        resolveFromTokens(T, [a], "FlowWorkerPool.flowRows");
        return [l, a];
      }
      checkFlowWeights(L, T, l, a, "FlowWorkerPool.flowRows");
      weightRows.push(a);
      return [l, -weightRows.length];
    });
    const weights = new SharedArrayBuffer(Math.max(8, weightRows.length * T * 8));
    { const w = new Float64Array(weights); weightRows.forEach((r, k) => w.set(Array.from(r), k * T)); }
    if (this.resBuf === null || this.resBuf.byteLength !== res.data.byteLength || this.resDims !== `${L}x${T}`) {
      this.resBuf = new SharedArrayBuffer(res.data.byteLength);
      this.resId++;
      this.resDims = `${L}x${T}`;
    }
    new Float64Array(this.resBuf).set(res.data);
    // few rows: split each row's sinks into chunks so that every worker gets work
    const split = Math.max(1, Math.min(T, Math.ceil(2 * this.size / Math.max(1, rows.length))));
    const tasks = new SharedArrayBuffer(Math.max(4, rows.length * split * TASK * 4));
    const t32 = new Int32Array(tasks);
    let q = 0;
    encoded.forEach(([l, a], r) => {
      for (let c = 0; c < split; c++) {
        t32.set([l, a, r, Math.floor(c * T / split), Math.floor((c + 1) * T / split)], q * TASK);
        q++;
      }
    });
    const out = new SharedArrayBuffer(Math.max(8, rows.length * T * 8));
    const job: Job = { id: this.nextId++, res: this.resBuf, resId: this.resId, layers: L, tokens: T, strategy, tasks, nTasks: q, counter: new SharedArrayBuffer(4), out, weights };
    this.busy = true;
    const counter = new Int32Array(job.counter);
    const timer = onProgress ? setInterval(() => onProgress(Math.min(rows.length, Math.floor(Math.min(q, Atomics.load(counter, 0)) / split)), rows.length), 100) : null;
    try {
      await Promise.all(this.workers.map((w) => new Promise<void>((resolve, reject) => {
        const onMessage = (m: Reply) => {
          if (m.id !== job.id) return;
          cleanup();
          if (m.ok) resolve(); else reject(new Error(`flow worker: ${m.error}`));
        };
        const onError = (e: Error) => { cleanup(); reject(e); };
        const cleanup = () => { w.off("message", onMessage); w.off("error", onError); };
        w.on("message", onMessage);
        w.on("error", onError);
        w.postMessage(job);
      })));
    } finally {
      this.busy = false;
      if (timer !== null) clearInterval(timer);
    }
    return new Float64Array(out).slice(0, rows.length * T);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export interface ParallelOptions {
  /** Number of worker threads (default: available parallelism); ignored when `pool` is given. */
  workers?: number;
  /** An existing pool to run on (not closed afterwards). */
  pool?: FlowWorkerPool;
  /** Max-flow strategy (default "auto"). */
  strategy?: MaxFlowStrategy;
}

async function withPool<R>(opts: ParallelOptions, f: (p: FlowWorkerPool) => Promise<R>): Promise<R> {
  if (opts.pool) return f(opts.pool);
  const pool = new FlowWorkerPool(opts.workers ?? defaultFlowWorkers());
  try { return await f(pool); } finally { await pool.close(); }
}

/** attentionFlow (flow from some output tokens of one layer to all inputs) computed on worker threads. */
export async function attentionFlowParallel(att: AttentionStack, opts: FlowOptions & ParallelOptions = {}): Promise<FlowResult> {
  const res = prepareLayers(att, opts);
  const T = res.tokens;
  const layer = resolveLayer(res.layers, opts.layer, "attentionFlowParallel");
  const fromTokens = resolveFromTokens(T, opts.fromTokens, "attentionFlowParallel");
  const raw = await withPool(opts, (p) => p.flowRows(res, fromTokens.map((a) => [layer, a] as const), opts.strategy));
  return { flows: normaliseRows(raw, T), raw, fromTokens, layer, tokens: T, shape: [fromTokens.length, T] };
}

/** flowPerLayer on worker threads: (L, T, T) normalised flow blocks of every layer. */
export async function flowPerLayerParallel(att: AttentionStack, opts: PrepareOptions & ParallelOptions = {}): Promise<MatrixStack> {
  const res = prepareLayers(att, opts);
  const L = res.layers, T = res.tokens;
  const rows: Array<readonly [number, number]> = [];
  // the deepest rows cost the most: hand them out first so the workers finish together
  for (let l = L; l >= 1; l--) for (let a = 0; a < T; a++) rows.push([l, a]);
  const raw = await withPool(opts, (p) => p.flowRows(res, rows, opts.strategy));
  const out = matrixStack(L, T);
  rows.forEach(([l, a], r) => normaliseRows(raw.subarray(r * T, (r + 1) * T), T, out.data.subarray(((l - 1) * T + a) * T, ((l - 1) * T + a + 1) * T)));
  return out;
}

/** attentionFlowMatrix on worker threads: the reference ((L+1)T)^2 layout. */
export async function attentionFlowMatrixParallel(att: AttentionStack, opts: PrepareOptions & ParallelOptions = {}): Promise<FlowMatrix> {
  return blocksToFlowMatrix(await flowPerLayerParallel(att, opts));
}
