// The check of one stage on a grid of cases: eager runs and a graph replay against the reference.
#include "harness.hpp"

#include <algorithm>
#include <map>
#include <cstdio>
#include <string>

#include "../catch.hpp"
#include "patlab/gpu.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/stage_traffic.hpp"
#include "patlab/truth/verify.hpp"

namespace patlab::test {

namespace {

/// What the runs of one case showed.
struct CaseVerdict {
  CheckResult eager;         ///< the first eager run against the reference
  bool repeatable = false;   ///< a second eager run gave the same bits
  CheckResult graph;         ///< the graph replay against the reference
  bool graph_same = false;   ///< the graph replay gave the eager run's bits
  std::string not_built;     ///< the stage's reason for not running the case's shape (not run)
  bool pass() const { return eager.pass && repeatable && graph.pass && graph_same; }
};

/// The stage's model bytes on the GPU are the host's stage_traffic() for the device's SMs and the
/// case's KV tile cap (stage 3: with the resident CTAs per SM its notes end with, "(N CTAs/SM)"):
/// the CPU mode of `patlab bench` predicts from the same bytes.
void check_model_bytes(const gpu::Runner& runner, const std::string& slug, const PagedLayout& layout, const Case& c) {
  StageTrafficOptions o;
  o.sms = runner.device().sm_count;
  if (c.max_kv_tile > 0) o.max_kv_tile = c.max_kv_tile;
  o.hopper = c.hopper;
  o.group_rows = c.group_rows;
  o.take_leaves = c.take_leaves;
  o.leaf_tail_rows = c.leaf_tail_rows;
  o.leaf_tail_min_cut = c.leaf_tail_min_cut;
  o.half_partials = c.half_partials;
  o.max_cluster = c.max_cluster;
  if (slug == "splitkv") {
    const std::string notes = runner.notes(slug);
    const size_t open = notes.rfind('(');
    INFO("stage notes: " << notes);
    REQUIRE(open != std::string::npos);
    o.resident_ctas_per_sm = std::max(1, std::stoi(notes.substr(open + 1)));
  }
  PlannerOptions planner;
  if (runner.planner_options(slug, planner)) o.pack_ctas_per_sm = planner.ctas_per_sm;
  CHECK(runner.model_bytes(slug) == stage_traffic(slug, layout, o).bytes);
}

/// Runs `slug` on `c`: eager, eager again, graph replay (each poisons output and workspace).
CaseVerdict run_case(const std::string& slug, const Case& c) {
  const Workload w = make_workload(c.tree, c.shape, c.seed, true, c.data);
  const Reference ref = make_reference(w);
  gpu::Runner runner(w);
  runner.set_max_kv_tile(c.max_kv_tile);
  runner.set_hopper_routing(c.hopper);
  runner.set_bucket_launch(c.bucket_launch);
  runner.set_group_rows(c.group_rows);
  runner.set_take_leaves(c.take_leaves, c.leaf_tail_rows, c.leaf_tail_min_cut);
  runner.set_half_partials(c.half_partials);
  runner.set_max_cluster(c.max_cluster);
  runner.set_cluster_merge(c.cluster_merge);
  CaseVerdict v;
  v.not_built = runner.unsupported(slug);
  if (!v.not_built.empty()) return v;
  runner.prepare(slug);
  check_model_bytes(runner, slug, w.layout, c);
  const DType dt = c.shape.dtype;
  // A stage with 16-bit partials is held to the emulation of its own plan's partials.
  const PartialSplit split = runner.half_partial_split(slug);
  const Reference half_ref = split.empty() ? Reference{} : reference_for_partials(ref, w, split);
  const Reference& stage_ref = split.empty() ? ref : half_ref;
  const std::vector<uint16_t> eager = runner.run_once(slug);
  v.eager = check_output(decode(eager, dt), stage_ref, dt);
  // Deterministic kernels give the same bits every run; anything else is a race.
  v.repeatable = runner.run_once(slug) == eager;
  // The replay runs the same kernels on the same plan: the same bits, and so the same verdict.
  const std::vector<uint16_t> replay = runner.run_graph_once(slug);
  v.graph = check_output(decode(replay, dt), stage_ref, dt);
  v.graph_same = replay == eager;
  return v;
}

}  // namespace

std::vector<Case> with_fp32_partials(std::vector<Case> cases) {
  for (Case& c : cases) {
    c.name += ", fp32 partials";
    c.half_partials = false;
  }
  return cases;
}

std::vector<Case> with_max_cluster(std::vector<Case> cases, int ctas) {
  for (Case& c : cases) {
    c.name += ", clusters of up to " + std::to_string(ctas);
    c.max_cluster = ctas;
  }
  return cases;
}

std::vector<Case> with_folded_merge(std::vector<Case> cases) {
  for (Case& c : cases) {
    c.name += ", merge folded in";
    c.cluster_merge = gpu::ClusterMerge::folded;
  }
  return cases;
}

std::vector<Case> with_gated_buckets(std::vector<Case> cases) {
  for (Case& c : cases) {
    c.name += ", buckets gated";
    c.bucket_launch = gpu::BucketLaunch::gates;
  }
  return cases;
}

std::vector<Case> without_hopper_routing(std::vector<Case> cases) {
  for (Case& c : cases) {
    c.name += ", stage 8 routing off";
    c.hopper.min_kv = 0;
    c.hopper.wide_kv = 0;
  }
  return cases;
}

std::vector<Case> with_small_loader(std::vector<Case> cases, SmallLoader loader) {
  for (Case& c : cases) {
    c.name += std::string(", 16-row packs on ") + small_loader_name(loader);
    c.hopper.small_loader = loader;
  }
  return cases;
}

std::vector<Case> with_hopper_rows(std::vector<Case> cases, int rows) {
  cases = without_hopper_routing(std::move(cases));
  for (Case& c : cases) {
    c.name += ", packs of up to " + std::to_string(rows) + " rows";
    c.hopper.max_rows = rows;
  }
  return cases;
}

std::vector<Case> with_group_rows(std::vector<Case> cases, int rows) {
  for (Case& c : cases) {
    c.name += ", stage 10 on its " + std::to_string(rows) + "-row instance";
    c.group_rows = rows;
  }
  return cases;
}

void check_stage(const std::string& slug, const std::vector<Case>& cases) {
  int passed = 0;
  std::map<std::string, int> not_built;  // reason -> cases
  for (const Case& c : cases) {
    INFO("stage " << slug << ", case: " << c.name << ", seed " << c.seed << ", max KV tile " << c.max_kv_tile
                  << ", " << c.hopper.flags());
    const CaseVerdict v = run_case(slug, c);
    if (!v.not_built.empty()) {
      ++not_built[v.not_built];
      std::printf("%-11s %-84s not built for: %s\n", slug.c_str(), c.name.c_str(), v.not_built.c_str());
      continue;
    }
    INFO("eager: " << v.eager.summary());
    CHECK(v.eager.pass);
    CHECK(v.repeatable);
    INFO("graph replay: " << v.graph.summary());
    CHECK(v.graph.pass);
    CHECK(v.graph_same);
    if (v.pass()) ++passed;
    std::printf("%-11s %-84s %s; rerun %s; graph %s\n", slug.c_str(), c.name.c_str(), v.eager.summary().c_str(),
                v.repeatable ? "same bits" : "DIFFERENT BITS",
                !v.graph.pass ? "FAIL" : v.graph_same ? "same bits" : "DIFFERENT BITS");
  }
  int skipped = 0;
  for (const auto& [reason, count] : not_built) {
    std::printf("%s: %d cases not run, the stage is not built for them: %s\n", slug.c_str(), count, reason.c_str());
    skipped += count;
  }
  std::printf("%s: %d of %zu cases passed\n", slug.c_str(), passed, cases.size() - static_cast<size_t>(skipped));
  // A shape the stage is not built for is listed, not run; every other case must pass, and a
  // grid must leave the stage something to run.
  REQUIRE(passed == static_cast<int>(cases.size()) - skipped);
  REQUIRE(passed > 0);
}

}  // namespace patlab::test
