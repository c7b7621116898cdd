// The Wasm backend's linear memory: one growing memory, used as a bump-allocated scratch arena that every kernel
// call resets. Inputs are copied in, outputs copied out; the arena only grows (to the largest call's need), so a
// hot loop allocates nothing after its first iteration.

const PAGE = 65536;
/** The first bytes are never handed out: address 0 stays an invalid pointer, and small constants live there. */
export const ARENA_BASE = 1024;

export class WasmArena {
  private top = ARENA_BASE;
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

  /** Forget every allocation (start of a kernel call). */
  reset(): void { this.top = ARENA_BASE; }

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
