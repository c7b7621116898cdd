// The native elementwise kernels (unary, binary with broadcast modes, activation backwards, float64 middle-axis sums,
// fused Adam) against float64 references written here, on every ISA variant this CPU runs, with special values,
// odd lengths, offsets, in-place use, several chunks (threads) and argument validation. Skips when the addon is not
// built.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadNativeKernels, type NativeIsa, type NativeKernels } from "../src/node/native-addon.js";
import { mulberry32 } from "../bench/lib/prng.js";

const load = loadNativeKernels();
const nk = load.kernels;
const skip = nk ? false : `native addon not built: ${load.reason}`;

function eachIsa(n: NativeKernels, fn: (isa: NativeIsa) => void): void {
  const best = n.info().isa;
  try {
    for (const isa of ["avx512", "avx2", "neon", "generic"] as NativeIsa[]) if (n.setIsa(isa)) fn(isa);
  } finally { n.setIsa(best); }
}

const rand = mulberry32(777);
function uniform(n: number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

// float64 references
function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 2) return Math.sign(x) * (1 - erfc64(ax));
  let s = 0, term = ax, n = 0; // Taylor series, summed to full double precision (|x| < 2: mild cancellation)
  const x2 = ax * ax;
  while (Math.abs(term) > 1e-20 * Math.abs(s) || n < 3) { s += term / (2 * n + 1); n++; term *= -x2 / n; if (n > 400) break; }
  const r = (2 / Math.sqrt(Math.PI)) * s;
  return x < 0 ? -r : r;
}
function erfc64(z: number): number { // z ≥ 0; continued fraction beyond 2 (accurate in the tail)
  if (z < 2) return 1 - erf64(z);
  let f = 0;
  for (let k = 60; k >= 1; k--) f = (k / 2) / (z + f);
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
}
const phi64 = (x: number) => (x < 0 ? 0.5 * erfc64(-x / Math.SQRT2) : 1 - 0.5 * erfc64(x / Math.SQRT2));
const C = Math.sqrt(2 / Math.PI);
// Conditioning of the tails: e^{−x²/2} (and e^{2u}, u = √(2/π)(x + 0.044715x³)) turn the float32 rounding of x² (of u)
// into a relative error of the result of about x²·2^-24 (|2u|·2^-24), which no float32 kernel can avoid.
const tailX2 = (x: number) => 1.2e-7 * x * x;
const tailU = (x: number) => 2.4e-7 * Math.abs(C * (x + 0.044715 * x ** 3));
const UNARY: Record<string, { f: (x: number) => number; rtol: number; atol: number; cond?: (x: number) => number }> = {
  neg: { f: (x) => -x, rtol: 0, atol: 0 },
  abs: { f: Math.abs, rtol: 0, atol: 0 },
  relu: { f: (x) => (x > 0 ? x : 0), rtol: 0, atol: 0 },
  square: { f: (x) => x * x, rtol: 0, atol: 0 },
  sqrt: { f: Math.sqrt, rtol: 0, atol: 0 },
  rsqrt: { f: (x) => 1 / Math.sqrt(x), rtol: 1.2e-7, atol: 0 },
  reciprocal: { f: (x) => 1 / x, rtol: 0, atol: 0 },
  exp: { f: Math.exp, rtol: 1e-6, atol: 1e-37 },
  tanh: { f: Math.tanh, rtol: 1e-6, atol: 1e-37 },
  sigmoid: { f: (x) => 1 / (1 + Math.exp(-x)), rtol: 1e-6, atol: 1e-37 },
  erf: { f: erf64, rtol: 1e-6, atol: 1e-37 },
  gelu: { f: (x) => x * phi64(x), rtol: 2e-6, atol: 1e-37, cond: tailX2 },
  geluGrad: { f: (x) => phi64(x) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI), rtol: 2e-6, atol: 2e-7, cond: tailX2 },
  geluTanh: { f: (x) => 0.5 * x * (1 + Math.tanh(C * (x + 0.044715 * x ** 3))), rtol: 2e-6, atol: 2e-7, cond: tailU },
  geluTanhGrad: {
    f: (x) => { const t = Math.tanh(C * (x + 0.044715 * x ** 3)); return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * 0.044715 * x * x); },
    rtol: 2e-6, atol: 2e-7, cond: tailU,
  },
};
const SPECIAL = [0, -0, 1e-30, -1e-30, 1e-6, -1e-6, 1e-4, -1e-4, 0.3, -0.3, 0.5499, 0.5501, -0.55, 0.7999, 0.8001, -0.8, 1, -1,
  2, -2, 3, -3, 3.9, 5, -5, 8, -8, 10, -10, 13, -13, 20, -20, 40, -40, 87, -87, 88.5, -88.5, 100, -100, 1e10, -1e10, NaN,
  Infinity, -Infinity];

