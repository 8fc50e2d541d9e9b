#include "patlab/truth/check.hpp"

#include <cmath>
#include <cstdio>

#include "patlab/error.hpp"

namespace patlab {

const Tolerance& tolerance(DType q, KvDType kv) {
  // Per element, the emulation's error (emulated_attention() against the float64 oracle) comes
  // from rounding P to the storage type before P.V (unit roundoff u = 2^-11 fp16, 2^-8 bf16) and
  // rounding the output (u |o|). On long rows the P errors average out; on the shortest rows
  // (two keys) they do not, and reach u |v| / 2, with |v| up to ~4 for N(0,1) data. atol = 4u
  // and rtol = 8u (fp16; 7.7u bf16) keep the worst element at or below a third of its bound,
  // so a kernel with twice the emulation's error still passes. Measured by
  // tests/cpu/test_check.cpp (30 seeds): the worst element uses 0.23 (fp16) and 0.20 (bf16) of
  // atol + rtol |ref| on two-key rows, flat or peaked data; 0.06 or less on flat rows of a
  // hundred keys and more, 0.15 or less on peaked ones (one key dominates: |o| ~ |v|, so its
  // rounding is larger in absolute terms). (atol was 1e-3 and 8e-3: two-key rows used up to 0.46
  // of that bound, too little headroom.)
  // row_floor is the RMS relative error of one rounding to the storage type, u / sqrt(3)
  // (rounded down: 2.8e-4 and 2.2e-3). Every kernel rounds its output once, as the emulation
  // does, but of a slightly different float32 value (a tiled online softmax rounds P against a
  // running max, split-KV merges partials), so two correct outputs differ by up to one rounding
  // per element; and rows whose emulation is exact (one key, or one key holding all the weight
  // on peaked data: a row error of 0) get only the floor. Measured by test_check.cpp against a
  // tiled split-KV kernel model (tests/cpu/kernel_model.hpp), flat and peaked data: the
  // emulation's row errors span 0 to 0.85 u, and the model's worst row uses 0.38 (fp16) and
  // 0.43 (bf16) of kEmulationFactor * its emulation error + row_floor; with a floor of u / 4 it
  // would use 0.47 and 0.53, less than the 2x headroom the table keeps. With this floor a row
  // bound is 1.3 u to 2.4 u, so a fault is caught once one row's error exceeds that (fp16
  // 6.5e-4 to 1.2e-3, bf16 5.3e-3 to 9.3e-3 in tests/cpu/test_faults.cpp).
  // A row whose query merges 16-bit partials (--half-partials) has one more rounding that two
  // correct kernels may do differently, its partials' (their merge weights sum to 1): its floor
  // is row_floor x sqrt(kHalfPartialRoundings). Measured by test_check.cpp and, over the GPU
  // grids' cases, docs/results/2026-12-06-half-partials (run 4): the worst row then uses 0.47
  // of its bound, as with fp32 partials.
  //
  // An fp8 KV cache (rows fp16/fp8 and bf16/fp8): the oracle works on the dequantised values, so
  // fp8's own rounding of K and V is no error of a kernel; the emulation's error comes from the
  // same two roundings to q's 16-bit type (P before P.V, the output), and the fp8 codes are exact
  // in both 16-bit types. The only new arithmetic is the scales folded into the softmax scale
  // and the output, one float32 rounding each (2^-24, far below u). So the fp8 rows are those of
  // q's dtype; test_check.cpp measures them on fp8 workloads as it does the 16-bit ones.
  static const Tolerance fp16{2e-3, 4e-3, 2.8e-4};
  static const Tolerance bf16{1.6e-2, 3e-2, 2.2e-3};
  static const Tolerance fp16_fp8 = fp16;
  static const Tolerance bf16_fp8 = bf16;
  if (kv == KvDType::fp8_e4m3) return q == DType::fp16 ? fp16_fp8 : bf16_fp8;
  return q == DType::fp16 ? fp16 : bf16;
}

std::string CheckResult::summary() const {
  char buf[320];
  if (nonfinite > 0) {
    std::snprintf(buf, sizeof buf, "FAIL %lld of %lld elements are NaN/Inf or never written",
                  static_cast<long long>(nonfinite), static_cast<long long>(elements));
  } else {
    std::snprintf(buf, sizeof buf,
                  "%s max|err| %.2e, worst row (request %d, head %d) rel L2 %.2e (bound %.2e), %lld of %lld rows over, "
                  "%lld out of bound",
                  pass ? "PASS" : "FAIL", max_abs_error, worst_request, worst_head, worst_row_error, worst_row_bound,
                  static_cast<long long>(rows_over), static_cast<long long>(rows), static_cast<long long>(out_of_bound));
  }
  return buf;
}

namespace {

/// sqrt(err2 / ref2), or sqrt(err2) for a zero reference.
double relative(double err2, double ref2) { return ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2); }

/// Rule 2 for every element and the sums of rule 3, row by row: rule 1 and 2's counts go into
/// `c`, each row's squared error and squared reference into `err2` and `ref2`.
void judge_elements(const std::vector<float>& got, const AttentionResult& ref, const Tolerance& tol, CheckResult& c,
                    std::vector<double>& err2, std::vector<double>& ref2, std::vector<char>& row_finite) {
  const size_t d = static_cast<size_t>(ref.head_dim);
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref.o[i];
    const size_t row = i / d;
    if (!std::isfinite(g)) {
      if (c.nonfinite++ == 0) c.worst = static_cast<int64_t>(i);
      row_finite[row] = 0;
      continue;
    }
    const double e = std::fabs(g - r);
    if (e > element_bound(tol, r)) ++c.out_of_bound;
    if (e >= c.max_abs_error) {
      c.max_abs_error = e;
      if (c.nonfinite == 0) c.worst = static_cast<int64_t>(i);
    }
    err2[row] += e * e;
    ref2[row] += r * r;
  }
}

}  // namespace

