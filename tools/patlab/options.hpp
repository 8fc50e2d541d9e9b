// Workload options shared by every patlab command that takes a workload [W].
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "patlab/kv_cache.hpp"
#include "patlab/report.hpp"

namespace patlab::cli {

/// A workload chosen on the command line, before it is built.
struct WorkloadChoice {
  TokenTree tree;
  Shape shape;
  uint64_t seed = 0;
  bool shuffle = true;
};

/// The [W] options: one of a positional name/spec/file, --preset, --tree, --workload,
/// --random-tree; shape overrides; seed and shuffle.
class WorkloadOptions {
 public:
  /// Registers the options on `app`.
  void add_to(CLI::App& app);
  /// Resolves the options; throws Error(usage) on a bad combination or value.
  WorkloadChoice resolve() const;

 private:
  std::string positional_, preset_, tree_, file_;
  int64_t random_seed_ = -1;
  RandomTreeOptions random_;
  std::string heads_, dtype_;
  int head_dim_ = 0, page_ = 0;
  uint64_t seed_ = 1;
  bool shuffle_ = false;  ///< --shuffle: the default, accepted for clarity
  bool no_shuffle_ = false;
};

/// Adds `--format` to `app`, storing into `out`.
void add_format(CLI::App& app, std::string& out);

/// Prints one progress line on stderr (stdout stays machine-readable).
void progress(const std::string& line);

/// A one-line summary of a workload for progress output.
std::string describe(const WorkloadChoice& w);

}  // namespace patlab::cli