/** got ≈ want (float64) within rtol·|want| + atol; exact when both are 0; non-finite values must match. */
function isClose(got: number, want: number, rtol: number, atol: number): boolean {
  const w = Math.fround(want);
  if (Number.isNaN(want)) return Number.isNaN(got);
  if (!Number.isFinite(w)) return got === w;
  if (rtol === 0 && atol === 0) return Object.is(got, w);
  return Math.abs(got - want) <= rtol * Math.abs(want) + atol;
}
function checkClose(what: () => string, got: number, want: number, rtol: number, atol: number): void {
  if (!isClose(got, want, rtol, atol)) assert.fail(`${what()}: got ${got}, want ${want} (rtol ${rtol}, atol ${atol})`);
}

test("native unary: every op against float64 references, special values, odd lengths, offsets, in place, chunks", { skip }, () => {
  const n = nk!;
  const inputs = Float32Array.from([...SPECIAL, ...uniform(70001 - SPECIAL.length, -12, 12)]);
  for (const [op, spec] of Object.entries(UNARY)) {
    const x = op === "sqrt" || op === "rsqrt" ? inputs.map(Math.abs) : inputs;
    // references and tolerances once per op; every ISA is checked against them
    const want = Array.from(x, spec.f), tol = Array.from(x, (v) => spec.rtol + (spec.cond?.(v) ?? 0));
    eachIsa(n, (isa) => {
      for (const len of [1, 15, 17, 1003, x.length]) {
        const xs = new Float32Array(len + 3); xs.set(x.subarray(0, len), 3);
        const y = new Float32Array(len + 5).fill(-7);
        n.unary(op as never, xs, 3, y, 5, len);
        assert.deepEqual([...y.subarray(0, 5)], [-7, -7, -7, -7, -7], `${isa} ${op}: wrote before yOff`);
        const check = len === x.length ? 1 : 0; // prefixes run the same code on the same values: spot-check them
        for (let i = 0; i < len; i += check ? 1 : 1 + (i % 3)) checkClose(() => `${isa} ${op}(${x[i]})`, y[5 + i], want[i], tol[i], spec.atol);
      }
      const inPlace = x.slice(0, 999);
      n.unary(op as never, inPlace, 0, inPlace, 0, 999);
      for (let i = 0; i < 999; i++) checkClose(() => `${isa} ${op} in place`, inPlace[i], want[i], tol[i], spec.atol);
    });
  }
});

const BIN: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b, div: (a, b) => a / b,
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  eq: (a, b) => +(a === b), ne: (a, b) => +(a !== b), lt: (a, b) => +(a < b), le: (a, b) => +(a <= b), gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
  reluBackward: (g, z) => (z > 0 ? g : 0),
};
const MODES = ["full", "scalar", "row", "col"] as const;

