// Registers the Node native backend (C++ kernels: AVX-512/AVX2 GEMM, fused FlashAttention-style attention, row
// kernels) when its addon is built. Kernels it does not provide fall back to the reference backend.
import { registerBackend } from "../backend/registry.js";
import type { Kernels } from "../backend/kernels.js";
import { loadNativeKernels } from "./native-addon.js";

let done = false;

export function registerNativeBackend(): boolean {
  if (done) return true;
  const { kernels: n, reason } = loadNativeKernels();
  if (!n) {
    if (!process.env.ATTNFLOW_QUIET) process.stderr.write(`attnflow: native backend unavailable (${reason}); using the reference backend\n`);
    return false;
  }
  done = true;
  const kernels: Partial<Kernels> = {
    gemm: n.gemm,
    softmax: n.softmaxLastDim,
    softmaxBackward: n.softmaxBackward,
    layerNormForward: n.layerNormForward,
    layerNormBackward: n.layerNormBackward,
    attnForward: (q, k, v, out, lse, a) => n.attnForward(q, k, v, out, lse, a.B, a.H, a.Hkv, a.Tq, a.Tk, a.D, a.Dv, a.scale,
      a.causal, a.keyPad, a.attnMask, a.maskB, a.maskH, a.dropoutP, a.seed),
    attnBackward: (q, k, v, out, dout, lse, dq, dk, dv, a) => n.attnBackward(q, k, v, out, dout, lse, dq, dk, dv, a.B, a.H, a.Hkv,
      a.Tq, a.Tk, a.D, a.Dv, a.scale, a.causal, a.keyPad, a.attnMask, a.maskB, a.maskH, a.dropoutP, a.seed),
    attnWeights: (q, k, lse, out, a, mode, rowStart, rowCount) => n.attnWeights(q, k, lse, out, a.B, a.H, a.Hkv, a.Tq, a.Tk, a.D,
      a.scale, a.causal, a.keyPad, a.attnMask, a.maskB, a.maskH, mode, rowStart, rowCount),
  };
  const info = n.info();
  registerBackend({ name: "native", priority: 20, kernels, description: `C++ kernels (${info.isa}, ${info.threads} threads)` });
  return true;
}
