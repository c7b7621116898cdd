// The page's Hugging Face folder picker: the user picks a model folder (input type=file webkitdirectory), its files
// (input type=file multiple) or drops either on the page; fromPretrained reads them in the tab (Blob ranges: a large
// checkpoint is never read whole) and the folder becomes an explainer like the shipped models — predict + every
// explanation method, nothing uploaded. The tokenizer module (tokenizer.json, or Marian's .spm files) is imported on
// first use: the page's import map must name @huggingface/tokenizers, and @bufbuild/protobuf/wire for Marian's .spm
// files (explain.html names both).
//
// Kinds: sequence classification and ViT image classification (the class probabilities), masked LM (the first
// [MASK]'s top tokens), causal LM and encoder–decoders (greedy output, shown with its probability; explained: the first
// output token). The page hands in its own inputs and takes the explainer back through HFPickerHooks.
import { fromPretrained, setTokenizerLoader, blobReader } from "../../src/hf/pretrained.js";
import {
  type HFLoaded, type TextInput, argmaxOf, decodeIds, eosOf, hfImageTarget, hfInputs, hfTextTarget, kindOf, labelOf, softmaxRow, textInputOf,
  tokenLabels, topK,
} from "../../src/hf/explain-target.js";
import type { HFTokenizer } from "../../src/hf/tokenizer.js";
import type { ExplainTarget, Prediction } from "../../src/tasks/task.js";
import type { Module } from "../../src/nn/module.js";
import { noGrad } from "../../src/autograd.js";
import { tensor } from "../../src/creation.js";
import type { Tensor } from "../../src/tensor.js";

/** What the page gets back: the same shape as its own explainers. */
export interface HFExplainer {
  kind: "text" | "image";
  name: string;
  model: Module;
  predict(): Prediction;
  target(): ExplainTarget;
}

export interface HFPickerHooks {
  /** The page's text input (throws when empty). */
  text(): string;
  /** The page's image file input (ViT folders read the picked image). */
  imageInput: HTMLInputElement;
  use(e: HFExplainer): void;
  error(e: unknown): void;
  status(s: string): void;
}

/** All files of a dropped folder (its top level and sub-folders, by path), or the dropped files. */
async function droppedFiles(dt: DataTransfer): Promise<File[]> {
  const entries = Array.from(dt.items).map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (!entries.length) return Array.from(dt.files);
  const out: File[] = [];
  const walk = async (e: FileSystemEntry): Promise<void> => {
    if (e.isFile) { out.push(await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej))); return; }
    const reader = (e as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const c of batch) await walk(c);
    }
  };
  for (const e of entries) await walk(e);
  return out;
}

/** The folder's name: the common first path part of webkitRelativePath, else "picked files". */
function folderName(files: File[]): string {
  const first = files[0]?.webkitRelativePath?.split("/")[0];
  return first && files.every((f) => f.webkitRelativePath.startsWith(first + "/")) ? first : "picked files";
}

/** Pixel values (1, C, S, S) of a picture for ViT: drawn at S x S (the browser's resampling), x/255, (x − mean) / std. */
async function vitPixels(m: HFLoaded, file: Blob, pre: Record<string, unknown>): Promise<{ pixelValues: Tensor; picture: Float32Array; channels: number }> {
  const S = typeof m.config.image_size === "number" ? m.config.image_size : 224, C = typeof m.config.num_channels === "number" ? m.config.num_channels : 3;
  const arr = (v: unknown, d: number[]) => (Array.isArray(v) ? v as number[] : typeof v === "number" ? [v, v, v] : d);
  const norm = pre.do_normalize !== false;
  const mean = norm ? arr(pre.image_mean, [0.5, 0.5, 0.5]) : [0, 0, 0], std = norm ? arr(pre.image_std, [0.5, 0.5, 0.5]) : [1, 1, 1];
  const bmp = await createImageBitmap(file);
  const canvas = document.createElement("canvas");
  canvas.width = S; canvas.height = S;
  const ctx = canvas.getContext("2d")!;
  ctx.drawImage(bmp, 0, 0, S, S);
  const rgba = ctx.getImageData(0, 0, S, S).data, px = new Float32Array(C * S * S), picture = new Float32Array(S * S * C);
  for (let i = 0; i < S * S; i++) {
    for (let c = 0; c < C; c++) {
      const v = (C === 1 ? (rgba[4 * i] + rgba[4 * i + 1] + rgba[4 * i + 2]) / 3 : rgba[4 * i + c]) / 255;
      px[c * S * S + i] = (v - mean[c % mean.length]) / std[c % std.length];
      picture[i * C + c] = v;
    }
  }
  return { pixelValues: tensor(px).reshape([1, C, S, S]), picture, channels: C };
}

/** Greedy output and its probability (the product of each chosen token's softmax probability). */
function generated(m: HFLoaded, inp: TextInput, n: number): { ids: number[]; probability: number } {
  const out = noGrad(() => m.model.generate!(hfInputs(inp), { maxNewTokens: n, eosTokenId: eosOf(m), returnStepLogits: true }));
  const seq = Array.from(out.sequences.dataSync() as Int32Array, Number);
  const gen = kindOf(m.model.architecture) === "causal" ? seq.slice(inp.ids.length) : seq.slice(1);
  let p = 1;
  gen.forEach((t, k) => { const l = out.stepLogits![k], V = l.shape.at(-1)!; p *= softmaxRow(l.dataSync() as Float32Array, 0, V)[t]; });
  return { ids: gen, probability: p };
}

