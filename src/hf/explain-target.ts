// Explaining and predicting with an imported Hugging Face model, browser-safe: the model's inputs from text or ids
// (its tokenizer), the ExplainTarget of each kind of model (classifier, masked LM, causal LM, encoder–decoder, ViT)
// and greedy generation. `attnflow predict|explain --model <hf-folder>` (cli/hf.ts) and the page's folder picker
// (examples/browser/explainers.ts, in the page's Web Worker) both build on it.
import { tensor } from "../creation.js";
import { noGrad } from "../autograd.js";
import type { Tensor } from "../tensor.js";
import type { ExplainTarget, Prediction, Truncation } from "../tasks/task.js";
import type { HFConfig, HFInputs, HFModel } from "./types.js";
import type { HFTokenizer } from "./tokenizer.js";

/** A usage mistake in the input or target (the command line answers it with exit code 2). */
export class HFInputError extends RangeError { constructor(m: string) { super(m); this.name = "HFInputError"; } }

/** A loaded folder: `dir` names it in messages. */
export interface HFLoaded { model: HFModel; config: HFConfig; tokenizer: HFTokenizer | null; generationConfig: Record<string, unknown> | null; dir: string }

const CAUSAL = new Set(["GPT2LMHeadModel", "LlamaForCausalLM", "MistralForCausalLM"]);
const SEQ2SEQ = new Set(["MarianMTModel", "BartForConditionalGeneration", "T5ForConditionalGeneration"]);
export type Kind = "classify" | "mlm" | "causal" | "seq2seq" | "image" | "base";
export function kindOf(arch: string): Kind {
  if (arch === "BertForSequenceClassification") return "classify";
  if (arch === "BertForMaskedLM") return "mlm";
  if (CAUSAL.has(arch)) return "causal";
  if (SEQ2SEQ.has(arch)) return "seq2seq";
  if (arch === "ViTForImageClassification") return "image";
  return "base";
}

export const num = (c: HFConfig, ...keys: string[]): number | null => {
  for (const k of keys) if (typeof c[k] === "number") return c[k] as number;
  return null;
};

/** Token ids and labels of the text (or --input-ids / --input): the ids the model reads; `truncation` says how a text
 *  longer than the model reads was cut. */
export interface TextInput { ids: number[]; labels: string[]; typeIds: number[] | null; special: number[]; truncation?: Truncation }

/**
 * How a text longer than the model reads is handled, as HF's tokenizer(…, truncation=True, max_length=N) does:
 * by default (truncation true) it is cut to the model's limit (inputLimit) or to maxLength, keeping the special
 * tokens the tokenizer adds at both ends; truncation false refuses it with an error naming the length and the limit.
 * side: which end loses tokens (default: tokenizer_config.json's truncation_side, else "left" for causal LMs, whose
 * next token follows the end of the prompt, and "right" for the others, as HF's default).
 * reserve: positions kept free for generated tokens (a causal LM generating N tokens reads prompt + N positions).
 */
export interface TruncationOptions { truncation?: boolean; maxLength?: number; side?: "left" | "right"; reserve?: number }

/**
 * The most positions a text input of this model may hold, and where the number comes from: config.json's
 * max_position_embeddings / n_positions (learned or trained positions; not T5's, whose relative positions have no
 * limit) and tokenizer_config.json's model_max_length, the smaller; null when neither says.
 */
export function inputLimit(m: HFLoaded): { limit: number; source: string } | null {
  const out: { limit: number; source: string }[] = [];
  if (m.config.model_type !== "t5") {
    for (const k of ["max_position_embeddings", "n_positions"]) {
      const v = m.config[k];
      if (typeof v === "number" && Number.isInteger(v) && v > 0) { out.push({ limit: v, source: `${k} ${v} in config.json` }); break; }
    }
  }
  const t = m.tokenizer?.modelMaxLength;
  if (typeof t === "number" && Number.isInteger(t) && t > 0) out.push({ limit: t, source: `model_max_length ${t} of the tokenizer` });
  return out.length ? out.reduce((a, b) => (b.limit < a.limit ? b : a)) : null;
}

/**
 * The input cut to `opts` (see TruncationOptions): tokens leave from one end of the text between the leading and
 * trailing special tokens ([CLS] … [SEP], <s> … </s>), which stay; ids and type ids alike. Unchanged when it fits.
 */
