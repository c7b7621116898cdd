// Element-wise closeness check |a − e| ≤ atol + rtol·|e| with a report naming the worst element.
import type { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";

export interface Check { name: string; ok: boolean; maxErr: number; detail: string }

export function compare(name: string, actual: Tensor | ArrayLike<number>, actualShape: number[] | null, expected: Tensor, atol: number, rtol: number): Check {
  const eShape = expected.shape;
  if (actualShape && (actualShape.length !== eShape.length || actualShape.some((d, i) => d !== eShape[i]))) {
    return { name, ok: false, maxErr: Infinity, detail: `shape ${shapeStr(actualShape)} but expected ${shapeStr(eShape)}` };
  }
  const a = "dataSync" in actual ? actual.dataSync() : actual, e = expected.dataSync();
  if (a.length !== e.length) return { name, ok: false, maxErr: Infinity, detail: `${a.length} values but expected ${e.length}` };
  let worst = -1, worstExcess = -Infinity, maxErr = 0;
  for (let i = 0; i < e.length; i++) {
    const ai = a[i], ei = e[i];
    const err = ai === ei ? 0 : Math.abs(ai - ei); // equal infinities are fine
    if (!(err <= atol + rtol * Math.abs(ei))) { // NaN fails too
      const excess = Number.isNaN(err) ? Infinity : err - (atol + rtol * Math.abs(ei));
      if (excess > worstExcess) { worstExcess = excess; worst = i; }
    }
    if (Number.isFinite(err) && err > maxErr) maxErr = err;
    else if (!Number.isFinite(err) && err !== 0) maxErr = Infinity;
  }
  if (worst < 0) return { name, ok: true, maxErr, detail: "" };
  return { name, ok: false, maxErr, detail: `element ${worst}: got ${a[worst]}, expected ${e[worst]} (atol ${atol}, rtol ${rtol})` };
}

export const TOL = {
  forward: { atol: 1e-5, rtol: 1e-5 },
  grad: { atol: 1e-4, rtol: 1e-4 },
  optimizer: { atol: 1e-6, rtol: 1e-5 },
  flow: { atol: 1e-5, rtol: 1e-5 },
};
