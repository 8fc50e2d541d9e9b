// The planner fuzz, shared by the default CPU test (test_planner.cpp) and the long optional run
// (fuzz_planner.cpp, `meson test --suite fuzz`): random asymmetric trees through the planner and
// the validator, a sample of them through the packed oracle. Every tree follows from its own
// seed alone, so a failing seed reruns by itself, and trees run in parallel.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "patlab/truth/oracle.hpp"
#include "patlab/parallel.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::fuzz {

/// The size of the random trees a fuzz run draws (each knob uniform in [1, max]).
struct TreeSizes {
  int min_requests = 1;   ///< fewest requests of a tree
  int max_requests = 40;  ///< most requests of a tree
  int max_depth = 5;      ///< most segments on a path
  int max_segment = 300;  ///< longest segment, tokens
};

/// Trees of the original in-tree fuzz: up to 40 requests, 300-token segments.
inline constexpr TreeSizes kSmallTrees{1, 40, 5, 300};
/// Larger trees: hundreds of requests, segments of thousands of tokens.
inline constexpr TreeSizes kLargeTrees{100, 600, 6, 4000};
/// The packed oracle runs on a sampled tree only up to this many (token, query head) pairs
/// summed over its requests: the float64 oracle is the slow part.
inline constexpr int64_t kOracleTokenHeads = int64_t{1} << 21;

/// What a fuzz run saw.
struct Stats {
  int trees = 0;            ///< plans validated
  int oracle_runs = 0;      ///< plans also run through the packed oracle
  int cut_plans = 0;        ///< plans with KV split cuts
  int asymmetric = 0;       ///< plans with a pack whose queries have different partial counts
  int mixed_slots = 0;      ///< plans with a pack whose queries write different slots
  int tail_plans = 0;       ///< plans with leaf tails (PlannerOptions::take_leaves)
  int64_t requests = 0;     ///< requests over all trees
  int64_t max_tokens = 0;   ///< longest request seen
  std::vector<std::string> failures;  ///< "seed S: what failed", the first few
};

/// Packs whose queries end up with different numbers of partials (the case PAT gets wrong).
inline bool has_asymmetric_pack(const Plan& plan) {
  return std::any_of(plan.packs.begin(), plan.packs.end(), [&](const Pack& p) {
    std::set<int32_t> counts;
    for (int32_t q : p.queries) counts.insert(plan.partials[static_cast<size_t>(q)]);
    return counts.size() > 1;
  });
}

/// Packs whose queries write different slot indices (a shared counter would collide there).
inline bool has_mixed_slot_pack(const Plan& plan) {
  return std::any_of(plan.packs.begin(), plan.packs.end(), [](const Pack& p) {
    return std::any_of(p.slots.begin(), p.slots.end(), [&](int32_t s) { return s != p.slots.front(); });
  });
}

/// One tree's case, all drawn from `seed`: the tree, the shape and the planner options.
struct Case {
  TokenTree tree;
  Shape shape;
  PlannerOptions options;
  std::string describe;  ///< the seed and every choice, for a failure message
};

