"""Hugging Face's own from_pretrained on a folder attnflow pruned and saved (scripts/prune-report-hf.ts hf-check).

Usage:  /usr/bin/python3 scripts/hf-check-pruned.py FOLDER IO.safetensors [HF_REF_DIR]
  FOLDER:  a BertForSequenceClassification folder written by attnflow's savePretrained after pruning
  IO:      input_ids, attention_mask (int) and attnflow's logits for them (float32)
  HF_REF_DIR: default ../shared/hf-ref next to the repository's parent (unmodified transformers 4.44.2)
Loads FOLDER with from_pretrained (eager attention, eval mode: HF prunes config.pruned_heads before loading the
weights, so a shape that disagrees fails the load), runs the inputs and prints one JSON line: the pruned heads HF
read, the heads left per layer, and the largest |HF's logits - attnflow's|.
"""
import json
import os
import sys

sys.dont_write_bytecode = True
FOLDER, IO = sys.argv[1], sys.argv[2]
HF_REF = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "hf-ref")
from hf_ref_env import setup  # noqa: E402

torch, transformers = setup(HF_REF)
from safetensors.torch import load_file  # noqa: E402

io = load_file(IO)
model = transformers.BertForSequenceClassification.from_pretrained(FOLDER, attn_implementation="eager").eval()
with torch.no_grad():
    logits = model(input_ids=io["input_ids"].long(), attention_mask=io["attention_mask"].long()).logits
heads = [layer.attention.self.num_attention_heads for layer in model.bert.encoder.layer]
print(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                  "pruned_heads": {str(k): sorted(v) for k, v in sorted(model.config.pruned_heads.items())},
                  "heads_left": heads, "max_abs_diff": float((logits - io["logits"]).abs().max())}))
