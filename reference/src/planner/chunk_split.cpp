// Stage 3's KV split: the chunk rule (tutorial chapter 12, tutorial/12-splitkv.md).
#include "patlab/planner/chunk_split.hpp"

#include <algorithm>
#include <string>

#include "patlab/error.hpp"
#include "planner_detail.hpp"

namespace patlab {

using planner_detail::ceil_div;

int64_t chunk_count(const std::vector<int32_t>& lengths, int64_t chunk) {
  int64_t n = 0;
  for (int32_t len : lengths) n += ceil_div(len, chunk);
  return n;
}

int64_t chunk_tokens(const std::vector<int32_t>& lengths, int num_kv_heads, int page_size, int64_t slots) {
  require(!lengths.empty(), "chunk_tokens: the batch has no requests");
  require(page_size >= 1 && num_kv_heads >= 1 && slots >= 1,
          "chunk_tokens: page size, KV heads and slots must be >= 1 (got " + std::to_string(page_size) + ", " +
              std::to_string(num_kv_heads) + ", " + std::to_string(slots) + ")");
  int64_t total = 0;
  for (int32_t len : lengths) {
    require(len >= 1, "chunk_tokens: a request has " + std::to_string(len) + " tokens");
    total += len;
  }
  // [chunk rule]
  if (static_cast<int64_t>(lengths.size()) * num_kv_heads >= slots) return kNoSplitChunk;
  auto ctas = [&](int64_t chunk) { return chunk_count(lengths, chunk) * num_kv_heads; };
  auto whole_pages = [&](int64_t tokens) { return ceil_div(tokens, page_size) * page_size; };
  const int64_t even = ceil_div(total * num_kv_heads, slots);
  const int64_t first = std::max<int64_t>(kMinChunkTokens, whole_pages(even));
  // Rounding must not spill CTAs into a second wave: the smallest page multiple that fits.
  int64_t lo = first;
  int64_t hi = whole_pages(std::max<int64_t>(first, *std::max_element(lengths.begin(), lengths.end())));
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2 / page_size * page_size;
    if (ctas(mid) <= slots)
      hi = mid;
    else
      lo = mid + page_size;
  }
  return lo;
  // [chunk rule]
}

}  // namespace patlab
