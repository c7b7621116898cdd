// Benchmark workloads as plain data: the same Float32Arrays go to every implementation.
// Layout conventions (canonical, what every peer's output is converted back to):
//   MHA:  x (B, T, D) batch-first, out (B, T, D); weights in PyTorch nn.MultiheadAttention layout.
//   SDPA: q, k, v, out (B, H, T, d).
//   train: loss = sum(out · g); the cross-checked output is dLoss/d in_proj_weight (3D, D).
import { randnArray } from "./prng.js";

export interface MhaWeights {
  inProjWeight: Float32Array; // (3D, D): rows [Wq; Wk; Wv], y = x · Wᵀ + b
  inProjBias: Float32Array;   // (3D)
  outProjWeight: Float32Array; // (D, D)
  outProjBias: Float32Array;  // (D)
}

export interface MhaTask { kind: "mha"; B: number; T: number; D: number; H: number; x: Float32Array; w: MhaWeights }
export interface SdpaTask {
  kind: "sdpa"; B: number; H: number; T: number; d: number; causal: boolean;
  q: Float32Array; k: Float32Array; v: Float32Array;
}
export interface TrainTask {
  kind: "train"; B: number; T: number; D: number; H: number;
  x: Float32Array; g: Float32Array; w: MhaWeights;
}
export type Task = MhaTask | SdpaTask | TrainTask;

/** Weights with std 1/√D (Xavier-like) so activations stay O(1); seeded by label. */
export function makeMhaWeights(D: number, label: string): MhaWeights {
  const s = 1 / Math.sqrt(D);
  return {
    inProjWeight: randnArray(3 * D * D, `${label}:in_proj_weight`, s),
    inProjBias: randnArray(3 * D, `${label}:in_proj_bias`, 0.1),
    outProjWeight: randnArray(D * D, `${label}:out_proj.weight`, s),
    outProjBias: randnArray(D, `${label}:out_proj.bias`, 0.1),
  };
}

export function makeMhaTask(B: number, T: number, D: number, H: number, label: string): MhaTask {
  return { kind: "mha", B, T, D, H, x: randnArray(B * T * D, `${label}:x`), w: makeMhaWeights(D, label) };
}

export function makeSdpaTask(B: number, H: number, T: number, d: number, causal: boolean, label: string): SdpaTask {
  const n = B * H * T * d;
  return {
    kind: "sdpa", B, H, T, d, causal,
    q: randnArray(n, `${label}:q`), k: randnArray(n, `${label}:k`), v: randnArray(n, `${label}:v`),
  };
}

export function makeTrainTask(B: number, T: number, D: number, H: number, label: string): TrainTask {
  return {
    kind: "train", B, T, D, H,
    x: randnArray(B * T * D, `${label}:x`), g: randnArray(B * T * D, `${label}:g`), w: makeMhaWeights(D, label),
  };
}

/** MHA forward FLOPs: 4 projections 2·B·T·D² each + QKᵀ and PV 2·B·T²·D each. */
export function mhaFlops(B: number, T: number, D: number): number {
  return 2 * B * T * D * D * 4 + 4 * B * T * T * D;
}

/** SDPA core FLOPs: 4·B·H·T²·d (QKᵀ + PV); causal attention counts half. */
export function sdpaFlops(B: number, H: number, T: number, d: number, causal: boolean): number {
  return (4 * B * H * T * T * d) / (causal ? 2 : 1);
}

export function taskFlops(t: Task): number {
  if (t.kind === "mha") return mhaFlops(t.B, t.T, t.D);
  if (t.kind === "sdpa") return sdpaFlops(t.B, t.H, t.T, t.d, t.causal);
  return 3 * mhaFlops(t.B, t.T, t.D); // forward + backward ≈ 3× forward
}

/** (B, H, T, d) → (B, T, H, d): the "BSNH" layout that jax-js and ORT's fused op want. */
export function bhtdToBthd(src: Float32Array, B: number, H: number, T: number, d: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const s = ((b * H + h) * T + t) * d;
        const o = ((b * T + t) * H + h) * d;
        out.set(src.subarray(s, s + d), o);
      }
  return out;
}

/** (B, T, H, d) → (B, H, T, d). */
export function bthdToBhtd(src: Float32Array, B: number, H: number, T: number, d: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const s = ((b * T + t) * H + h) * d;
        const o = ((b * H + h) * T + t) * d;
        out.set(src.subarray(s, s + d), o);
      }
  return out;
}

/** Transpose a row-major (rows, cols) matrix. */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d; // NaN propagates as NaN
    if (Number.isNaN(d)) return NaN;
  }
  return m;
}
