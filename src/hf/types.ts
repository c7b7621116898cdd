// The contract between attnflow's Hugging Face importers (one file per architecture under src/hf/, each with its own
// HF name mapping), the folder loader (fromPretrained), the parity runner (`npm run parity -- <dir>`) and the
// explainers. Browser-safe: no Node imports here or in any src/hf/ file except src/hf/node-*.ts.
import type { Tensor } from "../tensor.js";
import type { Module } from "../nn/module.js";

/** A parsed config.json (snake_case keys exactly as Hugging Face writes them). */
export type HFConfig = Record<string, unknown> & { model_type?: string; architectures?: string[] };

/**
 * Inputs named as Hugging Face names them. Integer inputs are int32 tensors (B, T); masks are 1 = attend, 0 = padding
 * (HF's convention, not nn.MultiheadAttention's). pixelValues is (B, C, H, W) float32.
 */
export interface HFInputs {
  inputIds?: Tensor;
  attentionMask?: Tensor;
  tokenTypeIds?: Tensor;
  positionIds?: Tensor;
  pixelValues?: Tensor;
  decoderInputIds?: Tensor;
  decoderAttentionMask?: Tensor;
}

export interface HFForwardOptions {
  outputAttentions?: boolean;
  outputHiddenStates?: boolean;
  /**
   * Sees the input embeddings and may return a replacement (input × gradient makes them a leaf that requires grad).
   * Text models: what HF calls inputs_embeds — the token-embedding lookup (times embed_scale where the model scales it:
   * Marian, BART with scale_embedding), before positions, token types and any normalisation: (B, T, E). ViT: the patch
   * embeddings (B, N, E), before the [CLS] token and the positions. Encoder–decoders: the encoder's input only.
   */
  onEmbeddings?: (x: Tensor) => Tensor;
}

/**
 * Outputs named like HF's ModelOutput fields, camelCase. Lists are per layer; attentions are softmax probabilities
 * (B, H, Tq, Tk); hiddenStates[0] is the embedding output, as in HF.
 */
export interface HFOutputs {
  logits?: Tensor;
  lastHiddenState?: Tensor;
  poolerOutput?: Tensor;
  hiddenStates?: Tensor[];
  attentions?: Tensor[];
  // encoder–decoders
  encoderLastHiddenState?: Tensor;
  encoderHiddenStates?: Tensor[];
  encoderAttentions?: Tensor[];
  decoderHiddenStates?: Tensor[];
  decoderAttentions?: Tensor[];
  crossAttentions?: Tensor[];
}

/** Greedy/sampled generation with a KV cache (decoders and encoder–decoders). */
export interface HFGenerateOptions {
  maxNewTokens: number;
  /** HF generate() semantics for decoders: positions from cumsum(attentionMask) - 1 (left padding). */
  eosTokenId?: number | null;
  /** Collect the raw logits of each step (B, vocab) — for parity with HF's gen.step_logits. */
  returnStepLogits?: boolean;
}
export interface HFGenerateResult {
  /** Decoders: prompt + new tokens (B, T + n). Encoder–decoders: decoder start token + new tokens. */
  sequences: Tensor;
  stepLogits?: Tensor[];
}

/** What a model needs to start token-by-token decoding (see HFModel.startDecoding). */
export interface HFDecodingOptions {
  /** Tokens that will be generated at most (decoders size their KV cache and check their position table with it). */
  maxNewTokens: number;
  /** Encoder–decoders: the decoder's first token (default: the config's decoder_start_token_id). */
  decoderStartTokenId?: number;
}

/**
 * Token-by-token decoding with a KV cache over a batch of rows, as HF's generate() drives a model: the first step()
 * (tokens = null) reads the prompt (decoders) or the decoder start token (encoder–decoders); each later step() feeds
 * the token chosen for every row. reorder() is beam search's cache reordering (row i becomes row rows[i]; the count
 * stays the same). Runs without gradients.
 */
export interface HFDecodingSession {
  readonly batch: number;
  /** The tokens each row holds before the first new one: the prompt (padding included) or [decoder start]. */
  readonly prefix: number[][];
  /** Logits (batch, vocab) of the next token. */
  step(tokens: Int32Array | null): Tensor;
  reorder(rows: readonly number[]): void;
  /** Release cache buffers early (optional; garbage collection does it otherwise). */
  dispose?(): void;
}

/** An imported model: an ordinary attnflow Module whose stateDict() keys are HF's names. */
export interface HFModel extends Module {
  readonly config: HFConfig;
  /** The HF class this instance mirrors, e.g. "BertForSequenceClassification". */
  readonly architecture: string;
  /** generation_config.json as loaded with the model (HF's model.generation_config); null or absent: none. */
  generationConfig?: Record<string, unknown> | null;
  forward(inputs: HFInputs, opts?: HFForwardOptions): HFOutputs;
  generate?(inputs: HFInputs, opts: HFGenerateOptions): HFGenerateResult;
  /** Decoders and encoder–decoders: token-by-token decoding with the KV cache (what generate() in src/hf/generation.ts drives). */
  startDecoding?(inputs: HFInputs, opts: HFDecodingOptions): HFDecodingSession;
  /** HF names that HF itself leaves out of model.safetensors because they are tied (e.g. GPT-2's lm_head.weight). */
  tiedWeights?(): string[];
  /** Checkpoint names HF's from_pretrained ignores for this class (its _keys_to_ignore_on_load_unexpected), e.g.
   *  GPT-2's old attn.bias buffers or a pretraining head; they are skipped instead of reported as unexpected. */
  keysToIgnoreOnLoad?(): RegExp[];
}

/** One architecture family (one file under src/hf/), registered in src/hf/registry.ts by its model_type(s). */
export interface HFFamily {
  modelTypes: string[];
  /** The HF classes supported, e.g. ["BertModel", "BertForSequenceClassification", "BertForMaskedLM"]. */
  architectures: string[];
  /** Build a randomly initialised model from a config (validating it: unknown/unsupported options name the key). */
  fromConfig(config: HFConfig, architecture?: string): HFModel;
  /** HF's base_model_prefix ("bert", "transformer", …): lets a bare base checkpoint load into a model with a head
   *  (and the other way round), as HF's from_pretrained does. */
  baseModelPrefix?: string;
}

/** Error for a config or checkpoint that attnflow cannot import; the message names the key and the supported set. */
export class HFImportError extends Error {
  constructor(message: string) { super(message); this.name = "HFImportError"; }
}
