// Timing policy shared by in-process peers and the jax-js child (PyTorch mirrors it in Python):
// warm up, then take up to `repeats` samples while the sampling time stays under `budgetMs`.
// A call slower than `slowMs` is sampled once and that first call is the only sample.
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";

export interface MeasurePolicy {
  warmup: number;   // warm-up calls (≥ 1; the first call also sizes the repeat count)
  repeats: number;  // maximum samples
  budgetMs: number; // soft cap on time spent sampling one implementation
  slowMs: number;   // above this, one call is the whole measurement
  warmMs: number;   // keep warming up until this much time is spent (JIT tiering, GC and allocator steady state)
  settleMs?: number; // before warming up, wait up to this long for the machine to go idle (see settle())
}

export interface Measurement<T> {
  timesMs: number[];
  last: T;
  note?: string;
}

const WARM_MAX_CALLS = 1000;

/**
 * Where measure() and settle() get the time, sleep and the CPU counters from: the real ones, or a test's fake, so
 * the policy's logic is tested without depending on how fast a (possibly busy) machine runs.
 */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
  cpuJiffies(): Promise<{ busy: number; total: number } | null>;
}

export function defaultPolicy(quick: boolean, repeats?: number): MeasurePolicy {
  return quick
    ? { warmup: 1, repeats: repeats ?? 3, budgetMs: 4000, slowMs: 4000, warmMs: 100 }
    : { warmup: 2, repeats: repeats ?? 20, budgetMs: 20000, slowMs: 10000, warmMs: 1000, settleMs: 5000 };
}

/** Busy and total jiffies of all CPUs from /proc/stat (Linux), or null where it cannot be read. */
async function cpuJiffies(): Promise<{ busy: number; total: number } | null> {
  try {
    const f = (await readFile("/proc/stat", "utf8")).split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - f[3] - (f[4] ?? 0), total };
  } catch {
    return null;
  }
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  cpuJiffies,
};

/**
 * Wait (up to maxMs) until the whole machine has been idle for one 100 ms window — under 0.15 of a core busy.
 * Peers leave work behind them: thread pools that spin after a call (OpenMP, onnxruntime), child processes
 * finishing, garbage collection of the previous implementation's buffers. On a 2-core machine that work would be
 * charged to whichever implementation is measured next. Returns how long it waited.
 */
export async function settle(maxMs: number, clock: Clock = realClock, cores = availableParallelism()): Promise<number> {
  if (!(maxMs > 0)) return 0;
  const t0 = clock.now();
  let a = await clock.cpuJiffies();
  if (!a) return 0;
  while (clock.now() - t0 < maxMs) {
    await clock.sleep(100);
    const b = await clock.cpuJiffies();
    if (!b) return 0;
    const dt = b.total - a.total;
    if (dt > 0 && ((b.busy - a.busy) / dt) * cores < 0.15) break;
    a = b;
  }
  return clock.now() - t0;
}

export async function measure<T>(fn: () => T | Promise<T>, p: MeasurePolicy, clock: Clock = realClock): Promise<Measurement<T>> {
  if (p.settleMs) await settle(p.settleMs, clock);
  let t0 = clock.now();
  let last = await fn();
  let first = clock.now() - t0;
  if (first >= p.slowMs) return { timesMs: [first], last, note: "slow: 1 run" };
  // `warmup` calls, and for fast calls more of them until `warmMs` are spent (≈ 1 s in full runs): the JIT needs
  // many calls of a fast function before its optimised code runs, and the first garbage collections with large
  // buffers alive change the allocator's state; samples taken earlier measure those transients, not the library
  let spent = first;
  for (let i = 1; (i < p.warmup && first * (i + 1) < p.budgetMs) || (spent < p.warmMs && i < WARM_MAX_CALLS); i++) {
    t0 = clock.now();
    last = await fn();
    first = clock.now() - t0; // later warm-ups are closer to steady state
    spent += first;
  }
  const n = Math.max(1, Math.min(p.repeats, Math.floor(p.budgetMs / Math.max(first, 1e-3))));
  const timesMs: number[] = [];
  for (let i = 0; i < n; i++) {
    t0 = clock.now();
    last = await fn();
    timesMs.push(clock.now() - t0);
  }
  return { timesMs, last, note: n < p.repeats ? `${n} run${n > 1 ? "s" : ""} (time budget)` : undefined };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
