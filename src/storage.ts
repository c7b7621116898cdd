// Tensor storage and the buffer pool. Fresh memory is expensive to touch (page faults), so buffers whose tensor is
// disposed (dispose(), tidy(), or internal temporaries the library frees itself) go back to a pool and are reused.
// A storage whose buffer went back to the pool is detached: any later access throws instead of reading reused memory.
//
// A tensor that is simply dropped is freed by the JavaScript engine: its buffer is collected with it. It is not
// recycled through a FinalizationRegistry. A registry must hold the buffer strongly until its cleanup callback runs,
// and callbacks run only as separate tasks — never inside a synchronous loop — so a training loop without tidy()
// kept every buffer it had made (~95 KB per step of the README's quick start as a training loop: +968 MB RSS over
// 10,000 steps; test/memory-soak.test.ts). Left to the engine, a garbage buffer is freed at a collection (young
// tensors at the next scavenge; external memory pressure forces full ones): +16 MB at most over those 10,000 steps,
// in Node and Chromium (bench/RESULTS.md, soak).
import { arrayFor, type AnyTypedArray, type DType } from "./dtype.js";
import type { Device, DeviceHandle, DeviceName } from "./device.js";

const MIN_POOLED_ELEMENTS = 1024; // tiny arrays are cheaper to allocate than to track

/**
 * Disposed buffers kept for reuse, by dtype and exact length. Bounded by `maxBytes`: when a buffer would pass it,
 * the least recently used lengths are dropped first (left to the garbage collector), so a loop whose shapes change
 * keeps its current shapes' buffers rather than stale ones.
 */
class BufferPool {
  /** Free buffers per length, with the time of that length's last use (a counter: take/give allocate nothing). */
  private free = new Map<string, { list: AnyTypedArray[]; lastUse: number }>();
  private clock = 0;
  /** Most bytes kept (default 512 MiB); lowering it takes effect at the next buffer given back. */
  maxBytes = 512 * 1024 * 1024;
  bytes = 0;
  hits = 0;
  misses = 0;
  evicted = 0;

  take(dtype: DType, length: number): AnyTypedArray {
    if (length >= MIN_POOLED_ELEMENTS) {
      const slot = this.free.get(key(dtype, length));
      const a = slot?.list.pop();
      if (a) { slot!.lastUse = ++this.clock; this.bytes -= a.byteLength; this.hits++; return a; }
      this.misses++;
    }
    return arrayFor(dtype, length);
  }

  give(a: AnyTypedArray): void {
    if (a.length < MIN_POOLED_ELEMENTS || a.byteLength > this.maxBytes) return;
    const k = key(kindOf(a), a.length);
    let slot = this.free.get(k);
    if (!slot) this.free.set(k, (slot = { list: [], lastUse: 0 }));
    slot.lastUse = ++this.clock;
    slot.list.push(a);
    this.bytes += a.byteLength;
    if (this.bytes > this.maxBytes) this.evict();
  }

  /** Drop buffers, least recently used lengths first, until the pool is within maxBytes (the oldest buffers of a
   *  length go first, so the one just given back stays). */
  private evict(): void {
    const byAge = [...this.free].sort((x, y) => x[1].lastUse - y[1].lastUse);
    for (const [k, slot] of byAge) {
      while (slot.list.length && this.bytes > this.maxBytes) { this.bytes -= slot.list.shift()!.byteLength; this.evicted++; }
      if (!slot.list.length) this.free.delete(k);
      if (this.bytes <= this.maxBytes) return;
    }
  }

  clear(): void { this.free.clear(); this.bytes = 0; }
}

function key(dtype: DType, length: number): string { return dtype + ":" + length; }
function kindOf(a: AnyTypedArray): DType { return a instanceof Float32Array ? "float32" : a instanceof Int32Array ? "int32" : "bool"; }

export const pool = new BufferPool();

let nextStorageId = 1;

const deviceFinalizer = new FinalizationRegistry<{ dev: Device; handle: DeviceHandle }>(({ dev, handle }) => dev.free(handle));

export class Storage {
  private buf: AnyTypedArray | null;
  private readonly pooled: boolean;
  /** Unique for the life of the process (never reused, even when the buffer is recycled into another storage). */
  readonly id = nextStorageId++;
  private writes = 0;
  /** Tensors (views included) that still use this storage; explicit disposal frees at 0. */
  users = 0;
  readonly dtype: DType;
  readonly length: number;

