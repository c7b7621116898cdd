// Reverse-mode autograd: every differentiable op records a node {inputs, backward}; backward() walks the graph in
// reverse topological order, summing the gradients that reach each tensor (micrograd's closure-per-op design).
import type { Tensor } from "./tensor.js";

export interface GradNode {
  name: string;
  inputs: Tensor[];
  /** Given dL/d(output), return dL/d(input_i) (null where an input needs none). Runs with grad mode off. */
  backward: (g: Tensor) => (Tensor | null)[];
  /** Tensors the backward closure reads (besides g): kept alive by tidy() while the graph is reachable. */
  saved: Tensor[];
}

let gradEnabled = true;

export function isGradEnabled(): boolean { return gradEnabled; }

/** Run fn without recording a graph (like torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try { return fn(); } finally { gradEnabled = prev; }
}

/** Run fn with grad recording forced on or off. */
export function setGradEnabled<T>(on: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = on;
  try { return fn(); } finally { gradEnabled = prev; }
}

/** Attach a grad node to `out` when grad mode is on and any input requires grad. */
export function record(out: Tensor, name: string, inputs: Tensor[], backward: GradNode["backward"], saved: Tensor[] = []): Tensor {
  if (!gradEnabled) return out;
  if (!inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  out._node = { name, inputs, backward, saved };
  return out;
}

/** Reverse topological order of the graph below `root` (root first). */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // iterative DFS: graphs of deep models overflow a recursive one
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t._node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) { seen.add(c); stack.push([c, 0]); }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

export function runBackward(root: Tensor, seed: Tensor, retainGraph: boolean): void {
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, seed);
  // Gradient temporaries are created here and never seen by the user (except the seed and retained grads), so they
  // are disposed as soon as they are consumed; views keep their storage alive through its user count.
  const temp = (t: Tensor) => t !== seed && !t.retainsGrad;
  noGrad(() => {
    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const node = t._node;
      if (!node) {
        // a leaf: accumulate into .grad (PyTorch semantics: grads add up across backward calls)
        if (t.requiresGrad) accumulateGrad(t, g);
        if (temp(g)) g.dispose();
        continue;
      }
      if (t.retainsGrad) accumulateGrad(t, g);
      const inGrads = node.backward(g);
      for (let i = 0; i < node.inputs.length; i++) {
        const x = node.inputs[i];
        let gx = inGrads[i];
        // each pending gradient must be its own tensor object: alias (a view sharing storage, counted by the
        // storage's user count) when a backward hands out g itself or the same tensor for several inputs
        if (gx && (gx === g || inGrads.indexOf(gx) !== i)) gx = gx.detach();
        if (!gx || !x.requiresGrad) continue;
        if (gx.shape.length !== x.shape.length || gx.shape.some((d, k) => d !== x.shape[k])) {
          throw new Error(`autograd: ${node.name} produced a gradient of shape [${gx.shape}] for an input of shape [${x.shape}]`);
        }
        const prev = grads.get(x);
        if (prev) {
          grads.set(x, prev.add(gx));
          if (temp(prev)) prev.dispose();
          if (temp(gx)) gx.dispose();
        } else grads.set(x, gx);
      }
      if (temp(g)) g.dispose();
      if (!retainGraph) t._node = null;
    }
  });
}

function accumulateGrad(t: Tensor, g: Tensor): void {
  if (!t.grad) { t.grad = g.clone(); return; }
  t.grad.addInPlace(g);
}
