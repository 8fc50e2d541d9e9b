// The planner, steps 4 and 5: each pack's tile (PAT's tile table) and each query's slots
// (tutorial chapter 02, sections 3 and 5, tutorial/02-pack-step.md; the tile table in use:
// chapter 14, tutorial/14-multitile.md).
#include "patlab/planner/planner.hpp"

#include <algorithm>
#include <iterator>
#include <string>

#include "patlab/error.hpp"
#include "patlab/planner/planner_steps.hpp"
#include "patlab/planner/tile_budget.hpp"

namespace patlab {

TileShape choose_tile(int rows, int kv_len, int max_kv_tile) {
  // Messages are built only on a fault: the incremental planner calls this every decode step.
  if (rows < 1 || rows > kMaxTileRows)
    throw Error(ErrorKind::usage,
                "choose_tile: " + std::to_string(rows) + " rows (must be in [1, " + std::to_string(kMaxTileRows) + "])");
  if (kv_len < 1) throw Error(ErrorKind::usage, "choose_tile: KV length " + std::to_string(kv_len) + " (must be >= 1)");
  if (!one_of(max_kv_tile, kTileKvOptions) || max_kv_tile < kMinKvForMaxRows)
    throw Error(ErrorKind::usage, "max KV tile " + std::to_string(max_kv_tile) + " (must be 32, 64 or 128)");
  // [choose tile]
  TileShape t;
  // m: the smallest tile that holds the rows (16 if rows <= 16, 32 if <= 32, else 64).
  t.m = *std::find_if(std::begin(kTileRowOptions), std::end(kTileRowOptions), [&](int m) { return rows <= m; });
  // n: the largest KV tile shorter than the range, so that the range is at least two tiles and
  // both stages of the ring are used (16 up to 32 tokens, 32 up to 64, 64 up to 128, then 128).
  t.n = kTileKvOptions[0];
  for (int n : kTileKvOptions)
    if (kv_tile_below(n, kv_len)) t.n = n;
  if (t.m == kMaxTileRows) t.n = std::max(t.n, kMinKvForMaxRows);
  t.n = std::min(t.n, max_kv_tile);
  return t;
  // [choose tile]
}

int max_pack_rows(const PlannerOptions& options) {
  switch (options.tiles) {
    case TilePolicy::fixed: return options.fixed_tile.m;
    case TilePolicy::hopper: return options.hopper.max_rows;
    case TilePolicy::table: break;
  }
  return kMaxTileRows;
}

int hopper_narrow_kv(const PlannerOptions& options) {
  return options.tiles == TilePolicy::hopper ? options.hopper.narrow_kv() : 0;
}

// [hopper policy]
TileShape hopper_policy_tile(int rows, int kv_len, int max_kv_tile, int min_kv) {
  if (rows < 1 || rows > kHopperMaxRows)
    throw Error(ErrorKind::usage, "hopper_policy_tile: " + std::to_string(rows) + " rows (must be in [1, " +
                                      std::to_string(kHopperMaxRows) + "])");
  if (rows <= kHopperMinRows / 2) return choose_tile(rows, kv_len, max_kv_tile);
  if (kv_len < 1) throw Error(ErrorKind::usage, "hopper_policy_tile: KV length " + std::to_string(kv_len) + " (must be >= 1)");
  if (rows <= kHopperTileRows[0] && kv_len < min_kv) return choose_tile(rows, kv_len, max_kv_tile);
  const int m = *std::find_if(std::begin(kHopperTileRows), std::end(kHopperTileRows), [&](int r) { return rows <= r; });
  return {m, hopper_kv_tile(m), TileKernel::hopper};
}
// [hopper policy]

bool is_hopper_tile(TileShape tile) { return tile.kernel == TileKernel::hopper || tile.kernel == TileKernel::hopper_tail; }

int estimate_tile_ctas_per_sm(const Shape& shape, TileShape tile, TilePolicy tiles) {
  if (tiles == TilePolicy::hopper && is_hopper_tile(tile)) return estimate_hopper_ctas_per_sm(shape.head_dim, tile.m, tile.n);
  if (tile.m < 1 || tile.m > kMaxTileRows || tile.n < 1)
    throw Error(ErrorKind::usage, "estimate_tile_ctas_per_sm: no kernel runs tile " + tile.name());
  return estimate_ctas_per_sm(shape.head_dim, tile.m, tile.n, shape.kv_element_bytes());
}

std::vector<TileShape> bucket_launch_order(const Plan& plan, const Shape& shape, BucketOrder order, TilePolicy tiles) {
  std::vector<TileShape> launch;
  for (const PlanBucket& b : plan_buckets(plan, shape, order, tiles, false)) launch.push_back(b.tile);
  return launch;
}

std::vector<PlanBucket> plan_buckets(const Plan& plan, const Shape& shape, BucketOrder order, TilePolicy tiles,
                                     bool longest_first) {
  // One bucket per tile, in the order the tiles first appear.
  std::vector<PlanBucket> buckets;
  for (size_t i = 0; i < plan.packs.size(); ++i) {
    const Pack& p = plan.packs[i];
    auto it = std::find_if(buckets.begin(), buckets.end(), [&](const PlanBucket& b) { return b.tile == p.tile; });
    if (it == buckets.end()) {
      it = buckets.insert(buckets.end(), PlanBucket{});
      it->tile = p.tile;
    }
    it->packs.push_back(static_cast<int32_t>(i));
    const int32_t tokens = p.space_len(shape.page_size);  // what the CTA streams, tails too
    it->tokens += tokens;
    it->longest = std::max(it->longest, tokens);
  }
  // [plan-bucket-order]
  if (order == BucketOrder::footprint || order == BucketOrder::chain) {
    for (PlanBucket& b : buckets) b.ctas_per_sm = estimate_tile_ctas_per_sm(shape, b.tile, tiles);
    const bool chain = order == BucketOrder::chain;
    std::stable_sort(buckets.begin(), buckets.end(), [chain](const PlanBucket& a, const PlanBucket& b) {
      if (a.ctas_per_sm != b.ctas_per_sm) return a.ctas_per_sm < b.ctas_per_sm;
      if (chain && a.packs.size() != b.packs.size()) return a.packs.size() < b.packs.size();
      return a.longest > b.longest;
    });
  }
  if (order == BucketOrder::longest_pack)
    std::stable_sort(buckets.begin(), buckets.end(),
                     [](const PlanBucket& a, const PlanBucket& b) { return a.longest > b.longest; });
  // [plan-bucket-order]
  // [plan-longest-first]
  if (longest_first)  // ties: packs of one KV range side by side, so they share it in L2
    for (PlanBucket& bucket : buckets)
      std::stable_sort(bucket.packs.begin(), bucket.packs.end(), [&](int32_t a, int32_t b) {
        const Pack& pa = plan.packs[static_cast<size_t>(a)];
        const Pack& pb = plan.packs[static_cast<size_t>(b)];
        const int32_t la = pa.space_len(shape.page_size), lb = pb.space_len(shape.page_size);
        if (la != lb) return la > lb;
        return pa.blocks.front() < pb.blocks.front();
      });
  // [plan-longest-first]
  return buckets;
}

namespace plan_steps {

TileShape tile_for(const Pack& pack, const PlannerOptions& options, const Shape& shape) {
  // A pack with leaf tails is tiled for its whole space (the range and the tails), never with the
  // fixed tile, KV tiles of at most kTailMaxKvTile tokens, and runs its kernel's tails instance.
  const bool tails = !pack.tails.empty();
  const int rows = pack.rows(shape.group()), tokens = pack.space_len(shape.page_size);
  const int max_n = tails ? std::min(options.max_kv_tile, kTailMaxKvTile) : options.max_kv_tile;
  TileShape t;
  if (options.tiles == TilePolicy::hopper)
    t = hopper_policy_tile(rows, tokens, max_n, options.hopper.min_kv);
  else if (options.tiles == TilePolicy::fixed && !tails)
    t = options.fixed_tile;
  else
    t = choose_tile(rows, tokens, max_n);
  // Stage 8's own tiles have a shared-memory budget of their own (hopper_smem_bytes).
  const bool hopper = is_hopper_tile(t);
  if (!hopper) t = fit_tile(t, shape.head_dim, shape.kv_element_bytes());
  if (tails) t.kernel = hopper ? TileKernel::hopper_tail : TileKernel::tail;
  return t;
}

void assign_slots(Plan& plan, int num_requests) {
  // [tiles and slots]
  plan.partials.assign(static_cast<size_t>(num_requests), 0);
  for (Pack& p : plan.packs) {
    p.slots.resize(p.queries.size());
    for (size_t i = 0; i < p.queries.size(); ++i) p.slots[i] = plan.partials[static_cast<size_t>(p.queries[i])]++;
  }
  // [tiles and slots]
}

}  // namespace plan_steps

}  // namespace patlab
