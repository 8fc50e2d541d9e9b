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
       "meta-llama/Meta-Llama-3-8B config.json (32 layers, 32/8 heads, hidden 4096); 8.03B parameters (model card)"},
      {"llama-2-7b", 32, 32, 32, 128, 6.74e9,
       "meta-llama/Llama-2-7b-hf config.json (32 layers, 32 heads, no GQA); 6.74B parameters (Llama 2 paper)"},
      {"llama-2-13b", 40, 40, 40, 128, 13.0e9,
       "meta-llama/Llama-2-13b-hf config.json (40 layers, 40 heads, hidden 5120); 13.0B parameters (Llama 2 paper)"},
      {"llama-3-70b", 80, 64, 8, 128, 70.6e9,
       "meta-llama/Meta-Llama-3-70B config.json (80 layers, 64/8 heads, hidden 8192); 70.6B parameters (model card)"},
  };
  return presets;
}

const ModelPreset& find_model(const std::string& name) {
  std::string names;
  for (const ModelPreset& m : model_presets()) {
    if (m.name == name) return m;
    names += (names.empty() ? "" : ", ") + m.name;
  }
  throw Error(ErrorKind::usage, "unknown model '" + name + "' (models: " + names + ")");
}

}  // namespace patlab::serving
