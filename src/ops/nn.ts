// Fused neural-network ops with hand-written gradients: softmax, logSoftmax, layerNorm, linear, embedding, dropout.
// (Attention lives in ops/attention.ts; losses in ops/loss.ts.)
import { normAxis, numel, shapeStr } from "../shape.js";
import { isGradEnabled, record } from "../autograd.js";
import { K } from "../backend/registry.js";
import { defaultGenerator, type Generator } from "../random.js";
import { Tensor } from "../tensor.js";
import { assertFloat, devOps, onDevice, uninit, zerosOf } from "./util.js";
import { commonDevice } from "../device.js";
import { contiguousData } from "./movement.js";
import { unaryOp } from "./elementwise.js";
import { linearOp, type LinearActivation } from "./matmul.js";

/** Apply a last-axis row kernel along `dim` by moving dim last. */
function alongLastDim(x: Tensor, dim: number, fn: (xc: Tensor) => Tensor): Tensor {
  const d = normAxis(dim, x.ndim, "softmax");
  if (d === x.ndim - 1 || x.ndim === 0) return fn(x.contiguous());
  return fn(x.transpose(d, -1).contiguous()).transpose(d, -1);
}

/**
 * softmax along `dim`, like torch.softmax: a row whose entries are all −inf is NaN (0/0), and a NaN anywhere in a
 * row makes the whole row NaN. Attention does not use this for its masked rows: see safeSoftmax.
 */
export function softmax(x: Tensor, dim = -1): Tensor {
  assertFloat(x, "softmax");
  return alongLastDim(x, dim, (xc) => {
    const n = xc.shape[xc.ndim - 1] ?? 1, rows = xc.numel() / Math.max(n, 1);
    const y = uninit(xc.shape, "float32", xc);
    if (onDevice(xc)) {
      devOps(xc).softmax(xc, y, rows, n, false);
      return record(y, "softmax", [xc], (g) => {
        const gc = g.contiguous(), dx = uninit(xc.shape, "float32", xc);
        devOps(xc).softmaxBackward(y, gc, dx, rows, n);
        return [dx];
      }, [y]);
    }
    K.softmax(contiguousData(xc) as Float32Array, y.storage.data as Float32Array, rows, n);
    return record(y, "softmax", [xc], (g) => {
      const gc = g.contiguous(), dx = uninit(xc.shape);
      K.softmaxBackward(y.storage.data as Float32Array, contiguousData(gc) as Float32Array, dx.storage.data as Float32Array, rows, n);
      return [dx];
    }, [y]);
  });
}

/**
 * softmax over the last axis where a row whose entries are all −inf (a query that may attend to nothing) is 0 with a
 * zero gradient instead of NaN — PyTorch's _safe_softmax, which scaled_dot_product_attention (≥ 2.5) uses. Other rows,
 * NaN rows included, are exactly softmax's. Costs one comparison per row unless the row starts with −inf.
 */
export function safeSoftmax(x: Tensor): Tensor {
  assertFloat(x, "safeSoftmax");
  const xc = x.contiguous(), n = xc.shape[xc.ndim - 1] ?? 1, rows = xc.numel() / Math.max(n, 1);
  const xd = contiguousData(xc) as Float32Array, y = uninit(xc.shape), yd = y.storage.data as Float32Array;
  K.softmax(xd, yd, rows, n);
  const dead: number[] = [];
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    if (n === 0 || xd[o] !== -Infinity) continue;
    let j = 1;
    while (j < n && xd[o + j] === -Infinity) j++;
    if (j === n) { yd.fill(0, o, o + n); dead.push(o); }
  }
  return record(y, "safeSoftmax", [xc], (g) => {
    const gc = g.contiguous(), dx = uninit(xc.shape), dd = dx.storage.data as Float32Array;
    K.softmaxBackward(yd, contiguousData(gc) as Float32Array, dd, rows, n);
    for (const o of dead) dd.fill(0, o, o + n);   // y = 0 gives 0 for a finite incoming gradient; this for a NaN one too
    return [dx];
  }, [y]);
}

/** log-softmax along `dim`, like torch.log_softmax (an all −inf row is NaN). */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  assertFloat(x, "logSoftmax");
  return alongLastDim(x, dim, (xc) => {
    const n = xc.shape[xc.ndim - 1] ?? 1, rows = xc.numel() / Math.max(n, 1);
    const y = uninit(xc.shape, "float32", xc);
    if (onDevice(xc)) devOps(xc).softmax(xc, y, rows, n, true);
    else K.logSoftmax(contiguousData(xc) as Float32Array, y.storage.data as Float32Array, rows, n);
    // d/dx: g − softmax(x)·Σg  (softmax = exp(y))
    return record(y, "logSoftmax", [xc], (g) => [g.sub(y.exp().mul(g.sum(-1, true)))], [y]);
  });
}

