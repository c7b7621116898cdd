// Fortune-file text classification and character-LM corpora. Browser-safe (takes file contents as strings);
// the Node loader that reads /usr/share/games/fortunes lives in src/node/datasets.ts.
//
// Split rule (documented in docs/datasets.md): an entry is in the TEST split iff
//   stableHash32(normalisedText) % 100 < 100 * testFraction        (default testFraction = 0.2)
// so an entry's split depends only on its own text: stable across machines, package versions that keep
// the entry, and the presence/absence of other entries. Identical texts always land in the same split.

import { isHeldOut } from "./hash.js";
import { Tokenizer, type TrainOptions } from "./tokenizer.js";

/**
 * Categories used for classification: topically distinct files of Debian's `fortunes` package with
 * >= ~150 entries each. (Chosen by inspection; `medicine` (74) is too small, `drugs`/`food` overlap on
 * alcohol, so `drugs` is left out.)
 */
export const FORTUNE_CATEGORIES: readonly string[] = [
  "computers",
  "education",
  "food",
  "law",
  "love",
  "politics",
  "science",
  "sports",
];

export interface FortuneFile {
  /** Category / file name, e.g. "science". */
  name: string;
  /** Raw file contents (UTF-8 decoded). */
  text: string;
}

export interface LabeledText {
  text: string;
  /** Index into `categories`. */
  label: number;
}

export interface FortuneDataset {
  categories: string[];
  train: LabeledText[];
  test: LabeledText[];
  stats: {
    /** Per category: entries in the file, after dedup, and the split sizes. */
    perCategory: { name: string; raw: number; kept: number; train: number; test: number }[];
    /** Entries dropped because the same normalised text occurs in two or more categories. */
    crossCategoryDuplicates: number;
    /** Entries dropped as exact duplicates inside one category. */
    withinCategoryDuplicates: number;
    /** Entries dropped as shorter than minChars after normalisation. */
    tooShort: number;
  };
}

/** Split a fortune file into raw entries: separators are lines containing only "%" (CRLF tolerated). */
export function parseFortuneFile(text: string): string[] {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const entries: string[] = [];
  let cur: string[] = [];
  const flush = () => {
    const e = cur.join("\n");
    if (e.trim() !== "") entries.push(e);
    cur = [];
  };
  for (const line of lines) {
    if (line.trimEnd() === "%") flush();
    else cur.push(line);
  }
  flush();
  return entries;
}

/**
 * Normalise an entry: Unicode NFC; terminal overstrike "x\bY" (bold/underline) becomes "Y" and other control
 * characters are removed; then either collapse every whitespace run (incl. newlines, tabs) to one space
 * (default), or with keepLines collapse within lines, trim each line and drop blank lines.
 */
export function normalizeFortune(entry: string, opts: { keepLines?: boolean } = {}): string {
  const t = entry
    .normalize("NFC")
    .replace(/[^\n\x08]\x08/g, "")
    .replace(/[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]/g, "");
  if (!opts.keepLines) return t.replace(/\s+/g, " ").trim();
  return t
    .split(/\r\n?|\n/)
    .map((l) => l.replace(/\s+/g, " ").trim())
    .filter((l) => l !== "")
    .join("\n");
}

/**
 * Build the classification dataset from fortune files (one category per file).
 * Dedup: exact duplicates (after normalisation) inside a category keep their first occurrence; texts
 * present in two or more categories are dropped everywhere (their label is ambiguous).
 * Order: categories as given; entries in file order within each split.
 */
export function buildFortuneDataset(
  files: readonly FortuneFile[],
  opts: { testFraction?: number; minChars?: number } = {},
): FortuneDataset {
  const testFraction = opts.testFraction ?? 0.2;
  const minChars = opts.minChars ?? 1;
  const names = files.map((f) => f.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new Error(`buildFortuneDataset: category '${dup}' given twice`);
  if (files.length < 2) throw new Error(`buildFortuneDataset: need at least 2 categories, got ${files.length}`);

  let within = 0;
  let tooShort = 0;
  const perFile: { name: string; raw: number; texts: string[] }[] = [];
  const owners = new Map<string, Set<number>>(); // normalised text -> categories containing it
  files.forEach((f, c) => {
    const raw = parseFortuneFile(f.text);
    const seen = new Set<string>();
    const texts: string[] = [];
    for (const e of raw) {
      const n = normalizeFortune(e);
      if (n.length < minChars) { tooShort++; continue; }
      if (seen.has(n)) { within++; continue; }
      seen.add(n);
      texts.push(n);
      let o = owners.get(n);
      if (!o) owners.set(n, (o = new Set()));
      o.add(c);
    }
    perFile.push({ name: f.name, raw: raw.length, texts });
  });

  let cross = 0;
  const train: LabeledText[] = [];
  const test: LabeledText[] = [];
  const perCategory: FortuneDataset["stats"]["perCategory"] = [];
  perFile.forEach((f, label) => {
    let nTrain = 0;
    let nTest = 0;
    for (const text of f.texts) {
      if (owners.get(text)!.size > 1) { cross++; continue; }
      if (isHeldOut(text, testFraction)) { test.push({ text, label }); nTest++; }
      else { train.push({ text, label }); nTrain++; }
    }
    perCategory.push({ name: f.name, raw: f.raw, kept: nTrain + nTest, train: nTrain, test: nTest });
  });
  return {
    categories: [...names],
    train,
    test,
    stats: { perCategory, crossCategoryDuplicates: cross, withinCategoryDuplicates: within, tooShort },
  };
}

export interface CharCorpus {
  /** Training text: entries joined by `separator`. */
  train: string;
  /** Validation text (entries whose hash bucket is held out; same rule as the classification split). */
  val: string;
  trainEntries: number;
  valEntries: number;
  /** Char-level tokenizer whose vocabulary was built from the training text only. */
  tokenizer: Tokenizer;
}

/**
 * A character-LM corpus from any fortune files: all entries, normalised (keepLines by default, so the
 * LM sees line structure), deduplicated across files, split by the same hash rule as the classifier
 * (valFraction default 0.2 — equal to the classification test fraction, so the LM never trains on a
 * classification test entry). Entries are joined with `separator` (default "\n\n").
 */
export function buildCharCorpus(
  files: readonly FortuneFile[],
  opts: { valFraction?: number; keepLines?: boolean; separator?: string; vocab?: TrainOptions } = {},
): CharCorpus {
  const valFraction = opts.valFraction ?? 0.2;
  const sep = opts.separator ?? "\n\n";
  const seen = new Set<string>();
  const tr: string[] = [];
  const va: string[] = [];
  for (const f of files) {
    for (const e of parseFortuneFile(f.text)) {
      const n = normalizeFortune(e, { keepLines: opts.keepLines ?? true });
      // Dedup and hash on the single-spaced form (the classification key), so whitespace variants are one
      // entry and LM val agrees with the classification test split on every entry.
      const key = normalizeFortune(e);
      if (key === "" || seen.has(key)) continue;
      seen.add(key);
      (isHeldOut(key, valFraction) ? va : tr).push(n);
    }
  }
  if (tr.length === 0) throw new Error("buildCharCorpus: no training entries (empty files?)");
  const train = tr.join(sep);
  const tokenizer = Tokenizer.train("char", [train], { minFreq: 1, ...opts.vocab });
  return { train, val: va.join(sep), trainEntries: tr.length, valEntries: va.length, tokenizer };
}
