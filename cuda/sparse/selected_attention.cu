// Sparse decode, step 3 (tutorial chapter 22): attention over the chosen selection blocks, in
// NSA's loop order, in FSA's, and in NSA's split into balanced chunks for PSA's uneven budgets.
// All three are packs of the pack kernel (packed_tile.cuh: mma.sync m16n8k16 tiles, the paged
// KV loader, the online softmax, partials) with one KV head each (PackKernelArgs::pack_kv_head),
// built here on the host from the selection:
//  - NSA: one pack per (request, KV head): one query (its g heads: a 16-row tile, g of them
//    useful), its chosen blocks' pages one after the other (only a request's last block can be
//    partial, and it is always chosen, as a forced recent block, and last: so the blocks make one
//    range of whole pages). The output is written directly.
//  - FSA: one pack per (physical block, KV head) and per kSparseMaxTileRows rows: the requests
//    that chose it (fsa.hpp's index), g rows each, in a 16-, 32- or 64-row tile. Each (request,
//    KV head) writes one partial per chosen block (slot = the block's place in its list), and
//    merge.cuh's kernel merges each request's slots.
//  - split (PSA): NSA's packs cut into chunks of at most k blocks, k chosen so that the chunks
//    number about kSplitCtasPerSm per SM, launched longest first; partials merged as FSA's.
// A request's slots number the most any of its KV heads writes; the (slot, KV head) pairs a
// KV head leaves unwritten (it chose fewer blocks) get the empty state (lse -inf, o 0), which the
// merge weighs zero, so a NaN-poisoned partial can only survive where a pack failed to write.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/merge.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"
#include "patlab/cuda/sparse_kernels.cuh"
#include "patlab/error.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/sparse/fsa.hpp"

namespace patlab::cuda {

namespace {

/// Threads of the empty-partials kernel.
constexpr int kEmptyThreads = 128;

// [empty-partials]
/// Writes the empty state (o = 0, lse = -inf) into the g heads of KV head `pairs[2i + 1]` of
/// slot `pairs[2i]`: one CTA per pair.
__global__ void __launch_bounds__(kEmptyThreads)
    empty_partials_kernel(const int32_t* __restrict__ pairs, int group, int num_q_heads, int head_dim, float* o,
                          float* lse) {
  const int slot = pairs[2 * blockIdx.x], kv_head = pairs[2 * blockIdx.x + 1];
  const int64_t row0 = static_cast<int64_t>(slot) * num_q_heads + kv_head * group;
  for (int i = threadIdx.x; i < group * head_dim; i += kEmptyThreads) o[row0 * head_dim + i] = 0.f;
  for (int h = threadIdx.x; h < group; h += kEmptyThreads) lse[row0 + h] = -INFINITY;
}
// [empty-partials]

/// The packs of one order on the host, in PackKernelArgs' flattened form.
struct HostPacks {
  std::vector<int32_t> query_begin{0}, queries, slots, block_begin{0}, blocks, kv_len, kv_head;
  std::vector<int32_t> rows;  ///< tile rows of each pack (queries x g)

