# PyTorch peer of bench/int8.ts: the same MHA / encoder weights as nn.Linear modules, quantize_dynamic (qint8,
# per-channel weights: per_channel_dynamic_qconfig) on the best engine this torch has (fbgemm, else onednn), float
# attention in between; median ms over timed runs, one JSON line per case on stdout.
import json, sys, time
import numpy as np
import torch
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
D, H, FF, L, reps = cfg["D"], cfg["H"], cfg["FF"], cfg["layers"], cfg["reps"]
engines = torch.backends.quantized.supported_engines
engine = "fbgemm" if "fbgemm" in engines else "onednn" if "onednn" in engines else "qnnpack"
torch.backends.quantized.engine = engine
torch.set_num_threads(cfg.get("threads", 2))

class Attn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv, self.out = torch.nn.Linear(D, 3 * D), torch.nn.Linear(D, D)
    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        p = torch.softmax(q @ k.transpose(-1, -2) * (D // H) ** -0.5, -1)
        return self.out((p @ v).transpose(1, 2).reshape(B, T, D))

class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn, self.f1, self.f2 = Attn(), torch.nn.Linear(D, FF), torch.nn.Linear(FF, D)
        self.n1, self.n2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
    def forward(self, x):
        x = self.n1(x + self.attn(x))
        return self.n2(x + self.f2(F.gelu(self.f1(x))))

def take(buf, pos, n, shape):
    return torch.from_numpy(buf[pos:pos + n].copy()).reshape(shape), pos + n

def load_attn(a, buf, pos):
    for p, shape in ((a.qkv.weight, (3 * D, D)), (a.qkv.bias, (3 * D,)), (a.out.weight, (D, D)), (a.out.bias, (D,))):
        t, pos = take(buf, pos, int(np.prod(shape)), shape); p.data.copy_(t)
    return pos

def median_ms(fn, n):
    for _ in range(3): fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); ts.append((time.perf_counter() - t0) * 1000)
    return sorted(ts)[len(ts) // 2]

for c in cfg["cases"]:
    buf = np.fromfile(c["file"], dtype=np.float32)
    B, T = c["B"], c["T"]
    if c["kind"] == "mha":
        m = Attn(); pos = load_attn(m, buf, 0); n = reps
    else:
        m = torch.nn.Sequential(*[Layer() for _ in range(L)]); pos = 0
        for l in m:
            pos = load_attn(l.attn, buf, pos)
            for p, shape in ((l.f1.weight, (FF, D)), (l.f1.bias, (FF,)), (l.f2.weight, (D, FF)), (l.f2.bias, (D,)),
                             (l.n1.weight, (D,)), (l.n1.bias, (D,)), (l.n2.weight, (D,)), (l.n2.bias, (D,))):
                t, pos = take(buf, pos, int(np.prod(shape)), shape); p.data.copy_(t)
        n = max(5, reps // 4)
    x, pos = take(buf, pos, B * T * D, (B, T, D))
    yf, pos = take(buf, pos, B * T * D, (B, T, D))
    m.eval()
    q = torch.ao.quantization.quantize_dynamic(m, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8)
    with torch.inference_mode():
        y = q(x)
        diff = float((y - yf).abs().max())
        ms = median_ms(lambda: q(x), n)
    print(json.dumps({"case": c["name"], "impl": f"PyTorch {torch.__version__} int8 ({engine})", "ms": ms, "maxAbsDiffVsFloat": diff}), flush=True)
