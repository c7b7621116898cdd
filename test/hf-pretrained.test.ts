// fromPretrained / savePretrained on real HF folders (test/fixtures/hf, written by transformers 4.44.2): dtypes,
// shards, streaming, tied weights, base-model prefixes, the errors, and HF's own loader reading what we write.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromPretrained, savePretrainedDir } from "../src/hf/node-pretrained.js";
import { loadPretrained, memoryReader, savePretrained, type HFFileReader } from "../src/hf/pretrained.js";
import { loadSafetensors, saveSafetensors } from "../src/io/state-dict.js";
import { parseSafetensors, serializeSafetensors } from "../src/io/safetensors.js";
import { noGrad } from "../src/autograd.js";
import { Tensor } from "../src/tensor.js";
import type { HFInputs, HFModel } from "../src/hf/types.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const fx = (name: string) => join(root, "test/fixtures/hf", name);
const files = (name: string): Map<string, Uint8Array> =>
  new Map(readdirSync(fx(name)).map((f) => [f, new Uint8Array(readFileSync(join(fx(name), f)))]));
const refOf = (name: string) => loadSafetensors(files(name).get("reference.safetensors")!).tensors;
const inputsOf = (ref: Map<string, Tensor>): HFInputs => ({
  inputIds: ref.get("in.input_ids"), attentionMask: ref.get("in.attention_mask"), tokenTypeIds: ref.get("in.token_type_ids"),
  pixelValues: ref.get("in.pixel_values"),
});
const maxDiff = (a: Tensor, b: Tensor) => { const x = a.dataSync(), y = b.dataSync(); let m = 0; for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i])); return m; };
const withConfig = (m: Map<string, Uint8Array>, patch: Record<string, unknown>) => {
  const out = new Map(m);
  out.set("config.json", new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(m.get("config.json")!)), ...patch })));
  return out;
};
/** model.safetensors rewritten through fn(name → tensor) (return null to drop a tensor). */
const rewriteWeights = (m: Map<string, Uint8Array>, fn: (name: string, t: Tensor) => Tensor | null, dtype?: "F16" | "BF16") => {
  const sd = new Map<string, Tensor>();
  for (const [k, v] of loadSafetensors(m.get("model.safetensors")!).tensors) { const t = fn(k, v); if (t) sd.set(k, t); }
  const out = new Map(m);
  out.set("model.safetensors", saveSafetensors(sd, { metadata: { format: "pt" }, floatDType: dtype }));
  return out;
};

test("fromPretrained opens a folder path and the same files as bytes, with identical weights", async () => {
  const a = await fromPretrained(fx("bert-seqcls")), b = await fromPretrained(files("bert-seqcls"));
  assert.equal(a.model.architecture, "BertForSequenceClassification");
  assert.equal(a.tokenizer, null);
  assert.equal(a.config.model_type, "bert");
  for (const [k, v] of Object.entries(a.model.stateDict())) assert.equal(maxDiff(v, b.model.stateDict()[k]), 0, k);
  const out = noGrad(() => a.model.forward(inputsOf(refOf("bert-seqcls"))));
  assert.ok(maxDiff(out.logits!, refOf("bert-seqcls").get("out.logits")!) < 1e-4);
  assert.equal(a.model.training, false, "a loaded model is in eval mode (dropout off), as HF's from_pretrained leaves it");
});

for (const dtype of ["F16", "BF16"] as const) {
  test(`a ${dtype} checkpoint is converted on load (each weight equals the ${dtype} rounding of the float32 one)`, async () => {
    const f32 = await fromPretrained(files("gpt2"));
    const half = await fromPretrained(rewriteWeights(files("gpt2"), (_, t) => t, dtype));
    const rounded = loadSafetensors(saveSafetensors(f32.model.stateDict(), { floatDType: dtype })).tensors;
    for (const [k, v] of Object.entries(half.model.stateDict())) assert.equal(maxDiff(v, rounded.get(k)!), 0, k);
    const ref = refOf("gpt2");
    const out = noGrad(() => half.model.forward(inputsOf(ref)));
    const d = maxDiff(out.logits!, ref.get("out.logits")!);
    assert.ok(d > 0 && d < (dtype === "F16" ? 0.05 : 0.5), `logits differ by ${d}`);
  });
}

