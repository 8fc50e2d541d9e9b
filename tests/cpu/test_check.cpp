// How outputs are judged: check_output() passes the emulation (the kernels' arithmetic run on the
// CPU) and a tiled split-KV kernel model, and fails NaN, unwritten and single wrong elements, and
// a row whose relative L2 error exceeds kEmulationFactor times the emulation's error of that row
// plus the floor. It also measures both models' errors per dtype, on flat and peaked data, and
// requires the tolerance table to leave at least 2x headroom over them, and shows that partials
// stored in 16 bits would not leave it (why the stages keep them in float32).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/truth/check.hpp"
#include "patlab/error.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/truth/verify.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/model/workload.hpp"
#include "kernel_model.hpp"

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

Workload make(const Case& c, DType dtype, uint64_t seed = kSeed, DataKind data = DataKind::flat) {
  return make_workload(parse_tree_spec(c.tree), shape_of(c.hq, c.hkv, c.d, c.page, dtype), seed, true, data);
}

std::vector<float> as_floats(const AttentionResult& r) { return std::vector<float>(r.o.begin(), r.o.end()); }

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

/// Unit roundoff of the storage type: 2^-11 (fp16), 2^-8 (bf16).
double unit_roundoff(DType t) { return t == DType::fp16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8); }

/// Worst values of one workload over its seeds.
struct Measured {
  double max_abs = 0;        ///< emulation's largest |err|
  double use = 0;            ///< emulation's worst element error / (atol + rtol |ref|)
  double model_use = 0;      ///< the same for the tiled kernel model
  double row_min = INFINITY;  ///< emulation's smallest row error, in units of u
  double row_max = 0;        ///< emulation's largest row error, in units of u
  double model_row = 0;      ///< the tiled model's worst row error / its bound
};

/// Largest |got - ref| / (atol + rtol |ref|) over the elements.
double element_use(const AttentionResult& got, const AttentionResult& ref, const Tolerance& tol) {
  double use = 0;
  for (size_t j = 0; j < ref.o.size(); ++j)
    use = std::max(use, std::fabs(got.o[j] - ref.o[j]) / element_bound(tol, ref.o[j]));
  return use;
}

Measured measure(const Case& c, DType dtype, DataKind data) {
  const Tolerance& tol = tolerance(dtype, KvDType::same);
  const double u = unit_roundoff(dtype);
  Measured m;
  for (int i = 0; i < c.seeds; ++i) {
    const uint64_t seed = kSeed + static_cast<uint64_t>(i);
    const Workload w = make(c, dtype, seed, data);
    const Reference ref = make_reference(w);
    const AttentionResult model = test::tiled_kernel_model(w);
    for (size_t j = 0; j < ref.oracle.o.size(); ++j)
      m.max_abs = std::max(m.max_abs, std::fabs(ref.emulated.o[j] - ref.oracle.o[j]));
    m.use = std::max(m.use, element_use(ref.emulated, ref.oracle, tol));
    m.model_use = std::max(m.model_use, element_use(model, ref.oracle, tol));
    for (double e : ref.emulated_row_error) {
      m.row_min = std::min(m.row_min, e / u);
      m.row_max = std::max(m.row_max, e / u);
    }
    const std::vector<double> model_rows = row_errors(model, ref.oracle);
    for (size_t r = 0; r < model_rows.size(); ++r)
      m.model_row = std::max(m.model_row, model_rows[r] / row_bound(tol, ref.emulated_row_error[r]));
    // The emulation and the model both pass the check.
    const CheckResult emu = check_output(as_floats(ref.emulated), ref, dtype);
    const CheckResult mod = check_output(as_floats(model), ref, dtype);
    CAPTURE(c.tree, seed, data_kind_name(data), emu.summary(), mod.summary());
    CHECK(emu.pass);
    CHECK(mod.pass);
  }
  return m;
}

}  // namespace

