#!/usr/bin/env python3
"""PyTorch CPU peer for `npm run bench` (Debian's python3-torch, 1.13 here).

Speaks JSON lines on stdin/stdout (see bench/lib/child-peer.ts): each request names raw float32
files written by the harness; each reply carries the timed samples, and the output is written
to the `out` file. The timing policy mirrors bench/lib/measure.ts.

torch 1.13 has no F.scaled_dot_product_attention, so attention is the explicit composition
(matmul / softmax / matmul); MHA also tries nn.MultiheadAttention and reports the best.
"""
import ctypes
import json
import math
import os
import platform
import re
import sys
import time

os.environ.pop("OPENBLAS_CORETYPE", None)  # a forced Haswell core type halves OpenBLAS speed

try:
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(int(os.environ.get("ATTNFLOW_BENCH_TORCH_THREADS", "2")))  # intra-op threads
    TORCH_ERROR = None
except Exception as e:  # reported in every reply; the harness shows it as the row's note
    TORCH_ERROR = "%s: %s" % (type(e).__name__, e)


def _openblas_setter():
    """openblas_set_num_threads from the BLAS torch already loaded (Debian: libblas.so.3 → OpenBLAS), or None when
    that BLAS is not OpenBLAS (RTLD_NOLOAD: never load a second BLAS that torch does not call)."""
    lib = _torch_blas()
    return lib.openblas_set_num_threads if lib is not None and hasattr(lib, "openblas_set_num_threads") else None


def _torch_blas():
    try:
        return ctypes.CDLL("libblas.so.3", mode=os.RTLD_NOLOAD)
    except OSError:
        return None


SET_BLAS_THREADS = _openblas_setter() if TORCH_ERROR is None else None
THREADS = int(os.environ.get("ATTNFLOW_BENCH_TORCH_THREADS", "2"))


def blas_variants(variants):
    """Each variant with OpenBLAS on THREADS threads and on 1 thread: OpenBLAS's own pool competes
    with torch's intra-op threads and with other work on a 2-core machine, so either can win."""
    if SET_BLAS_THREADS is None or THREADS == 1:
        return variants
    out = []
    for name, fn in variants:
        for n in (THREADS, 1):
            def run(fn=fn, n=n):
                SET_BLAS_THREADS(n)
                return fn()
            out.append(("%s, BLAS %dt" % (name, n), run))
    return out


def load(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype="<f4").reshape(shape))


def save(path, tensors):
    with open(path, "wb") as f:
        for t in tensors:
            f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())


def settle(max_ms):
    """Same as measure.ts settle(): wait until the machine was idle (< 0.15 core busy) for a 100 ms window."""
    def jiffies():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:9]]
            return sum(v) - v[3] - v[4], sum(v)
        except (OSError, ValueError, IndexError):
            return None
    t0, a = time.perf_counter(), jiffies()
    while a is not None and (time.perf_counter() - t0) * 1e3 < max_ms:
        time.sleep(0.1)
        b = jiffies()
        if b is None:
            return
        dt = b[1] - a[1]
        if dt > 0 and (b[0] - a[0]) / dt * (os.cpu_count() or 1) < 0.15:
            return
        a = b


