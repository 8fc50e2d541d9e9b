// The long planner fuzz, outside the default test run: `meson test -C build --suite fuzz`.
// At least 100,000 random trees, small and large, through the planner and the validator, a
// sample through the packed oracle. The seed ranges are printed; a failure names its seed, and
// fuzz::draw_case(seed, sizes) rebuilds that case alone.
#include <chrono>
#include <cstdio>
#include <string>

#include "../catch.hpp"
#include "fuzz.hpp"

using namespace patlab;

namespace {

/// Small trees (fuzz::kSmallTrees) and their first seed.
constexpr int kSmallTrees = 95000;
constexpr uint64_t kSmallSeed = 40000000;
/// Large trees (fuzz::kLargeTrees) and their first seed.
constexpr int kLargeTrees = 5000;
constexpr uint64_t kLargeSeed = 50000000;
/// Every this many trees, the packed oracle too (when small enough: fuzz::kOracleTokenHeads).
constexpr int kOracleEvery = 50;

void run_range(const char* what, uint64_t first, int count, const fuzz::TreeSizes& sizes) {
  const auto t0 = std::chrono::steady_clock::now();
  const fuzz::Stats st = fuzz::run(first, count, sizes, kOracleEvery);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: seeds [%llu, %llu): %d validated, %d through the oracle, %d with KV cuts, %d asymmetric, "
              "%d mixed slots; %lld requests, longest %lld tokens; %.1f s\n",
              what, static_cast<unsigned long long>(first), static_cast<unsigned long long>(first + count), st.trees,
              st.oracle_runs, st.cut_plans, st.asymmetric, st.mixed_slots, static_cast<long long>(st.requests),
              static_cast<long long>(st.max_tokens), s);
  std::string failures;
  for (const std::string& f : st.failures) failures += f + "\n";
  INFO(failures);
  REQUIRE(st.failures.empty());
  REQUIRE(st.oracle_runs > 0);
}

}  // namespace

TEST_CASE("fuzz: at least 100,000 random trees through the planner and the validator") {
  static_assert(kSmallTrees + kLargeTrees >= 100000, "the fuzz suite promises at least 100,000 trees");
  run_range("small trees", kSmallSeed, kSmallTrees, fuzz::kSmallTrees);
  run_range("large trees", kLargeSeed, kLargeTrees, fuzz::kLargeTrees);
}
