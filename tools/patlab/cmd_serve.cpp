// patlab serve TRACE: the decode loop over a living cache (serve_loop.hpp). The trace drives the
// scheduler and the block manager step by step; each step's batch is planned by the incremental
// planner (validated, optionally against make_plan()), and on a GPU the chosen stage runs on
// every layer of a pool that lives across steps (gpu::ServeSession). Without a GPU everything but
// the kernels runs, one line says so, and the exit code is 77.
#include <chrono>
#include <cmath>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/error.hpp"
#include "patlab/gpu.hpp"
#include "patlab/output_file.hpp"
#include "patlab/serving/serve_loop.hpp"
#include "patlab/stages.hpp"
#include "serving_options.hpp"
#include "version.hpp"

namespace patlab::cli {

namespace {

/// Default KV capacity of one layer, GiB: 32 layers of it (32 GiB) fit an H200 with room to spare.
constexpr double kServeDefaultCapacityGib = 1.0;
/// Most layers: more than any preset (Llama-3-70B has 80).
constexpr int kMaxServeLayers = 128;
/// Largest pool (all layers) serve allocates: below the 141 GB (131 GiB) of an H200, the largest
/// GPU patlab runs on, leaving room for q, the output, partials and the L2 flush buffer.
constexpr double kMaxServePoolGib = 120.0;
/// Default assumed decode step time, ms (maps arrival seconds to steps, as memsim does).
constexpr double kServeDefaultStepMs = 20.0;
/// Seconds between progress lines.
constexpr double kServeProgressSeconds = 2.0;

struct ServeCliOptions {
  ServingOptions serving;  ///< TRACE, --model, --page, --write-trace; capacity_gib is per layer here
  std::string heads, dtype;
  int head_dim = 0;
  int32_t capacity_blocks = 0;
  int layers = 1;
  std::string stage = "pat";
  int64_t steps = 0;
  int max_running = 0;
  std::string check_steps = "1";
  bool compare_scratch = false;
  std::string seed = "1";  ///< --seed as given: parse_seed() reads it
  int max_kv_tile = kDefaultMaxKvTile;
  double step_ms = kServeDefaultStepMs;
  std::string format = "table";
  std::string series;
  CLI::Option* head_dim_option = nullptr;
  CLI::Option* capacity_gib_option = nullptr;
  CLI::Option* capacity_blocks_option = nullptr;
};

/// The GPU session as the loop's executor.
class SessionExecutor : public serving::StepExecutor {
 public:
  explicit SessionExecutor(gpu::ServeSession& session) : session_(session) {}
  bool planner_options(PlannerOptions& options) const override { return session_.planner_options(options); }
  void apply(const serving::WriteLog& log) override { session_.apply(log); }
  double set_batch(const PagedLayout& layout, const Plan* plan) override { return session_.set_batch(layout, plan); }
  std::vector<double> run_layers() override { return session_.run_layers(); }
  CheckResult check_layer0() override { return session_.check_layer0(); }

