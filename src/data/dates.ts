// Date normalisation as a seq2seq task with known alignment: human-written dates ("tuesday, march 3rd 1998",
// "3/3/98", "the 3rd of March, 1998", ...) → ISO 8601 "1998-03-03". Browser-safe.
//
// Source tokens are exactly `wordTokenize(source)` (lowercased word/punctuation tokens), target tokens are
// the 10 characters of the ISO string. For every target position the example lists the source token
// positions that carry its information (year chars → year token, month chars → month token, day chars →
// day token, the two "-" → none). The weekday is redundant and never aligned.
//
// Dates range over 1950-01-01 .. 2049-12-31, so a 2-digit year yy is unambiguous: 19yy if yy >= 50 else 20yy.
// Train/test are disjoint BY DATE: a date is a test date iff stableHash32(iso) % 100 < 100 * testFraction.

import { Rng, isHeldOut } from "./hash.js";
import { Tokenizer, wordTokenize } from "./tokenizer.js";

export type DateField = "year" | "month" | "day" | "weekday";

export interface DateExample {
  /** Target, e.g. "1998-03-03". */
  iso: string;
  /** Human-written source text, e.g. "Tuesday, March 3rd 1998". */
  source: string;
  /** wordTokenize(source): lowercased tokens. */
  sourceTokens: string[];
  /** Field each source token encodes (null for punctuation and filler words like "the", "of"). */
  sourceFields: (DateField | null)[];
  /** The ISO string as characters (length 10). */
  targetChars: string[];
  /** alignment[j] = sorted source token positions that target char j should attend to ([] for "-"). */
  alignment: number[][];
  /** Which format produced the source. */
  format: string;
}

export const DATE_MIN_YEAR = 1950;
export const DATE_MAX_YEAR = 2049;

const MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];
const MONS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const WDS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

interface Piece { text: string; field: DateField | null; space: boolean }
interface Parts { y: number; m: number; d: number; wd: number }
type Casing = (s: string) => string;

