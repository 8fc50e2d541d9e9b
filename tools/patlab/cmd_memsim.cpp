// patlab memsim: one trace replayed token by token under five KV allocation policies (contiguous
// max-length and exact-length reservation, paged with and without prefix caching, the exact
// need): waste, the largest batch that fits the KV capacity, preemptions, prefix-cache savings.
// CPU only.
#include <chrono>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/error.hpp"
#include "patlab/output_file.hpp"
#include "patlab/serving/memsim.hpp"
#include "serving_options.hpp"

namespace patlab::cli {

namespace {

/// Default assumed decode step time, ms (maps arrival seconds to steps).
constexpr double kDefaultStepMs = 20.0;
/// Default reservation of reserve-max: the 2048-token context of the vLLM paper's Orca (Max).
constexpr int64_t kDefaultReserveTokens = 2048;
/// Seconds between progress lines.
constexpr double kProgressSeconds = 2.0;

struct MemsimCliOptions {
  ServingOptions serving;
  std::string format = "table";
  double step_ms = kDefaultStepMs;
  int max_running = 0;
  int64_t reserve = kDefaultReserveTokens;
  std::string series;
};

const serving::MemPolicy kPolicies[] = {serving::MemPolicy::reserve_max, serving::MemPolicy::reserve_exact,
                                        serving::MemPolicy::paged, serving::MemPolicy::paged_cache,
                                        serving::MemPolicy::exact};

std::string policy_detail(serving::MemPolicy p, const serving::MemsimOptions& o) {
  switch (p) {
    case serving::MemPolicy::reserve_max:
      return "contiguous " + std::to_string(o.reserve_tokens) + " slots per sample, first fit (Orca Max)";
    case serving::MemPolicy::reserve_exact: return "contiguous prompt + output slots per sample (Orca Oracle)";
    case serving::MemPolicy::paged: return "blocks of " + std::to_string(o.page_size) + " on demand, forks shared";
    case serving::MemPolicy::paged_cache: return "the same + prefix caching (hash chain, LRU)";
    case serving::MemPolicy::exact: return "1-token blocks + prefix caching: no empty slot";
  }
  return "";
}

Table policies_table(const std::vector<serving::MemResult>& results, const serving::MemsimOptions& o, double bytes_per_token) {
  Table t;
  t.title = "policies";
  t.columns = {"policy", "how", "steps", "max batch", "mean batch", "mean KV held", "peak KV held", "waste %",
               "sharing", "preemptions", "finished"};
  for (const auto& r : results)
    t.add({serving::policy_name(r.policy), policy_detail(r.policy, o), Cell::integer(r.steps),
           Cell::integer(r.max_running), Cell::num(r.mean_running, 1), Cell::bytes(r.mean_held * bytes_per_token),
           Cell::bytes(static_cast<double>(r.peak_held) * bytes_per_token), Cell::num(100.0 * r.waste_fraction(), 1),
           Cell::num(r.sharing(), 2), Cell::integer(r.preemptions), Cell::integer(r.finished)});
  return t;
}

Table caching_table(const serving::MemResult& paged, const serving::MemResult& cached, double bytes_per_token) {
  Table t;
  t.title = "prefix caching";
  t.columns = {"policy", "prompt tokens prefilled", "prompt tokens from cache", "mean KV held", "mean batch", "steps"};
  for (const auto* r : {&paged, &cached})
    t.add({serving::policy_name(r->policy), Cell::integer(r->prompt_tokens), Cell::integer(r->hit_tokens),
           Cell::bytes(r->mean_held * bytes_per_token), Cell::num(r->mean_running, 1), Cell::integer(r->steps)});
  return t;
}

void write_series(const std::string& path, const std::vector<serving::MemResult>& results) {
  write_output_file(path, "series file", [&](std::ostream& out) {
    out << "policy,step,running,waiting,held,stored,referenced\n";
    for (const auto& r : results)
      for (const auto& s : r.series)
        out << serving::policy_name(r.policy) << ',' << s.step << ',' << s.running << ',' << s.waiting << ','
            << s.held << ',' << s.stored << ',' << s.referenced << '\n';
  });
}

int run_memsim(const MemsimCliOptions& o) {
  const Format format = parse_format(o.format);
  check_step_ms(o.step_ms);
  require(o.max_running >= 0, "--max-running must be >= 0 (0: no limit)");
  require(o.reserve >= 1, "--reserve must be >= 1 token");
  const serving::ModelPreset& model = o.serving.preset();
  const double bytes_per_token = static_cast<double>(model.kv_bytes_per_token());
  serving::MemsimOptions mo;
  mo.capacity_tokens = static_cast<int64_t>(o.serving.capacity_bytes() / bytes_per_token);  // <= 2^50: exact
  require(mo.capacity_tokens <= serving::kMaxMemsimTokens,
          "--capacity-gib " + number_text(o.serving.capacity_gib) + " holds " + std::to_string(mo.capacity_tokens) +
              " KV tokens of " + model.name + ", past the 2^31 - 1 memsim models");
  mo.page_size = o.serving.page;
  mo.step_seconds = o.step_ms / 1000.0;
  mo.max_running = o.max_running;
  mo.reserve_tokens = o.reserve;
  // Before the prompts are expanded (and any replay): one line, exit 2.
  const serving::Trace trace = o.serving.load([&mo](const serving::Trace& t) {
    t.check_step_simulation(mo.capacity_tokens, mo.page_size, mo.max_running, mo.step_seconds);
  });

  auto last = std::chrono::steady_clock::now();
  const serving::MemProgress progress = [&](serving::MemPolicy p, int64_t step, int64_t done, int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last).count() < kProgressSeconds) return;
    last = now;
    cli::progress("memsim " + serving::policy_name(p) + ": step " + std::to_string(step) + ", " + std::to_string(done) +
                  "/" + std::to_string(total) + " sequences finished");
  };
  std::vector<serving::MemResult> results;
  for (serving::MemPolicy p : kPolicies) results.push_back(serving::simulate_memory(trace, mo, p, progress));
  if (!o.series.empty()) write_series(o.series, results);