TEST_CASE("the tolerance table leaves >= 2x headroom over the emulation's and a tiled kernel's error") {
  std::cout << "emulated_attention (emu) and a tiled split-KV kernel model vs the float64 oracle (seeds from "
            << kSeed << "; worst over the seeds; rows in units of u):\n"
            << "dtype data   workload                     seeds  max|err|   elem use  model use  "
               "emu row min..max   model row/bound\n";
  for (DType dtype : {DType::fp16, DType::bf16}) {
    const Tolerance& tol = tolerance(dtype, KvDType::same);
    const double u = unit_roundoff(dtype);
    Measured worst;
    for (DataKind data : {DataKind::flat, DataKind::peaked}) {
      for (const Case& c : kCases) {
        const Measured m = measure(c, dtype, data);
        char line[240];
        std::snprintf(line, sizeof line, "%-5s %-6s %-28s %5d  %-10s %-9.3f %-10.3f %5.3f..%-9.3f %.3f\n",
                      dtype_name(dtype), data_kind_name(data),
                      (std::string(c.tree) + " " + std::to_string(c.hq) + "/" + std::to_string(c.hkv) + " d" +
                       std::to_string(c.d))
                          .c_str(),
                      c.seeds, sci(m.max_abs).c_str(), m.use, m.model_use, m.row_min, m.row_max, m.model_row);
        std::cout << line;
        worst.max_abs = std::max(worst.max_abs, m.max_abs);
        worst.use = std::max(worst.use, m.use);
        worst.model_use = std::max(worst.model_use, m.model_use);
        worst.row_min = std::min(worst.row_min, m.row_min);
        worst.row_max = std::max(worst.row_max, m.row_max);
        worst.model_row = std::max(worst.model_row, m.model_row);
      }
    }
    char summary[300];
    std::snprintf(summary, sizeof summary,
                  "%s: atol %g, rtol %g, row_floor %g (%.3f u); worst max|err| %.2e, element headroom %.1fx "
                  "(model %.1fx), row headroom of the model %.1fx\n",
                  dtype_name(dtype), tol.atol, tol.rtol, tol.row_floor, tol.row_floor / u, worst.max_abs,
                  1.0 / worst.use, 1.0 / worst.model_use, 1.0 / worst.model_row);
    std::cout << summary;
    CAPTURE(dtype_name(dtype), worst.use, worst.model_use, worst.model_row);
    // Every element of the emulation within half its bound: a kernel may have twice its error.
    REQUIRE(worst.use * kRequiredHeadroom <= 1.0);
    // A kernel whose rounding differs from the emulation's (the tiled model) uses at most half
    // of its row bounds: the floor covers the difference between two correct roundings.
    REQUIRE(worst.model_row * kRequiredHeadroom <= 1.0);
    // The floor is slack of at most one rounding to the storage type (RMS u / sqrt(3)), not a
    // bound that would hide a fault: it stays below the emulation's own error on long rows.
    REQUIRE(tol.row_floor <= u / std::sqrt(3.0));
  }
}

/// Rule 3's bound of row `r` under `ref` (check.hpp's row_bound() with the row's roundings).
double bound_of(const Reference& ref, const Tolerance& tol, size_t r) {
  return row_bound(tol, ref.emulated_row_error[r], ref.row_roundings.empty() ? 1 : ref.row_roundings[r]);
}

