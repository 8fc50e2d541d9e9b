/// @file traffic.hpp
/// @brief The one traffic (byte) model: the HBM bytes that each way of computing decode
/// attention moves. The planner's cost model, traffic_model(), the GPU stages' `model_bytes`
/// (shown by `patlab bench`), the CPU mode's predicted times and the layout's byte counts all
/// call these functions; no other file multiplies out a byte count.
///
/// What is counted: K and V of every token a CTA reads (all KV heads of the token), q read once
/// per CTA group that gathers it, the output written once, and each partial (fp32 `o` and `lse`
/// of one query over all its heads) written by its pack and read back by the merge. What is not:
/// block tables, pack lists and other metadata (small), and L2 hits (a re-read that hits L2 is
/// still charged: the model is bytes, not time). Tutorial chapter 02 ("What each strategy
/// reads: the traffic model") walks through it.
#pragma once

#include <cstdint>

namespace patlab {

struct PagedLayout;
struct Plan;

namespace traffic {

/// Bytes of one storage element of q and the output (fp16 and bf16), and of K and V unless the
/// KV cache is fp8 (Shape::kv_element_bytes() says which).
inline constexpr int kStorageBytes = 2;
/// Bytes of one element of a partial output in fp32 (stages 4-9 with `--fp32-partials`; what the
/// planner prices either way).
inline constexpr int kPartialOutElemBytes = 4;
/// Bytes of one element of a partial output stored in the output's 16-bit type (stages 4-9 by
/// default).
inline constexpr int kHalfPartialOutElemBytes = 2;
/// Bytes of one element of a partial's o: kHalfPartialOutElemBytes for 16-bit partials (stages 4-9
/// by default), else kPartialOutElemBytes.
constexpr int partial_out_elem_bytes(bool half) { return half ? kHalfPartialOutElemBytes : kPartialOutElemBytes; }
/// Whether stages 4-9 store their partials' o in the output's 16-bit type when nothing says
/// otherwise (DeviceBatch::half_partials, the GPU tests' cases, the byte model, and bench and
/// compare, whose `--fp32-partials` stores them in fp32).
inline constexpr bool kStagesHalfPartials = true;
/// Bytes of one partial lse (fp32).
inline constexpr int kPartialLseBytes = 4;
/// Times a partial crosses HBM: written by its pack, read by the merge.
inline constexpr int kPartialTrips = 2;
/// K and V: the two tensors a token stores.
inline constexpr int kKvTensors = 2;
/// q read and the output written: the two [requests, Hq, d] tensors of a batch.
inline constexpr int kQAndOutTensors = 2;

/// K plus V of one token over all `num_kv_heads` KV heads of dimension `head_dim`, elements of
/// `kv_element_bytes` bytes (1 for an fp8 KV cache).
constexpr int64_t kv_bytes_per_token(int num_kv_heads, int head_dim, int kv_element_bytes = kStorageBytes) {
  return int64_t{kKvTensors} * num_kv_heads * head_dim * kv_element_bytes;
}
/// q of one query over all `num_q_heads` query heads; also one query's output row.
constexpr int64_t query_bytes(int num_q_heads, int head_dim) { return int64_t{num_q_heads} * head_dim * kStorageBytes; }
/// One partial of one query over all its heads: `o` (head_dim elements of `o_elem_bytes`, fp32
/// unless a stage stores them in 16 bits) and an fp32 `lse` per head.
constexpr int64_t partial_bytes(int num_q_heads, int head_dim, int o_elem_bytes = kPartialOutElemBytes) {
  return int64_t{num_q_heads} * (int64_t{head_dim} * o_elem_bytes + kPartialLseBytes);
}
/// `partials` partials written by their packs and read back by the merge (`o` elements of
/// `o_elem_bytes`).
constexpr int64_t partials_round_trip_bytes(int num_q_heads, int head_dim, int64_t partials,
                                            int o_elem_bytes = kPartialOutElemBytes) {
  return partials * kPartialTrips * partial_bytes(num_q_heads, head_dim, o_elem_bytes);
}
/// What one more partial costs a query (the planner's `extra_partial_bytes`): q gathered once
/// more by the extra pack, and the partial's round trip.
constexpr int64_t extra_partial_bytes(int num_q_heads, int head_dim) {
  return query_bytes(num_q_heads, head_dim) + partials_round_trip_bytes(num_q_heads, head_dim, 1);
}
/// q read and the output written once, for `requests` queries.
constexpr int64_t q_and_out_bytes(int num_q_heads, int head_dim, int64_t requests) {
  return int64_t{kQAndOutTensors} * requests * query_bytes(num_q_heads, head_dim);
}

/// One CTA per (request, query head) (stage 1): every request's K/V once per query head, plus
/// q and the output.
int64_t per_query_head_bytes(const PagedLayout& layout);
/// One CTA per (request, KV head) (stage 2): every request's K/V once, plus q and the output.
int64_t per_request_bytes(const PagedLayout& layout);
/// Requests cut into chunks (stage 3): per_request_bytes() plus the round trip of `partials`
/// partials (0 when nothing is split and CTAs write the output directly).
int64_t chunked_bytes(const PagedLayout& layout, int64_t partials);
/// The floor: K/V of distinct blocks once, plus q and the output.
int64_t unique_bytes(const PagedLayout& layout);
/// A plan (stages 4-7): each pack's K/V once (all KV heads), q of each of its queries, the
/// output written once per request, and the round trip of every partial slot (`o` elements of
/// `partial_o_bytes`: fp32 by default here, 16-bit as stages 4-9 store them unless `--fp32-partials`). With `direct_output` a query with
/// a single pack is written by that pack and has no partial.
int64_t plan_bytes(const PagedLayout& layout, const Plan& plan, bool direct_output,
                   int partial_o_bytes = kPartialOutElemBytes);

/// Predicted time in microseconds of moving `bytes` at `gbs` GB/s (10^9 bytes per second): the
/// bytes-over-bandwidth model, blind to launch latency and to how well a kernel overlaps.
constexpr double predicted_us(int64_t bytes, double gbs) { return static_cast<double>(bytes) / (gbs * 1e3); }

}  // namespace traffic
}  // namespace patlab
