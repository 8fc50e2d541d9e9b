// The stage-8 draft (cuda/stages/08_hopper.cu, sm_90a) against the float64 oracle on the boundary
// grid, the way tests/gpu/test_stage.cpp checks a registered stage: the draft is not in the
// registry (stages.def), so this test registers it for its own process, and it runs only in the
// suite `hopper-draft` (`meson test --suite hopper-draft`), which the default setup leaves out
// until it has passed on an H200. Its plan is stage 4's (packed), so its model bytes are checked
// against that stage's byte model. Skips (77) without a device or below sm_90.
#include <memory>
#include <string>

#include "../catch.hpp"
#include "harness.hpp"

// Declared here rather than through patlab/cuda/stage.cuh, which needs the CUDA headers that a
// host-compiled test does not see: the factory of cuda/stages/08_hopper.cu and the registration
// of cuda/runtime.cu, with Stage left incomplete.
namespace patlab::cuda {
class Stage;
std::unique_ptr<Stage> make_stage_hopper();
void register_draft_stage(const std::string& slug, std::unique_ptr<Stage> (*factory)());
}  // namespace patlab::cuda

namespace {

/// The draft's slug, and the registered stage whose plan (and byte model) it executes.
const char* const kDraftSlug = "hopper";
const char* const kPlanOf = "packed";
/// The grids' seeds (test_stage.cpp's), fixed so that a failure can be rerun.
constexpr uint64_t kBoundarySeed = 20261122;
constexpr uint64_t kTreeSeed = 7001;

}  // namespace

TEST_CASE("the stage-8 draft matches the oracle on the boundary grid") {
  patlab::cuda::register_draft_stage(kDraftSlug, patlab::cuda::make_stage_hopper);
  patlab::test::check_stage(kDraftSlug, patlab::test::boundary_grid(kBoundarySeed), kPlanOf);
}

TEST_CASE("the stage-8 draft matches the oracle on the tree grid") {
  patlab::cuda::register_draft_stage(kDraftSlug, patlab::cuda::make_stage_hopper);
  patlab::test::check_stage(kDraftSlug, patlab::test::tree_grid(kTreeSeed), kPlanOf);
}
