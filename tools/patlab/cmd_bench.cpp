// patlab bench / patlab compare: check GPU stages against the oracle, then time them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/truth/check.hpp"
#include "patlab/error.hpp"
#include "patlab/gpu.hpp"
#include "patlab/output_file.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/packinfer/groups.hpp"
#include "patlab/planner/cluster.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner/stage_traffic.hpp"
#include "patlab/stages.hpp"
#include "patlab/truth/verify.hpp"
#include "version.hpp"

namespace patlab::cli {

namespace {

/// The bandwidth of the CPU mode's predicted times, GB/s: the device-to-device copy bandwidth
/// (read + write) that `patlab bench` measured on the H200, 4185-4236 GB/s over the runs in
/// docs/results/2026-12-01-h200-* ("copy GB/s"; tests/cli/test_cli.py checks the range).
constexpr double kDefaultBandwidthGbs = 4200;
/// Slowest and fastest --bandwidth, GB/s: a PCIe link to well past any HBM (the prediction divides
/// by it; 1e-300 printed 300-digit times).
constexpr double kMinBandwidthGbs = 1, kMaxBandwidthGbs = 100000;
/// Where kDefaultBandwidthGbs comes from, as --help and the CPU mode's output say it.
constexpr const char* kDefaultBandwidthSource =
    "the H200's device-to-device copy bandwidth measured by patlab bench (docs/results/2026-12-01-h200-*)";
/// What the prediction is, as the CPU mode's output says it.
constexpr const char* kPredictionModel =
    "model bytes / bandwidth only: launch-bound stages (tiny workloads) run slower than predicted";

struct BenchOptions {
  WorkloadOptions workload;
  std::vector<std::string> stages;
  std::string format = "table";
  bool no_check = false;
  bool warm_l2 = false;
  bool clean_l2 = false;  ///< read the flush buffer back after writing it (no dirty lines left)
  bool no_graph = false;
  int repeats = 30;
  int warmup = 5;
  int max_kv_tile = kDefaultMaxKvTile;
  int fill_window = kDefaultFillWindowWaves;    ///< stages 7-8: waves within which the wave fill prices cuts
  int max_cluster = kStagesMaxCluster;  ///< stage 9: the largest cluster size
  std::string cluster_merge = gpu::cluster_merge_name(gpu::kDefaultClusterMerge);  ///< stage 9: --cluster-merge
  int group_rows = 0;                           ///< stage 10: its kernel instance's row cap (0: its model chooses)
  HopperRoutingFlags hopper;                    ///< stage 8: --hopper-min-kv ... --hopper-min-piece
  std::string bucket_launch = gpu::bucket_launch_name(gpu::BucketLaunch::chain);  ///< stages 7-8: --bucket-launch
  LeafTailFlags leaves;                         ///< stages 7-8: --no-take-leaves, --tail-rows, --tail-min-cut
  bool fp32_partials = !traffic::kStagesHalfPartials;  ///< stages 4-9: --fp32-partials
  double bandwidth_gbs = kDefaultBandwidthGbs;  ///< the CPU mode's prediction
  bool bandwidth_given = false;                 ///< --bandwidth was on the command line
  std::string cta_trace;                        ///< bench --cta-trace: the CTA timeline's CSV file
};

/// The run table's row that says how stages 4-9 store their partials' o, followed by `suffix`.
void add_partials_row(Table& run, const BenchOptions& o, const std::string& suffix = "") {
  run.add({"partials' o (stages 4-9, --fp32-partials)", (o.fp32_partials ? "fp32" : "16-bit (the output's type)") + suffix});
}

/// The run table's row that says whether stages 7-8 take leaf tails, and under which gates.
void add_leaf_tails_row(Table& run, const BenchOptions& o) {
  run.add({"leaf tails (stages 7-8, --no-take-leaves)",
           o.leaves.take ? "taken in packs of up to " + std::to_string(o.leaves.rows) + " rows where they remove " +
                               Cell::num(100 * o.leaves.min_cut, 0).text + "% of the CTAs or more and the merge goes"
                         : "off"});
}

/// --bucket-launch's value as a gpu::BucketLaunch; throws Error(usage) for any other word.
gpu::BucketLaunch parse_bucket_launch(const std::string& name) {
  static constexpr gpu::BucketLaunch kLaunches[] = {gpu::BucketLaunch::gates, gpu::BucketLaunch::chain};
  return parse_choice("--bucket-launch", name, kLaunches, gpu::bucket_launch_name);
}

/// --cluster-merge's value as a gpu::ClusterMerge; throws Error(usage) for any other word.
gpu::ClusterMerge parse_cluster_merge(const std::string& name) {
  static constexpr gpu::ClusterMerge kMerges[] = {gpu::ClusterMerge::folded, gpu::ClusterMerge::kernel};
  return parse_choice("--cluster-merge", name, kMerges, gpu::cluster_merge_name);
}

/// Traced runs of each stage that --cta-trace records (after its timed runs).
constexpr int kCtaTraceRuns = 3;

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return buf;
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

/// One stage's row of the results table.
struct Row {
  std::string stage, check, notes;
  gpu::CtaTrace trace;  ///< with --cta-trace: its pack kernels' CTAs
  double time_us = 0, min_us = 0, max_us = 0, graph_us = 0, plan_ms = 0;
  int64_t model_bytes = 0;
  bool timed = false;
  bool failed = false;  ///< the oracle check failed (not timed)
};

/// Multiply-adds of the float64 work (oracle, fp32 emulation, packed oracle: QK and PV each) that
/// bench and compare do on the CPU when there is no GPU. A larger workload gets the plan, its
/// validation and the traffic model only; `patlab check` runs the oracle on any size.
constexpr double kCpuOracleBudgetMacs = 4e9;

/// The requested GPU stages as slugs, in order, each once: ids ("7") and slugs ("pat") both name
/// a stage; bench without --stage and compare take all of them.
std::vector<std::string> requested_stages(const BenchOptions& o, bool compare) {
  std::vector<std::string> names = o.stages;
  if (compare || names.empty())
    for (const StageInfo& s : gpu_stages()) names.push_back(s.slug);
  std::vector<std::string> slugs;
  for (const std::string& name : names) {
    const StageInfo* info = find_stage(name);
    if (!info || !info->needs_gpu) {
      std::string known;
      for (const StageInfo& g : gpu_stages())
        known += (known.empty() ? "" : ", ") + std::to_string(g.id) + " " + std::string(g.slug);
      throw Error(ErrorKind::usage, "unknown GPU stage '" + name + "' (stages: " + known + ")");
    }
    if (std::find(slugs.begin(), slugs.end(), info->slug) == slugs.end()) slugs.push_back(info->slug);
  }
  return slugs;
}

/// The "run" table's workload rows.
Table run_table(const WorkloadChoice& choice, const PagedLayout& L) {
  return key_values("run", {
      {"workload", choice.tree.description},
      {"shape", choice.shape.describe()},
      {"kv dtype", kv_dtype_name(choice.shape.kv_dtype, choice.shape.dtype)},
      {"seed", Cell::integer(static_cast<int64_t>(choice.seed))},
      {"requests", Cell::integer(L.num_requests())},
      {"unique bytes (KV + q + out)", Cell::bytes(static_cast<double>(traffic::unique_bytes(L)))},
      {"per-request KV bytes", Cell::bytes(static_cast<double>(L.total_kv_bytes()))},
      {"commit", patlab_commit()},
      {"date", utc_now()},
  });
}

/// The CPU mode's "prediction" table: each requested stage's model bytes (stage_traffic(), for
/// kDefaultSms SMs) and the time they take at `o.bandwidth_gbs`.
Table prediction_table(const PagedLayout& L, const std::vector<std::string>& stages, const BenchOptions& o) {
  StageTrafficOptions model;
  model.max_kv_tile = o.max_kv_tile;
  model.fill_window_waves = o.fill_window;
  model.max_cluster = o.max_cluster;
  model.group_rows = o.group_rows;
  model.hopper = o.hopper.routing;
  model.take_leaves = o.leaves.take;
  model.leaf_tail_rows = o.leaves.rows;
  model.leaf_tail_min_cut = o.leaves.min_cut;
  model.half_partials = !o.fp32_partials;
  Table t;
  t.title = "prediction";
  t.columns = {"stage", "model_bytes", "bandwidth_GBs", "predicted_us", "notes"};
  for (const std::string& slug : stages) {
    const StageTraffic s = stage_traffic(slug, L, model);
    t.add({slug, Cell::integer(s.bytes), Cell::num(o.bandwidth_gbs, 0), Cell::num(traffic::predicted_us(s.bytes, o.bandwidth_gbs), 1),
           s.notes});
  }
  return t;
}

/// Without a usable device: the CPU parts, chosen before any data is built. The plan stage 7
/// would run, validated, and the bytes each strategy moves, always; each requested stage's model
/// bytes and its time at the stated bandwidth (prediction_table()); the oracle, the fp32
/// emulation and the plan run through the packed oracle when they fit kCpuOracleBudgetMacs.
/// Returns kExitNothingRan when they pass, kExitCheckFailed when they do not.
int run_cpu_parts(const WorkloadChoice& choice, const std::vector<std::string>& stages,
                  const gpu::DeviceInfo& device, const BenchOptions& o, Format format) {
  std::string skipped;
  for (const std::string& s : stages) skipped += (skipped.empty() ? "" : ", ") + s;
  progress(device.reason + ": skipping the GPU stages; planning stage 7's work on the CPU");
  const PagedLayout L = build_layout(choice.tree, choice.shape, choice.shuffle, choice.seed);
  Table run = run_table(choice, L);
  PlannerOptions stage7;  // stage 7's plan, with the leaf tails when asked
  o.leaves.apply(stage7);
  const Plan plan = make_plan(L, stage7);
  const std::vector<std::string> faults = validate_plan(L, plan);
  const Traffic traffic = traffic_model(L, plan);
  run.add({"device", "none"});
  run.add({"GPU stages skipped", skipped + " (" + device.reason + ")"});
  add_partials_row(run, o, ": in the model bytes");
  add_leaf_tails_row(run, o);
  run.add({"plan (" + std::to_string(kDefaultSms) + " SMs)",
           std::to_string(plan.packs.size()) + " packs x " + std::to_string(L.shape.num_kv_heads) + " KV heads, " +
               std::to_string(plan.total_partials()) + " partials; validator " +
               (faults.empty() ? "PASS" : "FAIL: " + faults.front())});
  // Three float64 passes (oracle, emulation, packed oracle), each QK and PV over every token.
  const double macs = 3.0 * 2.0 * static_cast<double>(L.total_tokens()) * L.shape.num_q_heads * L.shape.head_dim;
  bool agree = true;
  if (!faults.empty()) {
    run.add({"oracle", "not run (the plan is invalid)"});
  } else if (macs > kCpuOracleBudgetMacs) {
    run.add({"oracle", "not run: " + sci(macs) + " multiply-adds, over the CPU budget of " +
                           sci(kCpuOracleBudgetMacs) + " (patlab check runs it)"});
  } else {
    progress("building " + describe(choice));
    const Workload w = [&] {
      Phase phase("building the workload");
      return make_workload(choice.tree, choice.shape, choice.seed, choice.shuffle);
    }();
    const Reference ref = [&] {
      Phase phase("oracle (float64) and the fp32 emulation");
      return make_reference(w);
    }();
    const double diff = [&] {
      Phase phase("packed oracle on the plan");
      return max_relative_difference(packed_attention(w, plan), ref.oracle);
    }();
    agree = diff <= kOracleAgreement;
    run.add({"oracle", "ran on the CPU (float64); fp32 emulation rel. L2 error " + sci(ref.emulated_rel_l2)});
    run.add({"packed oracle on the plan", "max rel. difference to naive " + sci(diff) + (agree ? " PASS" : " FAIL")});
  }
  run.add({"bytes: one query per CTA", Cell::bytes(static_cast<double>(traffic.per_query_head))});
  run.add({"bytes: one request per CTA", Cell::bytes(static_cast<double>(traffic.per_request))});
  run.add({"bytes: packed plan (fp32 partials, as the planner prices them)", Cell::bytes(static_cast<double>(traffic.packed))});
  run.add({"bandwidth GB/s", Cell::num(o.bandwidth_gbs, 0)});
  run.add({"bandwidth source", o.bandwidth_given ? std::string("--bandwidth") : std::string(kDefaultBandwidthSource)});
  run.add({"prediction", std::string(kPredictionModel) + "; " + std::to_string(kDefaultSms) + " SMs, stage 3 with " +
                             std::to_string(kSplitCtasPerSm) + " CTAs/SM"});
  print(std::cout, {run, prediction_table(L, stages, o)}, format);
  progress("GPU stages skipped (" + device.reason + "); the CPU parts ran");
  return faults.empty() && agree ? kExitNothingRan : kExitCheckFailed;
}

/// The options bench and compare refuse before any work (exit 2).
void check_bench_options(const BenchOptions& o) {
  check_timing_runs(o.repeats, o.warmup);
  require(o.max_kv_tile == 32 || o.max_kv_tile == 64 || o.max_kv_tile == 128, "--max-kv-tile must be 32, 64 or 128");
  check_fill_window(o.fill_window);
  check_max_cluster(o.max_cluster, "--max-cluster");
  parse_cluster_merge(o.cluster_merge);
  o.hopper.check();
  parse_bucket_launch(o.bucket_launch);
  packinfer::check_group_rows(o.group_rows);
  require(o.bandwidth_gbs >= kMinBandwidthGbs && o.bandwidth_gbs <= kMaxBandwidthGbs,
          "--bandwidth must be in [" + number_text(kMinBandwidthGbs) + ", " + number_text(kMaxBandwidthGbs) +
              "] GB/s (got " + number_text(o.bandwidth_gbs) + ")");
  if (!o.cta_trace.empty()) {
    require(gpu::built_with_cta_trace(), std::string("--cta-trace: ") + gpu::kNoCtaTrace);
    const bool existed = static_cast<bool>(std::ifstream(o.cta_trace));
    const bool writable = static_cast<bool>(std::ofstream(o.cta_trace, std::ios::app));
    if (writable && !existed) std::remove(o.cta_trace.c_str());
    require(writable, "--cta-trace: cannot write '" + o.cta_trace + "'");
  }
}

// [cta-trace-csv]
/// Writes the CTA timeline of every traced stage as CSV: one line per CTA (run, stage, the pack
/// tile of its kernel, blockIdx.x, SM, start and end in microseconds from its run's first CTA).
void write_cta_trace(const std::string& path, const std::vector<Row>& rows) {
  write_output_file(path, "CTA trace", [&](std::ostream& out) {
    out << "run,stage,kernel,block,sm,start_us,end_us\n";
    char line[160];
    for (const Row& r : rows)
      for (const gpu::CtaSpan& c : r.trace.ctas) {
        std::snprintf(line, sizeof line, "%d,%s,pack %dx%d,%d,%d,%.3f,%.3f\n", c.run, r.stage.c_str(), c.tile_m,
                      c.tile_n, c.block, c.sm, c.start_us, c.end_us);
        out << line;
      }
  });
}
// [cta-trace-csv]

/// The run table's rows about the device and the timing protocol.
void add_device_rows(Table& run, const gpu::DeviceInfo& device, double copy_gbs, const BenchOptions& o) {
  run.add({"device", device.name + " (" + std::to_string(device.sm_count) + " SMs, " +
                         std::to_string(device.l2_bytes >> 20) + " MiB L2)"});
  run.add({"SMs", Cell::integer(device.sm_count)});  // the device row's numbers, as numbers for JSON
  run.add({"L2 MiB", Cell::integer(device.l2_bytes >> 20)});
  run.add({"driver", device.driver.empty() ? std::to_string(device.driver_version) : device.driver});
  run.add({"CUDA runtime", std::to_string(device.runtime_version)});
  run.add({"max clocks (SM / memory, MHz)",
           std::to_string(device.sm_clock_mhz) + " / " + std::to_string(device.memory_clock_mhz)});
  run.add({"copy GB/s", Cell::num(copy_gbs, 0)});
  run.add({"L2", o.warm_l2    ? "warm (not flushed)"
                 : o.clean_l2 ? "flushed before every timed run, then read back (no dirty lines)"
                              : "flushed before every timed run"});
  run.add({"timing", std::to_string(o.warmup) + " warm-up runs, median of " + std::to_string(o.repeats) +
                         " CUDA-event timings (kernel time; plan time separate)"});
  run.add({"warm-up runs", Cell::integer(o.warmup)});
  run.add({"timed runs", Cell::integer(o.repeats)});
  run.add({"max KV tile (stages 5-7)", Cell::integer(o.max_kv_tile)});
  run.add({"wave fill window (stages 7-8)", Cell::integer(o.fill_window)});
  run.add({"largest cluster (stage 9)", Cell::integer(o.max_cluster)});
  run.add({"merge (stage 9, --cluster-merge)", o.cluster_merge});
  run.add({"group kernel rows (stage 10; 0: its model chooses)", Cell::integer(o.group_rows)});
  run.add({"shortest KV range on stage 8's kernel (--hopper-min-kv, tokens)", Cell::integer(o.hopper.routing.min_kv)});
  run.add({"shortest KV range in 128-row packs (--hopper-wide-kv, tokens)", Cell::integer(o.hopper.routing.wide_kv)});
  run.add({"most rows of a stage-8 pack (--hopper-rows)", Cell::integer(o.hopper.routing.max_rows)});
  run.add({"fewest KV tokens of a 128/192-row piece (--hopper-min-piece)", Cell::integer(o.hopper.routing.min_piece)});
  run.add({"stage 8's 16-row packs load by (--hopper-small-loader)", small_loader_name(o.hopper.routing.small_loader)});
  run.add({"bucket launch (stages 7-8, --bucket-launch)", o.bucket_launch});
  add_leaf_tails_row(run, o);
  add_partials_row(run, o);
  run.add({"check", o.no_check ? "skipped (--no-check)" : "every stage against the float64 oracle first"});
}

/// The yardsticks of the stages with 16-bit partials (reference_for_partials()), one per distinct
/// cut of the queries' keys: stages whose plans cut them alike share one emulation.
using PartialReferences = std::vector<std::pair<PartialSplit, Reference>>;

/// One stage on the device: prepare (plan time), check against the oracle unless --no-check
/// (a stage with 16-bit partials, the default of stages 4-9, against the emulation of its plan's
/// partials: reference_for_partials(), kept in `partial_refs`), then time eager launches and a
/// graph replay. A stage that fails its check is not timed.

Row measure_stage(gpu::Runner& runner, const std::string& slug, const Workload& w, const Reference& ref,
                  PartialReferences& partial_refs, const gpu::TimingOptions& timing, const BenchOptions& o) {
  const PagedLayout& L = w.layout;
  Row row;
  row.stage = slug;
  const std::string why = runner.unsupported(slug);
  if (!why.empty()) {
    row.check = "skipped: " + why;
    return row;
  }
  row.plan_ms = runner.prepare(slug);
  row.notes = runner.notes(slug);
  row.model_bytes = runner.model_bytes(slug);
  if (o.no_check) {
    runner.run_once(slug);
    row.check = "not checked";
  } else {
    const PartialSplit split = runner.half_partial_split(slug);
    const std::vector<float> got = decode(runner.run_once(slug), L.shape.dtype);
    CheckResult c;
    if (split.empty()) {
      c = check_output(got, ref, L.shape.dtype);
    } else {
      auto same = std::find_if(partial_refs.begin(), partial_refs.end(), [&](const auto& e) { return e.first == split; });
      if (same == partial_refs.end()) {
        progress(slug + ": the emulation of its 16-bit partials");
        partial_refs.emplace_back(split, reference_for_partials(ref, w, split));
        same = std::prev(partial_refs.end());
      }
      c = check_output(got, same->second, L.shape.dtype);
    }
    row.check = c.summary();
    row.failed = !c.pass;
  }
  if (!row.failed) {
    const gpu::Timing t = runner.time(slug, timing);
    row.time_us = t.median_us;
    row.min_us = t.min_us;
    row.max_us = t.max_us;
    if (!o.no_graph) row.graph_us = runner.time_graph(slug, timing).median_us;
    row.timed = true;
    if (!o.cta_trace.empty()) {
      row.trace = runner.trace_ctas(slug, kCtaTraceRuns);
      if (row.trace.dropped > 0)
        progress(slug + ": the CTA trace's buffer was full; " + std::to_string(row.trace.dropped) +
                 " CTAs not recorded");
    }
  }
  runner.release(slug);
  return row;
}

/// The results table: one row per stage, effective bandwidth on unique bytes, % of the copy
/// bandwidth, and the speedups over the first and the previous timed stage.
Table results_table(const std::vector<Row>& rows, const WorkloadChoice& choice, int64_t unique_bytes, double copy_gbs) {
  Table results;
  results.title = "results";
  results.columns = {"workload", "shape", "stage", "check", "time_us", "min_us", "max_us", "graph_us", "plan_ms",
                     "model_bytes", "unique_bytes", "eff_GBs", "pct_copy", "vs_first", "vs_prev", "notes"};
  const Row* first = nullptr;
  const Row* prev = nullptr;
  for (const Row& r : rows) {
    if (!r.timed) {
      results.add({choice.tree.description, choice.shape.describe(), r.stage, r.check, Cell::none(), Cell::none(),
                   Cell::none(), Cell::none(), Cell::none(), Cell::none(), Cell::integer(unique_bytes), Cell::none(),
                   Cell::none(), Cell::none(), Cell::none(), r.notes});
      continue;
    }
    const double gbs = static_cast<double>(unique_bytes) / (r.time_us * 1e-6) / 1e9;
    results.add({choice.tree.description, choice.shape.describe(), r.stage, r.check.substr(0, 4), Cell::num(r.time_us, 1), Cell::num(r.min_us, 1),
                 Cell::num(r.max_us, 1), r.graph_us > 0 ? Cell::num(r.graph_us, 1) : Cell::none(), Cell::num(r.plan_ms, 3),
                 Cell::integer(r.model_bytes), Cell::integer(unique_bytes), Cell::num(gbs, 0),
                 Cell::num(100.0 * gbs / copy_gbs, 1), Cell::num(first ? first->time_us / r.time_us : 1.0, 2),
                 prev ? Cell::num(prev->time_us / r.time_us, 2) : Cell::none(), r.notes});
    if (!first) first = &r;
    prev = &r;
  }
  return results;
}

int run_bench(const BenchOptions& o, bool compare) {
  // 1. Options, stages and workload, refused before any work.
  const Format format = parse_format(o.format);
  check_bench_options(o);
  const std::vector<std::string> stages = requested_stages(o, compare);
  const WorkloadChoice choice = o.workload.resolve();

  // 2. The device first: a host without one does only the cheap CPU parts, a broken one stops here.
  const gpu::DeviceInfo device = gpu::probe();
  if (device.broken) throw Error(ErrorKind::device, "CUDA does not work on this host: " + device.reason);
  if (!device.available) return run_cpu_parts(choice, stages, device, o, format);

  // 3. The batch and its float64 reference.
  progress("building " + describe(choice));
  auto phase = std::make_unique<Phase>("building the workload");
  const Workload w = make_workload(choice.tree, choice.shape, choice.seed, choice.shuffle);
  const PagedLayout& L = w.layout;
  phase = std::make_unique<Phase>("oracle (float64) and the fp32 emulation");
  Reference ref;
  if (!o.no_check) ref = make_reference(w);
  phase.reset();

  // 4. The device's copy bandwidth, the yardstick of every % copy.
  gpu::Runner runner(w);
  runner.set_max_kv_tile(o.max_kv_tile);
  runner.set_fill_window(o.fill_window);
  runner.set_max_cluster(o.max_cluster);
  runner.set_cluster_merge(parse_cluster_merge(o.cluster_merge));
  runner.set_group_rows(o.group_rows);
  runner.set_hopper_routing(o.hopper.routing);
  runner.set_bucket_launch(parse_bucket_launch(o.bucket_launch));
  runner.set_take_leaves(o.leaves.take, o.leaves.rows, o.leaves.min_cut);
  runner.set_half_partials(!o.fp32_partials);
  progress("measuring device-to-device copy bandwidth");
  const double copy_gbs = runner.copy_bandwidth_gbs();
  Table run = run_table(choice, L);
  add_device_rows(run, device, copy_gbs, o);

  // 5. Every stage: check first, then time.
  gpu::TimingOptions timing;
  timing.warmup = o.warmup;
  timing.repeats = o.repeats;
  timing.flush_l2 = !o.warm_l2;
  timing.clean_l2 = o.clean_l2;
  std::vector<Row> rows;
  PartialReferences partial_refs;
  for (size_t i = 0; i < stages.size(); ++i) {
    progress("[" + std::to_string(i + 1) + "/" + std::to_string(stages.size()) + "] " + stages[i]);
    rows.push_back(measure_stage(runner, stages[i], w, ref, partial_refs, timing, o));
  }

  // 6. The tables.
  Table checks;
  checks.title = "checks";
  checks.columns = {"stage", "verdict"};
  for (const Row& r : rows) checks.add({r.stage, r.check});
  print(std::cout, {run, results_table(rows, choice, traffic::unique_bytes(L), copy_gbs), checks}, format);
  if (!o.cta_trace.empty()) {
    write_cta_trace(o.cta_trace, rows);
    progress("CTA timeline written to " + o.cta_trace + " (tools/figures/cta_timeline.py draws it)");
  }
  const bool failed = std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.failed; });
  return failed ? kExitCheckFailed : kExitOk;
}

