#include "patlab/model/kv_cache.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_map>
#include <utility>

#include "patlab/error.hpp"
#include "patlab/parallel.hpp"
#include "patlab/planner/plan.hpp"

namespace patlab {

namespace {
/// `capacity` as a size, checked before any vector is sized by it.
size_t checked_capacity(int32_t capacity) {
  require(capacity >= 0, "block pool capacity must be >= 0");
  return static_cast<size_t>(capacity);
}
}  // namespace

BlockPool::BlockPool(int32_t capacity, bool shuffle, uint64_t seed) : refcount_(checked_capacity(capacity), 0) {
  free_.resize(static_cast<size_t>(capacity));
  std::iota(free_.rbegin(), free_.rend(), 0);  // back of the stack is id 0
  if (shuffle) std::shuffle(free_.begin(), free_.end(), std::mt19937_64(seed ^ 0x9E3779B97F4A7C15ULL));
}

// The checks of allocate, retain and release build their messages only when they fail: these run
// once per block reference (build_layout, every serving step), where a message string built on
// every call cost most of build_layout's time.
int32_t BlockPool::allocate() {
  if (free_.empty()) throw Error(ErrorKind::usage, "block pool exhausted (" + std::to_string(capacity()) + " blocks)");
  int32_t id = free_.back();
  free_.pop_back();
  refcount_[static_cast<size_t>(id)] = 1;
  ++in_use_;
  return id;
}

void BlockPool::retain(int32_t id) {
  if (refcount(id) <= 0) throw Error(ErrorKind::usage, "retain of free block " + std::to_string(id));
  ++refcount_[static_cast<size_t>(id)];
}

void BlockPool::release(int32_t id) {
  if (refcount(id) <= 0) throw Error(ErrorKind::usage, "release of free block " + std::to_string(id));
  if (--refcount_[static_cast<size_t>(id)] == 0) {
    free_.push_back(id);
    --in_use_;
  }
}

int64_t PagedLayout::total_tokens() const {
  return std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
}

int64_t PagedLayout::unique_tokens() const {
  return std::accumulate(used_tokens.begin(), used_tokens.end(), int64_t{0});
}

int32_t PagedLayout::max_blocks_per_request() const {
  size_t m = 0;
  for (const auto& t : block_tables) m = std::max(m, t.size());
  return static_cast<int32_t>(m);
}

std::vector<int32_t> PagedLayout::padded_block_tables() const {
  const size_t stride = static_cast<size_t>(table_stride());
  std::vector<int32_t> table(block_tables.size() * stride, -1);
  for (size_t r = 0; r < block_tables.size(); ++r)
    std::copy(block_tables[r].begin(), block_tables[r].end(), table.begin() + static_cast<std::ptrdiff_t>(r * stride));
  return table;
}

namespace {

/// Per request and block index, the logical block it reads: full blocks are keyed by the segment
/// that holds their last token (every request through that segment has the same tokens up to its
/// end), partial last blocks are private. Returns the logical ids and their count.
std::vector<std::vector<int32_t>> logical_blocks(const TokenTree& tree, int page, int32_t& count) {
  const std::vector<int64_t> seg_end = tree.segment_ends();
  std::unordered_map<int64_t, int32_t> shared;  // (segment, block index) -> logical id, looked up only
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(tree.num_requests()));
  count = 0;
  for (int r = 0; r < tree.num_requests(); ++r) {
    const std::vector<int> path = tree.path(r);
    const int64_t len = seg_end[static_cast<size_t>(tree.request_ends[static_cast<size_t>(r)])];
    const int64_t blocks = (len + page - 1) / page;
    size_t seg = 0;
    for (int64_t i = 0; i < blocks; ++i) {
      const int64_t last = std::min((i + 1) * page, len) - 1;
      while (seg_end[static_cast<size_t>(path[seg])] <= last) ++seg;
      if ((i + 1) * page <= len) {
        const int64_t key = (int64_t{path[seg]} << 32) | i;  // i < 2^32: a request has < 2^24 tokens
        auto it = shared.find(key);
        if (it == shared.end()) it = shared.emplace(key, count++).first;
        out[static_cast<size_t>(r)].push_back(it->second);
      } else {
        out[static_cast<size_t>(r)].push_back(count++);
      }
    }
  }
  return out;
}

/// Host bytes per block reference while a layout is built: the logical and physical tables, the
/// per-block counters and, for a full block, a node of the sharing map.
constexpr int64_t kLayoutBytesPerReference = 96;
/// Host bytes per physical block beyond its data: reference count, used tokens, free list, the
/// allocation order that seeds its contents.
constexpr int64_t kLayoutBytesPerBlock = 24;
/// float64 results ([requests, Hq, d] plus lse) alive at once: the oracle, the fp32 emulation and
/// the packed oracle (bench and compare on the CPU hold all three).
constexpr int64_t kResultsAlive = 3;
/// Per gathered token and thread beyond K and V: the scores and probabilities (float64 in the
/// oracle, float32 twice in the emulation).
constexpr int64_t kWorkingBytesPerToken = 16;

int64_t available_host_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return -1;
}

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  return buf;
}

}  // namespace

