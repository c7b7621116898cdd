// Fused scaled-dot-product attention in WGSL, with the contract of the CPU kernels (backend/ref/attention.ts): q (B,H,Tq,D),
// k (B,Hkv,Tk,D), v (B,Hkv,Tk,Dv), query head h reads kv head ⌊h/(H/Hkv)⌋ (GQA); causal (top-left), key padding and an
// additive (maskB, maskH, Tq, Tk) mask; a row that sees no key gives output 0 and lse −∞; NaN scores make their row NaN.
//  - forward (FlashAttention-2): a workgroup owns BR query rows (one per thread, accumulator in registers) and streams
//    BC-key tiles of K and V through workgroup memory with the online softmax; under causal masking the tiles past the
//    block's last query are never loaded (block skipping). Saves only the per-row log-sum-exp.
//  - weights: recomputed from the saved lse (exp(s − lse)), per head or averaged over heads — the maps explanations need.
//  - backward: Δ = rowsum(dO ⊙ O); dK/dV with one thread per key row over the query rows; dQ with one thread per query
//    row over the keys (no float atomics in WGSL, so the two are separate passes, each recomputing P from the lse).
import type { Tensor } from "../../tensor.js";
import type { GpuRuntime } from "./runtime.js";
import { buf } from "./elementwise.js";
import { MATH, f32bits } from "./wgsl.js";
import { record, isGradEnabled } from "../../autograd.js";
import { uninit, zerosOf } from "../../ops/util.js";
import { unsupportedOn } from "../../device.js";
import { shapeStr } from "../../shape.js";
import { where } from "../../ops/elementwise.js";
import { Tensor as TensorClass } from "../../tensor.js";
import { windowArgs } from "../../ops/attention.js";
import { defaultGenerator, type Generator } from "../../random.js";

interface Cfg { B: number; H: number; Hkv: number; Tq: number; Tk: number; D: number; Dv: number; scale: number; causal: boolean;
  mask: Tensor | null; maskB: number; maskH: number; pad: Tensor | null;
  /** sliding window: key j visible from query i iff i + lo ≤ j ≤ i + hi (ops/attention.ts windowArgs) */
  window: { lo: number; hi: number } | null;
  /** attention dropout: the counter-based mask of backend/dropout-hash.ts, so every backend drops the same weights */
  dropout: { seed: number; threshold: number; scale: number } | null }

const BR = 32;
const UNI = /* wgsl */ `
fn p(i: i32) -> i32 { return U[i / 4][i % 4]; }`;

/**
 * Parameter block (uniform, 32 × i32): 0–7 dims, scale, mask dims; 8–12 offsets of q, k, v, mask, padding; 13 rows
 * B·H·Tq; 14–17 per-pass offsets (dO, O, lse; dV base); 24–25 window lo/hi; 26 dropout seed, 27 its keep
 * threshold (keep iff hash >> 8 ≥ threshold), 28 its scale 1/(1 − p) (f32 bits).
 */
function params(c: Cfg, q: Tensor, k: Tensor, v: Tensor, extra: number[] = []): Int32Array {
  const a = new Int32Array(32);
  a.set([c.B, c.H, c.Hkv, c.Tq, c.Tk, f32bits(c.scale), c.maskB, c.maskH, q.offset, k.offset, v.offset, c.mask?.offset ?? 0, c.pad?.offset ?? 0,
    c.B * c.H * c.Tq, ...extra]);
  if (c.window) { a[24] = c.window.lo; a[25] = c.window.hi; }
  if (c.dropout) { a[26] = c.dropout.seed | 0; a[27] = c.dropout.threshold; a[28] = f32bits(c.dropout.scale); }
  return a;
}

/** keepScale(b, h, i, j): the dropout factor of one weight (0 or 1/(1 − p)), the hash of backend/dropout-hash.ts. */
const DROPOUT = /* wgsl */ `
fn mix_(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u; x *= 0x7feb352du;
  x ^= x >> 15u; x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
fn keepScale(b: i32, h: i32, i: i32, j: i32) -> f32 {
  var x = mix_(bitcast<u32>(p(26)) ^ 0x9e3779b9u);
  x = mix_(x ^ u32(b)); x = mix_(x ^ u32(h)); x = mix_(x ^ u32(i)); x = mix_(x ^ u32(j));
  return select(0.0, bitcast<f32>(p(28)), (x >> 8u) >= u32(p(27)));
}`;

