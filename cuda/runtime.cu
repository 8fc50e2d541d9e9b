// The GPU runtime behind patlab/gpu.hpp: device discovery, the batch on the device, poisoning,
// CUDA-event timing with L2 flushes, graph capture (timed and checked), and the stage factory.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <dlfcn.h>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <type_traits>
#include <utility>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/check.cuh"
#include "patlab/cuda/cta_trace.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/cuda/timing.cuh"
#include "patlab/error.hpp"
#include "patlab/gpu.hpp"
#include "patlab/packinfer/groups.hpp"
#include "patlab/stages.hpp"

namespace patlab::cuda {

// One factory per GPU stage of the registry, each defined in its kernel file.
#define PATLAB_CPU_STAGE(id, slug, chapter, summary)
#define PATLAB_GPU_STAGE(id, slug, chapter, summary) std::unique_ptr<Stage> make_stage_##slug();
#include "patlab/stages.def"
#undef PATLAB_GPU_STAGE
#undef PATLAB_CPU_STAGE

std::unique_ptr<Stage> make_stage(const std::string& name) {
#define PATLAB_CPU_STAGE(id, slug, chapter, summary)
#define PATLAB_GPU_STAGE(id, slug, chapter, summary) \
  if (name == #slug) return make_stage_##slug();
#include "patlab/stages.def"
#undef PATLAB_GPU_STAGE
#undef PATLAB_CPU_STAGE
  return nullptr;
}

}  // namespace patlab::cuda

namespace patlab::gpu {

using cuda::DeviceBuffer;

namespace {

/// Bytes copied by the bandwidth probe (each way).
constexpr size_t kCopyProbeBytes = size_t{1} << 30;
/// Timed copies of the bandwidth probe.
constexpr int kCopyProbeRepeats = 20;
/// Records of the CTA timeline's buffer (32 bytes each): more CTAs than any run of the suite
/// launches; those past it are counted as dropped.
constexpr size_t kCtaTraceCapacity = size_t{1} << 20;

/// The kernel-module version from /proc (the first word shaped like 580.159.04), or "".
std::string driver_string() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  if (!std::getline(in, line)) return {};
  std::istringstream words(line);
  std::string w;
  while (words >> w)
    if (w.size() >= 3 && std::isdigit(static_cast<unsigned char>(w[0])) && w.find('.') != std::string::npos) return w;
  return {};
}

/// True when the NVIDIA driver's user-space library can be loaded.
bool driver_library_present() {
  void* h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (h == nullptr) return false;
  dlclose(h);
  return true;
}

}  // namespace

bool built_with_cuda() { return true; }

bool built_with_cta_trace() {
#ifdef PATLAB_CTA_TRACE
  return true;
#else
  return false;
#endif
}

DeviceInfo probe() {
  DeviceInfo d;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) {
    cudaGetLastError();
    d.reason = "no CUDA device";
    return d;
  }
  // Without an NVIDIA driver at all the runtime says "driver version is insufficient": on a
  // machine with no libcuda that means no device, not a broken one.
  if (e == cudaErrorInsufficientDriver && !driver_library_present()) {
    cudaGetLastError();
    d.reason = "no CUDA device (no NVIDIA driver is installed)";
    return d;
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    d.broken = true;
    d.reason = std::string("CUDA is broken on this host (cudaGetDeviceCount: ") + cudaGetErrorString(e) + ")";
    return d;
  }
  cudaDeviceProp p{};
  if (const cudaError_t pe = cudaGetDeviceProperties(&p, 0); pe != cudaSuccess) {
    d.broken = true;
    d.reason = std::string("cannot read the properties of CUDA device 0: ") + cudaGetErrorString(pe);
    return d;
  }
  d.available = true;
  d.name = p.name;
  d.sm_count = p.multiProcessorCount;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.l2_bytes = p.l2CacheSize;
  d.memory_bytes = static_cast<int64_t>(p.totalGlobalMem);
  d.smem_per_block_optin = static_cast<int64_t>(p.sharedMemPerBlockOptin);
  cudaDriverGetVersion(&d.driver_version);
  cudaRuntimeGetVersion(&d.runtime_version);
  int khz = 0;
  if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0) == cudaSuccess) d.sm_clock_mhz = khz / 1000;
  if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, 0) == cudaSuccess) d.memory_clock_mhz = khz / 1000;
  d.driver = driver_string();
  if (d.cc_major < 8) {
    d.available = false;
    d.reason = "device " + d.name + " has compute capability " + std::to_string(d.cc_major) + "." +
               std::to_string(d.cc_minor) + "; patlab's kernels need 8.0 or newer";
  }
  return d;
}

struct Runner::Impl {
  DeviceInfo device;
  const Workload* host = nullptr;
  DeviceBuffer<uint16_t> q, out;
  DeviceBuffer<uint8_t> k, v;  ///< the pools' bytes in the KV storage type
  DeviceBuffer<int32_t> table, lengths;
  DeviceBuffer<uint8_t> flush;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  cuda::DeviceBatch batch;
  std::map<std::string, std::unique_ptr<cuda::Stage>> stages;

