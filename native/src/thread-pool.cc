// Persistent thread pool (spin-then-wait workers) and per-thread scratch buffers.
// One parallel region runs at a time; a call that finds the pool busy (another JS thread, or a nested call from
// inside a task) simply runs its tasks serially on the calling thread, which is always correct.
#include "af-common.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__linux__)
#include <sched.h>
#include <sys/mman.h>
#endif

namespace af {
namespace {

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

int defaultThreads() {
  if (const char* e = std::getenv("ATTNFLOW_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(e, &end, 10);
    if (end != e && *end == '\0' && v >= 1) return v > 256 ? 256 : (int)v;
  }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int c = CPU_COUNT(&set);
    if (c >= 1) return c;
  }
#endif
  unsigned hc = std::thread::hardware_concurrency();
  return hc >= 1 ? (int)hc : 1;
}

class Pool {
 public:
  explicit Pool(int n) { start(n); }
  int size() const { return nthreads_; }

  void resize(int n) {
    acquire();
    stop();
    start(n);
    busy_.store(false, std::memory_order_release);
  }

  void run(int64_t ntasks, TaskFn fn, void* ctx) {
    if (ntasks <= 0) return;
    bool expected = false;
    if (nthreads_ <= 1 || ntasks == 1 || !busy_.compare_exchange_strong(expected, true)) {
      for (int64_t t = 0; t < ntasks; t++) fn(ctx, t, 0);
      return;
    }
    ntasks_ = ntasks; fn_ = fn; ctx_ = ctx;
    next_.store(0, std::memory_order_relaxed);
    pending_.store(nthreads_ - 1, std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_seq_cst);          // publishes the job to spinning workers
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {   // and wakes the sleeping ones
      std::lock_guard<std::mutex> g(sleepMutex_);
      cv_.notify_all();
    }
    work(0);
    // Wait for the workers still finishing their last task: spin briefly, then yield the core, so that on a busy
    // machine a preempted worker can run here instead of being starved by our spinning.
    for (unsigned it = 0; pending_.load(std::memory_order_acquire) > 0; it++) {
      if (it < 2000) cpuRelax();
      else std::this_thread::yield();
    }
    busy_.store(false, std::memory_order_release);
  }

 private:
  void acquire() {
    for (;;) {
      bool expected = false;
      if (busy_.compare_exchange_weak(expected, true)) return;
      std::this_thread::yield();
    }
  }

  void start(int n) {
    nthreads_ = n < 1 ? 1 : n;
    quit_.store(false);
    // Workers start from the current generation: reading it inside the new thread could miss a job published
    // before the thread got scheduled (and the caller would then wait for it forever).
    uint64_t g0 = gen_.load(std::memory_order_acquire);
    for (int t = 1; t < nthreads_; t++) workers_.emplace_back([this, t, g0] { workerLoop(t, g0); });
  }

  void stop() {
    quit_.store(true, std::memory_order_seq_cst);
    {
      std::lock_guard<std::mutex> g(sleepMutex_);
      cv_.notify_all();
    }
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  void work(int tid) {
    for (;;) {
      int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntasks_) break;
      fn_(ctx_, t, tid);
    }
  }

  void workerLoop(int tid, uint64_t seen) {
    for (;;) {
      // Spin ~300 µs waiting for the next job (consecutive kernel calls are common), then sleep.
      auto t0 = std::chrono::steady_clock::now();
      unsigned it = 0;
      while (gen_.load(std::memory_order_acquire) == seen && !quit_.load(std::memory_order_relaxed)) {
        cpuRelax();
        if ((++it & 255) == 0 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(300)) break;
      }
      if (gen_.load(std::memory_order_seq_cst) == seen && !quit_.load()) {
        std::unique_lock<std::mutex> lk(sleepMutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        cv_.wait(lk, [&] { return gen_.load(std::memory_order_seq_cst) != seen || quit_.load(); });
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      }
      if (quit_.load()) return;
      seen = gen_.load(std::memory_order_acquire);
      work(tid);
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  int nthreads_ = 1;
  std::vector<std::thread> workers_;
  std::atomic<bool> busy_{false};
  std::mutex sleepMutex_;
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int64_t> next_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> quit_{false};
  int64_t ntasks_ = 0;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
};

// Created on first use and never destroyed: worker threads simply end with the process.
Pool& pool() {
  static Pool* p = new Pool(defaultThreads());
  return *p;
}

void* alignedAlloc(size_t bytes) {
  size_t rounded = (bytes + 63) & ~size_t(63);
  if (rounded == 0) rounded = 64;
  void* p = nullptr;
  if (posix_memalign(&p, 64, rounded) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (rounded >= (size_t(4) << 20)) madvise(p, rounded, MADV_HUGEPAGE);  // cheaper first touch of big buffers
#endif
  return p;
}

struct Slots {
  float* p[SCRATCH_SLOTS + 1] = {};
  size_t cap[SCRATCH_SLOTS + 1] = {};
  ~Slots() {
    for (auto* q : p) std::free(q);
  }
  float* get(int slot, size_t n, bool abortOnFail) {
    if (cap[slot] < n || !p[slot]) {
      std::free(p[slot]);
      p[slot] = nullptr;
      cap[slot] = 0;
      size_t want = n + n / 8 + 16;  // some headroom so slowly growing sizes do not reallocate every call
      p[slot] = static_cast<float*>(alignedAlloc(want * sizeof(float)));
      if (!p[slot]) {
        if (abortOnFail) std::abort();
        return nullptr;
      }
      cap[slot] = want;
    }
    return p[slot];
  }
};

thread_local Slots tlSlots;

}  // namespace

void parallelFor(int64_t ntasks, TaskFn fn, void* ctx) { pool().run(ntasks, fn, ctx); }
int numThreads() { return pool().size(); }
void setNumThreads(int n) { pool().resize(n); }

float* threadScratch(int slot, size_t n) { return tlSlots.get(slot, n, true); }
float* sharedScratch(size_t n) { return tlSlots.get(SCRATCH_SLOTS, n, false); }

}  // namespace af
