// Reference reductions over the middle axis of a contiguous (outer, n, inner) array.
import type { ReduceOp } from "../kernels.js";

export function reduce(op: ReduceOp, x: Float32Array | Int32Array | Uint8Array, outer: number, n: number, inner: number,
  out: Float32Array | Int32Array): void {
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
