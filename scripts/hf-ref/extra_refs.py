#!/usr/bin/python3
"""More Hugging Face reference cases for attnflow's parity runner, built with make_refs.py's own functions.

Usage:  /usr/bin/python3 scripts/hf-ref/extra_refs.py OUTDIR [name ...]
        (HF_REF_DIR points at the hf-ref folder; default ../shared/hf-ref next to the repository)

Each case differs from make_refs.py's defaults in size, head count, layer count, activation, padding or tying, so
that the importers are not fitted to one shape. The cases are data: a row names one of make_refs.py's models (its
config function and kind), the HF class, the config fields that differ (on top of a smaller size per architecture)
and the padding. make_refs.py does the building, running, HF round-trip check and writing; nothing there is
modified on disk. Outputs stay small (vocab 40-96, hidden 12-24) so they can be committed under test/fixtures/hf/.
make_llama_cases.py uses variant(), padded() and run() from here for its Llama rows.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.environ.get("HF_REF_DIR", os.path.join(HERE, "..", "..", "..", "shared", "hf-ref"))
if not os.path.exists(os.path.join(REF, "make_refs.py")):
    REF = "/work/shared/hf-ref"
sys.dont_write_bytecode = True
sys.path.insert(0, REF)
import make_refs as mr  # noqa: E402  (sets up the vendored transformers on sys.path)
import torch  # noqa: E402
from transformers import BertForMaskedLM, BertForSequenceClassification, BertModel, GPT2LMHeadModel, ViTForImageClassification  # noqa: E402,E501

# Per architecture: make_refs.py's model whose config function is the base, and the fields that make it smaller.
SMALL = {
    "bert": dict(vocab_size=64, hidden_size=24, num_hidden_layers=3, num_attention_heads=3, intermediate_size=40,
                 max_position_embeddings=32),
    "gpt2": dict(vocab_size=80, n_positions=40, n_embd=24, n_layer=3, n_head=6),
    "vit": dict(image_size=24, patch_size=6, num_channels=1, hidden_size=24, num_attention_heads=2,
                intermediate_size=48, num_labels=4),
    "llama": dict(vocab_size=64, hidden_size=32, intermediate_size=32),
}


def variant(base, **kw):
    """A config function: make_refs.py's config for model `base`, made smaller (SMALL[base]), then kw."""
    return lambda: mr._with(mr._with(mr.MODELS[base][1](), **SMALL[base]), **kw)


def padded(b, t, left=(), right=(), token_types=False):
    """Inputs of b rows of t random ids; row i has left[i] padded slots at its start and right[i] at its end
    (id = the config's pad_token_id, or 0 without one; attention_mask 0 there). token_types: BERT's
    token_type_ids, 1 from the middle on."""
    def make(gen, cfg):
        input_ids = mr.ids(gen, b, t, cfg.vocab_size)
        mask = torch.ones(b, t, dtype=torch.long)
        pad = getattr(cfg, "pad_token_id", None) or 0
        for i, n in enumerate(left):
            mask[i, :n] = 0
            input_ids[i, :n] = pad
        for i, n in enumerate(right):
            if n:
                mask[i, t - n:] = 0
                input_ids[i, t - n:] = pad
        x = {"input_ids": input_ids, "attention_mask": mask}
        if token_types:
            types = torch.zeros(b, t, dtype=torch.long)
            types[:, t // 2:] = 1
            x["token_type_ids"] = types
        return x
    return make


def images(b):
    """b random images of the config's channel count and size."""
    return lambda gen, cfg: {"pixel_values": torch.randn(b, cfg.num_channels, cfg.image_size, cfg.image_size, generator=gen)}


# name: (make_refs.py base model, HF class, config fields beyond SMALL[base], inputs)
EXTRA = {
    # BERT: 3 heads of 8, 3 layers, masked LM (tied decoder), no padding / two padded rows, relu head
    "bert-mlm-h3": ("bert", BertForMaskedLM, {}, padded(3, 9, right=[0, 3, 7], token_types=True)),
    "bert-h6-nopad": ("bert", BertModel, dict(num_attention_heads=6, num_hidden_layers=1), padded(2, 7, token_types=True)),
    "bert-seqcls-relu": ("bert", BertForSequenceClassification,
                         dict(hidden_act="relu", hidden_size=16, num_attention_heads=2, num_hidden_layers=2, num_labels=2),
                         padded(3, 6, right=[0, 2, 5], token_types=True)),
    # GPT-2: 6 heads of 4, 3 layers, deeper left padding, untied head with exact-GELU MLP, no padding at all
    "gpt2-h6-leftpad": ("gpt2", GPT2LMHeadModel, {}, padded(3, 7, left=[0, 2, 5])),
    "gpt2-untied-gelu": ("gpt2", GPT2LMHeadModel, dict(tie_word_embeddings=False, activation_function="gelu", n_head=2, n_layer=2, n_inner=32),
                         padded(2, 6, left=[0, 1])),
    "gpt2-nopad": ("gpt2", GPT2LMHeadModel, dict(n_head=3, n_layer=2, vocab_size=48), padded(1, 5)),
    # padding on the side each model does not expect (GPT-2 right padding: generate() continues after the pads, as HF does)
    "bert-leftpad": ("bert", BertModel, dict(num_hidden_layers=1, hidden_size=16, num_attention_heads=4, vocab_size=40),
                     padded(2, 8, left=[0, 3], token_types=True)),
    "gpt2-rightpad": ("gpt2", GPT2LMHeadModel, dict(n_layer=1, n_embd=16, n_head=4, vocab_size=40, n_positions=16),
                      padded(2, 6, right=[0, 2])),
    # ViT: one channel, 24x24 image, 6x6 patches, 2 heads, no q/k/v bias; 3 channels, 16x16, 4x4 patches, gelu_new
    "vit-c1-noqkvbias": ("vit", ViTForImageClassification, dict(qkv_bias=False), images(2)),
    "vit-h3-gelunew": ("vit", ViTForImageClassification,
                       dict(num_channels=3, image_size=16, patch_size=4, num_attention_heads=3, hidden_act="gelu_new", num_labels=3),
                       images(1)),
}


def run(table, doc):
    """Add table's rows to make_refs.MODELS, then write argv[2:] (default: every row) into OUTDIR = argv[1]."""
    if len(sys.argv) < 2:
        raise SystemExit(doc)
    outdir = sys.argv[1]
    names = sys.argv[2:] or list(table)
    for name, (base, cls, kw, inputs) in table.items():
        mr.MODELS[name] = (cls, variant(base, **kw), inputs, mr.MODELS[base][3])
    os.makedirs(outdir, exist_ok=True)
    for n in names:
        d, diff = mr.make_one(n, outdir)
        files = ", ".join(f"{f} ({os.path.getsize(os.path.join(d, f))} B)" for f in sorted(os.listdir(d)))
        print(f"{n}: {files}" + ("" if diff is None else f"; cache vs no-cache max |diff| {diff:.2e}"), flush=True)


if __name__ == "__main__":
    run(EXTRA, __doc__)
