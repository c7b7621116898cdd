// The page's Hugging Face folder picker (examples/browser/hf-picker.ts) in headless Chromium, as a user uses it: the
// page (examples/browser/explain.html, served with `attnflow web`'s mounts) gets a BERT classifier folder through its
// folder input, a Marian folder (.spm tokenizer, no tokenizer.json) dropped on the page and a ViT folder through its
// files input, as File objects; the page posts them to its Web Worker, which reads them, predicts and explains. The prediction and every method's importance in the page's report are
// compared with the same explanation computed here in Node. Skips without Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/node.js";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";
import { assertResponsive, openCdpPage } from "./browser-cdp.js";
import { startWebServer } from "../src/node/web-server.js";
import { PAGE_IMPORT_MAP, pageLibMounts } from "../cli/web.js";
import { fromPretrainedDir, savePretrainedDir } from "../src/hf/node-pretrained.js";
import { architectureFor, modelFromConfig } from "../src/hf/registry.js";
import { hfTextTarget, softmaxRow, textInputOf, hfInputs, type HFLoaded } from "../src/hf/explain-target.js";
import { runExplanation, EXPLAIN_METHODS, type Explanation } from "../src/explain/explain-run.js";
import type { HFTokenizer } from "../src/hf/tokenizer.js";
import { noGrad } from "../src/autograd.js";
import { encodePng } from "../src/node/image-file.js";
import { hfExplainTarget } from "../cli/hf.js";

/** Node's explanation of the picture, through the command line's ViT preprocessing (no resize: same size). */
function explainImage(m: HFLoaded): Promise<Explanation> {
  return runExplanation(hfExplainTarget(m, { image: join(dir, "picture.png") }, undefined), m.model, { methods: [...EXPLAIN_METHODS] });
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "attnflow-hf-picker-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "##s", "and", ".", "big", "red", "hat"];
async function folders(): Promise<Record<string, string[]>> {
  const bert = join(dir, "bert");
  cpSync(join(ROOT, "test", "fixtures", "hf", "bert-seqcls"), bert, { recursive: true });
  rmSync(join(bert, "reference.safetensors"));
  const tj = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "hf-tokenizer", "bert", "tokenizer.json"), "utf8"));
  tj.model.vocab = Object.fromEntries(WORDS.map((w, i) => [w, i]));
  writeFileSync(join(bert, "tokenizer.json"), JSON.stringify(tj));
  const fx = join(ROOT, "test", "fixtures", "hf-tokenizer", "marian");
  const V = JSON.parse(readFileSync(join(fx, "vocab.json"), "utf8")) as Record<string, number>, n = Object.keys(V).length;
  const cfg = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "hf", "marian-swish-tied", "config.json"), "utf8"));
  Object.assign(cfg, { vocab_size: n, decoder_vocab_size: n, pad_token_id: V["<pad>"], eos_token_id: V["</s>"], decoder_start_token_id: V["<pad>"] });
  const marian = join(dir, "marian");
  mkdirSync(marian);
  await savePretrainedDir(architectureFor(cfg).family.fromConfig(cfg), marian);
  writeFileSync(join(marian, "config.json"), JSON.stringify(cfg));
  for (const x of ["source.spm", "target.spm", "vocab.json", "tokenizer_config.json"]) cpSync(join(fx, x), join(marian, x));
  const vit = join(dir, "vit");
  cpSync(join(ROOT, "test", "fixtures", "hf", "vit"), vit, { recursive: true });
  rmSync(join(vit, "reference.safetensors"));
  const S = JSON.parse(readFileSync(join(vit, "config.json"), "utf8")).image_size as number;
  const rgba = new Uint8Array(S * S * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37 + (i >> 7) * 11) % 256));
  writeFileSync(join(dir, "picture.png"), encodePng(S, S, rgba));   // the model's size: no resampling in page or Node
  return { bert: readdirSync(bert), marian: readdirSync(marian), vit: readdirSync(vit) };
}

