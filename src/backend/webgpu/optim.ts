// Optimizer steps in WGSL, in place on the device: PyTorch's SGD (momentum, dampening, Nesterov, weight decay,
// maximize) and Adam/AdamW (amsgrad, decoupled decay) — the same arithmetic as optim/optimizers.ts, one thread per element.
import type { Tensor } from "../../tensor.js";
import type { AdamStep } from "../kernels.js";
import type { GpuRuntime } from "./runtime.js";
import { buf } from "./elementwise.js";
import { f32bits, grid, FLAT_INDEX, MAIN_ARGS } from "./wgsl.js";

const B = (i: number, n: string, rw: boolean) => `@group(0) @binding(${i}) var<storage, ${rw ? "read_write" : "read"}> ${n}: array<f32>;`;

export function adamUpdate(rt: GpuRuntime, p: Tensor, g: Tensor, m: Tensor, v: Tensor, vmax: Tensor | null, h: AdamStep): void {
  const code = `${B(0, "Pm", true)}\n${B(1, "G", false)}\n${B(2, "M", true)}\n${B(3, "V", true)}\n${B(4, "VM", true)}
@group(0) @binding(5) var<storage, read> P: array<i32>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  _ = VM[0];
  if (i >= u32(P[0])) { return; }
  let f = P[3]; let lr = bitcast<f32>(P[4]); let b1 = bitcast<f32>(P[5]); let b2 = bitcast<f32>(P[6]); let eps = bitcast<f32>(P[7]);
  let wd = bitcast<f32>(P[8]); let stepSize = bitcast<f32>(P[9]); let bc2sqrt = bitcast<f32>(P[10]);
  let pi = u32(P[1]) + i;
  var x = Pm[pi];
  var gi = G[u32(P[2]) + i];
  if ((f & 4) != 0) { gi = -gi; }
  if ((f & 2) != 0 && wd != 0.0) { x = x * (1.0 - lr * wd); }
  if ((f & 2) == 0 && wd != 0.0) { gi = gi + wd * x; }
  let m = M[i] + (gi - M[i]) * (1.0 - b1);
  let v = V[i] * b2 + (1.0 - b2) * gi * gi;
  M[i] = m; V[i] = v;
  var vv = v;
  if ((f & 1) != 0) { vv = max(VM[i], v); VM[i] = vv; }
  let denom = sqrt(vv) / bc2sqrt + eps;
  Pm[pi] = x - stepSize * (m / denom);
}`;
  const n = p.numel();
  const flags = (vmax ? 1 : 0) | (h.decoupled ? 2 : 0) | (h.maximize ? 4 : 0);
  rt.dispatch(code, [buf(p), buf(g), buf(m), buf(v), vmax ? buf(vmax) : rt.dummy()],
    Int32Array.of(n, p.offset, g.offset, flags, f32bits(h.lr), f32bits(h.beta1), f32bits(h.beta2), f32bits(h.eps), f32bits(h.weightDecay),
      f32bits(h.stepSize), f32bits(h.bc2sqrt)), grid(n));
}

export interface SgdStep { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean; maximize: boolean; first: boolean }

export function sgdUpdate(rt: GpuRuntime, p: Tensor, g: Tensor, mbuf: Tensor | null, h: SgdStep): void {
  const code = `${B(0, "Pm", true)}\n${B(1, "G", false)}\n${B(2, "MB", true)}
@group(0) @binding(3) var<storage, read> P: array<i32>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${FLAT_INDEX}
  _ = MB[0];
  if (i >= u32(P[0])) { return; }
  let f = P[3]; let lr = bitcast<f32>(P[4]); let mu = bitcast<f32>(P[5]); let damp = bitcast<f32>(P[6]); let wd = bitcast<f32>(P[7]);
  let pi = u32(P[1]) + i;
  let x = Pm[pi];
  var d = G[u32(P[2]) + i];
  if ((f & 4) != 0) { d = -d; }
  if (wd != 0.0) { d = d + wd * x; }
  if ((f & 1) != 0) {
    var b = d;
    if ((f & 8) == 0) { b = mu * MB[i] + (1.0 - damp) * d; }
    MB[i] = b;
    if ((f & 2) != 0) { d = d + mu * b; } else { d = b; }
  }
  Pm[pi] = x - lr * d;
}`;
  const n = p.numel();
  const flags = (mbuf ? 1 : 0) | (h.nesterov ? 2 : 0) | (h.maximize ? 4 : 0) | (h.first ? 8 : 0);
  rt.dispatch(code, [buf(p), buf(g), mbuf ? buf(mbuf) : rt.dummy()],
    Int32Array.of(n, p.offset, g.offset, flags, f32bits(h.lr), f32bits(h.momentum), f32bits(h.dampening), f32bits(h.weightDecay)), grid(n));
}
