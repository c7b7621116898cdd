// Classification metrics: confusion matrix, accuracy, per-class precision/recall/F1, macro-F1. Browser-safe.

export interface ClassReport {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** Number of true examples of this class. */
  support: number;
}

export interface ClassificationReport {
  accuracy: number;
  macroF1: number;
  perClass: ClassReport[];
  /** (C, C) row-major counts: confusion[true * C + predicted]. */
  confusion: Int32Array;
}

/** Metrics for integer labels in [0, classNames.length). Precision/recall/F1 of an empty class are 0. */
export function classificationReport(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  classNames: readonly string[],
): ClassificationReport {
  const C = classNames.length;
  if (yTrue.length !== yPred.length) throw new Error(`classificationReport: yTrue has ${yTrue.length} labels, yPred has ${yPred.length}`);
  if (yTrue.length === 0) throw new Error("classificationReport: no examples");
  const confusion = new Int32Array(C * C); // (C, C)
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i];
    const p = yPred[i];
    if (!(t >= 0 && t < C && Number.isInteger(t))) throw new RangeError(`yTrue[${i}] = ${t} not in [0, ${C})`);
    if (!(p >= 0 && p < C && Number.isInteger(p))) throw new RangeError(`yPred[${i}] = ${p} not in [0, ${C})`);
    confusion[t * C + p]++;
    if (t === p) correct++;
  }
  const perClass: ClassReport[] = classNames.map((name, c) => {
    let support = 0;
    let predicted = 0;
    for (let k = 0; k < C; k++) { support += confusion[c * C + k]; predicted += confusion[k * C + c]; }
    const tp = confusion[c * C + c];
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support };
  });
  const macroF1 = perClass.reduce((s, r) => s + r.f1, 0) / C;
  return { accuracy: correct / yTrue.length, macroF1, perClass, confusion };
}