  ~Impl() {
    stages.clear();
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
  }

  cuda::Stage& stage(const std::string& slug) {
    auto it = stages.find(slug);
    if (it == stages.end()) throw Error(ErrorKind::usage, "stage '" + slug + "' was not prepared");
    return *it->second;
  }

  /// Fills the output and `s`'s workspace with NaN, so that nothing a run leaves unwritten is finite.
  void poison(const cuda::Stage& s) {
    cuda::poison(out.span(), stream);
    cuda::poison_workspace(s, stream);
  }

  /// Waits for the stream, reports any kernel error, and returns the output.
  std::vector<uint16_t> finish_and_download() {
    PATLAB_CUDA_CHECK(cudaStreamSynchronize(stream));
    PATLAB_CUDA_CHECK(cudaGetLastError());
    return out.download();
  }

  /// Times `launch` with events; flushes L2 before each timed run when asked.
  template <typename Launch>
  Timing timed(const TimingOptions& o, Launch&& launch) {
    return cuda::time_launches(stream, start, stop, flush, o, std::forward<Launch>(launch));
  }
};

Runner::Runner(const Workload& w) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.device = probe();
  if (!m.device.available) throw Error(ErrorKind::unsupported, m.device.reason);
  PATLAB_CUDA_CHECK(cudaSetDevice(0));
  m.host = &w;
  const PagedLayout& L = w.layout;
  const int stride = L.table_stride();
  const std::vector<int32_t> table = L.padded_block_tables();
  m.q = DeviceBuffer<uint16_t>(w.q);
  m.k = DeviceBuffer<uint8_t>(w.k_pool);
  m.v = DeviceBuffer<uint8_t>(w.v_pool);
  m.out = DeviceBuffer<uint16_t>(w.q.size());
  m.table = DeviceBuffer<int32_t>(table);
  m.lengths = DeviceBuffer<int32_t>(L.lengths);
  m.flush = cuda::l2_flush_buffer(m.device.l2_bytes);
  PATLAB_CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  PATLAB_CUDA_CHECK(cudaEventCreate(&m.start));
  PATLAB_CUDA_CHECK(cudaEventCreate(&m.stop));
  m.batch.shape = w.shape();
  m.batch.requests = L.num_requests();
  m.batch.table_stride = stride;
  m.batch.q = m.q.get();
  m.batch.k_pool = m.k.get();
  m.batch.v_pool = m.v.get();
  m.batch.k_scale = w.k_scale;
  m.batch.v_scale = w.v_scale;
  m.batch.block_table = m.table.get();
  m.batch.lengths = m.lengths.get();
  m.batch.out = m.out.get();
  m.batch.host = &w;
  m.batch.device = &m.device;
}

Runner::~Runner() = default;

const DeviceInfo& Runner::device() const { return impl_->device; }

void Runner::set_max_kv_tile(int tokens) { impl_->batch.max_kv_tile = tokens; }

void Runner::set_fill_window(int waves) { impl_->batch.fill_window_waves = waves; }
void Runner::set_max_cluster(int ctas) { impl_->batch.max_cluster = ctas > 0 ? ctas : kStagesMaxCluster; }
void Runner::set_cluster_merge(ClusterMerge merge) { impl_->batch.cluster_merge = merge; }
void Runner::set_hopper_routing(const HopperRouting& routing) {
  check_hopper_routing(routing);
  impl_->batch.hopper = routing;
}
void Runner::set_bucket_launch(BucketLaunch launch) { impl_->batch.bucket_launch = launch; }
void Runner::set_take_leaves(bool take, int max_rows, double min_cut) {
  impl_->batch.take_leaves = take;
  impl_->batch.leaf_tail_rows = max_rows;
  impl_->batch.leaf_tail_min_cut = min_cut;
}

void Runner::set_half_partials(bool half) { impl_->batch.half_partials = half; }

void Runner::set_group_rows(int rows) {
  packinfer::check_group_rows(rows);
  impl_->batch.group_rows = rows;
}

std::string Runner::unsupported(const std::string& slug) const {
  auto stage = cuda::make_stage(slug);
  if (!stage) return "no GPU stage called '" + slug + "'";
  return stage->unsupported(impl_->batch.shape);
}

double Runner::prepare(const std::string& slug) {
  auto stage = cuda::make_stage(slug);
  if (!stage) throw Error(ErrorKind::usage, "no GPU stage called '" + slug + "' (patlab list shows them)");
  const std::string why = stage->unsupported(impl_->batch.shape);
  if (!why.empty()) throw Error(ErrorKind::unsupported, slug + ": " + why);
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  const auto t0 = std::chrono::steady_clock::now();
  stage->prepare(impl_->batch);
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  impl_->stages[slug] = std::move(stage);
  return ms;
}

