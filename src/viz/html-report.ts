// A self-contained HTML report of one Explanation (src/explain/explain-run.ts): it opens offline, with no external
// URL: inline CSS, one inline script, data embedded as JSON. Static parts (no script needed): the summary, the
// per-token importance bars of every method, and a labelled heatmap table of the explained layer when T is small.
// Drawn by the inline script on <canvas>: heatmaps of every layer and head (plus the head mean), rollout and flow
// matrices, the gradient relevance, the per-layer importance of each method, and for image models the patch
// importance over the image. Matrices travel quantised to 8 bits per cell relative to their own maximum (base64).
// Browser-safe (plain string building).

import { rolloutHeadShift } from "../explain/head-importance.js";
import type { Explanation } from "../explain/explain-run.js";
import { decoderSectionHtml } from "./decoder-section.js";
import type { AttentionViews } from "../explain/views.js";
import { VIEWER_CSS, viewerScript } from "./attention-viewer.js";
import { explanationDiagnostics, unreliableWarnings } from "../explain/faithfulness.js";

const STOPS: [number, number, number][] = [[20, 24, 56], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/** The report's colour ramp (the terminal's): t in [0, 1] → "rgb(r,g,b)". */
export function rampColor(t: number): string {
  const x = Math.max(0, Math.min(1, t)) * (STOPS.length - 1), i = Math.min(STOPS.length - 2, Math.floor(x)), f = x - i;
  const a = STOPS[i], b = STOPS[i + 1];
  return `rgb(${[0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)).join(",")})`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** Standard base64 of bytes (no dependency on btoa/Buffer). */
export function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i], b = bytes[i + 1] ?? 0, c = bytes[i + 2] ?? 0, n = (a << 16) | (b << 8) | c;
    s += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=") + (i + 2 < bytes.length ? B64[n & 63] : "=");
  }
  return s;
}

interface MapData { rows: number; cols: number; max: number; q: string; rowLabels: string; colLabels: string }

/** Registry of the matrices the script draws; returns the index used in data-map. */
class Maps {
  readonly list: MapData[] = [];
  add(m: number[][], rowLabels: "tokens" | "layers", colLabels: "tokens"): number {
    const R = m.length, C = R ? m[0].length : 0;
    let max = 0;
    for (const r of m) for (const x of r) if (Math.abs(x) > max) max = Math.abs(x);
    const q = new Uint8Array(R * C);
    for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) q[i * C + j] = max > 0 ? Math.round(255 * Math.abs(m[i][j]) / max) : 0;
    this.list.push({ rows: R, cols: C, max, q: base64(q), rowLabels, colLabels });
    return this.list.length - 1;
  }
}

const METHOD_TITLES: Record<string, string> = {
  raw: "raw attention", rollout: "attention rollout", flow: "attention flow", grad: "gradient-weighted rollout",
  blankout: "blank-out (score drop)", inputgrad: "input × gradient",
};

function canvas(map: number, caption: string, cls = "heatmap"): string {
  return `<figure class="map"><canvas class="${cls}" data-map="${map}"></canvas><figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

/** The importance table: one row per position, one column per method, CSS bars scaled to each method's max |value|. */
function importanceTable(e: Explanation, methods: string[]): string {
  const imp = (m: string) => (e.methods as Record<string, { importance: number[] }>)[m].importance;
  const max = methods.map((m) => Math.max(1e-300, ...imp(m).map(Math.abs)));
  const special = new Set(e.special);
  const head = `<tr><th>#</th><th>token</th>${methods.map((m) => `<th>${escapeHtml(METHOD_TITLES[m] ?? m)}</th>`).join("")}</tr>`;
  const rows = e.tokens.map((t, i) => {
    const cells = methods.map((m, k) => {
      const v = imp(m)[i], w = (100 * Math.abs(v) / max[k]).toFixed(1);
      return `<td><div class="cell"><div class="bar${v < 0 ? " neg" : ""}" style="width:${w}%"></div><span>${v.toPrecision(3)}</span></div></td>`;
    }).join("");
    return `<tr${special.has(i) ? ' class="special"' : ""}><td>${i}</td><td class="tok">${escapeHtml(t)}</td>${cells}</tr>`;
  });
  return `<div class="scroll"><table class="importance">${head}${rows.join("")}</table></div>`;
}

