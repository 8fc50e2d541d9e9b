/// @file export.hpp
/// @brief Writes a workload and the oracle's answer to a folder, so that other programs (the
/// peers under tools/peers/) run exactly the same inputs and judge their outputs the same way.
///
/// The folder holds `workload.json` (shape, tree, block-table summary, byte counts, the dtype's
/// tolerance, the KV dtype and its per-tensor scales k_scale and v_scale, and a list of the
/// binary files) and little-endian raw binaries: q (16-bit patterns of the dtype), k_pool, v_pool
/// (16-bit patterns, or fp8 e4m3 codes whose value times the scale is the oracle's), block_tables and lengths (int32), oracle_o and oracle_lse
/// (float32; lse in natural log) and emulated_row_error (float32, per (request, head) row: the
/// yardstick of check.hpp's per-row rule). docs/export-format.md describes every field.
#pragma once

#include <string>

#include "patlab/model/kv_cache.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/truth/verify.hpp"

namespace patlab {

/// Name of the format, written as workload.json's "format".
inline constexpr const char* kExportFormat = "patlab-export";
/// Version of the format; bumped when a field changes meaning or a file changes layout.
inline constexpr int kExportVersion = 3;

/// Writes `w` and its reference `ref` (make_reference(w)) into folder `dir`, creating it (and
/// its parents) if needed and overwriting files of the same names: the oracle's o and lse, and
/// each row's emulation error, so that a reader can apply check_output()'s rule. Throws
/// Error(io) with one line naming the path if the folder cannot be created or a file cannot be
/// written, Error(usage) if `ref` does not match the workload's shape.
void export_workload(const Workload& w, const Reference& ref, const std::string& dir);

}  // namespace patlab
