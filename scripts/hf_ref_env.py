"""The set-up every script that runs Hugging Face's own code shares (hf-grad-refs.py, hf-prune-refs.py, hf-check-pruned.py,
hf-mistral-refs.py): the vendored, unmodified transformers 4.44.2 of the hf-ref folder first on sys.path, offline, one
torch thread (deterministic sums), the version checked.

    sys.dont_write_bytecode = True        # before this import: no __pycache__ in scripts/
    from hf_ref_env import setup
    torch, transformers = setup(HF_REF)   # HF_REF: the hf-ref folder (see its README)
"""
import os
import sys

VERSION = "4.44.2"


def setup(hf_ref):
    sys.dont_write_bytecode = True
    sys.path[0:0] = [os.path.join(hf_ref, "vendor"), os.path.join(hf_ref, "stubs")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HOME", "/tmp/hf-ref-home")
    import torch
    import transformers
    assert transformers.__version__ == VERSION, f"hf-ref must hold transformers {VERSION}, found {transformers.__version__}"
    torch.set_num_threads(1)
    return torch, transformers
