#include "patlab/planner/incremental_planner.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <string>

#include "patlab/error.hpp"

namespace patlab {

namespace {

using plan_steps::Piece;

bool same_shape(const Shape& a, const Shape& b) {
  return a.num_q_heads == b.num_q_heads && a.num_kv_heads == b.num_kv_heads && a.head_dim == b.head_dim &&
         a.page_size == b.page_size && a.dtype == b.dtype;
}

/// One piece per walk pack, uncut (the plan without the KV split).
std::vector<Piece> whole_pieces(const std::vector<Pack>& walk, int page) {
  std::vector<Piece> pieces(walk.size());
  for (size_t i = 0; i < walk.size(); ++i) pieces[i] = plan_steps::whole_piece(static_cast<int32_t>(i), walk[i], page);
  return pieces;
}

/// Whether a pack's tile can change when its KV length grows from `before` to `after` tokens:
/// choose_tile() picks n by the largest KV tile size shorter than the range (kv_tile_below()).
bool crosses_kv_tile(int32_t before, int32_t after) {
  constexpr int kLargest = kTileKvOptions[std::size(kTileKvOptions) - 1];
  if (kv_tile_below(kLargest, before)) return false;
  for (int n : kTileKvOptions)
    if (!kv_tile_below(n, before) && kv_tile_below(n, after)) return true;
  return false;
}

/// Whether `id` occurs exactly once in the sorted `ids`.
bool held_once(const std::vector<int32_t>& ids, int32_t id) {
  const auto [lo, hi] = std::equal_range(ids.begin(), ids.end(), id);
  return hi - lo == 1;
}

/// Same walk pack and first block. Two lists of pieces of the same walk packs that agree on
/// these cut them at the same places; only a grown pack's last piece may end later.
bool same_cut(const Piece& a, const Piece& b) { return a.pack == b.pack && a.block_begin == b.block_begin; }

}  // namespace

const char* update_path_name(UpdatePath path) {
  switch (path) {
    case UpdatePath::fast: return "fast";
    case UpdatePath::resplit: return "resplit";
    case UpdatePath::subtrees: return "subtrees";
    case UpdatePath::full: return "full";
  }
  return "?";
}

std::string describe_paths(const UpdatePathCounts& counts) {
  std::string text;
  for (int p = 0; p < kUpdatePaths; ++p)
    text += (p ? ", " : "") + std::string(update_path_name(static_cast<UpdatePath>(p))) + " " +
            std::to_string(counts[static_cast<size_t>(p)]);
  return text;
}

IncrementalPlanner::IncrementalPlanner(const PlannerOptions& options) : options_(options) {
  plan_steps::check_options(options_);
  if (options_.take_leaves)
    throw Error(ErrorKind::unsupported, "the incremental planner does not take leaf tails (PlannerOptions::take_leaves)");
}

void IncrementalPlanner::reset() {
  planned_ = false;
  requests_.clear();
  ids_.clear();
  position_of_.clear();
  subtrees_.clear();
  walk_.clear();
  walk_dirty_.clear();
  grown_.clear();
  pieces_.clear();
  piece_begin_.clear();
  split_ = SplitBounds{};
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

IncrementalPlanner::Change IncrementalPlanner::classify(const Request& old, const PagedLayout& layout, int32_t r,
                                                        TableHint hint) const {
  const std::vector<int32_t>& table = layout.block_tables[static_cast<size_t>(r)];
  const int32_t length = layout.lengths[static_cast<size_t>(r)];
  const size_t n = old.table.size();
  // [tail growth]
  // Are the old blocks still in place? Under append_only only the last old one can have moved
  // (copy-on-write); else every entry is compared. (check_tables() tied the sizes to the lengths.)
  const bool kept = table.size() >= n && (hint == TableHint::append_only
                                              ? n == 0 || table[n - 1] == old.table[n - 1]
                                              : std::equal(old.table.begin(), old.table.end(), table.begin()));
  if (length == old.length && kept) return Change::unchanged;
  // Alone in a leaf, every old block still in place, more tokens: no key where the tree divides
  // changes. A leaf of one partial block is the exception (its key holds its token count, which
  // could come to match a sibling's), unless no sibling holds that block.
  const bool alone = old.leaf_block >= 0;
  if (!alone || length < old.length || !kept) return Change::restructured;
  const bool partial_leaf = old.leaf_block == static_cast<int32_t>(n) - 1 && old.length % shape_.page_size != 0;
  return partial_leaf && !old.leaf_unique ? Change::restructured : Change::grown;
  // [tail growth]
}

void IncrementalPlanner::grow(Request& request, const PagedLayout& layout, int32_t r) {
  const std::vector<int32_t>& table = layout.block_tables[static_cast<size_t>(r)];
  const int32_t length = layout.lengths[static_cast<size_t>(r)];
  const int32_t w = request.leaf_pack;
  Pack& p = walk_[static_cast<size_t>(w)];
  p.kv_len += length - request.length;
  split_.cta_tokens += int64_t{length - request.length} * shape_.num_kv_heads;
  if (table.size() > request.table.size()) {
    const auto added = table.begin() + static_cast<std::ptrdiff_t>(request.table.size());
    p.blocks.insert(p.blocks.end(), added, table.end());
    request.table.insert(request.table.end(), added, table.end());
  }
  request.length = length;
  if (!walk_dirty_[static_cast<size_t>(w)]) {
    walk_dirty_[static_cast<size_t>(w)] = 1;
    grown_.push_back(w);
  }
}

const Plan& IncrementalPlanner::update(const PagedLayout& layout, const std::vector<int64_t>& request_ids, UpdateStats* stats,
                                       TableHint hint) {
  const auto start = std::chrono::steady_clock::now();
  UpdateStats st;
  // Checks first: nothing changes before the input is known good.
  const bool fresh = !planned_ || !same_shape(layout.shape, shape_);
  if (fresh)
    plan_steps::check_layout(layout);
  else
    plan_steps::check_tables(layout);
  const bool same_ids = !fresh && request_ids == ids_;
  check_ids(layout, request_ids, same_ids, positions_);

  const int32_t R = layout.num_requests();
  st.requests = R;
  if (same_ids && hint == TableHint::append_only && steady_step(layout, st)) return finish(start, st, stats);
  // Requests a steady step that gave up had grown are unchanged now; count them as grown.
  const int32_t grown_before = st.grown;
  st = UpdateStats{};
  st.requests = R;
  old_position_.assign(static_cast<size_t>(R), -1);
  change_.assign(static_cast<size_t>(R), Change::arrived);
  bool ordered = true, structural = !same_ids;
  if (!fresh) {
    int32_t last = -1;
    for (int32_t r = 0; r < R; ++r) {
      int32_t old = r;
      if (!same_ids) {
        const auto it = position_of_.find(request_ids[static_cast<size_t>(r)]);
        old = it == position_of_.end() ? -1 : it->second;
      }
      old_position_[static_cast<size_t>(r)] = old;
      if (old < 0) {
        ++st.arrived;
        continue;
      }
      ordered = ordered && old > last;
      last = old;
      const Change c = classify(requests_[static_cast<size_t>(old)], layout, r, hint);
      change_[static_cast<size_t>(r)] = c;
      st.unchanged += c == Change::unchanged;
      st.grown += c == Change::grown;
      if (c == Change::restructured) {
        ++st.restructured;
        structural = true;
      }
    }
    st.finished = static_cast<int32_t>(requests_.size()) - (R - st.arrived);
    st.unchanged -= grown_before;
    st.grown += grown_before;
    st.walk_packs_grown += grown_before;
  }
  if (fresh) {
    shape_ = layout.shape;
    model_ = CostModel::of(shape_, options_);
    plan_.strategy = plan_steps::strategy_name(options_);
  }
  if (!same_ids) {
    ids_ = request_ids;
    position_of_.swap(positions_);
  }
  if (fresh || !ordered || structural) {
    st.full_rebuild = fresh || !ordered;
    st.path = st.full_rebuild ? UpdatePath::full : UpdatePath::subtrees;
    rebuild(layout, old_position_, change_, st.full_rebuild, st);
    write_plan(layout, true, st);
  } else {
    bool cuts_hold = !options_.split_kv || split_.certified;
    for (int32_t r = 0; r < R; ++r)
      if (change_[static_cast<size_t>(r)] == Change::grown) {
        extend(requests_[static_cast<size_t>(r)], layout, r, cuts_hold);
        ++st.walk_packs_grown;
      }
    finish_growth(layout, cuts_hold, st);
  }
  return finish(start, st, stats);
}

const Plan& IncrementalPlanner::finish(std::chrono::steady_clock::time_point start, UpdateStats& st, UpdateStats* stats) {
  planned_ = true;
  st.subtrees = static_cast<int32_t>(subtrees_.size());
  st.walk_packs = static_cast<int32_t>(walk_.size());
  st.packs = static_cast<int32_t>(plan_.packs.size());
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats) *stats = st;
  return plan_;
}

// [steady step]
bool IncrementalPlanner::steady_step(const PagedLayout& layout, UpdateStats& st) {
  bool cuts_hold = !options_.split_kv || split_.certified;
  for (int32_t r = 0; r < layout.num_requests(); ++r) {
    Request& q = requests_[static_cast<size_t>(r)];
    switch (classify(q, layout, r, TableHint::append_only)) {
      case Change::unchanged: ++st.unchanged; break;
      case Change::grown:
        extend(q, layout, r, cuts_hold);
        ++st.grown;
        ++st.walk_packs_grown;
        break;
      default:
        // The tree changed: the general path takes over. What was extended is right as it is;
        // only the split has to be decided again.
        split_.certified = false;
        return false;
    }
  }
  finish_growth(layout, cuts_hold, st);
  return true;
}
// [steady step]

void IncrementalPlanner::extend(Request& q, const PagedLayout& layout, int32_t r, bool& cuts_hold) {
  const std::vector<int32_t>& table = layout.block_tables[static_cast<size_t>(r)];
  const int32_t length = layout.lengths[static_cast<size_t>(r)];
  const int32_t w = q.leaf_pack;
  const int32_t delta = length - q.length;
  Pack& whole = walk_[static_cast<size_t>(w)];
  const int32_t k = piece_begin_[static_cast<size_t>(w) + 1] - 1;  // the walk pack's last piece
  Piece& piece = pieces_[static_cast<size_t>(k)];
  Pack& out = plan_.packs[static_cast<size_t>(k)];
  whole.kv_len += delta;
  split_.cta_tokens += int64_t{delta} * shape_.num_kv_heads;
  q.length = length;
  if (table.size() > q.table.size()) {
    const auto added = table.begin() + static_cast<std::ptrdiff_t>(q.table.size());
    whole.blocks.insert(whole.blocks.end(), added, table.end());
    out.blocks.insert(out.blocks.end(), added, table.end());
    piece.block_end += static_cast<int32_t>(table.end() - added);
    q.table.insert(q.table.end(), added, table.end());
    // (c) a cut pack that gained a block would be halved at other blocks; within the wave
    //     fill's reach (e) any new block may change the fill's choice.
    if (k > piece_begin_[static_cast<size_t>(w)] || split_.fill) cuts_hold = false;
  }
  // (f) the class check's verdict on a class it kept whole is about that class's lengths.
  if (class_kept_whole(whole)) cuts_hold = false;
  piece.token_end += delta;
  const int32_t before = out.kv_len;
  out.kv_len += delta;
  if (options_.tiles != TilePolicy::fixed && crosses_kv_tile(before, out.kv_len))
    out.tile = plan_steps::tile_for(out, options_, shape_);
  if (split_.fill) {
    // (b) is about the fair split's last piece of the pack, which the fill may have cut further.
    const int32_t open_begin = split_.fair_last_block[static_cast<size_t>(w)];
    if (plan_steps::long_enough_to_cut(piece.block_end - open_begin, whole, shape_, options_))
      split_.max_open_tokens = std::max<int64_t>(split_.max_open_tokens,
                                                 whole.token_begin + whole.kv_len - int64_t{open_begin} * shape_.page_size);
  } else if (plan_steps::long_enough_to_cut(piece.block_end - piece.block_begin, whole, shape_, options_)) {
    split_.max_open_tokens = std::max<int64_t>(split_.max_open_tokens, out.kv_len);
  }
  ++packs_patched_;
}

void IncrementalPlanner::finish_growth(const PagedLayout& layout, bool cuts_hold, UpdateStats& st) {
  st.packs_written += packs_patched_;
  packs_patched_ = 0;
  if (!options_.split_kv || (cuts_hold && cuts_still_hold())) {
    st.path = UpdatePath::fast;
    return;
  }
  // The patched packs are what write_plan() would write; it decides the split again and
  // rewrites only the packs whose pieces changed.
  st.path = UpdatePath::resplit;
  write_plan(layout, false, st);
}

// [cuts still hold]
bool IncrementalPlanner::cuts_still_hold() const {
  const int64_t target = plan_steps::split_target_ctas(options_);
  const auto long_piece = [&](int64_t tokens) { return plan_steps::longer_than_share(tokens, target, split_.cta_tokens); };
  // (a) every cut piece still longer than one CTA slot's share: those that end inside their pack
  //     did not change; of those that end with it, each cut pack's deepest is the shortest.
  if (split_.fixed_cuts > 0 && !long_piece(split_.min_fixed_cut_tokens)) return false;
  for (const SplitBounds::Spine& spine : split_.spines) {
    const Pack& p = walk_[static_cast<size_t>(spine.pack)];
    if (!long_piece(p.token_begin + p.kv_len - int64_t{spine.block_begin} * shape_.page_size)) return false;
  }
  // (b) no piece left whole that could be cut is longer than the share now.
  return !long_piece(split_.max_open_tokens);
}
// [cuts still hold]

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
      mark_unique_leaves(layout, tree, requests);
      ++st.subtrees_rebuilt;
      st.walk_packs_rebuilt += static_cast<int32_t>(walk.size()) - sub.walk_begin;
    }
    sub.walk_count = static_cast<int32_t>(walk.size()) - sub.walk_begin;
  }
  // The siblings of a subtree's root are the other subtrees.
  std::vector<int32_t> firsts;
  for (size_t s = 0; s < subtrees.size(); ++s) firsts.push_back(layout.block_tables[static_cast<size_t>(members[s][0])][0]);
  std::sort(firsts.begin(), firsts.end());
  for (size_t s = 0; s < subtrees.size(); ++s) {
    Request& req = requests[static_cast<size_t>(members[s][0])];
    if (members[s].size() == 1 && req.leaf_block == 0) req.leaf_unique = held_once(firsts, req.table[0]);
  }
  walk_.swap(walk);
  walk_dirty_.assign(walk_.size(), 0);
  grown_.clear();
  subtrees_.swap(subtrees);
  requests_.swap(requests);
}

