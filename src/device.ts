// Devices: where a tensor's memory lives. "cpu" is the default and needs nothing here (the CPU kernel backends —
// native, wasm, reference — all work on CPU typed arrays, see backend/registry.ts). Other devices (WebGPU) register
// themselves at run time; a tensor on such a device holds a device buffer (Storage.handle) and no typed array until
// it is read back asynchronously. Ops check their operands' device and hand device tensors to that device's op table
// (DeviceOps): CPU paths only pay one property check. See docs/webgpu.md.
import type { AnyTypedArray, DType } from "./dtype.js";
import type { AdamStep, BinaryOp, ReduceOp, UnaryOp } from "./backend/kernels.js";
import type { Tensor } from "./tensor.js";

export type DeviceName = "cpu" | "webgpu";

/** A device buffer owned by a Storage (opaque to the core). */
export interface DeviceHandle { readonly bytes: number }

/**
 * Tensor-level kernels of a device. Outputs are fresh contiguous device tensors made by the caller (ops/util.ts
 * uninit with a `like` operand); inputs are read through their shape/strides/offset. Everything is enqueued: nothing
 * waits for the device.
 */
export interface DeviceOps {
  /** out (contiguous, out.shape) = x broadcast through `strides` to out.shape, converted to out.dtype. */
  copy(x: Tensor, strides: readonly number[], out: Tensor): void;
  unary(op: UnaryOp, x: Tensor, out: Tensor): void;
  /** Write x (read through its own strides, shape `shape`) into the strided region (shape, strides, offset) of dst. */
  writeRegion(dst: Tensor, shape: readonly number[], strides: readonly number[], offset: number, x: Tensor): void;
  binary(op: BinaryOp, a: Tensor, aStrides: readonly number[], b: Tensor, bStrides: readonly number[], out: Tensor): void;
  where(c: Tensor, cStrides: readonly number[], a: Tensor, aStrides: readonly number[], b: Tensor, bStrides: readonly number[], out: Tensor): void;
  /** x contiguous (outer, n, inner) from x.offset → out (outer, inner). */
  reduce(op: ReduceOp, x: Tensor, outer: number, n: number, inner: number, out: Tensor): void;
  fill(out: Tensor, value: number): void;
  /** C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b] with element offsets into each tensor's storage (like Kernels.gemm). */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Tensor, aOff: number, lda: number, B: Tensor, bOff: number, ldb: number, beta: number, C: Tensor, cOff: number, ldc: number,
    batch: number, strideA: number, strideB: number, strideC: number): void;
  /** Row kernels over contiguous tensors (rows, n). */
  softmax(x: Tensor, y: Tensor, rows: number, n: number, log: boolean): void;
  softmaxBackward(y: Tensor, dy: Tensor, dx: Tensor, rows: number, n: number): void;
  layerNormForward(x: Tensor, w: Tensor | null, b: Tensor | null, y: Tensor, mean: Tensor, rstd: Tensor, rows: number, D: number, eps: number): void;
  layerNormBackward(dy: Tensor, x: Tensor, w: Tensor | null, mean: Tensor, rstd: Tensor, dx: Tensor, dw: Tensor | null, db: Tensor | null, rows: number, D: number): void;
  /** out (n, cols) = table rows idx[i] (idx: int32 device tensor, checked on the device: out-of-range rows read 0). */
  gatherRows(table: Tensor, cols: number, idx: Tensor, out: Tensor): void;
  scatterAddRows(src: Tensor, cols: number, idx: Tensor, table: Tensor, skip: number): void;
  /**
   * out (contiguous) = x gathered along `dim`: coordinate `dim` of each out element replaced by the int32 index read
   * through idxStrides over out.shape (torch.gather; indexSelect with a stride-0 broadcast index). Out-of-range → NaN
   * (0 for ints), or 0 for −1 when negativeIsZero.
   */
  gatherAxis(x: Tensor, index: Tensor, idxStrides: readonly number[], dim: number, out: Tensor, negativeIsZero?: boolean): void;
  /** Backward of gatherAxis: dx (contiguous float32, x's shape) = scatter-add of g (contiguous, the index's shape). */
  scatterAxis(g: Tensor, index: Tensor, idxStrides: readonly number[], dim: number, dx: Tensor): void;
  /** t (contiguous) += alpha·o (o broadcast to t.shape through oStrides). */
  axpy(t: Tensor, o: Tensor, oStrides: readonly number[], alpha: number): void;
  /** Optimizer steps in place (contiguous p and g; state tensors contiguous, from offset 0, same length as p). */
  adamUpdate(p: Tensor, g: Tensor, m: Tensor, v: Tensor, vmax: Tensor | null, h: AdamStep): void;
  sgdUpdate(p: Tensor, g: Tensor, buf: Tensor | null, h: { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean; maximize: boolean; first: boolean }): void;
}

