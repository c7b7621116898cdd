// What each `attnflow` command accepts: positional arguments and flags with their kinds, value checks and one-line
// descriptions. The parser (args.ts) and every `--help` are driven by these declarations.
import type { Task } from "../src/tasks/task.js";
import { type CommandSpec, type FlagSpec, kebab } from "./args.js";

const COLOR: FlagSpec[] = [
  { name: "color", kind: "switch", help: "colour the output even when it is not a terminal" },
  { name: "no-color", kind: "switch", help: "no colours (also: the NO_COLOR environment variable)" },
];
const MODEL: FlagSpec = { name: "model", kind: "value", arg: "CKPT", help: "the checkpoint (.safetensors) or Hugging Face folder (config.json, model.safetensors, tokenizer.json) to use (required)" };
/** A Hugging Face folder's text longer than the model reads: cut (default) or refused, as HF's tokenizer truncation. */
export const TRUNCATION_FLAGS: FlagSpec[] = [
  { name: "truncation", kind: "switch", help: "Hugging Face folders: cut a text longer than the model reads to its limit (the default; a notice says how many tokens were dropped)" },
  { name: "no-truncation", kind: "switch", help: "Hugging Face folders: refuse a text longer than the model reads (an error naming its length and the limit)" },
  { name: "max-length", kind: "value", type: "int", min: 1, help: "Hugging Face folders: cut the input to N tokens, special tokens included (at most the model's limit)" },
  { name: "truncation-side", kind: "value", choices: ["left", "right"], help: "Hugging Face folders: which end loses tokens (default: tokenizer_config.json's truncation_side, else left for causal LMs, right for the others)" },
];
const INPUT_IDS: FlagSpec = { name: "input-ids", kind: "value", arg: "IDS", help: "token ids 1,2,3 for a Hugging Face folder (instead of --text; needed without tokenizer.json)" };
/** predict flags only a Hugging Face folder takes (an attnflow task that declares one of them takes it too). */
export const HF_PREDICT_FLAGS: FlagSpec[] = [
  INPUT_IDS, ...TRUNCATION_FLAGS,
  { name: "max-tokens", kind: "value", type: "int", min: 0, help: "tokens to generate at most (Hugging Face decoders and encoder-decoders; default 20)" },
  // Hugging Face generation (HF's generate(): options over the folder's generation_config.json)
  { name: "max-new-tokens", kind: "value", type: "int", min: 0, help: "Hugging Face generation: tokens to generate at most (same as --max-tokens; default: generation_config.json's max_length, else 20)" },
  { name: "beams", kind: "value", type: "int", min: 1, help: "Hugging Face generation: beam search with N beams (HF's num_beams)" },
  { name: "sample", kind: "switch", help: "Hugging Face generation: sample (HF's do_sample; with --temperature, --top-k (HF default 50), --top-p, --seed)" },
  { name: "temperature", kind: "value", type: "number", min: 0, help: "Hugging Face generation: sampling temperature; 0: greedy" },
  { name: "top-k", kind: "value", type: "int", min: 0, help: "Hugging Face generation: sample from the K most likely tokens; 0: all" },
  { name: "top-p", kind: "value", type: "number", min: 0, minExclusive: true, max: 1, help: "Hugging Face generation: nucleus sampling" },
  { name: "seed", kind: "value", type: "int", help: "Hugging Face generation: seed of the sampling (same seed, same tokens)" },
  { name: "num-return-sequences", kind: "value", type: "int", min: 1, help: "Hugging Face generation: sequences to print (beam search: the N best; sampling: N samples)" },
  { name: "repetition-penalty", kind: "value", type: "number", min: 0, minExclusive: true, help: "Hugging Face generation: HF's repetition_penalty (1: off)" },
  { name: "no-repeat-ngram-size", kind: "value", type: "int", min: 0, help: "Hugging Face generation: no n-gram of this size twice (0: off)" },
  { name: "length-penalty", kind: "value", type: "number", help: "Hugging Face generation: beam score = log p / length^X (HF's length_penalty, default 1)" },
  { name: "min-new-tokens", kind: "value", type: "int", min: 0, help: "Hugging Face generation: no eos before N new tokens" },
];
const DATA: FlagSpec = { name: "data", kind: "value", arg: "DIR", help: "read the task's data from DIR instead of the Debian package's folder" };

