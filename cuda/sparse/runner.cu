// The host side of sparse decode on the GPU (patlab/cuda/sparse.hpp): the workload and its
// compressed blocks on the device, one step's launches in order, poisoning before checked runs,
// and the bench protocol's timing (timing.cuh).
#include <algorithm>
#include <chrono>
#include <climits>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/check.cuh"
#include "patlab/cuda/sparse.hpp"
#include "patlab/cuda/sparse_kernels.cuh"
#include "patlab/cuda/timing.cuh"
#include "patlab/error.hpp"

namespace patlab::gpu {

using cuda::DeviceBuffer;

const char* order_name(SparseOrder order) {
  switch (order) {
    case SparseOrder::nsa: return "nsa";
    case SparseOrder::fsa: return "fsa";
    case SparseOrder::split: return "split";
  }
  return "?";
}

namespace {

/// The stored slot of every (request, compressed block), in cmp_begin's order: compressed blocks
/// that cover the same tokens of the same physical pages (a shared prefix) share one slot.
/// Returns the slots and sets `distinct` to their number.
std::vector<int32_t> compressed_slots(const PagedLayout& layout, const std::vector<int32_t>& cmp_begin,
                                      const sparse::SparseOptions& o, int64_t& distinct) {
  const int page = layout.shape.page_size;
  std::vector<int32_t> slots(static_cast<size_t>(cmp_begin.back()));
  std::map<std::vector<int32_t>, int32_t> index;  // (first token's offset in its page, pages) -> slot
  for (int r = 0; r < layout.num_requests(); ++r) {
    const std::vector<int32_t>& table = layout.block_tables[static_cast<size_t>(r)];
    for (int32_t j = 0; j < cmp_begin[static_cast<size_t>(r) + 1] - cmp_begin[static_cast<size_t>(r)]; ++j) {
      const int64_t first = int64_t{j} * o.cmp_stride, last = first + o.cmp_block - 1;
      std::vector<int32_t> key{static_cast<int32_t>(first % page)};
      key.insert(key.end(), table.begin() + first / page, table.begin() + last / page + 1);
      const auto it = index.emplace(std::move(key), static_cast<int32_t>(index.size())).first;
      slots[static_cast<size_t>(cmp_begin[static_cast<size_t>(r)] + j)] = it->second;
    }
  }
  distinct = static_cast<int64_t>(index.size());
  return slots;
}

/// Prefix sums of `count(len)` over the requests: [R + 1].
template <typename F>
std::vector<int32_t> prefix(const PagedLayout& layout, F&& count) {
  std::vector<int32_t> out(static_cast<size_t>(layout.num_requests()) + 1, 0);
  for (int r = 0; r < layout.num_requests(); ++r) {
    const int64_t next = int64_t{out[static_cast<size_t>(r)]} + count(layout.lengths[static_cast<size_t>(r)]);
    require(next <= INT32_MAX, "too many compressed or selection blocks for 32-bit indices");
    out[static_cast<size_t>(r) + 1] = static_cast<int32_t>(next);
  }
  return out;
}

}  // namespace

struct SparseRunner::Impl {
  DeviceInfo device;
  const Workload* host = nullptr;
  sparse::SparseOptions options;
  std::vector<int32_t> sel_begin_host;
  DeviceBuffer<uint16_t> q, out, sel_out, win_out;
  DeviceBuffer<uint8_t> k, v, flush;
  DeviceBuffer<int32_t> table, lengths, cmp_begin, cmp_slot, sel_begin, taken, chosen, count;
  DeviceBuffer<float> kc, vc, probs, o_cmp, scores, mass;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  cuda::SparseBatch batch;
  cuda::SelectionView view;
  cuda::SelectParams params;
  std::map<SparseOrder, std::unique_ptr<cuda::SelectedBranch>> branches;

  ~Impl() {
    branches.clear();
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
  }

  const Shape& shape() const { return host->shape(); }

  cuda::SelectedBranch& branch(SparseOrder order) {
    auto it = branches.find(order);
    if (it == branches.end())
      throw Error(ErrorKind::usage, std::string("sparse order '") + order_name(order) + "' was not prepared");
    return *it->second;
  }

  void select() { cuda::launch_select(shape(), batch, view, params, stream); }

  /// Enqueues the selected branch `b` (a prepared order's) on the stream, into sel_out.
  void run_selected(const cuda::SelectedBranch& b) { b.run(shape(), batch, sel_out.get(), stream); }

