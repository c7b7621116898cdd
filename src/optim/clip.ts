// torch.nn.utils.clip_grad_norm_: total = ‖all grads‖_p (computed before clipping); grads *= min(1, max/(total+1e-6)).
import type { Tensor } from "../tensor.js";
import { cat } from "../ops/movement.js";

export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): number {
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  let total = 0;
  if (normType === Infinity) {
    for (const g of grads) { const d = g.contiguous().storage.data; for (const x of d) total = Math.max(total, Math.abs(x)); }
  } else {
    for (const g of grads) { const d = g.dataSync(); for (let i = 0; i < d.length; i++) total += Math.pow(Math.abs(d[i]), normType); }
    total = Math.pow(total, 1 / normType);
  }
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) {
    for (const g of grads) {
      if (!g.isContiguous()) throw new Error("clipGradNorm: gradients must be contiguous");
      const d = g.storage.data, o = g.offset, n = g.numel();
      for (let i = 0; i < n; i++) d[o + i] *= coef;
    }
  }
  return total;
}

/**
 * clip_grad_norm_ that keeps the total norm a 0-d tensor on the gradients' device (PyTorch returns a tensor too):
 * nothing is read back, so it runs on any device, e.g. WebGPU, where clipGradNorm's number would need a synchronous
 * read. Same arithmetic: total = ‖all grads‖_p, grads *= min(1, maxNorm / (total + 1e-6)), in place.
 */
export function clipGradNormTensor(params: Tensor[], maxNorm: number, normType = 2): Tensor {
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  if (!grads.length) throw new Error("clipGradNormTensor: no parameter has a gradient");
  const parts = grads.map((g) => (normType === Infinity ? g.abs().max() : g.abs().pow(normType).sum()).reshape([1]));
  const all = parts.length === 1 ? parts[0] : cat(parts, 0);
  const total = normType === Infinity ? all.max() : all.sum().pow(1 / normType);
  const coef = total.add(1e-6).reciprocal().mul(maxNorm).clamp(null, 1);   // min(1, maxNorm / (total + 1e-6))
  for (const g of grads) {
    if (!g.isContiguous()) throw new Error("clipGradNormTensor: gradients must be contiguous");
    g.addInPlace(g.mul(coef.sub(1)));   // g·coef, in place (no graph)
  }
  return total;
}
