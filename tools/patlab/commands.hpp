// The subcommands of patlab. Each add_* registers one on `app` and, when it is chosen, sets
// `action` to the function that runs it and returns the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

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

}  // namespace patlab::cli
