#!/usr/bin/python3
"""Extra Llama reference cases for test/fixtures/hf/, computed by HF's own code through ../shared/hf-ref/make_refs.py.

Usage:  /usr/bin/python3 scripts/hf-ref/make_llama_cases.py OUTDIR [case ...]

make_refs.py is imported, not copied or changed: its MODELS table gains the cases below and its make_one() writes
each folder (config.json, generation_config.json, model.safetensors, reference.safetensors, checked by reloading
with from_pretrained). HF_REF_DIR overrides where make_refs.py lives (default: ../shared/hf-ref from the repo root).
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REF = os.environ.get("HF_REF_DIR", os.path.join(ROOT, "..", "shared", "hf-ref"))
sys.dont_write_bytecode = True
sys.path.insert(0, REF)

import make_refs  # noqa: E402  (sets up the vendored transformers 4.44.2)
import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402


def cfg(**kw):
    base = dict(vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=128, rope_theta=10000.0, rms_norm_eps=1e-6,
                hidden_act="silu", tie_word_embeddings=False, initializer_range=make_refs.INIT, bos_token_id=1,
                eos_token_id=2, attn_implementation="eager")
    base.update(kw)
    return lambda: LlamaConfig(**base)


def left_padded(pads, t):
    """Rows of length t; row r has pads[r] padding tokens (id 0, mask 0) on the left."""
    def make(gen, c):
        input_ids = make_refs.ids(gen, len(pads), t, c.vocab_size)
        attention_mask = torch.ones(len(pads), t, dtype=torch.long)
        for r, p in enumerate(pads):
            attention_mask[r, :p] = 0
            input_ids[r, :p] = 0
        return {"input_ids": input_ids, "attention_mask": attention_mask}
    return make


CASES = {
    # multi-query attention (one KV head), tied head, Llama-3's RoPE base
    "llama-mqa-tied": (cfg(num_attention_heads=4, num_key_value_heads=1, rope_theta=500000.0, tie_word_embeddings=True),
                       left_padded([0, 3], 8)),
    # plain multi-head attention (no GQA), biases on attention and MLP, 3 layers, eps 1e-5, RoPE base 1e6
    "llama-mha-bias": (cfg(num_attention_heads=2, num_key_value_heads=2, num_hidden_layers=3, rope_theta=1e6,
                           rms_norm_eps=1e-5, attention_bias=True, mlp_bias=True),
                       left_padded([0, 1, 4], 7)),
    # GQA ratio 4 (8 query heads, 2 KV heads, head dim 4) and linear RoPE scaling
    "llama-gqa4-linear": (cfg(num_attention_heads=8, num_key_value_heads=2, rope_theta=20000.0,
                              rope_scaling={"rope_type": "linear", "factor": 2.0}),
                          left_padded([2, 0], 9)),
    # Llama 3.1's frequency-dependent RoPE scaling (wavelengths chosen so every band is exercised), no padding
    "llama-rope-llama3": (cfg(num_attention_heads=2, num_key_value_heads=1, rope_theta=10000.0,
                              rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
                          left_padded([0, 0], 10)),
}


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    outdir = sys.argv[1]
    names = sys.argv[2:] or list(CASES)
    for name, (cfg_fn, in_fn) in CASES.items():
        make_refs.MODELS[name] = (LlamaForCausalLM, cfg_fn, in_fn, "causal")
    os.makedirs(outdir, exist_ok=True)
    for n in names:
        d, diff = make_refs.make_one(n, outdir)
        files = ", ".join(f"{f} ({os.path.getsize(os.path.join(d, f))} B)" for f in sorted(os.listdir(d)))
        print(f"{n}: {files}; cache vs no-cache max |diff| {diff:.2e}", flush=True)


if __name__ == "__main__":
    main()
