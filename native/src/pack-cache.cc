// Packed-weight cache (see pack-cache.h).
//
// Correctness: an entry is served only when the caller's key (storage id, version), the source pointer, ldb, N, K,
// transB and the kernel variant all match what it was packed from. The id is never reused for other data and the
// version changes on every possible write (the caller's contract, src/storage.ts), so a weight updated in place,
// freed, or replaced by another array at the same address is never served from a stale packing. A slot whose
// version changed is re-packed into its own buffer (no allocation: training keeps its packings warm).
//
// Admission: a packing is cached on the second use of the same (slot, version) — a weight used again unchanged.
// A first sighting only goes into a ring of recent sightings, so weights that change before every use (training
// steps) or tensors made fresh for each call never allocate cache memory (fresh memory costs ~4 ms/MB to touch).
//
// Bounds: the total size is capped (ATTNFLOW_PACK_CACHE_MB, default 1/16 of physical memory within 256 MiB…2 GiB;
// setPackCacheLimit); least recently used
// entries are evicted to make room, and a packing larger than the cap is never cached. The JS side drops the
// entries of a storage when it is garbage-collected (packCacheDrop).
#include "pack-cache.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "napi-args.h"

namespace af {
namespace {

// What a packing was made from. A slot is one B operand of one storage (its address, shape and variant); the
// version says which contents of that slot were packed.
struct Source {
  double id = -1, version = 0;
  const KernelTable* table = nullptr;
  const float* B = nullptr;
  int64_t ldb = 0, N = 0, K = 0;
  bool transB = false;
  bool sameSlot(const Source& o) const {
    return id == o.id && table == o.table && B == o.B && ldb == o.ldb && N == o.N && K == o.K && transB == o.transB;
  }
  bool sameData(const Source& o) const { return sameSlot(o) && version == o.version; }
};

struct Entry {
  Source src;
  float* packed;
  size_t bytes;
  uint64_t lastUse;
};

constexpr size_t kSeenRing = 1024;  // recent first sightings (more than the linear layers of any one forward pass)

void* bigAlloc(size_t bytes) {
  // 2 MiB alignment for big packings so transparent huge pages can back them (first touch of 4 KiB pages is slow)
  const size_t align = bytes >= (size_t(2) << 20) ? (size_t(2) << 20) : 64;
  void* p = nullptr;
  if (posix_memalign(&p, align, (bytes + 63) & ~size_t(63)) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align > 64) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

size_t defaultLimit() {
  if (const char* e = std::getenv("ATTNFLOW_PACK_CACHE_MB")) {
    char* end = nullptr;
    double v = std::strtod(e, &end);
    if (end != e && *end == '\0' && v >= 0) return (size_t)(v * 1048576.0);
  }
  // 1/16 of physical memory, at least 256 MiB and at most 2 GiB: a BERT-base (340 MB of linear weights) or a
  // 12-layer 768-wide decoder keeps every packing on an 8 GB machine (512 MiB), and a cap below a model's weights
  // costs every pass a re-pack (a transpose) of the weights that did not fit.
  size_t lo = size_t(256) << 20, hi = size_t(2048) << 20, cap = lo;
#if defined(__unix__) || defined(__APPLE__)
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) cap = (size_t)((double)pages * (double)page / 16.0);
#endif
  return cap < lo ? lo : cap > hi ? hi : cap;
}

struct Cache {
  std::vector<Entry> entries;
  std::vector<Source> seen = std::vector<Source>(kSeenRing);
  size_t seenNext = 0;
  size_t bytes = 0, limit = defaultLimit();
  uint64_t hits = 0, packs = 0, admitted = 0, evicted = 0;
  uint64_t lookups = 0;  // every lookup of a packable B (hit or miss): the age of an entry is counted in these