std::vector<double> row_errors(const AttentionResult& got, const AttentionResult& ref) {
  require(got.o.size() == ref.o.size() && ref.o.size() == static_cast<size_t>(ref.requests) * ref.heads * ref.head_dim,
          "results of different shapes");
  const size_t d = static_cast<size_t>(ref.head_dim), rows = static_cast<size_t>(ref.requests) * ref.heads;
  std::vector<double> out(rows);
  for (size_t row = 0; row < rows; ++row) {
    double err2 = 0, ref2 = 0;
    for (size_t i = row * d; i < (row + 1) * d; ++i) {
      err2 += (got.o[i] - ref.o[i]) * (got.o[i] - ref.o[i]);
      ref2 += ref.o[i] * ref.o[i];
    }
    out[row] = relative(err2, ref2);
  }
  return out;
}

double row_bound(const Tolerance& tol, double emulated_row_error, int roundings) {
  return kEmulationFactor * emulated_row_error + tol.row_floor * std::sqrt(static_cast<double>(roundings));
}

CheckResult check_output(const std::vector<float>& got, const AttentionResult& ref,
                         const std::vector<double>& emulated_row_error, DType dtype, KvDType kv,
                         const std::vector<int>& row_roundings) {
  require(got.size() == ref.o.size(), "output has " + std::to_string(got.size()) + " elements, oracle " +
                                          std::to_string(ref.o.size()));
  const size_t rows = static_cast<size_t>(ref.requests) * ref.heads;
  require(ref.o.size() == rows * static_cast<size_t>(ref.head_dim) && emulated_row_error.size() == rows,
          "check: " + std::to_string(emulated_row_error.size()) + " emulation row errors for " + std::to_string(rows) +
              " rows");
  require(row_roundings.empty() || row_roundings.size() == rows,
          "check: " + std::to_string(row_roundings.size()) + " rounding counts for " + std::to_string(rows) + " rows");
  const Tolerance& tol = tolerance(dtype, kv);
  CheckResult c;
  c.elements = static_cast<int64_t>(got.size());
  c.rows = static_cast<int64_t>(rows);
  std::vector<double> err2(rows, 0.0), ref2(rows, 0.0);
  std::vector<char> row_finite(rows, 1);
  judge_elements(got, ref, tol, c, err2, ref2, row_finite);
  double worst_ratio = -1, batch_err2 = 0, batch_ref2 = 0;
  for (size_t row = 0; row < rows; ++row) {
    batch_err2 += err2[row];
    batch_ref2 += ref2[row];
    if (!row_finite[row]) continue;
    const double error = relative(err2[row], ref2[row]);
    const double bound = row_bound(tol, emulated_row_error[row], row_roundings.empty() ? 1 : row_roundings[row]);
    if (error > bound) ++c.rows_over;
    if (error / bound > worst_ratio) {
      worst_ratio = error / bound;
      c.worst_request = static_cast<int>(row / static_cast<size_t>(ref.heads));
      c.worst_head = static_cast<int>(row % static_cast<size_t>(ref.heads));
      c.worst_row_error = error;
      c.worst_row_bound = bound;
    }
  }
  c.rel_l2_error = relative(batch_err2, batch_ref2);
  c.pass = c.nonfinite == 0 && c.out_of_bound == 0 && c.rows_over == 0;
  return c;
}

double l2_error(const AttentionResult& got, const AttentionResult& ref) {
  require(got.o.size() == ref.o.size(), "results of different shapes");
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < got.o.size(); ++i) {
    err2 += (got.o[i] - ref.o[i]) * (got.o[i] - ref.o[i]);
    ref2 += ref.o[i] * ref.o[i];
  }
  return relative(err2, ref2);
}

std::vector<float> decode(const std::vector<uint16_t>& bits, DType dtype) {
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = to_float(bits[i], dtype);
  return out;
}

}  // namespace patlab
