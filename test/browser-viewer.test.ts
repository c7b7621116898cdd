// The attention viewer (src/viz/attention-viewer.ts) in headless Chromium, driven over the DevTools protocol like a
// user (mouse moves and clicks at screen coordinates), at 390 px and 1920 px: the encoder–decoder's three stacks, the
// head view's lines against the captured weights, hover and pinned focus, model-view thumbnails that open a head, the
// neuron view's softmax(scale·q·k) against the recorded attention, the flow graph, no sideways scrolling, and no long
// task (> 100 ms) on the main thread after load — also with 2,048 positions (a long-task observer, read beside a trace
// of the main thread's CPU time per task: see assertResponsive). Full-page screenshots go to
// $ATTNFLOW_SHOTS (default: a temporary folder, removed). Node-side checks of the views data run without Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkpointFromBytes, trainedModel } from "../src/io/checkpoint-bytes.js";
import { task as datesTask } from "../src/tasks/dates.js";
import { runExplanation, type Explanation } from "../src/explain/explain-run.js";
import { explanationViews, flowGraph, viewsFromStack, type AttentionViews } from "../src/explain/views.js";
import { renderHtmlReport } from "../src/viz/html-report.js";
import { startWebServer } from "../src/node/web-server.js";
import { skipWithoutChromium as skip } from "./browser-helpers.js";
import { explainCommand } from "../cli/explain.js";
import { assertResponsive, openCdpPage, type CdpPage } from "./browser-cdp.js";
import { qkSoftmaxError } from "./explain-helpers.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SHOTS = process.env.ATTNFLOW_SHOTS;

async function datesExplained(): Promise<{ e: Explanation; views: AttentionViews; decoder: string[] }> {
  const raw = checkpointFromBytes(new Uint8Array(readFileSync(join(ROOT, "models", "dates.safetensors"))), "dates");
  const { model, config } = trainedModel(raw, raw.task, (c) => datesTask.modelFromConfig(c));
  model.eval();
  const t = datesTask.explain!(model, config, { text: "March 5th, 2021" }, "6");
  const e = await runExplanation(t, model, { methods: ["raw", "rollout", "flow"] });
  return { e, views: explanationViews(e, t, model, { maxPositions: 12 }), decoder: t.decoderTokens! };
}

test("views: the dates translator's encoder self-, decoder self- and cross-attention with their token labels", async () => {
  const { e, views, decoder } = await datesExplained();
  const titles = views.groups.map((g) => g.title);
  assert.deepEqual(titles.slice(0, 3), ["encoder self-attention", "decoder self-attention (causal)", "cross-attention (decoder → encoder)"]);
  assert.equal(views.explained, 0, "the explanation's stack is the encoder's");
  const [enc, dself, cross] = views.groups;
  assert.deepEqual(enc.rowTokens, e.tokens);
  assert.deepEqual(dself.rowTokens, decoder);
  assert.equal(decoder[0], "<s>");
  assert.deepEqual(cross.rowTokens, decoder);
  assert.deepEqual(cross.colTokens, e.tokens);
  // every key kept for these short rows, and the kept weights are the captured ones (16-bit)
  const idx = new Uint16Array(new Uint8Array(Buffer.from(enc.topIdx, "base64")).buffer), val = new Uint16Array(new Uint8Array(Buffer.from(enc.topVal, "base64")).buffer);
  const T = e.tokens.length;
  assert.equal(enc.k, T);
  for (let l = 0; l < e.layers; l++) for (let h = 0; h < e.heads; h++) for (let i = 0; i < T; i++) for (let t = 0; t < T; t++) {
    const o = ((l * e.heads + h) * T + i) * T + t;
    assert.ok(Math.abs(val[o] / 65535 - e.attention![l][h][i][idx[o]]) < 1e-4);
    if (t) assert.ok(val[o] <= val[o - 1], "kept keys by falling weight");
  }
  // the rollout and flow matrices ride along as one-head stacks
  assert.ok(titles.some((x) => x.startsWith("attention rollout")) && titles.some((x) => x.startsWith("attention flow")));
});

