// The CPU kernel model (tests/cpu/kernel_model.hpp's online softmax in 64-token tiles) run with
// stage 5's plan's partials (multitile: the tree's nodes, no KV split) over the GPU tests'
// boundary and tree grids (their seeds), fp32 and 16-bit partials, against the plain emulation
// and against the emulation of the partials (reference_for_partials()), the last with the floor
// of one rounding and with the floor counting the partials' (Reference::row_roundings): each
// case's worst row error / bound, printed where the third is above 0.45, then the maxima. Not part
// of the build; compiled against a build directory's libraries (run 3 of this folder's README):
//   g++ -std=c++17 -O2 -I/usr/include/eigen3 -Ireference/include -Icuda/include -Itests/gpu \
//     -Itests/cpu -o /tmp/model_over_grids docs/results/2026-12-06-half-partials/model_over_grids.cpp \
//     build-cuda2/tests/libgpu_grids.a build-cuda2/reference/libpatlab_reference.a -pthread
//   /tmp/model_over_grids > docs/results/2026-12-06-half-partials/model_over_grids.txt
#include <cstdio>
#include <algorithm>
#include "harness.hpp"
#include "kernel_model.hpp"
#include "patlab/truth/verify.hpp"
#include "patlab/planner/stage_traffic.hpp"
using namespace patlab;
AttentionResult model_with_split(const Workload& w, const PartialSplit& split, bool half) {
  const Shape& s = w.shape();
  AttentionResult res = empty_result(w);
  const float k_scale = s.kv_fp8() ? w.k_scale : 1.0f, v_scale = s.kv_fp8() ? w.v_scale : 1.0f;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim)) * k_scale;
  parallel_for(int64_t{w.num_requests()} * s.num_kv_heads, [&](int64_t task) {
    const int r = task / s.num_kv_heads, kvh = task % s.num_kv_heads;
    const int64_t len = w.layout.lengths[r];
    Eigen::MatrixXd kd, vd;
    gather_kv(w, r, 0, len, kvh, kd, vd);
    const Eigen::MatrixXf k = (kd / k_scale).cast<float>(), v = (vd / v_scale).cast<float>();
    for (int g = 0; g < s.group(); ++g) {
      const int h = kvh * s.group() + g;
      const Eigen::VectorXf q = query_vector(w, r, h).cast<float>();
      std::vector<test::FloatPartial> parts;
      for (const PartialKeys& keys : split[r]) {
        // rows of the partial, then online softmax over them in 64-token tiles
        int64_t n = 0; for (auto [b, e] : keys) n += e - b;
        Eigen::MatrixXf kk(n, s.head_dim), vv(n, s.head_dim); int64_t at = 0;
        for (auto [b, e] : keys) { kk.middleRows(at, e - b) = k.middleRows(b, e - b); vv.middleRows(at, e - b) = v.middleRows(b, e - b); at += e - b; }
        test::FloatPartial p = test::online_softmax(q, kk, vv, 0, n, scale, s.dtype);
        if (s.kv_fp8()) p.o *= v_scale;
        parts.push_back(p);
      }
      if (half && parts.size() > 1) for (auto& p : parts) p.o = p.o.unaryExpr([&](float x) { return round_to(x, s.dtype); });
      float big = -INFINITY; for (auto& p : parts) big = std::max(big, p.lse);
      float l = 0; for (auto& p : parts) l += std::exp(p.lse - big);
      const float total = big + std::log(l);
      Eigen::VectorXf acc = Eigen::VectorXf::Zero(s.head_dim);
      for (auto& p : parts) acc += std::exp(p.lse - total) * p.o;
      MergeState st; st.lse = total; st.o.resize(s.head_dim);
      for (int i = 0; i < s.head_dim; ++i) st.o(i) = round_to(acc(i), s.dtype);
      res.store(r, h, st);
    }
  });
  return res;
}
int main() {
  std::vector<test::Case> cases = test::boundary_grid(20261122);
  auto tree = test::tree_grid(7001);
  cases.insert(cases.end(), tree.begin(), tree.end());
  double w_fp = 0, w_plain = 0, w_aware = 0, w_floor = 0;
  for (const auto& c : cases) {
    const Workload w = make_workload(c.tree, c.shape, c.seed, true, c.data);
    StageTrafficOptions o; StagePlanConfig cfg;
    plan_stage_config("multitile", w.shape(), o, cfg);
    const Plan plan = make_plan(w.layout, cfg.planner);
    const PartialSplit split = plan_partial_split(plan, w.layout);
    const Reference ref = make_reference(w);
    const Reference aware = reference_for_partials(ref, w, split);
    const Tolerance& tol = tolerance(c.shape.dtype, c.shape.kv_dtype);
    // floor_roundings: use r.row_roundings in the floor (check.hpp's rule 3 since 2026-12-06's
    // partials-floor) or the output's one rounding alone
    auto worst = [&](const AttentionResult& m, const Reference& r, bool floor_roundings = false) {
      double x = 0; auto e = row_errors(m, r.oracle);
      for (size_t i = 0; i < e.size(); ++i) {
        const double f = floor_roundings && !r.row_roundings.empty() ? std::sqrt(r.row_roundings[i]) : 1.0;
        x = std::max(x, e[i] / (kEmulationFactor * r.emulated_row_error[i] + tol.row_floor * f));
      }
      return x; };
    const double a = worst(model_with_split(w, split, false), ref);
    const double b = worst(model_with_split(w, split, true), ref);
    const AttentionResult half = model_with_split(w, split, true);
    const double cc = worst(half, aware), dd = worst(half, aware, true);
    w_fp = std::max(w_fp, a); w_plain = std::max(w_plain, b); w_aware = std::max(w_aware, cc); w_floor = std::max(w_floor, dd);
    if (cc > 0.45) std::printf("%.3f %.3f %.3f %.3f %s\n", a, b, cc, dd, c.name.c_str());
  }
  std::printf("max over %zu cases: fp32 model/plain %.3f, 16-bit model/plain %.3f, 16-bit model/aware %.3f, "
              "16-bit model/aware with the partials' rounding in the floor %.3f\n", cases.size(), w_fp, w_plain, w_aware, w_floor);
}
