// SGD, Adam and AdamW with PyTorch's exact update rules (state kept in float32 like PyTorch).
import type { Tensor } from "../tensor.js";
import { Optimizer } from "./optimizer.js";
import { K } from "../backend/registry.js";
import { checkNumber } from "../nn/check.js";
import type { DeviceOps } from "../device.js";

/** Parameters at least this large use the backend's fused Adam kernel when it has one (smaller: the loop below). */
const FUSED_MIN = 4096;

export interface SgdOptions { lr: number; momentum?: number; dampening?: number; weightDecay?: number; nesterov?: boolean; maximize?: boolean }

/** g ← grad + wd·p; buf ← g (first step) else μ·buf + (1−τ)·g; step = nesterov ? g + μ·buf : buf; p ← p − lr·step. */
export class SGD extends Optimizer<Required<SgdOptions>> {
  constructor(params: Tensor[] | ({ params: Tensor[] } & Partial<SgdOptions>)[], o: SgdOptions) {
    if (o.nesterov && (!o.momentum || o.dampening)) throw new Error("SGD: nesterov momentum requires momentum > 0 and dampening = 0");
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...o });
  }
  protected override checkHp(hp: Required<SgdOptions>, cls: string): void {
    super.checkHp(hp, cls);
    checkNumber(cls, "momentum", hp.momentum, 0); checkNumber(cls, "dampening", hp.dampening, 0, 1);
    checkNumber(cls, "weightDecay", hp.weightDecay, 0);
  }
  protected override updateDevice(p: Tensor, g: Tensor, st: Record<string, Tensor>, buf: (n: string) => Tensor, hp: Required<SgdOptions>, ops: DeviceOps): void {
    const first = !st.momentumBuffer;
    ops.sgdUpdate(p, g, hp.momentum ? buf("momentumBuffer") : null, { ...hp, first });
  }
  protected update(p: Float32Array, g: Float32Array, st: Record<string, Float32Array>, hp: Required<SgdOptions>): void {
    const { lr, momentum: mu, dampening, weightDecay: wd, nesterov, maximize } = hp;
    const first = !st.momentumBuffer;
    const buf = mu ? this.buf(st, "momentumBuffer", p.length) : null;
    for (let i = 0; i < p.length; i++) {
      let d = maximize ? -g[i] : g[i];
      if (wd) d += wd * p[i];
      if (buf) {
        buf[i] = first ? d : mu * buf[i] + (1 - dampening) * d;
        d = nesterov ? d + mu * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  }
}

export interface AdamOptions { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number; amsgrad?: boolean; maximize?: boolean }
type AdamHp = Required<AdamOptions> & { lr: number; decoupled: boolean };

/** Adam: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε). */
export class Adam extends Optimizer<AdamHp> {
  constructor(params: Tensor[] | ({ params: Tensor[] } & AdamOptions)[], o: AdamOptions = {}, decoupled = false) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: decoupled ? 1e-2 : 0, amsgrad: false, maximize: false, decoupled, ...o });
  }
  protected override checkHp(hp: AdamHp, cls: string): void {
    super.checkHp(hp, cls);
    if (!Array.isArray(hp.betas) || hp.betas.length !== 2) throw new RangeError(`${cls}: betas must be a pair [beta1, beta2], got ${String(hp.betas)}`);
    checkNumber(cls, "betas[0]", hp.betas[0], 0, 1, { hiOpen: true }); checkNumber(cls, "betas[1]", hp.betas[1], 0, 1, { hiOpen: true });
    checkNumber(cls, "eps", hp.eps, 0, Infinity, { loOpen: true }); checkNumber(cls, "weightDecay", hp.weightDecay, 0);
  }
  private deviceSteps = new Map<Tensor, number>();
  protected override updateDevice(p: Tensor, g: Tensor, _st: Record<string, Tensor>, buf: (n: string) => Tensor, hp: AdamHp, ops: DeviceOps): void {
    const { lr, betas: [b1, b2], eps, weightDecay: wd, amsgrad, maximize, decoupled } = hp;
    const t = (this.deviceSteps.get(p) ?? 0) + 1;   // the step count stays on the host (it picks the bias corrections)
    this.deviceSteps.set(p, t);
    const bc1 = 1 - Math.pow(b1, t), bc2sqrt = Math.sqrt(1 - Math.pow(b2, t));
    ops.adamUpdate(p, g, buf("expAvg"), buf("expAvgSq"), amsgrad ? buf("maxExpAvgSq") : null,
      { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, stepSize: lr / bc1, bc2sqrt, decoupled, maximize });
  }
  protected update(p: Float32Array, g: Float32Array, st: Record<string, Float32Array>, hp: AdamHp): void {
    const { lr, betas: [b1, b2], eps, weightDecay: wd, amsgrad, maximize, decoupled } = hp;
    const m = this.buf(st, "expAvg", p.length), v = this.buf(st, "expAvgSq", p.length);
    const stepArr = this.buf(st, "step", 1);
    const t = ++stepArr[0];
    const vmax = amsgrad ? this.buf(st, "maxExpAvgSq", p.length) : null;
    const bc1 = 1 - Math.pow(b1, t), bc2sqrt = Math.sqrt(1 - Math.pow(b2, t));
    const stepSize = lr / bc1;
    if (K.adamUpdate && p.length >= FUSED_MIN) { // one fused pass over p, g, m, v on fast backends
      K.adamUpdate(p, g, m, v, vmax, { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, stepSize, bc2sqrt, decoupled, maximize });
      return;
    }
    if (decoupled && wd) for (let i = 0; i < p.length; i++) p[i] *= 1 - lr * wd;
    for (let i = 0; i < p.length; i++) {
      let gi = maximize ? -g[i] : g[i];
      if (!decoupled && wd) gi += wd * p[i];
      m[i] = m[i] + (gi - m[i]) * (1 - b1);            // lerp, as torch's exp_avg.lerp_(grad, 1-β1)
      v[i] = v[i] * b2 + (1 - b2) * gi * gi;
      let vv = v[i];
      if (vmax) { vmax[i] = Math.max(vmax[i], v[i]); vv = vmax[i]; }
      const denom = Math.sqrt(vv) / bc2sqrt + eps;
      p[i] -= stepSize * (m[i] / denom);
    }
  }
}

/** AdamW: decoupled weight decay p ← p·(1 − lr·wd) before the Adam step (default wd 0.01). */
export class AdamW extends Adam {
  constructor(params: Tensor[] | ({ params: Tensor[] } & AdamOptions)[], o: AdamOptions = {}) { super(params, o, true); }
}
