// Basic layers: Linear, Embedding, LayerNorm, Dropout, activations, containers.
import { Tensor } from "../tensor.js";
import { zeros, ones, randn } from "../creation.js";
import * as F from "../functional.js";
import type { Generator } from "../random.js";
import { Module, Parameter } from "./module.js";
import { initSkipped, kaimingUniform_, uniform_ } from "./init.js";
import { checkDropout, checkNumber, checkPositiveInt } from "./check.js";

export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; generator?: Generator } = {}) {
    super();
    checkPositiveInt("Linear", "inFeatures", inFeatures); checkPositiveInt("Linear", "outFeatures", outFeatures);
    // PyTorch default: kaiming_uniform(a=√5) → U(−1/√in, 1/√in) for weight and bias
    this.weight = Parameter(kaimingUniform_(zeros([outFeatures, inFeatures]), Math.sqrt(5), opts.generator));
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.bias = opts.bias === false ? null : Parameter(uniform_(zeros([outFeatures]), -bound, bound, opts.generator));
  }
  forward(x: Tensor): Tensor { return F.linear(x, this.weight, this.bias); }
  protected override extraRepr(): string { return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`; }
}

export class Embedding extends Module {
  weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, readonly opts: { paddingIdx?: number; generator?: Generator } = {}) {
    super();
    checkPositiveInt("Embedding", "numEmbeddings", numEmbeddings); checkPositiveInt("Embedding", "embeddingDim", embeddingDim);
    const w = initSkipped() ? zeros([numEmbeddings, embeddingDim]) : randn([numEmbeddings, embeddingDim], { generator: opts.generator });
    let pad = opts.paddingIdx;
    if (pad !== undefined) {
      if (pad < 0) pad += numEmbeddings;
      if (pad < 0 || pad >= numEmbeddings) throw new Error(`Embedding: paddingIdx ${opts.paddingIdx} out of range for ${numEmbeddings} embeddings`);
      w.storage.data.fill(0, pad * embeddingDim, (pad + 1) * embeddingDim); // PyTorch zeroes the padding row at init
      this.opts = { ...opts, paddingIdx: pad };
    }
    this.weight = Parameter(w);
  }
  forward(indices: Tensor): Tensor { return F.embedding(indices, this.weight, this.opts.paddingIdx ?? null); }
  protected override extraRepr(): string { return `${this.numEmbeddings}, ${this.embeddingDim}${this.opts.paddingIdx !== undefined ? `, paddingIdx=${this.opts.paddingIdx}` : ""}`; }
}

export class LayerNorm extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly normalizedShape: number[];
  constructor(normalizedShape: number | number[], readonly opts: { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    this.normalizedShape = Array.isArray(normalizedShape) ? normalizedShape : [normalizedShape];
    if (!this.normalizedShape.length) throw new RangeError("LayerNorm: normalizedShape must have at least one dimension, got []");
    for (const d of this.normalizedShape) checkPositiveInt("LayerNorm", "normalizedShape", d);
    if (opts.eps !== undefined) checkNumber("LayerNorm", "eps", opts.eps, 0, Infinity, { loOpen: true });
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? Parameter(ones(this.normalizedShape)) : null;
    this.bias = affine && opts.bias !== false ? Parameter(zeros(this.normalizedShape)) : null;
  }
  forward(x: Tensor): Tensor { return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.opts.eps ?? 1e-5); }
  protected override extraRepr(): string { return `[${this.normalizedShape}], eps=${this.opts.eps ?? 1e-5}`; }
}

/**
 * torch.nn.RMSNorm (Zhang & Sennrich 2019; Llama's LlamaRMSNorm): y = x / √(mean(x²) + eps) · weight over the last
 * `normalizedShape` dims. eps defaults to float32's machine epsilon, like PyTorch's eps=None.
 */
export class RMSNorm extends Module {
  weight: Tensor | null;
  readonly normalizedShape: number[];
  readonly eps: number;
  constructor(normalizedShape: number | number[], opts: { eps?: number; elementwiseAffine?: boolean } = {}) {
    super();
    this.normalizedShape = Array.isArray(normalizedShape) ? normalizedShape : [normalizedShape];
    if (!this.normalizedShape.length) throw new RangeError("RMSNorm: normalizedShape must have at least one dimension, got []");
    for (const d of this.normalizedShape) checkPositiveInt("RMSNorm", "normalizedShape", d);
    if (opts.eps !== undefined) checkNumber("RMSNorm", "eps", opts.eps, 0, Infinity, { loOpen: true });
    this.eps = opts.eps ?? 1.1920928955078125e-7;
    this.weight = opts.elementwiseAffine ?? true ? Parameter(ones(this.normalizedShape)) : null;
  }
  forward(x: Tensor): Tensor { return F.rmsNorm(x, this.normalizedShape, this.weight, this.eps); }
  protected override extraRepr(): string { return `[${this.normalizedShape}], eps=${this.eps}`; }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5, readonly generator?: Generator) { super(); checkDropout("Dropout", "p", p); }
  forward(x: Tensor): Tensor { return F.dropout(x, this.p, this.training, this.generator); }
  protected override extraRepr(): string { return `p=${this.p}`; }
}

export class ReLU extends Module { forward(x: Tensor): Tensor { return F.relu(x); } }
export class SiLU extends Module { forward(x: Tensor): Tensor { return F.silu(x); } }
export class Tanh extends Module { forward(x: Tensor): Tensor { return F.tanh(x); } }
export class Sigmoid extends Module { forward(x: Tensor): Tensor { return F.sigmoid(x); } }
export class Identity extends Module { forward(x: Tensor): Tensor { return x; } }
export class GELU extends Module {
  constructor(readonly approximate: "none" | "tanh" = "none") {
    super();
    if (approximate !== "none" && approximate !== "tanh") throw new RangeError(`GELU: approximate must be "none" or "tanh", got ${JSON.stringify(approximate)}`);
  }
  forward(x: Tensor): Tensor { return F.gelu(x, this.approximate); }
  protected override extraRepr(): string { return `approximate='${this.approximate}'`; }
}
export class Softmax extends Module {
  constructor(readonly dim = -1) { super(); }
  forward(x: Tensor): Tensor { return F.softmax(x, this.dim); }
}

/** Ordered list of submodules named "0", "1", … (PyTorch nn.ModuleList). */
export class ModuleList<M extends Module = Module> extends Module {
  protected items: M[];
  constructor(modules: M[] = []) { super(); this.items = [...modules]; }
  override namedChildren(): [string, Module][] { return this.items.map((m, i) => [String(i), m]); }
  get length(): number { return this.items.length; }
  at(i: number): M { return this.items[i < 0 ? i + this.items.length : i]; }
  push(m: M): this { this.items.push(m); return this; }
  [Symbol.iterator](): Iterator<M> { return this.items[Symbol.iterator](); }
  forward(..._args: never[]): unknown { throw new Error("ModuleList has no forward(); iterate over it"); }
}

/** Chain of modules each taking the previous output (PyTorch nn.Sequential). */
export class Sequential extends ModuleList {
  constructor(...modules: Module[]) { super(modules); }
  override forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.items) y = (m.forward as (t: Tensor) => Tensor)(y);
    return y;
  }
}
