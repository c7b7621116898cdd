// Checks a Hugging Face tokenizer.json before @huggingface/tokenizers sees it, and fills the few places where that
// library diverges from HF's Rust `tokenizers` for the families attnflow imports. The library accepts malformed
// files silently (an unknown pattern becomes a no-op, a missing vocabulary a TypeError deep inside); here every
// problem is an HFImportError that names the field. Browser-safe.
import { HFImportError } from "./types.js";

type Json = Record<string, unknown>;

// The component types @huggingface/tokenizers 0.2 implements (its create_* factories).
const MODELS = ["BPE", "WordPiece", "Unigram"];
const NORMALIZERS = ["BertNormalizer", "Precompiled", "Sequence", "Replace", "NFC", "NFD", "NFKC", "NFKD", "Strip",
  "StripAccents", "Lowercase", "Prepend"];
const PRE_TOKENIZERS = ["BertPreTokenizer", "Sequence", "Whitespace", "WhitespaceSplit", "Metaspace", "ByteLevel",
  "Split", "Punctuation", "Digits", "Replace", "FixedLength"];
const POST_PROCESSORS = ["TemplateProcessing", "ByteLevel", "BertProcessing", "RobertaProcessing", "Sequence"];
const DECODERS = ["ByteLevel", "WordPiece", "Metaspace", "BPEDecoder", "CTC", "Sequence", "Replace", "Fuse", "Strip",
  "ByteFallback"];
// Split behaviours the library reproduces; MergedWithPrevious, MergedWithNext and Contiguous it treats as Isolated.
const SPLIT_BEHAVIORS = ["Isolated", "Removed"];

function fail(path: string, problem: string): never {
  throw new HFImportError(`tokenizer.json: ${path} ${problem}`);
}
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const describe = (v: unknown): string => (v === undefined ? "missing" : `got ${JSON.stringify(v)?.slice(0, 80)}`);

function checkType(node: unknown, path: string, supported: string[]): Json {
  if (!isObj(node)) fail(path, `must be an object or null, ${describe(node)}`);
  if (typeof node.type !== "string") fail(`${path}.type`, `must be a string, ${describe(node.type)}`);
  if (!supported.includes(node.type)) {
    fail(`${path}.type`, `"${node.type}" is not supported (supported: ${supported.join(", ")})`);
  }
  return node;
}

function checkPattern(node: Json, path: string): void {
  const p = node.pattern;
  if (!isObj(p) || (typeof p.String !== "string" && typeof p.Regex !== "string")) {
    fail(`${path}.pattern`, `must be {"String": ...} or {"Regex": ...}, ${describe(p)}`);
  }
}

function checkList(node: Json, key: string, path: string, each: (n: unknown, p: string) => void): void {
  const list = node[key];
  if (!Array.isArray(list)) fail(`${path}.${key}`, `must be an array, ${describe(list)}`);
  list.forEach((n, i) => each(n, `${path}.${key}[${i}]`));
}

function checkNormalizer(n: unknown, path: string): void {
  if (n === null) return;
  const node = checkType(n, path, NORMALIZERS);
  if (node.type === "Sequence") checkList(node, "normalizers", path, checkNormalizer);
  if (node.type === "Replace") checkPattern(node, path);
  if (node.type === "Prepend" && typeof node.prepend !== "string") fail(`${path}.prepend`, `must be a string, ${describe(node.prepend)}`);
}

function checkPreTokenizer(n: unknown, path: string): void {
  if (n === null) return;
  const node = checkType(n, path, PRE_TOKENIZERS);
  if (node.type === "Sequence") checkList(node, "pretokenizers", path, checkPreTokenizer);
  if (node.type === "Replace") checkPattern(node, path);
  if (node.type === "Split") {
    checkPattern(node, path);
    if (node.invert !== true && !SPLIT_BEHAVIORS.includes(String(node.behavior))) {
      fail(`${path}.behavior`, `"${String(node.behavior)}" is not supported (supported: ${SPLIT_BEHAVIORS.join(", ")})`);
    }
  }
}

