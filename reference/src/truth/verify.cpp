#include "patlab/truth/verify.hpp"

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
  r.emulated = emulated_attention(w, split);
  r.emulated_row_error = row_errors(r.emulated, r.oracle);
  r.emulated_rel_l2 = l2_error(r.emulated, r.oracle);
  return r;
}

CheckResult check_output(const std::vector<float>& got, const Reference& ref, DType dtype) {
  return check_output(got, ref.oracle, ref.emulated_row_error, dtype, ref.kv_dtype);
}

}  // namespace patlab
