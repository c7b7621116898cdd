// Runs one PyTorch reference case (fixture format of ../shared/fixtures/README.md) through attnflow. Dispatch is by
// config.op and tensor names only — never by file name — so users can check their own PyTorch dumps.
import { Tensor } from "../tensor.js";
import * as F from "../functional.js";
import * as nn from "../nn/index.js";
import { SGD, Adam, AdamW } from "../optim/optimizers.js";
import { clipGradNorm, clipGradNormTensor } from "../optim/clip.js";
import { Parameter } from "../nn/module.js";
import { compare, TOL, type Check } from "./compare.js";
import type { DeviceName } from "../device.js";

/**
 * One case. `device` (default "cpu"): where the case runs — float and bool inputs and the module's parameters move
 * there (t.to / module.to), int32 inputs (token ids, class targets) stay host data like a model's inputs, expected
 * outputs stay on the CPU, and results are read back asynchronously before comparing.
 */
export interface FixtureCase { name: string; tensors: Map<string, Tensor>; config: Record<string, unknown>; device?: DeviceName }
export type CaseRunner = (c: FixtureCase) => Check[] | Promise<Check[]>;

/** Extra ops can be plugged in (e.g. the explainability module registers attention_flow). */
export const caseRunners: Record<string, CaseRunner> = {};

export async function runCase(c: FixtureCase): Promise<Check[]> {
  const op = String(c.config.op ?? "");
  const runner = caseRunners[op];
  if (!runner) throw new Error(`unknown op "${op}" in config (known: ${Object.keys(caseRunners).sort().join(", ")})`);
  return runner(c);
}

// ---------- helpers ----------
const devOf = (c: FixtureCase): DeviceName => c.device ?? "cpu";
/** An input placed where the case runs (int32 host data and expected outputs stay on the CPU). */
function place(c: FixtureCase, name: string, t: Tensor): Tensor {
  const d = devOf(c);
  return d === "cpu" || t.dtype === "int32" || name.startsWith("output.") ? t : t.to(d);
}
function get(c: FixtureCase, name: string): Tensor {
  const t = c.tensors.get(name);
  if (!t) throw new Error(`missing tensor "${name}"`);
  return place(c, name, t);
}
const opt = (c: FixtureCase, name: string) => { const t = c.tensors.get(name); return t ? place(c, name, t) : null; };
const leaf = (t: Tensor) => t.clone().detach().requiresGrad_(true);
/** A CPU copy of a result (device tensors are read back asynchronously). */
export const host = async (t: Tensor): Promise<Tensor> => (t.device === "cpu" ? t : t.cpu());

/** param.* as loaded from the file (CPU): modules load them, then move (module.to) where the case runs. */
function params(c: FixtureCase): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  for (const [k, v] of c.tensors) if (k.startsWith("param.")) m.set(k.slice(6), v);
  return m;
}

/** Compare every output.* produced, backprop grad_output from config.grad_from, compare every grad.* present. */
async function finish(c: FixtureCase, outputs: Record<string, Tensor | null>, gradSources: Record<string, Tensor | null>): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [k, expected] of c.tensors) {
    if (!k.startsWith("output.")) continue;
    const got = outputs[k.slice(7)];
    if (got === undefined) { checks.push({ name: k, ok: false, maxErr: Infinity, detail: "attnflow produced no such output" }); continue; }
    if (got) checks.push(compare(k, await host(got), got.shape, expected, TOL.forward.atol, TOL.forward.rtol));
  }
  const gradFrom = String(c.config.grad_from ?? "").split(" ")[0].replace(/^output\./, "");
  const go = opt(c, "input.grad_output");
  if (go && gradFrom) {
    const out = outputs[gradFrom];
    if (!out) throw new Error(`config.grad_from names "${gradFrom}" but it was not produced`);
    out.backward(go);
    for (const [k, expected] of c.tensors) {
      if (!k.startsWith("grad.")) continue;
      const src = gradSources[k.slice(5)];
      if (!src) { checks.push({ name: k, ok: false, maxErr: Infinity, detail: "no attnflow tensor for this gradient" }); continue; }
      if (!src.grad) { checks.push({ name: k, ok: false, maxErr: Infinity, detail: "no gradient reached this tensor" }); continue; }
      checks.push(compare(k, await host(src.grad), src.grad.shape, expected, TOL.grad.atol, TOL.grad.rtol));
    }
  }
  return checks;
}

