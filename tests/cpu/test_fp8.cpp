// The fp8 e4m3 KV cache on the CPU: the codec against an independent decode of all 256 codes,
// rounding and saturation; the workload's per-tensor scales and stored values; the bytes the
// traffic model charges; the tolerance rows; the emulation's error on fp8 workloads.
#include <cmath>
#include <limits>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/stage_traffic.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/stages.hpp"
#include "patlab/truth/check.hpp"
#include "patlab/truth/dtype.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/truth/verify.hpp"

using namespace patlab;

namespace {

constexpr uint64_t kSeed = 7;

/// The positive finite e4m3 values in code order, built by counting: codes 0-7 step by the
/// subnormal step 2^-9, then every 8 codes the step doubles. Independent of the decoder's formula.
std::vector<double> counted_positive_values() {
  std::vector<double> v;
  double x = 0, step = std::ldexp(1.0, -9);
  for (int code = 0; code < 0x7F; ++code) {
    v.push_back(x);
    x += step;
    if (code >= 8 && (code + 1) % 8 == 0) step *= 2;
  }
  return v;
}

/// One fp8 ulp at |x| (the spacing of e4m3 values in x's binade; the subnormal step below 2^-6).
double fp8_ulp(double x) {
  const double a = std::fabs(x);
  if (a < std::ldexp(1.0, -6)) return std::ldexp(1.0, -9);
  return std::ldexp(1.0, std::ilogb(a) - 3);
}

}  // namespace

TEST_CASE("fp8 e4m3 decode: all 256 codes against values built by counting") {
  const std::vector<double> pos = counted_positive_values();
  REQUIRE(pos.size() == 0x7F);
  CHECK(pos[0x7E] == 448.0);
  CHECK(pos[0x08] == std::ldexp(1.0, -6));  // the first normal
  CHECK(pos[0x01] == std::ldexp(1.0, -9));  // the smallest subnormal
  for (int c = 0; c < 256; ++c) {
    INFO("code " << c);
    const float got = fp8_e4m3_to_float(static_cast<uint8_t>(c));
    if ((c & 0x7F) == 0x7F) {
      CHECK(std::isnan(got));
      continue;
    }
    const double want = (c & 0x80) ? -pos[static_cast<size_t>(c & 0x7F)] : pos[static_cast<size_t>(c & 0x7F)];
    CHECK(static_cast<double>(got) == want);
    CHECK(std::signbit(got) == ((c & 0x80) != 0));
    CHECK(fp8_e4m3_value_table()[c] == want);
  }
}

TEST_CASE("fp8 e4m3 encode: round trip of every code, ties to even, saturation, NaN") {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    INFO("code " << c);
    CHECK(float_to_fp8_e4m3(fp8_e4m3_to_float(static_cast<uint8_t>(c))) == c);
  }
  // Ties between neighbours go to the even code (mantissa bit 0 clear), in the subnormals and
  // several binades; a hair off a tie goes to the nearer one.
  for (int c = 0; c + 1 < 0x7E; ++c) {
    INFO("between codes " << c << " and " << c + 1);
    const double lo = fp8_e4m3_to_float(static_cast<uint8_t>(c)), hi = fp8_e4m3_to_float(static_cast<uint8_t>(c + 1));
    const double mid = (lo + hi) / 2;
    const int even = c % 2 == 0 ? c : c + 1;
    CHECK(float_to_fp8_e4m3(static_cast<float>(mid)) == even);
    CHECK(float_to_fp8_e4m3(static_cast<float>(-mid)) == (even | 0x80));
    CHECK(float_to_fp8_e4m3(std::nextafter(static_cast<float>(mid), 0.0f)) == c);
    CHECK(float_to_fp8_e4m3(std::nextafter(static_cast<float>(mid), 1000.0f)) == c + 1);
  }
  // Saturation: past 448 (even past the halfway point 464 to the next binade) to +-448.
  for (float x : {448.0f, 449.0f, 464.0f, 500.0f, 1e6f, std::numeric_limits<float>::infinity()}) {
    INFO(x);
    CHECK(float_to_fp8_e4m3(x) == 0x7E);
    CHECK(float_to_fp8_e4m3(-x) == 0xFE);
  }
  CHECK(float_to_fp8_e4m3(std::numeric_limits<float>::quiet_NaN()) == kFp8E4m3NaN);
  CHECK(float_to_fp8_e4m3(0.0f) == 0x00);
  CHECK(float_to_fp8_e4m3(-0.0f) == 0x80);
  CHECK(float_to_fp8_e4m3(std::ldexp(1.0f, -11)) == 0x00);  // below half the smallest subnormal
  CHECK(float_to_fp8_e4m3(std::ldexp(3.0f, -11)) == 0x01);  // 0.75 of it rounds up
}

