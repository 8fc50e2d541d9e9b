/// @file no_hopper.cu
/// @brief Stages 8 and 9 in a build without the sm_90a target (gpu_arch names neither 90 nor
/// 90a): the stages exist, so the CLI and the tests list them, and say why they cannot run.
#include <memory>
#include <string>

#include "patlab/cuda/stage.cuh"
#include "patlab/error.hpp"

namespace patlab::cuda {

namespace {

/// Refuses every batch: `reason` says which kernel file (cuda/stages/08_hopper.cu or
/// 09_cluster.cu) was not built.
class NotBuiltStage final : public Stage {
 public:
  explicit NotBuiltStage(std::string reason) : reason_(std::move(reason)) {}
  std::string unsupported(const Shape&) const override { return reason_; }
  void prepare(const DeviceBatch&) override { throw Error(ErrorKind::unsupported, reason_); }
  void set_pools(const void*, const void*) override {}
  void run(cudaStream_t) override { throw Error(ErrorKind::unsupported, reason_); }
  int64_t model_bytes() const override { return 0; }

 private:
  std::string reason_;
};

/// Why, for stage `n`.
std::string not_built(int n) {
  return "skipped: needs sm_90 (this build's gpu_arch has no 90 or 90a, so stage " + std::to_string(n) +
         " was not built)";
}

}  // namespace

std::unique_ptr<Stage> make_stage_hopper() { return std::make_unique<NotBuiltStage>(not_built(8)); }
std::unique_ptr<Stage> make_stage_cluster() { return std::make_unique<NotBuiltStage>(not_built(9)); }

}  // namespace patlab::cuda