void add_bench_options(CLI::App& cmd, BenchOptions& o) {
  o.workload.add_to(cmd);
  add_format(cmd, o.format);
  cmd.add_flag("--no-check", o.no_check, "Time without checking against the oracle first");
  CLI::Option* warm = cmd.add_flag("--warm-l2", o.warm_l2, "Do not flush L2 before each timed run");
  cmd.add_flag("--clean-l2", o.clean_l2,
               "After the flush's writes, read the flush buffer back, so each timed run starts with no dirty "
               "line in L2 (the writes alone leave about the L2's size of dirty lines, which the timed run "
               "writes back to DRAM; a diagnostic, the default is the writes alone)")
      ->excludes(warm);
  cmd.add_flag("--no-graph", o.no_graph, "Skip the CUDA-graph replay timing");
  cmd.add_option("--repeats", o.repeats, "Timed runs (median reported; 20 to 100000)")->capture_default_str();
  cmd.add_option("--warmup", o.warmup, "Untimed runs before timing")->capture_default_str();
  cmd.add_option("--max-kv-tile", o.max_kv_tile, "Cap on the KV tile the planner picks for stages 5-7 (32, 64 or 128)")
      ->capture_default_str();
  add_fill_window(cmd, o.fill_window);
  add_max_cluster(cmd, o.max_cluster);
  cmd.add_option("--cluster-merge", o.cluster_merge,
                 "Stage 9: where a query's partials are merged. kernel: by the merge kernel of stages 3-8 after "
                 "the persistent grid; folded: in the attention kernel, by the CTA whose item completes the "
                 "query (issue 13's design, no second kernel; 1.03-1.43x the time where measured, tutorial "
                 "chapter 18)")
      ->capture_default_str();
  cmd.add_option("--group-rows", o.group_rows,
                 "Stage 10: its group kernel's instance, the most rows of one work item: 16 or 64 (0: the instance "
                 "its model says ends first; tutorial chapter 23)")
      ->capture_default_str();
  add_hopper_routing(cmd, o.hopper);
  cmd.add_option("--bucket-launch", o.bucket_launch,
                 "Stages 7-8 on sm_90: how the tile buckets start, largest CTAs first. gates: a stream per "
                 "bucket, each launched eagerly waiting until the buckets of larger CTAs have begun all theirs "
                 "(launch completion events; a CUDA graph keeps the launch order alone). chain: one stream, each "
                 "bucket may begin once the one before it has begun all its CTAs (programmatic dependent "
                 "launch), the bucket of fewer packs first among buckets whose CTAs fit alike per SM (tutorial "
                 "chapter 16)")
      ->capture_default_str();
  add_leaf_tails(cmd, o.leaves, true);
  cmd.add_flag("--fp32-partials", o.fp32_partials,
               "Stages 4-9: store the partials' o in fp32 instead of the output's 16-bit type (the default, as vLLM's "
               "paged attention v2 keeps its partial outputs: half the bytes, lse fp32 either way; tutorial chapter "
               "17). The plans are the same either way");
  cmd.add_option_function<double>(
         "--bandwidth",
         [&o](double gbs) {
           o.bandwidth_gbs = gbs;
           o.bandwidth_given = true;
         },
         "Without a CUDA device: GB/s of the predicted time per stage (1 to 100000), model bytes / bandwidth only "
         "(default " +
             std::to_string(static_cast<int>(kDefaultBandwidthGbs)) + ": " + kDefaultBandwidthSource + ")")
      ->type_name("GBPS");
}

}  // namespace