// the image-input listener of the loaded ViT folder (replaced when another folder is loaded)
let imageListener: AbortController | null = null;

/** An explainer over an HF folder read from the picked files. */
export async function explainerFromFiles(files: File[], hooks: HFPickerHooks): Promise<HFExplainer> {
  if (!files.length) throw new Error("no files picked");
  const tk = await import("../../src/hf/tokenizer.js").catch((e: Error) => {
    throw new Error(`the tokenizer module did not load (the page's import map must name @huggingface/tokenizers and @bufbuild/protobuf/wire): ${e.message}`);
  });
  setTokenizerLoader(tk.tokenizerFromReader);
  const name = folderName(files);
  hooks.status(`reading ${name} (${files.length} files) in this tab…`);
  const reader = blobReader(files);
  const p = await fromPretrained(reader);
  p.model.eval();
  const m: HFLoaded = { model: p.model, config: p.config, tokenizer: p.tokenizer as HFTokenizer | null, generationConfig: p.generationConfig, dir: name };
  const arch = p.model.architecture, kind = kindOf(arch);
  if (kind === "base") throw new Error(`${name}: ${arch} has no head (no logits): there is nothing to predict or explain`);
  const label = `${name} (${arch}, Hugging Face folder read in this tab)`;
  if (kind === "image") {
    const preBytes = await reader.readFile("preprocessor_config.json");
    const pre = preBytes ? JSON.parse(new TextDecoder().decode(preBytes)) as Record<string, unknown> : {};
    let im: Awaited<ReturnType<typeof vitPixels>> | null = null;
    const load = async () => { const f = hooks.imageInput.files?.[0]; im = f ? await vitPixels(m, f, pre) : null; };
    imageListener?.abort();
    imageListener = new AbortController();
    hooks.imageInput.addEventListener("change", () => { load().catch(hooks.error); }, { signal: imageListener.signal });
    await load();
    const need = () => { if (!im) throw new Error("choose an image"); return im; };
    return {
      kind: "image", name: label, model: p.model,
      predict: () => {
        const lg = noGrad(() => p.model.forward({ pixelValues: need().pixelValues }).logits!), C = lg.shape[1];
        const alts = topK(softmaxRow(lg.dataSync() as Float32Array, 0, C), 5).map(([v, i]) => ({ output: labelOf(m.config, i), score: v }));
        return { output: alts[0].output, alternatives: alts, scoreName: "probability" };
      },
      target: () => hfImageTarget(m, need(), undefined),
    };
  }
  imageListener?.abort();
  const input = () => textInputOf(m, { text: hooks.text() });
  const predict = (): Prediction => {
    const inp = input();
    if (kind === "classify") {
      const lg = noGrad(() => p.model.forward(hfInputs(inp)).logits!), C = lg.shape[1];
      const alts = topK(softmaxRow(lg.dataSync() as Float32Array, 0, C), C).map(([v, i]) => ({ output: labelOf(m.config, i), score: v }));
      return { output: alts[0].output, alternatives: alts, scoreName: "probability" };
    }
    if (kind === "mlm") {
      const maskId = m.tokenizer?.special.mask?.id, pos = maskId === undefined ? -1 : inp.ids.indexOf(maskId);
      if (pos < 0) throw new Error(`${arch} fills a ${m.tokenizer?.special.mask?.token ?? "[MASK]"} token: put one in the text`);
      const lg = noGrad(() => p.model.forward(hfInputs(inp)).logits!), V = lg.shape[2];
      const probs = softmaxRow(lg.dataSync() as Float32Array, pos * V, V);
      const alts = topK(probs, 5).map(([v, i]) => ({ output: tokenLabels(m, [i])[0], score: v }));
      return { output: alts[0].output, alternatives: alts, scoreName: "probability", details: { position: pos, argmax: argmaxOf(probs, 0, V) } };
    }
    const g = generated(m, inp, 20);
    const text = decodeIds(m, g.ids);
    return { output: text, alternatives: [{ output: text, score: g.probability }], scoreName: "probability", details: { ids: g.ids } };
  };
  return { kind: "text", name: label, model: p.model, predict, target: () => hfTextTarget(m, input(), undefined, 1) };
}

/** Adds the folder picker (folder input, files input, drop zone) to `container`; a loaded folder goes to hooks.use. */
export function installHFPicker(container: HTMLElement, hooks: HFPickerHooks): void {
  container.innerHTML = `<p class="hf-picker">or a Hugging Face model folder (config.json, model.safetensors, tokenizer files):
<label>folder <input id="hf-folder" type="file" webkitdirectory multiple></label>
<label>or its files <input id="hf-files" type="file" multiple></label>
<span id="hf-drop" class="hf-drop" style="display:inline-block;border:1px dashed #999;padding:4px 10px;border-radius:4px">or drop it here</span></p>`;
  const run = (files: File[]) => { explainerFromFiles(files, hooks).then(hooks.use).catch(hooks.error); };
  for (const id of ["hf-folder", "hf-files"]) {
    const el = container.querySelector<HTMLInputElement>(`#${id}`)!;
    el.addEventListener("change", () => { if (el.files?.length) run(Array.from(el.files)); });
  }
  // drops anywhere on the page: the browser would otherwise open the dropped file instead
  document.addEventListener("dragover", (e) => { e.preventDefault(); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer) droppedFiles(e.dataTransfer).then((f) => { if (f.length) run(f); }).catch(hooks.error);
  });
}
