/// @file check.hpp
/// @brief How a GPU output is judged against the oracle: one tolerance table keyed by dtype.
///
/// A stage's output passes when
///  1. every element is finite (outputs are poisoned with NaN before each run, so an element
///     that was never written fails here);
///  2. every element is within `atol + rtol * |ref|` of the float64 oracle;
///  3. its relative L2 error is at most `kEmulationFactor` times that of emulated_attention()
///     (the same algorithm computed on the CPU in the kernels' precision) plus `l2_floor`.
/// Rule 3 is the FlashAttention test standard: a tolerance that follows from the arithmetic.
/// Rule 2 catches a single wrong element that an L2 norm over many would hide.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/dtype.hpp"
#include "patlab/oracle.hpp"

namespace patlab {

/// Per-dtype bounds on a GPU output's error against the float64 oracle.
struct Tolerance {
  double atol;      ///< absolute part of the per-element bound
  double rtol;      ///< relative part of the per-element bound
  double l2_floor;  ///< slack added to the emulation-based L2 bound
};

/// A GPU output may have at most this many times the emulation's relative L2 error.
inline constexpr double kEmulationFactor = 2.0;

/// The tolerance table: the one place tolerances live.
const Tolerance& tolerance(DType t);

/// The verdict on one output.
struct CheckResult {
  bool pass = false;
  int64_t elements = 0;
  int64_t nonfinite = 0;      ///< NaN or Inf elements (unwritten outputs among them)
  int64_t out_of_bound = 0;   ///< finite elements outside atol + rtol * |ref|
  double max_abs_error = 0;   ///< largest |got - ref|
  double rel_l2_error = 0;    ///< ||got - ref|| / ||ref||
  double rel_l2_bound = 0;    ///< kEmulationFactor * emulation's error + l2_floor
  int64_t worst = -1;         ///< flat index of the element with the largest error
  /// One line: "PASS max|err| 1.2e-04, rel L2 3.1e-04 (bound 6.5e-04)" or what failed.
  std::string summary() const;
};

/// Judges `got` ([requests, Hq, d] as floats) against the oracle `ref`, with the emulation's
/// relative L2 error `emulated_rel_l2` (see l2_error()).
CheckResult check_output(const std::vector<float>& got, const AttentionResult& ref, DType dtype,
                         double emulated_rel_l2);

/// Relative L2 error of `got`'s o against `ref`'s o.
double l2_error(const AttentionResult& got, const AttentionResult& ref);

/// 16-bit output patterns as floats.
std::vector<float> decode(const std::vector<uint16_t>& bits, DType dtype);

}  // namespace patlab
