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