function checkDecoder(n: unknown, path: string): void {
  if (n === null) return;
  const node = checkType(n, path, DECODERS);
  if (node.type === "Sequence") checkList(node, "decoders", path, checkDecoder);
  if (node.type === "Replace") checkPattern(node, path);
}

function checkSpecialPair(v: unknown, path: string): void {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== "string" || !Number.isInteger(v[1])) {
    fail(path, `must be [token, id], ${describe(v)}`);
  }
}

function checkTemplate(list: unknown, path: string, specials: Json): void {
  if (!Array.isArray(list)) fail(path, `must be an array, ${describe(list)}`);
  list.forEach((item, i) => {
    const p = `${path}[${i}]`;
    if (isObj(item) && isObj(item.SpecialToken)) {
      const id = item.SpecialToken.id;
      if (typeof id !== "string" || !isObj(specials[id])) fail(`${p}.SpecialToken.id`, `must name an entry of special_tokens, ${describe(id)}`);
      const ids = specials[id].ids;
      if (!Array.isArray(ids) || !ids.every(Number.isInteger)) fail(`${path.replace(/\.(single|pair)$/, "")}.special_tokens.${id}.ids`, `must be an array of integers, ${describe(ids)}`);
    } else if (isObj(item) && isObj(item.Sequence)) {
      if (item.Sequence.id !== "A" && item.Sequence.id !== "B") fail(`${p}.Sequence.id`, `must be "A" or "B", ${describe(item.Sequence.id)}`);
    } else {
      fail(p, `must be {"SpecialToken": ...} or {"Sequence": ...}, ${describe(item)}`);
    }
  });
}

function checkPostProcessor(n: unknown, path: string): void {
  if (n === null) return;
  const node = checkType(n, path, POST_PROCESSORS);
  if (node.type === "Sequence") checkList(node, "processors", path, checkPostProcessor);
  if (node.type === "BertProcessing" || node.type === "RobertaProcessing") {
    checkSpecialPair(node.cls, `${path}.cls`);
    checkSpecialPair(node.sep, `${path}.sep`);
  }
  if (node.type === "TemplateProcessing") {
    const specials = isObj(node.special_tokens) ? node.special_tokens : fail(`${path}.special_tokens`, `must be an object, ${describe(node.special_tokens)}`);
    checkTemplate(node.single, `${path}.single`, specials);
    checkTemplate(node.pair, `${path}.pair`, specials);
  }
}

function checkVocabObject(vocab: unknown, path: string): number {
  if (!isObj(vocab)) fail(path, `must be an object of token -> id, ${describe(vocab)}`);
  let n = 0;
  for (const [tok, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) fail(`${path}[${JSON.stringify(tok)}]`, `must be a non-negative integer id, ${describe(id)}`);
    n++;
  }
  return n;
}

function checkModel(m: unknown): void {
  const model = checkType(m, "model", MODELS);
  if (model.type === "Unigram") {
    const vocab = model.vocab;
    if (!Array.isArray(vocab) || vocab.length === 0) fail("model.vocab", `must be a non-empty array of [piece, score], ${describe(vocab)}`);
    vocab.forEach((e, i) => {
      if (!Array.isArray(e) || typeof e[0] !== "string" || typeof e[1] !== "number") fail(`model.vocab[${i}]`, `must be [piece, score], ${describe(e)}`);
    });
    if (!Number.isInteger(model.unk_id) || (model.unk_id as number) < 0 || (model.unk_id as number) >= vocab.length) {
      fail("model.unk_id", `must be an index into model.vocab (0..${vocab.length - 1}), ${describe(model.unk_id)}`);
    }
    if (model.byte_fallback === true) fail("model.byte_fallback", "is true: Unigram byte fallback is not supported by @huggingface/tokenizers");
    return;
  }
  checkVocabObject(model.vocab, "model.vocab");
  if (model.unk_token !== undefined && model.unk_token !== null && typeof model.unk_token !== "string") {
    fail("model.unk_token", `must be a string or null, ${describe(model.unk_token)}`);
  }
  if (model.type === "WordPiece" && typeof model.continuing_subword_prefix !== "string") {
    fail("model.continuing_subword_prefix", `must be a string, ${describe(model.continuing_subword_prefix)}`);
  }
  if (model.type === "BPE") {
    const merges = model.merges;
    if (!Array.isArray(merges)) fail("model.merges", `must be an array, ${describe(merges)}`);
    merges.forEach((mg, i) => {
      const ok = typeof mg === "string" ? mg.split(" ").length === 2 : Array.isArray(mg) && mg.length === 2 && mg.every((s) => typeof s === "string");
      if (!ok) fail(`model.merges[${i}]`, `must be "left right" or [left, right], ${describe(mg)}`);
    });
    if (typeof model.dropout === "number" && model.dropout > 0) fail("model.dropout", `is ${model.dropout}: BPE dropout (random segmentation) is not supported`);
  }
}

