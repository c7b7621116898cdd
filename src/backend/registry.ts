// Backend registry and selection. A backend is a partial kernel table; whatever it leaves out runs on the reference
// kernels (all backends share CPU memory today, so the fallback costs no copy). Selection is automatic by priority
// (native > wasm > reference), overridable with setBackend(name) or the ATTNFLOW_BACKEND environment variable.
import type { Kernels } from "./kernels.js";
import { refKernels } from "./ref/index.js";
import { deviceNames } from "../device.js";

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

/** Other names users type for a backend. */
const ALIASES: Record<string, string> = { ref: "reference", cpu: "reference", js: "reference" };

function envBackend(): string | undefined {
  const v = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.ATTNFLOW_BACKEND?.trim();
  return v ? ALIASES[v] ?? v : undefined;
}

/**
 * What is wrong with the ATTNFLOW_BACKEND environment variable, or null (unset, or names a registered backend that
 * works). An entry point calls it once every backend it offers has registered: an unknown or unavailable backend is an
 * error naming the available ones, never a silent fallback to another backend.
 */
export function backendEnvProblem(): string | null {
  const raw = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.ATTNFLOW_BACKEND;
  const name = envBackend();
  if (!name) return null;
  const working = [...backends.values()].filter((b) => b.priority >= 0).sort((a, b) => b.priority - a.priority).map((b) => b.name);
  const b = backends.get(name);
  if (!b && deviceNames().includes(name)) return null;   // a device (webgpu) started by the entry point
  if (!b) return `ATTNFLOW_BACKEND=${JSON.stringify(raw)}: no such backend here (available: ${working.join(", ")})`;
  if (b.priority < 0) return `ATTNFLOW_BACKEND=${JSON.stringify(raw)}: that backend is unavailable here: ${b.description} (available: ${working.join(", ")})`;
  return null;
}

function autoSelect(): void {
  const env = envBackend();
  if (env && backends.has(env)) { activate(backends.get(env)!); return; }
  let best: BackendInfo | undefined;
  for (const b of backends.values()) if (!best || b.priority > best.priority) best = b;
  activate(best!);
}

registerBackend({ name: "reference", priority: 0, kernels: refKernels, description: "plain TypeScript reference kernels" });
