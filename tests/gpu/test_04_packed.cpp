// Stage packed against the float64 oracle: the boundary grid of stages 1-3 and the tree grid
// (the planner's torture cases: asymmetric trees whose packs hold queries with different split
// counts, no-sharing batches across tile buckets, deep and multi-root trees, random trees).
#include "../catch.hpp"
#include "harness.hpp"

TEST_CASE("packed matches the oracle on the boundary grid") {
  patlab::test::check_stage("packed", patlab::test::boundary_grid(20261122));
}

TEST_CASE("packed matches the oracle on the tree grid") {
  patlab::test::check_stage("packed", patlab::test::tree_grid(7001));
}
