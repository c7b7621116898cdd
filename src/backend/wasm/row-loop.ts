// Loops over the elements of a row with f32x4 vectors and a one-element tail, written once: the body receives an
// accessor that loads/stores a vector in the main part and a single element (splatted on load, lane 0 on store)
// in the tail, so row lengths need no padding.
import { FuncBuilder, I32, V128, get, set, type Expr, type Local } from "./emit.js";

export interface RowIO {
  tail: boolean;
  /** Vector at base + 4j bytes (tail: element j splatted). */
  ld(base: Expr): Expr;
  /** Store at base + 4j (tail: lane 0 only). */
  st(base: Expr, v: Expr): Expr;
  /** For sums across the row: the vector as is, or only lane 0 in the tail. */
  acc(v: Expr): Expr;
}

/** for j in [0, n): body(io); `j` is the element index (a local the body may read). */
export function rowLoop(f: FuncBuilder, j: Local, n: Expr, body: (io: RowIO) => void): void {
  const at = (base: Expr): Expr => I32.add(base, I32.shl(get(j), I32.const(2)));
  const vec: RowIO = {
    tail: false,
    ld: (b) => V128.load(at(b)),
    st: (b, v) => V128.store(at(b), v),
    acc: (v) => v,
  };
  const one: RowIO = {
    tail: true,
    ld: (b) => V128.loadSplat32(at(b)),
    st: (b, v) => V128.store32Lane(at(b), v, 0),
    acc: (v) => V128.and(v, V128.constI32(-1, 0, 0, 0)),
  };
  f.for(j, I32.const(0), I32.and(n, I32.const(-4)), 4, () => body(vec));
  f.for(j, I32.and(n, I32.const(-4)), n, 1, () => body(one));
}

/** v = splat(0). */
export const zero4 = (): Expr => V128.constF32(0, 0, 0, 0);
export const negInf4 = (): Expr => V128.constF32(-Infinity, -Infinity, -Infinity, -Infinity);
export function setZero(f: FuncBuilder, ...ls: Local[]): void { for (const l of ls) f.emit(set(l, zero4())); }
