// src/hf/tokenizer.ts in a real browser: headless Chromium imports it from dist/ (with an import map for
// @huggingface/tokenizers, as a page or bundler must provide), reads the committed BERT and T5-style tokenizer files
// over HTTP and encodes, pads and decodes. Importing it at all proves it has no Node-only imports. Skips when no
// Chromium is installed (browser-helpers.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";
import { hfTokFixtures } from "./helpers/hf-tokenizer-data.js";

const DIST = fileURLToPath(new URL("..", import.meta.url)); // dist/ (this file runs as dist/test/…)
const LIB = join(dirname(createRequire(import.meta.url).resolve("@huggingface/tokenizers")), ".."); // the package folder

const PAGE = `<!doctype html><meta charset="utf-8"><title>attnflow HF tokenizer check</title>
<script type="importmap">{"imports": {"@huggingface/tokenizers": "/lib/dist/tokenizers.mjs"}}</script>
<script type="module">
const out = {};
try {
  const { loadTokenizer } = await import("/src/hf/tokenizer.js");
  const get = (p) => fetch("/fixtures/" + p).then((r) => r.text());
  const bert = loadTokenizer(await get("bert/tokenizer.json"), await get("bert/tokenizer_config.json"));
  const t5 = loadTokenizer(await get("t5-unigram/tokenizer.json"), await get("t5-unigram/tokenizer_config.json"));
  const ref = JSON.parse(await get("bert/reference.json"));
  out.bertMismatches = ref.cases.filter((c) => JSON.stringify(bert.encode(c.text)) !== JSON.stringify(c.ids)).map((c) => c.text);
  out.bertCases = ref.cases.length;
  out.batch = bert.encodeBatch(ref.batch.texts).inputIds;
  out.expectedBatch = ref.batch.input_ids;
  out.t5 = t5.encode("the cats");
  out.t5Decoded = t5.decode(out.t5, { skipSpecialTokens: true });
} catch (e) {
  out.error = String(e && e.stack || e);
}
await fetch("/__result", { method: "POST", body: JSON.stringify(out) });
</script>`;

interface PageResult { bertMismatches?: string[]; bertCases?: number; batch?: number[][]; expectedBatch?: number[][]; t5?: number[]; t5Decoded?: string; error?: string }

test("browser: the HF tokenizer module loads in Chromium and tokenizes like transformers' BertTokenizer", { skip, timeout: 120_000 }, async () => {
  const r = await pageReport<PageResult>({
    index: join(DIST, "src", "hf", "tokenizer.js"),
    mounts: { "/src/": join(DIST, "src"), "/lib/": LIB, "/fixtures/": hfTokFixtures() },
    pathAndQuery: "/check.html", timeoutMs: 90_000,
    handle: (req, res) => {
      if (req.url !== "/check.html") return false;
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(PAGE);
      return true;
    },
  });
  assert.equal(r.error, undefined, r.error);
  assert.ok(r.bertCases! >= 60);
  assert.deepEqual(r.bertMismatches, []);
  assert.deepEqual(r.batch, r.expectedBatch);
  assert.deepEqual(r.t5, [4, 14, 15, 1]);
  assert.equal(r.t5Decoded, "the cats");
});
