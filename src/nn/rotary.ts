// Relative position options of the attention modules: rotary position embeddings (RoPE, Su et al. 2021, as
// Hugging Face's Llama applies them) and ALiBi (Press et al. 2022, linear biases computed inside the attention kernel).
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { cat } from "../ops/movement.js";
import { contiguousData } from "../ops/movement.js";
import { isGradEnabled } from "../autograd.js";
import { Module } from "./module.js";
import { checkPositiveInt } from "./check.js";

/** How the rotary frequencies are rescaled for longer contexts (HF's `rope_scaling` types that depend on nothing but the config). */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

/**
 * inv_freq[k] = 1 / base^(2k/dim), k < dim/2, in float32 exactly as HF computes it, then rescaled: "linear" divides
 * every frequency by factor; "llama3" divides the low frequencies (wavelength > original/lowFreqFactor) by factor,
 * keeps the high ones (wavelength < original/highFreqFactor) and blends in between.
 */
export function ropeInverseFrequencies(dim: number, base = 10000, scaling: RopeScaling | null = null): Float32Array {
  checkPositiveInt("RotaryEmbedding", "dim", dim);
  if (dim % 2 !== 0) throw new RangeError(`RotaryEmbedding: dim must be even, got ${dim}`);
  if (!(base > 0) || !Number.isFinite(base)) throw new RangeError(`RotaryEmbedding: base must be a positive number, got ${base}`);
  const f = Math.fround, n = dim / 2, inv = new Float32Array(n);
  for (let k = 0; k < n; k++) inv[k] = f(1 / f(Math.pow(base, f((2 * k) / dim))));
  if (!scaling) return inv;
  if (!(scaling.factor > 0)) throw new RangeError(`RotaryEmbedding: scaling factor must be > 0, got ${scaling.factor}`);
  if (scaling.type === "linear") return inv.map((x) => x / scaling.factor);
  if (scaling.type === "llama3") {
    const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: L } = scaling;
    if (!(hi > lo)) throw new RangeError(`RotaryEmbedding: llama3 scaling needs highFreqFactor > lowFreqFactor, got ${hi} and ${lo}`);
    const lowWave = L / lo, highWave = L / hi;
    return inv.map((x) => {
      const wave = f((2 * Math.PI) / x);
      const scaled = wave > lowWave ? f(x / factor) : x;
      if (wave < highWave || wave > lowWave) return scaled;
      const smooth = f((f(L / wave) - lo) / (hi - lo));
      return f(f(f((1 - smooth) * scaled) / factor) + f(smooth * scaled));
    });
  }
  throw new RangeError(`RotaryEmbedding: unsupported scaling type ${JSON.stringify((scaling as { type: unknown }).type)} (supported: "linear", "llama3")`);
}

/** rotate_half: (x₁, x₂) → (−x₂, x₁) over the two halves of the last axis. */
export function rotateHalf(x: Tensor): Tensor {
  const d = x.shape[x.ndim - 1], h = d / 2;
  return cat([x.narrow(-1, h, h).neg(), x.narrow(-1, 0, h)], -1);
}

/** x·cos + rotate_half(x)·sin with cos/sin broadcastable to x (e.g. x (B, H, T, D), cos (B, 1, T, D)). Differentiable in x. */
export function applyRotary(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  if (x.device !== "cpu") {
    // the tables are computed on the host from positions: they follow the activations to their device
    if (cos.device !== x.device) cos = cos.to(x.device);
    if (sin.device !== x.device) sin = sin.to(x.device);
    return x.mul(cos).add(rotateHalf(x).mul(sin));
  }
  const fast = rotaryNoGrad(x, cos, sin);
  if (fast) return fast;
  return x.mul(cos).add(rotateHalf(x).mul(sin));
}

/**
 * Inference path of applyRotary for x (B, H, T, D) float32 and cos/sin (B or 1, 1, T, D): one pass instead of six
 * tensor ops (two of them strided), the same float32 roundings (each product, then the sum), so the same bits.
 * null when a gradient is needed or the shapes are other ones.
 */
