// matmul with torch.matmul semantics (1-D promotion, batch broadcasting). Transposed views go to the GEMM kernel as
// flags, not copies; gradients are matmuls of transposed views: dA = g·Bᵀ, dB = Aᵀ·g (summed over broadcast batches).
// Also linear (y = act(x·Wᵀ + b)), the GEMM behind F.linear / nn.Linear.
import { broadcastShapes, numel, shapeStr } from "../shape.js";
import { isGradEnabled, record } from "../autograd.js";
import { K } from "../backend/registry.js";
import { Tensor } from "../tensor.js";
import { assertFloat, devOps, onDevice, sumToShape, uninit } from "./util.js";
import { commonDevice } from "../device.js";
import type { LinearPart } from "../backend/kernels.js";
import { cat } from "./movement.js";

interface MatOperand { t: Tensor; trans: boolean; ld: number }

/** Describe the last two dims of t as a (possibly transposed) row-major matrix, copying only if needed. */
function operand(t: Tensor): MatOperand {
  const n = t.ndim, rs = t.strides[n - 2], cs = t.strides[n - 1], R = t.shape[n - 2], C = t.shape[n - 1];
  if ((cs === 1 || C === 1) && rs >= C) return { t, trans: false, ld: Math.max(rs, 1) };
  if ((rs === 1 || R === 1) && cs >= R) return { t, trans: true, ld: Math.max(cs, 1) };
  const c = t.contiguous();
  return { t: c, trans: false, ld: C };
}

/** Batch offset of batch index `bi` (row-major over `batchShape`) for tensor t broadcast to it. */
function batchOffset(t: Tensor, batchShape: number[], bi: number): number {
  let off = t.offset, rem = bi;
  const lead = batchShape.length - (t.ndim - 2);
  for (let k = batchShape.length - 1; k >= 0; k--) {
    const c = rem % batchShape[k]; rem = Math.floor(rem / batchShape[k]);
    const tk = k - lead;
    if (tk >= 0 && t.shape[tk] !== 1) off += c * t.strides[tk];
  }
  return off;
}

/** Uniform stride between consecutive batch matrices, or null when the batch layout is irregular. */
function uniformBatchStride(t: Tensor, batchShape: number[]): number | null {
  const nb = numel(batchShape);
  if (nb <= 1) return 0;
  const s = batchOffset(t, batchShape, 1) - batchOffset(t, batchShape, 0);
  for (let b = 2; b < nb; b++) if (batchOffset(t, batchShape, b) - batchOffset(t, batchShape, b - 1) !== s) return null;
  return s;
}

