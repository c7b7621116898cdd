"""Head-pruning references computed with Hugging Face's OWN code (unmodified transformers 4.44.2 via hf-ref).

Usage:  /usr/bin/python3 scripts/hf-prune-refs.py HF_REF_DIR OUTDIR
  HF_REF_DIR: the hf-ref folder (vendored transformers 4.44.2 on Debian's python3-torch; see its README)
  OUTDIR:     test/fixtures/hf-prune

Starts from test/fixtures/hf/bert-seqcls (BertForSequenceClassification, 2 layers x 4 heads, hidden 32), loaded with
from_pretrained (eager attention, eval mode), and its reference inputs. Writes OUTDIR/reference.safetensors:
  in.input_ids, in.attention_mask, in.token_type_ids, in.labels (int64)   the inputs
  head_mask                     a (2, 4) head mask with 0, 1 and fractional entries
  out.masked_logits             logits with that head_mask
  head_mask_grad                d loss / d head_mask at head_mask = 1 (loss: mean cross-entropy of in.labels):
                                Michel et al.'s head importance before taking |.|
  out.pruned_logits, out.pruned_last_hidden_state, out.pruned_attentions.<l>
                                after model.prune_heads({0: [1], 1: [2]}) then model.prune_heads({0: [1, 3]})
                                (the second call repeats head 1: HF skips heads already pruned)
and OUTDIR/bert-seqcls-pruned/ written by save_pretrained (config.json has pruned_heads; the weights are the shrunk
ones). The folder is reloaded with from_pretrained and must reproduce out.pruned_logits bit for bit.
"""
import json
import os
import sys

sys.dont_write_bytecode = True
HF_REF, OUT = sys.argv[1], sys.argv[2]
from hf_ref_env import setup  # noqa: E402  (scripts/hf_ref_env.py: vendored transformers first, offline, 1 thread)

torch, transformers = setup(HF_REF)
from transformers import BertForSequenceClassification  # noqa: E402
from safetensors.torch import save_file, load_file  # noqa: E402
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "hf", "bert-seqcls")

ref = load_file(os.path.join(SRC, "reference.safetensors"))
inputs = {k[3:]: v for k, v in ref.items() if k.startswith("in.")}
labels = torch.tensor([0, 2], dtype=torch.long)


def load():
    m = BertForSequenceClassification.from_pretrained(SRC, attn_implementation="eager")
    m.eval()
    return m


out = {f"in.{k}": v.contiguous() for k, v in inputs.items()}
out["in.labels"] = labels

model = load()
head_mask = torch.tensor([[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 1.0, 0.25]])
with torch.no_grad():
    out["out.masked_logits"] = model(**inputs, head_mask=head_mask).logits.contiguous()
out["head_mask"] = head_mask

hm = torch.ones(2, 4, requires_grad=True)
loss = torch.nn.functional.cross_entropy(model(**inputs, head_mask=hm).logits, labels)
loss.backward()
out["head_mask_grad"] = hm.grad.detach().contiguous()

model.prune_heads({0: [1], 1: [2]})
model.prune_heads({0: [1, 3]})
assert model.config.pruned_heads == {0: [1, 3], 1: [2]} or {k: sorted(v) for k, v in model.config.pruned_heads.items()} == {0: [1, 3], 1: [2]}, model.config.pruned_heads
with torch.no_grad():
    r = model(**inputs, output_attentions=True, output_hidden_states=True)
out["out.pruned_logits"] = r.logits.contiguous()
out["out.pruned_last_hidden_state"] = r.hidden_states[-1].contiguous()
for i, a in enumerate(r.attentions):
    out[f"out.pruned_attentions.{i}"] = a.contiguous()

folder = os.path.join(OUT, "bert-seqcls-pruned")
os.makedirs(folder, exist_ok=True)
model.save_pretrained(folder, safe_serialization=True)
again = BertForSequenceClassification.from_pretrained(folder, attn_implementation="eager")
again.eval()
with torch.no_grad():
    r2 = again(**inputs)
assert torch.equal(r2.logits, r.logits), (r2.logits, r.logits)
meta = {"transformers": transformers.__version__, "torch": torch.__version__, "source": "test/fixtures/hf/bert-seqcls",
        "prune_calls": [{"0": [1], "1": [2]}, {"0": [1, 3]}], "pruned_heads": {str(k): sorted(v) for k, v in model.config.pruned_heads.items()}}
save_file(out, os.path.join(OUT, "reference.safetensors"), metadata={"hf_prune_ref": json.dumps(meta)})
print(json.dumps(meta))
print("reload check: ok; head_mask_grad", out["head_mask_grad"].tolist())
