#include "patlab/plan.hpp"

#include <algorithm>
#include <numeric>

#include "patlab/error.hpp"

namespace patlab {

int64_t Plan::total_partials() const { return std::accumulate(partials.begin(), partials.end(), int64_t{0}); }

Plan chunked_plan(const PagedLayout& layout, int chunk_tokens) {
  const int page = layout.shape.page_size;
  require(chunk_tokens >= page && chunk_tokens % page == 0,
          "chunk size " + std::to_string(chunk_tokens) + " must be a positive multiple of the page size " +
              std::to_string(page));
  Plan plan;
  plan.strategy = "chunks of " + std::to_string(chunk_tokens) + " tokens, one request per pack";
  plan.partials.assign(static_cast<size_t>(layout.num_requests()), 0);
  for (int r = 0; r < layout.num_requests(); ++r) {
    const int32_t len = layout.lengths[static_cast<size_t>(r)];
    for (int32_t begin = 0; begin < len; begin += chunk_tokens) {
      Pack p;
      p.queries = {r};
      p.slots = {plan.partials[static_cast<size_t>(r)]++};
      p.token_begin = begin;
      p.kv_len = std::min(chunk_tokens, len - begin);
      const auto& table = layout.block_tables[static_cast<size_t>(r)];
      p.blocks.assign(table.begin() + begin / page, table.begin() + (begin + p.kv_len + page - 1) / page);
      plan.packs.push_back(std::move(p));
    }
  }
  return plan;
}

}  // namespace patlab
