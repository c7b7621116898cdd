// Losses composed from differentiable ops (their gradients come from autograd).
import { shapeStr } from "../shape.js";
import { Tensor } from "../tensor.js";
import { logSoftmax } from "./nn.js";
import { contiguousData } from "./movement.js";
import { where } from "./elementwise.js";

export type Reduction = "mean" | "sum" | "none";

export interface CrossEntropyOptions { ignoreIndex?: number; labelSmoothing?: number; reduction?: Reduction }

/**
 * F.cross_entropy for class-index targets. input (N, C) or (N, C, d1, …) or (C); target int32 (N) / (N, d1, …) / ().
 * Per element: (1−ε)·(−log p[y]) + ε·mean_c(−log p[c]); ignored targets contribute nothing and are not counted.
 */
export function crossEntropy(input: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const ignore = opts.ignoreIndex ?? -100, eps = opts.labelSmoothing ?? 0, red = opts.reduction ?? "mean";
  if (target.dtype !== "int32") throw new Error(`crossEntropy: target must be int32 class indices, got ${target.dtype}`);
  if (eps < 0 || eps > 1) throw new Error(`crossEntropy: labelSmoothing must be in [0, 1], got ${eps}`);
  // bring the class axis last: (N, C, d…) → (N, d…, C)
  const x = input.ndim === 1 ? input.unsqueeze(0) : input.ndim > 2 ? input.permute([0, ...range(2, input.ndim), 1]) : input;
  const t = input.ndim === 1 ? target.reshape([1]) : target;
  const C = x.shape[x.ndim - 1];
  const expect = x.shape.slice(0, -1);
  if (t.ndim !== expect.length || t.shape.some((d, i) => d !== expect[i])) {
    throw new Error(`crossEntropy: target shape ${shapeStr(target.shape)} does not match input ${shapeStr(input.shape)} (expected ${shapeStr(input.ndim === 1 ? [] : expect)})`);
  }
  if (t.device !== "cpu") {
    throw new Error(`crossEntropy: the target lives on ${t.device}; class targets are host data checked on the CPU — pass them as a CPU tensor (the logits may stay on ${t.device})`);
  }
  const flatT = contiguousData(t) as Int32Array;
  const keepMask = new Uint8Array(flatT.length), safeT = new Int32Array(flatT.length);
  let count = 0;
  for (let i = 0; i < flatT.length; i++) {
    const y = flatT[i];
    if (y === ignore) continue;
    if (y < 0 || y >= C) throw new Error(`crossEntropy: target ${y} at position ${i} is out of range for ${C} classes`);
    keepMask[i] = 1; safeT[i] = y; count++;
  }
  const logp = logSoftmax(x.reshape([-1, C]), -1);                           // (M, C)
  const picked = logp.gather(1, Tensor.fromArray(safeT, [safeT.length, 1])).squeeze(1); // (M)
  let per = picked.neg();
  if (eps > 0) per = per.mul(1 - eps).add(logp.mean(-1).neg().mul(eps));
  const keepHost = Tensor.fromArray(keepMask, [keepMask.length], "bool");
  const keep = x.device === "cpu" ? keepHost : keepHost.to(x.device);
  per = where(keep, per, 0);
  if (red === "none") return per.reshape(expect);
  const total = per.sum();
  // mean over the non-ignored elements (PyTorch: NaN when every target is ignored)
  return red === "sum" ? total : total.div(count);
}

export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor {
  if (input.ndim !== target.ndim || input.shape.some((d, i) => d !== target.shape[i])) {
    throw new Error(`mseLoss: input ${shapeStr(input.shape)} and target ${shapeStr(target.shape)} must have the same shape`);
  }
  const d = input.sub(target).square();
  return reduction === "none" ? d : reduction === "sum" ? d.sum() : d.mean();
}

export function nllLoss(logProbs: Tensor, target: Tensor, opts: { ignoreIndex?: number; reduction?: Reduction } = {}): Tensor {
  // cross entropy of log-probabilities = NLL (logSoftmax is idempotent on log-probabilities)
  return crossEntropy(logProbs, target, opts);
}

function range(a: number, b: number): number[] { const r: number[] = []; for (let i = a; i < b; i++) r.push(i); return r; }
