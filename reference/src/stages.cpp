#include "patlab/stages.hpp"

namespace patlab {

const std::vector<StageInfo>& stage_registry() {
  static const std::vector<StageInfo> all = {
#define PATLAB_CPU_STAGE(id, slug, chapter, summary) {id, #slug, false, chapter, summary},
#define PATLAB_GPU_STAGE(id, slug, chapter, summary) {id, #slug, true, chapter, summary},
#include "patlab/stages.def"
#undef PATLAB_CPU_STAGE
#undef PATLAB_GPU_STAGE
  };
  return all;
}

const StageInfo* find_stage(const std::string& name) {
  for (const StageInfo& s : stage_registry())
    if (name == s.slug || name == std::to_string(s.id)) return &s;
  return nullptr;
}

std::vector<StageInfo> gpu_stages() {
  std::vector<StageInfo> out;
  for (const StageInfo& s : stage_registry())
    if (s.needs_gpu) out.push_back(s);
  return out;
}

}  // namespace patlab
