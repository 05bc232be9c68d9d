// The thread team: every task runs exactly once at any thread count, nested use runs inline,
// the load statistics count regions, and parallel_ranges covers [0, n) with disjoint chunks.
#include <atomic>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "thread_team.h"

using namespace lamina;

int main() {
  // TaskShares: each of n tasks claimed once, shares first, whatever the thread count.
  for (int nt : {1, 2, 3, 7}) {
    for (int64_t n : {0, 1, 2, 5, 64, 1001}) {
      TaskShares shares(n, nt);
      std::vector<int> seen(size_t(n), 0);
      // Single-threaded claims by rotating "threads" still hand out every task exactly once.
      for (int round = 0;; ++round) {
        const int64_t t = shares.claim(round % nt);
        if (t < 0) break;
        CHECK(t >= 0 && t < n);
        if (t >= 0 && t < n) ++seen[size_t(t)];
      }
      for (int64_t i = 0; i < n; ++i) CHECK_MSG(seen[size_t(i)] == 1, "nt %d n %ld task %ld", nt, long(n), long(i));
    }
  }
  // A thread's first claim is the start of its own share (the static split).
  {
    TaskShares shares(10, 2);
    CHECK(shares.claim(1) == 5);
    CHECK(shares.claim(0) == 0);
  }

  // parallel_tasks on real threads: every index once.
  for (int nt : {1, 2, 4}) {
    const int64_t n = 997;
    std::vector<std::atomic<int>> hits(n);
    for (auto& h : hits) h.store(0);
    parallel_tasks(n, nt, [&](int64_t i) { hits[size_t(i)].fetch_add(1); });
    int bad = 0;
    for (auto& h : hits) bad += h.load() != 1;
    CHECK_MSG(bad == 0, "nt %d: %d tasks not run exactly once", nt, bad);
  }

  // Nested: inside a team region, team_size is 1, so inner work runs inline on that thread.
  {
    std::atomic<int> inner_sizes_over_one{0};
    parallel_tasks(4, 2, [&](int64_t) {
      if (team_size(1e12, 1.0) != 1) inner_sizes_over_one.fetch_add(1);
    });
    CHECK(inner_sizes_over_one.load() == 0);
  }

  // team_size: at most the thread budget and max_threads, at least 1.
  set_num_threads(2);
  team_set_load_backoff(false);
  CHECK(team_size(0, 1e5) == 1);
  CHECK(team_size(1e9, 1e5) == 2);
  CHECK(team_size(1e9, 1e5, 1) == 1);

  // Statistics: one region per parallel call with 2 threads, none with 1.
  team_load_stats(true);
  parallel_tasks(8, 1, [](int64_t) {});
  CHECK(team_load_stats(false).parallel_regions == 0);
  parallel_tasks(8, 2, [](int64_t) {});
  CHECK(team_load_stats(true).parallel_regions == 1);
  team_set_load_backoff(true);

  // parallel_ranges: disjoint chunks that cover [0, n) exactly.
  for (int64_t n : {int64_t(0), int64_t(1), kElemChunk - 1, kElemChunk, 3 * kElemChunk + 5, 20 * kElemChunk,
                    int64_t(48000), int64_t(65537), int64_t(1000003)}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    for (auto& h : hits) h.store(0);
    parallel_ranges(n, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) hits[size_t(i)].fetch_add(1);
    });
    int bad = 0;
    for (auto& h : hits) bad += h.load() != 1;
    CHECK_MSG(bad == 0, "n %ld: %d elements not covered exactly once", long(n), bad);
  }
  set_num_threads(0);
  TEST_MAIN_END();
}
