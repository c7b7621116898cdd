// Packed-weight cache of the Wasm backend: GEMM B operands (nn.Linear weights) kept in Wasm memory, already in the
// micro-kernel's panel layout, between calls — so repeated inference calls neither copy B out of the JavaScript heap
// nor re-pack it (for a 2304×768 in-projection: 7 MB copied, then read, transposed and written, on every call).
// The same contract as the native addon's cache (native/src/pack-cache.cc): the caller names B by an OperandKey
// (its storage: an id never reused for other data, a version that changes on every possible write), and an entry is
// served only for the same id, version, array, offset, leading dimension, shape and transpose.
//
// Admission: a packing is cached on the second use of the same (slot, version) — a weight used again unchanged —
// so weights rewritten before every use (training steps) or arrays made fresh for each call never take cache
// memory; a cached slot whose version changed is re-packed into its own block. Bounds: at most `limit` bytes
// (ATTNFLOW_PACK_CACHE_MB, default 256 MiB; setWasmPackCacheLimit); least recently used entries are evicted to make
// room, except those used within the last 2 × (entries) lookups (a model whose weights exceed the cap keeps the
// packings that fit instead of evicting each one just before its next use). Entries of a storage that was
// garbage-collected are dropped at the next lookup.
import type { OperandKey } from "../kernels.js";
import type { WasmArena } from "./arena.js";

export interface PackCacheInfo { entries: number; bytes: number; limit: number; hits: number; packs: number; admitted: number; evicted: number }

interface Entry {
  id: number; version: number; array: WeakRef<Float32Array> | Float32Array;
  addr: number; bytes: number; lastUse: number;
}

const SEEN_MAX = 1024;

function defaultLimit(): number {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = Number(env?.ATTNFLOW_PACK_CACHE_MB);
  return env?.ATTNFLOW_PACK_CACHE_MB !== undefined && env.ATTNFLOW_PACK_CACHE_MB !== "" && v >= 0 ? Math.floor(v * 1048576) : 256 << 20;
}

const weak = <T extends object>(x: T): WeakRef<T> | T => (typeof WeakRef === "function" ? new WeakRef(x) : x);
const deref = <T extends object>(x: WeakRef<T> | T): T | undefined => (typeof WeakRef === "function" && x instanceof WeakRef ? x.deref() : x as T);

export class WasmPackCache {
  private readonly entries = new Map<string, Entry>();
  /** Recent first sightings: slot → version. */
  private readonly seen = new Map<string, number>();
  private readonly dropped: number[] = [];
  private readonly registry: FinalizationRegistry<number> | null;
  private readonly watched = new WeakSet<OperandKey>();
  private clock = 0;
  private bytes = 0;
  private hits = 0; private packs = 0; private admitted = 0; private evicted = 0;

  constructor(private readonly arena: WasmArena, private limit = defaultLimit()) {
    this.registry = typeof FinalizationRegistry === "function" ? new FinalizationRegistry<number>((id) => { this.dropped.push(id); }) : null;
  }

  /**
   * The cache block for op(B) of these arguments: { addr, fill: true } when the caller must pack B into it now
   * (calling fillFailed(addr) if that throws), { addr, fill: false } when it holds the packing already; null when B
   * is not cached (then the caller packs into scratch memory as usual). Call right after arena.reset(), before any
   * scratch allocation.
   */
  lookup(key: OperandKey, B: Float32Array, bOff: number, ldb: number, N: number, K: number, transB: boolean, bytes: number): { addr: number; fill: boolean } | null {
    this.applyDrops();
    if (this.limit <= 0 || bytes > this.limit) return null;
    const slot = `${key.id}/${bOff}/${ldb}/${N}/${K}/${transB ? 1 : 0}`;
    const now = ++this.clock;
    const e = this.entries.get(slot);
    if (e && e.bytes === bytes && deref(e.array) === B) {
      e.lastUse = now;
      if (e.version === key.version) { this.hits++; return { addr: e.addr, fill: false }; }
      e.version = key.version;   // written since: re-pack into the same block
      this.packs++;
      return { addr: e.addr, fill: true };
    }
    if (e) this.remove(slot, e);   // another array or size under the same storage id (cannot happen for live storages)
    if (this.seen.get(slot) !== key.version) {
      this.seen.delete(slot);
      this.seen.set(slot, key.version);
      if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.keys().next().value!);
      return null;
    }
    // second sighting unchanged: admit, evicting least recently used entries not used within the protection window
    const protect = now - 2 * (this.entries.size + 1);
    if (this.bytes + bytes > this.limit) {
      const victims = [...this.entries].filter(([, v]) => v.lastUse < protect).sort((p, q) => p[1].lastUse - q[1].lastUse);
      let free = this.limit - this.bytes;
      const chosen: [string, Entry][] = [];
      for (const v of victims) { if (free >= bytes) break; chosen.push(v); free += v[1].bytes; }
      if (free < bytes) return null;
      for (const [s, v] of chosen) { this.remove(s, v); this.evicted++; }
    }
    this.seen.delete(slot);
    const addr = this.arena.allocPersistent(bytes);
    this.entries.set(slot, { id: key.id, version: key.version, array: weak(B), addr, bytes, lastUse: now });
    this.bytes += bytes;
    this.admitted++; this.packs++;
    if (this.registry && !this.watched.has(key)) { this.registry.register(key, key.id); this.watched.add(key); }
    return { addr, fill: true };
  }

  /** The packing into addr did not complete: forget that entry. */
  fillFailed(addr: number): void {
    for (const [s, e] of this.entries) if (e.addr === addr) { this.remove(s, e); return; }
  }

  info(): PackCacheInfo {
    return { entries: this.entries.size, bytes: this.bytes, limit: this.limit, hits: this.hits, packs: this.packs, admitted: this.admitted, evicted: this.evicted };
  }

  /** Cap the cache's bytes (0 disables it); entries beyond the cap are freed at once (between kernel calls only). */
  setLimit(bytes: number): void {
    if (!(bytes >= 0)) throw new RangeError(`setWasmPackCacheLimit: bytes must be a non-negative number, got ${bytes}`);
    this.limit = Math.floor(bytes);
    this.arena.reset();
    const byAge = [...this.entries].sort((p, q) => p[1].lastUse - q[1].lastUse);
    for (const [s, e] of byAge) { if (this.bytes <= this.limit) break; this.remove(s, e); this.evicted++; }
  }

  /** Free every entry (between kernel calls only). */
  clear(): void {
    this.arena.reset();
    for (const [s, e] of [...this.entries]) this.remove(s, e);
    this.seen.clear();
  }

  private applyDrops(): void {
    while (this.dropped.length) {
      const id = this.dropped.pop()!;
      for (const [s, e] of [...this.entries]) if (e.id === id) this.remove(s, e);
    }
  }

  private remove(slot: string, e: Entry): void {
    this.entries.delete(slot);
    this.bytes -= e.bytes;
    this.arena.freePersistent(e.addr, e.bytes);
  }
}
