// Hugging Face tokenizers (tokenizer.json + tokenizer_config.json) for the imported models: byte-level BPE (GPT-2,
// BART), WordPiece (BERT), Unigram (T5) and SentencePiece-BPE with byte fallback (Llama). Segmentation is
// @huggingface/tokenizers (pure JS, runs in browsers); this module adds what transformers' PreTrainedTokenizerFast
// layers on top: special tokens from the config, LlamaTokenizerFast's add_bos/eos_token, truncation, padding on the
// configured side with an attention mask, token type ids only for models that take them, and labels for display.
// Browser-safe (src/hf/node-tokenizer.ts reads the files from a folder).
import { Tokenizer as LibTokenizer } from "@huggingface/tokenizers";
import { tensor } from "../creation.js";
import { HFImportError, type HFConfig, type HFInputs } from "./types.js";
import type { HFFileReader } from "./pretrained.js";
import { normalizeTokenizerJson, patchMetaspaceSplit, patchNormalizers, postProcess, templateFrom, validateTokenizerJson, type Piece } from "./tokenizer-json.js";

/** A parsed tokenizer_config.json merged with special_tokens_map.json (snake_case keys as HF writes them). */
export type HFTokenizerConfig = Record<string, unknown>;

export type SpecialRole = "bos" | "eos" | "unk" | "pad" | "cls" | "sep" | "mask";
export interface SpecialToken { token: string; id: number }

export interface EncodeOptions {
  /** Add the model's special tokens ([CLS]/[SEP], <s>, </s>…) as its post-processor says (default true). */
  addSpecialTokens?: boolean;
  /** Truncate the text tokens so that the result, special tokens included, has at most this many ids. */
  maxLength?: number;
}

export interface BatchOptions extends EncodeOptions {
  /** "longest" (default): pad to the longest row; "max_length": pad every row to maxLength; false: rows must be equally long. */
  padding?: "longest" | "max_length" | false;
  /** Override tokenizer_config.json's padding_side. */
  paddingSide?: "left" | "right";
  /** Pad with this id when the tokenizer has no pad token (GPT-2 and Llama users pass the eos id). */
  padTokenId?: number;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** Default: tokenizer_config.json's clean_up_tokenization_spaces (transformers' default for the class otherwise). */
  cleanUpTokenizationSpaces?: boolean;
}

/** One encoded text (or pair), as HF's `Encoding`. */
export interface HFEncoding {
  ids: number[];
  /** Vocabulary strings ("Ġthe", "##ing", "▁the", "<0x0A>"). */
  tokens: string[];
  typeIds: number[];
  attentionMask: number[];
  /** 1 where the post-processor added a special token. */
  specialTokensMask: number[];
}

/** Equally long rows: padded ids, 1/0 attention mask (HF's convention), type ids and token strings. */
export interface HFBatchEncoding {
  inputIds: number[][];
  attentionMask: number[][];
  tokenTypeIds: number[][];
  tokens: string[][];
  specialTokensMask: number[][];
  paddingSide: "left" | "right";
}

export interface HFTokenizer {
  /** The segmentation model of tokenizer.json. */
  readonly modelType: "BPE" | "WordPiece" | "Unigram";
  /** tokenizer_config.json's tokenizer_class (e.g. "LlamaTokenizerFast"), else the one config.json's model_type implies. */
  readonly tokenizerClass: string | undefined;
  /** Largest id + 1, added tokens included. */
  readonly vocabSize: number;
  readonly paddingSide: "left" | "right";
  readonly modelMaxLength: number | undefined;
  /** tokenizer_config.json's truncation_side, when it sets one. */
  readonly truncationSide?: "left" | "right";
  /** What the model's forward takes: token_type_ids only for models with token types (BERT). */
  readonly modelInputNames: readonly string[];
  readonly special: Readonly<Partial<Record<SpecialRole, SpecialToken>>>;
  /** Ids of every special token (those decode skips with skipSpecialTokens). */
  readonly specialIds: ReadonlySet<number>;
  encode(text: string, opts?: EncodeOptions): number[];
  encodePair(text: string, pair: string, opts?: EncodeOptions): number[];
  encodeDetailed(text: string, pair?: string | null, opts?: EncodeOptions): HFEncoding;
  encodeBatch(texts: readonly (string | readonly [string, string])[], opts?: BatchOptions): HFBatchEncoding;
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  /** The vocabulary string of each id. */
  tokens(ids: readonly number[]): string[];
  /** Readable labels for explanations: byte-level and "▁" markers turned back into text; "##" kept. */
  labels(ids: readonly number[]): string[];
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
}

