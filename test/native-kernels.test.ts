// The native (C++) kernels against plain float64 references written here, on every ISA variant this CPU runs
// (avx512 / avx2 / generic), with odd sizes, transposes, broadcasts, GQA, causal Tq≠Tk, padding, -inf masks and
// dropout. Skips when the addon is not built.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { loadNativeKernels, type NativeIsa, type NativeKernels } from "../src/node/native-addon.js";
import { dropoutHash as tsDropoutHash, dropoutKeep as tsDropoutKeep } from "../src/backend/dropout-hash.js";
import { mulberry32 } from "../bench/lib/prng.js";

const load = loadNativeKernels();
const nk = load.kernels;
const skip = nk ? false : `native addon not built: ${load.reason}`;

function isas(n: NativeKernels): NativeIsa[] {
  const best = n.info().isa;
  const out = (["avx512", "avx2", "neon", "generic"] as NativeIsa[]).filter((i) => n.setIsa(i));
  n.setIsa(best);
  return out;
}
function eachIsa(n: NativeKernels, fn: (isa: NativeIsa) => void): void {
  const best = n.info().isa;
  try {
    for (const isa of isas(n)) { n.setIsa(isa); fn(isa); }
  } finally { n.setIsa(best); }
}

const rand = mulberry32(12345);
function randn(n: number, s = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * s;
  return a;
}

/** max |got − want| ≤ rtol·max(1, max|want|); non-finite references must match exactly (NaN ↔ NaN). */
function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-4): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 1;
  for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i])) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (!Number.isFinite(w)) {
      assert.ok(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)), `${what}[${i}]: got ${g}, want ${w}`);
    } else if (!(Math.abs(g - w) <= rtol * scale)) {
      assert.fail(`${what}[${i}]: got ${g}, want ${w} (tolerance ${rtol * scale})`);
    }
  }
}

