// Fused attention on the Wasm kernels (FlashAttention-2 style): the Kernels.attnForward / attnBackward /
// attnWeights contract, plus the *Layout variants (q/k/v/out/… read and written through per-tensor strides).
// Heads are copied into the arena in waves of ≤ WAVE_BYTES, so its size is O(T·D) per head (plus an additive mask's
// (Tq, Tk) slice), never O(T²); each wave's tasks are spread over the executor's threads:
//   forward, task = (b, h, block of BQ queries), one attn_fwd_qblock call: Sᵀ = K_blk·(scale·log2e·Q_blk)ᵀ,
//            online softmax in query lanes, Oᵀ = Oᵀ⊙alpha + V_blkᵀ·Pᵀ; causal tiles above the diagonal are skipped.
//   backward, task = (b, kv head): for each query head of the group and each key block, attn_bwd_kblock:
//            S = Q·Kᵀ, dP = dO·Vᵀ, P = 2^(S' − lse2), dS = P⊙(dP − Δ)·scale, dVᵀ += dOᵀ·P, dKᵀ += Qᵀ·dS, dQ += dS·K
//            (the task owns its dK/dV and its heads' dQ: no two threads write the same output).
//   weights: recomputed from lse per (query block × key block) tile on the calling thread.
// A sliding window (AttnArgs.window) narrows each forward task to the key blocks its queries' bands reach and each
// backward key block to the query blocks that reach it; tiles the band cuts are masked in the kernel (band_t, bwd_ds).
import type { AttnArgs, AttnLayout, AttnTensorLayout } from "../kernels.js";
import { dropoutHash } from "../dropout-hash.js";
import type { WasmInstance } from "./module.js";
import type { ExecutorFor } from "./executor.js";
import { checkSpan, placeMatrix, takeMatrix, type Placed } from "./copy.js";
import { ATT_BK as BK, ATT_BQ as BQ, BWD, FWD, bwdScratchFloats, fwdScratchFloats } from "./attn-params.js";

const LOG2E = Math.LOG2E, LN2 = Math.LN2;

type Layout4 = AttnTensorLayout;

function dense(heads: number, T: number, D: number): Layout4 { return [0, heads * T * D, T * D, D]; }

function checkArgs(a: AttnArgs): void {
  for (const n of ["B", "H", "Hkv", "Tq", "Tk", "D", "Dv"] as const) {
    const v = a[n];
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`attention (wasm): ${n} must be a non-negative integer, got ${v}`);
  }
  if (a.Hkv === 0 ? a.H !== 0 : a.H % a.Hkv !== 0) throw new RangeError(`attention (wasm): H = ${a.H} is not a multiple of Hkv = ${a.Hkv}`);
  if (!(a.dropoutP >= 0 && a.dropoutP < 1)) throw new RangeError(`attention (wasm): dropoutP must be in [0, 1), got ${a.dropoutP}`);
  if (a.keyPad && a.keyPad.length < a.B * a.Tk) throw new RangeError(`attention (wasm): keyPad has ${a.keyPad.length} entries, need B·Tk = ${a.B * a.Tk}`);
  if (a.attnMask) {
    if (!((a.maskB === 1 || a.maskB === a.B) && (a.maskH === 1 || a.maskH === a.H))) {
      throw new RangeError(`attention (wasm): mask batch/head dims (${a.maskB}, ${a.maskH}) must be 1 or (B, H) = (${a.B}, ${a.H})`);
    }
    const need = a.maskB * a.maskH * a.Tq * a.Tk;
    if (a.attnMask.length < need) throw new RangeError(`attention (wasm): attnMask has ${a.attnMask.length} elements, need ${need}`);
  }
}

function checkLse(lse: Float32Array, a: AttnArgs): void {
  if (lse.length < a.B * a.H * a.Tq) throw new RangeError(`attention (wasm): lse has ${lse.length} elements, need B·H·Tq = ${a.B * a.H * a.Tq}`);
}

/** Row keys of the dropout hash for query rows i0 … i0+n−1: dropoutHash(seed, b, h, i, j) = mix(rowKey(i) ^ j). */
function rowKeys(out: Int32Array, at: number, seed: number, b: number, h: number, i0: number, n: number): void {
  for (let r = 0; r < n; r++) out[at + r] = rowKeyOf(seed, b, h, i0 + r);
}