export const TRAIN_FLAGS: FlagSpec[] = [
  { name: "epochs", kind: "value", type: "int", min: 1, help: "epochs to train (default: the task's)" },
  { name: "batch-size", kind: "value", type: "int", min: 1, help: "examples per optimizer step (default: the task's)" },
  { name: "lr", kind: "value", type: "number", min: 0, minExclusive: true, help: "peak learning rate of AdamW (default: the task's)" },
  { name: "weight-decay", kind: "value", type: "number", min: 0, help: "decoupled weight decay on matrices (default: the task's)" },
  { name: "warmup", kind: "value", type: "int", min: 0, arg: "STEPS", help: "linear warm-up steps before the cosine decay (default: the task's)" },
  { name: "clip", kind: "value", type: "number", min: 0, help: "clip the gradient norm to X; 0: off (default: the task's)" },
  { name: "seed", kind: "value", type: "int", help: "seed of the initialisation, data order and dropout", default: 0 },
  { name: "out", kind: "value", arg: "CKPT", help: "checkpoint to write (default: runs/<task>.safetensors; with --resume CKPT: CKPT)" },
  { name: "resume", kind: "optional-value", arg: "CKPT", help: "continue an interrupted run from CKPT (bare --resume: from --out)" },
  DATA,
  { name: "limit-train", kind: "value", type: "int", min: 0, help: "use at most N training examples" },
  { name: "limit-test", kind: "value", type: "int", min: 0, help: "use at most N held-out examples" },
  { name: "stop-after", kind: "value", type: "int", min: 0, arg: "STEPS", help: "stop with a resumable checkpoint after STEPS optimizer steps" },
  { name: "checkpoint-every", kind: "value", type: "int", min: 1, arg: "STEPS", help: "also save every STEPS steps (default: every minute and each epoch end)" },
  { name: "quiet", kind: "switch", help: "no progress bar or log lines" },
  { name: "json", kind: "switch", help: "print the final metrics as one JSON line" },
  { name: "list", kind: "switch", help: "list the tasks and their defaults" },
];

export const PREDICT_FLAGS: FlagSpec[] = [
  MODEL,
  { name: "text", kind: "value", help: "the input text (instead of the positional input)" },
  { name: "image", kind: "value", arg: "FILE", help: "the input image: a PNG/PGM file or test:<index> (instead of the positional input)" },
  { name: "input", kind: "value", arg: "IDS", help: "the input as the task reads it, e.g. token ids 3,14,15" },
  { name: "json", kind: "switch", help: "print the prediction as one JSON line" },
  { name: "quiet", kind: "switch", help: "do not stream generated text while producing it" },
];