/// The tiled model's worst row error over its row bound, on every case and seed of kCases, flat
/// and peaked data, with its partials stored as `storage` says; with `knows_partials` the bounds
/// come from the emulation of the model's own partials (reference_for_partials() of its
/// split_tokens chunks, rounded to 16 bits), as the check holds a stage with --half-partials.
double worst_model_row(DType dtype, const test::PartialStorage& storage, bool knows_partials = false) {
  const Tolerance& tol = tolerance(dtype, KvDType::same);
  double worst = 0;
  for (DataKind data : {DataKind::flat, DataKind::peaked})
    for (const Case& c : kCases)
      for (int i = 0; i < c.seeds; ++i) {
        const Workload w = make(c, dtype, kSeed + static_cast<uint64_t>(i), data);
        const Reference plain = make_reference(w);
        const Reference ref = knows_partials ? reference_for_partials(plain, w,
                                                   plan_partial_split(chunked_plan(w.layout, storage.split_tokens), w.layout))
                                             : plain;
        const std::vector<double> rows = row_errors(test::tiled_kernel_model(w, storage), ref.oracle);
        for (size_t r = 0; r < rows.size(); ++r)
          worst = std::max(worst, rows[r] / bound_of(ref, tol, r));
      }
  return worst;
}

TEST_CASE("partials in 16 bits: past the plain check's headroom, within it against the emulation of the partials") {
  // Short splits (64 tokens, as the KV split and the tree's nodes make them) give most rows
  // several partials. A partial rounded to 16 bits adds a rounding before the output's own;
  // the row bounds leave a correct kernel 2x headroom over the plain emulation, which a kernel
  // with 16-bit partials exceeds (it stays inside the bounds). So a stage with `--half-partials`
  // is held to the emulation of its own plan's partials (reference_for_partials(): each partial
  // rounded as the stage rounds it), which gives it the same headroom as fp32 partials have over
  // the plain emulation (chapters 12 and 17, "Partials in 16 bits").
  std::cout << "tiled kernel model, 64-token splits, worst row error / row bound (seeds from " << kSeed << "):\n";
  for (DType dtype : {DType::fp16, DType::bf16}) {
    const double fp32 = worst_model_row(dtype, {64, false});
    const double sixteen = worst_model_row(dtype, {64, true});
    const double known = worst_model_row(dtype, {64, true}, true);
    std::printf("%s: float32 partials %.3f, 16-bit partials %.3f, 16-bit against the emulation of them %.3f\n",
                dtype_name(dtype), fp32, sixteen, known);
    CAPTURE(dtype_name(dtype), fp32, sixteen, known);
    REQUIRE(fp32 * kRequiredHeadroom <= 1.0);
    REQUIRE(sixteen * kRequiredHeadroom > 1.0);
    REQUIRE(sixteen <= 1.0);  // inside every row's bound even against the plain emulation
    // The check that knows the partials (reference_for_partials(), what --half-partials is held
    // to) gives the 16-bit kernel the same headroom as the plain check gives fp32 partials.
    REQUIRE(known * kRequiredHeadroom <= 1.0);
  }
}