test("weights at odd byte offsets (bytes handed over as a view into a larger buffer) decode the same", async () => {
  for (const dtype of [undefined, "F16", "BF16"] as const) {
    const m = rewriteWeights(files("vit"), (_, t) => t, dtype);
    const w = m.get("model.safetensors")!, shifted = new Uint8Array(w.length + 1);
    shifted.set(w, 1);
    const odd = new Map(m).set("model.safetensors", shifted.subarray(1));
    const a = await fromPretrained(m), b = await fromPretrained(odd);
    for (const [k, v] of Object.entries(a.model.stateDict())) assert.equal(maxDiff(v, b.model.stateDict()[k]), 0, `${dtype ?? "F32"} ${k}`);
  }
});

test("a sharded checkpoint (model.safetensors.index.json) loads the same weights; a bad index names the tensor", async () => {
  const m = files("bert");
  const { tensors } = parseSafetensors(m.get("model.safetensors")!);
  const names = [...tensors.keys()].sort(), half = Math.ceil(names.length / 2);
  const shard = (ns: string[]) => serializeSafetensors(ns.map((n) => [n, tensors.get(n)!] as const), { format: "pt" });
  const weightMap: Record<string, string> = {};
  names.forEach((n, i) => { weightMap[n] = i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors"; });
  const sharded = new Map([["config.json", m.get("config.json")!],
    ["model-00001-of-00002.safetensors", shard(names.slice(0, half))], ["model-00002-of-00002.safetensors", shard(names.slice(half))],
    ["model.safetensors.index.json", new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: weightMap }))]]);
  const a = await fromPretrained(m), b = await fromPretrained(sharded);
  for (const [k, v] of Object.entries(a.model.stateDict())) assert.equal(maxDiff(v, b.model.stateDict()[k]), 0, k);
  weightMap[names[0]] = "model-00002-of-00002.safetensors";
  sharded.set("model.safetensors.index.json", new TextEncoder().encode(JSON.stringify({ weight_map: weightMap })));
  await assert.rejects(fromPretrained(sharded), new RegExp(`maps "${names[0].replace(/\./g, "\\.")}" to model-00002-of-00002.safetensors, which has no such tensor`));
});

test("loading streams tensor by tensor: the weights file is never read whole, each read is one tensor's bytes", async () => {
  const m = files("gpt2"), mem = memoryReader(m);
  const reads: [string, number][] = [];
  const wholeReads: string[] = [];
  const reader: HFFileReader = {
    readFile: async (n) => { wholeReads.push(n); return mem.readFile(n); },
    size: mem.size,
    readRange: async (n, s, l) => { reads.push([n, l]); return mem.readRange(n, s, l); },
  };
  await loadPretrained(reader);
  assert.ok(!wholeReads.includes("model.safetensors"), `read whole: ${wholeReads}`);
  const { tensors } = parseSafetensors(m.get("model.safetensors")!);
  const biggest = Math.max(...[...tensors.values()].map((t) => t.data.length));
  const dataReads = reads.filter(([n]) => n === "model.safetensors").slice(2); // first two: header length, header
  assert.equal(dataReads.length, tensors.size);
  assert.ok(dataReads.every(([, l]) => l <= biggest));
});

test("picked Files (the browser's folder input) load by range reads, to the same weights as the bytes", async () => {
  const m = files("vit");
  const picked = [...m].map(([n, b]) => new File([new Uint8Array(b)], n));
  const fromFiles = await fromPretrained(picked), fromBytes = await fromPretrained(m);
  for (const [k, v] of Object.entries(fromBytes.model.stateDict())) assert.equal(maxDiff(v, fromFiles.model.stateDict()[k]), 0, k);
  const short = [...m].map(([n, b]) => new File([new Uint8Array(n === "model.safetensors" ? b.subarray(0, b.length - 4) : b)], n));
  await assert.rejects(fromPretrained(short), /model\.safetensors: data section has|run past the end of the data section/);
});

