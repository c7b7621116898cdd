// glibc malloc settings for a process that allocates and frees many mid-sized buffers (0.1–32 MB): every
// tensor readback (`dataSync()`, `toFloat32Array()`) is a new JS ArrayBuffer, which V8 mallocs and frees only when
// a later garbage collection finds it dead, tens of buffers at a time.
//
// glibc's defaults handle that badly. Its mmap threshold starts at 128 KiB and its trim threshold at 256 KiB; both
// adapt (to the size of the largest mmapped block freed so far, and twice that), but the trim threshold stays far
// below what one collection frees at once: V8 lets ~64 MB of dead ArrayBuffers pile up before an "external memory
// pressure" GC. That GC frees them together at the top of the heap, glibc hands the pages back to the kernel, and the
// next few hundred allocations fault every page in again (≈ 4 ms per MB here). A 0.2 ms attention call at T = 128
// whose 393 KB result was copied out then took 1.3–1.8 ms in a steady loop, or did so in some processes and not in
// others, depending on how the thresholds had drifted.
//
// We start where glibc's own adaptation ends for blocks of any size it would adapt to — mmap threshold 32 MiB
// (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit) — and keep up to 64 MiB of free memory at the top of the heap instead of
// returning it at once. Nothing changes for blocks above 32 MiB (still mmapped and unmapped on free). A user who set
// either value in GLIBC_TUNABLES keeps theirs; ATTNFLOW_MALLOC_TUNING=0 leaves malloc alone.
#include "af-common.h"

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace af {

const char* tuneMalloc() {
  static const char* status = [] {
#if defined(__GLIBC__)
    const char* off = std::getenv("ATTNFLOW_MALLOC_TUNING");
    if (off && !std::strcmp(off, "0")) return "off (ATTNFLOW_MALLOC_TUNING=0)";
    const char* tun = std::getenv("GLIBC_TUNABLES");
    if (tun && (std::strstr(tun, "mmap_threshold") || std::strstr(tun, "trim_threshold")))
      return "left to GLIBC_TUNABLES";
    bool ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
    ok = mallopt(M_TRIM_THRESHOLD, 64 << 20) == 1 && ok;
    return ok ? "mmap threshold 32 MiB, trim threshold 64 MiB" : "mallopt failed; glibc defaults";
#else
    return "not glibc; system defaults";
#endif
  }();
  return status;
}

}  // namespace af
