/// @file verify.hpp
/// @brief The one verify path: the float64 oracle, the fp32 emulation of the kernels'
/// arithmetic, and the check of an output against both. The CLI, the GPU test harness and
/// export all go through it.
#pragma once

#include <cstdint>
#include <vector>

#include "patlab/truth/check.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/truth/oracle.hpp"

namespace patlab {

/// What an output of a workload is judged against.
struct Reference {
  AttentionResult oracle;    ///< float64 truth (naive_attention)
  AttentionResult emulated;  ///< the kernels' arithmetic on the CPU (emulated_attention)
  /// Per (request, head) row, [requests * Hq]: relative L2 error of `emulated` against `oracle`
  /// (row_errors()); check.hpp's rule 3 bounds each row of an output by it.
  std::vector<double> emulated_row_error;
  double emulated_rel_l2 = 0;  ///< relative L2 error of `emulated` against `oracle`, batch-wide (reported)
  /// Per row, the roundings two correct kernels may do differently (check_output()'s floor):
  /// empty for one each; reference_for_partials() sets kHalfPartialRoundings on the rows of
  /// queries that merge 16-bit partials.
  std::vector<int> row_roundings;
  KvDType kv_dtype = KvDType::same;  ///< the workload's KV cache type (keys the tolerance with the dtype)
};

/// Runs the oracle and the emulation on `w` and measures the emulation's error per row.
Reference make_reference(const Workload& w);

/// `ref` for a stage whose partials are 16-bit (`--half-partials`): the same oracle, and the
/// emulation of the kernels' arithmetic with each query's partials cut as `split` says (the
/// stage's plan, plan_partial_split()) and rounded as the stage rounds them, so each row's bound
/// counts the partials' roundings the stage adds; the rows of a query of more than one partial
/// get kHalfPartialRoundings in their floor. `ref` unchanged for an empty split (fp32 partials:
/// the plain emulation is the stage's yardstick).
Reference reference_for_partials(const Reference& ref, const Workload& w, const PartialSplit& split);

/// Judges `got` ([requests, Hq, d] as floats) against `ref` under the tolerance of (`dtype`,
/// ref.kv_dtype) (check.hpp's three rules). Throws Error(usage) when `got` has the wrong size.
CheckResult check_output(const std::vector<float>& got, const Reference& ref, DType dtype);

}  // namespace patlab
