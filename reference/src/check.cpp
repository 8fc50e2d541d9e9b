#include "patlab/check.hpp"

#include <cmath>
#include <cstdio>

#include "patlab/error.hpp"

namespace patlab {

const Tolerance& tolerance(DType t) {
  // Per element, the emulation's error (emulated_attention() against the float64 oracle) comes
  // from rounding P to the storage type before P.V (unit roundoff u = 2^-11 fp16, 2^-8 bf16) and
  // rounding the output (u |o|). On long rows the P errors average out; on the shortest rows
  // (two keys) they do not, and reach u |v| / 2, with |v| up to ~4 for N(0,1) data. atol = 4u
  // and rtol = 8u (fp16; 7.7u bf16) keep the worst element at or below a third of its bound,
  // so a kernel with twice the emulation's error still passes. Measured by
  // tests/cpu/test_check.cpp (30 seeds): the worst element uses 0.23 (fp16) and 0.20 (bf16) of
  // atol + rtol |ref| on two-key rows, 0.06 or less on rows of a hundred keys and more. (atol was
  // 1e-3 and 8e-3: two-key rows used up to 0.46 of that bound, too little headroom.)
  // l2_floor is the RMS relative error of rounding once to the storage type (about u / sqrt(3)):
  // slack for outputs whose emulation is exact, such as one-key rows.
  static const Tolerance fp16{2e-3, 4e-3, 2e-4};
  static const Tolerance bf16{1.6e-2, 3e-2, 2e-3};
  return t == DType::fp16 ? fp16 : bf16;
}

std::string CheckResult::summary() const {
  char buf[256];
  if (nonfinite > 0) {
    std::snprintf(buf, sizeof buf, "FAIL %lld of %lld elements are NaN/Inf or never written",
                  static_cast<long long>(nonfinite), static_cast<long long>(elements));
  } else {
    std::snprintf(buf, sizeof buf, "%s max|err| %.2e, rel L2 %.2e (bound %.2e), %lld out of bound", pass ? "PASS" : "FAIL",
                  max_abs_error, rel_l2_error, rel_l2_bound, static_cast<long long>(out_of_bound));
  }
  return buf;
}

CheckResult check_output(const std::vector<float>& got, const AttentionResult& ref, DType dtype,
                         double emulated_rel_l2) {
  require(got.size() == ref.o.size(), "output has " + std::to_string(got.size()) + " elements, oracle " +
                                          std::to_string(ref.o.size()));
  const Tolerance& tol = tolerance(dtype);
  CheckResult c;
  c.elements = static_cast<int64_t>(got.size());
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref.o[i];
    if (!std::isfinite(g)) {
      if (c.nonfinite++ == 0) c.worst = static_cast<int64_t>(i);
      continue;
    }
    const double e = std::fabs(g - r);
    if (e > tol.atol + tol.rtol * std::fabs(r)) ++c.out_of_bound;
    if (e >= c.max_abs_error) {
      c.max_abs_error = e;
      if (c.nonfinite == 0) c.worst = static_cast<int64_t>(i);
    }
    err2 += e * e;
    ref2 += r * r;
  }
  c.rel_l2_error = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  c.rel_l2_bound = kEmulationFactor * emulated_rel_l2 + tol.l2_floor;
  c.pass = c.nonfinite == 0 && c.out_of_bound == 0 && c.rel_l2_error <= c.rel_l2_bound;
  return c;
}

double l2_error(const AttentionResult& got, const AttentionResult& ref) {
  require(got.o.size() == ref.o.size(), "results of different shapes");
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < got.o.size(); ++i) {
    err2 += (got.o[i] - ref.o[i]) * (got.o[i] - ref.o[i]);
    ref2 += ref.o[i] * ref.o[i];
  }
  return ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
}

std::vector<float> decode(const std::vector<uint16_t>& bits, DType dtype) {
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = to_float(bits[i], dtype);
  return out;
}

}  // namespace patlab