  // [sparse-step]
  /// One decode step: selection (and the compressed branch), the selected branch in `order`,
  /// the window, the gates.
  void step(SparseOrder order) {
    select();
    run_selected(branch(order));
    cuda::launch_window(shape(), batch, options.window, win_out.get(), stream);
    cuda::launch_gates(shape(), static_cast<int64_t>(out.size()), o_cmp.get(), sel_out.get(), win_out.get(), options,
                       out.get(), stream);
  }
  // [sparse-step]

  template <typename Launch>
  Timing timed(const TimingOptions& t, Launch&& launch) {
    return cuda::time_launches(stream, start, stop, flush, t, std::forward<Launch>(launch));
  }
};

SparseRunner::SparseRunner(const Workload& w, const sparse::SparseOptions& o) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.device = probe();
  if (!m.device.available) throw Error(ErrorKind::unsupported, m.device.reason);
  const Shape& s = w.shape();
  if (s.kv_fp8())
    throw Error(ErrorKind::unsupported, "sparse decode on the GPU reads 16-bit K and V; an fp8 KV cache is not supported");
  PATLAB_CUDA_CHECK(cudaSetDevice(0));
  m.host = &w;
  m.options = o;
  const PagedLayout& L = w.layout;
  const int stride = L.table_stride();
  const std::vector<int32_t> table = L.padded_block_tables();
  const std::vector<int32_t> cmp_begin = prefix(L, [&](int64_t len) { return sparse::compressed_block_count(len, o); });
  m.sel_begin_host = prefix(L, [&](int64_t len) { return sparse::selection_block_count(len, o); });
  int64_t distinct = 0;
  const std::vector<int32_t> cmp_slot = compressed_slots(L, cmp_begin, o, distinct);
  const size_t cmp_total = static_cast<size_t>(cmp_begin.back()), sel_total = static_cast<size_t>(m.sel_begin_host.back());
  const size_t hkv = static_cast<size_t>(s.num_kv_heads), hq = static_cast<size_t>(s.num_q_heads);
  const size_t d = static_cast<size_t>(s.head_dim), rows = static_cast<size_t>(L.num_requests()) * hkv;

  m.q = DeviceBuffer<uint16_t>(w.q);
  m.k = DeviceBuffer<uint8_t>(w.k_pool);
  m.v = DeviceBuffer<uint8_t>(w.v_pool);
  m.out = DeviceBuffer<uint16_t>(w.q.size());
  m.sel_out = DeviceBuffer<uint16_t>(w.q.size());
  m.win_out = DeviceBuffer<uint16_t>(w.q.size());
  m.table = DeviceBuffer<int32_t>(table);
  m.lengths = DeviceBuffer<int32_t>(L.lengths);
  m.cmp_begin = DeviceBuffer<int32_t>(cmp_begin);
  m.cmp_slot = DeviceBuffer<int32_t>(cmp_slot);
  m.sel_begin = DeviceBuffer<int32_t>(m.sel_begin_host);
  m.kc = DeviceBuffer<float>(static_cast<size_t>(distinct) * hkv * d);
  m.vc = DeviceBuffer<float>(static_cast<size_t>(distinct) * hkv * d);
  m.probs = DeviceBuffer<float>(cmp_total * hq);
  m.o_cmp = DeviceBuffer<float>(w.q.size());
  m.scores = DeviceBuffer<float>(sel_total * hkv);
  m.taken = DeviceBuffer<int32_t>(sel_total * hkv);
  m.chosen = DeviceBuffer<int32_t>(sel_total * hkv);
  m.count = DeviceBuffer<int32_t>(rows);
  m.mass = DeviceBuffer<float>(rows);
  m.flush = cuda::l2_flush_buffer(m.device.l2_bytes);
  PATLAB_CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  PATLAB_CUDA_CHECK(cudaEventCreate(&m.start));
  PATLAB_CUDA_CHECK(cudaEventCreate(&m.stop));

  m.batch.q = m.q.get();
  m.batch.k_pool = m.k.get();
  m.batch.v_pool = m.v.get();
  m.batch.block_table = m.table.get();
  m.batch.table_stride = stride;
  m.batch.lengths = m.lengths.get();
  m.batch.geo = cuda::pool_geometry(s);
  m.batch.requests = L.num_requests();
  m.batch.num_q_heads = s.num_q_heads;
  m.batch.group = s.group();
  m.view = {m.kc.get(),    m.vc.get(),    m.cmp_begin.get(), m.cmp_slot.get(), m.probs.get(), m.o_cmp.get(),
            m.sel_begin.get(), m.scores.get(), m.taken.get(),     m.chosen.get(),   m.count.get(), m.mass.get()};
  m.params.cmp_block = o.cmp_block;
  m.params.cmp_stride = o.cmp_stride;
  m.params.sel_block = o.sel_block;
  m.params.top_n = o.top_n;
  m.params.progressive = o.budget == sparse::Budget::progressive;
  m.params.tau = static_cast<float>(o.tau);
  m.params.min_budget = o.min_budget;
  m.params.max_budget = o.max_budget;
  cuda::launch_compress(s, m.batch, m.view, o.cmp_block, o.cmp_stride, m.stream);
  PATLAB_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  PATLAB_CUDA_CHECK(cudaGetLastError());
}

