/// @file kv_cache.hpp
/// @brief The paged KV cache as vLLM lays it out: a block pool with reference counts, one block
/// table per request, and the K/V/q data.
///
/// Pools are `[num_blocks, page_size, num_kv_heads, head_dim]`; q is `[requests, Hq, d]`.
/// Requests that share a prefix point at the *same physical blocks* for the full blocks of that
/// prefix; a block that the prefix fills only partly is never shared (it is copied, as vLLM's
/// copy-on-write does). Block ids come out of the pool in a shuffled order by default.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "patlab/model/workload.hpp"

namespace patlab {

/// A fixed pool of physical KV blocks with reference counts.
class BlockPool {
 public:
  /// A pool of `capacity` blocks; ids are handed out in a random order drawn from `seed` when
  /// `shuffle` is set, else in increasing order.
  BlockPool(int32_t capacity, bool shuffle, uint64_t seed);
  /// A free block with reference count 1; throws Error(usage) when the pool is exhausted.
  int32_t allocate();
  /// One more reference to a block in use.
  void retain(int32_t id);
  /// One reference fewer; the block returns to the pool at zero.
  void release(int32_t id);
  /// References to block `id` (0 when free).
  int32_t refcount(int32_t id) const { return refcount_.at(static_cast<size_t>(id)); }
  /// Blocks in the pool, free or in use.
  int32_t capacity() const { return static_cast<int32_t>(refcount_.size()); }
  /// Blocks with a reference count above zero.
  int32_t in_use() const { return in_use_; }

 private:
  std::vector<int32_t> free_;  ///< stack of free ids; the back is handed out next
  std::vector<int32_t> refcount_;
  int32_t in_use_ = 0;
};

/// Block tables of a batch: which physical blocks each request reads. No K/V data.
struct PagedLayout {
  Shape shape;                                     ///< the attention shape the blocks are laid out for
  std::vector<int32_t> lengths;                    ///< tokens per request
  std::vector<std::vector<int32_t>> block_tables;  ///< per request, physical block ids in token order
  std::vector<int32_t> refcounts;                  ///< per physical block, requests that read it
  std::vector<int32_t> used_tokens;                ///< per physical block, tokens that hold data
  int32_t num_blocks = 0;                          ///< physical blocks in each pool: ids are in [0, num_blocks)

  /// Requests in the batch.
  int num_requests() const { return static_cast<int>(lengths.size()); }
  /// Tokens summed over requests (what a kernel without sharing reads).
  int64_t total_tokens() const;
  /// Tokens of distinct physical blocks (what must be read at least once).
  int64_t unique_tokens() const;
  /// K+V bytes summed over requests.
  int64_t total_kv_bytes() const { return total_tokens() * shape.kv_bytes_per_token(); }
  /// K+V bytes of distinct blocks: the floor of what any kernel must read.
  int64_t unique_kv_bytes() const { return unique_tokens() * shape.kv_bytes_per_token(); }
  /// Bytes of the q input plus the output (both [requests, Hq, d] in the storage type).
  int64_t q_and_out_bytes() const { return traffic::q_and_out_bytes(shape.num_q_heads, shape.head_dim, num_requests()); }
  /// Bytes of the two pools as allocated (whole blocks).
  int64_t pool_bytes() const { return int64_t{num_blocks} * shape.page_size * shape.kv_bytes_per_token(); }
  /// Longest block table.
  int32_t max_blocks_per_request() const;
  /// Row length of padded_block_tables(): the longest block table, at least 1 (the GPU batches'
  /// table_stride).
  int32_t table_stride() const { return std::max<int32_t>(1, max_blocks_per_request()); }
  /// The block tables as one [requests, table_stride()] array, each row padded with -1: what the
  /// GPU runners upload.
  std::vector<int32_t> padded_block_tables() const;
};

/// Lays out the blocks of `tree` under `shape`; ids shuffled with `seed` when `shuffle`.
PagedLayout build_layout(const TokenTree& tree, const Shape& shape, bool shuffle, uint64_t seed);

/// Which of the two KV tensors a pool holds.
enum class KvTensor { k, v };

/// A batch with its data: layout, q, and the K/V pools as raw bytes of the KV storage type
/// (`shape.kv_dtype`): 16-bit patterns of `shape.dtype` (little-endian), or fp8 e4m3 codes with
/// a per-tensor scale as vLLM stores them (stored = e4m3(x / scale), value = decode(stored) *
/// scale). Code reads K/V values only through kv_values(), so no path reads fp8 bytes as 16-bit.
struct Workload {
  TokenTree tree;               ///< the token tree make_workload() built the layout from
  PagedLayout layout;           ///< block tables of the batch (and its shape)
  uint64_t seed = 0;            ///< the seed make_workload() drew the data (and any block-id shuffle) from
  std::vector<uint16_t> q;      ///< [requests, Hq, d], 16-bit patterns of shape.dtype
  std::vector<uint8_t> k_pool;  ///< [num_blocks, page, Hkv, d] elements of shape.kv_dtype, as bytes
  std::vector<uint8_t> v_pool;  ///< same layout as k_pool
  float k_scale = 1.0f;         ///< per-tensor K scale (1 unless the KV cache is fp8)
  float v_scale = 1.0f;         ///< per-tensor V scale (1 unless the KV cache is fp8)