test("native binary: ops × broadcast modes (full/scalar/row/col), offsets, NaN, uint8 comparisons, chunks, in place", { skip }, () => {
  const n = nk!;
  eachIsa(n, (isa) => {
    for (const [rows, R] of [[1, 1], [3, 7], [57, 97], [2, 40001]] as const) {
      const len = rows * R, big = len > 10000;
      const extent = (m: string) => (m === "full" ? len : m === "scalar" ? 1 : m === "row" ? R : rows);
      for (const ma of MODES) for (const mb of MODES) {
        // several chunks (threads): a representative subset of modes and ops
        if (big && !(ma === "full" || mb === "full")) continue;
        const a = uniform(extent(ma) + 2, -3, 3), b = uniform(extent(mb) + 1, -3, 3);
        // ties, signed zeros and NaNs for the comparisons and max/min
        for (let i = 0; i < a.length; i += 11) a[i] = b[i % b.length];
        a[a.length - 1] = NaN; b[0] = -0;
        if (a.length > 5) a[5] = NaN;
        const at = (arr: Float32Array, off: number, m: string, i: number) =>
          arr[off + (m === "full" ? i : m === "scalar" ? 0 : m === "row" ? i % R : Math.floor(i / R))];
        for (const [op, f] of Object.entries(BIN)) {
          if (big && !["add", "maximum", "gt", "reluBackward"].includes(op)) continue;
          const cmp = ["eq", "ne", "lt", "le", "gt", "ge"].includes(op);
          const out = cmp ? new Uint8Array(len + 1).fill(9) : new Float32Array(len + 1).fill(9);
          n.binary(op as never, a, 2, ma, b, 1, mb, out, 1, len, R);
          assert.equal(out[0], 9, `${isa} ${op}: wrote before outOff`);
          for (let i = 0; i < len; i++) {
            const want = f(at(a, 2, ma, i), at(b, 1, mb, i));
            const got = out[1 + i];
            if (Number.isNaN(want) ? !Number.isNaN(got) : got !== Math.fround(want)) {
              assert.fail(`${isa} ${op} ${ma}/${mb} (${rows}×${R}) [${i}]: got ${got}, want ${Math.fround(want)}`);
            }
          }
        }
      }
    }
    // in place: out is exactly a
    const a = uniform(50000, -1, 1), b = uniform(50000, -1, 1), want = a.map((x, i) => Math.fround(x * b[i]));
    n.binary("mul", a, 0, "full", b, 0, "full", a, 0, 50000, 1);
    assert.deepEqual(a, want);
  });
});

test("native elementwise on large arrays: the multi-threaded split gives the single-threaded results", { skip }, () => {
  const n = nk!;
  const threads = n.info().threads;
  const len = (1 << 20) + 37, R = 1031 * 3;
  const a = uniform(len, -4, 4), b = uniform(len, -4, 4), row = uniform(R, -1, 1);
  const runs = (th: number) => {
    n.setNumThreads(th);
    const outs: Float32Array[] = [];
    for (const op of ["exp", "gelu", "relu"] as const) { const y = new Float32Array(len); n.unary(op, a, 0, y, 0, len); outs.push(y); }
    const rows = Math.floor(len / R) * R;
    for (const [op, mb] of [["add", "row"], ["geluBackward", "full"]] as const) {
      const y = new Float32Array(len);
      n.binary(op, a, 0, "full", mb === "row" ? row : b, 0, mb, y, 0, mb === "row" ? rows : len, mb === "row" ? R : 1);
      outs.push(y);
    }
    const s = new Float32Array(R); n.reduceSum(a, 0, 1, Math.floor(len / R), R, s, 0); outs.push(s);
    const p = a.slice(), m = new Float32Array(len), v = new Float32Array(len);
    n.adamUpdate(p, b, m, v, null, 0.01, 0.9, 0.999, 1e-8, 0.01, 0.1, 0.0316, true, false); outs.push(p, m, v);
    return outs;
  };
  try {
    const one = runs(1), many = runs(Math.max(2, threads));
    one.forEach((o, i) => assert.deepEqual(many[i], o, `result ${i}`));
    // spot-check the values themselves
    for (let i = 0; i < len; i += 4099) {
      checkClose(() => `exp[${i}]`, one[0][i], Math.exp(a[i]), 1e-6, 0);
      assert.equal(one[3][i], i < Math.floor(len / R) * R ? Math.fround(a[i] + row[i % R]) : 0);
    }
  } finally { n.setNumThreads(threads); }
});

