#include "patlab/serving/layerkv.hpp"

#include <algorithm>
#include <cmath>
#include <deque>

#include "patlab/error.hpp"

namespace patlab::serving {

namespace {
std::string fmt(double v, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g %s", v, unit);
  return buf;
}
}  // namespace

std::vector<std::vector<std::string>> LayerKvParams::table() const {
  return {
      {"model", model.name + ": " + std::to_string(model.layers) + " layers, " + std::to_string(model.q_heads) + "/" +
                    std::to_string(model.kv_heads) + " heads, d=" + std::to_string(model.head_dim),
       model.source},
      {"KV bytes per token and layer", std::to_string(model.kv_bytes_per_token_layer()) + " B",
       "2 (K, V) x KV heads x head dim x 2 bytes (fp16/bf16)"},
      {"GPU KV cache", fmt(gpu_kv_bytes / (1 << 30), "GiB"),
       "--capacity-gib: our choice (an 80 GB H100 minus weights and activations leaves more; less makes memory the limit)"},
      {"page (tokens per block)", std::to_string(page_size), "vLLM's default block size, 16"},
      {"PCIe bandwidth", fmt(pcie_bytes_per_s / 1e9, "GB/s"),
       "PCIe 5.0 x16: 64 GB/s raw per direction (PCI-SIG, 32 GT/s x 16 lanes); ~55 GB/s measured-typical host-to-device "
       "(assumed; measure yours with nvbandwidth)"},
      {"peak tensor FLOP/s", fmt(peak_flops / 1e12, "TFLOP/s"), "H100 SXM dense BF16, NVIDIA H100 datasheet (989 TFLOPS)"},
      {"prefill MFU", fmt(prefill_mfu, ""), "assumed: prefill of long prompts commonly reaches 40-60% of peak"},
      {"HBM bandwidth", fmt(hbm_bytes_per_s / 1e12, "TB/s"), "H100 SXM HBM3, NVIDIA H100 datasheet (3.35 TB/s)"},
      {"decode HBM efficiency", fmt(decode_hbm_efficiency, ""),
       "assumed: a decode step reads the weights and the KV at this fraction of peak bandwidth"},
      {"prefill FLOPs per token and layer", fmt(2.0 * model.params / model.layers, "FLOP") + " + attention",
       "2 x parameters / layers (embeddings spread over the layers) + 2 x n x Hq x d per token (causal QK and PV)"},
      {"TTFT SLO", fmt(ttft_slo_s, "s"), "our choice (interactive chat)"},
      {"TPOT SLO", fmt(tpot_slo_s, "s"), "our choice (10 tokens/s, faster than reading speed)"},
      {"min resident layers (layer-wise)", std::to_string(kMinResidentLayers),
       "ours: one layer computing while the previous one is offloaded"},
  };
}

void LayerKvParams::validate() const {
  require(gpu_kv_bytes > 0 && std::isfinite(gpu_kv_bytes), "GPU KV capacity must be a finite number of bytes > 0");
  require(page_size >= 1, "page size must be >= 1");
  require(model.kv_bytes_per_token_layer() > 0, "the model's KV bytes per token must be > 0");
  require(gpu_kv_bytes / (static_cast<double>(page_size) * model.kv_bytes_per_token_layer()) <= kMaxLayerBlocks,
          "GPU KV capacity of " + fmt(gpu_kv_bytes / (1 << 30), "GiB") +
              " is past the 2^53 layer-blocks the simulation counts");
  const auto finite_positive = [](double v) { return v > 0 && std::isfinite(v); };
  require(finite_positive(pcie_bytes_per_s), "PCIe bandwidth must be a finite number > 0");
  require(finite_positive(peak_flops) && prefill_mfu > 0 && prefill_mfu <= 1,
          "peak FLOP/s must be a finite number > 0 and MFU in (0, 1]");
  require(finite_positive(hbm_bytes_per_s) && decode_hbm_efficiency > 0 && decode_hbm_efficiency <= 1,
          "HBM bandwidth must be a finite number > 0 and its efficiency in (0, 1]");
  require(finite_positive(ttft_slo_s) && finite_positive(tpot_slo_s), "SLOs must be finite numbers of seconds > 0");
  require(model.layers >= kMinResidentLayers, "the model needs at least 2 layers");
}

// [time model]
double LayerKvParams::prefill_layer_seconds(int64_t tokens) const {
  const double n = static_cast<double>(tokens);
  const double linear = 2.0 * model.params / model.layers * n;
  const double attention = 2.0 * n * n * model.q_heads * model.head_dim;  // causal: half of 2 matmuls x 2 flop
  return (linear + attention) / (peak_flops * prefill_mfu);
}

double LayerKvParams::decode_gpu_seconds(int64_t gpu_kv_token_layers) const {
  const double bytes = 2.0 * model.params + static_cast<double>(gpu_kv_token_layers) * model.kv_bytes_per_token_layer();
  return bytes / (hbm_bytes_per_s * decode_hbm_efficiency);
}

double LayerKvParams::pcie_seconds(int64_t token_layers) const {
  return static_cast<double>(token_layers) * model.kv_bytes_per_token_layer() / pcie_bytes_per_s;
}
// [time model]

int64_t LayerKvParams::layer_blocks() const {
  return static_cast<int64_t>(gpu_kv_bytes / (static_cast<double>(page_size) * model.kv_bytes_per_token_layer()));
}

std::string layer_policy_name(LayerPolicy p) { return p == LayerPolicy::request_wise ? "request-wise" : "layer-wise"; }

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

Trace with_rate(const Trace& trace, double rate) {
  require(rate > 0 && std::isfinite(rate),
          "arrival rate must be a finite number > 0 requests/s (got " + fmt(rate, "requests/s") + ")");
  const double last = trace.requests.back().arrival;
  require(last > 0, "the trace's requests all arrive at t = 0: it has no rate to scale (generate it with rate > 0)");
  const double factor = static_cast<double>(trace.requests.size()) / last / rate;
  require(std::isfinite(factor), "the trace's arrivals span " + fmt(last, "s") + ": too short to scale to " +
                                     fmt(rate, "requests/s"));
  Trace t = trace;
  for (TraceRequest& r : t.requests) r.arrival *= factor;
  return t;
}

namespace {

struct Seq {
  double arrival = 0;
  int64_t prompt = 0;
  int32_t output = 0;
  int32_t generated = 0;
  int64_t len = 0;         ///< KV tokens held
  int gpu_layers = 0;      ///< layers 0..gpu_layers-1 on the GPU, the rest on the host
  double first = -1, finish = -1;
};

/// The simulation state and its steps (see layerkv.hpp for the rules).
class LayerSim {
 public:
  LayerSim(const Trace& trace, const LayerKvParams& p, LayerPolicy policy) : p_(p), policy_(policy) {
    for (const TraceRequest& r : trace.requests)
      for (int k = 0; k < r.samples; ++k)
        seqs_.push_back({r.arrival, static_cast<int64_t>(r.prompt.size()), r.output_tokens, 0, 0, 0, -1, -1});
    free_ = p.layer_blocks();
    L_ = p.model.layers;
  }

