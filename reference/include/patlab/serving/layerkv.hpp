/// @file layerkv.hpp
/// @brief LayerKV as a simulation: request-wise vs layer-wise KV allocation with offload to host
/// memory, a per-layer prefill time model, a memory-bound decode time model and SLO-aware
/// admission. Every parameter has a stated source (LayerKvParams::table()).
///
/// Time advances one *iteration* at a time: the prompts admitted in it are prefilled (one after
/// another), then every running sequence decodes one token. Requests with n > 1 are simulated
/// as n sequences arriving together (no sharing: the study is about allocation, not caching).
///
/// - **request-wise** (vLLM): a sequence is admitted when blocks for its prompt + 1 token exist
///   in *every* layer; all its KV stays on the GPU; when a decode step needs a block and none is
///   free, the most recently admitted sequence is preempted by recompute (Scheduler semantics).
/// - **layer-wise** (LayerKV, as patlab defines it): a sequence is admitted when its prompt fits
///   in at least kMinResidentLayers layers; it keeps as many layers on the GPU as fit and the
///   prefill offloads the rest to host memory over PCIe (overlapped with compute: the prefill
///   takes the longer of the two). Each decode step streams the host-resident layers' KV over
///   PCIe, prefetched a layer ahead (the step takes the longer of GPU time and PCIe time). When
///   a decode step needs blocks, the most recently admitted sequence moves a layer to the host
///   instead of being preempted; spare PCIe time of a step brings layers back, oldest first.
///   *SLO-aware admission*: a waiting sequence is admitted only if, with it, the predicted decode
///   step still hides its PCIe streaming under the GPU time (PCIe time <= GPU time, so offload
///   does not slow decoding) and stays within the TPOT SLO (always when nothing runs).
/// The paper's exact policies are not public in this detail; these rules are ours.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "patlab/serving/model.hpp"
#include "patlab/serving/trace.hpp"

namespace patlab::serving {

/// Fewest layers a layer-wise admission must hold on the GPU (one computing, one offloading).
inline constexpr int kMinResidentLayers = 2;
/// Most layer-blocks of GPU KV capacity (LayerKvParams::layer_blocks()): 2^53, exact as a double.
inline constexpr double kMaxLayerBlocks = 9007199254740992.0;

/// Parameters of the time model and the SLOs.
struct LayerKvParams {
  ModelPreset model = model_presets().front();  ///< the model timed: shape and parameters (default: Llama-3-8B)
  double gpu_kv_bytes = 8.0 * (1 << 30);  ///< GPU memory given to the KV cache
  int page_size = 16;                     ///< tokens per block of one layer (vLLM's default)
  double pcie_bytes_per_s = 55e9;         ///< host <-> device, one direction
  double peak_flops = 989e12;             ///< dense BF16 tensor-core peak (H100 SXM)
  double prefill_mfu = 0.5;               ///< fraction of peak a prefill reaches
  double hbm_bytes_per_s = 3.35e12;       ///< HBM3 bandwidth (H100 SXM)
  double decode_hbm_efficiency = 0.8;     ///< fraction of HBM bandwidth a decode step reaches
  double ttft_slo_s = 1.0;                ///< time-to-first-token objective
  double tpot_slo_s = 0.1;                ///< time-per-output-token objective

  /// Every parameter as (name, value, source) rows for the run table.
  std::vector<std::vector<std::string>> table() const;
  /// Throws Error(usage) naming the first value out of range (a capacity past kMaxLayerBlocks too).
  void validate() const;
  /// Seconds to prefill `tokens` new tokens of one sequence in one layer (FLOPs / (peak x MFU)).
  double prefill_layer_seconds(int64_t tokens) const;
  /// Seconds of a decode step reading the weights and `gpu_kv_tokens` token-layers of KV.
  double decode_gpu_seconds(int64_t gpu_kv_token_layers) const;
  /// Seconds to move `token_layers` token-layers of KV over PCIe.
  double pcie_seconds(int64_t token_layers) const;
  /// GPU KV capacity in layer-blocks (page tokens of one layer).
  int64_t layer_blocks() const;
};

/// Allocation policy.
enum class LayerPolicy { request_wise, layer_wise };
/// Short name: "request-wise" or "layer-wise".
std::string layer_policy_name(LayerPolicy p);

/// The outcome of one policy at one load.
struct LayerKvResult {
  LayerPolicy policy = LayerPolicy::request_wise;  ///< the policy simulated
  double rate = 0;               ///< mean arrivals per second of the (scaled) trace
  int64_t sequences = 0;         ///< sequences simulated: the trace's samples (sum of n)
  std::vector<double> ttft;      ///< per sequence, seconds
  std::vector<double> tpot;      ///< per sequence with > 1 output token, seconds
  int64_t slo_violations = 0;    ///< sequences missing the TTFT or the TPOT objective
  int64_t preemptions = 0;       ///< request-wise: recomputes
  int64_t offloaded_layers = 0;  ///< layer-wise: layers moved to the host (prefill and decode)
  double makespan_s = 0;         ///< seconds from t = 0 until the last iteration ends
  int64_t output_tokens = 0;     ///< output tokens of all sequences
  int64_t iterations = 0;        ///< iterations run (idle time is skipped, not iterated)
};

/// The q-quantile (0..1) of `v` (nearest rank); 0 for an empty vector.
double quantile(std::vector<double> v, double q);

/// Throws Error(usage) on bad parameters, or if the GPU cache cannot hold one block in the layers
/// `policy` needs or a sequence cannot fit it alone (request-wise: all layers; layer-wise:
/// kMinResidentLayers layers). Works before the trace's prompts are expanded (a TraceCheck).
void check_layerkv_fits(const Trace& trace, const LayerKvParams& params, LayerPolicy policy);

/// Simulates `trace` under `policy`. Throws Error(usage) as check_layerkv_fits() does.
LayerKvResult simulate_layerkv(const Trace& trace, const LayerKvParams& params, LayerPolicy policy);

/// `trace` with arrival times scaled so that its mean arrival rate is `rate` per second. Throws
/// Error(usage) unless `rate` is a finite number > 0 and the trace's arrivals span a time that
/// scales to it (not all at t = 0, not so short that the scale factor overflows).
Trace with_rate(const Trace& trace, double rate);

}  // namespace patlab::serving
