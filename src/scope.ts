// tidy(): deterministic memory scopes (like tfjs). Tensors created inside fn are disposed when it returns, except
// those it returns and anything an autograd graph of a returned tensor still needs (inputs and saved tensors).
import type { Tensor } from "./tensor.js";

const scopes: Tensor[][] = [];

export function trackCreated(t: Tensor): void {
  if (scopes.length) scopes[scopes.length - 1].push(t);
}

/** Keep a tensor alive past the enclosing tidy() (e.g. a tensor stored on a module). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) { const i = s.indexOf(t); if (i >= 0) s.splice(i, 1); }
  return t;
}

export function tidy<T>(fn: () => T): T {
  const created: Tensor[] = [];
  scopes.push(created);
  let result: T;
  try { result = fn(); } finally { scopes.pop(); }
  const live = new Set<Tensor>();
  collectTensors(result, live);
  markGraph(live);
  const outer = scopes[scopes.length - 1];
  for (const t of created) {
    if (live.has(t)) { if (outer) outer.push(t); continue; }
    t.dispose();
  }
  return result;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (v === null || typeof v !== "object" || depth > 8 || ArrayBuffer.isView(v)) return;
  if (isTensor(v)) { out.add(v); if (v.grad) out.add(v.grad); return; }
  if (Array.isArray(v)) { for (const x of v) collectTensors(x, out, depth + 1); return; }
  if (v instanceof Map) { for (const x of v.values()) collectTensors(x, out, depth + 1); return; }
  for (const x of Object.values(v as Record<string, unknown>)) collectTensors(x, out, depth + 1);
}

/** Add every tensor an autograd graph below `live` can still touch. */
function markGraph(live: Set<Tensor>): void {
  const stack = [...live];
  while (stack.length) {
    const t = stack.pop()!;
    const node = t._node;
    if (!node) continue;
    for (const x of [...node.inputs, ...node.saved]) if (!live.has(x)) { live.add(x); stack.push(x); }
  }
}

function isTensor(v: object): v is Tensor {
  return "storage" in v && "shape" in v && "_node" in v;
}
