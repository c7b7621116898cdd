// Backend registry and selection. A backend is a partial kernel table; whatever it leaves out runs on the reference
// kernels (all backends share CPU memory today, so the fallback costs no copy). Selection is automatic by priority
// (native > wasm > reference), overridable with setBackend(name) or the ATTNFLOW_BACKEND environment variable.
import type { Kernels } from "./kernels.js";
import { refKernels } from "./ref/index.js";

export interface BackendInfo {
  name: string;
  priority: number;               // higher wins in automatic selection
  kernels: Partial<Kernels>;
  description: string;
}

const backends = new Map<string, BackendInfo>();
let active: BackendInfo;
let explicitChoice = false;

/** The kernel table in use: the active backend's kernels over the reference ones. */
export let K: Kernels = refKernels;

export function registerBackend(info: BackendInfo): void {
  backends.set(info.name, info);
  if (!explicitChoice) autoSelect();
}

export function availableBackends(): string[] {
  return [...backends.values()].sort((a, b) => b.priority - a.priority).map((b) => b.name);
}

export function setBackend(name: string): void {
  const b = backends.get(name);
  if (!b) throw new Error(`setBackend: unknown backend "${name}" (available: ${availableBackends().join(", ")})`);
  explicitChoice = true;
  activate(b);
}

export function getBackend(): string { return active.name; }

export function backendInfo(name = active.name): BackendInfo | undefined { return backends.get(name); }

/** Which kernels the active backend implements itself (the rest fall back to the reference). */
export function nativeKernelNames(): string[] { return Object.keys(active.kernels); }

function activate(b: BackendInfo): void {
  active = b;
  K = { ...refKernels, ...b.kernels } as Kernels;
}

function autoSelect(): void {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.ATTNFLOW_BACKEND;
  if (env && backends.has(env)) { activate(backends.get(env)!); return; }
  let best: BackendInfo | undefined;
  for (const b of backends.values()) if (!best || b.priority > best.priority) best = b;
  activate(best!);
}

registerBackend({ name: "reference", priority: 0, kernels: refKernels, description: "plain TypeScript reference kernels" });