// ---------------------------------------------------------------- gemm
function erf(x: number): number { // Abramowitz–Stegun 7.1.26, |error| ≤ 1.5e-7
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x < 0 ? -y : y;
}
const ACTS: ((x: number) => number)[] = [
  (x) => x,
  (x) => Math.max(0, x),
  (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
];

interface GemmCase { tA: boolean; tB: boolean; M: number; N: number; K: number; alpha: number; beta: number;
  batch: number; aOff: number; bOff: number; cOff: number; lda: number; ldb: number; ldc: number;
  sA: number; sB: number; sC: number }

function gemmCase(M: number, N: number, K: number, tA: boolean, tB: boolean, batch = 1, broadcast: "" | "A" | "B" = ""): GemmCase {
  const lda = (tA ? M : K) + (M % 2), ldb = (tB ? K : N) + 1, ldc = N + 2;
  const sizeA = (tA ? K : M) * lda, sizeB = (tB ? N : K) * ldb, sizeC = M * ldc;
  return { tA, tB, M, N, K, alpha: 0.75, beta: batch > 1 ? 0 : 0.5, batch, aOff: 3, bOff: 1, cOff: 2, lda, ldb, ldc,
    sA: broadcast === "A" ? 0 : sizeA + 1, sB: broadcast === "B" ? 0 : sizeB, sC: sizeC + 3 };
}

function refGemm(c: GemmCase, A: Float32Array, B: Float32Array, C: Float32Array, bias: Float32Array | null, act: number): Float64Array {
  const out = Float64Array.from(C);
  for (let b = 0; b < c.batch; b++) for (let i = 0; i < c.M; i++) for (let j = 0; j < c.N; j++) {
    let s = 0;
    for (let k = 0; k < c.K; k++) {
      const a = A[c.aOff + b * c.sA + (c.tA ? k * c.lda + i : i * c.lda + k)];
      const bb = B[c.bOff + b * c.sB + (c.tB ? j * c.ldb + k : k * c.ldb + j)];
      s += a * bb;
    }
    const ci = c.cOff + b * c.sC + i * c.ldc + j;
    let x = c.alpha * s + (c.beta === 0 ? 0 : c.beta * C[ci]);
    if (bias) x += bias[j];
    out[ci] = ACTS[act](x);
  }
  return out;
}

function runGemm(n: NativeKernels, c: GemmCase, bias: Float32Array | null, act: number, what: string): void {
  const A = randn(c.aOff + (c.batch - 1) * c.sA + (c.tA ? c.K : c.M) * c.lda);
  const B = randn(c.bOff + (c.batch - 1) * c.sB + (c.tB ? c.N : c.K) * c.ldb);
  const C = randn(c.cOff + (c.batch - 1) * c.sC + c.M * c.ldc);
  if (c.beta === 0) C.fill(NaN); // beta = 0 must not read C
  const want = refGemm(c, A, B, C, bias, act);
  // Elements between the rows/batches (ld and stride padding) must stay untouched: the reference keeps them.
  if (c.beta === 0) for (let b = 0; b < c.batch; b++) for (let i = 0; i < c.M; i++) for (let j = c.N; j < c.ldc; j++) want[c.cOff + b * c.sC + i * c.ldc + j] = NaN;
  const args = [c.tA, c.tB, c.M, c.N, c.K, c.alpha, A, c.aOff, c.lda, B, c.bOff, c.ldb, c.beta, C, c.cOff, c.ldc, c.batch, c.sA, c.sB, c.sC] as const;
  if (bias || act) n.gemmBiasAct(...args, bias, 0, act as 0 | 1 | 2 | 3);
  else n.gemm(...args);
  close(what, C, want);
}

test("native: info, threads and ISA variants", { skip }, () => {
  const n = nk!;
  const info = n.info();
  assert.ok(["avx512", "avx2", "neon", "generic"].includes(info.isa));
  assert.ok(info.threads >= 1);
  assert.equal(typeof info.version, "string");
  assert.ok(isas(n).includes("generic"));
  assert.equal(n.info().isa, info.isa);
});

test("native: glibc malloc thresholds are set at load unless the user chose them", { skip }, () => {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const glibc = !!report?.header?.glibcVersionRuntime;
  const { malloc } = nk!.info();
  if (!glibc) assert.match(malloc, /not glibc/);
  else if (process.env.ATTNFLOW_MALLOC_TUNING === "0") assert.match(malloc, /^off/);
  else if (/mmap_threshold|trim_threshold/.test(process.env.GLIBC_TUNABLES ?? "")) assert.match(malloc, /GLIBC_TUNABLES/);
  else assert.equal(malloc, "mmap threshold 32 MiB, trim threshold 64 MiB");
  if (!glibc) return;
  // The two ways out, each in a fresh process (the setting is made once per process, at load).
  const addon = new URL("../src/node/native-addon.js", import.meta.url).href;
  const script = `import(${JSON.stringify(addon)}).then((m) => console.log(m.nativeKernels().info().malloc))`;
  const inChild = (env: Record<string, string>) =>
    execFileSync(process.execPath, ["-e", script], { env: { ...process.env, ...env }, encoding: "utf8" }).trim();
  assert.equal(inChild({ ATTNFLOW_MALLOC_TUNING: "0" }), "off (ATTNFLOW_MALLOC_TUNING=0)");
  assert.equal(inChild({ ATTNFLOW_MALLOC_TUNING: "", GLIBC_TUNABLES: "glibc.malloc.trim_threshold=1048576" }), "left to GLIBC_TUNABLES");
});

test("native gemm: odd sizes, transposes, offsets, leading dims, batch broadcast, threads", { skip }, () => {
  const n = nk!;
  eachIsa(n, (isa) => {
    for (const [M, N, K] of [[1, 1, 1], [3, 17, 5], [17, 63, 65], [65, 3, 129], [129, 65, 300], [7, 200, 33], [1, 3000, 70], [4, 70, 1200], [301, 130, 1000], [601, 70, 800]])
      for (const tA of [false, true]) for (const tB of [false, true])
        runGemm(n, gemmCase(M, N, K, tA, tB), null, 0, `${isa} gemm ${M}x${N}x${K} tA=${tA} tB=${tB}`);
    runGemm(n, gemmCase(40, 70, 50, false, true, 3, "A"), null, 0, `${isa} batched broadcast A`);
    runGemm(n, gemmCase(70, 90, 100, true, false, 3, "B"), null, 0, `${isa} batched broadcast B (shared panels)`);
    runGemm(n, gemmCase(64, 64, 64, false, true, 5), null, 0, `${isa} batch 5 (one task per product)`);
    runGemm(n, gemmCase(31, 33, 0, false, false), null, 0, `${isa} K=0`);
    const saved = n.info().threads;
    for (const threads of [1, 2, 3]) {
      n.setNumThreads(threads);
      runGemm(n, gemmCase(150, 140, 160, true, false, 3), null, 0, `${isa} threads=${threads}`);
    }
    n.setNumThreads(saved);
  });
});

test("native gemmBiasAct: bias + relu / gelu (erf) / gelu (tanh) after the last depth block", { skip }, () => {
  const n = nk!;
  eachIsa(n, (isa) => {
    for (let act = 0; act < 4; act++) {
      const c = gemmCase(37, 70, 300, act % 2 === 1, act >= 2);
      runGemm(n, c, randn(70), act, `${isa} act=${act}`);
    }
    runGemm(n, gemmCase(9, 20, 8, false, false), null, 2, `${isa} gelu without bias`);
    for (const tB of [false, true]) runGemm(n, gemmCase(2, 1100, 900, true, tB), randn(1100), 3, `${isa} few rows tB=${tB}`);
    runGemm(n, gemmCase(5, 2100, 2048, false, true), randn(2100), 1, `${isa} two column super-blocks of packed B`);
  });
});

test("native gemm with a long depth and few outputs (dW of small layers): split depth, epilogue, thread-independent", { skip }, () => {
  const n = nk!;
  const saved = n.info().threads;
  try {
    eachIsa(n, (isa) => {
      for (const [M, N, K, tA, tB] of [[64, 64, 6400, true, false], [17, 33, 4099, false, false], [9, 70, 2600, true, true], [96, 40, 3000, false, true]] as const) {
        for (const [bias, act] of [[null, 0], [randn(N), 2]] as const) {
          const c = gemmCase(M, N, K, tA, tB);
          runGemm(n, c, bias, act, `${isa} depth-split ${M}x${N}x${K} tA=${tA} tB=${tB} act=${act}`);
        }
      }
      // the same bits with 1, 2 and 3 threads
      const c = gemmCase(64, 48, 5000, true, false);
      const A = randn(c.aOff + c.K * c.lda), B = randn(c.bOff + c.K * c.ldb);
      const outs = [1, 2, 3].map((th) => {
        n.setNumThreads(th);
        const C = new Float32Array(c.cOff + c.M * c.ldc);
        n.gemm(c.tA, c.tB, c.M, c.N, c.K, 1, A, c.aOff, c.lda, B, c.bOff, c.ldb, 0, C, c.cOff, c.ldc, 1, 0, 0, 0);
        return C;
      });
      assert.deepEqual(outs[1], outs[0], `${isa}: 2 threads`);
      assert.deepEqual(outs[2], outs[0], `${isa}: 3 threads`);
    });
  } finally { n.setNumThreads(saved); }
});

// ---------------------------------------------------------------- attention
interface AttnCase { B: number; H: number; Hkv: number; Tq: number; Tk: number; D: number; Dv: number; scale: number;
  causal: boolean; keyPad: Uint8Array | null; mask: Float32Array | null; maskB: number; maskH: number; p: number; seed: number }

function attnCase(B: number, H: number, Hkv: number, Tq: number, Tk: number, D: number, Dv: number,
  o: { causal?: boolean; pad?: "some" | "all-b1"; mask?: [number, number]; maskRowInf?: boolean; p?: number } = {}): AttnCase {
  let keyPad: Uint8Array | null = null;
  if (o.pad) {
    keyPad = new Uint8Array(B * Tk);
    for (let b = 0; b < B; b++) for (let j = 0; j < Tk; j++) keyPad[b * Tk + j] = o.pad === "all-b1" && b === 1 ? 1 : (rand() < 0.2 ? 1 : 0);
  }
  let mask: Float32Array | null = null;
  const [maskB, maskH] = o.mask ?? [1, 1];
  if (o.mask) {
    mask = randn(maskB * maskH * Tq * Tk, 2);
    for (let x = 0; x < mask.length; x++) if (rand() < 0.1) mask[x] = -Infinity;
    if (o.maskRowInf) mask.fill(-Infinity, 0, Tk); // query 0 of the first mask slice sees no key
  }
  return { B, H, Hkv, Tq, Tk, D, Dv, scale: 1 / Math.sqrt(D), causal: !!o.causal, keyPad, mask, maskB, maskH, p: o.p ?? 0, seed: 1234567 };
}

function scores(c: AttnCase, q: ArrayLike<number>, k: ArrayLike<number>, b: number, h: number, i: number): Float64Array {
  const s = new Float64Array(c.Tk), hk = Math.floor(h / (c.H / c.Hkv));
  for (let j = 0; j < c.Tk; j++) {
    if ((c.causal && j > i) || (c.keyPad && c.keyPad[b * c.Tk + j])) { s[j] = -Infinity; continue; }
    let dot = 0;
    for (let d = 0; d < c.D; d++) dot += q[((b * c.H + h) * c.Tq + i) * c.D + d] * k[((b * c.Hkv + hk) * c.Tk + j) * c.D + d];
    s[j] = dot * c.scale;
    if (c.mask) s[j] += c.mask[(((c.maskB === 1 ? 0 : b) * c.maskH + (c.maskH === 1 ? 0 : h)) * c.Tq + i) * c.Tk + j];
  }
  return s;
}
function keepScale(c: AttnCase, b: number, h: number, i: number, j: number): number {
  return c.p === 0 ? 1 : tsDropoutKeep(c.seed, b, h, i, j, c.p) ? 1 / (1 - c.p) : 0;
}
function lseOf(s: Float64Array): number {
  let m = -Infinity;
  for (const x of s) m = Math.max(m, x);
  if (m === -Infinity) return -Infinity;
  let sum = 0;
  for (const x of s) sum += Math.exp(x - m);
  return m + Math.log(sum);
}

function refForward(c: AttnCase, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) {
  const out = new Float64Array(c.B * c.H * c.Tq * c.Dv), lse = new Float64Array(c.B * c.H * c.Tq);
  for (let b = 0; b < c.B; b++) for (let h = 0; h < c.H; h++) for (let i = 0; i < c.Tq; i++) {
    const s = scores(c, q, k, b, h, i), L = lseOf(s), row = (b * c.H + h) * c.Tq + i;
    const hk = Math.floor(h / (c.H / c.Hkv));
    lse[row] = L;
    if (L === -Infinity) continue;
    for (let j = 0; j < c.Tk; j++) {
      const p = Math.exp(s[j] - L) * keepScale(c, b, h, i, j);
      for (let d = 0; d < c.Dv; d++) out[row * c.Dv + d] += p * v[((b * c.Hkv + hk) * c.Tk + j) * c.Dv + d];
    }
  }
  return { out, lse };
}

// out = P̃V with P̃ = softmax(S)⊙z/(1−p):  dV += P̃ᵀdO;  dP = (dO Vᵀ)⊙z/(1−p);  dS = P⊙(dP − rowsum(dO⊙out));
// dQ = scale·dS K;  dK = scale·dSᵀ Q.
function refBackward(c: AttnCase, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, dout: ArrayLike<number>) {
  const { out, lse } = refForward(c, q, k, v);
  const dq = new Float64Array(c.B * c.H * c.Tq * c.D), dk = new Float64Array(c.B * c.Hkv * c.Tk * c.D);
  const dv = new Float64Array(c.B * c.Hkv * c.Tk * c.Dv);
  for (let b = 0; b < c.B; b++) for (let h = 0; h < c.H; h++) for (let i = 0; i < c.Tq; i++) {
    const row = (b * c.H + h) * c.Tq + i, L = lse[row], hk = Math.floor(h / (c.H / c.Hkv));
    if (L === -Infinity) continue;
    const s = scores(c, q, k, b, h, i);
    let delta = 0;
    for (let d = 0; d < c.Dv; d++) delta += dout[row * c.Dv + d] * out[row * c.Dv + d];
    for (let j = 0; j < c.Tk; j++) {
      const p = Math.exp(s[j] - L), z = keepScale(c, b, h, i, j), kv = (b * c.Hkv + hk) * c.Tk + j;
      let dp = 0;
      for (let d = 0; d < c.Dv; d++) { dp += dout[row * c.Dv + d] * v[kv * c.Dv + d]; dv[kv * c.Dv + d] += p * z * dout[row * c.Dv + d]; }
      const ds = p * (dp * z - delta) * c.scale;
      for (let d = 0; d < c.D; d++) { dq[row * c.D + d] += ds * k[kv * c.D + d]; dk[kv * c.D + d] += ds * q[row * c.D + d]; }
    }
  }
  return { dq, dk, dv };
}

function nativeForward(n: NativeKernels, c: AttnCase, q: Float32Array, k: Float32Array, v: Float32Array) {
  const out = new Float32Array(c.B * c.H * c.Tq * c.Dv).fill(NaN), lse = new Float32Array(c.B * c.H * c.Tq).fill(NaN);
  n.attnForward(q, k, v, out, lse, c.B, c.H, c.Hkv, c.Tq, c.Tk, c.D, c.Dv, c.scale, c.causal, c.keyPad, c.mask, c.maskB, c.maskH, c.p, c.seed);
  return { out, lse };
}

const ATTN_CASES: [string, AttnCase][] = [
  ["1x1", attnCase(1, 1, 1, 1, 1, 1, 1)],
  ["causal square", attnCase(2, 3, 3, 17, 17, 8, 8, { causal: true })],
  ["GQA Hkv=2 causal Tq<Tk + padding", attnCase(1, 4, 2, 63, 65, 16, 24, { causal: true, pad: "some" })],
  ["MQA causal Tq>Tk + per-head mask", attnCase(1, 4, 1, 65, 63, 32, 16, { causal: true, mask: [1, 4] })],
  ["per-batch mask + padding (threads)", attnCase(2, 2, 2, 129, 130, 64, 64, { pad: "some", mask: [2, 1] })],
  ["dropout + GQA + fully padded batch", attnCase(2, 4, 2, 70, 129, 20, 33, { causal: true, pad: "all-b1", p: 0.25 })],
  ["mask with an all -inf row", attnCase(1, 2, 2, 3, 200, 5, 7, { mask: [1, 1], maskRowInf: true })],
  ["key-block chunks (one kv head, long Tk)", attnCase(1, 2, 1, 40, 300, 16, 16, { causal: false, p: 0.1 })],
];

test("native attnForward: matches the reference (lse, causal Tq≠Tk, GQA/MQA, masks, dropout, empty rows)", { skip }, () => {
  const n = nk!;
  for (const [name, c] of ATTN_CASES) {
    const q = randn(c.B * c.H * c.Tq * c.D), k = randn(c.B * c.Hkv * c.Tk * c.D), v = randn(c.B * c.Hkv * c.Tk * c.Dv);
    const want = refForward(c, q, k, v);
    eachIsa(n, (isa) => {
      const got = nativeForward(n, c, q, k, v);
      close(`${isa} ${name} out`, got.out, want.out);
      close(`${isa} ${name} lse`, got.lse, want.lse);
    });
  }
});

test("native attnBackward: matches the reference gradients (the reference checked by finite differences)", { skip }, () => {
  const n = nk!;
  // The float64 reference backward against central differences of the reference forward, L = Σ out ⊙ dout.
  const tiny = attnCase(1, 2, 1, 4, 5, 3, 2, { causal: true, mask: [1, 2], p: 0.3 });
  const tq = randn(2 * 4 * 3), tk = randn(5 * 3), tv = randn(5 * 2), tdo = randn(2 * 4 * 2);
  const g = refBackward(tiny, tq, tk, tv, tdo);
  const loss = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) =>
    refForward(tiny, q, k, v).out.reduce((s, o, i) => s + o * tdo[i], 0);
  for (const [name, x, grad] of [["q", tq, g.dq], ["k", tk, g.dk], ["v", tv, g.dv]] as const) {
    const fd = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const plus = Float64Array.from(x), minus = Float64Array.from(x);
      plus[i] += 1e-6; minus[i] -= 1e-6;
      const args = (a: Float64Array) => name === "q" ? loss(a, tk, tv) : name === "k" ? loss(tq, a, tv) : loss(tq, tk, a);
      fd[i] = (args(plus) - args(minus)) / 2e-6;
    }
    close(`reference d${name} vs finite differences`, grad, fd, 1e-6);
  }
  const saved = n.info().threads;
  for (const [name, c] of ATTN_CASES) {
    const q = randn(c.B * c.H * c.Tq * c.D), k = randn(c.B * c.Hkv * c.Tk * c.D), v = randn(c.B * c.Hkv * c.Tk * c.Dv);
    const dout = randn(c.B * c.H * c.Tq * c.Dv);
    const want = refBackward(c, q, k, v, dout);
    eachIsa(n, (isa) => {
      for (const threads of name.includes("threads") || name.includes("chunks") ? [1, 2] : [saved]) {
        n.setNumThreads(threads);
        const { out, lse } = nativeForward(n, c, q, k, v);
        const dq = new Float32Array(q.length).fill(NaN), dk = new Float32Array(k.length).fill(NaN), dv = new Float32Array(v.length).fill(NaN);
        n.attnBackward(q, k, v, out, dout, lse, dq, dk, dv, c.B, c.H, c.Hkv, c.Tq, c.Tk, c.D, c.Dv, c.scale, c.causal, c.keyPad, c.mask, c.maskB, c.maskH, c.p, c.seed);
        close(`${isa} ${name} dq (threads ${threads})`, dq, want.dq, 2e-4);
        close(`${isa} ${name} dk (threads ${threads})`, dk, want.dk, 2e-4);
        close(`${isa} ${name} dv (threads ${threads})`, dv, want.dv, 2e-4);
      }
    });
  }
  n.setNumThreads(saved);
});

