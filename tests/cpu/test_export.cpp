// patlab's export (docs/export-format.md): the files read back byte for byte, and workload.json's
// fields agree with the workload, the oracle and the tolerance table.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "patlab/truth/check.hpp"
#include "patlab/error.hpp"
#include "patlab/report/export.hpp"
#include "patlab/report/json.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/truth/verify.hpp"

namespace fs = std::filesystem;
using namespace patlab;

namespace {

/// A fresh folder under the system's temp folder, removed when the test ends.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("patlab-export-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<unsigned char> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

uint32_t le(const std::vector<unsigned char>& b, size_t i, int width) {
  uint32_t v = 0;
  for (int k = 0; k < width; ++k) v |= static_cast<uint32_t>(b[i * width + k]) << (8 * k);
  return v;
}

float le_float(const std::vector<unsigned char>& b, size_t i) {
  const uint32_t u = le(b, i, 4);
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

double number(const json::Value& v, const std::string& key) {
  const json::Value* m = v.find(key);
  REQUIRE(m != nullptr);
  REQUIRE(m->is_number());
  return m->num;
}

/// A small asymmetric batch whose shared prefix ends mid-block: sys (37) + docA (20) + own.
Workload small_workload(DType dtype) {
  TokenTree tree = parse_workload_json(
      R"({"segments": {"sys": 37, "docA": 20, "u1": 5, "u2": 19, "u3": 3},
          "requests": ["sys+docA+u1", "sys+docA+u2", "sys+u3"]})",
      "test");
  tree.description = "export test tree";
  Shape shape;
  shape.num_q_heads = 4;
  shape.num_kv_heads = 2;
  shape.head_dim = 64;
  shape.page_size = 16;
  shape.dtype = dtype;
  return make_workload(tree, shape, 7, true);
}

}  // namespace

TEST_CASE("export writes every file with the documented size and little-endian contents") {
  for (DType dtype : {DType::fp16, DType::bf16}) {
    const Workload w = small_workload(dtype);
    const Reference ref = make_reference(w);
    const AttentionResult& oracle = ref.oracle;
    TempDir dir;
    const fs::path out = dir.path / "nested" / "export";  // parents are created
    export_workload(w, ref, out.string());

    const PagedLayout& L = w.layout;
    const Shape& s = L.shape;
    const size_t R = static_cast<size_t>(w.num_requests());
    const size_t max_blocks = static_cast<size_t>(L.max_blocks_per_request());

    const auto q = read_bytes(out / "q.bin");
    REQUIRE(q.size() == w.q.size() * 2);
    for (size_t i = 0; i < w.q.size(); ++i) REQUIRE(le(q, i, 2) == w.q[i]);

    const auto k = read_bytes(out / "k_pool.bin");
    const auto v = read_bytes(out / "v_pool.bin");
    REQUIRE(k.size() == static_cast<size_t>(L.pool_bytes()) / 2);
    REQUIRE(v.size() == k.size());
    for (size_t i = 0; i < w.kv_elements(); ++i) {
      REQUIRE(le(k, i, 2) == w.kv_code(KvTensor::k, i));
      REQUIRE(le(v, i, 2) == w.kv_code(KvTensor::v, i));
    }

    const auto bt = read_bytes(out / "block_tables.bin");
    REQUIRE(bt.size() == R * max_blocks * 4);
    for (size_t r = 0; r < R; ++r)
      for (size_t j = 0; j < max_blocks; ++j) {
        const int32_t got = static_cast<int32_t>(le(bt, r * max_blocks + j, 4));
        const auto& table = L.block_tables[r];
        REQUIRE(got == (j < table.size() ? table[j] : -1));
      }

    const auto lengths = read_bytes(out / "lengths.bin");
    REQUIRE(lengths.size() == R * 4);
    for (size_t r = 0; r < R; ++r) REQUIRE(static_cast<int32_t>(le(lengths, r, 4)) == L.lengths[r]);

    const auto o = read_bytes(out / "oracle_o.bin");
    const auto lse = read_bytes(out / "oracle_lse.bin");
    REQUIRE(o.size() == oracle.o.size() * 4);
    REQUIRE(lse.size() == R * static_cast<size_t>(s.num_q_heads) * 4);
    for (size_t i = 0; i < oracle.o.size(); ++i) REQUIRE(le_float(o, i) == static_cast<float>(oracle.o[i]));
    for (size_t i = 0; i < oracle.lse.size(); ++i) REQUIRE(le_float(lse, i) == static_cast<float>(oracle.lse[i]));
    const auto row_err = read_bytes(out / "emulated_row_error.bin");
    REQUIRE(row_err.size() == R * static_cast<size_t>(s.num_q_heads) * 4);
    for (size_t i = 0; i < ref.emulated_row_error.size(); ++i) {
      REQUIRE(le_float(row_err, i) == static_cast<float>(ref.emulated_row_error[i]));
      REQUIRE(ref.emulated_row_error[i] > 0);
    }

    // The exported oracle passes the same check rule as a perfect kernel would.
    std::vector<float> got(oracle.o.size());
    for (size_t i = 0; i < got.size(); ++i) got[i] = le_float(o, i);
    REQUIRE(check_output(got, ref, dtype).pass);
  }
}

