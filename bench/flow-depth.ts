// Work per flow row as a function of depth (issue 16, "fewer layers is slower"): for each L, the first L layers of
// a capacity stack, one source row (token 0 of layer L) to all T inputs; prints time and the solver's work counters
// (pushes, relabels, global relabels, gaps, arc-scan entries) per row.
//   node dist/bench/flow-depth.js [--workload synthetic|causal|stack12|uniform] [--t 128] [--layers 2,3,4,6,8,12] [--repeats 3]
import { pathToFileURL } from "node:url";
import { type MatrixStack, matrixStack } from "../src/explain/attention-stack.js";
import { LayeredMaxFlow } from "../src/explain/maxflow.js";
import { prepareLayers } from "../src/explain/attention-stack.js";
import { flowWorkload } from "./cases/flow.js";
import { classifierAttention, uniformAttention } from "./cases/flow-real.js";

function parse(argv: string[]) {
  const o = { workload: "synthetic", t: 128, layers: [2, 3, 4, 6, 8, 12], repeats: 3, rows: [0] as number[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--workload") o.workload = argv[++i];
    else if (a === "--t") o.t = Number(argv[++i]);
    else if (a === "--layers") o.layers = argv[++i].split(",").map(Number);
    else if (a === "--repeats") o.repeats = Number(argv[++i]);
    else if (a === "--rows") o.rows = argv[++i].split(",").map(Number);
    else throw new Error(`unknown argument ${a}; usage: flow-depth [--workload synthetic|causal|stack12|uniform] [--t T] [--layers 2,4,12] [--rows 0,5] [--repeats N]`);
  }
  return o;
}

export async function depthStack(workload: string, T: number): Promise<MatrixStack> {
  if (workload === "synthetic") return flowWorkload(T);
  if (workload === "causal") return flowWorkload(T, true);
  if (workload === "uniform") return prepareLayers(uniformAttention(12, 12, T));
  if (workload === "stack12") {
    const stacks = [];
    for (const f of ["computers", "science", "politics"]) stacks.push(await classifierAttention(f));
    const H = stacks[0].heads, TT = stacks[0].tokens ** 2, data = new Float32Array(stacks.length * 4 * H * TT);
    stacks.forEach((s, k) => data.set(s.data, k * s.layers * H * TT));
    return prepareLayers({ data, layers: 12, heads: H, tokens: stacks[0].tokens });
  }
  throw new Error(`unknown workload ${workload}`);
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const full = await depthStack(o.workload, o.t);
  const T = full.tokens;
  console.log(`workload ${o.workload}, T ${T}, rows ${o.rows.join(",")} of layer L; per row: min wall of ${o.repeats}, counters`);
  console.log("L\tms/row\tpushes\trelabels\tglobals\tgaps\tscans\tat-once\tat-bound\tbfs-scans");
  for (const L of o.layers) {
    const res = matrixStack(L, T, full.data.subarray(0, L * T * T));
    const s = new LayeredMaxFlow(res);
    const out = new Float64Array(T);
    for (const r of o.rows) s.flowsFrom(L, r, out); // warm-up
    let best = Infinity;
    const c0 = { p: s.pushes, r: s.relabels, g: s.globals, gp: s.gaps, sc: s.scans, o: s.atOnce, b: s.atBound, bf: s.bfsScans };
    for (let k = 0; k < o.repeats; k++) {
      const t0 = performance.now();
      for (const r of o.rows) s.flowsFrom(L, r, out);
      best = Math.min(best, performance.now() - t0);
    }
    const n = o.repeats * o.rows.length;
    const per = (a: number, b: number) => ((a - b) / n).toFixed(0);
    console.log(`${L}\t${(best / o.rows.length).toFixed(2)}\t${per(s.pushes, c0.p)}\t${per(s.relabels, c0.r)}\t${per(s.globals, c0.g)}\t${per(s.gaps, c0.gp)}\t${per(s.scans, c0.sc)}\t${per(s.atOnce, c0.o)}\t${per(s.atBound, c0.b)}\t${per(s.bfsScans, c0.bf)}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main().catch((e) => { console.error(e); process.exit(1); });