// Runs in the page after it has loaded: picks / drops the folders as File objects, explains, and reports what it shows.
const HARNESS = `<script type="module">
const wait = async (f, what, ms = 90000) => { const t0 = performance.now(); while (!f()) { if (performance.now() - t0 > ms) throw new Error("timed out waiting for " + what + "; status: " + document.getElementById("status").textContent + "; error: " + document.getElementById("error").textContent); await new Promise((r) => setTimeout(r, 50)); } };
const out = {};
try {
  await wait(() => document.body.dataset.done === "1", "the page");
  const list = await (await fetch("/fixture-list.json")).json();
  const files = async (name) => Promise.all(list[name].map(async (f) => new File([await (await fetch("/fx/" + name + "/" + f)).arrayBuffer()], f)));
  const run = async (name, text) => {
    document.getElementById("error").textContent = "";
    const report = document.getElementById("report");
    report.srcdoc = "";
    await wait(() => /Hugging Face folder read in this tab/.test(document.getElementById("status").textContent), name + " loaded");
    document.getElementById("text").value = text;
    document.getElementById("run").click();
    await wait(() => /explained in/.test(document.getElementById("status").textContent) || document.getElementById("error").textContent, name + " explained");
    return { status: document.getElementById("status").textContent, error: document.getElementById("error").textContent,
      prediction: document.getElementById("prediction").textContent, report: report.srcdoc };
  };
  // BERT through the folder input
  const dt = new DataTransfer();
  for (const f of await files("bert")) dt.items.add(f);
  const input = document.getElementById("hf-folder");
  input.files = dt.files;
  input.dispatchEvent(new Event("change"));
  out.bert = await run("bert", "the red dog ran far");
  // Cancel mid-run: the worker is stopped, a fresh one reads the same File list again, and the next run works
  const st = document.getElementById("status");
  st.textContent = "";
  document.getElementById("run").click();
  const cancelShown = !document.getElementById("cancel").hidden;
  document.getElementById("cancel").click();
  await wait(() => /^cancelled/.test(st.textContent), "the cancelled bert reloaded");
  document.getElementById("error").textContent = "";
  document.getElementById("run").click();
  await wait(() => /explained in/.test(st.textContent) || document.getElementById("error").textContent, "bert after Cancel");
  out.bertAfterCancel = { cancelShown, error: document.getElementById("error").textContent, prediction: document.getElementById("prediction").textContent };
  // Marian dropped on the page
  document.getElementById("status").textContent = "";
  const drop = new DataTransfer();
  for (const f of await files("marian")) drop.items.add(f);
  document.dispatchEvent(new DragEvent("drop", { dataTransfer: drop, bubbles: true, cancelable: true }));
  out.marian = await run("marian", "the computer works");
  // ViT through the files input, reading the page's image input
  const img = new DataTransfer();
  img.items.add(new File([await (await fetch("/fx/picture.png")).arrayBuffer()], "picture.png", { type: "image/png" }));
  document.getElementById("image-file").files = img.files;
  document.getElementById("status").textContent = "";
  const vt = new DataTransfer();
  for (const f of await files("vit")) vt.items.add(f);
  const vi = document.getElementById("hf-files");
  vi.files = vt.files;
  vi.dispatchEvent(new Event("change"));
  out.vit = await run("vit", "");
  out.hasPicker = !!document.getElementById("hf-files") && !!document.getElementById("hf-drop");
} catch (e) {
  out.error = String(e && e.stack || e);
}
await fetch("/__result", { method: "POST", body: JSON.stringify(out) });
</script>`;

interface Shown { status: string; error: string; prediction: string; report: string }
interface PageResult { bert?: Shown; marian?: Shown; vit?: Shown; hasPicker?: boolean; error?: string; bertAfterCancel?: { cancelShown: boolean; error: string; prediction: string } }

/** The viewer's data in a report: each attention stack's title and its query-row labels. */
function reportViews(html: string): { title: string; rowTokens: string[] }[] {
  return (JSON.parse(/<script type="application\/json" id="attnflow-views">(.*?)<\/script>/s.exec(html)![1]) as { groups: { title: string; rowTokens: string[] }[] }).groups;
}

/** The importance table of the report: per row, the values of each method column. */
function reportTable(html: string): number[][] {
  const table = /<table class="importance">([\s\S]*?)<\/table>/.exec(html)![1];
  return [...table.matchAll(/<tr(?: class="special")?><td>\d+<\/td>([\s\S]*?)<\/tr>/g)].map((r) => [...r[1].matchAll(/<span>([^<]*)<\/span>/g)].map((x) => Number(x[1])));
}