TEST_CASE("export's workload.json describes the workload, the tree and the check rule") {
  const Workload w = small_workload(DType::bf16);
  const Reference ref = make_reference(w);
  TempDir dir;
  export_workload(w, ref, dir.path.string());
  const json::Value j = json::parse(read_text(dir.path / "workload.json"), "workload.json");
  REQUIRE(j.is_object());
  const PagedLayout& L = w.layout;

  REQUIRE(j.find("format")->str == kExportFormat);
  REQUIRE(number(j, "version") == kExportVersion);
  REQUIRE(j.find("description")->str == "export test tree");
  REQUIRE(number(j, "seed") == 7);
  REQUIRE(j.find("dtype")->str == "bf16");
  REQUIRE(number(j, "requests") == 3);
  REQUIRE(number(j, "num_blocks") == L.num_blocks);
  REQUIRE(number(j, "page_size") == 16);
  REQUIRE(number(j, "max_blocks_per_request") == L.max_blocks_per_request());
  REQUIRE(j.find("lse_base")->str == "e");
  REQUIRE(std::fabs(number(j, "softmax_scale") - 0.125) < 1e-15);

  const json::Value& shape = *j.find("shape");
  REQUIRE(number(shape, "num_q_heads") == 4);
  REQUIRE(number(shape, "num_kv_heads") == 2);
  REQUIRE(number(shape, "head_dim") == 64);
  REQUIRE(number(shape, "group") == 2);

  const json::Value& lengths = *j.find("lengths");
  REQUIRE(number(lengths, "min") == 40);  // sys + u3
  REQUIRE(number(lengths, "max") == 76);  // sys + docA + u2
  REQUIRE(number(lengths, "total_tokens") == L.total_tokens());
  REQUIRE(number(lengths, "unique_tokens") == L.unique_tokens());

  const json::Value& bytes = *j.find("bytes");
  REQUIRE(number(bytes, "unique_kv") == L.unique_kv_bytes());
  REQUIRE(number(bytes, "total_kv") == L.total_kv_bytes());
  REQUIRE(number(bytes, "q_and_out") == L.q_and_out_bytes());
  REQUIRE(number(bytes, "unique") == L.unique_kv_bytes() + L.q_and_out_bytes());

  const json::Value& tree = *j.find("tree");
  REQUIRE(number(tree, "depth") == 3);
  const json::Value& segs = *tree.find("segments");
  REQUIRE(segs.is_array());
  REQUIRE(segs.arr.size() == w.tree.segments.size());
  for (size_t i = 0; i < segs.arr.size(); ++i) {
    REQUIRE(segs.arr[i].find("name")->str == w.tree.segments[i].name);
    REQUIRE(number(segs.arr[i], "tokens") == w.tree.segments[i].tokens);
    REQUIRE(number(segs.arr[i], "parent") == w.tree.segments[i].parent);
  }
  const json::Value& ends = *tree.find("request_ends");
  REQUIRE(ends.arr.size() == 3);
  for (size_t r = 0; r < 3; ++r) REQUIRE(ends.arr[r].num == w.tree.request_ends[r]);
  const json::Value& paths = *j.find("paths");
  REQUIRE(paths.arr.size() == 3);
  for (int r = 0; r < 3; ++r) {
    const std::vector<int> p = w.tree.path(r);
    REQUIRE(paths.arr[static_cast<size_t>(r)].arr.size() == p.size());
    for (size_t i = 0; i < p.size(); ++i) REQUIRE(paths.arr[static_cast<size_t>(r)].arr[i].num == p[i]);
  }

  const json::Value& tol = *j.find("tolerance");
  REQUIRE(number(tol, "atol") == tolerance(DType::bf16, KvDType::same).atol);
  REQUIRE(number(tol, "rtol") == tolerance(DType::bf16, KvDType::same).rtol);
  REQUIRE(number(tol, "row_floor") == tolerance(DType::bf16, KvDType::same).row_floor);
  REQUIRE(number(tol, "emulation_factor") == kEmulationFactor);
  REQUIRE(number(tol, "emulated_rel_l2") == ref.emulated_rel_l2);
  REQUIRE(ref.emulated_rel_l2 > 0);

  const json::Value& files = *j.find("files");
  REQUIRE(files.is_array());
  const char* names[] = {"q",       "k_pool",   "v_pool",    "block_tables", "lengths", "oracle_o", "oracle_lse",
                         "emulated_row_error"};
  REQUIRE(files.arr.size() == std::size(names));
  for (size_t i = 0; i < files.arr.size(); ++i) {
    const json::Value& f = files.arr[i];
    REQUIRE(f.find("name")->str == names[i]);
    int64_t elems = 1;
    for (const json::Value& d : f.find("shape")->arr) elems *= static_cast<int64_t>(d.num);
    const std::string dt = f.find("dtype")->str;
    const int width = dt == "int32" || dt == "float32" ? 4 : 2;
    REQUIRE(number(f, "bytes") == elems * width);
    REQUIRE(static_cast<double>(fs::file_size(dir.path / f.find("file")->str)) == number(f, "bytes"));
  }
  REQUIRE(files.arr[1].find("dtype")->str == "bf16");
  REQUIRE(files.arr[1].find("shape")->arr[0].num == L.num_blocks);
}

TEST_CASE("export reports an unusable folder as an io error") {
  const Workload w = small_workload(DType::fp16);
  const Reference ref = make_reference(w);
  TempDir dir;
  const fs::path file = dir.path / "a-file";
  std::ofstream(file) << "x";
  try {
    export_workload(w, ref, (file / "sub").string());
    FAIL("export into a path below a file did not throw");
  } catch (const Error& e) {
    REQUIRE(e.kind() == ErrorKind::io);
    REQUIRE(std::string(e.what()).find("a-file") != std::string::npos);
  }
  Reference wrong = ref;
  wrong.oracle.o.pop_back();
  REQUIRE_THROWS_AS(export_workload(w, wrong, (dir.path / "x").string()), Error);
  wrong = ref;
  wrong.emulated_row_error.pop_back();
  REQUIRE_THROWS_AS(export_workload(w, wrong, (dir.path / "x").string()), Error);
}
