// The one thread team and task scheduler every kernel family uses (GEMM, convolution, pooling,
// activations, losses, optimizers): OpenMP threads, a per-call choice of how many, tasks dealt
// out in contiguous shares with stealing, and a load backoff shared by all families.
//
// Why one team: a fork/join costs microseconds, and when another process holds a core, a
// worker that is scheduled milliseconds late stalls the whole call at the join. The team times
// its joins; after repeated slow ones it runs every family single-threaded for a while (see
// thread_team.cpp), so a loaded 2-core box stays near 1-thread speed instead of falling far
// below it. Nested use is safe: inside a team region, team_size() is 1 and work runs inline.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include <omp.h>

#include "cpu.h"

namespace lamina {

// ---- how many threads ----------------------------------------------------------------------
// Threads `work` units are worth when each thread should get at least `min_work_per_thread`
// (threads_for), capped at max_threads; 1 inside another team region or while the load
// backoff holds.
int team_size(double work, double min_work_per_thread, int64_t max_threads = int64_t(1) << 30);

// ---- running a team ------------------------------------------------------------------------
namespace team_detail {
double now_s();
bool in_team();  // inside a parallel region already
// Records one region's timing (start, the calling thread's work, its wait at the join) for
// the load backoff and the statistics.
void note_join(double start_s, double master_work_s, double join_wait_s);
void note_worker_start(double start_s);
}  // namespace team_detail

// worker(me) on each of nt threads, me in [0, nt) (inline as me = 0 when nt <= 1). The workers
// claim their own work; the join is timed for the load backoff.
template <class F>
void team_run(int nt, F&& worker) {
  if (nt <= 1) {
    worker(0);
    return;
  }
  const double t0 = team_detail::now_s();
  double t_master_done = t0;
#pragma omp parallel num_threads(nt)
  {
    const int me = omp_get_thread_num();
    if (me != 0) team_detail::note_worker_start(t0);
    worker(me);
    if (me == 0) t_master_done = team_detail::now_s();
  }
  team_detail::note_join(t0, t_master_done - t0, team_detail::now_s() - t_master_done);
}

// Tasks [0, n) dealt out in contiguous shares, one per thread: thread t gets the same tasks
// (the same rows of C, the same planes) call after call, as a static split does, so a loop that
// repeats work on the same buffers finds its share in that core's cache. A thread that has
// finished its share claims what the others have not started yet, so a descheduled thread's
// share is still done by the rest (the point of dynamic scheduling).
class TaskShares {
 public:
  TaskShares(int64_t n, int nt) : nt_(std::max(nt, 1)), share_(new Share[size_t(nt_)]) {
    for (int t = 0; t < nt_; ++t) {
      share_[t].next.store(n * t / nt_, std::memory_order_relaxed);
      share_[t].end = n * (t + 1) / nt_;
    }
  }
  // The next task for thread `me` (its own share first), or -1 when every task is claimed.
  int64_t claim(int me) {
    for (int d = 0; d < nt_; ++d) {
      Share& sh = share_[(me + d) % nt_];
      if (sh.next.load(std::memory_order_relaxed) >= sh.end) continue;
      const int64_t t = sh.next.fetch_add(1, std::memory_order_relaxed);
      if (t < sh.end) return t;
    }
    return -1;
  }

 private:
  struct alignas(64) Share {  // one cache line each: the owners do not contend
    std::atomic<int64_t> next;
    int64_t end;
  };
  int nt_;
  std::unique_ptr<Share[]> share_;
};

// task(i) for every i in [0, ntasks), on up to nt threads (shares + stealing). Tasks must write
// disjoint outputs: a reduction is never split across tasks that write the same place.
template <class F>
void parallel_tasks(int64_t ntasks, int nt, F&& task) {
  if (ntasks <= 0) return;
  nt = static_cast<int>(std::min<int64_t>(nt, ntasks));
  if (nt <= 1) {
    for (int64_t i = 0; i < ntasks; ++i) task(i);
    return;
  }
  TaskShares shares(ntasks, nt);
  team_run(nt, [&](int me) {
    for (int64_t i; (i = shares.claim(me)) >= 0;) task(i);
  });
}

// ---- elementwise work ----------------------------------------------------------------------
// Below this many elements per thread, stay single-threaded.
constexpr int64_t kElemsPerThread = 32768;
// Chunk of an elementwise range, roughly (a multiple of 16 SIMD lanes; see parallel_ranges).
constexpr int64_t kElemChunk = 16384;

// f(i0, i1) over [0, n) in chunks, possibly from several threads.
template <class F>
void parallel_ranges(int64_t n, F&& f) {
  const int nt = team_size(static_cast<double>(n), static_cast<double>(kElemsPerThread));
  if (nt <= 1) {
    f(int64_t{0}, n);
    return;
  }
  // A whole number of equal chunks per thread, each near kElemChunk: fixed 16384-element chunks
  // gave 48k elements (LeNet-5's F5 weight in SGD) 3 chunks, one thread doing two while the
  // other did one, so 2 threads ran slower than 1 (measured in the compiled step: 16.8 us at
  // 1 thread, 27.4 at 2). Elementwise work, so where the cuts fall changes no bits.
  const int64_t per_thread = std::max<int64_t>(1, (n / nt + kElemChunk / 2) / kElemChunk);
  const int64_t nchunks = per_thread * nt;
  const int64_t chunk = ((n + nchunks - 1) / nchunks + 15) & ~int64_t(15);  // whole 16-lane vectors
  parallel_tasks((n + chunk - 1) / chunk, nt, [&](int64_t c) { f(c * chunk, std::min(n, (c + 1) * chunk)); });
}

// ---- control and diagnostics ---------------------------------------------------------------
// false: never back off to one thread after slow joins (benchmarks of the parallel path).
void team_set_load_backoff(bool on);
bool team_load_backoff();
// Counters since the last reset: parallel regions run, joins that waited on a late thread,
// backoffs started, calls that ran on one thread because a backoff held; how late the workers
// entered the regions; the calling thread's time in the regions, working and at the join.
struct TeamLoadStats {
  int64_t parallel_regions = 0, slow_joins = 0, backoffs = 0, backoff_single_calls = 0;
  int64_t worker_starts = 0, worker_late_ns = 0, worker_late_over_20us = 0;
  int64_t master_work_ns = 0, join_wait_ns = 0;
};
TeamLoadStats team_load_stats(bool reset);

}  // namespace lamina
