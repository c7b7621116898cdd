#!/usr/bin/python3
"""Reference generations of tiny random Hugging Face models, computed by HF's OWN generate() (transformers 4.44.2).

Usage:  /usr/bin/python3 scripts/hf-gen-refs.py OUTDIR [name ...]     (names: gpt2 llama marian bart t5)

Runs with Debian's python3-torch and the unmodified transformers vendored in ../shared/hf-ref (or $HF_REF): the
model configs and the vendored import path come from its make_refs.py. For each model it writes OUTDIR/gen-<name>/:
  config.json, generation_config.json, model.safetensors   <- model.save_pretrained()
  reference.safetensors: in.input_ids, in.attention_mask, and per generation case C
    generate.C.sequences (int64) and, for beam search, generate.C.sequences_scores (float32);
  header __metadata__["generate"]: JSON {C: the generate() options in attnflow's camelCase}.
`npm run parity -- OUTDIR` then requires attnflow's generate() to return the same tokens (and scores within 1e-4).
Cases: beam search (num_beams, length_penalty, early_stopping True / False / "never", num_return_sequences, one or two
eos ids), greedy and beam search with repetition_penalty, no_repeat_ngram_size, min_new_tokens, bad_words_ids,
forced_bos_token_id / forced_eos_token_id. The eos id is chosen among the tokens the random model likes (so that
hypotheses do finish) and passed explicitly, as are all other options.
"""
import json
import os
import sys

sys.dont_write_bytecode = True
HF_REF = os.environ.get("HF_REF") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "hf-ref")
sys.path.insert(0, os.path.abspath(HF_REF))
import make_refs as mr  # noqa: E402  (puts the vendored transformers on sys.path, checks its version)
import torch  # noqa: E402
from transformers import BartConfig, BartForConditionalGeneration, GPT2LMHeadModel, LlamaForCausalLM, MarianMTModel, T5ForConditionalGeneration  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

SEED = 4321


def bart_config():
    return BartConfig(vocab_size=96, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                      decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                      init_std=mr.INIT, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
                      forced_eos_token_id=2, scale_embedding=False, attn_implementation="eager")


def llama_config():
    cfg = mr.llama_config()  # make_refs' Llama (GQA 4 heads / 2 KV heads), narrower to keep the fixture small
    cfg.hidden_size, cfg.intermediate_size = 32, 64
    return cfg


MODELS = {
    "gpt2": (GPT2LMHeadModel, mr.gpt2_config, False),
    "llama": (LlamaForCausalLM, llama_config, False),
    "marian": (MarianMTModel, mr.marian_config, True),
    "bart": (BartForConditionalGeneration, bart_config, True),
    "t5": (T5ForConditionalGeneration, mr.t5_config, True),
}


def inputs_for(cfg, enc_dec, gen):
    ids = torch.randint(3, cfg.vocab_size, (2, 6), generator=gen, dtype=torch.long)
    mask = torch.ones(2, 6, dtype=torch.long)
    if enc_dec:
        mask[1, 4:] = 0  # right padding, as tokenizers pad encoder inputs
        ids[1, 4:] = cfg.pad_token_id
    else:
        mask[1, :2] = 0  # left padding, as decoders are prompted
        ids[1, :2] = 0
    return {"input_ids": ids, "attention_mask": mask}


def liked_tokens(model, inputs, enc_dec, cfg):
    """Token ids ordered by mean next-token log-probability at the first decoding step (most liked first)."""
    with torch.no_grad():
        if enc_dec:
            start = cfg.decoder_start_token_id
            dec = torch.full((inputs["input_ids"].shape[0], 1), start, dtype=torch.long)
            logits = model(**inputs, decoder_input_ids=dec).logits[:, -1]
        else:
            logits = model(**inputs).logits[:, -1]
    return torch.log_softmax(logits, -1).mean(0).argsort(descending=True).tolist()


def cases(liked, enc_dec):
    eos, eos2 = liked[1], liked[3]  # often chosen, but not always the first choice
    common = {"eos_token_id": eos}
    out = {
        "beam3-ret2": dict(common, num_beams=3, num_return_sequences=2, max_new_tokens=7, length_penalty=1.0, early_stopping=False),
        "beam4-lp06-early": dict(common, num_beams=4, max_new_tokens=8, length_penalty=0.6, early_stopping=True),
        "beam4-lp2-never": dict(common, num_beams=4, num_return_sequences=3, max_new_tokens=8, length_penalty=2.0, early_stopping="never"),
        "beam3-two-eos": dict(num_beams=3, eos_token_id=[eos, eos2], max_new_tokens=7, length_penalty=-0.5),
        "greedy-processors": dict(common, num_beams=1, max_new_tokens=9, repetition_penalty=1.4, no_repeat_ngram_size=2,
                                  min_new_tokens=3, bad_words_ids=[[liked[0]], [liked[2], liked[4]]], forced_eos_token_id=eos2),
        "beam3-processors": dict(common, num_beams=3, num_return_sequences=2, max_new_tokens=8, repetition_penalty=1.25,
                                 no_repeat_ngram_size=2, min_new_tokens=4, bad_words_ids=[[liked[5]], [liked[0], liked[2]]]),
        "greedy-maxlength": dict(common, num_beams=1, max_length=12 if not enc_dec else 7, repetition_penalty=0.8),
    }
    if enc_dec:
        out["greedy-forced-bos"] = dict(common, num_beams=1, max_new_tokens=6, forced_bos_token_id=liked[6], forced_eos_token_id=eos)
        out["beam2-forced-bos"] = dict(common, num_beams=2, max_new_tokens=6, forced_bos_token_id=liked[6], min_length=4)
    return out


def camel(k):
    head, *rest = k.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def make_one(name, outdir):
    cls, cfg_fn, enc_dec = MODELS[name]
    torch.manual_seed(SEED)
    cfg = cfg_fn()
    model = cls(cfg).eval()
    d = os.path.join(outdir, f"gen-{name}")
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    model = cls.from_pretrained(d, attn_implementation="eager").eval()  # generation_config as the folder holds it
    inputs = inputs_for(cfg, enc_dec, torch.Generator().manual_seed(SEED + 1))
    liked = liked_tokens(model, inputs, enc_dec, cfg)
    ref = {f"in.{k}": v for k, v in inputs.items()}
    meta = {}
    for case, kw in cases(liked, enc_dec).items():
        with torch.no_grad():
            res = model.generate(**inputs, do_sample=False, output_scores=True, return_dict_in_generate=True, **kw)
        ref[f"generate.{case}.sequences"] = res.sequences
        if getattr(res, "sequences_scores", None) is not None:
            ref[f"generate.{case}.sequences_scores"] = res.sequences_scores.float()
        meta[case] = {camel(k): v for k, v in kw.items()}
        print(f"  {case}: {res.sequences.tolist()}", flush=True)
    header = {"format": "pt", "generate": json.dumps(meta), "hf_ref": json.dumps({
        "model": name, "class": cls.__name__, "transformers": mr.transformers.__version__, "torch": torch.__version__,
        "seed": SEED, "script": "scripts/hf-gen-refs.py"})}
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(d, "reference.safetensors"), metadata=header)
    return d


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    outdir = sys.argv[1]
    for n in sys.argv[2:] or list(MODELS):
        print(f"{n}:", flush=True)
        d = make_one(n, outdir)
        print(f"  -> {d} ({sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))} B)", flush=True)


if __name__ == "__main__":
    main()