SparseRunner::~SparseRunner() = default;

const DeviceInfo& SparseRunner::device() const { return impl_->device; }

sparse::Selection SparseRunner::select() {
  Impl& m = *impl_;
  cuda::poison(m.chosen.span(), m.stream);
  cuda::poison(m.count.span(), m.stream);
  m.select();
  PATLAB_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  PATLAB_CUDA_CHECK(cudaGetLastError());
  const std::vector<int32_t> chosen = m.chosen.download(), count = m.count.download();
  const std::vector<float> mass = m.mass.download();
  const int hkv = m.shape().num_kv_heads;
  sparse::Selection sel;
  sel.num_kv_heads = hkv;
  sel.blocks.resize(count.size());
  sel.estimated_mass.assign(mass.begin(), mass.end());
  for (int r = 0; r < m.host->num_requests(); ++r) {
    const int64_t first = m.sel_begin_host[static_cast<size_t>(r)];
    const int64_t blocks = m.sel_begin_host[static_cast<size_t>(r) + 1] - first;
    for (int kvh = 0; kvh < hkv; ++kvh) {
      const size_t row = static_cast<size_t>(r) * hkv + kvh;
      const int32_t n = count[row];
      require(n >= 1 && n <= blocks, "the selection kernel chose " + std::to_string(n) + " blocks for request " +
                                         std::to_string(r) + " (of " + std::to_string(blocks) + ")");
      const auto at = chosen.begin() + first * hkv + kvh * blocks;
      sel.blocks[row].assign(at, at + n);
    }
  }
  return sel;
}

double SparseRunner::prepare(SparseOrder order, const sparse::Selection& sel, SpanOptions span) {
  Impl& m = *impl_;
  check_span_options(span);
  const auto t0 = std::chrono::steady_clock::now();
  m.branches[order] = std::make_unique<cuda::SelectedBranch>(order, m.host->layout, sel, m.options, m.device.sm_count,
                                                             m.device.smem_per_block_optin, span);
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

SparseOutputs SparseRunner::run_once(SparseOrder order) {
  Impl& m = *impl_;
  const cuda::SelectedBranch& b = m.branch(order);
  for (const cuda::DeviceSpan& span : {m.out.span(), m.sel_out.span(), m.win_out.span(), m.o_cmp.span(),
                                       m.chosen.span(), b.partials(), b.partial_lse()})
    cuda::poison(span, m.stream);
  m.step(order);
  PATLAB_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  PATLAB_CUDA_CHECK(cudaGetLastError());
  return {m.out.download(), m.sel_out.download()};
}

Timing SparseRunner::time_selection(const TimingOptions& t) {
  return impl_->timed(t, [&] { impl_->select(); });
}

Timing SparseRunner::time_selected(SparseOrder order, const TimingOptions& t) {
  Impl& m = *impl_;
  const cuda::SelectedBranch& b = m.branch(order);
  return m.timed(t, [&] { m.run_selected(b); });
}

// [selected-graph]
std::vector<uint16_t> SparseRunner::run_selected_graph_once(SparseOrder order) {
  Impl& m = *impl_;
  const cuda::SelectedBranch& b = m.branch(order);
  const cuda::CapturedRun graph([&] { m.run_selected(b); }, m.stream);
  for (const cuda::DeviceSpan& span : {m.sel_out.span(), b.partials(), b.partial_lse()}) cuda::poison(span, m.stream);
  graph.launch(m.stream);
  PATLAB_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  PATLAB_CUDA_CHECK(cudaGetLastError());
  return m.sel_out.download();
}

Timing SparseRunner::time_selected_graph(SparseOrder order, const TimingOptions& t) {
  Impl& m = *impl_;
  const cuda::SelectedBranch& b = m.branch(order);
  const cuda::CapturedRun graph([&] { m.run_selected(b); }, m.stream);
  return m.timed(t, [&] { graph.launch(m.stream); });
}
// [selected-graph]

Timing SparseRunner::time_step(SparseOrder order, const TimingOptions& t) {
  return impl_->timed(t, [&] { impl_->step(order); });
}

std::string SparseRunner::notes(SparseOrder order) const { return impl_->branch(order).notes(); }

}  // namespace patlab::gpu
