#!/usr/bin/python3
"""Load a folder with Hugging Face's own from_pretrained and run one forward pass (used by attnflow's tests to check
that folders written by savePretrained load in HF and compute the same outputs).

Usage:  /usr/bin/python3 scripts/hf-ref/hf_forward.py MODEL_DIR INPUTS.safetensors OUT.safetensors [MODEL_DIR2 IN2 OUT2 ...]
(several triples in one run share the slow import of transformers). INPUTS holds in.* tensors (as reference.safetensors names them); OUT receives out.logits / out.last_hidden_state.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.environ.get("HF_REF_DIR", os.path.join(HERE, "..", "..", "..", "shared", "hf-ref"))
if not os.path.exists(os.path.join(REF, "make_refs.py")):
    REF = "/work/shared/hf-ref"
sys.path.insert(0, REF)
import make_refs  # noqa: E402,F401  (puts the vendored transformers 4.44.2 on sys.path, offline)
import json  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        raise SystemExit(__doc__)
    for i in range(0, len(args), 3):
        run(*args[i:i + 3])


def run(model_dir, inputs_path, out_path):
    arch = json.load(open(os.path.join(model_dir, "config.json")))["architectures"][0]
    model = getattr(transformers, arch).from_pretrained(model_dir, attn_implementation="eager").eval()
    inputs = {k[3:]: v for k, v in load_file(inputs_path).items() if k.startswith("in.")}
    with torch.no_grad():
        out = model(**inputs, return_dict=True)
    res = {f"out.{k}": v.contiguous() for k, v in out.items() if isinstance(v, torch.Tensor) and k in ("logits", "last_hidden_state")}
    save_file(res, out_path, metadata={"format": "pt"})


if __name__ == "__main__":
    main()
