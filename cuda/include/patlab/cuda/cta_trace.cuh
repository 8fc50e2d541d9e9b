/// @file cta_trace.cuh
/// @brief The CTA timeline: in a build configured with `-Dcta_trace=true` (PATLAB_CTA_TRACE),
/// every CTA of a pack kernel (and of stage 8's Hopper kernel, hopper_tile.cuh) records the SM it
/// ran on and its start and end on the GPU's global nanosecond clock (%globaltimer and %smid of
/// the PTX ISA's "Special Registers"), which `patlab bench --cta-trace` writes out and
/// tools/figures/cta_timeline.py draws, SM by SM.
///
/// It answers what Nsight Compute cannot (it serialises kernels) and what the GPU machine has no
/// Nsight Systems for: where the block scheduler put the CTAs of kernels running side by side on
/// streams (stage 6's buckets), and when each started and ended. A diagnostic: the kernels gain
/// an atomic and two clock reads per CTA and a barrier at its end, so speed is measured with a
/// default build, whose kernels contain none of this.
#pragma once

#include <cstdint>

namespace patlab::cuda {

/// One CTA of a traced kernel.
struct CtaTraceRecord {
  uint64_t start_ns = 0;  ///< %globaltimer when its thread 0 started
  uint64_t end_ns = 0;    ///< %globaltimer after its last write (0: did not finish)
  uint32_t sm = 0;        ///< %smid
  uint32_t kernel = 0;    ///< what ran: cta_trace_tag() of the kernel's tile
  uint32_t block = 0;     ///< blockIdx.x
  uint32_t pad = 0;       ///< keeps the record 32 bytes
};

/// Where traced kernels write: `capacity` records and the count handed out so far (device
/// memory; a null `records` traces nothing).
struct CtaTraceBuffer {
  /// The records, `capacity` of them (null: nothing is traced).
  CtaTraceRecord* records = nullptr;
  /// Records handed out so far, bumped atomically by each traced CTA (may pass `capacity`).
  uint32_t* count = nullptr;
  /// Records the buffer holds; a CTA that draws an index past it is not recorded.
  uint32_t capacity = 0;
};

/// The tag of an m x n pack tile's kernel in a record: m * kCtaTraceTagBase + n.
inline constexpr uint32_t kCtaTraceTagBase = 1000;
/// cta_trace_tag() of an m x n pack tile.
constexpr uint32_t cta_trace_tag(int m, int n) {
  return static_cast<uint32_t>(m) * kCtaTraceTagBase + static_cast<uint32_t>(n);
}

/// The buffer that pack kernel arguments built from now on point at (DevicePlan copies it); the
/// Runner sets it around a traced run and clears it after. Host side, one per process.
CtaTraceBuffer& cta_trace_target();

#ifdef PATLAB_CTA_TRACE
// [cta-trace-device]
/// The GPU's global clock, in nanoseconds, the same on every SM.
__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

/// Takes a record for `kernel` and `block` and stamps its start (any thread may call it, once
/// per record); returns the record's index, or -1 (no buffer, or the buffer full). Stage 9 records
/// its work items this way (one record per item and one per folded merge), the pack kernels their
/// CTAs through cta_trace_begin().
__device__ __forceinline__ int trace_record_begin(const CtaTraceBuffer& t, uint32_t kernel, uint32_t block) {
  if (t.records == nullptr) return -1;
  const uint32_t i = atomicAdd(t.count, 1u);
  if (i >= t.capacity) return -1;
  uint32_t sm;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
  CtaTraceRecord& r = t.records[i];
  r.start_ns = global_ns();
  r.sm = sm;
  r.kernel = kernel;
  r.block = block;
  return static_cast<int>(i);
}

/// Stamps the end of record `i` (nothing for -1), by the thread that took it.
__device__ __forceinline__ void trace_record_end(const CtaTraceBuffer& t, int i) {
  if (i >= 0) t.records[i].end_ns = global_ns();
}

/// Thread 0 of the CTA takes a record and stamps its start; returns the record's index, or -1
/// (another thread, no buffer, or the buffer full).
__device__ __forceinline__ int cta_trace_begin(const CtaTraceBuffer& t, uint32_t kernel) {
  if (threadIdx.x != 0) return -1;
  return trace_record_begin(t, kernel, blockIdx.x);
}

/// Every thread of the CTA meets here; then thread 0 stamps the end of record `i`.
__device__ __forceinline__ void cta_trace_end(const CtaTraceBuffer& t, int i) {
  __syncthreads();
  trace_record_end(t, i);
}
// [cta-trace-device]
#endif

}  // namespace patlab::cuda