 private:
  gpu::ServeSession& session_;
};

/// The GPU stage `name` names (id or slug); Error(usage) listing the stages otherwise.
const StageInfo& gpu_stage(const std::string& name) {
  const StageInfo* info = find_stage(name);
  if (info && info->needs_gpu) return *info;
  std::string known;
  for (const StageInfo& g : gpu_stages()) known += (known.empty() ? "" : ", ") + std::to_string(g.id) + " " + g.slug;
  throw Error(ErrorKind::usage, "unknown GPU stage '" + name + "' (stages: " + known + ")");
}

/// --check-steps: a count >= 0 or "all".
int64_t parse_check_steps(const std::string& text) {
  if (text == "all") return serving::kCheckAllSteps;
  size_t used = 0;
  int64_t v = -1;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  require(used == text.size() && v >= 0, "--check-steps must be a count >= 0 or 'all' (got '" + text + "')");
  return v;
}

/// --seed: a decimal integer in [0, kMaxSeed], the workload commands' rule (options.hpp).
uint64_t serve_seed(const std::string& text) {
  const std::optional<uint64_t> seed = parse_seed(text);
  require(seed.has_value(), "--seed must be an integer in [0, 2^53 - 1] (got '" + one_line(text) + "')");
  return *seed;
}

/// The model's attention shape with the --heads/--head-dim/--dtype overrides, validated.
Shape serve_shape(const ServeCliOptions& o) {
  Shape s = o.serving.preset().shape(o.serving.page);
  if (!o.heads.empty()) parse_heads(o.heads, s);
  if (o.head_dim_option->count() > 0) s.head_dim = o.head_dim;
  if (!o.dtype.empty()) s.dtype = parse_dtype(o.dtype);
  s.validate();
  return s;
}

/// Blocks of one layer's pool: --capacity-blocks, or --capacity-gib over the bytes of one block.
int32_t pool_blocks(const ServeCliOptions& o, const Shape& shape) {
  const double block_bytes = static_cast<double>(shape.page_size * shape.kv_bytes_per_token());
  const bool given = o.capacity_blocks_option->count() > 0;
  require(!given || o.capacity_blocks > 0, "--capacity-blocks must be > 0 (got " + std::to_string(o.capacity_blocks) + ")");
  const double blocks = given ? o.capacity_blocks : std::floor(o.serving.capacity_bytes() / block_bytes);
  require(blocks >= 1, "--capacity-gib " + number_text(o.serving.capacity_gib) +
                           " is too small for one block of " + std::to_string(static_cast<int64_t>(block_bytes)) +
                           " bytes");
  require(blocks <= static_cast<double>(INT32_MAX), "--capacity-gib " + number_text(o.serving.capacity_gib) +
                                                       " is more than 2^31 - 1 blocks of " +
                                                       std::to_string(static_cast<int64_t>(block_bytes)) + " bytes");
  return static_cast<int32_t>(blocks);
}

/// Refuses bad values before the trace is read or anything is allocated.
serving::ServeLoopOptions loop_options(const ServeCliOptions& o) {
  serving::ServeLoopOptions lo;
  lo.shape = serve_shape(o);
  lo.capacity_blocks = pool_blocks(o, lo.shape);
  lo.layers = o.layers;
  lo.max_running = o.max_running;
  lo.step_seconds = o.step_ms / 1000.0;
  lo.max_steps = o.steps;
  lo.check_steps = parse_check_steps(o.check_steps);
  lo.compare_scratch = o.compare_scratch;
  lo.max_kv_tile = o.max_kv_tile;
  const double pool = static_cast<double>(lo.capacity_blocks) * lo.shape.page_size *
                      static_cast<double>(lo.shape.kv_bytes_per_token()) * lo.layers;
  const double limit = kMaxServePoolGib * static_cast<double>(int64_t{1} << 30);
  require(pool <= limit, "the pool of " + std::to_string(lo.layers) + " layers x " + std::to_string(lo.capacity_blocks) +
                             " blocks needs " + Cell::num(pool / static_cast<double>(int64_t{1} << 30), 1).text +
                             " GiB, over the " + Cell::num(kMaxServePoolGib, 0).text + " GiB serve allocates at most");
  return lo;
}

void check_scalars(const ServeCliOptions& o) {
  require(o.layers >= 1 && o.layers <= kMaxServeLayers,
          "--layers must be in [1, " + std::to_string(kMaxServeLayers) + "] (got " + std::to_string(o.layers) + ")");
  require(o.steps >= 0, "--steps must be >= 0 (0: until the trace is done)");
  require(o.max_running >= 0, "--max-running must be >= 0 (0: no limit)");
  check_step_ms(o.step_ms);
  require(o.max_kv_tile == 32 || o.max_kv_tile == 64 || o.max_kv_tile == 128, "--max-kv-tile must be 32, 64 or 128");
  serve_seed(o.seed);
  parse_check_steps(o.check_steps);
}

/// A number of the series, or the empty text (CSV) / null (JSON) when it was not measured.
std::string series_number(double v, bool json) {
  if (std::isnan(v)) return json ? "null" : "";
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

/// The update path of a planned step ("fast", ...; quoted in JSON), empty or null otherwise.
std::string plan_path_text(const serving::ServeStep& s, bool json) {
  if (std::isnan(s.plan_ms)) return json ? "null" : "";
  const std::string name = update_path_name(s.plan_path);
  return json ? "\"" + name + "\"" : name;
}

/// Writes every step as CSV, or as JSON lines when the file name ends in ".jsonl".
void write_series(const std::string& path, const serving::ServeResult& r) {
  const bool json = path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  const char* names[] = {"step", "running", "waiting", "admitted", "finished", "preempted", "decode_tokens",
                         "prefill_tokens", "written_tokens", "copied_blocks", "blocks_in_use", "kv_bytes_in_use",
                         "sharing", "packs", "plan_ms", "scratch_ms", "set_batch_ms", "kernel_us_layer",
                         "kernel_us_total", "checked", "validate_ms", "plan_path"};
  write_output_file(path, "series file", [&](std::ostream& out) {
    if (!json) {
      for (size_t i = 0; i < std::size(names); ++i) out << (i ? "," : "") << names[i];
      out << '\n';
    }
    for (const serving::ServeStep& s : r.steps) {
      const std::string values[] = {
          std::to_string(s.step), std::to_string(s.running), std::to_string(s.waiting), std::to_string(s.admitted),
          std::to_string(s.finished), std::to_string(s.preempted), std::to_string(s.decode_tokens),
          std::to_string(s.prefill_tokens), std::to_string(s.written_tokens), std::to_string(s.copied_blocks),
          std::to_string(s.blocks_in_use), std::to_string(s.kv_bytes_in_use), series_number(s.sharing, json),
          std::to_string(s.packs), series_number(s.plan_ms, json), series_number(s.scratch_ms, json),
          series_number(s.set_batch_ms, json), series_number(s.kernel_us_layer, json),
          series_number(s.kernel_us_total, json), s.checked ? (json ? "true" : "1") : (json ? "false" : "0"),
          series_number(s.validate_ms, json), plan_path_text(s, json)};
      for (size_t i = 0; i < std::size(names); ++i) {
        if (json) out << (i ? ", \"" : "{\"") << names[i] << "\": " << values[i];
        else out << (i ? "," : "") << values[i];
      }
      out << (json ? "}\n" : "\n");
    }
  });
}

std::string device_text(const gpu::DeviceInfo& d) {
  if (!d.available) return "none (" + d.reason + "): the GPU stage did not run";
  return d.name + " (" + std::to_string(d.sm_count) + " SMs)";
}

Table run_table(const ServeCliOptions& o, const serving::Trace& trace, const serving::ServeLoopOptions& lo,
                const StageInfo& stage, const gpu::DeviceInfo& device, const serving::ServeResult& r) {
  const int64_t block_bytes = int64_t{lo.shape.page_size} * lo.shape.kv_bytes_per_token();
  const serving::ModelPreset& model = o.serving.preset();
  return key_values("serve run", {
      {"trace", trace.description},
      {"requests", Cell::integer(static_cast<int64_t>(trace.requests.size()))},
      {"sequences (samples)", Cell::integer(r.sequences)},
      {"model (heads, head dim)", model.name + " (" + model.source + ")"},
      {"shape", lo.shape.describe()},
      {"layers", Cell::integer(lo.layers)},
      {"pool per layer", std::to_string(lo.capacity_blocks) + " blocks = " +
                             Cell::bytes(static_cast<double>(block_bytes) * lo.capacity_blocks).text},
      {"pool, all layers", Cell::bytes(static_cast<double>(block_bytes) * lo.capacity_blocks * lo.layers)},
      {"stage", std::to_string(stage.id) + " " + stage.slug},
      {"device", device_text(device)},
      {"planner", std::string(r.planned_with_executor ? "the stage's options" : "default options") + ": " +
                      std::to_string(r.planner.sms) + " SMs, max KV tile " + std::to_string(r.planner.max_kv_tile) +
                      ", KV split " + (r.planner.split_kv ? "on" : "off")},
      {"decode step (assumed, maps arrivals to steps)", Cell::num(o.step_ms, 1).text + " ms"},
      {"max running sequences", o.max_running ? std::to_string(o.max_running) : std::string("no limit")},
      {"preemption", "vLLM v1: recompute the most recently admitted running sequence"},
      {"trace seed / K, V, q seed", std::to_string(trace.seed) + " / " + std::to_string(serve_seed(o.seed))},
      {"commit", patlab_commit()},
  });
}

Table summary_table(const ServeCliOptions& o, const serving::ServeResult& r, const serving::ServeSummary& m,
                    bool gpu_ran) {
  const std::string tail = "p" + std::to_string(static_cast<int>(serving::kServeTailQuantile * 100));
  const auto measured = [](bool ran, Cell c) { return ran ? c : Cell("not measured"); };
  return key_values("serve summary", {
      {"steps", Cell::integer(m.steps)},
      {"idle steps jumped over (nothing running or waiting)", Cell::integer(m.idle_steps)},
      {"steps with a batch", Cell::integer(m.batch_steps)},
      {"sequences finished", std::to_string(r.finished) + " of " + std::to_string(r.sequences)},
      {"preemptions", Cell::integer(r.preemptions)},
      {"largest batch", Cell::integer(m.max_running)},
      {"peak KV in use (all layers)", Cell::bytes(static_cast<double>(m.peak_kv_bytes))},
      {"mean sharing (tokens referenced per token stored)", Cell::num(m.mean_sharing, 2)},
      {"plan ms (incremental), median", Cell::num(m.plan_ms_median, 4)},
      {"plan ms (incremental), " + tail, Cell::num(m.plan_ms_p99, 4)},
      {"plan ms (from scratch), median", measured(o.compare_scratch, Cell::num(m.scratch_ms_median, 4))},
      {"plan ms (from scratch), " + tail, measured(o.compare_scratch, Cell::num(m.scratch_ms_p99, 4))},
      {"speedup of incremental over scratch (medians)", measured(o.compare_scratch, Cell::num(m.speedup, 2))},
      {"planned steps by update path", describe_paths(m.plan_paths)},
      {"validator ms per step, median (not in the plan time)", Cell::num(m.validate_ms_median, 4)},
      {"kernel us per layer, median", measured(gpu_ran, Cell::num(m.kernel_us_median, 1))},
      {"kernel us per layer, " + tail, measured(gpu_ran, Cell::num(m.kernel_us_p99, 1))},
      {"kernel us per step (all layers), median", measured(gpu_ran, Cell::num(m.step_kernel_us_median, 1))},
      {"set batch ms (upload tables, lengths, q; prepare the stage), median",
       measured(gpu_ran, Cell::num(m.set_batch_ms_median, 4))},
      {"plan time as % of one layer's kernel time (medians)", measured(gpu_ran, Cell::num(m.plan_percent_of_layer, 1))},
      {"plans", std::string(o.compare_scratch ? "valid and identical to make_plan() on every step"
                                              : "valid on every step") + (r.fault.empty() ? " (PASS)" : " (FAIL)")},
      {"layer 0 checked on", gpu_ran ? std::to_string(r.checked_steps) + " steps" : std::string("not run")},
  });
}

/// A progress line every kServeProgressSeconds.
serving::ServeProgress progress_lines() {
  auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  return [last](const serving::ServeResult& r) {
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - *last).count() < kServeProgressSeconds || r.steps.empty()) return;
    *last = now;
    const serving::ServeStep& s = r.steps.back();
    progress("serve: step " + std::to_string(s.step) + ", " + std::to_string(s.running) + " running, " +
             std::to_string(r.finished) + "/" + std::to_string(r.sequences) + " sequences finished");
  };
}

int run_serve(const ServeCliOptions& o) {
  const Format format = parse_format(o.format);
  check_scalars(o);
  const StageInfo& stage = gpu_stage(o.stage);
  const serving::ServeLoopOptions lo = loop_options(o);
  // What run_serve_loop() refuses, before the prompts are expanded: one line, exit 2.
  const serving::Trace trace = o.serving.load([&lo](const serving::Trace& t) {
    t.check_step_simulation(int64_t{lo.capacity_blocks} * lo.shape.page_size, lo.shape.page_size, lo.max_running,
                            lo.step_seconds);
  });
  // The device next: a broken CUDA host stops here; none at all runs the loop without kernels.
  const gpu::DeviceInfo device = gpu::probe();
  if (device.broken) throw Error(ErrorKind::device, "CUDA does not work on this host: " + device.reason);
  std::unique_ptr<gpu::ServeSession> session;
  std::unique_ptr<SessionExecutor> executor;
  if (device.available) {
    gpu::ServeConfig config;
    config.shape = lo.shape;
    config.pool_blocks = lo.capacity_blocks;
    config.layers = lo.layers;
    config.stage = stage.slug;
    config.max_kv_tile = o.max_kv_tile;
    config.seed = serve_seed(o.seed);
    session = std::make_unique<gpu::ServeSession>(config);
    executor = std::make_unique<SessionExecutor>(*session);
  } else {
    progress("serve: no GPU stage runs (" + device.reason + "); the scheduler, block manager and planner run on the CPU");
  }
  const serving::ServeResult r = serving::run_serve_loop(trace, lo, executor.get(), progress_lines());
  if (!o.series.empty()) write_series(o.series, r);
  const serving::ServeSummary m = serving::summarize(r);
  print(std::cout, {run_table(o, trace, lo, stage, device, r), summary_table(o, r, m, executor != nullptr)}, format);
  if (!r.fault.empty()) {
    std::cerr << "patlab: serve: FAIL at " << one_line(r.fault) << "\n";
    return kExitCheckFailed;
  }
  if (r.trace_done && r.finished != r.sequences) {
    std::cerr << "patlab: serve: finished " << r.finished << " of " << r.sequences << " sequences\n";
    return kExitCheckFailed;
  }
  if (!executor) {
    progress("serve: GPU stage skipped (" + device.reason + "); the CPU parts ran and passed");
    return kExitNothingRan;
  }
  return kExitOk;
}

}  // namespace

