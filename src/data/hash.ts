// Stable hashing and a tiny seeded PRNG for data plumbing (splits, generators).
// Everything here is pure integer arithmetic on 32-bit words, so results are identical on every
// machine, engine and Node version. Browser-safe (TextEncoder is a web standard).

const encoder = new TextEncoder();

/** FNV-1a (32-bit) over the UTF-8 bytes of `text`, finished with murmur3's fmix32 avalanche. */
export function stableHash32(text: string): number {
  const bytes = encoder.encode(text);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  // fmix32: FNV's low bits are weak for short inputs; this spreads every input bit over all output bits.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Split bucket in [0, 100): `stableHash32(text) % 100`. An item is held out iff bucket < 100 * fraction. */
export function hashBucket100(text: string): number {
  return stableHash32(text) % 100;
}

/** True when `text` belongs to the held-out part of a hash split with the given fraction (0..1). */
export function isHeldOut(text: string, fraction: number): boolean {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`held-out fraction must be in [0, 1], got ${fraction}`);
  return hashBucket100(text) < Math.round(fraction * 100);
}

/** mulberry32: a small, fast, seedable 32-bit PRNG. Deterministic for a given seed. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
    this.state = (Math.trunc(seed) ^ 0x6d2b79f5) >>> 0;
  }
  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1) || !Number.isInteger(n)) throw new RangeError(`Rng.int needs a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }
  /** Uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Rng.pick on an empty array");
    return items[this.int(items.length)];
  }
  /** In-place Fisher–Yates shuffle; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }
}
