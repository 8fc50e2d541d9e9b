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

CheckResult check_output(const std::vector<float>& got, const Reference& ref, DType dtype) {
  return check_output(got, ref.oracle, ref.emulated_row_error, dtype, ref.kv_dtype);
}

}  // namespace patlab