void IncrementalPlanner::mark_unique_leaves(const PagedLayout& layout, const plan_steps::RadixTree& tree,
                                            std::vector<Request>& requests) {
  const std::vector<plan_steps::TreeNode>& nodes = tree.nodes();
  const std::vector<int32_t>& order = tree.order();
  auto first_block = [&](const plan_steps::TreeNode& c) {
    const int32_t q = order[static_cast<size_t>(c.query_begin)];
    return layout.block_tables[static_cast<size_t>(q)][static_cast<size_t>(c.block_begin)];
  };
  std::vector<int32_t> firsts;
  for (size_t v = 1; v < nodes.size(); ++v) {  // node 0 is the virtual root: its child's siblings are other subtrees
    const plan_steps::TreeNode& n = nodes[v];
    firsts.clear();
    for (int32_t c = n.first_child; c < n.first_child + n.children; ++c) firsts.push_back(first_block(nodes[static_cast<size_t>(c)]));
    std::sort(firsts.begin(), firsts.end());
    for (int32_t c = n.first_child; c < n.first_child + n.children; ++c) {
      const plan_steps::TreeNode& child = nodes[static_cast<size_t>(c)];
      if (child.children == 0 && child.queries() == 1)
        requests[static_cast<size_t>(order[static_cast<size_t>(child.query_begin)])].leaf_unique =
            held_once(firsts, first_block(child));
    }
  }
}