// transformers' defaults for the tokenizer classes of the supported families (used where the config is silent).
const CLASS_SPECIALS: Record<string, Partial<Record<SpecialRole, string>>> = {
  BertTokenizer: { unk: "[UNK]", sep: "[SEP]", pad: "[PAD]", cls: "[CLS]", mask: "[MASK]" },
  GPT2Tokenizer: { unk: "<|endoftext|>", bos: "<|endoftext|>", eos: "<|endoftext|>" },
  LlamaTokenizer: { unk: "<unk>", bos: "<s>", eos: "</s>" },
  T5Tokenizer: { eos: "</s>", unk: "<unk>", pad: "<pad>" },
  MarianTokenizer: { eos: "</s>", unk: "<unk>", pad: "<pad>" },
  BartTokenizer: { bos: "<s>", eos: "</s>", sep: "</s>", cls: "<s>", unk: "<unk>", pad: "<pad>", mask: "<mask>" },
};
const WITH_TOKEN_TYPES = new Set(["BertTokenizer"]);
const ROLES: SpecialRole[] = ["bos", "eos", "unk", "pad", "cls", "sep", "mask"];

const baseClass = (cls: unknown): string | undefined => (typeof cls === "string" ? cls.replace(/Fast$/, "") : undefined);

/** A config value for a special token: a string, an AddedToken dict ({"content": ...}) or null. */
function tokenContent(v: unknown, key: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  throw new HFImportError(`tokenizer_config.json: ${key} must be a string, {"content": ...} or null, got ${JSON.stringify(v)}`);
}

function checkConfig(config: unknown): HFTokenizerConfig {
  if (config === undefined || config === null) return {};
  if (typeof config !== "object" || Array.isArray(config)) throw new HFImportError(`tokenizer_config.json must be a JSON object, got ${JSON.stringify(config)?.slice(0, 80)}`);
  const c = config as HFTokenizerConfig;
  if (c.padding_side !== undefined && c.padding_side !== "left" && c.padding_side !== "right") {
    throw new HFImportError(`tokenizer_config.json: padding_side must be "left" or "right", got ${JSON.stringify(c.padding_side)}`);
  }
  for (const k of ["add_bos_token", "add_eos_token", "clean_up_tokenization_spaces"]) {
    if (c[k] !== undefined && c[k] !== null && typeof c[k] !== "boolean") throw new HFImportError(`tokenizer_config.json: ${k} must be true or false, got ${JSON.stringify(c[k])}`);
  }
  return c;
}

function parseJson(v: unknown, file: string): unknown {
  if (typeof v !== "string") return v;
  try { return JSON.parse(v); } catch (e) { throw new HFImportError(`${file} is not valid JSON: ${(e as Error).message}`); }
}

// transformers' AutoTokenizer picks the class from config.json's model_type when tokenizer_config.json names none
// (the "gpt2" repository's config has only model_max_length).
const CLASS_OF_MODEL_TYPE: Record<string, string> = {
  bert: "BertTokenizer", gpt2: "GPT2Tokenizer", llama: "LlamaTokenizer", t5: "T5Tokenizer", marian: "MarianTokenizer", bart: "BartTokenizer",
};

