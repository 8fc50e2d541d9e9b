// patlab layerkv: request-wise vs layer-wise KV allocation (LayerKV) on a trace, simulated on the
// CPU over a sweep of arrival rates: TTFT p50/p99, TPOT, SLO violations. Every parameter of the
// time model is printed with its source.
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/error.hpp"
#include "patlab/serving/layerkv.hpp"
#include "serving_options.hpp"

namespace patlab::cli {

namespace {

struct LayerKvCliOptions {
  ServingOptions serving;
  std::string format = "table";
  std::string rates = "2,4,8,16";
  serving::LayerKvParams params;
  double pcie_gbs = 55.0;
  double ttft_slo_ms = 1000.0;
  double tpot_slo_ms = 100.0;
};

/// Slowest rate --rates accepts, requests/s: the scaled arrivals of 2^20 requests stay within
/// 10^9 s, where a double still resolves a microsecond of TTFT (at 1e-300 every TTFT read 0).
constexpr double kMinRate = 1e-3;
/// Fastest rate --rates accepts, requests/s: beyond it every trace arrives at once anyway.
constexpr double kMaxRate = 1e6;

/// --rates: a comma-separated list of finite rates in [kMinRate, kMaxRate] (parse_number_list()
/// refuses an empty item and a trailing comma).
std::vector<double> parse_rates(const std::string& text) {
  const std::string kind =
      "a finite rate in [" + number_text(kMinRate) + ", " + number_text(kMaxRate) + "] requests/s";
  return parse_number_list(text, "--rates", kind, "rate", [](double v) { return v >= kMinRate && v <= kMaxRate; });
}

Table results_table(const std::vector<serving::LayerKvResult>& results) {
  Table t;
  t.title = "results";
  t.columns = {"rate (req/s)", "policy", "sequences", "TTFT p50 (s)", "TTFT p99 (s)", "TPOT mean (ms)", "TPOT p99 (ms)",
               "SLO violations %", "preemptions", "layers offloaded", "makespan (s)", "output tok/s"};
  for (const auto& r : results) {
    double tpot = 0;
    for (double v : r.tpot) tpot += v;
    tpot /= std::max<size_t>(1, r.tpot.size());
    t.add({Cell::num(r.rate, 2), serving::layer_policy_name(r.policy), Cell::integer(r.sequences),
           Cell::num(serving::quantile(r.ttft, 0.5), 3), Cell::num(serving::quantile(r.ttft, 0.99), 3),
           Cell::num(1000 * tpot, 1), Cell::num(1000 * serving::quantile(r.tpot, 0.99), 1),
           Cell::num(100.0 * static_cast<double>(r.slo_violations) / static_cast<double>(r.sequences), 1),
           Cell::integer(r.preemptions), Cell::integer(r.offloaded_layers), Cell::num(r.makespan_s, 2),
           Cell::num(static_cast<double>(r.output_tokens) / r.makespan_s, 0)});
  }
  return t;
}

int run_layerkv(LayerKvCliOptions o) {
  const Format format = parse_format(o.format);
  const std::vector<double> rates = parse_rates(o.rates);
  const auto finite_positive = [](const std::string& option, double v) {
    require(v > 0 && std::isfinite(v), option + " must be a finite number > 0 (got " + number_text(v) + ")");
  };
  finite_positive("--pcie-gbs", o.pcie_gbs);
  finite_positive("--ttft-slo-ms", o.ttft_slo_ms);
  finite_positive("--tpot-slo-ms", o.tpot_slo_ms);
  require(o.params.prefill_mfu > 0 && o.params.prefill_mfu <= 1,
          "--mfu must be in (0, 1] (got " + number_text(o.params.prefill_mfu) + ")");
  o.params.model = o.serving.preset();
  o.params.gpu_kv_bytes = o.serving.capacity_bytes();
  o.params.page_size = o.serving.page;
  o.params.pcie_bytes_per_s = o.pcie_gbs * 1e9;
  o.params.ttft_slo_s = o.ttft_slo_ms / 1000.0;
  o.params.tpot_slo_s = o.tpot_slo_ms / 1000.0;
  o.params.validate();
  // Before the prompts are expanded (and before a progress line): one line, exit 2.
  const serving::Trace trace = o.serving.load([&o](const serving::Trace& t) {
    for (serving::LayerPolicy p : {serving::LayerPolicy::request_wise, serving::LayerPolicy::layer_wise})
      serving::check_layerkv_fits(t, o.params, p);
  });
  std::vector<serving::LayerKvResult> results;
  for (double rate : rates) {
    const serving::Trace scaled = serving::with_rate(trace, rate);
    for (serving::LayerPolicy p : {serving::LayerPolicy::request_wise, serving::LayerPolicy::layer_wise}) {
      progress("layerkv: rate " + std::to_string(rate) + " req/s, " + serving::layer_policy_name(p));
      serving::LayerKvResult r = serving::simulate_layerkv(scaled, o.params, p);
      r.rate = rate;
      results.push_back(std::move(r));
    }
  }
  Table run = key_values("layerkv run", {
      {"trace", trace.description},
      {"requests", Cell::integer(static_cast<int64_t>(trace.requests.size()))},
      {"rates (arrivals scaled to each)", o.rates},
      {"GPU KV capacity (layer-blocks)", Cell::integer(o.params.layer_blocks())},
      {"trace seed", Cell::integer(static_cast<int64_t>(trace.seed))},
  });
  Table params;
  params.title = "parameters";
  params.columns = {"parameter", "value", "source"};
  for (const auto& row : o.params.table()) params.add({row[0], row[1], row[2]});
  print(std::cout, {run, params, results_table(results)}, format);
  return 0;
}

}  // namespace

void add_layerkv(CLI::App& app, Action& action) {
  auto o = std::make_shared<LayerKvCliOptions>();
  auto* cmd = app.add_subcommand("layerkv", "LayerKV simulation on a trace (CPU): request-wise vs layer-wise KV allocation "
                                            "with host offload; TTFT, TPOT and SLO violations over arrival rates");
  o->serving.add_to(*cmd);
  add_format(*cmd, o->format);
  cmd->add_option("--rates", o->rates,
                  "Arrival rates to sweep, requests/s, each in [" + number_text(kMinRate) + ", " +
                      number_text(kMaxRate) + "] (the trace's arrivals are scaled)")
      ->capture_default_str();
  cmd->add_option("--pcie-gbs", o->pcie_gbs, "Host-device bandwidth, GB/s (PCIe 5.0 x16 measured-typical)")
      ->capture_default_str();
  cmd->add_option("--mfu", o->params.prefill_mfu, "Fraction of peak FLOP/s a prefill reaches")->capture_default_str();
  cmd->add_option("--ttft-slo-ms", o->ttft_slo_ms, "Time-to-first-token objective, ms")->capture_default_str();
  cmd->add_option("--tpot-slo-ms", o->tpot_slo_ms, "Time-per-output-token objective, ms")->capture_default_str();
  cmd->callback([&action, o] { action = [o] { return run_layerkv(*o); }; });
}

}  // namespace patlab::cli
