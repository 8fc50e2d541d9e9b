// patlab check: the oracle checks itself (attention executed pack by pack and merged must equal
// naive attention).
#include <chrono>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/oracle.hpp"
#include "patlab/plan.hpp"
#include "patlab/planner.hpp"

namespace patlab::cli {

namespace {

/// Chunk length of the simple splitter, in pages.
constexpr int kCheckChunkPages = 4;

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void add_check(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("check", "Oracle self-check: attention run pack by pack and merged vs naive attention "
                                          "(exit 0 on agreement, 1 on mismatch)");
  auto opts = std::make_shared<WorkloadOptions>();
  auto format = std::make_shared<std::string>("table");
  opts->add_to(*cmd);
  add_format(*cmd, *format);
  cmd->callback([&action, opts, format] {
    action = [opts, format] {
      const Format f = parse_format(*format);
      WorkloadChoice w = opts->resolve();
      progress("building " + describe(w));
      Workload work = make_workload(w.tree, w.shape, w.seed, w.shuffle);
      auto t0 = std::chrono::steady_clock::now();
      AttentionResult naive = naive_attention(work);
      const double naive_ms = ms_since(t0);
      Table t;
      t.title = "oracle self-check (" + w.tree.description + ", seed " + std::to_string(w.seed) + ")";
      t.columns = {"plan", "packs", "partials", "max rel. difference", "bound", "time ms", "verdict"};
      t.add({"naive (reference)", "-", "-", "-", "-", Cell::num(naive_ms, 1), "-"});
      bool ok = true;
      auto check_plan = [&](const Plan& plan) {
        auto t1 = std::chrono::steady_clock::now();
        AttentionResult packed = packed_attention(work, plan);
        const double ms = ms_since(t1);
        const double diff = max_relative_difference(packed, naive);
        const bool pass = diff <= kOracleAgreement;
        ok = ok && pass;
        char d[32], b[32];
        std::snprintf(d, sizeof d, "%.2e", diff);
        std::snprintf(b, sizeof b, "%.0e", kOracleAgreement);
        t.add({plan.strategy, Cell::integer(static_cast<int64_t>(plan.packs.size())), Cell::integer(plan.total_partials()),
               d, b, Cell::num(ms, 1), pass ? "PASS" : "FAIL"});
      };
      check_plan(chunked_plan(work.layout, kCheckChunkPages * w.shape.page_size));
      const Plan planned = make_plan(work.layout, PlannerOptions{});
      const std::vector<std::string> faults = validate_plan(work.layout, planned);
      for (const std::string& fault : faults) std::cerr << "patlab: plan fault: " << fault << "\n";
      if (faults.empty()) {
        check_plan(planned);
      } else {
        ok = false;
        t.add({planned.strategy, Cell::integer(static_cast<int64_t>(planned.packs.size())),
               Cell::integer(planned.total_partials()), "-", "-", "-",
               "FAIL: invalid plan (" + std::to_string(faults.size()) + " faults)"});
      }
      print(std::cout, {t}, f);
      return ok ? 0 : 1;
    };
  });
}

}  // namespace patlab::cli