PagedLayout build_layout(const TokenTree& tree, const Shape& shape, bool shuffle, uint64_t seed) {
  shape.validate();
  tree.validate();
  // Refuse a layout whose block tables alone cannot be held, before building any of it: a tree
  // like 4096_16000000 has 4.1e9 block references, past int32 ids and host memory.
  const std::vector<int64_t> seg_end = tree.segment_ends();
  auto tokens_of = [&](int r) { return seg_end[static_cast<size_t>(tree.request_ends[static_cast<size_t>(r)])]; };
  int64_t references = 0;
  for (int r = 0; r < tree.num_requests(); ++r) references += (tokens_of(r) + shape.page_size - 1) / shape.page_size;
  const int64_t have = available_host_memory();
  if (references > std::numeric_limits<int32_t>::max() ||
      (have > 0 && references * kLayoutBytesPerReference > have * 9 / 10))
    throw Error(ErrorKind::usage, "workload too large for host memory: " + std::to_string(references) +
                                      " block references need about " + gib(references * kLayoutBytesPerReference) +
                                      " for the block tables alone" +
                                      (have > 0 ? ", " + gib(have) + " available" : std::string()));
  PagedLayout layout;
  layout.shape = shape;
  int32_t count = 0;
  auto logical = logical_blocks(tree, shape.page_size, count);
  BlockPool pool(count, shuffle, seed);
  std::vector<int32_t> physical(static_cast<size_t>(count), -1);
  layout.used_tokens.assign(static_cast<size_t>(count), 0);
  for (int r = 0; r < tree.num_requests(); ++r) {
    const int64_t len = tokens_of(r);
    layout.lengths.push_back(static_cast<int32_t>(len));
    std::vector<int32_t> table;
    for (size_t i = 0; i < logical[static_cast<size_t>(r)].size(); ++i) {
      int32_t& id = physical[static_cast<size_t>(logical[static_cast<size_t>(r)][i])];
      if (id < 0) {
        id = pool.allocate();
        layout.used_tokens[static_cast<size_t>(id)] =
            static_cast<int32_t>(std::min<int64_t>(shape.page_size, len - static_cast<int64_t>(i) * shape.page_size));
      } else {
        pool.retain(id);
      }
      table.push_back(id);
    }
    layout.block_tables.push_back(std::move(table));
  }
  layout.num_blocks = pool.capacity();
  for (int32_t b = 0; b < pool.capacity(); ++b) layout.refcounts.push_back(pool.refcount(b));
  return layout;
}

HostMemory host_memory(const PagedLayout& layout, int threads) {
  const Shape& s = layout.shape;
  const int64_t d = s.head_dim;
  const int64_t rows = int64_t{layout.num_requests()} * s.num_q_heads;  // (request, query head) pairs
  int64_t references = 0, self_check_partials = 0, longest = 0;
  for (const auto& table : layout.block_tables) {
    const int64_t blocks = static_cast<int64_t>(table.size());
    references += blocks;
    self_check_partials += (blocks + kSelfCheckChunkPages - 1) / kSelfCheckChunkPages;
  }
  for (int32_t len : layout.lengths) longest = std::max<int64_t>(longest, len);
  HostMemory m;
  m.data = layout.pool_bytes() + layout.num_requests() * traffic::query_bytes(s.num_q_heads, s.head_dim);  // pools + q
  m.tables = references * kLayoutBytesPerReference + int64_t{layout.num_blocks} * kLayoutBytesPerBlock;
  m.results = kResultsAlive * rows * (d + 1) * 8;
  m.partials = self_check_partials * s.num_q_heads * (d + 1) * 8;  // lse and o per state, float64
  const int64_t tasks = int64_t{layout.num_requests()} * s.num_kv_heads;
  m.working = std::min<int64_t>(std::max(threads, 1), tasks) * longest * (2 * d * (8 + 4) + kWorkingBytesPerToken);
  return m;
}

