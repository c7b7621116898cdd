// Gradient-based explanations of imported Hugging Face models against Hugging Face's own autograd: input × gradient
// (d score / d inputs_embeds — ViT: the patch embeddings) and d score / d attention probabilities of every encoder,
// decoder self- and cross-attention layer, from test/fixtures/hf-grad/<case>.safetensors (scripts/hf-grad-refs.py,
// unmodified transformers 4.44.2 on PyTorch). The CLI is run as a user runs it; finite differences check the same
// gradients without any reference; the encoder–decoder relevance (Chefer et al. 2021) is recomputed from HF's
// gradients with the paper's formulas written out here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/node.js";
import { parseSafetensors, toFloat32, toInt32 } from "../src/io/safetensors.js";
import { fromPretrainedDir } from "../src/hf/node-pretrained.js";
import { tensor } from "../src/creation.js";
import { noGrad } from "../src/autograd.js";
import { encodePng } from "../src/node/image-file.js";
import type { Explanation } from "../src/explain/explain-run.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "bin", "attnflow.js");
const dir = mkdtempSync(join(tmpdir(), "attnflow-hf-grad-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "##s", "and", ".", "big", "red", "hat"];
/** A copy of a fixture folder (the masked LM with a small WordPiece tokenizer.json: [MASK] is id 4). */
function folder(name: string, copy = name): string {
  const to = join(dir, copy);
  cpSync(join(root, "test", "fixtures", "hf", name), to, { recursive: true });
  rmSync(join(to, "reference.safetensors"));
  if (name === "bert-mlm-h3") {
    const tj = JSON.parse(readFileSync(join(root, "test", "fixtures", "hf-tokenizer", "bert", "tokenizer.json"), "utf8"));
    tj.model.vocab = Object.fromEntries(WORDS.map((w, i) => [w, i]));
    writeFileSync(join(to, "tokenizer.json"), JSON.stringify(tj));
  }
  return to;
}
function ref(name: string) {
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(root, "test", "fixtures", "hf-grad", `${name}.safetensors`))));
  const f = (k: string) => { const t = tensors.get(k); assert.ok(t, `${name}: ${k}`); return { data: toFloat32(t!), shape: t!.shape }; };
  const i = (k: string) => Array.from(toInt32(tensors.get(k)!));
  const layers = (p: string) => [...tensors.keys()].filter((k) => k.startsWith(p + ".")).length;
  return { f, i, layers, has: (k: string) => tensors.has(k) };
}
/** |a − b| <= atol + rtol·max|b| elementwise. */
function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string, rtol = 2e-3, atol = 1e-6): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let mx = 0;
  for (let k = 0; k < b.length; k++) mx = Math.max(mx, Math.abs(b[k]));
  assert.ok(mx > 0, `${what}: reference all zero`);
  for (let k = 0; k < b.length; k++) assert.ok(Math.abs(a[k] - b[k]) <= atol + rtol * mx, `${what}[${k}]: ${a[k]} vs HF ${b[k]} (max |HF| ${mx})`);
}
const flat = (x: number[][][][] | number[][][]) => (x as unknown[]).flat(3) as number[];
/** Σ_d x·g per position of (T, D) rows. */
function xg(x: ArrayLike<number>, g: ArrayLike<number>, T: number): number[] {
  const D = x.length / T;
  return Array.from({ length: T }, (_, t) => { let s = 0; for (let d = 0; d < D; d++) s += x[t * D + d] * g[t * D + d]; return s; });
}

const TEXT = ["bert-seqcls", "bert-mlm-h3", "gpt2", "llama-gqa4-linear"];
const SEQ2SEQ = ["marian-unshared-relu", "bart-gelu-tied", "t5-relu-tied"];

test("input x gradient and attention gradients of HF encoders and decoders equal HF's autograd", () => {
  for (const name of TEXT) {
    const r = ref(name), ids = r.i("ids"), [tok] = r.i("target");
    const e = JSON.parse(cli("explain", "--model", folder(name), "--input-ids", ids.join(","), "--method", "grad,inputgrad", "--json").out) as Explanation;
    assert.equal(e.target.index, tok, name);
    assert.ok(Math.abs(e.target.score - r.f("score").data[0]) < 1e-4, name);
    const T = ids.length;
    close(e.methods.inputgrad!.signed, xg(r.f("embeds").data, r.f("embeds_grad").data, T), `${name} inputgrad`);
    assert.equal(e.attentionGrad!.length, r.layers("attn_grad"));
    e.attentionGrad!.forEach((g, l) => close(flat(g), r.f(`attn_grad.${l}`).data, `${name} attention grad layer ${l}`));
  }
});