export interface LoadTokenizerOptions {
  /** config.json's model_type: decides transformers' tokenizer class when tokenizer_config.json has no tokenizer_class. */
  modelType?: string;
  /** special_tokens_map.json (parsed or text): its entries override tokenizer_config.json's, as in from_pretrained. */
  specialTokensMap?: unknown;
}

/**
 * Builds a tokenizer from tokenizer.json and (optionally) tokenizer_config.json, each parsed or as text; pass
 * special_tokens_map.json merged over the config (node-tokenizer.ts does). Malformed or unsupported files throw an
 * HFImportError naming the field.
 */
export function loadTokenizer(tokenizerJson: unknown, tokenizerConfig?: unknown, opts: LoadTokenizerOptions = {}): HFTokenizer {
  const json = parseJson(tokenizerJson, "tokenizer.json");
  validateTokenizerJson(json);
  const config = { ...checkConfig(parseJson(tokenizerConfig, "tokenizer_config.json")) };
  if (opts.specialTokensMap !== undefined) {
    const map = parseJson(opts.specialTokensMap, "special_tokens_map.json");
    if (typeof map !== "object" || map === null || Array.isArray(map)) throw new HFImportError("special_tokens_map.json must be a JSON object");
    Object.assign(config, map);
  }
  const cls = typeof config.tokenizer_class === "string" ? config.tokenizer_class : (opts.modelType && CLASS_OF_MODEL_TYPE[opts.modelType]);
  return new Tok(normalizeTokenizerJson(json), config, cls || undefined);
}

interface LibModel { tokens_to_ids: Map<string, number>; vocab: string[]; unk_token_id?: number }

class Tok implements HFTokenizer {
  readonly modelType: "BPE" | "WordPiece" | "Unigram";
  readonly tokenizerClass: string | undefined;
  readonly vocabSize: number;
  readonly paddingSide: "left" | "right";
  readonly modelMaxLength: number | undefined;
  readonly truncationSide?: "left" | "right";
  readonly modelInputNames: readonly string[];
  readonly special: Partial<Record<SpecialRole, SpecialToken>> = {};
  readonly specialIds: Set<number>;
  private readonly lib: LibTokenizer;
  private readonly postProcessor: Record<string, unknown> | null;
  private readonly cleanUp: boolean;
  private readonly byteLevel: boolean;
  private readonly metaspace: string | undefined;

