// Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): softmax(q·kᵀ) is replaced by the kernel
// φ(q)·φ(k)ᵀ with the feature map φ(x) = elu(x) + 1 (positive), so attention factorises and costs O(T·D·Dv):
//
//   out_i = φ(q_i)ᵀ · Σ_j φ(k_j) v_jᵀ  /  (φ(q_i)ᵀ · Σ_j φ(k_j) + eps)        j over all keys (non-causal)
//                                                                             or j ≤ i (causal: prefix sums)
//
// The causal prefix sums are computed in chunks of C rows: inside a chunk the masked C×C products, across chunks the
// running state S = Σ φ(k_j) v_jᵀ (D×Dv) and z = Σ φ(k_j) of the earlier chunks (an exclusive scan over the chunk
// states in log2(T/C) doubling steps). Memory O(T·(C + D·Dv/C)), time O(T·C·(D + Dv) + T·D·Dv): linear in T.
// Everything is composed from differentiable ops, so it trains with autograd on every backend.
//
// "Attention weights" of linear attention: the weights the output is an exact average with,
//   A_ij = φ(q_i)·φ(k_j) / (Σ_j' φ(q_i)·φ(k_j') + eps)      (j, j' ≤ i when causal)
// so out = A·V. They are non-negative and each row sums to 1 (up to eps), like softmax weights; they are only
// materialised (T×T) when asked for (needWeights) or captured for explanations. With a recorder that wants
// gradients (gradient-weighted rollout) the output is computed as A·V, so d score / d A is exact.
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { cat } from "../ops/movement.js";
import { zeros } from "../creation.js";
import { activeRecorder } from "../explain/capture.js";
import { Module } from "./module.js";
import { Linear } from "./layers.js";
import { checkNumber, checkPositiveInt } from "./check.js";

export interface LinearAttentionOptions {
  /** Biases on the q/k/v/out projections (default true). */
  bias?: boolean;
  /** Added to the normaliser φ(q_i)·Σφ(k_j) (default 1e-6, as in the paper's code). */
  eps?: number;
  /** Rows per chunk of the causal prefix sums (default 64). */
  chunk?: number;
}

export interface LinearAttentionForwardOptions {
  /** Query i attends to keys j ≤ i (O(T) through prefix sums). */
  isCausal?: boolean;
  /** (B, T) bool, true = padding: such keys contribute nothing. */
  keyPaddingMask?: Tensor | null;
  /** Also return the implied weights A (B, H, T, T) (materialises T×T). */
  needWeights?: boolean;
}

/** φ(x) = elu(x) + 1: x + 1 for x > 0, exp(x) otherwise (always > 0). */
export function eluFeatureMap(x: Tensor): Tensor {
  return x.relu().add(x.clamp(null, 0).exp());
}

/** Self-attention with the elu+1 kernel; x (B, T, E) → (B, T, E). Parameters q_proj, k_proj, v_proj, out_proj. */
export class LinearAttention extends Module {
  qProj: Linear;
  kProj: Linear;
  vProj: Linear;
  outProj: Linear;
  readonly headDim: number;
  readonly eps: number;
  readonly chunk: number;