const p = (text: string, field: DateField | null, space = true): Piece => ({ text, field, space });
const pad2 = (n: number) => String(n).padStart(2, "0");
export function ordinal(n: number): string {
  const t = n % 100;
  const suf = t >= 11 && t <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suf}`;
}

/** Formats: each returns the source pieces; `c` applies the sampled casing to month/weekday names. */
const FORMATS: Record<string, (x: Parts, c: Casing) => Piece[]> = {
  // tuesday, march 3rd 1998
  weekday_month_ordinal_year: (x, c) => [p(c(WEEKDAYS[x.wd]), "weekday", false), p(",", null, false), p(c(MONTHS[x.m - 1]), "month"), p(ordinal(x.d), "day"), p(String(x.y), "year")],
  // 3/3/98 (US order)
  mdy_slash_short: (x) => [p(String(x.m), "month", false), p("/", null, false), p(String(x.d), "day", false), p("/", null, false), p(pad2(x.y % 100), "year", false)],
  // 03/03/1998 (US order)
  mdy_slash_long: (x) => [p(pad2(x.m), "month", false), p("/", null, false), p(pad2(x.d), "day", false), p("/", null, false), p(String(x.y), "year", false)],
  // 03.03.1998 (European order)
  dmy_dot: (x) => [p(pad2(x.d), "day", false), p(".", null, false), p(pad2(x.m), "month", false), p(".", null, false), p(String(x.y), "year", false)],
  // 03 mar 1998
  dd_mon_yyyy: (x, c) => [p(pad2(x.d), "day", false), p(c(MONS[x.m - 1]), "month"), p(String(x.y), "year")],
  // 3 mar 98
  d_mon_yy: (x, c) => [p(String(x.d), "day", false), p(c(MONS[x.m - 1]), "month"), p(pad2(x.y % 100), "year")],
  // the 3rd of march, 1998
  the_ordinal_of_month_year: (x, c) => [p(c("the"), null, false), p(ordinal(x.d), "day"), p("of", null), p(c(MONTHS[x.m - 1]), "month"), p(",", null, false), p(String(x.y), "year")],
  // march 3, 1998
  month_d_year: (x, c) => [p(c(MONTHS[x.m - 1]), "month", false), p(String(x.d), "day"), p(",", null, false), p(String(x.y), "year")],
  // mar. 3, 1998
  mon_dot_d_year: (x, c) => [p(c(MONS[x.m - 1]), "month", false), p(".", null, false), p(String(x.d), "day"), p(",", null, false), p(String(x.y), "year")],
  // 3 march 1998
  d_month_year: (x, c) => [p(String(x.d), "day", false), p(c(MONTHS[x.m - 1]), "month"), p(String(x.y), "year")],
  // 3rd march 1998
  ordinal_month_year: (x, c) => [p(ordinal(x.d), "day", false), p(c(MONTHS[x.m - 1]), "month"), p(String(x.y), "year")],
  // tue mar 3 1998
  wd_mon_d_year: (x, c) => [p(c(WDS[x.wd]), "weekday", false), p(c(MONS[x.m - 1]), "month"), p(String(x.d), "day"), p(String(x.y), "year")],
  // saturday 3 march 1998
  weekday_d_month_year: (x, c) => [p(c(WEEKDAYS[x.wd]), "weekday", false), p(String(x.d), "day"), p(c(MONTHS[x.m - 1]), "month"), p(String(x.y), "year")],
  // 1998, march 3
  year_month_d: (x, c) => [p(String(x.y), "year", false), p(",", null, false), p(c(MONTHS[x.m - 1]), "month"), p(String(x.d), "day")],
};

export const DATE_FORMATS: readonly string[] = Object.keys(FORMATS);

const CASINGS: Casing[] = [
  (s) => s,
  (s) => s.charAt(0).toUpperCase() + s.slice(1),
  (s) => s.toUpperCase(),
];

/** Calendar parts of a day number counted from 1970-01-01 (UTC, proleptic Gregorian). */
function partsOfDay(dayNumber: number): Parts {
  const dt = new Date(dayNumber * 86400000);
  return { y: dt.getUTCFullYear(), m: dt.getUTCMonth() + 1, d: dt.getUTCDate(), wd: dt.getUTCDay() };
}

/** Build one example for a calendar date and format (casing 0 = lower, 1 = Title, 2 = UPPER). */
export function makeDateExample(y: number, m: number, d: number, format: string, casing = 0): DateExample {
  const f = FORMATS[format];
  if (!f) throw new Error(`unknown date format '${format}'; known: ${DATE_FORMATS.join(", ")}`);
  const dayNumber = Date.UTC(y, m - 1, d) / 86400000;
  const x = partsOfDay(dayNumber);
  if (x.y !== y || x.m !== m || x.d !== d) throw new RangeError(`invalid calendar date ${y}-${m}-${d}`);
  if (y < DATE_MIN_YEAR || y > DATE_MAX_YEAR) throw new RangeError(`year ${y} outside ${DATE_MIN_YEAR}..${DATE_MAX_YEAR}`);
  const pieces = f(x, CASINGS[casing] ?? CASINGS[0]);
  const source = pieces.map((pc, i) => (i > 0 && pc.space ? " " : "") + pc.text).join("");
  const sourceTokens = pieces.map((pc) => pc.text.toLowerCase());
  const check = wordTokenize(source);
  if (check.join("\u0000") !== sourceTokens.join("\u0000")) {
    throw new Error(`date format '${format}' pieces [${sourceTokens.join("|")}] do not match wordTokenize -> [${check.join("|")}]`);
  }
  const sourceFields = pieces.map((pc) => pc.field);
  const at = (field: DateField) => sourceFields.flatMap((fl, i) => (fl === field ? [i] : []));
  const iso = `${y}-${pad2(m)}-${pad2(d)}`;
  const targetChars = Array.from(iso);
  // (10,) target positions: 0-3 year, 4 '-', 5-6 month, 7 '-', 8-9 day
  const [yPos, mPos, dPos] = [at("year"), at("month"), at("day")];
  const alignment = targetChars.map((_, j) => [...(j < 4 ? yPos : j === 4 || j === 7 ? [] : j < 7 ? mPos : dPos)]);
  return { iso, source, sourceTokens, sourceFields, targetChars, alignment, format };
}

export interface DateDatasetOptions {
  seed?: number;
  trainSize?: number;
  testSize?: number;
  /** Fraction of calendar dates reserved for test (default 0.2). */
  testFraction?: number;
  /** Restrict to these formats (default: all DATE_FORMATS). */
  formats?: readonly string[];
}

/**
 * Deterministic train/test sets (same seed → same examples, everywhere). Dates are drawn uniformly with
 * replacement from the train-date pool or the test-date pool; format and casing uniformly.
 */
export function generateDateDataset(opts: DateDatasetOptions = {}): { train: DateExample[]; test: DateExample[] } {
  const { seed = 0, trainSize = 10000, testSize = 1000, testFraction = 0.2 } = opts;
  const formats = opts.formats ?? DATE_FORMATS;
  for (const f of formats) if (!FORMATS[f]) throw new Error(`unknown date format '${f}'; known: ${DATE_FORMATS.join(", ")}`);
  if (formats.length === 0) throw new Error("generateDateDataset: formats is empty");
  const { trainDays, testDays } = datePools(testFraction);
  const rng = new Rng(seed);
  const draw = (days: number[], n: number, split: string): DateExample[] => {
    if (n > 0 && days.length === 0) throw new Error(`no ${split} dates available with testFraction ${testFraction}`);
    const out: DateExample[] = [];
    for (let i = 0; i < n; i++) {
      const x = partsOfDay(days[rng.int(days.length)]);
      out.push(makeDateExample(x.y, x.m, x.d, rng.pick(formats), rng.int(CASINGS.length)));
    }
    return out;
  };
  return { train: draw(trainDays, trainSize, "train"), test: draw(testDays, testSize, "test") };
}

const poolCache = new Map<number, { trainDays: number[]; testDays: number[] }>();

/** Day numbers of all train / test dates for a test fraction (memoised: ~36.5k hashes). */
function datePools(testFraction: number): { trainDays: number[]; testDays: number[] } {
  let pools = poolCache.get(testFraction);
  if (pools) return pools;
  const first = Date.UTC(DATE_MIN_YEAR, 0, 1) / 86400000;
  const last = Date.UTC(DATE_MAX_YEAR, 11, 31) / 86400000;
  pools = { trainDays: [], testDays: [] };
  for (let dn = first; dn <= last; dn++) {
    const x = partsOfDay(dn);
    (isHeldOut(`${x.y}-${pad2(x.m)}-${pad2(x.d)}`, testFraction) ? pools.testDays : pools.trainDays).push(dn);
  }
  poolCache.set(testFraction, pools);
  return pools;
}

/** Every token any format can produce (lowercased), in a fixed order — a closed source vocabulary. */
export function dateSourceTokens(): string[] {
  const toks = new Set<string>([",", "/", ".", "the", "of"]);
  for (const w of [...MONTHS, ...MONS, ...WEEKDAYS, ...WDS]) toks.add(w);
  for (let i = 1; i <= 31; i++) { toks.add(String(i)); toks.add(pad2(i)); toks.add(ordinal(i)); }
  for (let y = DATE_MIN_YEAR; y <= DATE_MAX_YEAR; y++) { toks.add(String(y)); toks.add(pad2(y % 100)); }
  return [...toks];
}

/** Word tokenizer over the closed date vocabulary (no [UNK] on any generated source). */
export function dateSourceTokenizer(): Tokenizer {
  return Tokenizer.fromTokens("word", dateSourceTokens());
}

/** Char tokenizer for ISO targets: digits and "-". */
export function dateTargetTokenizer(): Tokenizer {
  return Tokenizer.fromTokens("char", [..."0123456789-"], false);
}

/**
 * Dense 0/1 alignment mask (T_out, T_src), row-major. `sourceOffset` shifts source positions (e.g. 1 when a
 * [BOS]/[CLS] is prepended to the encoder input); `sourceLength` defaults to tokens + offset.
 */
export function alignmentMask(ex: DateExample, sourceOffset = 0, sourceLength?: number): { mask: Uint8Array; rows: number; cols: number } {
  const rows = ex.targetChars.length;
  const cols = sourceLength ?? ex.sourceTokens.length + sourceOffset;
  const mask = new Uint8Array(rows * cols); // (T_out, T_src)
  ex.alignment.forEach((srcs, j) => {
    for (const s of srcs) {
      const c = s + sourceOffset;
      if (c >= cols) throw new RangeError(`alignment source position ${c} >= sourceLength ${cols}`);
      mask[j * cols + c] = 1;
    }
  });
  return { mask, rows, cols };
}
