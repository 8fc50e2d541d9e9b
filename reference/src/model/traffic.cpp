// The traffic (byte) model of the strategies (tutorial chapter 02, "What each strategy reads:
// the traffic model"; the stages' predictions: chapters 10-16).
#include "patlab/model/traffic.hpp"

#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"

namespace patlab::traffic {

int64_t per_query_head_bytes(const PagedLayout& L) {
  // [per query head]
  return L.total_kv_bytes() * L.shape.group() + L.q_and_out_bytes();
  // [per query head]
}

int64_t per_request_bytes(const PagedLayout& L) {
  // [per request]
  return L.total_kv_bytes() + L.q_and_out_bytes();
  // [per request]
}

int64_t chunked_bytes(const PagedLayout& L, int64_t partials) {
  // [chunked]
  return per_request_bytes(L) + partials_round_trip_bytes(L.shape.num_q_heads, L.shape.head_dim, partials);
  // [chunked]
}

int64_t unique_bytes(const PagedLayout& L) { return L.unique_kv_bytes() + L.q_and_out_bytes(); }

int64_t plan_bytes(const PagedLayout& L, const Plan& plan, bool direct_output, int partial_o_bytes) {
  const Shape& s = L.shape;
  // [plan bytes]
  int64_t kv_tokens = 0, gathered = 0, slots = 0;
  for (const Pack& p : plan.packs) {
    kv_tokens += p.space_len(s.page_size);                // K/V of the range and its tails, all KV heads
    gathered += static_cast<int64_t>(p.queries.size());  // q of each of its queries
  }
  for (int32_t k : plan.partials)
    if (!(direct_output && k == 1)) slots += k;  // a query alone in one pack writes the output directly
  const int64_t q_row = query_bytes(s.num_q_heads, s.head_dim);
  return kv_tokens * s.kv_bytes_per_token() + gathered * q_row +
         partials_round_trip_bytes(s.num_q_heads, s.head_dim, slots, partial_o_bytes) + int64_t{L.num_requests()} * q_row;
  // [plan bytes]
}

}  // namespace patlab::traffic
