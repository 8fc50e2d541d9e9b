// The merge operator on attention states (tutorial/01-oracle-and-merge.md proves these):
// splitting the keys anywhere and merging equals no split; merge is associative and commutative;
// the empty state is its identity; huge score magnitudes neither overflow nor make NaN.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "../catch.hpp"
#include "patlab/truth/oracle.hpp"

using namespace patlab;
using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

/// |a - b| relative to the larger magnitude (Catch's Approx differs between Catch2 2 and 3).
double rel_diff(double a, double b) { return std::fabs(a - b) / std::max({std::fabs(a), std::fabs(b), 1e-300}); }

constexpr uint64_t kSeed = 20240601;

/// N(0,1) matrix drawn from `rng`.
MatrixXd normal(std::mt19937_64& rng, Eigen::Index rows, Eigen::Index cols) {
  std::normal_distribution<double> n(0.0, 1.0);
  MatrixXd m(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = n(rng);
  return m;
}

/// Rows [begin, end) of m.
MatrixXd rows(const MatrixXd& m, Eigen::Index begin, Eigen::Index end) { return m.middleRows(begin, end - begin); }

/// Largest difference of two states, relative to the larger of |lse| and max |o| (and 1).
double difference(const MergeState& a, const MergeState& b) {
  if (a.is_empty() || b.is_empty()) return a.is_empty() == b.is_empty() ? 0.0 : INFINITY;
  const double scale_lse = std::max(1.0, std::fabs(b.lse));
  const double scale_o = std::max(1.0, b.o.cwiseAbs().maxCoeff());
  return std::max(std::fabs(a.lse - b.lse) / scale_lse, (a.o - b.o).cwiseAbs().maxCoeff() / scale_o);
}

bool finite(const MergeState& s) { return std::isfinite(s.lse) && s.o.allFinite(); }

/// A state with a chosen lse and random o.
MergeState state(std::mt19937_64& rng, double lse, int d) {
  MergeState s;
  s.lse = lse;
  s.o = normal(rng, d, 1).col(0);
  return s;
}

}  // namespace

TEST_CASE("attend: the definition, in natural log, with scale 1/sqrt(d)") {
  const int d = 64;
  SECTION("all scores equal: lse = log(n), o = mean of V") {
    std::mt19937_64 rng(kSeed);
    const MatrixXd k = MatrixXd::Zero(10, d), v = normal(rng, 10, d);
    const MergeState s = attend(VectorXd::Ones(d), k, v);
    CHECK(rel_diff(s.lse, std::log(10.0)) <= 1e-15);
    CHECK((s.o - v.colwise().mean().transpose()).cwiseAbs().maxCoeff() < 1e-15);
  }
  SECTION("one key: lse is the score q.k / sqrt(d), o is its value") {
    VectorXd q = VectorXd::Zero(d);
    q(0) = 3.0;
    MatrixXd k = MatrixXd::Zero(1, d), v = MatrixXd::Constant(1, d, 0.25);
    k(0, 0) = 2.0;
    const MergeState s = attend(q, k, v);
    CHECK(rel_diff(s.lse, 6.0 / 8.0) <= 1e-15);
    CHECK((s.o.array() == 0.25).all());
  }
  SECTION("two keys: the softmax weights by hand") {
    VectorXd q = VectorXd::Zero(d);
    q(0) = 8.0;  // scores = k(:,0) since sqrt(64) = 8
    MatrixXd k = MatrixXd::Zero(2, d), v = MatrixXd::Zero(2, d);
    k(0, 0) = 1.0;
    k(1, 0) = 2.0;
    v(0, 0) = 10.0;
    v(1, 0) = 20.0;
    const MergeState s = attend(q, k, v);
    const double e1 = std::exp(1.0), e2 = std::exp(2.0);
    CHECK(rel_diff(s.lse, std::log(e1 + e2)) <= 1e-15);
    CHECK(rel_diff(s.o(0), (10 * e1 + 20 * e2) / (e1 + e2)) <= 1e-15);
  }
  SECTION("no keys: the empty state") {
    const MergeState s = attend(VectorXd::Ones(d), MatrixXd(0, d), MatrixXd(0, d));
    CHECK(s.is_empty());
    CHECK(s.o.size() == d);
    CHECK((s.o.array() == 0.0).all());
  }
}

