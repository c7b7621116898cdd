import { test } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";
import { type Explanation, runExplanation } from "../src/explain/explain-run.js";
import { base64, escapeHtml, rampColor, renderHtmlReport } from "../src/viz/html-report.js";
import { imageOverlay, patchGrid, tokenStrip } from "../src/viz/terminal.js";
import { tinyImageTarget, tinyModel, tinyTarget } from "./explain-tiny-task.js";

interface Drawn { map: number; cls: string; width: number; height: number; pixels: Uint8ClampedArray | null }

/** Executes the report's inline script against a minimal DOM: canvases record what was drawn on them. */
function runReportScript(html: string): Drawn[] {
  const json = /<script type="application\/json" id="attnflow-data">([\s\S]*?)<\/script>/.exec(html)![1];
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  assert.equal(scripts.length, 1, "one inline script");
  const canvases = [...html.matchAll(/<canvas class="(heatmap|overlay)" data-map="(\d+)"><\/canvas>/g)].map((m) => {
    const d: Drawn = { map: Number(m[2]), cls: m[1], width: 0, height: 0, pixels: null };
    const el = {
      style: {} as Record<string, string>,
      get width() { return d.width; }, set width(v: number) { d.width = v; },
      get height() { return d.height; }, set height(v: number) { d.height = v; },
      getAttribute: (n: string) => (n === "data-map" ? String(d.map) : null),
      addEventListener: () => undefined,
      getContext: () => ({
        createImageData: (w: number, h: number) => ({ width: w, height: h, data: new Uint8ClampedArray(4 * w * h) }),
        putImageData: (img: { data: Uint8ClampedArray }) => { d.pixels = img.data; },
      }),
    };
    return { d, el };
  });
  const document = {
    body: { setAttribute: () => undefined },
    getElementById: (id: string) => (id === "attnflow-data" ? { textContent: json } : { hidden: true, style: {}, textContent: "" }),
    querySelectorAll: (sel: string) => canvases.filter((c) => sel === `canvas.${c.d.cls}`).map((c) => c.el),
  };
  vm.runInNewContext(scripts[0], { document, atob, Math, JSON, Uint8Array, Array, String });
  return canvases.map((c) => c.d);
}

