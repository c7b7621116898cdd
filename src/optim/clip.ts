// torch.nn.utils.clip_grad_norm_: total = ‖all grads‖_p (computed before clipping); grads *= min(1, max/(total+1e-6)).
import type { Tensor } from "../tensor.js";

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
