// LayerKV's simulation: the time model's formulas, rate scaling, the capacity checks, and the
// comparison of request-wise and layer-wise allocation on a trace where memory is the limit.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "close_to.hpp"
#include "patlab/serving/layerkv.hpp"

using namespace patlab;
using namespace patlab::serving;

TEST_CASE("the time model follows its formulas", "[layerkv]") {
  LayerKvParams p;
  const ModelPreset& m = p.model;
  CHECK(m.name == "llama-3-8b");
  CHECK(m.kv_bytes_per_token_layer() == 4096);
  CHECK(m.kv_bytes_per_token() == 131072);
  // One token of one layer: 2 x params / layers FLOPs (+ 2 x Hq x d of attention) at peak x MFU.
  CHECK(close_to(p.prefill_layer_seconds(1),
        (2.0 * m.params / m.layers + 2.0 * m.q_heads * m.head_dim) / (p.peak_flops * p.prefill_mfu)));
  // Attention grows quadratically: 4x the tokens costs more than 4x.
  CHECK(p.prefill_layer_seconds(8192) > 4 * p.prefill_layer_seconds(2048));
  CHECK(close_to(p.decode_gpu_seconds(0), 2.0 * m.params / (p.hbm_bytes_per_s * p.decode_hbm_efficiency)));
  CHECK(close_to(p.pcie_seconds(1000), 1000.0 * 4096 / 55e9));
  CHECK(p.layer_blocks() == static_cast<int64_t>(8.0 * (1 << 30) / (16 * 4096)));
  for (const auto& row : p.table()) {
    INFO(row[0]);
    CHECK(row.size() == 3);
    CHECK_FALSE(row[2].empty());  // every parameter names its source
  }
  p.prefill_mfu = 1.5;
  require_error([&] { p.validate(); }, "MFU in (0, 1]");
  // A capacity whose layer-block count does not fit is refused, not cast to a negative count.
  p.prefill_mfu = 0.5;
  p.gpu_kv_bytes = 1e15 * (1 << 30);
  require_error([&] { p.validate(); }, "is past the 2^53 layer-blocks the simulation counts");
  p.gpu_kv_bytes = std::numeric_limits<double>::infinity();
  require_error([&] { p.validate(); }, "GPU KV capacity must be a finite number of bytes > 0");
  p.gpu_kv_bytes = 8.0 * (1 << 30);
  p.pcie_bytes_per_s = std::numeric_limits<double>::infinity();  // was taken as free transfers
  require_error([&] { p.validate(); }, "PCIe bandwidth must be a finite number > 0");
  p.pcie_bytes_per_s = 55e9;
  p.tpot_slo_s = std::numeric_limits<double>::infinity();
  require_error([&] { p.validate(); }, "SLOs must be finite numbers of seconds > 0");
}

TEST_CASE("quantiles and rate scaling", "[layerkv]") {
  CHECK(quantile({3, 1, 2, 4}, 0.5) == 2);
  CHECK(quantile({3, 1, 2, 4}, 0.99) == 4);
  CHECK(quantile({}, 0.5) == 0);
  const Trace t = resolve_trace("gen:requests=100,rate=4,seed=2");
  const Trace fast = with_rate(t, 8);
  CHECK(close_to(fast.requests.back().arrival, 100.0 / 8));
  require_error([] { with_rate(resolve_trace("gen:requests=5,rate=0"), 2); }, "all arrive at t = 0");
  require_error([&] { with_rate(t, std::numeric_limits<double>::infinity()); }, "must be a finite number > 0");
  Trace instant = t;  // arrivals spanning 5e-324 s: the scale factor overflows
  for (TraceRequest& r : instant.requests) r.arrival = std::numeric_limits<double>::denorm_min();
  require_error([&] { with_rate(instant, 2); }, "too short to scale");
}

namespace {
/// Long prompts and a small cache: memory, not compute, is what new requests wait for.
Trace long_prompts() { return resolve_trace("gen:requests=120,rate=2,prompt=3000,output=200,sigma=0.5,max=8192,seed=4"); }

LayerKvParams small_cache() {
  LayerKvParams p;
  p.gpu_kv_bytes = 4.0 * (1 << 30);  // 32k tokens of Llama-3-8B over all layers
  return p;
}
}  // namespace

TEST_CASE("request-wise vs layer-wise: every sequence is served; layer-wise cuts the TTFT tail", "[layerkv]") {
  const LayerKvParams p = small_cache();
  const Trace t = with_rate(long_prompts(), 3);
  const LayerKvResult rw = simulate_layerkv(t, p, LayerPolicy::request_wise);
  const LayerKvResult lw = simulate_layerkv(t, p, LayerPolicy::layer_wise);
  for (const LayerKvResult* r : {&rw, &lw}) {
    INFO(layer_policy_name(r->policy));
    REQUIRE(r->ttft.size() == 120);
    for (size_t i = 0; i < r->ttft.size(); ++i) {
      REQUIRE(std::isfinite(r->ttft[i]));
      REQUIRE(r->ttft[i] > 0);
      REQUIRE(r->tpot[i] > 0);
    }
    // No sequence can beat its own prefill plus one decode step.
    CHECK(quantile(r->ttft, 0.0) >= p.model.layers * p.prefill_layer_seconds(1));
  }
  CHECK(rw.offloaded_layers == 0);
  CHECK(lw.preemptions == 0);
  CHECK(lw.offloaded_layers > 0);
  WARN("TTFT p99 request-wise " << quantile(rw.ttft, 0.99) << " s, layer-wise " << quantile(lw.ttft, 0.99) << " s");
  CHECK(quantile(lw.ttft, 0.99) < quantile(rw.ttft, 0.99));
}

TEST_CASE("layerkv: a request that cannot fit is refused before simulating", "[layerkv]") {
  LayerKvParams p;
  p.gpu_kv_bytes = 64.0 * 1024 * 1024;  // 512 Llama-3-8B tokens over all layers
  const Trace t = resolve_trace("gen:requests=4,rate=1,prompt=2000,output=10,sigma=0,max=4096");
  require_error([&] { simulate_layerkv(t, p, LayerPolicy::request_wise); }, "request 0 needs");
  p.gpu_kv_bytes = 1000;
  require_error([&] { simulate_layerkv(t, p, LayerPolicy::layer_wise); }, "too small for one block");
}
