// Multi-head attention on token-major projections (the layout nn.MultiheadAttention produces): the heads are the
// consecutive D-column groups of (B, T, H·D) rows, so the fused kernels can read q/k/v in place — even when q, k and v
// are column blocks of one (B, T, 3·E) projection, or the rows are stored sequence-first (T, B, ·) — and write the
// output and the gradients token-major. No head transposes, no contiguous() copies, one dqkv buffer in backward.
import { shapeStr } from "../shape.js";
import type { AttnTensorLayout } from "../backend/kernels.js";
import { Tensor } from "../tensor.js";
import { assertFloat, uninit } from "./util.js";
import { attnArgsFor, hasLayoutAttention, runFused, sdpa, uniformCorrection, uniformRows, weightsMode, type SdpaOptions, type SdpaResult } from "./attention.js";

export interface HeadsOptions extends SdpaOptions {
  /** Query heads H. */
  heads: number;
  /** Key/value heads (H must be a multiple; default H). */
  kvHeads?: number;
}

export type HeadsInput =
  /** One self-attention projection (B, T, H·D + 2·Hkv·D): q, k, v are its column blocks (D = Dv). */
  | { qkv: Tensor }
  /** Separate projections q (B, Tq, H·D), k (B, Tk, Hkv·D), v (B, Tk, Hkv·Dv). */
  | { q: Tensor; k: Tensor; v: Tensor };

/** A 3-D view the kernels can read through strides: contiguous feature axis, non-negative strides. */
function readable(t: Tensor): boolean {
  return (t.strides[2] === 1 || t.shape[2] === 1) && t.strides.every((s) => s >= 0);
}

/** [offset, strideB, strideH, strideT] of the heads of a token-major (B, T, ·) view, starting at column `col`. */
function headsLayout(t: Tensor, feat: number, col: number): AttnTensorLayout {
  return [t.offset + col, t.strides[0], feat, t.strides[1]];
}

/** A fresh tensor shaped like t, stored in t's dim order when t is dense (a permutation of contiguous), else contiguous. */
function allocLike(t: Tensor): Tensor {
  const nd = t.ndim;
  const order = Array.from({ length: nd }, (_, i) => i).sort((a, b) => t.strides[b] - t.strides[a] || a - b);
  let expect = 1, dense = true;
  for (let i = nd - 1; i >= 0; i--) {
    const d = order[i];
    if (t.shape[d] === 1) continue;
    if (t.strides[d] !== expect) { dense = false; break; }
    expect *= t.shape[d];
  }
  if (!dense || order.every((d, i) => d === i)) return uninit(t.shape);
  const st = new Array<number>(nd);
  let s = 1;
  for (let i = nd - 1; i >= 0; i--) { st[order[i]] = s; s *= t.shape[order[i]]; }
  return new Tensor(uninit([t.numel()]).storage, t.shape, st, 0);
}

/**
 * Attention over token-major projections. Returns out (B, Tq, H·Dv) — stored in the token order of q (sequence-first
 * storage stays sequence-first, so the output projection needs no copy either) — and the weights as sdpa returns
 * them ("full" (B, H, Tq, Tk) or "mean" (B, Tq, Tk)). Same masks, dropout, scale and impl options as sdpa; backends
 * without layout-aware kernels (and impl "math") run sdpa on head-permuted views instead.
 */
