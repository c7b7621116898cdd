// Tensor: a strided view (shape, strides, offset) over a Storage, plus autograd state. Math lives in ops/; the
// methods here are the chainable PyTorch-shaped surface over those functions.
import { type AnyTypedArray, type DType, dtypeOfArray } from "./dtype.js";
import { contiguousStrides, isContiguous, numel, shapeStr, checkShape, type Shape } from "./shape.js";
import { Storage } from "./storage.js";
import { runBackward, type GradNode } from "./autograd.js";
import * as E from "./ops/elementwise.js";
import * as R from "./ops/reduce.js";
import * as M from "./ops/movement.js";
import * as MM from "./ops/matmul.js";
import * as N from "./ops/nn.js";
import { formatTensor } from "./format.js";
import { trackCreated } from "./scope.js";
import { getDevice, isDeviceName, type DeviceName } from "./device.js";

export type TensorLike = Tensor | number;
export type NestedArray = number | boolean | NestedArray[];

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: number[];
  readonly strides: number[];
  readonly offset: number;
  readonly dtype: DType;
  readonly storage: Storage;  // replaced only by _moveTo (Module.to): the same tensor object, now on another device
  requiresGrad = false;
  grad: Tensor | null = null;
  /** Set when the tensor should keep its .grad although it is not a leaf (retainGrad()). */
  retainsGrad = false;
  /** @internal grad node of the op that produced this tensor */
  _node: GradNode | null = null;
  private disposedSelf = false;

  constructor(storage: Storage, shape: Shape, strides?: readonly number[], offset = 0) {
    this.storage = storage;
    this.shape = [...shape];
    this.strides = strides ? [...strides] : contiguousStrides(shape);
    this.offset = offset;
    this.dtype = storage.dtype;
    storage.users++;
    trackCreated(this);
  }

  // ---------- creation ----------
  /** Wrap (a copy of, unless copy=false) a flat typed array with the given shape. */
  static fromArray(data: ArrayLike<number> | AnyTypedArray, shape?: Shape, dtype?: DType): Tensor {
    const dt = dtype ?? dtypeOfArray(data);
    const shp = shape ?? [data.length];
    checkShape(shp, "fromArray");
    if (numel(shp) !== data.length) throw new Error(`fromArray: ${data.length} values cannot have shape ${shapeStr(shp)} (${numel(shp)} elements)`);
    const st = Storage.alloc(dt, data.length, false);
    (st.data as AnyTypedArray).set(data as ArrayLike<number>);
    return new Tensor(st, shp);
  }

  /** Tensor of the given shape, filled with zeros (fresh, pooled storage). */
  static empty(shape: Shape, dtype: DType = "float32"): Tensor {
    checkShape(shape, "empty");
    return new Tensor(Storage.alloc(dtype, numel(shape), true), shape);
  }

  // ---------- info ----------
  get ndim(): number { return this.shape.length; }
  dim(): number { return this.shape.length; }
  numel(): number { return numel(this.shape); }
  size(dim?: number): number | number[] { return dim === undefined ? [...this.shape] : this.shape[dim < 0 ? dim + this.ndim : dim]; }
  get isLeaf(): boolean { return this._node === null; }
  isContiguous(): boolean { return isContiguous(this.shape, this.strides); }
  get disposed(): boolean { return this.disposedSelf || this.storage.disposed; }

  // ---------- data access (always copies: the storage buffer is never handed out) ----------
  /** Flat row-major copy as a typed array of the tensor's dtype. */
  dataSync(): AnyTypedArray { if (this.storage.handle) throw syncRead(this, "dataSync()"); return M.contiguousData(this).slice(); }
  /** Flat row-major copy; the only way (with array()/cpu()) to read a tensor that lives on a device. */
  async data(): Promise<AnyTypedArray> {
    if (this.storage.device === "cpu") return this.dataSync();
    const c = this.contiguous();
    const r = await this.storage.deviceImpl.read(c.storage.handle!, c.dtype, c.offset, c.numel());
    if (c !== this) c.dispose();
    return r;
  }
  /** Nested JS arrays, for any device (toArray() is the synchronous CPU-only form). */
  async array(): Promise<NestedArray> {
    if (this.storage.device === "cpu") return this.toArray();
    const t = Tensor.fromArray(await this.data(), this.shape, this.dtype);
    const r = t.toArray();
    t.dispose();
    return r;
  }
  /** Where the tensor's memory lives: "cpu" or a device such as "webgpu". */
  get device(): DeviceName { return this.storage.device; }
  /**
   * @internal Move this tensor object's memory to `device` in place (Module.to: optimizers and tied weights keep their
   * references). CPU → device only; its .grad moves too.
   */
  _moveTo(device: DeviceName): void {
    if (this.device === device) return;
    if (device === "cpu") throw new Error(`to("cpu"): reading ${this.device} memory back waits for the device; use await t.cpu() per tensor`);
    const moved = this.to(device);
    const self = this as unknown as { storage: Storage; strides: number[]; offset: number };
    if (--this.storage.users <= 0) this.storage.release();
    self.storage = moved.storage; self.strides = [...moved.strides]; self.offset = 0;
    moved.storage.users++;
    moved.dispose();
    // a gradient freed by the tidy() of a training step is gone, not moved (the next backward makes a new one)
    if (this.grad?.disposed) this.grad = null;
    if (this.grad) this.grad._moveTo(device);
  }
  /** A CPU copy of a tensor on any device (waits for the device); a CPU tensor is returned as it is. */
  async cpu(): Promise<Tensor> {
    if (this.storage.device === "cpu") return this;
    return Tensor.fromArray(await this.data(), this.shape, this.dtype);
  }
  /** Flat row-major copy as Float32Array. */
  toFloat32Array(): Float32Array { if (this.storage.handle) throw syncRead(this, "toFloat32Array()"); return Float32Array.from(M.contiguousData(this) as ArrayLike<number>); }
  /** Nested JS arrays (like torch's tolist()). */
  toArray(): NestedArray { if (this.storage.handle) throw syncRead(this, "toArray()"); return M.toNested(this); }
  tolist(): NestedArray { return this.toArray(); }
  item(): number {
    if (this.storage.handle) throw syncRead(this, "item()");
    if (this.numel() !== 1) throw new Error(`item: tensor with shape ${shapeStr(this.shape)} has ${this.numel()} elements, not 1`);
    return this.storage.data[this.offset];
  }
  toString(): string { return formatTensor(this); }
  [Symbol.for("nodejs.util.inspect.custom")](): string { return this.toString(); }

  // ---------- autograd ----------
  requiresGrad_(on = true): this {
    if (on && this.dtype !== "float32") throw new Error(`requiresGrad_: only float32 tensors can require gradients (got ${this.dtype})`);
    this.requiresGrad = on; return this;
  }
  retainGrad(): this { this.retainsGrad = true; return this; }
  /** Backpropagate from this tensor; a scalar needs no seed, otherwise pass dL/d(this). */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    if (!this.requiresGrad) throw new Error("backward: tensor does not require grad (no input had requiresGrad=true, or it was computed under noGrad)");
    let seed = gradient;
    if (!seed) {
      if (this.numel() !== 1) throw new Error(`backward: gradient can be implicitly created only for scalar outputs (shape ${shapeStr(this.shape)}); pass a gradient tensor`);
      seed = E.fullLike(this, 1);
    } else if (!seed.shape.every((d, i) => d === this.shape[i]) || seed.ndim !== this.ndim) {
      throw new Error(`backward: gradient shape ${shapeStr(seed.shape)} does not match output shape ${shapeStr(this.shape)}`);
    }
    runBackward(this, seed, opts.retainGraph ?? false);
  }
  /** Same data, cut from the graph. */
  detach(): Tensor { return new Tensor(this.storage, this.shape, this.strides, this.offset); }

  // ---------- memory ----------
  /** Release this tensor's memory now (views keep shared storage alive until they are disposed too). */
  dispose(): void {
    if (this.disposedSelf) return;
    this.disposedSelf = true;
    if (--this.storage.users <= 0) this.storage.release();
  }
  [Symbol.dispose](): void { this.dispose(); }

  // ---------- elementwise ----------
  add(o: TensorLike, alpha?: number): Tensor { return E.add(this, alpha === undefined ? o : E.mulScalarLike(o, alpha)); }
  sub(o: TensorLike, alpha?: number): Tensor { return E.sub(this, alpha === undefined ? o : E.mulScalarLike(o, alpha)); }
  mul(o: TensorLike): Tensor { return E.mul(this, o); }
  div(o: TensorLike): Tensor { return E.div(this, o); }
  pow(o: TensorLike): Tensor { return E.pow(this, o); }
  maximum(o: TensorLike): Tensor { return E.maximum(this, o); }
  minimum(o: TensorLike): Tensor { return E.minimum(this, o); }
  neg(): Tensor { return E.unaryOp(this, "neg"); }
  exp(): Tensor { return E.unaryOp(this, "exp"); }
  log(): Tensor { return E.unaryOp(this, "log"); }
  log1p(): Tensor { return E.unaryOp(this, "log1p"); }
  sqrt(): Tensor { return E.unaryOp(this, "sqrt"); }
  rsqrt(): Tensor { return E.unaryOp(this, "rsqrt"); }
  abs(): Tensor { return E.unaryOp(this, "abs"); }
  sin(): Tensor { return E.unaryOp(this, "sin"); }
  cos(): Tensor { return E.unaryOp(this, "cos"); }
  tanh(): Tensor { return E.unaryOp(this, "tanh"); }
  sigmoid(): Tensor { return E.unaryOp(this, "sigmoid"); }
  relu(): Tensor { return E.unaryOp(this, "relu"); }
  erf(): Tensor { return E.unaryOp(this, "erf"); }
  square(): Tensor { return E.unaryOp(this, "square"); }
  reciprocal(): Tensor { return E.unaryOp(this, "reciprocal"); }
  sign(): Tensor { return E.unaryOp(this, "sign"); }
  floor(): Tensor { return E.unaryOp(this, "floor"); }
  ceil(): Tensor { return E.unaryOp(this, "ceil"); }
  round(): Tensor { return E.unaryOp(this, "round"); }
  clamp(min?: number | null, max?: number | null): Tensor { return E.clamp(this, min ?? null, max ?? null); }
  eq(o: TensorLike): Tensor { return E.compare(this, o, "eq"); }
  ne(o: TensorLike): Tensor { return E.compare(this, o, "ne"); }
  lt(o: TensorLike): Tensor { return E.compare(this, o, "lt"); }
  le(o: TensorLike): Tensor { return E.compare(this, o, "le"); }
  gt(o: TensorLike): Tensor { return E.compare(this, o, "gt"); }
  ge(o: TensorLike): Tensor { return E.compare(this, o, "ge"); }
  logicalAnd(o: Tensor): Tensor { return E.compare(this, o, "and"); }
  logicalOr(o: Tensor): Tensor { return E.compare(this, o, "or"); }
  logicalNot(): Tensor { return E.logicalNot(this); }
  maskedFill(mask: Tensor, value: number): Tensor { return E.maskedFill(this, mask, value); }
  /**
   * Convert dtype (copies), or copy to a device: t.to("webgpu") uploads (enqueued, returns at once). A leaf that
   * requires grad gives a device leaf that requires grad (its own .grad, on the device); a tensor inside a CPU graph
   * cannot move (its gradient could not flow back synchronously). Moving a device tensor to the CPU needs a wait, so
   * t.to("cpu") on one throws and says to use await t.cpu().
   */
  to(target: DType | DeviceName): Tensor {
    if (!isDeviceName(target)) return E.cast(this, target);
    if (target === this.device) return this;
    if (target === "cpu") throw new Error(`to("cpu"): reading a ${this.device} tensor back waits for the device; use await t.cpu()`);
    if (this._node && this.requiresGrad) {
      throw new Error(`to("${target}"): this tensor is inside an autograd graph on the CPU, and gradients cannot flow back from ` +
        `${target} synchronously; move the inputs and parameters (leaves, module.to("${target}")) before the computation instead`);
    }
    const dev = getDevice(target);
    const src = M.contiguousData(this);
    const st = Storage.onDevice(dev, this.dtype, src.length);
    dev.upload(st.handle!, this.dtype, src);
    const t = new Tensor(st, this.shape);
    return this.requiresGrad ? t.requiresGrad_(true) : t;
  }
  float(): Tensor { return E.cast(this, "float32"); }
  int(): Tensor { return E.cast(this, "int32"); }
  bool(): Tensor { return E.cast(this, "bool"); }
  /** In-place add used by optimizers and grad accumulation (no graph). */
  addInPlace(o: Tensor, alpha = 1): this { E.addInPlace(this, o, alpha); return this; }

  // ---------- reductions ----------
  sum(dim?: number | number[], keepDim = false): Tensor { return R.sum(this, dim, keepDim); }
  mean(dim?: number | number[], keepDim = false): Tensor { return R.mean(this, dim, keepDim); }
  max(dim?: number, keepDim = false): Tensor { return R.maxMin(this, dim, keepDim, "max"); }
  min(dim?: number, keepDim = false): Tensor { return R.maxMin(this, dim, keepDim, "min"); }
  argmax(dim?: number, keepDim = false): Tensor { return R.argReduce(this, dim, keepDim, "argmax"); }
  argmin(dim?: number, keepDim = false): Tensor { return R.argReduce(this, dim, keepDim, "argmin"); }
  /** Variance; unbiased (Bessel) by default like torch.var. */
  var(dim?: number | number[], opts: { unbiased?: boolean; keepDim?: boolean } = {}): Tensor { return R.variance(this, dim, opts.unbiased ?? true, opts.keepDim ?? false); }
  std(dim?: number | number[], opts: { unbiased?: boolean; keepDim?: boolean } = {}): Tensor { return R.variance(this, dim, opts.unbiased ?? true, opts.keepDim ?? false).sqrt(); }
  logsumexp(dim: number, keepDim = false): Tensor { return R.logsumexp(this, dim, keepDim); }
  norm(p: number = 2): Tensor { return p === Infinity ? this.abs().max() : this.abs().pow(p).sum().pow(1 / p); }

  // ---------- movement (views where possible) ----------
  reshape(...shape: (number | number[])[]): Tensor { return M.reshape(this, flatArgs(shape)); }
  view(...shape: (number | number[])[]): Tensor { return M.view(this, flatArgs(shape)); }
  permute(...dims: (number | number[])[]): Tensor { return M.permute(this, flatArgs(dims)); }
  transpose(d0: number, d1: number): Tensor { return M.transpose(this, d0, d1); }
  /** Transpose of a 2-D tensor. */
  t(): Tensor {
    if (this.ndim !== 2) throw new Error(`t: expects a 2-D tensor, got shape ${shapeStr(this.shape)}`);
    return M.transpose(this, 0, 1);
  }
  get mT(): Tensor { return M.transpose(this, -2, -1); }
  expand(...shape: (number | number[])[]): Tensor { return M.expand(this, flatArgs(shape)); }
  expandAs(o: Tensor): Tensor { return M.expand(this, o.shape); }
  narrow(dim: number, start: number, length: number): Tensor { return M.narrow(this, dim, start, length); }
  /** Python-style slice along one dim: [start, end) with optional step (negative indices allowed). */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor { return M.slice(this, dim, start, end, step); }
  select(dim: number, index: number): Tensor { return M.select(this, dim, index); }
  squeeze(dim?: number): Tensor { return M.squeeze(this, dim); }
  unsqueeze(dim: number): Tensor { return M.unsqueeze(this, dim); }
  flatten(startDim = 0, endDim = -1): Tensor { return M.flatten(this, startDim, endDim); }
  contiguous(): Tensor { return M.contiguous(this); }
  clone(): Tensor { return M.clone(this); }
  split(sizeOrSections: number | number[], dim = 0): Tensor[] { return M.split(this, sizeOrSections, dim); }
  chunk(chunks: number, dim = 0): Tensor[] { return M.chunk(this, chunks, dim); }
  indexSelect(dim: number, index: Tensor): Tensor { return M.indexSelect(this, dim, index); }
  gather(dim: number, index: Tensor): Tensor { return M.gather(this, dim, index); }
  repeat(...times: (number | number[])[]): Tensor { return M.repeat(this, flatArgs(times)); }
  tril(diagonal = 0): Tensor { return M.triangle(this, diagonal, "lower"); }
  triu(diagonal = 0): Tensor { return M.triangle(this, diagonal, "upper"); }

  // ---------- linear algebra and nn ----------
  matmul(o: Tensor): Tensor { return MM.matmul(this, o); }
  softmax(dim = -1): Tensor { return N.softmax(this, dim); }
  logSoftmax(dim = -1): Tensor { return N.logSoftmax(this, dim); }
}

function flatArgs(a: (number | number[])[]): number[] {
  return a.length === 1 && Array.isArray(a[0]) ? [...(a[0] as number[])] : (a as number[]);
}

function syncRead(t: Tensor, what: string): Error {
  return new Error(`tensor lives on ${t.device}: ${what} reads synchronously; use await t.data() or await t.array() (or await t.cpu() for a CPU tensor)`);
}
