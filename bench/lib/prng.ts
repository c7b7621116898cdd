// Seeded inputs shared by every implementation: the harness generates Float32Arrays once and
// hands the same bytes to attnflow, onnxruntime, tfjs, jax-js and PyTorch.

/** mulberry32: a tiny 32-bit PRNG; returns uniform floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a hash of a string: turns "case:tensor" labels into seeds. */
export function hashSeed(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** n samples of N(0, std²) from a seeded Box–Muller transform. */
export function randnArray(n: number, seed: number | string, std = 1): Float32Array {
  const rand = mulberry32(typeof seed === "string" ? hashSeed(seed) : seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = rand() || 1e-12;
    const u2 = rand();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