// [any split]
TEST_CASE("merge: any split point equals no split") {
  INFO("seed " << kSeed);
  std::mt19937_64 rng(kSeed);
  for (int d : {64, 128}) {
    const int n = 40;
    const VectorXd q = normal(rng, d, 1).col(0);
    const MatrixXd k = normal(rng, n, d), v = normal(rng, n, d);
    for (int len = 1; len <= n; ++len) {
      const MergeState whole = attend(q, rows(k, 0, len), rows(v, 0, len));
      for (int split = 0; split <= len; ++split) {
        CAPTURE(d, len, split);
        const MergeState left = attend(q, rows(k, 0, split), rows(v, 0, split));
        const MergeState right = attend(q, rows(k, split, len), rows(v, split, len));
        CHECK(difference(merge(left, right), whole) < 1e-14);
        CHECK(difference(merge(right, left), whole) < 1e-14);
      }
    }
  }
}
// [any split]

TEST_CASE("merge: many chunks, in any order, over any partition of the keys") {
  INFO("seed " << kSeed);
  std::mt19937_64 rng(kSeed + 1);
  const int d = 128, n = 300;
  const VectorXd q = normal(rng, d, 1).col(0) * 2.0;  // sharper softmax than N(0,1)
  const MatrixXd k = normal(rng, n, d), v = normal(rng, n, d);
  const MergeState whole = attend(q, k, v);
  for (int trial = 0; trial < 50; ++trial) {
    CAPTURE(trial);
    // A random partition of the keys into 1..12 parts (not contiguous), merged in random order.
    const int parts = std::uniform_int_distribution<int>(1, 12)(rng);
    std::vector<int> owner(n);
    for (int& o : owner) o = std::uniform_int_distribution<int>(0, parts - 1)(rng);
    std::vector<MergeState> partials;
    for (int p = 0; p < parts; ++p) {
      std::vector<int> idx;
      for (int i = 0; i < n; ++i)
        if (owner[static_cast<size_t>(i)] == p) idx.push_back(i);
      MatrixXd kp(static_cast<Eigen::Index>(idx.size()), d), vp(static_cast<Eigen::Index>(idx.size()), d);
      for (size_t j = 0; j < idx.size(); ++j) {
        kp.row(static_cast<Eigen::Index>(j)) = k.row(idx[j]);
        vp.row(static_cast<Eigen::Index>(j)) = v.row(idx[j]);
      }
      partials.push_back(attend(q, kp, vp));  // may be empty: a part that got no keys
    }
    std::shuffle(partials.begin(), partials.end(), rng);
    MergeState left = MergeState::empty(d);
    for (const MergeState& p : partials) left = merge(left, p);
    // A balanced tree of merges, as a parallel reduction would do it.
    std::vector<MergeState> level = partials;
    while (level.size() > 1) {
      std::vector<MergeState> next;
      for (size_t i = 0; i + 1 < level.size(); i += 2) next.push_back(merge(level[i], level[i + 1]));
      if (level.size() % 2) next.push_back(level.back());
      level = next;
    }
    CHECK(difference(left, whole) < 1e-13);
    CHECK(difference(level.front(), whole) < 1e-13);
  }
}

