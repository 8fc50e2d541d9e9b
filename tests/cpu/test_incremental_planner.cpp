// The incremental planner against make_plan(): random serving sequences (every request one token
// longer per step, arrivals with and without prefix hits, finishes, forks with copy-on-write,
// reorders; tables compared entry by entry or promised append-only), every step's plan identical
// to make_plan()'s and valid, the packed oracle on a sample of steps, what update() reports it
// reused, the fast path across page boundaries, KV-split thresholds, the per-query cap and
// events mid-run, and bad input.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/truth/dtype.hpp"
#include "patlab/planner/incremental_planner.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/planner/planner.hpp"

using namespace patlab;

namespace {

/// Steps counted by update path.
struct PathCounts {
  UpdatePathCounts n{};
  void add(UpdatePath p) { ++n[static_cast<size_t>(p)]; }
  int64_t operator[](UpdatePath p) const { return n[static_cast<size_t>(p)]; }
};

/// Seeds of the random serving sequences, and decode steps in each.
constexpr uint64_t kFirstSeed = 20250115;
constexpr int kSequences = 40;
constexpr int kStepsPerSequence = 300;
/// Every this many steps of the small sequences, the packed oracle runs the plan.
constexpr int kOracleEvery = 25;
/// Requests a sequence keeps at most (arrivals wait while it is full).
constexpr int kMaxLiveRequests = 40;
/// Longest fresh prompt of an arrival, in tokens.
constexpr int kMaxPrompt = 300;

/// A batch being served, at the block level: a pool whose freed ids are handed out again,
/// reference counts, copy-on-write of a shared partial block before it is written, and stable
/// request ids. What a block manager does, as little of it as the planner needs.
class ServingBatch {
 public:
  ServingBatch(const Shape& shape, uint64_t seed) : shape_(shape), rng_(seed) {}

  /// Starts from the requests of `tree`, laid out by build_layout().
  void load(const TokenTree& tree) {
    const PagedLayout L = build_layout(tree, shape_, true, rng_());
    refcount_.assign(static_cast<size_t>(L.num_blocks), 0);
    for (int r = 0; r < L.num_requests(); ++r) {
      for (int32_t b : L.block_tables[static_cast<size_t>(r)]) ++refcount_[static_cast<size_t>(b)];
      requests_.push_back({next_id_++, L.lengths[static_cast<size_t>(r)], L.block_tables[static_cast<size_t>(r)]});
    }
  }

  /// One token more for every request: a new block after a full one, a copy of a shared partial one.
  void decode_step() {
    for (Request& q : requests_) {
      const int32_t used = q.length % shape_.page_size;
      if (used == 0) {
        q.table.push_back(allocate());
      } else if (refcount_[static_cast<size_t>(q.table.back())] > 1) {
        release(q.table.back());
        q.table.back() = allocate();
        ++copies_;
      }
      ++q.length;
    }
  }

  /// A new request at a random position: a fresh prompt, or (prefix hit) some full blocks of a
  /// live request followed by its own tokens.
  void arrive() {
    Request q{next_id_++, 0, {}};
    std::uniform_int_distribution<int> prompt(1, kMaxPrompt);
    if (!requests_.empty() && coin(0.6)) {
      const Request& donor = requests_[pick()];
      const int32_t full = donor.length / shape_.page_size;
      const int32_t shared = std::uniform_int_distribution<int32_t>(0, full)(rng_);
      for (int32_t i = 0; i < shared; ++i) {
        q.table.push_back(donor.table[static_cast<size_t>(i)]);
        ++refcount_[static_cast<size_t>(donor.table[static_cast<size_t>(i)])];
      }
      q.length = shared * shape_.page_size;
      ++prefix_hits_;
    }
    const int32_t own = prompt(rng_);
    for (int32_t t = 0; t < own; ++t) {
      if (q.length % shape_.page_size == 0) q.table.push_back(allocate());
      ++q.length;
    }
    insert_at_random(std::move(q));
  }