export interface Device {
  readonly name: DeviceName;
  /** One line: what runs the work (adapter vendor/architecture/description). */
  describe(): string;
  alloc(dtype: DType, length: number): DeviceHandle;
  /** Return a buffer to the device's pool. */
  free(h: DeviceHandle): void;
  upload(h: DeviceHandle, dtype: DType, data: AnyTypedArray): void;
  /** Read `length` elements from element `offset` (waits for the queued work). */
  read(h: DeviceHandle, dtype: DType, offset: number, length: number): Promise<AnyTypedArray>;
  readonly ops: DeviceOps;
  /** Higher-level ops a device implements whole (attention): keyed by op name. */
  readonly fused: Record<string, (...args: any[]) => any>;
}

const devices = new Map<string, Device>();

export function registerDevice(d: Device): void { devices.set(d.name, d); }

/** The device named `name`; an error naming the registered ones when it is not there. */
export function getDevice(name: string): Device {
  const d = devices.get(name);
  if (!d) {
    const hint = name === "webgpu" ? " (start it first: `await initWebGPU()` in a browser, `await initWebGPUNode()` in Node, or ATTNFLOW_BACKEND=webgpu)" : "";
    throw new Error(`device "${name}" is not available${hint}; available: ${["cpu", ...devices.keys()].join(", ")}`);
  }
  return d;
}

export function deviceNames(): string[] { return ["cpu", ...devices.keys()]; }

let defaultDev: DeviceName = "cpu";
/**
 * The device that code placing its own data should use (ATTNFLOW_BACKEND=webgpu sets "webgpu"; the parity runner
 * moves its models and inputs there). Tensor factories still create CPU tensors: moving is always explicit (t.to()).
 */
export function defaultDevice(): DeviceName { return defaultDev; }
export function setDefaultDevice(name: DeviceName): void { if (name !== "cpu") getDevice(name); defaultDev = name; }

export function isDeviceName(s: string): s is DeviceName { return s === "cpu" || s === "webgpu"; }

/** The device where every operand of `op` lives; an error naming both when two differ. */
export function commonDevice(op: string, ...ts: (Tensor | null | undefined)[]): DeviceName {
  let dev: DeviceName | null = null, first: Tensor | null = null;
  for (const t of ts) {
    if (!t) continue;
    if (dev === null) { dev = t.device; first = t; continue; }
    if (t.device !== dev) {
      throw new Error(`${op}: expected all tensors on the same device, found ${dev} (shape [${first!.shape}]) and ${t.device} (shape [${t.shape}]); ` +
        `move one with t.to("${dev === "cpu" ? t.device : dev}") or await t.cpu()`);
    }
  }
  return dev ?? "cpu";
}

/** The error for an op a device does not implement yet. */
export function unsupportedOn(device: string, op: string): Error {
  return new Error(`not yet supported on ${device}: ${op} (move the inputs to the CPU with await t.cpu(), or use the CPU backend)`);
}