async function nodeExplanation(folder: string, text: string): Promise<{ e: Explanation; probs: number[] | null }> {
  const p = await fromPretrainedDir(folder);
  p.model.eval();
  const m: HFLoaded = { model: p.model, config: p.config, tokenizer: p.tokenizer as HFTokenizer, generationConfig: p.generationConfig, dir: folder };
  if (p.model.architecture === "ViTForImageClassification") {
    const e = explainImage(m);
    return { e: await e, probs: null };
  }
  const inp = textInputOf(m, { text });
  const e = await runExplanation(hfTextTarget(m, inp, undefined, 1), p.model, { methods: [...EXPLAIN_METHODS] });
  const lg = noGrad(() => p.model.architecture.startsWith("Bert") ? p.model.forward(hfInputs(inp)).logits! : null);
  return { e, probs: lg ? softmaxRow(lg.dataSync() as Float32Array, 0, lg.shape[1]) : null };
}

test("browser: a Hugging Face folder picked or dropped in the page is predicted and explained in the tab, as in Node", { skip, timeout: 240_000 }, async () => {
  const list = await folders();
  const page = readFileSync(join(ROOT, "examples", "browser", "explain.html"), "utf8").replace("</body>", `${HARNESS}\n</body>`);
  const r = await pageReport<PageResult>({
    index: join(ROOT, "examples", "browser", "explain.html"),
    mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models"), ...pageLibMounts(), "/fx/": dir },
    importMap: PAGE_IMPORT_MAP,   // as \`attnflow web\` serves the page: the worker's imports name /lib/ URLs
    pathAndQuery: "/picker.html", timeoutMs: 200_000,
    handle: (req, res) => {
      const body = req.url === "/picker.html" ? page : req.url === "/fixture-list.json" ? JSON.stringify(list) : null;
      if (body === null) return false;
      res.writeHead(200, { "Content-Type": req.url!.endsWith(".json") ? "application/json" : "text/html" });
      res.end(body);
      return true;
    },
  });
  assert.equal(r.error, undefined, r.error);
  assert.ok(r.hasPicker);
  const again = r.bertAfterCancel!;
  assert.ok(again.cancelShown, "Cancel is offered while the worker runs");
  assert.equal(again.error, "");
  assert.equal(again.prediction, r.bert!.prediction, "the fresh worker reloaded the same folder");
  for (const [name, text] of [["bert", "the red dog ran far"], ["marian", "the computer works"], ["vit", ""]] as const) {
    const shown = r[name]!;
    assert.equal(shown.error, "", `${name}: ${shown.error}`);
    assert.match(shown.status, /explained in/);
    const { e, probs } = await nodeExplanation(join(dir, name), text);
    // every method's importance, as the report prints it (3 significant digits), equals Node's
    const order = ["rollout", "flow", "raw", "grad", "blankout", "inputgrad"].filter((k) => (e.methods as Record<string, unknown>)[k]);
    const rows = reportTable(shown.report);
    assert.equal(rows.length, e.tokens.length, name);
    rows.forEach((row, i) => order.forEach((k, c) => {
      const want = (e.methods as Record<string, { importance: number[] }>)[k].importance[i];
      assert.ok(Math.abs(row[c] - want) <= 0.006 * Math.abs(want) + 2e-3, `${name} ${k}[${i}]: page ${row[c]}, Node ${want}`);
    }));
    if (probs) {
      // the class probabilities, as the page's table prints them (percent, one decimal)
      const best = probs.indexOf(Math.max(...probs));
      assert.match(shown.prediction, new RegExp(`LABEL_${best}\\s*${(100 * probs[best]).toFixed(1)} %`));
    } else if (name === "marian") {
      assert.match(shown.report, /Decoder: output token/);   // the encoder–decoder's decoder self- and cross-attention
      // the viewer's three stacks; decoder rows labelled with the decoder's tokens (start token + output so far)
      const groups = reportViews(shown.report);
      assert.deepEqual(groups.slice(0, 3).map((g) => g.title), ["encoder self-attention", "decoder self-attention (causal)", "cross-attention (decoder → encoder)"]);
      assert.deepEqual(groups[0].rowTokens, e.tokens);
      assert.ok(e.decoder, "Node explains the decoder too");
      assert.deepEqual(groups[1].rowTokens, e.decoder.tokens);
      assert.deepEqual(groups[2].rowTokens, groups[1].rowTokens);
      assert.ok(groups[1].rowTokens.length >= 1 && groups[1].rowTokens.every((t) => t !== ""), `decoder rows ${groups[1].rowTokens}`);
    } else {
      assert.match(shown.prediction, new RegExp(`${e.target.label}\\s*\\d`));   // ViT: the class the report explains leads the table
    }
  }
});