/** Static labelled heatmap of one (T, T) matrix (only for small T). */
function tableHeatmap(tokens: string[], m: number[][]): string {
  let max = 0;
  for (const r of m) for (const x of r) max = Math.max(max, x);
  const head = `<tr><th></th>${tokens.map((t) => `<th class="col">${escapeHtml(t)}</th>`).join("")}</tr>`;
  const rows = m.map((r, i) => `<tr><th>${escapeHtml(tokens[i])}</th>${r.map((x) => {
    const t = max > 0 ? x / max : 0;
    return `<td style="background:${rampColor(t)};color:${t > 0.6 ? "#000" : "#fff"}">${x.toFixed(2)}</td>`;
  }).join("")}</tr>`);
  return `<div class="scroll"><table class="heatmap-table">${head}${rows.join("")}</table></div>`;
}

/**
 * Per head, the share of this input's rollout explanation that the head relocates (rolloutHeadShift: ½·‖a − a^(−l,h)‖₁,
 * docs/pruning.md) — what `attnflow prune --by rollout` averages over examples.
 */
function headShiftSection(e: Explanation): string {
  const T = e.tokens.length, att = e.attention!;
  // a pruned model's layers are padded to the most heads (TargetAttention.headsPerLayer): only the real heads count
  const real = att.map((hs, l) => hs.slice(0, e.headsPerLayer?.[l] ?? hs.length));
  const ex = { layers: real.map((hs) => Float64Array.from(hs.flatMap((m) => m.flat()))), heads: real.map((hs) => hs.length), tokens: T };
  let query: number | Float64Array;
  if (typeof e.query === "number") query = e.query;
  else if (e.query === "readout" && e.readout) query = Float64Array.from(e.readout);
  else {
    const keep = e.tokens.map((_, i) => !e.special.includes(i)), n = keep.filter(Boolean).length || T;
    query = Float64Array.from(keep, (k) => (k || n === T ? 1 / n : 0));
  }
  const s = rolloutHeadShift(ex, query);
  let max = 0;
  for (const r of s) for (const x of r) max = Math.max(max, x);
  const H = Math.max(...ex.heads);
  const head = `<tr><th></th>${Array.from({ length: H }, (_, h) => `<th class="col">head ${h}</th>`).join("")}</tr>`;
  const rows = s.map((r, l) => `<tr><th>layer ${l}</th>${Array.from(r, (x) => {
    const t = max > 0 ? x / max : 0;
    return `<td style="background:${rampColor(t)};color:${t > 0.6 ? "#000" : "#fff"}">${(100 * x).toFixed(1)}%</td>`;
  }).join("")}${"<td>pruned</td>".repeat(H - r.length)}</tr>`);
  return `<h2>Head importance for this input</h2><p class="note">Share of the rollout explanation each head relocates: ` +
    `½·‖a − a<sup>(−l,h)</sup>‖₁ with the head taken out of its layer's mean (docs/pruning.md; <code>attnflow prune --by rollout</code> averages it over examples).</p>` +
    `<div class="scroll"><table class="heatmap-table">${head}${rows.join("")}</table></div>`;
}

/** A warning that the input was cut to the model's maximum positions (and which part was explained). */
export function truncationBanner(t: NonNullable<Explanation["truncation"]>): string {
  return `<p class="warn" role="alert"><b>Input truncated:</b> ${t.total} tokens, the model reads at most ${t.kept}; ` +
    `${t.dropped} token${t.dropped === 1 ? " was" : "s were"} dropped from the ${t.from} and ${t.from === "end" ? "only the beginning" : "only the latest part"} is explained.</p>`;
}

