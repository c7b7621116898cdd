// torch.nn.functional, camelCased.
import { Tensor } from "./tensor.js";
import { unaryOp } from "./ops/elementwise.js";
import { isGradEnabled } from "./autograd.js";
import { contiguousData } from "./ops/movement.js";

export { softmax, logSoftmax, layerNorm, linear, embedding, dropout, gelu } from "./ops/nn.js";
export { conv2d, conv2dChannelsLast, type Conv2dOptions } from "./ops/conv.js";
export { scaledDotProductAttention, type SdpaOptions, type SdpaResult } from "./ops/attention.js";
export { crossEntropy, mseLoss, nllLoss, type CrossEntropyOptions, type Reduction } from "./ops/loss.js";

export const relu = (x: Tensor): Tensor => unaryOp(x, "relu");
export const sigmoid = (x: Tensor): Tensor => unaryOp(x, "sigmoid");
export const tanh = (x: Tensor): Tensor => unaryOp(x, "tanh");
/** x·sigmoid(x) (SiLU / swish, Llama's MLP activation). */
export const silu = (x: Tensor): Tensor => x.mul(unaryOp(x, "sigmoid"));

/** RMS normalisation over the trailing `normalizedShape` dims: x·rsqrt(mean(x²) + eps)·weight (torch.nn.functional.rms_norm). */
export function rmsNorm(x: Tensor, normalizedShape: number[], weight: Tensor | null = null, eps = 1.1920928955078125e-7): Tensor {
  const n = normalizedShape.length, tail = x.shape.slice(x.ndim - n);
  if (n > x.ndim || tail.some((d, i) => d !== normalizedShape[i])) {
    throw new Error(`rmsNorm: normalizedShape [${normalizedShape}] does not match the trailing dims of input [${x.shape}]`);
  }
  if (weight && (weight.ndim !== n || weight.shape.some((d, i) => d !== normalizedShape[i]))) {
    throw new Error(`rmsNorm: weight has shape [${weight.shape}], expected [${normalizedShape}]`);
  }
  // the composed form below runs on any device; the one-pass CPU form only on the CPU
  if (!(isGradEnabled() && (x.requiresGrad || !!weight?.requiresGrad)) && x.dtype === "float32" && x.device === "cpu") return rmsNormNoGrad(x, tail, weight, eps);
  const dims = Array.from({ length: n }, (_, i) => x.ndim - n + i);
  let ms = x.square();
  for (const d of dims.reverse()) ms = ms.mean(d, true);
  const y = x.mul(ms.add(eps).rsqrt());
  return weight ? y.mul(weight) : y;
}

/** Inference path of rmsNorm: one pass per row (mean of squares accumulated in float64, then float32 as the ops round). */
function rmsNormNoGrad(x: Tensor, tail: number[], weight: Tensor | null, eps: number): Tensor {
  const L = tail.reduce((a, b) => a * b, 1), xd = contiguousData(x) as Float32Array, out = new Float32Array(xd.length);
  const w = weight ? contiguousData(weight) as Float32Array : null, f = Math.fround;
  for (let o = 0; o < xd.length; o += L) {
    let ss = 0;
    for (let i = 0; i < L; i++) ss += f(xd[o + i] * xd[o + i]);
    const r = f(1 / Math.sqrt(f(f(ss / L) + eps)));
    if (w) for (let i = 0; i < L; i++) out[o + i] = f(f(xd[o + i] * r) * w[i]);
    else for (let i = 0; i < L; i++) out[o + i] = f(xd[o + i] * r);
  }
  return Tensor.fromArray(out, x.shape);
}