/** Load param.* into a module by PyTorch name (strict) and map each to itself for gradient lookup. */
function loadParams(m: nn.Module, c: FixtureCase): Record<string, Tensor> {
  m.loadStateDict(params(c), { strict: true });
  if (devOf(c) !== "cpu") m.to(devOf(c));
  return Object.fromEntries(m.namedParameters());
}

// ---------- ops ----------
caseRunners.sdpa = (c) => {
  const q = leaf(get(c, "input.q")), k = leaf(get(c, "input.k")), v = leaf(get(c, "input.v"));
  const kpm = opt(c, "input.key_padding_mask"), am = opt(c, "input.attn_mask");
  const r = F.scaledDotProductAttention(q, k, v, {
    causal: !!c.config.is_causal, keyPaddingMask: kpm, attnMask: am,
    scale: typeof c.config.scale_value === "number" ? c.config.scale_value : undefined, returnWeights: true,
  });
  return finish(c, { out: r.out, weights: r.weights }, { q, k, v });
};

caseRunners.mha = (c) => {
  const cfg = c.config as Record<string, number & boolean>;
  const m = new nn.MultiheadAttention(cfg.embed_dim, cfg.num_heads, { kdim: cfg.kdim, vdim: cfg.vdim, batchFirst: cfg.batch_first ?? true, bias: cfg.bias ?? true, dropout: 0 });
  const ps = loadParams(m, c);
  const x = opt(c, "input.x");
  let inputs: Record<string, Tensor>, qkv: [Tensor, Tensor, Tensor];
  if (x) { const xl = leaf(x); inputs = { x: xl }; qkv = [xl, xl, xl]; }
  else if (c.tensors.has("input.kv")) { const q = leaf(get(c, "input.query")), kv = leaf(get(c, "input.kv")); inputs = { query: q, kv }; qkv = [q, kv, kv]; }
  else { const q = leaf(get(c, "input.query")), k = leaf(get(c, "input.key")), v = leaf(get(c, "input.value")); inputs = { query: q, key: k, value: v }; qkv = [q, k, v]; }
  const [out, w] = m.forward(...qkv, {
    keyPaddingMask: opt(c, "input.key_padding_mask"), attnMask: opt(c, "input.attn_mask"),
    needWeights: cfg.need_weights ?? true, averageAttnWeights: cfg.average_attn_weights ?? true,
  });
  return finish(c, { attn_output: out, attn_output_weights: w }, { ...inputs, ...ps });
};

function layerOptions(cfg: Record<string, unknown>): nn.TransformerLayerOptions {
  return {
    dimFeedforward: cfg.dim_feedforward as number, dropout: 0, activation: cfg.activation === "gelu" ? "gelu" : "relu",
    layerNormEps: (cfg.layer_norm_eps as number) ?? 1e-5, batchFirst: (cfg.batch_first as boolean) ?? true, normFirst: !!cfg.norm_first,
  };
}

caseRunners.encoder_layer = (c) => {
  const cfg = c.config;
  const m = new nn.TransformerEncoderLayer(cfg.d_model as number, cfg.nhead as number, layerOptions(cfg));
  const ps = loadParams(m, c);
  const src = leaf(get(c, "input.src"));
  const out = m.forward(src, { srcMask: opt(c, "input.src_mask"), srcKeyPaddingMask: opt(c, "input.src_key_padding_mask") });
  return finish(c, { output: out }, { src, ...ps });
};

