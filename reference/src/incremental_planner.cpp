#include "patlab/incremental_planner.hpp"

#include <algorithm>
#include <chrono>
#include <string>

#include "patlab/error.hpp"

namespace patlab {

namespace {

using plan_steps::Piece;

bool same_shape(const Shape& a, const Shape& b) {
  return a.num_q_heads == b.num_q_heads && a.num_kv_heads == b.num_kv_heads && a.head_dim == b.head_dim &&
         a.page_size == b.page_size && a.dtype == b.dtype;
}

/// Most rows of a pack under `options` (as make_plan()).
int max_rows(const PlannerOptions& options) { return options.tiles == TilePolicy::fixed ? options.fixed_tile.m : kMaxTileRows; }

/// One piece per walk pack, uncut (the plan without the KV split).
std::vector<Piece> whole_pieces(const std::vector<Pack>& walk, int page) {
  std::vector<Piece> pieces(walk.size());
  for (size_t i = 0; i < walk.size(); ++i) {
    const int32_t end = walk[i].token_begin + walk[i].kv_len;
    pieces[i] = {static_cast<int32_t>(i), walk[i].token_begin / page, (end + page - 1) / page, end};
  }
  return pieces;
}

/// Same walk pack and first block. Two lists of pieces of the same walk packs that agree on
/// these cut them at the same places; only a grown pack's last piece may end later.
bool same_cut(const Piece& a, const Piece& b) { return a.pack == b.pack && a.block_begin == b.block_begin; }

}  // namespace

IncrementalPlanner::IncrementalPlanner(const PlannerOptions& options) : options_(options) {
  plan_steps::check_options(options_);
}

void IncrementalPlanner::reset() {
  planned_ = false;
  requests_.clear();
  ids_.clear();
  position_of_.clear();
  subtrees_.clear();
  walk_.clear();
  walk_dirty_.clear();
  pieces_.clear();
  plan_ = Plan{};
}

void IncrementalPlanner::check_ids(const PagedLayout& layout, const std::vector<int64_t>& ids, bool same_ids,
                                   std::unordered_map<int64_t, int32_t>& positions) const {
  const int R = layout.num_requests();
  if (static_cast<int64_t>(ids.size()) != R)
    throw Error(ErrorKind::usage, "incremental planner: " + std::to_string(ids.size()) + " request ids for " +
                                      std::to_string(R) + " requests");
  if (same_ids) return;  // checked when they were new
  positions.clear();
  positions.reserve(ids.size());
  for (int32_t r = 0; r < R; ++r) {
    const auto [it, fresh] = positions.emplace(ids[static_cast<size_t>(r)], r);
    if (!fresh)
      throw Error(ErrorKind::usage, "incremental planner: request id " + std::to_string(ids[static_cast<size_t>(r)]) +
                                        " is given to requests " + std::to_string(it->second) + " and " + std::to_string(r));
  }
}

IncrementalPlanner::Change IncrementalPlanner::classify(const Request& old, const PagedLayout& layout, int32_t r) const {
  const std::vector<int32_t>& table = layout.block_tables[static_cast<size_t>(r)];
  const int32_t length = layout.lengths[static_cast<size_t>(r)];
  if (length == old.length && table == old.table) return Change::unchanged;
  const size_t n = old.table.size();
  // [tail growth]
  // Alone in a leaf, every old block still in place, more tokens: no key where the tree divides
  // changes, unless the leaf is one partial block (its key holds its token count).
  const bool alone = old.leaf_block >= 0;
  const bool longer = length > old.length && table.size() >= n;
  if (!alone || !longer || !std::equal(old.table.begin(), old.table.end(), table.begin())) return Change::restructured;
  const bool partial_leaf = old.leaf_block == static_cast<int32_t>(n) - 1 && old.length % shape_.page_size != 0;
  return partial_leaf ? Change::restructured : Change::grown;
  // [tail growth]
}

void IncrementalPlanner::grow(Request& request, const PagedLayout& layout, int32_t r) {
  const std::vector<int32_t>& table = layout.block_tables[static_cast<size_t>(r)];
  const auto added = table.begin() + static_cast<std::ptrdiff_t>(request.table.size());
  Pack& p = walk_[static_cast<size_t>(request.leaf_pack)];
  p.kv_len += layout.lengths[static_cast<size_t>(r)] - request.length;
  p.blocks.insert(p.blocks.end(), added, table.end());
  walk_dirty_[static_cast<size_t>(request.leaf_pack)] = 1;
  request.table.insert(request.table.end(), added, table.end());
  request.length = layout.lengths[static_cast<size_t>(r)];
}

const Plan& IncrementalPlanner::update(const PagedLayout& layout, const std::vector<int64_t>& request_ids, UpdateStats* stats) {
  const auto start = std::chrono::steady_clock::now();
  UpdateStats st;
  // Checks first: nothing changes before the input is known good.
  const bool fresh = !planned_ || !same_shape(layout.shape, shape_);
  if (fresh)
    plan_steps::check_layout(layout);
  else
    plan_steps::check_tables(layout);
  const bool same_ids = !fresh && request_ids == ids_;
  std::unordered_map<int64_t, int32_t> positions;
  check_ids(layout, request_ids, same_ids, positions);

  const int32_t R = layout.num_requests();
  st.requests = R;
  std::vector<int32_t> old_position(static_cast<size_t>(R), -1);
  std::vector<Change> change(static_cast<size_t>(R), Change::arrived);
  bool ordered = true, structural = !same_ids;
  if (!fresh) {
    int32_t last = -1;
    for (int32_t r = 0; r < R; ++r) {
      int32_t old = r;
      if (!same_ids) {
        const auto it = position_of_.find(request_ids[static_cast<size_t>(r)]);
        old = it == position_of_.end() ? -1 : it->second;
      }
      old_position[static_cast<size_t>(r)] = old;
      if (old < 0) {
        ++st.arrived;
        continue;
      }
      ordered = ordered && old > last;
      last = old;
      change[static_cast<size_t>(r)] = classify(requests_[static_cast<size_t>(old)], layout, r);
      switch (change[static_cast<size_t>(r)]) {
        case Change::unchanged: ++st.unchanged; break;
        case Change::grown: ++st.grown; break;
        default: ++st.restructured; structural = true; break;
      }
    }
    st.finished = static_cast<int32_t>(requests_.size()) - (R - st.arrived);
  }
  if (fresh) {
    shape_ = layout.shape;
    model_ = CostModel::of(shape_, max_rows(options_));
    plan_.strategy = plan_steps::strategy_name(options_);
  }
  if (!same_ids) {
    ids_ = request_ids;
    position_of_.swap(positions);
  }
  if (fresh || !ordered || structural) {
    st.full_rebuild = fresh || !ordered;
    rebuild(layout, old_position, change, st.full_rebuild, st);
    write_plan(layout, true, st);
  } else {
    for (int32_t r = 0; r < R; ++r)
      if (change[static_cast<size_t>(r)] == Change::grown) {
        grow(requests_[static_cast<size_t>(r)], layout, r);
        ++st.walk_packs_grown;
      }
    write_plan(layout, false, st);
  }
  planned_ = true;
  st.subtrees = static_cast<int32_t>(subtrees_.size());
  st.walk_packs = static_cast<int32_t>(walk_.size());
  st.packs = static_cast<int32_t>(plan_.packs.size());
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats) *stats = st;
  return plan_;
}

