// Optimizer base: parameter groups, per-parameter state (typed arrays, updated in place), state dicts for checkpoints.
import { keep } from "../scope.js";
import type { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { checkNumber } from "../nn/check.js";
import { unsupportedOn, type DeviceOps } from "../device.js";
import { zerosOf } from "../ops/util.js";

export interface ParamGroup<H> { params: Tensor[]; hp: H }

export abstract class Optimizer<H extends { lr: number }> {
  readonly paramGroups: ParamGroup<H>[];
  /** Per-parameter state by (group, index): named Float32Arrays. */
  protected state = new Map<Tensor, Record<string, Float32Array>>();
  stepCount = 0;

  constructor(params: Tensor[] | ({ params: Tensor[] } & object)[], defaults: H) {
    const cls = new.target.name;
    if (!Array.isArray(params)) throw new TypeError(`${cls}: params must be an array of parameters or of parameter groups, got ${typeof params}`);
    if (!params.length) throw new RangeError(`${cls}: no parameters to optimize (an empty parameter list)`);
    const groups = (params.length && !("storage" in (params[0] as object))) ? params as { params: Tensor[] }[] : [{ params: params as Tensor[] }];
    this.paramGroups = groups.map((g) => {
      const { params: ps, ...over } = g as { params: Tensor[] };
      for (const p of ps) if (!p.requiresGrad) throw new Error(`optimizer: a parameter of shape ${shapeStr(p.shape)} does not require grad`);
      return { params: ps, hp: { ...defaults, ...over } as H };
    });
    this.paramGroups.forEach((g, i) => this.checkHp(g.hp, this.paramGroups.length > 1 ? `${cls} (parameter group ${i})` : cls));
  }

  /** Subclasses check their hyper-parameters (each group's, defaults merged); lr ≥ 0 for all. */
  protected checkHp(hp: H, cls: string): void { checkNumber(cls, "lr", hp.lr, 0); }

  get lr(): number { return this.paramGroups[0].hp.lr; }
  set lr(v: number) { for (const g of this.paramGroups) g.hp.lr = v; }

  /** Reset gradients (set to null, PyTorch ≥ 2.0's default set_to_none=True). */
  zeroGrad(): void { for (const g of this.paramGroups) for (const p of g.params) p.grad = null; }

  step(): void {
    this.stepCount++;
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        if (!p.isContiguous()) throw new Error("optimizer: parameters must be contiguous tensors");
        const grad = p.grad.isContiguous() ? p.grad : p.grad.contiguous();
        if (p.device !== "cpu" || grad.device !== "cpu") { this.stepOnDevice(p, grad, g.hp); continue; }
        const pd = p.storage.data as Float32Array, gd = grad.storage.data as Float32Array;
        let st = this.state.get(p);
        if (!st) this.state.set(p, (st = {}));
        this.update(pd.subarray(p.offset, p.offset + p.numel()), gd.subarray(grad.offset, grad.offset + p.numel()), st, g.hp, p);
      }
    }
  }

  /** Per-parameter state of parameters on a device: device tensors (zero-initialised on first use). */
  protected deviceState = new Map<Tensor, Record<string, Tensor>>();

  private stepOnDevice(p: Tensor, grad: Tensor, hp: H): void {
    if (p.device !== grad.device) throw new Error(`optimizer: parameter on ${p.device} (shape ${shapeStr(p.shape)}) but its gradient on ${grad.device}`);
    let st = this.deviceState.get(p);
    if (!st) this.deviceState.set(p, (st = {}));
    const dops = p.storage.deviceImpl.ops;
    // keep(): state made inside a tidy() (a training step) outlives it
    const stateBuf = (name: string) => st![name] ?? (st![name] = keep(zerosOf([p.numel()], "float32", p)));
    this.updateDevice(p, grad, st, stateBuf, hp, dops);
  }

  /** One parameter's step on its device (in place); subclasses that support devices override it. */
  protected updateDevice(p: Tensor, _g: Tensor, _state: Record<string, Tensor>, _buf: (name: string) => Tensor, _hp: H, _ops: DeviceOps): void {
    throw unsupportedOn(p.device, `${this.constructor.name} steps`);
  }

  /** Update one parameter in place. `state` arrays are created lazily by the subclass. */
  protected abstract update(p: Float32Array, g: Float32Array, state: Record<string, Float32Array>, hp: H, param: Tensor): void;

  protected buf(state: Record<string, Float32Array>, name: string, n: number): Float32Array {
    return state[name] ?? (state[name] = new Float32Array(n));
  }

  /** Flat state for checkpoints: arrays named "<paramIndex>.<name>" plus scalar fields. */
  stateDict(): { tensors: Record<string, Float32Array>; scalars: Record<string, number> } {
    if (this.deviceState.size) throw unsupportedOn([...this.deviceState.keys()][0].device, "optimizer stateDict() of parameters on the device (it reads synchronously)");
    const tensors: Record<string, Float32Array> = {};
    const scalars: Record<string, number> = { stepCount: this.stepCount };
    let i = 0;
    this.paramGroups.forEach((g, gi) => {
      scalars[`group${gi}.lr`] = g.hp.lr;
      for (const p of g.params) {
        const st = this.state.get(p);
        if (st) for (const [k, v] of Object.entries(st)) tensors[`${i}.${k}`] = v;
        i++;
      }
    });
    return { tensors, scalars };
  }

  loadStateDict(sd: { tensors: Record<string, Float32Array>; scalars: Record<string, number> }): void {
    this.stepCount = sd.scalars.stepCount ?? 0;
    const flat = this.paramGroups.flatMap((g) => g.params);
    this.paramGroups.forEach((g, gi) => { if (sd.scalars[`group${gi}.lr`] !== undefined) g.hp.lr = sd.scalars[`group${gi}.lr`]; });
    this.state.clear();
    for (const [key, arr] of Object.entries(sd.tensors)) {
      const dot = key.indexOf(".");
      const idx = Number(key.slice(0, dot)), name = key.slice(dot + 1);
      const p = flat[idx];
      if (!p) throw new Error(`optimizer.loadStateDict: state for parameter #${idx} but the optimizer has ${flat.length} parameters`);
      if (arr.length !== p.numel() && arr.length !== 1) throw new Error(`optimizer.loadStateDict: state "${key}" has ${arr.length} values, parameter has ${p.numel()}`);
      let st = this.state.get(p);
      if (!st) this.state.set(p, (st = {}));
      st[name] = Float32Array.from(arr);
    }
  }
}
