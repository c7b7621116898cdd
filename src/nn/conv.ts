// nn.Conv2d: PyTorch's module (groups = 1) with the same parameter names and initialisation.
import type { Tensor } from "../tensor.js";
import { zeros } from "../creation.js";
import type { Generator } from "../random.js";
import { conv2d, conv2dChannelsLast, type Conv2dOptions } from "../ops/conv.js";
import { Module, Parameter } from "./module.js";
import { kaimingUniform_, uniform_ } from "./init.js";

export interface Conv2dModuleOptions extends Conv2dOptions {
  bias?: boolean;
  generator?: Generator;
}

export class Conv2d extends Module {
  weight: Tensor;        // (out, in, kH, kW)
  bias: Tensor | null;   // (out)
  readonly kernelSize: [number, number];
  readonly conv: Conv2dOptions;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: number | readonly [number, number], opts: Conv2dModuleOptions = {}) {
    super();
    const [kh, kw] = typeof kernelSize === "number" ? [kernelSize, kernelSize] : kernelSize;
    for (const [name, v] of [["inChannels", inChannels], ["outChannels", outChannels], ["kernelSize", kh], ["kernelSize", kw]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`Conv2d: ${name} must be a positive integer, got ${String(v)}`);
    }
    this.kernelSize = [kh, kw];
    this.conv = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation };
    // PyTorch default: kaiming_uniform(a=√5) → U(−1/√fanIn, 1/√fanIn) with fanIn = in·kH·kW, for weight and bias
    this.weight = Parameter(kaimingUniform_(zeros([outChannels, inChannels, kh, kw]), Math.sqrt(5), opts.generator));
    const bound = 1 / Math.sqrt(inChannels * kh * kw);
    this.bias = opts.bias === false ? null : Parameter(uniform_(zeros([outChannels]), -bound, bound, opts.generator));
  }

  /** (B, C, H, W) → (B, O, Ho, Wo), like torch.nn.Conv2d. */
  forward(x: Tensor): Tensor { return conv2d(x, this.weight, this.bias, this.conv); }

  /** Channels-last variant: (B, H, W, C) → (B, Ho, Wo, O), with an optional activation fused into the GEMM. */
  forwardChannelsLast(x: Tensor, activation: "relu" | "gelu" | null = null): Tensor {
    return conv2dChannelsLast(x, this.weight, this.bias, this.conv, activation);
  }

  protected override extraRepr(): string {
    const c = this.conv, opt = (k: string, v: unknown) => (v === undefined ? "" : `, ${k}=${String(v)}`);
    return `${this.inChannels}, ${this.outChannels}, kernelSize=${this.kernelSize.join("×")}${opt("stride", c.stride)}${opt("padding", c.padding)}${opt("dilation", c.dilation)}, bias=${this.bias !== null}`;
  }
}
