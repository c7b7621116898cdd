// Learning-rate schedules. Call step() once per optimizer step (or per epoch for StepLR, as in PyTorch).
// Each takes PyTorch's positional arguments or one options object (new StepLR(opt, { stepSize: 30, gamma: 0.1 }));
// both are checked, so a misspelt option is an error naming it rather than a learning rate of NaN.
import { Optimizer } from "./optimizer.js";
import { checkNonNegativeInt, checkNumber, checkPositiveInt } from "../nn/check.js";

export abstract class LRScheduler {
  protected baseLrs: number[];
  lastEpoch = 0;
  constructor(protected opt: Optimizer<{ lr: number }>) {
    const cls = new.target.name;
    if (!(opt instanceof Optimizer)) throw new TypeError(`${cls}: the first argument must be an optimizer (SGD, Adam, AdamW), got ${opt === null ? "null" : typeof opt}`);
    this.baseLrs = opt.paramGroups.map((g) => g.hp.lr);
  }
  /** Subclasses call this at the end of their constructor (their fields exist only after super()). */
  protected init(): void { this.apply(); }
  protected abstract factor(step: number): number;
  step(): void { this.lastEpoch++; this.apply(); }
  getLastLr(): number[] { return this.opt.paramGroups.map((g) => g.hp.lr); }
  private apply(): void { this.opt.paramGroups.forEach((g, i) => (g.hp.lr = this.baseLrs[i] * this.factor(this.lastEpoch))); }
}

/**
 * The options object when the second argument is one (then no further positional arguments), else undefined.
 * Unknown keys are an error listing the known ones.
 */
function optionsObject<T extends object>(cls: string, arg: unknown, known: readonly string[], extra: unknown[]): Partial<T> | undefined {
  if (typeof arg !== "object" || arg === null) return undefined;
  const unknown = Object.keys(arg).filter((k) => !known.includes(k));
  if (unknown.length) throw new TypeError(`${cls}: unknown option${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (options: ${known.join(", ")})`);
  if (extra.some((x) => x !== undefined)) throw new TypeError(`${cls}: give either an options object or positional arguments, not both`);
  return arg as Partial<T>;
}

export interface StepLROptions { stepSize: number; gamma?: number }

/** lr = base · γ^⌊epoch / stepSize⌋. */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(opt: Optimizer<{ lr: number }>, stepSize: number | StepLROptions, gamma?: number) {
    super(opt);
    const o = optionsObject<StepLROptions>("StepLR", stepSize, ["stepSize", "gamma"], [gamma]);
    this.stepSize = o ? o.stepSize! : stepSize as number;
    this.gamma = (o ? o.gamma : gamma) ?? 0.1;
    checkPositiveInt("StepLR", "stepSize", this.stepSize);
    checkNumber("StepLR", "gamma", this.gamma, 0, Infinity, { loOpen: true });
    this.init();
  }
  protected factor(e: number): number { return Math.pow(this.gamma, Math.floor(e / this.stepSize)); }
}

export interface CosineWithWarmupOptions { warmupSteps: number; totalSteps: number; minFactor?: number }

/** Linear warmup from 0 over `warmupSteps`, then cosine decay to minFactor·base at `totalSteps`. */
export class CosineWithWarmup extends LRScheduler {
  readonly warmupSteps: number;
  readonly totalSteps: number;
  readonly minFactor: number;
  constructor(opt: Optimizer<{ lr: number }>, warmupSteps: number | CosineWithWarmupOptions, totalSteps?: number, minFactor?: number) {
    super(opt);
    const o = optionsObject<CosineWithWarmupOptions>("CosineWithWarmup", warmupSteps, ["warmupSteps", "totalSteps", "minFactor"], [totalSteps, minFactor]);
    this.warmupSteps = o ? o.warmupSteps! : warmupSteps as number;
    this.totalSteps = (o ? o.totalSteps : totalSteps)!;
    this.minFactor = (o ? o.minFactor : minFactor) ?? 0;
    checkNonNegativeInt("CosineWithWarmup", "warmupSteps", this.warmupSteps);
    checkPositiveInt("CosineWithWarmup", "totalSteps", this.totalSteps);
    checkNumber("CosineWithWarmup", "minFactor", this.minFactor, 0, 1);
    this.init();
  }
  protected factor(s: number): number {
    if (s < this.warmupSteps) return (s + 1) / (this.warmupSteps + 1);
    const t = Math.min(1, (s - this.warmupSteps) / Math.max(1, this.totalSteps - this.warmupSteps));
    return this.minFactor + (1 - this.minFactor) * 0.5 * (1 + Math.cos(Math.PI * t));
  }
}

export interface LambdaLROptions { lrLambda: (step: number) => number }

/** lr = base · lrLambda(step). */
export class LambdaLR extends LRScheduler {
  private fn: (step: number) => number;
  constructor(opt: Optimizer<{ lr: number }>, lrLambda: ((step: number) => number) | LambdaLROptions) {
    super(opt);
    const o = optionsObject<LambdaLROptions>("LambdaLR", lrLambda, ["lrLambda"], []);
    const fn = o ? o.lrLambda : lrLambda;
    if (typeof fn !== "function") throw new TypeError(`LambdaLR: lrLambda must be a function of the step, got ${typeof fn}`);
    this.fn = fn;
    this.init();
  }
  protected factor(s: number): number { return this.fn(s); }
}