TEST_CASE("16-bit partials on short rows: the row floor counts the partials' rounding") {
  // The GPU grids' boundary batch: requests of 1 to 4097 own tokens, six more behind a shared
  // 1000-token prefix (two partials each under a plan without the KV split). On rows of a few
  // keys the partials' roundings, which a kernel and the emulation mostly share, dominate both
  // errors, so the kernel's error nears the emulation's and twice it leaves about half the bound;
  // the floor, slack for roundings two correct kernels do differently, then counts the partials'
  // (kHalfPartialRoundings) besides the output's.
  const TokenTree tree = parse_workload_json(
      R"({"segments": {"p": 1000, "a1": 1, "a15": 15, "a16": 16, "a17": 17, "a127": 127, "a129": 129,
                       "o1": 1, "o15": 15, "o16": 16, "o17": 17, "o31": 31, "o33": 33, "o63": 63, "o65": 65,
                       "o127": 127, "o129": 129, "o1000": 1000, "o4097": 4097},
          "requests": ["o1", "o15", "o16", "o17", "o31", "o33", "o63", "o65", "o127", "o129", "o1000", "o4097",
                       "p+a1", "p+a15", "p+a16", "p+a17", "p+a127", "p+a129"]})",
      "boundary lengths");
  std::cout << "tiled model with 16-bit partials on the boundary batch, worst row / bound (seed " << kSeed << "):\n";
  for (DType dtype : {DType::fp16, DType::bf16})
    for (DataKind data : {DataKind::flat, DataKind::peaked})
      for (const Shape& shape : {shape_of(16, 1, 64, 16, dtype), shape_of(8, 2, 128, 32, dtype)}) {
        const Workload w = make_workload(tree, shape, kSeed, true, data);
        PlannerOptions po;
        po.split_kv = false;
        const PartialSplit split = plan_partial_split(make_plan(w.layout, po), w.layout);
        const Reference ref = reference_for_partials(make_reference(w), w, split);
        const std::vector<double> rows = row_errors(test::tiled_kernel_model(w, {test::kModelSplitTokens, true, &split}), ref.oracle);
        const Tolerance& tol = tolerance(dtype, KvDType::same);
        double worst = 0, one_rounding = 0;
        for (size_t r = 0; r < rows.size(); ++r) {
          worst = std::max(worst, rows[r] / bound_of(ref, tol, r));
          one_rounding = std::max(one_rounding, rows[r] / row_bound(tol, ref.emulated_row_error[r]));
        }
        std::printf("%s %-6s %s: %.3f (with the output's rounding alone in the floor: %.3f)\n", dtype_name(dtype),
                    data_kind_name(data), shape.describe().c_str(), worst, one_rounding);
        CAPTURE(dtype_name(dtype), data_kind_name(data), shape.describe(), worst, one_rounding);
        REQUIRE(worst * kRequiredHeadroom <= 1.0);
      }
}

