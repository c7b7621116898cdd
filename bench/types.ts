// Contract shared by every benchmark case file under bench/cases/*.ts.
// bench/run.ts finds case files by scanning that folder (no registration list): each file
// exports `cases: BenchCase[]`. A case runs attnflow and its peers side by side on the same
// inputs and reports one row per implementation.

export interface BenchRow {
  impl: string;              // e.g. "attnflow-native", "onnxruntime-node-2t", "pytorch-cpu"
  medianMs: number | null;   // null when the implementation could not run (reason in `note`)
  minMs?: number;
  maxMs?: number;
  gflops?: number;           // achieved GFLOP/s when the case has a FLOP count
  peakMemMB?: number;        // for memory cases
  maxAbsDiff?: number;       // cross-check of this impl's output against attnflow's
  soak?: SoakRow;            // for soak cases: RSS over a long loop without tidy()
  note?: string;
}

export interface SoakRow { warmupSteps: number; steps: number; rssWarmupMB: number; rssEndMB: number; rssMaxMB: number }

export interface BenchResult {
  case: string;              // unique case name, e.g. "mha-b1-t2048"
  group: string;             // e.g. "mha", "sdpa", "train", "memory", "flow"
  description: string;
  flops?: number;
  rows: BenchRow[];
  // ratio of attnflow's best time to the best peer's time (< 1 means attnflow is faster)
  ratioToBestPeer?: number | null;
  // impl whose output the rows' maxAbsDiff compares against (attnflow's, or a peer's when
  // attnflow could not run, e.g. "pytorch-cpu (no attnflow output)")
  checkedAgainst?: string;
}

export interface BenchCase {
  name: string;
  group: string;
  description: string;
  run(opts: { repeats: number; quick: boolean }): Promise<BenchResult>;
}
