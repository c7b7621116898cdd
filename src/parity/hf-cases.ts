// One Hugging Face reference case (a folder from ../shared/hf-ref/make_refs.py, or any folder holding config.json,
// model.safetensors and reference.safetensors): load the folder through fromPretrained, run the inputs in.* through
// the HFModel contract and compare every out.* / gen.* tensor of the reference by name — nothing is model-specific.
import { Tensor } from "../tensor.js";
import { cat, stack } from "../ops/movement.js";
import { ones } from "../creation.js";
import { noGrad } from "../autograd.js";
import { loadSafetensors } from "../io/state-dict.js";
import { loadPretrained, type HFFileReader } from "../hf/pretrained.js";
import type { HFInputs, HFModel, HFOutputs } from "../hf/types.js";
import { generate, generateAsync, type GenerateOutput, type GenerationOptions } from "../hf/generation.js";
import { compare, type Check } from "./compare.js";
import { defaultDevice, type DeviceName } from "../device.js";

/** Logits, hidden states, attentions and step logits: absolute tolerance 1e-4 (the bar). */
export const HF_ATOL = 1e-4;

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** in.input_ids → inputIds, … (integer inputs become int32, as the contract takes them). */
function inputsOf(ref: Map<string, Tensor>): HFInputs {
  const inputs: Record<string, Tensor> = {};
  for (const [k, v] of ref) if (k.startsWith("in.")) inputs[camel(k.slice(3))] = v;
  return inputs as HFInputs;
}

/** "out.hidden_states.3" → outputs.hiddenStates[3]; "out.logits" → outputs.logits. */
function outputFor(out: HFOutputs, key: string): Tensor | undefined {
  const m = /^out\.([a-z_]+?)(?:\.(\d+))?$/.exec(key);
  if (!m) return undefined;
  const v = (out as Record<string, Tensor | Tensor[] | undefined>)[camel(m[1])];
  if (m[2] === undefined) return Array.isArray(v) ? undefined : v;
  return Array.isArray(v) ? v[Number(m[2])] : undefined;
}

function missing(name: string, why: string): Check { return { name, ok: false, maxErr: Infinity, detail: why }; }

/** notes: one line per generate() case (its tokens), printed under the case's result. */
export interface HFCaseResult { architecture: string; checks: Check[]; notes: string[] }

export async function runHFCase(reader: HFFileReader, reference: Uint8Array): Promise<HFCaseResult> {
  const { model, generationConfig } = await loadPretrained(reader, { tokenizer: false });
  const { tensors: ref, metadata } = loadSafetensors(reference);
  const inputs = inputsOf(ref);
  const checks: Check[] = [], notes: string[] = [];
  const dev = defaultDevice();
  if (dev !== "cpu") {
    checks.push(...await onDevice(dev, model, inputs, ref));
    // generate() on the device: the same search, each step's logits read back asynchronously (generateAsync)
    if ([...ref.keys()].some((k) => k.startsWith("gen."))) checks.push(...await generationChecks(model, inputs, ref, dev));
    if (metadata.generate) checks.push(...await generateCases(model, inputs, ref, metadata.generate, generationConfig, notes, dev));
    return { architecture: model.architecture, checks, notes };
  }
  noGrad(() => {
    if ([...ref.keys()].some((k) => k.startsWith("out."))) {
      const out = model.forward(inputs, { outputAttentions: true, outputHiddenStates: true });
      for (const [k, expected] of ref) {
        if (!k.startsWith("out.")) continue;
        const got = outputFor(out, k);
        checks.push(got ? compare(k, got, got.shape, expected, HF_ATOL, 0) : missing(k, "attnflow produced no such output"));
      }
    }
  });
  if ([...ref.keys()].some((k) => k.startsWith("gen."))) checks.push(...await generationChecks(model, inputs, ref, "cpu"));
  if (metadata.generate) checks.push(...await generateCases(model, inputs, ref, metadata.generate, generationConfig, notes, "cpu"));
  return { architecture: model.architecture, checks, notes };
}

/**
 * The case on a device (ATTNFLOW_BACKEND=webgpu): the model and the inputs move there, the forward runs there, outputs
 * are read back asynchronously.
 */
async function onDevice(dev: DeviceName, model: HFModel, inputs: HFInputs, ref: Map<string, Tensor>): Promise<Check[]> {
  const checks: Check[] = [];
  (model as unknown as { to(d: DeviceName): unknown }).to(dev);
  const moved: Record<string, Tensor> = {};
  // token ids and masks stay host data (the models check ids and build masks from them on the CPU); float inputs
  // (pixels) move
  for (const [k, v] of Object.entries(inputs)) if (v) moved[k] = v.dtype === "float32" ? v.to(dev) : v;
  if ([...ref.keys()].some((k) => k.startsWith("out."))) {
    const out = noGrad(() => model.forward(moved as HFInputs, { outputAttentions: true, outputHiddenStates: true }));
    for (const [k, expected] of ref) {
      if (!k.startsWith("out.")) continue;
      const got = outputFor(out, k);
      checks.push(got ? compare(k, await got.data(), got.shape, expected, HF_ATOL, 0) : missing(k, "attnflow produced no such output"));
    }
  }
  return checks;
}

/**
 * The generate() cases of scripts/hf-gen-refs.py: __metadata__.generate = {case: options (camelCase)}, HF's output in
 * generate.<case>.sequences (tokens: identical) and, for beam search, generate.<case>.sequences_scores (within 1e-4).
 */
