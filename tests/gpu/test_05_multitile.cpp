// Stage multitile against the float64 oracle: the boundary grid of stages 1-3 and the tree grid
// (the planner's torture cases: asymmetric trees whose packs hold queries with different split
// counts, no-sharing batches across tile buckets, deep and multi-root trees, random trees), and,
// as this stage takes its tiles from the planner's table, the n = 128 tiles (tile128_grid).
#include "../catch.hpp"
#include "harness.hpp"

TEST_CASE("multitile matches the oracle on the boundary grid") {
  patlab::test::check_stage("multitile", patlab::test::boundary_grid(20261122));
}

TEST_CASE("multitile matches the oracle on the tree grid") {
  patlab::test::check_stage("multitile", patlab::test::tree_grid(7001));
}

TEST_CASE("multitile matches the oracle with n = 128 KV tiles") {
  patlab::test::check_stage("multitile", patlab::test::tile128_grid(128001));
}
