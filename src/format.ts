// PyTorch-like printing: tensor([[ 0.1000, -2.0000], ...], shape=[2, 2]). Long dims are summarised with "...".
import type { Tensor } from "./tensor.js";

const EDGE = 3, THRESHOLD = 1000;

export function formatTensor(t: Tensor): string {
  if (t.disposed) return "tensor(<disposed>)";
  const flat = t.dataSync();
  const summarise = flat.length > THRESHOLD;
  const isFloat = t.dtype === "float32";
  let allInt = true, maxAbs = 0;
  for (let i = 0; i < flat.length; i++) { const v = flat[i]; if (Number.isFinite(v)) { if (!Number.isInteger(v)) allInt = false; maxAbs = Math.max(maxAbs, Math.abs(v)); } }
  const sci = isFloat && (maxAbs >= 1e5 || (maxAbs > 0 && maxAbs < 1e-4));
  const fmt = (v: number): string => {
    if (t.dtype === "bool") return v ? "True" : "False";
    if (!isFloat) return String(v);
    if (!Number.isFinite(v)) return Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf";
    if (sci) return v.toExponential(4);
    return allInt ? v.toFixed(0) + "." : v.toFixed(4);
  };
  const cells: string[] = [];
  for (let i = 0; i < flat.length; i++) cells.push(fmt(flat[i]));
  const width = Math.max(0, ...cells.map((c) => c.length));
  const strides: number[] = [];
  let acc = 1;
  for (let i = t.ndim - 1; i >= 0; i--) { strides[i] = acc; acc *= t.shape[i]; }
  const render = (dim: number, off: number, indent: string): string => {
    if (dim === t.ndim) return cells[off].padStart(width);
    const n = t.shape[dim];
    const idx = summarise && n > 2 * EDGE ? [...Array(EDGE).keys(), -1, ...Array.from({ length: EDGE }, (_, i) => n - EDGE + i)] : [...Array(n).keys()];
    const parts = idx.map((i) => (i < 0 ? "..." : render(dim + 1, off + i * strides[dim], indent + " ")));
    const sep = dim === t.ndim - 1 ? ", " : ",\n" + "\n".repeat(Math.max(0, t.ndim - dim - 2)) + indent + " ";
    return "[" + parts.join(sep) + "]";
  };
  const body = t.ndim === 0 ? cells[0] : render(0, 0, "       ");
  const extras: string[] = [];
  if (t.dtype !== "float32") extras.push(`dtype=${t.dtype}`);
  if (summarise || t.ndim === 0 || t.numel() === 0) extras.push(`shape=[${t.shape.join(", ")}]`);
  if (t.requiresGrad) extras.push(t.isLeaf ? "requiresGrad=true" : `gradFn=${t._node?.name ?? "?"}`);
  return `tensor(${body}${extras.length ? ", " + extras.join(", ") : ""})`;
}
