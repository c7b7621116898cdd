// Non-neural baseline on the fortune topic-classification split: TF-IDF (sublinear tf, L2, uni+bigrams)
// + multinomial logistic regression (L2, L-BFGS). The L2 strength is chosen on a validation part of the
// TRAIN split (hash bucket of "val:" + text, 20%), then the model is refit on the whole train split and
// evaluated once on the test split.
//
//   node dist/scripts/baseline-fortunes.js [--data DIR] [--json]

import { isHeldOut } from "../src/data/hash.js";
import { classificationReport } from "../src/data/metrics.js";
import { TfidfLogReg } from "../src/data/tfidf-logreg.js";
import { FORTUNES_DIR, loadFortunes } from "../src/node/datasets.js";

const args = process.argv.slice(2);
const dataIdx = args.indexOf("--data");
const dir = dataIdx >= 0 ? args[dataIdx + 1] : FORTUNES_DIR;
const asJson = args.includes("--json");

const t0 = Date.now();
const ds = loadFortunes({ dir });
const C = ds.categories.length;
const L2_GRID = [1e-6, 3e-6, 1e-5, 3e-5, 1e-4];
const WEIGHTING = [undefined, "balanced"] as const;
const TFIDF = { ngramMax: 2, minDf: 2, sublinearTf: true };
const ITERS = 300;

// Model selection on train only.
const fitPart = ds.train.filter((e) => !isHeldOut("val:" + e.text, 0.2));
const valPart = ds.train.filter((e) => isHeldOut("val:" + e.text, 0.2));
const selection = WEIGHTING.flatMap((classWeight) => L2_GRID.map((l2) => {
  const m = new TfidfLogReg(TFIDF, { l2, maxIter: ITERS, classWeight }).fit(fitPart.map((e) => e.text), fitPart.map((e) => e.label), C);
  const r = classificationReport(valPart.map((e) => e.label), m.predict(valPart.map((e) => e.text)), ds.categories);
  return { l2, classWeight: classWeight ?? "none", valAccuracy: r.accuracy, valMacroF1: r.macroF1 };
}));
const best = selection.reduce((a, b) => (b.valMacroF1 > a.valMacroF1 ? b : a));
const bestWeight = best.classWeight === "balanced" ? "balanced" : undefined;

const model = new TfidfLogReg(TFIDF, { l2: best.l2, maxIter: ITERS, classWeight: bestWeight }).fit(ds.train.map((e) => e.text), ds.train.map((e) => e.label), C);
const report = classificationReport(ds.test.map((e) => e.label), model.predict(ds.test.map((e) => e.text)), ds.categories);
const seconds = (Date.now() - t0) / 1000;

if (asJson) {
  console.log(JSON.stringify({ stats: ds.stats, selection, l2: best.l2, classWeight: best.classWeight, features: model.vectorizer.vocabulary.length,
    accuracy: report.accuracy, macroF1: report.macroF1, perClass: report.perClass, seconds }, null, 2));
} else {
  const pct = (x: number) => (100 * x).toFixed(1).padStart(5);
  console.log(`fortunes: ${C} categories, train ${ds.train.length}, test ${ds.test.length} ` +
    `(dropped: ${ds.stats.withinCategoryDuplicates} in-category duplicates, ${ds.stats.crossCategoryDuplicates} cross-category)`);
  console.log(`l2 selection on train/val (${fitPart.length}/${valPart.length}): ` +
    selection.map((s) => `${s.l2}/${s.classWeight}: ${pct(s.valMacroF1).trim()}`).join(", ") +
    ` -> l2 = ${best.l2}, class weights ${best.classWeight}`);
  console.log(`TF-IDF features: ${model.vectorizer.vocabulary.length}; L-BFGS iterations: ${model.model.lossHistory.length - 1}`);
  console.log("category      train  test   prec   rec    F1");
  for (const [i, r] of report.perClass.entries()) {
    const s = ds.stats.perCategory[i];
    console.log(`${r.name.padEnd(12)} ${String(s.train).padStart(6)} ${String(s.test).padStart(5)}  ${pct(r.precision)} ${pct(r.recall)} ${pct(r.f1)}`);
  }
  console.log(`test accuracy ${pct(report.accuracy)}%   macro-F1 ${pct(report.macroF1)}%   (${seconds.toFixed(1)} s)`);
}
