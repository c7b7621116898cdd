// The page (examples/browser/explain.html, as `attnflow web` serves it) reading a Hugging Face folder in headless
// Chromium: a progress bar with the weight bytes read, the rate and the time left while the worker reads the folder;
// Cancel during the read stops it and brings back the model loaded before; a text longer than the model reads is cut
// to its limit with a visible notice of how many tokens were dropped. Skips without Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/node.js";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";
import { PAGE_IMPORT_MAP, pageLibMounts } from "../cli/web.js";
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import type { HFTokenizer } from "../src/hf/tokenizer.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "attnflow-hf-load-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "##s", "and", ".", "big", "red", "hat"];
const LONG = "the big red dog ran far and the cat sat on a mat . ".repeat(8);
function folder(name: string, fixture: string): string[] {
  const to = join(dir, name);
  cpSync(join(ROOT, "test", "fixtures", "hf", fixture), to, { recursive: true });
  rmSync(join(to, "reference.safetensors"));
  const tj = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "hf-tokenizer", "bert", "tokenizer.json"), "utf8"));
  tj.model.vocab = Object.fromEntries(WORDS.map((w, i) => [w, i]));
  writeFileSync(join(to, "tokenizer.json"), JSON.stringify(tj));
  return readdirSync(to);
}

const HARNESS = `<script type="module">
const $ = (id) => document.getElementById(id);
const wait = async (f, what, ms = 90000) => { const t0 = performance.now(); while (!f()) { if (performance.now() - t0 > ms) throw new Error("timed out waiting for " + what + "; status: " + $("status").textContent + "; error: " + $("error").textContent); await new Promise((r) => setTimeout(r, 20)); } };
const out = { statuses: [], bars: [] };
try {
  await wait(() => document.body.dataset.done === "1", "the page");
  // every status line while reading, with the progress bar's value / max at that moment
  new MutationObserver(() => {
    const t = $("status").textContent;
    out.statuses.push(t);
    if (/^reading .* MB of weights/.test(t)) out.bars.push({ text: t, value: $("progress").value, max: $("progress").max, hidden: $("progress").hidden, cancel: !$("cancel").hidden });
  }).observe($("status"), { childList: true, characterData: true, subtree: true });
  const list = await (await fetch("/fixture-list.json")).json();
  const files = async (name) => Promise.all(list[name].map(async (f) => new File([await (await fetch("/fx/" + name + "/" + f)).arrayBuffer()], f)));
  const pick = async (name) => {
    const dt = new DataTransfer();
    for (const f of await files(name)) dt.items.add(f);
    const input = $("hf-folder");
    input.files = dt.files;
    input.dispatchEvent(new Event("change"));
  };
  await pick("bert");
  await wait(() => /Hugging Face folder read in this tab/.test($("status").textContent), "bert loaded");
  out.limit = $("limit").textContent;
  // a text longer than the model reads
  $("text").value = ${JSON.stringify(LONG)};
  $("run").click();
  await wait(() => /explained in/.test($("status").textContent) || $("error").textContent, "the long text explained");
  out.long = { error: $("error").textContent, notice: $("notice").textContent, prediction: $("prediction").textContent };
  // Cancel while another folder is being read: the read stops, the BERT folder comes back and still explains
  out.statuses.length = 0;
  await pick("gpt2");
  const cancelShown = !$("cancel").hidden;
  $("cancel").click();
  await wait(() => /^cancelled reading picked files/.test($("status").textContent), "the cancelled read");
  await wait(() => !$("run").disabled, "the model loaded before");
  $("error").textContent = "";
  $("text").value = "the red dog ran far";
  $("run").click();
  await wait(() => /explained in/.test($("status").textContent) || $("error").textContent, "bert after Cancel");
  out.cancel = { cancelShown, statuses: out.statuses.slice(), error: $("error").textContent, prediction: $("prediction").textContent, name: $("status").textContent };
} catch (e) {
  out.error = String(e && e.stack || e);
}
await fetch("/__result", { method: "POST", body: JSON.stringify(out) });
</script>`;

interface Bar { text: string; value: number; max: number; hidden: boolean; cancel: boolean }
interface PageResult {
  error?: string; statuses: string[]; bars: Bar[]; limit: string;
  long: { error: string; notice: string; prediction: string };
  cancel: { cancelShown: boolean; statuses: string[]; error: string; prediction: string; name: string };
}

test("browser: reading an HF folder shows bytes, rate and time left on a progress bar; Cancel stops the read; long text is cut with a notice", { skip, timeout: 240_000 }, async () => {
  const list = { bert: folder("bert", "bert-seqcls"), gpt2: folder("gpt2", "gpt2") };
  const page = readFileSync(join(ROOT, "examples", "browser", "explain.html"), "utf8").replace("</body>", `${HARNESS}\n</body>`);
  const r = await pageReport<PageResult>({
    index: join(ROOT, "examples", "browser", "explain.html"),
    mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models"), ...pageLibMounts(), "/fx/": dir },
    importMap: PAGE_IMPORT_MAP, pathAndQuery: "/load.html", timeoutMs: 200_000,
    handle: (req, res) => {
      const body = req.url === "/load.html" ? page : req.url === "/fixture-list.json" ? JSON.stringify(list) : null;
      if (body === null) return false;
      res.writeHead(200, { "Content-Type": req.url!.endsWith(".json") ? "application/json" : "text/html" });
      res.end(body);
      return true;
    },
  });
  assert.equal(r.error, undefined, r.error);
  // progress: the weight bytes of model.safetensors (all but its header), on a visible bar with Cancel offered
  const weights = statSync(join(dir, "bert", "model.safetensors")).size;
  const last = r.bars.at(-1)!;
  assert.ok(r.bars.length >= 1, `progress shown: ${JSON.stringify(r.statuses)}`);
  assert.ok(last.max > 0.95 * weights && last.max < weights, `bar max ${last.max} ≈ the ${weights}-byte file's weights`);
  assert.equal(last.value, last.max, "the last update is the whole");
  assert.ok(r.bars.every((b) => !b.hidden && b.cancel && b.value <= b.max));
  const mbTotal = (last.max / 2 ** 20).toFixed(2);
  // (File objects made in the page have no folder path: the page names them "picked files")
  assert.match(last.text, new RegExp(`^reading picked files: ${mbTotal.replace(".", "\\.")} / ${mbTotal.replace(".", "\\.")} MB of weights · [\\d.]+ MB/s`));
  assert.ok(r.bars.some((b) => /^reading picked files: 0\.00 \/ /.test(b.text)), "the first update, before any tensor, is 0 bytes");
  // long text: cut to the model's 64 positions, the page says how many tokens were dropped
  const p = await fromPretrainedDir(join(dir, "bert"));
  const n = (p.tokenizer as HFTokenizer).encode(LONG).length;
  assert.match(r.limit, /at most 64 tokens/);
  assert.equal(r.long.error, "");
  assert.match(r.long.notice, new RegExp(`${n}.*64.*${n - 64}`, "s"), r.long.notice);
  assert.ok(r.long.prediction.length > 0);
  // Cancel during a read
  assert.ok(r.cancel.cancelShown, "Cancel is offered while the folder is read");
  assert.equal(r.cancel.error, "");
  assert.match(r.cancel.statuses.join("\n"), /cancelled reading picked files/);
  assert.ok(!r.cancel.statuses.some((s) => /GPT2LMHeadModel/.test(s)), "the cancelled folder never finished loading");
  assert.match(r.cancel.name, /explained in/);
  assert.ok(r.cancel.prediction.length > 0, "the BERT folder loaded before explains again");
});
