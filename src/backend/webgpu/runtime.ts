// WebGPU runtime: one GPUDevice, a pool of storage buffers, a cache of compute pipelines, and one open command
// encoder that every op appends to (nothing waits between ops). Uploads go through a mapped staging buffer copied in
// the same command stream, so they stay ordered with the work before them; a read submits, maps a staging buffer and
// waits. Browser-safe: it takes a GPU object (navigator.gpu in a browser, the `webgpu` package's in Node).
import type { AnyTypedArray, DType } from "../../dtype.js";
import type { DeviceHandle } from "../../device.js";

export interface GpuBuf extends DeviceHandle { buffer: GPUBuffer; readonly bytes: number }

/** Every element is 4 bytes on the device: float32 → f32, int32 → i32, bool → u32 (0/1). */
export const ELEM_BYTES = 4;

const UNIFORM = 0x40, STORAGE = 0x80, COPY_SRC = 0x04, COPY_DST = 0x08, MAP_READ = 0x01; // GPUBufferUsage (no global in every host)

export class GpuRuntime {
  readonly device: GPUDevice;
  readonly info: string;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  private trash: GPUBuffer[] = [];
  private pipelines = new Map<string, GPUComputePipeline>();
  private free = new Map<number, GPUBuffer[]>();
  /** Bytes held by the pool (free buffers), and in use by live storages. */
  pooledBytes = 0;
  liveBytes = 0;
  maxPooledBytes = 256 * 1024 * 1024;
  lost: string | null = null;
  /** Dispatches per submit: bounds the size of one command buffer. */
  flushEvery = 64;

  constructor(device: GPUDevice, info: string) {
    this.device = device;
    this.info = info;
    void device.lost.then((l) => { this.lost = `WebGPU device lost (${l.reason}): ${l.message}`; });
    // a validation error is a bug in a kernel: say so loudly (Dawn in Node has onuncapturederror, not always addEventListener)
    device.onuncapturederror = (e: GPUUncapturedErrorEvent) => {
      this.lost = this.lost ?? `WebGPU error: ${e.error.message}`;
      console.error(`attnflow webgpu: ${e.error.message}`);
    };
  }

  private check(): void { if (this.lost) throw new Error(this.lost); }

