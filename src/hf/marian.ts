// MarianMTModel (HF transformers 4.44 modeling_marian.py): the BART-family encoder–decoder (bart-like.ts) with
// Marian's sinusoidal positions (not saved in model.safetensors: rebuilt from the config), no embedding LayerNorm,
// token embeddings times √d_model when scale_embedding, one shared embedding (model.shared) unless
// share_encoder_decoder_embeddings is false, lm_head tied to the decoder embedding unless tie_word_embeddings is false,
// and final_logits_bias. Browser-safe.
//
// Config keys read (HF defaults in brackets): vocab_size [58101], decoder_vocab_size [= vocab_size], d_model [1024],
// encoder_layers/decoder_layers [12], encoder_attention_heads/decoder_attention_heads [16],
// encoder_ffn_dim/decoder_ffn_dim [4096], max_position_embeddings [1024], activation_function ["gelu"; Marian
// checkpoints use "swish"], scale_embedding [false], share_encoder_decoder_embeddings [true], tie_word_embeddings
// [true], dropout [0.1], attention_dropout [0], activation_dropout [0], pad_token_id [58100], decoder_start_token_id [58100], init_std [0.02].
import { Tensor } from "../tensor.js";
import { Module } from "../nn/module.js";
import { bartLikeCommon, bartLikeFamily, type BartLikeSpec, type PositionTable } from "./bart-like.js";
import { ConfigReader } from "./common.js";
import { HFImportError, type HFConfig, type HFFamily } from "./types.js";

/**
 * HF's MarianSinusoidalPositionalEmbedding table (n_pos, dim), computed as its _init_weight does (float64, then
 * float32): not interleaved — sin(pos / 10000^(2i/dim)) in columns [0, ⌈dim/2⌉), the cos of the same angles after.
 */
export function marianSinusoidalTable(nPos: number, dim: number): Tensor {
  const out = new Float32Array(nPos * dim);
  const sentinel = Math.ceil(dim / 2), nCos = Math.floor(dim / 2);
  for (let p = 0; p < nPos; p++) {
    for (let i = 0; i < sentinel; i++) {
      const angle = p / Math.pow(10000, (2 * i) / dim);
      out[p * dim + i] = Math.sin(angle);
      if (i < nCos) out[p * dim + sentinel + i] = Math.cos(angle);
    }
  }
  return Tensor.fromArray(out, [nPos, dim]);
}

/** The fixed table as a non-persistent buffer (HF leaves model.*.embed_positions.weight out of the checkpoint). */
class MarianPositions extends Module implements PositionTable {
  constructor(readonly nPos: number, readonly dim: number) {
    super();
    this.registerBuffer("weight", marianSinusoidalTable(nPos, dim), false);
  }
  forward(T: number, past: number): Tensor { return this.getBuffer("weight")!.narrow(0, past, T); } // (T, D)
}

/** Reads and checks a Marian config.json into the shared encoder–decoder's spec. */
export function marianSpec(config: HFConfig, architecture: string): BartLikeSpec {
  const c = new ConfigReader(config, "marian");
  const vocab = c.int("vocab_size", 58101);
  const decoderVocab = c.int("decoder_vocab_size", vocab);
  const share = c.bool("share_encoder_decoder_embeddings", true);
  if (decoderVocab !== vocab) {
    // HF builds the decoder embedding with vocab_size rows but lm_head with decoder_vocab_size: no checkpoint does this
    throw new HFImportError(`marian config.json: "decoder_vocab_size" (${decoderVocab}) different from "vocab_size" (${vocab}) is not supported`);
  }
  const dModel = c.int("d_model", 1024);
  const common = bartLikeCommon(c, dModel);
  const pad = c.tokenId("pad_token_id", vocab, 58100);
  return {
    modelType: "marian", architecture, vocab, dModel, ...common,
    layernormEmbedding: false,
    positions: () => new MarianPositions(common.maxPositions, dModel),
    shareEmbeddings: share,
    padId: pad,
    decoderStartId: c.tokenId("decoder_start_token_id", vocab, 58100) ?? pad ?? 0,
  };
}

export const marianFamily: HFFamily = bartLikeFamily("marian", "MarianMTModel", "MarianModel", marianSpec);