test("native activation backwards: dy·act'(z) for relu, gelu (erf) and gelu (tanh)", { skip }, () => {
  const n = nk!;
  const z = Float32Array.from([...SPECIAL.filter(Number.isFinite), ...uniform(40000, -9, 9)]), g = uniform(z.length, -2, 2);
  eachIsa(n, (isa) => {
    for (const [op, un] of [["geluBackward", "geluGrad"], ["geluTanhBackward", "geluTanhGrad"]] as const) {
      const out = new Float32Array(z.length);
      n.binary(op, g, 0, "full", z, 0, "full", out, 0, z.length, 1);
      for (let i = 0; i < z.length; i++) checkClose(() => `${isa} ${op}`, out[i], g[i] * UNARY[un].f(z[i]), 2e-6 + UNARY[un].cond!(z[i]), 5e-7);
    }
    const out = new Float32Array(z.length);
    n.binary("reluBackward", g, 0, "full", z, 0, "full", out, 0, z.length, 1);
    for (let i = 0; i < z.length; i++) assert.equal(out[i], z[i] > 0 ? g[i] : 0);
  });
});

test("native reduceSum: float64 sums over the middle axis, every split path, independent of the thread count", { skip }, () => {
  const n = nk!;
  const threads = n.info().threads;
  try {
    for (const [outer, len, inner] of [[1, 1, 1], [1, 100003, 1], [3, 5, 7], [17, 301, 1], [1, 70000, 3], [2, 40000, 2], [9, 2000, 64],
      [2, 300001, 2], [4, 0, 3]]) {
      const x = uniform(outer * len * inner + 1, -1, 1);
      x[1] = 1e7; // a large value: float32 accumulation would lose the small ones
      const want = new Float64Array(outer * inner);
      for (let o = 0; o < outer; o++) for (let k = 0; k < len; k++) for (let i = 0; i < inner; i++) want[o * inner + i] += x[1 + (o * len + k) * inner + i];
      const results: Float32Array[] = [];
      for (const th of [1, 2, 3]) {
        n.setNumThreads(th);
        eachIsa(n, (isa) => {
          const out = new Float32Array(outer * inner + 2).fill(5);
          n.reduceSum(x, 1, outer, len, inner, out, 2);
          assert.deepEqual([out[0], out[1]], [5, 5], "wrote before outOff");
          for (let i = 0; i < want.length; i++) assert.equal(out[2 + i], Math.fround(want[i]), `${isa} (${outer},${len},${inner})[${i}]`);
          results.push(out);
        });
      }
      for (const r of results) assert.deepEqual(r, results[0]);
    }
  } finally { n.setNumThreads(threads); }
});

test("native adamUpdate: PyTorch's Adam / AdamW / amsgrad / maximize rule over several steps", { skip }, () => {
  const n = nk!;
  const len = 70001, lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const p0 = uniform(len, -1, 1), grads = [1, 2, 3].map(() => { const g = uniform(len, -1, 1); g[7] = 0; return g; });
  for (const cfg of [{ wd: 0, dec: false, ams: false, max: false }, { wd: 0.1, dec: false, ams: false, max: true },
    { wd: 0.01, dec: true, ams: false, max: false }, { wd: 0.05, dec: true, ams: true, max: false }]) {
    // float64 reference of three steps (optim/optimizers.ts's loop)
    const rp = Float64Array.from(p0), rm = new Float64Array(len), rv = new Float64Array(len), rvm = new Float64Array(len);
    grads.forEach((g, s) => {
      const t = s + 1, bc1 = 1 - b1 ** t, bc2sqrt = Math.sqrt(1 - b2 ** t);
      for (let i = 0; i < len; i++) {
        if (cfg.dec) rp[i] *= 1 - lr * cfg.wd;
        let gi = cfg.max ? -g[i] : g[i];
        if (!cfg.dec) gi += cfg.wd * rp[i];
        rm[i] += (gi - rm[i]) * (1 - b1);
        rv[i] = rv[i] * b2 + (1 - b2) * gi * gi;
        rvm[i] = Math.max(rvm[i], rv[i]);
        rp[i] -= (lr / bc1) * (rm[i] / (Math.sqrt(cfg.ams ? rvm[i] : rv[i]) / bc2sqrt + eps));
      }
    });
    eachIsa(n, (isa) => {
      const p = p0.slice(), m = new Float32Array(len), v = new Float32Array(len), vm = cfg.ams ? new Float32Array(len) : null;
      grads.forEach((g, s) => {
        const t = s + 1;
        n.adamUpdate(p, g, m, v, vm, lr, b1, b2, eps, cfg.wd, lr / (1 - b1 ** t), Math.sqrt(1 - b2 ** t), cfg.dec, cfg.max);
      });
      for (let i = 0; i < len; i++) {
        if (!(Math.abs(p[i] - rp[i]) <= 2e-6 && Math.abs(m[i] - rm[i]) <= 1e-6 && Math.abs(v[i] - rv[i]) <= 1e-6)) {
          assert.fail(`${isa} ${JSON.stringify(cfg)} [${i}]: p ${p[i]} vs ${rp[i]}, m ${m[i]} vs ${rm[i]}, v ${v[i]} vs ${rv[i]}`);
        }
      }
    });
  }
});