export const COMMANDS: Record<string, CommandSpec> = {
  demo: {
    name: "demo", summary: "The shipped trained models explained (topic classifier on the brief's sentence, ViT on a Fashion-MNIST image); --untrained: the brief's SelfAttention(512) with random weights.",
    flags: [
      { name: "text", kind: "value", help: "explain this sentence instead of the brief's" },
      { name: "image", kind: "value", arg: "FILE", help: "explain this 28x28 image instead of the shipped test image" },
      { name: "untrained", kind: "switch", help: "show the untrained SelfAttention(512) mechanism" },
      { name: "seed", kind: "value", type: "int", help: "seed of the untrained weights (with --untrained)", default: 0 },
      ...COLOR,
    ],
  },
  parity: {
    name: "parity", summary: "Check the PyTorch reference fixtures under a folder (same as npm run parity -- <dir>).",
    positionals: [{ name: "dir", help: "a folder of .safetensors fixtures (any nesting) or one fixture file" }], flags: [],
  },
  train: {
    name: "train", summary: "Train a task: AdamW, warm-up + cosine decay, evaluation each epoch, atomic resumable checkpoints.\n`attnflow train <task> --help` also lists the task's model options.",
    positionals: [{ name: "task", help: "the application to train (attnflow train --list)", optional: true }], flags: TRAIN_FLAGS,
  },
  eval: {
    name: "eval", summary: "Held-out metrics of a checkpoint.",
    positionals: [{ name: "checkpoint", help: "the checkpoint (same as --model)", optional: true }],
    flags: [MODEL, DATA, { name: "limit", kind: "value", type: "int", min: 0, help: "evaluate at most N held-out examples" },
      { name: "json", kind: "switch", help: "print the metrics as one JSON line" }],
  },
  predict: {
    name: "predict", summary: "Run one input through a checkpoint's model (text, an image file, ids: depends on the task).",
    positionals: [{ name: "input", help: "the input; several words are joined with spaces", optional: true, variadic: true }], flags: PREDICT_FLAGS,
  },
  info: {
    name: "info", summary: "What a checkpoint holds: task, parameters, config, metrics, training state.",
    positionals: [{ name: "checkpoint", help: "the checkpoint (same as --model)", optional: true }],
    flags: [MODEL, { name: "json", kind: "switch", help: "print everything (with the training history) as one JSON line" }],
  },
  export: {
    name: "export", summary: "A small inference-only copy of a checkpoint (no optimizer or resume state).",
    positionals: [{ name: "checkpoint", help: "the checkpoint (same as --model)", optional: true }],
    flags: [MODEL, { name: "out", kind: "value", arg: "FILE", help: "the file to write (required)" },
      { name: "half", kind: "switch", help: "store the weights as float16" },
      { name: "notes", kind: "value", arg: "TEXT", allowEmpty: true, help: "notes to store (default: the checkpoint's; \"\" clears them)" }],
  },
  quantize: {
    name: "quantize", summary: "Dynamic int8 copy of a checkpoint or Hugging Face folder (like PyTorch's quantize_dynamic): Linear layers and attention projections int8, attention float.",
    positionals: [{ name: "checkpoint", help: "the checkpoint (same as --model)", optional: true }],
    flags: [MODEL, { name: "out", kind: "value", arg: "PATH", help: "the file (or, for a Hugging Face folder, the folder) to write (required)" },
      { name: "exclude", kind: "value", arg: "NAMES", help: "comma list of module names to keep float (e.g. head)" },
      { name: "eval", kind: "switch", help: "measure the held-out metrics before and after (HF folders: accuracy / perplexity / agreement and the logit drift on --data FILE lines, \"LABEL<TAB>text\" for classifiers, default Debian's fortunes)" },
      DATA, { name: "limit", kind: "value", type: "int", min: 0, help: "with --eval: at most N held-out examples" },
      { name: "json", kind: "switch", help: "print the result as one JSON line" }],
  },
  prune: {
    name: "prune", summary: "Remove the least important attention heads (projections shrink) by gradient (Michel et al. 2019), flow or rollout importance; optional short fine-tune.",
    positionals: [{ name: "checkpoint", help: "the checkpoint (same as --model)", optional: true }],
    flags: [MODEL, { name: "out", kind: "value", arg: "PATH", help: "the file (or, for a Hugging Face folder, the folder) to write (required)" },
      { name: "heads", kind: "value", arg: "N", help: "heads to prune: a percentage of all heads (25%), a fraction (0.25) or a count" },
      { name: "by", kind: "value", choices: ["gradient", "flow", "rollout", "random"], help: "head importance: gradient (|dloss/dmask|), flow or rollout (share of the explanation the head moves), random", default: "gradient" },
      { name: "spec", kind: "value", arg: "HEADS", help: "prune these heads instead: \"LAYER:HEAD,HEAD;LAYER:HEAD\" (original indices, like HF's prune_heads)" },
      { name: "examples", kind: "value", type: "int", min: 1, help: "examples the importance is measured on (default 64; training split, or --texts lines)" },
      { name: "texts", kind: "value", arg: "FILE", help: "Hugging Face folders: one text per line (\"LABEL<TAB>text\" gives a label) for the importance" },
      { name: "finetune-steps", kind: "value", type: "int", min: 0, help: "checkpoints: fine-tune the pruned model for N steps with the task's training loop (resumable)" },
      { name: "lr", kind: "value", type: "number", min: 0, minExclusive: true, help: "fine-tuning learning rate (default: the task's / 10)" },
      { name: "batch-size", kind: "value", type: "int", min: 1, help: "fine-tuning batch size (default: the task's)" },
      { name: "seed", kind: "value", type: "int", help: "seed of --by random and of the fine-tuning", default: 0 },
      { name: "eval", kind: "switch", help: "measure the held-out metrics before and after (HF folders: accuracy on --data FILE lines, \"LABEL<TAB>text\")" },
      DATA, { name: "limit", kind: "value", type: "int", min: 0, help: "with --eval / fine-tuning: at most N held-out examples (HF folders: default 400)" },
      { name: "html", kind: "value", arg: "FILE", help: "write a self-contained HTML report: the metric vs heads pruned (0-75% by the same importance), the scores, the pruned heads" },
      { name: "quiet", kind: "switch", help: "no progress bars" },
      { name: "json", kind: "switch", help: "print the result as one JSON line" }],
  },
  explain: {
    name: "explain", summary: "Where the attention flows for one input of a trained model, per token or patch: terminal bars, --json, --html.",
    flags: [
      MODEL,
      { name: "text", kind: "value", help: "the input sentence" },
      { name: "image", kind: "value", arg: "FILE", help: "the input image (a file or test:<index>)" },
      { name: "input", kind: "value", arg: "IDS", help: "the input as comma-separated token ids" },
      INPUT_IDS, ...TRUNCATION_FLAGS,
      { name: "max-tokens", kind: "value", type: "int", min: 1, help: "encoder-decoders (Hugging Face): tokens to generate before choosing --target, the index of the explained output token (default 20)" },
      { name: "method", kind: "value", arg: "NAMES", help: "raw, rollout, flow, grad, blankout, inputgrad, a comma list or all (default rollout)" },
      { name: "methods", kind: "value", arg: "NAMES", help: "the same as --method" },
      { name: "layer", kind: "value", type: "int", help: "the layer of raw attention, 0-based; -1: the last", default: -1 },
      { name: "head", kind: "value", type: "int", min: 0, help: "the head of raw attention (default: the mean of the heads)" },
      { name: "target", kind: "value", arg: "WHAT", help: "the output to explain: a class name, output token or index" },
      { name: "json", kind: "optional-value", arg: "FILE", help: "every matrix and score as JSON: on stdout, or into FILE next to the terminal view" },
      { name: "html", kind: "value", arg: "FILE", help: "write a self-contained HTML report" },
      { name: "head-fusion", kind: "value", choices: ["mean", "max", "min"], help: "rollout only: how the heads of a layer are fused", default: "mean" },
      { name: "discard-ratio", kind: "value", type: "number", min: 0, max: 1, maxExclusive: true, help: "rollout only: share of each fused layer's lowest attention set to 0 (the diagonal is kept)", default: 0 },
      { name: "start-layer", kind: "value", type: "int", min: 0, help: "rollout only: the first layer in the product (0-based); --layer must not be below it", default: 0 },
      { name: "flow-matrices", kind: "value", choices: ["all", "layer", "none"], help: "full T x T flow matrices in --json/--html (default: by cost)" },
      { name: "flow-aggregate", kind: "value", choices: ["source", "rows"], help: "flow of several explained rows (mean / readout): one flow from a source feeding each row (source), or Abnar & Zuidema's flow of every row, averaged (rows: T times slower)", default: "source" },
      ...COLOR,
    ],
  },
  "eval-faithfulness": {
    name: "eval-faithfulness", summary: "Spearman correlation of each attention explanation with blank-out and input x gradient over held-out inputs.",
    flags: [
      MODEL, { ...DATA, arg: "DIR|FILE", help: `${DATA.help}; for a Hugging Face folder: a text file (one input per line; token ids 5,6,7 without tokenizer.json), a directory of images (ViT) or of fortune files (default: Debian's fortunes, held-out split)` },
      { name: "n", kind: "value", type: "int", min: 1, help: "how many held-out inputs", default: 50 },
      { name: "methods", kind: "value", arg: "NAMES", help: "comma list of raw, rollout, flow, grad (default all four)" },
      { name: "method", kind: "value", arg: "NAMES", help: "the same as --methods" },
      { name: "json", kind: "optional-value", arg: "FILE", help: "the tables and per-input scores as JSON: on stdout, or into FILE" },
      { name: "paper", kind: "switch", help: "print the blank-out table beside Abnar & Zuidema 2020's Table 1 (default for the agreement task)" },
      { name: "include-special", kind: "switch", help: "rank the special positions ([CLS]) too: blanked out like a word, kept in every method's row" },
      ...COLOR,
    ],
  },
  web: {
    name: "web", summary: "The shipped models explained in your browser: a local page with cross-origin isolation (Wasm on Web Workers).",
    flags: [
      { name: "port", kind: "value", type: "int", min: 0, max: 65535, help: "the port to listen on; 0: any free port", default: 8080 },
      { name: "host", kind: "value", arg: "ADDR", help: "the address to listen on (this machine only by default); requests whose Host header names neither this machine (localhost, 127.x, [::1]) nor ADDR get 403 (DNS rebinding). To open the page from another machine, give the address it will use", default: "127.0.0.1" },
      { name: "serve", kind: "value", arg: "DIR", help: "serve your own page instead: DIR at /, attnflow's build at /attnflow/dist/ (import map: \"attnflow\": \"/attnflow/dist/src/index.js\"), its models at /attnflow/models/, the tokenizer libraries at /lib/ (bare imports in served scripts rewritten to these URLs, as the default page)" },
    ],
  },
  help: {
    name: "help", summary: "The list of commands, or one command's options.",
    positionals: [{ name: "command", help: "a command to describe", optional: true }], flags: [],
  },
};

