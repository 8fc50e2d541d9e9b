// The GPU side of `patlab serve` (gpu::ServeSession): K/V pools that live across decode steps,
// written the way the block manager says (copy-on-write copies, new tokens), a batch reset each
// step with the serve loop's plan, and one run of the stage per layer.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/numeric.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/error.hpp"
#include "patlab/gpu.hpp"

namespace patlab::gpu {

namespace {

using cuda::DeviceBuffer;

/// Threads per CTA of the fill kernels.
constexpr int kFillThreads = 256;
/// Key spaces of the value hash, so K, V and q never draw the same numbers.
enum class Stream : uint64_t { k = 1, v = 2, q = 3 };

/// splitmix64: a counter-based hash, so that any element's value is a pure function of its key.
__device__ __forceinline__ uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// An N(0, 1) draw from a 64-bit key (Box-Muller on two 24-bit uniforms).
__device__ __forceinline__ float normal_from(uint64_t key) {
  const uint64_t h = mix(key);
  const float u1 = (static_cast<float>(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
  const float u2 = (static_cast<float>(h & 0xFFFFFFull) + 0.5f) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

/// One slot run of a block to (re)write: slots [offset, offset + count) get new values, slots
/// [offset + count, end) are poisoned (a block that starts filling at slot 0 is fresh: whatever
/// it held before must not look like data).
struct FillRun {
  int32_t block = 0;
  int32_t offset = 0;
  int32_t count = 0;
  int32_t end = 0;
  uint64_t key = 0;  ///< the run's seed: distinct for every run ever written
};

/// Writes K and V of `runs` in every layer: grid (runs, layers), threads over the run's elements.
template <typename T>
__global__ void fill_runs_kernel(const FillRun* __restrict__ runs, T* __restrict__ k, T* __restrict__ v,
                                 int64_t layer_elems, int token_elems, int page) {
  const FillRun run = runs[blockIdx.x];
  const int layer = blockIdx.y;
  const int64_t base = static_cast<int64_t>(layer) * layer_elems +
                       (static_cast<int64_t>(run.block) * page + run.offset) * token_elems;
  const int64_t elems = static_cast<int64_t>(run.end - run.offset) * token_elems;
  const int64_t written = static_cast<int64_t>(run.count) * token_elems;
  const T nan = cuda::from_float<T>(NAN);
  for (int64_t e = threadIdx.x; e < elems; e += blockDim.x) {
    if (e < written) {
      const uint64_t key = (run.key * 64 + static_cast<uint64_t>(layer)) * (uint64_t{1} << 24) + static_cast<uint64_t>(e);
      k[base + e] = cuda::from_float<T>(normal_from(key * 4 + static_cast<uint64_t>(Stream::k)));
      v[base + e] = cuda::from_float<T>(normal_from(key * 4 + static_cast<uint64_t>(Stream::v)));
    } else {
      k[base + e] = nan;
      v[base + e] = nan;
    }
  }
}

/// Draws q ([elems] values) for step `step`.
template <typename T>
__global__ void fill_q_kernel(T* __restrict__ q, int64_t elems, uint64_t seed, uint64_t step) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < elems) q[i] = cuda::from_float<T>(normal_from(((seed * 1000003 + step) * (uint64_t{1} << 32) + i) * 4 + 3));
}

/// Grows `buffer` to at least `count` elements (contents are not kept).
template <typename T>
void ensure(DeviceBuffer<T>& buffer, size_t count) {
  if (buffer.size() < count) buffer = DeviceBuffer<T>(std::max(count, buffer.size() * 2));
}

}  // namespace

struct ServeSession::Impl {
  ServeConfig config;
  DeviceInfo device;
  int64_t token_elems = 0;  ///< elements of one token over all KV heads
  int64_t layer_elems = 0;  ///< elements of one layer's pool
  DeviceBuffer<uint16_t> k, v;
  DeviceBuffer<uint16_t> q, out;
  DeviceBuffer<int32_t> table, lengths;
  DeviceBuffer<FillRun> runs;
  cudaStream_t stream = nullptr;
  std::vector<cudaEvent_t> marks;  ///< layers + 1 events around the layers' runs
  std::unique_ptr<cuda::Stage> stage;
  cuda::DeviceBatch batch;
  Workload host;  ///< the step's layout (and, when checking, q and layer 0's pools)
  uint64_t written_runs = 0;
  uint64_t steps = 0;
  bool prepared = false;