  /// Adds a pack of `requests` (with their `slots`) over `pages` (`tokens` tokens) at `head`.
  void add(const std::vector<int32_t>& requests, const std::vector<int32_t>& pack_slots,
           const std::vector<int32_t>& pages, int64_t tokens, int head, int group) {
    queries.insert(queries.end(), requests.begin(), requests.end());
    slots.insert(slots.end(), pack_slots.begin(), pack_slots.end());
    query_begin.push_back(static_cast<int32_t>(queries.size()));
    blocks.insert(blocks.end(), pages.begin(), pages.end());
    block_begin.push_back(static_cast<int32_t>(blocks.size()));
    kv_len.push_back(static_cast<int32_t>(tokens));
    kv_head.push_back(head);
    rows.push_back(static_cast<int32_t>(requests.size()) * group);
  }
  int count() const { return static_cast<int>(kv_len.size()); }
};

/// The pages of selection block `b` of request `r`.
std::vector<int32_t> block_pages(const PagedLayout& layout, int r, int b, int pages_per_block) {
  const std::vector<int32_t>& table = layout.block_tables[static_cast<size_t>(r)];
  const size_t first = static_cast<size_t>(b) * static_cast<size_t>(pages_per_block);
  const size_t last = std::min(table.size(), first + static_cast<size_t>(pages_per_block));
  return {table.begin() + static_cast<std::ptrdiff_t>(first), table.begin() + static_cast<std::ptrdiff_t>(last)};
}

/// The tile rows of a pack of `rows` rows: 16, 32 or 64.
int tile_rows(int rows) { return rows <= 16 ? 16 : rows <= 32 ? 32 : kSparseMaxTileRows; }

/// Blocks per chunk of the split: the chosen blocks over about kSplitCtasPerSm CTAs per SM.
int split_chunk(const sparse::Selection& sel, int sm_count) {
  const int64_t total = sel.total_blocks();
  const int64_t ctas = int64_t{kSplitCtasPerSm} * std::max(1, sm_count);
  return static_cast<int>(std::max<int64_t>(1, (total + ctas - 1) / ctas));
}

}  // namespace

SelectedBranch::SelectedBranch(gpu::SparseOrder order, const PagedLayout& layout, const sparse::Selection& sel,
                               const sparse::SparseOptions& o, int sm_count, int64_t smem_optin)
    : order_(order), requests_(layout.num_requests()) {
  const Shape& s = layout.shape;
  const int g = s.group(), hkv = s.num_kv_heads, page = s.page_size;
  require(o.sel_block % page == 0, "l' is not a multiple of the page");
  const int pages_per_block = o.sel_block / page;
  const int chunk = order == gpu::SparseOrder::split ? split_chunk(sel, sm_count) : 0;
  HostPacks packs;
  // Slots per request: the most partials one of its KV heads writes (none for NSA's order).
  std::vector<int32_t> per_request(static_cast<size_t>(requests_), 0);
  auto slots_of = [&](int r, int kvh) -> int32_t {
    const int32_t n = static_cast<int32_t>(sel.of(r, kvh).size());
    return order == gpu::SparseOrder::fsa ? n : order == gpu::SparseOrder::split ? (n + chunk - 1) / chunk : 0;
  };
  for (int r = 0; r < requests_; ++r)
    for (int kvh = 0; kvh < hkv; ++kvh) per_request[r] = std::max(per_request[r], slots_of(r, kvh));
  std::vector<int32_t> offsets(static_cast<size_t>(requests_) + 1, 0);
  std::partial_sum(per_request.begin(), per_request.end(), offsets.begin() + 1);
  std::vector<int32_t> empty;
  for (int r = 0; r < requests_; ++r)
    for (int kvh = 0; kvh < hkv; ++kvh)
      for (int32_t i = slots_of(r, kvh); i < per_request[r]; ++i) {
        empty.push_back(offsets[r] + i);
        empty.push_back(kvh);
      }

  if (order == gpu::SparseOrder::fsa) {
    // [fsa-packs]
    const sparse::FsaView view = sparse::fsa_view(layout, sel, o);
    const size_t per_pack = static_cast<size_t>(std::max(1, kSparseMaxTileRows / g));
    for (const sparse::FsaBlock& blk : view.blocks) {
      for (size_t at = 0; at < blk.rows.size(); at += per_pack) {
        std::vector<int32_t> requests, pack_slots;
        for (size_t i = at; i < std::min(blk.rows.size(), at + per_pack); ++i) {
          const sparse::FsaRow& row = blk.rows[i];
          const std::vector<int32_t>& chosen = sel.of(row.request, blk.kv_head);
          const auto pos = std::lower_bound(chosen.begin(), chosen.end(), row.block) - chosen.begin();
          requests.push_back(row.request);
          pack_slots.push_back(offsets[static_cast<size_t>(row.request)] + static_cast<int32_t>(pos));
        }
        packs.add(requests, pack_slots, blk.pages, blk.tokens, blk.kv_head, g);
      }
    }
    // [fsa-packs]
  } else {
    // [nsa-packs]
    for (int r = 0; r < requests_; ++r) {
      const int64_t len = layout.lengths[static_cast<size_t>(r)];
      for (int kvh = 0; kvh < hkv; ++kvh) {
        const std::vector<int32_t>& chosen = sel.of(r, kvh);
        const size_t step = chunk > 0 ? static_cast<size_t>(chunk) : std::max<size_t>(1, chosen.size());
        for (size_t at = 0; at < chosen.size(); at += step) {
          std::vector<int32_t> pages;
          int64_t tokens = 0;
          for (size_t i = at; i < std::min(chosen.size(), at + step); ++i) {
            const std::vector<int32_t> p = block_pages(layout, r, chosen[i], pages_per_block);
            pages.insert(pages.end(), p.begin(), p.end());
            tokens += sparse::selection_block_tokens(len, chosen[i], o);
          }
          const int32_t slot = chunk > 0 ? offsets[static_cast<size_t>(r)] + static_cast<int32_t>(at / step) : -1;
          packs.add({r}, {slot}, pages, tokens, kvh, g);
        }
      }
    }
    // [nsa-packs]
  }

  // One launch per tile shape, each listing its packs longest first.
  std::vector<int32_t> bucket;
  for (int m : {16, 32, kSparseMaxTileRows}) {
    std::vector<int32_t> ids;
    for (int i = 0; i < packs.count(); ++i)
      if (tile_rows(packs.rows[i]) == m) ids.push_back(i);
    if (ids.empty()) continue;
    std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return packs.kv_len[a] > packs.kv_len[b]; });
    const TileShape tile = fit_tile({m, kSparseKvTile}, s.head_dim, s.kv_element_bytes());
    configure_pack_tile(s, tile, smem_optin);
    int64_t useful = 0;
    for (int32_t i : ids) useful += packs.rows[i];
    launches_.push_back({tile, static_cast<int>(bucket.size()), static_cast<int>(ids.size())});
    bucket.insert(bucket.end(), ids.begin(), ids.end());
    std::ostringstream line;
    line << (notes_.empty() ? "" : ", ") << ids.size() << " CTAs of " << tile.name() << " (" << std::setprecision(3)
         << static_cast<double>(useful) / static_cast<double>(ids.size()) << " useful rows each)";
    notes_ += line.str();
  }
  if (chunk > 0) notes_ += "; chunks of at most " + std::to_string(chunk) + " blocks";
  if (order != gpu::SparseOrder::nsa)
    notes_ += "; " + std::to_string(offsets.back()) + " partial slots, " + std::to_string(empty.size() / 2) + " empty";

  query_begin_ = DeviceBuffer<int32_t>(packs.query_begin);
  queries_ = DeviceBuffer<int32_t>(packs.queries);
  slots_ = DeviceBuffer<int32_t>(packs.slots);
  block_begin_ = DeviceBuffer<int32_t>(packs.block_begin);
  blocks_ = DeviceBuffer<int32_t>(packs.blocks);
  kv_len_ = DeviceBuffer<int32_t>(packs.kv_len);
  kv_head_ = DeviceBuffer<int32_t>(packs.kv_head);
  bucket_ = DeviceBuffer<int32_t>(bucket);
  slot_offsets_ = DeviceBuffer<int32_t>(offsets);
  empty_ = DeviceBuffer<int32_t>(empty);
  empty_count_ = static_cast<int>(empty.size() / 2);
  const size_t slots = static_cast<size_t>(offsets.back());
  partial_o_ = DeviceBuffer<float>(slots * static_cast<size_t>(s.num_q_heads) * static_cast<size_t>(s.head_dim));
  partial_lse_ = DeviceBuffer<float>(slots * static_cast<size_t>(s.num_q_heads));
}