/** `train <task>`: the trainer's flags plus the task's model options (all values; the task checks them). */
export function trainTaskSpec(task: Task): CommandSpec {
  const opts = Object.entries(task.modelOptions ?? {});
  const modelFlags: FlagSpec[] = opts.map(([k, o]) => ({ name: kebab(k), kind: "value", help: o.help, default: showDefault(o.default) }));
  const d = task.defaults;
  return {
    name: `train ${task.name}`, usage: `train ${task.name}`,
    positionals: [{ name: "task", help: task.name }],
    summary: `${task.description}\ntask defaults: ${d.epochs} epochs, batch ${d.batchSize}, lr ${d.lr}, weight decay ${d.weightDecay}, warm-up ${d.warmupSteps}, clip ${d.clipNorm}`,
    flags: [...TRAIN_FLAGS.filter((f) => f.name !== "list"), ...modelFlags],
    otherFlagsTakeValues: task.modelOptions === undefined,
    sections: opts.length ? [] : [{ title: "model options:", lines: ["  this task declares none; --<name> VALUE is passed to it and checked when the model is built"] }],
  };
}

function showDefault(v: unknown): string {
  return Array.isArray(v) ? (v.length ? v.join(",") : "none") : typeof v === "string" ? v : JSON.stringify(v);
}