void IncrementalPlanner::rebuild(const PagedLayout& layout, const std::vector<int32_t>& old_position,
                                 const std::vector<Change>& change, bool everything, UpdateStats& st) {
  const int32_t R = layout.num_requests();
  // 1. Root subtrees by the key of their first block, in the order of their smallest request.
  //    A subtree is kept when its requests are the same ones, each unchanged or grown.
  std::unordered_map<int64_t, int32_t> subtree_of_key;
  std::vector<Subtree> subtrees;
  std::vector<std::vector<int32_t>> members;
  std::vector<int32_t> source;  // per new subtree: the old one its kept requests came from (-1: none)
  std::vector<char> keep;
  std::vector<int32_t> subtree_of(static_cast<size_t>(R));
  for (int32_t r = 0; r < R; ++r) {
    const int64_t key = plan_steps::block_key(layout, r, 0);
    const auto [it, added] = subtree_of_key.emplace(key, static_cast<int32_t>(subtrees.size()));
    if (added) {
      subtrees.push_back(Subtree{key, 0, 0, 0});
      members.emplace_back();
      source.push_back(-1);
      keep.push_back(!everything);
    }
    const int32_t s = it->second;
    subtree_of[static_cast<size_t>(r)] = s;
    members[static_cast<size_t>(s)].push_back(r);
    const int32_t old = old_position[static_cast<size_t>(r)];
    const Change c = change[static_cast<size_t>(r)];
    if (everything || old < 0 || c == Change::restructured || c == Change::arrived) {
      keep[static_cast<size_t>(s)] = 0;
      continue;
    }
    const int32_t from = requests_[static_cast<size_t>(old)].subtree;
    if (source[static_cast<size_t>(s)] >= 0 && source[static_cast<size_t>(s)] != from) keep[static_cast<size_t>(s)] = 0;
    source[static_cast<size_t>(s)] = from;
  }
  for (size_t s = 0; s < subtrees.size(); ++s) {
    subtrees[s].members = static_cast<int32_t>(members[s].size());
    if (keep[s] && (source[s] < 0 || subtrees_[static_cast<size_t>(source[s])].members != subtrees[s].members)) keep[s] = 0;
  }

  // 2. Kept subtrees: grow their grown requests in place, then renumber their queries.
  std::vector<int32_t> new_position(requests_.size(), -1);
  for (int32_t r = 0; r < R; ++r)
    if (old_position[static_cast<size_t>(r)] >= 0) new_position[static_cast<size_t>(old_position[static_cast<size_t>(r)])] = r;
  for (int32_t r = 0; r < R; ++r)
    if (keep[static_cast<size_t>(subtree_of[static_cast<size_t>(r)])] && change[static_cast<size_t>(r)] == Change::grown) {
      grow(requests_[static_cast<size_t>(old_position[static_cast<size_t>(r)])], layout, r);
      ++st.walk_packs_grown;
    }

  // 3. The walk: kept subtrees' packs moved over, the others built and walked again.
  std::vector<Pack> walk;
  walk.reserve(walk_.size());
  std::vector<Request> requests(static_cast<size_t>(R));
  for (size_t s = 0; s < subtrees.size(); ++s) {
    Subtree& sub = subtrees[s];
    sub.walk_begin = static_cast<int32_t>(walk.size());
    if (keep[s]) {
      const Subtree& old = subtrees_[static_cast<size_t>(source[s])];
      for (int32_t i = 0; i < old.walk_count; ++i) {
        Pack& p = walk_[static_cast<size_t>(old.walk_begin + i)];
        for (int32_t& q : p.queries) q = new_position[static_cast<size_t>(q)];
        walk.push_back(std::move(p));
      }
      for (int32_t r : members[s]) {
        Request& req = requests[static_cast<size_t>(r)];
        req = std::move(requests_[static_cast<size_t>(old_position[static_cast<size_t>(r)])]);
        req.subtree = static_cast<int32_t>(s);
        if (req.leaf_pack >= 0) req.leaf_pack += sub.walk_begin - old.walk_begin;
      }
    } else {
      const plan_steps::RadixTree tree(layout, members[s]);
      plan_steps::walk_tree(layout, tree, model_, walk, nullptr);
      for (int32_t r : members[s]) {
        Request& req = requests[static_cast<size_t>(r)];
        req.length = layout.lengths[static_cast<size_t>(r)];
        req.table = layout.block_tables[static_cast<size_t>(r)];
        req.subtree = static_cast<int32_t>(s);
      }
      // Requests alone in a leaf: where the leaf starts, and their last pack (the leaf's, which
      // the preorder walk emits after every other pack of theirs).
      for (const plan_steps::TreeNode& n : tree.nodes())
        if (n.children == 0 && n.queries() == 1)
          requests[static_cast<size_t>(tree.order()[static_cast<size_t>(n.query_begin)])].leaf_block = n.block_begin;
      for (int32_t i = sub.walk_begin; i < static_cast<int32_t>(walk.size()); ++i) {
        const Pack& p = walk[static_cast<size_t>(i)];
        Request& req = requests[static_cast<size_t>(p.queries.front())];
        if (p.queries.size() == 1 && req.leaf_block >= 0) req.leaf_pack = i;
      }
      ++st.subtrees_rebuilt;
      st.walk_packs_rebuilt += static_cast<int32_t>(walk.size()) - sub.walk_begin;
    }
    sub.walk_count = static_cast<int32_t>(walk.size()) - sub.walk_begin;
  }
  walk_.swap(walk);
  walk_dirty_.assign(walk_.size(), 0);
  subtrees_.swap(subtrees);
  requests_.swap(requests);
}

