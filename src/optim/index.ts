export { Optimizer } from "./optimizer.js";
export { SGD, Adam, AdamW, type SgdOptions, type AdamOptions } from "./optimizers.js";
export { clipGradNorm, clipGradNormTensor } from "./clip.js";
export { LRScheduler, StepLR, CosineWithWarmup, LambdaLR } from "./schedulers.js";
