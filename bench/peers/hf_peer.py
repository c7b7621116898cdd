#!/usr/bin/python3
"""Hugging Face peer for the hf-* bench cases (bench/cases/hf.ts), on unmodified transformers 4.44.2 (vendored in
../shared/hf-ref, see its README) and Debian's python3-torch.

  /usr/bin/python3 hf_peer.py REQUEST.json      one JSON reply on the last line of stdout; progress on stderr

Requests ({"op": ...}):
  make   {kind: "bert" | "llama" | "big", dir, seed, dtype?, layers?, onnx}: build the model from its config with HF's
         own classes and HF's _init_weights (seeded), save_pretrained(dir, safe_serialization=True), and (onnx: true)
         export the graph with torch.onnx.export as transformers.js users get it:
           bert  → dir/onnx/model.onnx: (input_ids, attention_mask, token_type_ids) → last_hidden_state
           llama → dir/onnx/decoder_with_past.onnx: (input_ids, attention_mask, position_ids,
                   past_key_values.{i}.key/value) → (logits, present.{i}.key/value), past length dynamic (0 for prefill)
  bert   {dir, ids, T, threads, policy, out}: time BertModel(input_ids, attention_mask=1) (eager, float32, no_grad);
         writes last_hidden_state (1, T, 768) to `out`
  llama  {dir, ids, T, N, threads, policy, out}: prefill T tokens with use_cache=True, then N greedy steps, each
         model(next_token, past_key_values=cache) — HF generate()'s inner loop without its logits processors;
         writes the logits of the prefill's last position and of each step (N + 1, vocab) to `out`
"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True
HF_REF = os.environ.get("ATTNFLOW_HF_REF", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "hf-ref"))
sys.path[0:0] = [os.path.join(HF_REF, "vendor"), os.path.join(HF_REF, "stubs")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HOME", "/tmp/hf-ref-home")
os.environ.pop("OPENBLAS_CORETYPE", None)


def log(msg):
    sys.stderr.write("[hf-peer] %s\n" % msg)
    sys.stderr.flush()


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


try:
    import numpy as np
    import torch
    import transformers
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM
    IMPORT_ERROR = None
except Exception as e:  # the case reports the peer as unavailable
    IMPORT_ERROR = "%s: %s" % (type(e).__name__, e)


def blas_info():
    """Which BLAS torch's matmuls run on: torch's own build line and the library libblas.so.3 resolves to."""
    cfg = torch.__config__.show()
    blas = [l.strip() for l in cfg.splitlines() if "BLAS" in l or "MKL" in l or "CPU capability" in l]
    lib = None
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({l.split()[-1] for l in f if ("blas" in l.lower() or "mkl" in l.lower()) and "/" in l})
        lib = [os.path.realpath(x) for x in libs]
    except OSError:
        pass
    return {"config": blas, "loaded": lib}


def bert_config(layers):
    # bert-base-uncased's shape; HF's default initializer_range 0.02
    return BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=layers, num_attention_heads=12,
                      intermediate_size=3072, max_position_embeddings=512, attn_implementation="eager")


def llama_config(layers):
    return LlamaConfig(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=layers,
                       num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=2048, rope_theta=10000.0,
                       rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                       attn_implementation="eager")


class LlamaWithPast(torch.nn.Module if IMPORT_ERROR is None else object):
    """Flat inputs/outputs for the ONNX export (optimum's names): past_key_values.{i}.key/value in, present.{i}.* out."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layers = model.config.num_hidden_layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        pkv = tuple((past[2 * i], past[2 * i + 1]) for i in range(self.layers))
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=pkv, use_cache=True, return_dict=True)
        present = out.past_key_values
        if hasattr(present, "to_legacy_cache"):
            present = present.to_legacy_cache()
        return (out.logits,) + tuple(t for kv in present for t in kv)


def export_bert(model, path):
    T = 8
    ids = torch.randint(0, model.config.vocab_size, (1, T))
    args = (ids, torch.ones(1, T, dtype=torch.long), torch.zeros(1, T, dtype=torch.long))

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    axes = {"batch_size": 0, "sequence_length": 1}
    torch.onnx.export(Wrap(model), args, path, input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"], opset_version=14, do_constant_folding=True,
                      dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                                    "attention_mask": {0: "batch_size", 1: "sequence_length"},
                                    "token_type_ids": {0: "batch_size", 1: "sequence_length"},
                                    "last_hidden_state": {0: "batch_size", 1: "sequence_length"}})
    del axes


def export_llama(model, path):
    cfg = model.config
    L, Hkv, Dh = cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    P, T = 3, 2
    past = []
    for _ in range(L):
        past += [torch.randn(1, Hkv, P, Dh), torch.randn(1, Hkv, P, Dh)]
    args = (torch.randint(0, cfg.vocab_size, (1, T)), torch.ones(1, P + T, dtype=torch.long),
            torch.arange(P, P + T).unsqueeze(0), *past)
    names_in = ["input_ids", "attention_mask", "position_ids"] + [
        "past_key_values.%d.%s" % (i, kv) for i in range(L) for kv in ("key", "value")]
    names_out = ["logits"] + ["present.%d.%s" % (i, kv) for i in range(L) for kv in ("key", "value")]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    for n in names_in[3:]:
        axes[n] = {0: "batch_size", 2: "past_sequence_length"}
    for n in names_out[1:]:
        axes[n] = {0: "batch_size", 2: "total_sequence_length"}
    torch.onnx.export(LlamaWithPast(model), args, path, input_names=names_in, output_names=names_out,
                      opset_version=14, do_constant_folding=True, dynamic_axes=axes)


