// The thread team's shared state: the load backoff and its statistics (see thread_team.h).
#include "thread_team.h"

#include <omp.h>

namespace lamina {

namespace {

// Load awareness. OpenMP's join waits for every thread to arrive, so when another process
// holds a core, a worker that is only scheduled milliseconds later stalls the whole call even
// though the master already did all the work. A slow join: the master waited at the join
// longer than it worked, and > 200 us (a scheduling delay, not a futex wake-up). After a
// second slow join within kSlowJoinWindow of the previous one, every family runs
// single-threaded for a while, the window doubling on each repeat (20 ms .. 80 ms: longer
// windows kept a noisy but unloaded VM on one thread for most of a benchmark) and resetting
// once a parallel call goes well. One slow join alone is not load: a VM's host stalls a vCPU
// now and then, and backing off on each of those measured a 2-thread 64x784x300 GEMM at
// 1-thread speed for whole benchmark runs. A busy neighbour on one core makes slow joins come
// every few milliseconds (not necessarily back to back: the worker runs in time slices).
// A call that starts cold -- more than kWarmGap after the previous parallel region, so the
// workers have stopped spinning (GOMP_SPINCOUNT ~ 1 ms) and sleep -- pays the wake-up of a
// halted vCPU, measured 0.2-2 ms on a quiet VM; it counts as slow only past kColdWakeWait.
constexpr double kWarmGap = 2e-3;
constexpr double kColdWakeWait = 5e-3;
constexpr double kWarmSlowWait = 200e-6;
constexpr double kSlowJoinWindow = 0.1;
constexpr double kBackoffBase = 0.01;  // seconds, doubled per level (levels 1..3: 20..80 ms)

std::atomic<bool> g_load_backoff{true};
std::atomic<double> g_single_until{0.0};
std::atomic<int> g_backoff_level{0};
std::atomic<double> g_last_slow_join{-1e9};
std::atomic<double> g_last_join{0.0};  // when the last parallel region ended
std::atomic<int64_t> g_stat_regions{0}, g_stat_slow{0}, g_stat_backoffs{0}, g_stat_single{0};
std::atomic<int64_t> g_stat_work_ns{0}, g_stat_wait_ns{0};
std::atomic<int64_t> g_stat_worker_starts{0}, g_stat_worker_late_ns{0}, g_stat_worker_late20{0};

}  // namespace

namespace team_detail {

double now_s() { return omp_get_wtime(); }
bool in_team() { return omp_in_parallel() != 0; }

void note_worker_start(double start_s) {
  const int64_t late_ns = int64_t((now_s() - start_s) * 1e9);
  g_stat_worker_late_ns.fetch_add(late_ns, std::memory_order_relaxed);
  g_stat_worker_starts.fetch_add(1, std::memory_order_relaxed);
  if (late_ns > 20000) g_stat_worker_late20.fetch_add(1, std::memory_order_relaxed);
}

void note_join(double start_s, double work_s, double wait_s) {
  const double end_s = start_s + work_s + wait_s;
  const bool cold = start_s - g_last_join.exchange(end_s, std::memory_order_relaxed) > kWarmGap;
  g_stat_regions.fetch_add(1, std::memory_order_relaxed);
  g_stat_work_ns.fetch_add(int64_t(work_s * 1e9), std::memory_order_relaxed);
  g_stat_wait_ns.fetch_add(int64_t(wait_s * 1e9), std::memory_order_relaxed);
  if (wait_s > (cold ? kColdWakeWait : kWarmSlowWait) && wait_s > work_s) {
    g_stat_slow.fetch_add(1, std::memory_order_relaxed);
    if (end_s - g_last_slow_join.exchange(end_s, std::memory_order_relaxed) > kSlowJoinWindow)
      return;  // the first in a while: a stall, not (yet) load
    const int level = std::min(g_backoff_level.load(std::memory_order_relaxed) + 1, 3);
    g_backoff_level.store(level, std::memory_order_relaxed);
    g_stat_backoffs.fetch_add(1, std::memory_order_relaxed);
    g_single_until.store(end_s + kBackoffBase * double(1 << level), std::memory_order_relaxed);
  } else if (wait_s < 0.25 * work_s) {
    g_backoff_level.store(0, std::memory_order_relaxed);
  }
}

}  // namespace team_detail

int team_size(double work, double min_work_per_thread, int64_t max_threads) {
  int nt = static_cast<int>(std::min<int64_t>(threads_for(work, min_work_per_thread), max_threads));
  if (nt > 1 && team_detail::in_team()) nt = 1;
  if (nt > 1 && g_load_backoff.load(std::memory_order_relaxed) &&
      team_detail::now_s() < g_single_until.load(std::memory_order_relaxed)) {
    nt = 1;
    g_stat_single.fetch_add(1, std::memory_order_relaxed);
  }
  return std::max(nt, 1);
}

void team_set_load_backoff(bool on) { g_load_backoff.store(on, std::memory_order_relaxed); }
bool team_load_backoff() { return g_load_backoff.load(std::memory_order_relaxed); }

TeamLoadStats team_load_stats(bool reset) {
  auto take = [reset](std::atomic<int64_t>& a) {
    return reset ? a.exchange(0, std::memory_order_relaxed) : a.load(std::memory_order_relaxed);
  };
  TeamLoadStats s;
  s.parallel_regions = take(g_stat_regions);
  s.slow_joins = take(g_stat_slow);
  s.backoffs = take(g_stat_backoffs);
  s.backoff_single_calls = take(g_stat_single);
  s.worker_starts = take(g_stat_worker_starts);
  s.master_work_ns = take(g_stat_work_ns);
  s.join_wait_ns = take(g_stat_wait_ns);
  s.worker_late_ns = take(g_stat_worker_late_ns);
  s.worker_late_over_20us = take(g_stat_worker_late20);
  return s;
}

}  // namespace lamina
