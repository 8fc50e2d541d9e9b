// ServeSession::check_layer0(): host code, apart from serve.cu because it runs the float64
// oracle (Eigen), which the CUDA translation units do not include.
#include "patlab/gpu.hpp"
#include "patlab/truth/verify.hpp"

namespace patlab::gpu {

CheckResult ServeSession::check_layer0() {
  Workload host;
  std::vector<uint16_t> out;
  snapshot_layer0(host, out);
  return check_output(decode(out, host.shape().dtype), make_reference(host), host.shape().dtype);
}

}  // namespace patlab::gpu
