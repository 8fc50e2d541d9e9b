#include "patlab/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace patlab {

namespace {
std::atomic<int64_t> g_items_done{0};
std::atomic<int64_t> g_items_total{0};
}  // namespace

WorkCount work_count() { return {g_items_done.load(), g_items_total.load()}; }

int worker_threads() {
  if (const char* env = std::getenv("PATLAB_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

void parallel_for(int64_t n, const std::function<void(int64_t)>& body) {
  if (n <= 0) return;
  g_items_total += n;
  const int threads = static_cast<int>(std::min<int64_t>(worker_threads(), n));
  if (threads == 1) {
    for (int64_t i = 0; i < n; ++i) {
      body(i);
      ++g_items_done;
    }
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) {
      try {
        body(i);
        ++g_items_done;
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = n;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace patlab
