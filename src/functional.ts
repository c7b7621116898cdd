// torch.nn.functional, camelCased.
import type { Tensor } from "./tensor.js";
import { unaryOp } from "./ops/elementwise.js";

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
  const dims = Array.from({ length: n }, (_, i) => x.ndim - n + i);
  let ms = x.square();
  for (const d of dims.reverse()) ms = ms.mean(d, true);
  const y = x.mul(ms.add(eps).rsqrt());
  return weight ? y.mul(weight) : y;
}