void add_serve(CLI::App& app, Action& action) {
  auto o = std::make_shared<ServeCliOptions>();
  o->serving.capacity_gib = kServeDefaultCapacityGib;
  auto* cmd = app.add_subcommand(
      "serve", "Decode loop on a trace: scheduler and block manager per step, the incremental plan (validated), the "
               "stage on every layer of a living K/V pool; plan time, kernel time, memory, sharing per step (without a "
               "GPU: everything but the kernels, exit 77)");
  cmd->add_option("TRACE", o->serving.trace,
                  "A trace file (docs/trace-format.md) or a generator spec gen:requests=N,rate=R,prompt=MEAN,"
                  "output=MEAN,sigma=S,max=T,system=LENxFRAC[+...],n=N,seed=S")
      ->required();
  std::string names;
  for (const auto& m : serving::model_presets()) names += (names.empty() ? "" : ", ") + m.name;
  cmd->add_option("--model", o->serving.model, "Model preset giving heads and head dim (" + names + ")")
      ->capture_default_str();
  cmd->add_option("--heads", o->heads, "Query/KV heads, e.g. 32/8 (overrides the model's)")->check(non_empty());
  o->head_dim_option = cmd->add_option("--head-dim", o->head_dim, "Head dimension: 64, 128 or 256 (overrides the model's)");
  cmd->add_option("--page", o->serving.page, "Tokens per KV block: 16, 32 or 64")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "Storage type of q, K, V: fp16 or bf16")->check(non_empty());
  o->capacity_blocks_option = cmd->add_option("--capacity-blocks", o->capacity_blocks, "KV blocks of one layer's pool");
  o->capacity_gib_option =
      cmd->add_option("--capacity-gib", o->serving.capacity_gib,
                      "KV memory of one layer's pool, GiB (instead of blocks), in (0, " + number_text(kMaxCapacityGib) +
                          "]; at most 2^31 - 1 blocks and " + number_text(kMaxServePoolGib) + " GiB over all layers")
          ->capture_default_str();
  o->capacity_blocks_option->excludes(o->capacity_gib_option);
  cmd->add_option("--layers", o->layers, "Layers: one pool slice each, same block tables and plan")
      ->capture_default_str();
  cmd->add_option("--stage", o->stage, "GPU stage, id or slug (patlab list)")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Most decode steps; 0 = until the trace is done")->capture_default_str();
  cmd->add_option("--max-running", o->max_running, "Most running sequences (vLLM max_num_seqs); 0 = memory is the limit")
      ->capture_default_str();
  cmd->add_option("--check-steps", o->check_steps,
                  "Check layer 0 against the float64 oracle on the first K steps with a batch (0: none, or 'all')")
      ->capture_default_str();
  cmd->add_flag("--compare-scratch", o->compare_scratch,
                "Also plan every step from scratch (make_plan), time it, and require the same plan");
  cmd->add_option("--seed", o->seed, "Seed of the K, V and q values on the GPU (an integer in [0, 2^53 - 1])")
      ->capture_default_str();
  cmd->add_option("--max-kv-tile", o->max_kv_tile, "Cap on the KV tile the planner picks (32, 64 or 128)")
      ->capture_default_str();
  cmd->add_option("--step-ms", o->step_ms, step_ms_help())->capture_default_str();
  cmd->add_option("--write-trace", o->serving.write_trace, "Also write the trace (e.g. a generated one) to this JSON file")
      ->check(non_empty());
  cmd->add_option("--series", o->series,
                  "Write every step to this CSV file, or JSON lines if it ends in .jsonl (tools/plot_serving.py "
                  "serve); idle steps jumped over (nothing running or waiting before an arrival) have no row: the "
                  "step column skips them")
      ->check(non_empty());
  add_format(*cmd, o->format);
  add_quiet(*cmd);
  cmd->callback([&action, o] { action = [o] { return run_serve(*o); }; });
}

}  // namespace patlab::cli