  ~Cache() { clear(); }
  void clear() {
    for (auto& e : entries) std::free(e.packed);
    entries.clear();
    bytes = 0;
    for (auto& s : seen) s = Source{};
  }
  void erase(size_t i) {
    std::free(entries[i].packed);
    bytes -= entries[i].bytes;
    entries[i] = entries.back();
    entries.pop_back();
    evicted++;
  }
  // Makes room for `extra` bytes by evicting least-recently-used entries — but only entries that have not been used
  // within the last 2 × (entries held) lookups. A model whose weights exceed the cap reads them in a cycle (every
  // forward pass the same order), and plain LRU would then evict each packing just before it is needed again: every
  // lookup a miss (BERT-base: 340 MB of weights against a 256 MB cap). Refusing to evict recently used entries
  // keeps the part that fits and serves it every pass; entries of weights no longer in use age out and make room.
  // false: nothing evictable, so the new packing is not admitted (the caller runs the ordinary GEMM).
  bool evictUntilFits(size_t extra) {
    while (!entries.empty() && bytes + extra > limit) {
      size_t lru = 0;
      for (size_t i = 1; i < entries.size(); i++)
        if (entries[i].lastUse < entries[lru].lastUse) lru = i;
      if (entries[lru].lastUse + 2 * (uint64_t)entries.size() > lookups) return false;
      erase(lru);
    }
    return bytes + extra <= limit;
  }
  // true when this exact data was sighted before (and forgets the sighting); otherwise remembers it
  bool secondSighting(const Source& s) {
    for (auto& r : seen)
      if (r.sameData(s)) {
        r = Source{};
        return true;
      }
    seen[seenNext] = s;
    seenNext = (seenNext + 1) % kSeenRing;
    return false;
  }
};

void finalizeCache(napi_env, void* data, void*) { delete static_cast<Cache*>(data); }

Cache* cacheFor(napi_env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) == napi_ok && data) return static_cast<Cache*>(data);
  Cache* c = new Cache();
  if (napi_set_instance_data(env, c, finalizeCache, nullptr) != napi_ok) {
    delete c;
    return nullptr;
  }
  return c;
}

}  // namespace

const float* packCacheLookup(napi_env env, const KernelTable* table, const GemmArgs& g, PackKey key) {
  if (!table->gemmUsesPackedB(g)) return nullptr;
  Cache* c = cacheFor(env);
  if (!c || c->limit == 0) return nullptr;
  c->lookups++;
  Source s;
  s.id = key.id;
  s.version = key.version;
  s.table = table;
  s.B = g.B;
  s.ldb = g.ldb;
  s.N = g.N;
  s.K = g.K;
  s.transB = g.transB;
  for (auto& e : c->entries)
    if (e.src.sameSlot(s)) {
      e.lastUse = c->lookups;
      if (e.src.version != s.version) {  // written since it was packed: re-pack in place
        table->packBFull(g, e.packed);
        e.src.version = s.version;
        c->packs++;
      } else {
        c->hits++;
      }
      return e.packed;
    }
  if (!c->secondSighting(s)) return nullptr;
  const size_t bytes = (size_t)table->packedBFloats(g.N, g.K) * sizeof(float);
  if (bytes > c->limit) return nullptr;
  if (!c->evictUntilFits(bytes)) return nullptr;
  float* p = static_cast<float*>(bigAlloc(bytes));
  if (!p) return nullptr;
  table->packBFull(g, p);
  c->entries.push_back(Entry{s, p, bytes, c->lookups});
  c->bytes += bytes;
  c->admitted++;
  c->packs++;
  return p;
}

namespace {

napi_value setNum(napi_env env, napi_value o, const char* name, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, o, name, x);
  return o;
}

napi_value PackCacheInfo(napi_env env, napi_callback_info) {
  napi_value o;
  napi_create_object(env, &o);
  Cache* c = cacheFor(env);
  Cache empty;
  if (!c) c = &empty;
  setNum(env, o, "entries", (double)c->entries.size());
  setNum(env, o, "bytes", (double)c->bytes);
  setNum(env, o, "limit", (double)c->limit);
  setNum(env, o, "hits", (double)c->hits);
  setNum(env, o, "packs", (double)c->packs);
  setNum(env, o, "admitted", (double)c->admitted);
  setNum(env, o, "evicted", (double)c->evicted);
  return o;
}

napi_value SetPackCacheLimit(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.setPackCacheLimit", 1);
    double v = a.number(0, "bytes");
    if (v < 0) a.rangeErr("argument 'bytes' must be >= 0");
    Cache* c = cacheFor(env);
    if (!c) throw std::bad_alloc();
    c->limit = v > 1e18 ? (size_t)1e18 : (size_t)v;
    if (c->limit == 0) c->clear();
    else c->evictUntilFits(0);
    return undefinedValue(env);
  });
}

napi_value PackCacheClear(napi_env env, napi_callback_info) {
  if (Cache* c = cacheFor(env)) c->clear();
  return undefinedValue(env);
}

napi_value PackCacheDrop(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    Args a(env, info, "attnflow.packCacheDrop", 1);
    double id = a.number(0, "id");
    Cache* c = cacheFor(env);
    if (!c) return undefinedValue(env);
    for (size_t i = c->entries.size(); i-- > 0;)
      if (c->entries[i].src.id == id) c->erase(i);
    for (auto& r : c->seen)
      if (r.id == id) r = Source{};
    return undefinedValue(env);
  });
}

}  // namespace

void registerPackCache(napi_env env, napi_value exports) {
  const NamedFunction fns[] = {
      {"packCacheInfo", PackCacheInfo},
      {"setPackCacheLimit", SetPackCacheLimit},
      {"packCacheClear", PackCacheClear},
      {"packCacheDrop", PackCacheDrop},
  };
  defineFunctions(env, exports, fns);
}

}  // namespace af
