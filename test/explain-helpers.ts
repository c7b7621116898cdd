// Test-side helpers for the explain tests: fixture loading, closeness checks, seeded random attention and an
// independent (deliberately naive) Edmonds–Karp max-flow on an explicit dense capacity matrix.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { parseSafetensors, toFloat32 } from "../src/io/safetensors.js";
import type { AttentionStack } from "../src/explain/attention-stack.js";
import type { ViewGroup } from "../src/explain/views.js";
import { mulberry32 } from "../bench/lib/prng.js";

// compiled to dist/test/ (or a private outDir/test/); the fixtures stay in the source tree's test/fixtures
function fixtureDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "fixtures", "attention_flow"), join(here, "..", "..", "test", "fixtures", "attention_flow"),
    join(process.cwd(), "test", "fixtures", "attention_flow")];
  for (const c of candidates) {
    try { readFileSync(join(c, "small.safetensors")); return c; } catch { /* next */ }
  }
  throw new Error(`attention_flow fixtures not found (looked in ${candidates.join(", ")})`);
}

export interface FlowFixture {
  name: string;
  L: number; H: number; T: number;
  att: AttentionStack;
  t: (name: string) => { data: Float32Array; shape: number[] };
}

export function loadFlowFixture(name: "small" | "medium" | "larger"): FlowFixture {
  const bytes = new Uint8Array(readFileSync(join(fixtureDir(), `${name}.safetensors`)));
  const { tensors, metadata } = parseSafetensors(bytes);
  const cfg = JSON.parse(metadata.config) as { L: number; H: number; T: number };
  const get = (n: string) => {
    const st = tensors.get(n);
    if (st === undefined) throw new Error(`fixture ${name}: no tensor ${n}`);
    return { data: toFloat32(st, n), shape: st.shape };
  };
  const a = get("input.attentions");
  assert.deepEqual(a.shape, [cfg.L, cfg.H, cfg.T, cfg.T]);
  return { name, L: cfg.L, H: cfg.H, T: cfg.T, att: { data: a.data, layers: cfg.L, heads: cfg.H, tokens: cfg.T }, t: get };
}

/** |a - e| <= atol + rtol*|e| element-wise, with a message naming the first offending index. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, atol = 1e-5, rtol = 1e-5): number {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs expected ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= atol + rtol * Math.abs(expected[i]))) assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (|diff| ${d})`);
    if (d > worst) worst = d;
  }
  return worst;
}

/** mulberry32: tiny seeded uniform generator for tests (the bench's own). */
export const rng = mulberry32;

/** Random softmax attention (L, H, T, T) with N(0, scale^2)-ish logits (sum of uniforms). */
export function randomAttention(L: number, H: number, T: number, seed: number, scale = 1.5): AttentionStack {
  const r = rng(seed);
  const data = new Float64Array(L * H * T * T);
  for (let row = 0; row < L * H * T; row++) {
    let s = 0;
    for (let j = 0; j < T; j++) {
      const z = (r() + r() + r() + r() - 2) * Math.sqrt(3) * scale;
      const e = Math.exp(z);
      data[row * T + j] = e; s += e;
    }
    for (let j = 0; j < T; j++) data[row * T + j] /= s;
  }
  return { data, layers: L, heads: H, tokens: T };
}

/**
 * Plain Edmonds–Karp on a dense n x n capacity matrix (BFS shortest augmenting paths). Independent of the
 * library's solver; O(V E^2), only for tiny graphs.
 */
export function edmondsKarp(cap: Float64Array, n: number, s: number, t: number): number {
  const res = Float64Array.from(cap);
  const prev = new Int32Array(n);
  let flow = 0;
  for (;;) {
    prev.fill(-1);
    prev[s] = s;
    const q = [s];
    for (let h = 0; h < q.length && prev[t] < 0; h++) {
      const u = q[h];
      for (let v = 0; v < n; v++) if (prev[v] < 0 && res[u * n + v] > 1e-15) { prev[v] = u; q.push(v); }
    }
    if (prev[t] < 0) return flow;
    let d = Infinity;
    for (let v = t; v !== s; v = prev[v]) d = Math.min(d, res[prev[v] * n + v]);
    for (let v = t; v !== s; v = prev[v]) { res[prev[v] * n + v] -= d; res[v * n + prev[v]] += d; }
    flow += d;
  }
}

/** Explicit adjacency ((L+1)T)^2 of the layered graph from per-layer capacities (L, T, T). */
export function layeredAdjacency(res: Float64Array, L: number, T: number): Float64Array {
  const N = (L + 1) * T;
  const adj = new Float64Array(N * N);
  for (let l = 1; l <= L; l++) for (let a = 0; a < T; a++) for (let b = 0; b < T; b++) {
    adj[(l * T + a) * N + (l - 1) * T + b] = res[((l - 1) * T + a) * T + b];
  }
  return adj;
}

/** Largest |softmax(scale·q·k) − recorded top-k attention| over a view group that carries q/k vectors
 *  (the neuron view's data): recomputes every row's softmax from q and k and compares the stored top-k values. */
export function qkSoftmaxError(g: ViewGroup): number {
  const D = g.qk!.dim, Tq = g.rowTokens.length, Tk = g.colTokens.length, H = g.heads;
  const f32 = (s: string) => new Float32Array(new Uint8Array(Buffer.from(s, "base64")).buffer);
  const u16 = (s: string) => new Uint16Array(new Uint8Array(Buffer.from(s, "base64")).buffer);
  const q = f32(g.qk!.q), k = f32(g.qk!.k), idx = u16(g.topIdx), val = u16(g.topVal);
  let worst = 0;
  for (let l = 0; l < g.layers; l++) for (let h = 0; h < H; h++) for (let i = 0; i < Tq; i++) {
    const s = Array.from({ length: Tk }, (_, j) => {
      if (g.causal && j > i) return -Infinity;
      let d = 0; for (let c = 0; c < D; c++) d += q[((l * H + h) * Tq + i) * D + c] * k[((l * H + h) * Tk + j) * D + c];
      return d * g.qk!.scale;
    });
    const m = Math.max(...s), z = s.reduce((a, x) => a + Math.exp(x - m), 0);
    for (let t = 0; t < g.k; t++) {
      const o = ((l * H + h) * Tq + i) * g.k + t;
      worst = Math.max(worst, Math.abs(Math.exp(s[idx[o]] - m) / z - val[o] / 65535));
    }
  }
  return worst;
}
