// Workload options shared by every patlab command that takes a workload [W].
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "patlab/model/hetero.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/report/report.hpp"
#include "progress.hpp"

namespace patlab::cli {

/// Exit codes of every command (main.cpp prints them in --help).
enum ExitCode : int {
  kExitOk = 0,            ///< success
  kExitCheckFailed = 1,   ///< a check found a mismatch (or the plan validator a fault)
  kExitBadInput = 2,      ///< bad input, an unsupported request or output that could not be written
  kExitDevice = 3,        ///< a CUDA error (including a broken CUDA host) or GPU out-of-memory
  kExitInternal = 4,      ///< an internal error
  kExitNothingRan = 77,   ///< bench/compare/serve: no GPU stage ran because there is no device (no CUDA
                          ///< device, or a build without CUDA); the CPU parts ran and passed. With a
                          ///< device, stages that cannot serve the shape are rows marked "skipped"
};

/// Largest seed accepted (2^53 - 1): seeds are printed in JSON and CSV, where a number is a
/// double, so a larger one would not read back exactly.
inline constexpr uint64_t kMaxSeed = (uint64_t{1} << 53) - 1;

/// The decimal integer `text` if it is a seed (in [0, kMaxSeed]), else nullopt. Seeds are read as
/// text: CLI11 would wrap "-1" into 2^64 - 1.
std::optional<uint64_t> parse_seed(const std::string& text);

/// Refuses an empty value ("--tree ''" must not mean "the default").
const CLI::Validator& non_empty();

/// Makes every numeric option (INT, UINT, FLOAT, STEPS) of `app`, its commands and their option
/// groups refuse a base prefix (0x, 0b, 0o) and an integer's leading zero: CLI11 reads integers
/// with base 0, so "--page 020" would be page 16. Call once, after every option is added.
void require_decimal_numbers(CLI::App& app);

/// The numbers of a comma-separated list given to option `what`. Throws Error(usage) at the first
/// item that is not a number satisfying `valid` ("WHAT: 'ITEM' is not KIND") and on an
/// empty list ("WHAT needs at least one NOUN").
std::vector<double> parse_number_list(const std::string& text, const std::string& what, const std::string& kind,
                                      const std::string& noun, bool (*valid)(double));

/// A workload chosen on the command line, before it is built.
struct WorkloadChoice {
  TokenTree tree;
  Shape shape;
  uint64_t seed = 0;
  bool shuffle = true;
};

/// The [W] options: one of a positional name/spec/file, --preset, --tree, --workload,
/// --random-tree, --hetero; shape overrides; seed and shuffle; --quiet.
class WorkloadOptions {
 public:
  /// Registers the options on `app`.
  void add_to(CLI::App& app);
  /// Resolves the options; throws Error(usage) on a bad combination or value.
  WorkloadChoice resolve() const;

 private:
  /// Registers --hetero in the workload group `g` and its knobs in their own group.
  void add_hetero(CLI::App& app, CLI::Option_group& g);

