// patlab check: the oracle checks itself (attention executed pack by pack and merged must equal
// naive attention).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/error.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::cli {

namespace {

/// Test-only: names a fault that `patlab check` injects on purpose, so that the tests can see
/// exit 1 without a GPU. Never set it otherwise.
constexpr const char* kInjectFaultVariable = "PATLAB_INJECT_FAULT";
/// Relative error the "output" fault adds to one element of the packed oracle's output (far
/// above kOracleAgreement, far below anything a real bug would look like).
constexpr double kInjectedRelativeError = 1e-9;

/// The faults PATLAB_INJECT_FAULT may name.
enum class Fault {
  none,
  plan,    ///< the planner's plan loses its last pack: the validator must object
  output,  ///< one element of the packed oracle's output (planner's plan) moves a little
};

Fault injected_fault() {
  const char* v = std::getenv(kInjectFaultVariable);
  if (!v) return Fault::none;
  const std::string s = v;
  if (s == "plan") return Fault::plan;
  if (s == "output") return Fault::output;
  throw Error(ErrorKind::usage, std::string(kInjectFaultVariable) + "='" + s + "' (test-only; expected plan or output)");
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string sci(double v, const char* fmt) {
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

int run_check(const WorkloadOptions& opts, const std::string& format) {
  const Format f = parse_format(format);
  const Fault fault = injected_fault();
  WorkloadChoice w = opts.resolve();
  progress("building " + describe(w));
  Workload work = [&] {
    Phase phase("building the workload");
    return make_workload(w.tree, w.shape, w.seed, w.shuffle);
  }();
  auto t0 = std::chrono::steady_clock::now();
  AttentionResult naive = [&] {
    Phase phase("oracle (float64)");
    return naive_attention(work);
  }();
  const double naive_ms = ms_since(t0);
  Table t;
  t.title = "oracle self-check (" + w.tree.description + ", seed " + std::to_string(w.seed) + ")";
  t.columns = {"plan", "packs", "partials", "max rel. difference", "bound", "time ms", "verdict"};
  t.add({"naive (reference)", Cell::none(), Cell::none(), Cell::none(), Cell::none(), Cell::num(naive_ms, 1), Cell::none()});
  bool ok = true;
  auto check_plan = [&](const Plan& plan, bool perturb) {
    auto t1 = std::chrono::steady_clock::now();
    AttentionResult packed = [&] {
      Phase phase("packed oracle (" + plan.strategy + ")");
      return packed_attention(work, plan);
    }();
    if (perturb) packed.o.front() += kInjectedRelativeError * std::max(std::fabs(packed.o.front()), 1.0);
    const double ms = ms_since(t1);
    const double diff = max_relative_difference(packed, naive);
    const bool pass = diff <= kOracleAgreement;
    ok = ok && pass;
    t.add({plan.strategy, Cell::integer(static_cast<int64_t>(plan.packs.size())), Cell::integer(plan.total_partials()),
           Cell::sci(diff, 2), Cell::sci(kOracleAgreement, 0), Cell::num(ms, 1), pass ? "PASS" : "FAIL"});
  };
  check_plan(chunked_plan(work.layout, kSelfCheckChunkPages * w.shape.page_size), false);
  Plan planned = make_plan(work.layout, PlannerOptions{});
  if (fault == Fault::plan) planned.packs.pop_back();
  const std::vector<std::string> faults = validate_plan(work.layout, planned);
  for (const std::string& fault_line : faults) std::cerr << "patlab: plan fault: " << fault_line << "\n";
  if (faults.empty()) {
    check_plan(planned, fault == Fault::output);
  } else {
    ok = false;
    t.add({planned.strategy, Cell::integer(static_cast<int64_t>(planned.packs.size())),
           Cell::integer(planned.total_partials()), Cell::none(), Cell::sci(kOracleAgreement, 0), Cell::none(),
           "FAIL: invalid plan (" + std::to_string(faults.size()) + " faults)"});
  }
  print(std::cout, {t}, f);
  return ok ? kExitOk : kExitCheckFailed;
}

}  // namespace

void add_check(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("check", "Oracle self-check: attention run pack by pack and merged vs naive attention "
                                          "(exit 0 on agreement, 1 on mismatch)");
  cmd->footer(std::string("Test-only: ") + kInjectFaultVariable +
              "=plan|output makes the check fail on purpose (a plan without its last pack, or a packed-oracle "
              "output off by " + sci(kInjectedRelativeError, "%.0e") + "), so that tests can see exit 1.");
  auto opts = std::make_shared<WorkloadOptions>();
  auto format = std::make_shared<std::string>("table");
  opts->add_to(*cmd);
  add_format(*cmd, *format);
  cmd->callback([&action, opts, format] { action = [opts, format] { return run_check(*opts, *format); }; });
}

}  // namespace patlab::cli
