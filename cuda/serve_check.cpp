// ServeSession::check_layer0(): host code, apart from serve.cu because it runs the float64
// oracle (Eigen), which the CUDA translation units do not include.
#include "patlab/gpu.hpp"
#include "patlab/truth/verify.hpp"

namespace patlab::gpu {

CheckResult ServeSession::check_layer0() {
  Workload host;
  std::vector<uint16_t> out;
  PartialSplit split;  // the stage's 16-bit partials: the check emulates their rounding
  snapshot_layer0(host, out, split);
  return check_output(decode(out, host.shape().dtype), reference_for_partials(make_reference(host), host, split),
                      host.shape().dtype);
}

}  // namespace patlab::gpu
