// The GPU interface of a build without nvcc: every entry says why no GPU stage can run.
#include "patlab/error.hpp"
#include "patlab/gpu.hpp"

namespace patlab::gpu {

namespace {
const char* kReason = "this build has no CUDA (nvcc was not found when it was configured)";
[[noreturn]] void no_cuda() { throw Error(ErrorKind::unsupported, kReason); }
}  // namespace

bool built_with_cuda() { return false; }
bool built_with_cta_trace() { return false; }

DeviceInfo probe() {
  DeviceInfo d;
  d.reason = kReason;
  return d;
}

struct Runner::Impl {};

Runner::Runner(const Workload&) { no_cuda(); }
Runner::~Runner() = default;
const DeviceInfo& Runner::device() const { no_cuda(); }
void Runner::set_max_kv_tile(int) { no_cuda(); }
void Runner::set_fill_window(int) { no_cuda(); }
void Runner::set_max_cluster(int) { no_cuda(); }
void Runner::set_cluster_merge(ClusterMerge) { no_cuda(); }
void Runner::set_hopper_routing(const HopperRouting&) { no_cuda(); }
void Runner::set_bucket_launch(BucketLaunch) { no_cuda(); }
void Runner::set_take_leaves(bool, int, double) { no_cuda(); }
void Runner::set_half_partials(bool) { no_cuda(); }
void Runner::set_group_rows(int) { no_cuda(); }
std::string Runner::unsupported(const std::string&) const { return kReason; }
double Runner::prepare(const std::string&) { no_cuda(); }
std::vector<uint16_t> Runner::run_once(const std::string&) { no_cuda(); }
std::vector<uint16_t> Runner::run_graph_once(const std::string&) { no_cuda(); }
Timing Runner::time(const std::string&, const TimingOptions&) { no_cuda(); }
Timing Runner::time_graph(const std::string&, const TimingOptions&) { no_cuda(); }
int64_t Runner::model_bytes(const std::string&) const { no_cuda(); }
std::string Runner::notes(const std::string&) const { no_cuda(); }
PartialSplit Runner::half_partial_split(const std::string&) const { no_cuda(); }
bool Runner::planner_options(const std::string&, PlannerOptions&) const { no_cuda(); }
CtaTrace Runner::trace_ctas(const std::string&, int) { no_cuda(); }
void Runner::release(const std::string&) { no_cuda(); }
double Runner::copy_bandwidth_gbs() { no_cuda(); }

struct ServeSession::Impl {};

ServeSession::ServeSession(const ServeConfig&) { no_cuda(); }
ServeSession::~ServeSession() = default;
const DeviceInfo& ServeSession::device() const { no_cuda(); }
bool ServeSession::planner_options(PlannerOptions&) const { no_cuda(); }
int64_t ServeSession::pool_bytes() const { no_cuda(); }
void ServeSession::apply(const serving::WriteLog&) { no_cuda(); }
double ServeSession::set_batch(const PagedLayout&, const Plan*) { no_cuda(); }
std::vector<double> ServeSession::run_layers() { no_cuda(); }
void ServeSession::snapshot_layer0(Workload&, std::vector<uint16_t>&, PartialSplit&) { no_cuda(); }

}  // namespace patlab::gpu