  LayerKvResult run() {
    LayerKvResult res;
    res.policy = policy_;
    res.sequences = static_cast<int64_t>(seqs_.size());
    size_t next = 0;
    while (next < seqs_.size() || !waiting_.empty() || !running_.empty()) {
      if (waiting_.empty() && running_.empty()) now_ = std::max(now_, seqs_[next].arrival);
      while (next < seqs_.size() && seqs_[next].arrival <= now_) waiting_.push_back(next++);
      iteration(res);
      ++res.iterations;
    }
    res.makespan_s = now_;
    for (const Seq& s : seqs_) {
      const double ttft = s.first - s.arrival;
      const double tpot = (s.finish - s.first) / s.output;
      res.ttft.push_back(ttft);
      res.tpot.push_back(tpot);
      res.output_tokens += s.output;
      res.slo_violations += ttft > p_.ttft_slo_s || tpot > p_.tpot_slo_s;
    }
    return res;
  }

 private:
  int64_t blocks(int64_t tokens) const { return (tokens + p_.page_size - 1) / p_.page_size; }
  int64_t gpu_blocks(const Seq& s) const { return s.gpu_layers * blocks(s.len); }

  void retire() {
    std::vector<size_t> still;
    for (size_t i : running_) {
      if (seqs_[i].generated < seqs_[i].output) {
        still.push_back(i);
      } else {
        free_ += gpu_blocks(seqs_[i]);
      }
    }
    running_.swap(still);
  }