std::vector<uint16_t> Runner::run_once(const std::string& slug) {
  cuda::Stage& s = impl_->stage(slug);
  impl_->poison(s);
  s.run(impl_->stream);
  return impl_->finish_and_download();
}

std::vector<uint16_t> Runner::run_graph_once(const std::string& slug) {
  cuda::Stage& s = impl_->stage(slug);
  const cuda::CapturedRun graph([&] { s.run(impl_->stream); }, impl_->stream);
  impl_->poison(s);
  graph.launch(impl_->stream);
  return impl_->finish_and_download();
}

Timing Runner::time(const std::string& slug, const TimingOptions& options) {
  cuda::Stage& s = impl_->stage(slug);
  return impl_->timed(options, [&] { s.run(impl_->stream); });
}

Timing Runner::time_graph(const std::string& slug, const TimingOptions& options) {
  cuda::Stage& s = impl_->stage(slug);
  const cuda::CapturedRun graph([&] { s.run(impl_->stream); }, impl_->stream);
  return impl_->timed(options, [&] { graph.launch(impl_->stream); });
}

int64_t Runner::model_bytes(const std::string& slug) const { return impl_->stage(slug).model_bytes(); }

std::string Runner::notes(const std::string& slug) const { return impl_->stage(slug).notes(); }
PartialSplit Runner::half_partial_split(const std::string& slug) const { return impl_->stage(slug).half_partial_split(); }

bool Runner::planner_options(const std::string& slug, PlannerOptions& options) const {
  return impl_->stage(slug).planner_options(impl_->batch, options);
}

// [cta-trace-run]
CtaTrace Runner::trace_ctas(const std::string& slug, int runs) {
  if (!built_with_cta_trace()) throw Error(ErrorKind::usage, kNoCtaTrace);
  Impl& m = *impl_;
  DeviceBuffer<cuda::CtaTraceRecord> records(kCtaTraceCapacity);
  DeviceBuffer<uint32_t> count(1);
  // The plan's kernel arguments copy the target when the stage is prepared.
  cuda::cta_trace_target() = {records.get(), count.get(), static_cast<uint32_t>(kCtaTraceCapacity)};
  try {
    prepare(slug);
  } catch (...) {
    cuda::cta_trace_target() = {};
    throw;
  }
  cuda::cta_trace_target() = {};
  cuda::Stage& s = m.stage(slug);
  CtaTrace trace;
  for (int run = 0; run < runs; ++run) {
    PATLAB_CUDA_CHECK(cudaMemsetAsync(count.get(), 0, sizeof(uint32_t), m.stream));
    PATLAB_CUDA_CHECK(cudaMemsetAsync(records.get(), 0, records.bytes(), m.stream));
    PATLAB_CUDA_CHECK(cudaMemsetAsync(m.flush.get(), run & 0xFF, m.flush.bytes(), m.stream));
    s.run(m.stream);
    PATLAB_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    PATLAB_CUDA_CHECK(cudaGetLastError());
    const uint32_t n = count.download().front();
    const size_t kept = std::min<size_t>(n, kCtaTraceCapacity);
    trace.dropped += static_cast<int64_t>(n - kept);
    const std::vector<cuda::CtaTraceRecord> r = records.download(kept);
    uint64_t first = UINT64_MAX;
    for (const cuda::CtaTraceRecord& c : r) first = std::min(first, c.start_ns);
    for (const cuda::CtaTraceRecord& c : r) {
      CtaSpan span;
      span.run = run;
      span.tile_m = static_cast<int>(c.kernel / cuda::kCtaTraceTagBase);
      span.tile_n = static_cast<int>(c.kernel % cuda::kCtaTraceTagBase);
      span.block = static_cast<int>(c.block);
      span.sm = static_cast<int>(c.sm);
      span.start_us = static_cast<double>(c.start_ns - first) * 1e-3;
      span.end_us = c.end_ns ? static_cast<double>(c.end_ns - first) * 1e-3 : -1.0;
      trace.ctas.push_back(span);
    }
  }
  prepare(slug);  // the stage again, without the trace
  return trace;
}
// [cta-trace-run]

void Runner::release(const std::string& slug) { impl_->stages.erase(slug); }

double Runner::copy_bandwidth_gbs() {
  size_t bytes = kCopyProbeBytes;
  size_t free_b = 0, total_b = 0;
  PATLAB_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  while (bytes > (size_t{64} << 20) && 2 * bytes > free_b / 2) bytes /= 2;
  DeviceBuffer<uint8_t> a(bytes), b(bytes);
  PATLAB_CUDA_CHECK(cudaMemsetAsync(a.get(), 1, bytes, impl_->stream));
  TimingOptions o;
  o.warmup = 3;
  o.repeats = kCopyProbeRepeats;
  o.flush_l2 = false;
  Timing t = impl_->timed(o, [&] {
    PATLAB_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, impl_->stream));
  });
  return 2.0 * static_cast<double>(bytes) / (t.median_us * 1e-6) / 1e9;
}

}  // namespace patlab::gpu
