// What each peer adapter returns to the harness, one PeerRun per implementation row.
import type { MeasurePolicy } from "./measure.js";

export interface PeerRun {
  impl: string;           // row name, e.g. "onnxruntime-node-2t"
  timesMs?: number[];     // samples; absent when the implementation did not run
  output?: Float32Array;  // canonical-layout output for the cross-check
  note?: string;          // variant chosen, why it did not run, ...
}

export interface PeerContext {
  policy: MeasurePolicy;
  /** Non-null when `impl` should be skipped (estimated too slow for --max-run-s). */
  skipReason(impl: string): string | null;
  log(msg: string): void;
}

export function errorText(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.split("\n")[0].slice(0, 200);
}
