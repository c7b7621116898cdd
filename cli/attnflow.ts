// The `attnflow` command line: a thin argv layer over the library.
import { releaseEnvGuard } from "./env-guard.js"; // first: a bad ATTNFLOW_BACKEND is one clear line, exit 2
import "../src/node.js"; // registers the native backend when built
import { runUntrainedDemo } from "./demo.js";
import { evalCommand, exportCommand, infoCommand, predictCommand, taskList, trainCommand } from "./train.js";
import { type Args, type CommandSpec, UsageError, closest, formatHelp, parseCommandArgs } from "./args.js";
import { COMMANDS, predictSpec, trainTaskSpec } from "./commands.js";
import { listTasks } from "../src/node/tasks/index.js";
import { explainCommand } from "./explain.js";
import { evalFaithfulnessCommand } from "./eval-faithfulness.js";
import { webCommand } from "./web.js";
import { quantizeCommand } from "./quantize.js";
import { pruneCommand } from "./prune.js";
releaseEnvGuard();

const HELP = `attnflow — self-attention for TypeScript: build, train, run and explain attention models

usage:
  attnflow demo [--text "..."] [--image file] [--no-color]   the shipped trained models explained (topic classifier on
                                                         the brief's sentence; ViT on a Fashion-MNIST image)
  attnflow demo --untrained [--text "..."] [--seed N]    the brief's SelfAttention(512) mechanism, untrained
  attnflow parity <dir>                                  check PyTorch reference fixtures (same as npm run parity)
  attnflow train <task> [--epochs N] [--batch-size N] [--lr X] [--seed N] [--out ckpt] [--resume [ckpt]]
                 [--data DIR] [--limit-train N] [--limit-test N] [--stop-after STEPS] [--<model option> V]
                                                         train a task (attnflow train --list shows them)
  attnflow eval --model <ckpt> [--data DIR] [--limit N] [--json]      held-out metrics of a checkpoint
  attnflow predict --model <ckpt> <input> [--json]       run one input (text, image file, ids — depends on the task)
  attnflow info --model <ckpt> [--json]                  what a checkpoint holds
  (--model also takes a Hugging Face folder with config.json: predict [--text ... | --input-ids 1,2 | --image f] [--max-tokens N], info, explain)
  attnflow export --model <ckpt> --out <file> [--half] [--notes "..."]   small inference-only copy
  attnflow quantize --model <ckpt|HF folder> --out <file|folder> [--eval] [--exclude names]   dynamic int8 copy
  attnflow prune --model <ckpt|HF folder> --out <file|folder> --heads 25% --by gradient|flow|rollout [--finetune-steps N]   remove attention heads
  attnflow explain --model <ckpt> (--text "..." | --image <file> | --input <ids>) [--method raw|rollout|flow|grad|blankout|inputgrad|all]
                   [--layer N] [--head N] [--target <class|token|index>] [--json [file]] [--html report.html]
                                                         where the attention flows, per token / patch
  attnflow eval-faithfulness --model <ckpt> [--data DIR] [--n 50] [--methods ...] [--json]
                                                         Spearman of each method vs blank-out and input gradients
  attnflow web [--port 8080] [--host 127.0.0.1] [--serve DIR]   the shipped models explained in your browser, locally
                                                         (a page served with cross-origin isolation; Wasm on Web Workers);
                                                         --serve DIR: your own page, attnflow at /attnflow/dist/ (attnflow web --help)
  attnflow help [command]                                this list; attnflow <command> --help: the command's options
`;

export type { Args } from "./args.js";

/** The command's declaration; `train <task>` and `predict` add what the tasks declare. */
async function specFor(cmd: string, argv: string[]): Promise<CommandSpec> {
  if (cmd === "predict") return predictSpec((await listTasks()).values());
  if (cmd !== "train") return COMMANDS[cmd];
  const name = trainTaskName(argv);
  if (name === undefined) return COMMANDS.train;
  const tasks = await listTasks(), task = tasks.get(name);
  if (!task) {
    const near = closest(name, [...tasks.keys()]);
    const file = /\.safetensors$/.test(name) ? `; to resume, name the task first: attnflow train <task> --resume ${name}` : "";
    throw new UsageError(`unknown task "${name}"${near ? `; did you mean ${near}?` : ""} (tasks: ${[...tasks.keys()].join(", ")})${file}`);
  }
  return trainTaskSpec(task);
}