export function attentionHeads(src: HeadsInput, opts: HeadsOptions): SdpaResult {
  const H = opts.heads, Hkv = opts.kvHeads ?? H;
  if (!Number.isInteger(H) || H < 1 || !Number.isInteger(Hkv) || Hkv < 1 || H % Hkv !== 0) {
    throw new Error(`attentionHeads: heads (${H}) must be a positive multiple of kvHeads (${Hkv})`);
  }
  let q: Tensor, k: Tensor, v: Tensor, D: number, Dv: number, kCol = 0, vCol = 0;
  const packed = "qkv" in src;
  if (packed) {
    const t = src.qkv;
    assertFloat(t, "attentionHeads (qkv)");
    const W = t.shape[2];
    if (t.ndim !== 3 || W % (H + 2 * Hkv) !== 0) {
      throw new Error(`attentionHeads: qkv must be (B, T, (H + 2·Hkv)·D) = (B, T, ${H + 2 * Hkv}·D), got ${shapeStr(t.shape)}`);
    }
    D = Dv = W / (H + 2 * Hkv);
    q = k = v = t;
    kCol = H * D; vCol = (H + Hkv) * D;
  } else {
    ({ q, k, v } = src);
    for (const [t, n] of [[q, "q"], [k, "k"], [v, "v"]] as const) {
      assertFloat(t, `attentionHeads (${n})`);
      if (t.ndim !== 3) throw new Error(`attentionHeads: ${n} must be 3-D (B, T, heads·dim), got ${shapeStr(t.shape)}`);
    }
    D = q.shape[2] / H; Dv = v.shape[2] / Hkv;
    if (!Number.isInteger(D) || !Number.isInteger(Dv) || k.shape[2] !== Hkv * D || D < 1 || Dv < 1) {
      throw new Error(`attentionHeads: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)} do not split into ` +
        `${H} query heads and ${Hkv} key/value heads of equal q/k head dims`);
    }
  }
  const [B, Tq] = q.shape, Tk = k.shape[1];
  if (k.shape[0] !== B || v.shape[0] !== B || v.shape[1] !== Tk) {
    throw new Error(`attentionHeads: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)} need the same batch and k/v the same length`);
  }

  if (!hasLayoutAttention() || opts.impl === "math" || q.device !== "cpu" || !readable(q) || !readable(k) || !readable(v)) {
    // portable path: heads as permuted views (B, H, T, ·), then back to token-major
    const heads = (t: Tensor, col: number, n: number, d: number) =>
      t.narrow(2, col, n * d).reshape([B, t.shape[1], n, d]).permute([0, 2, 1, 3]);
    const r = sdpa(heads(q, 0, H, D), heads(k, kCol, Hkv, D), heads(v, vCol, Hkv, Dv), opts);
    return { out: r.out.permute([0, 2, 1, 3]).reshape([B, Tq, H * Dv]), weights: r.weights };
  }

  const args = attnArgsFor(B, H, Hkv, Tq, Tk, D, Dv, opts);
  const uniform = opts.maskedRows === "uniform" ? uniformRows(args, opts) : null;
  const F = H * Dv;
  // out in q's token order: (B, Tq, F) storage, or (Tq, B, F) storage viewed as (B, Tq, F)
  const seqFirst = B > 1 && Tq > 1 && q.strides[1] > q.strides[0];
  const out = seqFirst ? new Tensor(uninit([Tq * B * F]).storage, [B, Tq, F], [F, B * F, 1], 0) : uninit([B, Tq, F]);
  const outL: AttnTensorLayout = [0, out.strides[0], Dv, out.strides[1]];
  const weights = runFused(args, { t: q, layout: headsLayout(q, D, 0) }, { t: k, layout: headsLayout(k, D, kCol) },
    { t: v, layout: headsLayout(v, Dv, vCol) }, out, outL, weightsMode(opts.returnWeights), packed ? [q] : [q, k, v], () => {
      if (packed) {
        const d = allocLike(q);
        return { grads: [d], buffers: [d, d, d], dq: headsLayout(d, D, 0), dk: headsLayout(d, D, kCol), dv: headsLayout(d, Dv, vCol) };
      }
      const dq = allocLike(q), dk = allocLike(k), dv = allocLike(v);
      return { grads: [dq, dk, dv], dq: headsLayout(dq, D, 0), dk: headsLayout(dk, D, 0), dv: headsLayout(dv, Dv, 0) };
    });
  if (!uniform) return { out, weights };
  // maskedRows "uniform": the rows that see no key average v (see SdpaOptions.maskedRows)
  const c = uniformCorrection(uniform, v.narrow(2, vCol, Hkv * Dv).reshape([B, Tk, Hkv, Dv]).permute([0, 2, 1, 3]), args, opts);
  return { out: out.add(c.out.permute([0, 2, 1, 3]).reshape([B, Tq, F])), weights: weights && c.weights ? weights.add(c.weights) : weights };
}
