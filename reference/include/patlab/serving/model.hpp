/// @file model.hpp
/// @brief Model presets: layer count, heads and head dimension (the attention shape of every
/// command's `--model`, and the KV cache's size per token), and parameter count (the weights a
/// decode step reads, for the serving simulations), each with the file it comes from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/model/traffic.hpp"
#include "patlab/model/workload.hpp"

namespace patlab::serving {

/// A model's shape as far as the KV cache and the time model need it.
struct ModelPreset {
  std::string name;        ///< preset name, e.g. "llama-3-8b" (what find_model() looks up)
  int layers = 32;         ///< transformer layers
  int q_heads = 32;        ///< query heads
  int kv_heads = 8;        ///< K/V heads (fewer than q_heads under GQA)
  int head_dim = 128;      ///< dimension of one head
  double params = 8.03e9;  ///< parameters (weights read once per decode step)
  std::string source;      ///< where the numbers come from

  /// K + V bytes of one token in one layer (fp16/bf16).
  int64_t kv_bytes_per_token_layer() const { return traffic::kv_bytes_per_token(kv_heads, head_dim); }
  /// K + V bytes of one token over all layers.
  int64_t kv_bytes_per_token() const { return kv_bytes_per_token_layer() * layers; }
  /// The attention shape of one layer with `page`-token blocks.
  Shape shape(int page) const;
};

/// The presets; the first is the default (Llama-3-8B).
const std::vector<ModelPreset>& model_presets();
/// The preset called `name`, compared without case, '-' and '_' ("llama3-70b" finds
/// "llama-3-70b"); throws Error(usage) listing the names.
const ModelPreset& find_model(const std::string& name);

}  // namespace patlab::serving
