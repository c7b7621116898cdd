// Images as grey squares in [0, 1] for the image models: greyscale (Rec. 601 luma, alpha composited over white),
// optional inversion to Fashion-MNIST's light-object-on-black look, padding to a square, resizing (area average when
// shrinking, bilinear when enlarging). Browser-safe: Node decodes files into a DecodedImage (src/node/image-file.ts),
// a page gets one from a canvas (RGBA).

/** 8-bit interleaved pixels, row-major: channels 1 = grey, 2 = grey + alpha, 3 = RGB, 4 = RGBA. */
export interface DecodedImage { width: number; height: number; channels: 1 | 2 | 3 | 4; data: Uint8Array }

/** Grey levels in [0, 1] (Rec. 601 luma; alpha composited over `background`, default white). */
export function toGrey(img: DecodedImage, background = 1): Float32Array {
  const { width: w, height: h, channels: ch, data } = img, out = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    const p = i * ch;
    const g = ch >= 3 ? (0.299 * data[p] + 0.587 * data[p + 1] + 0.114 * data[p + 2]) / 255 : data[p] / 255;
    const a = ch === 2 ? data[p + 1] / 255 : ch === 4 ? data[p + 3] / 255 : 1;
    out[i] = a * g + (1 - a) * background;
  }
  return out;
}

/** Weights of a 1-D resample from n to m samples: area average when shrinking, bilinear (half-pixel centres) when enlarging. */
function axisWeights(n: number, m: number): { idx: number[][]; w: number[][] } {
  const idx: number[][] = [], w: number[][] = [], scale = n / m;
  for (let i = 0; i < m; i++) {
    const ii: number[] = [], ww: number[] = [];
    if (scale >= 1) {
      const a = i * scale, b = (i + 1) * scale;       // source interval [a, b) covered by output sample i
      for (let s = Math.floor(a); s < Math.min(n, Math.ceil(b)); s++) {
        const cover = Math.min(b, s + 1) - Math.max(a, s);
        if (cover > 1e-9) { ii.push(s); ww.push(cover / scale); }
      }
    } else {
      const x = Math.min(n - 1, Math.max(0, (i + 0.5) * scale - 0.5)), s0 = Math.floor(x), t = x - s0;
      ii.push(s0); ww.push(1 - t);
      if (s0 + 1 < n && t > 0) { ii.push(s0 + 1); ww.push(t); }
    }
    idx.push(ii); w.push(ww);
  }
  return { idx, w };
}

/** Resize a (h, w) grey image to (H, W): separable area average / bilinear. */
export function resizeGrey(src: Float32Array, w: number, h: number, W: number, H: number): Float32Array {
  if (src.length !== w * h) throw new RangeError(`resizeGrey: ${src.length} pixels do not make a ${w}x${h} image`);
  const cx = axisWeights(w, W), cy = axisWeights(h, H);
  const tmp = new Float32Array(h * W), out = new Float32Array(H * W);
  for (let y = 0; y < h; y++) for (let X = 0; X < W; X++) {
    let s = 0;
    const ii = cx.idx[X], ww = cx.w[X];
    for (let k = 0; k < ii.length; k++) s += ww[k] * src[y * w + ii[k]];
    tmp[y * W + X] = s;
  }
  for (let Y = 0; Y < H; Y++) {
    const ii = cy.idx[Y], ww = cy.w[Y];
    for (let X = 0; X < W; X++) {
      let s = 0;
      for (let k = 0; k < ii.length; k++) s += ww[k] * tmp[ii[k] * W + X];
      out[Y * W + X] = s;
    }
  }
  return out;
}

export interface GreyImage { pixels: Float32Array; size: number; sourceWidth: number; sourceHeight: number; inverted: boolean }

/**
 * An image as a size×size grey square in [0, 1]: decode, grey, optionally invert (auto: when the border is mostly light,
 * since Fashion-MNIST shows light objects on black), pad to a square with the border colour, resize.
 */
export function greySquare(img: DecodedImage, o: { size?: number; invert?: boolean | "auto" } = {}): GreyImage {
  const size = o.size ?? 28, { width: w, height: h } = img;
  let g = toGrey(img);
  let border = 0, nb = 0;
  for (let x = 0; x < w; x++) { border += g[x] + g[(h - 1) * w + x]; nb += 2; }
  for (let y = 1; y < h - 1; y++) { border += g[y * w] + g[y * w + w - 1]; nb += 2; }
  border /= nb;
  const inverted = o.invert === "auto" || o.invert === undefined ? border > 0.5 : o.invert;
  if (inverted) { g = g.map((v) => 1 - v); border = 1 - border; }
  const side = Math.max(w, h), sq = new Float32Array(side * side).fill(border);
  const ox = (side - w) >> 1, oy = (side - h) >> 1;
  for (let y = 0; y < h; y++) sq.set(g.subarray(y * w, (y + 1) * w), (y + oy) * side + ox);
  const pixels = side === size ? sq : resizeGrey(sq, side, side, size, size);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.min(1, Math.max(0, pixels[i]));
  return { pixels, size, sourceWidth: w, sourceHeight: h, inverted };
}

