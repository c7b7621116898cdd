// `attnflow eval-faithfulness --model <hf-folder>`: the held-out inputs of an imported Hugging Face model and the
// output explained on each, for the faithfulness tables of cli/eval-faithfulness.ts.
//
// Inputs (--data):
//   a text file      one input per line (blank lines skipped): text, read by the folder's tokenizer.json; a folder
//                    without tokenizer.json reads comma-separated token ids per line instead ("5,6,7,8")
//   a directory      ViT: its image files (.png, .pgm, .ppm), sorted by name; text models: a fortune directory
//   (none)           text models: the held-out quotations of Debian's fortunes (the fortunes tasks' split);
//                    ViT needs --data
// The explained output (the score every method is compared on) is the model's own choice on the input:
//   sequence classification / ViT  the logit of the predicted class
//   masked LM                       the logit of the predicted token at the first [MASK]; an input without [MASK]
//                                   has its middle non-special token replaced by [MASK] (so that the explained
//                                   token is one the model must infer from the others)
//   causal LM (GPT-2, Llama)        the logit of the predicted next token after the input
//   encoder–decoders                the logit of the first generated token (source side explained, read through
//                                   that token's cross-attention)
// An input longer than the model's max positions is cut (classifiers keep the beginning, causal LMs the end) and
// reported as truncated.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import type { ExplainTarget, Truncation } from "../src/tasks/task.js";
import { FORTUNES_DIR, loadFortunes } from "../src/node/datasets.js";
import { hashOrder } from "../src/node/tasks/fortunes-classifier.js";
import { type HFLoaded, hfExplainTarget, kindOf } from "./hf.js";
import { inputLimit } from "../src/hf/explain-target.js";
import { UsageError } from "./args.js";

const IMAGE_EXT = new Set([".png", ".pgm", ".ppm", ".pnm"]);

/** One held-out input: how to build its target, and how it was cut (when it was). */
export interface HFFaithfulnessInput { target: () => ExplainTarget; truncation?: Truncation; source: string }

/** The ids of one line (text through the tokenizer, or comma-separated ids without one). */
function idsOfLine(m: HFLoaded, line: string, where: string): number[] {
  if (m.tokenizer) return m.tokenizer.encode(line);
  if (!/^\s*\d+(\s*,\s*\d+)*\s*$/.test(line)) {
    throw new UsageError(`${where}: ${m.dir} has no tokenizer.json, so each line of --data must be comma-separated token ids (e.g. 5,6,7,8), got ${JSON.stringify(line.slice(0, 60))}`);
  }
  const ids = line.split(",").map((x) => Number(x.trim()));
  const V = m.config.vocab_size;
  const big = typeof V === "number" ? ids.find((i) => i >= V) : undefined;
  if (big !== undefined) throw new UsageError(`${where}: token id ${big} is outside the vocabulary (vocab_size ${V})`);
  return ids;
}

/** The text lines (or fortunes) to evaluate, at most n. */
export function textSources(data: string | undefined, n: number): { text: string; where: string }[] {
  if (data === undefined || statSync(data).isDirectory()) {
    const dir = data ?? FORTUNES_DIR;
    if (data === undefined && !existsSync(dir)) throw new Error(`no --data given and Debian's fortunes are not installed (${dir}): install the fortunes package or give --data FILE (one input per line)`);
    return hashOrder(loadFortunes({ dir }).test).slice(0, n).map((e, i) => ({ text: e.text.replace(/\s+/g, " ").trim(), where: `${dir} held-out entry ${i}` }));
  }
  const lines = readFileSync(data, "utf8").split(/\r?\n/);
  return lines.map((text, i) => ({ text: text.trim(), where: `${data} line ${i + 1}` })).filter((x) => x.text !== "").slice(0, n);
}

/** The held-out inputs of an HF model, each with its explained target (see the file comment). */
export function hfFaithfulnessInputs(m: HFLoaded, data: string | undefined, n: number): HFFaithfulnessInput[] {
  const kind = kindOf(m.model.architecture);
  if (kind === "base") throw new Error(`${m.model.architecture} has no head (no logits): there is no output to explain`);
  if (kind === "image") {
    if (data === undefined || !existsSync(data) || !statSync(data).isDirectory()) throw new UsageError(`${m.model.architecture} reads images: give --data DIR, a directory of image files (.png, .pgm)`);
    const files = readdirSync(data).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort().slice(0, n);
    if (!files.length) throw new Error(`${data} holds no image files (.png, .pgm, .ppm)`);
    return files.map((f) => ({ source: join(data, f), target: () => hfExplainTarget(m, { image: join(data, f) }, undefined) }));
  }
  if (data !== undefined && !existsSync(data)) throw new UsageError(`--data ${data} does not exist`);
  const maxPos = inputLimit(m)?.limit ?? null, maskId = m.tokenizer?.special.mask?.id;
  return textSources(data, n).map(({ text, where }) => {
    let ids = idsOfLine(m, text, where), truncation: Truncation | undefined;
    if (maxPos !== null && ids.length > maxPos) {
      const total = ids.length;
      if (kind === "causal") ids = ids.slice(total - maxPos);
      else {
        // keep the closing special token ([SEP], </s>) a tokenized text ends with
        const last = ids[total - 1], closing = m.tokenizer?.specialIds.has(last) ?? false;
        ids = closing ? [...ids.slice(0, maxPos - 1), last] : ids.slice(0, maxPos);
      }
      truncation = { total, kept: maxPos, dropped: total - maxPos, from: kind === "causal" ? "start" : "end" };
    }
    if (kind === "mlm") {
      if (maskId === undefined) throw new Error("masked-LM faithfulness needs the tokenizer's [MASK] token: add tokenizer.json to the folder");
      if (!ids.includes(maskId)) {
        const inner = ids.map((_, i) => i).filter((i) => !m.tokenizer!.specialIds.has(ids[i]));
        if (!inner.length) throw new Error(`${where}: the input has no token to mask`);
        ids = ids.slice(); ids[inner[Math.floor((inner.length - 1) / 2)]] = maskId;
      }
    }
    const flags = { "input-ids": ids.join(","), "max-tokens": "1" };
    return { source: where, truncation, target: () => hfExplainTarget(m, flags, undefined) };
  });
}
