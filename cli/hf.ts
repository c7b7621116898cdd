// `attnflow info | predict | explain --model <hf-folder>`: a Hugging Face folder (config.json + model.safetensors,
// optionally tokenizer.json) used from the command line. What predict does follows the architecture config.json names:
// classification (labels from id2label), masked-token filling, greedy generation (decoders and encoder–decoders) and
// image classification (ViT). Explanations reuse runExplanation: the HF modules record their attention like attnflow's.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { tensor } from "../src/creation.js";
import { noGrad } from "../src/autograd.js";
import type { Tensor } from "../src/tensor.js";
import { fromPretrainedDir, folderReader } from "../src/hf/node-pretrained.js";
import { readHeaders } from "../src/hf/pretrained.js";
import { architectureFor } from "../src/hf/registry.js";
import type { HFConfig, HFInputs, HFModel } from "../src/hf/types.js";
import type { HFTokenizer } from "../src/hf/tokenizer.js";
import { readImageFile } from "../src/node/image-file.js";
import type { ExplainTarget } from "../src/tasks/task.js";
import { UsageError } from "./args.js";

type Flags = Record<string, string | boolean>;

/** A directory holding config.json is an HF folder; a directory without one is neither kind of model. */
export function isHFFolder(path: string): boolean {
  let st;
  try { st = statSync(path); } catch { return false; }
  if (!st.isDirectory()) return false;
  if (!existsSync(join(path, "config.json"))) {
    throw new Error(`${path} is a folder but neither an attnflow checkpoint (a .safetensors file) nor a Hugging Face model folder (it has no config.json)`);
  }
  return true;
}

export interface HFLoaded { model: HFModel; config: HFConfig; tokenizer: HFTokenizer | null; generationConfig: Record<string, unknown> | null; dir: string }

export async function loadHF(dir: string): Promise<HFLoaded> {
  const p = await fromPretrainedDir(dir);
  p.model.eval();
  return { model: p.model, config: p.config, tokenizer: p.tokenizer as HFTokenizer | null, generationConfig: p.generationConfig, dir };
}

const CAUSAL = new Set(["GPT2LMHeadModel", "LlamaForCausalLM"]);
const SEQ2SEQ = new Set(["MarianMTModel", "BartForConditionalGeneration", "T5ForConditionalGeneration"]);
type Kind = "classify" | "mlm" | "causal" | "seq2seq" | "image" | "base";
export function kindOf(arch: string): Kind {
  if (arch === "BertForSequenceClassification") return "classify";
  if (arch === "BertForMaskedLM") return "mlm";
  if (CAUSAL.has(arch)) return "causal";
  if (SEQ2SEQ.has(arch)) return "seq2seq";
  if (arch === "ViTForImageClassification") return "image";
  return "base";
}

// ------------------------------------------------------------------------------------------------------------ info
const num = (c: HFConfig, ...keys: string[]): number | null => {
  for (const k of keys) if (typeof c[k] === "number") return c[k] as number;
  return null;
};

