// The HTML explanation report in a real browser: headless Chromium opens a text and an image report from disk
// (file://, no server: the report is self-contained) and the report's own script marks <body data-drawn="N"> after
// drawing N canvases — every canvas in the page, with no script error. Skips without Chromium (browser-helpers.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { runExplanation } from "../src/explain/explain-run.js";
import { renderHtmlReport } from "../src/viz/html-report.js";
import { renderPruneReport } from "../src/viz/prune-report.js";
import { launchChromium, skipWithoutChromium as skip } from "./browser-helpers.js";
import { tinyImageTarget, tinyModel, tinyTarget } from "./explain-tiny-task.js";

async function openInChromium(html: string): Promise<{ dom: string; log: string }> {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-report-"));
  const file = join(dir, "report.html");
  writeFileSync(file, html);
  const browser = launchChromium(pathToFileURL(file).href, ["--dump-dom", "--enable-logging=stderr", "--v=0"]);
  const timer = setTimeout(() => browser.stop(), 60_000);
  try {
    const code = await browser.exited;
    assert.equal(code, 0, `Chromium failed:\n${browser.stderr().slice(-2000)}`);
    return { dom: browser.stdout(), log: browser.stderr() };
  } finally {
    clearTimeout(timer);
    browser.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkDrawn(html: string, r: { dom: string; log: string }, what: string): void {
  const canvases = html.match(/<canvas class="(heatmap|overlay)"/g)?.length ?? 0;
  assert.ok(canvases > 0, `${what}: the report has canvases`);
  assert.doesNotMatch(r.log, /Uncaught/, `${what}: script error in the browser`);
  const drawn = /<body[^>]*data-drawn="(\d+)"/.exec(r.dom);
  assert.ok(drawn, `${what}: the report's script did not finish (no data-drawn on <body>)`);
  assert.equal(Number(drawn[1]), canvases, `${what}: canvases drawn`);
}

test("browser: HTML reports (text and image) draw every canvas in Chromium without script errors", { skip, timeout: 120_000 }, async () => {
  const { model } = tinyModel();
  const text = renderHtmlReport(await runExplanation(tinyTarget(model, ["the", "<b>", "sat", "on", "the", "mat"]), model,
    { methods: ["raw", "rollout", "flow", "grad", "blankout", "inputgrad"] }));
  checkDrawn(text, await openInChromium(text), "text report");
  const img = tinyImageTarget();
  const image = renderHtmlReport(await runExplanation(img.target, img.model, { methods: ["rollout", "blankout"] }));
  checkDrawn(image, await openInChromium(image), "image report");
});

test("browser: the head-pruning report (attnflow prune --html) draws every model's accuracy-vs-heads-pruned plot without script errors", { skip, timeout: 120_000 }, async () => {
  const pts = (vals: number[]) => vals.map((value, i) => ({ fraction: [0, 0.1, 0.25, 0.5, 0.75][i], pruned: i, value }));
  const html = renderPruneReport([
    { label: "a </script> model", heads: 16, metric: "accuracy", curves: { gradient: pts([0.74, 0.75, 0.73, 0.72, 0.66]), random: pts([0.74, 0.73, 0.73, 0.7, 0.68]) },
      scores: { method: "gradient", values: [[0.1, 0.9], [0.5, 0.2]] }, pruned: { 0: [0] }, speed: [{ fraction: 0.5, heads: 8, ms: 20, msBaseline: 25 }] },
    { label: "one point", heads: 4, metric: "accuracy", curves: { spec: [{ fraction: 0, pruned: 0, value: 0.5 }, { fraction: 0.25, pruned: 1, value: 0.5 }] } },
  ]);
  const canvases = html.match(/<canvas class="curve"/g)?.length ?? 0;
  assert.equal(canvases, 2);
  const r = await openInChromium(html);
  assert.doesNotMatch(r.log, /Uncaught/, "script error in the browser");
  const drawn = /<body[^>]*data-drawn="(\d+)"/.exec(r.dom);
  assert.ok(drawn, "the report's script did not finish (no data-drawn on <body>)");
  assert.equal(Number(drawn[1]), canvases);
  // the label is escaped in the page and inside the embedded data
  assert.doesNotMatch(html.slice(0, html.indexOf("<script")), /a <\/script> model/);
});
