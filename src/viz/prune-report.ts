// A self-contained HTML report of head pruning (`attnflow prune --html`, scripts/prune-report.ts): per model, the
// held-out metric against the fraction of heads pruned for each importance measure (drawn by the inline script on
// <canvas>, as the explanation report draws its maps, with the same numbers in a table that needs no script), the
// head-importance scores with the pruned heads marked, and the forward time before/after when measured.
// Opens offline: inline CSS, one inline script, data embedded as JSON. Browser-safe (plain string building).
import { escapeHtml, rampColor } from "./html-report.js";

export interface PrunePoint { fraction: number; pruned: number; value: number }
export interface PruneReportModel {
  label: string;
  /** Heads before pruning. */
  heads: number;
  /** The metric the curves plot (e.g. "accuracy"), and a note on what it was measured on. */
  metric: string;
  metricNote?: string;
  /** One curve per importance measure (gradient, flow, rollout, random, spec…), points in fraction order. */
  curves: Record<string, PrunePoint[]>;
  /** Importance (layers × heads, original head indices) of the measure that chose `pruned`. */
  scores?: { method: string; values: number[][] };
  /** The heads pruned in the written model (layer → original heads). */
  pruned?: Record<string, number[]>;
  speed?: { fraction: number; heads: number; ms: number; msBaseline: number }[];
  speedNote?: string;
}

const COLORS: Record<string, string> = { gradient: "#1f77b4", flow: "#d62728", rollout: "#2ca02c", random: "#7f7f7f", spec: "#9467bd" };
const colorOf = (m: string, i: number) => COLORS[m] ?? ["#8c564b", "#e377c2", "#17becf", "#bcbd22"][i % 4];
const pct = (f: number) => `${+(100 * f).toFixed(1)}%`;

function curveTable(m: PruneReportModel): string {
  const methods = Object.keys(m.curves);
  const fr = [...new Set(methods.flatMap((k) => m.curves[k].map((p) => p.fraction)))].sort((a, b) => a - b);
  const cell = (k: string, f: number) => { const p = m.curves[k].find((q) => q.fraction === f); return p ? p.value.toFixed(3) : "—"; };
  return `<table class="curve-table"><tr><th>heads pruned</th>${methods.map((k) => `<th>${escapeHtml(k)}</th>`).join("")}</tr>` +
    fr.map((f) => `<tr><td>${pct(f)} (${Math.round(f * m.heads)})</td>${methods.map((k) => `<td>${cell(k, f)}</td>`).join("")}</tr>`).join("") + "</table>";
}

function scoreTable(m: PruneReportModel): string {
  const s = m.scores!;
  const H = Math.max(...s.values.map((r) => r.length));
  let max = 0;
  for (const r of s.values) for (const x of r) max = Math.max(max, x);
  const isPruned = (l: number, h: number) => (m.pruned?.[String(l)] ?? []).includes(h);
  const rows = s.values.map((r, l) => `<tr><th>layer ${l}</th>${r.map((x, h) => {
    const t = max > 0 ? x / max : 0;
    return `<td class="${isPruned(l, h) ? "pruned" : ""}" style="background:${rampColor(t)};color:${t > 0.6 ? "#000" : "#fff"}" title="layer ${l} head ${h}${isPruned(l, h) ? " (pruned)" : ""}">${x.toFixed(3)}</td>`;
  }).join("")}</tr>`);
  return `<h3>Head importance (${escapeHtml(s.method)})</h3><p class="note">Crossed-out cells are the heads pruned in the written model.</p>` +
    `<table class="heatmap-table"><tr><th></th>${Array.from({ length: H }, (_, h) => `<th>head ${h}</th>`).join("")}</tr>${rows.join("")}</table>`;
}

function speedTable(m: PruneReportModel): string {
  return `<h3>Forward time</h3>${m.speedNote ? `<p class="note">${escapeHtml(m.speedNote)}</p>` : ""}<table class="curve-table"><tr><th>heads pruned</th><th>heads left</th><th>ms</th><th>unpruned ms</th><th>speed-up</th></tr>` +
    m.speed!.map((r) => `<tr><td>${pct(r.fraction)}</td><td>${r.heads}</td><td>${r.ms.toFixed(1)}</td><td>${r.msBaseline.toFixed(1)}</td><td>${(r.msBaseline / r.ms).toFixed(2)}×</td></tr>`).join("") + "</table>";
}

/** The report as one HTML string. */
export function renderPruneReport(models: readonly PruneReportModel[], o: { title?: string; notes?: string } = {}): string {
  const title = o.title ?? "attnflow head pruning";
  const parts = [`<h1>${escapeHtml(title)}</h1>`];
  if (o.notes) parts.push(`<p class="summary">${escapeHtml(o.notes)}</p>`);
  models.forEach((m, k) => {
    parts.push(`<h2>${escapeHtml(m.label)}</h2><p class="note">${escapeHtml(m.metric)} against the fraction of the ${m.heads} heads pruned, one line per importance measure` +
      `${m.metricNote ? `; ${escapeHtml(m.metricNote)}` : ""}.</p>`);
    parts.push(`<div class="row"><figure class="plot"><canvas class="curve" data-model="${k}" width="480" height="300" role="img" aria-label="${escapeHtml(`${m.metric} vs heads pruned: ${m.label}`)}"></canvas></figure>${curveTable(m)}</div>`);
    if (m.scores) parts.push(scoreTable(m));
    if (m.speed?.length) parts.push(speedTable(m));
  });
  parts.push(`<p class="note">Importance measures: gradient — |∂loss/∂head mask| (Michel et al. 2019); flow, rollout — the share of the attention flow / rollout explanation a head relocates; random — a baseline (docs/pruning.md). Generated by attnflow.</p>`);
  const data = models.map((m) => ({ metric: m.metric, heads: m.heads, curves: Object.entries(m.curves).map(([name, pts], i) => ({ name, color: colorOf(name, i), pts: pts.map((p) => [p.fraction, p.value]) })) }));
  const json = JSON.stringify(data).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style></head>
<body>
${parts.join("\n")}
<noscript><p class="note">The plots need JavaScript; the tables do not.</p></noscript>
<script type="application/json" id="attnflow-prune-data">${json}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1b1f;background:#fafafa}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:14px;margin:14px 0 4px}
.note{color:#666;font-size:12px}.summary{max-width:70em}.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure.plot{margin:0}canvas.curve{width:480px;max-width:92vw;border:1px solid #ccc;background:#fff}
table.curve-table{border-collapse:collapse;font-size:12px}table.curve-table td,table.curve-table th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}
table.heatmap-table{border-collapse:collapse;font-size:11px;font-family:ui-monospace,monospace}table.heatmap-table td,table.heatmap-table th{padding:2px 5px;text-align:right}
td.pruned{text-decoration:line-through;outline:2px solid #c0392b;outline-offset:-2px}
`;