export function truncateInput(m: HFLoaded, inp: TextInput, opts: TruncationOptions = {}): TextInput {
  const lim = inputLimit(m), reserve = opts.reserve ?? 0;
  if (opts.maxLength !== undefined && (!Number.isInteger(opts.maxLength) || opts.maxLength < 1)) throw new HFInputError(`--max-length must be a positive integer, got ${opts.maxLength}`);
  if (opts.maxLength !== undefined && lim && opts.maxLength > lim.limit) {
    throw new HFInputError(`--max-length ${opts.maxLength} exceeds what the model reads: at most ${lim.limit} tokens (${lim.source})`);
  }
  const cap = opts.maxLength ?? lim?.limit;
  if (cap === undefined) return inp;
  const max = cap - reserve, T = inp.ids.length;
  const why = opts.maxLength !== undefined ? `--max-length ${opts.maxLength}` : lim!.source;
  const gen = reserve ? ` less ${reserve} generated token${reserve === 1 ? "" : "s"}` : "";
  if (max < 1) throw new HFInputError(`${reserve} new tokens leave no room for the prompt: the model reads at most ${cap} positions (${why}); generate fewer (--max-new-tokens)`);
  if (T <= max) return inp;
  if (opts.truncation === false) {
    throw new HFInputError(`the input is ${T} tokens, but the model reads at most ${max} (${why}${gen}): shorten it, or drop --no-truncation to cut it`);
  }
  const sp = new Set(inp.special);
  let a = 0;
  while (a < T && sp.has(a)) a++;
  let b = T;
  while (b > a && sp.has(b - 1)) b--;
  const room = max - a - (T - b);
  if (room < 1) throw new HFInputError(`the model reads at most ${max} tokens (${why}${gen}), and the special tokens alone take ${a + T - b}`);
  const side = opts.side ?? m.tokenizer?.truncationSide ?? (kindOf(m.model.architecture) === "causal" ? "left" : "right");
  const from = side === "right" ? a : b - room;
  const keep = [...Array.from({ length: a }, (_, i) => i), ...Array.from({ length: room }, (_, i) => from + i), ...Array.from({ length: T - b }, (_, i) => b + i)];
  const at = <X>(xs: X[]) => keep.map((i) => xs[i]);
  const newIndex = new Map(keep.map((i, j) => [i, j]));
  return {
    ids: at(inp.ids), labels: at(inp.labels), typeIds: inp.typeIds ? at(inp.typeIds) : null,
    special: inp.special.filter((i) => newIndex.has(i)).map((i) => newIndex.get(i)!),
    truncation: { total: T, kept: max, dropped: T - max, from: side === "right" ? "end" : "start" },
  };
}

/** One line for the terminal: how the input was cut. */
export function truncationNotice(t: Truncation): string {
  return `input truncated: ${t.total} tokens, the model reads at most ${t.kept}; ${t.dropped} dropped from the ${t.from} (--no-truncation refuses instead)`;
}

export function parseIds(s: string, flag: string, vocab: number | null): number[] {
  const parts = s.split(",").map((x) => x.trim());
  const bad = parts.find((p) => !/^\d+$/.test(p));
  if (bad !== undefined) throw new HFInputError(`--${flag} must be comma-separated non-negative integer token ids, got "${bad}" in "${s}"`);
  const ids = parts.map(Number);
  const big = vocab !== null ? ids.find((i) => i >= vocab) : undefined;
  if (big !== undefined) throw new HFInputError(`--${flag}: token id ${big} is outside the vocabulary (vocab_size ${vocab})`);
  return ids;
}

/** The model's input from text (its tokenizer) or ids, cut to the model's limit as `trunc` says (truncateInput). */
export function textInputOf(m: HFLoaded, src: { ids?: string; idsName?: string; text?: string }, trunc: TruncationOptions = {}): TextInput {
  return truncateInput(m, rawTextInput(m, src), trunc);
}