async function generateCases(model: HFModel, inputs: HFInputs, ref: Map<string, Tensor>, spec: string, generationConfig: Record<string, unknown> | null,
  notes: string[], dev: DeviceName): Promise<Check[]> {
  let cases: Record<string, GenerationOptions>;
  try { cases = JSON.parse(spec) as Record<string, GenerationOptions>; } catch (e) { return [missing("generate", `__metadata__.generate is not JSON: ${(e as Error).message}`)]; }
  const checks: Check[] = [];
  for (const [name, options] of Object.entries(cases)) {
    const seqRef = ref.get(`generate.${name}.sequences`);
    if (!seqRef) { checks.push(missing(`generate.${name}`, `the reference has no generate.${name}.sequences`)); continue; }
    let out: GenerateOutput;
    try {
      const inp = { inputIds: inputs.inputIds, attentionMask: inputs.attentionMask }, o = { ...options, generationConfig };
      out = dev === "cpu" ? noGrad(() => generate(model, inp, o)) : await generateAsync(model, inp, o);
    }
    catch (e) { checks.push(missing(`generate.${name}`, `generate() failed: ${(e as Error).message}`)); continue; }
    const got = out.sequences.toArray() as number[][], want = seqRef.toArray() as number[][];
    const same = JSON.stringify(got) === JSON.stringify(want);
    checks.push({ name: `generate.${name}.sequences`, ok: same, maxErr: same ? 0 : Infinity, detail: same ? "" : `got ${JSON.stringify(got)}, HF ${JSON.stringify(want)}` });
    notes.push(`${name} ${JSON.stringify(options)}: ${got.map((r) => r.join(" ")).join(" | ")}${same ? "" : "  (HF: " + want.map((r) => r.join(" ")).join(" | ") + ")"}`);
    const scRef = ref.get(`generate.${name}.sequences_scores`);
    if (scRef) {
      checks.push(out.sequencesScores ? compare(`generate.${name}.sequences_scores`, out.sequencesScores, out.sequencesScores.shape, scRef, HF_ATOL, 0)
        : missing(`generate.${name}.sequences_scores`, "generate() returned no sequencesScores"));
    }
  }
  return checks;
}

async function generationChecks(model: HFModel, inputs: HFInputs, ref: Map<string, Tensor>, dev: DeviceName): Promise<Check[]> {
  const checks: Check[] = [];
  const seqRef = ref.get("gen.sequences"), stepRef = ref.get("gen.step_logits");
  if (!seqRef || !stepRef) return [missing("gen.*", "reference has gen.* but no gen.sequences / gen.step_logits")];
  if (!model.generate) return [missing("gen.sequences", `${model.architecture} has no generate()`)];
  const steps = stepRef.shape[1];
  const inp = { inputIds: inputs.inputIds, attentionMask: inputs.attentionMask };
  // on a device: what model.generate (greedyGenerate) runs, through generateAsync
  const pad = typeof model.config.pad_token_id === "number" ? model.config.pad_token_id : null;
  const g = dev === "cpu" ? noGrad(() => model.generate!(inp, { maxNewTokens: steps, eosTokenId: null, returnStepLogits: true }))
    : await generateAsync(model, inp, { generationConfig: {}, maxNewTokens: steps, eosTokenId: null, padTokenId: pad, returnScores: true })
      .then((o) => ({ sequences: o.sequences, stepLogits: o.logits }));
  checks.push(compare("gen.sequences", g.sequences, g.sequences.shape, seqRef, 0, 0));
  checks.push(g.stepLogits?.length ? compare("gen.step_logits", stack(g.stepLogits, 1), null, stepRef, HF_ATOL, 0)
    : missing("gen.step_logits", "generate() returned no step logits"));
  const nc = ref.get("gen.nocache_logits");
  if (nc) {
    // The reference's own tokens scored in one pass without a cache (independent of our greedy picks).
    let logits: Tensor | undefined;
    if (inputs.decoderInputIds) {
      // as make_refs.py scores them: the encoder inputs and the generated tokens, no decoder_attention_mask
      const o = noGrad(() => model.forward({ inputIds: inputs.inputIds, attentionMask: inputs.attentionMask, decoderInputIds: seqRef.narrow(1, 0, seqRef.shape[1] - 1) }));
      logits = o.logits?.narrow(1, o.logits.shape[1] - steps, steps);
    } else {
      const [B, T] = inputs.inputIds!.shape;
      const mask = cat([inputs.attentionMask ?? ones([B, T], { dtype: "int32" }), ones([B, seqRef.shape[1] - T], { dtype: "int32" })], 1);
      const o = noGrad(() => model.forward({ inputIds: seqRef, attentionMask: mask, positionIds: ref.get("gen.position_ids") ?? cumsumPositions(mask) }));
      logits = o.logits?.narrow(1, o.logits.shape[1] - steps - 1, steps);
    }
    checks.push(logits ? compare("gen.nocache_logits", logits.device === "cpu" ? logits : await logits.cpu(), logits.shape, nc, HF_ATOL, 0)
      : missing("gen.nocache_logits", "forward() returned no logits"));
  }
  return checks;
}

/** HF generate()'s rule: cumsum(mask) − 1, clamped at 0. */
function cumsumPositions(mask: Tensor): Tensor {
  const [B, T] = mask.shape, d = mask.contiguous().dataSync(), out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) { let c = 0; for (let t = 0; t < T; t++) { c += d[b * T + t]; out[b * T + t] = Math.max(c - 1, 0); } }
  return Tensor.fromArray(out, [B, T], "int32");
}
