/// @file gpu.hpp
/// @brief The GPU side as the CLI and the tests see it: plain C++, no CUDA types, so that a
/// build without nvcc compiles the same callers (it links cuda/no_cuda.cpp instead).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/serving/block_manager.hpp"

namespace patlab {
struct CheckResult;  // patlab/truth/check.hpp: kept out of this header, which .cu files include (no Eigen there)
}  // namespace patlab

namespace patlab::gpu {

/// What the GPU offers, or why there is none.
struct DeviceInfo {
  /// True when device 0 was found and can run the kernels (compute capability 8.0 or newer).
  bool available = false;
  std::string reason;        ///< why not available ("built without CUDA", "no CUDA device", ...)
  /// True when CUDA itself failed (driver too old, runtime error, unreadable device): unlike
  /// "no CUDA device" or "built without CUDA", this is a fault to report, never a skip.
  bool broken = false;
  /// The device's name, e.g. "NVIDIA H200".
  std::string name;
  /// Streaming multiprocessors (SMs) of the device.
  int sm_count = 0;
  /// @var DeviceInfo::cc_major
  /// Compute capability, major version (9 on H100 and H200).
  /// @var DeviceInfo::cc_minor
  /// Compute capability, minor version.
  int cc_major = 0, cc_minor = 0;
  /// L2 cache size in bytes.
  int64_t l2_bytes = 0;
  /// Global memory of the device in bytes.
  int64_t memory_bytes = 0;
  int64_t smem_per_block_optin = 0;  ///< largest dynamic shared memory a CTA may ask for
  /// @var DeviceInfo::driver_version
  /// CUDA version the driver supports, as cudaDriverGetVersion() encodes it (1000 x major + 10 x minor).
  /// @var DeviceInfo::runtime_version
  /// CUDA runtime version, as cudaRuntimeGetVersion() encodes it (1000 x major + 10 x minor).
  int driver_version = 0, runtime_version = 0;
  /// Peak SM clock in MHz, as cudaDevAttrClockRate gives it (0 when it cannot be read).
  int sm_clock_mhz = 0, memory_clock_mhz = 0;  ///< peak memory clock in MHz (cudaDevAttrMemoryClockRate; 0: unread)
  std::string driver;                          ///< e.g. "580.159.04" when NVML-free lookup works
};

/// True when this build has the CUDA stages.
bool built_with_cuda();

/// Looks for device 0. Never throws.
DeviceInfo probe();

/// Timing protocol of `bench` and `compare` (docs/METHOD in the tutorial).
struct TimingOptions {
  int warmup = 5;        ///< untimed runs first
  int repeats = 30;      ///< timed runs; the median is reported
  bool flush_l2 = true;  ///< overwrite a buffer of 2x the L2 size before every timed run
  /// With flush_l2: then read that buffer back, so the timed run starts with no dirty line in L2
  /// (the writes alone leave about the L2's size of dirty lines, written back to DRAM while the
  /// timed run reads). A diagnostic; the default protocol is the writes alone.
  bool clean_l2 = false;
};

// [bucket-launch]
/// How stages 7 and 8 start their tile buckets, largest CTAs first (tutorial chapter 16), on a
/// GPU of compute capability 9.0 or later (before it, a stream per bucket and no gate). The
/// default is chain: 0.947x the time of gates eager, 0.969x replayed, no slower on any of 18
/// workloads (docs/results/2026-12-04-h200-bucket-chain, run 2).
enum class BucketLaunch {
  /// A stream per bucket; launched eagerly, a bucket waits until the buckets of larger CTAs
  /// launched before it have begun all their CTAs (launch completion events); in a CUDA graph the
  /// launch order alone.
  gates,
  /// One stream; each bucket may begin once the bucket before it has begun all its CTAs
  /// (programmatic dependent launch), in eager runs and graphs alike; among buckets of one
  /// footprint the one of fewer packs goes first (BucketOrder::chain).
  chain,
};
// [bucket-launch]

/// The name of `launch` as the command line spells it ("gates", "chain").
inline const char* bucket_launch_name(BucketLaunch launch) {
  return launch == BucketLaunch::chain ? "chain" : "gates";
}

// [cluster-merge-mode]
/// Where stage 9 merges the partials of a query that has several (tutorial chapter 18, section 9).
enum class ClusterMerge {
  /// In its attention kernel (issue 13's design, `--cluster-merge folded`): the CTA whose item
  /// completes a query's head group merges it, with one counter per query, KV head and consumer
  /// warp; no second kernel.
  folded,
  /// In the merge kernel of stages 3-8, launched after the persistent grid on the same stream: no
  /// CTA runs a merge behind its own item.
  kernel,
};
/// Stage 9's merge when nothing says otherwise: the kernel. On an H100 the folded merge took
/// 1.03-1.43x its time on eight shared-prefix batches (geometric mean 1.19), the same without
/// sharing (docs/results/2026-12-07-stage9-merge-kernel, run k1): a CTA's merge waits for its
/// own last item, so the grid ends in rounds of a short leaf and then its merge.
inline constexpr ClusterMerge kDefaultClusterMerge = ClusterMerge::kernel;
// [cluster-merge-mode]

/// The name of `merge` as the command line spells it ("folded", "kernel").
inline const char* cluster_merge_name(ClusterMerge merge) {
  return merge == ClusterMerge::folded ? "folded" : "kernel";
}

/// Median, min and max of CUDA-event timings.
struct Timing {
  /// @var Timing::median_us
  /// Median of the timed runs, in microseconds.
  /// @var Timing::min_us
  /// Fastest timed run, in microseconds.
  /// @var Timing::max_us
  /// Slowest timed run, in microseconds.
  double median_us = 0, min_us = 0, max_us = 0;
  /// Timed runs summarised (0: none, every field 0).
  int repeats = 0;
};

/// One CTA of a pack kernel in a traced run (Runner::trace_ctas()).
struct CtaSpan {
  int run = 0;          ///< which of the traced runs
  int tile_m = 0;       ///< the kernel's pack tile: rows (stage 9: the item's cluster size; 0 for a folded merge)
  int tile_n = 0;       ///< and KV tokens (stage 9: the slice's rows, or the merge's queries)
  int block = 0;        ///< blockIdx.x in its launch (stage 9: the work item)
  int sm = 0;           ///< the SM it ran on
  double start_us = 0;  ///< start, from the run's first CTA start
  double end_us = 0;    ///< end, on the same clock (negative: the CTA never stamped it)
};

/// What a traced run of one stage returned: its CTAs and the CTAs it could not record.
struct CtaTrace {
  /// Every recorded CTA of every traced run.
  std::vector<CtaSpan> ctas;
  int64_t dropped = 0;  ///< CTAs past the trace buffer's capacity (not in `ctas`)
};

/// True when this build's pack kernels record the CTA timeline (configured with
/// -Dcta_trace=true; cuda/include/patlab/cuda/cta_trace.cuh).
bool built_with_cta_trace();

/// Why Runner::trace_ctas() cannot run in a build without the CTA timeline, as one line.
inline constexpr const char* kNoCtaTrace =
    "this build records no CTA timeline: configure a build directory with -Dcta_trace=true (its kernels "
    "are a diagnostic variant; time with a default build)";

/// A workload resident on the GPU, and the stages prepared for it.
class Runner {
 public:
  /// Uploads the workload; throws Error(device) on a CUDA error or out-of-memory.
  explicit Runner(const Workload& w);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// The device in use.
  const DeviceInfo& device() const;
  /// Caps the KV tile the planner may pick for stages that use its tile table (32, 64 or 128;
  /// 0 restores the default). Applies to stages prepared afterwards.
  void set_max_kv_tile(int tokens);
  /// Widens (or narrows) the waves of uncut CTAs within which stages 7 and 8 price wave-fill cuts
  /// (1..kMaxFillWindowWaves; 0 restores kDefaultFillWindowWaves). Applies to stages prepared afterwards.
  void set_fill_window(int waves);
  /// Caps the cluster size stage 9 may choose (1, 2 or 4; 0 restores the default,
  /// kStagesMaxCluster). Applies to stages prepared afterwards.
  void set_max_cluster(int ctas);
  /// Where stage 9 merges (default kDefaultClusterMerge). Applies to stages prepared afterwards.
  void set_cluster_merge(ClusterMerge merge);
  /// Stage 8's routing of packs and its row cap (PlannerOptions::hopper; default kStage8Routing;
  /// stage 9 keeps its own, kClusterRouting). Throws Error(usage) for a routing
  /// check_hopper_routing() refuses. Applies to stages prepared afterwards.
  void set_hopper_routing(const HopperRouting& routing);
  /// How stages 7 and 8 start their tile buckets (default BucketLaunch::chain). Applies to stages
  /// prepared afterwards.
  void set_bucket_launch(BucketLaunch launch);
  /// Stages 7 and 8 take leaf tails (PlannerOptions::take_leaves; by default kStagesTakeLeaves), in packs of
  /// at most `max_rows` rows (PlannerOptions::leaf_tail_rows), kept where they remove at least
  /// `min_cut` of the plan's CTAs (PlannerOptions::leaf_tail_min_cut). The planner checks the
  /// values. Applies to stages prepared afterwards.
  void set_take_leaves(bool take, int max_rows = kLeafTailRows, double min_cut = kTailMinCtaCut);
  /// Stages 4-9 store their partials' o in the output's 16-bit type (DeviceBatch::half_partials;
  /// traffic::kStagesHalfPartials), or in fp32 with `half` false (`--fp32-partials`). Applies to stages prepared
  /// afterwards.
  void set_half_partials(bool half);
  /// Stage 10's kernel instance: its row cap, 16 or 64 (0 restores the default: its model
  /// chooses, packinfer::choose_group_instance()). Throws Error(usage) for another value. Applies
  /// to stages prepared afterwards.
  void set_group_rows(int rows);
  /// Why `slug` cannot run this workload's shape, or empty.
  std::string unsupported(const std::string& slug) const;
  /// Plans and allocates the stage's workspace; returns the host milliseconds this took
  /// (planning plus plan upload). Throws Error(unsupported) with the reason, Error(device).
  double prepare(const std::string& slug);
  /// Poisons the output and the stage's workspace (partials) with NaN, runs the stage once, and
  /// returns the output ([R, Hq, d] 16-bit patterns).
  std::vector<uint16_t> run_once(const std::string& slug);
  /// Captures the stage in a CUDA graph (as time_graph() does), poisons the output and the
  /// workspace, replays the graph once and returns the output, like run_once().
  std::vector<uint16_t> run_graph_once(const std::string& slug);
  /// Times the stage's launches with CUDA events under `options`.
  Timing time(const std::string& slug, const TimingOptions& options);
  /// Captures the stage in a CUDA graph and times its replays.
  Timing time_graph(const std::string& slug, const TimingOptions& options);
  /// Bytes the stage moves through HBM by its own access pattern (its traffic model).
  int64_t model_bytes(const std::string& slug) const;
  /// One line about the stage's launch (CTAs, buckets, splits...).
  std::string notes(const std::string& slug) const;
  /// Where the prepared stage `slug` stores 16-bit partials (set_half_partials()): each request's
  /// partials' keys, for reference_for_partials(); empty for fp32 partials or none.
  PartialSplit half_partial_split(const std::string& slug) const;
  /// The planner options the prepared stage plans with (tiles, KV split, the device's SM count
  /// and the occupancy of its pack kernels), or false when it executes no plan (stages 1-3).
  bool planner_options(const std::string& slug, PlannerOptions& options) const;
  /// Prepares `slug` with its pack kernels recording the CTA timeline, runs it `runs` times
  /// (L2 flushed before each, as timed runs are) and returns every pack-kernel CTA of each run,
  /// with times from that run's first CTA start; the merge and the kernels of stages 1-3 and 8-10
  /// other than the pack kernel are not recorded. Leaves the stage prepared without the trace.
  /// Throws Error(usage) with kNoCtaTrace unless built_with_cta_trace().
  CtaTrace trace_ctas(const std::string& slug, int runs);
  /// Frees the stage's workspace.
  void release(const std::string& slug);
  /// Device-to-device copy bandwidth measured now (GB/s counting read + write; 1 GiB, median
  /// of 20).
  double copy_bandwidth_gbs();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// What a serving session on the GPU holds: the K/V pools of a block manager's whole pool for
/// `layers` layers (layer-strided: layer l's pool follows layer l-1's), and the stage it runs.
struct ServeConfig {
  Shape shape;              ///< heads, head dim, page size, dtype
  int32_t pool_blocks = 0;  ///< physical blocks of the pool (block ids are below this)
  int layers = 1;           ///< layers: the same block tables and plan, one pool slice each
  std::string stage = "pat";  ///< GPU stage slug (patlab list)
  int max_kv_tile = 0;      ///< planner's KV tile cap for stages that use its table (0: default)
  uint64_t seed = 1;        ///< seed of the K/V and q values written
};

/// The GPU side of `patlab serve`: a pool that lives across decode steps. Each step the serve
/// loop applies the block manager's writes (copy-on-write copies, then new tokens' K/V), sets
/// the batch (block tables, lengths, q) with the step's plan, and runs the stage on every layer.
class ServeSession {
 public:
  /// Allocates the pools (poisoned with NaN) on device 0; throws Error(unsupported) without a
  /// usable device or stage, Error(device) on a CUDA error or out-of-memory.
  explicit ServeSession(const ServeConfig& config);
  ~ServeSession();
  ServeSession(const ServeSession&) = delete;
  ServeSession& operator=(const ServeSession&) = delete;
  /// The device in use.
  const DeviceInfo& device() const;
  /// The planner options the stage plans with (its tiles, KV split and the device's SM count),
  /// or false when the stage executes no plan (stages 1-3): then `plan` below may be null.
  bool planner_options(PlannerOptions& options) const;
  /// Device bytes of the pools (all layers).
  int64_t pool_bytes() const;
  /// Applies a step's cache changes to every layer: the copies first (slots [0, tokens) of src
  /// into dst), then fresh seeded random K/V for every written slot run.
  void apply(const serving::WriteLog& log);
  /// Sets the step's batch: uploads block tables and lengths, draws q, and prepares the stage
  /// (with `plan` for plan-executing stages; it must be valid for `layout`). Returns host ms.
  double set_batch(const PagedLayout& layout, const Plan* plan);
  /// Runs the stage once per layer; returns each layer's kernel time in microseconds (CUDA
  /// events around the layer's launches; L2 is not flushed: layers follow one another as in a
  /// forward pass).
  std::vector<double> run_layers();
  /// Checks the last run's layer-0 output against the float64 oracle on a host copy of the
  /// step's batch (downloaded for the check). Poisons and reruns layer 0 first, so nothing stale
  /// passes.
  /// (Defined in serve_check.cpp, host code: it runs the oracle.)
  CheckResult check_layer0();
  /// What check_layer0() checks: poisons the output and workspace, reruns layer 0, and copies
  /// the step's batch (layout, q, layer 0's pools) into `host`, the output into `out` and the
  /// stage's 16-bit partials' split (Stage::half_partial_split(), for reference_for_partials();
  /// empty where it has none) into `split`.
  void snapshot_layer0(Workload& host, std::vector<uint16_t>& out, PartialSplit& split);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace patlab::gpu
