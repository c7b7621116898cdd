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
import type { HFConfig } from "../src/hf/types.js";
import { generate, type GenerationOptions } from "../src/hf/generation.js";
import { ProgressBar } from "../src/node/progress.js";
import type { HFTokenizer } from "../src/hf/tokenizer.js";
import { readImageFile } from "../src/node/image-file.js";
import type { ExplainTarget } from "../src/tasks/task.js";
import { UsageError } from "./args.js";
import {
  HFInputError, type HFLoaded, type TextInput, type TruncationOptions, decodeIds, truncationNotice, hfImageTarget, hfInputs, hfTextTarget, kindOf, labelOf,
  softmaxRow, textInputOf, tokenLabels, topK,
} from "../src/hf/explain-target.js";
export { type HFLoaded, type TextInput, generateIds, kindOf, occlusionToken, tokenLabels } from "../src/hf/explain-target.js";

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

export async function loadHF(dir: string): Promise<HFLoaded> {
  const p = await fromPretrainedDir(dir);
  p.model.eval();
  return { model: p.model, config: p.config, tokenizer: p.tokenizer as HFTokenizer | null, generationConfig: p.generationConfig, dir };
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
    tokenizer: existsSync(join(dir, "tokenizer.json")) || existsSync(join(dir, "source.spm")),
    quantization: cfg.quantization_config ?? null,
    prunedHeads: cfg.pruned_heads && Object.keys(cfg.pruned_heads as object).length ? cfg.pruned_heads as Record<string, number[]> : null,
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
    ["tokenizer", existsSync(join(dir, "tokenizer.json")) ? "tokenizer.json" : info.tokenizer ? "source.spm, target.spm, vocab.json (Marian)" : "none (give token ids with --input-ids)"]);
  const qc = info.quantization as { quant_method?: string; modules?: unknown[] } | null;
  if (info.prunedHeads) rows.push(["pruned", `${Object.values(info.prunedHeads).reduce((k, hs) => k + hs.length, 0)} heads (layer:heads) ${Object.entries(info.prunedHeads).map(([l, hs]) => `${l}:${hs.join(",")}`).join(" ")}`]);
  if (qc) rows.push(["quantized", `${qc.quant_method}: ${Array.isArray(qc.modules) ? qc.modules.length : "?"} int8 layers (attnflow quantize)`]);
  console.log(`${dir} (Hugging Face folder)`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(12)}  ${v}`);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------- inputs

/** An image for ViT, text or ids for the others: the wrong kind of input is named rather than ignored. */
function checkInputKind(m: HFLoaded, flags: Flags): void {
  const image = kindOf(m.model.architecture) === "image";
  const wrong = (image ? ["text", "input", "input-ids"] : ["image"]).filter((k) => flags[k] !== undefined);
  if (wrong.length) throw new UsageError(`${m.model.architecture} reads ${image ? "an image (--image FILE)" : "text or token ids (--text, --input-ids)"}, not ${wrong.map((k) => `--${k}`).join(", ")}`);
}

export function textInput(m: HFLoaded, flags: Flags, positional = "", reserve = 0): TextInput {
  const idsName = (["input-ids", "input"] as const).find((k) => typeof flags[k] === "string");
  return usage(() => textInputOf(m, idsName ? { ids: flags[idsName] as string, idsName } : { text: typeof flags.text === "string" ? flags.text : positional }, truncationOf(flags, reserve)));
}

/** --truncation / --no-truncation / --max-length / --truncation-side (src/hf/explain-target.ts truncateInput). */
export function truncationOf(flags: Flags, reserve = 0): TruncationOptions {
  if (flags.truncation === true && flags["no-truncation"] === true) throw new UsageError("give --truncation or --no-truncation, not both");
  const o: TruncationOptions = { truncation: flags["no-truncation"] !== true, reserve };
  const ml = numOf(flags, "max-length");
  if (ml !== undefined) {
    if (!Number.isInteger(ml) || ml < 1) throw new UsageError(`--max-length must be a positive integer, got ${ml}`);
    o.maxLength = ml;
  }
  const side = flags["truncation-side"];
  if (side !== undefined) {
    if (side !== "left" && side !== "right") throw new UsageError(`--truncation-side must be left or right, got ${JSON.stringify(side)}`);
    o.side = side;
  }
  return o;
}

/** The tokens a causal LM's predict generates, known before the prompt is read: --max-new-tokens / --max-tokens,
 *  else generation_config.json's max_new_tokens, else 20 (a max_length there counts the prompt: nothing to reserve). */
function newTokensToReserve(m: HFLoaded, flags: Flags): number {
  if (kindOf(m.model.architecture) !== "causal") return 0;
  const g = m.generationConfig ?? m.config;
  if (flags["max-new-tokens"] !== undefined || flags["max-tokens"] !== undefined) return maxTokens(flags);
  if (typeof g.max_new_tokens === "number") return g.max_new_tokens;
  return g.max_length == null ? 20 : 0;
}

/** The library's input mistakes are usage errors here (exit code 2). */
function usage<T>(f: () => T): T {
  try { return f(); } catch (e) { if (e instanceof HFInputError) throw new UsageError(e.message); throw e; }
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


function maxTokens(flags: Flags): number {
  const v = flags["max-new-tokens"] ?? flags["max-tokens"];
  if (v === undefined) return 20;
  if (typeof v !== "string" || !/^\d+$/.test(v)) throw new UsageError(`--max-tokens must be an integer >= 0, got ${JSON.stringify(v)}`);
  return Number(v);
}


/** A numeric flag (already range-checked by its declaration in cli/commands.ts), or undefined when absent. */
function numOf(flags: Flags, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * predict's generation: HF's generate() with the folder's generation_config.json (num_beams, length_penalty,
 * no_repeat_ngram_size, … as HF applies them), overridden by --beams, --sample, --temperature, --top-k, --top-p,
 * --seed, --num-return-sequences, --repetition-penalty, --no-repeat-ngram-size, --length-penalty, --min-new-tokens,
 * --max-new-tokens (without it and without a max_length / max_new_tokens in the folder: 20 new tokens).
 */
export function generateForPredict(m: HFLoaded, inp: TextInput, flags: Flags): { ids: number[]; score?: number }[] {
  const g = m.generationConfig ?? m.config;
  const o: GenerationOptions = {};
  if (flags["max-new-tokens"] !== undefined || flags["max-tokens"] !== undefined || (g.max_new_tokens == null && g.max_length == null)) o.maxNewTokens = maxTokens(flags);
  const map: [string, keyof GenerationOptions][] = [["beams", "numBeams"], ["temperature", "temperature"], ["top-k", "topK"], ["top-p", "topP"],
    ["seed", "seed"], ["num-return-sequences", "numReturnSequences"], ["repetition-penalty", "repetitionPenalty"],
    ["no-repeat-ngram-size", "noRepeatNgramSize"], ["length-penalty", "lengthPenalty"], ["min-new-tokens", "minNewTokens"]];
  for (const [flag, key] of map) { const v = numOf(flags, flag); if (v !== undefined) (o as Record<string, number>)[key] = v; }
  if (flags.sample === true) o.doSample = true;
  if (!o.doSample && (o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined) && flags.sample !== true && g.do_sample !== true) {
    throw new UsageError("--temperature, --top-k and --top-p shape sampling: add --sample");
  }
  // progress on a terminal (tokens/s, ETA); silent in pipes and with --json
  const total = o.maxNewTokens ?? Math.max(1, Number(g.max_new_tokens ?? (Number(g.max_length ?? 20) - (kindOf(m.model.architecture) === "causal" ? inp.ids.length : 1))));
  const bar = new ProgressBar({ total, label: "generate", unit: "tok", quiet: flags.json === true || process.stderr.isTTY !== true });
  const { inputIds, attentionMask } = hfInputs(inp);                                    // what HF's generate() feeds a text model
  const out = generate(m.model, { inputIds, attentionMask }, { ...o, generationConfig: m.generationConfig, onStep: (s) => { bar.update(s + 1); } });
  bar.finish();
  const rows = out.sequences.toArray() as number[][], scores = out.sequencesScores ? Array.from(out.sequencesScores.dataSync()) : null;
  const causal = kindOf(m.model.architecture) === "causal";
  // decoders return prompt + new tokens; encoder–decoders the decoder start token + new tokens
  return rows.map((r, i) => ({ ids: causal ? r.slice(inp.ids.length) : r.slice(1), ...(scores ? { score: scores[i] } : {}) }));
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
    const inp = textInput(m, flags, positional, newTokensToReserve(m, flags));
    if (inp.truncation) { r.truncation = inp.truncation; process.stderr.write(`attnflow predict: ${truncationNotice(inp.truncation)}\n`); }
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
      const seqs = noGrad(() => generateForPredict(m, inp, flags));
      r.ids = seqs[0].ids; r.text = decodeIds(m, seqs[0].ids);
      if (seqs[0].score !== undefined) r.score = seqs[0].score;
      if (seqs.length > 1) r.sequences = seqs.map((q) => ({ ...q, text: decodeIds(m, q.ids) }));
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
  } else if (r.sequences) {
    for (const q of r.sequences as { text: string; score?: number }[]) console.log(q.score === undefined ? q.text : `${q.text}  (score ${q.score.toFixed(4)})`);
  } else console.log(r.text);
  return 0;
}

/** An ExplainTarget over an HF model (src/hf/explain-target.ts) from the command line's flags. */
export function hfExplainTarget(m: HFLoaded, flags: Flags, target: string | undefined): ExplainTarget {
  checkInputKind(m, flags);
  if (kindOf(m.model.architecture) === "image") {
    const file = typeof flags.image === "string" ? flags.image : undefined;
    if (!file) throw new UsageError("ViT needs an image: --image FILE (PNG or PGM)");
    return usage(() => hfImageTarget(m, resizedImage(m, file), target));
  }
  const inp = textInput(m, flags);
  return usage(() => hfTextTarget(m, inp, target, maxTokens(flags)));
}
