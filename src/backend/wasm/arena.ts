// The Wasm backend's linear memory: one growing memory, used as a bump-allocated scratch arena that every kernel
// call resets. Inputs are copied in, outputs copied out; the arena only grows (to the largest call's need), so a
// hot loop allocates nothing after its first iteration. Below the scratch arena lies a region of persistent blocks
// (allocPersistent / freePersistent: first fit, coalescing) that outlive kernel calls — the packed-weight cache
// (pack-cache.ts); the scratch arena starts where that region ends, and moves only between kernel calls.

const PAGE = 65536;
/** The first bytes are never handed out: address 0 stays an invalid pointer, and small constants live there. */
export const ARENA_BASE = 1024;

export class WasmArena {
  private top = ARENA_BASE;
  /** Start of the scratch arena = end of the persistent region. */
  private base = ARENA_BASE;
  /** Free blocks inside the persistent region, sorted by address. */
  private free: { addr: number; bytes: number }[] = [];
  private buf: ArrayBuffer | SharedArrayBuffer;
  private f32view: Float32Array;
  private u8view: Uint8Array;
  private i32view: Int32Array;

  constructor(readonly memory: WebAssembly.Memory) {
    this.buf = memory.buffer;
    this.f32view = new Float32Array(this.buf);
    this.u8view = new Uint8Array(this.buf);
    this.i32view = new Int32Array(this.buf);
  }

  /** Current byte size of the memory. */
  get bytes(): number { return this.memory.buffer.byteLength; }

  private refresh(): void {
    if (this.memory.buffer !== this.buf) {
      this.buf = this.memory.buffer;
      this.f32view = new Float32Array(this.buf);
      this.u8view = new Uint8Array(this.buf);
      this.i32view = new Int32Array(this.buf);
    }
  }

  /** Views of the whole memory (re-read after any alloc: growing the memory replaces its buffer). */
  get f32(): Float32Array { this.refresh(); return this.f32view; }
  get u8(): Uint8Array { this.refresh(); return this.u8view; }
  get i32(): Int32Array { this.refresh(); return this.i32view; }

  /** Forget every scratch allocation (start of a kernel call). */
  reset(): void { this.top = this.base; }

  /** Bytes of the persistent region (live blocks and the free gaps between them). */
  get persistentBytes(): number { return this.base - ARENA_BASE; }

  /**
   * A block that outlives kernel calls (64-byte aligned). Only between calls or right after reset(), with no
   * scratch allocation live: the scratch arena may move up.
   */
  allocPersistent(bytes: number): number {
    if (this.top !== this.base) throw new Error("WasmArena.allocPersistent: scratch allocations are live");
    const need = (bytes + 63) & ~63;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.bytes < need) continue;
      const addr = b.addr;
      if (b.bytes === need) this.free.splice(i, 1); else { b.addr += need; b.bytes -= need; }
      return addr;
    }
    // extend the region (a free block at its end is reused as its first part)
    let addr = this.base;
    const last = this.free[this.free.length - 1];
    if (last && last.addr + last.bytes === this.base) { this.free.pop(); addr = last.addr; }
    this.top = addr;
    this.alloc(need);
    this.base = this.top;
    return addr;
  }

  /** Return a block of allocPersistent (same size). Only between calls or right after reset(). */
  freePersistent(addr: number, bytes: number): void {
    if (this.top !== this.base) throw new Error("WasmArena.freePersistent: scratch allocations are live");
    const size = (bytes + 63) & ~63;
    let i = 0;
    while (i < this.free.length && this.free[i].addr < addr) i++;
    this.free.splice(i, 0, { addr, bytes: size });
    // coalesce with the next and the previous block
    if (i + 1 < this.free.length && addr + size === this.free[i + 1].addr) { this.free[i].bytes += this.free[i + 1].bytes; this.free.splice(i + 1, 1); }
    if (i > 0 && this.free[i - 1].addr + this.free[i - 1].bytes === addr) { this.free[i - 1].bytes += this.free[i].bytes; this.free.splice(i, 1); i--; }
    // a free block at the region's end gives the space back to the scratch arena
    const end = this.free[this.free.length - 1];
    if (end && end.addr + end.bytes === this.base) { this.base = end.addr; this.free.pop(); }
    this.top = this.base;
  }

  /** Mark for release(): allocations made after it are dropped by release(mark). */
  mark(): number { return this.top; }
  release(mark: number): void { this.top = mark; }

  /** Reserve `bytes` (64-byte aligned); returns the byte address. Grows the memory when needed. */
  alloc(bytes: number): number {
    const p = (this.top + 63) & ~63;
    const end = p + bytes;
    if (!(end <= 0xffff0000)) throw new RangeError(`attnflow wasm backend: needs ${end} bytes of linear memory (limit 4 GiB)`);
    if (end > this.memory.buffer.byteLength) {
      const need = Math.ceil((end - this.memory.buffer.byteLength) / PAGE);
      // grow geometrically (at least 1/8 more) so a slowly rising need does not grow on every call
      const want = Math.max(need, Math.ceil(this.memory.buffer.byteLength / PAGE / 8));
      try { this.memory.grow(want); } catch { this.memory.grow(need); }
    }
    this.top = end;
    return p;
  }

  /** Reserve room for n float32 values; returns the byte address. */
  allocF32(n: number): number { return this.alloc(4 * n); }
}
