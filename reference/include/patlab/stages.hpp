/// @file stages.hpp
/// @brief The stage registry, read from stages.def: id, slug, chapter and summary of each stage.
#pragma once

#include <string>
#include <vector>

namespace patlab {

/// One entry of the registry.
struct StageInfo {
  int id;               ///< order of the stage in the tutorial (0 = the CPU oracle)
  const char* slug;     ///< CLI name (`patlab bench --stage slug`)
  bool needs_gpu;       ///< false only for CPU stages
  const char* chapter;  ///< tutorial chapter file, without ".md"
  const char* summary;  ///< one line
};

/// All stages, in id order.
const std::vector<StageInfo>& stage_registry();

/// The stage called `name`: its slug ("pat") or its id ("7"); nullptr if none is.
const StageInfo* find_stage(const std::string& name);

/// The GPU stages (id >= 1), in id order.
std::vector<StageInfo> gpu_stages();

}  // namespace patlab