void IncrementalPlanner::write_plan(const PagedLayout& layout, bool structural, UpdateStats& st) {
  const int page = shape_.page_size;
  int32_t cuts = 0;
  std::vector<Piece> pieces = options_.split_kv ? plan_steps::split_kv(walk_, shape_, options_, layout.num_requests(), cuts)
                                                : whole_pieces(walk_, page);
  auto write = [&](size_t k, Pack& out) {
    plan_steps::piece_to_pack(walk_[static_cast<size_t>(pieces[k].pack)], pieces[k], page, out);
    out.tile = plan_steps::tile_for(out, options_, shape_);
    ++st.packs_written;
  };
  // [reuse the split]
  const bool same_cuts = !structural && pieces.size() == pieces_.size() &&
                         std::equal(pieces.begin(), pieces.end(), pieces_.begin(), same_cut);
  if (same_cuts) {
    // Same pieces: every query keeps its packs and slots; rewrite those of grown walk packs.
    for (size_t k = 0; k < pieces.size(); ++k)
      if (walk_dirty_[static_cast<size_t>(pieces[k].pack)]) write(k, plan_.packs[k]);
  } else if (!structural) {
    // The split moved: keep the packs of walk packs whose pieces did not change, write the rest.
    std::vector<Pack> packs(pieces.size());
    size_t o = 0, k = 0;
    for (int32_t w = 0; w < static_cast<int32_t>(walk_.size()); ++w) {
      const size_t ob = o, kb = k;
      while (o < pieces_.size() && pieces_[o].pack == w) ++o;
      while (k < pieces.size() && pieces[k].pack == w) ++k;
      const bool same = o - ob == k - kb && std::equal(pieces.begin() + static_cast<std::ptrdiff_t>(kb),
                                                       pieces.begin() + static_cast<std::ptrdiff_t>(k),
                                                       pieces_.begin() + static_cast<std::ptrdiff_t>(ob), same_cut);
      if (!same) ++st.split_changed;
      for (size_t i = kb; i < k; ++i) {
        if (same && !walk_dirty_[static_cast<size_t>(w)])
          packs[i] = std::move(plan_.packs[ob + (i - kb)]);
        else
          write(i, packs[i]);
      }
    }
    plan_.packs.swap(packs);
    plan_steps::assign_slots(plan_, layout.num_requests());
  } else {
    plan_.packs.resize(pieces.size());
    for (size_t k = 0; k < pieces.size(); ++k) write(k, plan_.packs[k]);
    plan_steps::assign_slots(plan_, layout.num_requests());
  }
  // [reuse the split]
  pieces_.swap(pieces);
  std::fill(walk_dirty_.begin(), walk_dirty_.end(), 0);
}

}  // namespace patlab
