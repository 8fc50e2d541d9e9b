/// @file sparse_check.hpp
/// @brief How sparse decode on the GPU is judged: its selection against the CPU's (a stated rule
/// for near ties), and its outputs against the float64 sparse oracle (check.hpp's tolerance
/// table, with a rounding allowance per row in place of an emulation).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/sparse/selection.hpp"
#include "patlab/truth/check.hpp"

namespace patlab::sparse {

// [selection-tie-rule]
/// The GPU scores blocks in fp32, the CPU in float64, so two blocks whose scores differ by less
/// than fp32's rounding of a sum may swap places, and PSA's covered mass may cross tau one block
/// earlier or later. The rule: a (request, KV head) row's GPU blocks agree with the CPU's when the
/// sets are identical, or, with M(S) the CPU's float64 estimated mass of a set S,
///  - top-n: the sets have the same size and |M(gpu) - M(cpu)| <= kSelectionTieMass (only blocks
///    of equal score, to that tolerance, were exchanged);
///  - progressive: the same with equal sizes, or sizes one apart where the smaller set's M is
///    within kSelectionTieMass of tau (the stopping rule's comparison was a tie).
inline constexpr double kSelectionTieMass = 1e-5;
// [selection-tie-rule]

/// How a GPU selection compares with the CPU's.
struct SelectionAgreement {
  int64_t rows = 0;          ///< (request, KV head) rows compared
  int64_t identical = 0;     ///< rows whose sets are identical
  int64_t near_ties = 0;     ///< rows that differ within the tie rule
  int64_t disagreements = 0; ///< rows that break it
  std::string first;         ///< the first row that breaks it, in words (empty when none)
  /// True when no row breaks the tie rule.
  bool pass() const { return disagreements == 0; }
  /// "identical 1022 of 1024 rows, 2 near ties" or the first disagreement.
  std::string summary() const;
};

/// Compares `gpu` with `cpu` (select_blocks() of the same options) by the tie rule.
SelectionAgreement compare_selections(const Workload& w, const SparseOptions& o, const Selection& cpu,
                                      const Selection& gpu);

/// Times the unit roundoff of the q dtype that a sparse output row may carry in place of an
/// emulation's error (check.hpp's rule 3): the selected and window branches are each rounded to
/// the q dtype, their P once before P.V, and the gated sum once more.
inline constexpr double kSparseRoundings = 4.0;
/// The same where the selected branch merges 16-bit partials (FSA's order and the split, by
/// default): one rounding more, the partials', whose merge weights sum to 1 (check.hpp's
/// kHalfPartialRoundings argues the same for stages 4-9).
inline constexpr double kSparseHalfPartialRoundings = kSparseRoundings + 1.0;

/// Judges a GPU output ([requests, Hq, d] 16-bit patterns of the q dtype) against `ref_o`, a
/// float64 output of the same shape (the sparse oracle's gated sum or one of its branches), by
/// check.hpp's table for the workload's dtypes, each row allowed `roundings` unit roundoffs
/// (kSparseRoundings, or kSparseHalfPartialRoundings) as its emulation error.
CheckResult check_sparse_output(const Workload& w, const std::vector<uint16_t>& got, const std::vector<double>& ref_o,
                                double roundings = kSparseRoundings);

}  // namespace patlab::sparse
