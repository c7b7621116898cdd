// Module: the PyTorch nn.Module contract. Parameters, buffers and submodules are found by walking the module's own
// fields (no registration calls); state-dict keys are the snake_case of the camelCase field names, so a TypeScript
// `selfAttn.inProjWeight` is PyTorch's `self_attn.in_proj_weight`.
import { Tensor } from "../tensor.js";
import { keep } from "../scope.js";
import { shapeStr } from "../shape.js";
import { noGrad } from "../autograd.js";
import type { DeviceName } from "../device.js";

const parameters = new WeakSet<Tensor>();

/** Mark a tensor as a trainable parameter (requiresGrad, kept out of tidy scopes). */
export function Parameter(t: Tensor, requiresGrad = true): Tensor {
  parameters.add(t);
  if (requiresGrad) t.requiresGrad_(true);
  return keep(t);
}
export function isParameter(t: unknown): t is Tensor { return t instanceof Tensor && parameters.has(t); }

/** camelCase field → PyTorch snake_case name (inProjWeight → in_proj_weight, linear1 → linear1). */
export function torchName(field: string): string {
  return field.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/([A-Z])([A-Z][a-z])/g, "$1_$2").toLowerCase();
}

export abstract class Module {
  training = true;
  /** Non-trainable state saved in the state dict (like register_buffer), by PyTorch name. */
  protected buffers = new Map<string, Tensor | null>();
  /** Buffers that are not written to the state dict (persistent=false). */
  protected transientBuffers = new Set<string>();

  abstract forward(...args: never[]): unknown;

  registerBuffer(name: string, t: Tensor | null, persistent = true): void {
    this.buffers.set(name, t ? keep(t) : null);
    if (!persistent) this.transientBuffers.add(name);
  }
  getBuffer(name: string): Tensor | null { return this.buffers.get(name) ?? null; }

  /** Direct submodules with their state-dict names. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of Object.entries(this)) if (v instanceof Module) out.push([this.childName(k), v]);
    return out;
  }
  children(): Module[] { return this.namedChildren().map(([, m]) => m); }

  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this.namedChildren()) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }
  modules(): Module[] { return this.namedModules().map(([, m]) => m); }

  /** Parameters owned directly by this module (not by children). */
  protected ownParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, v] of Object.entries(this)) if (isParameter(v)) out.push([torchName(k), v]);
    return out;
  }

  protected childName(field: string): string { return torchName(field); }

  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [mp, m] of this.namedModules(prefix)) {
      for (const [n, p] of m.ownParameters()) {
        if (seen.has(p)) continue; // shared (tied) parameters are listed once, like PyTorch
        seen.add(p);
        out.push([mp ? `${mp}.${n}` : n, p]);
      }
    }
    return out;
  }
  parameters(): Tensor[] { return this.namedParameters().map(([, p]) => p); }

  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [mp, m] of this.namedModules(prefix)) {
      for (const [n, b] of m.buffers) if (b && !m.transientBuffers.has(n)) out.push([mp ? `${mp}.${n}` : n, b]);
    }
    return out;
  }

  /** PyTorch-named parameters and persistent buffers. */
  stateDict(): Record<string, Tensor> {
    const sd: Record<string, Tensor> = {};
    for (const [n, p] of this.namedParameters()) sd[n] = p;
    for (const [n, b] of this.namedBuffers()) sd[n] = b;
    return sd;
  }

  /** Copy values in by PyTorch name. strict: every key must match and nothing may be missing. */
  loadStateDict(sd: Record<string, Tensor> | Map<string, Tensor>, opts: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    const strict = opts.strict ?? true;
    const entries = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !entries.has(k));
    const unexpectedKeys = [...entries.keys()].filter((k) => !(k in own));
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      throw new Error(`loadStateDict: ${missingKeys.length ? `missing keys: ${missingKeys.join(", ")}` : ""}` +
        `${missingKeys.length && unexpectedKeys.length ? "; " : ""}${unexpectedKeys.length ? `unexpected keys: ${unexpectedKeys.join(", ")}` : ""}`);
    }
    noGrad(() => {
      for (const [k, dst] of Object.entries(own)) {
        const src = entries.get(k);
        if (!src) continue;
        if (src.numel() !== dst.numel() || src.ndim !== dst.ndim || src.shape.some((d, i) => d !== dst.shape[i])) {
          throw new Error(`loadStateDict: "${k}" has shape ${shapeStr(src.shape)} in the state dict but ${shapeStr(dst.shape)} in the model`);
        }
        copyInto(dst, src);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Move every parameter and buffer to `device` in place, like torch's module.to(device): the same tensor objects (so
   * optimizers built before keep working), now holding device memory. CPU → device ("webgpu").
   */
  to(device: DeviceName): this {
    const seen = new Set<Tensor>();
    for (const m of this.modules()) {
      for (const [, p] of m.ownParameters()) if (!seen.has(p)) { seen.add(p); p._moveTo(device); }
      for (const [, b] of m.buffers) if (b && !seen.has(b)) { seen.add(b); b._moveTo(device); }
    }
    return this;
  }

  train(mode = true): this { for (const m of this.modules()) m.training = mode; return this; }
  eval(): this { return this.train(false); }

  apply(fn: (m: Module) => void): this { for (const m of this.modules().reverse()) fn(m); return this; }

  zeroGrad(): void { for (const p of this.parameters()) p.grad = null; }

  /** Number of trainable scalars. */
  numParameters(): number { return this.parameters().reduce((s, p) => s + p.numel(), 0); }

  toString(): string {
    const kids = this.namedChildren();
    const name = this.constructor.name + "(" + this.extraRepr();
    if (!kids.length) return name + ")";
    return name + "\n" + kids.map(([n, m]) => `  (${n}): ${m.toString().replace(/\n/g, "\n  ")}`).join("\n") + "\n)";
  }
  protected extraRepr(): string { return ""; }
}

/** Overwrite a (contiguous) tensor's values in place. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (!dst.isContiguous()) throw new Error("copyInto: destination must be contiguous");
  const flat = src.dtype === dst.dtype ? src.dataSync() : src.to(dst.dtype).dataSync();
  dst.storage.data.set(flat, dst.offset);
}