/** The full report as one HTML string. */
export function renderHtmlReport(e: Explanation, o: { title?: string; views?: AttentionViews } = {}): string {
  const maps = new Maps();
  const T = e.tokens.length, L = e.layers, H = e.heads;
  const title = o.title ?? `attnflow explanation: ${e.target.label}`;
  const order = ["rollout", "flow", "raw", "grad", "blankout", "inputgrad"];
  const methods = order.filter((m) => (e.methods as Record<string, unknown>)[m] !== undefined);
  const queryText = e.query === "mean" ? "all non-special positions (mean of their rows)"
    : e.query === "readout" ? "rows weighted by the target's readout (e.g. the output position's cross-attention)" : `position ${e.query} (${e.tokens[e.query]})`;
  const parts: string[] = [];
  parts.push(`<h1>${escapeHtml(title)}</h1>`);
  if (e.truncation) parts.push(truncationBanner(e.truncation));
  // the same warnings as the terminal view: near-uniform raw attention, saturated flow at the explained layer
  for (const w of unreliableWarnings(explanationDiagnostics(e), e.layer)) parts.push(`<p class="warn unreliable" role="note"><strong>Unreliable:</strong> ${escapeHtml(w)}</p>`);
  parts.push(`<p class="summary">Target <b>${escapeHtml(e.target.label)}</b> (index ${e.target.index}), score ${e.target.score.toPrecision(5)}. ` +
    `Explained row: ${escapeHtml(queryText)}. Layers ${L}, heads ${H}, ${T} positions${e.causal ? ", causal attention" : ""}; ` +
    `explained layer ${e.layer}${e.head === null ? " (head mean)" : `, head ${e.head}`}.</p>`);
  // images: the overlays first; text: the tokens coloured by the first method
  if (e.image && methods.length) {
    const im = e.image;
    const figs = methods.map((m) => {
      const v = (e.methods as Record<string, { importance: number[] }>)[m].importance.slice(im.prefix);
      const grid = Array.from({ length: im.grid[0] }, (_, r) => v.slice(r * im.grid[1], (r + 1) * im.grid[1]));
      return canvas(maps.add(grid, "tokens", "tokens"), METHOD_TITLES[m] ?? m, "overlay");
    });
    parts.push(`<h2>Patch importance over the image</h2><p class="note">Each patch tinted by |importance|, scaled from the method's smallest to its largest patch value.</p><div class="maps">${figs.join("")}</div>`);
  } else if (methods.length) {
    const first = (e.methods as Record<string, { importance: number[] }>)[methods[0]].importance;
    const mx = Math.max(1e-300, ...first.map(Math.abs));
    parts.push(`<p class="strip">${e.tokens.map((t, i) => {
      const v = Math.abs(first[i]) / mx;
      return `<span class="tokchip" style="background:${rampColor(v)};color:${v > 0.6 ? "#000" : "#fff"}" title="${escapeHtml(methods[0])}: ${first[i].toPrecision(3)}">${escapeHtml(t)}</span>`;
    }).join(" ")}</p><p class="note">Tokens coloured by ${escapeHtml(METHOD_TITLES[methods[0]])}.</p>`);
  }
  if (o.views) {
    parts.push(`<h2>Attention viewer</h2><p class="note">Head, model, neuron and flow views of every attention stack the model ran` +
      `${o.views.groups.length > 1 ? " (choose the stack: " + o.views.groups.map((g) => escapeHtml(g.title.replace(/ \(.*/, ""))).join(", ") + ")" : ""}.</p>` +
      `<div id="attnflow-viewer" class="afv"></div>`);
  }
  if (methods.length) parts.push(`<h2>Per-token importance</h2>${importanceTable(e, methods)}`);
  const perLayer = methods.filter((m) => (e.methods as Record<string, { perLayer?: number[][] }>)[m].perLayer);
  if (perLayer.length && L > 1) {
    // a method's rows are the last layers it covers (rollout with a start layer s: layers s..L-1)
    parts.push(`<h2>Importance at the output of every layer</h2><p class="note">Rows: layers, as each map's title says; columns: positions.</p><div class="maps">` +
      perLayer.map((m) => {
        const rows = (e.methods as Record<string, { perLayer: number[][] }>)[m].perLayer;
        return canvas(maps.add(rows, "layers", "tokens"), `${METHOD_TITLES[m]} (layers ${L - rows.length}..${L - 1})`);
      }).join("") + "</div>");
  }
  if (e.attention) {
    const mean = (l: number) => Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => e.attention![l].reduce((s, h) => s + h[i][j], 0) / H));
    if (T <= 40) parts.push(`<h2>Attention of layer ${e.layer} (${e.head === null ? "head mean" : `head ${e.head}`})</h2>` +
      tableHeatmap(e.tokens, e.methods.raw?.matrix ?? (e.head === null ? mean(e.layer) : e.attention[e.layer][e.head])));
    if (!o.views) {
    const rows = Array.from({ length: L }, (_, l) => `<div class="layer"><h3>layer ${l}${e.layerNames[l] ? ` <small>${escapeHtml(e.layerNames[l])}</small>` : ""}</h3><div class="maps">` +
      (H > 1 ? canvas(maps.add(mean(l), "tokens", "tokens"), "head mean") : "") +
      e.attention![l].map((m, h) => canvas(maps.add(m, "tokens", "tokens"), `head ${h}`)).join("") + "</div></div>");
    parts.push(`<h2>Attention per layer and head</h2><p class="note">Row = query position, column = key position; colour 0 → each map's maximum; hover for values.</p>${rows.join("")}`);
    }
  }
  if (e.attention && e.methods.rollout && H > 1) parts.push(headShiftSection(e));
  const ro = e.methods.rollout?.matrices;
  // with a start layer s the matrices are those of layers s..L-1 (the product from layer s on)
  const s0 = e.methods.rollout?.options?.startLayer ?? 0;
  if (ro) parts.push(`<h2>Attention rollout per layer${s0 ? ` (from layer ${s0})` : ""}</h2><div class="maps">${ro.map((m, l) => canvas(maps.add(m, "tokens", "tokens"), `rollout to layer ${l + s0}`)).join("")}</div>`);
  const fm = e.methods.flow?.matrices;
  if (fm) parts.push(`<h2>Attention flow</h2><div class="maps">${fm.map((f) => canvas(maps.add(f.matrix, "tokens", "tokens"), `flow from the output of layer ${f.layer}`)).join("")}</div>`);
  if (e.methods.grad) {
    // R = I + ...: the identity would saturate the colour scale, so the diagonal is drawn as 0
    const offDiag = e.methods.grad.relevance.map((r, i) => r.map((x, j) => (i === j ? 0 : x)));
    parts.push(`<h2>Gradient-weighted relevance</h2><p class="note">R up to the explained layer, diagonal (the identity R starts from) left out.</p>` +
      `<div class="maps">${canvas(maps.add(offDiag, "tokens", "tokens"), `R − diag, layer ${e.layer}`)}</div>`);
  }
  if (e.decoder) parts.push(decoderSectionHtml(e));   // encoder–decoders: decoder self- and cross-attention
  parts.push(`<p class="note">raw: attention row of the explained position; rollout and flow: Abnar &amp; Zuidema (2020), residual 0.5, heads averaged; ` +
    `grad: Chefer et al. (2021) R = Π(I + E<sub>h</sub>[(∇A ⊙ A)<sup>+</sup>]), own entry dropped; blank-out: score drop when the token is occluded (signed, red = negative); ` +
    `input × gradient: |Σ<sub>d</sub> x·∂score/∂x|. Generated by attnflow.</p>`);
  const data = { tokens: e.tokens, maps: maps.list, image: e.image ? { width: e.image.width, height: e.image.height, channels: e.image.channels, patch: e.image.patch, grid: e.image.grid, pixels: e.image.pixels } : null };
  const safe = (x: unknown) => JSON.stringify(x).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
  const json = safe(data);
  const viewer = o.views ? `<script type="application/json" id="attnflow-views">${safe(o.views)}</script>\n<script>${viewerScript("attnflow-viewer", "attnflow-views")}</script>` : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}${o.views ? VIEWER_CSS : ""}</style></head>
