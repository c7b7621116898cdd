// Terminal rendering of attention: heat-mapped matrices and importance bar charts (ANSI colours, plain-text fallback).

export interface RenderOptions { color?: boolean; width?: number; digits?: number }

const BLOCKS = [" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"];

/** 24-bit colour ramp from pale to deep (blue-white-red style magma-ish) for a value in [0, 1]. */
function heat(v: number): [number, number, number] {
  const t = Math.max(0, Math.min(1, v));
  const stops: [number, number, number][] = [[20, 24, 56], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
  const a = stops[i], b = stops[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)) as [number, number, number];
}

const bg = ([r, g, b]: [number, number, number]) => `\x1b[48;2;${r};${g};${b}m`;
const fg = ([r, g, b]: [number, number, number]) => `\x1b[38;2;${r};${g};${b}m`;
const RESET = "\x1b[0m";

/** Horizontal bars, one per label, scaled to the largest value; shows the value and its share. */
export function barChart(labels: string[], values: ArrayLike<number>, o: RenderOptions = {}): string {
  const width = o.width ?? 40, digits = o.digits ?? 3;
  const max = Math.max(...Array.from(values, (v) => Math.abs(v)), 1e-12);
  const total = Array.from(values).reduce((a, b) => a + Math.abs(b), 0) || 1;
  const lw = Math.max(...labels.map((l) => l.length));
  return labels.map((l, i) => {
    const v = values[i], cells = (Math.abs(v) / max) * width;
    const full = Math.floor(cells), frac = Math.round((cells - full) * 8);
    let bar = "█".repeat(full) + (frac > 0 && full < width ? BLOCKS[frac] : "");
    if (o.color) bar = fg(heat(Math.abs(v) / max)) + bar + RESET;
    return `${l.padStart(lw)} │${bar}${" ".repeat(Math.max(0, width - full - (frac > 0 ? 1 : 0)))} ${v.toFixed(digits)}  (${((100 * Math.abs(v)) / total).toFixed(1)}%)`;
  }).join("\n");
}

/** A (rows × cols) matrix with row/column labels; each cell coloured by its value (0..max) when colour is on. */
export function heatmap(rowLabels: string[], colLabels: string[], m: ArrayLike<number>, o: RenderOptions = {}): string {
  const digits = o.digits ?? 2, R = rowLabels.length, C = colLabels.length;
  let max = 0;
  for (let i = 0; i < R * C; i++) max = Math.max(max, m[i]);
  const cw = Math.max(digits + 3, ...colLabels.map((c) => Math.min(c.length, 8)));
  const lw = Math.max(...rowLabels.map((l) => l.length));
  const head = " ".repeat(lw) + "  " + colLabels.map((c) => c.slice(0, 8).padStart(cw)).join(" ");
  const lines = [head];
  for (let i = 0; i < R; i++) {
    const cells = [];
    for (let j = 0; j < C; j++) {
      const v = m[i * C + j], s = v.toFixed(digits).padStart(cw);
      if (!o.color) { cells.push(s); continue; }
      const t = max > 0 ? v / max : 0;
      cells.push(bg(heat(t)) + (t > 0.6 ? "\x1b[30m" : "\x1b[97m") + s + RESET);
    }
    lines.push(rowLabels[i].padStart(lw) + "  " + cells.join(" "));
  }
  return lines.join("\n");
}

const SHADES = [" ", "░", "▒", "▓", "█"];

/** Scales non-negative magnitudes to [0, 1] by their maximum (all-zero stays zero). */
function unitScale(values: ArrayLike<number>): number[] {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]));
  return Array.from(values, (v) => (max > 0 ? Math.abs(v) / max : 0));
}

/** Scales magnitudes to [0, 1] from their minimum to their maximum (all equal → all 0). */
function minMaxScale(values: ArrayLike<number>): number[] {
  const a = Array.from(values, Math.abs);
  const lo = Math.min(...a), hi = Math.max(...a);
  return a.map((v) => (hi > lo ? (v - lo) / (hi - lo) : 0));
}

/**
 * The tokens as running text, each on a background coloured by its importance (0..max); without colour each token
 * is followed by its importance rank in brackets for the top `top` tokens (default 5). Tokens are joined by
 * `separator` (default " "; "" for characters). Lines wrap at `width`.
 */