test("tied weights: GPT-2 has no lm_head.weight in the file and its head is the embedding; untied needs it", async () => {
  const tied = await fromPretrained(files("gpt2"));
  const sd = tied.model as unknown as { lmHead: { weight: Tensor }; transformer: { wte: { weight: Tensor } } };
  assert.equal(sd.lmHead.weight, sd.transformer.wte.weight);
  const untied = files("gpt2-untied-gelu");
  assert.ok(parseSafetensors(untied.get("model.safetensors")!).tensors.has("lm_head.weight"));
  await fromPretrained(untied);
  await assert.rejects(fromPretrained(rewriteWeights(untied, (k, t) => (k === "lm_head.weight" ? null : t))), /missing weights \(1\): lm_head\.weight/);
});

test("errors name the problem: missing and unexpected weights by name, shapes both ways, unsupported options", async () => {
  const m = files("bert-seqcls");
  await assert.rejects(fromPretrained(rewriteWeights(m, (k, t) => (k.includes("layer.1.output.dense") ? null : t))),
    /missing weights \(2\): bert\.encoder\.layer\.1\.output\.dense\.(weight|bias), bert\.encoder\.layer\.1\.output\.dense\.(weight|bias)/);
  const extra = rewriteWeights(m, (_, t) => t);
  const sd = loadSafetensors(extra.get("model.safetensors")!).tensors;
  sd.set("bert.encoder.layer.7.attention.self.query.weight", sd.get("classifier.weight")!);
  extra.set("model.safetensors", saveSafetensors(sd, { metadata: { format: "pt" } }));
  await assert.rejects(fromPretrained(extra), /unexpected weights \(1\): bert\.encoder\.layer\.7\.attention\.self\.query\.weight/);
  await assert.rejects(fromPretrained(withConfig(m, { intermediate_size: 48 })),
    /"bert\.encoder\.layer\.0\.intermediate\.dense\.weight" is \[64, 32\] in model\.safetensors but \[48, 32\] from config\.json/);
  await assert.rejects(fromPretrained(withConfig(m, { model_type: "xlnet" })), /"model_type" "xlnet" is not supported \(supported: bart, bert, gpt2, llama, marian, mistral, t5, vit\)/);
  await assert.rejects(fromPretrained(withConfig(m, { architectures: ["BertForQuestionAnswering"] })),
    /architecture "BertForQuestionAnswering" is not supported for model_type "bert" \(supported: BertModel, BertForSequenceClassification, BertForMaskedLM\)/);
  await assert.rejects(fromPretrained(withConfig(m, { position_embedding_type: "relative_key" })),
    /"position_embedding_type" = "relative_key" is not supported \(supported: absolute\)/);
  await assert.rejects(fromPretrained(withConfig(m, { hidden_act: "prelu" })), /"hidden_act" = "prelu" is not supported \(supported: gelu, /);
  const noWeights = new Map(m); noWeights.delete("model.safetensors");
  await assert.rejects(fromPretrained(noWeights), /no model\.safetensors or model\.safetensors\.index\.json/);
  const truncated = new Map(m); truncated.set("model.safetensors", m.get("model.safetensors")!.subarray(0, 100));
  await assert.rejects(fromPretrained(truncated), /model\.safetensors: header length \d+ runs past end of file/);
  await assert.rejects(fromPretrained(join(root, "no-such-folder")), /no such folder/);
});

test("base-model prefix: a BertModel checkpoint under a classification head (strict: false keeps the new head), and back", async () => {
  const base = files("bert");
  await assert.rejects(fromPretrained(withConfig(base, { architectures: ["BertForSequenceClassification"], num_labels: 3 })),
    /missing weights \(2\): classifier\.weight, classifier\.bias.*strict: false/);
  const r = await fromPretrained(withConfig(base, { architectures: ["BertForSequenceClassification"] }), { strict: false });
  assert.deepEqual(r.missingKeys.sort(), ["classifier.bias", "classifier.weight"]);
  const bare = await fromPretrained(files("bert"));
  const sdA = r.model.stateDict(), sdB = bare.model.stateDict();
  for (const [k, v] of Object.entries(sdB)) assert.equal(maxDiff(v, sdA[`bert.${k}`]), 0, k);
  const back = await fromPretrained(files("bert-seqcls"), { architecture: "BertModel" });
  assert.deepEqual(back.ignoredKeys.sort(), ["classifier.bias", "classifier.weight"]);
});

test("a BertForPreTraining-style checkpoint opens as BertForMaskedLM: the NSP head and old buffers are ignored, as in HF", async () => {
  const m = files("bert-mlm-h3");
  const sd = loadSafetensors(m.get("model.safetensors")!).tensors;
  sd.set("cls.seq_relationship.weight", sd.get("cls.predictions.bias")!.narrow(0, 0, 48).reshape([2, 24]).contiguous());
  sd.set("bert.embeddings.position_ids", Tensor.fromArray(Int32Array.from({ length: 32 }, (_, i) => i), [1, 32], "int32"));
  const pre = new Map(m);
  pre.set("model.safetensors", saveSafetensors(sd, { metadata: { format: "pt" } }));
  const r = await fromPretrained(pre);
  assert.deepEqual(r.ignoredKeys.sort(), ["bert.embeddings.position_ids", "cls.seq_relationship.weight"]);
  assert.deepEqual(r.unexpectedKeys, []);
});

test("savePretrained writes HF's names without tied copies, and reloads to the same outputs", async () => {
  for (const name of ["gpt2", "bert-mlm-h3", "vit"]) {
    const a = await fromPretrained(files(name));
    const saved = savePretrained(a.model);
    const written = [...parseSafetensors(saved.get("model.safetensors")!).tensors.keys()].sort();
    const original = [...parseSafetensors(files(name).get("model.safetensors")!).tensors.keys()].sort();
    assert.deepEqual(written, original, name);
    const b = await fromPretrained(saved);
    const ref = refOf(name);
    const [oa, ob] = noGrad(() => [a.model.forward(inputsOf(ref)), b.model.forward(inputsOf(ref))]);
    assert.equal(maxDiff(oa.logits!, ob.logits!), 0, name);
  }
});

const torchHere = spawnSync("/usr/bin/python3", ["-c", "import torch"], { encoding: "utf8" }).status === 0;
test("HF's own from_pretrained loads what savePretrainedDir writes and computes our outputs", { skip: !torchHere && "Debian's python3-torch is not installed" }, async () => {
  const dir = mkdtempSync("/tmp/attnflow-hfsave-");
  try {
    const names = ["bert-seqcls", "gpt2", "bert-mlm-h3", "vit"];
    const models = new Map<string, HFModel>();
    const args: string[] = [];
    for (const name of names) {
      const { model } = await fromPretrained(fx(name));
      // change every weight so that HF can only agree by reading ours
      noGrad(() => { for (const p of model.parameters()) p.storage.data.set(p.dataSync().map((x, i) => x * 1.01 + (i % 7) * 1e-3)); });
      await savePretrainedDir(model, join(dir, name));
      const inputs = new Map([...refOf(name)].filter(([k]) => k.startsWith("in.")));
      writeFileSync(join(dir, `${name}-in.safetensors`), saveSafetensors(inputs));
      args.push(join(dir, name), join(dir, `${name}-in.safetensors`), join(dir, `${name}-out.safetensors`));
      models.set(name, model);
    }
    execFileSync("/usr/bin/python3", [join(root, "scripts/hf-ref/hf_forward.py"), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    for (const name of names) {
      const ref = refOf(name);
      const hf = loadSafetensors(new Uint8Array(readFileSync(join(dir, `${name}-out.safetensors`)))).tensors;
      const ours = noGrad(() => models.get(name)!.forward(inputsOf(ref)));
      const d = maxDiff(ours.logits!, hf.get("out.logits")!);
      assert.ok(d < 1e-4, `${name}: HF's logits differ from ours by ${d}`);
      assert.ok(maxDiff(hf.get("out.logits")!, ref.get("out.logits")!) > 1e-3, `${name}: the changed weights did not reach HF`);
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});