test("native attention layouts: fused QKV input, token-major out/dq/dk/dv, same results as contiguous", { skip }, () => {
  const n = nk!;
  const c = attnCase(2, 4, 2, 37, 37, 16, 16, { causal: true, p: 0.2 });
  const { B, H, Hkv, Tq: T, D } = c;
  const q = randn(B * H * T * D), k = randn(B * Hkv * T * D), v = randn(B * Hkv * T * D), dout = randn(B * H * T * D);
  // Fused row per token: [q heads | k heads | v heads], as a (T, (H+2·Hkv)·D) projection would write it.
  const W = (H + 2 * Hkv) * D;
  const qkv = new Float32Array(B * T * W), dO = new Float32Array(B * T * H * D);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) {
    for (let h = 0; h < H; h++) {
      qkv[(b * T + t) * W + h * D + d] = q[((b * H + h) * T + t) * D + d];
      dO[((b * T + t) * H + h) * D + d] = dout[((b * H + h) * T + t) * D + d];
    }
    for (let h = 0; h < Hkv; h++) {
      qkv[(b * T + t) * W + (H + h) * D + d] = k[((b * Hkv + h) * T + t) * D + d];
      qkv[(b * T + t) * W + (H + Hkv + h) * D + d] = v[((b * Hkv + h) * T + t) * D + d];
    }
  }
  const qL = [0, T * W, D, W] as const, kL = [H * D, T * W, D, W] as const, vL = [(H + Hkv) * D, T * W, D, W] as const;
  const tokenMajor = (heads: number) => [0, T * heads * D, D, heads * D] as const;
  eachIsa(n, (isa) => {
    const ref = nativeForward(n, c, q, k, v);
    const out = new Float32Array(B * T * H * D), lse = new Float32Array(B * H * T);
    n.attnForward(qkv, qkv, qkv, out, lse, B, H, Hkv, T, T, D, D, c.scale, c.causal, null, null, 1, 1, c.p, c.seed,
      { q: qL, k: kL, v: vL, out: tokenMajor(H) });
    const outHeadMajor = new Float32Array(out.length);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++)
      outHeadMajor[((b * H + h) * T + t) * D + d] = out[((b * T + t) * H + h) * D + d];
    close(`${isa} strided out`, outHeadMajor, ref.out, 1e-6);
    close(`${isa} strided lse`, lse, ref.lse, 1e-6);
    const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
    n.attnBackward(q, k, v, ref.out, dout, ref.lse, dq, dk, dv, B, H, Hkv, T, T, D, D, c.scale, c.causal, null, null, 1, 1, c.p, c.seed);
    const dqkv = new Float32Array(qkv.length).fill(NaN);
    n.attnBackward(qkv, qkv, qkv, out, dO, lse, dqkv, dqkv, dqkv, B, H, Hkv, T, T, D, D, c.scale, c.causal, null, null, 1, 1, c.p, c.seed,
      { q: qL, k: kL, v: vL, out: tokenMajor(H), dout: tokenMajor(H), dq: qL, dk: kL, dv: vL });
    const want = new Float32Array(qkv.length);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) {
      for (let h = 0; h < H; h++) want[(b * T + t) * W + h * D + d] = dq[((b * H + h) * T + t) * D + d];
      for (let h = 0; h < Hkv; h++) {
        want[(b * T + t) * W + (H + h) * D + d] = dk[((b * Hkv + h) * T + t) * D + d];
        want[(b * T + t) * W + (H + Hkv + h) * D + d] = dv[((b * Hkv + h) * T + t) * D + d];
      }
    }
    close(`${isa} strided dq/dk/dv`, dqkv, want, 1e-5);
  });
  assert.throws(() => n.attnForward(qkv, qkv, qkv, new Float32Array(B * T * H * D), null, B, H, Hkv, T, T, D, D, 1, false, null, null, 1, 1, 0, 0,
    { q: qL, k: kL, v: vL, out: [0, T * H * D, 1, H * D] }), /share memory/);
  assert.throws(() => n.attnForward(qkv, qkv, qkv, new Float32Array(B * T * H * D), null, B, H, Hkv, T, T, D, D, 1, false, null, null, 1, 1, 0, 0,
    { q: [W - H * D + 1, T * W, D, W], k: kL, v: vL, out: tokenMajor(H) }), /'q' is too short/);
});