  constructor(json: Record<string, unknown>, config: HFTokenizerConfig, tokenizerClass: string | undefined) {
    const model = json.model as Record<string, unknown>;
    this.modelType = model.type as "BPE" | "WordPiece" | "Unigram";
    this.tokenizerClass = tokenizerClass;
    const cls = baseClass(tokenizerClass);
    const specialsByRole = this.specialContents(config, cls);
    const additional = Array.isArray(config.additional_special_tokens)
      ? config.additional_special_tokens.map((t, i) => tokenContent(t, `additional_special_tokens[${i}]`)).filter((t): t is string => t !== undefined) : [];
    // transformers' LlamaTokenizerFast defaults to not cleaning up spaces; PreTrainedTokenizerBase (4.44) to cleaning.
    this.cleanUp = typeof config.clean_up_tokenization_spaces === "boolean" ? config.clean_up_tokenization_spaces : cls !== "LlamaTokenizer";
    // GPT2TokenizerFast and BartTokenizerFast rebuild a ByteLevel pre-tokenizer with the config's add_prefix_space
    // (default false), whatever tokenizer.json says.
    const pre = json.pre_tokenizer as Record<string, unknown> | null;
    if ((cls === "GPT2Tokenizer" || cls === "BartTokenizer") && pre && "add_prefix_space" in pre) pre.add_prefix_space = config.add_prefix_space === true;
    const libConfig = { additional_special_tokens: additional, clean_up_tokenization_spaces: this.cleanUp, eos_token: specialsByRole.eos };
    try {
      this.lib = new LibTokenizer(json, libConfig);
    } catch (e) {
      throw new HFImportError(`tokenizer.json could not be read: ${(e as Error).message}`);
    }
    patchMetaspaceSplit(json.pre_tokenizer, this.lib.pre_tokenizer as never);
    patchNormalizers(json.normalizer, this.lib.normalizer as never);
    const libModel = this.lib.model as unknown as LibModel;
    this.vocabSize = libModel.vocab.length;
    for (const role of ROLES) {
      const token = specialsByRole[role];
      if (token === undefined) continue;
      const id = libModel.tokens_to_ids.get(token);
      // A token the config names must exist; a class default that this vocabulary lacks is simply absent.
      if (id === undefined && `${role}_token` in config) {
        throw new HFImportError(`tokenizer_config.json: ${role}_token ${JSON.stringify(token)} is not in the vocabulary of tokenizer.json`);
      }
      if (id !== undefined) this.special[role] = { token, id };
    }
    this.postProcessor = this.resolvePostProcessor(json, config, cls);
    this.specialIds = new Set([...this.lib.get_added_tokens_decoder().values()].filter((t) => t.special).map((t) => t.id));
    for (const t of additional) { const id = libModel.tokens_to_ids.get(t); if (id !== undefined) this.specialIds.add(id); }
    this.paddingSide = (config.padding_side as "left" | "right" | undefined) ?? (cls === "LlamaTokenizer" ? "left" : "right");
    const max = config.model_max_length;
    this.modelMaxLength = typeof max === "number" && max < 1e20 ? max : undefined; // HF writes 1e30 for "no limit"
    if (config.truncation_side === "left" || config.truncation_side === "right") this.truncationSide = config.truncation_side;
    this.modelInputNames = this.inputNames(config, cls);
    this.byteLevel = hasType(json.pre_tokenizer, "ByteLevel") || hasType(json.decoder, "ByteLevel");
    this.metaspace = metaspaceReplacement(json.decoder) ?? metaspaceReplacement(json.pre_tokenizer);
  }

  /** Special token strings: tokenizer_config.json (special_tokens_map.json merged in), else the class defaults. */
  private specialContents(config: HFTokenizerConfig, cls: string | undefined): Partial<Record<SpecialRole, string>> {
    const defaults = (cls && CLASS_SPECIALS[cls]) || {};
    const out: Partial<Record<SpecialRole, string>> = {};
    for (const role of ROLES) {
      const key = `${role}_token`;
      const v = key in config ? tokenContent(config[key], key) : defaults[role];
      if (v !== undefined) out[role] = v;
    }
    return out;
  }

  /** LlamaTokenizerFast rebuilds its template from add_bos_token/add_eos_token (update_post_processor); others keep tokenizer.json's. */
  private resolvePostProcessor(json: Record<string, unknown>, config: HFTokenizerConfig, cls: string | undefined): Record<string, unknown> | null {
    if (cls !== "LlamaTokenizer") return json.post_processor as Record<string, unknown> | null;
    const addBos = config.add_bos_token !== false, addEos = config.add_eos_token === true;
    const { bos, eos } = this.special;
    if (addBos && !bos) throw new HFImportError("tokenizer_config.json: add_bos_token is true but there is no bos_token");
    if (addEos && !eos) throw new HFImportError("tokenizer_config.json: add_eos_token is true but there is no eos_token");
    const single = `${addBos ? `${bos!.token}:0 ` : ""}$A:0${addEos ? ` ${eos!.token}:0` : ""}`;
    const pair = `${single}${addBos ? ` ${bos!.token}:1` : ""} $B:1${addEos ? ` ${eos!.token}:1` : ""}`;
    const specials: Record<string, number> = {};
    if (addBos) specials[bos!.token] = bos!.id;
    if (addEos) specials[eos!.token] = eos!.id;
    return templateFrom(single, pair, specials);
  }

