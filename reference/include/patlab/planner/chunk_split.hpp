/// @file chunk_split.hpp
/// @brief Stage 3's KV split on the host: how long the chunks are that requests are cut into
/// (tutorial chapter 12, tutorial/12-splitkv.md). The stage calls it; the CPU mode of
/// `patlab bench` calls it to predict the stage's bytes.
///
/// The rule: let `slots` = SMs x resident CTAs per SM of the decode kernel. If requests x Hkv
/// already fills the slots, nothing is split and CTAs write the output directly. Otherwise chunks
/// start at `ceil(total tokens x Hkv / slots)` tokens, rounded up to a whole page and never
/// shorter than kMinChunkTokens, and grow by a page until the chunks of the whole batch fit in
/// one wave (at most `slots` CTAs): a few CTAs past the wave would run alone in a second one and
/// double the time.
#pragma once

#include <cstdint>
#include <vector>

namespace patlab {

/// Shortest chunk worth a partial: its KV read dwarfs the partial's write and merge.
inline constexpr int kMinChunkTokens = 256;
/// chunk_tokens() when nothing is split: longer than any request.
inline constexpr int64_t kNoSplitChunk = INT32_MAX;

/// Chunk length in tokens of stage 3 for requests of `lengths` tokens with `num_kv_heads` KV
/// heads and pages of `page_size` tokens on `slots` CTA slots; kNoSplitChunk when requests x
/// Hkv already fill the slots. Throws Error(usage) on an empty batch, a request without tokens,
/// or a page size or slot count below 1.
int64_t chunk_tokens(const std::vector<int32_t>& lengths, int num_kv_heads, int page_size, int64_t slots);

/// Chunks that requests of `lengths` tokens make when cut every `chunk` tokens (ceil per request).
int64_t chunk_count(const std::vector<int32_t>& lengths, int64_t chunk);

}  // namespace patlab