int64_t host_bytes_needed(const PagedLayout& layout) { return host_memory(layout, worker_threads()).total(); }

void Workload::resize_pools(size_t elements) {
  const size_t bytes = elements * static_cast<size_t>(layout.shape.kv_element_bytes());
  k_pool.assign(bytes, 0);
  v_pool.assign(bytes, 0);
}

void Workload::kv_values(KvTensor t, size_t first, int n, double* out) const {
  const std::vector<uint8_t>& pool = t == KvTensor::k ? k_pool : v_pool;
  if (layout.shape.kv_fp8()) {
    const double* value = fp8_e4m3_value_table();
    const double scale = t == KvTensor::k ? k_scale : v_scale;
    for (int i = 0; i < n; ++i) out[i] = value[pool[first + static_cast<size_t>(i)]] * scale;
  } else {
    const double* value = value_table(layout.shape.dtype);
    const uint8_t* bytes = pool.data() + 2 * first;
    for (int i = 0; i < n; ++i) out[i] = value[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  }
}

uint32_t Workload::kv_code(KvTensor t, size_t i) const {
  const std::vector<uint8_t>& pool = t == KvTensor::k ? k_pool : v_pool;
  if (layout.shape.kv_fp8()) return pool[i];
  return static_cast<uint32_t>(pool[2 * i] | (pool[2 * i + 1] << 8));
}

void Workload::store_kv(KvTensor t, size_t i, float x) {
  std::vector<uint8_t>& pool = t == KvTensor::k ? k_pool : v_pool;
  if (layout.shape.kv_fp8()) {
    pool[i] = float_to_fp8_e4m3(x / (t == KvTensor::k ? k_scale : v_scale));
  } else {
    const uint16_t bits = from_float(x, layout.shape.dtype);
    pool[2 * i] = static_cast<uint8_t>(bits & 0xFF);
    pool[2 * i + 1] = static_cast<uint8_t>(bits >> 8);
  }
}

std::vector<float> pool_values(const Workload& w, KvTensor t) {
  std::vector<float> out(w.kv_elements());
  std::vector<double> row(static_cast<size_t>(w.shape().head_dim));
  for (size_t first = 0; first < out.size(); first += row.size()) {
    w.kv_values(t, first, static_cast<int>(row.size()), row.data());
    std::copy(row.begin(), row.end(), out.begin() + static_cast<std::ptrdiff_t>(first));
  }
  return out;
}

float fp8_scale(float amax) { return amax > 0.0f ? amax / kFp8E4m3Max : 1.0f; }

namespace {

/// Where a physical block sits in the token order: its index in the block table of a request
/// that reads it (every request that reads a block reads it at the same index), that request's
/// table, which names the blocks holding earlier tokens, and the request itself (the first whose
/// table names the block).
struct BlockPlace {
  int64_t index = 0;
  const std::vector<int32_t>* table = nullptr;
  int32_t request = 0;
};

/// DataKind::clustered's run centres for the tokens of block `b`: centre of (run, KV head) at
/// [((run - first_run) * Hkv + head) * d]. Each centre is drawn from the stream of the block and
/// offset holding the run's first token (see make_workload()), so the blocks of one run, and every
/// request that shares them, draw the same centre.
struct RunCentres {
  int64_t first_run = 0;
  std::vector<float> values;

  RunCentres() = default;
  RunCentres(const Workload& w, uint64_t seed, const std::vector<int32_t>& order, const BlockPlace& place,
             int64_t b) {
    const Shape& s = w.shape();
    const int64_t first_token = place.index * s.page_size;
    const int64_t used = w.layout.used_tokens[static_cast<size_t>(b)];
    first_run = first_token / kClusterTokens;
    const int64_t runs = used > 0 ? (first_token + used - 1) / kClusterTokens - first_run + 1 : 0;
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t run = first_run; run < first_run + runs; ++run) {
      const int64_t start = run * kClusterTokens;  // the run's first token
      const int32_t holder = (*place.table)[static_cast<size_t>(start / s.page_size)];
      for (int h = 0; h < s.num_kv_heads; ++h) {
        std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), 3u,
                          static_cast<uint32_t>(order[static_cast<size_t>(holder)]),
                          static_cast<uint32_t>(start % s.page_size), static_cast<uint32_t>(h)};
        std::mt19937_64 rng(seq);
        for (int i = 0; i < s.head_dim; ++i) values.push_back(normal(rng));
      }
    }
  }
};

