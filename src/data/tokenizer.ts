// Word-level and char-level tokenizers with a shared interface and JSON (de)serialisation.
// Browser-safe. Ids 0..5 are always the special tokens below, so models can hard-code PAD = 0.

export const PAD = "[PAD]";
export const UNK = "[UNK]";
export const CLS = "[CLS]";
export const SEP = "[SEP]";
export const BOS = "[BOS]";
export const EOS = "[EOS]";
/** Special tokens in id order: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [BOS]=4, [EOS]=5. */
export const SPECIAL_TOKENS: readonly string[] = [PAD, UNK, CLS, SEP, BOS, EOS];
export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const SEP_ID = 3;
export const BOS_ID = 4;
export const EOS_ID = 5;

export type TokenizerKind = "word" | "char";

/** A tokenizer JSON (a file, or the `tokenizer` field of a checkpoint config) that is not valid; the message names the field. */
export class TokenizerError extends Error {
  constructor(message: string) { super(message); this.name = "TokenizerError"; }
}

export interface EncodeOptions {
  /** Prepend [CLS] (classification) — applied before bos. */
  cls?: boolean;
  /** Append [SEP]. */
  sep?: boolean;
  /** Prepend [BOS] (language modelling / decoder input). */
  bos?: boolean;
  /** Append [EOS]. */
  eos?: boolean;
  /** Truncate the content tokens so that the whole result (with specials) has at most this many ids. */
  maxLength?: number;
}

export interface TokenizerJSON {
  format: "attnflow.tokenizer";
  version: 1;
  kind: TokenizerKind;
  lowercase: boolean;
  /** All tokens in id order; the first six are SPECIAL_TOKENS. */
  tokens: string[];
}

export interface TrainOptions {
  /** Keep tokens seen at least this many times in the training texts (default 1). */
  minFreq?: number;
  /** Cap on the vocabulary size including the special tokens (most frequent tokens win). */
  maxVocab?: number;
  /** Lowercase before tokenising (default: true for word, false for char). */
  lowercase?: boolean;
}

