import { test } from "node:test";
import assert from "node:assert/strict";
import {
  alignmentMask, DATE_FORMATS, dateSourceTokenizer, dateTargetTokenizer, generateDateDataset, makeDateExample, ordinal,
  type DateExample,
} from "../src/data/dates.js";
import { wordTokenize } from "../src/data/tokenizer.js";

const MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

test("makeDateExample renders the brief's formats", () => {
  assert.equal(makeDateExample(1998, 3, 3, "weekday_month_ordinal_year").source, "tuesday, march 3rd 1998");
  assert.equal(makeDateExample(1998, 3, 3, "mdy_slash_short").source, "3/3/98");
  assert.equal(makeDateExample(1998, 3, 3, "dd_mon_yyyy").source, "03 mar 1998");
  assert.equal(makeDateExample(1998, 3, 3, "the_ordinal_of_month_year", 1).source, "The 3rd of March, 1998");
  assert.equal(makeDateExample(2011, 11, 11, "ordinal_month_year").source, "11th november 2011");
  assert.deepEqual([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31].map(ordinal), ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]);
  assert.throws(() => makeDateExample(1999, 2, 29, "dmy_dot"), /invalid calendar date/);
  assert.throws(() => makeDateExample(1900, 1, 1, "dmy_dot"), /outside 1950..2049/);
  assert.throws(() => makeDateExample(2000, 1, 1, "nope"), /unknown date format 'nope'/);
});

test("generator is deterministic per seed", () => {
  const a = generateDateDataset({ seed: 7, trainSize: 300, testSize: 100 });
  const b = generateDateDataset({ seed: 7, trainSize: 300, testSize: 100 });
  const c = generateDateDataset({ seed: 8, trainSize: 300, testSize: 100 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.train.map((e) => e.source), c.train.map((e) => e.source));
  const formats = new Set(a.train.map((e) => e.format));
  assert.equal(formats.size, DATE_FORMATS.length, "300 draws cover every format");
});

test("train and test dates are disjoint, also across seeds", () => {
  const a = generateDateDataset({ seed: 1, trainSize: 3000, testSize: 1000 });
  const b = generateDateDataset({ seed: 2, trainSize: 3000, testSize: 1000 });
  const trainDates = new Set([...a.train, ...b.train].map((e) => e.iso));
  for (const e of [...a.test, ...b.test]) assert.ok(!trainDates.has(e.iso), `${e.iso} in both`);
  const years = new Set(a.train.map((e) => e.iso.slice(0, 4)));
  assert.ok(years.size > 90, `train covers ${years.size} years`);
});

/** The digits a target position should be computable from, read back from the aligned source tokens. */
function checkAlignment(e: DateExample): void {
  const [y, m, d] = e.iso.split("-").map(Number);
  assert.deepEqual(e.sourceTokens, wordTokenize(e.source));
  assert.equal(e.alignment.length, 10);
  e.alignment.forEach((srcs, j) => {
    if (j === 4 || j === 7) return assert.deepEqual(srcs, []);
    assert.equal(srcs.length, 1, `${e.source}: position ${j}`);
    const tok = e.sourceTokens[srcs[0]];
    if (j < 4) assert.ok(tok === String(y) || tok === String(y % 100).padStart(2, "0"), `${e.source}: year char ${j} → '${tok}'`);
    else if (j < 7) assert.ok(Number(tok) === m || MONTHS[m - 1].startsWith(tok), `${e.source}: month char ${j} → '${tok}'`);
    else assert.equal(parseInt(tok, 10), d, `${e.source}: day char ${j} → '${tok}'`);
  });
  // fields the alignment does not use: the weekday, if present, is the right weekday
  const wdIdx = e.sourceFields.indexOf("weekday");
  if (wdIdx >= 0) {
    const wd = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
    assert.ok(["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"][wd].startsWith(e.sourceTokens[wdIdx]));
  }
}

test("alignment points at the source tokens that carry year / month / day", () => {
  const { train, test: tst } = generateDateDataset({ seed: 3, trainSize: 500, testSize: 200 });
  for (const e of [...train, ...tst]) checkAlignment(e);
  for (const f of DATE_FORMATS) checkAlignment(makeDateExample(2049, 12, 31, f, 2));
});

test("closed source vocabulary covers every generated source; target vocabulary is 11 chars", () => {
  const src = dateSourceTokenizer();
  const tgt = dateTargetTokenizer();
  assert.equal(tgt.vocabSize, 6 + 11);
  const { train, test: tst } = generateDateDataset({ seed: 4, trainSize: 500, testSize: 500 });
  for (const e of [...train, ...tst]) {
    assert.ok(!src.encode(e.source).includes(src.unkId), e.source);
    assert.equal(tgt.decode(tgt.encode(e.iso)), e.iso);
  }
});

test("alignmentMask shifts by the source offset", () => {
  const e = makeDateExample(1998, 3, 3, "dd_mon_yyyy");
  const { mask, rows, cols } = alignmentMask(e, 1);
  assert.equal(rows, 10);
  assert.equal(cols, 4);
  // tokens: [BOS] 03 mar 1998 → year rows point at col 3, month rows at col 2, day rows at col 1
  assert.deepEqual(Array.from(mask.subarray(0, 4)), [0, 0, 0, 1]);
  assert.deepEqual(Array.from(mask.subarray(4 * 4, 5 * 4)), [0, 0, 0, 0]);
  assert.deepEqual(Array.from(mask.subarray(5 * 4, 6 * 4)), [0, 0, 1, 0]);
  assert.deepEqual(Array.from(mask.subarray(9 * 4, 10 * 4)), [0, 1, 0, 0]);
  assert.throws(() => alignmentMask(e, 0, 2), /sourceLength 2/);
});