test("native dropout: the shared hash, deterministic masks, seed sensitivity", { skip }, () => {
  const n = nk!;
  for (const seed of [0, 1, 42, 2 ** 32 + 7, 2 ** 40 + 5, -3, 123.75]) {
    for (let t = 0; t < 50; t++) {
      const b = Math.floor(rand() * 8), h = Math.floor(rand() * 16), i = Math.floor(rand() * 5000), j = Math.floor(rand() * 5000);
      assert.equal(n.dropoutHash(seed, b, h, i, j), tsDropoutHash(seed, b, h, i, j), `hash(${seed},${b},${h},${i},${j})`);
      const p = rand();
      assert.equal(n.dropoutKeep(seed, b, h, i, j, p), tsDropoutKeep(seed, b, h, i, j, p));
    }
  }
  const c = attnCase(1, 2, 2, 33, 40, 8, 8, { p: 0.5 });
  const q = randn(2 * 33 * 8), k = randn(2 * 40 * 8), v = randn(2 * 40 * 8);
  const a = nativeForward(n, c, q, k, v), b = nativeForward(n, c, q, k, v);
  assert.deepEqual(a.out, b.out, "same seed, same output");
  const other = nativeForward(n, { ...c, seed: c.seed + 1 }, q, k, v);
  assert.notDeepEqual(a.out, other.out, "another seed drops other weights");
  assert.deepEqual(a.lse, other.lse, "lse is taken before dropout");
  let kept = 0;
  for (let i = 0; i < 33; i++) for (let j = 0; j < 40; j++) kept += n.dropoutKeep(c.seed, 0, 0, i, j, 0.5) ? 1 : 0;
  assert.ok(kept > 0.4 * 1320 && kept < 0.6 * 1320, `keep rate ${kept / 1320}`);
});

