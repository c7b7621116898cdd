// 2-D convolution (torch.nn.functional.conv2d, groups = 1), composed from existing differentiable ops so autograd
// and every backend come for free:
//   im2col as a row gather: the input, channels-last, is a table of B·H·W rows of C channels; output position
//   (b, oy, ox) reads the kh·kw rows under its window, zeros where the window leaves the image (gatherRowsPadded:
//   gather forward, scatter-add backward) → (B·Ho·Wo, kh·kw·C) → one GEMM with the weight reshaped to (O, kh·kw·C) (F.linear, bias
//   and an optional activation in the GEMM epilogue) → (B, Ho, Wo, O).
// Ho = ⌊(H + 2·padH − dilH·(kh − 1) − 1) / strideH⌋ + 1 (and the same for W), as in PyTorch.
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { record } from "../autograd.js";
import { contiguousData } from "./movement.js";
import { linear } from "./nn.js";
import { devOps, onDevice, uninit, zerosOf } from "./util.js";
import type { LinearActivation } from "./matmul.js";

export interface Conv2dOptions {
  /** Step between windows: one number for both axes or [strideH, strideW] (default 1). */
  stride?: number | readonly [number, number];
  /** Zero padding on each side: one number or [padH, padW] (default 0). */
  padding?: number | readonly [number, number];
  /** Spacing between kernel taps: one number or [dilH, dilW] (default 1). */
  dilation?: number | readonly [number, number];
}

interface Geometry { B: number; H: number; W: number; C: number; kh: number; kw: number; sh: number; sw: number; ph: number; pw: number; dh: number; dw: number; Ho: number; Wo: number }

function pair(v: number | readonly [number, number] | undefined, def: number, name: string, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [def, def] : typeof v === "number" ? [v, v] : [v[0], v[1]];
  for (const x of p) {
    if (!Number.isInteger(x) || x < min) throw new Error(`conv2d: ${name} must be ${min === 0 ? "a non-negative" : "a positive"} integer (or a pair of them), got ${String(v)}`);
  }
  return p;
}

function geometry(xShape: readonly number[], wShape: readonly number[], o: Conv2dOptions, channelsLast: boolean): Geometry {
  if (xShape.length !== 4) throw new Error(`conv2d: input must be 4-D ${channelsLast ? "(B, H, W, C)" : "(B, C, H, W)"}, got ${shapeStr(xShape)}`);
  if (wShape.length !== 4) throw new Error(`conv2d: weight must be 4-D (out, in, kH, kW), got ${shapeStr(wShape)}`);
  const [B, H, W, C] = channelsLast ? xShape : [xShape[0], xShape[2], xShape[3], xShape[1]];
  if (wShape[1] !== C) throw new Error(`conv2d: input ${shapeStr(xShape)} has ${C} channels but weight ${shapeStr(wShape)} expects ${wShape[1]}`);
  const [kh, kw] = [wShape[2], wShape[3]];
  const [sh, sw] = pair(o.stride, 1, "stride", 1), [ph, pw] = pair(o.padding, 0, "padding", 0), [dh, dw] = pair(o.dilation, 1, "dilation", 1);
  const Ho = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1, Wo = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (Ho < 1 || Wo < 1) {
    throw new Error(`conv2d: kernel ${kh}×${kw} (dilation ${dh}×${dw}) does not fit input ${H}×${W} with padding ${ph}×${pw} (output would be ${Ho}×${Wo})`);
  }
  return { B, H, W, C, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo };
}

// Gather indices depend only on the geometry: keep the last few (training repeats the same shapes every step).
const indexCache = new Map<string, Int32Array>();  // plain arrays: a cached Tensor could be disposed by tidy(); never mutated
const INDEX_CACHE_SIZE = 8;

/**
 * (B·Ho·Wo·kh·kw) row indices into the (B·H·W, C) table: output (b, oy, ox), tap (ky, kx) reads input row
 * (b·H + iy)·W + ix with iy = oy·sh − ph + ky·dh, ix = ox·sw − pw + kx·dw, or −1 (a zero) outside the image.
 */
function windowIndex(g: Geometry): Int32Array {
  const key = [g.B, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw].join(",");
  const hit = indexCache.get(key);
  if (hit) { indexCache.delete(key); indexCache.set(key, hit); return hit; }
  const zero = -1, idx = new Int32Array(g.B * g.Ho * g.Wo * g.kh * g.kw);
  let j = 0;
  for (let b = 0; b < g.B; b++) for (let oy = 0; oy < g.Ho; oy++) for (let ox = 0; ox < g.Wo; ox++) {
    for (let ky = 0; ky < g.kh; ky++) {
      const iy = oy * g.sh - g.ph + ky * g.dh;
      for (let kx = 0; kx < g.kw; kx++, j++) {
        const ix = ox * g.sw - g.pw + kx * g.dw;
        idx[j] = iy < 0 || iy >= g.H || ix < 0 || ix >= g.W ? zero : (b * g.H + iy) * g.W + ix;
      }
    }
  }
  indexCache.set(key, idx);
  if (indexCache.size > INDEX_CACHE_SIZE) indexCache.delete(indexCache.keys().next().value as string);
  return idx;
}