/** Summary of the config, the weights (count and dtype from the safetensors headers) and the tokenizer. */
export async function hfInfo(dir: string, json: boolean): Promise<number> {
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as HFConfig;
  const { architecture } = architectureFor(cfg);
  const { shards } = await readHeaders(folderReader(dir));
  let params = 0;
  const dtypes = new Set<string>();
  for (const s of shards) for (const e of s.header.entries.values()) { params += e.shape.reduce((a, b) => a * b, 1); dtypes.add(e.dtype); }
  const heads = num(cfg, "num_attention_heads", "n_head", "num_heads", "encoder_attention_heads");
  const info = {
    format: "huggingface", folder: dir, modelType: cfg.model_type, architecture,
    layers: num(cfg, "num_hidden_layers", "n_layer", "num_layers", "encoder_layers"),
    decoderLayers: num(cfg, "decoder_layers", "num_decoder_layers"),
    hidden: num(cfg, "hidden_size", "n_embd", "d_model"), heads,
    kvHeads: num(cfg, "num_key_value_heads") ?? heads,
    vocab: num(cfg, "vocab_size"), maxPositions: num(cfg, "max_position_embeddings", "n_positions"),
    imageSize: num(cfg, "image_size"), patchSize: num(cfg, "patch_size"),
    parameters: params, dtype: [...dtypes].sort().join(", "), shards: shards.map((s) => s.file),
    tokenizer: existsSync(join(dir, "tokenizer.json")),
    quantization: cfg.quantization_config ?? null,
  };
  if (json) { console.log(JSON.stringify(info)); return 0; }
  const rows: [string, string][] = [
    ["model_type", String(info.modelType)], ["architecture", architecture],
    ["layers", info.decoderLayers !== null ? `${info.layers} encoder + ${info.decoderLayers} decoder` : String(info.layers)],
    ["hidden", String(info.hidden)], ["heads", `${info.heads} (${info.kvHeads} key/value)`], ["vocab", String(info.vocab)],
  ];
  if (info.maxPositions !== null) rows.push(["positions", String(info.maxPositions)]);
  if (info.imageSize !== null) rows.push(["image", `${info.imageSize}x${info.imageSize}, patch ${info.patchSize}`]);
  rows.push(["parameters", params.toLocaleString("en-US")], ["dtype", info.dtype], ["weights", info.shards.join(", ")],
    ["tokenizer", info.tokenizer ? "tokenizer.json" : "none (give token ids with --input-ids)"]);
  const qc = info.quantization as { quant_method?: string; modules?: unknown[] } | null;
  if (qc) rows.push(["quantized", `${qc.quant_method}: ${Array.isArray(qc.modules) ? qc.modules.length : "?"} int8 layers (attnflow quantize)`]);
  console.log(`${dir} (Hugging Face folder)`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(12)}  ${v}`);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------- inputs
/** Token ids and labels of the text (or --input-ids / --input): the ids the model reads. */
export interface TextInput { ids: number[]; labels: string[]; typeIds: number[] | null; special: number[] }

function parseIds(s: string, flag: string, vocab: number | null): number[] {
  const parts = s.split(",").map((x) => x.trim());
  const bad = parts.find((p) => !/^\d+$/.test(p));
  if (bad !== undefined) throw new UsageError(`--${flag} must be comma-separated non-negative integer token ids, got "${bad}" in "${s}"`);
  const ids = parts.map(Number);
  const big = vocab !== null ? ids.find((i) => i >= vocab) : undefined;
  if (big !== undefined) throw new UsageError(`--${flag}: token id ${big} is outside the vocabulary (vocab_size ${vocab})`);
  return ids;
}

/** An image for ViT, text or ids for the others: the wrong kind of input is named rather than ignored. */
function checkInputKind(m: HFLoaded, flags: Flags): void {
  const image = kindOf(m.model.architecture) === "image";
  const wrong = (image ? ["text", "input", "input-ids"] : ["image"]).filter((k) => flags[k] !== undefined);
  if (wrong.length) throw new UsageError(`${m.model.architecture} reads ${image ? "an image (--image FILE)" : "text or token ids (--text, --input-ids)"}, not ${wrong.map((k) => `--${k}`).join(", ")}`);
}

export function textInput(m: HFLoaded, flags: Flags, positional = ""): TextInput {
  const idsFlag = (["input-ids", "input"] as const).find((k) => typeof flags[k] === "string");
  const vocab = num(m.config, "vocab_size");
  if (idsFlag) {
    const ids = parseIds(flags[idsFlag] as string, idsFlag, vocab);
    // the tokenizer's special ids ([CLS], [SEP], <s>…) are specials as in a tokenized text; a [MASK] is an input
    const sp = m.tokenizer ? ids.flatMap((t, i) => (m.tokenizer!.specialIds.has(t) && t !== m.tokenizer!.special.mask?.id ? [i] : [])) : [];
    return { ids, labels: tokenLabels(m, ids), typeIds: null, special: sp };
  }
  const text = typeof flags.text === "string" ? flags.text : positional;
  if (!text.trim()) throw new UsageError('give the input text (--text "...") or token ids (--input-ids 1,2,3)');
  if (!m.tokenizer) throw new Error(`${m.dir} has no tokenizer.json, so text cannot be turned into token ids: add the model's tokenizer.json to the folder, or give ids with --input-ids 1,2,3`);
  const enc = m.tokenizer.encodeDetailed(text);
  const over = vocab !== null ? enc.ids.find((i) => i >= vocab) : undefined;
  if (over !== undefined) throw new Error(`tokenizer.json gives token id ${over}, but the model's vocab_size is ${vocab}: the tokenizer does not belong to this model`);
  return {
    ids: enc.ids, labels: m.tokenizer.labels(enc.ids),
    typeIds: m.tokenizer.modelInputNames.includes("token_type_ids") ? enc.typeIds : null,
    special: enc.specialTokensMask.flatMap((s, i) => (s ? [i] : [])),
  };
}