test("native attnWeights: per-head and head-mean rows from the saved lse", { skip }, () => {
  const n = nk!;
  for (const [name, c] of ATTN_CASES) {
    const q = randn(c.B * c.H * c.Tq * c.D), k = randn(c.B * c.Hkv * c.Tk * c.D), v = randn(c.B * c.Hkv * c.Tk * c.Dv);
    const rowStart = Math.floor(c.Tq / 3), rowCount = c.Tq - rowStart - (c.Tq > 2 ? 1 : 0);
    const ref = refForward(c, q, k, v);
    const full = new Float64Array(c.B * c.H * rowCount * c.Tk), mean = new Float64Array(c.B * rowCount * c.Tk);
    for (let b = 0; b < c.B; b++) for (let h = 0; h < c.H; h++) for (let r = 0; r < rowCount; r++) {
      const i = rowStart + r, s = scores(c, q, k, b, h, i), L = ref.lse[(b * c.H + h) * c.Tq + i];
      for (let j = 0; j < c.Tk; j++) {
        const p = L === -Infinity ? 0 : Math.exp(s[j] - L);
        full[((b * c.H + h) * rowCount + r) * c.Tk + j] = p;
        mean[(b * rowCount + r) * c.Tk + j] += p / c.H;
      }
    }
    eachIsa(n, (isa) => {
      const { lse } = nativeForward(n, c, q, k, v);
      for (const [mode, want] of [[0, full], [1, mean]] as const) {
        const got = new Float32Array(want.length).fill(NaN);
        n.attnWeights(q, k, lse, got, c.B, c.H, c.Hkv, c.Tq, c.Tk, c.D, c.scale, c.causal, c.keyPad, c.mask, c.maskB, c.maskH, mode, rowStart, rowCount);
        close(`${isa} ${name} weights mode ${mode}`, got, want);
      }
    });
  }
});

