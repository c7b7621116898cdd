// Reference reductions over the middle axis of a contiguous (outer, n, inner) array.
import type { ReduceOp } from "../kernels.js";

export function reduce(op: ReduceOp, x: Float32Array | Int32Array | Uint8Array, outer: number, n: number, inner: number,
  out: Float32Array | Int32Array): void {
  if (op === "sum" && inner > 1 && x instanceof Float32Array) { sumColumnsF32(x, outer, n, inner, out); return; }
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let acc: number;
      switch (op) {
        case "sum": {
          // Kahan-compensated float64 sum: stable for long rows (e.g. means over 10^5 elements)
          let s = 0, c = 0;
          for (let j = 0; j < n; j++) { const y = x[base + j * inner] - c; const t = s + y; c = t - s - y; s = t; }
          acc = s; break;
        }
        case "prod": { acc = 1; for (let j = 0; j < n; j++) acc *= x[base + j * inner]; break; }
        case "max": case "min": {
          acc = op === "max" ? -Infinity : Infinity;
          for (let j = 0; j < n; j++) {
            const v = x[base + j * inner];
            if (v !== v) { acc = NaN; break; }
            if (op === "max" ? v > acc : v < acc) acc = v;
          }
          break;
        }
        case "argmax": case "argmin": {
          let best = op === "argmax" ? -Infinity : Infinity; acc = 0;
          for (let j = 0; j < n; j++) {
            const v = x[base + j * inner];
            if (v !== v) { acc = j; break; }
            if (op === "argmax" ? v > best : v < best) { best = v; acc = j; }
          }
          break;
        }
      }
      out[o * inner + i] = acc;
    }
  }
}

/** Sum over the middle axis when inner > 1: walk rows in memory order, Kahan-compensated float64 per output column. */
function sumColumnsF32(x: Float32Array, outer: number, n: number, inner: number, out: Float32Array | Int32Array): void {
  const s = new Float64Array(inner), c = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    s.fill(0); c.fill(0);
    for (let j = 0; j < n; j++) {
      const base = (o * n + j) * inner;
      for (let i = 0; i < inner; i++) { const y = x[base + i] - c[i]; const t = s[i] + y; c[i] = t - s[i] - y; s[i] = t; }
    }
    for (let i = 0; i < inner; i++) out[o * inner + i] = s[i];
  }
}
