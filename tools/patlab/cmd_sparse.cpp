// patlab sparse: sparse decode (NSA, FSA, PSA). Checks the parameters against the workload (one
// line, exit 2, or the clamps that --clamp allows, stated in the output), runs the float64 oracle
// dense and sparse, and prints the selection, the byte models of NSA's and FSA's loop orders, the
// error against dense attention and, with --curves, the error-vs-bytes sweep. With a GPU it then
// runs the method on it (cuda/sparse/): the GPU's selection against the CPU's (tie rule of
// sparse_check.hpp), every output against the float64 oracle (NaN-poisoned first), then the bench
// protocol's timings; nsa and fsa run both loop orders so that their ratio comes from one run,
// and NSA's order split into balanced chunks as well (the stronger NSA-side baseline where the
// (request, KV head) rows are fewer than the SMs). --no-check skips the two float64 oracles and
// the checks against them (timings of a workload checked elsewhere), as patlab bench's does.
// Without a GPU the GPU part is skipped and said so (exit 0 after the CPU report).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/cuda/sparse.hpp"
#include "patlab/error.hpp"
#include "patlab/gpu.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/sparse/fsa.hpp"
#include "patlab/sparse/sparse_check.hpp"
#include "patlab/sparse/sparse_oracle.hpp"

namespace patlab::cli {

namespace {

/// What a report cell says of a number or check that --no-check skipped.
constexpr const char* kSkippedNoCheck = "skipped (--no-check)";

/// The methods: which budget each uses and whose loop order it names.
enum class Method { nsa, fsa, psa };

struct SparseCliOptions {
  WorkloadOptions workload;
  std::string format = "table";
  std::string method = "nsa";
  std::string data = "peaked";
  std::string gates;  ///< empty: the library's default gates
  sparse::SparseOptions sparse;
  gpu::SpanOptions span;  ///< FSA's span shape (0: automatic) and the partials' type
  bool fp32_partials = !traffic::kStagesHalfPartials;  ///< --fp32-partials: FSA's and the split's partials' o in fp32
  bool curves = false;
  bool no_check = false;  ///< --no-check: no float64 oracle (dense or sparse), no GPU output check
  /// The options of one method's budget, set by add_sparse(): run_sparse() refuses those that
  /// nothing reads rather than ignore them: --top-n under psa (the curves sweep --curve-n), --tau
  /// under nsa and fsa (they sweep --curve-tau), and --min-budget and --max-budget under nsa and
  /// fsa without --curves (the curves' psa points read them).
  const CLI::Option* top_n_option = nullptr;
  const CLI::Option* tau_option = nullptr;
  std::vector<const CLI::Option*> budget_options;
  std::string curve_n = "3,4,6,8,12,16,24,32";
  std::string curve_tau = "0.5,0.6,0.7,0.8,0.9,0.95,0.99";
  gpu::TimingOptions timing;
};


Method parse_method(const std::string& s) {
  if (s == "nsa") return Method::nsa;
  if (s == "fsa") return Method::fsa;
  if (s == "psa") return Method::psa;
  throw Error(ErrorKind::usage, "--method '" + one_line(s) + "' (expected nsa, fsa or psa)");
}

DataKind parse_data(const std::string& s) {
  if (s == "flat") return DataKind::flat;
  if (s == "peaked") return DataKind::peaked;
  if (s == "clustered") return DataKind::clustered;
  if (s == "mixed") return DataKind::mixed;
  if (s == "streaming") return DataKind::streaming;
  throw Error(ErrorKind::usage, "--data '" + one_line(s) + "' (expected flat, peaked, clustered, mixed or streaming)");
}

/// A comma-separated list of numbers; `what` names the option in errors.
std::vector<double> parse_numbers(const std::string& text, const std::string& what) {
  return parse_number_list(text, what, "a number", "value", [](double v) { return std::isfinite(v); });
}

std::vector<int> parse_ints(const std::string& text, const std::string& what) {
  std::vector<int> out;
  for (double v : parse_numbers(text, what)) {
    require(v == std::floor(v) && v >= 0 && v <= kMaxRequestTokens, what + ": " + number_text(v) + " is not a count");
    out.push_back(static_cast<int>(v));
  }
  return out;
}

void set_gates(sparse::SparseOptions& o, const std::string& text) {
  const std::vector<double> g = parse_numbers(text, "--gates");
  require(g.size() == 3, "--gates takes three values (compressed, selected, window), got " + std::to_string(g.size()));
  o.gate_cmp = g[0];
  o.gate_sel = g[1];
  o.gate_win = g[2];
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

/// Runs `f` inside a progress phase and adds its time in ms to `ms`.
template <typename F>
auto timed(const std::string& name, double& ms, F&& f) {
  Phase phase(name);
  const auto t0 = std::chrono::steady_clock::now();
  auto out = f();
  ms = ms_since(t0);
  return out;
}

std::string parameters_of(const sparse::SparseOptions& o) {
  std::string s = "l=" + std::to_string(o.cmp_block) + " stride=" + std::to_string(o.cmp_stride) +
                  " l'=" + std::to_string(o.sel_block) + " w=" + std::to_string(o.window);
  if (o.budget == sparse::Budget::top_n) return s + " n=" + std::to_string(o.top_n);
  std::ostringstream t;
  t << " tau=" << o.tau << " budget=[" << o.min_budget << ", " << o.max_budget << "]";
  return s + t.str();
}

std::string gates_of(const sparse::SparseOptions& o) {
  std::ostringstream t;
  t << o.gate_cmp << ", " << o.gate_sel << ", " << o.gate_win;
  return t.str();
}

/// The selection's counts; `err` (null under --no-check) adds the true mass the choice covers.
Table selection_table(const PagedLayout& layout, const sparse::Selection& sel, const sparse::FsaView& view,
                      const sparse::SparseOptions& o, const sparse::SparseError* err) {
  int64_t all = 0, lo = INT64_MAX, hi = 0;
  double mass = 0;
  for (int r = 0; r < layout.num_requests(); ++r)
    all += int64_t{sparse::selection_block_count(layout.lengths[static_cast<size_t>(r)], o)} * sel.num_kv_heads;
  for (size_t i = 0; i < sel.blocks.size(); ++i) {
    lo = std::min<int64_t>(lo, static_cast<int64_t>(sel.blocks[i].size()));
    hi = std::max<int64_t>(hi, static_cast<int64_t>(sel.blocks[i].size()));
    mass += sel.estimated_mass[i];
  }
  const double rows = static_cast<double>(sel.blocks.size());
  return key_values("selection", {
      {"rows (request, KV head)", Cell::integer(static_cast<int64_t>(sel.blocks.size()))},
      {"selection blocks (all rows)", Cell::integer(all)},
      {"blocks read", Cell::integer(sel.total_blocks())},
      {"blocks read / all", Cell::num(static_cast<double>(sel.total_blocks()) / static_cast<double>(all), 3)},
      {"blocks per row: min", Cell::integer(lo)},
      {"blocks per row: mean", Cell::num(static_cast<double>(sel.total_blocks()) / rows, 2)},
      {"blocks per row: max", Cell::integer(hi)},
      {"estimated mass covered (mean)", Cell::num(mass / rows, 4)},
      {"true mass covered (mean)", err ? Cell::num(err->mean_true_mass, 4) : Cell::none()},
      {"true mass covered (min)", err ? Cell::num(err->min_true_mass, 4) : Cell::none()},
      {"physical blocks read (FSA)", Cell::integer(static_cast<int64_t>(view.blocks.size()))},
      {"rows per physical block: mean", Cell::num(static_cast<double>(view.total_rows()) /
                                                      static_cast<double>(std::max<size_t>(1, view.blocks.size())), 2)},
      {"rows per physical block: max", Cell::integer(view.max_rows())},
  });
}

Table orders_table(const PagedLayout& layout, const sparse::LoopOrderCost& nsa, const sparse::LoopOrderCost& fsa,
                   Method method) {
  Table t;
  t.title = "loop orders (selected branch, byte model)";
  t.columns = {"order", "KV bytes", "q bytes", "partial bytes", "out bytes", "total bytes", "vs dense",
               "tile rows useful", "tile rows padded", "tile use", "method's order"};
  const int64_t dense = traffic::per_request_bytes(layout);
  t.add({"dense (every token)", Cell::bytes(static_cast<double>(layout.total_kv_bytes())), Cell::none(), Cell::none(),
         Cell::none(), Cell::bytes(static_cast<double>(dense)), Cell::num(1.0, 3), Cell::none(), Cell::none(),
         Cell::none(), ""});
  auto row = [&](const char* name, const sparse::LoopOrderCost& c, bool mine) {
    t.add({name, Cell::bytes(static_cast<double>(c.kv_bytes)), Cell::bytes(static_cast<double>(c.q_bytes)),
           Cell::bytes(static_cast<double>(c.partial_bytes)), Cell::bytes(static_cast<double>(c.out_bytes)),
           Cell::bytes(static_cast<double>(c.total_bytes())),
           Cell::num(static_cast<double>(c.total_bytes()) / static_cast<double>(dense), 3), Cell::integer(c.useful_rows),
           Cell::integer(c.padded_rows), Cell::num(c.tile_utilisation(), 3), mine ? "yes" : ""});
  };
  row("NSA (per request, KV head)", nsa, method != Method::fsa);
  row("FSA (per physical block)", fsa, method == Method::fsa);
  return t;
}

/// FSA's spans as the GPU would cut them for this selection (fsa.hpp's fsa_spans(), with the run's
/// --span-blocks, --span-rows and partials, on `sms` SMs): the span model the GPU notes print,
/// computable without a GPU.
Table spans_table(const PagedLayout& layout, const sparse::FsaView& view, const sparse::SparseOptions& o,
                  const gpu::SpanOptions& span, int sms, const std::string& sms_source) {
  const int group = layout.shape.group();
  const sparse::FsaSpanPlan plan = sparse::plan_fsa_spans(layout, view, o.sel_block, span.blocks, span.rows, sms,
                                                          traffic::partial_out_elem_bytes(span.half_partials));
  const sparse::SpanPlanCost& c = plan.cost;
  const sparse::LoopOrderCost per_block = sparse::fsa_order_cost(layout, view);
  const double mean = static_cast<double>(view.blocks.size()) / static_cast<double>(std::max<int64_t>(1, c.spans));
  std::ostringstream height;
  height << std::setprecision(3) << plan.per_tile << " (" << static_cast<int>(plan.per_tile) * group
         << " rows of a pack of at most " << plan.rows;
  if (span.rows > 0)
    height << ", --span-rows)";
  else
    height << ": automatic, the 64-row cut's span model " << plan.tall_over_narrow << "x the 32-row cut's in "
           << plan.tall_packs << " CTAs; 64 where at most " << sparse::kTallPackBytes << "x and at least "
           << sparse::kTallMinCtasPerSm << " CTAs per SM)";
  Table t = key_values("FSA spans (host plan)", {
      {"SMs", std::to_string(sms) + " (" + sms_source + ")"},
      {"longest span (blocks)", std::to_string(plan.cap) + (span.blocks > 0 ? " (--span-blocks)" : " (about 2 spans per SM)")},
      {"requests per pack", height.str()},
      {"spans", Cell::integer(c.spans)},
      {"blocks per span: mean", Cell::num(mean, 2)},
      {"blocks per span: max", Cell::integer(c.longest)},
      {"packs (CTAs)", Cell::integer(c.packs)},
      {"(request, span) partials", Cell::integer(c.entries)},
      {"KV bytes (a span once per pack)", Cell::bytes(static_cast<double>(c.kv_bytes))},
      {"KV bytes / per-block model's", Cell::num(static_cast<double>(c.kv_bytes) / static_cast<double>(per_block.kv_bytes), 3)},
      {"q bytes", Cell::bytes(static_cast<double>(c.q_bytes))},
      {std::string("partial bytes (") + (span.half_partials ? "16-bit" : "fp32") + " o)",
       Cell::bytes(static_cast<double>(c.partial_bytes))},
      {"span model bytes", Cell::bytes(static_cast<double>(c.total_bytes()))},
  });
  return t;
}

Table error_table(const sparse::SparseAttention& s, const AttentionResult& dense, const sparse::SparseError& err) {
  Table t;
  t.title = "error vs dense (float64)";
  t.columns = {"output", "max |o - o_dense|"};
  t.add({"selected branch", Cell::sci(err.max_abs_error, 3)});
  t.add({"window branch", Cell::sci(sparse::max_abs_difference(s.window.o, dense.o), 3)});
  t.add({"compressed branch", Cell::sci(sparse::max_abs_difference(s.compressed.o, dense.o), 3)});
  t.add({"gated output", Cell::sci(sparse::max_abs_difference(s.o, dense.o), 3)});
  return t;
}

Table curves_table(const std::vector<sparse::CurvePoint>& pts) {
  Table t;
  t.title = "curves";
  t.columns = {"budget", "parameter", "blocks read", "KV bytes", "max abs error", "true mass (mean)"};
  for (const auto& p : pts)
    t.add({sparse::budget_name(p.budget), Cell::num(p.parameter, p.budget == sparse::Budget::top_n ? 0 : 3),
           Cell::integer(p.blocks_read), Cell::integer(p.kv_bytes), Cell::sci(p.max_abs_error, 4),
           Cell::num(p.mean_true_mass, 4)});
  return t;
}


/// The GPU orders a method runs: nsa and fsa both loop orders of top-n (their ratio measured in
/// one run) and NSA's split into balanced chunks (NSA's order with partials: a baseline that
/// fills the SMs when there are fewer (request, KV head) rows than SMs), psa the split.
std::vector<gpu::SparseOrder> gpu_orders(Method m) {
  if (m == Method::psa) return {gpu::SparseOrder::split};
  return {gpu::SparseOrder::nsa, gpu::SparseOrder::split, gpu::SparseOrder::fsa};
}

/// What the GPU part adds to the report, and whether its checks passed.
struct GpuPart {
  std::string status;  ///< the "GPU" field of the run table
  std::vector<Table> tables;
  bool pass = true;
};

/// The method on the GPU: its selection against the CPU's, every order's output against the
/// oracle (`cpu_s`, the CPU selection's; null under --no-check: those checks are skipped and said
/// so), then the timings.
GpuPart run_gpu(const gpu::DeviceInfo& dev, const Workload& work, const sparse::SparseOptions& o,
                const sparse::Selection& cpu_sel, const sparse::SparseAttention* cpu_s, Method method,
                const gpu::TimingOptions& timing, const gpu::SpanOptions& span) {
  GpuPart part;
  if (dev.broken) throw Error(ErrorKind::device, dev.reason);
  if (!dev.available) {
    part.status = "skipped: " + dev.reason +
                  (cpu_s ? " (CPU oracle, selection and byte models only)" : " (CPU selection and byte models only)");
    return part;
  }
  std::unique_ptr<gpu::SparseRunner> runner;
  try {
    Phase phase("uploading to the GPU");
    runner = std::make_unique<gpu::SparseRunner>(work, o);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::unsupported) throw;
    part.status = std::string("skipped: ") + e.what();
    return part;
  }
  const sparse::Selection sel = [&] {
    Phase phase("GPU selection");
    return runner->select();
  }();
  const sparse::SelectionAgreement agree = sparse::compare_selections(work, o, cpu_sel, sel);
  part.pass = agree.pass();
  // The oracle of the GPU's own choice (the same as the CPU's unless near ties were exchanged).
  std::optional<sparse::SparseAttention> own;
  if (cpu_s && sel.blocks != cpu_sel.blocks) own = sparse::sparse_attention(work, o, sel);
  const sparse::SparseAttention* ref = own ? &*own : cpu_s;
  const gpu::Timing t_sel = runner->time_selection(timing);
  const Shape& s = work.shape();
  Table t;
  t.title = "gpu";
  t.columns = {"method", "order", "check (gated output)", "check (selected branch)", "graph replay", "selected us",
               "selected us (graph)", "step us", "selection us", "blocks read", "physical blocks", "model bytes",
               "GB/s", "x vs nsa order", "x vs nsa order (graph)", "plan ms", "notes"};
  double nsa_us = 0, nsa_graph_us = 0;
  for (gpu::SparseOrder order : gpu_orders(method)) {
    const double plan_ms = runner->prepare(order, sel, span);
    const gpu::SparseOutputs out = [&] {
      Phase phase(std::string("GPU check, ") + gpu::order_name(order) + " order");
      return runner->run_once(order);
    }();
    const double roundings = gpu::check_roundings(order, span);
    std::string out_check = kSkippedNoCheck, sel_check = kSkippedNoCheck;
    if (ref) {
      const CheckResult c_out = sparse::check_sparse_output(work, out.out, ref->o, roundings);
      const CheckResult c_sel = sparse::check_sparse_output(work, out.selected, ref->selected.o, roundings);
      part.pass = part.pass && c_out.pass && c_sel.pass;
      out_check = c_out.summary();
      sel_check = c_sel.summary();
    }
    // The branch replayed from a CUDA graph writes what the direct launches wrote, bit for bit.
    const bool graph_same = runner->run_selected_graph_once(order) == out.selected;
    part.pass = part.pass && graph_same;
    gpu::Timing t_branch, t_graph, t_step;
    {
      Phase phase(std::string("GPU timing, ") + gpu::order_name(order) + " order");
      t_branch = runner->time_selected(order, timing);
      t_graph = runner->time_selected_graph(order, timing);
      t_step = runner->time_step(order, timing);
    }
    const sparse::FsaView view = sparse::fsa_view(work.layout, sel, o);
    const sparse::LoopOrderCost cost = order == gpu::SparseOrder::fsa ? sparse::fsa_order_cost(work.layout, view)
                                                                      : sparse::nsa_order_cost(work.layout, sel, o);
    const int64_t physical = order == gpu::SparseOrder::fsa ? static_cast<int64_t>(view.blocks.size())
                                                            : sel.total_blocks();
    if (order == gpu::SparseOrder::nsa) {
      nsa_us = t_branch.median_us;
      nsa_graph_us = t_graph.median_us;
    }
    t.add({method == Method::psa ? "psa" : "nsa/fsa (top-n)", gpu::order_name(order), out_check, sel_check,
           graph_same ? "PASS identical" : "FAIL differs from the direct launches", Cell::num(t_branch.median_us, 1),
           Cell::num(t_graph.median_us, 1), Cell::num(t_step.median_us, 1), Cell::num(t_sel.median_us, 1),
           Cell::integer(sel.total_blocks()), Cell::integer(physical), Cell::bytes(static_cast<double>(cost.total_bytes())),
           Cell::num(static_cast<double>(cost.total_bytes()) / (t_branch.median_us * 1e3), 1),
           nsa_us > 0 ? Cell::num(nsa_us / t_branch.median_us, 3) : Cell::none(),
           nsa_graph_us > 0 ? Cell::num(nsa_graph_us / t_graph.median_us, 3) : Cell::none(), Cell::num(plan_ms, 2),
           runner->notes(order)});
  }
  part.tables.push_back(key_values("gpu run", {
      {"device", dev.name},
      {"selection vs CPU", agree.summary()},
      {"outputs vs the oracle", ref ? "checked (columns 'check')" : "not checked (--no-check): timings only"},
      {"timing", "median of " + std::to_string(timing.repeats) + " CUDA-event timings after " +
                     std::to_string(timing.warmup) + " warm-ups, L2 flushed before each" +
                     (timing.clean_l2 ? " and read back (no dirty lines)" : "")},
      {"selected us", "the selected branch alone (packs, empty partials, merge); step us: selection, selected "
                      "branch, window and gates"},
      {"selected us (graph)", "the selected branch captured in a CUDA graph, replays timed alike (no host call "
                              "between its launches); graph replay: its output against the direct launches'"},
      {"partials' o (fsa, split; --fp32-partials)", span.half_partials ? "16-bit (the output's type)" : "fp32"},
      {"model bytes", "the order's byte model (fsa.hpp): KV of the chosen blocks as read, q, fp32 partials, "
                      "output; notes: FSA's span model, with the partials as stored"},
      {"shape", s.describe()},
  }));
  part.tables.push_back(std::move(t));
  part.status = !part.pass ? "ran: a check FAILED (table 'gpu')"
                : ref     ? "ran: every check passed (tables 'gpu run', 'gpu')"
                          : "ran: outputs not checked (--no-check); the selection and the graph replay checked, and passed";
  return part;
}

int run_sparse(SparseCliOptions o) {
  const Format format = parse_format(o.format);
  const Method method = parse_method(o.method);
  const DataKind data = parse_data(o.data);
  if (!o.gates.empty()) set_gates(o.sparse, o.gates);
  o.sparse.budget = method == Method::psa ? sparse::Budget::progressive : sparse::Budget::top_n;
  if (method == Method::psa) {
    require(o.top_n_option->count() == 0, "--top-n is the fixed budget of nsa and fsa; psa's budget is --tau, "
                                           "--min-budget and --max-budget");
  } else {
    require(o.tau_option->count() == 0, "--tau is psa's (the progressive budget); nsa and fsa take --top-n");
    for (const CLI::Option* budget : o.budget_options)
      require(o.curves || budget->count() == 0, budget->get_name() + " is psa's (the progressive budget), read by "
                                                "nsa and fsa only for the psa points of --curves");
  }
  require(!(o.curves && o.no_check), "--curves measures the error against the dense oracle, which --no-check skips");
  const std::vector<int> curve_n = o.curves ? parse_ints(o.curve_n, "--curve-n") : std::vector<int>{};
  const std::vector<double> curve_tau = o.curves ? parse_numbers(o.curve_tau, "--curve-tau") : std::vector<double>{};
  for (int n : curve_n) require(n >= sparse::kForcedBlocks, "--curve-n: " + std::to_string(n) + " is below the 3 forced blocks");
  for (double tau : curve_tau) require(tau > 0 && tau <= 1, "--curve-tau: " + number_text(tau) + " is outside (0, 1]");
  check_timing_runs(o.timing.repeats, o.timing.warmup);
  gpu::check_span_options(o.span);
  o.span.half_partials = !o.fp32_partials;
  const WorkloadChoice w = o.workload.resolve();
  // Every check that needs only the block tables, before any data is drawn.
  const PagedLayout layout = build_layout(w.tree, w.shape, w.shuffle, w.seed);
  const std::vector<std::string> clamps = o.sparse.check_against(layout);
  // A curve point of n past every request's blocks would read them all under a label that says n.
  int most_blocks = 0;
  for (int64_t len : layout.lengths) most_blocks = std::max(most_blocks, sparse::selection_block_count(len, o.sparse));
  for (int n : curve_n)
    require(n <= most_blocks, "--curve-n: " + std::to_string(n) + " is more than the " + std::to_string(most_blocks) +
                                  " selection blocks of the longest request (l' = " +
                                  std::to_string(o.sparse.sel_block) + ")");
  progress("building " + describe(w) + ", " + data_kind_name(data) + " data");
  const Workload work = [&] {
    Phase phase("building the workload");
    return make_workload(w.tree, w.shape, w.seed, w.shuffle, data);
  }();
  double dense_ms = 0, select_ms = 0, sparse_ms = 0, curves_ms = 0;
  // The selection always (the byte models and the host plan read it); the oracles unless --no-check.
  std::optional<AttentionResult> dense;
  if (!o.no_check) dense = timed("dense oracle (float64)", dense_ms, [&] { return naive_attention(work); });
  const sparse::Selection sel = timed("selection", select_ms, [&] { return sparse::select_blocks(work, o.sparse); });
  std::optional<sparse::SparseAttention> s;
  std::optional<sparse::SparseError> err;
  if (dense) {
    s = timed("sparse oracle (float64)", sparse_ms, [&] { return sparse::sparse_attention(work, o.sparse, sel); });
    err = sparse::selected_error(*s, *dense);
  }
  const sparse::FsaView view = sparse::fsa_view(work.layout, sel, o.sparse);
  const gpu::DeviceInfo dev = gpu::probe();
  const GpuPart gpu_part = run_gpu(dev, work, o.sparse, sel, s ? &*s : nullptr, method, o.timing, o.span);
  const auto oracle_ms = [&](double ms) { return dense ? Cell::num(ms, 1) : Cell(kSkippedNoCheck); };
  std::string clamp_text;
  for (const std::string& c : clamps) clamp_text += (clamp_text.empty() ? "" : "; ") + c;
  std::vector<Table> tables;
  tables.push_back(key_values("sparse run", {
      {"workload", w.tree.description},
      {"shape", w.shape.describe()},
      {"seed", Cell::integer(static_cast<int64_t>(w.seed))},
      {"data", data_kind_name(data)},
      {"method", o.method},
      {"budget", sparse::budget_name(o.sparse.budget)},
      {"parameters", parameters_of(o.sparse)},
      {"gates (compressed, selected, window)", gates_of(o.sparse)},
      {"clamps", clamps.empty() ? std::string("none") : clamp_text},
      {"dense oracle ms (CPU)", oracle_ms(dense_ms)},
      {"selection ms (CPU)", Cell::num(select_ms, 1)},
      {"sparse oracle ms (CPU)", oracle_ms(sparse_ms)},
      {"GPU", gpu_part.status},
  }));
  tables.push_back(selection_table(work.layout, sel, view, o.sparse, err ? &*err : nullptr));
  tables.push_back(orders_table(work.layout, sparse::nsa_order_cost(work.layout, sel, o.sparse),
                                sparse::fsa_order_cost(work.layout, view), method));
  if (method != Method::psa)
    tables.push_back(spans_table(work.layout, view, o.sparse, o.span, dev.available ? dev.sm_count : kDefaultSms,
                                 dev.available ? dev.name : "no GPU: the planner's default, an H100's or H200's"));
  if (dense) tables.push_back(error_table(*s, *dense, *err));
  if (o.curves)
    tables.push_back(curves_table(timed("error-vs-bytes sweep", curves_ms, [&] {
      return sparse::error_curves(work, o.sparse, *dense, curve_n, curve_tau);
    })));
  tables.insert(tables.end(), gpu_part.tables.begin(), gpu_part.tables.end());
  print(std::cout, tables, format);
  return gpu_part.pass ? kExitOk : kExitCheckFailed;
}

}  // namespace

void add_sparse(CLI::App& app, Action& action) {
  auto o = std::make_shared<SparseCliOptions>();
  auto* cmd = app.add_subcommand(
      "sparse", "Sparse decode (NSA's selection, FSA's loop order, PSA's progressive budget): float64 oracle vs "
                "dense, blocks read, byte models of both loop orders; on a GPU, checked against the oracle, then timed");
  o->workload.add_to(*cmd);
  add_format(*cmd, o->format);
  auto& s = o->sparse;
  cmd->add_option("--method", o->method, "nsa or fsa (top-n blocks; NSA's or FSA's loop order), psa (progressive budget)")
      ->capture_default_str();
  cmd->add_option("--data", o->data,
                  "How q and K are drawn: peaked (q ~ N(0, 16)), flat (q ~ N(0, 1)), clustered (q ~ N(0, 16), "
                  "keys share a centre per run of 32 tokens), mixed (clustered keys; DuoAttention's share of the "
                  "KV heads, half with grouped queries and a quarter at group 1, drawn from the seed, spread: "
                  "q ~ N(0, 4) at their query heads) or streaming (clustered; the other KV heads attend to the "
                  "first 64 and the last 256 tokens of a request, whose keys share a direction with their queries)")
      ->capture_default_str();
  cmd->add_option("--cmp-block", s.cmp_block, "l: tokens per compressed block (summary: the mean of K and V)")
      ->capture_default_str();
  cmd->add_option("--cmp-stride", s.cmp_stride, "Stride between compressed blocks (1..l)")->capture_default_str();
  cmd->add_option("--sel-block", s.sel_block, "l': tokens per selection block (a multiple of the page)")
      ->capture_default_str();
  o->top_n_option =
      cmd->add_option("--top-n", s.top_n, "n: blocks per (request, KV head), the 3 forced ones included (nsa, fsa)")
          ->capture_default_str();
  cmd->add_option("--window", s.window, "w: tokens of the sliding-window branch")->capture_default_str();
  cmd->add_option("--gates", o->gates,
                  "Gates of the compressed, selected and window branches, each in [0, 1] (default 1/3 each)")
      ->check(non_empty());
  o->tau_option =
      cmd->add_option("--tau", s.tau, "psa: estimated attention mass to cover, in (0, 1]")->capture_default_str();
  o->budget_options = {
      cmd->add_option("--min-budget", s.min_budget, "psa (and the psa points of --curves): fewest blocks per "
                      "(request, KV head), >= 3")
          ->capture_default_str(),
      cmd->add_option("--max-budget", s.max_budget, "psa (and the psa points of --curves): most blocks per "
                      "(request, KV head)")
          ->capture_default_str(),
  };
  cmd->add_flag("--clamp", s.clamp,
                "Clamp n, the minimum budget and w per request instead of refusing (the output lists the clamps)");
  cmd->add_option("--span-blocks", o->span.blocks,
                  "GPU, FSA's order: the most selection blocks one CTA streams (a span), 1.." +
                      std::to_string(gpu::kMaxSpanBlocks) + "; 0: automatic (about two spans per SM)")
      ->capture_default_str();
  std::ostringstream tall_bytes;
  tall_bytes << sparse::kTallPackBytes;
  cmd->add_option("--span-rows", o->span.rows,
                  "GPU, FSA's order: the most tile rows of a span's pack, 16, 32 or 64 (a span whose requests "
                  "need more rows is streamed by several packs); 0: automatic (the spans cut for both 32 and 64, "
                  "and 64 taken where its byte model is at most " + tall_bytes.str() +
                      "x the 32-row cut's and it has at least " + std::to_string(sparse::kTallMinCtasPerSm) +
                      " CTAs per SM; table 'FSA spans (host plan)' shows both)")
      ->capture_default_str();
  cmd->add_option("--span-stages", o->span.stages,
                  "GPU, FSA's order: K/V tiles in a span CTA's ring, 2 (one in flight while one is computed, the "
                  "pack kernel's) or 3 (two in flight); 0: automatic (2)")
      ->capture_default_str();
  cmd->add_option("--span-kv-tile", o->span.kv_tile,
                  "GPU, FSA's order: KV tokens per tile of a span CTA, 64 (one selection block) or 32 (half the "
                  "registers and shared memory of a 64-row CTA, so more CTAs per SM); 0: automatic (32 for a tile "
                  "shape where the occupancy calculator keeps more of its warps on an SM than of 64's: the 64-row "
                  "packs at d = 128)")
      ->capture_default_str();
  cmd->add_flag("--fp32-partials", o->fp32_partials,
                "GPU, FSA's order and the split: store the partials' o in fp32 instead of the output's 16-bit type "
                "(the default, as stages 4-9 store theirs: half the bytes written and merged; lse fp32 either way)");
  CLI::Option* curves = cmd->add_flag("--curves", o->curves, "Also sweep n and tau: blocks read and max error (table 'curves')");
  cmd->add_option("--curve-n", o->curve_n, "--curves: the fixed n to sweep (each at most the longest request's blocks)")
      ->capture_default_str()
      ->needs(curves);
  cmd->add_option("--curve-tau", o->curve_tau, "--curves: the tau to sweep")->capture_default_str()->needs(curves);
  cmd->add_flag("--no-check", o->no_check,
                "Skip the float64 oracles (dense and sparse: most of the CPU time on long contexts) and the GPU "
                "outputs' checks against them: timings of a workload checked elsewhere, as patlab bench --no-check. "
                "The selection (the byte models read it) and its GPU twin are still compared; no 'error vs dense' "
                "table, no true mass; not with --curves");
  cmd->add_option("--warmup", o->timing.warmup, "GPU: untimed runs before timing")->capture_default_str();
  cmd->add_flag("--clean-l2", o->timing.clean_l2,
                "GPU: after the L2 flush's writes, read the flush buffer back, so each timed run starts with no "
                "dirty line in L2 (as patlab bench --clean-l2; a diagnostic, the default is the writes alone)");
  cmd->add_option("--repeats", o->timing.repeats, "GPU: timed runs (median reported; 20 to 100000)")
      ->capture_default_str();
  cmd->footer("Exit 0 after the report (the GPU part is skipped without a device); 1 when a GPU check fails; 2 on "
              "bad or inconsistent parameters "
              "(n more than a request's selection blocks, l' not a multiple of the page, tau outside (0, 1], a window "
              "longer than a request: one line, unless --clamp); 3 on a CUDA error or GPU out of memory.");
  cmd->callback([&action, o] { action = [o] { return run_sparse(*o); }; });
}

}  // namespace patlab::cli