// Plain ES2015: reads the embedded JSON, draws each model's curves (axes, grid, one polyline + dots per measure,
// legend) on its canvas at the device pixel ratio, then sets <body data-drawn="N"> (a script error leaves it unset).
const SCRIPT = `
(function(){
var D=JSON.parse(document.getElementById("attnflow-prune-data").textContent),drawn=0;
Array.prototype.forEach.call(document.querySelectorAll("canvas.curve"),function(cv){
 var m=D[+cv.getAttribute("data-model")];if(!m)return;
 var W=480,H=300,r=window.devicePixelRatio||1;cv.width=W*r;cv.height=H*r;var c=cv.getContext("2d");c.scale(r,r);
 var L=52,R=110,T=14,B=40,xs=[],ys=[];
 m.curves.forEach(function(k){k.pts.forEach(function(p){xs.push(p[0]);ys.push(p[1]);});});
 var x1=Math.max(0.05,Math.max.apply(null,xs)),lo=Math.min.apply(null,ys),hi=Math.max.apply(null,ys),pad=Math.max(0.01,(hi-lo)*0.08);lo-=pad;hi+=pad;
 function X(f){return L+f/x1*(W-L-R);}function Y(v){return T+(1-(v-lo)/(hi-lo))*(H-T-B);}
 c.fillStyle="#fff";c.fillRect(0,0,W,H);c.font="11px sans-serif";c.strokeStyle="#ddd";c.fillStyle="#333";c.lineWidth=1;
 for(var i=0;i<=4;i++){var v=lo+(hi-lo)*i/4,y=Y(v);c.beginPath();c.moveTo(L,y);c.lineTo(W-R,y);c.stroke();c.textAlign="right";c.fillText(v.toFixed(3),L-4,y+4);}
 var fr={};xs.forEach(function(f){fr[f]=1;});Object.keys(fr).forEach(function(f){f=+f;c.textAlign="center";c.fillText(Math.round(f*1000)/10+"%",X(f),H-B+14);});
 c.fillText("heads pruned (of "+m.heads+")",(L+W-R)/2,H-8);
 c.save();c.translate(12,(T+H-B)/2);c.rotate(-Math.PI/2);c.fillText(m.metric,0,0);c.restore();
 m.curves.forEach(function(k,j){
  c.strokeStyle=k.color;c.fillStyle=k.color;c.lineWidth=2;c.setLineDash(k.name==="random"?[4,3]:[]);c.beginPath();
  k.pts.forEach(function(p,i){if(i)c.lineTo(X(p[0]),Y(p[1]));else c.moveTo(X(p[0]),Y(p[1]));});c.stroke();c.setLineDash([]);
  k.pts.forEach(function(p){c.beginPath();c.arc(X(p[0]),Y(p[1]),2.5,0,2*Math.PI);c.fill();});
  var ly=T+10+j*16;c.beginPath();c.moveTo(W-R+10,ly);c.lineTo(W-R+28,ly);c.stroke();c.textAlign="left";c.fillStyle="#333";c.fillText(k.name,W-R+32,ly+4);
 });
 drawn++;
});
document.body.setAttribute("data-drawn",String(drawn));
})();
`;