test("ViT: input x gradient on the patch embeddings and attention gradients equal HF's autograd; blank-out greys a patch", async () => {
  const r = ref("vit"), f = folder("vit"), u8 = r.i("pixels_u8"), [S, , C] = r.f("pixels_u8").shape;
  const rgba = new Uint8Array(S * S * 4);
  for (let p = 0; p < S * S; p++) { for (let c = 0; c < 3; c++) rgba[p * 4 + c] = u8[p * C + (C === 3 ? c : 0)]; rgba[p * 4 + 3] = 255; }
  const png = join(dir, "vit.png");
  writeFileSync(png, encodePng(S, S, rgba));
  const out = cli("explain", "--model", f, "--image", png, "--method", "grad,inputgrad,blankout", "--json");
  assert.equal(out.code, 0, out.err);
  const e = JSON.parse(out.out) as Explanation;
  assert.equal(e.target.index, r.i("target")[0]);
  assert.ok(Math.abs(e.target.score - r.f("score").data[0]) < 1e-4);
  const N = e.tokens.length - 1;
  assert.equal(e.methods.inputgrad!.signed[0], 0);   // [CLS] is no patch
  close(e.methods.inputgrad!.signed.slice(1), xg(r.f("embeds").data, r.f("embeds_grad").data, N), "vit inputgrad");
  e.attentionGrad!.forEach((g, l) => close(flat(g), r.f(`attn_grad.${l}`).data, `vit attention grad layer ${l}`));
  // blank-out of patch 1 (row 0, column 0): its pixels set to 0 after normalisation
  const { model, config } = await fromPretrainedDir(f);
  const P = config.patch_size as number, px = Float32Array.from(r.f("pixel_values").data);
  for (let c = 0; c < C; c++) for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) px[(c * S + i) * S + j] = 0;
  const lg = noGrad(() => model.forward({ pixelValues: tensor(px).reshape([1, C, S, S]) }).logits!.dataSync() as Float32Array);
  assert.ok(Math.abs(e.methods.blankout!.importance[1] - (e.target.score - lg[e.target.index])) < 1e-4);
});

test("input x gradient: finite differences of the logit along each token's embedding (BERT, GPT-2)", async () => {
  for (const name of ["bert-seqcls", "gpt2"]) {
    const r = ref(name), ids = r.i("ids"), [tok, pos] = r.i("target"), f = folder(name, name + "-fd");
    const e = JSON.parse(cli("explain", "--model", f, "--input-ids", ids.join(","), "--method", "inputgrad", "--json").out) as Explanation;
    const { model } = await fromPretrainedDir(f);
    // score(s) with the embeddings of token t scaled by (1 + s): d/ds at 0 is Σ_d x·∂score/∂x (float64 central difference)
    const score = (t: number, s: number) => noGrad(() => {
      const lg = model.forward({ inputIds: tensor([ids], { dtype: "int32" }) }, { onEmbeddings: (x) => {
        const d = Float32Array.from(x.dataSync() as Float32Array), D = x.shape[2];
        for (let k = 0; k < D; k++) d[t * D + k] *= 1 + s;
        return tensor(d).reshape(x.shape);
      } }).logits!;
      const a = lg.dataSync() as Float32Array, V = lg.shape.at(-1)!;
      return a[(lg.ndim === 2 ? 0 : pos) * V + tok];
    });
    const h = 1e-2;
    for (let t = 0; t < ids.length; t++) {
      const fd = (score(t, h) - score(t, -h)) / (2 * h);
      const got = e.methods.inputgrad!.signed[t];
      assert.ok(Math.abs(got - fd) < 2e-3 + 2e-2 * Math.abs(fd), `${name} token ${t}: ${got} vs finite difference ${fd}`);
    }
  }
});