export function tokenStrip(tokens: string[], values: ArrayLike<number>, o: RenderOptions & { top?: number; separator?: string } = {}): string {
  const width = o.width ?? 80, u = unitScale(values);
  const order = tokens.map((_, i) => i).sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]));
  const rank = new Map(order.slice(0, o.top ?? 5).filter((i) => Math.abs(values[i]) > 0).map((i, r) => [i, r + 1]));
  const sep = o.separator ?? " ";
  const lines: string[] = [];
  let line = "", len = 0;
  tokens.forEach((t, i) => {
    const plain = o.color ? t : rank.has(i) ? `${t}[${rank.get(i)}]` : t;
    if (len > 0 && len + sep.length + plain.length > width) { lines.push(line); line = ""; len = 0; }
    const shown = o.color ? bg(heat(u[i])) + (u[i] > 0.6 ? "\x1b[30m" : "\x1b[97m") + t + RESET : plain;
    line += (len > 0 ? sep : "") + shown; len += (len > 0 ? sep.length : 0) + plain.length;
  });
  if (len > 0) lines.push(line);
  return lines.join("\n");
}

/**
 * A (rows × cols) grid of patch importances, two characters per patch: coloured cells (0..max) with colour on,
 * shade characters ░▒▓█ without. Row/column indices on the edges.
 */
export function patchGrid(grid: [number, number], values: ArrayLike<number>, o: RenderOptions = {}): string {
  const [R, C] = grid;
  if (values.length !== R * C) throw new RangeError(`patchGrid: ${values.length} values for a ${R}x${C} grid`);
  const u = unitScale(values), lw = String(R - 1).length;
  const head = " ".repeat(lw + 1) + Array.from({ length: C }, (_, c) => String(c % 100).padStart(2)).join("");
  const lines = [head];
  for (let r = 0; r < R; r++) {
    let s = String(r).padStart(lw) + " ";
    for (let c = 0; c < C; c++) {
      const v = u[r * C + c];
      s += o.color ? bg(heat(v)) + "  " + RESET : SHADES[Math.min(4, Math.round(v * 4))].repeat(2);
    }
    lines.push(s);
  }
  return lines.join("\n");
}

/**
 * The image (gray or RGB, values in [0, 1]) tinted by patch importance (|value| scaled from the smallest to the largest
 * patch): each text row shows two pixel rows with "▀"
 * (upper pixel in the foreground colour, lower in the background). Pixels are downsampled to at most `width`
 * columns. Needs colour; without it a shade-character picture of the importance over the image is drawn instead.
 */
export function imageOverlay(im: { width: number; height: number; channels: number; pixels: ArrayLike<number>; patch: number; grid: [number, number] },
  patchValues: ArrayLike<number>, o: RenderOptions & { mix?: number } = {}): string {
  const { width: W, height: H, channels: ch, pixels, patch, grid } = im;
  const u = minMaxScale(patchValues), mix = o.mix ?? 0.6;
  const step = Math.max(1, Math.ceil(W / (o.width ?? 56)));
  const cols = Math.ceil(W / step), rows = Math.ceil(H / step);
  const rgb = (y: number, x: number): [number, number, number] => {
    const p = y * W + x;
    const g = ch === 3 ? [pixels[3 * p], pixels[3 * p + 1], pixels[3 * p + 2]] : [pixels[p], pixels[p], pixels[p]];
    const pr = Math.min(grid[0] - 1, Math.floor(y / patch)), pc = Math.min(grid[1] - 1, Math.floor(x / patch));
    const v = u[pr * grid[1] + pc] ?? 0, h = heat(v), a = mix * v;
    return [0, 1, 2].map((k) => Math.round((1 - a) * 255 * Math.max(0, Math.min(1, g[k])) + a * h[k])) as [number, number, number];
  };
  const lines: string[] = [];
  for (let r = 0; r < rows; r += 2) {
    let s = "";
    for (let c = 0; c < cols; c++) {
      const y0 = r * step, y1 = Math.min(H - 1, (r + 1) * step), x = c * step;
      if (o.color) s += fg(rgb(y0, x)) + bg(rgb(y1, x)) + "▀";
      else {
        const pr = Math.min(grid[0] - 1, Math.floor(y0 / patch)), pc = Math.min(grid[1] - 1, Math.floor(x / patch));
        const v = u[pr * grid[1] + pc] ?? 0, g = ch === 3 ? pixels[3 * (y0 * W + x)] : pixels[y0 * W + x];
        s += v >= 0.5 ? SHADES[Math.min(4, Math.round(v * 4))] : g > 0.5 ? "·" : " ";
      }
    }
    lines.push(o.color ? s + RESET : s);
  }
  return lines.join("\n");
}