function mix(x: number): number {
  x ^= x >>> 16; x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15; x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}
function rowKeyOf(seed: number, b: number, h: number, i: number): number {
  let x = mix((seed ^ 0x9e3779b9) >>> 0);
  x = mix((x ^ b) >>> 0);
  x = mix((x ^ h) >>> 0);
  return mix((x ^ i) >>> 0) | 0;
}
/** Self-check against dropout-hash.ts (the kernels must regenerate exactly its mask). */
export function rowKeyMatches(seed: number, b: number, h: number, i: number, j: number): boolean {
  return (mix((rowKeyOf(seed, b, h, i) ^ j) >>> 0) >>> 0) === dropoutHash(seed, b, h, i, j);
}

/** Bytes of operands placed per wave: heads are processed in groups small enough to stay under this. */
const WAVE_BYTES = 48 << 20;

export function makeAttention(inst: WasmInstance, executor: ExecutorFor) {
  const { exports: x, arena } = inst;

  /** Place one head (rows × cols at layout position) of `data`. */
  function placeHead(what: string, data: Float32Array, l: Layout4, b: number, h: number, row0: number, rows: number, cols: number,
    compact = false, padTo = cols): Placed {
    const off = l[0] + b * l[1] + h * l[2] + row0 * l[3];
    checkSpan(`attention (wasm, ${what})`, data.length, off, rows, cols, l[3]);
    return placeMatrix(arena, data, off, rows, cols, l[3], compact, padTo);
  }
  function takeHead(what: string, addr: number, srcLd: number, data: Float32Array, l: Layout4, b: number, h: number, rows: number, cols: number): void {
    const off = l[0] + b * l[1] + h * l[2];
    checkSpan(`attention (wasm, ${what})`, data.length, off, rows, cols, l[3]);
    takeMatrix(arena, addr, srcLd, rows, cols, data, off, l[3]);
  }
  /**
   * The heads a wave reads of some tensors, placed with one copy per array when that is cheap: every (b, h) head of
   * each tensor (rows × cols through its layout) lies in one span of its array, and when the span of an array is at
   * most twice what its heads hold (e.g. q, k and v as column blocks of one token-major projection (B, T, 3·H·D)),
   * the whole span is copied at once — instead of one copy per row per head — and heads are addresses inside it.
   * Returns the head addresses per tensor (`at(part, b, h)`) and `back()`, which copies the spans back into their
   * arrays (for an output written in place), or null (place head by head).
   */
  function placeSpans(parts: { what: string; data: Float32Array; l: Layout4; heads: [number, number][]; rows: number; cols: number; writeOnly?: boolean }[]):
    { at: (i: number, b: number, h: number) => Placed; back: () => void } | null {
    const spans = new Map<Float32Array, { lo: number; hi: number; need: number; base: number; fill: boolean }>();
    for (const p of parts) {
      for (const [b, h] of p.heads) checkSpan(`attention (wasm, ${p.what})`, p.data.length, p.l[0] + b * p.l[1] + h * p.l[2], p.rows, p.cols, p.l[3]);
      if (p.rows === 0 || p.cols === 0 || !p.heads.length) continue;
      let sp = spans.get(p.data);
      if (!sp) spans.set(p.data, sp = { lo: Infinity, hi: -Infinity, need: 0, base: 0, fill: false });
      if (!p.writeOnly || !tilesSpan(p)) sp.fill = true;
      for (const [b, h] of p.heads) {
        const off = p.l[0] + b * p.l[1] + h * p.l[2];
        sp.lo = Math.min(sp.lo, off); sp.hi = Math.max(sp.hi, off + (p.rows - 1) * p.l[3] + p.cols);
      }
      sp.need += p.heads.length * p.rows * p.cols;
    }
    for (const sp of spans.values()) if (sp.hi - sp.lo > 2 * sp.need) return null;
    for (const [data, sp] of spans) {
      sp.base = arena.allocF32(sp.hi - sp.lo);
      // an output whose heads write every element of its span is not copied in (parts of one array tile it only
      // when it is a single write-only part: then need = span below)
      if (sp.fill || sp.need !== sp.hi - sp.lo) arena.f32.set(data.subarray(sp.lo, sp.hi), sp.base >> 2);
    }
    return {
      at: (i, b, h) => {
        const p = parts[i], sp = spans.get(p.data)!;
        return { addr: sp.base + 4 * (p.l[0] + b * p.l[1] + h * p.l[2] - sp.lo), ld: 4 * p.l[3] };
      },
      back: () => { for (const [data, sp] of spans) data.set(arena.f32.subarray(sp.base >> 2, (sp.base >> 2) + sp.hi - sp.lo), sp.lo); },
    };
  }
  /**
   * Whether the heads of a part are pairwise disjoint blocks of one dense region: all heads 0 … hb−1 of each of its
   * batch items, laid out token-major (row = every head's columns side by side) or head-major (heads one after the
   * other), batch items not overlapping. With need = span this means the heads write every element of the span.
   */
  function tilesSpan(p: { l: Layout4; heads: [number, number][]; rows: number; cols: number }): boolean {
    const [, l1, l2, l3] = p.l, { rows, cols, heads } = p;
    const bs = [...new Set(heads.map(([b]) => b))], hb = heads.length / bs.length;
    if (!Number.isInteger(hb) || heads.some(([b, h], i) => b !== bs[Math.floor(i / hb)] || h !== i % hb)) return false;
    const tokenMajor = l2 === cols && l3 === hb * cols, headMajor = l3 === cols && l2 === rows * cols;
    return (tokenMajor || headMajor) && (bs.length === 1 || l1 >= rows * hb * cols);
  }

  /**
   * The additive (rows, Tk) mask of head (b, h) from query row0 on, in the arena: its address for row0 and its row
   * stride ldm (bytes), so that entry (row0 + r, j) is at addr + r·ldm + 4·j. With ALiBi it is written here, head by
   * head, as the given mask (if any) − slope_h·|i + offset − j|: the (H, Tq, Tk) bias never exists as a whole.
   * With a sliding window (band lo ≤ j − i ≤ hi narrower than Tk, `banded`) only the band is stored, row r's keys
   * i + lo … i + hi at r·Wb + (j − i − lo) (Wb = hi − lo + 1): ldm = 4·(Wb − 1) makes the same addr + r·ldm + 4·j reach
   * them, so the kernels read it unchanged and the slice is O(rows·W), not O(rows·Tk). Tiles the band cuts also read
   * neighbouring entries for keys outside it, which band_t / bwd_ds then set to −inf; zeroed margins of BQ + BK
   * floats on both sides (plus lo when the band starts right of the diagonal) keep those reads inside the slice.
   */
  function maskSlice(a: AttnArgs, b: number, h: number, row0: number, rows: number, banded = false): { addr: number; ldm: number } {
    const mb = a.maskB === 1 ? 0 : b, mh = a.maskH === 1 ? 0 : h;
    const Tk = a.Tk, off = ((mb * a.maskH + mh) * a.Tq + row0) * Tk, m = a.attnMask;
    const slope = a.alibi ? a.alibi.slopes[h] : 0, shift = row0 + (a.alibi?.offset ?? 0);
    const w = banded ? bandOf(a) : null;
    if (!w) {
      if (!a.alibi) return { addr: placeMatrix(arena, m!, off, rows, Tk, Tk).addr, ldm: 4 * Tk };
      const addr = arena.allocF32(rows * Tk), f = arena.f32, base = addr >> 2;
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < Tk; j++) f[base + r * Tk + j] = (m ? m[off + r * Tk + j] : 0) - slope * Math.abs(r + shift - j);
      }
      return { addr, ldm: 4 * Tk };
    }
    const { lo, hi } = w, Wb = hi - lo + 1, before = BQ + BK + 2 + Math.max(0, lo - row0), n = before + rows * Wb + BQ + BK + 2;
    const buf = arena.allocF32(n), f = arena.f32, base = (buf >> 2) + before;
    f.fill(0, buf >> 2, (buf >> 2) + n);
    for (let r = 0; r < rows; r++) {
      const i = row0 + r, j0 = Math.max(0, i + lo), j1 = Math.min(Tk - 1, i + hi), at = base + r * Wb - i - lo;
      for (let j = j0; j <= j1; j++) f[at + j] = (m ? m[off + r * Tk + j] : 0) - slope * Math.abs(r + shift - j);
    }
    return { addr: buf + 4 * (before - row0 - lo), ldm: 4 * (Wb - 1) };
  }
  /** The window's band when storing only it pays (narrower than the keys), else null. */
  function bandOf(a: AttnArgs): { lo: number; hi: number } | null {
    const w = a.window;
    return w && w.hi - w.lo + 1 < a.Tk ? w : null;
  }
  /** Floats of one head's mask slice (rows × Tk, or the band with its margins). */
  function maskFloats(a: AttnArgs, rows: number, banded: boolean): number {
    if (!(a.attnMask || a.alibi)) return 0;
    const w = banded ? bandOf(a) : null;
    return w ? rows * (w.hi - w.lo + 1) + 2 * (BQ + BK + 2) + Math.max(0, w.lo) : rows * a.Tk;
  }
  /** Key padding of every batch item as bytes in the arena (0 = none). */
  function placePad(a: AttnArgs): number {
    if (!a.keyPad) return 0;
    const p = arena.alloc(a.B * a.Tk);
    arena.u8.set(a.keyPad.subarray(0, a.B * a.Tk), p);
    return p;
  }
  /** Write a parameter block (field → value; f32 fields listed in `floats`). */
  function params(size: number, fields: Record<string, number>, layout: Record<string, number>, floats: readonly string[]): number {
    const p = arena.alloc(4 * size);
    const i32 = arena.i32, f32 = arena.f32, base = p >> 2;
    for (const [k, v] of Object.entries(fields)) {
      const at = base + layout[k];
      if (floats.includes(k)) f32[at] = v; else i32[at] = v;
    }
    return p;
  }
  const dropThr = (p: number) => Math.ceil(p * 16777216);
  const FWD_FLOATS = ["invKeep", "qscale"] as const;

  /** Split items into waves whose placed bytes stay under WAVE_BYTES (but at least `min` items each: one per thread). */
  function waves<T>(items: T[], bytesOf: (t: T) => number, min: number): T[][] {
    const out: T[][] = [];
    let cur: T[] = [], sum = 0;
    for (const it of items) {
      const n = bytesOf(it);
      if (cur.length >= min && sum + n > WAVE_BYTES) { out.push(cur); cur = []; sum = 0; }
      cur.push(it); sum += n;
    }
    if (cur.length) out.push(cur);
    return out;
  }

  /** Longest-processing-time-first assignment of weighted tasks to threads. */
  function assign<T extends { cost: number }>(tasks: T[], threads: number): T[][] {
    const lists: T[][] = Array.from({ length: threads }, () => []), load = new Array<number>(threads).fill(0);
    for (const t of [...tasks].sort((p, q) => q.cost - p.cost)) {
      let best = 0;
      for (let i = 1; i < threads; i++) if (load[i] < load[best]) best = i;
      lists[best].push(t); load[best] += t.cost;
    }
    return lists;
  }

  function forward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, a: AttnArgs, layout?: AttnLayout): void {
    checkArgs(a);
    checkLse(lse, a);
    const { B, H, Hkv, Tq, Tk, D, Dv } = a;
    if (B === 0 || H === 0 || Tq === 0) return;
    const lq = layout?.q ?? dense(H, Tq, D), lk = layout?.k ?? dense(Hkv, Tk, D), lv = layout?.v ?? dense(Hkv, Tk, Dv);
    const lo = layout?.out ?? dense(H, Tq, Dv);
    const G = H / Hkv, drop = a.dropoutP > 0, win = a.window ?? null;
    const ex = executor(2 * B * H * Tq * Tk * (D + Dv)), T = ex.threads;
    arena.reset();
    const scratch = Array.from({ length: T }, () => arena.allocF32(fwdScratchFloats(D, Dv)));
    const pad = placePad(a);
    const mark = arena.mark();
    const heads: [number, number][] = [];
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) heads.push([b, h]);
    const headBytes = 4 * (Tq * (D + Dv + 2 + (drop ? 1 : 0)) + maskFloats(a, Tq, true) + Tk * (D + Dv) / G);
    for (const wave of waves(heads, () => headBytes, T)) {
      arena.release(mark);
      const placed: { b: number; h: number; O: number; ldo: number; mOut: number; lOut: number }[] = [];
      const tasks: { cost: number; p: number }[] = [];
      // q, k, v of the whole wave in one copy per array where that is cheap (a fused projection), else head by head
      const kvHeads: [number, number][] = [];
      for (const [b, h] of wave) {
        const hk = Math.floor(h / G);
        if (!kvHeads.length || kvHeads[kvHeads.length - 1][0] !== b || kvHeads[kvHeads.length - 1][1] !== hk) kvHeads.push([b, hk]);
      }
      const spans = placeSpans([{ what: "q", data: q, l: lq, heads: wave, rows: Tq, cols: D },
        { what: "k", data: k, l: lk, heads: kvHeads, rows: Tk, cols: D }, { what: "v", data: v, l: lv, heads: kvHeads, rows: Tk, cols: Dv }]);
      // the output likewise: written in place into a copy of its span, copied back once
      const outSpan = placeSpans([{ what: "out", data: out, l: lo, heads: wave, rows: Tq, cols: Dv, writeOnly: true }]);
      let kvKey = "", K: Placed | null = null, V: Placed | null = null;
      for (const [b, h] of wave) {
        const hk = Math.floor(h / G);
        if (kvKey !== `${b},${hk}`) {
          kvKey = `${b},${hk}`;
          K = spans ? spans.at(1, b, hk) : placeHead("k", k, lk, b, hk, 0, Tk, D);
          V = spans ? spans.at(2, b, hk) : placeHead("v", v, lv, b, hk, 0, Tk, Dv);
        }
        const Q = spans ? spans.at(0, b, h) : placeHead("q", q, lq, b, h, 0, Tq, D);
        const Ms = a.attnMask || a.alibi ? maskSlice(a, b, h, 0, Tq, true) : null;
        const Op = outSpan ? outSpan.at(0, b, h) : { addr: arena.allocF32(Tq * Dv), ld: 4 * Dv };
        const O = Op.addr, mOut = arena.allocF32(Tq), lOut = arena.allocF32(Tq);
        const rk = drop ? arena.allocF32(Math.ceil(Tq / BQ) * BQ) : 0;
        if (drop) rowKeys(arena.i32, rk >> 2, a.seed, b, h, 0, Math.ceil(Tq / BQ) * BQ);
        placed.push({ b, h, O, ldo: Op.ld, mOut, lOut });
        for (let q0 = 0; q0 < Tq; q0 += BQ) {
          const nq = Math.min(BQ, Tq - q0);
          let kBeg = 0, kEnd = a.causal ? Math.min(Tk, q0 + nq) : Tk;
          if (win) { kBeg = Math.max(0, q0 + win.lo); kEnd = Math.max(kBeg, Math.min(kEnd, q0 + nq + win.hi)); }
          const p = params(FWD.SIZE, {
            K: K!.addr, ldk: K!.ld, V: V!.addr, ldv: V!.ld, Q: Q.addr + q0 * Q.ld, ldq: Q.ld, O: O + q0 * Op.ld, ldo: Op.ld,
            Tk, D, Dv, nq, q0, causal: a.causal ? 1 : 0, M: Ms ? Ms.addr + q0 * Ms.ldm : 0, ldm: Ms?.ldm ?? 0, pad: pad ? pad + b * Tk : 0,
            rk: rk ? rk + 4 * q0 : 0, thr: dropThr(a.dropoutP), invKeep: drop ? 1 / (1 - a.dropoutP) : 1, qscale: a.scale * LOG2E,
            scratch: 0, mOut: mOut + 4 * q0, lOut: lOut + 4 * q0, kBeg, kEnd, band: win ? 1 : 0, lo: win?.lo ?? 0, hi: win?.hi ?? 0,
          }, FWD, FWD_FLOATS);
          tasks.push({ cost: nq * (kEnd - kBeg + 8) * (D + Dv + 16), p });
        }
      }
      assign(tasks, T).forEach((list, t) => {
        for (const task of list) {
          arena.i32[(task.p >> 2) + FWD.scratch] = scratch[t];
          ex.push(t, "attn_fwd_qblock", task.p);
        }
      });
      ex.run();
      outSpan?.back();
      const f32 = arena.f32;
      for (const { b, h, O, ldo, mOut, lOut } of placed) {
        if (!outSpan) takeHead("out", O, ldo, out, lo, b, h, Tq, Dv);
        const row = (b * H + h) * Tq;
        for (let i = 0; i < Tq; i++) {
          const l = f32[(lOut >> 2) + i];
          // l = 0: the row sees no key (lse −inf: weights 0, no gradient); l NaN: a NaN score, lse NaN like the output
          lse[row + i] = l > 0 ? (f32[(mOut >> 2) + i] + Math.log2(l)) * LN2 : l === 0 ? -Infinity : NaN;
        }
      }
    }
  }

  function backward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, dout: Float32Array, lse: Float32Array,
    dq: Float32Array, dk: Float32Array, dv: Float32Array, a: AttnArgs, layout?: Required<AttnLayout>): void {
    checkArgs(a);
    checkLse(lse, a);
    const { B, H, Hkv, Tq, Tk, D, Dv } = a;
    const lq = layout?.q ?? dense(H, Tq, D), lk = layout?.k ?? dense(Hkv, Tk, D), lv = layout?.v ?? dense(Hkv, Tk, Dv);
    const lo = layout?.out ?? dense(H, Tq, Dv), ldo = layout?.dout ?? dense(H, Tq, Dv);
    const ldq = layout?.dq ?? dense(H, Tq, D), ldk = layout?.dk ?? dense(Hkv, Tk, D), ldv = layout?.dv ?? dense(Hkv, Tk, Dv);
    if (B === 0 || Hkv === 0) return;
    const G = H / Hkv, drop = a.dropoutP > 0, win = a.window ?? null;
    const Dp = Math.ceil(D / 8) * 8, nkb = Math.ceil(Tk / BK);
    const ex = executor(5 * B * H * Tq * Tk * (D + Dv)), T = ex.threads;
    arena.reset();
    const scratch = Array.from({ length: T }, () => arena.allocF32(bwdScratchFloats(D, Dv)));
    const pad = placePad(a);
    const mark = arena.mark();
    const groups: [number, number][] = [];
    for (let b = 0; b < B; b++) for (let hk = 0; hk < Hkv; hk++) groups.push([b, hk]);
    const groupBytes = 4 * (Tk * (Dp + Dv) + nkb * BK * (D + Dv) + G * (Tq * (D + 2 * Dv + Dp + 3) + maskFloats(a, Tq, true)));
    for (const wave of waves(groups, () => groupBytes, T)) {
      arena.release(mark);
      const done: { b: number; hk: number; dKT: number; dVT: number; heads: { h: number; dQ: number }[] }[] = [];
      const tasks: { cost: number; calls: [string, number[]][] }[] = [];
      for (const [b, hk] of wave) {
        const K = placeHead("k", k, lk, b, hk, 0, Tk, D, true, Dp), V = placeHead("v", v, lv, b, hk, 0, Tk, Dv, true);
        const dKT = arena.allocF32(nkb * D * BK), dVT = arena.allocF32(nkb * Dv * BK);
        arena.f32.fill(0, dKT >> 2, (dKT >> 2) + nkb * D * BK);
        arena.f32.fill(0, dVT >> 2, (dVT >> 2) + nkb * Dv * BK);
        const calls: [string, number[]][] = [];
        const heads: { h: number; dQ: number }[] = [];
        for (let h = hk * G; h < hk * G + G; h++) {
          const Q = placeHead("q", q, lq, b, h, 0, Tq, D), dO = placeHead("dout", dout, ldo, b, h, 0, Tq, Dv, true);
          const O = placeHead("out", out, lo, b, h, 0, Tq, Dv, true);
          const delta = arena.allocF32(Tq), lse2 = arena.allocF32(Tq), dQ = arena.allocF32(Tq * Dp);
          const rk = drop ? arena.allocF32(Tq) : 0;
          const Ms = a.attnMask || a.alibi ? maskSlice(a, b, h, 0, Tq, true) : null;
          const f32 = arena.f32;
          for (let i = 0; i < Tq; i++) {
            const L = lse[(b * H + h) * Tq + i];
            f32[(lse2 >> 2) + i] = L === -Infinity ? Infinity : L * LOG2E;
          }
          f32.fill(0, dQ >> 2, (dQ >> 2) + Tq * Dp);
          if (drop) rowKeys(arena.i32, rk >> 2, a.seed, b, h, 0, Tq);
          calls.push(["rows_dot", [dO.addr, O.addr, delta, Tq, Dv]]);
          for (let kb = 0; kb < nkb; kb++) {
            const j0 = kb * BK, nk = Math.min(BK, Tk - j0);
            // the query rows that can see keys [j0, j0 + nk): causal i ≥ j0, window j0 − hi ≤ i ≤ j0 + nk − 1 − lo
            let iBeg = a.causal ? j0 : 0, iEnd = Tq;
            if (win) { iBeg = Math.max(iBeg, j0 - win.hi); iEnd = Math.min(iEnd, j0 + nk - win.lo); }
            iBeg = Math.floor(Math.max(0, iBeg) / BQ) * BQ;
            if (iBeg >= iEnd) continue;   // dK, dV of this block stay 0
            const p = params(BWD.SIZE, {
              Q: Q.addr, ldq: Q.ld, dO: dO.addr, ldo: dO.ld, K: K.addr, ldk: K.ld, V: V.addr, ldv: V.ld, dQ, lddq: 4 * Dp,
              Tq, D, Dv, Dp, j0, nk, causal: a.causal ? 1 : 0, M: Ms?.addr ?? 0, ldm: Ms?.ldm ?? 0, pad: pad ? pad + b * Tk : 0,
              rk, thr: dropThr(a.dropoutP), invKeep: drop ? 1 / (1 - a.dropoutP) : 1, qscale: a.scale * LOG2E, scale: a.scale,
              lse2, delta, dKT: dKT + 4 * kb * D * BK, dVT: dVT + 4 * kb * Dv * BK, scratch: 0,
              iBeg, iEnd, band: win ? 1 : 0, lo: win?.lo ?? 0, hi: win?.hi ?? 0,
            }, BWD, ["invKeep", "qscale", "scale"]);
            calls.push(["attn_bwd_kblock", [p]]);
          }
          heads.push({ h, dQ });
        }
        done.push({ b, hk, dKT, dVT, heads });
        tasks.push({ cost: 1, calls });
      }
      assign(tasks, T).forEach((list, t) => {
        for (const task of list) for (const [fn, args] of task.calls) {
          if (fn === "attn_bwd_kblock") arena.i32[(args[0] >> 2) + BWD.scratch] = scratch[t];
          ex.push(t, fn, ...args);
        }
      });
      ex.run();
      for (const { b, hk, dKT, dVT, heads } of done) {
        for (const { h, dQ } of heads) takeHead("dq", dQ, 4 * Dp, dq, ldq, b, h, Tq, D);
        // dK, dV: the per-block (D, BK) / (Dv, BK) tiles transposed back into (Tk, D) / (Tk, Dv)
        const top = arena.mark();
        const dKb = arena.allocF32(Tk * D), dVb = arena.allocF32(Tk * Dv);
        for (let kb = 0; kb < nkb; kb++) {
          const j0 = kb * BK, nk = Math.min(BK, Tk - j0);
          x.transpose_scaled(dKT + 4 * kb * D * BK, 4 * BK, D, nk, dKb + 4 * j0 * D, 4 * D, D, 1);
          x.transpose_scaled(dVT + 4 * kb * Dv * BK, 4 * BK, Dv, nk, dVb + 4 * j0 * Dv, 4 * Dv, Dv, 1);
        }
        takeHead("dk", dKb, 4 * D, dk, ldk, b, hk, Tk, D);
        takeHead("dv", dVb, 4 * Dv, dv, ldv, b, hk, Tk, Dv);
        arena.release(top);
      }
    }
  }

  function weights(q: Float32Array, k: Float32Array, lse: Float32Array, outW: Float32Array, a: AttnArgs, mode: "full" | "mean",
    rowStart: number, rowCount: number, layout?: Pick<AttnLayout, "q" | "k">): void {
    checkArgs(a);
    checkLse(lse, a);
    const { B, H, Hkv, Tq, Tk, D } = a;
    if (!Number.isInteger(rowStart) || !Number.isInteger(rowCount) || rowStart < 0 || rowCount < 0 || rowStart + rowCount > Tq) {
      throw new RangeError(`attnWeights (wasm): rows [${rowStart}, ${rowStart + rowCount}) are not inside [0, Tq = ${Tq})`);
    }
    if (mode !== "full" && mode !== "mean") throw new RangeError(`attnWeights (wasm): mode must be "full" or "mean", got ${String(mode)}`);
    const need = mode === "full" ? B * H * rowCount * Tk : B * rowCount * Tk;
    if (outW.length < need) throw new RangeError(`attnWeights (wasm): output has ${outW.length} elements, need ${need}`);
    if (mode === "mean") outW.fill(0, 0, need);
    if (B === 0 || H === 0 || rowCount === 0 || Tk === 0) return;
    const lq = layout?.q ?? dense(H, Tq, D), lk = layout?.k ?? dense(Hkv, Tk, D);
    const G = H / Hkv, qscale = a.scale * LOG2E, R = rowCount;
    arena.reset();
    const KT = arena.allocF32(D * BK), S = arena.allocF32(BQ * BK), PD = arena.allocF32(BQ * BK), MT = arena.allocF32(BQ * BK);
    const colNeg = arena.allocF32(BK), lse2 = arena.allocF32(R), acc = arena.allocF32(R * Tk), P = arena.allocF32(R * Tk);
    const mark = arena.mark();
    for (let b = 0; b < B; b++) {
      if (mode === "mean") arena.f32.fill(0, acc >> 2, (acc >> 2) + R * Tk);
      for (let h = 0; h < H; h++) {
        arena.release(mark);
        const K = placeHead("k", k, lk, b, Math.floor(h / G), 0, Tk, D), Q = placeHead("q", q, lq, b, h, rowStart, R, D);
        const M = a.attnMask || a.alibi ? maskSlice(a, b, h, rowStart, R).addr : 0;   // the weights are R × Tk anyway
        let f32 = arena.f32;
        for (let i = 0; i < R; i++) {
          const L = lse[(b * H + h) * Tq + rowStart + i];
          f32[(lse2 >> 2) + i] = L === -Infinity ? Infinity : L * LOG2E;
        }
        for (let j0 = 0; j0 < Tk; j0 += BK) {
          const nk = Math.min(BK, Tk - j0);
          x.transpose_scaled(K.addr + j0 * K.ld, K.ld, nk, D, KT, 4 * BK, BK, 1);
          f32 = arena.f32;
          for (let j = 0; j < BK; j++) f32[(colNeg >> 2) + j] = j >= nk || (a.keyPad && a.keyPad[b * Tk + j0 + j]) ? -Infinity : 0;
          if (M && nk < BK) for (let i = 0; i < BQ; i++) f32.fill(0, (MT >> 2) + i * BK + nk, (MT >> 2) + (i + 1) * BK);
          for (let i0 = 0; i0 < R; i0 += BQ) {
            const nq = Math.min(BQ, R - i0);
            x.tgemm_rows(Q.addr + i0 * Q.ld, Q.ld, 4, KT, 4 * BK, S, 4 * BK, nq, BK, D, 0, 0);
            if (M) x.copy_tile(M + 4 * (i0 * Tk + j0), 4 * Tk, nq, nk, MT, 4 * BK);
            x.bwd_ds(S, 0, PD, BK, nq, lse2 + 4 * i0, 0, qscale, a.scale, colNeg, a.causal ? 1 : 0, rowStart + i0, j0,
              M ? MT : 0, 0, 0, 1, 1, a.window ? 1 : 0, a.window?.lo ?? 0, a.window?.hi ?? 0);
            x.copy_tile(PD, 4 * BK, nq, nk, P + 4 * (i0 * Tk + j0), 4 * Tk);
          }
        }
        if (mode === "full") takeMatrix(arena, P, 4 * Tk, R, Tk, outW, (b * H + h) * R * Tk, Tk);
        else x.axpy(P, acc, R * Tk, 1 / H);
      }
      if (mode === "mean") takeMatrix(arena, acc, 4 * Tk, R, Tk, outW, b * R * Tk, Tk);
    }
  }

  return { forward, backward, weights };
}