// ---------------------------------------------------------------- rows
test("native layerNorm forward/backward (null affine, accumulated dw/db, threads)", { skip }, () => {
  const n = nk!;
  eachIsa(n, (isa) => {
    for (const [rows, D] of [[1, 1], [3, 17], [5, 64], [2, 129], [50, 768]]) for (const affine of [true, false]) {
      const x = randn(rows * D, 3), w = affine ? randn(D) : null, b = affine ? randn(D) : null, dy = randn(rows * D);
      const y = new Float32Array(rows * D), mean = new Float32Array(rows), rstd = new Float32Array(rows);
      n.layerNormForward(x, w, b, y, mean, rstd, rows, D, 1e-5);
      const wy = new Float64Array(rows * D), wm = new Float64Array(rows), wr = new Float64Array(rows);
      const wdx = new Float64Array(rows * D), wdw = new Float64Array(D).fill(0.5), wdb = new Float64Array(D).fill(-0.25);
      for (let r = 0; r < rows; r++) {
        let m = 0, v = 0;
        for (let j = 0; j < D; j++) m += x[r * D + j] / D;
        for (let j = 0; j < D; j++) v += (x[r * D + j] - m) ** 2 / D;
        const rs = 1 / Math.sqrt(v + 1e-5);
        wm[r] = m; wr[r] = rs;
        let sg = 0, sgx = 0;
        for (let j = 0; j < D; j++) {
          const xh = (x[r * D + j] - m) * rs, g = dy[r * D + j] * (w ? w[j] : 1);
          wy[r * D + j] = xh * (w ? w[j] : 1) + (b ? b[j] : 0);
          sg += g / D; sgx += g * xh / D;
          wdw[j] += dy[r * D + j] * xh; wdb[j] += dy[r * D + j];
        }
        for (let j = 0; j < D; j++) {
          const xh = (x[r * D + j] - m) * rs, g = dy[r * D + j] * (w ? w[j] : 1);
          wdx[r * D + j] = rs * (g - sg - xh * sgx);
        }
      }
      const tag = `${isa} layerNorm ${rows}x${D} affine=${affine}`;
      close(`${tag} y`, y, wy); close(`${tag} mean`, mean, wm); close(`${tag} rstd`, rstd, wr);
      const dx = new Float32Array(rows * D), dw = new Float32Array(D).fill(0.5), db = new Float32Array(D).fill(-0.25);
      n.layerNormBackward(dy, x, w, mean, rstd, dx, dw, db, rows, D);
      close(`${tag} dx`, dx, wdx); close(`${tag} dw`, dw, wdw); close(`${tag} db`, db, wdb);
    }
  });
});

