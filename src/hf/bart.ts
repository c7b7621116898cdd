// BartForConditionalGeneration (HF transformers 4.44 modeling_bart.py): the encoder–decoder in bart-like.ts with
// learned positions (BartLearnedPositionalEmbedding: max_position_embeddings + 2 rows, position p reads row p + 2),
// layernorm_embedding after token + position embeddings, token embeddings times √d_model when scale_embedding
// (BartScaledWordEmbedding), one shared embedding, lm_head tied to it unless tie_word_embeddings is false, and
// final_logits_bias. Browser-safe.
//
// Config keys read (HF defaults in brackets): vocab_size [50265], d_model [1024], encoder_layers/decoder_layers [12],
// encoder_attention_heads/decoder_attention_heads [16], encoder_ffn_dim/decoder_ffn_dim [4096],
// max_position_embeddings [1024], activation_function ["gelu"], scale_embedding [false], tie_word_embeddings [true],
// pad_token_id [1], decoder_start_token_id [2], init_std [0.02].
import { bartLikeCommon, bartLikeFamily, LearnedPositions, type BartLikeSpec } from "./bart-like.js";
import { ConfigReader } from "./common.js";
import { type HFConfig, type HFFamily } from "./types.js";

/** BART's position offset: HF keeps two extra rows at the start of the learned table. */
export const BART_POSITION_OFFSET = 2;

/** Reads and checks a BART config.json into the shared encoder–decoder's spec. */
export function bartSpec(config: HFConfig, architecture: string): BartLikeSpec {
  const c = new ConfigReader(config, "bart");
  // Legacy keys of older BART configs (normalize_before, add_final_layer_norm, normalize_embedding, add_bias_logits,
  // static_position_embeddings) are ignored by HF 4.44's BartConfig too: the architecture is the same whatever they say.
  const vocab = c.int("vocab_size", 50265);
  const dModel = c.int("d_model", 1024);
  const common = bartLikeCommon(c, dModel);
  return {
    modelType: "bart", architecture, vocab, dModel, ...common,
    layernormEmbedding: true,
    positions: () => new LearnedPositions(common.maxPositions + BART_POSITION_OFFSET, dModel, BART_POSITION_OFFSET),
    shareEmbeddings: true,
    padId: c.tokenId("pad_token_id", vocab, 1),
    decoderStartId: c.tokenId("decoder_start_token_id", vocab, 2) ?? 2,
  };
}

export const bartFamily: HFFamily = bartLikeFamily("bart", "BartForConditionalGeneration", "BartModel", bartSpec);