TEST_CASE("check_output: what passes and what fails") {
  INFO("seed " << kSeed);
  for (DType dtype : {DType::fp16, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    const Workload w = make(kCases[1], dtype);
    const Reference ref = make_reference(w);
    const AttentionResult& naive = ref.oracle;
    const Tolerance& tol = tolerance(dtype, KvDType::same);
    const std::vector<float> good = as_floats(ref.emulated);
    const int d = w.shape().head_dim, heads = w.shape().num_q_heads;
    const int64_t rows = int64_t{w.num_requests()} * heads;

    SECTION("the emulated output passes") {
      const CheckResult r = check_output(good, ref, dtype);
      CHECK(r.pass);
      CHECK(r.elements == static_cast<int64_t>(good.size()));
      CHECK(r.rows == rows);
      CHECK(r.rows_over == 0);
      CHECK(r.nonfinite == 0);
      CHECK(r.out_of_bound == 0);
      CHECK(rel_diff(r.rel_l2_error, ref.emulated_rel_l2) <= 1e-3);  // float storage of the output
      const size_t worst = static_cast<size_t>(r.worst_request) * heads + static_cast<size_t>(r.worst_head);
      CHECK(rel_diff(r.worst_row_bound, kEmulationFactor * ref.emulated_row_error[worst] + tol.row_floor) <= 1e-12);
      CHECK(r.worst_row_error <= r.worst_row_bound);
      CHECK(r.summary().rfind("PASS max|err| ", 0) == 0);
      CHECK(r.summary().find("0 of " + std::to_string(rows) + " rows over") != std::string::npos);
      // The oracle itself, rounded to float, passes with room to spare.
      CHECK(check_output(as_floats(naive), ref, dtype).pass);
    }
    SECTION("one NaN element fails") {
      std::vector<float> got = good;
      got[123] = std::numeric_limits<float>::quiet_NaN();
      const CheckResult r = check_output(got, ref, dtype);
      CHECK_FALSE(r.pass);
      CHECK(r.nonfinite == 1);
      CHECK(r.worst == 123);
      CHECK(r.summary() == "FAIL 1 of " + std::to_string(good.size()) + " elements are NaN/Inf or never written");
    }
    SECTION("one infinite element fails") {
      std::vector<float> got = good;
      got.back() = -std::numeric_limits<float>::infinity();
      const CheckResult r = check_output(got, ref, dtype);
      CHECK_FALSE(r.pass);
      CHECK(r.nonfinite == 1);
    }
    SECTION("an unwritten (request, head) fails: outputs are poisoned with NaN") {
      std::vector<float> got(good.size(), std::numeric_limits<float>::quiet_NaN());
      const size_t skip = static_cast<size_t>(5) * d;  // request 0, head 5 never written
      for (size_t i = 0; i < got.size(); ++i)
        if (i < skip || i >= skip + static_cast<size_t>(d)) got[i] = good[i];
      const CheckResult r = check_output(got, ref, dtype);
      CHECK_FALSE(r.pass);
      CHECK(r.nonfinite == d);
      CHECK(r.worst == static_cast<int64_t>(skip));
    }
    SECTION("one element just beyond atol + rtol |ref| fails; one just inside does not") {
      const size_t i = 777;
      const double bound = tol.atol + tol.rtol * std::fabs(naive.o[i]);
      std::vector<float> got = as_floats(naive);
      got[i] = static_cast<float>(naive.o[i] + 1.05 * bound);
      CheckResult r = check_output(got, ref, dtype);
      CHECK_FALSE(r.pass);
      CHECK(r.out_of_bound == 1);
      CHECK(r.worst == static_cast<int64_t>(i));
      CHECK(r.summary().find("1 out of bound") != std::string::npos);
      got[i] = static_cast<float>(naive.o[i] - 0.95 * bound);
      r = check_output(got, ref, dtype);
      CHECK(r.out_of_bound == 0);
      // Whether the row rule flags that one error depends on the row's norm; the element rule does not.
      CHECK(r.pass == (r.rows_over == 0));
    }
    SECTION("one row just beyond its bound fails, named by request and head; just inside passes") {
      // Row (request 3, head 17) scaled by (1 + eps): inside the per-element bound, and a
      // relative error of 1.05x (then 0.95x) that row's bound; every other row is the oracle's.
      const int req = 3, head = 17;
      const size_t row = static_cast<size_t>(req) * heads + head;
      const double row_bound = kEmulationFactor * ref.emulated_row_error[row] + tol.row_floor;
      for (double factor : {1.05, 0.95}) {
        std::vector<float> got = as_floats(naive);
        for (int i = 0; i < d; ++i) {
          const size_t j = row * static_cast<size_t>(d) + static_cast<size_t>(i);
          got[j] = static_cast<float>(naive.o[j] * (1 + factor * row_bound));
        }
        const CheckResult r = check_output(got, ref, dtype);
        CAPTURE(factor, r.summary());
        CHECK(r.out_of_bound == 0);
        CHECK(r.nonfinite == 0);
        CHECK(r.worst_request == req);
        CHECK(r.worst_head == head);
        CHECK(rel_diff(r.worst_row_error, factor * row_bound) <= 1e-2);
        CHECK(r.pass == (factor < 1));
        CHECK(r.rows_over == (factor < 1 ? 0 : 1));
        if (factor > 1) {
          CHECK(r.summary().find("FAIL") == 0);
          CHECK(r.summary().find("worst row (request 3, head 17)") != std::string::npos);
          CHECK(r.summary().find("1 of " + std::to_string(rows) + " rows over") != std::string::npos);
          // A batch-wide L2 norm over all rows would have let it through.
          CHECK(r.rel_l2_error < kEmulationFactor * ref.emulated_rel_l2 + tol.row_floor);
        }
      }
    }
    SECTION("a wrong size is an error, not a verdict") {
      std::vector<float> got = good;
      got.pop_back();
      try {
        check_output(got, ref, dtype);
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
  CHECK(rel_diff(row_errors(got, ref)[0], 1.0) <= 1e-12);
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
  CHECK(tolerance(DType::fp16, KvDType::same).atol < tolerance(DType::bf16, KvDType::same).atol);  // bf16 has 3 fewer mantissa bits
}