test("encoder-decoders: decoder self- and cross-attention gradients equal HF's; relevance follows Chefer et al.'s encoder-decoder rules", () => {
  for (const name of SEQ2SEQ) {
    const r = ref(name), ids = r.i("ids"), dec = r.i("dec_ids"), [tok] = r.i("target");
    const out = cli("explain", "--model", folder(name), "--input-ids", ids.join(","), "--target", String(dec.length - 1), "--max-tokens", String(dec.length),
      "--method", "raw,rollout,grad,inputgrad", "--json");
    assert.equal(out.code, 0, out.err);
    const e = JSON.parse(out.out) as Explanation, d = e.decoder!;
    assert.equal(e.target.index, tok, name);
    assert.ok(Math.abs(e.target.score - r.f("score").data[0]) < 1e-4, name);
    assert.equal(d.tokens.length, dec.length);
    close(e.methods.inputgrad!.signed, xg(r.f("embeds").data, r.f("embeds_grad").data, ids.length), `${name} inputgrad`);
    e.attentionGrad!.forEach((g, l) => close(flat(g), r.f(`attn_grad.${l}`).data, `${name} encoder attention grad ${l}`));
    d.selfAttentionGrad!.forEach((g, l) => close(flat(g), r.f(`dec_attn_grad.${l}`).data, `${name} decoder self-attention grad ${l}`));
    d.crossAttentionGrad!.forEach((g, l) => close(flat(g), r.f(`cross_attn_grad.${l}`).data, `${name} cross-attention grad ${l}`));

    // Chefer et al. (2021) from the attentions printed and HF's gradients, as nested arrays
    type M = number[][];
    const eye = (n: number): M => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
    const mul = (a: M, b: M): M => a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
    const add = (a: M, b: M): M => a.map((row, i) => row.map((x, j) => x + b[i][j]));
    const tr = (a: M): M => a[0].map((_, j) => a.map((row) => row[j]));
    const bar = (A: number[][][], G: Float32Array): M => {   // mean_h (G ⊙ A)^+
      const H = A.length, Tq = A[0].length, Tk = A[0][0].length;
      return Array.from({ length: Tq }, (_, i) => Array.from({ length: Tk }, (_, j) => A.reduce((s, Ah, h) => s + Math.max(0, Ah[i][j] * G[(h * Tq + i) * Tk + j]), 0) / H));
    };
    const rbar = (R: M): M => {   // handle_residual
      const n = R.length, Z = add(R, eye(n).map((row) => row.map((x) => -x)));
      return add(Z.map((row) => { const s = row.reduce((a, b) => a + b, 0); return row.map((x) => (s ? x / s : 0)); }), eye(n));
    };
    const Ts = ids.length, Tt = dec.length;
    let Rss = eye(Ts);
    e.attention!.forEach((A, l) => { Rss = add(Rss, mul(bar(A, r.f(`attn_grad.${l}`).data), Rss)); });
    let Rtt = eye(Tt), Rts: M = Array.from({ length: Tt }, () => new Array(Ts).fill(0));
    d.selfAttention!.forEach((A, l) => {
      const a = bar(A, r.f(`dec_attn_grad.${l}`).data);
      Rtt = add(Rtt, mul(a, Rtt)); Rts = add(Rts, mul(a, Rts));
      Rts = add(Rts, mul(tr(rbar(Rtt)), mul(bar(d.crossAttention![l], r.f(`cross_attn_grad.${l}`).data), rbar(Rss))));
    });
    const p = Tt - 1, sp = new Set(e.special);
    const want = Rts[p].map((x, j) => (sp.has(j) || !(x > 0) ? 0 : x)), s = want.reduce((a, b) => a + b, 0);
    close(d.methods.grad!.cross, want.map((x) => x / s), `${name} grad.cross`, 1e-4);
    // raw: the last layer's head-mean row p of the cross-attention, renormalised over non-special source tokens
    const last = d.crossAttention!.at(-1)!, rawc = Array.from({ length: Ts }, (_, j) => (sp.has(j) ? 0 : last.reduce((q, Ah) => q + Ah[p][j], 0)));
    const rs = rawc.reduce((a, b) => a + b, 0);
    close(d.methods.raw!.cross, rawc.map((x) => x / rs), `${name} raw.cross`, 1e-4);
  }
});

test("encoder-decoder explanations show the decoder self-attention and cross-attention in the terminal and the HTML report", () => {
  const f = folder("marian-swish-tied"), html = join(dir, "m.html");
  const out = cli("explain", "--model", f, "--input-ids", "5,6,7,8,2", "--target", "1", "--max-tokens", "2", "--method", "raw,rollout,grad", "--html", html);
  assert.equal(out.code, 0, out.err);
  assert.match(out.out, /── decoder self-attention of output token 1 \(over the decoder's 2 input tokens\) ──/);
  assert.match(out.out, /── cross-attention of output token 1 \(over the 5 source tokens\) ──/);
  assert.match(out.out, /gradient-weighted \(Chefer et al\. encoder–decoder rule\)/);
  const page = readFileSync(html, "utf8");
  assert.match(page, /decoder self-attention/);
  assert.match(page, /cross-attention/);
});
