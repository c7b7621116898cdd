// GPT-2 generate(): HF's greedy rules beyond the parity fixtures — left padding is invisible, no mask means all ones,
// and eos finishes a row (which then continues with pad = eos, as HF does when pad_token_id is unset).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fromPretrained } from "../src/hf/node-pretrained.js";
import { loadSafetensors } from "../src/io/state-dict.js";
import { Tensor } from "../src/tensor.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const dir = join(root, "test/fixtures/hf/gpt2-h6-leftpad");
const ref = loadSafetensors(new Uint8Array(readFileSync(join(dir, "reference.safetensors")))).tensors;
const ids = ref.get("in.input_ids")!, mask = ref.get("in.attention_mask")!, seqs = ref.get("gen.sequences")!;
const [B, T] = ids.shape, N = seqs.shape[1] - T;
const row = (t: Tensor, b: number) => Array.from(t.contiguous().dataSync().slice(b * t.shape[1], (b + 1) * t.shape[1]), Number);

test("a left-padded row generates what its unpadded prompt generates alone (same tokens, logits within 1e-4)", async () => {
  const { model } = await fromPretrained(dir);
  const full = model.generate!({ inputIds: ids, attentionMask: mask }, { maxNewTokens: N, returnStepLogits: true });
  for (let b = 0; b < B; b++) {
    const m = row(mask, b), pad = m.indexOf(1);
    const prompt = row(ids, b).slice(pad);
    const alone = model.generate!({ inputIds: Tensor.fromArray(Int32Array.from(prompt), [1, prompt.length], "int32") },
      { maxNewTokens: N, returnStepLogits: true });
    assert.deepEqual(row(alone.sequences, 0).slice(prompt.length), row(full.sequences, b).slice(T), `row ${b}`);
    for (let s = 0; s < N; s++) {
      const d = alone.stepLogits![s].select(0, 0).sub(full.stepLogits![s].select(0, b)).abs().max().item();
      assert.ok(d < 1e-4, `row ${b} step ${s}: logits differ by ${d}`);
    }
  }
});

test("eosTokenId finishes a row: it then repeats pad (= eos when pad_token_id is unset) while others go on", async () => {
  const { model } = await fromPretrained(dir);
  const eos = row(seqs, 0)[T];                                   // row 0's first greedy token
  const out = model.generate!({ inputIds: ids, attentionMask: mask }, { maxNewTokens: N, eosTokenId: eos });
  assert.deepEqual(row(out.sequences, 0).slice(T), new Array(out.sequences.shape[1] - T).fill(eos));
  for (let b = 1; b < B; b++) {
    const want = row(seqs, b).slice(T), got = row(out.sequences, b).slice(T);
    const stop = want.indexOf(eos);
    assert.deepEqual(got, stop < 0 ? want : [...want.slice(0, stop + 1), ...new Array(got.length - stop - 1).fill(eos)]);
  }
  const everyone = model.generate!({ inputIds: ids.narrow(0, 0, 1).contiguous() }, { maxNewTokens: N, eosTokenId: eos });
  assert.equal(everyone.sequences.shape[1], T + 1, "generation stops once every row has finished");
});

test("generate() refuses more tokens than n_positions allows, naming both numbers", async () => {
  const { model } = await fromPretrained(dir);
  assert.throws(() => model.generate!({ inputIds: ids }, { maxNewTokens: 40 }), /7 prompt \+ 40 new tokens exceed n_positions 40/);
});