  private inputNames(config: HFTokenizerConfig, cls: string | undefined): string[] {
    if (Array.isArray(config.model_input_names) && config.model_input_names.every((n) => typeof n === "string")) return config.model_input_names;
    if (cls && CLASS_SPECIALS[cls]) return WITH_TOKEN_TYPES.has(cls) ? ["input_ids", "token_type_ids", "attention_mask"] : ["input_ids", "attention_mask"];
    // No known class: token types when the post-processor gives a pair's second part type 1 (BERT-style files).
    const pp = this.postProcessor;
    const typed = pp?.type === "BertProcessing" || (pp?.type === "TemplateProcessing" && JSON.stringify(pp.pair).includes('"type_id":1'));
    return typed ? ["input_ids", "token_type_ids", "attention_mask"] : ["input_ids", "attention_mask"];
  }

  /** Text → ids and strings, no special tokens (the library's normalizer, pre-tokenizer and model). */
  private segment(text: string, what: string): Piece {
    if (typeof text !== "string") throw new TypeError(`tokenizer: ${what} must be a string, got ${typeof text}`);
    const e = this.lib.encode(text, { add_special_tokens: false });
    return { ids: e.ids, tokens: e.tokens, typeIds: e.ids.map(() => 0), special: e.ids.map(() => false) };
  }

  private numSpecial(pair: boolean): number {
    const empty: Piece = { ids: [], tokens: [], typeIds: [], special: [] };
    return postProcess(this.postProcessor, empty, pair ? empty : null, true).ids.length;
  }

  encodeDetailed(text: string, pair: string | null = null, opts: EncodeOptions = {}): HFEncoding {
    const add = opts.addSpecialTokens ?? true;
    let a = this.segment(text, "text"), b = pair === null ? null : this.segment(pair, "pair");
    if (opts.maxLength !== undefined) [a, b] = this.truncate(a, b, opts.maxLength, add);
    const p = postProcess(this.postProcessor, a, b, add);
    return { ids: p.ids, tokens: p.tokens, typeIds: p.typeIds, attentionMask: p.ids.map(() => 1), specialTokensMask: p.special.map(Number) };
  }

  /**
   * HF's longest_first truncation from the right, as the Rust tokenizers crate does it (transformers' fast tokenizers):
   * the longer sequence is cut to max(shorter, room - shorter); if both are still too long, the first gets
   * floor(room / 2) when it is the shorter one (or of equal length), the other the rest.
   */
  private truncate(a: Piece, b: Piece | null, maxLength: number, add: boolean): [Piece, Piece | null] {
    if (!Number.isInteger(maxLength) || maxLength < 1) throw new RangeError(`tokenizer: maxLength must be a positive integer, got ${maxLength}`);
    const specials = add ? this.numSpecial(b !== null) : 0, room = maxLength - specials;
    if (room < 0) throw new RangeError(`tokenizer: maxLength ${maxLength} leaves no room: the special tokens alone take ${specials}`);
    const cut = (p: Piece, n: number): Piece => ({ ids: p.ids.slice(0, n), tokens: p.tokens.slice(0, n), typeIds: p.typeIds.slice(0, n), special: p.special.slice(0, n) });
    if (!b) return [cut(a, room), null];
    if (a.ids.length + b.ids.length <= room) return [a, b];
    const swap = a.ids.length > b.ids.length;
    let n1 = Math.min(a.ids.length, b.ids.length), n2 = n1 > room ? n1 : Math.max(n1, room - n1);
    if (n1 + n2 > room) { n1 = Math.floor(room / 2); n2 = n1 + (room % 2); }
    return swap ? [cut(a, n2), cut(b, n1)] : [cut(a, n1), cut(b, n2)];
  }

  encode(text: string, opts?: EncodeOptions): number[] { return this.encodeDetailed(text, null, opts).ids; }
  encodePair(text: string, pair: string, opts?: EncodeOptions): number[] { return this.encodeDetailed(text, pair, opts).ids; }

