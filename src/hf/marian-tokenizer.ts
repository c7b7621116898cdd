// Marian tokenizers as Hugging Face ships them: source.spm and target.spm (SentencePiece Unigram models), vocab.json
// (piece → model id; with separate_vocabs, target_vocab.json for the target side) and tokenizer_config.json — no
// tokenizer.json. Equivalent to transformers' MarianTokenizer (4.44):
//   source text: a leading language code (">>fr<<", the regex >>.+<<) is kept as one token and every match removed
//   from the text; the text is split on the special tokens (</s>, <unk>, <pad>); each part is segmented by the
//   source model (SentencePiece's own normaliser, src/hf/sentencepiece.ts, and its Viterbi: @huggingface/tokenizers'
//   Unigram breaks score ties differently, so a converted tokenizer.json — spmTokenizerJson — disagrees with
//   SentencePiece on some texts); each piece's id is vocab.json's, <unk> for a piece vocab.json lacks; then </s>.
//   target text (encodeTarget, for labels): the same with target.spm, and target_vocab.json when separate_vocabs.
//   decode: ids → target-side pieces; specials kept as "<tok> " unless skipped; "▁" → " "; strip; clean-up.
// Browser-safe.
import { HFImportError } from "./types.js";
import type { DecodeOptions, EncodeOptions, BatchOptions, HFBatchEncoding, HFEncoding, HFTokenizer, HFTokenizerConfig, SpecialRole, SpecialToken } from "./tokenizer.js";
import { PieceType, type SentencePieceModel, SpmNormalizer, parseSentencePieceModel } from "./sentencepiece.js";

export interface MarianTokenizerFiles {
  /** source.spm, target.spm (bytes), vocab.json and (separate_vocabs) target_vocab.json (parsed or text). */
  sourceSpm: Uint8Array;
  targetSpm: Uint8Array;
  vocab: unknown;
  targetVocab?: unknown;
  config?: HFTokenizerConfig;
}

/** One side's SentencePiece model: its normaliser and its Unigram Viterbi, as sentencepiece's Model::Encode runs it. */
class SpmSide {
  readonly model: SentencePieceModel;
  private readonly normalizer: SpmNormalizer;
  /** Matchable pieces (normal, user-defined; unused ones are skipped by Encode) → id. */
  private readonly ids = new Map<string, number>();
  private readonly maxLen: number;
  private readonly unkScore: number;
  private readonly maxScore: number;
  constructor(bytes: Uint8Array, readonly file: string) {
    this.model = parseSentencePieceModel(bytes, file);
    this.normalizer = new SpmNormalizer(this.model.normalizerSpec, file);
    let min = Infinity, max = -Infinity, maxLen = 1;
    this.model.pieces.forEach((p, i) => {
      if (p.type !== PieceType.Normal && p.type !== PieceType.UserDefined) return;
      if (!this.ids.has(p.piece)) this.ids.set(p.piece, i);
      maxLen = Math.max(maxLen, p.piece.length);
      if (p.type === PieceType.Normal) { min = Math.min(min, p.score); max = Math.max(max, p.score); }
    });
    this.maxLen = maxLen;
    this.unkScore = Math.fround(min - 10);   // kUnkPenalty
    this.maxScore = max;
  }
  /**
   * The pieces SentencePiece's encode(text, out_type=str) gives: Model::Encode's Viterbi over the normalised text (best
   * path scores stored in float32, candidates compared as it compares them, ties to the earlier start); a character no piece covers is <unk> (score min − 10);
   * runs of unknown characters become one piece, their text.
   */
  pieces(text: string): string[] {
    const s = this.normalizer.normalize(text);
    if (!s) return [];
    const n = s.length, f = Math.fround;
    const score = new Float32Array(n + 1), from = new Int32Array(n + 1).fill(-1), id = new Int32Array(n + 1).fill(-1);
    const unkId = this.model.trainerSpec.unkId;
    for (let i = 0; i < n;) {
      const cp = s.codePointAt(i)!, one = cp > 0xffff ? 2 : 1;
      if (i > 0 && from[i] === -1) { i += one; continue; }   // not reachable (inside a surrogate pair)
      const base = score[i];
      let single = false;
      for (let len = 1; len <= this.maxLen && i + len <= n; len++) {
        const pid = this.ids.get(s.slice(i, i + len));
        if (pid === undefined) continue;
        const p = this.model.pieces[pid];
        // as in Model::Encode: `auto score = user-defined ? len·max − 0.1 : piece score` is a double, so the candidate
        // is compared in double precision and stored as float
        const sc = p.type === PieceType.UserDefined ? len * this.maxScore - 0.1 : p.score;
        const cand = sc + base, e = i + len;
        if (from[e] === -1 || cand > score[e]) { score[e] = cand; from[e] = i; id[e] = pid; }
        if (len === one) single = true;
      }
      if (!single) {
        const e = i + one, cand = f(this.unkScore + base);
        if (from[e] === -1 || cand > score[e]) { score[e] = cand; from[e] = i; id[e] = unkId; }
      }
      i += one;
    }
    const rev: [string, boolean][] = [];
    for (let e = n; e > 0; e = from[e]) rev.push([s.slice(from[e], e), id[e] === unkId]);
    const out: string[] = [];
    let prevUnk = false;
    for (let k = rev.length - 1; k >= 0; k--) {
      const [p, unk] = rev[k];
      if (unk && prevUnk) out[out.length - 1] += p; else out.push(p);
      prevUnk = unk;
    }
    return out;
  }
  /** SentencePiece's DecodePieces as MarianTokenizer uses it: the first "▁" consumed, the others become spaces. */
  decodePieces(pieces: readonly string[]): string {
    const ns = this.model.normalizerSpec;
    let s = pieces.join("");
    if (ns.addDummyPrefix || ns.removeExtraWhitespaces) s = s.replace(/^\u2581/u, "");
    return s.replace(/\u2581/gu, " ");
  }
}