def make(req):
    d, kind, seed = req["dir"], req["kind"], int(req.get("seed", 0))
    torch.manual_seed(seed)
    t0 = time.time()
    if kind == "bert":
        model = BertModel(bert_config(int(req.get("layers", 12))))
    elif kind == "llama":
        model = LlamaForCausalLM(llama_config(int(req.get("layers", 12))))
    elif kind == "big":
        # a >1 GB checkpoint: Llama-shaped, wide (hidden 2048, 8 layers: ~330M parameters, ~1.3 GB in float32)
        cfg = llama_config(int(req.get("layers", 8)))
        cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.num_key_value_heads = 2048, 5632, 16, 4
        model = LlamaForCausalLM(cfg)
    else:
        raise ValueError("unknown kind %r" % kind)
    model.eval()
    dtype = req.get("dtype", "float32")
    if dtype != "float32":
        model = model.to(getattr(torch, dtype))
    log("%s: built in %.1f s; saving to %s (%s)" % (kind, time.time() - t0, d, dtype))
    model.save_pretrained(d, safe_serialization=True)
    if req.get("onnx"):
        os.makedirs(os.path.join(d, "onnx"), exist_ok=True)
        t0 = time.time()
        if kind == "bert":
            export_bert(model, os.path.join(d, "onnx", "model.onnx"))
        else:
            export_llama(model, os.path.join(d, "onnx", "decoder_with_past.onnx"))
        log("%s: torch.onnx.export in %.1f s" % (kind, time.time() - t0))
    n = sum(p.numel() for p in model.parameters())
    return {"ok": True, "params": n, "transformers": transformers.__version__, "torch": torch.__version__}


def measure(fn, policy):
    """bench/lib/measure.ts's policy: warm-ups (at least `warmup`, until warmMs), then up to `repeats` samples
    within budgetMs; a first call slower than slowMs is the only sample."""
    t0 = time.perf_counter()
    last = fn()
    first = (time.perf_counter() - t0) * 1e3
    if first >= policy["slowMs"]:
        return [first], last, "slow: 1 run"
    spent, i = first, 1
    while (i < policy["warmup"] and first * (i + 1) < policy["budgetMs"]) or (spent < policy["warmMs"] and i < 1000):
        t0 = time.perf_counter()
        last = fn()
        first = (time.perf_counter() - t0) * 1e3
        spent += first
        i += 1
    n = max(1, min(policy["repeats"], int(policy["budgetMs"] / max(first, 1e-3))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        last = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times, last, ("%d run%s (time budget)" % (n, "s" if n > 1 else "") if n < policy["repeats"] else None)


def read_ids(path, T):
    a = np.fromfile(path, dtype="<i4")
    assert a.size == T, (a.size, T)
    return torch.from_numpy(a.astype(np.int64)).reshape(1, T)


def write_out(path, arr):
    np.ascontiguousarray(arr, dtype="<f4").tofile(path)


def run_bert(req):
    model = BertModel.from_pretrained(req["dir"], attn_implementation="eager").eval()
    T = int(req["T"])
    ids = read_ids(req["ids"], T)
    mask = torch.ones(1, T, dtype=torch.long)

    def step():
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy().copy()   # readback included

    times, last, note = measure(step, req["policy"])
    write_out(req["out"], last)
    return {"ok": True, "timesMs": times, "note": note}


def run_llama(req):
    model = LlamaForCausalLM.from_pretrained(req["dir"], attn_implementation="eager").eval()
    T, N = int(req["T"]), int(req["N"])
    ids = read_ids(req["ids"], T)

    def gen():
        # HF generate()'s loop body: model(next, past_key_values=cache, use_cache=True), argmax of the last logits
        with torch.no_grad():
            t0 = time.perf_counter()
            out = model(input_ids=ids, use_cache=True)
            logits = [out.logits[0, -1].numpy().copy()]
            cache, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            t1 = time.perf_counter()
            for _ in range(N):
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                logits.append(out.logits[0, -1].numpy().copy())
                cache, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            t2 = time.perf_counter()
        return {"prefillMs": (t1 - t0) * 1e3, "decodeMs": (t2 - t1) * 1e3, "logits": np.stack(logits)}

    pol = req["policy"]
    runs = [gen() for _ in range(max(1, int(pol.get("genRuns", 3))) + 1)][1:]   # the first run warms up
    write_out(req["out"], runs[-1]["logits"])
    return {"ok": True, "timesMs": [r["decodeMs"] / N for r in runs], "prefillMs": [r["prefillMs"] for r in runs]}


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    if IMPORT_ERROR is not None:
        return reply({"ok": False, "error": "PyTorch/transformers unavailable: " + IMPORT_ERROR})
    threads = int(req.get("threads", 2))
    torch.set_num_threads(threads)
    info = {"torchThreads": torch.get_num_threads(), "blas": blas_info(), "torch": torch.__version__,
            "transformers": transformers.__version__}
    try:
        op = req["op"]
        r = make(req) if op == "make" else run_bert(req) if op == "bert" else run_llama(req) if op == "llama" else None
        if r is None:
            raise ValueError("unknown op %r" % op)
        r.update(info)
        info["blas"] = blas_info()  # after the first matmul the BLAS library is mapped
        r["blas"] = info["blas"]
        reply(r)
    except Exception as e:
        import traceback
        traceback.print_exc(file=sys.stderr)
        reply({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
