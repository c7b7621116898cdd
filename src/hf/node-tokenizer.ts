// Node helper: a Hugging Face tokenizer from a model folder (tokenizer.json, plus tokenizer_config.json,
// special_tokens_map.json and config.json's model_type when present). The browser reads the same files with loadTokenizer().
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { HFImportError } from "./types.js";
import { loadTokenizer, type HFTokenizer, type HFTokenizerConfig } from "./tokenizer.js";
import { loadMarianTokenizer } from "./marian-tokenizer.js";

function readJson(path: string): unknown {
  const text = readFileSync(path, "utf8");
  try { return JSON.parse(text); } catch (e) { throw new HFImportError(`${path} is not valid JSON: ${(e as Error).message}`); }
}

/**
 * Reads the tokenizer files of an HF folder. special_tokens_map.json's entries override tokenizer_config.json's, as
 * transformers' from_pretrained applies them.
 */
export function loadTokenizerFromDir(dir: string): HFTokenizer {
  const file = join(dir, "tokenizer.json");
  if (!existsSync(file) && existsSync(join(dir, "source.spm"))) {
    // Marian: source.spm, target.spm, vocab.json (+ target_vocab.json), tokenizer_config.json
    const need = (n: string) => { const p = join(dir, n); if (!existsSync(p)) throw new HFImportError(`${dir} has source.spm but no ${n} (a Marian tokenizer needs source.spm, target.spm and vocab.json)`); return p; };
    const cfgPath = join(dir, "tokenizer_config.json"), mapPath = join(dir, "special_tokens_map.json"), tv = join(dir, "target_vocab.json");
    return loadMarianTokenizer({
      sourceSpm: new Uint8Array(readFileSync(need("source.spm"))), targetSpm: new Uint8Array(readFileSync(need("target.spm"))),
      vocab: readFileSync(need("vocab.json"), "utf8"), targetVocab: existsSync(tv) ? readFileSync(tv, "utf8") : undefined,
      config: { ...(existsSync(cfgPath) ? checkObject(readJson(cfgPath), cfgPath) : {}), ...(existsSync(mapPath) ? checkObject(readJson(mapPath), mapPath) : {}) },
    });
  }
  if (!existsSync(file)) {
    const present = existsSync(dir) ? readdirSync(dir).filter((f) => /vocab|merges|spm|sentencepiece|tokenizer/i.test(f)) : [];
    throw new HFImportError(`no tokenizer.json in ${dir}${present.length ? ` (found ${present.join(", ")}; attnflow reads tokenizer.json only)` : ""}`);
  }
  const cfgPath = join(dir, "tokenizer_config.json"), mapPath = join(dir, "special_tokens_map.json");
  const config: HFTokenizerConfig = existsSync(cfgPath) ? checkObject(readJson(cfgPath), cfgPath) : {};
  const specialTokensMap = existsSync(mapPath) ? checkObject(readJson(mapPath), mapPath) : undefined;
  const modelPath = join(dir, "config.json");
  const modelType = existsSync(modelPath) ? checkObject(readJson(modelPath), modelPath).model_type : undefined;
  return loadTokenizer(readJson(file), config, { modelType: typeof modelType === "string" ? modelType : undefined, specialTokensMap });
}

function checkObject(v: unknown, path: string): HFTokenizerConfig {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new HFImportError(`${path} must be a JSON object`);
  return v as HFTokenizerConfig;
}