// A word is a run of letters/digits, optionally with apostrophe-joined letter runs ("don't", "o'clock");
// every other non-space character is its own token.
const WORD_RE = /[\p{L}\p{N}\p{M}]+(?:['’][\p{L}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]/gu;

/** Split text into word and punctuation tokens (no vocabulary lookup). */
export function wordTokenize(text: string, lowercase = true): string[] {
  const t = lowercase ? text.normalize("NFC").toLowerCase() : text.normalize("NFC");
  return t.match(WORD_RE) ?? [];
}

/** Split text into Unicode code points. */
export function charTokenize(text: string, lowercase = false): string[] {
  const t = lowercase ? text.normalize("NFC").toLowerCase() : text.normalize("NFC");
  return Array.from(t);
}

// Detokenisation for the word tokenizer: no space before closing punctuation, none after opening.
const NO_SPACE_BEFORE = new Set([".", ",", "!", "?", ";", ":", ")", "]", "}", "%", "…"]);
const NO_SPACE_AFTER = new Set(["(", "[", "{", "$", "#"]);

export class Tokenizer {
  private readonly index: Map<string, number>;

  private constructor(
    readonly kind: TokenizerKind,
    readonly lowercase: boolean,
    private readonly tokens: readonly string[],
  ) {
    this.index = new Map();
    tokens.forEach((tok, id) => {
      if (this.index.has(tok)) throw new TokenizerError(`tokenizer vocabulary has duplicate token ${JSON.stringify(tok)} at id ${id}`);
      this.index.set(tok, id);
    });
  }

  /** Build a vocabulary from training texts: frequency-descending, ties broken by code-point order. */
  static train(kind: TokenizerKind, texts: Iterable<string>, opts: TrainOptions = {}): Tokenizer {
    const lowercase = opts.lowercase ?? kind === "word";
    const minFreq = opts.minFreq ?? 1;
    if (!(minFreq >= 1)) throw new RangeError(`minFreq must be >= 1, got ${minFreq}`);
    if (opts.maxVocab !== undefined && !(opts.maxVocab >= SPECIAL_TOKENS.length)) {
      throw new RangeError(`maxVocab must be >= ${SPECIAL_TOKENS.length} (the special tokens), got ${opts.maxVocab}`);
    }
    const split = kind === "word" ? wordTokenize : charTokenize;
    const counts = new Map<string, number>();
    for (const text of texts) for (const tok of split(text, lowercase)) counts.set(tok, (counts.get(tok) ?? 0) + 1);
    const special = new Set(SPECIAL_TOKENS);
    let kept = [...counts].filter(([tok, c]) => c >= minFreq && !special.has(tok));
    kept.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (opts.maxVocab !== undefined) kept = kept.slice(0, opts.maxVocab - SPECIAL_TOKENS.length);
    return new Tokenizer(kind, lowercase, [...SPECIAL_TOKENS, ...kept.map(([tok]) => tok)]);
  }

  /** Build from an explicit token list (specials are prepended; duplicates are an error). */
  static fromTokens(kind: TokenizerKind, tokens: readonly string[], lowercase = kind === "word"): Tokenizer {
    return new Tokenizer(kind, lowercase, [...SPECIAL_TOKENS, ...tokens]);
  }

  static fromJSON(json: unknown): Tokenizer {
    let parsed = json;
    if (typeof json === "string") {
      try { parsed = JSON.parse(json); } catch (e) { throw new TokenizerError(`tokenizer JSON is not valid JSON: ${(e as Error).message}`); }
    }
    const j = (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? parsed : null) as Partial<TokenizerJSON> | null;
    if (!j || j.format !== "attnflow.tokenizer") throw new TokenizerError(`not a tokenizer JSON: field 'format' must be "attnflow.tokenizer"`);
    if (j.version !== 1) throw new TokenizerError(`unsupported tokenizer JSON version ${String(j.version)} (expected 1)`);
    if (j.kind !== "word" && j.kind !== "char") throw new TokenizerError(`tokenizer JSON field 'kind' must be "word" or "char", got ${String(j.kind)}`);
    if (typeof j.lowercase !== "boolean") throw new TokenizerError(`tokenizer JSON field 'lowercase' must be a boolean`);
    if (!Array.isArray(j.tokens) || !j.tokens.every((t) => typeof t === "string")) {
      throw new TokenizerError(`tokenizer JSON field 'tokens' must be an array of strings`);
    }
    SPECIAL_TOKENS.forEach((s, i) => {
      if (j.tokens![i] !== s) throw new TokenizerError(`tokenizer JSON 'tokens[${i}]' must be ${s}, got ${JSON.stringify(j.tokens![i])}`);
    });
    return new Tokenizer(j.kind, j.lowercase, j.tokens);
  }

  toJSON(): TokenizerJSON {
    return { format: "attnflow.tokenizer", version: 1, kind: this.kind, lowercase: this.lowercase, tokens: [...this.tokens] };
  }

  get vocabSize(): number {
    return this.tokens.length;
  }
  get padId(): number { return PAD_ID; }
  get unkId(): number { return UNK_ID; }
  get clsId(): number { return CLS_ID; }
  get sepId(): number { return SEP_ID; }
  get bosId(): number { return BOS_ID; }
  get eosId(): number { return EOS_ID; }

  /** Split text into string tokens (before vocabulary lookup). */
  tokenize(text: string): string[] {
    return this.kind === "word" ? wordTokenize(text, this.lowercase) : charTokenize(text, this.lowercase);
  }

  tokenToId(token: string): number {
    return this.index.get(token) ?? UNK_ID;
  }

  idToToken(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) {
      throw new RangeError(`token id ${id} out of range [0, ${this.tokens.length})`);
    }
    return this.tokens[id];
  }

  /** Text → ids. Unknown tokens map to [UNK]=1. Optional specials: [CLS]/[BOS] first, [SEP]/[EOS] last. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.tokenize(text).map((t) => this.tokenToId(t));
    const head: number[] = [];
    const tail: number[] = [];
    if (opts.cls) head.push(CLS_ID);
    if (opts.bos) head.push(BOS_ID);
    if (opts.sep) tail.push(SEP_ID);
    if (opts.eos) tail.push(EOS_ID);
    if (opts.maxLength !== undefined) {
      const room = opts.maxLength - head.length - tail.length;
      if (room < 0) throw new RangeError(`maxLength ${opts.maxLength} is smaller than the ${head.length + tail.length} special tokens requested`);
      if (ids.length > room) ids.length = room;
    }
    return [...head, ...ids, ...tail];
  }

  /**
   * Ids → text. Special tokens other than [UNK] are dropped unless keepSpecial; [UNK] renders as
   * "[UNK]" (word) or U+FFFD (char). Word tokens are joined with spaces, except around punctuation.
   */
  decode(ids: ArrayLike<number>, opts: { keepSpecial?: boolean } = {}): string {
    const toks: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id === UNK_ID) toks.push(this.kind === "char" && !opts.keepSpecial ? "\uFFFD" : UNK);
      else if (id < SPECIAL_TOKENS.length && id >= 0 && Number.isInteger(id)) {
        if (opts.keepSpecial) toks.push(SPECIAL_TOKENS[id]);
      } else toks.push(this.idToToken(id));
    }
    if (this.kind === "char") return toks.join("");
    let out = "";
    for (let i = 0; i < toks.length; i++) {
      const glue = i === 0 || NO_SPACE_BEFORE.has(toks[i]) || NO_SPACE_AFTER.has(toks[i - 1]) ? "" : " ";
      out += glue + toks[i];
    }
    return out;
  }
}

/** Pad/truncate id sequences into a row-major (B, T) Int32Array plus a (B, T) mask (1 = real token). */
export function padBatch(
  seqs: readonly (readonly number[])[],
  length?: number,
  padId = PAD_ID,
): { ids: Int32Array; mask: Uint8Array; batch: number; length: number } {
  const T = length ?? Math.max(0, ...seqs.map((s) => s.length));
  const B = seqs.length;
  const ids = new Int32Array(B * T).fill(padId); // (B, T)
  const mask = new Uint8Array(B * T); // (B, T)
  seqs.forEach((s, b) => {
    const n = Math.min(T, s.length);
    for (let t = 0; t < n; t++) {
      ids[b * T + t] = s[t];
      mask[b * T + t] = 1;
    }
  });
  return { ids, mask, batch: B, length: T };
}