function matmul2(a: Tensor, b: Tensor): Tensor {
  const M = a.shape[a.ndim - 2], Ka = a.shape[a.ndim - 1], Kb = b.shape[b.ndim - 2], N = b.shape[b.ndim - 1];
  if (Ka !== Kb) throw new Error(`matmul: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} are incompatible (inner dims ${Ka} vs ${Kb})`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), "matmul (batch dims)");
  const dev = a.storage.device === b.storage.device ? a.storage.device : commonDevice("matmul", a, b);
  const out = uninit([...batch, M, N], "float32", a);
  const A = operand(a), B = operand(b), nb = numel(batch);
  const sa = uniformBatchStride(A.t, batch), sb = uniformBatchStride(B.t, batch);
  if (dev !== "cpu") {
    const g = devOps(a);
    if (sa !== null && sb !== null) g.gemm(A.trans, B.trans, M, N, Ka, 1, A.t, A.t.offset, A.ld, B.t, B.t.offset, B.ld, 0, out, 0, N, nb, sa, sb, M * N);
    else for (let bi = 0; bi < nb; bi++) {
      g.gemm(A.trans, B.trans, M, N, Ka, 1, A.t, batchOffset(A.t, batch, bi), A.ld, B.t, batchOffset(B.t, batch, bi), B.ld, 0, out, bi * M * N, N, 1, 0, 0, 0);
    }
    if (A.t !== a) A.t.dispose();
    if (B.t !== b) B.t.dispose();
    return out;
  }
  const C = out.storage.data as Float32Array, Ad = A.t.storage.data as Float32Array, Bd = B.t.storage.data as Float32Array;
  if (sa !== null && sb !== null) {
    K.gemm(A.trans, B.trans, M, N, Ka, 1, Ad, A.t.offset, A.ld, Bd, B.t.offset, B.ld, 0, C, 0, N, nb, sa, sb, M * N);
  } else {
    for (let bi = 0; bi < nb; bi++) {
      K.gemm(A.trans, B.trans, M, N, Ka, 1, Ad, batchOffset(A.t, batch, bi), A.ld, Bd, batchOffset(B.t, batch, bi), B.ld,
        0, C, bi * M * N, N, 1, 0, 0, 0);
    }
  }
  if (A.t !== a) A.t.dispose();
  if (B.t !== b) B.t.dispose();
  return out;
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  assertFloat(a, "matmul"); assertFloat(b, "matmul");
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: both arguments need ≥ 1 dim, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const a2 = a.ndim === 1 ? a.unsqueeze(0) : a;
  const b2 = b.ndim === 1 ? b.unsqueeze(1) : b;
  let y = matmul2(a2, b2);
  if (a.ndim === 1) y = y.squeeze(-2);
  if (b.ndim === 1) y = y.squeeze(-1);
  return record(y, "matmul", [a, b], (g) => {
    // restore the dropped 1-D dims on g, then dA = g·Bᵀ and dB = Aᵀ·g
    let g2 = g;
    if (a.ndim === 1) g2 = g2.unsqueeze(-2);
    if (b.ndim === 1) g2 = g2.unsqueeze(-1);
    const ga = a.requiresGrad ? sumToShape(matmul2(g2, b2.mT), a2.shape).reshape(a.shape) : null;
    const gb = b.requiresGrad ? sumToShape(matmul2(a2.mT, g2), b2.shape).reshape(b.shape) : null;
    return [ga, gb];
  }, [a2, b2]);
}

// ---------- linear: y = act(x·Wᵀ + b) ----------

/** Activation fused into linear(): applied in the GEMM epilogue on fast backends. */
export type LinearActivation = "relu" | "gelu" | "geluTanh";

/**
 * When x's elements form a dense block of rows of length inF in some order of its leading dims (contiguous x, or
 * e.g. the (B, T, F) transpose of a contiguous (T, B, F)), the leading dims in memory order (outermost first);
 * otherwise null. Such an x is one (N, inF) matrix for the GEMM, with no copy.
 */
function denseRowOrder(x: Tensor): number[] | null {
  const nd = x.ndim, inF = x.shape[nd - 1];
  if (x.strides[nd - 1] !== 1 && inF !== 1) return null;
  const lead = Array.from({ length: nd - 1 }, (_, i) => i).sort((a, b) => x.strides[b] - x.strides[a] || a - b);
  let expect = inF;
  for (let i = lead.length - 1; i >= 0; i--) {
    const d = lead[i];
    if (x.shape[d] === 1) continue;
    if (x.strides[d] !== expect) return null;
    expect *= x.shape[d];
  }
  return lead;
}

/** Strides of a dense block of rows of length `cols` whose leading dims are stored in `order` (outermost first). */
function rowStrides(shape: readonly number[], order: readonly number[], cols: number): number[] {
  const st = new Array<number>(shape.length);
  st[shape.length - 1] = 1;
  let s = cols;
  for (let i = order.length - 1; i >= 0; i--) { st[order[i]] = s; s *= shape[order[i]]; }
  return st;
}

const isIdentity = (order: readonly number[]) => order.every((d, i) => d === i);

