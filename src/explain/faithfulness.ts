// Faithfulness of attention-based explanations (the evaluation of Abnar & Zuidema 2020, tables 1-2): for each input,
// the Spearman rank correlation between a method's per-token importance and a reference attribution — blank-out
// (score drop when the token is occluded) and input × gradient — over the non-special positions; then the mean and
// sample standard deviation over inputs, per method and per layer. Browser-safe, pure numbers.

import type { Explanation } from "./explain-run.js";
import { spearman } from "./importance.js";

export const FAITHFULNESS_METHODS = ["raw", "rollout", "flow", "grad"] as const;
export const FAITHFULNESS_REFERENCES = ["blankout", "inputgrad"] as const;
export type FaithfulnessMethod = (typeof FAITHFULNESS_METHODS)[number];
export type FaithfulnessReference = (typeof FAITHFULNESS_REFERENCES)[number];

/** Correlations of one input: corr[method][reference][layer] (NaN where undefined, e.g. a constant vector). */
export interface FaithfulnessSample {
  corr: Partial<Record<FaithfulnessMethod, Partial<Record<FaithfulnessReference, number[]>>>>;
  /** Number of positions compared (non-special). */
  positions: number;
}

/**
 * Spearman correlations of every attention method present in `e` (at every layer, from perLayer) against every
 * reference present (blankout / inputgrad), over positions not in e.special.
 */
export function faithfulnessOf(e: Explanation): FaithfulnessSample {
  const skip = new Set(e.special);
  const keep = e.tokens.map((_, i) => i).filter((i) => !skip.has(i));
  const pick = (v: number[]) => keep.map((i) => v[i]);
  const corr: FaithfulnessSample["corr"] = {};
  for (const m of FAITHFULNESS_METHODS) {
    const r = e.methods[m];
    if (!r) continue;
    const row: Partial<Record<FaithfulnessReference, number[]>> = {};
    for (const ref of FAITHFULNESS_REFERENCES) {
      const refRes = e.methods[ref];
      if (!refRes) continue;
      const b = pick(refRes.importance);
      row[ref] = r.perLayer.map((v) => (keep.length < 2 ? NaN : spearman(pick(v), b)));
    }
    corr[m] = row;
  }
  return { corr, positions: keep.length };
}

export interface FaithfulnessCell { mean: number; sd: number; n: number }

export interface FaithfulnessSummary {
  inputs: number;
  layers: number;
  methods: FaithfulnessMethod[];
  references: FaithfulnessReference[];
  /** cells[method][reference][layer]: mean ± sample sd over the inputs where the correlation is defined (n of them). */
  cells: Partial<Record<FaithfulnessMethod, Partial<Record<FaithfulnessReference, FaithfulnessCell[]>>>>;
}

/** Mean and sample standard deviation (n - 1) per cell, ignoring NaN correlations. */
export function summariseFaithfulness(samples: readonly FaithfulnessSample[]): FaithfulnessSummary {
  const methods = FAITHFULNESS_METHODS.filter((m) => samples.some((s) => s.corr[m]));
  const references = FAITHFULNESS_REFERENCES.filter((r) => samples.some((s) => methods.some((m) => s.corr[m]?.[r])));
  let layers = 0;
  for (const s of samples) for (const m of methods) for (const r of references) layers = Math.max(layers, s.corr[m]?.[r]?.length ?? 0);
  const cells: FaithfulnessSummary["cells"] = {};
  for (const m of methods) {
    cells[m] = {};
    for (const r of references) {
      cells[m]![r] = Array.from({ length: layers }, (_, l) => {
        const xs = samples.map((s) => s.corr[m]?.[r]?.[l]).filter((x): x is number => x !== undefined && Number.isFinite(x));
        const n = xs.length;
        const mean = n ? xs.reduce((a, b) => a + b, 0) / n : NaN;
        const sd = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) * (x - mean), 0) / (n - 1)) : n === 1 ? 0 : NaN;
        return { mean, sd, n };
      });
    }
  }
  return { inputs: samples.length, layers, methods, references, cells };
}

