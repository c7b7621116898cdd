// The small model and the long-context task of bench/long-attention.ts (docs/long-attention.md).
//
// Task — associative needle retrieval in real text: a haystack of T − 1 characters cut from the copyright files of
// the Debian packages installed here, with TYPES needles hidden at distinct uniformly random positions — one of
// each type, each carrying one of VALUES values (a needle is one reserved token per (type, value)) — and a query
// token at the end naming one type. The label is the value of that type's needle. The query must pick the right
// one of several needles anywhere in T positions: an attention that cannot reach the whole input (a sliding window)
// is right only when that needle falls inside its reach (else it guesses), and one that blurs long inputs (low
// rank, kernel features) mixes the needles up with each other and with the text.
//
// Model (pre-norm encoder, no position encoding: the task is content-based, so every model can run at any length):
//   ids (B, T) → Embedding (B, T, d) → L × [x + attn(LN x); x + MLP(LN x)] → LN → last position → Linear → (B, VALUES)
// with attn one of: full softmax attention (nn.MultiheadAttention), sliding window (the same, window W), linear
// attention (nn.LinearAttention), Linformer (nn.LinformerAttention, maxLength = the input length, k slots).
import * as af from "../src/node.js";
import { Module } from "../src/nn/module.js";
import { mulberry32 } from "./lib/prng.js";

export type AttnKind = "full" | "window" | "linear" | "linformer";
export const KINDS: AttnKind[] = ["full", "window", "linear", "linformer"];

/** Printable ASCII (32..126) and newline are ids 0..95; anything else maps to "?". */
export const TEXT_VOCAB = 96;
export const TYPES = 4, VALUES = 8;
/** Needle (type t, value v) is token NEEDLE0 + t·VALUES + v; the query for type t is QUERY0 + t. */
export const NEEDLE0 = TEXT_VOCAB, QUERY0 = NEEDLE0 + TYPES * VALUES, VOCAB = QUERY0 + TYPES;

export interface ModelConfig {
  d: number; heads: number; layers: number; ff: number;
  /** Sliding window W (symmetric: |i − j| < W). */
  window: number;
  /** Linformer slots k and its maxLength (the input length it is built for). */
  projLength: number; maxLength: number;
  /** Linformer: one projection E for keys and values. */
  shareKV?: boolean;
}

export const DEFAULT_CONFIG: Omit<ModelConfig, "maxLength"> = { d: 32, heads: 2, layers: 2, ff: 64, window: 128, projLength: 64 };

export function charId(c: number): number {
  if (c === 10) return 95;
  return c >= 32 && c <= 126 ? c - 32 : 31;   // "?"
}

interface AttnLayer { forward(x: af.Tensor): af.Tensor }

/** One attention sublayer of the chosen kind, (B, T, d) → (B, T, d). */
class Attn extends Module implements AttnLayer {
  mha: af.nn.MultiheadAttention | null = null;
  lin: af.nn.LinearAttention | null = null;
  lf: af.nn.LinformerAttention | null = null;
  constructor(kind: AttnKind, c: ModelConfig) {
    super();
    if (kind === "full") this.mha = new af.nn.MultiheadAttention(c.d, c.heads, { batchFirst: true });
    else if (kind === "window") this.mha = new af.nn.MultiheadAttention(c.d, c.heads, { batchFirst: true, window: c.window });
    else if (kind === "linear") this.lin = new af.nn.LinearAttention(c.d, c.heads);
    else this.lf = new af.nn.LinformerAttention(c.d, c.heads, c.maxLength, c.projLength, { shareKV: !!c.shareKV });
  }
  forward(x: af.Tensor): af.Tensor {
    if (this.mha) return this.mha.forward(x, x, x, { needWeights: false })[0];
    if (this.lin) return this.lin.forward(x).out;
    return this.lf!.forward(x).out;
  }
}

class Block extends Module {
  norm1: af.nn.LayerNorm; attn: Attn; norm2: af.nn.LayerNorm; fc1: af.nn.Linear; fc2: af.nn.Linear;
  constructor(kind: AttnKind, c: ModelConfig) {
    super();
    this.norm1 = new af.nn.LayerNorm(c.d); this.attn = new Attn(kind, c);
    this.norm2 = new af.nn.LayerNorm(c.d); this.fc1 = new af.nn.Linear(c.d, c.ff); this.fc2 = new af.nn.Linear(c.ff, c.d);
  }
  forward(x: af.Tensor): af.Tensor {
    const h = x.add(this.attn.forward(this.norm1.forward(x)));                       // (B, T, d)
    return h.add(this.fc2.forward(af.F.gelu(this.fc1.forward(this.norm2.forward(h)))));
  }
}

export class NeedleModel extends Module {
  emb: af.nn.Embedding; blocks: af.nn.ModuleList<Block>; norm: af.nn.LayerNorm; head: af.nn.Linear;
  constructor(readonly kind: AttnKind, readonly config: ModelConfig) {
    super();
    this.emb = new af.nn.Embedding(VOCAB, config.d);
    this.blocks = new af.nn.ModuleList(Array.from({ length: config.layers }, () => new Block(kind, config)));
    this.norm = new af.nn.LayerNorm(config.d);
    this.head = new af.nn.Linear(config.d, VALUES);
  }
  /** ids (B, T) int32, the query last → logits (B, VALUES). */
  forward(ids: af.Tensor): af.Tensor {
    let x = this.emb.forward(ids);                                                     // (B, T, d)
    for (const b of this.blocks) x = b.forward(x);
    const T = ids.shape[1];
    return this.head.forward(this.norm.forward(x.narrow(1, T - 1, 1).squeeze(1)));    // (B, VALUES)
  }
}

/** mulberry32 (the bench's seeded PRNG), so every run draws the same haystacks. */
export const prng = mulberry32;

/**
 * A batch of B problems of length T ≥ TYPES + 2 from `text` (char ids): ids (B, T), labels (B) = the asked needle's
 * value, and the asked needle's position in each.
 */
export function needleBatch(text: Uint8Array, B: number, T: number, rand: () => number): { ids: af.Tensor; labels: af.Tensor; pos: number[] } {
  if (text.length < T) throw new Error(`needleBatch: the corpus (${text.length} chars) is shorter than T = ${T}`);
  if (T < TYPES + 2) throw new Error(`needleBatch: T = ${T} is too short for ${TYPES} needles and the query`);
  const ids = new Int32Array(B * T), labels = new Int32Array(B), pos: number[] = [];
  for (let b = 0; b < B; b++) {
    const start = Math.floor(rand() * (text.length - T));
    for (let t = 0; t < T - 1; t++) ids[b * T + t] = text[start + t];
    const at = new Set<number>();
    while (at.size < TYPES) at.add(Math.floor(rand() * (T - 1)));
    const places = [...at], asked = Math.floor(rand() * TYPES);
    places.forEach((p, type) => {
      const v = Math.floor(rand() * VALUES);
      ids[b * T + p] = NEEDLE0 + type * VALUES + v;
      if (type === asked) { labels[b] = v; pos.push(p); }
    });
    ids[b * T + T - 1] = QUERY0 + asked;
  }
  return { ids: af.Tensor.fromArray(ids, [B, T], "int32"), labels: af.Tensor.fromArray(labels, [B], "int32"), pos };
}
