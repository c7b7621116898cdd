// The reference backend: plain TypeScript, always present, the oracle for every other backend.
import type { Kernels } from "../kernels.js";
import { binary, copy, unary, where } from "./elementwise.js";
import { reduce } from "./reduce.js";
import { gemm } from "./gemm.js";
import { gatherRows, layerNormBackward, layerNormForward, logSoftmax, scatterAddRows, softmax, softmaxBackward } from "./norm.js";
import { attnBackward, attnForward, attnWeights } from "./attention.js";
import { qlinear } from "./qlinear.js";

export const refKernels: Kernels = {
  unary, binary, where, copy, reduce, gemm, softmax, softmaxBackward, logSoftmax,
  layerNormForward, layerNormBackward, gatherRows, scatterAddRows, attnForward, attnBackward, attnWeights, qlinear,
};
