// Task "char-lm" for the command line: the browser-safe task (src/tasks/char-lm.ts) plus its data loader, which reads
// the fortune files of the Debian packages fortunes + fortunes-min (or --data: a fortune directory or one file).
import { statSync } from "node:fs";
import { basename, dirname } from "node:path";
import { loadFortuneCharCorpus } from "../datasets.js";
import type { DataOptions, Task } from "../../tasks/task.js";
import type { CharGPT } from "../../models/char-gpt.js";
import { EXAMPLE_CHARS, charLmTaskBase, encodeChars, type CharLMData } from "../../tasks/char-lm.js";

export * from "../../tasks/char-lm.js";

/** Load the corpus; `data` may be a fortune directory or one fortune-format file. */
export function loadCharLMData(o: DataOptions = {}): CharLMData {
  let opts: { dir?: string; files?: string[] } = {};
  if (o.data) {
    let isFile = false;
    try { isFile = statSync(o.data).isFile(); } catch { /* a missing path is reported by the loader */ }
    opts = isFile ? { dir: dirname(o.data), files: [basename(o.data)] } : { dir: o.data };
  }
  const c = loadFortuneCharCorpus(opts);
  const enc = (s: string, limitExamples?: number) => {
    const ids = encodeChars(c.tokenizer, s);
    return limitExamples !== undefined ? ids.slice(0, Math.max(0, limitExamples) * EXAMPLE_CHARS + 1) : ids;
  };
  const train = enc(c.train, o.limitTrain), val = enc(c.val, o.limitTest);   // limitTrain 0 (eval only): no training text
  if (val.length < 2) throw new Error(`char-lm: the validation text has ${val.length} characters; need at least 2 (is --limit-test 0?)`);
  return { tokenizer: c.tokenizer, train, val, trainEntries: c.trainEntries, valEntries: c.valEntries };
}

export const task: Task<CharGPT, CharLMData> = { ...charLmTaskBase, loadData: loadCharLMData };
