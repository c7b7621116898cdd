// SentencePiece model files (.model / Marian's source.spm, target.spm): the ModelProto read with @bufbuild/protobuf's
// wire reader, SentencePiece's own normaliser (the precompiled charsmap — a darts-clone double-array trie over UTF-8 —
// plus its whitespace rules, as sentencepiece's normalizer.cc applies them), and the tokenizer.json that transformers'
// convert_slow_tokenizer.SpmConverter builds from it for @huggingface/tokenizers (a Unigram model over the pieces).
// Browser-safe.
//
// ModelProto fields read (sentencepiece_model.proto): pieces = 1 (piece 1, score 2, type 3), trainer_spec = 2
// (model_type 3, byte_fallback 35, unk_id 40, unk_piece 45), normalizer_spec = 3 (name 1, precompiled_charsmap 2,
// add_dummy_prefix 3, remove_extra_whitespaces 4, escape_whitespaces 5).
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { HFImportError } from "./types.js";

/** sentencepiece_model.proto's SentencePiece.Type. */
export const enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }
export interface SentencePiece { piece: string; score: number; type: PieceType }
export interface SentencePieceModel {
  pieces: SentencePiece[];
  trainerSpec: { modelType: number; unkId: number; unkPiece: string; byteFallback: boolean };
  normalizerSpec: { name: string; precompiledCharsmap: Uint8Array; addDummyPrefix: boolean; removeExtraWhitespaces: boolean; escapeWhitespaces: boolean };
}

const MODEL_TYPES: Record<number, string> = { 1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR" };

function sub(r: BinaryReader): BinaryReader { return new BinaryReader(r.bytes()); }

/** Reads a SentencePiece ModelProto; `file` names it in errors. */
export function parseSentencePieceModel(bytes: Uint8Array, file = "the SentencePiece model"): SentencePieceModel {
  const m: SentencePieceModel = {
    pieces: [],
    trainerSpec: { modelType: 1, unkId: 0, unkPiece: "<unk>", byteFallback: false },
    normalizerSpec: { name: "", precompiledCharsmap: new Uint8Array(0), addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true },
  };
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [field, wt] = r.tag();
      if (field === 1 && wt === WireType.LengthDelimited) {
        const p = sub(r), sp: SentencePiece = { piece: "", score: 0, type: PieceType.Normal };
        while (p.pos < p.len) {
          const [f, w] = p.tag();
          if (f === 1 && w === WireType.LengthDelimited) sp.piece = p.string();
          else if (f === 2 && w === WireType.Bit32) sp.score = p.float();
          else if (f === 3 && w === WireType.Varint) sp.type = p.int32();
          else p.skip(w, f);
        }
        m.pieces.push(sp);
      } else if (field === 2 && wt === WireType.LengthDelimited) {
        const t = sub(r), ts = m.trainerSpec;
        while (t.pos < t.len) {
          const [f, w] = t.tag();
          if (f === 3 && w === WireType.Varint) ts.modelType = t.int32();
          else if (f === 35 && w === WireType.Varint) ts.byteFallback = t.bool();
          else if (f === 40 && w === WireType.Varint) ts.unkId = t.int32();
          else if (f === 45 && w === WireType.LengthDelimited) ts.unkPiece = t.string();
          else t.skip(w, f);
        }
      } else if (field === 3 && wt === WireType.LengthDelimited) {
        const n = sub(r), ns = m.normalizerSpec;
        while (n.pos < n.len) {
          const [f, w] = n.tag();
          if (f === 1 && w === WireType.LengthDelimited) ns.name = n.string();
          else if (f === 2 && w === WireType.LengthDelimited) ns.precompiledCharsmap = n.bytes().slice();
          else if (f === 3 && w === WireType.Varint) ns.addDummyPrefix = n.bool();
          else if (f === 4 && w === WireType.Varint) ns.removeExtraWhitespaces = n.bool();
          else if (f === 5 && w === WireType.Varint) ns.escapeWhitespaces = n.bool();
          else n.skip(w, f);
        }
      } else r.skip(wt, field);
    }
  } catch (e) {
    throw new HFImportError(`${file} is not a SentencePiece model (protobuf ModelProto): ${(e as Error).message}`);
  }
  if (!m.pieces.length) throw new HFImportError(`${file} has no pieces: it is not a SentencePiece model`);
  const t = m.trainerSpec;
  if (t.modelType !== 1) throw new HFImportError(`${file} is a SentencePiece ${MODEL_TYPES[t.modelType] ?? `type-${t.modelType}`} model; attnflow reads Unigram models (model_type 1), as Marian's are`);
  if (t.byteFallback) throw new HFImportError(`${file} uses byte_fallback, which attnflow's SentencePiece reader does not support (Marian models do not use it)`);
  if (!(t.unkId >= 0 && t.unkId < m.pieces.length)) throw new HFImportError(`${file}: unk_id ${t.unkId} is not a piece (0..${m.pieces.length - 1})`);
  return m;
}

// ------------------------------------------------------------------------------------------------------ normaliser
const utf8 = new TextEncoder(), utf8d = new TextDecoder();
const SPACE_SYMBOL = utf8.encode("\u2581"), REPLACEMENT = utf8.encode("\ufffd");