  ~Impl() {
    stage.reset();
    for (cudaEvent_t e : marks) cudaEventDestroy(e);
    if (stream) cudaStreamDestroy(stream);
  }

  uint16_t* k_layer(int l) const { return k.get() + static_cast<size_t>(l) * static_cast<size_t>(layer_elems); }
  uint16_t* v_layer(int l) const { return v.get() + static_cast<size_t>(l) * static_cast<size_t>(layer_elems); }

  /// Fills slot runs in every layer (new values, then NaN to `end`).
  void fill(const std::vector<FillRun>& todo) {
    if (todo.empty()) return;
    ensure(runs, todo.size());
    PATLAB_CUDA_CHECK(cudaMemcpyAsync(runs.get(), todo.data(), todo.size() * sizeof(FillRun), cudaMemcpyHostToDevice, stream));
    const Shape& s = config.shape;
    cuda::dispatch_dtype(s.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      fill_runs_kernel<T><<<dim3(static_cast<unsigned>(todo.size()), static_cast<unsigned>(config.layers)), kFillThreads, 0,
                            stream>>>(runs.get(), reinterpret_cast<T*>(k.get()), reinterpret_cast<T*>(v.get()),
                                      layer_elems, static_cast<int>(token_elems), s.page_size);
      PATLAB_CUDA_CHECK_LAUNCH();
    });
    // The run list is reused by the next fill: wait until this one has read it.
    PATLAB_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
};

ServeSession::ServeSession(const ServeConfig& config) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.config = config;
  m.device = probe();
  if (!m.device.available) throw Error(m.device.broken ? ErrorKind::device : ErrorKind::unsupported, m.device.reason);
  config.shape.validate();
  require(config.pool_blocks > 0, "serve: the pool needs at least one block");
  require(config.layers >= 1, "serve: --layers must be at least 1");
  m.stage = cuda::make_stage(config.stage);
  if (!m.stage) throw Error(ErrorKind::usage, "no GPU stage called '" + config.stage + "' (patlab list shows them)");
  const std::string why = m.stage->unsupported(config.shape);
  if (!why.empty()) throw Error(ErrorKind::unsupported, config.stage + ": " + why);
  if (config.shape.kv_fp8())
    throw Error(ErrorKind::unsupported, "the serve loop keeps a 16-bit KV cache (--kv-dtype auto)");
  PATLAB_CUDA_CHECK(cudaSetDevice(0));
  const Shape& s = config.shape;
  m.token_elems = int64_t{s.num_kv_heads} * s.head_dim;
  m.layer_elems = int64_t{config.pool_blocks} * s.page_size * m.token_elems;
  const size_t all = static_cast<size_t>(m.layer_elems) * static_cast<size_t>(config.layers);
  m.k = DeviceBuffer<uint16_t>(all);
  m.v = DeviceBuffer<uint16_t>(all);
  PATLAB_CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  cuda::poison(m.k.span(), m.stream);
  cuda::poison(m.v.span(), m.stream);
  m.marks.resize(static_cast<size_t>(config.layers) + 1);
  for (cudaEvent_t& e : m.marks) PATLAB_CUDA_CHECK(cudaEventCreate(&e));
  PATLAB_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  m.batch.shape = s;
  m.batch.device = &m.device;
  m.batch.max_kv_tile = config.max_kv_tile;
  m.batch.host = &m.host;
  m.batch.take_leaves = false;  // the serve loop re-plans incrementally, and that planner takes no leaf tails
}

ServeSession::~ServeSession() = default;

const DeviceInfo& ServeSession::device() const { return impl_->device; }

bool ServeSession::planner_options(PlannerOptions& options) const {
  return impl_->stage->planner_options(impl_->batch, options);
}

int64_t ServeSession::pool_bytes() const {
  return 2 * static_cast<int64_t>(impl_->k.bytes());
}

void ServeSession::apply(const serving::WriteLog& log) {
  Impl& m = *impl_;
  const Shape& s = m.config.shape;
  const size_t block_bytes = static_cast<size_t>(s.page_size) * static_cast<size_t>(m.token_elems) * sizeof(uint16_t);
  const size_t token_bytes = static_cast<size_t>(m.token_elems) * sizeof(uint16_t);
  // Copies first: they read blocks as they were before this step's writes.
  for (const serving::BlockCopy& c : log.copies) {
    require(c.src >= 0 && c.src < m.config.pool_blocks && c.dst >= 0 && c.dst < m.config.pool_blocks &&
                c.tokens >= 0 && c.tokens <= s.page_size,
            "serve: block copy out of the pool");
    for (int l = 0; l < m.config.layers; ++l)
      for (uint16_t* pool : {m.k_layer(l), m.v_layer(l)}) {
        char* dst = reinterpret_cast<char*>(pool) + static_cast<size_t>(c.dst) * block_bytes;
        const char* src = reinterpret_cast<const char*>(pool) + static_cast<size_t>(c.src) * block_bytes;
        const size_t used = static_cast<size_t>(c.tokens) * token_bytes;
        PATLAB_CUDA_CHECK(cudaMemcpyAsync(dst, src, used, cudaMemcpyDeviceToDevice, m.stream));
        PATLAB_CUDA_CHECK(cudaMemsetAsync(dst + used, cuda::kPoisonByte, block_bytes - used, m.stream));
      }
  }
  std::vector<FillRun> todo;
  todo.reserve(log.writes.size());
  for (const serving::KvWrite& w : log.writes) {
    require(w.block >= 0 && w.block < m.config.pool_blocks && w.offset >= 0 && w.count > 0 &&
                w.offset + w.count <= s.page_size,
            "serve: KV write out of the pool");
    FillRun r;
    r.block = w.block;
    r.offset = w.offset;
    r.count = w.count;
    r.end = w.offset == 0 ? s.page_size : w.offset + w.count;
    r.key = ++m.written_runs;
    todo.push_back(r);
  }
  m.fill(todo);
}

double ServeSession::set_batch(const PagedLayout& layout, const Plan* plan) {
  Impl& m = *impl_;
  const auto t0 = std::chrono::steady_clock::now();
  require(layout.shape.num_q_heads == m.config.shape.num_q_heads && layout.shape.num_kv_heads == m.config.shape.num_kv_heads &&
              layout.shape.head_dim == m.config.shape.head_dim && layout.shape.page_size == m.config.shape.page_size &&
              layout.shape.dtype == m.config.shape.dtype,
          "serve: the step's layout has another shape than the session");
  m.host = Workload{};
  m.host.layout = layout;
  m.prepared = false;
  const int R = layout.num_requests();
  if (R == 0) return 0;
  for (const auto& table : layout.block_tables)
    for (int32_t b : table)
      require(b >= 0 && b < m.config.pool_blocks, "serve: a block table points outside the pool");
  const int stride = layout.table_stride();
  const std::vector<int32_t> table = layout.padded_block_tables();
  const size_t q_elems = static_cast<size_t>(R) * m.config.shape.num_q_heads * m.config.shape.head_dim;
  ensure(m.table, table.size());
  ensure(m.lengths, static_cast<size_t>(R));
  ensure(m.q, q_elems);
  ensure(m.out, q_elems);
  PATLAB_CUDA_CHECK(cudaMemcpyAsync(m.table.get(), table.data(), table.size() * sizeof(int32_t), cudaMemcpyHostToDevice, m.stream));
  PATLAB_CUDA_CHECK(cudaMemcpyAsync(m.lengths.get(), layout.lengths.data(), static_cast<size_t>(R) * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, m.stream));
  ++m.steps;
  cuda::dispatch_dtype(m.config.shape.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const unsigned blocks = static_cast<unsigned>((q_elems + kFillThreads - 1) / kFillThreads);
    fill_q_kernel<T><<<blocks, kFillThreads, 0, m.stream>>>(reinterpret_cast<T*>(m.q.get()), static_cast<int64_t>(q_elems),
                                                           m.config.seed, m.steps);
    PATLAB_CUDA_CHECK_LAUNCH();
  });
  PATLAB_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  m.batch.requests = R;
  m.batch.table_stride = stride;
  m.batch.q = m.q.get();
  m.batch.k_pool = m.k_layer(0);
  m.batch.v_pool = m.v_layer(0);
  m.batch.block_table = m.table.get();
  m.batch.lengths = m.lengths.get();
  m.batch.out = m.out.get();
  if (plan != nullptr)
    m.stage->prepare_with_plan(m.batch, *plan);  // a copy the stage keeps; a stage that runs no plan just prepares
  else
    m.stage->prepare(m.batch);
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  m.prepared = true;
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<double> ServeSession::run_layers() {
  Impl& m = *impl_;
  std::vector<double> us(static_cast<size_t>(m.config.layers), 0.0);
  if (!m.prepared) return us;
  PATLAB_CUDA_CHECK(cudaEventRecord(m.marks[0], m.stream));
  for (int l = 0; l < m.config.layers; ++l) {
    m.stage->set_pools(m.k_layer(l), m.v_layer(l));
    m.stage->run(m.stream);
    PATLAB_CUDA_CHECK(cudaEventRecord(m.marks[static_cast<size_t>(l) + 1], m.stream));
  }
  PATLAB_CUDA_CHECK(cudaEventSynchronize(m.marks.back()));
  PATLAB_CUDA_CHECK(cudaGetLastError());
  for (int l = 0; l < m.config.layers; ++l) {
    float ms = 0;
    PATLAB_CUDA_CHECK(cudaEventElapsedTime(&ms, m.marks[static_cast<size_t>(l)], m.marks[static_cast<size_t>(l) + 1]));
    us[static_cast<size_t>(l)] = 1000.0 * ms;
  }
  return us;
}

void ServeSession::snapshot_layer0(Workload& host, std::vector<uint16_t>& out, PartialSplit& split) {
  Impl& m = *impl_;
  require(m.prepared, "serve: no batch to check");
  cuda::poison(m.out.span(), m.stream);
  cuda::poison_workspace(*m.stage, m.stream);
  m.stage->set_pools(m.k_layer(0), m.v_layer(0));
  m.stage->run(m.stream);
  PATLAB_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  PATLAB_CUDA_CHECK(cudaGetLastError());
  const Shape& s = m.config.shape;
  const size_t q_elems = static_cast<size_t>(m.batch.requests) * s.num_q_heads * s.head_dim;
  host = Workload{};
  host.layout = m.host.layout;
  out.resize(q_elems);
  host.q.resize(q_elems);
  host.resize_pools(static_cast<size_t>(m.layer_elems));  // 16-bit elements: the serve loop keeps no fp8 cache
  PATLAB_CUDA_CHECK(cudaMemcpy(out.data(), m.out.get(), q_elems * sizeof(uint16_t), cudaMemcpyDeviceToHost));
  PATLAB_CUDA_CHECK(cudaMemcpy(host.q.data(), m.q.get(), q_elems * sizeof(uint16_t), cudaMemcpyDeviceToHost));
  PATLAB_CUDA_CHECK(cudaMemcpy(host.k_pool.data(), m.k_layer(0), host.k_pool.size(), cudaMemcpyDeviceToHost));
  PATLAB_CUDA_CHECK(cudaMemcpy(host.v_pool.data(), m.v_layer(0), host.v_pool.size(), cudaMemcpyDeviceToHost));
  split = m.stage->half_partial_split();
}

}  // namespace patlab::gpu
