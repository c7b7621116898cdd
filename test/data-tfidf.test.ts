import { test } from "node:test";
import assert from "node:assert/strict";
import { lbfgs, LogisticRegression, softmaxLoss } from "../src/data/logreg.js";
import { classificationReport } from "../src/data/metrics.js";
import { documentTerms, TfidfVectorizer, type CsrMatrix } from "../src/data/tfidf.js";
import { TfidfLogReg } from "../src/data/tfidf-logreg.js";

test("documentTerms: lowercased unigrams then bigrams, punctuation dropped", () => {
  assert.deepEqual(documentTerms("The cat, the HAT.", 2), ["the", "cat", "the", "hat", "the cat", "cat the", "the hat"]);
});

test("TF-IDF weights: sublinear tf, smoothed idf, unit L2 rows", () => {
  const docs = ["apple apple banana", "banana cherry", "apple cherry cherry cherry"];
  const v = new TfidfVectorizer({ ngramMax: 1, minDf: 1 });
  const X = v.fitTransform(docs);
  assert.deepEqual(v.vocabulary, ["apple", "banana", "cherry"]);
  const idf = (df: number) => Math.log(4 / (1 + df)) + 1;
  // doc 0: apple tf 2 → 1 + ln 2, banana tf 1
  const a = (1 + Math.log(2)) * idf(2);
  const b = idf(2);
  const n = Math.hypot(a, b);
  assert.deepEqual(Array.from(X.indices.subarray(X.indptr[0], X.indptr[1])), [0, 1]);
  assert.ok(Math.abs(X.values[0] - a / n) < 1e-12);
  assert.ok(Math.abs(X.values[1] - b / n) < 1e-12);
  for (let r = 0; r < X.rows; r++) {
    let s = 0;
    for (let k = X.indptr[r]; k < X.indptr[r + 1]; k++) s += X.values[k] ** 2;
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
  const unseen = v.transform(["durian"]);
  assert.equal(unseen.indptr[1], 0, "unknown words give an empty row");
  assert.throws(() => new TfidfVectorizer().transform(["x"]), /before fit/);
  assert.throws(() => new TfidfVectorizer({ minDf: 5 }).fit(docs), /minDf=5/);
});

test("softmaxLoss gradient matches finite differences", () => {
  const X: CsrMatrix = { rows: 3, cols: 2, indptr: Int32Array.from([0, 2, 3, 4]), indices: Int32Array.from([0, 1, 1, 0]), values: Float64Array.from([0.6, 0.8, 1, 1]) };
  const y = [0, 2, 1];
  const theta = Float64Array.from([0.1, -0.2, 0.3, 0.05, -0.1, 0.2, 0.01, 0.02, -0.03]); // (3, 2) W + (3,) b
  const w = Float64Array.from([1, 2, 0.5]);
  const g = new Float64Array(9);
  softmaxLoss(X, y, 3, theta, g, 0.1, w);
  const tmp = new Float64Array(9);
  for (let i = 0; i < 9; i++) {
    const p = Float64Array.from(theta); p[i] += 1e-6;
    const m = Float64Array.from(theta); m[i] -= 1e-6;
    const num = (softmaxLoss(X, y, 3, p, tmp, 0.1, w) - softmaxLoss(X, y, 3, m, tmp, 0.1, w)) / 2e-6;
    assert.ok(Math.abs(num - g[i]) < 1e-7, `param ${i}: ${num} vs ${g[i]}`);
  }
});

test("L-BFGS minimises an ill-conditioned quadratic", () => {
  // f(x) = Σ c_i (x_i − i)², c_i from 1 to 1000
  const c = Float64Array.from({ length: 20 }, (_, i) => 10 ** ((3 * i) / 19));
  const f = (x: Float64Array, g: Float64Array) => {
    let s = 0;
    for (let i = 0; i < x.length; i++) { s += c[i] * (x[i] - i) ** 2; g[i] = 2 * c[i] * (x[i] - i); }
    return s;
  };
  const { x, losses } = lbfgs(f, new Float64Array(20), { maxIter: 200, history: 10, gradTol: 1e-9 });
  for (let i = 0; i < 20; i++) assert.ok(Math.abs(x[i] - i) < 1e-6, `x[${i}] = ${x[i]}`);
  for (let k = 1; k < losses.length; k++) assert.ok(losses[k] < losses[k - 1], "monotone decrease");
});

test("TF-IDF + logistic regression learns a toy separable topic problem", () => {
  const topics = [
    ["goal", "match", "team", "score", "league", "coach"],
    ["compiler", "kernel", "bug", "code", "linux", "debugger"],
    ["recipe", "cheese", "bread", "oven", "sauce", "butter"],
  ];
  const filler = ["the", "a", "is", "and", "of", "today", "very", "with"];
  // deterministic pseudo-random docs: 3 topic words + 4 filler words
  let s = 12345;
  const rnd = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const make = (n: number) => Array.from({ length: n }, (_, i) => {
    const label = i % 3;
    const words = [...Array.from({ length: 3 }, () => topics[label][rnd(6)]), ...Array.from({ length: 4 }, () => filler[rnd(8)])];
    return { text: words.sort(() => 0).join(" "), label };
  });
  const train = make(90);
  const testSet = make(60);
  const m = new TfidfLogReg({ minDf: 1 }, { l2: 1e-3, maxIter: 100 }).fit(train.map((e) => e.text), train.map((e) => e.label));
  const pred = m.predict(testSet.map((e) => e.text));
  const r = classificationReport(testSet.map((e) => e.label), pred, ["sport", "computers", "food"]);
  assert.equal(r.accuracy, 1);
  assert.equal(r.macroF1, 1);
  const p = m.predictProba(["compiler kernel bug"]);
  assert.ok(p[1] > 0.9, `p(computers) = ${p[1]}`);
  // deterministic: refitting gives bit-identical parameters
  const m2 = new TfidfLogReg({ minDf: 1 }, { l2: 1e-3, maxIter: 100 }).fit(train.map((e) => e.text), train.map((e) => e.label));
  assert.deepEqual(m2.model.params, m.model.params);
  // a filler-only document carries no topic signal
  const pf = m.predictProba(["the a is and of"]);
  assert.ok(Math.max(pf[0], pf[1], pf[2]) < 0.6);
});

test("logistic regression validates labels and shapes; balanced weights shift the decision", () => {
  const X: CsrMatrix = { rows: 4, cols: 1, indptr: Int32Array.from([0, 1, 2, 3, 4]), indices: Int32Array.from([0, 0, 0, 0]), values: Float64Array.from([1, 1, 1, 1]) };
  assert.throws(() => new LogisticRegression().fit(X, [0, 1, 2, 0], 2), /y\[2\] = 2/);
  assert.throws(() => new LogisticRegression().fit(X, [0, 1], 2), /4 rows but y has 2/);
  // identical inputs, 3:1 imbalance → unweighted predicts the majority, balanced is indifferent (p = 0.5)
  const plain = new LogisticRegression().fit(X, [0, 0, 0, 1], 2, { l2: 0 });
  assert.ok(Math.abs(plain.predictProba(X)[0] - 0.75) < 1e-4);
  const bal = new LogisticRegression().fit(X, [0, 0, 0, 1], 2, { l2: 0, classWeight: "balanced" });
  assert.ok(Math.abs(bal.predictProba(X)[0] - 0.5) < 1e-4);
  assert.throws(() => plain.predict({ ...X, cols: 2 }), /2 columns, model was fit on 1/);
});

test("classificationReport: hand-computed precision/recall/F1", () => {
  const r = classificationReport([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"]);
  assert.equal(r.accuracy, 3 / 5);
  assert.deepEqual(r.perClass.map((c) => [c.precision, c.recall, c.support]), [[0.5, 0.5, 2], [2 / 3, 1, 2], [0, 0, 1]]);
  assert.ok(Math.abs(r.macroF1 - (0.5 + 0.8 + 0) / 3) < 1e-12);
  assert.deepEqual(Array.from(r.confusion), [1, 1, 0, 0, 2, 0, 1, 0, 0]);
  assert.throws(() => classificationReport([0], [3], ["a"]), /yPred\[0\] = 3/);
});