/** dz = dy ⊙ act'(z) over n elements (for relu, z may be the activation's output: same sign). */
function activationBackward(act: LinearActivation, z: Float32Array, zOff: number, g: Float32Array, gOff: number,
  out: Float32Array, n: number): void {
  if (K.activationBackward) { K.activationBackward(act, z, zOff, g, gOff, out, n); return; }
  if (act === "relu") { for (let i = 0; i < n; i++) out[i] = z[zOff + i] > 0 ? g[gOff + i] : 0; return; }
  K.unary(act === "gelu" ? "geluGrad" : "geluTanhGrad", { data: z, offset: zOff, strides: [1] }, [n], out);
  for (let i = 0; i < n; i++) out[i] *= g[gOff + i];
}

/**
 * y = act(x·Wᵀ + b): x (..., in), W (out, in), b (out) or null. One GEMM with a fused bias/activation epilogue
 * forward when the backend has it; backward dx = dz·W and dW = dzᵀ·x (two GEMMs), db = Σ_rows dz, with
 * dz = dy ⊙ act'(z). x whose rows are dense in another order (a transposed (T, B, in) view) is used in place and y
 * keeps that row order (a view with the same dim order), so seq-first models need no transposing copies.
 */
export function linearOp(x: Tensor, weight: Tensor, bias: Tensor | null, act: LinearActivation | null, residual: Tensor | null = null): Tensor {
  assertFloat(x, "linear"); assertFloat(weight, "linear");
  if (residual) {
    assertFloat(residual, "linear");
    if (act !== null) throw new Error("linear: a residual is added to x·Wᵀ + b without an activation; got both");
    const want = [...x.shape.slice(0, -1), weight.shape[0]];
    if (residual.ndim !== want.length || residual.shape.some((d, i) => d !== want[i])) {
      throw new Error(`linear: residual ${shapeStr(residual.shape)} does not match the output ${shapeStr(want)} of input ${shapeStr(x.shape)} and weight ${shapeStr(weight.shape)}`);
    }
  }
  // with gradients the sum is an ordinary add node (its backward is the identity for r); the fused accumulate
  // below is the inference path
  if (residual && (onDevice(x) || onDevice(weight) || (isGradEnabled() && (x.requiresGrad || weight.requiresGrad || !!bias?.requiresGrad || residual.requiresGrad)))) {
    return linearOp(x, weight, bias, null).add(residual);
  }
  if (weight.ndim !== 2) throw new Error(`linear: weight must be 2-D (out, in), got ${shapeStr(weight.shape)}`);
  const inF = weight.shape[1], outF = weight.shape[0];
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new Error(`linear: input ${shapeStr(x.shape)} does not match weight ${shapeStr(weight.shape)} (expected last dim ${inF})`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) throw new Error(`linear: bias ${shapeStr(bias.shape)} does not match weight ${shapeStr(weight.shape)}`);
  if (onDevice(x) || onDevice(weight)) {
    // on a device: x·Wᵀ (W transposed by flag) + b, then the activation, each an op with its own gradient
    commonDevice("linear", x, weight, bias);
    let y = matmul(x, weight.mT);
    if (bias) y = y.add(bias);
    return act === null ? y : act === "relu" ? y.relu() : unaryOpFor(y, act);
  }
  if (act !== null && act !== "relu" && act !== "gelu" && act !== "geluTanh") {
    throw new Error(`linear: activation must be "relu", "gelu" or "geluTanh", got ${String(act)}`);
  }
  let order = x.numel() > 0 ? denseRowOrder(x) : null;
  const xc = order ? x : x.contiguous();
  if (!order) order = Array.from({ length: x.ndim - 1 }, (_, i) => i);
  const wc = weight.contiguous();
  const N = inF > 0 ? xc.numel() / inF : numel(x.shape.slice(0, -1));
  const yShape = [...x.shape.slice(0, -1), outF];
  const ySt = rowStrides(yShape, order, outF);
  // The weight is only read (forward and backward): dataForRead() leaves its storage version alone, so a backend
  // may keep it packed between calls (bKey below) until something writes it.
  const xd = xc.storage.data as Float32Array, wd = wc.storage.dataForRead() as Float32Array;
  const bd = bias ? bias.contiguous() : null;
  const bData = bd ? bd.storage.data as Float32Array : null, bOff = bd ? bd.offset : 0;
  const needGrad = isGradEnabled() && (x.requiresGrad || weight.requiresGrad || !!bias?.requiresGrad);
  // z = x·Wᵀ + b (pre-activation); with grad and a gelu, z is kept for the backward and y computed from it
  const keepZ = needGrad && (act === "gelu" || act === "geluTanh");
  const z = new Tensor(uninit([N * outF]).storage, yShape, ySt, 0);
  const zd = z.storage.data as Float32Array;
  const epilogue = keepZ || act === null ? "none" : act;
  // a residual r is accumulated by the GEMM itself (C = r, beta 1): y = x·Wᵀ + b + r without a separate add
  // pass; only when y's rows are in plain order (else it is added afterwards)
  const fuseResidual = !!residual && isIdentity(order);
  if (fuseResidual) {
    const rc = residual!.contiguous();
    zd.set((rc.storage.dataForRead() as Float32Array).subarray(rc.offset, rc.offset + N * outF));
    if (rc !== residual) rc.dispose();
  }
  const beta0 = fuseResidual ? 1 : 0;
  if (K.gemmBiasAct) {
    // A copy made by contiguous() above is new on every call: no key (nothing to reuse).
    K.gemmBiasAct(false, true, N, outF, inF, 1, xd, xc.offset, inF, wd, wc.offset, inF, beta0, zd, 0, outF, 1, 0, 0, 0, bData, bOff, epilogue,
      wc === weight ? wc.storage : null);
  } else {
    let beta = beta0;
    if (bData) {
      const row = bData.subarray(bOff, bOff + outF);
      if (fuseResidual) { for (let r = 0; r < N; r++) for (let c = 0; c < outF; c++) zd[r * outF + c] += row[c]; }
      else for (let r = 0; r < N; r++) zd.set(row, r * outF);
      beta = 1;
    }
    K.gemm(false, true, N, outF, inF, 1, xd, xc.offset, inF, wd, wc.offset, inF, beta, zd, 0, outF, 1, 0, 0, 0);
    if (epilogue !== "none") K.unary(epilogue, { data: zd, offset: 0, strides: [1] }, [N * outF], zd);
  }
  let y: Tensor = z;
  if (residual && !fuseResidual) y = z.add(residual);
  if (keepZ) {
    y = new Tensor(uninit([N * outF]).storage, yShape, ySt, 0);
    K.unary(act!, { data: zd, offset: 0, strides: [1] }, [N * outF], y.storage.data as Float32Array);
  }
  if (!needGrad) return y;
  const inputs = bias ? [x, weight, bias] : [x, weight];
  const saved = act === null ? [xc, wc] : [xc, wc, z];
  return record(y, "linear", inputs, (g) => {
    // g in the row order of y: a free view when it already has y's layout (the usual case)
    const perm = [...order!, x.ndim - 1];
    const gm = (isIdentity(order!) ? g : g.permute(perm)).contiguous();
    let gd = gm.storage.data as Float32Array, gOff = gm.offset;
    let dz: Tensor | null = null;
    if (act !== null) {
      dz = uninit([N * outF]);
      activationBackward(act, zd, 0, gd, gOff, dz.storage.data as Float32Array, N * outF);
      gd = dz.storage.data as Float32Array; gOff = 0;
    }
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (x.requiresGrad) { // dx (N, in) = dz (N, out) · W (out, in), rows in x's memory order
      dx = new Tensor(uninit([N * inF]).storage, x.shape, rowStrides(x.shape, order!, inF), 0);
      K.gemm(false, false, N, inF, outF, 1, gd, gOff, outF, wd, wc.offset, inF, 0, dx.storage.data as Float32Array, 0, inF, 1, 0, 0, 0);
    }
    if (weight.requiresGrad) { // dW (out, in) = dzᵀ (out, N) · x (N, in)
      dw = uninit(weight.shape);
      K.gemm(true, false, outF, inF, N, 1, gd, gOff, outF, xd, xc.offset, inF, 0, dw.storage.data as Float32Array, 0, inF, 1, 0, 0, 0);
    }
    if (bias?.requiresGrad) { // db = column sums of dz
      db = uninit([outF]);
      K.reduce("sum", gd.subarray(gOff, gOff + N * outF), 1, N, outF, db.storage.data as Float32Array);
    }
    if (dz) dz.dispose();
    if (gm !== g) gm.dispose();
    return bias ? [dx, dw, db] : [dx, dw];
  }, saved);
}

