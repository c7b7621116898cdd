// TF-IDF vectoriser over word unigrams (+ n-grams) producing CSR sparse rows. Browser-safe.
//
//   tf(t, d)  = 1 + ln(count(t, d))                      (sublinear; raw count when sublinearTf = false)
//   idf(t)    = ln((1 + N) / (1 + df(t))) + 1             (smoothed, as in common toolkits)
//   x(d)      = tf * idf, then divided by its L2 norm      (rows with no known term stay all-zero)

import { wordTokenize } from "./tokenizer.js";

/** Compressed sparse rows: row r holds indices[indptr[r] .. indptr[r+1]) with matching values. */
export interface CsrMatrix {
  rows: number;
  cols: number;
  indptr: Int32Array; // (rows + 1,)
  indices: Int32Array; // (nnz,) column ids, ascending within a row
  values: Float64Array; // (nnz,)
}

export interface TfidfOptions {
  /** Largest n-gram length (1 = unigrams, 2 = unigrams + bigrams; default 2). */
  ngramMax?: number;
  /** Drop terms in fewer than this many training documents (default 2). */
  minDf?: number;
  /** Keep at most this many terms, highest document frequency first (ties: code-point order). */
  maxFeatures?: number;
  /** Use 1 + ln(tf) instead of the raw count (default true). */
  sublinearTf?: boolean;
}

const HAS_WORD = /[\p{L}\p{N}]/u;

/** Terms of a document: lowercased word tokens (punctuation dropped) and their n-grams joined by " ". */
export function documentTerms(text: string, ngramMax: number): string[] {
  const words = wordTokenize(text).filter((t) => HAS_WORD.test(t));
  const terms = [...words];
  for (let n = 2; n <= ngramMax; n++) {
    for (let i = 0; i + n <= words.length; i++) terms.push(words.slice(i, i + n).join(" "));
  }
  return terms;
}

export class TfidfVectorizer {
  readonly ngramMax: number;
  readonly minDf: number;
  readonly maxFeatures: number | undefined;
  readonly sublinearTf: boolean;
  /** Terms in column order (code-point sorted). Empty until fit(). */
  vocabulary: string[] = [];
  /** (cols,) idf weight per column. */
  idf: Float64Array = new Float64Array(0);
  private index = new Map<string, number>();

  constructor(opts: TfidfOptions = {}) {
    this.ngramMax = opts.ngramMax ?? 2;
    this.minDf = opts.minDf ?? 2;
    this.maxFeatures = opts.maxFeatures;
    this.sublinearTf = opts.sublinearTf ?? true;
    if (!(Number.isInteger(this.ngramMax) && this.ngramMax >= 1)) throw new RangeError(`ngramMax must be an integer >= 1, got ${this.ngramMax}`);
    if (!(this.minDf >= 1)) throw new RangeError(`minDf must be >= 1, got ${this.minDf}`);
  }

  fit(texts: readonly string[]): this {
    if (texts.length === 0) throw new Error("TfidfVectorizer.fit: no documents");
    const df = new Map<string, number>();
    for (const text of texts) for (const t of new Set(documentTerms(text, this.ngramMax))) df.set(t, (df.get(t) ?? 0) + 1);
    let kept = [...df].filter(([, c]) => c >= this.minDf);
    if (this.maxFeatures !== undefined && kept.length > this.maxFeatures) {
      kept.sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]));
      kept = kept.slice(0, this.maxFeatures);
    }
    kept.sort((a, b) => cmp(a[0], b[0]));
    if (kept.length === 0) throw new Error(`TfidfVectorizer.fit: no term reaches minDf=${this.minDf} in ${texts.length} documents`);
    this.vocabulary = kept.map(([t]) => t);
    this.index = new Map(this.vocabulary.map((t, i) => [t, i]));
    const n = texts.length;
    this.idf = Float64Array.from(kept, ([, c]) => Math.log((1 + n) / (1 + c)) + 1);
    return this;
  }

  transform(texts: readonly string[]): CsrMatrix {
    if (this.vocabulary.length === 0) throw new Error("TfidfVectorizer.transform called before fit()");
    const indptr = new Int32Array(texts.length + 1);
    const idx: number[] = [];
    const val: number[] = [];
    texts.forEach((text, r) => {
      const counts = new Map<number, number>();
      for (const t of documentTerms(text, this.ngramMax)) {
        const c = this.index.get(t);
        if (c !== undefined) counts.set(c, (counts.get(c) ?? 0) + 1);
      }
      const cols = [...counts.keys()].sort((a, b) => a - b);
      let norm2 = 0;
      const start = val.length;
      for (const c of cols) {
        const tf = counts.get(c)!;
        const w = (this.sublinearTf ? 1 + Math.log(tf) : tf) * this.idf[c];
        idx.push(c);
        val.push(w);
        norm2 += w * w;
      }
      const inv = norm2 > 0 ? 1 / Math.sqrt(norm2) : 0;
      for (let k = start; k < val.length; k++) val[k] *= inv;
      indptr[r + 1] = val.length;
    });
    return { rows: texts.length, cols: this.vocabulary.length, indptr, indices: Int32Array.from(idx), values: Float64Array.from(val) };
  }

  fitTransform(texts: readonly string[]): CsrMatrix {
    return this.fit(texts).transform(texts);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