function vocabOf(v: unknown, file: string): Map<string, number> {
  let o = v;
  if (typeof o === "string") { try { o = JSON.parse(o); } catch (e) { throw new HFImportError(`${file} is not valid JSON: ${(e as Error).message}`); } }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new HFImportError(`${file} must be a JSON object of piece → id`);
  const m = new Map<string, number>();
  for (const [k, id] of Object.entries(o)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new HFImportError(`${file}: the id of ${JSON.stringify(k)} must be a non-negative integer, got ${JSON.stringify(id)}`);
    m.set(k, id as number);
  }
  return m;
}

const cleanUpTokenization = (s: string): string => s.replace(/ \./g, ".").replace(/ \?/g, "?").replace(/ !/g, "!").replace(/ ,/g, ",")
  .replace(/ ' /g, "'").replace(/ n't/g, "n't").replace(/ 'm/g, "'m").replace(/ 's/g, "'s").replace(/ 've/g, "'ve").replace(/ 're/g, "'re");

export class MarianTokenizer implements HFTokenizer {
  readonly modelType = "Unigram" as const;
  readonly tokenizerClass = "MarianTokenizer";
  readonly vocabSize: number;
  readonly paddingSide: "left" | "right";
  readonly modelMaxLength: number | undefined;
  readonly truncationSide?: "left" | "right";
  readonly modelInputNames = ["input_ids", "attention_mask"] as const;
  readonly special: Partial<Record<SpecialRole, SpecialToken>> = {};
  readonly specialIds: Set<number>;
  readonly separateVocabs: boolean;
  private readonly source: SpmSide;
  private readonly target: SpmSide;
  private readonly encoder: Map<string, number>;
  private readonly targetEncoder: Map<string, number>;
  private readonly decoder = new Map<number, string>();
  private readonly srcDecoder = new Map<number, string>();
  private readonly specialTokens: string[];
  private readonly cleanUp: boolean;