/// DataKind::streaming's lift of the sink and recent keys: per KV head, kSinkLift u at a streaming
/// head, zero at a retrieval head (kv_cache.hpp's streaming-model).
struct SinkLift {
  std::vector<float> lift;  ///< [Hkv][d]: kSinkLift u at streaming heads, 0 at retrieval heads
  bool any = false;         ///< streaming data

  /// From streaming_directions() (empty for other data: no lift).
  explicit SinkLift(std::vector<float> directions) : lift(std::move(directions)), any(!lift.empty()) {
    for (float& x : lift) x *= kSinkLift;
  }
  /// Whether token `t` of a request of `len` tokens is a sink or a recent token.
  static bool lifted(int64_t t, int64_t len) { return t < kSinkTokens || t >= len - kRecentTokens; }
};

/// Draws block `b`'s K and V values (its seed stream is its allocation order), calling
/// `f(element, k, v)` for each element that holds a token and `f(element, NaN, NaN)` for the
/// slots that hold none. K and V are N(0, 1) draws; for DataKind::clustered K is
/// sqrt(rho) centre + sqrt(1 - rho) draw (kv_cache.hpp's model), with the same draws; for
/// DataKind::streaming, plus `sinks`' lift at the sink and recent tokens of the request whose
/// table first names the block.
template <typename F>
void draw_block(const Workload& w, uint64_t seed, DataKind data, const std::vector<int32_t>& order,
                const BlockPlace& place, int64_t b, const SinkLift& sinks, F&& f) {
  const Shape& s = w.shape();
  const size_t block_elems = static_cast<size_t>(s.page_size) * s.num_kv_heads * s.head_dim;
  const size_t row = static_cast<size_t>(s.num_kv_heads) * s.head_dim;  // one token, all KV heads
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), 1u,
                    static_cast<uint32_t>(order[static_cast<size_t>(b)])};
  std::mt19937_64 rng(seq);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t base = static_cast<size_t>(b) * block_elems;
  const size_t used = static_cast<size_t>(w.layout.used_tokens[static_cast<size_t>(b)]) * row;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const bool clustered = data == DataKind::clustered || data == DataKind::mixed || data == DataKind::streaming;
  const RunCentres centres = clustered ? RunCentres(w, seed, order, place, b) : RunCentres{};
  const float shared = static_cast<float>(std::sqrt(kClusterShare));
  const float own = static_cast<float>(std::sqrt(1.0 - kClusterShare));
  const int64_t first_token = place.index * s.page_size;
  const int64_t len = sinks.any ? w.layout.lengths[static_cast<size_t>(place.request)] : 0;
  for (size_t i = 0; i < block_elems; ++i) {
    if (i < used) {
      float k = normal(rng);
      const float v = normal(rng);
      if (clustered) {
        const int64_t token = first_token + static_cast<int64_t>(i / row);
        const int64_t run = token / kClusterTokens - centres.first_run;
        k = shared * centres.values[static_cast<size_t>(run) * row + i % row] + own * k;
        if (sinks.any && SinkLift::lifted(token, len)) k += sinks.lift[i % row];
      }
      f(base + i, k, v);
    } else {
      f(base + i, nan, nan);
    }
  }
}

