#include "patlab/serving/block_manager.hpp"

#include <algorithm>
#include <numeric>

#include "patlab/error.hpp"

namespace patlab::serving {

namespace {
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

// [block hash]
uint64_t block_hash(uint64_t parent, const TokenId* tokens, int count) {
  uint64_t h = kFnvOffset;
  h = (h ^ parent) * kFnvPrime;
  for (int i = 0; i < count; ++i) h = (h ^ static_cast<uint32_t>(tokens[i])) * kFnvPrime;
  return mix64(h);
}
// [block hash]

BlockManager::BlockManager(const BlockManagerOptions& options) : options_(options) {
  require(options.num_blocks > 0, "block manager needs at least one block (got " +
                                      std::to_string(options.num_blocks) + ")");
  require(options.page_size > 0, "page size must be positive (got " + std::to_string(options.page_size) + ")");
  blocks_.resize(static_cast<size_t>(options.num_blocks));
  slots_.assign(static_cast<size_t>(options.num_blocks) * static_cast<size_t>(options.page_size), -1);
  free_.resize(static_cast<size_t>(options.num_blocks));
  std::iota(free_.rbegin(), free_.rend(), 0);  // block 0 is handed out first
}

// seq_at runs for every sequence on every step: its message is built only when the lookup fails.
BlockManager::Sequence& BlockManager::seq_at(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) throw Error(ErrorKind::usage, "unknown sequence " + std::to_string(seq));
  return it->second;
}

const BlockManager::Sequence& BlockManager::seq_at(SeqId seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) throw Error(ErrorKind::usage, "unknown sequence " + std::to_string(seq));
  return it->second;
}

int64_t BlockManager::length(SeqId seq) const { return static_cast<int64_t>(seq_at(seq).tokens.size()); }
const std::vector<TokenId>& BlockManager::tokens(SeqId seq) const { return seq_at(seq).tokens; }
const std::vector<int32_t>& BlockManager::block_table(SeqId seq) const { return seq_at(seq).table; }

TokenId BlockManager::stored_token(int32_t block, int32_t slot) const {
  return slots_.at(static_cast<size_t>(block) * static_cast<size_t>(options_.page_size) + static_cast<size_t>(slot));
}

std::vector<SeqId> BlockManager::sequences() const {
  std::vector<SeqId> out;
  out.reserve(seqs_.size());
  for (const auto& kv : seqs_) out.push_back(kv.first);
  return out;
}

// [take block]
int32_t BlockManager::take_block() {
  int32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = lru_.front();  // least recently freed cached block: forget its hash
    lru_.pop_front();
    Block& b = blocks_[static_cast<size_t>(id)];
    by_hash_.erase(b.hash);
    b.hashed = false;
    ++counters_.evictions;
  }
  Block& b = blocks_[static_cast<size_t>(id)];
  b.refcount = 1;
  b.filled = 0;
  ++counters_.allocations;
  return id;
}
// [take block]

void BlockManager::retain(int32_t block) {
  Block& b = blocks_[static_cast<size_t>(block)];
  if (b.refcount == 0) lru_.erase(b.lru);  // a cache hit on a cached block
  ++b.refcount;
}

void BlockManager::release(int32_t block) {
  Block& b = blocks_[static_cast<size_t>(block)];
  if (--b.refcount > 0) return;
  if (b.hashed) {
    b.lru = lru_.insert(lru_.end(), block);
  } else {
    b.filled = 0;
    free_.push_back(block);
  }
}

std::vector<uint64_t> BlockManager::lookup_chain(const std::vector<TokenId>& prompt) const {
  std::vector<uint64_t> chain;
  if (!options_.prefix_caching) return chain;
  const int page = options_.page_size;
  const size_t hittable = (prompt.size() - 1) / static_cast<size_t>(page);  // at most prompt - 1 tokens
  uint64_t parent = kRootBlockHash;
  for (size_t i = 0; i < hittable; ++i) {
    parent = block_hash(parent, prompt.data() + i * static_cast<size_t>(page), page);
    chain.push_back(parent);
  }
  return chain;
}

std::vector<int32_t> BlockManager::cache_hits(const std::vector<uint64_t>& chain) const {
  std::vector<int32_t> hits;
  for (uint64_t h : chain) {
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    hits.push_back(it->second);
  }
  return hits;
}

int32_t BlockManager::blocks_to_admit(const std::vector<TokenId>& prompt) const {
  const int64_t page = options_.page_size;
  const int64_t blocks = (static_cast<int64_t>(prompt.size()) + page - 1) / page;
  const int64_t hits = prompt.empty() ? 0 : static_cast<int64_t>(cache_hits(lookup_chain(prompt)).size());
  return static_cast<int32_t>(blocks - hits);
}

