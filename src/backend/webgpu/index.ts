// The WebGPU device: initWebGPU(gpu) requests an adapter and a device, and registers "webgpu" so tensors can move there
// (t.to("webgpu")). Browser-safe; Node passes the `webgpu` package's GPU object (src/node/webgpu.ts).
import type { AnyTypedArray, DType } from "../../dtype.js";
import { registerDevice, unsupportedOn, type Device, type DeviceOps } from "../../device.js";
import { GpuRuntime, ELEM_BYTES, fromDeviceLayout, toDeviceLayout, type GpuBuf } from "./runtime.js";
import * as EW from "./elementwise.js";
import * as MM from "./gemm.js";
import * as RW from "./rows.js";
import * as OP from "./optim.js";
import * as IX from "./indexing.js";
import { attentionFused } from "./attention.js";

export interface WebGPUInfo { vendor: string; architecture: string; device: string; description: string; fallback: boolean; f16: boolean }

export interface WebGPUDevice extends Device { runtime: GpuRuntime; info: WebGPUInfo }

let current: WebGPUDevice | null = null;

/** The registered WebGPU device, or null before initWebGPU. */
export function webgpuDevice(): WebGPUDevice | null { return current; }

/**
 * Start WebGPU on `gpu` (default: navigator.gpu) and register the "webgpu" device. Throws, saying why, when there is
 * no WebGPU or no adapter. Calling it again returns the device already started.
 */
export async function initWebGPU(gpu?: GPU, opts: { powerPreference?: GPUPowerPreference } = {}): Promise<WebGPUDevice> {
  if (current) return current;
  const g = gpu ?? (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!g) throw new Error("webgpu: this environment has no WebGPU (navigator.gpu is missing; in Node install the optional package `webgpu`)");
  const adapter = await g.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" });
  if (!adapter) throw new Error("webgpu: no WebGPU adapter found (no GPU driver; without a GPU on Linux, set VK_ICD_FILENAMES to SwiftShader's ICD, see docs/webgpu.md)");
  const ai = adapter.info;
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
    },
  });
  const info: WebGPUInfo = {
    vendor: ai?.vendor ?? "", architecture: ai?.architecture ?? "", device: ai?.device ?? "", description: ai?.description ?? "",
    fallback: !!(ai as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter, f16: adapter.features.has("shader-f16"),
  };
  const describe = () => `WebGPU: ${[info.vendor, info.architecture, info.description].filter(Boolean).join(" / ") || "unknown adapter"}` +
    `${info.fallback ? " (fallback adapter)" : ""}`;
  const rt = new GpuRuntime(device, describe());
  // hold the GPU (instance) and adapter for the device's lifetime: Dawn in Node frees the instance with its JS object,
  // and a device whose instance was collected crashes the process at its next event
  rt.owners = [g, adapter];
  current = makeDevice(rt, info, describe);
  registerDevice(current);
  return current;
}

function makeDevice(rt: GpuRuntime, info: WebGPUInfo, describe: () => string): WebGPUDevice {
  const ops: DeviceOps = {
    copy: (x, s, out) => EW.copy(rt, x, s, out),
    unary: (op, x, out) => EW.unary(rt, op, x, out),
    writeRegion: (dst, shape, strides, offset, x) => EW.writeRegion(rt, dst, shape, strides, offset, x),
    binary: (op, a, as, b, bs, out) => EW.binary(rt, op, a, as, b, bs, out),
    where: (c, cs, a, as, b, bs, out) => EW.where(rt, c, cs, a, as, b, bs, out),
    reduce: (op, x, outer, n, inner, out) => EW.reduce(rt, op, x, outer, n, inner, out),
    fill: (out, v) => EW.fill(rt, out, v),
    axpy: (t, o, os, alpha) => EW.axpy(rt, t, o, os, alpha),
    gemm: (...a) => MM.gemm(rt, ...a),
    softmax: (x, y, rows, n, log) => RW.softmax(rt, x, y, rows, n, log),
    softmaxBackward: (y, dy, dx, rows, n) => RW.softmaxBackward(rt, y, dy, dx, rows, n),
    layerNormForward: (...a) => RW.layerNormForward(rt, ...a),
    layerNormBackward: (...a) => RW.layerNormBackward(rt, ...a),
    gatherRows: (table, cols, idx, out) => RW.gatherRows(rt, table, cols, idx, out),
    scatterAddRows: (src, cols, idx, table, skip) => RW.scatterAddRows(rt, src, cols, idx, table, skip),
    gatherAxis: (x, i, is, d, out, z) => IX.gatherAxis(rt, x, i, is, d, out, z),
    scatterAxis: (g, i, is, d, dx) => IX.scatterAxis(rt, g, i, is, d, dx),
    adamUpdate: (p, g, m, v, vmax, h) => OP.adamUpdate(rt, p, g, m, v, vmax, h),
    sgdUpdate: (p, g, b, h) => OP.sgdUpdate(rt, p, g, b, h),
  };
  return {
    name: "webgpu", runtime: rt, info, describe, ops,
    fused: { sdpa: attentionFused(rt) },
    alloc: (_dtype: DType, length: number) => rt.alloc(length * ELEM_BYTES),
    free: (h) => rt.release(h as GpuBuf),
    upload: (h, dtype: DType, data: AnyTypedArray) => rt.write((h as GpuBuf).buffer, 0, toDeviceLayout(dtype, data)),
    read: async (h, dtype: DType, offset: number, length: number) =>
      fromDeviceLayout(dtype, await rt.read((h as GpuBuf).buffer, offset * ELEM_BYTES, length * ELEM_BYTES)),
  };
}

export { unsupportedOn };
