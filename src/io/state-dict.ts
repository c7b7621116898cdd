// safetensors ⇄ attnflow tensors: state dicts keep PyTorch's names, so files written by torch/safetensors load
// directly into attnflow modules and the other way round.
import { Tensor } from "../tensor.js";
import type { Module } from "../nn/module.js";
import { parseSafetensors, serializeSafetensors, toBool, toFloat32, toInt32, fromBool, fromFloat32, fromInt32, type StTensor } from "./safetensors.js";

export interface LoadedTensors { tensors: Map<string, Tensor>; metadata: Record<string, string> }

/** Decode every tensor: float types → float32, integer types → int32 (range-checked), BOOL → bool. */
export function loadSafetensors(bytes: Uint8Array): LoadedTensors {
  const { tensors, metadata } = parseSafetensors(bytes);
  const out = new Map<string, Tensor>();
  for (const [name, t] of tensors) out.set(name, toTensor(name, t));
  return { tensors: out, metadata };
}

export function toTensor(name: string, t: StTensor): Tensor {
  switch (t.dtype) {
    case "F32": case "F16": case "BF16": case "F64": return Tensor.fromArray(toFloat32(t, name), t.shape, "float32");
    case "BOOL": return Tensor.fromArray(toBool(t, name), t.shape, "bool");
    default: return Tensor.fromArray(toInt32(t, name), t.shape, "int32");
  }
}

export interface SaveOptions {
  metadata?: Record<string, string>; floatDType?: "F32" | "F16" | "BF16"; intDType?: "I32" | "I64";
  /** int32 tensors to store as I8 (int8 weights of quantized layers): by default those with a "<name>_scale" beside them. */
  int8?: (name: string) => boolean;
  /** Record an integrity digest in the metadata (INTEGRITY_KEY), verified whenever the file is parsed. */
  integrity?: boolean;
}

export function saveSafetensors(tensors: Record<string, Tensor> | Map<string, Tensor>, opts: SaveOptions = {}): Uint8Array {
  const entries: [string, StTensor][] = [];
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const int8 = opts.int8 ?? ((name: string) => map.get(name + "_scale")?.dtype === "float32");
  for (const [name, t] of map) {
    const data = t.dataSync();
    entries.push([name, t.dtype === "float32" ? fromFloat32(data as Float32Array, t.shape, opts.floatDType ?? "F32")
      : t.dtype === "int32" ? fromInt32(data as Int32Array, t.shape, int8(name) ? "I8" : opts.intDType ?? "I64") : fromBool(data as Uint8Array, t.shape)]);
  }
  return serializeSafetensors(entries, opts.metadata, { integrity: opts.integrity });
}

/** Serialize a module's state dict (PyTorch names). */
export function saveModule(m: Module, opts: SaveOptions = {}): Uint8Array { return saveSafetensors(m.stateDict(), opts); }

/** Load a safetensors state dict into a module (strict by default); returns the file's metadata. */
export function loadModule(m: Module, bytes: Uint8Array, opts: { strict?: boolean; prefix?: string } = {}): Record<string, string> {
  const { tensors, metadata } = loadSafetensors(bytes);
  const sd = new Map<string, Tensor>();
  for (const [k, v] of tensors) if (!opts.prefix || k.startsWith(opts.prefix)) sd.set(opts.prefix ? k.slice(opts.prefix.length) : k, v);
  m.loadStateDict(sd, { strict: opts.strict });
  return metadata;
}