/** `predict`: the generic flags plus every task's predict flags (which task a checkpoint holds is known only later). */
export function predictSpec(tasks: Iterable<Task>): CommandSpec {
  const flags = [...PREDICT_FLAGS];
  for (const t of tasks) {
    for (const f of t.predictFlags ?? []) {
      const seen = flags.find((g) => g.name === f.name);
      if (!seen) flags.push({ ...f, help: `${f.help} [${t.name}]` });
      else if (seen.kind !== f.kind) throw new Error(`predict flag --${f.name}: task ${t.name} declares it a ${f.kind}, another task a ${seen.kind}`);
      else if (!PREDICT_FLAGS.includes(seen)) seen.help += ` [${t.name}]`;
    }
  }
  for (const f of HF_PREDICT_FLAGS) {
    const seen = flags.find((g) => g.name === f.name);
    if (!seen) flags.push(f);
    else if (seen.kind !== f.kind) throw new Error(`predict flag --${f.name}: a task declares it a ${seen.kind}, Hugging Face folders a ${f.kind}`);
    else {   // one line for both: the task's default goes with the task's half
      seen.help = `${seen.help}${seen.default !== undefined ? ` (default ${String(seen.default)})` : ""}; ${f.help}`;
      delete seen.default;
    }
  }
  return { ...COMMANDS.predict, flags };
}
