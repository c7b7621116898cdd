// Builds the Wasm module (all kernels, from the generators), compiles it and instantiates it over one memory —
// a plain growing memory, or a shared one when worker threads will run kernels on it too (threads.ts).
import { ModuleBuilder } from "./emit.js";
import { WasmArena } from "./arena.js";
import { addGemmKernels } from "./gen-gemm.js";
import { addTileKernels } from "./gen-tiles.js";
import { addAttentionKernels } from "./gen-attention.js";
import { addAttentionLoops } from "./gen-attention-loops.js";
import { addRowKernels } from "./gen-rows.js";
import { addElementwiseKernels } from "./gen-elementwise.js";
import { setTileCodegen } from "./tile.js";

type Fn = (...args: number[]) => void;

/** The module's exported kernels (byte addresses and strides; f32 scalars as numbers). */
export interface WasmExports {
  gemm_pack_a: Fn;
  gemm_pack_b: Fn;
  gemm_macro: Fn;
  [name: string]: Fn;
}

export interface WasmInstance {
  exports: WasmExports;
  arena: WasmArena;
  /** The compiled module and its memory (shared when `shared`): what a worker needs to run the same kernels. */
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  shared: boolean;
  /** Whether the module was built with relaxed SIMD (fused multiply-add in the micro-kernels). */
  relaxed: boolean;
}

const MAX_PAGES = 65536;
const INITIAL_PAGES = 32;

const cachedBytes = new Map<string, Uint8Array<ArrayBuffer>>();

let relaxedWanted: boolean | null = null;
/**
 * Use relaxed SIMD (f32x4.relaxed_madd) in the kernels when the engine has it (`true`, the default: detected at
 * start-up), or never (`false`: standard SIMD128 only, e.g. to compare the two or to keep results identical across
 * engines). Takes effect for modules built after the call (`configureWasmThreads` rebuilds the live one).
 */
export function setWasmRelaxedSimd(enabled: boolean): void { relaxedWanted = enabled; }

/** Whether newly built modules use relaxed SIMD: the engine has it and it was not turned off. */
export function wasmRelaxedSimdActive(): boolean {
  if (relaxedWanted === false) return false;
  if (relaxedWanted === null) {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
    if (env?.ATTNFLOW_WASM_RELAXED === "0") return false;
  }
  return wasmRelaxedSimdSupported();
}

/** The module bytes (built once per memory kind and instruction set). */
export function wasmModuleBytes(shared = false, relaxed = wasmRelaxedSimdActive()): Uint8Array<ArrayBuffer> {
  const key = `${shared}/${relaxed}`;
  const hit = cachedBytes.get(key);
  if (hit) return hit;
  const m = new ModuleBuilder();
  m.importMemory({ module: "env", name: "memory", initialPages: 1, maxPages: MAX_PAGES, shared });
  setTileCodegen({ relaxedMadd: relaxed });
  try {
    addGemmKernels(m, relaxed);
    addTileKernels(m);
    addAttentionKernels(m);
    addAttentionLoops(m);
    addRowKernels(m);
    addElementwiseKernels(m);
  } finally {
    setTileCodegen({ relaxedMadd: false });
  }
  const bytes = m.bytes();
  cachedBytes.set(key, bytes);
  return bytes;
}

function makeMemory(shared: boolean): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAX_PAGES, shared });
}

function wrap(inst: WebAssembly.Instance, module: WebAssembly.Module, memory: WebAssembly.Memory, shared: boolean, relaxed: boolean): WasmInstance {
  return { exports: inst.exports as unknown as WasmExports, arena: new WasmArena(memory), module, memory, shared, relaxed };
}

/** Compile and instantiate synchronously; throws where the platform does not allow it. */
export function instantiateSync(shared = false, relaxed = wasmRelaxedSimdActive()): WasmInstance {
  const memory = makeMemory(shared);
  const mod = new WebAssembly.Module(wasmModuleBytes(shared, relaxed));
  return wrap(new WebAssembly.Instance(mod, { env: { memory } }), mod, memory, shared, relaxed);
}

export async function instantiateAsync(shared = false, relaxed = wasmRelaxedSimdActive()): Promise<WasmInstance> {
  const memory = makeMemory(shared);
  const mod = await WebAssembly.compile(wasmModuleBytes(shared, relaxed));
  return wrap(await WebAssembly.instantiate(mod, { env: { memory } }), mod, memory, shared, relaxed);
}

/** Instantiate an already compiled module over an existing memory (a worker joining the caller's memory). */
export function instantiateWith(module: WebAssembly.Module, memory: WebAssembly.Memory): WebAssembly.Instance {
  return new WebAssembly.Instance(module, { env: { memory } });
}

/** Whether this JavaScript engine runs Wasm SIMD128 (validates a one-instruction SIMD function). */
export function wasmSimdSupported(): boolean {
  try {
    if (typeof WebAssembly !== "object") return false;
    // (func (result v128) v128.const 0)
    const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
    return WebAssembly.validate(bytes);
  } catch { return false; }
}

let relaxedSupported: boolean | null = null;
/**
 * Whether this engine runs relaxed SIMD (validates a function using f32x4.relaxed_madd; checked once). Chromium
 * ships it (since 114); Node 20's V8 only with --experimental-wasm-relaxed-simd.
 */
export function wasmRelaxedSimdSupported(): boolean {
  if (relaxedSupported !== null) return relaxedSupported;
  try {
    // (func (result v128) (f32x4.relaxed_madd (v128.const 0) (v128.const 0) (v128.const 0)))
    const c = [253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const body = [0, ...c, ...c, ...c, 0xfd, 0x85, 0x02, 11];
    relaxedSupported = typeof WebAssembly === "object" && WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0,
      1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, body.length + 2, 1, body.length, ...body]));
  } catch { relaxedSupported = false; }
  return relaxedSupported;
}

/** Whether shared Wasm memory (threads) can be created here (browsers: only when cross-origin isolated). */
export function wasmSharedMemorySupported(): boolean {
  try {
    if (typeof SharedArrayBuffer !== "function" || typeof Atomics !== "object") return false;
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch { return false; }
}
