// Mistral (Hugging Face MistralForCausalLM, transformers 4.44.2 semantics): the Llama decoder of src/hf/llama.ts
// without biases, plus sliding-window attention. Every layer's query at position i sees the keys i − W < j ≤ i
// (W = config.sliding_window; null: full causal attention), padding masked as HF masks it:
//   h₀ = embed_tokens[ids]                                                       (B, T, E)
//   hₗ = hₗ₋₁ + o_proj(SlidingWindowAttn_W(RoPE(q_proj·n), RoPE(k_proj·n), v_proj·n)), n = RMSNorm₁(hₗ₋₁)   H / Hkv heads
//   hₗ = hₗ + down_proj(SiLU(gate_proj·m) ⊙ up_proj·m), m = RMSNorm₂(hₗ)
//   logits = lm_head(RMSNorm_f(h_L))                                              (B, T, V)
// The window is GroupedQueryAttention's `window` option: the fused kernels skip the key blocks outside the band
// (F.scaledDotProductAttention's window), and with a KV cache positions count the cached keys, so generation slides
// the window over the cache as HF's DynamicCache path does (keys older than the window stay cached but unseen).
// State-dict names (HF's, identical to Llama's): model.embed_tokens.weight, model.layers.<i>.self_attn.{q,k,v,o}_proj.weight,
// model.layers.<i>.mlp.{gate,up,down}_proj.weight, model.layers.<i>.{input,post_attention}_layernorm.weight,
// model.norm.weight, lm_head.weight (absent when tie_word_embeddings). Browser-safe.
import { HFImportError, type HFConfig, type HFFamily, type HFModel } from "./types.js";
import { LlamaForCausalLM, llamaSettings, type LlamaSettings } from "./llama.js";

/** MistralConfig's defaults (transformers 4.44.2): a config.json written with use_diff omits keys equal to them. */
const DEFAULTS: HFConfig = {
  vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
  num_key_value_heads: 8, hidden_act: "silu", max_position_embeddings: 4096 * 32, initializer_range: 0.02, rms_norm_eps: 1e-6,
  tie_word_embeddings: false, rope_theta: 10000.0, sliding_window: 4096, attention_dropout: 0.0,
};

/** Read and check a Mistral config.json; unsupported options are HFImportErrors naming the key. */
export function mistralSettings(c: HFConfig): LlamaSettings {
  if (c.model_type !== undefined && c.model_type !== "mistral") throw new HFImportError(`Mistral config: model_type must be "mistral", got ${JSON.stringify(c.model_type)}`);
  const merged: HFConfig = { ...DEFAULTS };
  for (const [k, v] of Object.entries(c)) if (v !== undefined) merged[k] = v;
  // MistralConfig has no num_key_value_heads = null: HF sets it to num_attention_heads
  if (merged.num_key_value_heads === null) merged.num_key_value_heads = merged.num_attention_heads;
  const w = merged.sliding_window;
  if (w !== null && (typeof w !== "number" || !Number.isInteger(w) || w < 1)) {
    throw new HFImportError(`Mistral config: sliding_window must be a positive integer or null (no window), got ${JSON.stringify(w)}`);
  }
  let s: LlamaSettings;
  try {
    // Mistral 4.44.2 has no attention/MLP biases and reads neither rope_scaling nor pretraining_tp (default RoPE)
    s = llamaSettings({ ...merged, model_type: "llama", attention_bias: false, mlp_bias: false, rope_scaling: null, pretraining_tp: 1 });
  } catch (e) {
    if (e instanceof HFImportError) throw new HFImportError(e.message.replace(/^Llama config:/, "Mistral config:"));
    throw e;
  }
  return { ...s, slidingWindow: w as number | null };
}

export class MistralForCausalLM extends LlamaForCausalLM {
  override readonly architecture: string = "MistralForCausalLM";
  constructor(config: HFConfig) { super(config, mistralSettings(config)); }
}

export const mistralFamily: HFFamily = {
  modelTypes: ["mistral"],
  architectures: ["MistralForCausalLM"],
  fromConfig(config: HFConfig, architecture?: string): HFModel {
    const arch = architecture ?? config.architectures?.[0] ?? "MistralForCausalLM";
    if (arch !== "MistralForCausalLM") throw new HFImportError(`Mistral: architecture ${JSON.stringify(arch)} is not supported (supported: MistralForCausalLM)`);
    return new MistralForCausalLM(config);
  },
};