/** The first positional word after `train`: declared flags are skipped with their values, other flags (model options) take one. */
function trainTaskName(argv: string[]): string | undefined {
  const kinds = new Map(COMMANDS.train.flags.map((f) => [f.name, f.kind]));
  for (let i = 1; i < argv.length; i++) {
    const w = argv[i];
    if (w === "--") return argv[i + 1];
    if (!w.startsWith("--") || w.length === 2) return w;
    if (w.includes("=")) continue;
    const kind = kinds.get(w.slice(2)) ?? "value";
    if (kind === "value" && i + 1 < argv.length && !argv[i + 1].startsWith("--")) i++;
  }
  return undefined;
}

async function printHelp(spec: CommandSpec): Promise<void> {
  console.log(formatHelp(spec));
  if (spec === COMMANDS.train) console.log(`\ntasks (attnflow train <task> --help: its model options):\n${await taskList()}`);
}

async function main(argv: string[]): Promise<number> {
  const cmd = argv[0] ?? "help";
  if (cmd === "--help" || cmd === "-h") { console.log(HELP); return 0; }
  if (!Object.hasOwn(COMMANDS, cmd)) {
    const near = closest(cmd, Object.keys(COMMANDS));
    console.error(`attnflow: unknown command "${cmd}"${near ? `; did you mean "${near}"?` : ""}\n\n${HELP}`); return 2;
  }
  let spec: CommandSpec, args: Args;
  try {
    spec = await specFor(cmd, argv);
    args = parseCommandArgs(spec, argv.length ? argv : ["help"]);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`attnflow ${cmd}: ${e.message}\n(attnflow ${cmd} --help lists the options)`); return 2;
  }
  if (args.flags.help) {
    await printHelp(spec);
    return 0;
  }
  const color = !args.flags["no-color"] && process.stdout.isTTY === true && !process.env.NO_COLOR;
  switch (cmd) {
    case "demo": {
      const text = typeof args.flags.text === "string" ? args.flags.text : undefined;
      if (!args.flags.untrained) {
        const { runTrainedDemo } = await import("./demo-trained.js");
        if (await runTrainedDemo({ text, image: typeof args.flags.image === "string" ? args.flags.image : undefined, color: args.flags.color === true || color })) return 0;
        console.log("(the demo models — models/fortunes-classifier.safetensors, models/fashion-vit.safetensors — are not shipped yet: showing the untrained SelfAttention demo)\n");
      }
      console.log(runUntrainedDemo({ text, seed: args.flags.seed !== undefined ? Number(args.flags.seed) : undefined, color: args.flags.color === true || color }));
      return 0;
    }
    case "parity": {
      process.argv = [process.argv[0], process.argv[1], ...args._.slice(1)];
      await import("./parity.js");
      return process.exitCode as number ?? 0;
    }
    case "train": return trainCommand(args);
    case "eval": return evalCommand(args);
    case "predict": return predictCommand(args);
    case "info": return infoCommand(args);
    case "export": return exportCommand(args);
    case "quantize": return quantizeCommand(args);
    case "prune": return pruneCommand(args);
    case "explain": return explainCommand(args);
    case "eval-faithfulness": return evalFaithfulnessCommand(args);
    case "web": return webCommand(args);
    case "help": {
      const about = args._[1];
      if (about === undefined) { console.log(HELP); return 0; }
      if (!Object.hasOwn(COMMANDS, about)) throw new UsageError(`no command "${about}" (commands: ${Object.keys(COMMANDS).join(", ")})`);
      await printHelp(await specFor(about, [about]));
      return 0;
    }
    default: throw new Error(`command "${cmd}" is declared but not implemented`);
  }
}

// `attnflow … | head`: the reader went away; stop quietly, like other command-line tools
process.stdout.on("error", (e: NodeJS.ErrnoException) => { if (e.code === "EPIPE") process.exit(0); throw e; });

/**
 * Errors the code throws on purpose (bad input, missing files) end with their message and exit code 1 (2 for a usage mistake). A TypeError,
 * a stack overflow or a non-Error is a bug: its stack is shown and the exit code is 70 (EX_SOFTWARE), so scripts and
 * the fuzz suite (bench/fuzz.ts) can tell a clear rejection from a crash.
 */
function isInternalError(e: unknown): boolean {
  if (!(e instanceof Error)) return true;
  if (e instanceof TypeError || e instanceof ReferenceError || e instanceof SyntaxError || e instanceof EvalError) return true;
  return e instanceof RangeError && /Maximum call stack|Invalid array length|Array buffer allocation failed|Invalid typed array length/.test(e.message);
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  if (isInternalError(e)) {
    console.error(`attnflow: internal error (a bug; please report it): ${e instanceof Error ? e.stack : String(e)}`);
    process.exitCode = 70;
  } else {
    // a usage mistake found by a command (a missing --model, a flag this checkpoint's task does not take): exit code 2
    console.error(`attnflow: ${(e as Error).message}`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  }
});
