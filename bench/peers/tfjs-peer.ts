// TensorFlow.js peer: tfjs-core with the Wasm backend (single-threaded in Node: its thread
// workers need blob: URLs that worker_threads rejects) and the plain-JS CPU backend.
// Attention is composed from matMul / softmax / transpose (tfjs has no fused attention op).
import { measure } from "../lib/measure.js";
import { errorText, type PeerContext, type PeerRun } from "../lib/peer-types.js";
import { peerVersion, requirePeer } from "../lib/peer-modules.js";
import type { MhaWeights, Task } from "../lib/tasks.js";
import { causalMask } from "./onnx-models.js";

// The slice of the tfjs-core API used here; tensors are opaque handles.
interface TfTensor { data(): Promise<Float32Array | Int32Array | Uint8Array>; dispose(): void }
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  tensor(values: Float32Array, shape: number[]): TfTensor;
  scalar(v: number): TfTensor;
  reshape(a: TfTensor, shape: number[]): TfTensor;
  tidy<T>(fn: () => T): T;
  matMul(a: TfTensor, b: TfTensor, transposeA?: boolean, transposeB?: boolean): TfTensor;
  add(a: TfTensor, b: TfTensor): TfTensor;
  mul(a: TfTensor, b: TfTensor): TfTensor;
  sum(a: TfTensor): TfTensor;
  softmax(a: TfTensor): TfTensor;
  transpose(a: TfTensor, perm: number[]): TfTensor;
  split(a: TfTensor, n: number, axis: number): TfTensor[];
  grads(f: (...args: TfTensor[]) => TfTensor): (args: TfTensor[]) => TfTensor[];
}

export const TFJS_BACKENDS = ["wasm", "cpu"] as const;

export function tfjsVersion(): string | null { return peerVersion("@tensorflow/tfjs-core"); }

let tfCache: Tf | null = null;
function loadTf(): Tf {
  if (!tfCache) {
    const tf = requirePeer<Tf>("@tensorflow/tfjs-core");
    // tfjs-core's Node bundle registers no gradients; the union package's bundle registers them
    // all (in tfjs's global registry), which tf.grads in the training step needs
    requirePeer("@tensorflow/tfjs");
    requirePeer("@tensorflow/tfjs-backend-cpu");
    requirePeer("@tensorflow/tfjs-backend-wasm");
    tfCache = tf;
  }
  return tfCache;
}

/** Silence tfjs's "install tfjs-node" banner while `fn` runs (the banner is not an error). */
function quietly<T>(fn: () => T): T {
  const warn = console.warn;
  console.warn = () => {};
  try { return fn(); } finally { console.warn = warn; }
}

interface TfWeights { wIn: TfTensor; bIn: TfTensor; wOut: TfTensor; bOut: TfTensor }

/** MHA forward: x (B, T, D) → (B, T, D), weights in PyTorch layout (y = x·Wᵀ + b). */
function mhaForward(tf: Tf, x: TfTensor, p: TfWeights, B: number, T: number, D: number, H: number): TfTensor {
  const d = D / H;
  const qkv = tf.add(tf.matMul(tf.reshape(x, [B * T, D]), p.wIn, false, true), p.bIn); // (B·T, 3D)
  const [q, k, v] = tf.split(qkv, 3, 1).map((t) => tf.transpose(tf.reshape(t, [B, T, H, d]), [0, 2, 1, 3])); // (B, H, T, d)
  const s = tf.mul(tf.matMul(q, k, false, true), tf.scalar(1 / Math.sqrt(d))); // (B, H, T, T)
  const o = tf.matMul(tf.softmax(s), v); // (B, H, T, d)
  const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B * T, D]);
  return tf.reshape(tf.add(tf.matMul(merged, p.wOut, false, true), p.bOut), [B, T, D]);
}

async function runOne(tf: Tf, backend: string, task: Task, ctx: PeerContext): Promise<PeerRun> {
  const impl = `tfjs-${backend}`;
  const skip = ctx.skipReason(impl);
  if (skip) return { impl, note: skip };
  if (!(await tf.setBackend(backend))) return { impl, note: `tfjs backend ${backend} failed to initialise` };
  await tf.ready();
  const held: TfTensor[] = [];
  const t = (a: Float32Array, shape: number[]) => { const x = tf.tensor(a, shape); held.push(x); return x; };
  const weights = (w: MhaWeights, D: number): TfWeights => ({
    wIn: t(w.inProjWeight, [3 * D, D]), bIn: t(w.inProjBias, [3 * D]),
    wOut: t(w.outProjWeight, [D, D]), bOut: t(w.outProjBias, [D]),
  });
  try {
    let step: () => Promise<Float32Array>;
    if (task.kind === "mha") {
      const { B, T, D, H } = task;
      const x = quietly(() => t(task.x, [B, T, D]));
      const p = weights(task.w, D);
      step = () => readAndDispose(tf.tidy(() => mhaForward(tf, x, p, B, T, D, H)));
    } else if (task.kind === "sdpa") {
      const { B, H, T, d, causal } = task;
      const [q, k, v] = quietly(() => [task.q, task.k, task.v].map((a) => t(a, [B, H, T, d])));
      const mask = causal ? t(causalMask(T), [T, T]) : null;
      const scale = t(Float32Array.of(1 / Math.sqrt(d)), []);
      step = () => readAndDispose(tf.tidy(() => {
        let s = tf.mul(tf.matMul(q, k, false, true), scale); // (B, H, T, T)
        if (mask) s = tf.add(s, mask);
        return tf.matMul(tf.softmax(s), v);
      }));
    } else {
      const { B, T, D, H } = task;
      const x = quietly(() => t(task.x, [B, T, D]));
      const g = t(task.g, [B, T, D]);
      const p = weights(task.w, D);
      // loss = sum(out · g); gradients w.r.t. the four parameters; report d/d in_proj_weight
      const gradFn = tf.grads((wIn, bIn, wOut, bOut) => tf.sum(tf.mul(mhaForward(tf, x, { wIn, bIn, wOut, bOut }, B, T, D, H), g)));
      step = async () => {
        const gs = tf.tidy(() => gradFn([p.wIn, p.bIn, p.wOut, p.bOut]));
        const out = (await gs[0].data()) as Float32Array;
        for (const x of gs) x.dispose();
        return out;
      };
    }
    const m = await measure(step, ctx.policy);
    return { impl, timesMs: m.timesMs, output: m.last, note: m.note };
  } catch (e) {
    return { impl, note: `failed: ${errorText(e)}` };
  } finally {
    for (const x of held) x.dispose();
  }
}

async function readAndDispose(t: TfTensor): Promise<Float32Array> {
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}

export async function runTfjs(task: Task, ctx: PeerContext): Promise<PeerRun[]> {
  let tf: Tf;
  try {
    tf = loadTf();
  } catch (e) {
    return TFJS_BACKENDS.map((b) => ({ impl: `tfjs-${b}`, note: `tfjs unavailable: ${errorText(e)}` }));
  }
  const out: PeerRun[] = [];
  for (const b of TFJS_BACKENDS) out.push(await runOne(tf, b, task, ctx));
  return out;
}
