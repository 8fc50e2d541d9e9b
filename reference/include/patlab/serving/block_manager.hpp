/// @file block_manager.hpp
/// @brief PagedAttention's block manager: a fixed pool of KV blocks of `page` tokens, block
/// tables per request, copy-on-write forks, and prefix caching by a hash chain.
///
/// **Blocks.** Every block is in one of three states: *in use* (reference count > 0: some block
/// table holds it), *cached* (count 0 but named by a hash, so a later request with the same
/// prefix can take it back; evictable, least recently freed first) or *free* (count 0, no hash).
/// Blocks are allocated one at a time as tokens are appended, so a request wastes at most the
/// unused slots of its last block.
///
/// **Fork (parallel sampling, beam search).** A child gets a copy of its parent's block table
/// and every block one more reference. The first append into a shared, partly filled last block
/// copies that block first (copy-on-write); appends into a block held by one table write in place.
///
/// **Tables change only at their ends.** While a sequence is held, append() is the only call that
/// changes its table: it adds a block at the end or replaces the last block by its copy. The serve
/// loop passes this to the incremental planner as TableHint::append_only (incremental_planner.hpp),
/// which then looks at a table's length, size and last old block instead of every entry.
///
/// **Prefix caching.** A full block is named by `hash(parent block's hash, its page token ids)`,
/// so the hash of block i names the whole prefix [0, (i+1) page). When a request is admitted,
/// its prompt's full blocks are looked up in order; the hits are taken (one more reference, out
/// of the eviction list) instead of allocated. As vLLM v1 does, at most `prompt - 1` tokens can
/// hit (the last prompt token must be computed to get logits). A block that fills up while
/// another block already holds its hash is not cached (one block per hash; vLLM v1 keeps both).
///
/// **Allocation order.** A free block first; else the least recently freed cached block is
/// evicted (its hash forgotten). This is vLLM v0's prefix-caching allocator (free pool, then
/// the LRU evictor); v1 keeps free and cached blocks in one queue. Blocks of a finished request
/// are freed last block first, so a request's tail is evicted before its prefix (as in v1).
///
/// Nothing here throws when memory runs out: admit() and append() return false and change
/// nothing, and the Scheduler (scheduler.hpp) decides whom to preempt.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "patlab/model/kv_cache.hpp"

namespace patlab::serving {

/// A token id of the model's vocabulary.
using TokenId = int32_t;
/// A stable sequence id, chosen by the caller (the Scheduler numbers request x sample).
using SeqId = int64_t;

/// Knobs of the block manager.
struct BlockManagerOptions {
  int32_t num_blocks = 0;      ///< blocks in the pool (> 0)
  int page_size = 16;          ///< tokens per block (> 0; any size, 1 = the exact-need baseline)
  bool prefix_caching = true;  ///< name full blocks by their hash chain and reuse them
  bool record_writes = false;  ///< log KV writes and copies for take_writes() (the serve loop)
};

/// One run of new tokens written into one block: what the serve loop uploads K/V for.
struct KvWrite {
  SeqId seq = 0;         ///< the sequence written
  int32_t block = 0;     ///< physical block
  int32_t offset = 0;    ///< first slot written in the block
  int32_t count = 0;     ///< slots written
  int64_t position = 0;  ///< token position (in the sequence) of slot `offset`
};

/// A copy-on-write: slots [0, tokens) of block `src` copied into the new block `dst`.
struct BlockCopy {
  SeqId seq = 0;  ///< the sequence that got the copy
  int32_t src = 0;     ///< the shared block copied (the last block of `seq`'s table until then)
  int32_t dst = 0;     ///< the new block: it replaces `src` at the end of `seq`'s table
  int32_t tokens = 0;  ///< slots copied: the filled slots of `src`
};

/// What take_writes() returns: the copies first (they read blocks before the writes land).
struct WriteLog {
  std::vector<BlockCopy> copies;  ///< copy-on-write copies, in the order made
  std::vector<KvWrite> writes;    ///< written runs of slots (KvWrite), in write order
};

/// Counts of the pool at one moment.
struct BlockStats {
  int32_t capacity = 0;       ///< blocks in the pool
  int32_t in_use = 0;         ///< blocks with reference count > 0
  int32_t cached = 0;         ///< count 0 but hashed: evictable, reusable on a hit
  int32_t free = 0;           ///< count 0, no hash
  int64_t tokens_referenced = 0;  ///< sum of sequence lengths (what tables point at)
  int64_t tokens_stored = 0;      ///< filled slots of blocks in use (each stored once)
  int64_t slots_in_use = 0;       ///< in_use x page
  /// Unused slots of blocks in use (partial last blocks): the internal waste.
  int64_t waste_slots() const { return slots_in_use - tokens_stored; }
  /// Tokens referenced per token stored (1 = no sharing).
  double sharing() const { return tokens_stored ? static_cast<double>(tokens_referenced) / tokens_stored : 1.0; }
};

/// Running totals since construction.
struct BlockCounters {
  int64_t allocations = 0;      ///< blocks handed out (free or evicted)
  int64_t evictions = 0;        ///< cached blocks whose hash was dropped to reuse them
  int64_t cow_copies = 0;       ///< copy-on-write copies
  int64_t hit_blocks = 0;       ///< prompt blocks taken from the cache
  int64_t lookup_blocks = 0;    ///< prompt blocks looked up (hit or miss)
};

/// PagedAttention's block manager (see the file comment).
class BlockManager {
 public:
  /// Throws Error(usage) unless num_blocks > 0 and page_size > 0.
  explicit BlockManager(const BlockManagerOptions& options);

