#!/usr/bin/python3
"""Extra Llama reference cases for test/fixtures/hf/, computed by HF's own code through ../shared/hf-ref/make_refs.py.

Usage:  /usr/bin/python3 scripts/hf-ref/make_llama_cases.py OUTDIR [case ...]

make_refs.py is imported, not copied or changed: extra_refs.run() adds the rows below to its MODELS table (each
row's config is make_refs' Llama config made smaller, then the row's fields) and its make_one() writes each folder
(config.json, generation_config.json, model.safetensors, reference.safetensors, checked by reloading with
from_pretrained). HF_REF_DIR overrides where make_refs.py lives (default: ../shared/hf-ref from the repo root).
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extra_refs import padded, run  # noqa: E402  (finds make_refs.py, puts the vendored transformers 4.44.2 on sys.path)
from transformers import LlamaForCausalLM  # noqa: E402

LLAMA = ("llama", LlamaForCausalLM)


# name: (make_refs.py base model, HF class, config fields beyond extra_refs.SMALL["llama"], inputs)
CASES = {
    # multi-query attention (one KV head), tied head, Llama-3's RoPE base
    "llama-mqa-tied": (*LLAMA, dict(num_attention_heads=4, num_key_value_heads=1, rope_theta=500000.0, tie_word_embeddings=True),
                       padded(2, 8, left=[0, 3])),
    # plain multi-head attention (no GQA), biases on attention and MLP, 3 layers, eps 1e-5, RoPE base 1e6
    "llama-mha-bias": (*LLAMA, dict(num_attention_heads=2, num_key_value_heads=2, num_hidden_layers=3, rope_theta=1e6,
                                    rms_norm_eps=1e-5, attention_bias=True, mlp_bias=True),
                       padded(3, 7, left=[0, 1, 4])),
    # GQA ratio 4 (8 query heads, 2 KV heads, head dim 4) and linear RoPE scaling
    "llama-gqa4-linear": (*LLAMA, dict(num_attention_heads=8, num_key_value_heads=2, rope_theta=20000.0,
                                       rope_scaling={"rope_type": "linear", "factor": 2.0}),
                          padded(2, 9, left=[2, 0])),
    # Llama 3.1's frequency-dependent RoPE scaling (wavelengths chosen so every band is exercised), no padding
    "llama-rope-llama3": (*LLAMA, dict(num_attention_heads=2, num_key_value_heads=1, rope_theta=10000.0,
                                       rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
                          padded(2, 10, left=[0, 0])),
}


if __name__ == "__main__":
    run(CASES, __doc__)