void add_bench(CLI::App& app, Action& action) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Check stages against the oracle, then time them on the GPU "
                                          "(exit 1 if a check fails, 3 on a CUDA error or a broken CUDA host, "
                                          "77 if no stage ran: no CUDA device; then it prints the plan, each stage's model bytes and "
                                          "their time at --bandwidth)");
  add_bench_options(*cmd, *o);
  cmd->add_option("--stage", o->stages, "Stage(s) to run, by slug or id: --stage pat == --stage 7 (default: all GPU stages)")
      ->check(non_empty());
  cmd->add_option("--cta-trace", o->cta_trace,
                  "After timing each stage, run it " + std::to_string(kCtaTraceRuns) +
                      " more times with its pack kernels recording every CTA's SM and start/end, and write "
                      "them to this CSV file (run, stage, kernel, block, sm, start_us, end_us). Needs a build "
                      "configured with -Dcta_trace=true, whose kernels are a diagnostic variant (time with a "
                      "default build); the merge and the kernels other than the pack kernel are not recorded. Stage 9 "
                      "records each work item instead (kernel 'pack CxR': cluster size C, slice rows R, block = "
                      "the item) and the folded merge after it ('pack 0xQ': Q queries)")
      ->type_name("FILE")
      ->check(non_empty());
  cmd->callback([&action, o] { action = [o] { return run_bench(*o, false); }; });
}

void add_compare(CLI::App& app, Action& action) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("compare", "Run every stage of the registry on one workload, side by side "
                                            "(without a GPU: the CPU parts and each stage's model bytes and predicted time, says what was "
                                            "skipped and exits 77)");
  add_bench_options(*cmd, *o);
  cmd->callback([&action, o] { action = [o] { return run_bench(*o, true); }; });
}

}  // namespace patlab::cli
