#include "patlab/planner/plan.hpp"

#include <algorithm>
#include <numeric>

#include "patlab/error.hpp"
#include "patlab/model/workload.hpp"

namespace patlab {

std::string HopperRouting::flags() const {
  return "--hopper-min-kv " + std::to_string(min_kv) + " --hopper-wide-kv " + std::to_string(wide_kv) +
         " --hopper-rows " + std::to_string(max_rows) + " --hopper-min-piece " + std::to_string(min_piece) +
         " --hopper-small-loader " + small_loader_name(small_loader);
}

const char* small_loader_name(SmallLoader loader) {
  switch (loader) {
    case SmallLoader::tma: return "tma";
    case SmallLoader::tma_kv: return "tma-kv";
    default: return "cp.async";
  }
}

SmallLoader parse_small_loader(const std::string& name) {
  return parse_choice("--hopper-small-loader", name, kSmallLoaders, small_loader_name);
}

void check_hopper_routing(const HopperRouting& r) {
  require(r.min_kv >= 0, "--hopper-min-kv must be a token count >= 0 (got " + std::to_string(r.min_kv) + ")");
  require(r.wide_kv >= 0, "--hopper-wide-kv must be a token count >= 0 (got " + std::to_string(r.wide_kv) + ")");
  require(r.min_piece >= 0,
          "--hopper-min-piece must be a token count >= 0 (got " + std::to_string(r.min_piece) + ")");
  require(one_of(r.max_rows, kHopperTileRows),
          "--hopper-rows must be 64, 128 or 192 (got " + std::to_string(r.max_rows) + ")");
}

int64_t Plan::total_partials() const { return std::accumulate(partials.begin(), partials.end(), int64_t{0}); }

Plan chunked_plan(const PagedLayout& layout, int chunk_tokens) {
  const int page = layout.shape.page_size;
  require(chunk_tokens >= page && chunk_tokens % page == 0,
          "chunk size " + std::to_string(chunk_tokens) + " must be a positive multiple of the page size " +
              std::to_string(page));
  Plan plan;
  plan.strategy = "chunks of " + std::to_string(chunk_tokens) + " tokens, one request per pack";
  plan.partials.assign(static_cast<size_t>(layout.num_requests()), 0);
  for (int r = 0; r < layout.num_requests(); ++r) {
    const int32_t len = layout.lengths[static_cast<size_t>(r)];
    for (int32_t begin = 0; begin < len; begin += chunk_tokens) {
      Pack p;
      p.queries = {r};
      p.slots = {plan.partials[static_cast<size_t>(r)]++};
      p.token_begin = begin;
      p.kv_len = std::min(chunk_tokens, len - begin);
      const auto& table = layout.block_tables[static_cast<size_t>(r)];
      p.blocks.assign(table.begin() + begin / page, table.begin() + (begin + p.kv_len + page - 1) / page);
      plan.packs.push_back(std::move(p));
    }
  }
  return plan;
}

namespace {
std::string numbers(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s;
}
}  // namespace

PackSpace pack_space(const Pack& pack, int page) {
  PackSpace s;
  s.blocks = pack.blocks;
  s.own_len = pack.kv_len;
  s.len = pack.space_len(page);
  s.tails.assign(pack.queries.size(), {0, 0});
  for (size_t t = 0; t < pack.tails.size(); ++t) {
    const PackTail& tail = pack.tails[t];
    s.blocks.insert(s.blocks.end(), tail.blocks.begin(), tail.blocks.end());
    const int32_t x = pack.tail_offset(t, page);
    s.tails[static_cast<size_t>(tail.entry)] = {x, x + tail.kv_len};
  }
  return s;
}

PartialSplit plan_partial_split(const Plan& plan, const PagedLayout& layout) {
  return plan_partial_split(plan, layout.lengths);
}

PartialSplit plan_partial_split(const Plan& plan, const std::vector<int32_t>& lengths) {
  const int R = static_cast<int>(lengths.size());
  require(static_cast<int>(plan.partials.size()) == R, "plan_partial_split: the plan's partial counts are not the layout's requests");
  PartialSplit split(static_cast<size_t>(R));
  for (int r = 0; r < R; ++r) split[static_cast<size_t>(r)].resize(static_cast<size_t>(plan.partials[static_cast<size_t>(r)]));
  for (const Pack& p : plan.packs) {
    for (size_t i = 0; i < p.queries.size(); ++i) {
      const int32_t r = p.queries[i], slot = p.slots[i];
      require(r >= 0 && r < R && slot >= 0 && slot < plan.partials[static_cast<size_t>(r)],
              "plan_partial_split: a pack writes a slot the plan does not have");
      split[static_cast<size_t>(r)][static_cast<size_t>(slot)].push_back({p.token_begin, p.token_begin + p.kv_len});
    }
    for (const PackTail& t : p.tails) {
      const int32_t r = p.queries[static_cast<size_t>(t.entry)];
      const int32_t len = lengths[static_cast<size_t>(r)];
      split[static_cast<size_t>(r)][static_cast<size_t>(p.slots[static_cast<size_t>(t.entry)])].push_back({len - t.kv_len, len});
    }
  }
  return split;
}

std::string plan_difference(const Plan& a, const Plan& b) {
  if (a.packs.size() != b.packs.size())
    return "packs: " + std::to_string(a.packs.size()) + " against " + std::to_string(b.packs.size());
  for (size_t i = 0; i < a.packs.size(); ++i) {
    const Pack& x = a.packs[i];
    const Pack& y = b.packs[i];
    const std::string pack = "pack " + std::to_string(i) + ": ";
    if (x.queries != y.queries) return pack + "queries " + numbers(x.queries) + " against " + numbers(y.queries);
    if (x.slots != y.slots) return pack + "slots " + numbers(x.slots) + " against " + numbers(y.slots);
    if (x.token_begin != y.token_begin || x.kv_len != y.kv_len)
      return pack + "tokens " + std::to_string(x.token_begin) + "+" + std::to_string(x.kv_len) + " against " +
             std::to_string(y.token_begin) + "+" + std::to_string(y.kv_len);
    if (x.blocks != y.blocks) return pack + "blocks " + numbers(x.blocks) + " against " + numbers(y.blocks);
    if (x.tile != y.tile) return pack + "tile " + x.tile.name() + " against " + y.tile.name();
    if (x.tails.size() != y.tails.size())
      return pack + std::to_string(x.tails.size()) + " leaf tails against " + std::to_string(y.tails.size());
    for (size_t t = 0; t < x.tails.size(); ++t)
      if (x.tails[t].entry != y.tails[t].entry || x.tails[t].kv_len != y.tails[t].kv_len ||
          x.tails[t].blocks != y.tails[t].blocks)
        return pack + "leaf tail " + std::to_string(t) + " differs";
  }
  if (a.partials != b.partials) return "partials: " + numbers(a.partials) + " against " + numbers(b.partials);
  return "";
}

}  // namespace patlab
