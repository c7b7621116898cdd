// `attnflow quantize --eval` on a Hugging Face folder: the same held-out inputs through the float model and through its
// int8 copy. What is measured follows the architecture: classifiers — accuracy on labelled lines (--data FILE with
// "LABEL<TAB>text" lines; LABEL an id2label name or a class index) and top-1 agreement with the float model; causal
// LMs — perplexity of each line's own next tokens; masked LMs — top-1 agreement at every position. Always: how far
// the logits drifted (max and mean |int8 − float| over every logit). Inputs: --data FILE (one per line; token ids
// 5,6,7 without tokenizer.json) or a directory of fortune files, default Debian's fortunes (held-out split); texts
// longer than the model reads are cut to its limit, as predict cuts them.
import { noGrad } from "../src/autograd.js";
import { hfInputs, kindOf, textInputOf, type HFLoaded, type TextInput } from "../src/hf/explain-target.js";
import { textSources } from "./hf-faithfulness.js";
import { UsageError } from "./args.js";

export interface HFEvalInput { input: TextInput; label: number | null; source: string }

/** The held-out inputs, with their labels where a classifier's line names one. */
export function hfEvalInputs(m: HFLoaded, data: string | undefined, n: number): HFEvalInput[] {
  const kind = kindOf(m.model.architecture);
  if (kind !== "classify" && kind !== "causal" && kind !== "mlm") {
    throw new UsageError(`quantize --eval on a Hugging Face folder measures text classifiers (accuracy), causal LMs (perplexity) and masked LMs (agreement); ${m.model.architecture} is none of them: compare \`attnflow predict\` of both folders`);
  }
  const label2id = (m.config.label2id ?? {}) as Record<string, number>;
  const classes = typeof m.config.num_labels === "number" ? m.config.num_labels : Object.keys((m.config.id2label ?? {}) as object).length;
  const out = textSources(data, n).map(({ text, where }): HFEvalInput => {
    let label: number | null = null, body = text;
    const tab = /^([^\t]+)\t(.*)$/.exec(text);
    if (kind === "classify" && tab) {
      const l = tab[1].trim();
      label = l in label2id ? label2id[l] : /^\d+$/.test(l) && Number(l) < Math.max(classes, 1) ? Number(l) : null;
      if (label === null) throw new UsageError(`${where}: "${l}" is neither a label of this model (${Object.keys(label2id).join(", ")}) nor a class index`);
      body = tab[2].trim();
    }
    let input: TextInput;
    try {
      input = textInputOf(m, m.tokenizer ? { text: body } : { ids: body, idsName: "data" });
    } catch (e) { throw new UsageError(`${where}: ${(e as Error).message}`); }
    if (kind === "causal" && input.ids.length < 2) throw new UsageError(`${where}: a causal LM's perplexity needs at least 2 tokens`);
    return { input, label, source: where };
  });
  if (!out.length) throw new UsageError(`no held-out inputs in ${data ?? "the fortunes"}`);
  return out;
}

/** The logits of every input: classifiers (C), language models (T·V). */
export function hfEvalLogits(m: HFLoaded, inputs: readonly HFEvalInput[]): Float32Array[] {
  return inputs.map((x) => noGrad(() => Float32Array.from(m.model.forward(hfInputs(x.input)).logits!.dataSync() as Float32Array)));
}

const argmax = (a: Float32Array, off: number, n: number) => { let b = 0; for (let i = 1; i < n; i++) if (a[off + i] > a[off + b]) b = i; return b; };

/** The model's own metric on the inputs: accuracy (classifiers with labels), perplexity (causal LMs); {} otherwise. */
export function hfEvalMetrics(m: HFLoaded, inputs: readonly HFEvalInput[], logits: readonly Float32Array[]): Record<string, number> {
  const kind = kindOf(m.model.architecture);
  if (kind === "classify") {
    const labelled = inputs.flatMap((x, i) => (x.label === null ? [] : [i]));
    if (!labelled.length) return {};
    const C = logits[0].length;
    return { accuracy: labelled.filter((i) => argmax(logits[i], 0, C) === inputs[i].label).length / labelled.length, labelled: labelled.length };
  }
  if (kind === "causal") {
    let nll = 0, count = 0;
    inputs.forEach((x, i) => {
      const T = x.input.ids.length, V = logits[i].length / T;
      for (let t = 0; t + 1 < T; t++) {
        const off = t * V, target = x.input.ids[t + 1];
        let mx = -Infinity;
        for (let v = 0; v < V; v++) mx = Math.max(mx, logits[i][off + v]);
        let z = 0;
        for (let v = 0; v < V; v++) z += Math.exp(logits[i][off + v] - mx);
        nll += mx + Math.log(z) - logits[i][off + target];
        count++;
      }
    });
    return { perplexity: Math.exp(nll / count), tokens: count };
  }
  return {};
}

/** How far the int8 logits drifted from the float ones, and how often their top-1 agrees (per input for classifiers,
 *  per position for language models). */
export function logitDrift(m: HFLoaded, a: readonly Float32Array[], b: readonly Float32Array[]): { maxAbs: number; meanAbs: number; agreement: number; rows: number } {
  const classify = kindOf(m.model.architecture) === "classify";
  let max = 0, sum = 0, n = 0, rows = 0, same = 0;
  a.forEach((x, i) => {
    const y = b[i];
    if (x.length !== y.length) throw new Error(`logitDrift: input ${i} has ${x.length} float and ${y.length} int8 logits`);
    for (let j = 0; j < x.length; j++) { const d = Math.abs(x[j] - y[j]); max = Math.max(max, d); sum += d; n++; }
    const V = classify ? x.length : m.config.vocab_size as number;
    for (let off = 0; off < x.length; off += V) { rows++; if (argmax(x, off, V) === argmax(y, off, V)) same++; }
  });
  return { maxAbs: max, meanAbs: sum / n, agreement: same / rows, rows };
}
