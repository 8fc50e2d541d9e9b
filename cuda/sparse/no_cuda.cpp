// Sparse decode's GPU interface in a build without nvcc: every entry says why it cannot run.
#include "patlab/cuda/sparse.hpp"
#include "patlab/error.hpp"

namespace patlab::gpu {

namespace {
[[noreturn]] void no_cuda() {
  throw Error(ErrorKind::unsupported, "this build has no CUDA (nvcc was not found when it was configured)");
}
}  // namespace

const char* order_name(SparseOrder order) {
  return order == SparseOrder::nsa ? "nsa" : order == SparseOrder::fsa ? "fsa" : "split";
}

struct SparseRunner::Impl {};

SparseRunner::SparseRunner(const Workload&, const sparse::SparseOptions&) { no_cuda(); }
SparseRunner::~SparseRunner() = default;
const DeviceInfo& SparseRunner::device() const { no_cuda(); }
sparse::Selection SparseRunner::select() { no_cuda(); }
double SparseRunner::prepare(SparseOrder, const sparse::Selection&, SpanOptions) { no_cuda(); }
SparseOutputs SparseRunner::run_once(SparseOrder) { no_cuda(); }
Timing SparseRunner::time_selection(const TimingOptions&) { no_cuda(); }
Timing SparseRunner::time_selected(SparseOrder, const TimingOptions&) { no_cuda(); }
std::vector<uint16_t> SparseRunner::run_selected_graph_once(SparseOrder) { no_cuda(); }
Timing SparseRunner::time_selected_graph(SparseOrder, const TimingOptions&) { no_cuda(); }
Timing SparseRunner::time_step(SparseOrder, const TimingOptions&) { no_cuda(); }
std::string SparseRunner::notes(SparseOrder) const { no_cuda(); }

}  // namespace patlab::gpu
