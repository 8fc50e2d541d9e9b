// Sparse decode on the CPU: NSA's selection (forced blocks, ties, the group sum), PSA's stopping
// rule, the three branches against direct computations, FSA's view and the byte models of both
// loop orders, and the refusal of inconsistent parameters.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/sparse/fsa.hpp"
#include "patlab/sparse/sparse_check.hpp"
#include "patlab/sparse/sparse_oracle.hpp"

using namespace patlab;
using namespace patlab::sparse;

namespace {

constexpr uint64_t kSeed = 7;
/// Agreement of two float64 computations of the same sums in different orders.
constexpr double kFloat64Agreement = 1e-12;

/// 4 requests sharing 300 tokens, 100 own each (400 tokens: 7 selection blocks of 64, the last
/// one 16 tokens), 8/2 heads, d = 64, page 16.
Workload small_workload(DataKind data = DataKind::peaked, KvDType kv = KvDType::same) {
  return make_workload(parse_tree_spec("1,4_300,100"), shape_of(8, 2, 64, 16, DType::fp16, kv), kSeed, true, data);
}

/// Options that fit small_workload() without clamping.
SparseOptions small_options() {
  SparseOptions o;
  o.top_n = 4;
  o.window = 128;
  o.max_budget = 7;
  return o;
}

std::vector<int32_t> v(std::initializer_list<int32_t> x) { return x; }

/// |a - b| <= tol * max(1, |b|): a relative check near 1 and above, absolute below (Catch2 2.x
/// and 3.x spell Approx differently, so the tests do without it).
bool agrees(double a, double b, double tol = kFloat64Agreement) { return std::fabs(a - b) <= tol * std::max(1.0, std::fabs(b)); }

/// Attention from its definition over rows given as (key, value) vectors, no max subtraction.
std::pair<std::vector<double>, double> plain_attend(const std::vector<double>& q,
                                                    const std::vector<std::vector<double>>& keys,
                                                    const std::vector<std::vector<double>>& values) {
  const size_t d = q.size();
  std::vector<double> acc(d, 0.0);
  double z = 0;
  for (size_t t = 0; t < keys.size(); ++t) {
    double s = 0;
    for (size_t i = 0; i < d; ++i) s += q[i] * keys[t][i];
    const double e = std::exp(s / std::sqrt(static_cast<double>(d)));
    z += e;
    for (size_t i = 0; i < d; ++i) acc[i] += e * values[t][i];
  }
  for (double& a : acc) a /= z;
  return {acc, std::log(z)};
}

std::vector<double> token_row(const Workload& w, KvTensor t, int r, int64_t token, int kvh) {
  std::vector<double> row(static_cast<size_t>(w.shape().head_dim));
  w.kv_values(t, w.token_offset(r, token, kvh), w.shape().head_dim, row.data());
  return row;
}

std::vector<double> q_row(const Workload& w, int r, int h) {
  std::vector<double> q;
  for (int i = 0; i < w.shape().head_dim; ++i) q.push_back(to_float(w.q[w.q_offset(r, h) + i], w.shape().dtype));
  return q;
}

double max_diff(const double* a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("block geometry: compressed and selection blocks of a request") {
  SparseOptions o;  // l = 32, stride 16, l' = 64
  CHECK(compressed_block_count(31, o) == 0);
  CHECK(compressed_block_count(32, o) == 1);
  CHECK(compressed_block_count(47, o) == 1);
  CHECK(compressed_block_count(48, o) == 2);
  CHECK(compressed_block_count(400, o) == 24);
  CHECK(selection_block_count(400, o) == 7);
  CHECK(selection_block_tokens(400, 5, o) == 64);
  CHECK(selection_block_tokens(400, 6, o) == 16);
  CHECK(forced_blocks(7) == v({0, 5, 6}));
  CHECK(forced_blocks(2) == v({0, 1}));
  CHECK(forced_blocks(1) == v({0}));
}

TEST_CASE("selection scores: a compressed block counts in every selection block it overlaps, summed over the group") {
  SparseOptions o;
  // 128 tokens: compressed blocks j = 0..6 start at 16 j; block 3 covers [48, 80): both selection blocks.
  std::vector<double> head0(7, 0.0), head1(7, 0.0);
  head0[3] = 1.0;
  head1[6] = 1.0;  // [96, 128): selection block 1 only
  CHECK(selection_scores({head0}, 128, o) == std::vector<double>{1.0, 1.0});
  CHECK(selection_scores({head0, head1}, 128, o) == std::vector<double>{1.0, 2.0});
  head1[0] = 0.5;  // [0, 32): block 0 only
  CHECK(selection_scores({head0, head1}, 128, o) == std::vector<double>{1.5, 2.0});
}

TEST_CASE("top-n: forced blocks first, then descending score, ties to the lower index") {
  const std::vector<double> scores{0, 5, 1, 5, 2, 0, 0};
  CHECK(select_top_n(scores, 3) == v({0, 5, 6}));        // only the forced ones
  CHECK(select_top_n(scores, 4) == v({0, 1, 5, 6}));     // 1 and 3 tie: 1
  CHECK(select_top_n(scores, 5) == v({0, 1, 3, 5, 6}));
  CHECK(select_top_n(scores, 6) == v({0, 1, 3, 4, 5, 6}));
  CHECK(select_top_n(scores, 99) == v({0, 1, 2, 3, 4, 5, 6}));
  CHECK(select_top_n({0, 0, 0, 0, 0}, 4) == v({0, 1, 3, 4}));  // all equal: the lowest free index
  CHECK(select_top_n({9, 1}, 16) == v({0, 1}));
}

TEST_CASE("PSA: the stopping rule on hand-made scores") {
  // masses: forced {0, 6, 7} hold 0.25; the rest in order 1 (0.4), 3 (0.2), 2 (0.1), 4 (0.05), 5 (0)
  const std::vector<double> scores{0.05, 0.4, 0.1, 0.2, 0.05, 0.0, 0.1, 0.1};
  double covered = 0;
  CHECK(select_progressive(scores, 0.2, 3, 8, &covered) == v({0, 6, 7}));
  CHECK(agrees(covered, 0.25));
  CHECK(select_progressive(scores, 0.5, 3, 8, &covered) == v({0, 1, 6, 7}));
  CHECK(agrees(covered, 0.65));
  CHECK(select_progressive(scores, 0.7, 3, 8) == v({0, 1, 3, 6, 7}));
  CHECK(select_progressive(scores, 0.2, 5, 8) == v({0, 1, 3, 6, 7}));  // the minimum budget
  CHECK(select_progressive(scores, 0.99, 3, 4, &covered) == v({0, 1, 6, 7}));  // the maximum budget
  CHECK(agrees(covered, 0.65));
  CHECK(select_progressive(scores, 0.999, 3, 64) == v({0, 1, 2, 3, 4, 6, 7}));  // block 5 holds no mass
  CHECK(select_progressive({0, 0, 0, 0}, 0.5, 3, 8) == v({0, 2, 3}));  // no estimate: uniform masses
}

TEST_CASE("PSA: stops at the first block that reaches tau, grows with tau, within its budgets") {
  std::mt19937_64 rng(kSeed);
  std::lognormal_distribution<double> draw(0.0, 2.0);
  INFO("seed " << kSeed);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<double> scores(static_cast<size_t>(5 + trial % 40));
    for (double& s : scores) s = draw(rng);
    double total = 0;
    for (double s : scores) total += s;
    const int lo = 3 + trial % 3, hi = lo + trial % 20;
    std::vector<int32_t> previous;
    for (double tau = 0.05; tau <= 1.0; tau += 0.05) {
      double covered = 0;
      const std::vector<int32_t> chosen = select_progressive(scores, tau, lo, hi, &covered);
      const int n = static_cast<int>(chosen.size());
      const int blocks = static_cast<int>(scores.size());
      CHECK(n >= std::min(lo, blocks));
      CHECK(n <= std::min(hi, blocks));
      CHECK((covered >= tau || n == std::min(hi, blocks)));
      // The last block taken is the lowest-scored free one; without it the mass is below tau.
      const std::vector<int32_t> forced = forced_blocks(blocks);
      int32_t last = -1;
      for (int32_t b : chosen)
        if (std::find(forced.begin(), forced.end(), b) == forced.end() &&
            (last < 0 || scores[static_cast<size_t>(b)] <= scores[static_cast<size_t>(last)]))
          last = b;
      if (n > std::min(lo, blocks) && last >= 0) CHECK(covered - scores[static_cast<size_t>(last)] / total < tau);
      CHECK(std::includes(chosen.begin(), chosen.end(), previous.begin(), previous.end()));
      CHECK(std::includes(chosen.begin(), chosen.end(), forced.begin(), forced.begin() + std::min<int>(n, forced.size())));
      previous = chosen;
    }
  }
}

TEST_CASE("selection of a batch: the group's scores, one list per (request, KV head)") {
  const Workload w = small_workload();
  const SparseOptions o = small_options();
  const Selection sel = select_blocks(w, o);
  REQUIRE(sel.blocks.size() == 8);
  for (int r = 0; r < 4; ++r)
    for (int kvh = 0; kvh < 2; ++kvh) {
      const std::vector<double> scores = selection_scores(compressed_probabilities(w, r, kvh, o), 400, o);
      double sum = 0;
      for (double s : scores) sum += s;
      // Each query head's probabilities sum to 1; block overlaps add each compressed block once or twice.
      CHECK(sum >= w.shape().group() - 1e-12);
      CHECK(sum <= 2 * w.shape().group() + 1e-12);
      CHECK(sel.of(r, kvh) == select_top_n(scores, o.top_n));
      CHECK(sel.of(r, kvh).size() == 4);
    }
}

TEST_CASE("compressed branch: mean-pooled blocks, against a direct computation") {
  const Workload w = small_workload();
  const SparseOptions o = small_options();
  const SparseAttention s = sparse_attention(w, o, select_blocks(w, o));
  for (int r : {0, 3})
    for (int h : {0, 5}) {
      const int kvh = h / w.shape().group();
      std::vector<std::vector<double>> keys, values;
      for (int j = 0; j < compressed_block_count(400, o); ++j) {
        std::vector<double> km(64, 0.0), vm(64, 0.0);
        for (int t = j * o.cmp_stride; t < j * o.cmp_stride + o.cmp_block; ++t) {
          const auto kr = token_row(w, KvTensor::k, r, t, kvh), vr = token_row(w, KvTensor::v, r, t, kvh);
          for (int i = 0; i < 64; ++i) {
            km[i] += kr[i] / o.cmp_block;
            vm[i] += vr[i] / o.cmp_block;
          }
        }
        keys.push_back(km);
        values.push_back(vm);
      }
      const auto [ref, lse] = plain_attend(q_row(w, r, h), keys, values);
      CHECK(max_diff(s.compressed.o_at(r, h), ref) < kFloat64Agreement);
      CHECK(agrees(s.compressed.lse[static_cast<size_t>(r) * 8 + h], lse));
    }
}

TEST_CASE("window branch: the last w tokens; selected branch: the chosen blocks' tokens") {
  const Workload w = small_workload(DataKind::flat);
  const SparseOptions o = small_options();
  const Selection sel = select_blocks(w, o);
  const SparseAttention s = sparse_attention(w, o, sel);
  for (int r : {1, 2})
    for (int h : {2, 7}) {
      const int kvh = h / w.shape().group();
      std::vector<std::vector<double>> keys, values, skeys, svalues;
      for (int t = 400 - o.window; t < 400; ++t) {
        keys.push_back(token_row(w, KvTensor::k, r, t, kvh));
        values.push_back(token_row(w, KvTensor::v, r, t, kvh));
      }
      CHECK(max_diff(s.window.o_at(r, h), plain_attend(q_row(w, r, h), keys, values).first) < kFloat64Agreement);
      for (int32_t b : sel.of(r, kvh))
        for (int64_t t = b * o.sel_block; t < std::min<int64_t>(400, (b + 1) * o.sel_block); ++t) {
          skeys.push_back(token_row(w, KvTensor::k, r, t, kvh));
          svalues.push_back(token_row(w, KvTensor::v, r, t, kvh));
        }
      CHECK(max_diff(s.selected.o_at(r, h), plain_attend(q_row(w, r, h), skeys, svalues).first) < kFloat64Agreement);
    }
}

TEST_CASE("gates: with every V equal to c, each branch gives c and the output (g_cmp + g_sel + g_win) c") {
  Workload w = small_workload();
  constexpr float kValue = 0.5f;  // exact in fp16
  for (int r = 0; r < w.num_requests(); ++r)
    for (int64_t t = 0; t < w.layout.lengths[static_cast<size_t>(r)]; ++t)
      for (int kvh = 0; kvh < 2; ++kvh)
        for (int i = 0; i < 64; ++i) w.store_kv(KvTensor::v, w.token_offset(r, t, kvh) + i, kValue);
  SparseOptions o = small_options();
  o.gate_cmp = 0.2;
  o.gate_sel = 0.3;
  o.gate_win = 0.4;
  const SparseAttention s = sparse_attention(w, o, select_blocks(w, o));
  for (size_t i = 0; i < s.o.size(); ++i) {
    REQUIRE(agrees(s.compressed.o[i], kValue));
    REQUIRE(agrees(s.o[i], 0.9 * kValue));
  }
}

TEST_CASE("n at least the blocks of every request: the selected branch is dense attention (16-bit and fp8)") {
  for (KvDType kv : {KvDType::same, KvDType::fp8_e4m3}) {
    const Workload w = small_workload(DataKind::peaked, kv);
    SparseOptions o = small_options();
    o.top_n = 7;
    const AttentionResult dense = naive_attention(w);
    const SparseAttention s = sparse_attention(w, o, select_blocks(w, o));
    CHECK(max_relative_difference(s.selected, dense) < kOracleAgreement);
    const SparseError e = selected_error(s, dense);
    CHECK(e.max_abs_error < kFloat64Agreement);
    CHECK(agrees(e.min_true_mass, 1.0));
    // and with fewer blocks the error is real and the mass below 1
    o.top_n = 3;
    const SparseError e3 = selected_error(sparse_attention(w, o, select_blocks(w, o)), dense);
    CHECK(e3.max_abs_error > 1e-3);
    CHECK(e3.min_true_mass < 1.0);
  }
}

TEST_CASE("error curves: each point is the oracle's selection and error, and error falls to 0 with n") {
  const Workload w = small_workload();
  SparseOptions o = small_options();
  const AttentionResult dense = naive_attention(w);
  const std::vector<CurvePoint> pts = error_curves(w, o, dense, {3, 5, 7}, {0.5, 0.9});
  REQUIRE(pts.size() == 5);
  for (const CurvePoint& p : pts) {
    o.budget = p.budget;
    o.top_n = p.budget == Budget::top_n ? static_cast<int>(p.parameter) : o.top_n;
    o.tau = p.parameter;
    const Selection sel = select_blocks(w, o);
    const SparseError e = selected_error(sparse_attention(w, o, sel), dense);
    CHECK(p.blocks_read == sel.total_blocks());
    CHECK(p.kv_bytes == nsa_order_cost(w.layout, sel, o).kv_bytes);
    CHECK(agrees(p.max_abs_error, e.max_abs_error));
    CHECK(agrees(p.mean_true_mass, e.mean_true_mass));
  }
  CHECK(pts[0].max_abs_error > pts[1].max_abs_error);
  CHECK(pts[2].max_abs_error < kFloat64Agreement);
  CHECK(pts[3].blocks_read <= pts[4].blocks_read);
}

TEST_CASE("PSA on a planted hot block: the estimate finds it and the budget stops there") {
  // 4 requests of 400 tokens, no sharing; at KV head 0 every key of selection block 3 is the
  // group's mean query times kScale, so the group's scores there are far above all others.
  constexpr int kHot = 3;
  constexpr double kScale = 4.0;  // scores about 2 kScale there, about 0 elsewhere
  Workload w = make_workload(parse_tree_spec("4_400"), shape_of(8, 2, 64, 16), kSeed, true, DataKind::flat);
  for (int r = 0; r < 4; ++r) {
    std::vector<double> mean(64, 0.0);
    for (int g = 0; g < w.shape().group(); ++g) {
      const std::vector<double> q = q_row(w, r, g);
      for (int i = 0; i < 64; ++i) mean[i] += q[i] / w.shape().group();
    }
    for (int64_t t = kHot * 64; t < (kHot + 1) * 64; ++t)
      for (int i = 0; i < 64; ++i) w.store_kv(KvTensor::k, w.token_offset(r, t, 0) + i, static_cast<float>(kScale * mean[i]));
  }
  SparseOptions o = small_options();
  o.budget = Budget::progressive;
  o.tau = 0.9;
  const Selection sel = select_blocks(w, o);
  const SparseAttention s = sparse_attention(w, o, sel);
  const AttentionResult dense = naive_attention(w);
  for (int r = 0; r < 4; ++r) {
    for (int h = 0; h < w.shape().group(); ++h)  // the true mass of the chosen blocks at KV head 0
      CHECK(std::exp(s.selected.lse[static_cast<size_t>(r) * 8 + h] - dense.lse[static_cast<size_t>(r) * 8 + h]) >= o.tau);
    CHECK(sel.of(r, 0) == v({0, kHot, 5, 6}));
    CHECK(sel.estimated_mass[static_cast<size_t>(r) * 2] >= o.tau);
    CHECK(sel.of(r, 1).size() > 4);  // head 1 has no hot block: flat data needs more
  }
}

TEST_CASE("FSA view: every (request, KV head, block) choice exactly once, on the pages it names") {
  const Workload w = small_workload();
  const SparseOptions o = small_options();
  const Selection sel = select_blocks(w, o);
  const FsaView view = fsa_view(w.layout, sel, o);
  std::multiset<std::tuple<int, int, int>> seen, chosen;
  for (const FsaBlock& b : view.blocks)
    for (const FsaRow& row : b.rows) {
      seen.insert({row.request, b.kv_head, row.block});
      const auto& table = w.layout.block_tables[static_cast<size_t>(row.request)];
      const size_t first = static_cast<size_t>(row.block) * 4;
      CHECK(std::equal(b.pages.begin(), b.pages.end(), table.begin() + static_cast<std::ptrdiff_t>(first)));
      CHECK(b.tokens == selection_block_tokens(400, row.block, o));
    }
  for (int r = 0; r < 4; ++r)
    for (int kvh = 0; kvh < 2; ++kvh)
      for (int32_t b : sel.of(r, kvh)) chosen.insert({r, kvh, b});
  CHECK(seen == chosen);
  CHECK(view.total_rows() == sel.total_blocks());
  // The forced first block lies in the shared prefix: one physical block per KV head, 4 rows.
  CHECK(view.max_rows() == 4);
  std::set<std::pair<std::vector<int32_t>, int>> distinct;
  for (const FsaBlock& b : view.blocks) distinct.insert({b.pages, b.kv_head});
  CHECK(distinct.size() == view.blocks.size());
}

TEST_CASE("FSA's span packs: the 64-row cut where it reads at most kTallPackBytes of the 32-row cut and fills the SMs") {
  // 4 requests at group 4 fit one 32-row pack: both cuts read the same, so 32 rows. 256 requests
  // over a 2048-token prefix, 12 blocks each: a prefix block chosen by many fills more 32-row
  // packs than 64-row ones, and the 64-row cut reads about 0.75x the bytes: 64 rows, on a GPU
  // small enough that its packs number kTallMinCtasPerSm per SM, else 32. The span cap is fixed
  // (kMaxSpanBlocks), so that the SM count changes only the fill rule.
  const int half = traffic::partial_out_elem_bytes(true);
  for (const char* tree : {"1,4_300,100", "1,256_2048,16"}) {
    CAPTURE(tree);
    const bool many = std::string(tree) == "1,256_2048,16";
    SparseOptions o = small_options();
    if (many) o.top_n = 12;
    const Workload w = make_workload(parse_tree_spec(tree), shape_of(8, 2, 64, 16, DType::fp16), kSeed, true);
    const FsaView view = fsa_view(w.layout, select_blocks(w, o), o);
    auto plan = [&](int rows, int sms) { return plan_fsa_spans(w.layout, view, o.sel_block, kMaxSpanBlocks, rows, sms, half); };
    const FsaSpanPlan narrow = plan(kSpanNarrowRows, 1);
    const FsaSpanPlan tall = plan(kSpanTallRows, 1);
    CHECK(narrow.per_tile == 8);
    CHECK(tall.per_tile == 16);
    CHECK(narrow.tall_over_narrow == 0.0);  // a given height records no ratio
    CHECK(narrow.tall_packs == 0);
    const double ratio =
        static_cast<double>(tall.cost.total_bytes()) / static_cast<double>(narrow.cost.total_bytes());
    CHECK((ratio <= kTallPackBytes) == many);
    // the most SMs on which the tall cut still has kTallMinCtasPerSm CTAs per SM, and one more
    const int fill = std::max(1, static_cast<int>(tall.cost.packs / kTallMinCtasPerSm));
    CAPTURE(ratio, tall.cost.packs, fill);
    for (int sms : {fill, fill + 1}) {
      CAPTURE(sms);
      const FsaSpanPlan automatic = plan(0, sms);
      CHECK(automatic.tall_over_narrow == ratio);
      CHECK(automatic.tall_packs == tall.cost.packs);
      const FsaSpanPlan& expected = many && sms == fill ? tall : narrow;
      CHECK(automatic.rows == expected.rows);
      CHECK(automatic.per_tile == expected.per_tile);
      CHECK(automatic.spans.size() == expected.spans.size());
      CHECK(automatic.cost.total_bytes() == expected.cost.total_bytes());
      CHECK(automatic.cost.packs == expected.cost.packs);
    }
  }
}

TEST_CASE("FSA's spans: every choice in exactly one span, the cap and the pack rule kept, the model counted per pack") {
  const Workload w = small_workload();
  const SparseOptions o = small_options();
  const FsaView view = fsa_view(w.layout, select_blocks(w, o), o);
  const Shape& s = w.shape();
  for (int cap : {1, 2, kMaxSpanBlocks})
    for (size_t per_tile : {size_t{1}, size_t{2}, size_t{4}}) {
      CAPTURE(cap, per_tile);
      const std::vector<FsaSpan> spans = fsa_spans(view, o.sel_block, cap, per_tile);
      std::multiset<std::tuple<int, int, int>> covered, chosen;  // (request, KV head, physical block)
      std::vector<int> blocks_seen(view.blocks.size(), 0);
      int64_t packs = 0, entries = 0, kv = 0;
      for (const FsaSpan& span : spans) {
        CHECK(!span.blocks.empty());
        CHECK(static_cast<int>(span.blocks.size()) <= cap);
        int64_t tokens = 0;
        for (size_t i = 0; i < span.blocks.size(); ++i) {
          const FsaBlock& b = view.blocks[span.blocks[i]];
          CHECK(b.kv_head == span.kv_head);
          ++blocks_seen[span.blocks[i]];
          tokens += b.tokens;
          // only a span's last block may be short
          if (i + 1 < span.blocks.size()) CHECK(b.tokens == o.sel_block);
          for (const FsaRow& row : b.rows) {
            CHECK((span.masks.at(row.request) >> i & 1u) == 1u);
            covered.insert({row.request, span.kv_head, static_cast<int>(span.blocks[i])});
          }
        }
        // a mask bit is set only where its request chose that block
        for (const auto& [request, mask] : span.masks)
          for (size_t i = 0; i < span.blocks.size(); ++i)
            if (mask >> i & 1u) chosen.insert({request, span.kv_head, static_cast<int>(span.blocks[i])});
        const int64_t n = static_cast<int64_t>(span.masks.size());
        // the pack rule: the span's requests fill no more packs than its first block's alone
        const int64_t first = static_cast<int64_t>(view.blocks[span.blocks[0]].rows.size());
        const int64_t p = (n + static_cast<int64_t>(per_tile) - 1) / static_cast<int64_t>(per_tile);
        CHECK(p == (first + static_cast<int64_t>(per_tile) - 1) / static_cast<int64_t>(per_tile));
        // fsa_packs(): every request of the span in one pack of at most per_tile, with the same
        // chosen blocks; a pack reads exactly the blocks its requests chose, in span order
        const std::vector<FsaPack> span_packs = fsa_packs(view, span, per_tile);
        CHECK(static_cast<int64_t>(span_packs.size()) == p);
        std::map<int32_t, std::set<size_t>> from_packs, from_span;
        for (const auto& [request, mask] : span.masks)
          for (size_t i = 0; i < span.blocks.size(); ++i)
            if (mask >> i & 1u) from_span[request].insert(span.blocks[i]);
        int64_t pack_tokens = 0;
        for (const FsaPack& pack : span_packs) {
          CHECK(!pack.requests.empty());
          CHECK(pack.requests.size() <= per_tile);
          CHECK(pack.masks.size() == pack.requests.size());
          std::set<size_t> read;
          for (size_t i = 0; i < pack.requests.size(); ++i) {
            CHECK(from_packs.count(pack.requests[i]) == 0);
            std::set<size_t>& mine = from_packs[pack.requests[i]];
            for (size_t b = 0; b < pack.blocks.size(); ++b)
              if (pack.masks[i] >> b & 1u) mine.insert(pack.blocks[b]);
            CHECK((pack.masks[i] >> pack.blocks.size()) == 0u);
            read.insert(mine.begin(), mine.end());
          }
          CHECK(read == std::set<size_t>(pack.blocks.begin(), pack.blocks.end()));  // nothing unchosen read
          int64_t t = 0;
          size_t at = 0;  // pack.blocks follow the span's order
          for (size_t id : pack.blocks) {
            t += view.blocks[id].tokens;
            while (at < span.blocks.size() && span.blocks[at] != id) ++at;
            CHECK(at < span.blocks.size());
          }
          CHECK(pack.tokens == t);
          pack_tokens += t;
        }
        CHECK(from_packs == from_span);
        packs += p;
        entries += n;
        kv += pack_tokens * traffic::kv_bytes_per_token(1, s.head_dim, s.kv_element_bytes());
        CHECK(pack_tokens <= p * tokens);
      }
      CHECK(covered == chosen);
      CHECK(static_cast<int64_t>(covered.size()) == view.total_rows());
      for (int seen : blocks_seen) CHECK(seen == 1);
      const SpanPlanCost c = span_plan_cost(w.layout, view, spans, per_tile, traffic::partial_out_elem_bytes(true));
      CHECK(c.spans == static_cast<int64_t>(spans.size()));
      CHECK(c.packs == packs);
      CHECK(c.entries == entries);
      CHECK(c.kv_bytes == kv);
      CHECK(c.q_bytes == entries * traffic::query_bytes(s.group(), s.head_dim));
      CHECK(c.partial_bytes == traffic::partials_round_trip_bytes(s.group(), s.head_dim, entries, 2));
      CHECK(c.total_bytes() == c.kv_bytes + c.q_bytes + c.partial_bytes);
      // one block a span: every block once per pack of its own requests, one partial per choice
      if (cap == 1) CHECK(entries == view.total_rows());
    }
  // span_cap(): about kSpanCtasPerSm spans per SM, within 1..kMaxSpanBlocks
  CHECK(span_cap(0, 132) == 1);
  CHECK(span_cap(264, 132) == 1);
  CHECK(span_cap(265, 132) == 2);
  CHECK(span_cap(1000000, 132) == kMaxSpanBlocks);
  CHECK(span_pack_requests(4, 32) == 8);
  CHECK(span_pack_requests(4, 64) == 16);
  CHECK(span_pack_requests(16, 16) == 1);
  // plan_fsa_spans(): the options' cap and pack size, or the defaults, and fsa_spans() with them
  const FsaSpanPlan automatic = plan_fsa_spans(w.layout, view, o.sel_block, 0, 0, 132, 2);
  CHECK(automatic.cap == span_cap(view.blocks.size(), 132));
  CHECK(automatic.per_tile == static_cast<size_t>(span_pack_requests(s.group(), automatic.rows)));
  CHECK(automatic.spans.size() == fsa_spans(view, o.sel_block, automatic.cap, automatic.per_tile).size());
  // the plan keeps the packs it costed: fsa_packs() of each span
  REQUIRE(automatic.packs.size() == automatic.spans.size());
  int64_t planned_packs = 0;
  for (size_t i = 0; i < automatic.spans.size(); ++i) {
    const std::vector<FsaPack> again = fsa_packs(view, automatic.spans[i], automatic.per_tile);
    REQUIRE(automatic.packs[i].size() == again.size());
    for (size_t k = 0; k < again.size(); ++k) {
      CHECK(automatic.packs[i][k].requests == again[k].requests);
      CHECK(automatic.packs[i][k].masks == again[k].masks);
      CHECK(automatic.packs[i][k].blocks == again[k].blocks);
      CHECK(automatic.packs[i][k].tokens == again[k].tokens);
    }
    planned_packs += static_cast<int64_t>(again.size());
  }
  CHECK(planned_packs == automatic.cost.packs);
  const FsaSpanPlan fixed = plan_fsa_spans(w.layout, view, o.sel_block, 2, 16, 132, 2);
  CHECK(fixed.cap == 2);
  CHECK(fixed.per_tile == 4);
  CHECK(fixed.spans.size() == fsa_spans(view, o.sel_block, 2, 4).size());
  CHECK(fixed.cost.total_bytes() == span_plan_cost(w.layout, view, fixed.spans, 4, 2).total_bytes());
}

TEST_CASE("byte models: FSA's order reads shared blocks once; without sharing it reads what NSA's does") {
  SparseOptions o;
  o.window = 256;
  const Shape shape = shape_of(16, 4, 64, 16);  // group 4: NSA's tiles are 3/4 padding
  const Workload shared = make_workload(parse_tree_spec("1,16_2048,64"), shape, kSeed, true, DataKind::peaked);
  const Selection sel = select_blocks(shared, o);
  const LoopOrderCost nsa = nsa_order_cost(shared.layout, sel, o);
  const LoopOrderCost fsa = fsa_order_cost(shared.layout, fsa_view(shared.layout, sel, o));
  CHECK(nsa.kv_bytes == sel.total_blocks() * o.sel_block * traffic::kv_bytes_per_token(1, 64));  // all blocks full
  CHECK(fsa.kv_bytes < nsa.kv_bytes);
  CHECK(fsa.total_bytes() <= nsa.total_bytes());
  CHECK(nsa.useful_rows == fsa.useful_rows);
  CHECK(nsa.tile_utilisation() == 4.0 / kTileRows);
  CHECK(fsa.tile_utilisation() > nsa.tile_utilisation());

  const Workload alone = make_workload(parse_tree_spec("16_2112"), shape, kSeed, true, DataKind::peaked);
  const Selection sel2 = select_blocks(alone, o);
  const FsaView view2 = fsa_view(alone.layout, sel2, o);
  CHECK(view2.max_rows() == 1);
  CHECK(fsa_order_cost(alone.layout, view2).kv_bytes == nsa_order_cost(alone.layout, sel2, o).kv_bytes);
}

TEST_CASE("inconsistent parameters: Error(usage) naming the problem, or a stated clamp") {
  const Workload w = small_workload();  // 400 tokens, 7 selection blocks, page 16
  auto refused = [&](auto edit, const std::string& needle) {
    SparseOptions o = small_options();
    edit(o);
    require_error([&] { o.check_against(w.layout); }, needle);
  };
  refused([](SparseOptions& o) { o.tau = 0; }, "tau = 0");
  refused([](SparseOptions& o) { o.tau = 1.5; }, "tau = 1.5 is outside (0, 1]");
  refused([](SparseOptions& o) { o.tau = std::nan(""); }, "tau");
  refused([](SparseOptions& o) { o.sel_block = 40; }, "l' = 40 is not a multiple of the page (16");
  refused([](SparseOptions& o) { o.top_n = 8; }, "n = 8 is more than the 7 selection blocks of request 0");
  refused([](SparseOptions& o) { o.top_n = 2; }, "n (top-n");
  refused([](SparseOptions& o) { o.window = 401; }, "window w = 401 is longer than request 0 (400 tokens)");
  refused([](SparseOptions& o) { o.cmp_stride = 33; }, "stride = 33");
  refused([](SparseOptions& o) { o.cmp_block = 401; }, "shorter than one compressed block (l = 401)");
  refused([](SparseOptions& o) { o.gate_sel = 1.5; }, "selected gate");
  refused([](SparseOptions& o) { o.min_budget = 9; o.max_budget = 8; }, "maximum budget");
  refused([](SparseOptions& o) { o.budget = Budget::progressive; o.min_budget = 8; o.max_budget = 9; },
          "minimum budget 8 is more than the 7 selection blocks");
  SparseOptions o = small_options();
  o.top_n = 16;
  o.window = 512;
  o.clamp = true;
  const std::vector<std::string> notes = o.check_against(w.layout);
  REQUIRE(notes.size() == 2);
  CHECK(notes[0] == "n clamped to the request's selection blocks for 4 request(s)");
  CHECK(notes[1] == "window clamped to the request's length for 4 request(s)");
  const Selection sel = select_blocks(w, o);
  CHECK(sel.total_blocks() == 8 * 7);
  CHECK(max_relative_difference(sparse_attention(w, o, sel).window, naive_attention(w)) < kOracleAgreement);
}

// [test-tie-rule]
TEST_CASE("compare_selections: the GPU's tie rule accepts exchanges of equal-score blocks only") {
  const Workload w = small_workload();
  const SparseOptions o = small_options();
  const Selection cpu = select_blocks(w, o);
  REQUIRE(compare_selections(w, o, cpu, cpu).identical == static_cast<int64_t>(cpu.blocks.size()));
  // Row 0: exchange its best non-forced block for the worst unchosen one: not a tie.
  const std::vector<double> scores = selection_scores(compressed_probabilities(w, 0, 0, o), w.layout.lengths[0], o);
  const std::vector<int32_t> forced = forced_blocks(static_cast<int>(scores.size()));
  Selection swapped = cpu;
  std::vector<int32_t>& row = swapped.blocks[0];
  int32_t chosen = -1, worst = -1;
  for (int32_t b : row)
    if (std::find(forced.begin(), forced.end(), b) == forced.end()) chosen = b;
  for (int32_t b = 0; b < static_cast<int32_t>(scores.size()); ++b)
    if (std::find(row.begin(), row.end(), b) == row.end() && (worst < 0 || scores[b] < scores[worst])) worst = b;
  REQUIRE(chosen >= 0);
  REQUIRE(worst >= 0);
  std::replace(row.begin(), row.end(), chosen, worst);
  std::sort(row.begin(), row.end());
  const double gap = std::fabs(scores[chosen] - scores[worst]) /
                     std::accumulate(scores.begin(), scores.end(), 0.0);
  const SelectionAgreement a = compare_selections(w, o, cpu, swapped);
  CHECK(a.pass() == (gap <= kSelectionTieMass));
  CHECK(a.rows == static_cast<int64_t>(cpu.blocks.size()));
  // A block more or fewer under top-n is never a tie.
  Selection shorter = cpu;
  shorter.blocks[1].pop_back();
  CHECK_FALSE(compare_selections(w, o, cpu, shorter).pass());
}
// [test-tie-rule]

// [test-clustered-estimate]
TEST_CASE("the compressed estimate finds the mass on clustered data, not on flat or peaked data") {
  // Chapter 22 section 5: with i.i.d. keys the mean of 32 keys ranks blocks almost at random; on
  // clustered data (keys share a centre per 32-token run) the top 8 of 33 blocks must hold far
  // more of the true mass than on either i.i.d. kind, where 8 blocks chosen at random hold
  // about 8/33 = 0.24 of it.
  constexpr double kMargin = 0.25;
  const TokenTree t = parse_tree_spec("1,4_2048,64");  // 2112 tokens: 33 selection blocks
  const Shape shape = shape_of(8, 2, 64, 16);
  SparseOptions o;
  std::map<DataKind, double> mass;
  for (DataKind data : {DataKind::flat, DataKind::peaked, DataKind::clustered}) {
    const Workload w = make_workload(t, shape, kSeed, true, data);
    const std::vector<CurvePoint> pts = error_curves(w, o, naive_attention(w), {8}, {});
    REQUIRE(pts.size() == 1);
    mass[data] = pts[0].mean_true_mass;
  }
  CAPTURE(mass[DataKind::flat], mass[DataKind::peaked], mass[DataKind::clustered]);
  CHECK(mass[DataKind::clustered] > mass[DataKind::flat] + kMargin);
  CHECK(mass[DataKind::clustered] > mass[DataKind::peaked] + kMargin);
}
// [test-clustered-estimate]

// [test-mixed-heads]
TEST_CASE("mixed data: a fixed top-n covers more of a concentrated head's mass than a spread head's; PSA gives spread heads more") {
  // kv_cache.hpp's mixed model: concentrated KV heads are clustered data (q scale 4), spread ones
  // have q scale 2, so the same 8 of 33 blocks hold less of a spread head's true mass, and PSA
  // needs more blocks to cover tau of its estimated mass.
  constexpr double kMargin = 0.1;
  const TokenTree t = parse_tree_spec("1,4_2048,64");  // 2112 tokens: 33 selection blocks
  const Shape shape = shape_of(8, 4, 64, 16);         // group 2: spread heads are 2 of the 4
  const Workload w = make_workload(t, shape, kSeed, true, DataKind::mixed);
  const std::vector<bool> spread = mixed_spread_heads(kSeed, shape.num_kv_heads, shape.group());
  const AttentionResult dense = naive_attention(w);
  SparseOptions o;
  o.top_n = 8;
  const SparseAttention top = sparse_attention(w, o, select_blocks(w, o));
  double mass[2] = {0, 0};
  int rows[2] = {0, 0};
  for (int r = 0; r < w.num_requests(); ++r)
    for (int h = 0; h < shape.num_q_heads; ++h) {
      const size_t at = static_cast<size_t>(r) * shape.num_q_heads + h;
      const int kind = spread[static_cast<size_t>(h / shape.group())] ? 1 : 0;
      mass[kind] += std::exp(top.selected.lse[at] - dense.lse[at]);
      ++rows[kind];
    }
  REQUIRE(rows[0] > 0);
  REQUIRE(rows[1] > 0);
  const double concentrated = mass[0] / rows[0], spread_mass = mass[1] / rows[1];
  CAPTURE(concentrated, spread_mass);
  CHECK(concentrated > spread_mass + kMargin);
  o.budget = Budget::progressive;
  o.tau = 0.9;
  o.max_budget = 33;
  const Selection psa = select_blocks(w, o);
  double blocks[2] = {0, 0};
  for (int r = 0; r < w.num_requests(); ++r)
    for (int kv = 0; kv < shape.num_kv_heads; ++kv)
      blocks[spread[static_cast<size_t>(kv)] ? 1 : 0] += static_cast<double>(psa.of(r, kv).size());
  CAPTURE(blocks[0], blocks[1]);
  CHECK(blocks[1] > blocks[0]);
}
// [test-mixed-heads]

// [test-streaming-heads]
TEST_CASE("streaming data: the sinks and recent blocks hold a streaming head's mass; PSA stops there") {
  // kv_cache.hpp's streaming model: at streaming KV heads the first 64 and the last 256 tokens
  // hold nearly all the mass; PSA's estimate sees it, so it takes about those 5 blocks there and
  // more at the retrieval heads (clustered data).
  const TokenTree t = parse_tree_spec("1,4_2048,320");  // 2368 tokens: 37 selection blocks of 64
  const Shape shape = shape_of(8, 4, 64, 16);          // group 2: 2 streaming KV heads of 4
  const Workload w = make_workload(t, shape, kSeed, true, DataKind::streaming);
  const std::vector<bool> retrieval = mixed_spread_heads(kSeed, shape.num_kv_heads, shape.group());
  const int blocks = 37;
  Selection lifted;  // block 0 (the sinks) and blocks 33-36 (the last 256 tokens), every row
  lifted.num_kv_heads = shape.num_kv_heads;
  for (int r = 0; r < w.num_requests() * shape.num_kv_heads; ++r) {
    lifted.blocks.push_back({0, blocks - 4, blocks - 3, blocks - 2, blocks - 1});
    lifted.estimated_mass.push_back(0);
  }
  SparseOptions o;
  const AttentionResult dense = naive_attention(w);
  const SparseAttention sinks = sparse_attention(w, o, lifted);
  double least = 1;  // the least true mass the 5 blocks hold at a streaming head's query head
  for (int r = 0; r < w.num_requests(); ++r)
    for (int h = 0; h < shape.num_q_heads; ++h)
      if (!retrieval[static_cast<size_t>(h / shape.group())]) {
        const size_t at = static_cast<size_t>(r) * shape.num_q_heads + h;
        least = std::min(least, std::exp(sinks.selected.lse[at] - dense.lse[at]));
      }
  CAPTURE(least);
  CHECK(least > 0.95);
  o.budget = Budget::progressive;
  o.tau = 0.9;
  o.max_budget = blocks;
  const Selection psa = select_blocks(w, o);
  double taken[2] = {0, 0};
  int rows[2] = {0, 0};
  size_t most_streaming = 0;
  for (int r = 0; r < w.num_requests(); ++r)
    for (int kv = 0; kv < shape.num_kv_heads; ++kv) {
      const int kind = retrieval[static_cast<size_t>(kv)] ? 1 : 0;
      taken[kind] += static_cast<double>(psa.of(r, kv).size());
      ++rows[kind];
      if (kind == 0) most_streaming = std::max(most_streaming, psa.of(r, kv).size());
    }
  REQUIRE(rows[0] > 0);
  REQUIRE(rows[1] > 0);
  CAPTURE(taken[0] / rows[0], taken[1] / rows[1], most_streaming);
  CHECK(most_streaming <= 6);
  CHECK(taken[1] / rows[1] > 2 * taken[0] / rows[0]);
}
// [test-streaming-heads]
