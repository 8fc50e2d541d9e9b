#include "patlab/cuda/device_plan.cuh"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "patlab/cuda/dispatch.cuh"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::cuda {

CtaTraceBuffer& cta_trace_target() {
  static CtaTraceBuffer target;
  return target;
}

void DevicePlan::upload(Plan plan, const DeviceBatch& batch, const UploadOptions& options) {
  const PagedLayout& L = batch.host->layout;
  const std::vector<std::string> faults = validate_plan(L, plan);
  if (!faults.empty()) throw std::logic_error("the planner made an invalid plan: " + faults.front());
  shape_ = batch.shape;
  const int R = L.num_requests();
  const int D = shape_.head_dim;

  // [plan-direct-output]
  // Partial slots: request r owns [offsets[r], offsets[r + 1]); a request written directly owns none.
  std::vector<int32_t> offsets(static_cast<size_t>(R) + 1, 0), merge_queries;
  for (int r = 0; r < R; ++r) {
    const int k = plan.partials[static_cast<size_t>(r)];
    const bool direct = options.direct_output && k == 1;
    offsets[static_cast<size_t>(r) + 1] = offsets[static_cast<size_t>(r)] + (direct ? 0 : k);
    if (!direct) merge_queries.push_back(r);
  }
  partials_ = offsets.back();
  // [plan-direct-output]

  // [plan-flatten]
  // Flat pack arrays. A pack with leaf tails streams its range, then each tail from a page
  // boundary (its pack space): its blocks follow the range's, and its entries say which tokens
  // past the range are theirs.
  HostPackArrays flat;
  const int page = shape_.page_size;
  const bool tails = std::any_of(plan.packs.begin(), plan.packs.end(), [](const Pack& p) { return !p.tails.empty(); });
  for (const Pack& p : plan.packs) {
    for (size_t i = 0; i < p.queries.size(); ++i) {
      const int32_t r = p.queries[i];
      const bool direct = offsets[static_cast<size_t>(r) + 1] == offsets[static_cast<size_t>(r)];
      flat.queries.push_back(r);
      flat.slots.push_back(direct ? -1 : offsets[static_cast<size_t>(r)] + p.slots[i]);
    }
    flat.query_begin.push_back(static_cast<int32_t>(flat.queries.size()));
    const PackSpace space = pack_space(p, page);  // the packed oracle runs the same layout
    flat.blocks.insert(flat.blocks.end(), space.blocks.begin(), space.blocks.end());
    flat.block_begin.push_back(static_cast<int32_t>(flat.blocks.size()));
    flat.kv_len.push_back(space.len);
    if (tails) {
      flat.own_len.push_back(space.own_len);
      for (const auto& [x, y] : space.tails) flat.entry_tail.push_back(make_int2(x, y));
    }
  }
  packs_ = static_cast<int64_t>(plan.packs.size());
  // [plan-flatten]

  // [plan-buckets]
  // One bucket per tile shape, launched in the stage's bucket order (plan_buckets(), planner.hpp).
  std::vector<int32_t> bucket_packs;
  buckets_.clear();
  for (const PlanBucket& pb : plan_buckets(plan, shape_, options.bucket_order, options.tile_policy,
                                           options.longest_first)) {
    Bucket b;
    b.tile = pb.tile;
    b.offset = static_cast<int>(bucket_packs.size());
    b.count = static_cast<int>(pb.packs.size());
    b.tokens = pb.tokens;
    b.ctas_per_sm = pb.ctas_per_sm;
    bucket_packs.insert(bucket_packs.end(), pb.packs.begin(), pb.packs.end());
    buckets_.push_back(b);
    if (options.pack_kernel) configure_pack_tile(shape_, b.tile, batch.device->smem_per_block_optin);
  }
  // [plan-buckets]

  arrays_ = DevicePackArrays(flat);
  bucket_packs_ = DeviceBuffer<int32_t>(bucket_packs);
  offsets_ = DeviceBuffer<int32_t>(offsets);
  merge_queries_ = DeviceBuffer<int32_t>(merge_queries);
  merge_count_ = static_cast<int>(merge_queries.size());
  half_partials_ = batch.half_partials;
  half_split_.reset();
  // the output's 16-bit type, two values to each float of a buffer half the size (the default), or fp32 o (--fp32-partials)
  partial_o_ = DeviceBuffer<float>(partial_o_floats(static_cast<size_t>(partials_), shape_.num_q_heads, D, half_partials_));
  partial_lse_ = DeviceBuffer<float>(static_cast<size_t>(partials_) * shape_.num_q_heads);

  args_.q = batch.q;
  args_.k_pool = batch.k_pool;
  args_.v_pool = batch.v_pool;
  args_.k_scale = batch.k_scale;
  args_.v_scale = batch.v_scale;
  args_.out = batch.out;
  args_.partial_o = partial_o_.get();
  args_.partial_lse = partial_lse_.get();
  args_.partial_half = half_partials_;
  arrays_.point(args_);
  args_.geo = pool_geometry(shape_);
  args_.group = shape_.group();
  args_.num_q_heads = shape_.num_q_heads;
#ifdef PATLAB_CTA_TRACE
  args_.trace = cta_trace_target();
#endif

  // [plan-traffic]
  // Traffic: K/V of every pack (all KV heads), q rows gathered per pack, partials written
  // and read (none for a query written directly; o in 16 bits unless --fp32-partials), and the
  // output written once.
  traffic_bytes_ = traffic::plan_bytes(L, plan, options.direct_output, traffic::partial_out_elem_bytes(half_partials_));
  // [plan-traffic]
  plan_ = std::move(plan);
  lengths_ = L.lengths;
}

const PartialSplit& DevicePlan::half_partial_split() const {
  if (!half_split_) half_split_ = half_partials_ ? plan_partial_split(plan_, lengths_) : PartialSplit{};
  return *half_split_;
}

void DevicePlan::launch(size_t b, cudaStream_t stream, LaunchLink link) const {
  const Bucket& bucket = buckets_.at(b);
  launch_pack_tile(shape_, bucket.tile, args_, bucket_packs_.get() + bucket.offset, bucket.count, stream, link);
}

void DevicePlan::merge(cudaStream_t stream) const {
  const PartialsView view = partials_view();
  dispatch_dtype_head_dim(shape_, [&](auto tag, auto dim) {
    using T = typename decltype(tag)::type;
    constexpr int D = decltype(dim)::value;
    launch_merge<T, D>(view, merge_queries_.get(), merge_count_, shape_.num_q_heads, args_.out, stream);
  });
}

std::string DevicePlan::describe() const {
  std::string s = std::to_string(packs_) + " packs x " + std::to_string(shape_.num_kv_heads) + " KV heads in " +
                  std::to_string(buckets_.size()) + (buckets_.size() == 1 ? " bucket (" : " buckets (");
  for (size_t i = 0; i < buckets_.size(); ++i)
    s += (i ? ", " : "") + buckets_[i].tile.name() + ": " +
         std::to_string(buckets_[i].count);
  return s + "), " + std::to_string(partials_) + " partials, " + std::to_string(merge_count_) + " queries merged";
}

}  // namespace patlab::cuda