/** The score of (query i of head h, key j) into `s`, or `continue`/`skip` when the key is masked out. */
function scoreCode(c: Cfg, qv: string, kAt: (d: string) => string, onMasked: string): string {
  return `
    ${c.causal ? `if (j > i) { ${onMasked} }` : ""}
    ${c.window ? `if (j < i + p(24) || j > i + p(25)) { ${onMasked} }` : ""}
    ${c.pad ? `if (PAD[p(12) + b * p(4) + j] != 0u) { ${onMasked} }` : ""}
    var s = 0.0;
    for (var d = 0; d < ${c.D}; d++) { s = fma(${qv}[d], ${kAt("d")}, s); }
    s = s * scale;
    ${c.mask ? `s = s + M[p(11) + (((select(b, 0, p(6) == 1) * p(7) + select(h, 0, p(7) == 1)) * p(3) + i) * p(4) + j)];` : ""}`;
}

/** A kernel's storage bindings in order: name and whether it is written. The launcher binds buffers by these names. */
type Names = readonly (readonly [string, boolean])[];

const header = (c: Cfg, names: Names) => names.map(([n, rw], i) =>
  `@group(0) @binding(${i}) var<storage, ${rw ? "read_write" : "read"}> ${n}: array<${n === "PAD" ? "u32" : "f32"}>;`).join("\n") +
  `\n@group(0) @binding(${names.length}) var<uniform> U: array<vec4<i32>, 8>;\n${MATH}\n${UNI}\n${c.dropout ? DROPOUT : ""}\n` +
  // optional operands are bound (a dummy) even when unused: "auto" layouts would drop them
  `fn touch() { ${names.filter(([n]) => n === "M" || n === "PAD").map(([n]) => `_ = ${n}[0];`).join(" ")} }`;

const FWD: Names = [["Q", false], ["Kt", false], ["V", false], ["M", false], ["PAD", false], ["O", true], ["L", true]];
const WTS: Names = [["Q", false], ["Kt", false], ["L", false], ["M", false], ["PAD", false], ["W", true]];
const DELTA: Names = [["O", false], ["G", false], ["L", false], ["LD", true]];
const DKV: Names = [["Q", false], ["Kt", false], ["V", false], ["G_", false], ["LD", false], ["M", false], ["PAD", false], ["DKV", true]];
const DQ: Names = [["Q", false], ["Kt", false], ["V", false], ["G_", false], ["LD", false], ["M", false], ["PAD", false], ["DQ", true]];

