#!/usr/bin/python3
"""More Hugging Face reference cases for attnflow's parity runner, built with make_refs.py's own functions.

Usage:  /usr/bin/python3 scripts/hf-ref/extra_refs.py OUTDIR [name ...]
        (HF_REF_DIR points at the hf-ref folder; default ../shared/hf-ref next to the repository)

Each case differs from make_refs.py's defaults in size, head count, layer count, activation, padding or tying, so
that the importers are not fitted to one shape. make_refs.py does the building, running, HF round-trip check and
writing; this file only adds configurations and input makers to its MODELS table (nothing there is modified on disk).
Outputs stay small (vocab 40-96, hidden 12-24) so they can be committed under test/fixtures/hf/.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.environ.get("HF_REF_DIR", os.path.join(HERE, "..", "..", "..", "shared", "hf-ref"))
if not os.path.exists(os.path.join(REF, "make_refs.py")):
    REF = "/work/shared/hf-ref"
sys.path.insert(0, REF)
import make_refs as mr  # noqa: E402  (sets up the vendored transformers on sys.path)
import torch  # noqa: E402
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, GPT2Config, GPT2LMHeadModel, ViTConfig, ViTForImageClassification  # noqa: E402,E501


def bert_cfg(**kw):
    base = dict(vocab_size=64, hidden_size=24, num_hidden_layers=3, num_attention_heads=3, intermediate_size=40,
                max_position_embeddings=32, type_vocab_size=2, initializer_range=mr.INIT, pad_token_id=0,
                attn_implementation="eager")
    base.update(kw)
    return BertConfig(**base)


def bert_inputs_len(b, t, pad_from):
    """Right padding: row i (i >= 1) keeps pad_from[i] real tokens."""
    def make(gen, cfg):
        input_ids = mr.ids(gen, b, t, cfg.vocab_size)
        mask = torch.ones(b, t, dtype=torch.long)
        for i, n in enumerate(pad_from):
            mask[i, n:] = 0
            input_ids[i, n:] = cfg.pad_token_id
        types = torch.zeros(b, t, dtype=torch.long)
        types[:, t // 2:] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": types}
    return make


def bert_left_padded(gen, cfg):
    """Left padding on BERT (not its habit, but HF's mask handles it): row 1 starts with 3 padded slots."""
    x = bert_inputs_len(2, 8, [8, 8])(gen, cfg)
    x["attention_mask"][1, :3] = 0
    x["input_ids"][1, :3] = cfg.pad_token_id
    return x


def causal_right_padded(gen, cfg):
    """Right padding on GPT-2: row 1 ends with 2 padded slots (generate() then continues after the pads, as HF does)."""
    input_ids = mr.ids(gen, 2, 6, cfg.vocab_size)
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    input_ids[1, 4:] = 0
    return {"input_ids": input_ids, "attention_mask": mask}


def gpt2_cfg(**kw):
    base = dict(vocab_size=80, n_positions=40, n_embd=24, n_layer=3, n_head=6, n_inner=None,
                initializer_range=mr.INIT, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    base.update(kw)
    return GPT2Config(**base)


def causal_inputs(b, t, left_pad):
    """Left padding: row i starts with left_pad[i] padded slots."""
    def make(gen, cfg):
        input_ids = mr.ids(gen, b, t, cfg.vocab_size)
        mask = torch.ones(b, t, dtype=torch.long)
        for i, n in enumerate(left_pad):
            mask[i, :n] = 0
            input_ids[i, :n] = 0
        return {"input_ids": input_ids, "attention_mask": mask}
    return make


def vit_cfg(**kw):
    base = dict(image_size=24, patch_size=6, num_channels=1, hidden_size=24, num_hidden_layers=2,
                num_attention_heads=2, intermediate_size=48, initializer_range=mr.INIT, num_labels=4,
                attn_implementation="eager")
    base.update(kw)
    return ViTConfig(**base)


def vit_inputs(b, c, size):
    return lambda gen, cfg: {"pixel_values": torch.randn(b, c, size, size, generator=gen)}


EXTRA = {
    # BERT: 3 heads of 8, 3 layers, masked LM (tied decoder), no padding / two padded rows, relu and gelu_new heads
    "bert-mlm-h3": (BertForMaskedLM, lambda: bert_cfg(), bert_inputs_len(3, 9, [9, 6, 2]), "encoder"),
    "bert-h6-nopad": (BertModel, lambda: bert_cfg(num_attention_heads=6, num_hidden_layers=1), bert_inputs_len(2, 7, [7, 7]), "encoder"),
    "bert-seqcls-relu": (BertForSequenceClassification,
                         lambda: mr._with(bert_cfg(hidden_act="relu", hidden_size=16, num_attention_heads=2, num_hidden_layers=2), num_labels=2),
                         bert_inputs_len(3, 6, [6, 4, 1]), "encoder"),
    # GPT-2: 6 heads of 4, 3 layers, deeper left padding, untied head with exact-GELU MLP, no padding at all
    "gpt2-h6-leftpad": (GPT2LMHeadModel, lambda: gpt2_cfg(), causal_inputs(3, 7, [0, 2, 5]), "causal"),
    "gpt2-untied-gelu": (GPT2LMHeadModel, lambda: gpt2_cfg(tie_word_embeddings=False, activation_function="gelu", n_head=2, n_layer=2, n_inner=32),
                         causal_inputs(2, 6, [0, 1]), "causal"),
    "gpt2-nopad": (GPT2LMHeadModel, lambda: gpt2_cfg(n_head=3, n_layer=2, vocab_size=48), causal_inputs(1, 5, [0]), "causal"),
    # padding on the side each model does not expect
    "bert-leftpad": (BertModel, lambda: bert_cfg(num_hidden_layers=1, hidden_size=16, num_attention_heads=4, vocab_size=40), bert_left_padded, "encoder"),
    "gpt2-rightpad": (GPT2LMHeadModel, lambda: gpt2_cfg(n_layer=1, n_embd=16, n_head=4, vocab_size=40, n_positions=16), causal_right_padded, "causal"),
    # ViT: one channel, 24x24 image, 6x6 patches, 2 heads, no q/k/v bias
    "vit-c1-noqkvbias": (ViTForImageClassification, lambda: vit_cfg(qkv_bias=False), vit_inputs(2, 1, 24), "encoder"),
    "vit-h3-gelunew": (ViTForImageClassification, lambda: vit_cfg(num_channels=3, image_size=16, patch_size=4, num_attention_heads=3, hidden_act="gelu_new", num_labels=3),
                    vit_inputs(1, 3, 16), "encoder"),
}


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    outdir = sys.argv[1]
    names = sys.argv[2:] or list(EXTRA)
    mr.MODELS.update(EXTRA)
    os.makedirs(outdir, exist_ok=True)
    for n in names:
        d, diff = mr.make_one(n, outdir)
        files = ", ".join(f"{f} ({os.path.getsize(os.path.join(d, f))} B)" for f in sorted(os.listdir(d)))
        print(f"{n}: {files}" + ("" if diff is None else f"; cache vs no-cache max |diff| {diff:.2e}"), flush=True)


if __name__ == "__main__":
    main()
