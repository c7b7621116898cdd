// Timing policy shared by in-process peers and the jax-js child (PyTorch mirrors it in Python):
// warm up, then take up to `repeats` samples while the sampling time stays under `budgetMs`.
// A call slower than `slowMs` is sampled once and that first call is the only sample.

export interface MeasurePolicy {
  warmup: number;   // warm-up calls (≥ 1; the first call also sizes the repeat count)
  repeats: number;  // maximum samples
  budgetMs: number; // soft cap on time spent sampling one implementation
  slowMs: number;   // above this, one call is the whole measurement
  warmMs: number;   // keep warming up until this much time is spent (JIT tiering, GC and allocator steady state)
}

export interface Measurement<T> {
  timesMs: number[];
  last: T;
  note?: string;
}

const WARM_MAX_CALLS = 1000;

export function defaultPolicy(quick: boolean, repeats?: number): MeasurePolicy {
  return quick
    ? { warmup: 1, repeats: repeats ?? 3, budgetMs: 4000, slowMs: 4000, warmMs: 100 }
    : { warmup: 2, repeats: repeats ?? 20, budgetMs: 20000, slowMs: 10000, warmMs: 1000 };
}

export async function measure<T>(fn: () => T | Promise<T>, p: MeasurePolicy): Promise<Measurement<T>> {
  let t0 = performance.now();
  let last = await fn();
  let first = performance.now() - t0;
  if (first >= p.slowMs) return { timesMs: [first], last, note: "slow: 1 run" };
  // `warmup` calls, and for fast calls more of them until `warmMs` are spent (≈ 1 s in full runs): the JIT needs
  // many calls of a fast function before its optimised code runs, and the first garbage collections with large
  // buffers alive change the allocator's state; samples taken earlier measure those transients, not the library
  let spent = first;
  for (let i = 1; (i < p.warmup && first * (i + 1) < p.budgetMs) || (spent < p.warmMs && i < WARM_MAX_CALLS); i++) {
    t0 = performance.now();
    last = await fn();
    first = performance.now() - t0; // later warm-ups are closer to steady state
    spent += first;
  }
  const n = Math.max(1, Math.min(p.repeats, Math.floor(p.budgetMs / Math.max(first, 1e-3))));
  const timesMs: number[] = [];
  for (let i = 0; i < n; i++) {
    t0 = performance.now();
    last = await fn();
    timesMs.push(performance.now() - t0);
  }
  return { timesMs, last, note: n < p.repeats ? `${n} run${n > 1 ? "s" : ""} (time budget)` : undefined };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