  /// Request-wise: preempt the most recently admitted sequence by recompute.
  size_t preempt_last(LayerKvResult& res) {
    const size_t v = running_.back();
    running_.pop_back();
    free_ += gpu_blocks(seqs_[v]);
    seqs_[v].len = 0;
    seqs_[v].gpu_layers = 0;
    waiting_.push_front(v);
    ++res.preemptions;
    return v;
  }

  /// Layer-wise: the most recently admitted sequence with a GPU layer moves one to the host.
  void demote_one(LayerKvResult& res) {
    for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
      Seq& s = seqs_[*it];
      if (s.gpu_layers == 0) continue;
      --s.gpu_layers;
      free_ += blocks(s.len);
      pcie_token_layers_ += s.len;
      ++res.offloaded_layers;
      return;
    }
  }

  /// Every running sequence appends one token; returns whether someone was preempted.
  bool decode(LayerKvResult& res) {
    bool preempted = false;
    for (size_t k = 0; k < running_.size(); ++k) {
      const size_t i = running_[k];
      Seq& s = seqs_[i];
      bool stays = true;
      while (blocks(s.len + 1) > blocks(s.len) && free_ < s.gpu_layers) {
        if (policy_ == LayerPolicy::layer_wise) {
          demote_one(res);
          continue;
        }
        preempted = true;
        if (preempt_last(res) == i) {
          stays = false;
          break;
        }
      }
      if (!stays) break;
      if (blocks(s.len + 1) > blocks(s.len)) free_ -= s.gpu_layers;
      ++s.len;
      ++s.generated;
      decoded_.push_back(i);
    }
    return preempted;
  }

  /// Whether the running batch plus one sequence of `len` tokens with `gpu_layers` layers on
  /// the GPU keeps its decode step hidden-transfer (PCIe time <= GPU time) and within the TPOT SLO.
  bool step_within_slo(int64_t len, int gpu_layers) const {
    int64_t gpu = static_cast<int64_t>(gpu_layers) * len, host = static_cast<int64_t>(L_ - gpu_layers) * len;
    for (size_t i : running_) {
      gpu += static_cast<int64_t>(seqs_[i].gpu_layers) * seqs_[i].len;
      host += static_cast<int64_t>(L_ - seqs_[i].gpu_layers) * seqs_[i].len;
    }
    const double t_gpu = p_.decode_gpu_seconds(gpu), t_pcie = p_.pcie_seconds(host);
    return t_pcie <= t_gpu && t_gpu <= p_.tpot_slo_s;
  }

  // [admission]
  /// Admits waiting sequences first come first served; returns the prefill seconds.
  double admit(LayerKvResult& res) {
    double seconds = 0;
    while (!waiting_.empty()) {
      Seq& s = seqs_[waiting_.front()];
      const int64_t tokens = s.prompt + s.generated;  // recompute after a preemption
      const int64_t per_layer = blocks(tokens);
      int layers = L_;
      if (policy_ == LayerPolicy::request_wise) {
        if (free_ < per_layer * L_) break;
      } else {
        layers = static_cast<int>(std::min<int64_t>(L_, free_ / per_layer));
        if (layers < kMinResidentLayers) break;
        if (!running_.empty() && !step_within_slo(tokens, layers)) break;  // SLO-aware
      }
      const double compute = L_ * p_.prefill_layer_seconds(tokens);
      seconds += std::max(compute, p_.pcie_seconds(static_cast<int64_t>(L_ - layers) * tokens));
      res.offloaded_layers += L_ - layers;
      s.len = tokens;
      s.gpu_layers = layers;
      free_ -= per_layer * layers;
      running_.push_back(waiting_.front());
      admitted_.push_back(waiting_.front());
      waiting_.pop_front();
    }
    return seconds;
  }
  // [admission]