  /// A random request finishes; its blocks go back to the pool at reference count zero.
  void finish() {
    const size_t i = pick();
    for (int32_t b : requests_[i].table) release(b);
    requests_.erase(requests_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  /// A parallel sample of a random request: every block shared, the partial last one included
  /// (it is copied when either of them writes to it).
  void fork() {
    const size_t i = pick();
    Request q{next_id_++, requests_[i].length, requests_[i].table};
    for (int32_t b : q.table) ++refcount_[static_cast<size_t>(b)];
    requests_.insert(requests_.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::move(q));
    ++forks_;
  }

  /// Two requests trade places (a scheduler that reorders its queue).
  void swap_two() {
    if (requests_.size() >= 2) std::swap(requests_[pick()], requests_[pick()]);
  }

  /// The block tables as the planner sees them.
  PagedLayout layout() const {
    PagedLayout L;
    L.shape = shape_;
    for (const Request& q : requests_) {
      L.lengths.push_back(q.length);
      L.block_tables.push_back(q.table);
    }
    L.num_blocks = static_cast<int32_t>(refcount_.size());
    L.refcounts = refcount_;
    L.used_tokens.assign(refcount_.size(), 0);
    for (const Request& q : requests_)
      for (size_t i = 0; i < q.table.size(); ++i) {
        int32_t& used = L.used_tokens[static_cast<size_t>(q.table[i])];
        used = std::max(used, std::min(shape_.page_size, q.length - static_cast<int32_t>(i) * shape_.page_size));
      }
    return L;
  }

  std::vector<int64_t> ids() const {
    std::vector<int64_t> v;
    for (const Request& q : requests_) v.push_back(q.id);
    return v;
  }
  int size() const { return static_cast<int>(requests_.size()); }
  bool coin(double p) { return std::bernoulli_distribution(p)(rng_); }
  int64_t copies() const { return copies_; }
  int64_t forks() const { return forks_; }
  int64_t prefix_hits() const { return prefix_hits_; }

 private:
  struct Request {
    int64_t id;
    int32_t length;
    std::vector<int32_t> table;
  };
  size_t pick() { return std::uniform_int_distribution<size_t>(0, requests_.size() - 1)(rng_); }
  void insert_at_random(Request q) {
    const size_t at = std::uniform_int_distribution<size_t>(0, requests_.size())(rng_);
    requests_.insert(requests_.begin() + static_cast<std::ptrdiff_t>(at), std::move(q));
  }
  int32_t allocate() {
    if (free_.empty()) {
      refcount_.push_back(0);
      free_.push_back(static_cast<int32_t>(refcount_.size()) - 1);
    }
    const int32_t id = free_.back();
    free_.pop_back();
    refcount_[static_cast<size_t>(id)] = 1;
    return id;
  }
  void release(int32_t id) {
    if (--refcount_[static_cast<size_t>(id)] == 0) free_.push_back(id);
  }

  Shape shape_;
  std::mt19937_64 rng_;
  std::vector<Request> requests_;
  std::vector<int32_t> refcount_;
  std::vector<int32_t> free_;  ///< freed ids, handed out again last-in first-out
  int64_t next_id_ = 0;
  int64_t copies_ = 0, forks_ = 0, prefix_hits_ = 0;
};

/// K/V and q for a layout: N(0, 1) draws, NaN in every pool slot past the tokens a block holds
/// (so that a pack reading past a request's end cannot pass).
Workload workload_for(const PagedLayout& L, uint64_t seed) {
  Workload w;
  w.layout = L;
  w.seed = seed;
  const Shape& s = L.shape;
  const size_t row = static_cast<size_t>(s.num_kv_heads) * s.head_dim;
  const size_t block = row * static_cast<size_t>(s.page_size);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  w.resize_pools(block * static_cast<size_t>(L.num_blocks));
  for (int32_t b = 0; b < L.num_blocks; ++b)
    for (size_t i = 0; i < block; ++i) {
      const bool used = i < static_cast<size_t>(L.used_tokens[static_cast<size_t>(b)]) * row;
      const size_t at = static_cast<size_t>(b) * block + i;
      w.store_kv(KvTensor::k, at, used ? normal(rng) : nan);
      w.store_kv(KvTensor::v, at, used ? normal(rng) : nan);
    }
  w.q.resize(static_cast<size_t>(L.num_requests()) * s.num_q_heads * s.head_dim);
  for (uint16_t& x : w.q) x = from_float(normal(rng), s.dtype);
  return w;
}

/// Random planner knobs: splits from none to eager, caps down to 0, fixed and table tiles, and
/// stage 8's tiles under its routing (the sequences' ranges are tens to hundreds of tokens, so
/// thresholds of 64-512 tokens fall among them).
PlannerOptions random_options(std::mt19937_64& rng) {
  PlannerOptions o;
  const int sms[] = {1, 4, 16, 132};
  o.sms = sms[std::uniform_int_distribution<int>(0, 3)(rng)];
  o.split_kv = std::bernoulli_distribution(0.8)(rng);
  o.min_split_blocks = std::uniform_int_distribution<int>(1, 8)(rng);
  o.max_splits_per_query = std::uniform_int_distribution<int>(0, 32)(rng);
  if (std::bernoulli_distribution(0.2)(rng)) {
    o.tiles = TilePolicy::fixed;
    o.fixed_tile = {64, 64};
  } else if (std::bernoulli_distribution(0.25)(rng)) {
    const int routing[] = {0, 64, 128, 256, kDefaultHopperMinKv};
    o.tiles = TilePolicy::hopper;
    o.hopper.min_kv = routing[std::uniform_int_distribution<int>(0, 4)(rng)];
    o.hopper.wide_kv = routing[std::uniform_int_distribution<int>(0, 4)(rng)];
    o.hopper.min_piece = routing[std::uniform_int_distribution<int>(0, 4)(rng)];
  }
  return o;
}

/// What a sequence of update() calls reported, summed.
struct Totals {
  int64_t steps = 0, full = 0, reused = 0, grown = 0, restructured = 0, arrived = 0, finished = 0, split_moved = 0;
  void add(const UpdateStats& st) {
    ++steps;
    full += st.full_rebuild;
    reused += st.subtrees_rebuilt == 0;
    grown += st.grown;
    restructured += st.restructured;
    arrived += st.arrived;
    finished += st.finished;
    split_moved += st.split_changed > 0;
  }
};

/// One update() against make_plan() on the same layout: identical plans (so identical bytes), valid.
void require_same_as_make_plan(IncrementalPlanner& planner, const PagedLayout& L, const std::vector<int64_t>& ids,
                               const PlannerOptions& o, UpdateStats& st, TableHint hint = TableHint::compare) {
  const Plan& plan = planner.update(L, ids, &st, hint);
  const Plan scratch = make_plan(L, o);
  REQUIRE(plan_difference(plan, scratch) == "");
  REQUIRE(plan.strategy == scratch.strategy);
  REQUIRE(traffic_model(L, plan).packed == traffic_model(L, scratch).packed);
  const std::vector<std::string> faults = validate_plan(L, plan);
  INFO((faults.empty() ? std::string() : faults.front()));
  REQUIRE(faults.empty());
  REQUIRE(st.requests == L.num_requests());
  REQUIRE(st.packs == static_cast<int32_t>(plan.packs.size()));
  REQUIRE(st.full_rebuild == (st.path == UpdatePath::full));
}

/// Requests that share nothing, of the given lengths.
TokenTree separate_requests(const std::vector<int64_t>& lengths) {
  TokenTree t;
  for (int64_t n : lengths) {
    t.request_ends.push_back(static_cast<int>(t.segments.size()));
    t.segments.push_back({"r" + std::to_string(t.segments.size()), n, -1});
  }
  t.description = "separate requests";
  return t;
}

/// Whether the decode step just taken (every request one token longer) gave request `r` a new block.
bool new_block(const PagedLayout& L, int r) { return L.lengths[static_cast<size_t>(r)] % L.shape.page_size == 1; }

Shape random_shape(std::mt19937_64& rng) {
  const int group = kSupportedGroupSizes[std::uniform_int_distribution<int>(0, 4)(rng)];
  const int page = kSupportedPageSizes[std::uniform_int_distribution<int>(0, 2)(rng)];
  const int kv_heads = std::uniform_int_distribution<int>(1, 2)(rng);
  return shape_of(group * kv_heads, kv_heads, 64, page);
}

}  // namespace

TEST_CASE("incremental plans equal make_plan() on random serving sequences", "[incremental]") {
  Totals total;
  PathCounts paths;
  int64_t copies = 0, forks = 0, hits = 0, oracle_runs = 0;
  for (int seq = 0; seq < kSequences; ++seq) {
    const uint64_t seed = kFirstSeed + static_cast<uint64_t>(seq);
    std::mt19937_64 rng(seed);
    const Shape shape = random_shape(rng);
    const PlannerOptions o = random_options(rng);
    std::printf("sequence %d: seed %llu, %s, sms %d, split %d, min piece %d, cap %d, %s tiles", seq,
                static_cast<unsigned long long>(seed), shape.describe().c_str(), o.sms, o.split_kv ? 1 : 0,
                o.min_split_blocks, o.max_splits_per_query,
                o.tiles == TilePolicy::fixed ? "fixed" : o.tiles == TilePolicy::hopper ? "Hopper" : "table");
    if (o.tiles == TilePolicy::hopper)
      std::printf(" (%s)", o.hopper.flags().c_str());
    std::printf("\n");
    INFO("seed " << seed);
    ServingBatch batch(shape, rng());
    RandomTreeOptions tree;
    tree.requests = 12;
    tree.max_segment = 200;
    batch.load(random_tree(rng(), tree));
    // Every operation of ServingBatch keeps the append-only promise; half the sequences make it.
    const TableHint hint = seq % 2 ? TableHint::append_only : TableHint::compare;
    IncrementalPlanner planner(o);
    for (int step = 0; step < kStepsPerSequence; ++step) {
      INFO("step " << step);
      if (step > 0) batch.decode_step();
      if (batch.size() < kMaxLiveRequests && batch.coin(0.15)) batch.arrive();
      if (batch.size() > 1 && batch.coin(0.1)) batch.finish();
      if (batch.size() < kMaxLiveRequests && batch.coin(0.05)) batch.fork();
      if (batch.coin(0.01)) batch.swap_two();
      const PagedLayout L = batch.layout();
      UpdateStats st;
      require_same_as_make_plan(planner, L, batch.ids(), o, st, hint);
      total.add(st);
      paths.add(st.path);
      if (step % kOracleEvery == 0) {
        const Workload w = workload_for(L, seed + static_cast<uint64_t>(step));
        REQUIRE(max_relative_difference(packed_attention(w, planner.plan()), naive_attention(w)) <= kOracleAgreement);
        ++oracle_runs;
      }
    }
    copies += batch.copies();
    forks += batch.forks();
    hits += batch.prefix_hits();
  }
  std::printf("%lld steps: %lld full rebuilds, %lld with no subtree re-planned, %lld requests grown in place, "
              "%lld restructured, %lld arrivals (%lld prefix hits), %lld forks, %lld copy-on-writes, %lld finishes, "
              "%lld steps whose split moved, %lld oracle runs\n",
              static_cast<long long>(total.steps), static_cast<long long>(total.full), static_cast<long long>(total.reused),
              static_cast<long long>(total.grown), static_cast<long long>(total.restructured),
              static_cast<long long>(total.arrived), static_cast<long long>(hits), static_cast<long long>(forks),
              static_cast<long long>(copies), static_cast<long long>(total.finished),
              static_cast<long long>(total.split_moved), static_cast<long long>(oracle_runs));
  std::printf("update paths: %s\n", describe_paths(paths.n).c_str());
  // Every kind of event happened, and the fast path carried most requests.
  CHECK(total.full > kSequences);  // first steps, and reorders
  CHECK(total.reused > 0);
  CHECK(total.grown > 10 * total.restructured);
  CHECK(total.arrived > 0);
  CHECK(total.finished > 0);
  CHECK(forks > 0);
  CHECK(copies > 0);
  CHECK(hits > 0);
  CHECK(total.split_moved > 0);
  for (int p = 0; p < kUpdatePaths; ++p) CHECK(paths.n[static_cast<size_t>(p)] > 0);
}

TEST_CASE("decode steps on a fixed batch only grow packs", "[incremental]") {
  // 256 requests on one 1024-token prompt, 4 branches of 256, 32 own tokens: the benchmark's tree.
  const TokenTree tree = parse_tree_spec("1,4,256_1024,256,32");
  ServingBatch batch(Shape{}, 7);
  batch.load(tree);
  const PlannerOptions o;
  IncrementalPlanner planner(o);
  const int page = Shape{}.page_size;
  for (int step = 0; step < 3 * page; ++step) {
    INFO("step " << step);
    if (step > 0) batch.decode_step();
    UpdateStats st;
    require_same_as_make_plan(planner, batch.layout(), batch.ids(), o, st);
    if (step == 0) {
      CHECK(st.full_rebuild);
      CHECK(st.subtrees_rebuilt == 1);
      continue;
    }
    CHECK(!st.full_rebuild);
    CHECK(st.subtrees_rebuilt == 0);
    CHECK(st.walk_packs_rebuilt == 0);
    CHECK(st.grown == 256);
    CHECK(st.walk_packs_grown == 256);
    CHECK(st.restructured + st.arrived + st.finished == 0);
    CHECK(st.packs_written < st.packs);  // the 16 prompt packs' pieces were kept
  }
}

TEST_CASE("changes re-plan only the root subtrees they touch", "[incremental]") {
  // Three root subtrees (three prompts); a request of the second finishes, one arrives on the
  // third: the first keeps its packs.
  const TokenTree tree = parse_tree_spec("3,12_512,32");
  ServingBatch batch(Shape{}, 11);
  batch.load(tree);
  const PlannerOptions o;
  IncrementalPlanner planner(o);
  UpdateStats st;
  require_same_as_make_plan(planner, batch.layout(), batch.ids(), o, st);
  REQUIRE(st.subtrees == 3);
  // A fork of the last request adds a fourth request to the third subtree only.
  PagedLayout L = batch.layout();
  std::vector<int64_t> ids = batch.ids();
  L.lengths.push_back(L.lengths.back());
  L.block_tables.push_back(L.block_tables.back());
  ids.push_back(1000);
  require_same_as_make_plan(planner, L, ids, o, st);
  CHECK(st.arrived == 1);
  CHECK(st.subtrees == 3);
  CHECK(st.subtrees_rebuilt == 1);
  CHECK(!st.full_rebuild);
  // Request 5 (second prompt) finishes: the others move up one position.
  L.lengths.erase(L.lengths.begin() + 5);
  L.block_tables.erase(L.block_tables.begin() + 5);
  ids.erase(ids.begin() + 5);
  require_same_as_make_plan(planner, L, ids, o, st);
  CHECK(st.finished == 1);
  CHECK(st.subtrees_rebuilt == 1);
  // The survivors change places: everything is planned again.
  std::swap(L.lengths[0], L.lengths[8]);
  std::swap(L.block_tables[0], L.block_tables[8]);
  std::swap(ids[0], ids[8]);
  require_same_as_make_plan(planner, L, ids, o, st);
  CHECK(st.full_rebuild);
  // A new shape: everything again.
  L.shape.num_q_heads = 64;
  require_same_as_make_plan(planner, L, ids, o, st);
  CHECK(st.full_rebuild);
}

TEST_CASE("a leaf of one partial block grows in place unless a sibling holds the block", "[incremental]") {
  // Two requests share 2 full blocks; each then has one partial block of its own. Growing a
  // partial leaf block changes its key (id and tokens), but no sibling holds that block: grown.
  const PagedLayout start = build_layout(parse_tree_spec("1,2_32,5"), Shape{}, false, 1);
  PagedLayout L = start;
  PlannerOptions o;
  o.fill_waves = false;  // within its reach the wave fill decides the cuts again every step
  IncrementalPlanner planner(o);
  UpdateStats st;
  require_same_as_make_plan(planner, L, {10, 20}, o, st);
  ++L.lengths[0];
  require_same_as_make_plan(planner, L, {10, 20}, o, st);
  CHECK(st.grown == 1);
  CHECK(st.unchanged == 1);
  CHECK(st.path == UpdatePath::fast);
  // Now both hold request 0's partial block, request 1 with one token more: two leaves (keys
  // differ by the token count). When request 0 catches up, the keys match and the leaves merge.
  PagedLayout shared = start;
  shared.block_tables[1].back() = shared.block_tables[0].back();
  shared.lengths = {start.lengths[0], start.lengths[0] + 1};
  IncrementalPlanner again(o);
  require_same_as_make_plan(again, shared, {10, 20}, o, st);
  ++shared.lengths[0];
  require_same_as_make_plan(again, shared, {10, 20}, o, st);
  CHECK(st.restructured == 1);
  CHECK(st.grown == 0);
  CHECK(st.path == UpdatePath::subtrees);
}

TEST_CASE("the incremental planner refuses bad input with one line and keeps its state", "[incremental]") {
  const PagedLayout L = build_layout(parse_tree_spec("1,4_64,20"), Shape{}, true, 3);
  const PlannerOptions o;
  IncrementalPlanner planner(o);
  UpdateStats st;
  require_same_as_make_plan(planner, L, {1, 2, 3, 4}, o, st);
  require_error([&] { planner.update(L, {1, 2, 3}, nullptr); }, "3 request ids for 4 requests");
  require_error([&] { planner.update(L, {1, 2, 3, 2}, nullptr); }, "request id 2 is given to requests 1 and 3");
  PagedLayout broken = L;
  broken.lengths[2] += 40;
  require_error([&] { planner.update(broken, {1, 2, 3, 4}, nullptr); }, "request 2 has");
  PagedLayout empty = L;
  empty.lengths.clear();
  empty.block_tables.clear();
  require_error([&] { planner.update(empty, {}, nullptr); }, "no requests");
  // After the refusals, the next step is planned from the state of the last good one.
  PagedLayout next = L;
  ++next.lengths[0];
  require_same_as_make_plan(planner, next, {1, 2, 3, 4}, o, st);
  CHECK(st.grown == 1);
  CHECK(!st.full_rebuild);
  PlannerOptions bad;
  bad.sms = 0;
  require_error([&] { IncrementalPlanner p(bad); }, "SM count");
}

TEST_CASE("decode steps take the fast path across page boundaries", "[incremental]") {
  // The benchmark's tree: 256 requests, a 1024-token prompt cut by the KV split, leaves of 32
  // own tokens that grow. Every request gets a new block every `page` steps; no cut pack grows.
  // Its 2088 CTAs are 5.3 waves: within the default fill window (8), where every step resplits
  // ("within the wave fill's reach ..." below), so the fast path is seen with a window of 4.
  const TokenTree tree = parse_tree_spec("1,4,256_1024,256,32");
  ServingBatch batch(Shape{}, 7);
  batch.load(tree);
  PlannerOptions o;
  o.fill_window_waves = 4;
  IncrementalPlanner planner(o);
  const int page = Shape{}.page_size;
  PathCounts paths;
  int64_t fast_new_block = 0;
  for (int step = 0; step < 4 * page; ++step) {
    INFO("step " << step);
    if (step > 0) batch.decode_step();
    const PagedLayout L = batch.layout();
    UpdateStats st;
    require_same_as_make_plan(planner, L, batch.ids(), o, st, TableHint::append_only);
    paths.add(st.path);
    if (step == 0) continue;
    CHECK((st.path == UpdatePath::fast || st.path == UpdatePath::resplit));
    CHECK(st.grown == 256);
    if (st.path == UpdatePath::fast) {
      CHECK(st.packs_written == 256);  // each grown leaf's last piece, patched
      CHECK(st.split_changed == 0);
      fast_new_block += new_block(L, 0);
    }
  }
  std::printf("256 requests, %d steps: %s; %lld steps with new blocks on the fast path\n", 4 * page,
              describe_paths(paths.n).c_str(), static_cast<long long>(fast_new_block));
  CHECK(paths[UpdatePath::full] == 1);
  CHECK(paths[UpdatePath::fast] >= 4 * page - 4);  // the split moves on a few steps at most
  CHECK(fast_new_block >= 3);
}

TEST_CASE("the KV split is decided again when a cut would change, and only then", "[incremental]") {
  // One long request and one short one on one KV head, 8 CTA slots: the long one is cut into
  // pieces near the fair share. Its last piece grows 1 token a step while the share grows 1/4:
  // it crosses the share (a new cut), and a new block moves the halving points (a resplit).
  const Shape shape = shape_of(4, 1, 64, 16);
  ServingBatch batch(shape, 5);
  batch.load(separate_requests({1000, 32}));
  PlannerOptions o;
  o.sms = 4;
  o.min_split_blocks = 1;
  o.fill_waves = false;  // the fair-share halving's certificate alone (the fill re-decides every step)
  IncrementalPlanner planner(o);
  PathCounts paths;
  int64_t threshold_resplits = 0, block_resplits = 0;
  const int steps = 8 * shape.page_size;
  for (int step = 0; step < steps; ++step) {
    INFO("step " << step);
    if (step > 0) batch.decode_step();
    const PagedLayout L = batch.layout();
    const int32_t long_one = L.lengths[0] > L.lengths[1] ? 0 : 1;
    UpdateStats st;
    require_same_as_make_plan(planner, L, batch.ids(), o, st, TableHint::append_only);
    paths.add(st.path);
    if (step == 0) continue;
    CHECK((st.path == UpdatePath::fast || st.path == UpdatePath::resplit));
    // A cut pack that gains a block is always split again; the fast path never changes a cut.
    if (new_block(L, long_one)) CHECK(st.path == UpdatePath::resplit);
    if (st.path == UpdatePath::fast) CHECK(st.split_changed == 0);
    if (st.path == UpdatePath::resplit && !new_block(L, long_one)) {
      ++threshold_resplits;
      CHECK(st.split_changed > 0);  // the certificate failed because a cut really changed
    }
    block_resplits += st.path == UpdatePath::resplit && new_block(L, long_one);
  }
  std::printf("long and short request, %d steps: %s (%lld at a share crossing, %lld at a new block)\n", steps,
              describe_paths(paths.n).c_str(), static_cast<long long>(threshold_resplits),
              static_cast<long long>(block_resplits));
  CHECK(threshold_resplits > 0);
  CHECK(block_resplits >= steps / shape.page_size - 1);
  CHECK(paths[UpdatePath::fast] > paths[UpdatePath::resplit]);
}

TEST_CASE("a split held back by the per-query cap is decided again every step", "[incremental]") {
  // One cut per query at most: the long request's pieces stay longer than the share, so the
  // cuts depend on the order the split visits them and no step can keep them unchecked.
  const Shape shape = shape_of(4, 1, 64, 16);
  ServingBatch batch(shape, 9);
  batch.load(separate_requests({1000, 32}));
  PlannerOptions o;
  o.sms = 4;
  o.min_split_blocks = 1;
  o.max_splits_per_query = 1;
  IncrementalPlanner planner(o);
  for (int step = 0; step < 2 * shape.page_size; ++step) {
    INFO("step " << step);
    if (step > 0) batch.decode_step();
    UpdateStats st;
    require_same_as_make_plan(planner, batch.layout(), batch.ids(), o, st, TableHint::append_only);
    if (step > 0) CHECK(st.path == UpdatePath::resplit);
  }
}

TEST_CASE("arrivals, finishes and forks mid-run leave the fast path for one step", "[incremental]") {
  // Decode steps on a shared-prompt batch, with an event every few steps; each event re-plans
  // its subtree, and the steps without an event or a copy-on-write are fast again.
  const Shape shape = shape_of(8, 2, 64, 16);
  ServingBatch batch(shape, 13);
  batch.load(parse_tree_spec("2,8,32_300,40,20"));
  PlannerOptions o;
  o.fill_waves = false;  // a batch this small is within the wave fill's reach: it would resplit every step
  IncrementalPlanner planner(o);
  PathCounts paths;
  int64_t after_event_fast = 0, quiet = 0, quiet_replanned = 0;
  bool event_before = false;
  const int steps = 120;
  for (int step = 0; step < steps; ++step) {
    INFO("step " << step);
    const int64_t copies = batch.copies();
    if (step > 0) batch.decode_step();
    bool event = false;
    if (step % 10 == 3) batch.arrive(), event = true;
    if (step % 10 == 6) batch.finish(), event = true;
    if (step % 10 == 9) batch.fork(), event = true;
    const bool copied = batch.copies() > copies;
    UpdateStats st;
    require_same_as_make_plan(planner, batch.layout(), batch.ids(), o, st, TableHint::append_only);
    paths.add(st.path);
    if (step == 0) continue;
    if (event) CHECK((st.path == UpdatePath::subtrees || st.path == UpdatePath::full));
    if (!event && !copied) {
      // Only a request that was a prefix of another (an arrival took all its blocks) and now
      // grows past it changes the tree without an event.
      ++quiet;
      quiet_replanned += st.path != UpdatePath::fast && st.path != UpdatePath::resplit;
      after_event_fast += event_before && st.path == UpdatePath::fast;
    }
    event_before = event;
  }
  std::printf("events every few steps, %d steps: %s\n", steps, describe_paths(paths.n).c_str());
  CHECK(after_event_fast > 0);
  CHECK(quiet_replanned * 10 <= quiet);
  CHECK(paths[UpdatePath::subtrees] >= 3 * steps / 10 - 1);
  CHECK(paths[UpdatePath::fast] > paths[UpdatePath::subtrees]);
}

TEST_CASE("under append_only a replaced last block is still a change", "[incremental]") {
  // Copy-on-write replaces the last block: the one entry append_only still compares.
  const PagedLayout start = build_layout(parse_tree_spec("1,2_40,8"), Shape{}, false, 1);
  PagedLayout L = start;
  const PlannerOptions o;
  IncrementalPlanner planner(o);
  UpdateStats st;
  require_same_as_make_plan(planner, L, {1, 2}, o, st, TableHint::append_only);
  L.block_tables[1].back() = L.num_blocks;
  L.refcounts.push_back(1);
  L.used_tokens.push_back(L.used_tokens[static_cast<size_t>(start.block_tables[1].back())]);
  ++L.num_blocks;
  require_same_as_make_plan(planner, L, {1, 2}, o, st, TableHint::append_only);
  CHECK(st.restructured == 1);
  CHECK(st.path == UpdatePath::subtrees);
}

TEST_CASE("within the wave fill's reach a step keeps the fill's cuts until a block or the fair split moves", "[incremental]") {
  // A few long requests of uneven lengths at 32/8 on 16 SMs x 3: the walk's CTAs are within the
  // fill's reach, whose choice depends on the fair split and the walk packs' block counts (the
  // fill memo). A step where some request gains a block decides the cuts again (resplit); the
  // others keep them (fast) while the fair split still holds. Every plan is make_plan()'s; the
  // fill's equal cuts show up along the way.
  const Shape shape = shape_of(32, 8, 128, 16);
  ServingBatch batch(shape, 21);
  batch.load(separate_requests({3000, 2600, 1900, 1200, 700, 400}));
  PlannerOptions o;
  o.sms = 16;
  o.ctas_per_sm.fill(3);
  IncrementalPlanner planner(o);
  PathCounts paths;
  int64_t cut_steps = 0, block_steps = 0;
  for (int step = 0; step < 3 * shape.page_size; ++step) {
    INFO("step " << step);
    if (step > 0) batch.decode_step();
    const PagedLayout L = batch.layout();
    UpdateStats st;
    require_same_as_make_plan(planner, L, batch.ids(), o, st, TableHint::append_only);
    paths.add(st.path);
    cut_steps += planner.plan().packs.size() > 6;
    if (step == 0) continue;
    CHECK((st.path == UpdatePath::fast || st.path == UpdatePath::resplit));
    bool gained = false;
    for (int32_t r = 0; r < L.num_requests(); ++r) gained = gained || new_block(L, r);
    block_steps += gained;
    if (gained) CHECK(st.path == UpdatePath::resplit);
  }
  std::printf("six long requests within the wave fill's reach: %s, %lld steps with cuts, %lld with a new block\n",
              describe_paths(paths.n).c_str(), static_cast<long long>(cut_steps), static_cast<long long>(block_steps));
  CHECK(cut_steps > 0);
  CHECK(block_steps > 0);
  CHECK(paths[UpdatePath::fast] > 0);  // the memo's cuts kept between new blocks
}