  std::string positional_, preset_, tree_, file_;
  std::string random_seed_;  ///< --random-tree, checked by the seed validator
  RandomTreeOptions random_;
  std::string hetero_seed_;  ///< --hetero, checked by the seed validator
  HeteroOptions hetero_;
  std::string model_;  ///< --model: a preset of serving/model.hpp giving heads and head dim
  std::string heads_, dtype_, kv_dtype_;
  int head_dim_ = 0, page_ = 0;
  CLI::Option* head_dim_option_ = nullptr;
  CLI::Option* page_option_ = nullptr;
  std::string seed_ = "1";
  bool shuffle_ = false;  ///< --shuffle: the default, accepted for clarity
  bool no_shuffle_ = false;
};

/// Fewest timed runs of the bench protocol (`--repeats`): the median of fewer is too noisy.
inline constexpr int kMinRepeats = 20;
/// Most timed runs or warm-ups one measurement takes (`--repeats`, `--warmup`): each flushes the
/// L2 first, so 10^5 runs of a millisecond step are already minutes of device time.
inline constexpr int kMaxTimingRuns = 100000;

/// Throws Error(usage) unless `repeats` is in [kMinRepeats, kMaxTimingRuns] and `warmup` in
/// [0, kMaxTimingRuns] (bench, compare and sparse's --repeats and --warmup).
void check_timing_runs(int repeats, int warmup);

/// Adds `--format` to `app`, storing into `out`.
void add_format(CLI::App& app, std::string& out);

/// Adds `--fill-window` (PlannerOptions::fill_window_waves of stages 7-8) to `app`, storing into
/// `out`; check_fill_window() refuses a value outside 1..kMaxFillWindowWaves.
void add_fill_window(CLI::App& app, int& out);
/// Throws Error(usage) unless `waves` is a window add_fill_window() accepts.
void check_fill_window(int waves);
/// Adds `--max-cluster` (PlannerOptions::max_cluster of stage 9) to `app`, storing into `out`;
/// check_max_cluster() (planner/cluster.hpp) refuses a size other than 1, 2 or 4.
void add_max_cluster(CLI::App& app, int& out);
/// Stage 8's routing (PlannerOptions::hopper) as the command line gives it, and its options.
struct HopperRoutingFlags {
  /// --hopper-min-kv, --hopper-wide-kv, --hopper-rows, --hopper-min-piece, --hopper-small-loader
  HopperRouting routing = kStage8Routing;
  CLI::Option* min_option = nullptr;    ///< set by add_hopper_routing()
  CLI::Option* wide_option = nullptr;   ///< set by add_hopper_routing()
  CLI::Option* rows_option = nullptr;   ///< set by add_hopper_routing()
  CLI::Option* piece_option = nullptr;  ///< set by add_hopper_routing()
  /// Throws Error(usage) unless the routing passes check_hopper_routing() (planner/plan.hpp) and
  /// --hopper-wide-kv is 0 or at least --hopper-min-kv: below it the planner packs a range at most
  /// 64 rows already, so a smaller wide bound would change nothing (the library takes it).
  void check() const;
  /// True when the command line gave any of the four options that change stage 8's plan (the
  /// loader of its 16-row packs does not).
  bool given() const {
    for (const CLI::Option* o : {min_option, wide_option, rows_option, piece_option})
      if (o && o->count() > 0) return true;
    return false;
  }
};
/// Adds `--hopper-min-kv`, `--hopper-wide-kv`, `--hopper-rows`, `--hopper-min-piece` and `--hopper-small-loader`
/// to `app`, storing into `out.routing`; check_hopper_routing() (planner/plan.hpp) refuses a negative
/// count or rows other than 64, 128 or 192.
void add_hopper_routing(CLI::App& app, HopperRoutingFlags& out);

/// Stages 7-8's leaf tails on the command line: --take-leaves (plan) or --no-take-leaves (bench,
/// compare: the stages take them by default), --tail-rows, --tail-min-cut.
struct LeafTailFlags {
  bool take = false;                   ///< PlannerOptions::take_leaves; add_leaf_tails() sets its default
  int rows = kLeafTailRows;            ///< --tail-rows (PlannerOptions::leaf_tail_rows)
  double min_cut = kTailMinCtaCut;     ///< --tail-min-cut (PlannerOptions::leaf_tail_min_cut)
  /// Copies the three into `o`.
  void apply(PlannerOptions& o) const {
    o.take_leaves = take;
    o.leaf_tail_rows = rows;
    o.leaf_tail_min_cut = min_cut;
  }
};

/// Adds the leaf tails' options to `app`: with `stages` (bench, compare: the stages' default, tails
/// on) `--no-take-leaves` and, excluding it, --tail-rows (1-192) and --tail-min-cut (0-1); without
/// (plan: the planner's default, off) --take-leaves and, needing it, the same two.
void add_leaf_tails(CLI::App& app, LeafTailFlags& out, bool stages);

/// Adds `--quiet` (no progress lines) to `app`.
void add_quiet(CLI::App& app);

/// A one-line summary of a workload for progress output.
std::string describe(const WorkloadChoice& w);

}  // namespace patlab::cli