/// Fills both pools: for an fp8 cache, one pass for the largest |draw| of each pool (its
/// scale), then the draws again, stored. Blocks draw from their own streams, so both passes
/// see the same values. `directions`: streaming_directions() for DataKind::streaming, else empty.
void fill_pools(Workload& w, uint64_t seed, DataKind data, const std::vector<float>& directions) {
  // Allocation order of each physical block (the seed stream of its contents) and its place.
  std::vector<int32_t> order(static_cast<size_t>(w.layout.num_blocks), -1);
  std::vector<BlockPlace> place(static_cast<size_t>(w.layout.num_blocks));
  int32_t next = 0;
  for (size_t r = 0; r < w.layout.block_tables.size(); ++r) {
    const std::vector<int32_t>& table = w.layout.block_tables[r];
    for (size_t i = 0; i < table.size(); ++i)
      if (order[static_cast<size_t>(table[i])] < 0) {
        order[static_cast<size_t>(table[i])] = next++;
        place[static_cast<size_t>(table[i])] = {static_cast<int64_t>(i), &table, static_cast<int32_t>(r)};
      }
  }
  const size_t blocks = static_cast<size_t>(w.layout.num_blocks);
  const SinkLift sinks(directions);
  if (w.shape().kv_fp8()) {
    std::vector<float> k_amax(blocks, 0.0f), v_amax(blocks, 0.0f);
    parallel_for(w.layout.num_blocks, [&](int64_t b) {
      // Each block's maxima in locals, stored once: neighbouring blocks run on other threads,
      // and per-element stores into the shared vectors would bounce their cache lines.
      float k_max = 0.0f, v_max = 0.0f;
      draw_block(w, seed, data, order, place[static_cast<size_t>(b)], b, sinks, [&](size_t, float k, float v) {
        if (std::isnan(k)) return;
        k_max = std::max(k_max, std::fabs(k));
        v_max = std::max(v_max, std::fabs(v));
      });
      k_amax[static_cast<size_t>(b)] = k_max;
      v_amax[static_cast<size_t>(b)] = v_max;
    });
    w.k_scale = fp8_scale(*std::max_element(k_amax.begin(), k_amax.end()));
    w.v_scale = fp8_scale(*std::max_element(v_amax.begin(), v_amax.end()));
  }
  parallel_for(w.layout.num_blocks, [&](int64_t b) {
    draw_block(w, seed, data, order, place[static_cast<size_t>(b)], b, sinks, [&](size_t i, float k, float v) {
      w.store_kv(KvTensor::k, i, k);
      w.store_kv(KvTensor::v, i, v);
    });
  });
}

/// Standard deviation of q for each kind of data.
float query_scale(DataKind data) {
  switch (data) {
    case DataKind::flat: return 1.0f;
    case DataKind::peaked: return kPeakedQueryScale;
    case DataKind::clustered: return kClusteredQueryScale;
    case DataKind::mixed: return kClusteredQueryScale;  // the concentrated heads'; see query_scales()
    case DataKind::streaming: return kClusteredQueryScale;  // the retrieval heads'; see query_scales()
  }
  return 1.0f;
}

/// Standard deviation of q per query head: query_scale() everywhere, except mixed data's query
/// heads of spread KV heads and streaming data's of streaming KV heads (q head h reads KV head
/// h / group), whose unit draws streaming-model adds its sqrt(d) u to.
std::vector<float> query_scales(DataKind data, const Shape& s, uint64_t seed) {
  std::vector<float> out(static_cast<size_t>(s.num_q_heads), query_scale(data));
  if (data == DataKind::mixed || data == DataKind::streaming) {
    const std::vector<bool> spread = mixed_spread_heads(seed, s.num_kv_heads, s.group());
    for (int h = 0; h < s.num_q_heads; ++h) {
      const bool spread_head = spread[static_cast<size_t>(h / s.group())];  // mixed: spread; streaming: retrieval
      if (data == DataKind::mixed && spread_head) out[static_cast<size_t>(h)] = kMixedSpreadQueryScale;
      if (data == DataKind::streaming && !spread_head) out[static_cast<size_t>(h)] = 1.0f;
    }
  }
  return out;
}

}  // namespace

std::vector<float> streaming_directions(uint64_t seed, int num_kv_heads, int head_dim, int group) {
  const std::vector<bool> retrieval = mixed_spread_heads(seed, num_kv_heads, group);
  std::vector<float> out;
  for (int h = 0; h < num_kv_heads; ++h) {
    std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), 5u, static_cast<uint32_t>(h)};
    std::mt19937_64 rng(seq);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<double> u(static_cast<size_t>(std::max(0, head_dim)));
    double norm = 0;
    for (double& x : u) {
      x = normal(rng);
      norm += x * x;
    }
    norm = norm > 0 ? std::sqrt(norm) : 1.0;
    const double keep = retrieval[static_cast<size_t>(h)] ? 0.0 : 1.0;
    for (double x : u) out.push_back(static_cast<float>(keep * x / norm));
  }
  return out;
}