test("HTML report: self-contained, every heatmap present and drawn, text escaped", async () => {
  const { model } = tinyModel();
  const e = await runExplanation(tinyTarget(model, ["the", "<b>", "sat", "on", "the", "mat"]), model, { methods: ["raw", "rollout", "flow", "grad", "blankout", "inputgrad"] });
  const html = renderHtmlReport(e);
  assert.match(html, /^<!doctype html>/);
  assert.doesNotMatch(html, /https?:\/\//i, "no URLs");
  assert.doesNotMatch(html, /\s(src|href)\s*=/i, "nothing loaded from elsewhere");
  assert.doesNotMatch(html, /@import|url\(/i, "no CSS imports");
  assert.equal(html.match(/<b>/g)!.length, 1, "only the summary's bold tag; the token <b> is escaped");
  assert.match(html, /<td class="tok">&lt;b&gt;<\/td>/);
  // importance table: one row per position, one column per method
  const table = /<table class="importance">([\s\S]*?)<\/table>/.exec(html)![1];
  assert.equal(table.match(/<tr/g)!.length, 1 + e.tokens.length);
  assert.equal(table.match(/<div class="bar/g)!.length, e.tokens.length * 6);
  assert.match(html, /<table class="heatmap-table">/, "labelled static heatmap for small T");
  // canvases: head mean + every head per layer, importance per layer for 4 methods, rollout per layer,
  // flow matrices, gradient relevance
  const L = e.layers, H = e.heads;
  const expected = L * (H + 1) + 4 + L + e.methods.flow!.matrices!.length + 1;
  const drawn = runReportScript(html);
  assert.equal(drawn.length, expected);
  const T = e.tokens.length;
  for (const d of drawn) {
    assert.ok(d.pixels !== null, `canvas ${d.map} drawn`);
    assert.equal(d.width, T, "columns = positions");
    assert.ok(d.height === T || d.height === L);
    // every map is scaled to its own maximum: the top colour of the ramp appears
    let top = false;
    for (let p = 0; p < d.pixels!.length; p += 4) if (d.pixels![p] === 253 && d.pixels![p + 1] === 231 && d.pixels![p + 2] === 37) top = true;
    assert.ok(top, `map ${d.map} reaches the ramp's top colour`);
  }
  // the first head of layer 0 decodes to the attention matrix (8-bit, relative to its max)
  const data = JSON.parse(/<script type="application\/json" id="attnflow-data">([\s\S]*?)<\/script>/.exec(html)![1]) as { maps: { rows: number; cols: number; max: number; q: string }[] };
  const a00 = e.attention![0][0], mx = Math.max(...a00.flat());
  const m = data.maps.find((x) => x.rows === T && Math.abs(x.max - mx) < 1e-12 && Buffer.from(x.q, "base64")[0] === Math.round(255 * a00[0][0] / mx))!;
  assert.ok(m, "head 0 of layer 0 is embedded");
  const q = Buffer.from(m.q, "base64");
  assert.equal(q.length, T * T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) assert.ok(Math.abs(q[i * T + j] / 255 * mx - a00[i][j]) <= mx / 255);
});

test("HTML report of an image model: patch importance drawn over the image", async () => {
  const { model, target } = tinyImageTarget();
  const e = await runExplanation(target, model, { methods: ["rollout", "blankout"] });
  const html = renderHtmlReport(e, { title: "image <test>" });
  assert.match(html, /<title>image &lt;test&gt;<\/title>/);
  const drawn = runReportScript(html).filter((d) => d.cls === "overlay");
  assert.equal(drawn.length, 2, "one overlay per method");
  for (const d of drawn) {
    assert.equal(d.width, 4); assert.equal(d.height, 4);
    // pixels of the most important patch are tinted (differ from the gray image), gray pixels stay gray elsewhere
    assert.ok(d.pixels!.some((_, p) => p % 4 === 0 && (d.pixels![p] !== d.pixels![p + 1] || d.pixels![p] !== d.pixels![p + 2])));
  }
});

test("report helpers: base64, escaping, colour ramp", () => {
  for (const n of [0, 1, 2, 3, 4, 5, 255]) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 97 + 13) & 255);
    assert.equal(base64(b), Buffer.from(b).toString("base64"));
  }
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  assert.equal(rampColor(0), "rgb(20,24,56)");
  assert.equal(rampColor(1), "rgb(253,231,37)");
  assert.equal(rampColor(2), "rgb(253,231,37)");
});

test("terminal: token strip, patch grid and image overlay", () => {
  const strip = tokenStrip(["a", "bb", "c"], [0.1, 0.7, 0.2], { top: 2 });
  assert.equal(strip, "a bb[1] c[2]");
  assert.match(tokenStrip(["a", "bb"], [0, 1], { color: true }), /\x1b\[48;2;253;231;37m\x1b\[30mbb\x1b\[0m/);
  assert.equal(tokenStrip(["aaaa", "bbbb", "cccc"], [0, 0, 0], { width: 9 }), "aaaa bbbb\ncccc");
  const g = patchGrid([2, 3], [0, 0.25, 0.5, 0.75, 1, 0]);
  assert.equal(g, "   0 1 2\n0   ░░▒▒\n1 ▓▓██  ");
  assert.throws(() => patchGrid([2, 2], [1, 2, 3]), /3 values for a 2x2 grid/);
  const im = { width: 4, height: 4, channels: 1, pixels: new Float32Array(16).fill(1), patch: 2, grid: [2, 2] as [number, number] };
  const plain = imageOverlay(im, [1, 0, 0, 0.2]);
  assert.deepEqual(plain.split("\n"), ["██··", "····"]);
  const col = imageOverlay(im, [1, 0, 0, 0], { color: true });
  assert.equal(col.split("\n").length, 2);
  assert.equal((col.match(/▀/g) ?? []).length, 8);
});

test("report JSON type is plain data (JSON round trip is lossless)", async () => {
  const { model } = tinyModel();
  const e = await runExplanation(tinyTarget(model, ["cat", "sat"]), model, { methods: ["rollout"] });
  const back = JSON.parse(JSON.stringify(e)) as Explanation;
  assert.equal(renderHtmlReport(back), renderHtmlReport(e));
});

test("HTML report: the terminal view's unreliability warnings (near-uniform raw attention, saturated flow) are shown", async () => {
  const { model } = tinyModel();
  const e = await runExplanation(tinyTarget(model, ["the", "sat", "on", "the", "mat"]), model, { methods: ["raw", "flow"] });
  const L = e.layers, T = e.tokens.length;
  // the explained layer's raw attention made exactly uniform and its flow all tied: both warnings must appear
  const flat: Explanation = JSON.parse(JSON.stringify(e));
  flat.methods.raw!.perLayer[e.layer] = new Array(T).fill(1 / T);
  flat.methods.flow!.perLayer[e.layer] = new Array(T).fill(1 / T);
  const html = renderHtmlReport(flat);
  const warns = html.match(/<p class="warn unreliable" role="note">[^]*?<\/p>/g) ?? [];
  assert.equal(warns.length, 2, warns.join("\n"));
  assert.match(warns[0], /raw attention is near-uniform \(entropy 1\.000 of the maximum\)/);
  assert.match(warns[1], /flow is saturated: 100 % of the tokens share one value/);
  // a peaked explained layer: no warning
  const peaked: Explanation = JSON.parse(JSON.stringify(e));
  peaked.methods.raw!.perLayer[e.layer] = Array.from({ length: T }, (_, i) => (i === 1 ? 0.9 : 0.1 / (T - 1)));
  peaked.methods.flow!.perLayer[e.layer] = Array.from({ length: T }, (_, i) => (i + 1) / (T * (T + 1) / 2));
  assert.doesNotMatch(renderHtmlReport(peaked), /class="warn unreliable"/);
  assert.ok(L >= 1);
});