function rawTextInput(m: HFLoaded, src: { ids?: string; idsName?: string; text?: string }): TextInput {
  const idsFlag = src.ids !== undefined ? src.idsName ?? "input-ids" : undefined;
  const vocab = num(m.config, "vocab_size");
  if (idsFlag) {
    const ids = parseIds(src.ids!, idsFlag, vocab);
    // the tokenizer's special ids ([CLS], [SEP], <s>…) are specials as in a tokenized text; a [MASK] is an input
    const sp = m.tokenizer ? ids.flatMap((t, i) => (m.tokenizer!.specialIds.has(t) && t !== m.tokenizer!.special.mask?.id ? [i] : [])) : [];
    return { ids, labels: tokenLabels(m, ids), typeIds: null, special: sp };
  }
  const text = src.text ?? "";
  if (!text.trim()) throw new HFInputError('give the input text (--text "...") or token ids (--input-ids 1,2,3)');
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

export function hfInputs(t: TextInput, occlude: readonly number[] = [], blank: number | null = null): HFInputs {
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

/** hfInputs for a batch of occluded copies of the input: (K, T), copy k with occlusions[k] blanked out. */
export function hfBatchInputs(t: TextInput, occlusions: ReadonlyArray<readonly number[]>, blank: number | null): HFInputs {
  const K = occlusions.length, T = t.ids.length, ids = new Int32Array(K * T);
  occlusions.forEach((occ, k) => {
    ids.set(t.ids, k * T);
    if (occ.length && blank === null) throw new Error("this model has no [MASK], unknown or padding token to blank tokens out with");
    for (const j of occ) ids[k * T + j] = blank!;
  });
  const o: HFInputs = { inputIds: tensor(ids, { dtype: "int32" }).reshape([K, T]), attentionMask: tensor(new Int32Array(K * T).fill(1), { dtype: "int32" }).reshape([K, T]) };
  if (t.typeIds) { const ty = new Int32Array(K * T); for (let k = 0; k < K; k++) ty.set(t.typeIds, k * T); o.tokenTypeIds = tensor(ty, { dtype: "int32" }).reshape([K, T]); }
  return o;
}

export function labelOf(cfg: HFConfig, i: number): string {
  const m = cfg.id2label as Record<string, unknown> | undefined;
  return typeof m?.[String(i)] === "string" ? m[String(i)] as string : `LABEL_${i}`;
}
export function softmaxRow(a: ArrayLike<number>, off: number, n: number): number[] {
  let mx = -Infinity;
  for (let i = 0; i < n; i++) mx = Math.max(mx, a[off + i]);
  const e = Array.from({ length: n }, (_, i) => Math.exp(a[off + i] - mx)), s = e.reduce((x, y) => x + y, 0);
  return e.map((x) => x / s);
}
export const topK = (p: number[], k: number) => p.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, k);

export function eosOf(m: HFLoaded): number | null {
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

/** Labels of an encoder–decoder's output ids: a tokenizer with its own target vocabulary (Marian with separate_vocabs)
 *  labels them from it; otherwise as tokenLabels. */
export function outputLabels(m: HFLoaded, ids: number[]): string[] {
  const t = m.tokenizer as (HFTokenizer & { targetLabels?: (ids: readonly number[]) => string[] }) | null;
  return t?.targetLabels ? t.targetLabels(ids) : tokenLabels(m, ids);
}

export function decodeIds(m: HFLoaded, ids: number[]): string {
  const tok = m.tokenizer;
  if (!tok) return ids.join(",");
  if ((tok as { targetLabels?: unknown }).targetLabels) return tok.decode(ids, { skipSpecialTokens: true });   // Marian: the target side
  if (ids.some((i) => i >= tok.vocabSize || tok.idToToken(i) === undefined)) return `${tokenLabels(m, ids).join(" ")} (ids beyond tokenizer.json's vocabulary)`;
  return tok.decode(ids, { skipSpecialTokens: true });
}

/** Greedy generation: decoders continue the prompt, encoder–decoders translate / summarise it. */
export function generateIds(m: HFLoaded, inp: TextInput, n: number): number[] {
  if (!m.model.generate) throw new Error(`${m.model.architecture} cannot generate`);
  const seq = m.model.generate(hfInputs(inp), { maxNewTokens: n, eosTokenId: eosOf(m) }).sequences;
  const all = Array.from(seq.dataSync() as Int32Array, Number);
  // decoders return prompt + new tokens; encoder–decoders the decoder start token + new tokens
  return kindOf(m.model.architecture) === "causal" ? all.slice(inp.ids.length) : all.slice(1);
}

/** The output explained: --target as a class / token name or an index, else the model's own choice. */
export function pickTarget(target: string | undefined, argmax: number, n: number, byName: (s: string) => number | undefined, what: string): number {
  if (target === undefined) return argmax;
  const named = byName(target);
  if (named !== undefined) return named;
  if (/^\d+$/.test(target) && Number(target) < n) return Number(target);
  throw new HFInputError(`--target "${target}" is neither a ${what} of this model nor an index in [0, ${n - 1}]`);
}

export function argmaxOf(a: ArrayLike<number>, off: number, n: number): number {
  let b = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + b]) b = i;
  return b;
}

