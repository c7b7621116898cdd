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
  /** Signs that an explanation is unreliable, per layer (see explanationDiagnostics); absent without raw/flow. */
  diagnostics?: ExplanationDiagnostics;
}

/**
 * Per layer, over the non-special positions: `uniformity` = entropy of the raw attention row (renormalised) / log n
 * (1 = uniform attention: a ranking by attention then comes from small deviations); `flowTies` = the largest share
 * of positions whose flow equals one value (relative tolerance 1e-5): flow saturation, inputs capped by one
 * bottleneck, which carry no ranking among themselves (1 = all tied).
 */
export interface ExplanationDiagnostics { uniformity?: number[]; flowTies?: number[] }

/** Thresholds above which explain / eval-faithfulness call an explanation unreliable. */
export const UNRELIABLE = { uniformity: 0.97, flowTies: 0.5 } as const;

function normalisedEntropy(v: readonly number[]): number {
  const s = v.reduce((a, x) => a + Math.max(0, x), 0);
  if (v.length < 2 || !(s > 0)) return NaN;
  let h = 0;
  for (const x of v) { const p = Math.max(0, x) / s; if (p > 0) h -= p * Math.log(p); }
  return h / Math.log(v.length);
}

function largestTie(v: readonly number[]): number {
  if (v.length < 2) return NaN;
  const xs = [...v].sort((a, b) => a - b);
  let best = 1, run = 1;
  for (let i = 1; i < xs.length; i++) {
    const tol = 1e-5 * Math.max(Math.abs(xs[i]), Math.abs(xs[i - 1]), 1e-12);
    run = Math.abs(xs[i] - xs[i - 1]) <= tol ? run + 1 : 1;
    best = Math.max(best, run);
  }
  return best / v.length;
}

/** Uniformity of raw attention and flow ties per layer, over the non-special positions of one explanation. */
export function explanationDiagnostics(e: Explanation): ExplanationDiagnostics {
  const skip = new Set(e.special);
  const keep = e.tokens.map((_, i) => i).filter((i) => !skip.has(i));
  const pick = (v: number[]) => keep.map((i) => v[i]);
  const d: ExplanationDiagnostics = {};
  if (e.methods.raw) d.uniformity = e.methods.raw.perLayer.map((v) => normalisedEntropy(pick(v)));
  if (e.methods.flow) d.flowTies = e.methods.flow.perLayer.map((v) => largestTie(pick(v)));
  return d;
}

/** Plain-language warnings for one explanation (empty when none applies); `layer` defaults to the last. */
export function unreliableWarnings(d: ExplanationDiagnostics, layer?: number): string[] {
  const out: string[] = [];
  const at = (v: number[] | undefined) => (v && v.length ? v[layer ?? v.length - 1] : NaN);
  const u = at(d.uniformity), t = at(d.flowTies);
  if (u >= UNRELIABLE.uniformity) out.push(`raw attention is near-uniform (entropy ${u.toFixed(3)} of the maximum): its ranking comes from small deviations`);
  if (t >= UNRELIABLE.flowTies) out.push(`flow is saturated: ${(100 * t).toFixed(0)} % of the tokens share one value (a common bottleneck), so flow does not rank them`);
  return out;
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
  return { corr, positions: keep.length, diagnostics: explanationDiagnostics(e) };
}

export interface FaithfulnessCell { mean: number; sd: number; n: number }

export interface FaithfulnessSummary {
  inputs: number;
  layers: number;
  methods: FaithfulnessMethod[];
  references: FaithfulnessReference[];
  /** cells[method][reference][layer]: mean ± sample sd over the inputs where the correlation is defined (n of them). */
  cells: Partial<Record<FaithfulnessMethod, Partial<Record<FaithfulnessReference, FaithfulnessCell[]>>>>;
  /** Per layer: mean uniformity / flow ties over the inputs, and the share of inputs past the UNRELIABLE threshold. */
  reliability?: { uniformity?: { mean: number[]; flagged: number[] }; flowTies?: { mean: number[]; flagged: number[] } };
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
  const rel: NonNullable<FaithfulnessSummary["reliability"]> = {};
  for (const k of ["uniformity", "flowTies"] as const) {
    const rows = samples.map((x) => x.diagnostics?.[k]).filter((v): v is number[] => !!v);
    if (!rows.length) continue;
    const Ld = Math.max(...rows.map((r) => r.length));
    const mean: number[] = [], flagged: number[] = [];
    for (let l = 0; l < Ld; l++) {
      const xs = rows.map((r) => r[l]).filter((x) => Number.isFinite(x));
      mean.push(xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
      flagged.push(xs.length ? xs.filter((x) => x >= UNRELIABLE[k]).length / xs.length : NaN);
    }
    rel[k] = { mean, flagged };
  }
  return { inputs: samples.length, layers, methods, references, cells, ...(Object.keys(rel).length ? { reliability: rel } : {}) };
}

/** Lines on how far the explanations can be trusted (near-uniform attention, saturated flow), per layer. */
export function formatReliability(s: FaithfulnessSummary): string {
  const r = s.reliability;
  if (!r) return "";
  const f = (v: number[]) => v.map((x) => (Number.isFinite(x) ? x.toFixed(2) : "—")).join(" ");
  const pc = (v: number[]) => v.map((x) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : "—")).join(" ");
  const out = ["Reliability, per layer L0..:"];
  if (r.uniformity) out.push(`  raw attention entropy / max (1 = uniform): mean ${f(r.uniformity.mean)}; inputs >= ${UNRELIABLE.uniformity}: ${pc(r.uniformity.flagged)}`);
  if (r.flowTies) out.push(`  flow: largest share of tokens tied at one value: mean ${f(r.flowTies.mean)}; inputs >= ${UNRELIABLE.flowTies}: ${pc(r.flowTies.flagged)}`);
  return out.join("\n");
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