  /// Blocks a new sequence with this prompt needs beyond cache hits (no change to the pool).
  int32_t blocks_to_admit(const std::vector<TokenId>& prompt) const;
  /// Blocks that can be handed out now: free plus cached (evictable).
  int32_t available() const { return static_cast<int32_t>(free_.size() + lru_.size()); }
  /// Adds sequence `seq` holding `prompt` (>= 1 token): cache hits first, then new blocks.
  /// Returns false and changes nothing if the pool cannot hold it. On success, `hit_tokens`
  /// (when not null) gets the prompt tokens found in the cache. Throws Error(usage) if `seq`
  /// exists or the prompt is empty.
  bool admit(SeqId seq, const std::vector<TokenId>& prompt, int64_t* hit_tokens = nullptr);
  /// Appends one token to `seq`: a new block at a block boundary, a copy if the last block is
  /// shared. Returns false and changes nothing if a block is needed and none can be had.
  bool append(SeqId seq, TokenId token);
  /// Blocks append(seq, .) would take: 1 at a block boundary or into a shared last block, else 0.
  int32_t blocks_to_append(SeqId seq) const;
  /// Makes `child` a copy of `parent` sharing all its blocks (never allocates).
  void fork(SeqId parent, SeqId child);
  /// Drops `seq`'s references, last block first; hashed blocks at count 0 become cached.
  void free(SeqId seq);
  /// Forgets every cached block's hash and frees it (what memory pressure would do, all at once).
  void evict_all_cached();

  /// True if `seq` is held: admitted or forked, and not freed since.
  bool contains(SeqId seq) const { return seqs_.count(seq) != 0; }
  /// Tokens `seq` holds (prompt + appended); throws Error(usage) for an unknown id.
  int64_t length(SeqId seq) const;
  /// The sequence's token ids (what its KV holds), position order.
  const std::vector<TokenId>& tokens(SeqId seq) const;
  /// The sequence's physical blocks, position order (entry i holds its tokens [i page, (i+1) page)).
  const std::vector<int32_t>& block_table(SeqId seq) const;
  /// Token id stored in `slot` of physical `block` (the stand-in for its K/V).
  TokenId stored_token(int32_t block, int32_t slot) const;
  /// Block tables holding physical `block` (0: the block is cached or free).
  int32_t refcount(int32_t block) const { return blocks_.at(static_cast<size_t>(block)).refcount; }
  /// Slots of `block` holding a token.
  int32_t filled(int32_t block) const { return blocks_.at(static_cast<size_t>(block)).filled; }
  /// Tokens per block (BlockManagerOptions::page_size).
  int page_size() const { return options_.page_size; }
  /// Blocks in the pool (BlockManagerOptions::num_blocks).
  int32_t capacity() const { return options_.num_blocks; }
  /// Sequences held, in no particular order.
  std::vector<SeqId> sequences() const;

  /// Counts of the pool now (a pass over every block and sequence).
  BlockStats stats() const;
  /// Running totals since construction.
  const BlockCounters& counters() const { return counters_; }
  /// The block tables of `order` (in that order) as a PagedLayout under `shape` (whose
  /// page_size must equal the manager's): lengths, tables, refcounts and used_tokens counted
  /// over these tables, num_blocks = capacity. Throws Error(usage) for an unknown id.
  PagedLayout snapshot(const std::vector<SeqId>& order, const Shape& shape) const;
  /// The KV writes and copies since the last call (empty unless options.record_writes).
  WriteLog take_writes();
  /// Every broken invariant, one line each (empty = consistent): reference counts equal the
  /// tables holding each block, states partition the pool, the hash index, filled counts.
  std::vector<std::string> check_invariants() const;

 private:
  struct Block {
    int32_t refcount = 0;
    int32_t filled = 0;
    bool hashed = false;
    uint64_t hash = 0;
    std::list<int32_t>::iterator lru;  ///< position in lru_ when cached
  };
  struct Sequence {
    std::vector<int32_t> table;
    std::vector<TokenId> tokens;
    std::vector<uint64_t> chain;  ///< hash chain of its full blocks, one per full block
  };

  Sequence& seq_at(SeqId seq);
  const Sequence& seq_at(SeqId seq) const;
  /// A block with count 1 and nothing filled: free first, else evict the LRU cached block.
  int32_t take_block();
  void retain(int32_t block);
  void release(int32_t block);
  /// Writes `token` at the end of `s` (its last block has room and is held by `s` alone).
  void write_token(SeqId id, Sequence& s, TokenId token);
  /// Extends the hash chain of `s` over its newly full last block and names the block.
  void seal_full_block(Sequence& s);
  /// The chain hash of the prompt's full blocks that may hit (at most prompt - 1 tokens).
  std::vector<uint64_t> lookup_chain(const std::vector<TokenId>& prompt) const;
  /// Leading hits of `chain`: blocks that hold these hashes now.
  std::vector<int32_t> cache_hits(const std::vector<uint64_t>& chain) const;

  BlockManagerOptions options_;
  std::vector<Block> blocks_;
  std::vector<TokenId> slots_;  ///< [num_blocks, page] token ids: the stand-in for K/V
  std::vector<int32_t> free_;   ///< stack of free (unhashed, count 0) blocks
  std::list<int32_t> lru_;      ///< cached blocks, least recently freed at the front
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::unordered_map<SeqId, Sequence> seqs_;
  BlockCounters counters_;
  WriteLog log_;
};

/// The hash of a full block: its parent's chain hash and its tokens (FNV-1a over 64-bit words,
/// finished with a splitmix64 mix). The root block's parent hash is kRootBlockHash.
uint64_t block_hash(uint64_t parent, const TokenId* tokens, int count);
/// Parent hash of a sequence's first block.
inline constexpr uint64_t kRootBlockHash = 0x6a09e667f3bcc908ULL;

}  // namespace patlab::serving