/** LayerNorm over the trailing `normalizedShape` dims (biased variance, eps inside the sqrt, like PyTorch). */
export function layerNorm(x: Tensor, normalizedShape: number[], weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  assertFloat(x, "layerNorm");
  const D = numel(normalizedShape);
  const tail = x.shape.slice(x.ndim - normalizedShape.length);
  if (normalizedShape.length > x.ndim || tail.some((d, i) => d !== normalizedShape[i])) {
    throw new Error(`layerNorm: normalizedShape ${shapeStr(normalizedShape)} does not match the trailing dims of input ${shapeStr(x.shape)}`);
  }
  for (const [p, name] of [[weight, "weight"], [bias, "bias"]] as const) {
    if (p && p.numel() !== D) throw new Error(`layerNorm: ${name} has shape ${shapeStr(p.shape)}, expected ${shapeStr(normalizedShape)}`);
  }
  const xc = x.contiguous(), rows = xc.numel() / Math.max(D, 1);
  if (onDevice(x) || (weight && onDevice(weight))) return layerNormDevice(xc, rows, D, weight, bias, eps);
  const y = uninit(x.shape), mean = uninit([rows]), rstd = uninit([rows]);
  const wd = weight ? contiguousData(weight) as Float32Array : null, bd = bias ? contiguousData(bias) as Float32Array : null;
  K.layerNormForward(contiguousData(xc) as Float32Array, wd, bd, y.storage.data as Float32Array,
    mean.storage.data as Float32Array, rstd.storage.data as Float32Array, rows, D, eps);
  const inputs = [xc, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return record(y, "layerNorm", inputs, (g) => {
    const gc = g.contiguous(), dx = uninit(x.shape);
    const dw = weight?.requiresGrad ? zerosOf(weight.shape) : null, db = bias?.requiresGrad ? zerosOf(bias.shape) : null;
    K.layerNormBackward(contiguousData(gc) as Float32Array, contiguousData(xc) as Float32Array, wd,
      mean.storage.data as Float32Array, rstd.storage.data as Float32Array, dx.storage.data as Float32Array,
      dw ? dw.storage.data as Float32Array : null, db ? db.storage.data as Float32Array : null, rows, D);
    return [dx, ...(weight ? [dw] : []), ...(bias ? [db] : [])];
  }, [xc, mean, rstd]);
}

/**
 * y = x·Wᵀ + b, x (..., in), W (out, in), b (out); with `activation`, y = act(x·Wᵀ + b) fused into the GEMM epilogue
 * (relu, exact gelu or its tanh form). One GEMM forward, two backward (see linearOp in ops/matmul.ts). With
 * `residual` (the output's shape, no activation), y = x·Wᵀ + b + residual: a transformer's residual connection, which
 * the GEMM accumulates in place when no gradient is recorded.
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null, activation: LinearActivation | null = null,
  residual: Tensor | null = null): Tensor {
  return linearOp(x, weight, bias, activation, residual);
}

/**
 * layerNorm(linear(x, W, b, null, residual), [N], lnWeight, lnBias, eps): a post-norm residual block (BERT's attention
 * and FFN outputs). Without gradients on the CPU, with contiguous x and residual, one linearAddLayerNorm kernel call
 * when the backend has it (no separate layer-norm pass over a materialised sum); otherwise the composition, with its
 * gradients. The values are the composition's either way.
 */
export function linearAddLayerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, residual: Tensor, lnWeight: Tensor | null,
  lnBias: Tensor | null, eps = 1e-5): Tensor {
  const N = weight.shape[0];
  const composed = () => layerNorm(linearOp(x, weight, bias, null, residual), [N], lnWeight, lnBias, eps);
  const params = [weight, bias, residual, lnWeight, lnBias];
  if (!K.linearAddLayerNorm || weight.ndim !== 2 || x.ndim < 1 || x.shape[x.ndim - 1] !== weight.shape[1] || N < 1 ||
    (isGradEnabled() && (x.requiresGrad || params.some((p) => !!p?.requiresGrad))) ||
    onDevice(x) || params.some((p) => !!p && onDevice(p)) || [x, ...params].some((p) => !!p && p.dtype !== "float32") ||
    !x.isContiguous() || !residual.isContiguous() || !weight.isContiguous() ||
    residual.ndim !== x.ndim || residual.shape.some((d, i) => d !== (i === x.ndim - 1 ? N : x.shape[i])) ||
    (bias && (bias.numel() !== N || !bias.isContiguous())) || (lnWeight && (lnWeight.numel() !== N || !lnWeight.isContiguous())) ||
    (lnBias && (lnBias.numel() !== N || !lnBias.isContiguous()))) {
    return composed();
  }
  const inF = weight.shape[1], M = inF > 0 ? x.numel() / inF : numel(x.shape.slice(0, -1));
  const y = uninit(residual.shape);
  const f32 = (t: Tensor) => t.storage.dataForRead() as Float32Array;
  K.linearAddLayerNorm(f32(x), x.offset, M, inF, f32(weight), weight.offset, N, bias ? f32(bias) : null, bias ? bias.offset : 0,
    f32(residual), residual.offset, lnWeight ? f32(lnWeight) : null, lnWeight ? lnWeight.offset : 0,
    lnBias ? f32(lnBias) : null, lnBias ? lnBias.offset : 0, eps, y.storage.data as Float32Array, 0, weight.storage);
  return y;
}

