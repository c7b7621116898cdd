// Plain-JS attention in float64 accumulation: slow, obviously correct, for verifying the ONNX
// graphs and the child-process peers on small shapes (never timed).
import type { MhaWeights } from "./tasks.js";

/** softmax(q·kᵀ·scale [+ causal mask]) · v on (B, H, T, d) inputs → (B, H, T, d). */
export function refSdpa(
  q: Float32Array, k: Float32Array, v: Float32Array,
  B: number, H: number, T: number, d: number, causal: boolean,
): Float32Array {
  const out = new Float32Array(B * H * T * d);
  const scale = 1 / Math.sqrt(d);
  const s = new Float64Array(T);
  for (let bh = 0; bh < B * H; bh++) {
    const base = bh * T * d;
    for (let i = 0; i < T; i++) {
      const jEnd = causal ? i + 1 : T; // causal: key j attends only when j ≤ i
      let mx = -Infinity;
      for (let j = 0; j < jEnd; j++) {
        let acc = 0;
        for (let c = 0; c < d; c++) acc += q[base + i * d + c] * k[base + j * d + c];
        s[j] = acc * scale;
        if (s[j] > mx) mx = s[j];
      }
      let sum = 0;
      for (let j = 0; j < jEnd; j++) { s[j] = Math.exp(s[j] - mx); sum += s[j]; }
      for (let c = 0; c < d; c++) {
        let acc = 0;
        for (let j = 0; j < jEnd; j++) acc += s[j] * v[base + j * d + c];
        out[base + i * d + c] = acc / sum;
      }
    }
  }
  return out;
}

/** y (rows, outF) = x (rows, inF) · Wᵀ + b with W (outF, inF). */
export function refLinear(x: Float32Array, W: Float32Array, b: Float32Array, rows: number, inF: number, outF: number, wOffset = 0, bOffset = 0): Float32Array {
  const y = new Float32Array(rows * outF);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      let acc = b[bOffset + o];
      for (let i = 0; i < inF; i++) acc += x[r * inF + i] * W[wOffset + o * inF + i];
      y[r * outF + o] = acc;
    }
  return y;
}

/** nn.MultiheadAttention forward (batch-first self-attention, no mask): x (B, T, D) → (B, T, D). */
export function refMha(x: Float32Array, w: MhaWeights, B: number, T: number, D: number, H: number, causal = false): Float32Array {
  const d = D / H;
  const rows = B * T;
  // (B, T, D) projections, then split heads → (B, H, T, d)
  const proj = [0, 1, 2].map((p) => refLinear(x, w.inProjWeight, w.inProjBias, rows, D, D, p * D * D, p * D));
  const heads = proj.map((y) => {
    const o = new Float32Array(rows * D);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++)
      for (let c = 0; c < d; c++) o[((b * H + h) * T + t) * d + c] = y[(b * T + t) * D + h * d + c];
    return o;
  });
  const att = refSdpa(heads[0], heads[1], heads[2], B, H, T, d, causal);
  // merge heads (B, H, T, d) → (B, T, D), then the output projection
  const merged = new Float32Array(rows * D);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++)
    for (let c = 0; c < d; c++) merged[(b * T + t) * D + h * d + c] = att[((b * H + h) * T + t) * d + c];
  return refLinear(merged, w.outProjWeight, w.outProjBias, rows, D, D);
}
