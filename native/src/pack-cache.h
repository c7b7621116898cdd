// Packed-weight cache: GEMM B operands (nn.Linear weights) kept in the kernel's packed panel layout between calls,
// so repeated inference calls skip re-packing (for a 2304×768 in-projection: 7 MB read, transposed and written
// on every call). The caller names B by a key — an id that is never reused for other data, plus a version that
// changes whenever that data may have been written — and the cache serves a packing only for the same key,
// version, source pointer, shape and kernel variant. One cache per N-API environment (per JS thread: ids come
// from that thread's tensor storages). See pack-cache.cc for the admission and eviction rules.
#pragma once
#include <node_api.h>

#include <cstddef>
#include <cstdint>

#include "af-common.h"

namespace af {

struct PackKey {
  double id;       // the caller's storage id (never reused for other data)
  double version;  // changes whenever the storage may have been written
};

// The packed op(B) of g (g.B, g.transB, g.ldb, g.N, g.K; the kernel variant `table`) for this key, packing it
// if needed; null when g is not a shape that reads packed B, the cache is disabled, or the packing is not admitted
// (yet): then the caller runs the ordinary GEMM. The pointer is valid until the next call into the cache.
const float* packCacheLookup(napi_env env, const KernelTable* table, const GemmArgs& g, PackKey key);

// JS entry points: packCacheInfo() → { entries, bytes, limit, hits, packs, admitted, evicted },
// setPackCacheLimit(bytes) (0 disables and frees everything), packCacheClear(), packCacheDrop(id).
void registerPackCache(napi_env env, napi_value exports);

}  // namespace af