  constructor(readonly embedDim: number, readonly numHeads: number, opts: LinearAttentionOptions = {}) {
    super();
    checkPositiveInt("LinearAttention", "embedDim", embedDim); checkPositiveInt("LinearAttention", "numHeads", numHeads);
    if (embedDim % numHeads !== 0) throw new RangeError(`LinearAttention: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    this.eps = opts.eps ?? 1e-6;
    checkNumber("LinearAttention", "eps", this.eps, 0);
    this.chunk = opts.chunk ?? 64;
    checkPositiveInt("LinearAttention", "chunk", this.chunk);
    this.headDim = embedDim / numHeads;
    const bias = opts.bias !== false;
    this.qProj = new Linear(embedDim, embedDim, { bias });
    this.kProj = new Linear(embedDim, embedDim, { bias });
    this.vProj = new Linear(embedDim, embedDim, { bias });
    this.outProj = new Linear(embedDim, embedDim, { bias });
  }

  forward(x: Tensor, o: LinearAttentionForwardOptions = {}): { out: Tensor; weights: Tensor | null } {
    if (x.ndim !== 3 || x.shape[2] !== this.embedDim) throw new Error(`LinearAttention: expected x (B, T, ${this.embedDim}), got ${shapeStr(x.shape)}`);
    const [B, T] = x.shape, H = this.numHeads, D = this.headDim, causal = !!o.isCausal;
    const heads = (z: Tensor) => z.reshape([B, T, H, D]).permute([0, 2, 1, 3]);                     // (B, H, T, D)
    const fq = eluFeatureMap(heads(this.qProj.forward(x)));
    let fk = eluFeatureMap(heads(this.kProj.forward(x)));
    const v = heads(this.vProj.forward(x));
    const kpm = o.keyPaddingMask ?? null;
    if (kpm) {
      if (kpm.dtype !== "bool" || kpm.ndim !== 2 || kpm.shape[0] !== B || kpm.shape[1] !== T) {
        throw new Error(`LinearAttention: keyPaddingMask must be a bool (${B}, ${T}) tensor (true = padding), got ${kpm.dtype} ${shapeStr(kpm.shape)}`);
      }
      fk = fk.mul(kpm.logicalNot().float().reshape([B, 1, T, 1]));                                  // padded keys: φ = 0
    }
    const rec = activeRecorder(), recording = !!rec && rec.wants(this);
    let weights: Tensor | null = null, out: Tensor;
    if (o.needWeights || recording) {
      weights = linearAttentionWeights(fq, fk, causal, this.eps);                                    // (B, H, T, T)
      out = recording && rec!.withGrad ? weights.matmul(v) : linearAttentionCore(fq, fk, v, causal, this.eps, this.chunk);
      if (recording) rec!.add(this, { kind: "self", weights, headMean: false, keyPaddingMask: kpm, causal });
    } else {
      out = linearAttentionCore(fq, fk, v, causal, this.eps, this.chunk);                           // (B, H, T, D)
    }
    const y = this.outProj.forward(out.permute([0, 2, 1, 3]).reshape([B, T, H * D]));
    return { out: y, weights: o.needWeights ? weights : null };
  }

  protected override extraRepr(): string {
    return `embedDim=${this.embedDim}, numHeads=${this.numHeads}, featureMap=elu+1, chunk=${this.chunk}`;
  }
}

/**
 * The implied weights A (B, H, Tq, Tk) = φq·φkᵀ (lower triangle when causal) / (row sum + eps): out = A·V exactly.
 * φq (B, H, Tq, D), φk (B, H, Tk, D) already feature-mapped.
 */
export function linearAttentionWeights(fq: Tensor, fk: Tensor, causal: boolean, eps: number): Tensor {
  let s = fq.matmul(fk.mT);
  if (causal) s = s.tril();
  return s.div(s.sum(-1, true).add(eps));
}

/**
 * out (B, H, T, Dv) of linear attention from feature-mapped φq (B, H, T, D), φk (B, H, T, D) and v (B, H, T, Dv),
 * without any T×T tensor: one Σ φ(k) vᵀ for non-causal; chunked prefix sums for causal (see the file comment).
 */
export function linearAttentionCore(fq: Tensor, fk: Tensor, v: Tensor, causal: boolean, eps: number, chunk = 64): Tensor {
  const [B, H, T, D] = fq.shape, Dv = v.shape[3];
  if (!causal) {
    const kv = fk.mT.matmul(v);                                                      // (B, H, D, Dv)
    const z = fk.sum(2).unsqueeze(-1);                                               // (B, H, D, 1)
    return fq.matmul(kv).div(fq.matmul(z).add(eps));
  }
  const C = Math.min(chunk, T), N = Math.ceil(T / C), P = N * C - T;
  const pad = (t: Tensor) => (P ? cat([t, zeros([B, H, P, t.shape[3]])], 2) : t);  // zero rows: no contribution
  const Qc = pad(fq).reshape([B, H, N, C, D]), Kc = pad(fk).reshape([B, H, N, C, D]), Vc = pad(v).reshape([B, H, N, C, Dv]);
  const tri = Tensor.fromArray(Float32Array.from({ length: C * C }, (_, o) => +((o % C) <= Math.floor(o / C))), [C, C]);
  const A = Qc.matmul(Kc.mT).mul(tri);                                               // (B, H, N, C, C) within-chunk, j ≤ i
  // chunk states and their exclusive prefix (the state before each chunk), flattened so one scan does both
  const st = cat([Kc.mT.matmul(Vc).reshape([B, H, N, D * Dv]), Kc.sum(3)], 3);    // (B, H, N, D·Dv + D)
  const prev = exclusiveScan(st, 2);
  const S = prev.narrow(3, 0, D * Dv).reshape([B, H, N, D, Dv]), z = prev.narrow(3, D * Dv, D).unsqueeze(-1);
  const num = A.matmul(Vc).add(Qc.matmul(S));                                        // (B, H, N, C, Dv)
  const den = A.sum(-1, true).add(Qc.matmul(z)).add(eps);                            // (B, H, N, C, 1)
  const out = num.div(den).reshape([B, H, N * C, Dv]);
  return P ? out.narrow(2, 0, T) : out;
}

/** Σ_{m < n} x[..., m, ...] along `dim` (exclusive prefix sum), in ⌈log2 n⌉ doubling steps of shifted adds. */
export function exclusiveScan(x: Tensor, dim: number): Tensor {
  const n = x.shape[dim];
  const shift = (t: Tensor, s: number) => {
    const zs = [...t.shape]; zs[dim] = s;
    return cat([zeros(zs), t.narrow(dim, 0, n - s)], dim);
  };
  let y = shift(x, 1);                                                               // exclusive: start from x shifted by one
  for (let s = 1; s < n; s *= 2) y = y.add(shift(y, s));
  return y;
}
