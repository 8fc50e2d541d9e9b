// The subcommands of patlab. Each add_* registers one on `app` and, when it is chosen, sets
// `action` to the function that runs it and returns the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "options.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::cli {

using Action = std::function<int()>;

void add_list(CLI::App& app, Action& action);
void add_workload(CLI::App& app, Action& action);
void add_check(CLI::App& app, Action& action);
void add_plan(CLI::App& app, Action& action);
void add_bench(CLI::App& app, Action& action);
void add_compare(CLI::App& app, Action& action);
void add_export(CLI::App& app, Action& action);
void add_memsim(CLI::App& app, Action& action);
void add_layerkv(CLI::App& app, Action& action);
void add_serve(CLI::App& app, Action& action);
void add_packinfer(CLI::App& app, Action& action);
void add_sparse(CLI::App& app, Action& action);

/// Most decode steps `patlab plan --incremental` runs.
inline constexpr int kMaxIncrementalSteps = 100000;
/// `patlab plan --incremental STEPS` (cmd_plan_incremental.cpp): decode steps on the workload,
/// each planned from scratch and by the incremental planner; times both, requires equal plans.
/// Returns the exit code (1 when a plan differs or is invalid).
int run_plan_incremental(const WorkloadChoice& choice, const PlannerOptions& options, int steps, Format format);

}  // namespace patlab::cli
