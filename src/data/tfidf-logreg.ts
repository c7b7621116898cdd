// Non-neural text-classification baseline: TF-IDF (sublinear tf, L2-normalised, word unigrams + bigrams)
// followed by multinomial logistic regression (L2, full-batch L-BFGS, fixed iteration budget).
// Deterministic: no randomness anywhere, so the same data gives the same numbers on every machine.

import { LogisticRegression, type LogRegOptions } from "./logreg.js";
import { TfidfVectorizer, type TfidfOptions } from "./tfidf.js";

export { TfidfVectorizer, type TfidfOptions, type CsrMatrix, documentTerms } from "./tfidf.js";
export { LogisticRegression, type LogRegOptions, lbfgs, softmaxLoss } from "./logreg.js";

export class TfidfLogReg {
  readonly vectorizer: TfidfVectorizer;
  readonly model = new LogisticRegression();
  private numClasses = 0;

  constructor(
    tfidf: TfidfOptions = {},
    private readonly logreg: LogRegOptions = {},
  ) {
    this.vectorizer = new TfidfVectorizer(tfidf);
  }

  fit(texts: readonly string[], labels: ArrayLike<number>, numClasses?: number): this {
    if (texts.length !== labels.length) throw new Error(`TfidfLogReg.fit: ${texts.length} texts but ${labels.length} labels`);
    let maxLabel = -1;
    for (let i = 0; i < labels.length; i++) maxLabel = Math.max(maxLabel, labels[i]);
    this.numClasses = numClasses ?? maxLabel + 1;
    const X = this.vectorizer.fitTransform(texts);
    this.model.fit(X, labels, this.numClasses, this.logreg);
    return this;
  }

  /** (N, C) row-major probabilities. */
  predictProba(texts: readonly string[]): Float64Array {
    return this.model.predictProba(this.vectorizer.transform(texts));
  }

  /** (N,) predicted class ids. */
  predict(texts: readonly string[]): Int32Array {
    return this.model.predict(this.vectorizer.transform(texts));
  }
}
