/// @file group_kernel.hpp
/// @brief The shape of stage 10's group kernel (cuda/stages/10_packinfer.cu) on the host: its
/// instances, KV tile, ring, threads, shared memory and the CTAs one SM holds, so that the host's
/// byte model (stage_traffic()) forms the same groups as the GPU stage without asking the
/// occupancy calculator. Plain constexpr C++: no CUDA needed.
///
/// One CTA runs a group's work items one after the other. An item of r rows runs the pack
/// kernel's building blocks (packed_tile.cuh) at the smallest row class of kTileRowOptions that
/// holds r, all with the KV tile kGroupKvTile. The kernel has one instance per *row cap* of
/// kGroupRowCaps, the most rows an item of its launch may have: the CTA has the threads of the
/// largest class up to the cap and a Q tile of that many rows. A launch of 16-row items needs a
/// 16-row CTA, which fits three on an SM at d = 128, where the 64-row instance fits two (chapter
/// 23, section 8: that difference, not the groups, decided stage 10's first measurement).
///
/// Each item drains the ring before the next begins: the warp-column merge parks its states in
/// the ring's buffers, as the pack kernel does, so no shared memory is set apart for it, and the
/// next item's Q tile and first KV tile are issued after the merge.
#pragma once

#include "patlab/planner/plan.hpp"
#include "patlab/planner/tile_budget.hpp"

