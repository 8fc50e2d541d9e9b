/// @file parallel.hpp
/// @brief parallel_for over an index range with std::thread, for the oracle and data generation.
#pragma once

#include <cstdint>
#include <functional>

namespace patlab {

/// Threads parallel_for uses: hardware concurrency, or PATLAB_THREADS if set.
int worker_threads();

/// Calls `body(i)` for every i in [0, n), spread over worker_threads() threads in chunks taken
/// dynamically. Rethrows the first exception a body threw, after all threads have stopped.
void parallel_for(int64_t n, const std::function<void(int64_t)>& body);

/// Items of work that parallel_for calls have started (`total`) and finished (`done`) so far in
/// this process: how far a long phase is, for the CLI's progress line (read from any thread).
struct WorkCount {
  /// Items whose body has returned (not counting a body that threw).
  int64_t done = 0;
  /// Items of every parallel_for call begun so far: each call adds its `n` when it starts.
  int64_t total = 0;
};

/// The process-wide count of parallel_for items.
WorkCount work_count();

}  // namespace patlab
