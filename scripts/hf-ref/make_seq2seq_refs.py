#!/usr/bin/python3
"""Encoder-decoder reference cases (Marian, BART, T5 variants) from Hugging Face's own code.

Usage:  /usr/bin/python3 scripts/hf-ref/make_seq2seq_refs.py OUTDIR [case ...]

Reuses ../shared/hf-ref/make_refs.py unchanged (its vendored transformers 4.44.2, its inputs, forward, greedy
generation, round-trip check and reference.safetensors writer): this script only adds model configs to its MODELS
table and calls its main(). The shared folder is found at $HF_REF or ../shared/hf-ref relative to the repo root.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HF_REF = os.environ.get("HF_REF") or os.path.join(os.path.dirname(ROOT), "shared", "hf-ref")
sys.dont_write_bytecode = True
sys.path.insert(0, HF_REF)
import make_refs as R  # noqa: E402  (sets up the vendored transformers on sys.path)
from transformers import BartConfig, BartForConditionalGeneration  # noqa: E402


SMALL = dict(vocab_size=64, d_model=16)  # keeps each committed case at tens of KB


def bart_config(**kw):
    base = dict(vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
                init_std=R.INIT, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
                forced_eos_token_id=None, forced_bos_token_id=None, activation_function="gelu",
                scale_embedding=False, attn_implementation="eager")
    base.update(kw)
    return BartConfig(**base)


def marian_config(**kw):
    """make_refs' Marian (sinusoidal positions, swish, scaled and tied embeddings), made smaller, then kw."""
    cfg = R._with(R.marian_config(), vocab_size=64, decoder_vocab_size=64, d_model=16, encoder_ffn_dim=32,
                  decoder_ffn_dim=32, max_position_embeddings=32)
    return R._with(cfg, **kw)


def t5_config(**kw):
    """make_refs' T5 (gated-gelu, untied head, 8 buckets over distance 16), made smaller, then kw."""
    base = dict(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_decoder_layers=2, num_heads=4,
                relative_attention_num_buckets=8, relative_attention_max_distance=16, feed_forward_proj="gated-gelu",
                tie_word_embeddings=False, initializer_factor=1.0, pad_token_id=0, eos_token_id=1,
                decoder_start_token_id=0, attn_implementation="eager")
    base.update(kw)
    return R.T5Config(**base)


def seq2seq(cls, cfg_fn, inputs=R.seq2seq_inputs):
    return (cls, cfg_fn, inputs, "seq2seq")


def decoder_padded_inputs(gen, cfg):
    """make_refs' seq2seq inputs plus a decoder_attention_mask: decoder row 1 right-padded after 3 tokens."""
    inputs = R.seq2seq_inputs(gen, cfg)
    mask = R.torch.ones_like(inputs["decoder_input_ids"])
    mask[1, 3:] = 0
    inputs["decoder_input_ids"][1, 3:] = cfg.pad_token_id
    inputs["decoder_attention_mask"] = mask
    return inputs


def fully_masked_inputs(gen, cfg):
    """Rows that can attend to nothing: encoder row 1 all padding, decoder row 1 left-padded (its first query sees
    only padding). HF adds float32's lowest value to masked scores, so such a row attends uniformly to every key."""
    inputs = R.seq2seq_inputs(gen, cfg)
    inputs["attention_mask"][1, :] = 0
    inputs["input_ids"][1, :] = cfg.pad_token_id
    mask = R.torch.ones_like(inputs["decoder_input_ids"])
    mask[1, :2] = 0
    inputs["decoder_attention_mask"] = mask
    return inputs