TEST_CASE("fp8 workload: vLLM's per-tensor scales, values within an fp8 ulp of the draws") {
  INFO("seed " << kSeed);
  const TokenTree t = parse_tree_spec("1,4_100,37");
  for (DType dt : {DType::fp16, DType::bf16}) {
    const Workload w16 = make_workload(t, shape_of(8, 2, 64, 16, dt), kSeed, true);
    const Workload w8 = make_workload(t, shape_of(8, 2, 64, 16, dt, KvDType::fp8_e4m3), kSeed, true);
    REQUIRE(w8.layout.block_tables == w16.layout.block_tables);
    CHECK(w8.k_pool.size() * 2 == w16.k_pool.size());  // one byte per element
    CHECK(w8.q == w16.q);
    CHECK(w16.k_scale == 1.0f);
    // The 16-bit pools hold the draws rounded to 16 bits, so their largest |value| is amax to
    // within 16-bit rounding; the scale is amax / 448 of the unrounded draws.
    double k_amax = 0, v_amax = 0;
    for (size_t i = 0; i < w16.kv_elements(); ++i) {
      const double k = w16.kv_value(KvTensor::k, i), v = w16.kv_value(KvTensor::v, i);
      if (std::isnan(k)) continue;
      k_amax = std::max(k_amax, std::fabs(k));
      v_amax = std::max(v_amax, std::fabs(v));
    }
    const double u16 = dt == DType::fp16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    CHECK(std::fabs(w8.k_scale * 448.0 - k_amax) <= u16 * k_amax);
    CHECK(std::fabs(w8.v_scale * 448.0 - v_amax) <= u16 * v_amax);
    CHECK(w8.k_scale != w8.v_scale);
    int64_t nan_slots = 0, at_max = 0;
    for (size_t i = 0; i < w8.kv_elements(); ++i) {
      for (KvTensor kt : {KvTensor::k, KvTensor::v}) {
        const double x16 = w16.kv_value(kt, i), x8 = w8.kv_value(kt, i);
        if (std::isnan(x16)) {
          REQUIRE(std::isnan(x8));  // pool slots without a token stay NaN
          REQUIRE(w8.kv_code(kt, i) == kFp8E4m3NaN);
          ++nan_slots;
          continue;
        }
        const double scale = kt == KvTensor::k ? w8.k_scale : w8.v_scale;
        // stored = e4m3(x / scale): within half an fp8 ulp of the draw (plus the 16-bit
        // rounding of the reference x16), never saturated past 448.
        REQUIRE(std::fabs(x8 - x16) <= (0.5 * fp8_ulp(x16 / scale) + u16 * std::fabs(x16 / scale)) * scale);
        REQUIRE(x8 == static_cast<double>(fp8_e4m3_to_float(static_cast<uint8_t>(w8.kv_code(kt, i)))) * scale);
        at_max += (w8.kv_code(kt, i) & 0x7F) == 0x7E;
      }
    }
    CHECK(nan_slots > 0);
    CHECK(at_max >= 2);  // the largest |draw| of each pool (and draws within half an ulp of it) map to +-448
  }
}

