// PagedAttention's block manager: allocation on demand, copy-on-write forks, prefix caching with
// LRU eviction, accounting, and long random operation sequences against a shadow model (the token
// ids each sequence must read, kept here independently of block_manager.cpp).
#include <algorithm>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "close_to.hpp"
#include "patlab/serving/block_manager.hpp"

using namespace patlab;
using namespace patlab::serving;

namespace {

BlockManagerOptions pool(int32_t blocks, int page, bool caching = true) {
  BlockManagerOptions o;
  o.num_blocks = blocks;
  o.page_size = page;
  o.prefix_caching = caching;
  return o;
}

std::vector<TokenId> iota_tokens(int n, TokenId first = 100) {
  std::vector<TokenId> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = first + i;
  return v;
}

/// The token ids `seq` reads through its block table.
std::vector<TokenId> read_back(const BlockManager& m, SeqId seq) {
  std::vector<TokenId> out;
  const int64_t len = m.length(seq);
  const auto& table = m.block_table(seq);
  for (int64_t p = 0; p < len; ++p)
    out.push_back(m.stored_token(table[static_cast<size_t>(p / m.page_size())], static_cast<int32_t>(p % m.page_size())));
  return out;
}

void require_consistent(const BlockManager& m) {
  const std::vector<std::string> faults = m.check_invariants();
  INFO((faults.empty() ? std::string() : faults.front()));
  REQUIRE(faults.empty());
}

}  // namespace

TEST_CASE("blocks are allocated as tokens arrive and freed on finish", "[block_manager]") {
  BlockManager m(pool(8, 4));
  REQUIRE(m.admit(1, iota_tokens(5)));  // 2 blocks: 4 + 1
  CHECK(m.block_table(1).size() == 2);
  BlockStats st = m.stats();
  CHECK(st.in_use == 2);
  CHECK(st.tokens_stored == 5);
  CHECK(st.waste_slots() == 3);
  for (int i = 0; i < 3; ++i) REQUIRE(m.append(1, 7));
  CHECK(m.block_table(1).size() == 2);  // filled the second block, no new one
  CHECK(m.stats().waste_slots() == 0);
  REQUIRE(m.append(1, 8));
  CHECK(m.block_table(1).size() == 3);
  CHECK(read_back(m, 1) == m.tokens(1));
  m.free(1);
  st = m.stats();
  CHECK(st.in_use == 0);
  CHECK(st.cached == 2);  // the two full blocks keep their hashes
  CHECK(st.free == 6);
  m.evict_all_cached();
  CHECK(m.stats().free == 8);
  require_consistent(m);
}

TEST_CASE("a fork shares every block; the first append into the shared partial block copies it", "[block_manager]") {
  BlockManagerOptions o = pool(8, 4);
  o.record_writes = true;
  BlockManager m(o);
  REQUIRE(m.admit(1, iota_tokens(6)));
  m.take_writes();
  m.fork(1, 2);
  CHECK(m.block_table(2) == m.block_table(1));
  CHECK(m.refcount(m.block_table(1)[0]) == 2);
  CHECK(m.refcount(m.block_table(1)[1]) == 2);
  CHECK(close_to(m.stats().sharing(), 2.0));
  const int32_t shared_last = m.block_table(1)[1];
  CHECK(m.blocks_to_append(2) == 1);
  REQUIRE(m.append(2, 555));
  CHECK(m.block_table(2)[0] == m.block_table(1)[0]);  // full block still shared
  CHECK(m.block_table(2)[1] != shared_last);          // copied
  CHECK(m.block_table(1)[1] == shared_last);
  CHECK(m.refcount(shared_last) == 1);
  CHECK(m.counters().cow_copies == 1);
  const WriteLog log = m.take_writes();
  REQUIRE(log.copies.size() == 1);
  CHECK(log.copies[0].src == shared_last);
  CHECK(log.copies[0].tokens == 2);
  REQUIRE(log.writes.size() == 1);
  CHECK(log.writes[0].position == 6);
  CHECK(log.writes[0].offset == 2);
  // The parent now owns its partial block alone: it appends in place.
  CHECK(m.blocks_to_append(1) == 0);
  REQUIRE(m.append(1, 777));
  CHECK(m.block_table(1)[1] == shared_last);
  CHECK(read_back(m, 1) == std::vector<TokenId>{100, 101, 102, 103, 104, 105, 777});
  CHECK(read_back(m, 2) == std::vector<TokenId>{100, 101, 102, 103, 104, 105, 555});
  require_consistent(m);
}