<body>
${parts.join("\n")}
<div id="tip" class="tip" hidden></div>
<noscript><p class="note">The heatmap canvases need JavaScript; the tables above do not.</p></noscript>
<script type="application/json" id="attnflow-data">${json}</script>
<script>${SCRIPT}</script>
${viewer}
</body></html>
`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1b1f;background:#fafafa}
h1{font-size:20px;overflow-wrap:anywhere}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:14px;margin:10px 0 4px}
.warn{background:#fff4e5;border:1px solid #e0a040;padding:6px 10px;border-radius:4px;max-width:70em}
small{color:#777;font-weight:normal}.note{color:#666;font-size:12px}.summary{max-width:70em}
.tokchip{padding:1px 4px;border-radius:3px;font-family:ui-monospace,monospace;line-height:2}
table.importance{border-collapse:collapse;font-size:12px}table.importance td,table.importance th{padding:1px 6px;border-bottom:1px solid #eee;text-align:left}
table.importance .tok{font-family:ui-monospace,monospace;white-space:pre}tr.special{color:#aaa}
div.cell{position:relative;width:140px}div.cell .bar{position:absolute;left:0;top:1px;bottom:1px;background:#3b528b;opacity:.35}
div.cell .bar.neg{background:#c0392b}div.cell span{position:relative}
table.heatmap-table{border-collapse:collapse;font-size:10px;font-family:ui-monospace,monospace}
table.heatmap-table td{padding:2px 3px;text-align:right}table.heatmap-table th{padding:2px 3px;font-weight:normal;text-align:right;white-space:pre}
table.heatmap-table th.col{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left}
.maps{display:flex;flex-wrap:wrap;gap:10px}figure.map{margin:0}figcaption{font-size:11px;color:#555;text-align:center}
canvas.heatmap,canvas.overlay{width:160px;image-rendering:pixelated;border:1px solid #ccc;background:#fff}
canvas.overlay{width:224px}.scroll{overflow-x:auto;max-width:100%}
@media (max-width:600px){body{margin:8px}div.cell{width:64px}canvas.heatmap{width:120px}canvas.overlay{width:min(224px,86vw)}}.tip{position:fixed;pointer-events:none;background:#222;color:#fff;font-size:12px;padding:3px 6px;border-radius:3px}
`;