/** Row lookup; the gradient skips paddingIdx (like nn.Embedding(padding_idx)), repeated indices accumulate. */
export function embedding(indices: Tensor, weight: Tensor, paddingIdx: number | null = null): Tensor {
  if (indices.dtype !== "int32") throw new Error(`embedding: indices must be int32, got ${indices.dtype}`);
  const [V, D] = weight.shape;
  if (onDevice(weight) || onDevice(indices)) return embeddingDevice(indices, weight, paddingIdx);
  const idx = contiguousData(indices) as Int32Array;
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] < 0 || idx[i] >= V) throw new Error(`embedding: index ${idx[i]} out of range for a table of ${V} rows`);
  }
  const wc = weight.contiguous();
  const y = uninit([...indices.shape, D]);
  K.gatherRows(contiguousData(wc) as Float32Array, D, idx, y.storage.data as Float32Array);
  const saved = Int32Array.from(idx);
  return record(y, "embedding", [weight], (g) => {
    const dw = zerosOf(weight.shape);
    K.scatterAddRows(contiguousData(g.contiguous()) as Float32Array, D, saved, dw.storage.data as Float32Array, paddingIdx ?? -1);
    return [dw];
  });
}

/** Inverted dropout: zero with probability p, scale the rest by 1/(1−p). Identity when not training or p = 0. */
export function dropout(x: Tensor, p = 0.5, training = true, gen: Generator = defaultGenerator): Tensor {
  if (p < 0 || p > 1) throw new Error(`dropout: probability must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  const mask = uninit(x.shape), md = mask.storage.data as Float32Array, s = p === 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < md.length; i++) md[i] = gen.random() >= p ? s : 0;
  // on a device the mask is drawn here from the same generator and uploaded (one write, no read): the same generator
  // state drops the same elements on every backend and device
  return x.mul(onDevice(x) ? mask.to(x.device) : mask);
}

export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  return unaryOp(x, approximate === "tanh" ? "geluTanh" : "gelu");
}


// ---------- device paths (WebGPU): the same contracts on device tensors ----------
function layerNormDevice(xc: Tensor, rows: number, D: number, weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
  commonDevice("layerNorm", xc, weight, bias);
  const g = devOps(xc);
  const w = weight?.contiguous() ?? null, b = bias?.contiguous() ?? null;
  const y = uninit(xc.shape, "float32", xc), mean = uninit([rows], "float32", xc), rstd = uninit([rows], "float32", xc);
  g.layerNormForward(xc, w, b, y, mean, rstd, rows, D, eps);
  const inputs = [xc, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return record(y, "layerNorm", inputs, (gr) => {
    const gc = gr.contiguous(), dx = uninit(xc.shape, "float32", xc);
    const dw = weight?.requiresGrad ? zerosOf(weight.shape, "float32", xc) : null, db = bias?.requiresGrad ? zerosOf(bias.shape, "float32", xc) : null;
    g.layerNormBackward(gc, xc, w, mean, rstd, dx, dw, db, rows, D);
    return [dx, ...(weight ? [dw] : []), ...(bias ? [db] : [])];
  }, [xc, mean, rstd, ...(w ? [w] : [])]);
}

/** Indices on the CPU are checked and uploaded; indices already on the device are not checked (a bad one gives a NaN row). */
function embeddingDevice(indices: Tensor, weight: Tensor, paddingIdx: number | null): Tensor {
  const [V, D] = weight.shape;
  let idx = indices;
  if (!onDevice(indices)) {
    const d = contiguousData(indices) as Int32Array;
    for (let i = 0; i < d.length; i++) if (d[i] < 0 || d[i] >= V) throw new Error(`embedding: index ${d[i]} out of range for a table of ${V} rows`);
    idx = indices.to(weight.device);
  }
  commonDevice("embedding", idx, weight);
  const ic = idx.contiguous(), wc = weight.contiguous();
  const y = uninit([...indices.shape, D], "float32", wc);
  devOps(wc).gatherRows(wc, D, ic, y);
  return record(y, "embedding", [weight], (g) => {
    const dw = zerosOf(weight.shape, "float32", wc);
    devOps(wc).scatterAddRows(g.contiguous(), D, ic, dw, paddingIdx ?? -1);
    return [dw];
  }, [ic]);
}
