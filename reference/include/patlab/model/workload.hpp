/// @file workload.hpp
/// @brief What a decode batch looks like: the attention shape and the token tree of its requests.
///
/// A batch is described by a forest of *segments* (runs of tokens). Every request is a path from
/// a root segment to the segment that ends it; requests whose paths share a first segment share
/// that prefix. Four ways to write one down: the field's tree notation (parse_tree_spec), a JSON
/// file of named segments (parse_workload_json), a seeded random tree (random_tree), or a seeded
/// heterogeneous-length batch (hetero_batch, patlab/model/hetero.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "patlab/model/traffic.hpp"
#include "patlab/truth/dtype.hpp"

namespace patlab {

/// Page (block) sizes of the paged KV cache that patlab supports.
inline constexpr int kSupportedPageSizes[] = {16, 32, 64};
/// Head dimensions that patlab supports.
inline constexpr int kSupportedHeadDims[] = {64, 128, 256};
/// Largest GQA group (query heads per KV head) that patlab supports: every group 1..16 is.
inline constexpr int kMaxGroupSize = 16;
/// Query heads per KV head (GQA group sizes) that patlab supports: 1 to kMaxGroupSize.
inline constexpr int kSupportedGroupSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static_assert(sizeof(kSupportedGroupSizes) / sizeof(int) == kMaxGroupSize, "every group 1..kMaxGroupSize");
/// Longest request patlab accepts, in tokens (keeps every index in 32 bits).
inline constexpr int64_t kMaxRequestTokens = int64_t{1} << 24;
/// Most requests in one batch.
inline constexpr int kMaxRequests = 1 << 16;
/// Most segments in one token tree.
inline constexpr int64_t kMaxSegments = int64_t{1} << 20;
/// Most tokens summed over the requests of a batch: what the block tables hold and the oracle
/// reads (64x the largest workload of tools/suite.txt).
inline constexpr int64_t kMaxTotalTokens = int64_t{1} << 28;
/// Largest workload file read, in bytes; a larger or non-regular file is refused before reading.
inline constexpr int64_t kMaxWorkloadFileBytes = int64_t{16} << 20;

/// True when `v` is one of `allowed` (one of the kSupported* or tile option tables).
/// @tparam N entries of the table
template <size_t N>
bool one_of(int v, const int (&allowed)[N]) {
  for (int a : allowed)
    if (a == v) return true;
  return false;
}

/// The attention shape of a batch: heads, head dimension, page size and storage type.
struct Shape {
  int num_q_heads = 32;   ///< query heads (Hq)
  int num_kv_heads = 8;   ///< key/value heads (Hkv); Hq % Hkv == 0
  int head_dim = 128;     ///< d
  int page_size = 16;     ///< tokens per KV block
  DType dtype = DType::fp16;         ///< q and the output
  KvDType kv_dtype = KvDType::same;  ///< K and V: q's dtype, or fp8 e4m3 with per-tensor scales

  /// Query heads per KV head.
  int group() const { return num_q_heads / num_kv_heads; }
  /// Bytes of one stored K or V element: the one place that knows the KV element size.
  int kv_element_bytes() const { return patlab::kv_element_bytes(kv_dtype); }
  /// True when K and V are stored as fp8 e4m3.
  bool kv_fp8() const { return kv_dtype == KvDType::fp8_e4m3; }
  /// Bytes of K plus V that one token occupies (all KV heads).
  int64_t kv_bytes_per_token() const {
    return traffic::kv_bytes_per_token(num_kv_heads, head_dim, kv_element_bytes());
  }
  /// Throws Error(usage) naming the first unsupported value.
  void validate() const;
  /// e.g. "32/8 heads, d=128, page 16, fp16" (", kv fp8_e4m3" appended for an fp8 KV cache).
  std::string describe() const;
};

/// Parses "HQ/HKV" (e.g. "32/8") into the shape; throws Error(usage) on a malformed value.
void parse_heads(const std::string& text, Shape& shape);

/// One run of tokens in the token tree.
struct Segment {
  std::string name;    ///< label (from a JSON file, or generated: "L1.0", "L2.3", ...)
  int64_t tokens = 0;  ///< length, >= 1
  int parent = -1;     ///< index of the parent segment, -1 for a root
};

/// The token structure of a batch. Requests are paths of segments from a root.
struct TokenTree {
  std::vector<Segment> segments;  ///< every segment, a parent before its children
  std::vector<int> request_ends;  ///< per request, the segment that ends its path
  std::string description;        ///< how it was made, e.g. "tree 1,64_4096,256"