/** Length of the valid UTF-8 character at i (0 when malformed), as sentencepiece's IsValidDecodeUTF8. */
function utf8Len(b: Uint8Array, i: number): number {
  const c = b[i], n = b.length - i;
  if (c < 0x80) return 1;
  const need = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? (c < 0xf0 ? 3 : 0) : c >= 0xc2 ? 2 : 0;
  if (need === 0 || n < need) return 0;
  for (let k = 1; k < need; k++) if ((b[i + k] & 0xc0) !== 0x80) return 0;
  const cp = need === 2 ? ((c & 0x1f) << 6) | (b[i + 1] & 0x3f)
    : need === 3 ? ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f)
      : ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
  if ((need === 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need === 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  return need;
}

/**
 * SentencePiece's normaliser: the precompiled charsmap (longest match of a darts-clone double-array trie over the
 * UTF-8 bytes, replaced by its NUL-terminated target string), leading / repeated / trailing whitespace removed,
 * the dummy prefix "▁" added and spaces escaped to "▁" — as normalizer.cc's Normalize does.
 */
export class SpmNormalizer {
  private readonly units: Uint32Array | null = null;
  private readonly targets: Uint8Array = new Uint8Array(0);
  constructor(private readonly spec: SentencePieceModel["normalizerSpec"], file = "the SentencePiece model") {
    const blob = spec.precompiledCharsmap;
    if (blob.length) {
      const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
      const size = blob.length >= 4 ? dv.getUint32(0, true) : -1;
      if (size < 0 || size % 4 !== 0 || 4 + size > blob.length) throw new HFImportError(`${file}: precompiled_charsmap is malformed (trie of ${size} bytes in a ${blob.length}-byte map)`);
      this.units = new Uint32Array(size / 4);
      for (let k = 0; k < size / 4; k++) this.units[k] = dv.getUint32(4 + 4 * k, true);
      this.targets = blob.subarray(4 + size);
    }
  }

  /** [replacement bytes, bytes consumed] for the prefix of b at i (NormalizePrefix). */
  private prefix(b: Uint8Array, i: number): [Uint8Array, number] {
    if (this.units) {
      // darts-clone commonPrefixSearch, keeping the longest match
      const a = this.units, off = (u: number) => (u >>> 10) << ((u & (1 << 9)) >>> 6);
      let node = off(a[0]), best = 0, value = 0;
      for (let k = i; k < b.length; k++) {
        node ^= b[k];
        const u = a[node];
        if (u === undefined || (u & ((1 << 31) | 0xff)) !== b[k]) break;
        node ^= off(u);
        if ((u >>> 8) & 1) { best = k + 1 - i; value = a[node] & 0x7fffffff; }
      }
      if (best > 0) {
        let end = value;
        while (end < this.targets.length && this.targets[end] !== 0) end++;
        return [this.targets.subarray(value, end), best];
      }
    }
    const n = utf8Len(b, i);
    return n === 0 ? [REPLACEMENT, 1] : [b.subarray(i, i + n), n];
  }

  /** The normalised text (with "▁" for spaces when escape_whitespaces). */
  normalize(text: string): string {
    const s = this.spec, b = utf8.encode(text), out: number[] = [];
    let i = 0;
    if (s.removeExtraWhitespaces) {
      while (i < b.length) {
        const [r, n] = this.prefix(b, i);
        if (!(r.length === 1 && r[0] === 0x20)) break;
        i += n;
      }
    }
    if (i >= b.length) return "";
    const space = (): void => { if (s.escapeWhitespaces) out.push(...SPACE_SYMBOL); else out.push(0x20); };
    if (s.addDummyPrefix) space();
    let prevSpace = s.removeExtraWhitespaces;
    while (i < b.length) {
      const [r, n] = this.prefix(b, i);
      let k = 0;
      if (prevSpace) while (k < r.length && r[k] === 0x20) k++;
      if (k < r.length) {
        for (; k < r.length; k++) if (r[k] === 0x20) space(); else out.push(r[k]);
        prevSpace = r[r.length - 1] === 0x20;
      }
      i += n;
      if (!s.removeExtraWhitespaces) prevSpace = false;
    }
    let text2 = utf8d.decode(Uint8Array.from(out));
    if (s.removeExtraWhitespaces) {
      const sp = s.escapeWhitespaces ? "\u2581" : " ";
      while (text2.endsWith(sp)) text2 = text2.slice(0, -sp.length);
    }
    return text2;
  }
}

// ------------------------------------------------------------------------------------------- tokenizer.json model
/**
 * The tokenizer.json that transformers' SpmConverter writes for a Unigram SentencePiece model: vocab = the pieces
 * with their scores (ids = piece ids), unk_id from the trainer spec, the Precompiled normaliser with the model's
 * charsmap, Metaspace pre-tokenizer and decoder. `forSegmentation`: no normaliser (the caller normalises with
 * SpmNormalizer, which is exact where the library's Precompiled normaliser approximates), and control / unused pieces
 * renamed so that no text can match them (SentencePiece never emits them from text).
 */
export function spmTokenizerJson(m: SentencePieceModel, o: { forSegmentation?: boolean } = {}): Record<string, unknown> {
  const seg = !!o.forSegmentation;
  const vocab = m.pieces.map((p, i) => [seg && (p.type === PieceType.Control || p.type === PieceType.Unused) ? `\u0000${i}\u0000${p.piece}` : p.piece, p.score]);
  const charsmap = m.normalizerSpec.precompiledCharsmap;
  let b64 = "";
  for (let k = 0; k < charsmap.length; k += 0x8000) b64 += String.fromCharCode(...charsmap.subarray(k, k + 0x8000));
  const normalizer = seg ? null : {
    type: "Sequence", normalizers: [
      ...(charsmap.length ? [{ type: "Precompiled", precompiled_charsmap: btoa(b64) }] : []),
      { type: "Strip", strip_left: false, strip_right: true },
      { type: "Replace", pattern: { Regex: " {2,}" }, content: "\u2581" },
    ],
  };
  const meta = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true };
  return {
    version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer,
    pre_tokenizer: seg ? null : meta, post_processor: null, decoder: meta,
    model: { type: "Unigram", unk_id: m.trainerSpec.unkId, vocab, byte_fallback: false },
  };
}
