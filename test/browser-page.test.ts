// The in-browser explainer's page (examples/browser/explain.html) as a user sees it: words with apostrophes shown as
// typed (not %27), each unknown word listed once, a truncated input announced with the number of dropped tokens,
// nothing scrolling sideways on a 390 px phone screen (page and report), and the brief's sentence as the default
// text — the same one `attnflow demo` and `demo --untrained` use. Browser parts skip without Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BRIEF_SENTENCE } from "../src/brief.js";
import { predictText, textClassifierFromCheckpoint } from "../src/tasks/fortunes-classifier-model.js";
import { runUntrainedDemo } from "../cli/demo.js";
import { runTrainedDemo } from "../cli/demo-trained.js";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));   // dist/test/ → package root
const MODEL = join(ROOT, "models", "fortunes-classifier.safetensors");

interface Summary {
  error?: string; input?: string; predictionText?: string; notice?: string; tokens?: string[];
  truncation?: { total: number; kept: number; dropped: number; from: string };
  layout?: { innerWidth: number; scrollWidth: number; reportWidth: number; reportScrollWidth: number };
}

function openPage(query: string, width: number): Promise<Summary> {
  return pageReport<Summary>({
    index: join(ROOT, "examples", "browser", "explain.html"),
    mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models") },
    pathAndQuery: `/?${query}&autorun=1&report=/__result`,
    browserArgs: [`--window-size=${width},900`],
  });
}

test("predict lists each word outside the vocabulary once", () => {
  const { model, config } = textClassifierFromCheckpoint(new Uint8Array(readFileSync(MODEL)));
  const p = predictText(model, config, "zyxw's qqq zyxw's qqq blorf zyxw's");
  assert.deepEqual(p.details!.unknownWords, ["zyxw's", "qqq", "blorf"]);
});

test("the brief's sentence is the same in demo, demo --untrained and the page", async () => {
  assert.match(runUntrainedDemo({ dModel: 16 }), new RegExp(`on: "${BRIEF_SENTENCE.replace(/\./g, "\\.")}"`));
  // the trained demo on the shipped classifier only (a folder without the ViT keeps it short)
  const dir = mkdtempSync(join(tmpdir(), "attnflow-demo-"));
  try {
    copyFileSync(MODEL, join(dir, "fortunes-classifier.safetensors"));
    const out: string[] = [];
    assert.equal(await runTrainedDemo({ dir, out: (s) => out.push(s) }), true);
    assert.ok(out.includes(`  "${BRIEF_SENTENCE}"`), out.slice(0, 4).join("\n"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const html = readFileSync(join(ROOT, "examples", "browser", "explain-page.ts"), "utf8");
  assert.match(html, /import \{ BRIEF_SENTENCE \} from "..\/..\/src\/brief.js"/);
});

test("browser: the page's default text is the brief's sentence; no sideways scrolling at 1920 px", { skip, timeout: 180_000 }, async () => {
  const page = await openPage("", 1920);
  assert.equal(page.error, undefined, page.error);
  assert.equal(page.input, BRIEF_SENTENCE);
  assert.equal(page.notice, "");
  assert.ok(page.layout!.scrollWidth <= page.layout!.innerWidth, JSON.stringify(page.layout));
});

test("browser: apostrophes as typed, unknown words once, truncation announced, usable at 390 px", { skip, timeout: 180_000 }, async () => {
  const text = "Zyxw's blorf " + "the cat sat on the mat . ".repeat(30) + "Zyxw's blorf qqq's";
  const page = await openPage(`text=${encodeURIComponent(text)}`, 390);
  assert.equal(page.error, undefined, page.error);
  const unk = /Words outside the vocabulary \(read as \[UNK\]\): (.*)$/.exec(page.predictionText!)?.[1];
  const { model, config } = textClassifierFromCheckpoint(new Uint8Array(readFileSync(MODEL)));
  const want = predictText(model, config, text).details!.unknownWords as string[];
  assert.deepEqual(unk?.split(", "), want);
  assert.deepEqual(want.slice(0, 2), ["zyxw's", "blorf"]);
  assert.equal(want.length, new Set(want).size);
  assert.doesNotMatch(page.predictionText!, /%27/);
  // [CLS] + 2 + 7·30 + 3 word tokens, 128 kept
  assert.deepEqual(page.truncation, { total: 216, kept: 128, dropped: 88, from: "end" });
  assert.match(page.notice!, /Input truncated: 216 tokens, the model reads at most 128; 88 tokens were dropped from the end/);
  const l = page.layout!;
  assert.ok(l.innerWidth <= 400, `a phone-sized window: ${JSON.stringify(l)}`);
  assert.ok(l.scrollWidth <= l.innerWidth, `the page scrolls sideways at ${l.innerWidth} px: ${JSON.stringify(l)}`);
  assert.ok(l.reportScrollWidth <= l.reportWidth, `the report scrolls sideways at ${l.innerWidth} px: ${JSON.stringify(l)}`);
});
