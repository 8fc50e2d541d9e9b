/// @file check.hpp
/// @brief How a GPU output is judged against the oracle: one tolerance table keyed by (q dtype,
/// KV dtype), and a bound per output row.
///
/// A *row* is the output vector of one (request, query head): `d` elements. A stage's output
/// passes when
///  1. every element is finite (outputs are poisoned with NaN before each run, so an element
///     that was never written fails here);
///  2. every element is within `atol + rtol * |ref|` of the float64 oracle;
///  3. every row's relative L2 error against the oracle, `||got_r - ref_r|| / ||ref_r||`, is at
///     most `kEmulationFactor` times that row's error in emulated_attention() (the same
///     algorithm computed on the CPU in the kernels' precision) plus `row_floor` times the square
///     root of the roundings that two correct kernels may do differently in that row (one, the
///     output's; kHalfPartialRoundings where merged partials are stored in 16 bits).
/// Rule 3 is the FlashAttention test standard, a tolerance that follows from the arithmetic,
/// applied row by row: one wrong row fails however large the batch (a batch-wide norm would
/// average it away). Rule 2 catches a single wrong element that a row's L2 norm would hide.
/// The batch-wide relative L2 error is reported too; rule 3 implies it stays within
/// `kEmulationFactor` times the emulation's plus `row_floor` (Minkowski's inequality).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "patlab/truth/dtype.hpp"
#include "patlab/truth/oracle.hpp"

namespace patlab {

/// Per-(q dtype, KV dtype) bounds on a GPU output's error against the float64 oracle.
struct Tolerance {
  double atol;       ///< absolute part of the per-element bound
  double rtol;       ///< relative part of the per-element bound
  double row_floor;  ///< slack added to each row's emulation-based bound (relative L2)
};

/// A row of a GPU output may have at most this many times the emulation's relative L2 error of
/// that row (plus the floor).
inline constexpr double kEmulationFactor = 2.0;

/// Roundings to the storage type that two correct kernels may do differently in a row whose
/// query merges 16-bit partials (`--half-partials`): its output's, and its partials', whose merge
/// weights sum to 1, so together at most one rounding more. The row's floor is row_floor times
/// the square root of it (the RMS of that many independent roundings).
inline constexpr int kHalfPartialRoundings = 2;

/// The tolerance table, keyed by q's dtype and the KV cache's: the one place tolerances live.
const Tolerance& tolerance(DType q, KvDType kv);

/// Rule 2's bound on one element's error |got - ref|: `tol.atol + tol.rtol * |ref|`.
inline double element_bound(const Tolerance& tol, double ref) { return tol.atol + tol.rtol * std::fabs(ref); }

/// Rule 3's bound on one row's relative L2 error: kEmulationFactor times the row's emulation
/// error plus `tol`'s row_floor times the square root of the row's `roundings` (1, or
/// kHalfPartialRoundings for a query that merges 16-bit partials).
double row_bound(const Tolerance& tol, double emulated_row_error, int roundings = 1);

/// The verdict on one output.
struct CheckResult {
  bool pass = false;          ///< no nonfinite element, none out of bound and no row over its bound
  int64_t elements = 0;       ///< elements judged: requests x Hq x d
  int64_t nonfinite = 0;      ///< NaN or Inf elements (unwritten outputs among them)
  int64_t out_of_bound = 0;   ///< finite elements outside atol + rtol * |ref|
  double max_abs_error = 0;   ///< largest |got - ref|
  int64_t worst = -1;         ///< flat index of the element with the largest error (or first NaN)
  int64_t rows = 0;           ///< (request, head) rows judged
  int64_t rows_over = 0;      ///< finite rows whose relative L2 error exceeds their bound
  int worst_request = -1;     ///< request of the row with the largest error / bound
  int worst_head = -1;        ///< query head of that row
  double worst_row_error = 0;  ///< that row's relative L2 error
  double worst_row_bound = 0;  ///< that row's bound: kEmulationFactor * its emulation error + row_floor
  double rel_l2_error = 0;     ///< batch-wide ||got - ref|| / ||ref|| (reported)
  /// One line: "PASS max|err| 1.2e-04, worst row (request 3, head 5) rel L2 3.1e-04 (bound
  /// 6.5e-04), 0 of 1024 rows over, 0 out of bound" or what failed.
  std::string summary() const;
};

/// Relative L2 error of each (request, head) row of `got` against `ref`: [requests * heads],
/// row-major like AttentionResult::lse. A row whose reference is zero gets its absolute norm.
std::vector<double> row_errors(const AttentionResult& got, const AttentionResult& ref);

/// Judges `got` ([requests, Hq, d] as floats) against the oracle `ref`, with each row's emulation
/// error `emulated_row_error` (row_errors() of emulated_attention() against `ref`) and, where
/// given, each row's roundings `row_roundings` (rule 3's floor: row_floor x sqrt(roundings);
/// empty: one each). Throws Error(usage) when the sizes do not match. verify.hpp's
/// check_output(got, Reference, dtype) is the form to call.
CheckResult check_output(const std::vector<float>& got, const AttentionResult& ref,
                         const std::vector<double>& emulated_row_error, DType dtype, KvDType kv,
                         const std::vector<int>& row_roundings = {});

/// Relative L2 error of `got`'s o against `ref`'s o, over the whole batch.
double l2_error(const AttentionResult& got, const AttentionResult& ref);

/// 16-bit output patterns as floats.
std::vector<float> decode(const std::vector<uint16_t>& bits, DType dtype);

}  // namespace patlab