/** The id that stands in for an occluded token (blank-out): [MASK], else the unknown or padding token; null for
 *  images and for a folder with none of them. */
export function occlusionToken(m: HFLoaded): number | null {
  if (kindOf(m.model.architecture) === "image") return null;
  const sp = m.tokenizer?.special;
  const id = sp?.mask?.id ?? sp?.unk?.id ?? sp?.pad?.id ?? m.config.pad_token_id;
  return typeof id === "number" ? id : null;
}

function hfInputs(t: TextInput, occlude: readonly number[] = [], blank: number | null = null): HFInputs {
  const T = t.ids.length;
  let ids = t.ids;
  if (occlude.length) {
    if (blank === null) throw new Error("this model has no [MASK], unknown or padding token to blank tokens out with");
    ids = ids.slice();
    for (const j of occlude) ids[j] = blank;
  }
  const o: HFInputs = { inputIds: tensor([ids], { dtype: "int32" }), attentionMask: tensor([new Array(T).fill(1)], { dtype: "int32" }) };
  if (t.typeIds) o.tokenTypeIds = tensor([t.typeIds], { dtype: "int32" });
  return o;
}

/** The image as pixel values (1, C, S, S): bilinear resize to image_size, rescale 1/255, normalise (x − mean) / std. */
export function imageInput(m: HFLoaded, file: string): Tensor { return resizedImage(m, file).pixelValues; }

/** pixelValues and the resized picture itself (S x S, C channels interleaved, values 0..1) for overlays. */
function resizedImage(m: HFLoaded, file: string): { pixelValues: Tensor; picture: Float32Array; size: number; channels: number } {
  const S = num(m.config, "image_size") ?? 224, C = num(m.config, "num_channels") ?? 3;
  let mean: number[] = [0.5, 0.5, 0.5], std: number[] = [0.5, 0.5, 0.5];
  const pp = join(m.dir, "preprocessor_config.json");
  if (existsSync(pp)) {
    const p = JSON.parse(readFileSync(pp, "utf8")) as Record<string, unknown>;
    const arr = (v: unknown, d: number[]) => (Array.isArray(v) && v.every((x) => typeof x === "number") ? v as number[] : typeof v === "number" ? [v, v, v] : d);
    if (p.do_normalize !== false) { mean = arr(p.image_mean, mean); std = arr(p.image_std, std); } else { mean = [0, 0, 0]; std = [1, 1, 1]; }
  }
  const img = readImageFile(file);
  const { width: W, height: H, channels: ch, data } = img;
  // RGB value of source pixel (x, y) channel c: grey images repeat their one channel, alpha is dropped
  const at = (x: number, y: number, c: number) => data[(y * W + x) * ch + (ch >= 3 ? c : 0)];
  const out = new Float32Array(C * S * S), picture = new Float32Array(S * S * C);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < S; i++) {
      // pixel centres aligned (align_corners = False), as PIL / torchvision bilinear
      const sy = Math.min(Math.max((i + 0.5) * H / S - 0.5, 0), H - 1), y0 = Math.floor(sy), y1 = Math.min(y0 + 1, H - 1), fy = sy - y0;
      for (let j = 0; j < S; j++) {
        const sx = Math.min(Math.max((j + 0.5) * W / S - 0.5, 0), W - 1), x0 = Math.floor(sx), x1 = Math.min(x0 + 1, W - 1), fx = sx - x0;
        const src = C === 1 && ch >= 3 ? (x: number, y: number) => (at(x, y, 0) + at(x, y, 1) + at(x, y, 2)) / 3 : (x: number, y: number) => at(x, y, c);
        const v = (1 - fy) * ((1 - fx) * src(x0, y0) + fx * src(x1, y0)) + fy * ((1 - fx) * src(x0, y1) + fx * src(x1, y1));
        out[(c * S + i) * S + j] = (v / 255 - mean[c % mean.length]) / std[c % std.length];
        picture[(i * S + j) * C + c] = v / 255;
      }
    }
  }
  return { pixelValues: tensor(out, { dtype: "float32" }).reshape([1, C, S, S]), picture, size: S, channels: C };
}