  /// Brings host layers back, oldest sequence first, within `token_layers` of PCIe budget.
  void promote(int64_t token_layers) {
    for (size_t i : running_) {
      Seq& s = seqs_[i];
      while (s.gpu_layers < L_ && s.len <= token_layers && free_ >= blocks(s.len)) {
        ++s.gpu_layers;
        free_ -= blocks(s.len);
        token_layers -= s.len;
      }
    }
  }

  void iteration(LayerKvResult& res) {
    decoded_.clear();
    admitted_.clear();
    pcie_token_layers_ = 0;
    retire();
    const bool preempted = decode(res);
    int64_t gpu = 0, host = pcie_token_layers_;
    for (size_t i : decoded_) {
      gpu += static_cast<int64_t>(seqs_[i].gpu_layers) * seqs_[i].len;
      host += static_cast<int64_t>(L_ - seqs_[i].gpu_layers) * seqs_[i].len;
    }
    const double t_gpu = decoded_.empty() ? 0.0 : p_.decode_gpu_seconds(gpu);
    const double t_pcie = p_.pcie_seconds(host);
    const double prefill = preempted ? 0.0 : admit(res);
    now_ += prefill + std::max(t_gpu, t_pcie);
    for (size_t i : admitted_)
      if (seqs_[i].first < 0) seqs_[i].first = now_;
    for (size_t i : decoded_)
      if (seqs_[i].generated == seqs_[i].output) seqs_[i].finish = now_;
    if (policy_ == LayerPolicy::layer_wise && t_gpu > t_pcie)
      promote(static_cast<int64_t>((t_gpu - t_pcie) * p_.pcie_bytes_per_s /
                                   static_cast<double>(p_.model.kv_bytes_per_token_layer())));
  }

  const LayerKvParams& p_;
  LayerPolicy policy_;
  std::vector<Seq> seqs_;
  std::deque<size_t> waiting_;
  std::vector<size_t> running_, decoded_, admitted_;
  int64_t free_ = 0;
  int L_ = 0;
  int64_t pcie_token_layers_ = 0;
  double now_ = 0;
};

}  // namespace

void check_layerkv_fits(const Trace& trace, const LayerKvParams& params, LayerPolicy policy) {
  params.validate();
  const int64_t per_layer = params.layer_blocks();
  const int layers = policy == LayerPolicy::request_wise ? params.model.layers : kMinResidentLayers;
  require(per_layer >= layers, "GPU KV cache of " + fmt(params.gpu_kv_bytes / (1 << 30), "GiB") +
                                   " is too small for one block in " + std::to_string(layers) + " layers");
  const std::vector<int64_t> prompts = trace.prompt_lengths();
  for (size_t r = 0; r < trace.requests.size(); ++r) {
    const int64_t tokens = prompts[r] + trace.requests[r].output_tokens;
    const int64_t need = (tokens + params.page_size - 1) / params.page_size * layers;
    require(need <= per_layer, "request " + std::to_string(r) + " needs " + std::to_string(need) + " layer-blocks (" +
                                   layer_policy_name(policy) + "), the GPU KV cache holds " + std::to_string(per_layer));
  }
}

LayerKvResult simulate_layerkv(const Trace& trace, const LayerKvParams& params, LayerPolicy policy) {
  check_layerkv_fits(trace, params, policy);
  LayerKvResult res = LayerSim(trace, params, policy).run();
  return res;
}

}  // namespace patlab::serving
