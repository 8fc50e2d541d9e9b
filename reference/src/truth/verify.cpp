#include "patlab/truth/verify.hpp"

#include <algorithm>

namespace patlab {

Reference make_reference(const Workload& w) {
  Reference ref;
  ref.oracle = naive_attention(w);
  ref.emulated = emulated_attention(w);
  ref.emulated_row_error = row_errors(ref.emulated, ref.oracle);
  ref.emulated_rel_l2 = l2_error(ref.emulated, ref.oracle);
  ref.kv_dtype = w.shape().kv_dtype;
  return ref;
}

Reference reference_for_partials(const Reference& ref, const Workload& w, const PartialSplit& split) {
  if (split.empty()) return ref;
  Reference r = ref;
  r.emulated = emulated_attention(w, split, &ref.emulated);
  r.emulated_row_error = row_errors(r.emulated, r.oracle);
  r.emulated_rel_l2 = l2_error(r.emulated, r.oracle);
  const int heads = w.shape().num_q_heads;
  r.row_roundings.assign(static_cast<size_t>(w.num_requests()) * heads, 1);
  for (int q = 0; q < w.num_requests(); ++q)
    if (split[static_cast<size_t>(q)].size() > 1)
      std::fill_n(r.row_roundings.begin() + static_cast<std::ptrdiff_t>(q) * heads, heads, kHalfPartialRoundings);
  return r;
}

CheckResult check_output(const std::vector<float>& got, const Reference& ref, DType dtype) {
  return check_output(got, ref.oracle, ref.emulated_row_error, dtype, ref.kv_dtype, ref.row_roundings);
}

}  // namespace patlab