  /// The attention shape (the layout's).
  const Shape& shape() const { return layout.shape; }
  /// Requests in the batch.
  int num_requests() const { return layout.num_requests(); }
  /// Elements of each pool.
  size_t kv_elements() const { return k_pool.size() / static_cast<size_t>(layout.shape.kv_element_bytes()); }
  /// Sizes both pools for `elements` elements of the KV storage type (contents zero).
  void resize_pools(size_t elements);
  /// The values of elements [first, first + n) of pool `t`, dequantised (times the tensor's
  /// scale), into `out`: the one accessor of K/V values (oracle, emulation, checks, tests).
  void kv_values(KvTensor t, size_t first, int n, double* out) const;
  /// The value of element `i` of pool `t` (kv_values() of one element).
  double kv_value(KvTensor t, size_t i) const {
    double x;
    kv_values(t, i, 1, &x);
    return x;
  }
  /// Stores `x` as element `i` of pool `t`: rounded to the 16-bit type, or e4m3(x / scale) with
  /// the tensor's scale (set the scale first). A NaN stores the type's NaN.
  void store_kv(KvTensor t, size_t i, float x);
  /// The raw stored code of element `i` of pool `t` (a 16-bit pattern or an fp8 code).
  uint32_t kv_code(KvTensor t, size_t i) const;
  /// Index of element 0 of (block, token offset in block, KV head) in a pool.
  size_t kv_offset(int32_t block, int offset, int kv_head) const {
    const Shape& s = layout.shape;
    return ((static_cast<size_t>(block) * s.page_size + offset) * s.num_kv_heads + kv_head) * s.head_dim;
  }
  /// Index of element 0 of (request, query head) in q and in outputs.
  size_t q_offset(int request, int q_head) const {
    return (static_cast<size_t>(request) * layout.shape.num_q_heads + q_head) * layout.shape.head_dim;
  }
  /// Index into a pool of token `t` of request `r` at `kv_head`.
  size_t token_offset(int r, int64_t t, int kv_head) const {
    const int page = layout.shape.page_size;
    return kv_offset(layout.block_tables[r][t / page], static_cast<int>(t % page), kv_head);
  }
};

/// Every element of pool `t` of `w` as a float (Workload::kv_values), for tests and checks that
/// want the whole pool.
std::vector<float> pool_values(const Workload& w, KvTensor t);

/// Host memory that building and checking a workload of some layout takes, by part, in bytes:
/// everything the CLI's commands allocate (check, bench and compare on the CPU, export).
struct HostMemory {
  int64_t data = 0;      ///< K/V pools (in the KV storage type) and q (16-bit)
  int64_t tables = 0;    ///< block tables, reference counts, and the maps that build them
  int64_t results = 0;   ///< float64 results alive at once: oracle, fp32 emulation, packed oracle
  int64_t partials = 0;  ///< the packed oracle's partial states, for the self-check's chunked plan
  int64_t working = 0;   ///< per worker thread: the longest request's K/V gathered as float64 and
                         ///< float32 (the emulation holds both), times the threads
  /// The sum of the parts.
  int64_t total() const { return data + tables + results + partials + working; }
};

/// The host memory of `layout` with `threads` worker threads (see HostMemory).
HostMemory host_memory(const PagedLayout& layout, int threads);

/// host_memory(layout, worker_threads()).total(): what make_workload compares with the memory
/// available.
int64_t host_bytes_needed(const PagedLayout& layout);

/// How q and K are drawn: how spread out attention is. Checks run on flat and peaked: flat data
/// gives every key a share of about 1/N, so a kernel that skips or repeats any keys moves its
/// output; peaked data gives a few keys most of the weight, as trained models' attention often
/// does, so errors in the running max, the rescaling and the merge of partials with far-apart lse
/// move it. Clustered data is for sparse decode (chapter 22): its keys are locally correlated, so a
/// block summary says where the mass is. Mixed data is clustered data whose KV heads are unlike:
/// some concentrated, some spread (the model at mixed_spread_share()). Streaming data places the
/// mass of the other KV heads on the sinks and the recent tokens (the model at kSinkLift).
enum class DataKind {
  flat,    ///< q, K, V all N(0, 1): scores q.k / sqrt(d) ~ N(0, 1), softmax nearly uniform on long rows
  peaked,  ///< q ~ N(0, kPeakedQueryScale^2), K and V N(0, 1): scores ~ N(0, 16)
  /// K rows share a centre per run of kClusterTokens tokens (the model at kClusterShare); q ~
  /// N(0, kClusteredQueryScale^2); V N(0, 1), the same values as flat's V.
  clustered,
  /// Clustered K; q ~ N(0, kClusteredQueryScale^2) at the query heads of concentrated KV heads and
  /// N(0, kMixedSpreadQueryScale^2) at those of spread KV heads (mixed_spread_heads()).
  mixed,
  /// Clustered data at the retrieval KV heads (mixed_spread_heads()); at the others (streaming
  /// heads) queries and the keys of the sinks and recent tokens share a direction (streaming-model).
  streaming,
};
/// "flat", "peaked", "clustered", "mixed" or "streaming", for reports.
inline const char* data_kind_name(DataKind d) {
  return d == DataKind::flat        ? "flat"
         : d == DataKind::peaked    ? "peaked"
         : d == DataKind::clustered ? "clustered"
         : d == DataKind::mixed     ? "mixed"
                                    : "streaming";
}
/// Standard deviation of q in DataKind::peaked data, and so of its scores. Softmax weights are
/// then log-normal with sigma 4. Measured by tests/cpu/test_faults.cpp (d = 64): rows of 137
/// keys have a median effective number of keys ((sum p)^2 / sum p^2) of 3.8 (flat: 58.5) and a
/// median largest weight of 0.48 (flat: 0.05); rows of 4160 keys 8.2 (flat: 1575) and 0.28
/// (flat: 0.005).
inline constexpr float kPeakedQueryScale = 4.0f;

// [clustered-model]
/// DataKind::clustered, the model. A request's tokens are cut into runs of kClusterTokens by
/// position: run j holds tokens [j T, (j + 1) T) (T = kClusterTokens; the last run may be
/// shorter). For each run and KV head a centre c ~ N(0, I_d) is drawn, and every key of the run
/// at that head is
///   k = sqrt(rho) c + sqrt(1 - rho) z,   z ~ N(0, I_d) (flat's K draw),  rho = kClusterShare,
/// so each element is still N(0, 1), two keys of one run have correlation rho and keys of
/// different runs none. q ~ N(0, sigma^2 I_d), sigma = kClusteredQueryScale, so for one query
/// the scores s = q.k / sqrt(d) split into a run term ~ N(0, rho sigma^2), shared by the run's
/// keys, plus a token term ~ N(0, (1 - rho) sigma^2): the mass sits on the few runs whose
/// centres point along q, and a compressed key (the mean of l keys) carries the run term with
/// the token noise cut by sqrt(l). V is N(0, 1), the same draw as flat's.
/// T = 32 is NSA's compressed block l: an aligned compressed block is one run, and with stride
/// 16 every other compressed block straddles two; a selection block (l' = 64) holds two runs.
inline constexpr int kClusterTokens = 32;
/// rho: the share of each key element's variance that its run's centre carries (the
/// correlation of two keys of one run). 0.8 makes the run term's standard deviation twice the
/// token term's (sqrt(rho / (1 - rho)) = 2), the premise of the model: attention sits on a few
/// chunks, not on lone tokens. With sigma = 4 and 4352 tokens (136 runs) the best run term is
/// about 3.1 x 3.6 = 11 and the best token term about 4.1 x 1.8 = 7.3; at rho = 0.5 both terms
/// have the same spread and single outlier tokens hold as much mass as whole runs.
inline constexpr double kClusterShare = 0.8;
/// sigma: the standard deviation of q in clustered data (the same as peaked's, so the scores
/// have the same N(0, 16) spread and only the keys' correlation differs).
inline constexpr float kClusteredQueryScale = kPeakedQueryScale;
// [clustered-model]

// [mixed-model]
/// DataKind::mixed, the model: clustered keys (the model above, the same draws), and KV heads of
/// two kinds, as published analyses of trained models find them. DuoAttention (Xiao et al. 2024,
/// arXiv 2410.10819; github.com/mit-han-lab/duo-attention README) splits heads into *retrieval*
/// heads, which need the whole context, and *streaming* heads, which attend to the attention sinks
/// and recent tokens and keep a cache of 64 + 256 = 320 tokens; it keeps full attention on 25% of
/// the heads of an MHA model (Llama-2-7B) and 50% of the KV heads of a GQA model (Llama-3-8B,
/// group 4, as patlab's 16/4). So:
/// - a share of the KV heads is *spread* (retrieval), the rest *concentrated* (streaming):
///   DuoAttention's, kMixedSpreadShare = 0.5 with grouped queries (group > 1) and
///   kMixedSpreadShareMha = 0.25 with one query head per KV head (mixed_spread_share()); which
///   ones is drawn from the seed (mixed_spread_heads());
/// - a concentrated head is clustered data as it is (rho 0.8, q scale 4): the 10 runs of 32 tokens
///   with the most mass, 320 tokens (DuoAttention's streaming cache), hold 0.92 of its mass on
///   average at 4352 tokens (a Monte Carlo of this model's scores, docs/results/2026-12-02-cpu-sparse-mixed);
/// - a spread head has q scale kMixedSpreadQueryScale = 2 (rho 0.8): its 10 best runs hold 0.60
///   of its mass, and 90% of it needs about 43 runs (1400 tokens, a third of the context), so a
///   320-token cache would lose 40% of it (a retrieval head by DuoAttention's test), while its
///   scores still sit on runs the summary can see (q scale 1 would give flat's near-uniform rows).
/// The placement is not modelled: streaming heads' mass sits at the sinks and the recent tokens,
/// here on runs anywhere; selection ranks blocks by score, not by position.
inline constexpr double kMixedSpreadShare = 0.5;
/// The share of spread (retrieval) heads of an MHA model (group 1): DuoAttention's 25% (Llama-2-7B).
inline constexpr double kMixedSpreadShareMha = 0.25;
/// The share of spread (retrieval) KV heads for query groups of `group` heads: kMixedSpreadShareMha
/// for MHA (group 1), kMixedSpreadShare for GQA.
inline constexpr double mixed_spread_share(int group) {
  return group == 1 ? kMixedSpreadShareMha : kMixedSpreadShare;
}
/// q's standard deviation at the query heads of a spread KV head in DuoAttention's sense.
inline constexpr float kMixedSpreadQueryScale = 2.0f;
// [mixed-model]

// [streaming-model]
/// DataKind::streaming, the model: DuoAttention's two kinds of heads (the source of mixed-model
/// above) with the streaming heads' mass where that paper finds it, on the attention sinks and
/// the recent tokens (its streaming cache: 64 sink and 256 recent tokens).
/// - The retrieval KV heads (mixed_spread_heads(): half of them with grouped queries, a quarter
///   with MHA) are clustered data as it is: the
///   mass on a few runs chosen by content, anywhere in the context.
/// - Each streaming KV head has a direction u (a unit vector drawn from the seed,
///   streaming_directions()). Its queries are q = z + sqrt(d) u, z ~ N(0, I), so a score on an
///   ordinary (clustered) key is about N(0, 2); the keys of a request's first kSinkTokens tokens
///   and last kRecentTokens tokens get kSinkLift u added, which lifts their scores by kSinkLift:
///   at 4352 tokens the 320 lifted tokens hold about 99% of the row's mass (320 e^7 against 4032).
/// - "Last" counts from the end of the request whose block table first names the block (a shared
///   block is drawn once): a tree whose requests' own suffixes hold kRecentTokens tokens or more
///   lifts no shared block for being recent.
inline constexpr int kSinkTokens = 64;
/// Recent tokens of a streaming head (DuoAttention's streaming cache: 256).
inline constexpr int kRecentTokens = 256;
/// Score lift of a streaming head's sink and recent keys.
inline constexpr float kSinkLift = 7.0f;
// [streaming-model]

/// DataKind::streaming's directions for `seed`: num_kv_heads vectors of `head_dim` elements,
/// head-major, a unit vector u at each streaming KV head and zeros at the retrieval heads
/// (mixed_spread_heads() with query groups of `group` heads); each head's u is drawn from its own
/// stream of the seed.
std::vector<float> streaming_directions(uint64_t seed, int num_kv_heads, int head_dim, int group);

/// DataKind::mixed's spread KV heads for `seed` with query groups of `group` heads: true at the
/// round(mixed_spread_share(group) x num_kv_heads) heads with the smallest keys drawn from a
/// stream seeded by `seed` (one draw per head), so the count is fixed and which heads are spread
/// depends only on the seed.
std::vector<bool> mixed_spread_heads(uint64_t seed, int num_kv_heads, int group);

/// vLLM's dynamic per-tensor fp8 scale of values whose largest magnitude is `amax`: amax / 448
/// (kFp8E4m3Max), so that the largest value maps to the largest finite e4m3 value; 1 for amax 0.
float fp8_scale(float amax);

/// Fills a layout with data: q, K and V are normal draws from std::mt19937_64 seeded by `seed`
/// and by each block's allocation order (so contents do not depend on the shuffle): all
/// N(0, 1) for DataKind::flat; q N(0, kPeakedQueryScale^2) for DataKind::peaked (K and V, and so
/// the pools, are the same for both); for DataKind::clustered the model above, whose run
/// centres are drawn from a stream seeded by `seed`, the allocation order of the block that
/// holds the run's first token, that token's offset in it and the KV head, so every request
/// that shares a run's first block draws the same centre (a shared full block has the same K and
/// V in every request, as for the other kinds); for DataKind::mixed clustered's K and V and q
/// drawn from the same stream as the others' with the scale of its KV head's kind; for
/// DataKind::streaming clustered's draws with streaming-model's lifts and queries added. With an
/// fp8 KV cache each pool's scale is vLLM's dynamic
/// per-tensor scale, fp8_scale() of the largest |draw| of that pool, and the draws are stored as
/// e4m3(x / scale); the draws are the same as for a 16-bit cache. Pool slots that hold no token
/// are NaN, so that a kernel reading past a request's end cannot pass a check. Throws
/// Error(usage) naming the sizes if the host has too little memory.
Workload make_workload(const TokenTree& tree, const Shape& shape, uint64_t seed, bool shuffle,
                       DataKind data = DataKind::flat);

}  // namespace patlab
