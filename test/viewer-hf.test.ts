// The viewer's data for imported encoder–decoders (Marian, BART, T5 fixtures from transformers): captureAttention with
// withQK groups their modules into encoder self-, decoder self- (causal) and cross-attention stacks, and the recorded
// queries and keys give back HF's attention (softmax(scale·q·k), where no position bias enters; T5 says it adds one).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { noGrad } from "../src/autograd.js";
import { loadSafetensors } from "../src/io/state-dict.js";
import { captureAttention } from "../src/explain/capture.js";
import type { HFConfig, HFFamily } from "../src/hf/types.js";
import { marianFamily } from "../src/hf/marian.js";
import { bartFamily } from "../src/hf/bart.js";
import { t5Family } from "../src/hf/t5.js";
import { viewsFromRecords } from "../src/explain/views.js";
import type { ExplainTarget } from "../src/tasks/task.js";
import { qkSoftmaxError } from "./explain-helpers.js";

const DIR = fileURLToPath(new URL("../../test/fixtures/hf", import.meta.url));
const CASES: [string, HFFamily][] = [["marian-swish-tied", marianFamily], ["bart-gelu-tied", bartFamily], ["t5-relu-tied", t5Family]];

for (const [name, fam] of CASES) {
  test(`viewer data of HF ${name}: encoder, decoder and cross stacks with q/k that reproduce the attention`, () => {
    const config = JSON.parse(readFileSync(join(DIR, name, "config.json"), "utf8")) as HFConfig;
    const model = fam.fromConfig(config);
    model.loadStateDict(loadSafetensors(readFileSync(join(DIR, name, "model.safetensors"))).tensors, { strict: true });
    model.eval();
    const ref = loadSafetensors(readFileSync(join(DIR, name, "reference.safetensors"))).tensors;
    const inputIds = ref.get("in.input_ids")!, decoderInputIds = ref.get("in.decoder_input_ids")!;
    // the first sequence only, unpadded, so that every key is visible
    const mask = ref.get("in.attention_mask")!.toFloat32Array(), S = inputIds.shape[1];
    const keep = Array.from(mask.subarray(0, S)).filter((x) => x > 0).length;
    const src = inputIds.narrow(0, 0, 1).narrow(1, 0, keep).contiguous(), tgt = decoderInputIds.narrow(0, 0, 1).contiguous();
    const { records } = noGrad(() => captureAttention(model, () => model.forward({ inputIds: src, decoderInputIds: tgt }), { mode: "full", withQK: true }));
    const tokens = Array.from(src.toFloat32Array(), (x) => `id${x}`), dec = Array.from(tgt.toFloat32Array(), (x) => `d${x}`);
    const v = viewsFromRecords(records, { tokens, targetLabel: "", targetIndex: 0, score: () => { throw new Error("unused"); } } as ExplainTarget, { decoderTokens: dec });
    assert.deepEqual(v.groups.map((g) => g.title), ["encoder self-attention", "decoder self-attention (causal)", "cross-attention (decoder → encoder)"]);
    const [enc, dself, cross] = v.groups;
    assert.equal(enc.layers, config.encoder_layers ?? config.num_layers);
    assert.deepEqual(enc.rowTokens, tokens); assert.deepEqual(dself.rowTokens, dec); assert.deepEqual(cross.rowTokens, dec); assert.deepEqual(cross.colTokens, tokens);
    for (const g of v.groups) {
      assert.ok(g.qk, `${name} ${g.title}: ${g.qkNote}`);
      if (g.qk!.bias) { assert.equal(name.startsWith("t5") && g.kind === "self", true, `${g.title} adds ${g.qk!.bias}`); continue; }
      const worst = qkSoftmaxError(g);
      assert.ok(worst < 1e-4, `${name} ${g.title}: softmax(scale·q·k) vs recorded attention ${worst}`);
    }
    for (const r of records) { r.weights.dispose(); r.queries?.dispose(); r.keys?.dispose(); }
  });
}