namespace patlab::packinfer {

/// KV tokens per tile of the group kernel, at every row class and head dim: 64 fits every head
/// dim's budget with 64 rows (tile_budget.hpp: 8 warps at d=256).
inline constexpr int kGroupKvTile = 64;
/// Row caps of the group kernel's instances: the most rows of one work item in a launch. 16: every
/// item one warp row (PAT's packs cut to 16 rows); kMaxTileRows: the pack kernel's largest tile.
inline constexpr int kGroupRowCaps[] = {16, kMaxTileRows};
/// Bytes of one float of the parked warp-column states.
inline constexpr int kParkElemBytes = 4;
/// Head dim from which the group kernel converts every item's fp8 tiles in a shared pass: at
/// d = 256 the 16-row register path needs the pack kernel's 252 registers, and inside the group
/// kernel (255 at most) it spilled (chapter 23, section 8).
inline constexpr int kGroupFp8SharedHeadDim = 256;

/// True when `rows` is one of kGroupRowCaps.
constexpr bool is_group_row_cap(int rows) {
  for (int cap : kGroupRowCaps)
    if (cap == rows) return true;
  return false;
}

/// Whether an item of row class m at head dim d converts fp8 tiles in registers: only 16-row items
/// (one warp row) can, and not from kGroupFp8SharedHeadDim on.
constexpr bool group_fp8_in_registers(int d, int m, int kv_elem_bytes) {
  return pack_fp8_in_registers(m, kv_elem_bytes) && d < kGroupFp8SharedHeadDim;
}

/// Whether the instance of row cap `cap` needs the converted 16-bit K and V tiles (an fp8 cache
/// and some item class that converts in a shared pass).
constexpr bool group_shared_pass(int d, int cap, int kv_elem_bytes) {
  return kv_elem_bytes < kTileElemBytes && !group_fp8_in_registers(d, cap, kv_elem_bytes);
}

/// K/V stages of the ring of the instance of row cap `cap`: the pack kernel's for a 16-row
/// instance that converts fp8 in registers (pack_kv_stages(): four fp8 stages at d <= 128 in the
/// bytes of two 16-bit ones), else kKvStages, which every item class of the instance shares.
constexpr int group_ring_stages(int d, int cap, int kv_elem_bytes) {
  return group_fp8_in_registers(d, cap, kv_elem_bytes) ? pack_kv_stages(d, cap, kv_elem_bytes) : kKvStages;
}

/// Bytes of the ring of the instance of row cap `cap` (both K and V, every stage).
constexpr int group_ring_bytes(int d, int cap, int kv_elem_bytes) {
  return 2 * group_ring_stages(d, cap, kv_elem_bytes) * kGroupKvTile * d * kv_elem_bytes;
}

/// Threads of the instance of row cap `cap` at head dim d: the most of the pack kernel's layouts
/// of its row classes (kTileRowOptions up to `cap`, x kGroupKvTile).
constexpr int group_kernel_threads(int d, int cap) {
  int most = 0;
  for (int m : kTileRowOptions)
    if (m <= cap && pack_threads(d, m, kGroupKvTile) > most) most = pack_threads(d, m, kGroupKvTile);
  return most;
}

/// Dynamic shared memory of a CTA of the instance of row cap `cap` at head dim d with K/V elements
/// of `kv_elem_bytes`: the Q tile of `cap` rows, the ring, and the converted 16-bit K and V tiles
/// where group_shared_pass().
constexpr int group_smem_bytes(int d, int cap, int kv_elem_bytes = kTileElemBytes) {
  const int converted = group_shared_pass(d, cap, kv_elem_bytes) ? 2 * kGroupKvTile * d * kTileElemBytes : 0;
  return cap * d * kTileElemBytes + group_ring_bytes(d, cap, kv_elem_bytes) + converted;
}

/// Bytes the warp-column merge of an m-row item parks at head dim d: (warp columns - 1) x rows x
/// (d + 2) floats (o, m and l of each parked row).
constexpr int group_park_bytes(int d, int m) {
  return (pack_warp_cols(d, m, kGroupKvTile) - 1) * m * (d + 2) * kParkElemBytes;
}

/// True when every item class of the instance of row cap `cap` parks its states in the ring and
/// converted tiles (everything after the Q tile), and the CTA fits one SM's shared memory.
constexpr bool group_instance_fits(int d, int cap, int kv_elem_bytes) {
  if (group_smem_bytes(d, cap, kv_elem_bytes) > kPackSmemBudget) return false;
  for (int m : kTileRowOptions)
    if (m <= cap && group_park_bytes(d, m) > group_smem_bytes(d, cap, kv_elem_bytes) - cap * d * kTileElemBytes)
      return false;
  return true;
}

static_assert(group_instance_fits(64, 16, 2) && group_instance_fits(128, 16, 2) && group_instance_fits(256, 16, 2) &&
                  group_instance_fits(64, 16, 1) && group_instance_fits(128, 16, 1) && group_instance_fits(256, 16, 1),
              "the 16-row instance fits every head dim and cache");
static_assert(group_instance_fits(64, kMaxTileRows, 2) && group_instance_fits(128, kMaxTileRows, 2) &&
                  group_instance_fits(256, kMaxTileRows, 2) && group_instance_fits(64, kMaxTileRows, 1) &&
                  group_instance_fits(128, kMaxTileRows, 1) && group_instance_fits(256, kMaxTileRows, 1),
              "the 64-row instance fits every head dim and cache");

/// Group CTAs per SM that the instance's registers must allow at head dim d: its
/// __launch_bounds__ minimum, so ptxas caps the registers to fit (65536 / (CTAs x threads)).
/// 64-row instance, measured with `-Xptxas -v` on sm_90 without the cap: 168 registers at d=64
/// (3 CTAs of 128 threads fit 170), 244-255 at d=128 (2 fit 256), 255 at d=256 (256 threads: 1).
/// 16-row instance: the pack kernel's 16x64 tile, 128 registers at d=128 (3 CTAs of 128 threads
/// fit 170), and one CTA at d=256, where its ring alone takes more than half an SM.
constexpr int group_register_ctas(int d, int cap) {
  if (cap == kGroupRowCaps[0]) return d <= 128 ? 3 : 1;
  return d <= 64 ? 3 : d <= 128 ? 2 : 1;
}

/// The CTAs of the instance of row cap `cap` one SM holds at head dim d, from shared memory,
/// threads and the register cap (the host's estimate, as estimate_ctas_per_sm() for the pack
/// kernel; the stage reports the occupancy calculator's beside it): the groups' CTA slots per SM on
/// both sides. 64-row instance: 3 at d=64, 2 at d=128, 1 at d=256; 16-row instance: 3 at d <= 128.
constexpr int estimate_group_ctas_per_sm(int d, int cap, int kv_elem_bytes = kTileElemBytes) {
  const int by_smem = kSmemPerSm / (group_smem_bytes(d, cap, kv_elem_bytes) + kSmemReservedPerCta);
  const int by_threads = kMaxThreadsPerSm / group_kernel_threads(d, cap);
  int fit = by_smem < by_threads ? by_smem : by_threads;
  fit = fit < group_register_ctas(d, cap) ? fit : group_register_ctas(d, cap);
  return fit > 1 ? fit : 1;
}

/// K/V bytes in flight per SM at which the group kernel's copies stream the copy bandwidth, in
/// units of the ring of two 64-token stages at d = 128, fp16 (64 KiB): 20/9 rings. Measured on the
/// H200 (docs/results/2026-12-05-h200-packinfer-classes, run 1): on ten heterogeneous batches the
/// 64-row instance, two CTAs per SM, read its bytes at a median 0.90 (0.79-1.16) of the rate of
/// the 16-row instance, three per SM with the same ring: two rings in flight stream 0.9 of the
/// SM's share, so 2 / 0.9 rings saturate it. (The first design, with a park area, streamed
/// 57-63% against stage 7's 85-103% at two CTAs per SM, docs/results/2026-12-02-h200-packinfer.)
inline constexpr int kSaturatingBytesPerSm = 20 * group_ring_bytes(128, kMaxTileRows, kTileElemBytes) / 9;

/// The time at which the last of `slots` groups (`ctas_per_sm` per SM) ends, in units of its
/// bytes: `max_bytes` (the largest group's GroupPlan::max_charged()) x the slot share each CTA
/// streams at, max(ctas_per_sm, SM saturation / ring):
/// with fewer CTAs per SM than saturate it, each streams its ring's bytes in flight, not an equal
/// share of the bandwidth. Per SM, so the SM count drops out of comparisons on one GPU.
constexpr double group_end_time(int64_t max_bytes, int ctas_per_sm, int d, int cap, int kv_elem_bytes) {
  const double saturating = static_cast<double>(kSaturatingBytesPerSm) / group_ring_bytes(d, cap, kv_elem_bytes);
  return static_cast<double>(max_bytes) * (ctas_per_sm > saturating ? ctas_per_sm : saturating);
}

static_assert(estimate_group_ctas_per_sm(128, 16) == 3 && estimate_group_ctas_per_sm(128, 16, 1) == 3 &&
                  estimate_group_ctas_per_sm(128, kMaxTileRows) == 2,
              "at d = 128 the 16-row instance holds three CTAs per SM, the 64-row one two");

}  // namespace patlab::packinfer
