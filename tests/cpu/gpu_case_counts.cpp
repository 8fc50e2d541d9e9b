// How many cases each GPU test grid holds (tests/gpu/grids.cpp), for tools/doc_counts.py: the
// tutorial quotes these counts and a docs test checks them. One line per grid, "NAME COUNT".
// The counts do not depend on the seed (a seed changes the random trees, not how many).
#include <cstdint>
#include <iostream>

#include "../gpu/harness.hpp"

namespace {

/// Any seed: the counts are the same for all.
constexpr uint64_t kAnySeed = 1;

}  // namespace

int main() {
  std::cout << "boundary " << patlab::test::boundary_grid(kAnySeed).size() << "\n"
            << "tree " << patlab::test::tree_grid(kAnySeed).size() << "\n"
            << "tile128 " << patlab::test::tile128_grid(kAnySeed).size() << "\n"
            << "shapes " << patlab::test::shapes_grid(kAnySeed).size() << "\n";
  return 0;
}