function checkAddedTokens(list: unknown): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) fail("added_tokens", `must be an array, ${describe(list)}`);
  list.forEach((t, i) => {
    if (!isObj(t)) fail(`added_tokens[${i}]`, `must be an object, ${describe(t)}`);
    if (!Number.isInteger(t.id) || (t.id as number) < 0) fail(`added_tokens[${i}].id`, `must be a non-negative integer, ${describe(t.id)}`);
    if (typeof t.content !== "string" || t.content === "") fail(`added_tokens[${i}].content`, `must be a non-empty string, ${describe(t.content)}`);
  });
}

/** Throws an HFImportError naming the first malformed or unsupported field of a parsed tokenizer.json. */
export function validateTokenizerJson(json: unknown): asserts json is Json {
  if (!isObj(json)) fail("(top level)", `must be a JSON object, ${describe(Array.isArray(json) ? "an array" : json)}`);
  if (!("model" in json)) fail("model", "is missing");
  checkModel(json.model);
  checkAddedTokens(json.added_tokens);
  checkNormalizer(json.normalizer ?? null, "normalizer");
  checkPreTokenizer(json.pre_tokenizer ?? null, "pre_tokenizer");
  checkPostProcessor(json.post_processor ?? null, "post_processor");
  checkDecoder(json.decoder ?? null, "decoder");
  // `truncation` and `padding` are ignored, as transformers ignores them: each call says how to truncate and pad.
}

/**
 * A copy of `json` that the library reads as HF's Rust code does: every optional top-level component present (the
 * library requires the keys), no `added_tokens` missing, and old Metaspace files (`add_prefix_space`, before
 * `prepend_scheme` existed) mapped to the scheme they meant — the library would prepend "▁" even for `false`.
 */
export function normalizeTokenizerJson(json: Json): Json {
  const copy = structuredClone(json);
  for (const k of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) copy[k] ??= null;
  copy.added_tokens ??= [];
  const fixMetaspace = (n: unknown): void => {
    if (!isObj(n)) return;
    if (n.type === "Metaspace" && n.prepend_scheme === undefined) n.prepend_scheme = n.add_prefix_space === false ? "never" : "always";
    for (const k of ["pretokenizers", "decoders"]) if (Array.isArray(n[k])) (n[k] as unknown[]).forEach(fixMetaspace);
  };
  fixMetaspace(copy.pre_tokenizer);
  fixMetaspace(copy.decoder);
  return copy;
}

// The patches below reach into @huggingface/tokenizers' objects (pinned to 0.2.0 in package.json); a release that
// reshapes them must fail here, not tokenize differently.
const internalsChanged = (what: string): Error =>
  new Error(`@huggingface/tokenizers no longer has ${what}: src/hf/tokenizer-json.ts must be updated for this version`);

interface PreTokenizerInstance { tokenizers?: PreTokenizerInstance[]; pre_tokenize_text?: (text: string, o?: unknown) => string[] }