/** A ViT target: the class logit (the model's choice, or `target` by name or index) over the picture's patches.
 *  `im`: pixel values (1, C, S, S) and the picture itself (S x S, C interleaved, 0..1) for the overlay. */
export function hfImageTarget(m: HFLoaded, im: { pixelValues: Tensor; picture: Float32Array; channels: number }, target: string | undefined): ExplainTarget {
  const model = m.model, px = im.pixelValues;
  const logits = noGrad(() => model.forward({ pixelValues: px }).logits!);
  const C = logits.shape[1], d = logits.dataSync() as Float32Array;
  const label2id = (m.config.label2id ?? {}) as Record<string, number>;
  const c = pickTarget(target, argmaxOf(d, 0, C), C, (s) => label2id[s], "class name");
  const S = num(m.config, "image_size") ?? 224, P = num(m.config, "patch_size") ?? 16, g = S / P;
  const tokens = ["[CLS]", ...Array.from({ length: g * g }, (_, i) => `r${Math.floor(i / g)}c${i % g}`)];
  // the overlay shows the picture the model saw (1 or 3 channels)
  const image = im.channels === 1 || im.channels === 3 ? { width: S, height: S, pixels: im.picture, patch: P, grid: [g, g] as [number, number], prefix: 1 } : undefined;
  return { tokens, targetLabel: labelOf(m.config, c), targetIndex: c, special: [0], query: 0, image,
    score: (o) => model.forward({ pixelValues: o?.occlude?.length ? occludePatches(px, o.occlude, P) : px }, { onEmbeddings: o?.onEmbeddings }).logits!.select(0, 0).select(0, c) };
}

/** A text target: classifier → the class logit; masked LM → the first [MASK]'s token; causal LM → the next token;
 *  encoder–decoder → generated token `target` (an index, default 0) of up to `maxTokens` greedy ones. */
export function hfTextTarget(m: HFLoaded, inp: TextInput, target: string | undefined, maxTokens = 20): ExplainTarget {
  const arch = m.model.architecture, kind = kindOf(arch), model = m.model;
  const tokId = (s: string) => m.tokenizer?.tokenToId(s);
  const ins = hfInputs(inp), blank = occlusionToken(m);
  const insOf = (o?: { occlude?: readonly number[] }) => (o?.occlude?.length ? hfInputs(inp, o.occlude, blank) : ins);
  if (kind === "seq2seq") return seq2seqTarget(m, inp, ins, maxTokens, target);
  const T = inp.ids.length;
  const logits = noGrad(() => model.forward(ins).logits);
  const base = { tokens: inp.labels, special: inp.special, ...(inp.truncation ? { truncation: { ...inp.truncation } } : {}) };
  if (kind === "classify" || kind === "base") {
    if (!logits) throw new Error(`${arch} has no head (no logits) to explain`);
    const C = logits.shape[1], d = logits.dataSync() as Float32Array;
    const label2id = (m.config.label2id ?? {}) as Record<string, number>;
    const c = pickTarget(target, argmaxOf(d, 0, C), C, (s) => label2id[s], "class name");
    // BERT's pooler reads position 0 ([CLS]) whatever the ids are
    return { ...base, targetLabel: labelOf(m.config, c), targetIndex: c, query: 0,
      score: (o) => model.forward(insOf(o), { onEmbeddings: o?.onEmbeddings }).logits!.select(0, 0).select(0, c),
      // blank-out: several occluded copies per forward pass
      scoreBatch: (occ) => model.forward(hfBatchInputs(inp, occ, blank)).logits!.select(1, c) };
  }
  // masked LM: the first mask's filling; causal LM: the next token after the prompt
  const V = logits!.shape[2], d = logits!.dataSync() as Float32Array;
  let pos = T - 1;
  if (kind === "mlm") {
    const maskId = m.tokenizer?.special.mask?.id;
    pos = maskId === undefined ? -1 : inp.ids.indexOf(maskId);
    if (pos < 0) throw new HFInputError("masked-LM explain needs a [MASK] token in the input (and the folder's tokenizer.json to know its id)");
  }
  const t = pickTarget(target, argmaxOf(d, pos * V, V), V, tokId, "token");
  return { ...base, targetLabel: tokenLabels(m, [t])[0], targetIndex: t, query: pos,
    score: (o) => model.forward(insOf(o), { onEmbeddings: o?.onEmbeddings }).logits!.select(0, 0).select(0, pos).select(0, t) };
}

