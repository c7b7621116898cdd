// Argument checks for public constructors (modules, optimizers, schedulers): a wrong size or rate is an error naming
// the class, the argument and the value at construction, not a NaN or a shape mismatch many steps later.

const show = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? `[${v.join(", ")}]` : String(v));

export function checkPositiveInt(cls: string, name: string, v: unknown): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new RangeError(`${cls}: ${name} must be a positive integer, got ${show(v)}`);
}

export function checkNonNegativeInt(cls: string, name: string, v: unknown): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new RangeError(`${cls}: ${name} must be a non-negative integer, got ${show(v)}`);
}

/** A dropout probability: [0, 1) (1 would zero everything and scale by 1/0). */
export function checkDropout(cls: string, name: string, v: unknown): void {
  if (typeof v !== "number" || !(v >= 0 && v < 1)) throw new RangeError(`${cls}: ${name} must be in [0, 1), got ${show(v)}`);
}

/** A finite number in a range; `lo`/`hi` exclusive when the flags say so. */
export function checkNumber(cls: string, name: string, v: unknown, lo: number, hi = Infinity, o: { loOpen?: boolean; hiOpen?: boolean } = {}): void {
  const ok = typeof v === "number" && Number.isFinite(v) && (o.loOpen ? v > lo : v >= lo) && (o.hiOpen ? v < hi : v <= hi);
  if (!ok) {
    const range = hi === Infinity ? `${o.loOpen ? ">" : ">="} ${lo}` : `in ${o.loOpen ? "(" : "["}${lo}, ${hi}${o.hiOpen ? ")" : "]"}`;
    throw new RangeError(`${cls}: ${name} must be a number ${range}, got ${show(v)}`);
  }
}
