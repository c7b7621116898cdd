// AMX-INT8 detection and the int8 kernel preference (amx.h). Compiled with the baseline flags: it runs on every CPU
// (the kernels themselves live in amx-int8.cc, built with the AMX flags and only called once this says yes).
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "amx.h"

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace af {
namespace {

const char* detect() {
#if defined(__x86_64__)
  unsigned eax = 7, ebx = 0, ecx = 0, edx = 0;
  __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
  (void)ebx;
  unsigned maxLeaf = 0, b1, c1, d1;
  __asm__ volatile("cpuid" : "=a"(maxLeaf), "=b"(b1), "=c"(c1), "=d"(d1) : "a"(0), "c"(0));
  if (maxLeaf < 7) return "no CPUID leaf 7";
  if (!(edx & (1u << 24)) || !(edx & (1u << 25))) return "no AMX-INT8";
  // AVX-512 (the epilogue) and OSXSAVE before reading XCR0
  unsigned a1 = 1, b2, c2 = 0, d2;
  __asm__ volatile("cpuid" : "+a"(a1), "=b"(b2), "+c"(c2), "=d"(d2));
  if (!(c2 & (1u << 27))) return "no OSXSAVE";
  unsigned xlo, xhi;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  if ((xlo & (3u << 17)) != (3u << 17)) return "OS does not enable tiles (XCR0)";
  if ((xlo & 0xe6u) != 0xe6u) return "OS does not enable AVX-512 state (XCR0)";
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return "no AVX-512";
#if defined(__linux__)
  // ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18: process-wide, for every thread
  if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return "arch_prctl(ARCH_REQ_XCOMP_PERM) refused";
#endif
  return "";
#else
  return "not x86-64";
#endif
}

const char* why() {
  static const char* w = detect();
  return w;
}

int initialPref() {
  const char* e = std::getenv("ATTNFLOW_INT8");
  if (e && *e) {
    if (!std::strcmp(e, "amx")) return INT8_AMX;
    if (!std::strcmp(e, "avx512-vnni") || !std::strcmp(e, "vnni")) return INT8_VNNI;
    if (!std::strcmp(e, "avx512bw") || !std::strcmp(e, "bw")) return INT8_BW;
  }
  const char* v = std::getenv("ATTNFLOW_VNNI");
  if (v && v[0] == '0') return INT8_BW;
  return INT8_AUTO;
}

std::atomic<int> gPref{initialPref()};

}  // namespace

bool amxInt8Available() { return why()[0] == '\0'; }
const char* amxInt8Why() { return why(); }

int int8Pref() { return gPref.load(std::memory_order_relaxed); }

bool setInt8Pref(const char* name) {
  int p;
  if (!std::strcmp(name, "auto")) p = INT8_AUTO;
  else if (!std::strcmp(name, "amx")) { if (!amxInt8Available()) return false; p = INT8_AMX; }
#if defined(__x86_64__) || defined(__i386__)
  else if (!std::strcmp(name, "avx512-vnni")) { if (!__builtin_cpu_supports("avx512vnni")) return false; p = INT8_VNNI; }
  else if (!std::strcmp(name, "avx512bw")) { if (!__builtin_cpu_supports("avx512bw")) return false; p = INT8_BW; }
#endif
  else return false;
  gPref.store(p, std::memory_order_relaxed);
  return true;
}

}  // namespace af