/** Pixel values with the patches at positions `occlude` (1 = the first patch; 0 is [CLS]) set to 0 in every channel:
 *  after normalisation, 0 is the image_mean colour, the preprocessor's neutral grey. */
export function occludePatches(px: Tensor, occlude: readonly number[], P: number): Tensor {
  const [, C, S] = px.shape, g = S / P, d = Float32Array.from(px.dataSync() as Float32Array);
  for (const t of occlude) {
    if (!Number.isInteger(t) || t < 1 || t > g * g) throw new RangeError(`ViT blank-out: position ${t} is not a patch (1..${g * g}; 0 is [CLS])`);
    const r = Math.floor((t - 1) / g), q = (t - 1) % g;
    for (let c = 0; c < C; c++) for (let i = r * P; i < (r + 1) * P; i++) d.fill(0, (c * S + i) * S + q * P, (c * S + i) * S + (q + 1) * P);
  }
  return tensor(d, { dtype: "float32" }).reshape(px.shape);
}

/**
 * Encoder–decoders: the explained output is one generated token (--target: its index among the generated tokens,
 * default 0); the encoder's self-attention stack is read through that position's cross-attention (mean over layers
 * and heads) as the readout over source positions.
 */
function seq2seqTarget(m: HFLoaded, inp: TextInput, ins: HFInputs, maxTokens: number, target: string | undefined): ExplainTarget {
  const gen = noGrad(() => generateIds(m, inp, Math.max(1, maxTokens)));
  if (target !== undefined && !/^\d+$/.test(target)) throw new HFInputError(`--target for ${m.model.architecture} is the index of a generated token (0..${gen.length - 1}), got "${target}"`);
  const k = target === undefined ? 0 : Number(target);
  if (k >= gen.length) throw new HFInputError(`--target ${k} is out of range: ${gen.length} token${gen.length === 1 ? " was" : "s were"} generated (use 0..${gen.length - 1}; --max-tokens generates more)`);
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
  const label = outputLabels(m, [tok])[0];
  return {
    tokens: inp.labels, special: inp.special, targetLabel: `${label} (output token ${k})`, targetIndex: tok, readout,
    ...(inp.truncation ? { truncation: { ...inp.truncation } } : {}),
    decoder: { tokens: outputLabels(m, dec) },
    layerFilter: (name) => name.includes("encoder"),
    score: (o) => m.model.forward(o?.occlude?.length ? { ...hfInputs(inp, o.occlude, occlusionToken(m)), decoderInputIds: decIns.decoderInputIds } : decIns, { onEmbeddings: o?.onEmbeddings })
      .logits!.select(0, 0).select(0, dec.length - 1).select(0, tok),
  };
}

/** A ViT's input picture: pixelValues (1, C, S, S) and the picture itself (S·S·C interleaved, 0..1) for overlays. */
export interface HFImage { pixelValues: Tensor; picture: Float32Array; channels: number }

/** The side (config.image_size, default 224) a ViT reads pictures at. */
export const vitImageSize = (m: HFLoaded): number => num(m.config, "image_size") ?? 224;

/**
 * ViT preprocessing of an S×S RGBA picture (already drawn at vitImageSize): x/255, then (x − mean) / std with
 * preprocessor_config.json's image_mean / image_std (0.5 each by default; none when do_normalize is false); one channel
 * models read the mean of R, G and B.
 */
