// patlab list, patlab workload: what is in the registry, and what a workload costs in bytes.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/gpu.hpp"
#include "patlab/serving/model.hpp"
#include "patlab/stages.hpp"

namespace patlab::cli {

void add_list(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "list", "List the stages of the registry (--presets: the named workloads; --models: the model presets)");
  auto format = std::make_shared<std::string>("table");
  auto show_presets = std::make_shared<bool>(false);
  auto show_models = std::make_shared<bool>(false);
  add_format(*cmd, *format);
  auto* presets_flag = cmd->add_flag("--presets", *show_presets, "List the named workloads instead");
  cmd->add_flag("--models", *show_models, "List the model presets of --model instead, with the source of each shape")
      ->excludes(presets_flag);
  cmd->callback([&action, format, show_presets, show_models] {
    action = [format, show_presets, show_models] {
      const Format f = parse_format(*format);
      Table t;
      if (*show_models) {
        t.title = "models";
        t.columns = {"name", "heads", "group", "head dim", "layers", "source"};
        for (const serving::ModelPreset& m : serving::model_presets())
          t.add({m.name, std::to_string(m.q_heads) + "/" + std::to_string(m.kv_heads), Cell::integer(m.q_heads / m.kv_heads),
                 Cell::integer(m.head_dim), Cell::integer(m.layers), m.source});
      } else if (*show_presets) {
        t.title = "presets";
        t.columns = {"name", "tree", "shape", "summary"};
        for (const Preset& p : presets())
          t.add({p.name, p.tree.front() == '{' ? "(json)" : p.tree, p.shape.describe(), p.summary});
      } else {
        const bool cuda = gpu::built_with_cuda();
        t.title = "stages";
        t.columns = {"id", "slug", "needs GPU", "in this build", "chapter", "summary"};
        for (const StageInfo& s : stage_registry())
          t.add({Cell::integer(s.id), s.slug, s.needs_gpu ? "yes" : "no", (!s.needs_gpu || cuda) ? "yes" : "no (no CUDA)",
                 std::string("tutorial/") + s.chapter + ".md", s.summary});
      }
      print(std::cout, {t}, f);
      return 0;
    };
  });
}

namespace {

Table workload_table(const WorkloadChoice& w, const PagedLayout& layout) {
  const int64_t total = layout.total_kv_bytes();
  const int64_t unique = layout.unique_kv_bytes();
  int64_t shared_blocks = 0, refs = 0;
  for (int32_t rc : layout.refcounts) {
    shared_blocks += rc > 1;
    refs += rc;
  }
  const int64_t tables = int64_t{layout.num_requests()} * layout.max_blocks_per_request() * 4;
  // On the GPU: the paged pools (whole blocks) plus q, output and block tables; a dense layout
  // (what torch SDPA needs) holds every request's own copy of its K/V.
  const int64_t gpu_paged = layout.pool_bytes() + layout.q_and_out_bytes() + tables;
  const int64_t gpu_dense = total + layout.q_and_out_bytes();
  int64_t min_len = *std::min_element(layout.lengths.begin(), layout.lengths.end());
  int64_t max_len = *std::max_element(layout.lengths.begin(), layout.lengths.end());
  return key_values("workload", {
      {"workload", w.tree.description},
      {"shape", w.shape.describe()},
      {"kv dtype", kv_dtype_name(w.shape.kv_dtype, w.shape.dtype)},
      {"seed", Cell::integer(static_cast<int64_t>(w.seed))},
      {"block ids", w.shuffle ? "shuffled" : "in order"},
      {"requests", Cell::integer(layout.num_requests())},
      {"segments", Cell::integer(static_cast<int64_t>(w.tree.segments.size()))},
      {"tree depth", Cell::integer(w.tree.depth())},
      {"request tokens (min)", Cell::integer(min_len)},
      {"request tokens (max)", Cell::integer(max_len)},
      {"tokens summed over requests", Cell::integer(layout.total_tokens())},
      {"unique tokens", Cell::integer(layout.unique_tokens())},
      {"KV blocks (physical)", Cell::integer(layout.num_blocks)},
      {"blocks read by >1 request", Cell::integer(shared_blocks)},
      {"block references", Cell::integer(refs)},
      {"per-request KV bytes (summed)", Cell::bytes(static_cast<double>(total))},
      {"unique KV bytes", Cell::bytes(static_cast<double>(unique))},
      {"sharing ratio (summed / unique)", Cell::num(static_cast<double>(total) / static_cast<double>(unique), 2)},
      {"GPU memory, paged with sharing", Cell::bytes(static_cast<double>(gpu_paged))},
      {"GPU memory, dense per request", Cell::bytes(static_cast<double>(gpu_dense))},
      {"host memory to build and check", Cell::bytes(static_cast<double>(host_bytes_needed(layout)))},
  });
}

Table levels_table(const TokenTree& tree) {
  struct Level {
    int64_t segments = 0, min_tokens = INT64_MAX, max_tokens = 0;
  };
  std::map<int, Level> levels;
  const std::vector<int> level_of = tree.segment_levels();
  for (size_t i = 0; i < tree.segments.size(); ++i) {
    const Segment& s = tree.segments[i];
    Level& l = levels[level_of[i]];
    ++l.segments;
    l.min_tokens = std::min(l.min_tokens, s.tokens);
    l.max_tokens = std::max(l.max_tokens, s.tokens);
  }
  Table t;
  t.title = "tree levels";
  t.columns = {"level", "segments", "tokens (min)", "tokens (max)"};
  for (const auto& kv : levels)
    t.add({Cell::integer(kv.first), Cell::integer(kv.second.segments), Cell::integer(kv.second.min_tokens),
           Cell::integer(kv.second.max_tokens)});
  return t;
}

}  // namespace

void add_workload(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("workload", "Describe a workload: tokens, blocks, KV bytes per request vs unique, memory");
  auto opts = std::make_shared<WorkloadOptions>();
  auto format = std::make_shared<std::string>("table");
  opts->add_to(*cmd);
  add_format(*cmd, *format);
  cmd->callback([&action, opts, format] {
    action = [opts, format] {
      const Format f = parse_format(*format);
      WorkloadChoice w = opts->resolve();
      PagedLayout layout = build_layout(w.tree, w.shape, w.shuffle, w.seed);
      print(std::cout, {workload_table(w, layout), levels_table(w.tree)}, f);
      return 0;
    };
  });
}

}  // namespace patlab::cli