test("views: q and k recorded by the capture give back the recorded attention (softmax of scale·q·k)", async () => {
  const { views } = await datesExplained();
  for (const g of views.groups.slice(0, 3)) {
    assert.ok(g.qk, `${g.title}: ${g.qkNote}`);
    const worst = qkSoftmaxError(g);
    assert.ok(worst < 1e-4, `${g.title}: softmax(scale·q·k) vs recorded attention differ by ${worst}`);
  }
});

test("views: the flow graph's input column is the explanation's attention-flow importance", async () => {
  const { e } = await datesExplained();
  const fg = flowGraph(e)!;
  assert.equal(fg.nodes.length, e.layers + 1);
  const want = e.methods.flow!.importance;   // readout-weighted flow to the inputs (no special positions here)
  assert.deepEqual(e.special, []);
  fg.nodes[0].forEach((v, j) => assert.ok(Math.abs(v - want[j]) < 1e-4, `input ${j}: graph ${v} vs flow ${want[j]}`));
  // the top column is the readout itself
  const ro = e.readout!, s = ro.reduce((a, b) => a + b, 0);
  fg.nodes[e.layers].forEach((v, j) => assert.ok(Math.abs(v - ro[j] / s) < 1e-4));
  for (const [l, , , w] of fg.edges) { assert.ok(l >= 0 && l < e.layers); assert.ok(w > 0); }
});

test("views: long inputs keep the top-k keys per row and say how much attention they hold", () => {
  const T = 300, L = 1, H = 2, data = new Float32Array(L * H * T * T);
  for (let r = 0; r < L * H * T; r++) for (let j = 0; j < T; j++) data[r * T + j] = j === r % T ? 0.5 : 0.5 / (T - 1);
  const v = viewsFromStack({ data, layers: L, heads: H, tokens: T }, Array.from({ length: T }, (_, i) => `t${i}`), { topK: 8 });
  const g = v.groups[0];
  assert.equal(g.exact, false);
  assert.equal(g.k, 8);
  const idx = new Uint16Array(new Uint8Array(Buffer.from(g.topIdx, "base64")).buffer);
  for (let i = 0; i < T; i++) assert.equal(idx[i * 8], i, "the diagonal (largest) first");
  const want = 0.5 + 7 * 0.5 / (T - 1);
  assert.ok(Math.abs(g.coverage[0][0] - want) < 1e-3, `coverage ${g.coverage[0][0]} vs ${want}`);
  assert.equal(g.thumb.rows, 64);
  assert.throws(() => viewsFromStack({ data, layers: L, heads: H, tokens: T }, ["a"]), /1×1 labels for a 300×300 attention/);
});

