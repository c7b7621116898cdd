// Weight initialisers (torch.nn.init), all in place and seedable.
import type { Tensor } from "../tensor.js";
import { defaultGenerator, type Generator } from "../random.js";

let skipping = 0;
/**
 * Run fn with the random initialisers here (uniform_, normal_, kaimingUniform_, xavierUniform_, truncNormal_) and
 * nn.Embedding's randn doing nothing: tensors keep the zeros they were made with. For modules whose every weight is
 * about to be overwritten (a checkpoint load): HF's no_init_weights(), torch.nn.utils.skip_init.
 */
export function withoutInit<T>(fn: () => T): T {
  skipping++;
  try { return fn(); } finally { skipping--; }
}
/** True inside withoutInit(). */
export function initSkipped(): boolean { return skipping > 0; }

export function uniform_(t: Tensor, a: number, b: number, g: Generator = defaultGenerator): Tensor {
  if (skipping) return t;
  const d = t.storage.data;
  for (let i = 0; i < d.length; i++) d[i] = a + (b - a) * g.random();
  return t;
}
export function normal_(t: Tensor, mean = 0, std = 1, g: Generator = defaultGenerator): Tensor {
  if (skipping) return t;
  const d = t.storage.data;
  for (let i = 0; i < d.length; i++) d[i] = mean + std * g.normal();
  return t;
}
export function constant_(t: Tensor, v: number): Tensor { t.storage.data.fill(v); return t; }
export function zeros_(t: Tensor): Tensor { return constant_(t, 0); }
export function ones_(t: Tensor): Tensor { return constant_(t, 1); }

/** fan_in / fan_out of a weight (out, in, *receptive). */
export function fans(t: Tensor): [number, number] {
  if (t.ndim < 2) throw new Error(`fans: need ≥ 2 dims, got ${t.ndim}`);
  const rf = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[1] * rf, t.shape[0] * rf];
}

/** U(−a, a) with a = gain·√(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, gain = 1, g?: Generator): Tensor {
  const [fi, fo] = fans(t);
  const a = gain * Math.sqrt(6 / (fi + fo));
  return uniform_(t, -a, a, g);
}

/** kaiming_uniform_ with leaky-relu slope `a`: bound = √(6 / ((1 + a²)·fan_in)); a = √5 gives nn.Linear's 1/√fan_in. */
export function kaimingUniform_(t: Tensor, a = 0, g?: Generator): Tensor {
  const [fi] = fans(t);
  const bound = Math.sqrt(6 / ((1 + a * a) * fi));
  return uniform_(t, -bound, bound, g);
}

export function truncNormal_(t: Tensor, mean = 0, std = 1, a = -2, b = 2, g: Generator = defaultGenerator): Tensor {
  if (skipping) return t;
  const d = t.storage.data;
  for (let i = 0; i < d.length; i++) {
    let v: number;
    do v = mean + std * g.normal(); while (v < a || v > b);
    d[i] = v;
  }
  return t;
}