caseRunners.encoder = (c) => {
  const cfg = c.config;
  const n = (cfg.num_layers as number) ?? countLayers(c);
  const d = cfg.d_model as number;
  const hasNorm = c.tensors.has("param.norm.weight");
  const m = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(d, cfg.nhead as number, layerOptions(cfg)), n,
    hasNorm ? new nn.LayerNorm(d, { eps: (cfg.layer_norm_eps as number) ?? 1e-5 }) : null);
  const ps = loadParams(m, c);
  const src = leaf(get(c, "input.src"));
  const out = m.forward(src, { mask: opt(c, "input.src_mask") ?? opt(c, "input.mask"), srcKeyPaddingMask: opt(c, "input.src_key_padding_mask") });
  return finish(c, { output: out }, { src, ...ps });
};

function countLayers(c: FixtureCase): number {
  let n = 0;
  for (const k of c.tensors.keys()) { const m = /^param\.layers\.(\d+)\./.exec(k); if (m) n = Math.max(n, Number(m[1]) + 1); }
  return n;
}

caseRunners.decoder_layer = (c) => {
  const cfg = c.config;
  const m = new nn.TransformerDecoderLayer(cfg.d_model as number, cfg.nhead as number, layerOptions(cfg));
  const ps = loadParams(m, c);
  const tgt = leaf(get(c, "input.tgt")), memory = leaf(get(c, "input.memory"));
  const out = m.forward(tgt, memory, {
    tgtMask: opt(c, "input.tgt_mask"), memoryMask: opt(c, "input.memory_mask"),
    tgtKeyPaddingMask: opt(c, "input.tgt_key_padding_mask"), memoryKeyPaddingMask: opt(c, "input.memory_key_padding_mask"),
  });
  return finish(c, { output: out }, { tgt, memory, ...ps });
};

caseRunners.seed_selfattention = (c) => {
  const m = new nn.SelfAttention(c.config.d_model as number);
  const ps = loadParams(m, c);
  const x = leaf(get(c, "input.x"));
  const [out, w] = m.forwardWithWeights(x);
  return finish(c, { output: out, weights: w }, { x, ...ps });
};

caseRunners.layer_norm = (c) => {
  const x = leaf(get(c, "input.x")), w = leaf(get(c, "param.weight")), b = leaf(get(c, "param.bias"));
  const y = F.layerNorm(x, c.config.normalized_shape as number[], w, b, (c.config.eps as number) ?? 1e-5);
  return finish(c, { y }, { x, weight: w, bias: b });
};

caseRunners.gelu = (c) => {
  const x = leaf(get(c, "input.x"));
  return finish(c, { y: F.gelu(x, c.config.approximate === "tanh" ? "tanh" : "none") }, { x });
};

caseRunners.softmax = (c) => { const x = leaf(get(c, "input.x")); return finish(c, { y: F.softmax(x, (c.config.dim as number) ?? -1) }, { x }); };
caseRunners.log_softmax = (c) => { const x = leaf(get(c, "input.x")); return finish(c, { y: F.logSoftmax(x, (c.config.dim as number) ?? -1) }, { x }); };

caseRunners.cross_entropy = (c) => {
  const logits = leaf(get(c, "input.logits"));
  const loss = F.crossEntropy(logits, get(c, "input.target"), {
    ignoreIndex: (c.config.ignore_index as number) ?? -100, labelSmoothing: (c.config.label_smoothing as number) ?? 0,
    reduction: (c.config.reduction as "mean" | "sum" | "none") ?? "mean",
  });
  return finish(c, { loss }, { logits });
};

caseRunners.embedding = (c) => {
  const w = leaf(get(c, "param.weight"));
  const pad = c.config.padding_idx as number | null | undefined;
  return finish(c, { y: F.embedding(get(c, "input.indices"), w, pad ?? null) }, { weight: w });
};

caseRunners.linear = (c) => {
  const x = leaf(get(c, "input.x")), w = leaf(get(c, "param.weight")), b = opt(c, "param.bias");
  const bl = b ? leaf(b) : null;
  return finish(c, { y: F.linear(x, w, bl) }, { x, weight: w, ...(bl ? { bias: bl } : {}) });
};