  /** Where the memory lives: "cpu" (a typed array) or a device such as "webgpu" (a device buffer, `handle`). */
  readonly device: DeviceName = "cpu";
  /** The device buffer of a device storage (null on the CPU, and once released). */
  handle: DeviceHandle | null = null;
  private dev: Device | null = null;

  constructor(buf: AnyTypedArray, pooled: boolean);
  constructor(buf: null, pooled: boolean, dtype: DType, length: number, dev: Device);
  constructor(buf: AnyTypedArray | null, pooled: boolean, dtype?: DType, length?: number, dev?: Device) {
    this.buf = buf;
    this.pooled = pooled;
    if (buf) { this.dtype = kindOf(buf); this.length = buf.length; return; }
    this.dtype = dtype!;
    this.length = length!;
    this.dev = dev!;
    this.device = dev!.name;
    this.handle = dev!.alloc(dtype!, length!);
    // a device buffer is not JavaScript memory: when the storage is collected undisposed, its buffer goes back to the
    // device pool (the registry holds only the small handle object, never a typed array)
    deviceFinalizer.register(this, { dev: dev!, handle: this.handle }, this);
  }

  /** A storage on `dev` (uninitialised: the caller writes all of it). */
  static onDevice(dev: Device, dtype: DType, length: number): Storage { return new Storage(null, true, dtype, length, dev); }

  /** The device of a device storage (throws on a CPU storage). */
  get deviceImpl(): Device {
    if (!this.dev) throw new Error("Storage.deviceImpl: a CPU storage has no device");
    return this.dev;
  }

  static alloc(dtype: DType, length: number, zero = true): Storage {
    const a = pool.take(dtype, length);
    if (zero) a.fill(0);
    return new Storage(a, true);
  }

  /**
   * The buffer, for reading or writing. Every access counts as a possible write (see `version`): code that hands
   * out or writes the buffer must get it here, at the time of the write (or call `markModified()` after writing
   * through an array it kept).
   */
  get data(): AnyTypedArray {
    if (!this.buf) throw this.noBuffer();
    this.writes++;
    return this.buf;
  }

  /**
   * The buffer for reading only: does not change `version`. The caller must not write through it, nor keep it
   * past the current operation.
   */
  dataForRead(): AnyTypedArray {
    if (!this.buf) throw this.noBuffer();
    return this.buf;
  }

  /**
   * Changes whenever the contents may have changed: each `data` access counts as one (optimizer steps, init
   * functions, loadStateDict, in-place ops and direct writes all go through it). Together with `id` it keys the
   * backends' caches of derived data (e.g. a weight pre-packed for the GEMM kernel): same id and version ⇒ same
   * contents.
   */
  get version(): number { return this.writes; }

  /**
   * Declares that the contents changed. Needed only by code that keeps the array from `data` and writes through it
   * later, after other operations ran (a write made right after reading `data` is already counted): without it a
   * backend cache keyed on `version` — the native packed-weight cache — could keep serving the old values.
   */
  markModified(): void { this.writes++; }

  private noBuffer(): Error {
    if (this.handle) {
      return new Error(`not yet supported on ${this.device}, or a synchronous read of a ${this.device} tensor (in ${callers()}): ` +
        `read it with await t.data() or await t.array(), or bring it back with await t.cpu() (docs/webgpu.md lists the ops ${this.device} runs)`);
    }
    return new Error("tensor was disposed: its memory has been released (dispose()/tidy() ended its lifetime)");
  }

  get disposed(): boolean { return this.buf === null && this.handle === null; }

  /** Give the buffer back to the pool now. */
  release(): void {
    if (this.handle) { deviceFinalizer.unregister(this); this.dev!.free(this.handle); this.handle = null; return; }
    if (!this.buf) return;
    // only pool-owned buffers may be recycled: user-provided arrays might still be referenced by the user
    if (this.pooled) pool.give(this.buf);
    this.buf = null;
  }
}

/** The op that asked for a device tensor's data: the first few stack frames outside the storage and data helpers. */
function callers(): string {
  const frames = (new Error().stack ?? "").split("\n").slice(1).map((l) => /at (?:new )?([\w$.<>]+) /.exec(l)?.[1]).filter((f): f is string => !!f);
  const skip = /^(Storage\.|noBuffer|callers|get data|(Module\.)?contiguousData|(Module\.)?view$|Tensor\.get|Object\.)/
  const ops = frames.filter((f) => !skip.test(f)).slice(0, 3);
  return ops.length ? ops.join(" ← ") : "an op";
}