function rotaryNoGrad(x: Tensor, cos: Tensor, sin: Tensor): Tensor | null {
  if ((isGradEnabled() && (x.requiresGrad || cos.requiresGrad || sin.requiresGrad)) || x.dtype !== "float32" || x.ndim !== 4 ||
    cos.dtype !== "float32" || sin.dtype !== "float32") return null;
  const [B, H, T, D] = x.shape;
  for (const c of [cos, sin]) if (c.ndim !== 4 || (c.shape[0] !== B && c.shape[0] !== 1) || c.shape[1] !== 1 || c.shape[2] !== T || c.shape[3] !== D) return null;
  const xd = contiguousData(x) as Float32Array, cd = contiguousData(cos) as Float32Array, sd = contiguousData(sin) as Float32Array;
  const out = new Float32Array(xd.length), n = D / 2, f = Math.fround, cb = cos.shape[0] === 1 ? 0 : T * D;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const xo = (b * H + h) * T * D;
    for (let t = 0; t < T; t++) {
      const o = xo + t * D, co = b * cb + t * D;
      for (let k = 0; k < n; k++) {
        out[o + k] = f(f(xd[o + k] * cd[co + k]) + f(-xd[o + k + n] * sd[co + k]));
        out[o + k + n] = f(f(xd[o + k + n] * cd[co + k + n]) + f(xd[o + k] * sd[co + k + n]));
      }
    }
  }
  return Tensor.fromArray(out, [B, H, T, D]);
}

/**
 * Rotary position embeddings (HF's LlamaRotaryEmbedding): a position p turns each pair (x_k, x_{k+dim/2}) of a query or
 * key head by the angle p·inv_freq[k], so q·k depends only on the distance between the two positions. No parameters;
 * `invFreq` is a non-persistent buffer (HF leaves it out of the checkpoint too).
 */
export class RotaryEmbedding extends Module {
  readonly invFreq: Float32Array;
  constructor(readonly dim: number, readonly opts: { base?: number; scaling?: RopeScaling | null } = {}) {
    super();
    this.invFreq = ropeInverseFrequencies(dim, opts.base ?? 10000, opts.scaling ?? null);
  }

  /** cos and sin (B, T, dim) for positions (B, T) int32 (or one row of numbers, B = 1), in float32 like HF. */
  cosSin(positions: Tensor | readonly number[]): { cos: Tensor; sin: Tensor } {
    const pos = positions instanceof Tensor ? positions : Tensor.fromArray(Int32Array.from(positions), [1, positions.length]);
    if (pos.ndim !== 2) throw new Error(`RotaryEmbedding: positions must be (batch, length), got ${shapeStr(pos.shape)}`);
    const [B, T] = pos.shape, D = this.dim, n = D / 2, inv = this.invFreq, f = Math.fround;
    const p = contiguousData(pos.dtype === "int32" ? pos : pos.int()) as Int32Array;
    const cos = new Float32Array(B * T * D), sin = new Float32Array(B * T * D);
    for (let r = 0; r < B * T; r++) {
      for (let k = 0; k < n; k++) {
        const angle = f(inv[k] * p[r]), c = Math.cos(angle), s = Math.sin(angle);
        cos[r * D + k] = cos[r * D + k + n] = c;
        sin[r * D + k] = sin[r * D + k + n] = s;
      }
    }
    return { cos: Tensor.fromArray(cos, [B, T, D]), sin: Tensor.fromArray(sin, [B, T, D]) };
  }

  /** x (B, H, T, dim) rotated by positions (B, T). */
  forward(x: Tensor, positions: Tensor | readonly number[]): Tensor {
    if (x.ndim !== 4 || x.shape[3] !== this.dim) throw new Error(`RotaryEmbedding: expected x (B, H, T, ${this.dim}), got ${shapeStr(x.shape)}`);
    const { cos, sin } = this.cosSin(positions);
    if (cos.shape[1] !== x.shape[2] || (cos.shape[0] !== x.shape[0] && cos.shape[0] !== 1)) {
      throw new Error(`RotaryEmbedding: positions ${shapeStr(cos.shape.slice(0, 2))} do not fit x ${shapeStr(x.shape)} (need (B or 1, T))`);
    }
    return applyRotary(x, cos.unsqueeze(1), sin.unsqueeze(1));
  }
  protected override extraRepr(): string { return `dim=${this.dim}, base=${this.opts.base ?? 10000}`; }
}

/**
 * ALiBi head slopes (Press et al. 2022): for H a power of two, slope_h = 2^(−8(h+1)/H); otherwise the slopes of the
 * largest power of two n < H, followed by every other slope of 2n (the paper's rule, its reference code).
 */
export function alibiSlopes(heads: number): Float32Array {
  checkPositiveInt("alibiSlopes", "heads", heads);
  const pow2 = (n: number) => Array.from({ length: n }, (_, i) => Math.pow(2, (-8 * (i + 1)) / n));
  const n = Math.pow(2, Math.floor(Math.log2(heads)));
  if (n === heads) return Float32Array.from(pow2(n));
  return Float32Array.from([...pow2(n), ...pow2(2 * n).filter((_, i) => i % 2 === 0).slice(0, heads - n)]);
}