// Plain ES2015 so that any browser runs it; reads the embedded JSON, draws every canvas, shows values on hover, and
// finally sets <body data-drawn="N"> to the number of canvases drawn (a script error leaves it unset).
const SCRIPT = `
(function(){
var drawn=0;
var D=JSON.parse(document.getElementById("attnflow-data").textContent);
var S=${JSON.stringify(STOPS)};
function ramp(t){t=Math.max(0,Math.min(1,t));var x=t*(S.length-1),i=Math.min(S.length-2,Math.floor(x)),f=x-i,a=S[i],b=S[i+1];return [0,1,2].map(function(k){return Math.round(a[k]+(b[k]-a[k])*f);});}
function dec(s){var b=atob(s),a=new Uint8Array(b.length);for(var i=0;i<b.length;i++)a[i]=b.charCodeAt(i);return a;}
var tip=document.getElementById("tip");
function label(kind,i){return kind==="layers"?"layer "+i:(D.tokens[i]!==undefined?i+" "+D.tokens[i]:String(i));}
function hover(cv,rows,cols,text){
 cv.addEventListener("mousemove",function(ev){var r=cv.getBoundingClientRect();var j=Math.floor((ev.clientX-r.left)/r.width*cols),i=Math.floor((ev.clientY-r.top)/r.height*rows);
  if(i<0||j<0||i>=rows||j>=cols){tip.hidden=true;return;}
  tip.textContent=text(i,j);tip.style.left=(ev.clientX+12)+"px";tip.style.top=(ev.clientY+12)+"px";tip.hidden=false;});
 cv.addEventListener("mouseleave",function(){tip.hidden=true;});
}
Array.prototype.forEach.call(document.querySelectorAll("canvas.heatmap"),function(cv){
 var m=D.maps[+cv.getAttribute("data-map")],q=dec(m.q),R=m.rows,C=m.cols;cv.width=C;cv.height=R;
 if(R<C)cv.style.height=Math.max(24,160*R/C)+"px";
 var ctx=cv.getContext("2d"),img=ctx.createImageData(C,R);
 for(var p=0;p<R*C;p++){var c=ramp(q[p]/255);img.data[4*p]=c[0];img.data[4*p+1]=c[1];img.data[4*p+2]=c[2];img.data[4*p+3]=255;}
 ctx.putImageData(img,0,0);drawn++;
 hover(cv,R,C,function(i,j){return label(m.rowLabels,i)+" \\u2192 "+label(m.colLabels,j)+": "+(q[i*C+j]/255*m.max).toPrecision(3);});
});
Array.prototype.forEach.call(document.querySelectorAll("canvas.overlay"),function(cv){
 var im=D.image,m=D.maps[+cv.getAttribute("data-map")],q=dec(m.q);if(!im)return;
 var W=im.width,H=im.height,G=im.grid,P=im.patch;cv.width=W;cv.height=H;
 var lo=255,hi=0;for(var z=0;z<q.length;z++){lo=Math.min(lo,q[z]);hi=Math.max(hi,q[z]);}var span=Math.max(1,hi-lo);
 var ctx=cv.getContext("2d"),img=ctx.createImageData(W,H);
 for(var y=0;y<H;y++)for(var x=0;x<W;x++){var p=y*W+x,pr=Math.min(G[0]-1,Math.floor(y/P)),pc=Math.min(G[1]-1,Math.floor(x/P)),v=(q[pr*G[1]+pc]-lo)/span,h=ramp(v),a=0.6*v;
  for(var k=0;k<3;k++){var g=im.channels===3?im.pixels[3*p+k]:im.pixels[p];img.data[4*p+k]=Math.round((1-a)*255*Math.max(0,Math.min(1,g))+a*h[k]);}img.data[4*p+3]=255;}
 ctx.putImageData(img,0,0);drawn++;
 hover(cv,H,W,function(i,j){var pr=Math.min(G[0]-1,Math.floor(i/P)),pc=Math.min(G[1]-1,Math.floor(j/P));return "patch r"+pr+"c"+pc+": "+(q[pr*G[1]+pc]/255*m.max).toPrecision(3);});
});
document.body.setAttribute("data-drawn",String(drawn));
})();
`;