  /** A storage buffer of at least `bytes` (rounded up to a size class: powers of two split in four). */
  alloc(bytes: number): GpuBuf {
    this.check();
    const size = sizeClass(Math.max(bytes, 4));
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) this.pooledBytes -= size;
    else buffer = this.device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST });
    this.liveBytes += size;
    return { buffer, bytes: size };
  }

  release(h: GpuBuf): void {
    this.liveBytes -= h.bytes;
    if (this.pooledBytes + h.bytes > this.maxPooledBytes) { this.trash.push(h.buffer); return; }
    let list = this.free.get(h.bytes);
    if (!list) this.free.set(h.bytes, (list = []));
    list.push(h.buffer);
    this.pooledBytes += h.bytes;
  }

  /** Objects the device must not outlive (the GPU instance and the adapter). */
  owners: unknown[] = [];
  private dummyBuf: GPUBuffer | null = null;
  /** A small buffer to bind where a kernel's optional operand is absent. */
  dummy(): GPUBuffer {
    if (!this.dummyBuf) this.dummyBuf = this.device.createBuffer({ size: 256, usage: STORAGE | COPY_DST });
    return this.dummyBuf;
  }

  private enc(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void { if (this.pass) { this.pass.end(); this.pass = null; } }

  /** Write `data` (already in device layout) at byte `offset` of `dst`, ordered after the work queued so far. */
  write(dst: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.check();
    const size = (data.byteLength + 3) & ~3;
    if (size === 0) return;
    const staging = this.device.createBuffer({ size, usage: COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.endPass();
    this.enc().copyBufferToBuffer(staging, 0, dst, offset, size);
    this.trash.push(staging);
  }

  pipeline(code: string): GPUComputePipeline {
    let p = this.pipelines.get(code);
    if (!p) {
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
      this.pipelines.set(code, p);
      this.writable.set(p, [...code.matchAll(/@binding\((\d+)\)\s*var<storage,\s*read_write>/g)].map((m) => Number(m[1])));
    }
    return p;
  }

  /** Per pipeline: the bindings its code writes (read_write storage). */
  private writable = new Map<GPUComputePipeline, number[]>();

  /**
   * WebGPU forbids binding a buffer that a dispatch writes anywhere else in the same dispatch (an op whose output
   * shares storage with an input: x.addInPlace(x), in-place views). Such other bindings read a snapshot copied in the
   * command stream just before: what an in-place op over its old values means.
   */
  private unalias(pipe: GPUComputePipeline, buffers: GPUBuffer[]): GPUBuffer[] {
    const w = this.writable.get(pipe)!;
    let out = buffers;
    for (const wi of w) {
      for (let i = 0; i < buffers.length; i++) {
        if (i === wi || buffers[i] !== buffers[wi]) continue;
        if (out === buffers) out = buffers.slice();
        const src = buffers[i], copy = this.device.createBuffer({ size: src.size, usage: STORAGE | COPY_DST });
        this.endPass();
        this.enc().copyBufferToBuffer(src, 0, copy, 0, src.size);
        this.trash.push(copy);
        out[i] = copy;
      }
    }
    return out;
  }

  /**
   * Enqueue one dispatch of `code` (entry point main, bindings 0..n-1 = `buffers`, then the i32 parameter block at
   * binding n) over `groups` workgroups ([x, y, z]; x is folded into y beyond the 65535 limit by the caller).
   */
  dispatch(code: string, buffers: GPUBuffer[], params: Int32Array | null, groups: [number, number, number], uniform = false): void {
    this.check();
    if (groups[0] === 0 || groups[1] === 0 || groups[2] === 0) return;
    const pipe = this.pipeline(code);
    buffers = this.unalias(pipe, buffers);
    const entries: GPUBindGroupEntry[] = buffers.map((buffer, binding) => ({ binding, resource: { buffer } }));
    if (params) {
      const pb = this.device.createBuffer({ size: Math.max(16, (params.byteLength + 15) & ~15), usage: uniform ? UNIFORM : STORAGE, mappedAtCreation: true });
      new Int32Array(pb.getMappedRange()).set(params);
      pb.unmap();
      entries.push({ binding: buffers.length, resource: { buffer: pb } });
      this.trash.push(pb);
    }
    const bg = this.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
    if (!this.pass) this.pass = this.enc().beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, bg);
    this.pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    if (++this.pending >= this.flushEvery) this.flush();
  }

  /** Submit the queued work. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pending = 0;
    for (const b of this.trash) b.destroy(); // destroyed buffers live until the submitted work that uses them is done
    this.trash = [];
  }

  /** Read `bytes` bytes from byte `offset` of `src` (waits for everything queued before). */
  async read(src: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.check();
    const size = (bytes + 3) & ~3;
    if (size === 0) return new ArrayBuffer(0);
    const staging = this.device.createBuffer({ size, usage: MAP_READ | COPY_DST });
    this.endPass();
    this.enc().copyBufferToBuffer(src, offset, staging, 0, size);
    this.flush();
    // Dawn in Node does not hold the event loop open while a map is pending: keep a timer alive until it resolves
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await staging.mapAsync(1 /* GPUMapMode.READ */);
    } catch (e) {
      throw new Error(this.lost ?? `WebGPU read failed: ${(e as Error).message}`);
    } finally {
      clearInterval(keepAlive);
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    return out;
  }
}

function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes - 1));   // bytes in (p, 2p]: classes p·(1 + k/4)
  const q = p / 4;
  return Math.ceil(bytes / q) * q;
}

/** Host array → device layout (bool bytes widen to u32). */
export function toDeviceLayout(dtype: DType, a: AnyTypedArray): ArrayBufferView {
  if (dtype !== "bool") return a;
  return Uint32Array.from(a as Uint8Array);
}

/** Device bytes → host array of `dtype`. */
export function fromDeviceLayout(dtype: DType, bytes: ArrayBuffer): AnyTypedArray {
  if (dtype === "float32") return new Float32Array(bytes);
  if (dtype === "int32") return new Int32Array(bytes);
  return Uint8Array.from(new Uint32Array(bytes), (x) => (x ? 1 : 0));
}
