/// @file group_kernel.hpp
/// @brief The shape of stage 10's group kernel (cuda/stages/10_packinfer.cu) on the host: its
/// KV tile, its threads, its shared memory and the CTAs one SM holds, so that the host's byte
/// model (stage_traffic()) forms the same groups as the GPU stage without asking the occupancy
/// calculator. Plain constexpr C++: no CUDA needed.
///
/// One CTA runs a group's work items one after the other. An item of r rows runs the pack
/// kernel's building blocks (packed_tile.cuh) at the smallest row class of kTileRowOptions that
/// holds r, all with the KV tile kGroupKvTile, so the CTA has the most threads any of them needs
/// and the shared memory of the largest: the Q tile of kMaxTileRows rows, kKvStages K and V
/// tiles (plus the converted 16-bit pair with an fp8 cache), and a *park* area of its own for
/// the warp-column merge (merge_warp_columns), which the pack kernel keeps in its K/V tiles but
/// the group kernel cannot: they hold the next item's first tile by then.
#pragma once

#include "patlab/planner/plan.hpp"
#include "patlab/planner/tile_budget.hpp"

namespace patlab::packinfer {

/// KV tokens per tile of the group kernel, at every row class and head dim: 64 fits every head
/// dim's budget with 64 rows (tile_budget.hpp: 8 warps at d=256).
inline constexpr int kGroupKvTile = 64;
/// Rows of the group kernel's Q tile: the largest pack (kMaxTileRows).
inline constexpr int kGroupTileRows = kMaxTileRows;
/// Bytes of one float of the parked warp-column states.
inline constexpr int kParkElemBytes = 4;

static_assert(pack_tile_fits(256, kGroupTileRows, kGroupKvTile, 1) && pack_tile_fits(256, kGroupTileRows, kGroupKvTile),
              "the group kernel's largest tile fits every head dim");

/// Threads of the group kernel at head dim d: the most of the pack kernel's layouts of its row
/// classes (kTileRowOptions x kGroupKvTile).
constexpr int group_kernel_threads(int d) {
  int most = 0;
  for (int m : kTileRowOptions) most = pack_threads(d, m, kGroupKvTile) > most ? pack_threads(d, m, kGroupKvTile) : most;
  return most;
}

/// Bytes of the park area at head dim d: (warp columns - 1) x rows x (d + 2) floats (o, m and l
/// of each parked row), the most over the row classes.
constexpr int group_park_bytes(int d) {
  int most = 0;
  for (int m : kTileRowOptions) {
    const int bytes = (pack_warp_cols(d, m, kGroupKvTile) - 1) * m * (d + 2) * kParkElemBytes;
    most = bytes > most ? bytes : most;
  }
  return most;
}

/// Dynamic shared memory of a group CTA at head dim d with K/V elements of `kv_elem_bytes`.
constexpr int group_smem_bytes(int d, int kv_elem_bytes = kTileElemBytes) {
  return pack_smem_bytes(d, kGroupTileRows, kGroupKvTile, kv_elem_bytes) + group_park_bytes(d);
}

static_assert(group_smem_bytes(256) <= kPackSmemBudget && group_smem_bytes(256, 1) <= kPackSmemBudget,
              "the group kernel fits one CTA's shared memory at d=256");

/// Group CTAs per SM that the kernel's registers must allow at head dim d: its
/// __launch_bounds__ minimum, so ptxas caps the registers to fit (65536 / (CTAs x threads)).
/// Measured with `-Xptxas -v` on sm_90 without the cap: 168 registers at d=64 (3 CTAs of 128
/// threads fit 170), 244-255 at d=128 (2 fit 256), 255 at d=256 (256 threads: 1).
constexpr int group_register_ctas(int d) { return d <= 64 ? 3 : d <= 128 ? 2 : 1; }

/// The group CTAs one SM holds at head dim d, from shared memory, threads and the register cap
/// (the host's estimate, as estimate_ctas_per_sm() for the pack kernel; the stage reports the
/// occupancy calculator's beside it): the groups' CTA slots per SM on both sides. At d=64 3
/// (registers; 53 KB of shared memory would give 4), at d=128 2 (105 KB), at d=256 1 (226 KB).
constexpr int estimate_group_ctas_per_sm(int d, int kv_elem_bytes = kTileElemBytes) {
  const int by_smem = kSmemPerSm / (group_smem_bytes(d, kv_elem_bytes) + kSmemReservedPerCta);
  const int by_threads = kMaxThreadsPerSm / group_kernel_threads(d);
  int fit = by_smem < by_threads ? by_smem : by_threads;
  fit = fit < group_register_ctas(d) ? fit : group_register_ctas(d);
  return fit > 1 ? fit : 1;
}

}  // namespace patlab::packinfer