TEST_CASE("prefix caching reuses full blocks by hash chain, at most prompt - 1 tokens", "[block_manager]") {
  BlockManager m(pool(16, 4));
  const std::vector<TokenId> sys = iota_tokens(8);
  std::vector<TokenId> a = sys, b = sys;
  a.insert(a.end(), {1, 2, 3});
  b.insert(b.end(), {9, 9});
  REQUIRE(m.admit(1, a));
  int64_t hits = -1;
  REQUIRE(m.admit(2, b, &hits));
  CHECK(hits == 8);
  CHECK(m.block_table(2)[0] == m.block_table(1)[0]);
  CHECK(m.block_table(2)[1] == m.block_table(1)[1]);
  CHECK(m.block_table(2)[2] != m.block_table(1)[2]);
  // Same tokens at another position (another parent hash): no hit.
  std::vector<TokenId> shifted{7, 7, 7, 7};
  shifted.insert(shifted.end(), sys.begin(), sys.begin() + 4);
  shifted.push_back(1);
  REQUIRE(m.admit(3, shifted, &hits));
  CHECK(hits == 0);
  // A prompt that is exactly the cached 8 tokens hits only 4: the last token is recomputed.
  REQUIRE(m.admit(4, sys, &hits));
  CHECK(hits == 4);
  // After a free the blocks stay cached and hit again.
  m.free(1);
  m.free(2);
  REQUIRE(m.admit(5, a, &hits));
  CHECK(hits == 8);
  CHECK(m.counters().hit_blocks == 1 + 2 + 2);
  require_consistent(m);
}

TEST_CASE("cached blocks are evicted least recently freed first, free blocks before any", "[block_manager]") {
  BlockManager m(pool(4, 2));
  REQUIRE(m.admit(1, {1, 2, 3}));  // blocks A (full) + partial
  REQUIRE(m.admit(2, {5, 6, 7}));  // blocks B (full) + partial
  m.free(1);                       // A cached, partial freed
  m.free(2);                       // B cached (more recent), partial freed
  CHECK(m.stats().cached == 2);
  CHECK(m.stats().free == 2);
  REQUIRE(m.admit(3, {8, 8, 8, 8, 8}));  // 3 blocks: 2 free, then evict A (least recent)
  CHECK(m.counters().evictions == 1);
  int64_t hits = -1;
  m.free(3);
  REQUIRE(m.admit(4, {5, 6, 0}, &hits));
  CHECK(hits == 2);  // B survived
  m.free(4);
  REQUIRE(m.admit(5, {1, 2, 0}, &hits));
  CHECK(hits == 0);  // A was evicted
  require_consistent(m);
}

TEST_CASE("out of blocks: admit and append refuse and change nothing", "[block_manager]") {
  BlockManager m(pool(3, 4, false));
  REQUIRE(m.admit(1, iota_tokens(8)));
  CHECK_FALSE(m.admit(2, iota_tokens(5, 900)));
  CHECK_FALSE(m.contains(2));
  REQUIRE(m.admit(3, {1}));
  m.fork(3, 4);
  const BlockStats before = m.stats();
  CHECK_FALSE(m.append(4, 2));  // copy-on-write needs a block: none
  CHECK_FALSE(m.append(1, 2));  // a new block: none
  const BlockStats after = m.stats();
  CHECK(after.in_use == before.in_use);
  CHECK(after.tokens_referenced == before.tokens_referenced);
  CHECK(m.length(4) == 1);
  CHECK(m.length(1) == 8);
  require_consistent(m);
  require_error([&] { m.admit(9, {}); }, "empty prompt");
  require_error([&] { m.append(42, 1); }, "unknown sequence 42");
  require_error([] { BlockManager bad(pool(0, 16)); }, "at least one block");
}

TEST_CASE("snapshot: a PagedLayout whose counts follow from its tables", "[block_manager]") {
  BlockManager m(pool(32, 16));
  REQUIRE(m.admit(1, iota_tokens(40)));
  m.fork(1, 2);
  REQUIRE(m.append(2, 3));
  REQUIRE(m.admit(3, iota_tokens(20)));  // hits the first block of 1
  const PagedLayout L = m.snapshot({3, 1, 2}, shape_of(32, 8, 128, 16));
  CHECK(L.lengths == std::vector<int32_t>{20, 40, 41});
  CHECK(L.num_blocks == 32);
  CHECK(L.block_tables[0][0] == L.block_tables[1][0]);
  CHECK(L.refcounts[static_cast<size_t>(L.block_tables[1][0])] == 3);
  CHECK(L.refcounts[static_cast<size_t>(L.block_tables[1][2])] == 1);
  CHECK(L.used_tokens[static_cast<size_t>(L.block_tables[2][2])] == 9);
  CHECK(L.unique_tokens() == m.stats().tokens_stored);
  require_error([&] { m.snapshot({1}, shape_of(32, 8, 128, 32)); }, "page 32");
}

