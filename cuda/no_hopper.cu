/// @file no_hopper.cu
/// @brief Stage 8 in a build without the sm_90a target (gpu_arch names neither 90 nor 90a):
/// the stage exists, so the CLI and the tests list it, and says why it cannot run.
#include <memory>
#include <string>

#include "patlab/cuda/stage.cuh"
#include "patlab/error.hpp"

namespace patlab::cuda {

namespace {

/// Why: stage 8's kernel (cuda/stages/08_hopper.cu) was not built.
constexpr const char* kNotBuilt = "skipped: needs sm_90 (this build's gpu_arch has no 90 or 90a, so stage 8 was not built)";

/// Refuses every batch with kNotBuilt.
class NoHopperStage final : public Stage {
 public:
  std::string unsupported(const Shape&) const override { return kNotBuilt; }
  void prepare(const DeviceBatch&) override { throw Error(ErrorKind::unsupported, kNotBuilt); }
  void set_pools(const void*, const void*) override {}
  void run(cudaStream_t) override { throw Error(ErrorKind::unsupported, kNotBuilt); }
  int64_t model_bytes() const override { return 0; }
};

}  // namespace

std::unique_ptr<Stage> make_stage_hopper() { return std::make_unique<NoHopperStage>(); }

}  // namespace patlab::cuda