  /// Requests in the batch (one per entry of request_ends).
  int num_requests() const { return static_cast<int>(request_ends.size()); }
  /// Segment indices of request `r`, root first.
  std::vector<int> path(int r) const;
  /// Tokens of request `r` (the sum of its path).
  int64_t request_tokens(int r) const;
  /// Per segment, the tokens from its root to its end. One pass: parents come before children.
  std::vector<int64_t> segment_ends() const;
  /// Per segment, its level (1 for a root). One pass, as segment_ends().
  std::vector<int> segment_levels() const;
  /// Levels of the deepest path.
  int depth() const;
  /// Throws Error(usage) if the structure is broken (a parent listed after its child, a request
  /// ending at no segment), a segment is empty, or a request, the batch or the tree is past the
  /// limits (kMaxRequestTokens, kMaxRequests, kMaxSegments, kMaxTotalTokens). Linear in the size.
  void validate() const;
};

/// Parses the field's notation `a,b,c_x,y,z`: a segments of x tokens at level 1, each with b/a
/// children of y tokens, each with c/b children of z tokens; the leaves are the requests.
/// Throws Error(usage) naming the fault (counts that do not divide, zero tokens, bad syntax).
TokenTree parse_tree_spec(const std::string& spec);

/// Shape fields a workload file may set; absent ones keep the caller's values.
struct ShapeOverrides {
  std::optional<std::string> heads;     ///< "heads": query/KV heads "HQ/HKV", for parse_heads(), e.g. "32/8"
  std::optional<int> head_dim;          ///< "head_dim": the head dimension d
  std::optional<int> page_size;         ///< "page": tokens per KV block
  std::optional<std::string> dtype;     ///< "dtype": storage type of q and the output, for parse_dtype(), e.g. "bf16"
  std::optional<std::string> kv_dtype;  ///< "kv_dtype": storage type of K and V, for parse_kv_dtype(), e.g. "fp8"
};

/// Parses a workload file:
/// `{"segments": {"sys": 2000, "docA": 900, "u1": 37, ...},
///   "requests": ["sys+docA+u1", ["sys", "u3"], ...],
///   "heads": "32/8", "head_dim": 128, "page": 16, "dtype": "fp16", "kv_dtype": "auto"}` (shape
/// keys optional).
/// A request is a path of segment names, as "a+b+c" or as an array; requests that start with the
/// same names share that prefix. Throws Error(usage) "<origin>: ..." naming the fault.
TokenTree parse_workload_json(const std::string& text, const std::string& origin,
                              ShapeOverrides* shape_out = nullptr);

/// Reads and parses a workload file; throws Error(io) if it cannot be read, and Error(usage) if it
/// is not a regular file or is larger than kMaxWorkloadFileBytes (checked before reading).
TokenTree load_workload_file(const std::string& path, ShapeOverrides* shape_out = nullptr);

/// Size knobs of random_tree.
struct RandomTreeOptions {
  int requests = 24;        ///< leaves (requests) to make
  int max_depth = 4;        ///< most segments on a path
  int max_segment = 700;    ///< longest segment in tokens (lengths are uniform in [1, max])
  int max_roots = 3;        ///< roots are drawn from [1, max_roots]
};

/// A random asymmetric tree for fuzzing: random depth, fan-out and (mostly odd) lengths, fully
/// determined by `seed`.
TokenTree random_tree(uint64_t seed, const RandomTreeOptions& options);

/// A named workload: a tree and the shape it is usually run with.
struct Preset {
  std::string name;     ///< what `--preset` and the positional workload argument take, e.g. "sysprompt"
  std::string summary;  ///< one line on the workload, for `patlab list --presets`
  std::string tree;  ///< tree notation, or a built-in JSON text starting with '{', or (with build) a label
  Shape shape;  ///< the shape it runs with unless options override it
  TokenTree (*build)() = nullptr;  ///< set for a generated workload: makes its tree (`tree` is then a label)
};

/// The presets, the first being the default workload.
const std::vector<Preset>& presets();
/// The preset called `name`; throws Error(usage) listing the known names.
const Preset& find_preset(const std::string& name);
/// The tree of a preset.
TokenTree preset_tree(const Preset& preset);

}  // namespace patlab