export function vitPixelsFromRgba(m: HFLoaded, rgba: ArrayLike<number>, pre: Record<string, unknown>): HFImage {
  const S = vitImageSize(m), C = num(m.config, "num_channels") ?? 3;
  if (rgba.length !== 4 * S * S) throw new HFInputError(`the picture has ${rgba.length} RGBA values; ${m.dir} reads ${S}×${S} pictures (${4 * S * S} values)`);
  const arr = (v: unknown, d: number[]) => (Array.isArray(v) ? v as number[] : typeof v === "number" ? [v, v, v] : d);
  const norm = pre.do_normalize !== false;
  const mean = norm ? arr(pre.image_mean, [0.5, 0.5, 0.5]) : [0, 0, 0], std = norm ? arr(pre.image_std, [0.5, 0.5, 0.5]) : [1, 1, 1];
  const px = new Float32Array(C * S * S), picture = new Float32Array(S * S * C);
  for (let i = 0; i < S * S; i++) {
    for (let c = 0; c < C; c++) {
      const v = (C === 1 ? (rgba[4 * i] + rgba[4 * i + 1] + rgba[4 * i + 2]) / 3 : rgba[4 * i + c]) / 255;
      px[c * S * S + i] = (v - mean[c % mean.length]) / std[c % std.length];
      picture[i * C + c] = v;
    }
  }
  return { pixelValues: tensor(px).reshape([1, C, S, S]), picture, channels: C };
}

/** A ViT's top-5 classes with their probabilities. */
export function hfImagePrediction(m: HFLoaded, im: HFImage): Prediction {
  const lg = noGrad(() => m.model.forward({ pixelValues: im.pixelValues }).logits!), C = lg.shape[1];
  const alts = topK(softmaxRow(lg.dataSync() as Float32Array, 0, C), 5).map(([v, i]) => ({ output: labelOf(m.config, i), score: v }));
  return { output: alts[0].output, alternatives: alts, scoreName: "probability" };
}

/**
 * A text model's prediction: a classifier's class probabilities, a masked LM's top 5 tokens for the first mask, and
 * for causal LMs and encoder–decoders the greedy output (up to `maxTokens`) with its probability (the product of each
 * chosen token's softmax probability).
 */
export function hfTextPrediction(m: HFLoaded, inp: TextInput, maxTokens = 20): Prediction {
  const arch = m.model.architecture, kind = kindOf(arch);
  if (kind === "base" || kind === "image") throw new HFInputError(`${m.dir}: ${arch} does not predict from a text`);
  if (kind === "classify") {
    const lg = noGrad(() => m.model.forward(hfInputs(inp)).logits!), C = lg.shape[1];
    const alts = topK(softmaxRow(lg.dataSync() as Float32Array, 0, C), C).map(([v, i]) => ({ output: labelOf(m.config, i), score: v }));
    return { output: alts[0].output, alternatives: alts, scoreName: "probability", ...(inp.truncation ? { details: { truncation: inp.truncation } } : {}) };
  }
  if (kind === "mlm") {
    const maskId = m.tokenizer?.special.mask?.id, pos = maskId === undefined ? -1 : inp.ids.indexOf(maskId);
    if (pos < 0) throw new HFInputError(`${arch} fills a ${m.tokenizer?.special.mask?.token ?? "[MASK]"} token: put one in the text`);
    const lg = noGrad(() => m.model.forward(hfInputs(inp)).logits!), V = lg.shape[2];
    const probs = softmaxRow(lg.dataSync() as Float32Array, pos * V, V);
    const alts = topK(probs, 5).map(([v, i]) => ({ output: tokenLabels(m, [i])[0], score: v }));
    return { output: alts[0].output, alternatives: alts, scoreName: "probability", details: { position: pos, argmax: argmaxOf(probs, 0, V), ...(inp.truncation ? { truncation: inp.truncation } : {}) } };
  }
  if (!m.model.generate) throw new Error(`${arch} cannot generate`);
  const out = noGrad(() => m.model.generate!(hfInputs(inp), { maxNewTokens: maxTokens, eosTokenId: eosOf(m), returnStepLogits: true }));
  const seq = Array.from(out.sequences.dataSync() as Int32Array, Number);
  const ids = kind === "causal" ? seq.slice(inp.ids.length) : seq.slice(1);
  let p = 1;
  ids.forEach((t, k) => { const l = out.stepLogits![k], V = l.shape.at(-1)!; p *= softmaxRow(l.dataSync() as Float32Array, 0, V)[t]; });
  const text = decodeIds(m, ids);
  return { output: text, alternatives: [{ output: text, score: p }], scoreName: "probability", details: { ids, ...(inp.truncation ? { truncation: inp.truncation } : {}) } };
}