import { unaryOp } from "./elementwise.js";
function unaryOpFor(y: Tensor, act: "gelu" | "geluTanh"): Tensor { return unaryOp(y, act); }

/**
 * cat([linear(x, W₀, b₀), linear(x, W₁, b₁), …], −1): several linear layers of one input (the query, key and value
 * projections), (..., in) → (..., ΣN), the parts side by side in each row. Without gradients on the CPU, one
 * linearGroup kernel call when the backend has it (the products share one parallel region); otherwise the linears
 * and a cat, with their gradients. Either way each part's values are exactly linear()'s.
 */
export function linearCat(x: Tensor, weights: readonly Tensor[], biases: readonly (Tensor | null)[]): Tensor {
  if (weights.length < 1 || biases.length !== weights.length) {
    throw new Error(`linearCat: needs one or more weights and one bias (or null) per weight, got ${weights.length} weights and ${biases.length} biases`);
  }
  assertFloat(x, "linearCat");
  const inF = x.shape[x.ndim - 1];
  weights.forEach((w, i) => {
    assertFloat(w, "linearCat");
    if (w.ndim !== 2 || w.shape[1] !== inF) throw new Error(`linearCat: weight ${i} ${shapeStr(w.shape)} does not match input ${shapeStr(x.shape)} (expected (out, ${inF}))`);
    const b = biases[i];
    if (b && (b.ndim !== 1 || b.shape[0] !== w.shape[0])) throw new Error(`linearCat: bias ${i} ${shapeStr(b.shape)} does not match weight ${shapeStr(w.shape)}`);
  });
  const needGrad = isGradEnabled() && (x.requiresGrad || weights.some((w) => w.requiresGrad) || biases.some((b) => !!b?.requiresGrad));
  const onDev = onDevice(x) || weights.some(onDevice) || biases.some((b) => !!b && onDevice(b));
  if (!K.linearGroup || needGrad || onDev || weights.length > 8 || x.numel() === 0 || inF === 0) {
    return cat(weights.map((w, i) => linearOp(x, w, biases[i], null)), -1);
  }
  const xc = x.contiguous();
  const rows = xc.numel() / inF, total = weights.reduce((s, w) => s + w.shape[0], 0);
  const y = uninit([...x.shape.slice(0, -1), total]);
  const parts: LinearPart[] = [];
  const copies: Tensor[] = [];
  let col = 0;
  weights.forEach((w, i) => {
    const wc = w.contiguous(), b = biases[i], bc = b ? b.contiguous() : null;
    if (wc !== w) copies.push(wc);
    if (bc && bc !== b) copies.push(bc);
    // the weight is only read: dataForRead() leaves its version alone, so the backend may keep it packed (key)
    parts.push({ w: wc.storage.dataForRead() as Float32Array, wOff: wc.offset, N: w.shape[0], bias: bc ? bc.storage.data as Float32Array : null,
      biasOff: bc ? bc.offset : 0, col, key: wc === w ? wc.storage : null });
    col += w.shape[0];
  });
  K.linearGroup(xc.storage.data as Float32Array, xc.offset, rows, inF, inF, y.storage.data as Float32Array, 0, total, "none", parts);
  for (const c of copies) c.dispose();
  if (xc !== x) xc.dispose();
  return y;
}
