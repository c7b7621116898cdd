// The decoder part of an encoder–decoder explanation (Explanation.decoder, src/explain/seq2seq.ts) as HTML: per-token
// tables of the explained output token's decoder self-attention (over the decoder's input tokens) and cross-attention
// (over the source tokens), and static heatmaps of the last layer's head-mean matrices. Browser-safe, no script.
import type { Explanation } from "../explain/explain-run.js";
import { escapeHtml, rampColor } from "./html-report.js";

type Dec = NonNullable<Explanation["decoder"]>;
const TITLES: Record<string, string> = { raw: "raw attention (last layer)", rollout: "rollout (decoder self-attention)", grad: "gradient-weighted (Chefer et al. encoder–decoder rule)" };

function table(tokens: string[], cols: [string, number[]][], special: ReadonlySet<number> = new Set()): string {
  const max = cols.map(([, v]) => Math.max(1e-300, ...v.map(Math.abs)));
  const head = `<tr><th>#</th><th>token</th>${cols.map(([t]) => `<th>${escapeHtml(t)}</th>`).join("")}</tr>`;
  const rows = tokens.map((t, i) => `<tr${special.has(i) ? ' class="special"' : ""}><td>${i}</td><td class="tok">${escapeHtml(t)}</td>${cols.map(([, v], k) =>
    `<td><div class="cell"><div class="bar" style="width:${(100 * Math.abs(v[i]) / max[k]).toFixed(1)}%"></div><span>${v[i].toPrecision(3)}</span></div></td>`).join("")}</tr>`);
  return `<div class="scroll"><table class="importance">${head}${rows.join("")}</table></div>`;
}

/** Head mean of (H, Tq, Tk). */
const headMean = (a: number[][][]): number[][] => a[0].map((row, i) => row.map((_, j) => a.reduce((s, h) => s + h[i][j], 0) / a.length));

function heat(rowsL: string[], colsL: string[], m: number[][]): string {
  let max = 0;
  for (const r of m) for (const x of r) max = Math.max(max, x);
  const head = `<tr><th></th>${colsL.map((t) => `<th class="col">${escapeHtml(t)}</th>`).join("")}</tr>`;
  const body = m.map((r, i) => `<tr><th>${escapeHtml(rowsL[i])}</th>${r.map((x) => {
    const t = max > 0 ? x / max : 0;
    return `<td style="background:${rampColor(t)};color:${t > 0.6 ? "#000" : "#fff"}">${x.toFixed(2)}</td>`;
  }).join("")}</tr>`);
  return `<div class="scroll"><table class="heatmap-table">${head}${body.join("")}</table></div>`;
}

/** The decoder section of the report ("" when the explanation has no decoder part). */
export function decoderSectionHtml(e: Explanation): string {
  const d: Dec | undefined = e.decoder;
  if (!d) return "";
  const m = d.methods, selfCols: [string, number[]][] = [], crossCols: [string, number[]][] = [];
  for (const k of ["raw", "rollout", "grad"] as const) {
    const v = m[k] as { self?: number[]; cross?: number[] } | undefined;
    if (v?.self) selfCols.push([TITLES[k], v.self]);
    if (v?.cross) crossCols.push([TITLES[k], v.cross]);
  }
  const parts = [`<h2 id="decoder">Decoder: output token ${escapeHtml(e.target.label)}</h2>` +
    `<p class="note">The explained logit is read at decoder position ${d.position} (${d.layers} decoder layer${d.layers === 1 ? "" : "s"} × ${d.heads} heads). ` +
    `Decoder self-attention: what the output token draws from the tokens generated before it; cross-attention: what it reads from the source.</p>`];
  if (selfCols.length) parts.push(`<h3>decoder self-attention of the output token</h3>${table(d.tokens, selfCols)}`);
  if (crossCols.length) parts.push(`<h3>cross-attention of the output token (over the source)</h3>${table(e.tokens, crossCols, new Set(e.special))}`);
  if (d.selfAttention && d.crossAttention && e.tokens.length <= 40 && d.tokens.length <= 40) {
    parts.push(`<h3>decoder self-attention, last layer, head mean</h3>${heat(d.tokens, d.tokens, headMean(d.selfAttention.at(-1)!))}`);
    parts.push(`<h3>cross-attention, last layer, head mean (rows: decoder positions, columns: source)</h3>${heat(d.tokens, e.tokens, headMean(d.crossAttention.at(-1)!))}`);
  }
  return parts.join("\n");
}