// ---------------------------------------------------------------------------------------------------------- predict
function labelOf(cfg: HFConfig, i: number): string {
  const m = cfg.id2label as Record<string, unknown> | undefined;
  return typeof m?.[String(i)] === "string" ? m[String(i)] as string : `LABEL_${i}`;
}
function softmaxRow(a: ArrayLike<number>, off: number, n: number): number[] {
  let mx = -Infinity;
  for (let i = 0; i < n; i++) mx = Math.max(mx, a[off + i]);
  const e = Array.from({ length: n }, (_, i) => Math.exp(a[off + i] - mx)), s = e.reduce((x, y) => x + y, 0);
  return e.map((x) => x / s);
}
const topK = (p: number[], k: number) => p.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, k);

function eosOf(m: HFLoaded): number | null {
  for (const src of [m.generationConfig, m.config]) {
    const v = src?.eos_token_id;
    if (typeof v === "number") return v;
    if (Array.isArray(v) && typeof v[0] === "number") return v[0];
  }
  return null;
}

/** Readable labels of ids; an id the tokenizer does not know (a model vocabulary larger than the tokenizer's) shows as
 *  "[id N]" rather than failing the whole output. */
export function tokenLabels(m: HFLoaded, ids: number[]): string[] {
  const tok = m.tokenizer;
  if (!tok) return ids.map(String);
  return ids.map((i) => (i < tok.vocabSize && tok.idToToken(i) !== undefined ? tok.labels([i])[0] : `[id ${i}]`));
}

function decode(m: HFLoaded, ids: number[]): string {
  const tok = m.tokenizer;
  if (!tok) return ids.join(",");
  if (ids.some((i) => i >= tok.vocabSize || tok.idToToken(i) === undefined)) return `${tokenLabels(m, ids).join(" ")} (ids beyond tokenizer.json's vocabulary)`;
  return tok.decode(ids, { skipSpecialTokens: true });
}