TEST_CASE("fp8 KV cache: the traffic model charges one byte per K/V element") {
  Shape s16 = shape_of(32, 8, 128, 16);
  Shape s8 = shape_of(32, 8, 128, 16, DType::fp16, KvDType::fp8_e4m3);
  CHECK(s16.kv_bytes_per_token() == 4096);
  CHECK(s8.kv_bytes_per_token() == 2048);
  CHECK(s8.describe() == "32/8 heads, d=128, page 16, fp16, kv fp8_e4m3");
  const TokenTree t = parse_tree_spec("1,64_4096,256");
  const PagedLayout L16 = build_layout(t, s16, true, 1), L8 = build_layout(t, s8, true, 1);
  CHECK(L8.unique_kv_bytes() * 2 == L16.unique_kv_bytes());
  CHECK(L8.pool_bytes() * 2 == L16.pool_bytes());
  CHECK(L8.q_and_out_bytes() == L16.q_and_out_bytes());  // q and the output stay 16-bit
  CHECK(traffic::per_request_bytes(L8) - L8.q_and_out_bytes() ==
        (traffic::per_request_bytes(L16) - L16.q_and_out_bytes()) / 2);
  // Stages 4-7: the KV reads halve; q, the output and the partials (16-bit o, fp32 lse) do not,
  // so the whole is a little over half (stage 7 splits, and pays its partials).
  const StageTrafficOptions o;
  for (const char* slug : {"packed", "multitile", "multistream", "pat"}) {
    INFO(slug);
    const double ratio = static_cast<double>(stage_traffic(slug, L8, o).bytes) / stage_traffic(slug, L16, o).bytes;
    CHECK(ratio > 0.5);
    CHECK(ratio < 0.6);
  }
  // The pack kernel's shared memory: the bytes of a 16-bit ring, kKvStages fp8 stages and a
  // converted 16-bit K and V tile, or (one warp row: fp8 converted in registers) twice the fp8
  // stages, three at d = 256, so that the 16x64 tile fits two CTAs on an SM there. The planner's
  // tiles fit alike for both caches.
  for (int d : {64, 128, 256})
    for (int m : {16, 32, 64})
      for (int n : {16, 32, 64, 128}) {
        INFO("d " << d << " m " << m << " n " << n);
        const bool regs = pack_fp8_in_registers(m, 1);
        CHECK(regs == (m == 16));
        CHECK_FALSE(pack_fp8_in_registers(m, 2));
        CHECK(pack_kv_stages(d, m, 2) == kKvStages);
        CHECK(pack_kv_stages(d, m, 1) == (!regs ? kKvStages : d == 256 ? 3 : 4));
        const int fp8_ring = regs ? 2 * pack_kv_stages(d, m, 1) * n * d
                                  : 2 * pack_kv_stages(d, m, 1) * n * d + 2 * n * d * 2;
        CHECK(pack_smem_bytes(d, m, n, 1) == m * d * 2 + fp8_ring);
        CHECK(pack_smem_bytes(d, m, n, 2) == m * d * 2 + 2 * kKvStages * n * d * 2);
        if (d < 256 || !regs) {
          CHECK(pack_smem_bytes(d, m, n, 1) == pack_smem_bytes(d, m, n, 2));
          CHECK(estimate_ctas_per_sm(d, m, n, 1) == estimate_ctas_per_sm(d, m, n, 2));
        } else {
          CHECK(pack_smem_bytes(d, m, n, 1) * 4 == pack_smem_bytes(d, m, n, 2) * 3 + m * d * 2);
          CHECK(estimate_ctas_per_sm(d, m, n, 1) >= estimate_ctas_per_sm(d, m, n, 2));
        }
        CHECK(pack_tile_fits(d, m, n, 1) == pack_tile_fits(d, m, n, 2));
      }
  // The case the rule is for: Gemma-2's d = 256, 16x64 tile, one CTA per SM with 16 bits, two with fp8.
  CHECK(estimate_ctas_per_sm(256, 16, 64, 2) == 1);
  CHECK(estimate_ctas_per_sm(256, 16, 64, 1) == 2);
}

TEST_CASE("tolerance table: one row per (q dtype, KV dtype)") {
  for (DType q : {DType::fp16, DType::bf16}) {
    const Tolerance& same = tolerance(q, KvDType::same);
    const Tolerance& fp8 = tolerance(q, KvDType::fp8_e4m3);
    CHECK(&same != &fp8);
    // The oracle works on the dequantised values: fp8's rounding is not the kernels' error, the
    // 16-bit roundings of P and the output are, so the rows match (check.cpp says why).
    CHECK(fp8.atol == same.atol);
    CHECK(fp8.rtol == same.rtol);
    CHECK(fp8.row_floor == same.row_floor);
  }
  CHECK(tolerance(DType::fp16, KvDType::fp8_e4m3).atol < tolerance(DType::bf16, KvDType::fp8_e4m3).atol);
}

TEST_CASE("emulation on fp8 workloads: a small, nonzero error that the check passes") {
  INFO("seed " << kSeed);
  for (DType dt : {DType::fp16, DType::bf16})
    for (DataKind data : {DataKind::flat, DataKind::peaked}) {
      CAPTURE(dtype_name(dt), data_kind_name(data));
      const Workload w = make_workload(parse_tree_spec("2,6_150,41"), shape_of(16, 4, 128, 16, dt, KvDType::fp8_e4m3),
                                       kSeed, true, data);
      const Reference ref = make_reference(w);
      CHECK(ref.kv_dtype == KvDType::fp8_e4m3);
      const double u = dt == DType::fp16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
      CHECK(ref.emulated_rel_l2 > u / 100);
      CHECK(ref.emulated_rel_l2 < u);
      const std::vector<float> emu(ref.emulated.o.begin(), ref.emulated.o.end());
      CHECK(check_output(emu, ref, dt).pass);
      // The check can fail: the same output computed without v_scale is far off.
      const float vs = w.v_scale;
      std::vector<float> unscaled = emu;
      for (float& x : unscaled) x /= vs;
      CHECK_FALSE(check_output(unscaled, ref, dt).pass);
    }
}