/**
 * out[i] = table[idx[i]] (a row of C values), or zeros where idx[i] = −1: table (R, C) → (idx.length, C). Backward:
 * d table[r] = Σ_{i : idx[i] = r} d out[i]. Indices are trusted (in [−1, R), built by the caller) and must not be
 * mutated afterwards: the backward reads them.
 */
export function gatherRowsPadded(table: Tensor, idx: Int32Array): Tensor {
  if (table.ndim !== 2) throw new Error(`gatherRowsPadded: table must be 2-D (rows, cols), got ${shapeStr(table.shape)}`);
  const C = table.shape[1];
  if (onDevice(table)) return gatherRowsPaddedDevice(table, idx);
  const src = contiguousData(table) as Float32Array;
  const out = uninit([idx.length, C]), dst = out.storage.data as Float32Array;
  for (let i = 0, o = 0; i < idx.length; i++, o += C) {
    const r = idx[i];
    if (r < 0) { for (let j = 0; j < C; j++) dst[o + j] = 0; continue; }
    const t = r * C;
    for (let j = 0; j < C; j++) dst[o + j] = src[t + j];
  }
  return record(out, "gatherRowsPadded", [table], (g) => {
    const gd = contiguousData(g) as Float32Array, acc = zerosOf(table.shape), ad = acc.storage.data as Float32Array;
    for (let i = 0, o = 0; i < idx.length; i++, o += C) {
      const r = idx[i];
      if (r < 0) continue;
      const t = r * C;
      for (let j = 0; j < C; j++) ad[t + j] += gd[o + j];
    }
    return [acc];
  });
}

/** gatherRowsPadded on a device: the (host-built) indices are uploaded; −1 taps read 0; the backward scatter-adds there. */
function gatherRowsPaddedDevice(table: Tensor, idx: Int32Array): Tensor {
  const C = table.shape[1], tc = table.contiguous();
  const di = Tensor.fromArray(idx, [idx.length]).to(table.device);
  const out = uninit([idx.length, C], "float32", tc);
  devOps(tc).gatherAxis(tc, di, [1, 0], 0, out, true);   // row i of out reads table row idx[i]
  return record(out, "gatherRowsPadded", [table], (g) => {
    const dt = zerosOf(table.shape, "float32", tc);
    devOps(tc).scatterAddRows(g.contiguous(), C, di, dt, -1);
    return [dt];
  }, [di]);
}

/**
 * Convolution on channels-last input: x (B, H, W, C), weight (O, C, kH, kW) in PyTorch's layout, bias (O) or null
 * → (B, Ho, Wo, O). `activation` ("relu" | "gelu" | "geluTanh") is applied in the GEMM epilogue.
 */
export function conv2dChannelsLast(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: Conv2dOptions = {}, activation: LinearActivation | null = null): Tensor {
  const g = geometry(x.shape, weight.shape, o, true), O = weight.shape[0];
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== O)) throw new Error(`conv2d: bias ${shapeStr(bias.shape)} does not match weight ${shapeStr(weight.shape)} (expected (${O}))`);
  const rows = g.B * g.H * g.W, taps = g.kh * g.kw;
  const cols = gatherRowsPadded(x.reshape([rows, g.C]), windowIndex(g)).reshape([g.B * g.Ho * g.Wo, taps * g.C]); // (B·Ho·Wo, kh·kw·C)
  const wmat = weight.permute([0, 2, 3, 1]).reshape([O, taps * g.C]);                    // (O, kh·kw·C), taps (ky, kx, c)
  return linear(cols, wmat, bias, activation).reshape([g.B, g.Ho, g.Wo, O]);             // (B, Ho, Wo, O)
}

/** torch.nn.functional.conv2d (groups = 1): x (B, C, H, W), weight (O, C, kH, kW), bias (O) → (B, O, Ho, Wo). */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: Conv2dOptions = {}): Tensor {
  geometry(x.shape, weight.shape, o, false);
  const y = conv2dChannelsLast(x.permute([0, 2, 3, 1]).contiguous(), weight, bias, o);    // (B, Ho, Wo, O)
  return y.permute([0, 3, 1, 2]).contiguous();                                             // (B, O, Ho, Wo)
}
