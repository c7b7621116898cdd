// Parity runner for attention rollout / flow reference cases (Abnar & Zuidema 2020 construction).
import { Tensor } from "../tensor.js";
import { caseRunners } from "./cases.js";
import { compare, TOL, type Check } from "./compare.js";
import { fuseHeads, prepareLayers, type AttentionStack } from "../explain/attention-stack.js";
import { attentionRollout } from "../explain/rollout.js";
import { attentionFlowMatrix, flowAdjacency, flowPerLayer } from "../explain/flow.js";

caseRunners.attention_flow = async (c) => {
  const att = c.tensors.get("input.attentions");
  if (!att || att.ndim !== 4) throw new Error("attention_flow: needs input.attentions (L, H, T, T)");
  const [L, H, T] = att.shape;
  // rollout and flow are CPU graph algorithms over the maps; on a device the maps come from there, read back
  // asynchronously (as explanations of a model running on the device read them)
  const data = c.device && c.device !== "cpu" ? await att.to(c.device).data() : att.dataSync();
  const stack: AttentionStack = { data: data as Float32Array, layers: L, heads: H, tokens: T };
  const noRes = { residual: false };
  const produce: Record<string, () => { data: Float64Array; shape: number[] }> = {
    head_averaged: () => fuseHeads(stack, "mean"),
    residual_normalised: () => prepareLayers(stack),
    rollout: () => attentionRollout(stack),
    rollout_no_residual: () => attentionRollout(stack, noRes),
    adjacency: () => flowAdjacency(stack),
    flow: () => attentionFlowMatrix(stack),
    flow_per_layer: () => flowPerLayer(stack),
    flow_no_residual: () => attentionFlowMatrix(stack, noRes),
    flow_no_residual_per_layer: () => flowPerLayer(stack, noRes),
  };
  const checks: Check[] = [];
  for (const [k, expected] of c.tensors) {
    if (!k.startsWith("output.")) continue;
    const name = k.slice(7), f = produce[name];
    if (!f) { checks.push({ name: k, ok: false, maxErr: Infinity, detail: "unknown attention_flow output" }); continue; }
    const r = f();
    const tol = name.startsWith("flow") ? TOL.flow : TOL.forward;
    checks.push(compare(k, Tensor.fromArray(Float32Array.from(r.data), r.shape), r.shape, expected, tol.atol, tol.rtol));
  }
  return checks;
};
