// The GPU test harness: the grids of cases every stage is checked on, and the check itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/workload.hpp"

namespace patlab::test {

/// One workload to check a stage on.
struct Case {
  std::string name;
  TokenTree tree;
  Shape shape;
  uint64_t seed = 0;
};

/// Lengths that cross tile and page boundaries: 1, 15, 16, 17, 127, 129, 1000, 4097, ...
const std::vector<int64_t>& boundary_lengths();

/// Stages 1-3's grid: for both dtypes, both head dims, every group size and every page size,
/// one batch of requests of the boundary lengths alone plus requests sharing a 1000-token
/// prefix (so shared and unshared blocks, shuffled ids).
std::vector<Case> boundary_grid(uint64_t seed);

/// The planner's torture cases plus random asymmetric trees from several seeds, across
/// dtypes, head dims 64/128 and groups 1/2/4/8.
std::vector<Case> tree_grid(uint64_t seed);

/// Runs `slug` on every case against the float64 oracle (output poisoned before each run,
/// every element checked, tolerance from check.hpp), twice to catch races; REQUIREs each pass.
void check_stage(const std::string& slug, const std::vector<Case>& cases);

}  // namespace patlab::test