std::vector<bool> mixed_spread_heads(uint64_t seed, int num_kv_heads, int group) {
  const int n = std::max(0, num_kv_heads);
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), 4u};
  std::mt19937_64 rng(seq);
  std::vector<std::pair<uint64_t, int>> keys;
  for (int h = 0; h < n; ++h) keys.emplace_back(rng(), h);
  std::sort(keys.begin(), keys.end());
  const auto spread = static_cast<size_t>(std::llround(mixed_spread_share(group) * n));
  std::vector<bool> out(static_cast<size_t>(n), false);
  for (size_t i = 0; i < spread && i < keys.size(); ++i) out[static_cast<size_t>(keys[i].second)] = true;
  return out;
}

Workload make_workload(const TokenTree& tree, const Shape& shape, uint64_t seed, bool shuffle, DataKind data) {
  Workload w;
  const int64_t have = available_host_memory();
  // Every token of every segment is stored at least once: a floor on the pools, checked before
  // the layout is built so that a hopeless workload fails at once.
  int64_t segment_tokens = 0;
  for (const Segment& seg : tree.segments) segment_tokens += seg.tokens;
  if (have > 0 && segment_tokens > have / std::max<int64_t>(1, shape.kv_bytes_per_token()))
    throw Error(ErrorKind::usage, "workload too large for host memory: its " + std::to_string(segment_tokens) +
                                      " unique tokens need at least " +
                                      gib(segment_tokens * std::max<int64_t>(1, shape.kv_bytes_per_token())) +
                                      " of K/V, " + gib(have) + " available");
  w.tree = tree;
  w.seed = seed;
  w.layout = build_layout(tree, shape, shuffle, seed);
  const int64_t need = host_bytes_needed(w.layout);
  if (have > 0 && need > have * 9 / 10)
    throw Error(ErrorKind::usage, "workload too large for host memory: needs " + gib(need) + ", " + gib(have) +
                                      " available (" + std::to_string(w.layout.num_blocks) + " KV blocks)");
  const Shape& s = shape;
  const size_t block_elems = static_cast<size_t>(s.page_size) * s.num_kv_heads * s.head_dim;
  w.resize_pools(block_elems * static_cast<size_t>(w.layout.num_blocks));
  w.q.resize(static_cast<size_t>(w.num_requests()) * s.num_q_heads * s.head_dim);
  // streaming-model: u of each KV head (zero at the retrieval heads), the keys' lift direction and
  // (times sqrt(d)) added to the queries
  const std::vector<float> directions =
      data == DataKind::streaming ? streaming_directions(seed, s.num_kv_heads, s.head_dim, s.group()) : std::vector<float>{};
  fill_pools(w, seed, data, directions);
  const std::vector<float> scales = query_scales(data, s, seed);
  const float lift = std::sqrt(static_cast<float>(s.head_dim));
  parallel_for(w.num_requests(), [&](int64_t r) {
    std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), 2u, static_cast<uint32_t>(r)};
    std::mt19937_64 rng(seq);
    const size_t n = static_cast<size_t>(s.num_q_heads) * s.head_dim;
    if (data != DataKind::mixed && data != DataKind::streaming) {
      std::normal_distribution<float> normal(0.0f, query_scale(data));
      for (size_t i = 0; i < n; ++i) w.q[static_cast<size_t>(r) * n + i] = from_float(normal(rng), s.dtype);
      return;
    }
    // Unit draws from the same stream, times each query head's scale (plus streaming's sqrt(d) u).
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (size_t i = 0; i < n; ++i) {
      const size_t head = i / static_cast<size_t>(s.head_dim);
      float x = scales[head] * normal(rng);
      if (!directions.empty()) {
        const size_t kv = head / static_cast<size_t>(s.group());
        x += lift * directions[kv * static_cast<size_t>(s.head_dim) + i % s.head_dim];
      }
      w.q[static_cast<size_t>(r) * n + i] = from_float(x, s.dtype);
    }
  });
  return w;
}

}  // namespace patlab
