// HF's ACT2FN names, each against its formula in transformers/activations.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { activation, HF_ACTIVATIONS } from "../src/hf/common.js";
import { Tensor } from "../src/tensor.js";

const xs = [-7, -3, -1.2, -0.3, 0, 0.2, 0.9, 2.5, 6.5, 9];
/** erf: its Maclaurin series below |x| = 3 (double precision is ample there), the asymptotic erfc above. */
const erf = (x: number): number => {
  if (Math.abs(x) >= 3) return Math.sign(x) * (1 - Math.exp(-x * x) / (Math.abs(x) * Math.sqrt(Math.PI)) * (1 - 1 / (2 * x * x)));
  let s = 0, term = x;
  for (let n = 0; n < 80; n++) { s += term / (2 * n + 1); term *= -x * x / (n + 1); }
  return (2 / Math.sqrt(Math.PI)) * s;
};
const tanhGelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const sig = (x: number) => 1 / (1 + Math.exp(-x));
const formula: Record<string, (x: number) => number> = {
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), gelu_python: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_new: tanhGelu, gelu_pytorch_tanh: tanhGelu, gelu_accurate: tanhGelu,
  gelu_fast: (x) => 0.5 * x * (1 + Math.tanh(x * 0.7978845608 * (1 + 0.044715 * x * x))),
  quick_gelu: (x) => x * sig(1.702 * x), relu: (x) => Math.max(0, x), relu6: (x) => Math.min(Math.max(0, x), 6),
  leaky_relu: (x) => (x >= 0 ? x : 0.01 * x), silu: (x) => x * sig(x), swish: (x) => x * sig(x),
  mish: (x) => x * Math.tanh(Math.log1p(Math.exp(x))), tanh: Math.tanh, sigmoid: sig, linear: (x) => x,
};

test("every supported HF activation name matches transformers' formula", () => {
  const t = Tensor.fromArray(Float32Array.from(xs), [xs.length], "float32");
  for (const name of HF_ACTIVATIONS) {
    const got = activation(name, t).dataSync();
    xs.forEach((x, i) => assert.ok(Math.abs(got[i] - formula[name](x)) < 1e-5 * Math.max(1, Math.abs(x)), `${name}(${x}) = ${got[i]}, expected ${formula[name](x)}`));
  }
});