  encodeBatch(texts: readonly (string | readonly [string, string])[], opts: BatchOptions = {}): HFBatchEncoding {
    if (!Array.isArray(texts) || texts.length === 0) throw new RangeError("tokenizer.encodeBatch: texts must be a non-empty array");
    const rows = texts.map((t) => (typeof t === "string" ? this.encodeDetailed(t, null, opts) : this.encodeDetailed(t[0], t[1], opts)));
    const padding = opts.padding ?? "longest";
    const longest = Math.max(...rows.map((r) => r.ids.length));
    if (padding === "max_length" && opts.maxLength === undefined) throw new RangeError('tokenizer.encodeBatch: padding "max_length" needs maxLength');
    const T = padding === "max_length" ? opts.maxLength! : longest;
    if (padding === false && rows.some((r) => r.ids.length !== longest)) {
      throw new RangeError(`tokenizer.encodeBatch: rows have lengths ${rows.map((r) => r.ids.length).join(", ")} and padding is off`);
    }
    const side = opts.paddingSide ?? this.paddingSide;
    const padId = opts.padTokenId ?? this.special.pad?.id;
    if (padId === undefined && rows.some((r) => r.ids.length < T)) {
      throw new RangeError("tokenizer.encodeBatch: rows need padding but the tokenizer has no pad token (tokenizer_config.json pad_token); pass padTokenId (e.g. the eos id)");
    }
    const padTok = padId === undefined ? "" : this.idToToken(padId) ?? "";
    const pad = <V>(row: V[], v: V): V[] => {
      const fill = new Array<V>(T - row.length).fill(v);
      return side === "left" ? [...fill, ...row] : [...row, ...fill];
    };
    return {
      inputIds: rows.map((r) => pad(r.ids, padId!)),
      attentionMask: rows.map((r) => pad(r.attentionMask, 0)),
      tokenTypeIds: rows.map((r) => pad(r.typeIds, 0)),
      tokens: rows.map((r) => pad(r.tokens, padTok)),
      specialTokensMask: rows.map((r) => pad(r.specialTokensMask, 1)),
      paddingSide: side,
    };
  }

  private checkIds(ids: readonly number[]): void {
    if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) throw new TypeError("tokenizer: ids must be an array of integers");
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`tokenizer: id ${id} at position ${i} is not in the vocabulary (0..${this.vocabSize - 1})`);
      }
    });
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    this.checkIds(ids);
    if (ids.length === 0) return "";
    const kept = opts.skipSpecialTokens ? Array.from(ids).filter((id) => !this.specialIds.has(id)) : Array.from(ids);
    if (kept.length === 0) return "";
    return this.lib.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: opts.cleanUpTokenizationSpaces ?? this.cleanUp });
  }

  tokens(ids: readonly number[]): string[] {
    this.checkIds(ids);
    return Array.from(ids, (id) => this.idToToken(id)!);
  }

  labels(ids: readonly number[]): string[] {
    return this.tokens(ids).map((tok, i) => (this.specialIds.has(ids[i]) ? tok : this.label(tok)));
  }

  private label(tok: string): string {
    if (this.byteLevel) {
      const bytes = Array.from(tok, (c) => BYTE_OF_CHAR.get(c));
      if (bytes.every((b) => b !== undefined)) {
        try { return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes as number[])); }
        catch { return bytes.map((b) => (b! < 0x80 ? String.fromCharCode(b!) : `<0x${b!.toString(16).toUpperCase().padStart(2, "0")}>`)).join(""); } // part of a character
      }
    }
    return this.metaspace ? tok.split(this.metaspace).join(" ") : tok;
  }

  idToToken(id: number): string | undefined { return this.lib.id_to_token(id); }
  tokenToId(token: string): number | undefined { return this.lib.token_to_id(token); }
}

