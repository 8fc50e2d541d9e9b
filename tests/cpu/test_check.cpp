// How outputs are judged: check_output() passes the emulation (the kernels' arithmetic run on the
// CPU) and fails NaN, unwritten and single wrong elements, and outputs whose L2 error exceeds the
// emulation's by more than kEmulationFactor. It also measures the emulation's error per dtype and
// requires the tolerance table to leave at least 2x headroom over it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "patlab/check.hpp"
#include "patlab/error.hpp"
#include "patlab/oracle.hpp"

using namespace patlab;

namespace {

/// |a - b| relative to the larger magnitude (Catch's Approx differs between Catch2 2 and 3).
double rel_diff(double a, double b) { return std::fabs(a - b) / std::max({std::fabs(a), std::fabs(b), 1e-300}); }

constexpr uint64_t kSeed = 7;
/// The tolerance table must allow at least this multiple of the emulation's worst element error.
constexpr double kRequiredHeadroom = 2.0;

struct Case {
  const char* tree;
  int hq, hkv, d, page;
  int seeds;  ///< measured over seeds kSeed .. kSeed + seeds - 1
};

/// Workloads the tolerance is measured on: long and short rows, small and large groups. The
/// shortest rows (two keys) are the worst case, since rounding errors of P cannot average out.
const Case kCases[] = {
    {"1,4_100,37", 8, 2, 64, 16, 1},      // the tiny preset
    {"1,8_300,45", 32, 8, 128, 16, 1},    // Llama-3-8B heads
    {"1,4_2048,64", 32, 8, 128, 32, 1},   // a longer shared prefix
    {"2_8000", 16, 1, 64, 64, 1},         // long rows: 8000-term float32 sums
    {"4,16_20,3", 16, 16, 128, 16, 4},    // short rows, MHA
    {"8,64_2,1", 8, 8, 64, 16, 30},       // two keys per row
};

Workload make(const Case& c, DType dtype, uint64_t seed = kSeed) {
  Shape s;
  s.num_q_heads = c.hq;
  s.num_kv_heads = c.hkv;
  s.head_dim = c.d;
  s.page_size = c.page;
  s.dtype = dtype;
  return make_workload(parse_tree_spec(c.tree), s, seed, true);
}

std::vector<float> as_floats(const AttentionResult& r) { return std::vector<float>(r.o.begin(), r.o.end()); }

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

}  // namespace

TEST_CASE("the tolerance table leaves >= 2x headroom over the emulation's error") {
  std::cout << "emulated_attention vs the float64 oracle (seeds from " << kSeed << "; worst over the seeds):\n"
            << "dtype  workload                     seeds  max|err|   rel L2     worst err/(atol+rtol|ref|)\n";
  for (DType dtype : {DType::fp16, DType::bf16}) {
    const Tolerance& tol = tolerance(dtype);
    double worst_use = 0, worst_l2 = 0, worst_abs = 0;
    for (const Case& c : kCases) {
      double max_abs = 0, use = 0, l2 = 0;
      for (int i = 0; i < c.seeds; ++i) {
        const uint64_t seed = kSeed + static_cast<uint64_t>(i);
        const Workload w = make(c, dtype, seed);
        const AttentionResult naive = naive_attention(w);
        const AttentionResult emu = emulated_attention(w);
        for (size_t j = 0; j < naive.o.size(); ++j) {
          const double e = std::fabs(emu.o[j] - naive.o[j]);
          max_abs = std::max(max_abs, e);
          use = std::max(use, e / (tol.atol + tol.rtol * std::fabs(naive.o[j])));
        }
        const double seed_l2 = l2_error(emu, naive);
        l2 = std::max(l2, seed_l2);
        // The emulation itself passes its own check.
        const CheckResult r = check_output(as_floats(emu), naive, dtype, seed_l2);
        CAPTURE(c.tree, seed, r.summary());
        CHECK(r.pass);
      }
      char line[200];
      std::snprintf(line, sizeof line, "%-6s %-28s %5d  %-10s %-10s %.3f\n", dtype_name(dtype),
                    (std::string(c.tree) + " " + std::to_string(c.hq) + "/" + std::to_string(c.hkv) + " d" +
                     std::to_string(c.d))
                        .c_str(),
                    c.seeds, sci(max_abs).c_str(), sci(l2).c_str(), use);
      std::cout << line;
      worst_use = std::max(worst_use, use);
      worst_l2 = std::max(worst_l2, l2);
      worst_abs = std::max(worst_abs, max_abs);
    }
    char summary[200];
    std::snprintf(summary, sizeof summary,
                  "%s: atol %g, rtol %g, l2_floor %g; worst max|err| %.2e, worst rel L2 %.2e, headroom %.1fx\n",
                  dtype_name(dtype), tol.atol, tol.rtol, tol.l2_floor, worst_abs, worst_l2,
                  worst_use > 0 ? 1.0 / worst_use : INFINITY);
    std::cout << summary;
    CAPTURE(dtype_name(dtype), worst_use, worst_l2);
    // Every element of the emulation within half its bound: a kernel may have twice its error.
    REQUIRE(worst_use * kRequiredHeadroom <= 1.0);
    // The L2 floor is slack of the size of one rounding to the storage type (RMS u / sqrt(3)),
    // not a bound that would hide the emulation's own error.
    const double u = dtype == DType::fp16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    REQUIRE(tol.l2_floor <= u / std::sqrt(3.0));
    REQUIRE(tol.l2_floor <= worst_l2);
  }
}