/// Draws the case of `seed` with trees of `sizes`.
inline Case draw_case(uint64_t seed, const TreeSizes& sizes) {
  static constexpr int kGroups[] = {1, 2, 4, 8, 16};
  static constexpr int kPages[] = {16, 32, 64};
  static constexpr int kSms[] = {1, 8, 132, 1000};
  static constexpr int kMinBlocks[] = {1, 2, 8};
  static constexpr int kCaps[] = {0, 1, 3, 32};
  std::mt19937_64 rng(seed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Case c;
  RandomTreeOptions to;
  to.requests = uni(sizes.min_requests, sizes.max_requests);
  to.max_depth = uni(1, sizes.max_depth);
  to.max_segment = uni(1, sizes.max_segment);
  to.max_roots = uni(1, 3);
  c.tree = random_tree(seed, to);
  c.shape.num_kv_heads = uni(1, 2);
  c.shape.num_q_heads = kGroups[uni(0, 4)] * c.shape.num_kv_heads;
  c.shape.head_dim = 64;
  c.shape.page_size = kPages[uni(0, 2)];
  c.options.sms = kSms[uni(0, 3)];
  c.options.min_split_blocks = kMinBlocks[uni(0, 2)];
  c.options.max_splits_per_query = kCaps[uni(0, 3)];
  c.options.split_kv = uni(0, 4) != 0;
  const int tiles = uni(0, 5);  // 1 in 6 fixed, 1 in 6 stage 8's 64/128/192-row tiles, else the table
  if (tiles == 0) {
    c.options.tiles = TilePolicy::fixed;
    c.options.fixed_tile = {kTileRowOptions[uni(0, 2)], kTileKvOptions[uni(0, 3)]};
  } else if (tiles == 1) {
    // Stage 8's tiles under its routing: off, short, its defaults, long, either knob; any row cap.
    static constexpr int kRouting[] = {0, 64, kDefaultHopperMinKv, kDefaultHopperWideKv, 4096};
    c.options.tiles = TilePolicy::hopper;
    c.options.hopper.min_kv = kRouting[uni(0, 4)];
    c.options.hopper.wide_kv = kRouting[uni(0, 4)];
    c.options.hopper.max_rows = kHopperTileRows[uni(0, 2)];
    c.options.hopper.min_piece = kRouting[uni(0, 4)];
  }
  c.options.take_leaves = uni(0, 2) == 0;  // 1 in 3: leaf tails (drawn last: the other draws stay as they were)
  if (c.options.take_leaves) {
    // Half of them every tail the rules allow (packs up to 192 rows, no CTA gate): tails stay common.
    c.options.leaf_tail_rows = uni(0, 1) ? kLeafTailRows : kHopperMaxRows;
    c.options.leaf_tail_min_cut = c.options.leaf_tail_rows == kLeafTailRows ? kTailMinCtaCut : 0.0;
  }
  c.describe = "seed " + std::to_string(seed) + ": " + std::to_string(to.requests) + " requests, depth <= " +
               std::to_string(to.max_depth) + ", segments <= " + std::to_string(to.max_segment) + " tokens, group " +
               std::to_string(c.shape.group()) + ", page " + std::to_string(c.shape.page_size) + ", sms " +
               std::to_string(c.options.sms) + ", min blocks " + std::to_string(c.options.min_split_blocks) +
               ", cap " + std::to_string(c.options.max_splits_per_query) + ", split " +
               std::to_string(c.options.split_kv) +
               (c.options.tiles == TilePolicy::fixed    ? ", fixed tile"
                : c.options.tiles == TilePolicy::hopper
                    ? ", Hopper tiles, " + c.options.hopper.flags()
                    : "") +
               (c.options.take_leaves ? ", leaf tails (rows <= " + std::to_string(c.options.leaf_tail_rows) +
                                            ", min cut " + std::to_string(c.options.leaf_tail_min_cut) + ")"
                                      : "");
  return c;
}

/// Runs trees of seeds [first_seed, first_seed + count): every plan through the validator, every
/// `oracle_every`-th tree (when under kOracleTokenHeads) through the packed oracle as well.
/// Failures are collected, not thrown, so that the trees can run in parallel.
inline Stats run(uint64_t first_seed, int count, const TreeSizes& sizes, int oracle_every) {
  constexpr size_t kFailuresKept = 8;
  std::atomic<int> oracle_runs{0}, cut_plans{0}, asymmetric{0}, mixed_slots{0}, tail_plans{0};
  std::atomic<int64_t> requests{0}, max_tokens{0};
  std::mutex failure_mutex;
  Stats stats;
  auto fail = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (stats.failures.size() < kFailuresKept) stats.failures.push_back(what);
  };
  parallel_for(count, [&](int64_t i) {
    const uint64_t seed = first_seed + static_cast<uint64_t>(i);
    try {
      const Case c = draw_case(seed, sizes);
      const PagedLayout L = build_layout(c.tree, c.shape, true, seed);
      PlanInfo info;
      const Plan plan = make_plan(L, c.options, &info);
      const std::vector<std::string> faults = validate_plan(L, plan);
      if (!faults.empty()) return fail(c.describe + ": validator: " + faults.front());
      cut_plans += info.kv_cuts > 0;
      asymmetric += has_asymmetric_pack(plan);
      mixed_slots += has_mixed_slot_pack(plan);
      tail_plans += info.leaf_tails > 0;
      requests += L.num_requests();
      for (int32_t len : L.lengths) {
        int64_t seen = max_tokens.load();
        while (len > seen && !max_tokens.compare_exchange_weak(seen, len)) {
        }
      }
      if (i % oracle_every == 0 && L.total_tokens() * c.shape.num_q_heads <= kOracleTokenHeads) {
        const Workload w = make_workload(c.tree, c.shape, seed, true);
        const double diff = max_relative_difference(packed_attention(w, plan), naive_attention(w));
        if (!(diff <= kOracleAgreement)) return fail(c.describe + ": packed oracle differs by " + std::to_string(diff));
        ++oracle_runs;
      }
    } catch (const std::exception& e) {
      fail("seed " + std::to_string(seed) + ": threw " + e.what());
    }
  });
  stats.trees = count;
  stats.oracle_runs = oracle_runs;
  stats.cut_plans = cut_plans;
  stats.asymmetric = asymmetric;
  stats.mixed_slots = mixed_slots;
  stats.tail_plans = tail_plans;
  stats.requests = requests;
  stats.max_tokens = max_tokens;
  return stats;
}

}  // namespace patlab::fuzz