test("native elementwise argument validation names the problem", { skip }, () => {
  const n = nk!;
  const f = new Float32Array(8), u = new Uint8Array(8);
  const throwsWith = (fn: () => void, re: RegExp) => assert.throws(fn, (e: Error) => re.test(e.message), `expected ${re}`);
  throwsWith(() => n.unary("cosh" as never, f, 0, new Float32Array(8), 0, 8), /unknown op "cosh"/);
  throwsWith(() => n.unary(99, f, 0, new Float32Array(8), 0, 8), /'op' must be an integer in \[0, 14\]/);
  throwsWith(() => n.unary("exp", f, 1, new Float32Array(8), 0, 8), /'x' is too short/);
  throwsWith(() => n.unary("exp", f, 0, f.subarray(1), 0, 4), /'y' overlaps 'x'/);
  throwsWith(() => n.binary("add", f, 0, "full", f, 0, "row", new Float32Array(8), 0, 8, 3), /multiple of R/);
  throwsWith(() => n.binary("add", f, 0, "full", f, 0, "diag" as never, new Float32Array(8), 0, 8, 1), /'bMode' must be/);
  throwsWith(() => n.binary("gt", f, 0, "full", f, 0, "full", new Float32Array(8), 0, 8, 1), /'out' must be a Uint8Array/);
  throwsWith(() => n.binary("add", f, 0, "full", f, 0, "full", u, 0, 8, 1), /'out' must be a Float32Array/);
  throwsWith(() => n.binary("add", f, 0, "full", new Float32Array(4), 0, "row", new Float32Array(8), 0, 8, 8), /'b' is too short/);
  throwsWith(() => n.binary("add", f, 0, "row", f, 0, "full", f, 0, 8, 2), /'out' overlaps 'a'/);
  throwsWith(() => n.binary("geluBackward", f, 0, "full", f, 0, "scalar", new Float32Array(8), 0, 8, 1), /both operands in mode full/);
  throwsWith(() => n.reduceSum(f, 0, 2, 2, 3, new Float32Array(6), 0), /'x' is too short/);
  throwsWith(() => n.reduceSum(f, 0, 2, 2, 2, f, 0), /'out' overlaps 'x'/);
  throwsWith(() => n.adamUpdate(f, new Float32Array(7), new Float32Array(8), new Float32Array(8), null, 1, 0.9, 0.99, 1e-8, 0, 1, 1, false, false), /'g' has length 7/);
  throwsWith(() => n.adamUpdate(f, new Float32Array(8), f, new Float32Array(8), null, 1, 0.9, 0.99, 1e-8, 0, 1, 1, false, false), /'p' and 'm' must not share memory/);
  throwsWith(() => n.adamUpdate(f, new Float32Array(8), new Float32Array(8), new Float32Array(8), null, 1, 0.9, 0.99, 1e-8, 0, 1, 0, false, false), /bc2sqrt must be > 0/);
});
