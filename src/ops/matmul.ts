// matmul with torch.matmul semantics (1-D promotion, batch broadcasting). Transposed views go to the GEMM kernel as
// flags, not copies; gradients are matmuls of transposed views: dA = g·Bᵀ, dB = Aᵀ·g (summed over broadcast batches).
import { broadcastShapes, numel, shapeStr } from "../shape.js";
import { record } from "../autograd.js";
import { K } from "../backend/registry.js";
import type { Tensor } from "../tensor.js";
import { assertFloat, sumToShape, uninit } from "./util.js";

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
  const out = uninit([...batch, M, N]);
  const A = operand(a), B = operand(b), nb = numel(batch);
  const sa = uniformBatchStride(A.t, batch), sb = uniformBatchStride(B.t, batch);
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