function forwardCode(c: Cfg, BC: number): string {
  const { D, Dv } = c;
  return `${header(c, FWD)}
var<workgroup> Ks: array<f32, ${BC * D}>;
var<workgroup> Vs: array<f32, ${BC * Dv}>;
@compute @workgroup_size(${BR}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  touch();
  let H = p(1); let Hkv = p(2); let Tq = p(3); let Tk = p(4); let scale = bitcast<f32>(p(5));
  let qb = i32(wid.x); let h = i32(wid.y); let b = i32(wid.z); let t = i32(lid.x);
  let i = qb * ${BR} + t; let valid = i < Tq;
  let hk = h / (H / Hkv);
  let row = (b * H + h) * Tq + i;
  var q: array<f32, ${D}>;
  if (valid) { for (var d = 0; d < ${D}; d++) { q[d] = Q[p(8) + row * ${D} + d]; } }
  var acc: array<f32, ${Dv}>;
  var m = ninf(); var l = 0.0; var bad = false;
  let kBase = p(9) + (b * Hkv + hk) * Tk * ${D}; let vBase = p(10) + (b * Hkv + hk) * Tk * ${Dv};
  var kEnd = Tk;
  ${c.causal ? `kEnd = min(Tk, (qb + 1) * ${BR});   // causal block skipping: later keys are masked for every row here` : ""}
  for (var j0 = 0; j0 < kEnd; j0 += ${BC}) {
    for (var e = t; e < ${BC * D}; e += ${BR}) { let j = j0 + e / ${D}; var x = 0.0; if (j < Tk) { x = Kt[kBase + j0 * ${D} + e]; } Ks[e] = x; }
    for (var e = t; e < ${BC * Dv}; e += ${BR}) { let j = j0 + e / ${Dv}; var x = 0.0; if (j < Tk) { x = V[vBase + j0 * ${Dv} + e]; } Vs[e] = x; }
    workgroupBarrier();
    if (valid) {
      for (var jj = 0; jj < ${BC}; jj++) {
        let j = j0 + jj;
        if (j >= Tk) { break; }
        ${scoreCode(c, "q", (d) => `Ks[jj * ${D} + ${d}]`, "continue;")}
        if (isnan_(s) || s == inf()) { bad = true; continue; }
        if (s == ninf()) { continue; }
        if (s > m) {
          let corr = exp(m - s);
          l = l * corr;
          for (var d = 0; d < ${Dv}; d++) { acc[d] = acc[d] * corr; }
          m = s;
        }
        let pj = exp(s - m);
        l = l + pj;
        let pv = pj${c.dropout ? " * keepScale(b, h, i, j)" : ""};   // dropout scales the weights applied to V, not the normaliser
        for (var d = 0; d < ${Dv}; d++) { acc[d] = fma(pv, Vs[jj * ${Dv} + d], acc[d]); }
      }
    }
    workgroupBarrier();
  }
  if (!valid) { return; }
  if (bad) {
    L[row] = nan();
    for (var d = 0; d < ${Dv}; d++) { O[row * ${Dv} + d] = nan(); }
  } else if (l == 0.0) {
    L[row] = ninf();
    for (var d = 0; d < ${Dv}; d++) { O[row * ${Dv} + d] = 0.0; }
  } else {
    L[row] = m + log(l);
    let inv = 1.0 / l;
    for (var d = 0; d < ${Dv}; d++) { O[row * ${Dv} + d] = acc[d] * inv; }
  }
}`;
}

/** P from the lse: "full" → (B,H,Tq,Tk), rows renormalised like the CPU path; "mean" → (B,Tq,Tk) head mean. */
function weightsCode(c: Cfg, mean: boolean): string {
  const { D } = c;
  const rowBody = `
    let row = (b * H + h) * Tq + i;
    let Lr = L[row];
    var q: array<f32, ${D}>;
    for (var d = 0; d < ${D}; d++) { q[d] = Q[p(8) + row * ${D} + d]; }
    let kBase = p(9) + (b * Hkv + h / (H / Hkv)) * Tk * ${D};
    var sum = 0.0;
    for (var j = 0; j < Tk; j++) {
      var pj = 0.0;
      loop {
        ${scoreCode(c, "q", (d) => `Kt[kBase + j * ${D} + ${d}]`, "break;")}
        if (Lr == ninf()) { break; }
        if (isnan_(s) || isnan_(Lr)) { pj = nan(); break; }
        pj = exp(s - Lr);
        break;
      }
      ${mean ? "W[o + j] = W[o + j] + pj * invH;" : "W[o + j] = pj; sum = sum + pj;"}
    }
    ${mean ? "" : "if (sum > 0.0) { let inv = 1.0 / sum; for (var j = 0; j < Tk; j++) { W[o + j] = W[o + j] * inv; } }"}`;
  return `${header(c, WTS)}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  touch();
  let H = p(1); let Hkv = p(2); let Tq = p(3); let Tk = p(4); let scale = bitcast<f32>(p(5));
  let i = i32(gid.x); let b = i32(gid.z);
  if (i >= Tq) { return; }
  ${mean
    ? `let o = (b * Tq + i) * Tk; let invH = 1.0 / f32(H);
  for (var j = 0; j < Tk; j++) { W[o + j] = 0.0; }
  for (var h = 0; h < H; h++) { ${rowBody} }`
    : `let h = i32(gid.y); let o = ((b * H + h) * Tq + i) * Tk; ${rowBody}`}
}`;
}

function deltaCode(c: Cfg): string {
  return `${header(c, DELTA)}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = i32(gid.y * nwg.x * 64u + gid.x); let R = p(13);
  if (row >= R) { return; }
  var s = 0.0;
  for (var d = 0; d < ${c.Dv}; d++) { s = fma(G[p(14) + row * ${c.Dv} + d], O[p(15) + row * ${c.Dv} + d], s); }
  LD[row] = L[p(16) + row];
  LD[R + row] = s;
}`;
}

/** Shared by the dK/dV and dQ passes: p, dS of (row i of head h, key j) given q_i, dO_i, k_j, v_j. */
function pdsCode(c: Cfg, qv: string, kAt: (d: string) => string, vAt: (d: string) => string, dov: string, onSkip: string): string {
  return `
      ${scoreCode(c, qv, kAt, onSkip)}
      let Lr = LD[row];
      if (Lr == ninf()) { ${onSkip} }
      var pj = exp(s - Lr);
      if (isnan_(s) || isnan_(Lr)) { pj = nan(); }
      if (pj == 0.0) { ${onSkip} }
      var dp = 0.0;
      for (var d = 0; d < ${c.Dv}; d++) { dp = fma(${dov}[d], ${vAt("d")}, dp); }
      let ks = ${c.dropout ? "keepScale(b, h, i, j)" : "1.0"};
      let dS = pj * (dp * ks - LD[p(13) + row]) * scale;`;
}

function dkvCode(c: Cfg): string {
  const { D, Dv } = c;
  return `${header(c, DKV)}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  touch();
  let H = p(1); let Hkv = p(2); let Tq = p(3); let Tk = p(4); let scale = bitcast<f32>(p(5));
  let j = i32(gid.x); let hk = i32(gid.y); let b = i32(gid.z);
  if (j >= Tk) { return; }
  let kr = (b * Hkv + hk) * Tk + j;
  var kj: array<f32, ${D}>; var vj: array<f32, ${Dv}>; var dk: array<f32, ${D}>; var dv: array<f32, ${Dv}>;
  for (var d = 0; d < ${D}; d++) { kj[d] = Kt[p(9) + kr * ${D} + d]; }
  for (var d = 0; d < ${Dv}; d++) { vj[d] = V[p(10) + kr * ${Dv} + d]; }
  let grp = H / Hkv;
  for (var h = hk * grp; h < (hk + 1) * grp; h++) {
    for (var i = ${c.causal ? "j" : "0"}; i < Tq; i++) {
      let row = (b * H + h) * Tq + i;
      var qi: array<f32, ${D}>; var gi: array<f32, ${Dv}>;
      for (var d = 0; d < ${D}; d++) { qi[d] = Q[p(8) + row * ${D} + d]; }
      for (var d = 0; d < ${Dv}; d++) { gi[d] = G_[p(14) + row * ${Dv} + d]; }
      ${pdsCode(c, "qi", (d) => `kj[${d}]`, (d) => `vj[${d}]`, "gi", "continue;")}
      for (var d = 0; d < ${Dv}; d++) { dv[d] = fma(pj * ks, gi[d], dv[d]); }
      for (var d = 0; d < ${D}; d++) { dk[d] = fma(dS, qi[d], dk[d]); }
    }
  }
  for (var d = 0; d < ${D}; d++) { DKV[kr * ${D} + d] = dk[d]; }
  let dvBase = p(17);
  for (var d = 0; d < ${Dv}; d++) { DKV[dvBase + kr * ${Dv} + d] = dv[d]; }
}`;
}

function dqCode(c: Cfg): string {
  const { D, Dv } = c;
  return `${header(c, DQ)}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  touch();
  let H = p(1); let Hkv = p(2); let Tq = p(3); let Tk = p(4); let scale = bitcast<f32>(p(5));
  let i = i32(gid.x); let h = i32(gid.y); let b = i32(gid.z);
  if (i >= Tq) { return; }
  let row = (b * H + h) * Tq + i;
  let kvr = (b * Hkv + h / (H / Hkv)) * Tk;
  var qi: array<f32, ${D}>; var gi: array<f32, ${Dv}>; var dq: array<f32, ${D}>;
  for (var d = 0; d < ${D}; d++) { qi[d] = Q[p(8) + row * ${D} + d]; }
  for (var d = 0; d < ${Dv}; d++) { gi[d] = G_[p(14) + row * ${Dv} + d]; }
  for (var j = 0; j < ${c.causal ? "min(Tk, i + 1)" : "Tk"}; j++) {
    ${pdsCode(c, "qi", (d) => `Kt[p(9) + (kvr + j) * ${D} + ${d}]`, (d) => `V[p(10) + (kvr + j) * ${Dv} + ${d}]`, "gi", "continue;")}
    for (var d = 0; d < ${D}; d++) { dq[d] = fma(dS, Kt[p(9) + (kvr + j) * ${D} + d], dq[d]); }
  }
  for (var d = 0; d < ${D}; d++) { DQ[row * ${D} + d] = dq[d]; }
}`;
}

interface SdpaOpts {
  attnMask?: Tensor | null; mask?: Tensor | null; keyPaddingMask?: Tensor | null; causal?: boolean; dropout?: number; scale?: number;
  returnWeights?: boolean | "full" | "mean"; impl?: "fused" | "math"; alibiSlopes?: Float32Array | readonly number[] | null; alibiOffset?: number;
  maskedRows?: "zero" | "uniform"; generator?: Generator; window?: number | readonly [number, number] | null; windowOffset?: number;
}

/** scaledDotProductAttention on WebGPU tensors (called by ops/attention.ts once q/k/v/masks are known to be on the device). */
export function attentionFused(rt: GpuRuntime) {
  return (q0: Tensor, k0: Tensor, v0: Tensor, opts: SdpaOpts): { out: Tensor; weights: Tensor | null } => {
    if (opts.impl === "math") throw unsupportedOn("webgpu", "scaledDotProductAttention impl \"math\"");
    if (opts.maskedRows === "uniform") throw unsupportedOn("webgpu", "scaledDotProductAttention maskedRows \"uniform\"");
    if (opts.alibiSlopes) throw unsupportedOn("webgpu", "scaledDotProductAttention with alibiSlopes (pass the bias as an additive attnMask)");
    const three = q0.ndim === 3 && k0.ndim === 3 && v0.ndim === 3;
    const q = three ? q0.unsqueeze(1) : q0, k = three ? k0.unsqueeze(1) : k0, v = three ? v0.unsqueeze(1) : v0;
    if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
      throw new Error(`scaledDotProductAttention: expects 4-D (B,H,T,D) or 3-D (B,T,D) q/k/v, got ${shapeStr(q0.shape)}, ${shapeStr(k0.shape)}, ${shapeStr(v0.shape)}`);
    }
    const [B, H, Tq, D] = q.shape, [Bk, Hkv, Tk, Dk] = k.shape, [Bv, Hv, Tv, Dv] = v.shape;
    if (Bk !== B || Bv !== B || Hv !== Hkv || Tv !== Tk || Dk !== D || H % Hkv !== 0) {
      throw new Error(`scaledDotProductAttention: incompatible shapes q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)} ` +
        `(need matching batch, k/v with the same heads and length, q/k the same head dim, query heads a multiple of kv heads)`);
    }
    if (D + Dv > 1024) throw unsupportedOn("webgpu", `scaledDotProductAttention with head dims ${D} + ${Dv} > 1024`);
    // masks: an additive float (maskB, maskH, Tq, Tk) and the (B, Tk) key padding, both on the device
    let m = opts.attnMask ?? opts.mask ?? null, maskB = 1, maskH = 1, mask: Tensor | null = null;
    if (m) {
      if (three && m.ndim === 3) m = m.unsqueeze(1);
      if (m.ndim > 4) throw new Error(`scaledDotProductAttention: attnMask has ${m.ndim} dims; expected ≤ 4 broadcastable to [${B}, ${H}, ${Tq}, ${Tk}]`);
      const s4 = [...new Array(4 - m.ndim).fill(1), ...m.shape], want = [B, H, Tq, Tk];
      if (s4.some((d, i) => d !== 1 && d !== want[i])) throw new Error(`scaledDotProductAttention: attnMask ${shapeStr(m.shape)} does not broadcast to [${B}, ${H}, ${Tq}, ${Tk}]`);
      [maskB, maskH] = s4;
      const full = m.reshape(s4).expand([maskB, maskH, Tq, Tk]);
      mask = (m.dtype === "bool" ? where(full, 0, -Infinity) : full.float()).contiguous();
    }
    let pad: Tensor | null = null;
    if (opts.keyPaddingMask) {
      const kp = opts.keyPaddingMask;
      if (kp.dtype !== "bool") throw new Error(`keyPaddingMask must be a bool tensor (true = padding), got ${kp.dtype}`);
      if (kp.ndim !== 2 || kp.shape[0] !== B || kp.shape[1] !== Tk) throw new Error(`keyPaddingMask has shape ${shapeStr(kp.shape)}, expected [${B}, ${Tk}] (batch, key length)`);
      pad = kp.contiguous();
    }
    const p = opts.dropout ?? 0;
    if (!(p >= 0 && p < 1)) throw new Error(`scaledDotProductAttention: dropout must be in [0, 1), got ${p}`);
    // the seed is drawn exactly as on the CPU (one nextU32 per call), so the same generator state drops the same weights
    const dropout = p > 0 ? { seed: (opts.generator ?? defaultGenerator).nextU32(), threshold: Math.ceil(p * 16777216), scale: 1 / (1 - p) } : null;
    const c: Cfg = { B, H, Hkv, Tq, Tk, D, Dv, scale: opts.scale ?? 1 / Math.sqrt(D), causal: !!opts.causal, mask, maskB, maskH, pad,
      window: windowArgs(opts, Tq, Tk), dropout };
    const qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
    const out = uninit([B, H, Tq, Dv], "float32", q), lse = uninit([B, H, Tq], "float32", q);
    // every pass binds by name from these (plus its own outputs) and reads the same parameter block
    const shared: Record<string, GPUBuffer> = { Q: buf(qc), Kt: buf(kc), V: buf(vc), M: mask ? buf(mask) : rt.dummy(), PAD: pad ? buf(pad) : rt.dummy() };
    const launch = (names: Names, code: string, own: Record<string, GPUBuffer>, groups: [number, number, number], extra: number[] = []) =>
      rt.dispatch(code, names.map(([n]) => own[n] ?? shared[n]), params(c, qc, kc, vc, extra), groups, true);
    const BC = Math.max(1, Math.min(32, Math.floor(4096 / (D + Dv))));
    launch(FWD, forwardCode(c, BC), { O: buf(out), L: buf(lse) }, [Math.ceil(Tq / BR), H, B]);
    let weights: Tensor | null = null;
    const mode = opts.returnWeights ? (opts.returnWeights === "mean" ? "mean" : "full") : null;
    if (mode && Tk > 0) {
      weights = uninit(mode === "full" ? [B, H, Tq, Tk] : [B, Tq, Tk], "float32", q);
      launch(WTS, weightsCode(c, mode === "mean"), { L: buf(lse), W: buf(weights) }, [Math.ceil(Tq / 64), mode === "full" ? H : 1, B]);
    } else if (mode) weights = zerosOf(mode === "full" ? [B, H, Tq, Tk] : [B, Tq, Tk], "float32", q);
    if (isGradEnabled() && (q.requiresGrad || k.requiresGrad || v.requiresGrad)) {
      record(out, "scaledDotProductAttention", [q, k, v], (g) => {
        const gc = g.contiguous();
        const R = B * H * Tq;
        const ld = uninit([2 * R], "float32", q);
        launch(DELTA, deltaCode(c), { O: buf(out), G: buf(gc), L: buf(lse), LD: buf(ld) },
          [Math.min(Math.ceil(R / 64), 65535), Math.ceil(Math.ceil(R / 64) / 65535), 1], [gc.offset, out.offset, lse.offset]);
        // dK and dV in one buffer (8 storage bindings per stage is the WebGPU minimum), handed out as two views
        const nK = B * Hkv * Tk * D, nV = B * Hkv * Tk * Dv;
        const dkv = uninit([nK + nV], "float32", q);
        const dk = new TensorClass(dkv.storage, k.shape, undefined, 0), dv = new TensorClass(dkv.storage, v.shape, undefined, nK);
        dkv.dispose();
        const back = { G_: buf(gc), LD: buf(ld) };
        launch(DKV, dkvCode(c), { ...back, DKV: buf(dk) }, [Math.ceil(Tk / 64), Hkv, B], [gc.offset, 0, 0, nK]);
        const dq = uninit(q.shape, "float32", q);
        launch(DQ, dqCode(c), { ...back, DQ: buf(dq) }, [Math.ceil(Tq / 64), H, B], [gc.offset]);
        ld.dispose();
        return [dq, dk, dv];
      }, [qc, kc, vc, lse, ...(mask ? [mask] : []), ...(pad ? [pad] : [])]);
    }
    const o = three ? out.squeeze(1) : out;
    return { out: o, weights: three && weights && weights.ndim === 4 ? weights.squeeze(1) : weights };
  };
}
