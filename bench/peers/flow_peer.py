#!/usr/bin/python3
"""Max-flow peers for bench/cases/flow.ts: SciPy's maximum_flow and networkx's Edmonds-Karp.

usage: flow_peer.py REQUEST.json   ->  one JSON object on stdout

Request: {"impl": "scipy" | "networkx", "caps": path to (L, T, T) float64 little-endian capacities,
          "L": int, "T": int, "pairs": [[source_node, sink_node], ...], "budget_s": float, "scale": int,
          "extra": optional [{"layer": l, "weights": [T floats]}, ...]: weighted sources, node (L+1)*T + k for entry k}
Node numbering is the reference one: node = layer * T + token, layer 0 = inputs; edge (l*T + a) -> ((l-1)*T + b)
has capacity caps[l-1][a, b]. The graph is built once (not timed); the flows are timed one after another until
the pairs run out or the time budget is spent.

SciPy's maximum_flow only accepts integer capacities (int32 CSR): capacities are multiplied by `scale` and rounded,
and the reported values are divided by `scale` again, so they match the float values to about T / scale.

Reply: {"ok": true, "impl", "version", "done": n, "seconds": total timed seconds for the n flows, "cpu_seconds": the same
        as process CPU time, "values": [...]}
or {"ok": false, "error": "..."} (missing module included).
"""
import json
import sys
import time


def main():
    req = json.load(open(sys.argv[1]))
    impl, L, T = req["impl"], int(req["L"]), int(req["T"])
    pairs, budget = req["pairs"], float(req["budget_s"])
    try:
        import numpy as np
    except ImportError as e:
        return {"ok": False, "error": "numpy missing: %s" % e}
    caps = np.fromfile(req["caps"], dtype="<f8").reshape(L, T, T)
    n = (L + 1) * T
    rows, cols, vals = [], [], []
    for l in range(1, L + 1):
        a, b = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
        rows.append((l * T + a).ravel())
        cols.append(((l - 1) * T + b).ravel())
        vals.append(caps[l - 1].ravel())
    # weighted sources: extra node n + k with an edge of capacity weights[i] into token i of `layer`
    extra = req.get("extra") or []
    for k, src in enumerate(extra):
        w = np.asarray(src["weights"], dtype=np.float64)
        rows.append(np.full(T, n + k))
        cols.append(int(src["layer"]) * T + np.arange(T))
        vals.append(w)
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    n += len(extra)
    keep = vals > 0
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    values = []
    if impl == "scipy":
        try:
            import scipy
            import scipy.sparse as sp
            from scipy.sparse.csgraph import maximum_flow
        except ImportError as e:
            return {"ok": False, "error": "scipy missing (apt-get install python3-scipy): %s" % e}
        scale = int(req["scale"])
        ivals = np.rint(vals * scale).astype(np.int32)
        g = sp.csr_matrix((ivals, (rows, cols)), shape=(n, n), dtype=np.int32)
        version = scipy.__version__
        run = lambda s, t: maximum_flow(g, int(s), int(t)).flow_value / scale
    elif impl == "networkx":
        try:
            import networkx as nx
            from networkx.algorithms.flow import edmonds_karp
        except ImportError as e:
            return {"ok": False, "error": "networkx missing (apt-get install python3-networkx): %s" % e}
        g = nx.DiGraph()
        g.add_nodes_from(range(n))
        g.add_weighted_edges_from(zip(rows.tolist(), cols.tolist(), vals.tolist()), weight="capacity")
        version = nx.__version__
        run = lambda s, t: nx.maximum_flow_value(g, int(s), int(t), flow_func=edmonds_karp)
    else:
        return {"ok": False, "error": "unknown impl %r" % impl}
    spent = 0.0
    cpu = 0.0
    for s, t in pairs:
        t0, c0 = time.perf_counter(), time.process_time()
        v = run(s, t)
        spent += time.perf_counter() - t0
        cpu += time.process_time() - c0
        values.append(float(v))
        if spent >= budget:
            break
    return {"ok": True, "impl": impl, "version": version, "done": len(values), "seconds": spent, "cpu_seconds": cpu, "values": values}


if __name__ == "__main__":
    try:
        out = main()
    except Exception as e:  # report, never hang the bench
        out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(out) + "\n")