const REF_TITLE: Record<FaithfulnessReference, string> = {
  blankout: "blank-out (score drop when a token is occluded)",
  inputgrad: "input × gradient (|Σ_d x·∂score/∂x| per token)",
};

/** Plain-text tables, one per reference: rows = methods, columns = layers (L0 = first), cells "mean ± sd". */
export function formatFaithfulnessTable(s: FaithfulnessSummary, o: { digits?: number } = {}): string {
  const digits = o.digits ?? 2;
  const fmt = (c: FaithfulnessCell | undefined) => {
    if (!c || !Number.isFinite(c.mean)) return "—";
    const t = `${c.mean.toFixed(digits)} ± ${c.sd.toFixed(digits)}`;
    return c.n < s.inputs ? `${t} (n=${c.n})` : t;
  };
  const out: string[] = [];
  for (const r of s.references) {
    const header = ["method", ...Array.from({ length: s.layers }, (_, l) => `L${l}`)];
    const body = s.methods.map((m) => [m, ...Array.from({ length: s.layers }, (_, l) => fmt(s.cells[m]?.[r]?.[l]))]);
    const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c].length)));
    const line = (row: string[]) => row.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join("  ");
    out.push(`Spearman correlation with ${REF_TITLE[r]}, mean ± sd over ${s.inputs} input${s.inputs === 1 ? "" : "s"}:`);
    out.push(line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line), "");
  }
  if (!s.references.length) out.push("no reference attribution (blankout / inputgrad) was computed");
  return out.join("\n").trimEnd();
}

/**
 * Abnar & Zuidema 2020, Table 1: Spearman correlation with blank-out, per layer (L1..L6), of raw attention, rollout and
 * flow from the [CLS] position, on subject–verb agreement (6-layer, 8-head, hidden-128 encoder; 2,000 test sentences).
 */
export const ABNAR_ZUIDEMA_TABLE1: Readonly<Record<"raw" | "rollout" | "flow", readonly number[]>> = {
  raw: [0.69, 0.10, -0.11, -0.09, 0.20, 0.29],
  rollout: [0.32, 0.38, 0.51, 0.62, 0.70, 0.71],
  flow: [0.32, 0.44, 0.70, 0.70, 0.71, 0.70],
};

/**
 * Our blank-out correlations beside the paper's Table 1: for each of raw / rollout / flow, a row "ours" (mean over the
 * inputs) and a row "A&Z" with the published numbers, layers L1.. as columns (our layer l = the paper's L(l+1)).
 */
export function formatPaperComparison(s: FaithfulnessSummary, paper: Readonly<Record<string, readonly number[]>> = ABNAR_ZUIDEMA_TABLE1): string {
  const cols = Math.max(s.layers, ...Object.values(paper).map((v) => v.length));
  const header = ["method", "source", ...Array.from({ length: cols }, (_, l) => `L${l + 1}`)];
  const rows: string[][] = [];
  for (const m of ["raw", "rollout", "flow"] as const) {
    const ours = s.cells[m]?.blankout;
    if (!ours && !paper[m]) continue;
    rows.push([m, "ours", ...Array.from({ length: cols }, (_, l) => (ours?.[l] && Number.isFinite(ours[l].mean) ? ours[l].mean.toFixed(2) : "—"))]);
    rows.push(["", "A&Z", ...Array.from({ length: cols }, (_, l) => (paper[m]?.[l] !== undefined ? paper[m][l].toFixed(2) : "—"))]);
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((x, c) => (c < 2 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join("  ");
  return [
    `Beside Abnar & Zuidema 2020, Table 1 (Spearman with blank-out, mean over inputs; ours over ${s.inputs}, theirs over 2,000):`,
    line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line),
  ].join("\n");
}
