// Per head kind: blocks PSA and top-n give each (request, KV head) and the selected branch's
// largest |o - o_dense|, for the mixed workloads of this folder (seed 1, 16/4 heads, d = 128,
// page 16, NSA's defaults). Not part of the build; compiled against the CPU build's library:
//   c++ -std=c++17 -O2 -I../../../reference/include -I/usr/include/eigen3 per_kind.cpp \
//       ../../../build-cpu/reference/libpatlab_reference.a -pthread -o /tmp/per_kind
//   /tmp/per_kind 1,16_4096,256 > per_kind_shared.txt; /tmp/per_kind 16_4352 > per_kind_alone.txt
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "patlab/model/kv_cache.hpp"
#include "patlab/sparse/sparse_oracle.hpp"
#include "patlab/truth/oracle.hpp"

using namespace patlab;
using namespace patlab::sparse;

int main(int argc, char** argv) {
  const std::string spec = argc > 1 ? argv[1] : "1,16_4096,256";
  Shape s;
  s.num_q_heads = 16;
  s.num_kv_heads = 4;
  s.head_dim = 128;
  s.page_size = 16;
  const uint64_t seed = 1;
  const Workload w = make_workload(parse_tree_spec(spec), s, seed, true, DataKind::mixed);
  const std::vector<bool> spread = mixed_spread_heads(seed, s.num_kv_heads);
  std::printf("tree %s, seed %llu, spread KV heads:", spec.c_str(), static_cast<unsigned long long>(seed));
  for (int h = 0; h < s.num_kv_heads; ++h)
    if (spread[static_cast<size_t>(h)]) std::printf(" %d", h);
  std::printf("\n%-8s %6s | %-28s | %-28s\n", "budget", "param", "concentrated: blocks/row min mean max, max err",
              "spread: blocks/row min mean max, max err");
  const AttentionResult dense = naive_attention(w);
  auto row = [&](Budget b, double param) {
    SparseOptions o;
    o.budget = b;
    if (b == Budget::top_n) o.top_n = static_cast<int>(param); else o.tau = param;
    o.clamp = true;
    const Selection sel = select_blocks(w, o);
    const SparseAttention sa = sparse_attention(w, o, sel);
    double lo[2] = {1e9, 1e9}, hi[2] = {0, 0}, sum[2] = {0, 0}, err[2] = {0, 0};
    int n[2] = {0, 0};
    for (int r = 0; r < w.num_requests(); ++r)
      for (int kv = 0; kv < s.num_kv_heads; ++kv) {
        const int k = spread[static_cast<size_t>(kv)] ? 1 : 0;
        const double blocks = static_cast<double>(sel.of(r, kv).size());
        lo[k] = std::min(lo[k], blocks);
        hi[k] = std::max(hi[k], blocks);
        sum[k] += blocks;
        ++n[k];
        for (int q = kv * s.group(); q < (kv + 1) * s.group(); ++q) {
          const double* a = sa.selected.o_at(r, q);
          const double* d = dense.o_at(r, q);
          for (int i = 0; i < s.head_dim; ++i) err[k] = std::max(err[k], std::fabs(a[i] - d[i]));
        }
      }
    std::printf("%-8s %6g | %4.0f %6.2f %4.0f  %9.4g     | %4.0f %6.2f %4.0f  %9.4g\n",
                b == Budget::top_n ? "top-n" : "psa", param, lo[0], sum[0] / n[0], hi[0], err[0], lo[1],
                sum[1] / n[1], hi[1], err[1]);
  };
  for (int n : {3, 4, 6, 8, 12, 16, 24, 32, 48, 68}) row(Budget::top_n, n);
  for (double tau : {0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0}) row(Budget::progressive, tau);
}
