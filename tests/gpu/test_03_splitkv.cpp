// Stage splitkv against the float64 oracle: the boundary grid (lengths across tile and page
// boundaries, both dtypes, d 64/128, groups 1-16, pages 16/32/64, shared and unshared blocks)
// and the tree grid (asymmetric, deep, multi-root and random trees).
#include "../catch.hpp"
#include "harness.hpp"

TEST_CASE("splitkv matches the oracle on the boundary grid") {
  patlab::test::check_stage("splitkv", patlab::test::boundary_grid(20261122));
}

TEST_CASE("splitkv matches the oracle on the tree grid") {
  patlab::test::check_stage("splitkv", patlab::test::tree_grid(7001));
}
