// jax-js peer, run as a child process: Node 20 needs --harmony-iterator-helpers for jax-js, so
// the harness starts `node --harmony-iterator-helpers dist/bench/peers/jax-child.js` and talks
// JSON lines (see lib/child-peer.ts). Wasm device, jit-compiled functions.
// jax-js arrays are reference counted: every function argument consumes one reference, so an
// array used again later is passed as `a.ref`.
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { serveRequests } from "../lib/child-serve.js";
import { measure, type MeasurePolicy } from "../lib/measure.js";
import { resolvePeer } from "../lib/peer-modules.js";
import { readF32File } from "../lib/tensor-files.js";

// The slice of jax-js used here; arrays are opaque, reference-counted handles.
interface JArray {
  readonly ref: JArray;
  reshape(shape: number[]): JArray;
  add(b: JArray): JArray;
  mul(b: JArray): JArray;
  sum(): JArray;
  data(): Promise<Float32Array>;
  dispose(): void;
}
type JFn = (...args: JArray[]) => JArray;
interface Jax {
  init(...devices: string[]): Promise<string[]>;
  defaultDevice(d: string): void;
  jit(f: JFn): JFn;
  grad(f: JFn, opts: { argnums: number[] }): (...args: JArray[]) => JArray[];
  numpy: { array(a: Float32Array): JArray; matmul(a: JArray, b: JArray): JArray };
  nn: { dotProductAttention(q: JArray, k: JArray, v: JArray, opts?: { isCausal?: boolean }): JArray };
}

interface Request {
  id: number;
  op: "version" | "mha" | "sdpa" | "train";
  shape: Record<string, number>;
  causal?: boolean;
  files: Record<string, string>;
  out?: string;
  policy: MeasurePolicy;
}

async function loadJax(): Promise<Jax> {
  const main = resolvePeer("@jax-js/jax"); // the CommonJS entry; prefer the ESM build beside it
  const esm = join(dirname(main), "index.js");
  return (await import(pathToFileURL(existsSync(esm) ? esm : main).href)) as Jax;
}

/** MHA forward on BSNH-native layout: x (B, T, D); w*ᵀ are (D, D) so y = x @ wᵀ + b. */
function mhaFn(jax: Jax, B: number, T: number, D: number, H: number): JFn {
  const np = jax.numpy, d = D / H;
  return (x, wq, wk, wv, bq, bk, bv, wo, bo) => {
    const q = np.matmul(x.ref, wq).add(bq).reshape([B, T, H, d]); // (B, T, H, d)
    const k = np.matmul(x.ref, wk).add(bk).reshape([B, T, H, d]);
    const v = np.matmul(x, wv).add(bv).reshape([B, T, H, d]);
    const o = jax.nn.dotProductAttention(q, k, v).reshape([B, T, D]); // (B, T, D)
    return np.matmul(o, wo).add(bo);
  };
}

async function handle(jax: Jax, req: Request): Promise<Record<string, unknown>> {
  if (req.op === "version") return { ok: true };
  const np = jax.numpy;
  const arr = (name: string, shape: number[]) => np.array(readF32File(req.files[name])).reshape(shape);
  const s = req.shape;
  let step: () => Promise<Float32Array | Float32Array[]>;
  const held: JArray[] = [];
  if (req.op === "sdpa") {
    const dims = [s.B, s.T, s.H, s.d]; // the parent converted (B, H, T, d) → (B, T, H, d)
    const [q, k, v] = ["q", "k", "v"].map((n) => arr(n, dims));
    held.push(q, k, v);
    const f = jax.jit((q, k, v) => jax.nn.dotProductAttention(q, k, v, { isCausal: !!req.causal }));
    step = () => f(q.ref, k.ref, v.ref).data();
  } else {
    const { B, T, D, H } = s;
    const x = arr("x", [B, T, D]);
    const p = ["wq", "wk", "wv", "bq", "bk", "bv", "wo", "bo"].map((n) => arr(n, n[0] === "w" ? [D, D] : [D]));
    held.push(x, ...p);
    if (req.op === "mha") {
      const f = jax.jit(mhaFn(jax, B, T, D, H));
      step = () => f(x.ref, ...p.map((a) => a.ref)).data();
    } else {
      const g = arr("g", [B, T, D]);
      held.push(g);
      const fwd = mhaFn(jax, B, T, D, H);
      // loss = sum(out · g) as a function of the 8 parameters (then x, g as constants)
      const loss: JFn = (wq, wk, wv, bq, bk, bv, wo, bo, xx, gg) => fwd(xx, wq, wk, wv, bq, bk, bv, wo, bo).mul(gg).sum();
      const dloss = jax.jit(jax.grad(loss, { argnums: [0, 1, 2, 3, 4, 5, 6, 7] }) as unknown as JFn) as unknown as (...a: JArray[]) => JArray[];
      step = async () => {
        const grads = dloss(...p.map((a) => a.ref), x.ref, g.ref);
        const data = await Promise.all(grads.slice(0, 3).map((a) => a.data())); // dWqᵀ, dWkᵀ, dWvᵀ
        for (const a of grads.slice(3)) a.dispose();
        return data;
      };
    }
  }
  try {
    const m = await measure(step, req.policy);
    if (req.out) {
      const parts = Array.isArray(m.last) ? m.last : [m.last];
      writeFileSync(req.out, Buffer.concat(parts.map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength))));
    }
    return { ok: true, timesMs: m.timesMs, note: m.note };
  } finally {
    for (const a of held) a.dispose();
  }
}

async function main(): Promise<void> {
  const jax = await loadJax();
  await jax.init("wasm");
  jax.defaultDevice("wasm");
  serveRequests((req: Request) => handle(jax, req));
}

main().catch((e) => { console.error(e); process.exit(1); });
