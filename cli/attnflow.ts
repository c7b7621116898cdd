// The `attnflow` command line: a thin argv layer over the library.
import "../src/node.js"; // registers the native backend when built
import { runUntrainedDemo } from "./demo.js";
import { evalCommand, exportCommand, infoCommand, predictCommand, trainCommand } from "./train.js";
import { explainCommand } from "./explain.js";
import { evalFaithfulnessCommand } from "./eval-faithfulness.js";
import { webCommand } from "./web.js";

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
  attnflow export --model <ckpt> --out <file> [--half] [--notes "..."]   small inference-only copy
  attnflow explain --model <ckpt> (--text "..." | --image <file> | --input <ids>) [--method raw|rollout|flow|grad|blankout|inputgrad|all]
                   [--layer N] [--head N] [--target <class|token|index>] [--json [file]] [--html report.html]
                                                         where the attention flows, per token / patch
  attnflow eval-faithfulness --model <ckpt> [--data DIR] [--n 50] [--methods ...] [--json]
                                                         Spearman of each method vs blank-out and input gradients
  attnflow web [--port 8080] [--host 127.0.0.1] [--serve DIR]   the shipped models explained in your browser, locally
                                                         (a page served with cross-origin isolation; Wasm on Web Workers);
                                                         --serve DIR: your own page, attnflow at /attnflow/dist/ (attnflow web --help)
  attnflow help
`;

export interface Args { _: string[]; flags: Record<string, string | boolean> }

/** Flags that never take a value, so `--no-cache "prompt"` keeps the prompt positional. */
const SWITCHES = new Set(["quiet", "half", "untrained", "color", "list", "help", "all"]);
function isSwitch(k: string): boolean { return k.startsWith("no-") || SWITCHES.has(k); }

export function parseArgs(argv: string[]): Args {
  const a: Args = { _: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const s = argv[i];
    if (s.startsWith("--")) {
      const [k, v] = s.slice(2).split("=", 2);
      if (v !== undefined) a.flags[k] = v;
      else if (!isSwitch(k) && i + 1 < argv.length && !argv[i + 1].startsWith("--")) a.flags[k] = argv[++i];
      else a.flags[k] = true;
    } else a._.push(s);
  }
  return a;
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const cmd = args._[0] ?? "help";
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
    case "explain": return explainCommand(args);
    case "eval-faithfulness": return evalFaithfulnessCommand(args);
    case "web": return webCommand(args);
    case "help": case "--help": case "-h":
      console.log(HELP); return 0;
    default:
      console.error(`attnflow: unknown command "${cmd}"\n\n${HELP}`); return 2;
  }
}

// `attnflow … | head`: the reader went away; stop quietly, like other command-line tools
process.stdout.on("error", (e: NodeJS.ErrnoException) => { if (e.code === "EPIPE") process.exit(0); throw e; });

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: Error) => { console.error(`attnflow: ${e.message}`); process.exitCode = 1; });