CASES = {
    "marian-swish-tied": seq2seq(R.MarianMTModel, marian_config),
    # 3 encoder / 1 decoder layers, 8 and 2 heads, gelu, no embedding scaling, untied head, odd d_model
    "marian-untied-gelu": seq2seq(R.MarianMTModel, lambda: marian_config(
        d_model=24, encoder_layers=3, decoder_layers=1, encoder_attention_heads=8, decoder_attention_heads=2,
        encoder_ffn_dim=20, decoder_ffn_dim=36, activation_function="gelu", scale_embedding=False,
        tie_word_embeddings=False)),
    # separate encoder/decoder embeddings (share_encoder_decoder_embeddings=False), relu, d_model 18 (9 sin / 9 cos)
    "marian-unshared-relu": seq2seq(R.MarianMTModel, lambda: marian_config(
        d_model=18, encoder_attention_heads=3, decoder_attention_heads=6, share_encoder_decoder_embeddings=False,
        activation_function="relu")),
    "t5-gated-gelu-untied": seq2seq(R.T5ForConditionalGeneration, t5_config),
    # T5 v1.0 style: relu dense, tied head (d_model^-0.5 rescale), 32 buckets over distance 20, 6 heads, 3/1 layers
    "t5-relu-tied": seq2seq(R.T5ForConditionalGeneration, lambda: t5_config(
        feed_forward_proj="relu", tie_word_embeddings=True, num_heads=6, d_kv=4, relative_attention_num_buckets=32,
        relative_attention_max_distance=20, num_layers=3, num_decoder_layers=1, d_ff=24)),
    # gated-gelu, 2 heads of 12 (inner 24 != d_model 16), 4 buckets over distance 6, 1/3 layers
    "t5-narrow-buckets": seq2seq(R.T5ForConditionalGeneration, lambda: t5_config(
        d_kv=12, num_heads=2, relative_attention_num_buckets=4, relative_attention_max_distance=6, d_ff=20,
        num_layers=1, num_decoder_layers=3)),
    # gated-silu (an activation from the "gated-{act}" family), tied
    "t5-gated-silu-tied": seq2seq(R.T5ForConditionalGeneration, lambda: t5_config(
        feed_forward_proj="gated-silu", tie_word_embeddings=True)),
    "bart-gelu-tied": seq2seq(BartForConditionalGeneration, bart_config),
    # scaled embeddings, relu, 8/2 heads, 1/3 layers, untied head
    "bart-scaled-untied": seq2seq(BartForConditionalGeneration, lambda: bart_config(
        scale_embedding=True, activation_function="relu", d_model=24, encoder_attention_heads=8,
        decoder_attention_heads=2, encoder_layers=1, decoder_layers=3, tie_word_embeddings=False)),
    # decoder_attention_mask (right padding) in the forward pass
    "bart-decoder-padding": seq2seq(BartForConditionalGeneration, bart_config, decoder_padded_inputs),
    "t5-decoder-padding": seq2seq(R.T5ForConditionalGeneration, t5_config, decoder_padded_inputs),
    # rows with nothing to attend to (HF's finite-minimum masks make them uniform, not zero)
    "marian-fully-masked-rows": seq2seq(R.MarianMTModel, marian_config, fully_masked_inputs),
    "t5-fully-masked-rows": seq2seq(R.T5ForConditionalGeneration, t5_config, fully_masked_inputs),
}

def write_buckets(outdir):
    """HF's own T5Attention._relative_position_bucket over long distances (the fixtures' short inputs reach few buckets)."""
    import json
    import torch
    from transformers.models.t5.modeling_t5 import T5Attention
    rel = torch.arange(-300, 301)
    cases = []
    for nb, md in [(32, 128), (8, 16), (32, 20), (4, 6), (64, 256), (16, 1000), (6, 7)]:
        for bidir in (True, False):
            b = T5Attention._relative_position_bucket(rel, bidirectional=bidir, num_buckets=nb, max_distance=md)
            cases.append({"num_buckets": nb, "max_distance": md, "bidirectional": bidir,
                          "relative_positions": rel.tolist(), "buckets": b.tolist()})
    with open(os.path.join(outdir, "t5-buckets.json"), "w") as f:
        json.dump({"source": "transformers 4.44.2 T5Attention._relative_position_bucket", "cases": cases}, f)


if __name__ == "__main__":
    names = sys.argv[2:] if len(sys.argv) > 2 else list(CASES)
    R.MODELS.clear()
    R.MODELS.update({n: CASES[n] for n in names})
    R.main()
    if len(sys.argv) > 1:
        write_buckets(sys.argv[1])
