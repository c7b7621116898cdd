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
