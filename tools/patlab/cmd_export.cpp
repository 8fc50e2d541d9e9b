// patlab export: write a workload and the oracle's answer to a folder, for the peers
// (tools/peers/) and any other program that should run exactly the same inputs.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/truth/check.hpp"
#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/report/export.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/truth/verify.hpp"

namespace patlab::cli {

namespace {

struct ExportOptions {
  WorkloadOptions workload;
  std::string out;
  std::string format = "table";
};

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

/// Refuses an --out that cannot become a folder of files: an existing non-folder, a folder
/// (or the nearest existing parent of a new one) that is not writable. Checked before any work.
void check_out_folder(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path path(out);
  if (fs::exists(path, ec)) {
    require(fs::is_directory(path, ec), "--out '" + out + "' exists and is not a folder");
    require(access(out.c_str(), W_OK | X_OK) == 0, "--out '" + out + "' is not writable");
    return;
  }
  fs::path parent = fs::absolute(path, ec).parent_path();
  while (!parent.empty() && !fs::exists(parent, ec) && parent != parent.parent_path()) parent = parent.parent_path();
  require(fs::is_directory(parent, ec), "--out '" + out + "': '" + parent.string() + "' is not a folder");
  require(access(parent.c_str(), W_OK | X_OK) == 0,
          "--out '" + out + "' cannot be created ('" + parent.string() + "' is not writable)");
}

int run_export(const ExportOptions& o) {
  const Format format = parse_format(o.format);
  check_out_folder(o.out);
  const WorkloadChoice choice = o.workload.resolve();
  progress("building " + describe(choice));
  auto phase = std::make_unique<Phase>("building the workload");
  const Workload w = make_workload(choice.tree, choice.shape, choice.seed, choice.shuffle);
  progress("oracle: float64 attention and the fp32 emulation on the CPU");
  phase = std::make_unique<Phase>("oracle and emulation");
  const auto t0 = std::chrono::steady_clock::now();
  const Reference ref = make_reference(w);
  const double emulated_l2 = ref.emulated_rel_l2;
  const double oracle_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  phase.reset();
  progress("writing " + o.out);
  export_workload(w, ref, o.out);

  const PagedLayout& L = w.layout;
  const Tolerance& tol = tolerance(L.shape.dtype, L.shape.kv_dtype);
  const int64_t outputs = int64_t{L.num_requests()} * L.shape.num_q_heads * L.shape.head_dim;
  // q (16-bit) + both pools + block tables and lengths (int32) + oracle o, lse and emulation row errors (float32)
  const int64_t file_bytes = outputs * 2 + L.pool_bytes() +
                             int64_t{L.num_requests()} * (L.max_blocks_per_request() + 1) * 4 +
                             outputs * 4 + int64_t{L.num_requests()} * L.shape.num_q_heads * 4 * 2;
  Table t = key_values("export", {
      {"folder", o.out},
      {"workload", choice.tree.description},
      {"shape", choice.shape.describe()},
      {"kv dtype", kv_dtype_name(choice.shape.kv_dtype, choice.shape.dtype)},
      {"seed", Cell::integer(static_cast<int64_t>(choice.seed))},
      {"requests", Cell::integer(L.num_requests())},
      {"KV blocks (physical)", Cell::integer(L.num_blocks)},
      {"unique bytes (KV + q + out)", Cell::bytes(static_cast<double>(traffic::unique_bytes(L)))},
      {"per-request KV bytes", Cell::bytes(static_cast<double>(L.total_kv_bytes()))},
      {"files written", Cell::bytes(static_cast<double>(file_bytes))},
      {"emulation rel. L2 error", Cell::sci(emulated_l2)},
      {"check rule", "per element |err| <= " + sci(tol.atol) + " + " + sci(tol.rtol) + " |ref|; per row rel. L2 <= " +
                         sci(kEmulationFactor) + " x the emulation's + " + sci(tol.row_floor)},
      {"oracle time s", Cell::num(oracle_s, 2)},
  });
  print(std::cout, {t}, format);
  return 0;
}

}  // namespace

void add_export(CLI::App& app, Action& action) {
  auto o = std::make_shared<ExportOptions>();
  auto* cmd = app.add_subcommand("export", "Write a workload (q, paged K/V, block tables) and the oracle's output to a "
                                           "folder, for the peers in tools/peers/ (see docs/export-format.md)");
  o->workload.add_to(*cmd);
  add_format(*cmd, o->format);
  cmd->add_option("--out", o->out, "Folder to write (created if missing; files of the same names are replaced)")
      ->required()
      ->check(non_empty());
  cmd->callback([&action, o] { action = [o] { return run_export(*o); }; });
}

}  // namespace patlab::cli
