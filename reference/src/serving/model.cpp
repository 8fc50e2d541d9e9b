#include "patlab/serving/model.hpp"

#include "patlab/error.hpp"

namespace patlab::serving {

Shape ModelPreset::shape(int page) const {
  Shape s;
  s.num_q_heads = q_heads;
  s.num_kv_heads = kv_heads;
  s.head_dim = head_dim;
  s.page_size = page;
  return s;
}

const std::vector<ModelPreset>& model_presets() {
  static const std::vector<ModelPreset> presets = {
      {"llama-3-8b", 32, 32, 8, 128, 8.03e9,
       "https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json (32 layers, 32/8 heads, hidden 4096); 8.03B parameters (model card)"},
      {"llama-2-7b", 32, 32, 32, 128, 6.74e9,
       "https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json (32 layers, 32 heads, no GQA); 6.74B parameters (Llama 2 paper)"},
      {"llama-2-13b", 40, 40, 40, 128, 13.0e9,
       "https://huggingface.co/meta-llama/Llama-2-13b-hf/blob/main/config.json (40 layers, 40 heads, hidden 5120); 13.0B parameters (Llama 2 paper)"},
      {"llama-3-70b", 80, 64, 8, 128, 70.6e9,
       "https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json (80 layers, 64/8 heads, hidden 8192); 70.6B parameters (model card)"},
      {"qwen2.5-7b", 28, 28, 4, 128, 7.61e9,
       "https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json (28 layers, 28/4 heads, hidden 3584: d=128); "
       "7.61B parameters (model card)"},
      {"qwen2.5-32b", 64, 40, 8, 128, 32.5e9,
       "https://huggingface.co/Qwen/Qwen2.5-32B/blob/main/config.json (64 layers, 40/8 heads, hidden 5120: d=128); "
       "32.5B parameters (model card)"},
      {"mistral-7b", 32, 32, 8, 128, 7.24e9,
       "https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json (32 layers, 32/8 heads, hidden 4096: "
       "d=128); 7.24B parameters (model card); its 4096-token sliding window is not modelled"},
      {"gemma-2-9b", 42, 16, 8, 256, 9.24e9,
       "https://huggingface.co/google/gemma-2-9b/blob/main/config.json (42 layers, 16/8 heads, head_dim 256, "
       "query_pre_attn_scalar 256 = d); 9.24B parameters (model card); its logit soft-capping and the sliding window "
       "of every other layer are not modelled"},
  };
  return presets;
}

namespace {

/// `name` lowercased without '-' and '_', so "llama3-70b", "Llama-3-70B" and "llama_3_70b" match.
std::string name_key(const std::string& name) {
  std::string key;
  for (char c : name)
    if (c != '-' && c != '_') key += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return key;
}

}  // namespace

const ModelPreset& find_model(const std::string& name) {
  std::string names;
  for (const ModelPreset& m : model_presets()) {
    if (name_key(m.name) == name_key(name)) return m;
    names += (names.empty() ? "" : ", ") + m.name;
  }
  throw Error(ErrorKind::usage, "unknown model '" + name + "' (models: " + names + ")");
}

}  // namespace patlab::serving
