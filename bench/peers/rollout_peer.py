#!/usr/bin/python3
"""Attention-rollout peers for bench/cases/rollout.ts: NumPy (the reference's own code path) and PyTorch.

usage: rollout_peer.py REQUEST.json   ->  one JSON object on stdout

Request: {"impl": "numpy" | "torch", "att": path to (L, H, T, T) float32 little-endian attention, "L", "H", "T",
          "kind": "matrix" | "row", "token": int (row kind), "repeats": int, "budget_s": float, "out": path}
The work timed is the whole rollout from raw attention, exactly as samiraabnar/attention_flow's
compute_joint_attention(att.mean(heads), add_residual=True) does it:
    A_l = (mean_h att[l, h] + I) / rowsum,   R_0 = A_0,   R_l = A_l @ R_{l-1}
"matrix" computes every R_l (L matrices, as the reference does); "row" computes only row `token` of R_{L-1}
(a vector pushed down the layers: r <- r @ A_l for l = L-1 .. 0). Computation in float64 like the reference.
The result (last layer's matrix, or the row) is written to `out` as float64 for the cross-check.

Reply: {"ok": true, "impl", "version", "times_s": [...], "cpu_s": [...]} or {"ok": false, "error": "..."}.
"""
import json
import sys
import time


def main():
    req = json.load(open(sys.argv[1]))
    impl, L, H, T = req["impl"], int(req["L"]), int(req["H"]), int(req["T"])
    kind, token = req["kind"], int(req.get("token", 0))
    repeats, budget = int(req["repeats"]), float(req["budget_s"])
    try:
        import numpy as np
    except ImportError as e:
        return {"ok": False, "error": "numpy missing: %s" % e}
    att = np.fromfile(req["att"], dtype="<f4").reshape(L, H, T, T)

    def products(a):
        """The rollout products on prepared layers a (L, T, T), NumPy array or torch tensor alike."""
        if kind == "row":  # row `token` of the last layer pushed down: r <- r @ a[l]
            r = a[L - 1, token]
            for l in range(L - 2, -1, -1):
                r = r @ a[l]
            return r
        joint = a[0]  # compute_joint_attention: R_l = A_l @ R_{l-1}
        for l in range(1, L):
            joint = a[l] @ joint
        return joint
    if impl == "numpy":
        version = np.__version__

        def run():
            a = att.mean(axis=1, dtype=np.float64) + np.eye(T)[None]
            a /= a.sum(axis=-1, keepdims=True)
            return products(a)
        to_np = lambda x: x
    elif impl == "torch":
        try:
            import torch
        except ImportError as e:
            return {"ok": False, "error": "torch missing (apt-get install python3-torch): %s" % e}
        version = torch.__version__
        t_att = torch.from_numpy(att)
        eye = torch.eye(T, dtype=torch.float64)

        def run():
            a = t_att.to(torch.float64).mean(dim=1) + eye
            a = a / a.sum(dim=-1, keepdim=True)
            return products(a)
        to_np = lambda x: x.numpy()
    else:
        return {"ok": False, "error": "unknown impl %r" % impl}
    out = run()  # warm-up (and the cross-check value)
    np.asarray(to_np(out), dtype="<f8").tofile(req["out"])
    times, cpus, spent = [], [], 0.0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        dt = time.perf_counter() - t0
        times.append(dt)
        cpus.append(time.process_time() - c0)
        spent += dt
        if spent >= budget:
            break
    return {"ok": True, "impl": impl, "version": version, "times_s": times, "cpu_s": cpus}


if __name__ == "__main__":
    try:
        out = main()
    except Exception as e:  # report, never hang the bench
        out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(out) + "\n")
