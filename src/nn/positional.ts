// Positional encodings: fixed sinusoidal (Vaswani et al. 2017) and learned.
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { Module, Parameter } from "./module.js";
import { Dropout } from "./layers.js";
import { normal_ } from "./init.js";
import { zeros } from "../creation.js";
import { checkPositiveInt } from "./check.js";

/** PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)); computed in float64. */
export function sinusoidalTable(maxLen: number, dModel: number, base = 10000): Tensor {
  const pe = new Float32Array(maxLen * dModel);
  for (let pos = 0; pos < maxLen; pos++) {
    for (let i = 0; 2 * i < dModel; i++) {
      const angle = pos / Math.pow(base, (2 * i) / dModel);
      pe[pos * dModel + 2 * i] = Math.sin(angle);
      if (2 * i + 1 < dModel) pe[pos * dModel + 2 * i + 1] = Math.cos(angle);
    }
  }
  return Tensor.fromArray(pe, [maxLen, dModel]);
}

/** x + PE[:T] for x (B, T, d) (batchFirst) or (T, B, d), then dropout. The table is a non-persistent buffer. */
export class SinusoidalPositionalEncoding extends Module {
  dropout: Dropout;
  constructor(readonly dModel: number, readonly opts: { maxLen?: number; dropout?: number; batchFirst?: boolean } = {}) {
    super();
    checkPositiveInt("SinusoidalPositionalEncoding", "dModel", dModel);
    checkPositiveInt("SinusoidalPositionalEncoding", "maxLen", opts.maxLen ?? 5000);
    this.dropout = new Dropout(opts.dropout ?? 0);
    this.registerBuffer("pe", sinusoidalTable(opts.maxLen ?? 5000, dModel), false);
  }
  forward(x: Tensor): Tensor {
    const bf = this.opts.batchFirst ?? true, T = x.shape[bf ? 1 : 0], pe = this.getBuffer("pe")!;
    if (x.shape[x.ndim - 1] !== this.dModel) throw new Error(`SinusoidalPositionalEncoding: last dim of ${shapeStr(x.shape)} must be ${this.dModel}`);
    if (T > pe.shape[0]) throw new Error(`SinusoidalPositionalEncoding: sequence length ${T} exceeds maxLen ${pe.shape[0]}`);
    const table = pe.narrow(0, 0, T);                           // (T, d)
    return this.dropout.forward(x.add(bf ? table : table.unsqueeze(1)));
  }
}

/** Learned absolute positions: x + weight[:T], weight (maxLen, d) ~ N(0, 0.02²) like GPT-2. */
export class LearnedPositionalEmbedding extends Module {
  weight: Tensor;
  constructor(readonly maxLen: number, readonly dModel: number) {
    super();
    checkPositiveInt("LearnedPositionalEmbedding", "maxLen", maxLen); checkPositiveInt("LearnedPositionalEmbedding", "dModel", dModel);
    this.weight = Parameter(normal_(zeros([maxLen, dModel]), 0, 0.02));
  }
  /** x (B, T, d) → x + weight[offset : offset+T]. */
  forward(x: Tensor, offset = 0): Tensor {
    const T = x.shape[1];
    if (offset + T > this.maxLen) throw new Error(`LearnedPositionalEmbedding: positions up to ${offset + T} exceed maxLen ${this.maxLen}`);
    return x.add(this.weight.narrow(0, offset, T));
  }
}