// [admit]
bool BlockManager::admit(SeqId seq, const std::vector<TokenId>& prompt, int64_t* hit_tokens) {
  require(!prompt.empty(), "sequence " + std::to_string(seq) + " has an empty prompt");
  require(!contains(seq), "sequence " + std::to_string(seq) + " already exists");
  const int page = options_.page_size;
  const std::vector<uint64_t> chain = lookup_chain(prompt);
  const std::vector<int32_t> hits = cache_hits(chain);
  const int64_t blocks = (static_cast<int64_t>(prompt.size()) + page - 1) / page;
  // Hits on cached blocks take them out of the evictable set: they cannot also be allocated.
  int64_t cached_hits = 0;
  for (int32_t b : hits) cached_hits += blocks_[static_cast<size_t>(b)].refcount == 0;
  if (blocks - static_cast<int64_t>(hits.size()) > available() - cached_hits) return false;

  counters_.lookup_blocks += static_cast<int64_t>(chain.size());
  counters_.hit_blocks += static_cast<int64_t>(hits.size());
  Sequence& s = seqs_[seq];
  for (size_t i = 0; i < hits.size(); ++i) {
    retain(hits[i]);
    s.table.push_back(hits[i]);
    s.chain.push_back(chain[i]);
  }
  s.tokens.assign(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(hits.size() * page));
  for (size_t t = s.tokens.size(); t < prompt.size(); ++t) {
    if (s.tokens.size() % static_cast<size_t>(page) == 0) s.table.push_back(take_block());
    write_token(seq, s, prompt[t]);
  }
  if (hit_tokens) *hit_tokens = static_cast<int64_t>(hits.size()) * page;
  return true;
}
// [admit]

int32_t BlockManager::blocks_to_append(SeqId seq) const {
  const Sequence& s = seq_at(seq);
  if (s.tokens.size() % static_cast<size_t>(options_.page_size) == 0) return 1;
  return blocks_[static_cast<size_t>(s.table.back())].refcount > 1 ? 1 : 0;
}

// [append]
bool BlockManager::append(SeqId seq, TokenId token) {
  Sequence& s = seq_at(seq);
  if (blocks_to_append(seq) > available()) return false;
  if (s.tokens.size() % static_cast<size_t>(options_.page_size) == 0) {
    s.table.push_back(take_block());
  } else if (blocks_[static_cast<size_t>(s.table.back())].refcount > 1) {
    // Copy-on-write: the shared partial block is copied, the copy replaces it in this table.
    const int32_t src = s.table.back();
    const int32_t dst = take_block();
    const int32_t n = blocks_[static_cast<size_t>(src)].filled;
    const size_t page = static_cast<size_t>(options_.page_size);
    std::copy_n(slots_.begin() + static_cast<std::ptrdiff_t>(src * page), n,
                slots_.begin() + static_cast<std::ptrdiff_t>(dst * page));
    blocks_[static_cast<size_t>(dst)].filled = n;
    release(src);
    s.table.back() = dst;
    ++counters_.cow_copies;
    if (options_.record_writes) log_.copies.push_back({seq, src, dst, n});
  }
  write_token(seq, s, token);
  return true;
}
// [append]

void BlockManager::write_token(SeqId id, Sequence& s, TokenId token) {
  const int page = options_.page_size;
  const int32_t block = s.table.back();
  Block& b = blocks_[static_cast<size_t>(block)];
  const int32_t offset = static_cast<int32_t>(s.tokens.size() % static_cast<size_t>(page));
  slots_[static_cast<size_t>(block) * static_cast<size_t>(page) + static_cast<size_t>(offset)] = token;
  b.filled = offset + 1;
  s.tokens.push_back(token);
  if (options_.record_writes) {
    if (!log_.writes.empty() && log_.writes.back().seq == id && log_.writes.back().block == block &&
        log_.writes.back().offset + log_.writes.back().count == offset)
      ++log_.writes.back().count;
    else
      log_.writes.push_back({id, block, offset, 1, static_cast<int64_t>(s.tokens.size()) - 1});
  }
  if (b.filled == page) seal_full_block(s);
}

// [seal]
void BlockManager::seal_full_block(Sequence& s) {
  const int page = options_.page_size;
  const uint64_t parent = s.chain.empty() ? kRootBlockHash : s.chain.back();
  const int32_t block = s.table.back();
  const uint64_t h = block_hash(parent, &slots_[static_cast<size_t>(block) * static_cast<size_t>(page)], page);
  s.chain.push_back(h);
  if (!options_.prefix_caching || by_hash_.count(h)) return;  // one block per hash
  Block& b = blocks_[static_cast<size_t>(block)];
  b.hashed = true;
  b.hash = h;
  by_hash_.emplace(h, block);
}
// [seal]

void BlockManager::fork(SeqId parent, SeqId child) {
  require(!contains(child), "sequence " + std::to_string(child) + " already exists");
  Sequence copy = seq_at(parent);
  for (int32_t b : copy.table) retain(b);
  seqs_.emplace(child, std::move(copy));
}

void BlockManager::free(SeqId seq) {
  Sequence& s = seq_at(seq);
  for (auto it = s.table.rbegin(); it != s.table.rend(); ++it) release(*it);
  seqs_.erase(seq);
}