test("native softmax forward/backward (-inf entries, all -inf row → NaN like the reference)", { skip }, () => {
  const n = nk!;
  eachIsa(n, (isa) => {
    for (const [rows, cols] of [[1, 1], [3, 17], [4, 63], [2, 129], [40, 1000]]) {
      const x = randn(rows * cols, 5);
      for (let i = 0; i < x.length; i++) if (rand() < 0.1) x[i] = -Infinity;
      x[0] = 0.5; // keep row 0 alive...
      if (rows > 2) x.fill(-Infinity, cols, 2 * cols); // ...and kill row 1
      const want = new Float64Array(x.length), dy = randn(x.length), wdx = new Float64Array(x.length);
      for (let r = 0; r < rows; r++) {
        let m = -Infinity, s = 0;
        for (let j = 0; j < cols; j++) m = Math.max(m, x[r * cols + j]);
        for (let j = 0; j < cols; j++) s += m === -Infinity ? NaN : Math.exp(x[r * cols + j] - m);
        for (let j = 0; j < cols; j++) want[r * cols + j] = m === -Infinity ? NaN : Math.exp(x[r * cols + j] - m) / s;
      }
      const y = new Float32Array(x.length);
      n.softmaxLastDim(x, y, rows, cols);
      close(`${isa} softmax ${rows}x${cols}`, y, want);
      const yy = Float32Array.from(y, (t) => (Number.isNaN(t) ? 0 : t));
      for (let r = 0; r < rows; r++) {
        let dot = 0;
        for (let j = 0; j < cols; j++) dot += yy[r * cols + j] * dy[r * cols + j];
        for (let j = 0; j < cols; j++) wdx[r * cols + j] = yy[r * cols + j] * (dy[r * cols + j] - dot);
      }
      const dx = new Float32Array(x.length);
      n.softmaxBackward(yy, dy, dx, rows, cols);
      close(`${isa} softmaxBackward ${rows}x${cols}`, dx, wdx);
    }
  });
});