def measure(fn, p):
    """Same policy as measure.ts: settle, warm up, size the repeat count from the warm-up, cap by budget."""
    if p.get("settleMs"):
        settle(p["settleMs"])
    t0 = time.perf_counter()
    last = fn()
    first = (time.perf_counter() - t0) * 1e3
    if first >= p["slowMs"]:
        return [first], last, "slow: 1 run"
    i, spent, warm_ms = 1, first, p.get("warmMs", 100)
    while (i < p["warmup"] and first * (i + 1) < p["budgetMs"]) or (spent < warm_ms and i < 1000):
        t0 = time.perf_counter()
        last = fn()
        first = (time.perf_counter() - t0) * 1e3
        spent += first
        i += 1
    n = max(1, min(p["repeats"], int(p["budgetMs"] // max(first, 1e-3))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        last = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times, last, ("%d run%s (time budget)" % (n, "s" if n > 1 else "") if n < p["repeats"] else None)


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def attention(q, k, v, causal):
    """softmax(q kᵀ / √d [masked]) v on (B, H, T, d)."""
    T, d = q.shape[-2], q.shape[-1]
    s = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(d))  # (B, H, T, T)
    if causal:
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


def mha_composed(x, w_in, b_in, w_out, b_out, H):
    B, T, D = x.shape
    d = D // H
    q, k, v = F.linear(x, w_in, b_in).split(D, dim=-1)  # 3 × (B, T, D)
    heads = lambda t: t.reshape(B, T, H, d).transpose(1, 2)  # (B, H, T, d)
    o = attention(heads(q), heads(k), heads(v), False).transpose(1, 2).reshape(B, T, D)
    return F.linear(o, w_out, b_out)


def mha_module(D, H, w):
    m = torch.nn.MultiheadAttention(D, H, batch_first=True)
    m.load_state_dict({"in_proj_weight": w[0], "in_proj_bias": w[1], "out_proj.weight": w[2], "out_proj.bias": w[3]})
    return m


def mha_weights(req, D):
    f = req["files"]
    return [load(f["in_proj_weight"], (3 * D, D)), load(f["in_proj_bias"], (3 * D,)),
            load(f["out_proj_weight"], (D, D)), load(f["out_proj_bias"], (D,))]


def best_of(variants, policy):
    """Time each (name, fn) variant; return samples/output of the fastest plus a summary note."""
    best, parts = None, []
    for name, fn in blas_variants(variants):
        times, out, note = measure(fn, policy)
        med = median(times)
        parts.append("%s %.2f ms" % (name, med))
        if best is None or med < best[0]:
            best = (med, times, out, name, note)
    if SET_BLAS_THREADS is not None:
        SET_BLAS_THREADS(THREADS)
    note = "best: %s (%s)" % (best[3], "; ".join(parts))
    if best[4]:
        note += "; " + best[4]
    return best[1], best[2], note


def attention_prealloc(q, k, v, causal):
    """The same composition into buffers allocated once: no fresh (B, H, T, T) pages per call
    (first touch of fresh memory costs ~4 ms/MB on these machines)."""
    T, d = q.shape[-2], q.shape[-1]
    s_buf = torch.empty(q.shape[:-1] + (T,))
    p_buf = torch.empty_like(s_buf)
    o_buf = torch.empty_like(q)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None

    def run():
        torch.matmul(q, k.transpose(-2, -1), out=s_buf).mul_(1.0 / math.sqrt(d))
        if mask is not None:
            s_buf.masked_fill_(mask, float("-inf"))
        torch.ops.aten._softmax.out(s_buf, -1, False, out=p_buf)
        return torch.matmul(p_buf, v, out=o_buf)
    return run


def run_case(req):
    op, s, policy = req["op"], req["shape"], req["policy"]
    if op == "sdpa":
        dims = (s["B"], s["H"], s["T"], s["d"])
        q, k, v = (load(req["files"][n], dims) for n in ("q", "k", "v"))
        causal = req.get("causal", False)
        with torch.inference_mode():
            times, out, note = best_of([
                ("composed", lambda: attention(q, k, v, causal)),
                ("composed, preallocated", attention_prealloc(q, k, v, causal)),
            ], policy)
        return times, [out.clone()], note
    B, T, D, H = s["B"], s["T"], s["D"], s["H"]
    x = load(req["files"]["x"], (B, T, D))
    w = mha_weights(req, D)
    m = mha_module(D, H, w)
    if op == "mha":
        m.eval()
        with torch.inference_mode():
            times, out, note = best_of([
                ("composed", lambda: mha_composed(x, *w, H)),
                ("nn.MultiheadAttention", lambda: m(x, x, x, need_weights=False)[0]),
            ], policy)
        return times, [out], note
    # train: loss = sum(out · g); all four parameters get gradients; report d/d in_proj_weight
    g = load(req["files"]["g"], (B, T, D))
    leaves = [t.clone().requires_grad_(True) for t in w]
    m.train()

    def step_composed():
        for t in leaves:
            t.grad = None
        (mha_composed(x, *leaves, H) * g).sum().backward()
        return leaves[0].grad

    def step_module():
        m.zero_grad(set_to_none=True)
        (m(x, x, x, need_weights=False)[0] * g).sum().backward()
        return m.in_proj_weight.grad

    times, out, note = best_of([("composed", step_composed), ("nn.MultiheadAttention", step_module)], policy)
    return times, [out], note


def status_kb(field):
    with open("/proc/self/status") as f:
        m = re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M)
    return int(m.group(1)) if m else 0


def run_memory(req):
    """Causal attention forward+backward once; peak RSS above the post-setup baseline."""
    s = req["shape"]
    dims = (s["B"], s["H"], s["T"], s["d"])
    q, k, v, g = (load(req["files"][n], dims) for n in ("q", "k", "v", "g"))
    for t in (q, k, v):
        t.requires_grad_(True)
    small = [torch.randn(1, 2, 16, 8, requires_grad=True) for _ in range(3)]
    (attention(*small, True).sum()).backward()  # load kernels before the baseline
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM (peak RSS) to the current RSS
        reset = True
    except OSError:
        reset = False
    base = status_kb("VmRSS")
    t0 = time.perf_counter()
    o = attention(q, k, v, True)
    (o * g).sum().backward()
    ms = (time.perf_counter() - t0) * 1e3
    peak = status_kb("VmHWM")
    if req.get("out"):
        save(req["out"], [o])
    note = None if reset else "peak RSS could not be reset; includes setup"
    return {"timesMs": [ms], "peakMB": max(0, peak - base) / 1024, "baselineMB": base / 1024, "note": note}


def loaded_blas():
    """The BLAS shared library really mapped into this process (Debian: libblas.so.3 is whatever the
    alternatives or LD_LIBRARY_PATH select: OpenBLAS, BLIS or the netlib reference)."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({l.split()[-1] for l in f if re.search(r"/lib(open)?blas|/libblis|/libmkl", l)})
        return [os.path.realpath(p) for p in libs]
    except OSError:
        return []


def blas_core():
    """OpenBLAS's own report: the core type its kernels were picked for and its build config."""
    lib = _torch_blas()
    if lib is None or not hasattr(lib, "openblas_get_corename"):
        return None, None
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_config.restype = ctypes.c_char_p
    return "%s (%s)" % (lib.openblas_get_corename().decode(), lib.openblas_get_config().decode().strip()), lib.openblas_get_num_threads()


def version_info():
    cfg = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", cfg)
    cap = re.search(r"CPU capability usage: (\w+)", cfg)
    omp = re.search(r"omp_get_max_threads\(\) : (\d+)", torch.__config__.parallel_info())
    libs = loaded_blas()
    core, blas_threads = blas_core()
    return {"torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "blas": blas.group(1) if blas else None,
            "blasLibrary": ", ".join(libs) or None, "blasCore": core or ("reference BLAS (netlib): unblocked, 1 thread"
                                                                       if any("/blas/libblas" in l for l in libs) else None),
            "blasThreads": blas_threads, "ompThreads": int(omp.group(1)) if omp else None,
            "cpuCapability": cap.group(1) if cap else None}


def handle(req):
    if TORCH_ERROR:
        return {"ok": False, "error": TORCH_ERROR}
    op = req["op"]
    if op == "version":
        return dict(ok=True, **version_info())
    if op == "memory":
        return dict(ok=True, **run_memory(req))
    times, outs, note = run_case(req)
    if req.get("out"):
        save(req["out"], outs)
    return {"ok": True, "timesMs": times, "note": note}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = handle(req)
        except Exception as e:
            reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        reply["id"] = req.get("id")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