  constructor(f: MarianTokenizerFiles) {
    const c = f.config ?? {};
    const str = (k: string, d: string): string => {
      const v = c[k];
      if (v === undefined || v === null) return d;
      if (typeof v === "string") return v;
      if (typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
      throw new HFImportError(`tokenizer_config.json: ${k} must be a string, got ${JSON.stringify(v)}`);
    };
    this.separateVocabs = c.separate_vocabs === true;
    this.encoder = vocabOf(f.vocab, "vocab.json");
    if (this.separateVocabs && f.targetVocab === undefined) throw new HFImportError("tokenizer_config.json sets separate_vocabs, but the folder has no target_vocab.json");
    this.targetEncoder = this.separateVocabs ? vocabOf(f.targetVocab, "target_vocab.json") : this.encoder;
    for (const [k, v] of this.targetEncoder) this.decoder.set(v, k);
    for (const [k, v] of this.encoder) this.srcDecoder.set(v, k);
    const roles: [SpecialRole, string][] = [["eos", str("eos_token", "</s>")], ["unk", str("unk_token", "<unk>")], ["pad", str("pad_token", "<pad>")]];
    for (const [role, tok] of roles) {
      const id = this.encoder.get(tok);
      if (id === undefined) throw new HFImportError(`vocab.json has no ${role} token ${JSON.stringify(tok)} (MarianTokenizer needs ${roles.map((r) => r[1]).join(", ")})`);
      this.special[role] = { token: tok, id };
    }
    this.specialTokens = roles.map((r) => r[1]);
    this.specialIds = new Set(roles.map(([r]) => this.special[r]!.id));
    this.source = new SpmSide(f.sourceSpm, "source.spm");
    this.target = new SpmSide(f.targetSpm, "target.spm");
    this.vocabSize = this.encoder.size;
    this.paddingSide = c.padding_side === "left" ? "left" : "right";
    const max = c.model_max_length;
    this.modelMaxLength = typeof max === "number" && max < 1e20 ? max : 512;
    if (c.truncation_side === "left" || c.truncation_side === "right") this.truncationSide = c.truncation_side;
    this.cleanUp = typeof c.clean_up_tokenization_spaces === "boolean" ? c.clean_up_tokenization_spaces : true;
  }

  /** Pieces and ids of one side, no </s> (MarianTokenizer.tokenize + convert_tokens_to_ids). */
  private segment(text: string, side: "source" | "target"): { ids: number[]; tokens: string[] } {
    if (typeof text !== "string") throw new TypeError(`MarianTokenizer: the text must be a string, got ${typeof text}`);
    const spm = side === "source" ? this.source : this.target, enc = side === "source" ? this.encoder : this.targetEncoder;
    const unk = enc.get(this.special.unk!.token) ?? this.special.unk!.id;
    // PreTrainedTokenizer.tokenize: split on the special tokens first; each part goes through _tokenize
    const esc = this.specialTokens.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    const parts = text.split(new RegExp(`(${esc.join("|")})`));
    const tokens: string[] = [], isSpecialPart: boolean[] = [];
    parts.forEach((part, i) => {
      if (i % 2 === 1) { tokens.push(part); isSpecialPart.push(true); return; }
      if (!part) return;
      const m = /^>>.+<</.exec(part);   // remove_language_code: greedy, like re.compile(">>.+<<")
      const ps = [...(m ? [m[0]] : []), ...spm.pieces(part.replace(/>>.+<</g, ""))];
      tokens.push(...ps); isSpecialPart.push(...ps.map(() => false));
    });
    // the special tokens are added tokens: their ids are vocab.json's on both sides (transformers' added_tokens_encoder)
    const specialId = new Map(Object.values(this.special).map((t) => [t.token, t.id]));
    return { tokens, ids: tokens.map((t, i) => (isSpecialPart[i] ? specialId.get(t)! : enc.get(t) ?? unk)) };
  }

  private build(a: { ids: number[]; tokens: string[] }, b: { ids: number[]; tokens: string[] } | null, opts: EncodeOptions): HFEncoding {
    const add = opts.addSpecialTokens ?? true;
    let x = a.ids.slice(), y = b ? b.ids.slice() : null, xt = a.tokens.slice(), yt = b ? b.tokens.slice() : null;
    if (opts.maxLength !== undefined) {
      if (!Number.isInteger(opts.maxLength) || opts.maxLength < 1) throw new RangeError(`MarianTokenizer: maxLength must be a positive integer, got ${opts.maxLength}`);
      // the slow tokenizers' longest_first: one token at a time from the end of the longer sequence
      let over = x.length + (y?.length ?? 0) + (add ? 1 : 0) - opts.maxLength;
      while (over-- > 0) {
        if (y && y.length > x.length) { y.pop(); yt!.pop(); } else if (x.length) { x.pop(); xt.pop(); } else break;
      }
    }
    const ids = [...x, ...(y ?? [])], tokens = [...xt, ...(yt ?? [])], special = ids.map(() => 0);
    if (add) { ids.push(this.special.eos!.id); tokens.push(this.special.eos!.token); special.push(1); }
    return { ids, tokens, typeIds: ids.map(() => 0), attentionMask: ids.map(() => 1), specialTokensMask: special };
  }

  encodeDetailed(text: string, pair: string | null = null, opts: EncodeOptions = {}): HFEncoding {
    return this.build(this.segment(text, "source"), pair === null ? null : this.segment(pair, "source"), opts);
  }
  encode(text: string, opts?: EncodeOptions): number[] { return this.encodeDetailed(text, null, opts).ids; }
  encodePair(text: string, pair: string, opts?: EncodeOptions): number[] { return this.encodeDetailed(text, pair, opts).ids; }
  /** The target side (tokenizer(text_target=...)): target.spm, and target_vocab.json with separate_vocabs; then </s>. */
  encodeTarget(text: string, opts: EncodeOptions = {}): number[] { return this.build(this.segment(text, "target"), null, opts).ids; }

  encodeBatch(texts: readonly (string | readonly [string, string])[], opts: BatchOptions = {}): HFBatchEncoding {
    if (!Array.isArray(texts) || texts.length === 0) throw new RangeError("MarianTokenizer.encodeBatch: texts must be a non-empty array");
    const rows = texts.map((t) => (typeof t === "string" ? this.encodeDetailed(t, null, opts) : this.encodeDetailed(t[0], t[1], opts)));
    const padding = opts.padding ?? "longest", longest = Math.max(...rows.map((r) => r.ids.length));
    if (padding === "max_length" && opts.maxLength === undefined) throw new RangeError('MarianTokenizer.encodeBatch: padding "max_length" needs maxLength');
    const T = padding === "max_length" ? opts.maxLength! : longest;
    if (padding === false && rows.some((r) => r.ids.length !== longest)) throw new RangeError(`MarianTokenizer.encodeBatch: rows have lengths ${rows.map((r) => r.ids.length).join(", ")} and padding is off`);
    const side = opts.paddingSide ?? this.paddingSide, padId = opts.padTokenId ?? this.special.pad!.id;
    const pad = <V>(row: V[], v: V): V[] => { const fill = new Array<V>(Math.max(0, T - row.length)).fill(v); return side === "left" ? [...fill, ...row] : [...row, ...fill]; };
    return {
      inputIds: rows.map((r) => pad(r.ids, padId)), attentionMask: rows.map((r) => pad(r.attentionMask, 0)), tokenTypeIds: rows.map((r) => pad(r.typeIds, 0)),
      tokens: rows.map((r) => pad(r.tokens, this.special.pad!.token)), specialTokensMask: rows.map((r) => pad(r.specialTokensMask, 1)), paddingSide: side,
    };
  }

  /** Target-side ids → text, as MarianTokenizer.decode (convert_tokens_to_string with target.spm). */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const unk = this.special.unk!.token, specials = new Set(this.specialTokens);
    const toks: string[] = [];
    Array.from(ids).forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0) throw new RangeError(`MarianTokenizer.decode: id ${id} at position ${i} is not a token id`);
      if (opts.skipSpecialTokens && this.specialIds.has(id)) return;
      toks.push(this.decoder.get(id) ?? unk);
    });
    let out = "", cur: string[] = [];
    for (const t of toks) {
      if (specials.has(t)) { out += this.target.decodePieces(cur) + t + " "; cur = []; } else cur.push(t);
    }
    out += this.target.decodePieces(cur);
    out = out.replace(/\u2581/gu, " ").trim();
    return (opts.cleanUpTokenizationSpaces ?? this.cleanUp) ? cleanUpTokenization(out) : out;
  }

  /** Source-vocabulary strings (MarianTokenizer.convert_ids_to_tokens reads the target side; labels of inputs read these). */
  tokens(ids: readonly number[]): string[] { return Array.from(ids, (id) => this.srcDecoder.get(id) ?? this.special.unk!.token); }
  labels(ids: readonly number[]): string[] {
    return this.tokens(ids).map((t, i) => (this.specialIds.has(ids[i]) ? t : t.replace(/\u2581/gu, " ")));
  }
  /** Labels of target-side ids (generated tokens): target_vocab.json's pieces with separate_vocabs, else vocab.json's. */
  targetLabels(ids: readonly number[]): string[] {
    const specials = new Set(this.specialTokens);
    return Array.from(ids, (id) => { const t = this.decoder.get(id) ?? this.special.unk!.token; return specials.has(t) ? t : t.replace(/\u2581/gu, " "); });
  }
  idToToken(id: number): string | undefined { return this.srcDecoder.get(id); }
  tokenToId(token: string): number | undefined { return this.encoder.get(token); }
}

/** The Marian tokenizer of a folder's files (see MarianTokenizerFiles). */
export function loadMarianTokenizer(f: MarianTokenizerFiles): MarianTokenizer { return new MarianTokenizer(f); }