TEST_CASE("check_output: what passes and what fails") {
  INFO("seed " << kSeed);
  for (DType dtype : {DType::fp16, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    const Workload w = make(kCases[1], dtype);
    const AttentionResult naive = naive_attention(w);
    const AttentionResult emu = emulated_attention(w);
    const double emu_l2 = l2_error(emu, naive);
    const Tolerance& tol = tolerance(dtype);
    const std::vector<float> good = as_floats(emu);
    const int d = w.shape().head_dim;

    SECTION("the emulated output passes") {
      const CheckResult r = check_output(good, naive, dtype, emu_l2);
      CHECK(r.pass);
      CHECK(r.elements == static_cast<int64_t>(good.size()));
      CHECK(r.nonfinite == 0);
      CHECK(r.out_of_bound == 0);
      CHECK(rel_diff(r.rel_l2_error, emu_l2) <= 1e-3);  // float storage of the output
      CHECK(rel_diff(r.rel_l2_bound, kEmulationFactor * emu_l2 + tol.l2_floor) <= 1e-12);
      CHECK(r.summary().rfind("PASS max|err| ", 0) == 0);
      // The oracle itself, rounded to float, passes with room to spare.
      CHECK(check_output(as_floats(naive), naive, dtype, emu_l2).pass);
    }
    SECTION("one NaN element fails") {
      std::vector<float> got = good;
      got[123] = std::numeric_limits<float>::quiet_NaN();
      const CheckResult r = check_output(got, naive, dtype, emu_l2);
      CHECK_FALSE(r.pass);
      CHECK(r.nonfinite == 1);
      CHECK(r.worst == 123);
      CHECK(r.summary() == "FAIL 1 of " + std::to_string(good.size()) + " elements are NaN/Inf or never written");
    }
    SECTION("one infinite element fails") {
      std::vector<float> got = good;
      got.back() = -std::numeric_limits<float>::infinity();
      const CheckResult r = check_output(got, naive, dtype, emu_l2);
      CHECK_FALSE(r.pass);
      CHECK(r.nonfinite == 1);
    }
    SECTION("an unwritten (request, head) fails: outputs are poisoned with NaN") {
      std::vector<float> got(good.size(), std::numeric_limits<float>::quiet_NaN());
      const size_t skip = static_cast<size_t>(5) * d;  // request 0, head 5 never written
      for (size_t i = 0; i < got.size(); ++i)
        if (i < skip || i >= skip + static_cast<size_t>(d)) got[i] = good[i];
      const CheckResult r = check_output(got, naive, dtype, emu_l2);
      CHECK_FALSE(r.pass);
      CHECK(r.nonfinite == d);
      CHECK(r.worst == static_cast<int64_t>(skip));
    }
    SECTION("one element just beyond atol + rtol |ref| fails; one just inside does not") {
      const size_t i = 777;
      const double bound = tol.atol + tol.rtol * std::fabs(naive.o[i]);
      std::vector<float> got = as_floats(naive);
      got[i] = static_cast<float>(naive.o[i] + 1.05 * bound);
      CheckResult r = check_output(got, naive, dtype, emu_l2);
      CHECK_FALSE(r.pass);
      CHECK(r.out_of_bound == 1);
      CHECK(r.worst == static_cast<int64_t>(i));
      CHECK(r.rel_l2_error <= r.rel_l2_bound);  // an L2 norm alone would have missed it
      CHECK(r.summary().find("1 out of bound") != std::string::npos);
      got[i] = static_cast<float>(naive.o[i] - 0.95 * bound);
      r = check_output(got, naive, dtype, emu_l2);
      CHECK(r.out_of_bound == 0);
      CHECK(r.pass);
    }
    SECTION("a small error everywhere beyond the emulation's L2 bound fails") {
      // Every element off by the same relative amount: inside the per-element bound, but an L2
      // error of 1.2x the bound.
      const double eps = 1.2 * (kEmulationFactor * emu_l2 + tol.l2_floor);
      REQUIRE(eps < tol.rtol);
      std::vector<float> got(naive.o.size());
      for (size_t i = 0; i < got.size(); ++i) got[i] = static_cast<float>(naive.o[i] * (1 + eps));
      const CheckResult r = check_output(got, naive, dtype, emu_l2);
      CHECK(r.out_of_bound == 0);
      CHECK(r.nonfinite == 0);
      CHECK(rel_diff(r.rel_l2_error, eps) <= 1e-2);
      CHECK_FALSE(r.pass);
    }
    SECTION("a wrong size is an error, not a verdict") {
      std::vector<float> got = good;
      got.pop_back();
      try {
        check_output(got, naive, dtype, emu_l2);
        FAIL("no error");
      } catch (const Error& e) {
        CHECK(std::string(e.what()).find("output has " + std::to_string(got.size()) + " elements") != std::string::npos);
      }
    }
  }
}

TEST_CASE("l2_error and decode") {
  AttentionResult ref;
  ref.requests = 1;
  ref.heads = 1;
  ref.head_dim = 4;
  ref.o = {3, 0, 4, 0};  // norm 5
  AttentionResult got = ref;
  CHECK(l2_error(got, ref) == 0.0);
  got.o = {3, 1, 4, 0};
  CHECK(rel_diff(l2_error(got, ref), 0.2) <= 1e-12);
  got.o = {6, 0, 8, 0};
  CHECK(rel_diff(l2_error(got, ref), 1.0) <= 1e-12);
  AttentionResult zero = ref;
  zero.o = {0, 0, 0, 0};
  CHECK(rel_diff(l2_error(ref, zero), 5.0) <= 1e-12);  // a zero reference: the absolute norm
  got.o.pop_back();
  CHECK_THROWS_AS(l2_error(got, ref), Error);

  for (DType dtype : {DType::fp16, DType::bf16}) {
    const std::vector<float> values = {0.0f, 1.0f, -2.5f, 0.333984375f, 65504.0f};
    std::vector<uint16_t> bits;
    for (float v : values) bits.push_back(from_float(v, dtype));
    const std::vector<float> back = decode(bits, dtype);
    for (size_t i = 0; i < values.size(); ++i) CHECK(back[i] == round_to(values[i], dtype));
    CHECK(back[1] == 1.0f);
    CHECK(back[2] == -2.5f);
  }
  CHECK(tolerance(DType::fp16).atol < tolerance(DType::bf16).atol);  // bf16 has 3 fewer mantissa bits
}