/**
 * HF's Metaspace pre-tokenizer also splits at each "▁" (keeping it on the following piece) unless `split` is false;
 * the library never splits. For BPE vocabularies with merges across "▁" ("▁▁") that changes the ids, so the library's
 * instances (walked in step with their config) get the split added.
 */
export function patchMetaspaceSplit(config: unknown, instance: PreTokenizerInstance | null): void {
  if (!isObj(config) || !instance) return;
  if (config.type === "Sequence" && Array.isArray(config.pretokenizers)) {
    if (!instance.tokenizers) throw internalsChanged("SequencePreTokenizer.tokenizers");
    config.pretokenizers.forEach((c, i) => patchMetaspaceSplit(c, instance.tokenizers![i] ?? null));
    return;
  }
  if (config.type !== "Metaspace" || config.split === false) return;
  if (!instance.pre_tokenize_text) throw internalsChanged("MetaspacePreTokenizer.pre_tokenize_text");
  const replacement = typeof config.replacement === "string" ? config.replacement : "\u2581";
  const before = new RegExp(`(?=${replacement.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})`, "u");
  const original = instance.pre_tokenize_text.bind(instance);
  instance.pre_tokenize_text = (text, o) => original(text, o).flatMap((piece) => piece.split(before)).filter((p) => p !== "");
}

/** One post-processed sequence: ids, their vocabulary strings and token type ids. */
export interface Piece { ids: number[]; tokens: string[]; typeIds: number[]; special: boolean[] }

const concat = (a: Piece, b: Piece): Piece => ({
  ids: [...a.ids, ...b.ids], tokens: [...a.tokens, ...b.tokens], typeIds: [...a.typeIds, ...b.typeIds], special: [...a.special, ...b.special],
});
const special = (token: string, ids: number[], tokens: string[] | undefined, typeId: number): Piece => ({
  ids, tokens: tokens ?? ids.map(() => token), typeIds: ids.map(() => typeId), special: ids.map(() => true),
});
const withType = (p: Piece, typeId: number): Piece => ({ ...p, typeIds: p.ids.map(() => typeId) });

function applyTemplate(proc: Json, a: Piece, b: Piece | null): Piece {
  const template = (b ? proc.pair : proc.single) as Json[];
  const specials = proc.special_tokens as Record<string, { ids: number[]; tokens?: string[] }>;
  let out: Piece = { ids: [], tokens: [], typeIds: [], special: [] };
  for (const item of template) {
    if (isObj(item.SpecialToken)) {
      const { id, type_id } = item.SpecialToken as { id: string; type_id: number };
      out = concat(out, special(id, specials[id].ids, specials[id].tokens, type_id ?? 0));
    } else {
      const { id, type_id } = item.Sequence as { id: string; type_id: number };
      const seq = id === "A" ? a : b;
      if (seq) out = concat(out, withType(seq, type_id ?? 0));
    }
  }
  return out;
}

/**
 * Adds the special tokens of `post_processor` around one sequence or a pair, as HF's Rust post-processors do (the
 * library drops the second sequence for a ByteLevel post-processor and cannot be asked for the specials alone).
 * Without special tokens, or without a post-processor, a pair is the concatenation with type ids 0 then 1.
 */