// ---------------------------------------------------------------------------------------------------- browser
interface Box { x: number; y: number; w: number; h: number }
const box = (p: CdpPage, sel: string) => p.eval<Box>(`(() => { const r = document.querySelector(${JSON.stringify(sel)}).getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; })()`);
const ds = (p: CdpPage) => p.eval<Record<string, string>>("Object.assign({}, document.querySelector('.afv').dataset)");
/** Scrolls `sel` into the window's view and returns its box. */
async function reveal(p: CdpPage, sel: string): Promise<Box> {
  await p.eval(`document.querySelector(${JSON.stringify(sel)}).scrollIntoView({block: "center"})`);
  await p.eval("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
  return box(p, sel);
}
async function clickOn(p: CdpPage, sel: string): Promise<void> {
  const b = await reveal(p, sel);
  await p.click(b.x + b.w / 2, b.y + b.h / 2);
  await p.eval("new Promise((r) => setTimeout(r, 50))");
  await p.waitFor("document.querySelector('.afv').dataset.ready === '1' && new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))");
}
/** The long tasks since the last call (and clears them). */
const longTasks = (p: CdpPage) => p.eval<number[]>("(() => { const t = window.__longtasks.slice(); window.__longtasks.length = 0; return t; })()");

async function withReport(html: string, width: number, fn: (p: CdpPage, shot: (name: string) => Promise<void>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-viewer-"));
  writeFileSync(join(dir, "report.html"), html);
  const { url, close } = await startWebServer({ mounts: { "/": dir } });
  const p = await openCdpPage(url + "report.html", width);
  const shots = SHOTS ?? join(dir, "shots");
  mkdirSync(shots, { recursive: true });
  try {
    await p.waitFor("document.querySelector('.afv') && document.querySelector('.afv').dataset.ready === '1'", 60_000);
    assert.equal((await ds(p)).error, undefined);
    assert.notEqual(await p.eval("window.__longtasks"), null, "this Chromium reports long tasks");
    // screenshots make long tasks of their own: the list is read before, and cleared after, each one
    // from here on: loading the page (parsing a multi-MB file) is the browser's, the rest is the viewer's
    await p.eval("new Promise((r) => setTimeout(r, 300))");
    await longTasks(p);
    let before: number[] = [], traced: { wall: number; cpu: number }[] = [], tr = await p.trace();
    await fn(p, async (name) => {
      before = before.concat(await longTasks(p));
      traced = traced.concat(await tr.stop());
      await p.screenshot(join(shots, `${name}-${width}.png`));
      await p.eval("new Promise((r) => setTimeout(r, 300))");   // the observer reports the screenshot's own tasks late
      await longTasks(p);
      tr = await p.trace();
    });
    const all = before.concat(await longTasks(p));
    assertResponsive(all, traced.concat(await tr.stop()), `the viewer at ${width} px`);
  } catch (e) {
    (e as Error).message += `\n${p.log().slice(-2000)}`;
    throw e;
  } finally {
    p.close(); close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const width of [390, 1920]) {
  test(`browser: the report's viewer on the dates translator at ${width} px (head, model, neuron, flow; three stacks)`, { skip, timeout: 180_000 }, async () => {
    const { e, views } = await datesExplained();
    const html = renderHtmlReport(e, { title: "dates: March 5th, 2021", views });
    await withReport(html, width, async (p, shot) => {
      const layout = await p.eval<{ sw: number; iw: number }>("({ sw: document.documentElement.scrollWidth, iw: innerWidth })");
      assert.ok(layout.sw <= layout.iw, `the report scrolls sideways at ${width} px: ${JSON.stringify(layout)}`);
      const options = await p.eval<string[]>("Array.from(document.querySelectorAll('.afv select[aria-label=\"attention stack\"] option'), (o) => o.textContent)");
      assert.equal(options.length, views.groups.length);
      assert.match(options[2], /^cross-attention \(decoder → encoder\) · 2×4/);
      let d = await ds(p);
      assert.equal(d.view, "head");
      assert.equal(d.heads, "0,1,2,3");
      // every (query, key, head) line of layer 0 with weight ≥ 0.004 is drawn
      const T = e.tokens.length, count = (rows: number[], l: number, att = e.attention!) =>
        rows.reduce((s, i) => s + att[l].reduce((a, h) => a + h[i].filter((x) => x >= 0.004 + 1e-6).length, 0), 0);
      const all = count([...Array(T).keys()], 0);
      assert.ok(Math.abs(+d.lines - all) <= 2, `lines ${d.lines} vs ${all}`);
      await shot("dates-head");
      // hover query 1 ("5th"): only its lines
      const c = await reveal(p, "[data-role=head-canvas]"), R = +(await ds(p)).rowHeight;
      assert.equal(R, 24, "short inputs get taller rows");
      await p.move(c.x + 20, c.y + 4 + R * 1 + R / 2);
      await p.eval("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
      d = await ds(p);
      assert.equal(d.focus, "1"); assert.equal(d.focusSide, "q"); assert.equal(d.pinned, "0");
      assert.ok(Math.abs(+d.lines - count([1], 0)) <= 1, `focused lines ${d.lines} vs ${count([1], 0)}`);
      // click pins it: moving away keeps the focus
      await p.click(c.x + 20, c.y + 4 + R * 1 + R / 2);
      await p.move(c.x + 20, c.y + 4 + R * 3 + R / 2);
      d = await ds(p);
      assert.equal(d.pinned, "1"); assert.equal(d.focus, "1");
      await shot("dates-head-focus");
      // the cross-attention stack: rows are the decoder's positions
      await p.eval("(() => { const s = document.querySelector('.afv select[aria-label=\"attention stack\"]'); s.value = '2'; s.dispatchEvent(new Event('change')); })()");
      await p.waitFor("document.querySelector('.afv').dataset.group === '2'");
      d = await ds(p);
      const crossRows = views.groups[2].rowTokens.length, crossAtt = views.groups[2];
      assert.equal(d.focus, "-1");
      assert.ok(+d.lines > 0 && +d.lines <= crossRows * crossAtt.heads * T, `cross lines ${d.lines}`);
      await shot("dates-cross");
      // model view: L × H labelled thumbnails; a click opens that head
      await clickOn(p, ".afv button[data-view=model]");
      await p.waitFor(`document.querySelector('.afv').dataset.thumbs === '${crossAtt.layers * crossAtt.heads}'`);
      const caps = await p.eval<string[]>("Array.from(document.querySelectorAll('.afv figure figcaption'), (f) => f.textContent)");
      assert.deepEqual(caps, ["L0 H0", "L0 H1", "L0 H2", "L0 H3", "L1 H0", "L1 H1", "L1 H2", "L1 H3"]);
      await shot("dates-model");
      await clickOn(p, ".afv figure[data-layer='1'][data-head='2']");
      d = await ds(p);
      assert.equal(d.view, "head"); assert.equal(d.layer, "1"); assert.equal(d.heads, "2"); assert.equal(d.group, "2");
      // neuron view of the encoder: softmax(scale·q·k) is the recorded row
      await p.eval("(() => { const s = document.querySelector('.afv select[aria-label=\"attention stack\"]'); s.value = '0'; s.dispatchEvent(new Event('change')); })()");
      await clickOn(p, ".afv button[data-view=neuron]");
      d = await ds(p);
      assert.equal(d.view, "neuron");
      assert.ok(+d.neuronGap < 1e-3, `neuron view: softmax(scale·q·k) vs recorded attention ${d.neuronGap}`);
      await shot("dates-neuron");
      // flow graph
      await clickOn(p, ".afv button[data-view=flow]");
      d = await ds(p);
      assert.equal(d.view, "flow");
      assert.equal(+d.flowEdges, views.flow!.edges.length);
      assert.ok(views.flow!.edges.length > 0);
      await shot("dates-flow");
      const after = await p.eval<{ sw: number; iw: number }>("({ sw: document.documentElement.scrollWidth, iw: innerWidth })");
      assert.ok(after.sw <= after.iw, `sideways scrolling after the views at ${width} px: ${JSON.stringify(after)}`);
    });
  });
}

test("browser: 2,048 positions stay responsive (virtualised head view, top-k, thumbnails), no long task", { skip, timeout: 180_000 }, async () => {
  const T = 2048, L = 4, H = 4, data = new Float32Array(L * H * T * T);
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let r = 0; r < L * H * T; r++) {
    const i = r % T, o = r * T;
    let s = 0;
    for (let j = 0; j < T; j++) { const x = Math.exp(-Math.abs(i - j) / 3) * rnd() + (j === 0 ? 1 : 0) + 0.001 * rnd(); data[o + j] = x; s += x; }
    for (let j = 0; j < T; j++) data[o + j] /= s;
  }
  const tokens = Array.from({ length: T }, (_, i) => `${["the", "cat", "sat", "on", "a", "mat"][i % 6]}${i}`);
  const views = viewsFromStack({ data, layers: L, heads: H, tokens: T }, tokens, { maxPositions: 4096 });
  const e = { format: "attnflow-explanation", version: 1, tokens, special: [], query: 0, target: { label: "synthetic", index: 0, score: 0 },
    layers: L, heads: H, layerNames: [], causal: false, layer: L - 1, head: null, methods: {}, timings: {} } as Explanation;
  await withReport(renderHtmlReport(e, { title: "2,048 positions", views }), 390, async (p, shot) => {
    const note = await p.eval<string>("document.querySelector('.afv').textContent");
    assert.match(note, /This model reads at most 4096 positions/);
    assert.match(note, /The top 16 of 2048 keys of each query/);
    let d = await ds(p);
    // only the rows in view are drawn: ~40 rows × 4 heads × ≤ 16 keys
    assert.ok(+d.lines > 0 && +d.lines <= 42 * H * 16, `lines ${d.lines}`);
    await p.eval("(() => { const s = document.querySelector('[data-role=head-scroller]'); s.scrollTop = 1500 * 16; })()");
    await p.waitFor("document.querySelector('.afv').dataset.visibleRows.startsWith('149')");
    d = await ds(p);
    const [a, b] = d.visibleRows.split("-").map(Number);
    assert.ok(a <= 1500 && b >= 1520 && b - a < 50, d.visibleRows);
    const c = await reveal(p, "[data-role=head-canvas]");
    await p.move(c.x + 20, c.y + 100);
    await p.eval("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
    d = await ds(p);
    assert.ok(+d.focus >= 1500 && +d.focus < 1530, `hovered row ${d.focus}`);
    assert.ok(+d.lines <= H * 16);
    assert.ok(+d.offscreen >= 1, "the attention sink at position 0, scrolled out of view, is named at the edge");
    await shot("long-head");
    await clickOn(p, ".afv button[data-view=model]");
    await p.waitFor(`document.querySelector('.afv').dataset.thumbs === '${L * H}'`);
    await shot("long-model");
    await clickOn(p, ".afv button[data-view=neuron]");
    assert.match(await p.eval<string>("document.querySelector('.afv').textContent"), /No neuron view for this stack: no queries and keys/);
  });
});

test("browser: `attnflow web`'s page works in a Web Worker — progress, no long task, a 2,100-character prompt cut with a notice, Cancel", { skip, timeout: 300_000 }, async () => {
  const { url, close } = await startWebServer({
    index: join(ROOT, "examples", "browser", "explain.html"),
    mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models") },
  });
  const p = await openCdpPage(`${url}?model=/models/char-lm.safetensors`, 390);
  const shots = SHOTS ?? mkdtempSync(join(tmpdir(), "attnflow-page-shots-"));
  try {
    await p.waitFor("document.getElementById('run') && !document.getElementById('run').disabled", 120_000);
    assert.match(await p.eval<string>("document.getElementById('limit').textContent"), /This model reads at most 128 tokens/);
    const prompt = "The cat sat on the mat and looked at the dog. ".repeat(47).slice(0, 2100);
    await p.eval(`document.getElementById('text').value = ${JSON.stringify(prompt)}`);
    // watch the status line: progress must show while the worker runs
    await p.eval("window.__statuses = []; new MutationObserver(() => window.__statuses.push(document.getElementById('status').textContent)).observe(document.getElementById('status'), { childList: true, characterData: true, subtree: true })");
    await p.eval("new Promise((r) => setTimeout(r, 300))");
    await longTasks(p);   // loading the page's modules is the browser's; from the click on, the main thread is ours
    const tr = await p.trace();
    await clickOnPage(p, "#run");
    await p.waitFor("/^explained in/.test(document.getElementById('status').textContent) || document.getElementById('error').textContent", 240_000);
    assert.equal(await p.eval("document.getElementById('error').textContent"), "");
    const statuses = await p.eval<string[]>("window.__statuses");
    assert.ok(statuses.some((s) => /^explaining: (flow|blankout|predicting)/.test(s)), `no progress shown: ${statuses.slice(0, 5).join(" | ")}`);
    assert.match(await p.eval<string>("document.getElementById('notice').textContent"), /Input truncated: 2100 tokens, the model reads at most 128; 1972 tokens were dropped from the start/);
    await p.waitFor("(() => { const d = document.getElementById('report').contentDocument; return d && d.querySelector('.afv') && d.querySelector('.afv').dataset.ready === '1'; })()", 30_000);
    assert.match(await p.eval<string>("document.getElementById('report').contentDocument.querySelector('.afv select[aria-label=\"attention stack\"]').textContent"), /self-attention \(causal\)/);
    await p.eval("new Promise((r) => setTimeout(r, 300))");
    assertResponsive(await longTasks(p), await tr.stop(), "the page while its worker explains");
    await p.screenshot(join(shots, "page-char-lm-390.png"));
    // Cancel: the worker stops at once, a fresh one loads the model again, the page is ready for the next run
    await clickOnPage(p, "#run");
    await p.waitFor("!document.getElementById('cancel').hidden", 10_000);
    await clickOnPage(p, "#cancel");
    await p.waitFor("/^cancelled/.test(document.getElementById('status').textContent)", 60_000);
    assert.equal(await p.eval("document.getElementById('run').disabled"), false);
    assert.equal(await p.eval("document.getElementById('cancel').hidden"), true);
    assert.equal(await p.eval("document.getElementById('error').textContent"), "cancelled");
  } catch (e) {
    (e as Error).message += `\n${p.log().slice(-2000)}`;
    throw e;
  } finally {
    p.close(); close();
    if (!SHOTS) rmSync(shots, { recursive: true, force: true });
  }
});

async function clickOnPage(p: CdpPage, sel: string): Promise<void> {
  const b = await reveal(p, sel);
  await p.click(b.x + b.w / 2, b.y + b.h / 2);
}

test("report with the viewer: one self-contained file (no external URL, no script src), token text escaped", async () => {
  const { e, views } = await datesExplained();
  const tokens = ["</script><b>x", "a&b", "\u2028"], T = 3;
  const data = new Float32Array(T * T).fill(1 / T);
  const hostile = viewsFromStack({ data, layers: 1, heads: 1, tokens: T }, tokens);
  for (const html of [renderHtmlReport(e, { views }), renderHtmlReport({ ...e, tokens: [...e.tokens.slice(0, 1), ...tokens].slice(0, e.tokens.length) }, { views: hostile })]) {
    assert.doesNotMatch(html, /<script[^>]+src=/i);
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i);
    assert.doesNotMatch(html, /@import|url\(/i);
    assert.equal((html.match(/<\/script>/g) ?? []).length, (html.match(/<script/g) ?? []).length, "no token closes a script early");
  }
});

test("explain --html: the report carries the viewer with the translator's three stacks and the flow graph", async () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-report-"));
  try {
    const out = join(dir, "r.html"), err: string[] = [];
    const code = await explainCommand({ _: ["explain"], flags: { model: join(ROOT, "models", "dates.safetensors"), text: "March 5th, 2021", target: "6", method: "rollout,flow", html: out } },
      { out: () => undefined, err: (x) => err.push(x) });
    assert.equal(code, 0, err.join("\n"));
    const html = readFileSync(out, "utf8");
    assert.match(html, /<div id="attnflow-viewer" class="afv"><\/div>/);
    const v = JSON.parse(/<script type="application\/json" id="attnflow-views">(.*?)<\/script>/s.exec(html)![1]) as AttentionViews;
    assert.deepEqual(v.groups.slice(0, 3).map((g) => g.title), ["encoder self-attention", "decoder self-attention (causal)", "cross-attention (decoder → encoder)"]);
    assert.equal(v.maxPositions, 12);
    assert.ok(v.flow && v.flow.edges.length > 0);
    assert.ok(v.groups.slice(0, 3).every((g) => g.qk), "q/k for the neuron view");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