test("browser: a larger Hugging Face folder loads and is explained in the page's worker; the main thread never blocks (long tasks, CPU trace), Cancel", { skip, timeout: 300_000 }, async () => {
  // a BERT classifier of 4 layers × 256 wide (random weights) on a 60-token text: every method takes seconds of work,
  // which on the page's thread would show as long tasks
  const big = join(dir, "bert-big");
  mkdirSync(big, { recursive: true });
  const cfg = { ...JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "hf", "bert-seqcls", "config.json"), "utf8")), hidden_size: 256, intermediate_size: 1024, num_hidden_layers: 4, max_position_embeddings: 128 };
  await savePretrainedDir(modelFromConfig(cfg), big);
  writeFileSync(join(big, "config.json"), JSON.stringify(cfg));
  const tj = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "hf-tokenizer", "bert", "tokenizer.json"), "utf8"));
  tj.model.vocab = Object.fromEntries(WORDS.map((w, i) => [w, i]));
  writeFileSync(join(big, "tokenizer.json"), JSON.stringify(tj));
  const names = readdirSync(big);
  const { url, close } = await startWebServer({
    index: join(ROOT, "examples", "browser", "explain.html"), importMap: PAGE_IMPORT_MAP,
    mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models"), ...pageLibMounts(), "/fx/": dir },
  });
  const p = await openCdpPage(url, 1280);
  try {
    await p.waitFor("document.body.dataset.done === '1'", 120_000);
    assert.notEqual(await p.eval("window.__longtasks"), null, "this Chromium reports long tasks");
    // the File objects are made before the trace (fetching the fixture is the test's, not the page's)
    await p.eval(`(async () => { const dt = new DataTransfer(); for (const f of ${JSON.stringify(names)}) dt.items.add(new File([await (await fetch("/fx/bert-big/" + f)).arrayBuffer()], f)); window.__files = dt.files; })()`);
    await p.eval("new Promise((r) => setTimeout(r, 300))");
    await p.eval("window.__longtasks.length = 0");
    const tr = await p.trace();
    await p.eval("(() => { const i = document.getElementById('hf-files'); i.files = window.__files; i.dispatchEvent(new Event('change')); })()");
    await p.waitFor("/Hugging Face folder read in this tab/.test(document.getElementById('status').textContent) || document.getElementById('error').textContent", 120_000);
    assert.equal(await p.eval("document.getElementById('error').textContent"), "");
    const text = "the big red dog ran far and the cat sat on a mat . ".repeat(5).trim();   // 58 words + [CLS], [SEP]
    await p.eval(`document.getElementById('text').value = ${JSON.stringify(text)}; document.getElementById('run').click()`);
    await p.waitFor("/explained in/.test(document.getElementById('status').textContent) || document.getElementById('error').textContent", 240_000);
    assert.equal(await p.eval("document.getElementById('error').textContent"), "");
    await p.eval("new Promise((r) => setTimeout(r, 300))");
    const observed = await p.eval<number[]>("window.__longtasks.slice()");
    assertResponsive(observed, await tr.stop(), "the page while its worker reads and explains an HF folder");
    assert.match(await p.eval<string>("document.getElementById('prediction').textContent"), /LABEL_\d\s*\d+\.\d %/);
    // Cancel while it explains: a fresh worker reads the same files again and the page is ready
    await p.eval("document.getElementById('run').click(); document.getElementById('cancel').click()");
    await p.waitFor("/^cancelled/.test(document.getElementById('status').textContent)", 120_000);
    assert.equal(await p.eval("document.getElementById('run').disabled"), false);
    assert.match(await p.eval<string>("document.getElementById('status').textContent"), /backend/);
  } catch (e) {
    (e as Error).message += `\n${p.log().slice(-2000)}`;
    throw e;
  } finally {
    p.close(); close();
  }
});
