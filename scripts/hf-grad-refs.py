"""Gradient references for explaining imported Hugging Face models, computed with HF's OWN code.

Usage:  /usr/bin/python3 scripts/hf-grad-refs.py HF_REF_DIR OUTDIR
  HF_REF_DIR: the hf-ref folder (vendored, unmodified transformers 4.44.2; see its README)
  OUTDIR:     test/fixtures/hf-grad (one <case>.safetensors per fixture folder of test/fixtures/hf)

Per case: the fixture folder is loaded with from_pretrained (eager attention, eval mode); the explained score is the
logit attnflow's CLI explains by default (classifier / ViT: the predicted class; masked LM: the predicted token at
the [MASK] (id 4); causal LM: the predicted next token; encoder-decoder: greedy output token 1, decoder fed
[start, token 0]). Written (float32 unless noted):
  ids (int64), dec_ids (int64, seq2seq)       the inputs (ViT: pixels_u8 (S, S, C) int64 and pixel_values)
  target (int64, [index, position])           the explained logit
  score                                       its value
  embeds, embeds_grad                          HF's inputs_embeds (ViT: the patch embeddings) and d score / d them
  attn_grad.<l>                                d score / d attention probabilities of (encoder) self-attention layer l
  dec_attn_grad.<l>, cross_attn_grad.<l>       seq2seq: decoder self- and cross-attention
"""
import os
import sys

sys.dont_write_bytecode = True
HF_REF, OUT = sys.argv[1], sys.argv[2]
from hf_ref_env import setup  # noqa: E402  (scripts/hf_ref_env.py: vendored transformers first, offline, 1 thread)

torch, transformers = setup(HF_REF)
from safetensors.torch import save_file  # noqa: E402
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "hf")

CASES = {
    "bert-seqcls": [[2, 5, 6, 7, 8, 9, 3]],
    "bert-mlm-h3": [[2, 5, 6, 4, 8, 9, 3]],
    "gpt2": [[5, 6, 7, 8, 9]],
    "llama-gqa4-linear": [[5, 6, 7, 8, 9]],
    "vit": None,
    "marian-unshared-relu": [[5, 6, 7, 8, 2]],
    "bart-gelu-tied": [[0, 5, 6, 7, 8, 2]],
    "t5-relu-tied": [[5, 6, 7, 8, 1]],
}


def load(name):
    d = os.path.join(FIX, name)
    cfg = transformers.AutoConfig.from_pretrained(d)
    cls = getattr(transformers, cfg.architectures[0])
    return cls.from_pretrained(d, attn_implementation="eager").eval(), cfg


def retain(ts):
    for t in ts:
        t.retain_grad()


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, ids in CASES.items():
        torch.manual_seed(0)
        model, cfg = load(name)
        out = {}
        if name == "vit":
            S, C = cfg.image_size, cfg.num_channels
            g = torch.Generator().manual_seed(7)
            u8 = torch.randint(0, 256, (S, S, C), generator=g)   # an 8-bit picture: the CLI reads it from a PNG
            px = ((u8.float() / 255 - 0.5) / 0.5).permute(2, 0, 1).unsqueeze(0).contiguous()
            leaf = {}

            def hook(_m, _i, o):
                x = o.detach().requires_grad_(True)
                leaf["x"] = x
                return x
            h = model.vit.embeddings.patch_embeddings.register_forward_hook(hook)
            o = model(pixel_values=px, output_attentions=True)
            h.remove()
            c = int(o.logits[0].argmax())
            retain(o.attentions)
            o.logits[0, c].backward()
            out["pixel_values"], out["pixels_u8"] = px, u8
            out["target"] = torch.tensor([c, 0])
            out["score"] = o.logits[0, c].detach().reshape(1)
            x = leaf["x"]
            out["embeds"], out["embeds_grad"] = x.detach()[0], x.grad[0]
            for i, a in enumerate(o.attentions):
                out[f"attn_grad.{i}"] = a.grad[0]
        else:
            ids_t = torch.tensor(ids)
            emb_mod = model.get_input_embeddings()
            x = emb_mod(ids_t)
            if cfg.model_type == "marian":
                x = x * model.get_encoder().embed_scale   # MarianEncoder scales after its embed_tokens
            x = x.detach().requires_grad_(True)
            kw = dict(inputs_embeds=x, output_attentions=True)
            if cfg.is_encoder_decoder:
                start = cfg.decoder_start_token_id
                dec = [start]
                with torch.no_grad():
                    for _ in range(2):
                        lg = model(input_ids=ids_t, decoder_input_ids=torch.tensor([dec])).logits[0, -1]
                        dec.append(int(lg.argmax()))
                tok, dec = dec[-1], dec[:-1]
                o = model(**kw, decoder_input_ids=torch.tensor([dec]))
                pos = len(dec) - 1
                out["dec_ids"] = torch.tensor([dec])
                retain(o.encoder_attentions); retain(o.decoder_attentions); retain(o.cross_attentions)
            else:
                o = model(**kw)
                retain(o.attentions)
                if o.logits.dim() == 2:
                    pos = 0
                else:
                    pos = ids[0].index(4) if cfg.architectures[0] == "BertForMaskedLM" else len(ids[0]) - 1
            lg = o.logits[0] if o.logits.dim() == 2 else o.logits[0, pos]
            tok = int(lg.argmax())
            lg[tok].backward()
            out["ids"] = ids_t
            out["target"] = torch.tensor([tok, pos])
            out["score"] = lg[tok].detach().reshape(1)
            out["embeds"], out["embeds_grad"] = x.detach()[0], x.grad[0]
            if cfg.is_encoder_decoder:
                for i, a in enumerate(o.encoder_attentions):
                    out[f"attn_grad.{i}"] = a.grad[0]
                for i, a in enumerate(o.decoder_attentions):
                    out[f"dec_attn_grad.{i}"] = a.grad[0]
                for i, a in enumerate(o.cross_attentions):
                    out[f"cross_attn_grad.{i}"] = a.grad[0]
            else:
                for i, a in enumerate(o.attentions):
                    out[f"attn_grad.{i}"] = a.grad[0]
        for k, v in out.items():
            assert v is not None, (name, k)
        out = {k: v.detach().contiguous() for k, v in out.items()}
        save_file(out, os.path.join(OUT, f"{name}.safetensors"), metadata={"transformers": transformers.__version__, "torch": torch.__version__})
        print(name, "score", float(out["score"][0]), "target", out["target"].tolist())


main()