export function postProcess(proc: Json | null, a: Piece, b: Piece | null, addSpecial: boolean): Piece {
  const plain = (): Piece => (b ? concat(withType(a, 0), withType(b, 1)) : withType(a, 0));
  if (!proc || !addSpecial) return plain();
  switch (proc.type) {
    case "TemplateProcessing":
      return applyTemplate(proc, a, b);
    case "BertProcessing":
    case "RobertaProcessing": {
      const [clsTok, clsId] = proc.cls as [string, number], [sepTok, sepId] = proc.sep as [string, number];
      const cls = special(clsTok, [clsId], undefined, 0), sep = (t: number) => special(sepTok, [sepId], undefined, t);
      const first = concat(concat(cls, withType(a, 0)), sep(0));
      if (!b) return first;
      // BERT: [CLS] A [SEP] B [SEP] with B's part type 1; RoBERTa/BART: <s> A </s></s> B </s>, all type 0 (as HF's
      // Python tokenizers return them; these models have a single token type).
      if (proc.type === "BertProcessing") return concat(concat(first, withType(b, 1)), sep(1));
      return concat(concat(concat(first, sep(0)), withType(b, 0)), sep(0));
    }
    case "Sequence": {
      // ByteLevel members only trim offsets; the one member that adds specials decides.
      const adding = (proc.processors as Json[]).filter((p) => p.type !== "ByteLevel");
      if (adding.length > 1) throw new HFImportError(`tokenizer.json: post_processor.processors has ${adding.length} processors that add special tokens; at most one is supported`);
      return postProcess(adding[0] ?? null, a, b, addSpecial);
    }
    default: // ByteLevel
      return plain();
  }
}

/** A TemplateProcessing config equivalent to HF's template strings such as "<s>:0 $A:0" (LlamaTokenizerFast builds these). */
export function templateFrom(single: string, pair: string, specials: Record<string, number>): Json {
  const parse = (s: string): Json[] => s.trim().split(/\s+/).map((part) => {
    const [name, type] = part.split(":");
    const type_id = Number(type ?? 0);
    return name === "$A" || name === "$B" ? { Sequence: { id: name.slice(1), type_id } } : { SpecialToken: { id: name, type_id } };
  });
  const special_tokens = Object.fromEntries(Object.entries(specials).map(([tok, id]) => [tok, { id: tok, ids: [id], tokens: [tok] }]));
  return { type: "TemplateProcessing", single: parse(single), pair: parse(pair), special_tokens };
}

interface NormalizerInstance {
  normalizers?: (NormalizerInstance | null)[];
  normalize?: (text: string) => string;
  tokenize_chinese_chars?: (text: string) => string;
}

// BERT's CJK ideograph blocks (the same ranges as HF's BertNormalizer), by code point.
const isChineseChar = (cp: number): boolean => (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf)
  || (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f)
  || (cp >= 0x2b820 && cp <= 0x2ceaf) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);

/**
 * Two places where the library's normalizers differ from HF's Rust ones:
 * - lowercasing: JavaScript's toLowerCase turns a word-final "Σ" into "ς" (Unicode's Final_Sigma rule); HF lowercases
 *   character by character ("σ"). Mapping Σ to σ first gives HF's result.
 * - BertNormalizer's handle_chinese_chars walks UTF-16 code units, so ideographs outside the Basic Multilingual Plane
 *   (CJK Extension B and later) are not spaced out; HF walks code points.
 */
export function patchNormalizers(config: unknown, instance: NormalizerInstance | null): void {
  if (!isObj(config) || !instance) return;
  if (config.type === "Sequence" && Array.isArray(config.normalizers)) {
    if (!instance.normalizers) throw internalsChanged("SequenceNormalizer.normalizers");
    config.normalizers.forEach((c, i) => patchNormalizers(c, instance.normalizers![i] ?? null));
    return;
  }
  const lowercases = config.type === "Lowercase" || (config.type === "BertNormalizer" && config.lowercase === true);
  if (lowercases && !instance.normalize) throw internalsChanged(`${config.type}.normalize`);
  if (config.type === "BertNormalizer" && !instance.tokenize_chinese_chars) throw internalsChanged("BertNormalizer.tokenize_chinese_chars");
  if (lowercases && instance.normalize) {
    const original = instance.normalize.bind(instance);
    instance.normalize = (text) => original(text.replace(/\u03a3/g, "\u03c3"));
  }
  if (config.type === "BertNormalizer" && instance.tokenize_chinese_chars) {
    instance.tokenize_chinese_chars = (text) => {
      let out = "";
      for (const ch of text) out += isChineseChar(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
      return out;
    };
  }
}