function maxTokens(flags: Flags): number {
  const v = flags["max-tokens"];
  if (v === undefined) return 20;
  if (typeof v !== "string" || !/^\d+$/.test(v)) throw new UsageError(`--max-tokens must be an integer >= 0, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Greedy generation: decoders continue the prompt, encoder–decoders translate / summarise it. */
export function generateIds(m: HFLoaded, inp: TextInput, n: number): number[] {
  if (!m.model.generate) throw new Error(`${m.model.architecture} cannot generate`);
  const seq = m.model.generate(hfInputs(inp), { maxNewTokens: n, eosTokenId: eosOf(m) }).sequences;
  const all = Array.from(seq.dataSync() as Int32Array, Number);
  // decoders return prompt + new tokens; encoder–decoders the decoder start token + new tokens
  return kindOf(m.model.architecture) === "causal" ? all.slice(inp.ids.length) : all.slice(1);
}

export async function hfPredict(dir: string, flags: Flags, positional: string): Promise<number> {
  const m = await loadHF(dir);
  const arch = m.model.architecture, kind = kindOf(arch), json = flags.json === true;
  const r: Record<string, unknown> = { architecture: arch };
  if (kind === "base") throw new Error(`${arch} has no head (no logits): there is nothing to predict (info works)`);
  checkInputKind(m, flags);
  if (kind === "image") {
    const file = typeof flags.image === "string" ? flags.image : positional;
    if (!file) throw new UsageError("ViT needs an image: --image FILE (PNG or PGM)");
    const logits = noGrad(() => m.model.forward({ pixelValues: imageInput(m, file) }).logits!);
    const C = logits.shape[1], p = softmaxRow(logits.dataSync() as Float32Array, 0, C);
    r.top = topK(p, 5).map(([v, i]) => ({ label: labelOf(m.config, i), index: i, probability: v }));
  } else {
    const inp = textInput(m, flags, positional);
    if (kind === "classify") {
      const logits = noGrad(() => m.model.forward(hfInputs(inp)).logits!);
      const C = logits.shape[1], p = softmaxRow(logits.dataSync() as Float32Array, 0, C);
      r.top = topK(p, C).map(([v, i]) => ({ label: labelOf(m.config, i), index: i, probability: v }));
    } else if (kind === "mlm") {
      const maskId = m.tokenizer?.special.mask?.id;
      if (maskId === undefined) throw new Error("masked-LM predict needs the tokenizer's [MASK] token: add tokenizer.json to the folder");
      const pos = inp.ids.flatMap((t, i) => (t === maskId ? [i] : []));
      if (!pos.length) throw new UsageError(`the input has no ${m.tokenizer!.special.mask!.token} token to fill`);
      const logits = noGrad(() => m.model.forward(hfInputs(inp)).logits!);
      const V = logits.shape[2], d = logits.dataSync() as Float32Array;
      r.masks = pos.map((t) => ({ position: t, top: topK(softmaxRow(d, t * V, V), 5).map(([v, i]) => ({ token: tokenLabels(m, [i])[0], id: i, probability: v })) }));
    } else {
      const ids = noGrad(() => generateIds(m, inp, maxTokens(flags)));
      r.ids = ids; r.text = decode(m, ids);
    }
  }
  if (json) { console.log(JSON.stringify(r)); return 0; }
  if (r.top) {
    const top = r.top as { label: string; probability: number }[], w = Math.max(...top.map((x) => x.label.length));
    console.log(top[0].label);
    for (const x of top) console.log(`  ${x.label.padEnd(w)}  probability ${x.probability.toFixed(4)}`);
  } else if (r.masks) {
    for (const mk of r.masks as { position: number; top: { token: string; probability: number }[] }[]) {
      console.log(`position ${mk.position}: ${mk.top.map((x) => `${x.token} ${x.probability.toFixed(4)}`).join("  ")}`);
    }
  } else console.log(r.text);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------- explain
/** The output explained: --target as a class / token name or an index, else the model's own choice. */
function pickTarget(target: string | undefined, argmax: number, n: number, byName: (s: string) => number | undefined, what: string): number {
  if (target === undefined) return argmax;
  const named = byName(target);
  if (named !== undefined) return named;
  if (/^\d+$/.test(target) && Number(target) < n) return Number(target);
  throw new UsageError(`--target "${target}" is neither a ${what} of this model nor an index in [0, ${n - 1}]`);
}

function argmaxOf(a: ArrayLike<number>, off: number, n: number): number {
  let b = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + b]) b = i;
  return b;
}

/** An ExplainTarget over an HF model: the score is the chosen logit; attention comes from the HF modules' records. */
export function hfExplainTarget(m: HFLoaded, flags: Flags, target: string | undefined): ExplainTarget {
  const arch = m.model.architecture, kind = kindOf(arch), model = m.model;
  const tokId = (s: string) => m.tokenizer?.tokenToId(s);
  checkInputKind(m, flags);
  if (kind === "image") {
    const file = typeof flags.image === "string" ? flags.image : undefined;
    if (!file) throw new UsageError("ViT needs an image: --image FILE (PNG or PGM)");
    const im = resizedImage(m, file), px = im.pixelValues;
    const logits = noGrad(() => model.forward({ pixelValues: px }).logits!);
    const C = logits.shape[1], d = logits.dataSync() as Float32Array;
    const label2id = (m.config.label2id ?? {}) as Record<string, number>;
    const c = pickTarget(target, argmaxOf(d, 0, C), C, (s) => label2id[s], "class name");
    const S = num(m.config, "image_size") ?? 224, P = num(m.config, "patch_size") ?? 16, g = S / P;
    const tokens = ["[CLS]", ...Array.from({ length: g * g }, (_, i) => `r${Math.floor(i / g)}c${i % g}`)];
    // the overlay shows the picture the model saw (1 or 3 channels)
    const image = im.channels === 1 || im.channels === 3 ? { width: S, height: S, pixels: im.picture, patch: P, grid: [g, g] as [number, number], prefix: 1 } : undefined;
    return { tokens, targetLabel: labelOf(m.config, c), targetIndex: c, special: [0], query: 0, image,
      score: () => model.forward({ pixelValues: px }).logits!.select(0, 0).select(0, c) };
  }
  const inp = textInput(m, flags);
  const ins = hfInputs(inp), blank = occlusionToken(m);
  const insOf = (o?: { occlude?: readonly number[] }) => (o?.occlude?.length ? hfInputs(inp, o.occlude, blank) : ins);
  if (kind === "seq2seq") return seq2seqTarget(m, inp, ins, flags, target);
  const T = inp.ids.length;
  const logits = noGrad(() => model.forward(ins).logits);
  const base = { tokens: inp.labels, special: inp.special };
  if (kind === "classify" || kind === "base") {
    if (!logits) throw new Error(`${arch} has no head (no logits) to explain`);
    const C = logits.shape[1], d = logits.dataSync() as Float32Array;
    const label2id = (m.config.label2id ?? {}) as Record<string, number>;
    const c = pickTarget(target, argmaxOf(d, 0, C), C, (s) => label2id[s], "class name");
    // BERT's pooler reads position 0 ([CLS]) whatever the ids are
    return { ...base, targetLabel: labelOf(m.config, c), targetIndex: c, query: 0,
      score: (o) => model.forward(insOf(o)).logits!.select(0, 0).select(0, c) };
  }
  // masked LM: the first mask's filling; causal LM: the next token after the prompt
  const V = logits!.shape[2], d = logits!.dataSync() as Float32Array;
  let pos = T - 1;
  if (kind === "mlm") {
    const maskId = m.tokenizer?.special.mask?.id;
    pos = maskId === undefined ? -1 : inp.ids.indexOf(maskId);
    if (pos < 0) throw new UsageError("masked-LM explain needs a [MASK] token in the input (and the folder's tokenizer.json to know its id)");
  }
  const t = pickTarget(target, argmaxOf(d, pos * V, V), V, tokId, "token");
  return { ...base, targetLabel: tokenLabels(m, [t])[0], targetIndex: t, query: pos,
    score: (o) => model.forward(insOf(o)).logits!.select(0, 0).select(0, pos).select(0, t) };
}

/**
 * Encoder–decoders: the explained output is one generated token (--target: its index among the generated tokens,
 * default 0); the encoder's self-attention stack is read through that position's cross-attention (mean over layers
 * and heads) as the readout over source positions.
 */
function seq2seqTarget(m: HFLoaded, inp: TextInput, ins: HFInputs, flags: Flags, target: string | undefined): ExplainTarget {
  const gen = noGrad(() => generateIds(m, inp, Math.max(1, maxTokens(flags))));
  if (target !== undefined && !/^\d+$/.test(target)) throw new UsageError(`--target for ${m.model.architecture} is the index of a generated token (0..${gen.length - 1}), got "${target}"`);
  const k = target === undefined ? 0 : Number(target);
  if (k >= gen.length) throw new UsageError(`--target ${k} is out of range: ${gen.length} token${gen.length === 1 ? " was" : "s were"} generated (use 0..${gen.length - 1}; --max-tokens generates more)`);
  const start = noGrad(() => m.model.generate!(ins, { maxNewTokens: 0 }).sequences.dataSync()[0]) as number;
  const dec = [start, ...gen.slice(0, k)], tok = gen[k];
  const decIns: HFInputs = { ...ins, decoderInputIds: tensor([dec], { dtype: "int32" }) };
  const out = noGrad(() => m.model.forward(decIns, { outputAttentions: true }));
  const cross = out.crossAttentions ?? [];
  if (!cross.length) throw new Error(`${m.model.architecture} returned no cross-attentions`);
  const T = inp.ids.length, readout = new Float64Array(T);
  for (const a of cross) {  // (1, H, Tdec, T): the last decoder row
    const [, H, Tq] = a.shape, d = a.dataSync() as Float32Array;
    for (let h = 0; h < H; h++) for (let j = 0; j < T; j++) readout[j] += d[(h * Tq + Tq - 1) * T + j] / (H * cross.length);
  }
  const label = tokenLabels(m, [tok])[0];
  return {
    tokens: inp.labels, special: inp.special, targetLabel: `${label} (output token ${k})`, targetIndex: tok, readout,
    layerFilter: (name) => name.includes("encoder"),
    score: (o) => m.model.forward(o?.occlude?.length ? { ...hfInputs(inp, o.occlude, occlusionToken(m)), decoderInputIds: decIns.decoderInputIds } : decIns)
      .logits!.select(0, 0).select(0, dec.length - 1).select(0, tok),
  };
}
