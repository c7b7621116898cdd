// Counter-based dropout mask for attention: keep(seed, b, h, i, j) is a pure function, so the backward pass (and
// every backend) regenerates exactly the forward mask without storing it.
// hash = lowbias32 mixing of the seed and the four coordinates; keep iff its top 24 bits / 2^24 ≥ p.

function mix(x: number): number {
  x ^= x >>> 16; x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15; x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

export function dropoutHash(seed: number, b: number, h: number, i: number, j: number): number {
  let x = mix((seed ^ 0x9e3779b9) >>> 0);
  x = mix((x ^ b) >>> 0);
  x = mix((x ^ h) >>> 0);
  x = mix((x ^ i) >>> 0);
  x = mix((x ^ j) >>> 0);
  return x;
}

export function dropoutKeep(seed: number, b: number, h: number, i: number, j: number, p: number): boolean {
  return (dropoutHash(seed, b, h, i, j) >>> 8) / 16777216 >= p;
}
