#include "patlab/report/export.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <system_error>
#include <vector>

#include "patlab/truth/check.hpp"
#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/output_file.hpp"
#include "patlab/report/json.hpp"

namespace patlab {

namespace {

namespace fs = std::filesystem;

/// Bytes converted per write call: little-endian staging keeps the files the same on any host.
constexpr size_t kChunkBytes = size_t{1} << 20;
/// Bytes of one write call when the data is written as it lies in memory.
constexpr size_t kRawChunkBytes = kChunkBytes * 64;
/// What the error messages call a file of the export.
const char* const kFileKind = "export file";

/// One binary file of the export: its name, element type and shape.
struct FileEntry {
  std::string name;   ///< key in workload.json's "files" (also the file's stem)
  std::string file;   ///< file name inside the folder
  std::string dtype;  ///< "fp16", "bf16", "int32" or "float32"
  std::vector<int64_t> shape;
  int64_t bytes = 0;
};

/// Writes `count` elements of `width` bytes each as little-endian; `get(i)` returns element i's
/// bits in the low `width` bytes of a uint32_t.
template <class Get>
void write_le(const fs::path& path, size_t count, int width, Get get) {
  write_output_file(path.string(), kFileKind, [&](std::ostream& out) {
    std::vector<char> buf;
    buf.reserve(kChunkBytes + 4);
    for (size_t i = 0; i < count && out; ++i) {
      const uint32_t v = get(i);
      for (int b = 0; b < width; ++b) buf.push_back(static_cast<char>((v >> (8 * b)) & 0xFFu));
      if (buf.size() >= kChunkBytes) {
        out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
        buf.clear();
      }
    }
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  }, true);
}

/// Writes `n` bytes from `p` as they are, in kRawChunkBytes writes.
void write_raw(const fs::path& path, const char* p, size_t n) {
  write_output_file(path.string(), kFileKind, [&](std::ostream& out) {
    for (size_t off = 0; off < n && out; off += kRawChunkBytes)
      out.write(p + off, static_cast<std::streamsize>(std::min(kRawChunkBytes, n - off)));
  }, true);
}

/// True on a little-endian host, where 16-bit data can be written as it lies in memory.
bool host_is_little_endian() {
  const uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// Writes 16-bit patterns little-endian: straight from memory where the host already is.
void write_u16(const fs::path& path, const std::vector<uint16_t>& data) {
  if (!host_is_little_endian()) {
    write_le(path, data.size(), 2, [&](size_t i) { return data[i]; });
    return;
  }
  write_raw(path, reinterpret_cast<const char*>(data.data()), data.size() * sizeof(uint16_t));
}

/// Writes raw bytes as they are (the K/V pools: already little-endian element codes).
void write_bytes(const fs::path& path, const std::vector<uint8_t>& data) {
  write_raw(path, reinterpret_cast<const char*>(data.data()), data.size());
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

/// A double as JSON, in the shortest of 15-17 digits that reads back exactly. JSON has no
/// NaN/Inf: those become null.
std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string shape_json(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

void export_workload(const Workload& w, const Reference& ref, const std::string& dir) {
  const PagedLayout& L = w.layout;
  const Shape& s = L.shape;
  const int R = w.num_requests();
  const AttentionResult& oracle = ref.oracle;
  require(oracle.requests == R && oracle.heads == s.num_q_heads && oracle.head_dim == s.head_dim &&
              oracle.o.size() == static_cast<size_t>(R) * s.num_q_heads * s.head_dim &&
              oracle.lse.size() == static_cast<size_t>(R) * s.num_q_heads &&
              ref.emulated_row_error.size() == oracle.lse.size(),
          "export: the reference does not match the workload's shape");
  require(static_cast<int>(w.tree.request_ends.size()) == R, "export: tree and layout disagree on requests");

  const fs::path root(dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec || !fs::is_directory(root))
    throw Error(ErrorKind::io, "cannot create export directory " + dir + ": " +
                                   (ec ? ec.message() : std::string("a file of that name exists")));

  const char* dt = dtype_name(s.dtype);
  const char* kv_dt = kv_dtype_name(s.kv_dtype, s.dtype);
  const int64_t max_blocks = L.max_blocks_per_request();
  std::vector<FileEntry> files;
  auto add = [&](const std::string& name, const std::string& dtype, std::vector<int64_t> shape, int width) {
    FileEntry e{name, name + ".bin", dtype, std::move(shape), width};
    for (int64_t d : e.shape) e.bytes *= d;
    files.push_back(e);
    return root / files.back().file;
  };

  write_u16(add("q", dt, {R, s.num_q_heads, s.head_dim}, 2), w.q);
  const std::vector<int64_t> pool_shape = {L.num_blocks, s.page_size, s.num_kv_heads, s.head_dim};
  write_bytes(add("k_pool", kv_dt, pool_shape, s.kv_element_bytes()), w.k_pool);
  write_bytes(add("v_pool", kv_dt, pool_shape, s.kv_element_bytes()), w.v_pool);
  write_le(add("block_tables", "int32", {R, max_blocks}, 4), static_cast<size_t>(R) * static_cast<size_t>(max_blocks), 4,
           [&](size_t i) {
             const auto& t = L.block_tables[i / static_cast<size_t>(max_blocks)];
             const size_t j = i % static_cast<size_t>(max_blocks);
             return static_cast<uint32_t>(j < t.size() ? t[j] : int32_t{-1});
           });
  write_le(add("lengths", "int32", {R}, 4), static_cast<size_t>(R), 4,
           [&](size_t i) { return static_cast<uint32_t>(L.lengths[i]); });
  write_le(add("oracle_o", "float32", {R, s.num_q_heads, s.head_dim}, 4), oracle.o.size(), 4,
           [&](size_t i) { return float_bits(static_cast<float>(oracle.o[i])); });
  write_le(add("oracle_lse", "float32", {R, s.num_q_heads}, 4), oracle.lse.size(), 4,
           [&](size_t i) { return float_bits(static_cast<float>(oracle.lse[i])); });
  write_le(add("emulated_row_error", "float32", {R, s.num_q_heads}, 4), ref.emulated_row_error.size(), 4,
           [&](size_t i) { return float_bits(static_cast<float>(ref.emulated_row_error[i])); });

  // workload.json
  const Tolerance& tol = tolerance(s.dtype, s.kv_dtype);
  const auto [min_len, max_len] = std::minmax_element(L.lengths.begin(), L.lengths.end());
  int64_t shared_blocks = 0;
  for (int32_t rc : L.refcounts) shared_blocks += rc > 1;
  std::ostringstream j;
  j << "{\n";
  j << "  \"format\": " << json::quote(kExportFormat) << ",\n";
  j << "  \"version\": " << kExportVersion << ",\n";
  j << "  \"description\": " << json::quote(w.tree.description) << ",\n";
  j << "  \"seed\": " << w.seed << ",\n";
  j << "  \"dtype\": " << json::quote(dt) << ",\n";
  j << "  \"kv_dtype\": " << json::quote(kv_dt) << ",\n";
  j << "  \"k_scale\": " << num(w.k_scale) << ",\n";
  j << "  \"v_scale\": " << num(w.v_scale) << ",\n";
  j << "  \"shape\": {\"num_q_heads\": " << s.num_q_heads << ", \"num_kv_heads\": " << s.num_kv_heads
    << ", \"head_dim\": " << s.head_dim << ", \"page_size\": " << s.page_size << ", \"group\": " << s.group()
    << ", \"dtype\": " << json::quote(dt) << ", \"kv_dtype\": " << json::quote(kv_dt)
    << ", \"describe\": " << json::quote(s.describe()) << "},\n";
  j << "  \"softmax_scale\": " << num(1.0 / std::sqrt(static_cast<double>(s.head_dim))) << ",\n";
  j << "  \"lse_base\": \"e\",\n";
  j << "  \"requests\": " << R << ",\n";
  j << "  \"num_blocks\": " << L.num_blocks << ",\n";
  j << "  \"page_size\": " << s.page_size << ",\n";
  j << "  \"max_blocks_per_request\": " << max_blocks << ",\n";
  j << "  \"lengths\": {\"min\": " << *min_len << ", \"max\": " << *max_len << ", \"total_tokens\": " << L.total_tokens()
    << ", \"unique_tokens\": " << L.unique_tokens() << "},\n";
  j << "  \"blocks_read_by_more_than_one_request\": " << shared_blocks << ",\n";
  j << "  \"bytes\": {\"unique_kv\": " << L.unique_kv_bytes() << ", \"total_kv\": " << L.total_kv_bytes()
    << ", \"q_and_out\": " << L.q_and_out_bytes() << ", \"unique\": " << traffic::unique_bytes(L)
    << ", \"pool\": " << L.pool_bytes() << "},\n";
  j << "  \"tree\": {\n    \"depth\": " << w.tree.depth() << ",\n    \"segments\": [";
  for (size_t i = 0; i < w.tree.segments.size(); ++i) {
    const Segment& g = w.tree.segments[i];
    j << (i ? ",\n      " : "\n      ") << "{\"name\": " << json::quote(g.name) << ", \"tokens\": " << g.tokens
      << ", \"parent\": " << g.parent << "}";
  }
  j << "\n    ],\n    \"request_ends\": [";
  for (int r = 0; r < R; ++r) j << (r ? ", " : "") << w.tree.request_ends[static_cast<size_t>(r)];
  j << "]\n  },\n";
  j << "  \"paths\": [";
  for (int r = 0; r < R; ++r) {
    const std::vector<int> p = w.tree.path(r);
    j << (r ? ",\n    " : "\n    ") << "[";
    for (size_t i = 0; i < p.size(); ++i) j << (i ? ", " : "") << p[i];
    j << "]";
  }
  j << "\n  ],\n";
  j << "  \"tolerance\": {\"atol\": " << num(tol.atol) << ", \"rtol\": " << num(tol.rtol)
    << ", \"row_floor\": " << num(tol.row_floor) << ", \"emulation_factor\": " << num(kEmulationFactor)
    << ", \"emulated_rel_l2\": " << num(ref.emulated_rel_l2) << "},\n";
  j << "  \"endianness\": \"little\",\n";
  j << "  \"files\": [";
  for (size_t i = 0; i < files.size(); ++i) {
    const FileEntry& f = files[i];
    j << (i ? ",\n    " : "\n    ") << "{\"name\": " << json::quote(f.name) << ", \"file\": " << json::quote(f.file)
      << ", \"dtype\": " << json::quote(f.dtype) << ", \"shape\": " << shape_json(f.shape) << ", \"bytes\": " << f.bytes
      << "}";
  }
  j << "\n  ]\n}\n";

  const fs::path meta = root / "workload.json";
  write_output_file(meta.string(), kFileKind, [&](std::ostream& out) { out << j.str(); });
}

}  // namespace patlab
