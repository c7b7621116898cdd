// Bit-exact conversions between float32 and the two 16-bit float formats used in safetensors files.
//
//   float16 (IEEE binary16): 1 sign | 5 exponent (bias 15)  | 10 mantissa bits
//   bfloat16:                1 sign | 8 exponent (bias 127) | 7 mantissa bits  (= the top half of a float32)
//
// Encoding rounds to nearest, ties to even (like numpy / PyTorch casts); overflow gives ±Inf, NaN stays NaN
// (quiet), and values below the smallest float16 normal become subnormals (or ±0) with correct rounding.
// Browser-safe: typed arrays only.

// Scratch registers for reinterpreting a float32 as its bit pattern.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Bit pattern of the float32 nearest to `x` (NaN payloads are kept where the platform keeps them). */
export function float32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The float32 value with bit pattern `bits` (as a JS number). */
export function float32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0];
}

/**
 * float32 bit pattern -> float16 bit pattern, round to nearest even.
 * Works on bits, so the result is exact for every float32 input (no double rounding).
 */
export function float32BitsToFloat16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff; // biased float32 exponent
  const mant = b & 0x7fffff; // 23 stored mantissa bits

  if (exp === 0xff) {
    // Inf keeps an all-zero mantissa; NaN keeps its top payload bits and is forced quiet (non-zero mantissa).
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // re-biased exponent for float16
  if (e >= 0x1f) return sign | 0x7c00; // |x| >= 2^16: beyond 65504 even before rounding -> Inf

  if (e <= 0) {
    // float16 subnormal: value = m * 2^-24 with m in [0, 1023].
    // The float32 value is M * 2^(exp-150) with M = 1.mant as a 24-bit integer (exp > 0 here, float32
    // subnormals are < 2^-126 and fall in the e < -10 branch), so m = M >> (14 - e) before rounding.
    if (e < -10) return sign; // |x| < 2^-25: below half the smallest subnormal -> ±0
    const M = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let m = M >>> shift;
    const rem = M & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m++; // a carry into 0x400 is the smallest normal: correct
    return sign | m;
  }

  // Normal: keep the top 10 mantissa bits and round on the 13 dropped ones. A carry out of the mantissa
  // increments the exponent (and turns 65520.. into Inf), which is exactly what the bit layout does.
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** float16 bit pattern -> float32 bit pattern (exact: every float16 value is a float32 value). */
export function float16BitsToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // Inf / NaN (payload kept)
  if (exp === 0) {
    if (mant === 0) return sign >>> 0; // ±0
    // Subnormal m * 2^-24: normalise so the leading 1 moves to bit 10, adjusting the exponent.
    let e = -14;
    while ((mant & 0x400) === 0) {
      mant <<= 1;
      e--;
    }
    mant &= 0x3ff;
    return (sign | ((e + 127) << 23) | (mant << 13)) >>> 0;
  }
  return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
}

/** float32 bit pattern -> bfloat16 bit pattern, round to nearest even; NaN stays (quiet) NaN. */
export function float32BitsToBfloat16Bits(b: number): number {
  b >>>= 0;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) {
    return ((b >>> 16) | 0x40) & 0xffff; // NaN: truncating could clear the payload, so force the quiet bit
  }
  // Adding 0x7fff plus the lowest kept bit rounds the dropped 16 bits to nearest, ties to even;
  // a carry may ripple into the exponent (up to Inf), matching IEEE behaviour. Sum < 2^32 always.
  const lsb = (b >>> 16) & 1;
  return ((b + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** bfloat16 bit pattern -> float32 bit pattern (exact). */
export function bfloat16BitsToFloat32Bits(h: number): number {
  return ((h & 0xffff) << 16) >>> 0;
}

/** Scalar convenience: nearest float16 (as bits) to the float32 rounding of `x`. */
export function toFloat16Bits(x: number): number {
  return float32BitsToFloat16Bits(float32Bits(x));
}

/** Scalar convenience: value of a float16 bit pattern. */
export function fromFloat16Bits(h: number): number {
  return float32FromBits(float16BitsToFloat32Bits(h));
}

/** Scalar convenience: nearest bfloat16 (as bits) to the float32 rounding of `x`. */
export function toBfloat16Bits(x: number): number {
  return float32BitsToBfloat16Bits(float32Bits(x));
}

/** Scalar convenience: value of a bfloat16 bit pattern. */
export function fromBfloat16Bits(h: number): number {
  return float32FromBits(bfloat16BitsToFloat32Bits(h));
}

/** Encode a whole Float32Array to float16 bit patterns (n) -> (n). */
export function float32ArrayToFloat16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length); // Float32Array is always 4-aligned
  for (let i = 0; i < bits.length; i++) out[i] = float32BitsToFloat16Bits(bits[i]);
  return out;
}

/** Decode float16 bit patterns (n) into a Float32Array (n). Element i is read before it is written, in ascending
 *  order: src may be the upper half of out's own bytes (src/hf/pretrained.ts widens checkpoints in place so). */
export function float16ArrayToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = float16BitsToFloat32Bits(src[i]);
  return out;
}

/** Encode a whole Float32Array to bfloat16 bit patterns (n) -> (n). */
export function float32ArrayToBfloat16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = float32BitsToBfloat16Bits(bits[i]);
  return out;
}

/** Decode bfloat16 bit patterns (n) into a Float32Array (n); in place as float16ArrayToFloat32. */
export function bfloat16ArrayToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}