/** torch.nn.functional.conv2d (groups = 1); config: stride, padding, dilation (int or [h, w]). */
caseRunners.conv2d = (c) => {
  const x = leaf(get(c, "input.x")), w = leaf(get(c, "param.weight")), b = opt(c, "param.bias");
  const bl = b ? leaf(b) : null;
  const pair = (v: unknown) => (v === undefined || v === null ? undefined : (v as number | [number, number]));
  const y = F.conv2d(x, w, bl, { stride: pair(c.config.stride), padding: pair(c.config.padding), dilation: pair(c.config.dilation) });
  return finish(c, { y }, { x, weight: w, ...(bl ? { bias: bl } : {}) });
};

caseRunners.sinusoidal_positional_encoding = (c) => {
  const pe = get(c, "output.pe");
  return finish(c, { pe: nn.sinusoidalTable(pe.shape[0], (c.config.d_model as number) ?? pe.shape[1], (c.config.base as number) ?? 10000) }, {});
};

caseRunners.clip_grad_norm_ = async (c) => {
  const n = (c.config.num_params as number) ?? [...c.tensors.keys()].filter((k) => /^input\.p\d+\.grad$/.test(k)).length;
  const ps: Tensor[] = [];
  for (let i = 0; i < n; i++) {
    const g = get(c, `input.p${i}.grad`);
    const p = Parameter(g.device === "cpu" ? Tensor.empty(g.shape) : Tensor.empty(g.shape).to(g.device));
    p.grad = g.clone();
    ps.push(p);
  }
  const nt = c.config.norm_type === "inf" ? Infinity : Number(c.config.norm_type ?? 2);
  // on a device the total norm stays a device tensor (a number would need a synchronous read)
  const total = devOf(c) === "cpu" ? Tensor.fromArray([clipGradNorm(ps, Number(c.config.max_norm), nt)], [])
    : await host(clipGradNormTensor(ps, Number(c.config.max_norm), nt));
  const checks = [compare("output.total_norm", total, [], get(c, "output.total_norm"), TOL.forward.atol, TOL.forward.rtol)];
  for (let i = 0; i < ps.length; i++) {
    const g = ps[i].grad!;
    checks.push(compare(`output.p${i}.grad`, await host(g), g.shape, get(c, `output.p${i}.grad`), TOL.forward.atol, TOL.forward.rtol));
  }
  return checks;
};

caseRunners.optimizer = async (c) => {
  const cfg = c.config as { optimizer: string; hyperparameters: Record<string, unknown>; param_order: string[]; steps?: number };
  const names = cfg.param_order;
  const ps = names.map((n) => Parameter(get(c, `param.${n}`).clone()));
  const h = cfg.hyperparameters;
  const kind = cfg.optimizer.replace(/^torch\.optim\./, "");
  const betas = h.betas as [number, number] | undefined, lr = h.lr as number, wd = (h.weight_decay as number) ?? 0;
  const o = kind === "SGD" ? new SGD(ps, { lr, momentum: h.momentum as number, dampening: h.dampening as number, weightDecay: wd, nesterov: !!h.nesterov })
    : kind === "Adam" ? new Adam(ps, { lr, betas, eps: h.eps as number, weightDecay: wd, amsgrad: !!h.amsgrad })
    : kind === "AdamW" ? new AdamW(ps, { lr, betas, eps: h.eps as number, weightDecay: wd, amsgrad: !!h.amsgrad })
    : null;
  if (!o) throw new Error(`optimizer "${cfg.optimizer}" is not supported (SGD, Adam, AdamW)`);
  const checks: Check[] = [];
  for (let k = 1; k <= (cfg.steps ?? 3); k++) {
    names.forEach((n, i) => { ps[i].grad = get(c, `input.step${k}.grad.${n}`).clone(); });
    o.step();
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      checks.push(compare(`output.step${k}.${n}`, await host(ps[i]), ps[i].shape, get(c, `output.step${k}.${n}`), TOL.optimizer.atol, TOL.optimizer.rtol));
    }
  }
  return checks;
};