void BlockManager::evict_all_cached() {
  while (!lru_.empty()) {
    const int32_t id = lru_.front();
    lru_.pop_front();
    Block& b = blocks_[static_cast<size_t>(id)];
    by_hash_.erase(b.hash);
    b.hashed = false;
    b.filled = 0;
    free_.push_back(id);
    ++counters_.evictions;
  }
}

BlockStats BlockManager::stats() const {
  BlockStats st;
  st.capacity = options_.num_blocks;
  st.cached = static_cast<int32_t>(lru_.size());
  st.free = static_cast<int32_t>(free_.size());
  st.in_use = st.capacity - st.cached - st.free;
  for (const auto& kv : seqs_) st.tokens_referenced += static_cast<int64_t>(kv.second.tokens.size());
  for (const Block& b : blocks_)
    if (b.refcount > 0) st.tokens_stored += b.filled;
  st.slots_in_use = int64_t{st.in_use} * options_.page_size;
  return st;
}

PagedLayout BlockManager::snapshot(const std::vector<SeqId>& order, const Shape& shape) const {
  require(shape.page_size == options_.page_size, "snapshot shape has page " + std::to_string(shape.page_size) +
                                                     ", the block manager " + std::to_string(options_.page_size));
  PagedLayout L;
  L.shape = shape;
  L.num_blocks = options_.num_blocks;
  L.refcounts.assign(static_cast<size_t>(L.num_blocks), 0);
  L.used_tokens.assign(static_cast<size_t>(L.num_blocks), 0);
  for (SeqId id : order) {
    const Sequence& s = seq_at(id);
    L.lengths.push_back(static_cast<int32_t>(s.tokens.size()));
    L.block_tables.push_back(s.table);
    for (int32_t b : s.table) {
      ++L.refcounts[static_cast<size_t>(b)];
      L.used_tokens[static_cast<size_t>(b)] = blocks_[static_cast<size_t>(b)].filled;
    }
  }
  return L;
}

WriteLog BlockManager::take_writes() {
  WriteLog out;
  std::swap(out, log_);
  return out;
}

std::vector<std::string> BlockManager::check_invariants() const {
  std::vector<std::string> faults;
  const size_t n = blocks_.size();
  std::vector<int32_t> refs(n, 0);
  const size_t page = static_cast<size_t>(options_.page_size);
  for (const auto& kv : seqs_) {
    const Sequence& s = kv.second;
    const std::string who = "sequence " + std::to_string(kv.first);
    if (s.table.size() != (s.tokens.size() + page - 1) / page)
      faults.push_back(who + ": " + std::to_string(s.table.size()) + " blocks for " + std::to_string(s.tokens.size()) +
                       " tokens");
    if (s.chain.size() != s.tokens.size() / page) faults.push_back(who + ": hash chain length");
    for (size_t i = 0; i < s.table.size(); ++i) {
      const int32_t b = s.table[i];
      ++refs[static_cast<size_t>(b)];
      const size_t want = std::min(page, s.tokens.size() - i * page);
      if (static_cast<size_t>(blocks_[static_cast<size_t>(b)].filled) != want)
        faults.push_back(who + ": block " + std::to_string(b) + " filled " +
                         std::to_string(blocks_[static_cast<size_t>(b)].filled) + ", table needs " + std::to_string(want));
    }
  }
  std::vector<char> listed(n, 0);
  for (int32_t b : free_) listed[static_cast<size_t>(b)] |= 1;
  for (int32_t b : lru_) listed[static_cast<size_t>(b)] |= 2;
  for (size_t b = 0; b < n; ++b) {
    const Block& blk = blocks_[b];
    const std::string name = "block " + std::to_string(b);
    if (blk.refcount != refs[b])
      faults.push_back(name + ": refcount " + std::to_string(blk.refcount) + ", held by " + std::to_string(refs[b]) +
                       " tables");
    const char want = blk.refcount > 0 ? 0 : (blk.hashed ? 2 : 1);
    if (listed[b] != want) faults.push_back(name + ": in the wrong list (free/cached/in use)");
    if (blk.hashed) {
      auto it = by_hash_.find(blk.hash);
      if (it == by_hash_.end() || it->second != static_cast<int32_t>(b))
        faults.push_back(name + ": hashed but not indexed");
      if (blk.filled != options_.page_size) faults.push_back(name + ": hashed but not full");
    }
  }
  for (const auto& kv : by_hash_)
    if (!blocks_[static_cast<size_t>(kv.second)].hashed || blocks_[static_cast<size_t>(kv.second)].hash != kv.first)
      faults.push_back("hash index names block " + std::to_string(kv.second) + " which does not hold it");
  if (free_.size() + lru_.size() + static_cast<size_t>(std::count_if(refs.begin(), refs.end(), [](int32_t r) { return r > 0; })) != n)
    faults.push_back("free + cached + in use != capacity");
  return faults;
}

}  // namespace patlab::serving
