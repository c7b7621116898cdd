// Browser-safe data plumbing: IDX parsing, fortune corpora, tokenizers, the dates seq2seq task,
// and the TF-IDF + logistic-regression baseline. Node file loaders live in src/node/datasets.ts.
export * from "./hash.js";
export * from "./idx.js";
export * from "./tokenizer.js";
export * from "./fortunes.js";
export * from "./dates.js";
export * from "./tfidf.js";
export * from "./logreg.js";
export * from "./metrics.js";
export { TfidfLogReg } from "./tfidf-logreg.js";
