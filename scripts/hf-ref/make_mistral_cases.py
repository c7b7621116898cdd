#!/usr/bin/python3
"""Mistral (MistralForCausalLM, sliding-window attention) reference cases for test/fixtures/hf/, from HF's own code.

Usage:  /usr/bin/python3 scripts/hf-ref/make_mistral_cases.py OUTDIR [case ...]

hf-ref keeps transformers 4.44.2 whole only for auto/bert/gpt2/vit/llama/marian/bart/t5 (its README): Mistral's
modeling file is trimmed out. In 4.44.2 MistralForCausalLM is LlamaForCausalLM without biases (attention_bias and
mlp_bias False: the same RMSNorm, default RoPE, GQA, SiLU MLP, final norm, HF state-dict names) plus a sliding window
in the causal mask. So each case runs HF's own, unmodified LlamaForCausalLM (eager) on a Mistral config's weights and
hands it, as a 4D mask (which Llama's _prepare_4d_causal_attention_mask_with_cache_position passes through
unchanged), the mask MistralModel._update_causal_mask of 4.44.2 builds for eager attention with a DynamicCache:

    causal_mask = full((q_len, target_length), min_dtype)
    exclude_mask = arange(target_length) > cache_position.reshape(-1, 1)
    exclude_mask |= arange(target_length) <= (cache_position.reshape(-1, 1) - sliding_window)
    causal_mask *= exclude_mask; then padding (2D mask 0) -> min_dtype

i.e. query at cache position i sees keys i - W < j <= i. Greedy generation is generate()'s loop written out (the
same inputs generate() would prepare: DynamicCache, cache_position, position_ids = cumsum(mask) - 1 with 1 on
padding, argmax of the last logits), every step with that mask. The folder's config.json is the MistralConfig
4.44.2 writes (model_type "mistral", sliding_window); model.safetensors is HF's save_pretrained (Llama's and
Mistral's names are identical). Output format: make_refs.py's (in.*, out.*, gen.*), T larger than the window.
HF_REF_DIR overrides where make_refs.py lives (default: ../shared/hf-ref from the repo root).
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REF = os.environ.get("HF_REF_DIR", os.path.join(ROOT, "..", "shared", "hf-ref"))
sys.dont_write_bytecode = True
sys.path.insert(0, REF)

import make_refs as mr  # noqa: E402  (sets up the vendored transformers 4.44.2)
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.cache_utils import DynamicCache  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

CASES = {
    # name: (config overrides, batch, T, left pads per row)
    "mistral-sw4-gqa": (dict(num_attention_heads=4, num_key_value_heads=2, sliding_window=4, rope_theta=10000.0), 2, 10, [0, 3]),
    "mistral-sw3-mqa": (dict(num_attention_heads=4, num_key_value_heads=1, sliding_window=3, rope_theta=500.0, hidden_size=48,
                             tie_word_embeddings=True), 2, 9, [2, 0]),
}


def mistral_config(kw):
    c = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=128, rope_theta=10000.0, rms_norm_eps=1e-6, hidden_act="silu",
             tie_word_embeddings=False, initializer_range=mr.INIT, bos_token_id=1, eos_token_id=2, sliding_window=4,
             attention_dropout=0.0)
    c.update(kw)
    return c


def llama_of(c):
    kw = {k: v for k, v in c.items() if k not in ("sliding_window",)}
    return LlamaConfig(**kw, attention_bias=False, mlp_bias=False, attn_implementation="eager")


def mistral_json(c):
    """config.json as MistralConfig(**c).save_pretrained writes it in 4.44.2 (keys of its __init__, plus the common ones)."""
    return {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "attention_dropout": c["attention_dropout"],
            "bos_token_id": c["bos_token_id"], "eos_token_id": c["eos_token_id"], "head_dim": c["hidden_size"] // c["num_attention_heads"],
            "hidden_act": c["hidden_act"], "hidden_size": c["hidden_size"], "initializer_range": c["initializer_range"],
            "intermediate_size": c["intermediate_size"], "max_position_embeddings": c["max_position_embeddings"],
            "num_attention_heads": c["num_attention_heads"], "num_hidden_layers": c["num_hidden_layers"],
            "num_key_value_heads": c["num_key_value_heads"], "rms_norm_eps": c["rms_norm_eps"], "rope_theta": c["rope_theta"],
            "sliding_window": c["sliding_window"], "tie_word_embeddings": c["tie_word_embeddings"], "torch_dtype": "float32",
            "transformers_version": transformers.__version__, "use_cache": True, "vocab_size": c["vocab_size"]}


def mistral_mask(mask2d, q_len, cache_position, window):
    """MistralModel._update_causal_mask (4.44.2, eager, DynamicCache) for a 2D padding mask: (B, 1, q_len, target)."""
    dtype = torch.float32
    min_dtype = torch.finfo(dtype).min
    B, target_length = mask2d.shape
    causal_mask = torch.full((q_len, target_length), fill_value=min_dtype, dtype=dtype)
    exclude_mask = torch.arange(target_length) > cache_position.reshape(-1, 1)
    exclude_mask.bitwise_or_(torch.arange(target_length) <= (cache_position.reshape(-1, 1) - window))
    causal_mask *= exclude_mask
    causal_mask = causal_mask[None, None, :, :].expand(B, 1, -1, -1).clone()
    padding_mask = causal_mask[:, :, :, :target_length] + mask2d[:, None, None, :]
    causal_mask[:, :, :, :target_length] = causal_mask[:, :, :, :target_length].masked_fill(padding_mask == 0, min_dtype)
    return causal_mask


def run(model, ids, mask2d, W, **kw):
    T = ids.shape[1]
    return model(input_ids=ids, attention_mask=mistral_mask(mask2d, T, torch.arange(T), W), return_dict=True, **kw)


def greedy(model, ids, mask2d, W):
    """generate(do_sample=False, use_cache=True, max_new_tokens=GEN_STEPS, eos_token_id=None) written out."""
    cache, seqs, mask, steps, past = DynamicCache(), ids, mask2d, [], 0
    for _ in range(mr.GEN_STEPS):
        new = seqs[:, past:]
        pos = mask.long().cumsum(-1) - 1
        pos.masked_fill_(mask == 0, 1)
        cp = torch.arange(past, seqs.shape[1])
        out = model(input_ids=new, attention_mask=mistral_mask(mask, new.shape[1], cp, W), position_ids=pos[:, -new.shape[1]:],
                    past_key_values=cache, use_cache=True, cache_position=cp, return_dict=True)
        cache, past = out.past_key_values, seqs.shape[1]
        logits = out.logits[:, -1, :]
        steps.append(logits)
        seqs = torch.cat([seqs, logits.argmax(-1, keepdim=True)], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return seqs, torch.stack(steps, dim=1), mask


def make_one(name, outdir):
    kw, B, T, pads = CASES[name]
    c = mistral_config(kw)
    W = c["sliding_window"]
    torch.manual_seed(mr.SEED)
    lc = llama_of(c)
    model = LlamaForCausalLM(lc).eval()
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(mistral_json(c), f, indent=2, sort_keys=True)
        f.write("\n")

    gen = torch.Generator().manual_seed(mr.SEED + 1)
    ids = mr.ids(gen, B, T, c["vocab_size"])
    mask = torch.ones(B, T, dtype=torch.long)
    for r, p in enumerate(pads):
        mask[r, :p] = 0
        ids[r, :p] = 0
    ref = {"in.input_ids": ids, "in.attention_mask": mask}
    with torch.no_grad():
        out = run(model, ids, mask, W, output_attentions=True, output_hidden_states=True)
        ref.update(mr.flatten_outputs(out))
        # the window matters: full causal attention gives other logits
        full = model(input_ids=ids, attention_mask=mask, return_dict=True).logits
        window_effect = (full - out.logits).abs().max().item()
        assert window_effect > 1e-3, f"{name}: the sliding window changes nothing ({window_effect})"
        for i, a in enumerate(out.attentions):   # no probability on a key outside the window (real query rows)
            q = torch.arange(T)[:, None]
            outside = torch.arange(T)[None, :] <= q - W
            assert a[0][:, outside].abs().max().item() == 0.0, f"layer {i}: weight outside the window"
        seqs, step_logits, full_mask = greedy(model, ids, mask, W)
        ref["gen.sequences"], ref["gen.step_logits"] = seqs, step_logits
        pos = (full_mask.cumsum(-1) - 1).clamp(min=0)
        nc = model(input_ids=seqs, attention_mask=mistral_mask(full_mask, seqs.shape[1], torch.arange(seqs.shape[1]), W),
                   position_ids=pos, use_cache=False, return_dict=True).logits
        ref["gen.nocache_logits"] = nc[:, -mr.GEN_STEPS - 1:-1]
        ref["gen.position_ids"] = pos
    diff = (ref["gen.nocache_logits"] - ref["gen.step_logits"]).abs().max().item()
    # the weights read back by HF's own loader reproduce the outputs exactly
    again = LlamaForCausalLM.from_pretrained(d, config=lc).eval()
    with torch.no_grad():
        assert torch.equal(run(again, ids, mask, W).logits, ref["out.logits"]), f"{name}: reloaded model differs"
    meta = {"model": name, "class": "MistralForCausalLM (run as transformers' LlamaForCausalLM + Mistral 4.44.2's sliding-window mask)",
            "transformers": transformers.__version__, "torch": torch.__version__, "seed": mr.SEED, "dtype": "float32",
            "attn_implementation": "eager", "sliding_window": W, "T": T, "left_pads": pads,
            "generation": {"mode": "greedy", "use_cache": True, "max_new_tokens": mr.GEN_STEPS, "eos_token_id": None,
                           "max_abs_diff_cache_vs_nocache": diff},
            "max_abs_logit_change_without_window": window_effect,
            "tensors": mr.describe({k: v.contiguous() for k, v in ref.items()})}
    save_file({k: v.detach().clone().contiguous() for k, v in ref.items()}, os.path.join(d, "reference.safetensors"),
              metadata={"format": "pt", "hf_ref": json.dumps(meta)})
    return d, diff, window_effect


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    outdir = sys.argv[1]
    for n in sys.argv[2:] or list(CASES):
        d, diff, eff = make_one(n, outdir)
        files = ", ".join(f"{f} ({os.path.getsize(os.path.join(d, f))} B)" for f in sorted(os.listdir(d)))
        print(f"{n}: {files}; cache vs no-cache max |diff| {diff:.2e}; logits move {eff:.3f} without the window", flush=True)


if __name__ == "__main__":
    main()