namespace {

/// One long random run against a shadow model. Operations: admit (prompts drawn from a few
/// shared prefixes so that the cache hits), append, fork, free, and rarely evict-all.
struct Shadow {
  std::map<SeqId, std::vector<TokenId>> tokens;     ///< what each sequence must read
  std::map<int32_t, std::vector<TokenId>> filler;   ///< per full block, the prefix it was filled under
};

/// Records, for each full block of `seq` from block `from` on, the prefix it holds.
void record_full_blocks(const BlockManager& m, Shadow& sh, SeqId seq, size_t from) {
  const auto& toks = sh.tokens.at(seq);
  const size_t page = static_cast<size_t>(m.page_size());
  const auto& table = m.block_table(seq);
  for (size_t i = from; i < toks.size() / page; ++i)
    sh.filler[table[i]] = std::vector<TokenId>(toks.begin(), toks.begin() + static_cast<std::ptrdiff_t>((i + 1) * page));
}

void check_all(const BlockManager& m, const Shadow& sh) {
  require_consistent(m);
  std::vector<int32_t> refs(static_cast<size_t>(m.capacity()), 0);
  int64_t referenced = 0;
  for (const auto& kv : sh.tokens) {
    REQUIRE(read_back(m, kv.first) == kv.second);
    for (int32_t b : m.block_table(kv.first)) ++refs[static_cast<size_t>(b)];
    referenced += static_cast<int64_t>(kv.second.size());
  }
  for (int32_t b = 0; b < m.capacity(); ++b) REQUIRE(m.refcount(b) == refs[static_cast<size_t>(b)]);
  const BlockStats st = m.stats();
  CHECK(st.tokens_referenced == referenced);
  CHECK(st.in_use == std::count_if(refs.begin(), refs.end(), [](int32_t r) { return r > 0; }));
  CHECK(st.in_use + st.cached + st.free == st.capacity);
  std::vector<SeqId> ids;
  for (const auto& kv : sh.tokens) ids.push_back(kv.first);
  if (!ids.empty() && (m.page_size() == 16 || m.page_size() == 32)) {
    const PagedLayout L = m.snapshot(ids, shape_of(32, 8, 128, m.page_size()));
    REQUIRE(L.refcounts == refs);
    for (size_t r = 0; r < ids.size(); ++r)
      REQUIRE(static_cast<int64_t>(L.block_tables[r].size()) == (L.lengths[r] + m.page_size() - 1) / m.page_size());
    CHECK(L.unique_tokens() == st.tokens_stored);
    CHECK(L.total_tokens() == referenced);
  }
}

/// Runs `ops` random operations; returns how many of each kind changed the pool.
std::map<std::string, int64_t> random_run(uint64_t seed, int32_t blocks, int page, int64_t ops, bool caching) {
  INFO("seed " << seed << ", " << blocks << " blocks of " << page << ", caching " << caching);
  BlockManager m(pool(blocks, page, caching));
  Shadow sh;
  std::mt19937_64 rng(seed);
  std::map<std::string, int64_t> done;
  std::vector<std::vector<TokenId>> prefixes;
  for (int p = 0; p < 4; ++p) prefixes.push_back(iota_tokens(page * (1 + p) + p, 1000 * (p + 1)));
  SeqId next = 0;
  constexpr int64_t kFullCheckEvery = 997;
  const int64_t max_len = int64_t{blocks} * page / 3;
  auto pick = [&]() {
    auto it = sh.tokens.begin();
    std::advance(it, static_cast<long>(rng() % sh.tokens.size()));
    return it->first;
  };
  for (int64_t op = 0; op < ops; ++op) {
    const int kind = static_cast<int>(rng() % 100);
    if (kind < 12 || sh.tokens.empty()) {  // admit
      std::vector<TokenId> prompt = prefixes[rng() % prefixes.size()];
      prompt.resize(std::min<size_t>(prompt.size(), 1 + rng() % prompt.size()));
      for (uint64_t k = rng() % (2 * static_cast<uint64_t>(page)); k > 0; --k) prompt.push_back(static_cast<TokenId>(rng() % 7));
      int64_t hits = 0;
      const int32_t needed = m.blocks_to_admit(prompt);
      const BlockStats before = m.stats();
      const bool ok = m.admit(next, prompt, &hits);
      if (needed <= before.free) REQUIRE(ok);  // free blocks alone suffice
      if (needed > before.free + before.cached) REQUIRE_FALSE(ok);
      if (!ok) {  // refused: nothing changed
        REQUIRE_FALSE(m.contains(next));
        REQUIRE(m.stats().in_use == before.in_use);
        REQUIRE(m.stats().cached == before.cached);
        continue;
      }
      sh.tokens[next] = prompt;
      const auto& table = m.block_table(next);
      for (int64_t i = 0; i < hits / page; ++i) {  // a hit holds what was stored under the same prefix
        const auto it = sh.filler.find(table[static_cast<size_t>(i)]);
        REQUIRE(it != sh.filler.end());
        REQUIRE(it->second == std::vector<TokenId>(prompt.begin(), prompt.begin() + (i + 1) * page));
      }
      record_full_blocks(m, sh, next, static_cast<size_t>(hits / page));
      ++done["admit"];
      done["hit blocks"] += hits / page;
      ++next;
    } else if (kind < 75) {  // append
      const SeqId s = pick();
      if (static_cast<int64_t>(sh.tokens[s].size()) >= max_len) continue;
      const TokenId t = static_cast<TokenId>(rng() % 7);
      const bool needs = m.blocks_to_append(s) > 0;
      const int32_t available = m.available();
      const bool ok = m.append(s, t);
      REQUIRE(ok == (!needs || available >= 1));
      if (!ok) {
        REQUIRE(read_back(m, s) == sh.tokens[s]);  // unchanged
        continue;
      }
      sh.tokens[s].push_back(t);
      if (sh.tokens[s].size() % static_cast<size_t>(page) == 0) record_full_blocks(m, sh, s, sh.tokens[s].size() / page - 1);
      REQUIRE(read_back(m, s) == sh.tokens[s]);
      ++done["append"];
    } else if (kind < 85) {  // fork
      const SeqId s = pick();
      m.fork(s, next);
      sh.tokens[next] = sh.tokens[s];
      ++next;
      ++done["fork"];
    } else if (kind < 99) {  // free
      const SeqId s = pick();
      m.free(s);
      sh.tokens.erase(s);
      ++done["free"];
    } else if (rng() % 20 == 0) {
      m.evict_all_cached();  // filler entries stay: blocks in use keep their content and hash
      REQUIRE(m.stats().cached == 0);
    }
    if (op % kFullCheckEvery == 0) check_all(m, sh);
  }
  check_all(m, sh);
  for (const auto& kv : sh.tokens) m.free(kv.first);
  sh.tokens.clear();
  const BlockStats st = m.stats();
  CHECK(st.in_use == 0);
  CHECK(st.free == st.capacity - st.cached);  // no leak: every block is free or cached
  if (!caching) CHECK(st.cached == 0);
  m.evict_all_cached();
  CHECK(m.stats().free == st.capacity);
  require_consistent(m);
  done["copy-on-write"] = m.counters().cow_copies;
  done["evictions"] = m.counters().evictions;
  return done;
}

}  // namespace