void IncrementalPlanner::write_plan(const PagedLayout& layout, bool structural, UpdateStats& st) {
  const int page = shape_.page_size;
  if (structural) fill_memo_.valid = false;
  std::vector<Piece> pieces = options_.split_kv ? cut_pieces(layout.num_requests()) : whole_pieces(walk_, page);
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
  for (int32_t w : grown_) walk_dirty_[static_cast<size_t>(w)] = 0;
  grown_.clear();
  index_pieces();
}

// [fill memo]
std::vector<Piece> IncrementalPlanner::cut_pieces(int num_requests) {
  const int page = shape_.page_size;
  int32_t cuts = 0;
  std::vector<Piece> fair = plan_steps::split_kv(walk_, shape_, options_, num_requests, cuts, &kept_whole_);
  const int64_t ctas = static_cast<int64_t>(walk_.size()) * shape_.num_kv_heads;
  if (!plan_steps::fill_applies(ctas, plan_steps::split_slots(walk_, shape_, options_), options_)) {
    fill_memo_.valid = false;
    return fair;
  }
  std::vector<int32_t> blocks(walk_.size());
  for (size_t w = 0; w < walk_.size(); ++w) {
    const Pack& p = walk_[w];
    blocks[w] = (p.token_begin + p.kv_len + page - 1) / page - p.token_begin / page;
  }
  if (fill_memo_.valid && blocks == fill_memo_.walk_blocks && fair.size() == fill_memo_.fair.size() &&
      std::equal(fair.begin(), fair.end(), fill_memo_.fair.begin(), same_cut)) {
    std::vector<Piece> pieces = fill_memo_.chosen;
    for (size_t k = 0; k < pieces.size(); ++k)
      if (k + 1 == pieces.size() || pieces[k + 1].pack != pieces[k].pack) {
        const Pack& p = walk_[static_cast<size_t>(pieces[k].pack)];
        pieces[k].token_end = p.token_begin + p.kv_len;  // each pack's last piece ends with the pack
      }
    return pieces;
  }
  fill_memo_.fair = fair;
  fill_memo_.walk_blocks = std::move(blocks);
  fill_memo_.chosen = plan_steps::fill_waves(walk_, std::move(fair), shape_, options_, num_requests, nullptr);
  fill_memo_.valid = true;
  return fill_memo_.chosen;
}
// [fill memo]

