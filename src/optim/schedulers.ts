// Learning-rate schedules. Call step() once per optimizer step (or per epoch for StepLR, as in PyTorch).
import type { Optimizer } from "./optimizer.js";

export abstract class LRScheduler {
  protected baseLrs: number[];
  lastEpoch = 0;
  constructor(protected opt: Optimizer<{ lr: number }>) {
    this.baseLrs = opt.paramGroups.map((g) => g.hp.lr);
  }
  /** Subclasses call this at the end of their constructor (their fields exist only after super()). */
  protected init(): void { this.apply(); }
  protected abstract factor(step: number): number;
  step(): void { this.lastEpoch++; this.apply(); }
  getLastLr(): number[] { return this.opt.paramGroups.map((g) => g.hp.lr); }
  private apply(): void { this.opt.paramGroups.forEach((g, i) => (g.hp.lr = this.baseLrs[i] * this.factor(this.lastEpoch))); }
}

/** lr = base · γ^⌊epoch / stepSize⌋. */
export class StepLR extends LRScheduler {
  constructor(opt: Optimizer<{ lr: number }>, readonly stepSize: number, readonly gamma = 0.1) { super(opt); this.init(); }
  protected factor(e: number): number { return Math.pow(this.gamma, Math.floor(e / this.stepSize)); }
}

/** Linear warmup from 0 over `warmupSteps`, then cosine decay to minLr·base at `totalSteps`. */
export class CosineWithWarmup extends LRScheduler {
  constructor(opt: Optimizer<{ lr: number }>, readonly warmupSteps: number, readonly totalSteps: number, readonly minFactor = 0) { super(opt); this.init(); }
  protected factor(s: number): number {
    if (s < this.warmupSteps) return (s + 1) / (this.warmupSteps + 1);
    const t = Math.min(1, (s - this.warmupSteps) / Math.max(1, this.totalSteps - this.warmupSteps));
    return this.minFactor + (1 - this.minFactor) * 0.5 * (1 + Math.cos(Math.PI * t));
  }
}

export class LambdaLR extends LRScheduler {
  constructor(opt: Optimizer<{ lr: number }>, private fn: (step: number) => number) { super(opt); this.init(); }
  protected factor(s: number): number { return this.fn(s); }
}