  int64_t prompt = 0, output = 0;
  for (const auto& r : trace.requests) {
    prompt += static_cast<int64_t>(r.prompt.size());
    output += int64_t{r.output_tokens} * r.samples;
  }
  Table run = key_values("memsim run", {
      {"trace", trace.description},
      {"requests", Cell::integer(static_cast<int64_t>(trace.requests.size()))},
      {"sequences (samples)", Cell::integer(serving::total_samples(trace))},
      {"shared segments", Cell::integer(static_cast<int64_t>(trace.shared.size()))},
      {"prompt tokens / output tokens", std::to_string(prompt) + " / " + std::to_string(output)},
      {"model", model.name + " (" + model.source + ")"},
      {"KV bytes per token (all layers)", Cell::integer(model.kv_bytes_per_token())},
      {"KV capacity", Cell::num(o.serving.capacity_gib, 2).text + " GiB = " + std::to_string(mo.capacity_tokens) + " tokens"},
      {"page", Cell::integer(mo.page_size)},
      {"decode step (assumed, maps arrivals to steps)", Cell::num(o.step_ms, 1).text + " ms"},
      {"max running sequences", o.max_running ? std::to_string(o.max_running) : std::string("no limit")},
      {"preemption", "vLLM v1: recompute the most recently admitted running sequence"},
      {"trace seed", Cell::integer(static_cast<int64_t>(trace.seed))},
  });
  print(std::cout, {run, policies_table(results, mo, bytes_per_token), caching_table(results[2], results[3], bytes_per_token)},
        format);
  const int64_t samples = serving::total_samples(trace);
  for (const auto& r : results)
    if (r.finished != samples) {
      std::cerr << "patlab: memsim: " << serving::policy_name(r.policy) << " finished " << r.finished << " of " << samples
                << " sequences\n";
      return 1;
    }
  return 0;
}

}  // namespace

void add_memsim(CLI::App& app, Action& action) {
  auto o = std::make_shared<MemsimCliOptions>();
  auto* cmd = app.add_subcommand("memsim", "Memory study on a trace (CPU): contiguous reservation vs paged blocks vs the "
                                           "exact need; waste, largest batch, preemptions, prefix-cache savings");
  o->serving.add_to(*cmd);
  add_format(*cmd, o->format);
  cmd->add_option("--step-ms", o->step_ms, step_ms_help())->capture_default_str();
  cmd->add_option("--max-running", o->max_running, "Most running sequences (vLLM max_num_seqs); 0 = memory is the limit")
      ->capture_default_str();
  cmd->add_option("--reserve", o->reserve, "Slots reserve-max reserves per sample (Orca Max: the max context)")
      ->capture_default_str();
  cmd->add_option("--series", o->series,
                  "Write every step of every policy to this CSV file (tools/plot_serving.py); idle steps jumped over "
                  "(nothing running or waiting before an arrival, every column 0) have no row: the step column "
                  "skips them")
      ->check(non_empty());
  cmd->callback([&action, o] { action = [o] { return run_memsim(*o); }; });
}

}  // namespace patlab::cli