void SelectedBranch::run(const Shape& shape, const SparseBatch& b, void* sel_out, cudaStream_t stream) const {
  if (empty_count_ > 0) {
    empty_partials_kernel<<<empty_count_, kEmptyThreads, 0, stream>>>(empty_.get(), b.group, b.num_q_heads,
                                                                     shape.head_dim, partial_o_.get(), partial_lse_.get());
    PATLAB_CUDA_CHECK_LAUNCH();
  }
  PackKernelArgs args;
  args.q = b.q;
  args.k_pool = b.k_pool;
  args.v_pool = b.v_pool;
  args.out = sel_out;
  args.partial_o = partial_o_.get();
  args.partial_lse = partial_lse_.get();
  args.query_begin = query_begin_.get();
  args.queries = queries_.get();
  args.slots = slots_.get();
  args.block_begin = block_begin_.get();
  args.blocks = blocks_.get();
  args.kv_len = kv_len_.get();
  args.pack_kv_head = kv_head_.get();
  args.geo = b.geo;
  args.group = b.group;
  args.num_q_heads = b.num_q_heads;
  for (const Bucket& l : launches_) launch_pack_tile(shape, l.tile, args, bucket_.get() + l.offset, l.count, stream);
  if (order_ == gpu::SparseOrder::nsa) return;
  // [sparse-merge]
  dispatch_dtype_head_dim(shape, [&](auto tag, auto dim) {
    using T = typename decltype(tag)::type;
    launch_merge<T, decltype(dim)::value>(PartialsView{partial_o_.get(), partial_lse_.get(), slot_offsets_.get()},
                                          nullptr, requests_, b.num_q_heads, sel_out, stream);
  });
  // [sparse-merge]
}

}  // namespace patlab::cuda