TEST_CASE("1,000,000 random operations: refcounts, no leaks, forks isolated, hits identical", "[block_manager][property]") {
  struct Config {
    int32_t blocks;
    int page;
    bool caching;
  };
  const Config configs[] = {{24, 1, true}, {40, 2, true}, {64, 4, true}, {48, 16, true},
                            {96, 16, false}, {200, 32, true}, {32, 3, true}, {128, 16, true}};
  constexpr int64_t kOpsPerRun = 125000;
  constexpr uint64_t kSeed = 20261201;
  std::map<std::string, int64_t> total;
  for (size_t c = 0; c < std::size(configs); ++c) {
    const auto done = random_run(kSeed + c, configs[c].blocks, configs[c].page, kOpsPerRun, configs[c].caching);
    for (const auto& kv : done) total[kv.first] += kv.second;
  }
  // Every kind of event happened many times, so each check above was exercised.
  for (const char* kind : {"admit", "append", "fork", "free", "hit blocks", "copy-on-write", "evictions"}) {
    INFO(kind);
    CHECK(total[kind] > 1000);
  }
  WARN("operations: " << kOpsPerRun * static_cast<int64_t>(std::size(configs)) << " (seed " << kSeed << "), appends "
                      << total["append"] << ", forks " << total["fork"] << ", copy-on-write " << total["copy-on-write"]
                      << ", hit blocks " << total["hit blocks"] << ", evictions " << total["evictions"]);
}