TEST_CASE("merge: associative, commutative, empty identity") {
  INFO("seed " << kSeed);
  std::mt19937_64 rng(kSeed + 2);
  const int d = 64;
  std::uniform_real_distribution<double> lse(-30.0, 30.0);
  for (int trial = 0; trial < 200; ++trial) {
    CAPTURE(trial);
    const MergeState a = state(rng, lse(rng), d), b = state(rng, lse(rng), d), c = state(rng, lse(rng), d);
    CHECK(difference(merge(merge(a, b), c), merge(a, merge(b, c))) < 1e-14);
    CHECK(difference(merge(a, b), merge(b, a)) < 1e-15);
    const MergeState e = MergeState::empty(d);
    // The identity returns the other state unchanged, bit for bit.
    CHECK(merge(a, e).lse == a.lse);
    CHECK(merge(a, e).o == a.o);
    CHECK(merge(e, a).lse == a.lse);
    CHECK(merge(e, a).o == a.o);
    // o of a merge is a convex combination: each element lies between the inputs'.
    const MergeState ab = merge(a, b);
    CHECK(ab.lse >= std::max(a.lse, b.lse));
    CHECK(ab.lse <= std::max(a.lse, b.lse) + std::log(2.0) + 1e-15);
    for (int i = 0; i < d; ++i) {
      CHECK(ab.o(i) >= std::min(a.o(i), b.o(i)) - 1e-15);
      CHECK(ab.o(i) <= std::max(a.o(i), b.o(i)) + 1e-15);
    }
  }
  SECTION("empty with empty stays empty, without NaN") {
    const MergeState ee = merge(MergeState::empty(d), MergeState::empty(d));
    CHECK(ee.is_empty());
    CHECK(ee.lse == -std::numeric_limits<double>::infinity());
    CHECK_FALSE(ee.o.hasNaN());
    CHECK((ee.o.array() == 0.0).all());
    const MergeState eee = merge(ee, MergeState::empty(d));
    CHECK(eee.is_empty());
    CHECK_FALSE(eee.o.hasNaN());
  }
}

TEST_CASE("merge: huge score magnitudes do not overflow") {
  INFO("seed " << kSeed);
  std::mt19937_64 rng(kSeed + 3);
  const int d = 128;
  SECTION("states with lse of +-1e4 (exp of which is inf or 0 in double)") {
    for (double base : {1e4, -1e4, 3e5, -3e5}) {
      CAPTURE(base);
      const MergeState a = state(rng, base, d), b = state(rng, base + 0.7, d);
      const MergeState ab = merge(a, b);
      REQUIRE(finite(ab));
      // With delta = lse_b - lse_a (exact: the two are within a factor of 2), lse = lse_b +
      // log(1 + e^-delta) and o = weights (1, e^delta) / (1 + e^delta).
      const double delta = b.lse - a.lse;
      CHECK(rel_diff(delta, 0.7) <= 1e-9);
      CHECK(rel_diff(ab.lse, b.lse + std::log1p(std::exp(-delta))) <= 1e-15);
      const double wb = 1.0 / (1.0 + std::exp(-delta));
      CHECK((ab.o - ((1.0 - wb) * a.o + wb * b.o)).cwiseAbs().maxCoeff() < 1e-14);
      CHECK(difference(merge(b, a), ab) < 1e-15);
    }
  }
  SECTION("a state 2e4 below another contributes nothing and makes no NaN") {
    const MergeState hi = state(rng, 1e4, d), lo = state(rng, -1e4, d);
    const MergeState m = merge(hi, lo);
    REQUIRE(finite(m));
    CHECK(m.lse == hi.lse);
    CHECK(m.o == hi.o);
    CHECK(merge(lo, hi).o == hi.o);
  }
  SECTION("attend on keys whose scores are ~+-1e4, split and merged") {
    // q.k / sqrt(d) = +-1e4 + small: exp() of the raw scores would be inf (or 0 for all keys).
    for (double magnitude : {1e4, -1e4}) {
      CAPTURE(magnitude);
      const int n = 24;
      VectorXd q = VectorXd::Zero(d);
      q(0) = magnitude * std::sqrt(static_cast<double>(d));
      MatrixXd k = normal(rng, n, d) * 1e-3;
      k.col(0).array() += 1.0;
      const MatrixXd v = normal(rng, n, d);
      const MergeState whole = attend(q, k, v);
      REQUIRE(finite(whole));
      const VectorXd scores = k * q / std::sqrt(static_cast<double>(d));
      const double m = scores.maxCoeff();
      CHECK(rel_diff(whole.lse, m + std::log((scores.array() - m).exp().sum())) <= 1e-15);
      for (int split = 0; split <= n; ++split) {
        CAPTURE(split);
        const MergeState s = merge(attend(q, rows(k, 0, split), rows(v, 0, split)),
                                   attend(q, rows(k, split, n), rows(v, split, n)));
        REQUIRE(finite(s));
        CHECK(difference(s, whole) < 1e-13);
      }
    }
  }
}