test("native argument validation names the argument and never writes out of bounds", { skip }, () => {
  const n = nk!;
  const f = (len: number) => new Float32Array(len);
  assert.throws(() => (n.gemm as (...a: unknown[]) => void)(false, false, 2, 2, 2), /expected 20 arguments/);
  assert.throws(() => n.gemm(false, false, 2, 2, 2, 1, new Float64Array(4) as unknown as Float32Array, 0, 2, f(4), 0, 2, 0, f(4), 0, 2, 1, 0, 0, 0),
    (e: Error) => e instanceof TypeError && /'A'/.test(e.message));
  assert.throws(() => n.gemm(false, false, 2, 2, 2, 1, f(4), 0, 2, f(4), 0, 2, 0, f(3), 0, 2, 1, 0, 0, 0),
    (e: Error) => e instanceof RangeError && /'C'/.test(e.message));
  assert.throws(() => n.gemm(false, false, 2, 2, 2, 1, f(4), 0, 1, f(4), 0, 2, 0, f(4), 0, 2, 1, 0, 0, 0), /lda/);
  assert.throws(() => n.gemm(false, false, 2, 2, 2, 1, f(4), 0, 2, f(4), 0, 2, 0, f(8), 0, 2, 2, 0, 0, 0), /strideC/);
  const shared = f(8);
  assert.throws(() => n.gemm(false, false, 2, 2, 2, 1, shared, 0, 2, f(4), 0, 2, 0, shared, 2, 2, 1, 0, 0, 0), /overlap/);
  assert.throws(() => n.gemm(false, false, 2, 2, 2, 1.5, f(4), 0, 2, f(4), 0, 2, 0, f(4), 0, 2, 1.5, 0, 0, 0), /'batch'/);
  const q = f(2 * 3 * 4), k = f(2 * 3 * 4), v = f(2 * 3 * 4), out = f(2 * 3 * 4), lse = f(2 * 3);
  const fwd = (o: Partial<Record<string, unknown>>) => () => (n.attnForward as (...a: unknown[]) => void)(
    o.q ?? q, k, v, o.out ?? out, lse, 1, o.H ?? 2, o.Hkv ?? 2, 3, 3, 4, 4, 0.5, false, o.keyPad ?? null, o.mask ?? null, 1, 1, o.p ?? 0, 7);
  assert.doesNotThrow(fwd({}));
  assert.throws(fwd({ H: 2, Hkv: 3 }), /multiple of Hkv/);
  assert.throws(fwd({ q: f(5) }), (e: Error) => e instanceof RangeError && /'q'/.test(e.message));
  assert.throws(fwd({ out: q }), /share memory/);
  assert.throws(fwd({ keyPad: new Uint8Array(2) }), /'keyPad'/);
  assert.throws(fwd({ mask: [1, 2] }), (e: Error) => e instanceof TypeError && /'attnMask'/.test(e.message));
  assert.throws(fwd({ p: 1 }), /dropoutP/);
  assert.throws(() => n.attnWeights(q, k, lse, f(2 * 2 * 3), 1, 2, 2, 3, 3, 4, 0.5, false, null, null, 1, 1, 0, 2, 2), /exceed Tq/);
  assert.throws(() => n.layerNormForward(f(6), f(2), null, f(6), null, null, 2, 3, 1e-5), /'w'/);
  assert.throws(() => n.softmaxLastDim(f(6), f(6).subarray(1), 2, 3), /'y'/);
  assert.throws(() => n.setNumThreads(0), RangeError);
});