function hasType(node: unknown, type: string): boolean {
  if (typeof node !== "object" || node === null) return false;
  const n = node as Record<string, unknown>;
  if (n.type === type) return true;
  return ["pretokenizers", "decoders"].some((k) => Array.isArray(n[k]) && (n[k] as unknown[]).some((c) => hasType(c, type)));
}

function metaspaceReplacement(node: unknown): string | undefined {
  if (typeof node !== "object" || node === null) return undefined;
  const n = node as Record<string, unknown>;
  if (n.type === "Metaspace") return typeof n.replacement === "string" ? n.replacement : "\u2581";
  if (n.type === "Replace" && (n.pattern as { String?: string } | undefined)?.String === "\u2581") return "\u2581"; // Llama's decoder
  for (const k of ["pretokenizers", "decoders"]) {
    if (Array.isArray(n[k])) for (const c of n[k] as unknown[]) { const r = metaspaceReplacement(c); if (r) return r; }
  }
  return undefined;
}

// GPT-2's reversible byte ↔ printable character table (bytes_to_unicode), inverted.
const BYTE_OF_CHAR: Map<string, number> = (() => {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const m = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) m.set(String.fromCharCode(printable(b) ? b : 256 + n++), b);
  return m;
})();

/** Int32 (B, T) tensors named as HFInputs names them; token types only when the model takes them. */
export function toHFInputs(tok: HFTokenizer, batch: HFBatchEncoding): HFInputs {
  const out: HFInputs = {
    inputIds: tensor(batch.inputIds, { dtype: "int32" }),
    attentionMask: tensor(batch.attentionMask, { dtype: "int32" }),
  };
  if (tok.modelInputNames.includes("token_type_ids")) out.tokenTypeIds = tensor(batch.tokenTypeIds, { dtype: "int32" });
  return out;
}

/**
 * The tokenizer of an HF folder read through fromPretrained's file reader (tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, and config.json's model_type), or null when the folder has no tokenizer.json.
 * The Node entry registers it with setTokenizerLoader; a page registers it itself (the module needs an import-map
 * entry for @huggingface/tokenizers).
 */
export async function tokenizerFromReader(reader: HFFileReader, config: HFConfig): Promise<HFTokenizer | null> {
  const json = async (name: string): Promise<Record<string, unknown> | undefined> => {
    const bytes = await reader.readFile(name);
    if (!bytes) return undefined;
    let v: unknown;
    try { v = JSON.parse(new TextDecoder().decode(bytes)); } catch (e) { throw new HFImportError(`${name} is not valid JSON: ${(e as Error).message}`); }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new HFImportError(`${name} must be a JSON object`);
    return v as Record<string, unknown>;
  };
  const tokenizerJson = await json("tokenizer.json");
  if (!tokenizerJson) {
    // Marian folders ship source.spm / target.spm / vocab.json instead of a tokenizer.json
    const src = await reader.readFile("source.spm");
    if (!src) return null;
    const need = async (name: string) => { const b = await reader.readFile(name); if (!b) throw new HFImportError(`the folder has source.spm but no ${name} (a Marian tokenizer needs source.spm, target.spm and vocab.json)`); return b; };
    const target = await need("target.spm"), vocab = new TextDecoder().decode(await need("vocab.json"));
    const tv = await reader.readFile("target_vocab.json");
    // imported here, so that a page whose import map names only @huggingface/tokenizers still loads this module
    const { loadMarianTokenizer } = await import("./marian-tokenizer.js");
    return loadMarianTokenizer({ sourceSpm: src, targetSpm: target, vocab, targetVocab: tv ? new TextDecoder().decode(tv) : undefined,
      config: { ...((await json("tokenizer_config.json")) ?? {}), ...((await json("special_tokens_map.json")) ?? {}) } });
  }
  return loadTokenizer(tokenizerJson, (await json("tokenizer_config.json")) ?? {}, {
    modelType: typeof config.model_type === "string" ? config.model_type : undefined,
    specialTokensMap: await json("special_tokens_map.json"),
  });
}
