// The validator every plan must pass (tutorial chapter 02, section 6, tutorial/02-pack-step.md).
#include "patlab/planner/planner.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "patlab/planner/tile_budget.hpp"
#include "planner_detail.hpp"

namespace patlab {

using planner_detail::ceil_div;

namespace {

/// Collects fault lines, keeping at most kMaxReportedFaults.
class Faults {
 public:
  void add(const std::string& line) {
    ++total_;
    if (static_cast<int64_t>(lines_.size()) < kMaxReportedFaults) lines_.push_back(line);
  }
  std::vector<std::string> finish() {
    if (total_ > static_cast<int64_t>(lines_.size())) {
      const int64_t more = total_ - static_cast<int64_t>(lines_.size()) + 1;
      lines_.back() = "... and " + std::to_string(more) + " more faults";
    }
    return std::move(lines_);
  }

 private:
  std::vector<std::string> lines_;
  int64_t total_ = 0;
};

std::string range(int64_t begin, int64_t end) { return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")"; }

/// The index of the first of `blocks` that is not `table`'s block at its place (block `first` of
/// the table onwards), or blocks.size() when every one is.
size_t first_foreign_block(const std::vector<int32_t>& blocks, const std::vector<int32_t>& table, int64_t first) {
  for (size_t j = 0; j < blocks.size(); ++j)
    if (blocks[j] != table[static_cast<size_t>(first) + j]) return j;
  return blocks.size();
}

}  // namespace

std::vector<std::string> validate_plan(const PagedLayout& L, const Plan& plan) {
  Faults f;
  const int R = L.num_requests();
  const int page = L.shape.page_size;
  const int group = L.shape.group();
  const bool partials_ok = static_cast<int>(plan.partials.size()) == R;
  if (!partials_ok)
    f.add("partials: the plan has partial counts for " + std::to_string(plan.partials.size()) + " requests, the layout has " +
          std::to_string(R));
  struct Use {
    int64_t begin, end;
    int32_t slot, pack;
  };
  std::vector<std::vector<Use>> uses(static_cast<size_t>(R));
  for (size_t pi = 0; pi < plan.packs.size(); ++pi) {
    const Pack& p = plan.packs[pi];
    const std::string name = "pack " + std::to_string(pi);
    if (p.queries.empty()) {
      f.add("empty pack: " + name + " has no queries");
      continue;
    }
    if (p.slots.size() != p.queries.size()) {
      f.add("slots: " + name + " has " + std::to_string(p.queries.size()) + " queries but " + std::to_string(p.slots.size()) +
            " slots");
      continue;
    }
    if (p.kv_len < 1) {
      f.add("range: " + name + " has KV length " + std::to_string(p.kv_len));
      continue;
    }
    const int64_t begin = p.token_begin, end = begin + p.kv_len;
    const bool aligned = begin >= 0 && begin % page == 0;
    if (!aligned) f.add("alignment: " + name + " begins at token " + std::to_string(begin) + ", not a multiple of the page size " +
                        std::to_string(page));
    const int64_t rows = static_cast<int64_t>(p.queries.size()) * group;
    if (rows > kMaxPackRows)
      f.add("rows: " + name + " has " + std::to_string(rows) + " rows (" + std::to_string(p.queries.size()) + " queries x group " +
            std::to_string(group) + "), more than the largest tile's " + std::to_string(kMaxPackRows));
    if (p.tile.m != 0 || p.tile.n != 0) {
      // Stage 8's tiles (64, 128 or 192 rows x hopper_kv_tile(rows)) or a built pack-kernel tile that fits.
      const bool hopper_tile =
          is_hopper_tile(p.tile) && one_of(p.tile.m, kHopperTileRows) && p.tile.n == hopper_kv_tile(p.tile.m);
      const bool pack_tile =
          !is_hopper_tile(p.tile) && one_of(p.tile.m, kTileRowOptions) && one_of(p.tile.n, kTileKvOptions);
      if (!hopper_tile && !pack_tile)
        f.add("tile: " + name + " has tile " + p.tile.name() + ", not a built tile");
      else if (pack_tile && !tile_fits(p.tile, L.shape.head_dim, L.shape.kv_element_bytes()))
        f.add("tile: " + name + " has tile " + p.tile.name() + ", which does not fit head dim " +
              std::to_string(L.shape.head_dim));
      else if (rows > p.tile.m)
        f.add("rows: " + name + " has " + std::to_string(rows) + " rows, more than its tile's m = " + std::to_string(p.tile.m));
    }
    if (tails_tile(p.tile) && p.tails.empty())
      f.add("tile: " + name + " has the tails' tile " + p.tile.name() + " but no tails");
    if (!p.tails.empty() && (p.tile.m != 0 || p.tile.n != 0) && !tails_tile(p.tile))
      f.add("tile: " + name + " has tails but tile " + p.tile.name() + ", not one of the tails' instances (m x n t, ht)");
    // Leaf tails: at most one per query, whole blocks of that query after a range of whole pages.
    std::vector<int32_t> tail_of(p.queries.size(), -1);
    if (!p.tails.empty() && end % page != 0)
      f.add("tails: " + name + " has tails after a range ending at token " + std::to_string(end) +
            ", inside a block (a tail begins at a page boundary)");
    for (size_t t = 0; t < p.tails.size(); ++t) {
      const PackTail& tail = p.tails[t];
      const std::string what = name + " tail " + std::to_string(t);
      if (tail.entry < 0 || tail.entry >= static_cast<int32_t>(p.queries.size()))
        f.add("tails: " + what + " names entry " + std::to_string(tail.entry) + " of " + std::to_string(p.queries.size()));
      else if (tail_of[static_cast<size_t>(tail.entry)] >= 0)
        f.add("tails: " + what + " is a second tail of entry " + std::to_string(tail.entry));
      else if (tail.kv_len < 1 || static_cast<int64_t>(tail.blocks.size()) != ceil_div(tail.kv_len, page))
        f.add("tails: " + what + " has " + std::to_string(tail.kv_len) + " tokens in " + std::to_string(tail.blocks.size()) +
              " blocks");
      else if (tail.kv_len % page != 0 && t + 1 < p.tails.size())
        f.add("tails: " + what + " ends inside a page but is not the pack's last tail (the kernels would read the "
              "page's empty slots)");
      else
        tail_of[static_cast<size_t>(tail.entry)] = static_cast<int32_t>(t);
    }
    const bool blocks_ok = aligned && static_cast<int64_t>(p.blocks.size()) == ceil_div(end, page) - begin / page;
    if (aligned && !blocks_ok)
      f.add("blocks: " + name + " lists " + std::to_string(p.blocks.size()) + " blocks for tokens " + range(begin, end) +
            ", which span " + std::to_string(ceil_div(end, page) - begin / page));
    std::vector<int32_t> sorted = p.queries;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 1; i < sorted.size(); ++i)
      if (sorted[i] == sorted[i - 1]) f.add("duplicate query: " + name + " holds request " + std::to_string(sorted[i]) + " twice");
    for (size_t i = 0; i < p.queries.size(); ++i) {
      const int32_t r = p.queries[i];
      if (r < 0 || r >= R) {
        f.add("unknown query: " + name + " names request " + std::to_string(r) + " (the layout has " + std::to_string(R) + ")");
        continue;
      }
      const int64_t len = L.lengths[static_cast<size_t>(r)];
      const PackTail* tail = tail_of[i] >= 0 ? &p.tails[static_cast<size_t>(tail_of[i])] : nullptr;
      const int64_t q_end = end + (tail ? tail->kv_len : 0);  // the query reads its tail after the range
      if (q_end > len) {
        f.add("range: " + name + " reads tokens " + range(begin, q_end) + ", past the end of request " + std::to_string(r) +
              " (" + std::to_string(len) + " tokens)");
      } else {
        const auto& table = L.block_tables[static_cast<size_t>(r)];
        if (tail) {
          const size_t j = first_foreign_block(tail->blocks, table, end / page);
          if (j < tail->blocks.size())
            f.add("tails: " + name + " reads physical block " + std::to_string(tail->blocks[j]) + " at block " +
                  std::to_string(end / page + static_cast<int64_t>(j)) + " for request " + std::to_string(r) +
                  ", which has block " + std::to_string(table[static_cast<size_t>(end / page) + j]) + " there");
          if (q_end % page != 0 && q_end != len)
            f.add("partial block: " + name + "'s tail of request " + std::to_string(r) + " ends at token " +
                  std::to_string(q_end) + " inside a block, but the request goes on to " + std::to_string(len));
        }
        const size_t j = blocks_ok ? first_foreign_block(p.blocks, table, begin / page) : p.blocks.size();
        if (j < p.blocks.size())
          f.add("blocks: " + name + " reads physical block " + std::to_string(p.blocks[j]) + " at block " +
                std::to_string(begin / page + static_cast<int64_t>(j)) + ", request " + std::to_string(r) + " has block " +
                std::to_string(table[static_cast<size_t>(begin / page) + j]) + " there");
        if (end % page != 0 && end != len)
          f.add("partial block: " + name + " ends at token " + std::to_string(end) + " inside a block, but request " +
                std::to_string(r) + " goes on to " + std::to_string(len) + " (only a query's last pack may end in a partial block)");
      }
      uses[static_cast<size_t>(r)].push_back({begin, q_end, p.slots[i], static_cast<int32_t>(pi)});
    }
  }
  for (int r = 0; r < R; ++r) {
    std::vector<Use>& u = uses[static_cast<size_t>(r)];
    const std::string req = "request " + std::to_string(r);
    const int64_t len = L.lengths[static_cast<size_t>(r)];
    if (u.empty()) {
      f.add("missing query: " + req + " is in no pack (its " + std::to_string(len) + " tokens are never read)");
      continue;
    }
    if (partials_ok) {
      const int64_t k = plan.partials[static_cast<size_t>(r)];
      if (k != static_cast<int64_t>(u.size()))
        f.add("partials: " + req + " has " + std::to_string(k) + " partials in the plan but is in " + std::to_string(u.size()) +
              " packs");
      std::vector<int32_t> writer(static_cast<size_t>(std::max<int64_t>(k, 0)), -1);
      for (const Use& x : u) {
        if (x.slot < 0 || x.slot >= k) {
          f.add("slot range: " + req + " gets slot " + std::to_string(x.slot) + " from pack " + std::to_string(x.pack) +
                ", outside 0.." + std::to_string(k - 1));
        } else if (writer[static_cast<size_t>(x.slot)] >= 0) {
          f.add("duplicate slot: " + req + " slot " + std::to_string(x.slot) + " is written by packs " +
                std::to_string(writer[static_cast<size_t>(x.slot)]) + " and " + std::to_string(x.pack));
        } else {
          writer[static_cast<size_t>(x.slot)] = x.pack;
        }
      }
      for (size_t s = 0; s < writer.size(); ++s)
        if (writer[s] < 0) f.add("missing slot: " + req + " slot " + std::to_string(s) + " is never written");
    }
    std::sort(u.begin(), u.end(), [](const Use& a, const Use& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    int64_t pos = 0;
    int32_t last_pack = -1;
    for (const Use& x : u) {
      if (x.begin > pos)
        f.add("gap: " + req + " tokens " + range(pos, x.begin) + " are in no pack");
      else if (x.begin < pos)
        f.add("overlap: " + req + " tokens " + range(x.begin, std::min(pos, x.end)) + " are read twice (packs " +
              std::to_string(last_pack) + " and " + std::to_string(x.pack) + ")");
      if (x.end > pos) {
        pos = x.end;
        last_pack = x.pack;
      }
    }
    if (pos < len) f.add("gap: " + req + " tokens " + range(pos, len) + " are in no pack");
    for (size_t i = 1; i < u.size(); ++i) {
      if (u[i].slot <= u[i - 1].slot) {
        f.add("slot order: " + req + " has slot " + std::to_string(u[i - 1].slot) + " at token " + std::to_string(u[i - 1].begin) +
              " but slot " + std::to_string(u[i].slot) + " at token " + std::to_string(u[i].begin) + " (slots must follow block order)");
        break;
      }
    }
  }
  return f.finish();
}

}  // namespace patlab