void IncrementalPlanner::index_pieces() {
  const int page = shape_.page_size;
  piece_begin_.assign(walk_.size() + 1, 0);
  for (const Piece& p : pieces_) ++piece_begin_[static_cast<size_t>(p.pack) + 1];
  for (size_t w = 0; w < walk_.size(); ++w) piece_begin_[w + 1] += piece_begin_[w];
  split_ = SplitBounds{};
  for (const Pack& p : walk_) split_.cta_tokens += int64_t{p.kv_len} * shape_.num_kv_heads;
  if (!options_.split_kv) return;
  // Within the wave fill's reach the cuts follow its wave model, which lengths move. The fill
  // memo makes its choice a function of the fair split and the walk packs' block counts, so a
  // step is certified when the fair split (the memo's) still holds, (a)-(d) on its pieces, and
  // no walk pack gains a block (e).
  split_.fill = plan_steps::fill_applies(static_cast<int64_t>(walk_.size()) * shape_.num_kv_heads,
                                         plan_steps::split_slots(walk_, shape_, options_), options_);
  if (split_.fill && !fill_memo_.valid) return;
  const std::vector<Piece>& fair = split_.fill ? fill_memo_.fair : pieces_;
  if (split_.fill) split_.fair_last_block.assign(walk_.size(), 0);
  // The cut pieces (inner nodes of each pack's halving) and the pieces left whole that could be cut.
  split_.certified = true;
  int32_t i = 0;
  for (int32_t w = 0; w < static_cast<int32_t>(walk_.size()) && split_.certified; ++w) {
    const Pack& p = walk_[static_cast<size_t>(w)];
    const int32_t end = p.token_begin + p.kv_len;
    int32_t last = i;
    while (last < static_cast<int32_t>(fair.size()) && fair[static_cast<size_t>(last)].pack == w) ++last;
    split_.certified = visit_halving(fair, w, p.token_begin / page, (end + page - 1) / page, end, true, i, last) && i == last;
    if (split_.certified && split_.fill) split_.fair_last_block[static_cast<size_t>(w)] = fair[static_cast<size_t>(last - 1)].block_begin;
  }
  if (!split_.certified) return;
  for (size_t k = 0; k < fair.size(); ++k) {
    const Piece& piece = fair[k];
    const Pack& p = walk_[static_cast<size_t>(piece.pack)];
    if (!plan_steps::long_enough_to_cut(piece.block_end - piece.block_begin, p, shape_, options_)) continue;
    // A piece the class check kept whole (f) stays whole while its class's packs keep their length.
    if (class_kept_whole(p)) continue;
    // The memo's last pieces end where their pack ended then: count them to its end now.
    const bool last_of_pack = k + 1 == fair.size() || fair[k + 1].pack != piece.pack;
    const int64_t tokens = last_of_pack ? p.token_begin + p.kv_len - int64_t{piece.block_begin} * page : piece.tokens(page);
    split_.max_open_tokens = std::max<int64_t>(split_.max_open_tokens, tokens);
  }
  // A piece long enough to cut that is still longer than the share was refused for the
  // per-query cap: the cuts then depend on the split's order, and every step decides them again.
  if (plan_steps::longer_than_share(split_.max_open_tokens, plan_steps::split_target_ctas(options_), split_.cta_tokens))
    split_.certified = false;
}

bool IncrementalPlanner::visit_halving(const std::vector<Piece>& pieces, int32_t w, int32_t b, int32_t e,
                                       int32_t token_end, bool spine, int32_t& i, int32_t last) {
  if (i >= last || pieces[static_cast<size_t>(i)].block_begin != b) return false;
  if (pieces[static_cast<size_t>(i)].block_end == e) {
    ++i;
    return true;
  }
  if (e - b < 2) return false;
  if (spine) {
    // Visited outermost first: the last one recorded for the pack is its deepest.
    if (split_.spines.empty() || split_.spines.back().pack != w) split_.spines.push_back({w, b});
    split_.spines.back().block_begin = b;
  } else {
    const int64_t tokens = token_end - int64_t{b} * shape_.page_size;
    split_.min_fixed_cut_tokens = split_.fixed_cuts++ == 0 ? tokens : std::min(split_.min_fixed_cut_tokens, tokens);
  }
  const int32_t mid = plan_steps::halving_block(b, e);  // where split_kv() cuts it
  return visit_halving(pieces, w, b, mid, mid * shape_.page_size, false, i, last) &&
         visit_halving(pieces, w, mid, e, token_end, spine, i, last);
}

}  // namespace patlab
