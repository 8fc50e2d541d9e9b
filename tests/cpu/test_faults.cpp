// Injected faults: what a wrong kernel could do to one row or one request, each of which
// check_output() must catch, in fp16 and bf16, on flat and peaked data, on a small batch and on a
// large one (128 requests on a 4096-token prefix, where one row is 1 of 1024).
//
// A correct kernel is modelled by emulated_attention() (the kernels' arithmetic on the CPU). A
// fault's output is that emulation plus the fault's exact error: the float64 attention of the
// faulty computation (a key set with a block or token missing, two rows swapped, a stale partial
// or a wrong weight in a plan's merge) minus the oracle, on the rows the fault touches.
//
// Targets. On flat data (q, K, V ~ N(0, 1)) every key carries about 1/N of a row's weight, so a
// fault hits a fixed row (request R/2, head 0) and, where it drops keys, the *lightest* block or
// slot: the hardest case. On peaked data most keys carry weights below e^-10, and a fault on
// those changes no output by more than rounding: no output check can see it, and flat data
// covers them. There a fault hits the *heaviest* block or slot, the request whose last token
// weighs most, and the request whose merge is most balanced: peaked data tests the keys that
// matter. Seeds are fixed and printed.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "kernel_model.hpp"
#include "patlab/truth/check.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/truth/verify.hpp"

using namespace patlab;

namespace {

constexpr uint64_t kSeed = 11;
/// A merge-weight fault: one partial's weight off by this factor (a rescale applied wrongly).
constexpr double kWeightFault = 1.1;

/// A batch the faults are injected into.
struct Batch {
  const char* name;
  const char* tree;
  int hq, hkv, d, page;
};
const Batch kBatches[] = {
    {"small", "1,4_100,37", 8, 2, 64, 16},      // the tiny preset: 32 rows, the prefix ends mid-block
    {"large", "1,128_4096,64", 8, 1, 64, 16},   // 1024 rows of 4160 keys
};

/// A workload with its pools as floats, its reference and the plan (stage 7's) whose partials
/// the merge faults use.
struct Setup {
  Workload w;
  DataKind data;
  std::vector<float> k, v;  ///< the pools' values (pool_values())
  Reference ref;
  Plan plan;
};

/// A Setup without reference or plan: the workload and its decoded pools.
Setup make_data(const Batch& b, DType dtype, DataKind data) {
  const Shape shape = shape_of(b.hq, b.hkv, b.d, b.page, dtype);
  Setup s{make_workload(parse_tree_spec(b.tree), shape, kSeed, true, data), data, {}, {}, {}, {}};
  s.k = pool_values(s.w, KvTensor::k);
  s.v = pool_values(s.w, KvTensor::v);
  return s;
}

/// A changed output row: its index (request * Hq + head) and the faulty computation's exact output.
struct RowChange {
  size_t row;
  Eigen::VectorXd o;
};

/// One injected fault: which row or block it hit, and the rows it changed.
struct Injected {
  std::string target;
  std::vector<RowChange> changes;
};

Eigen::VectorXd query(const Workload& w, int r, int h) {
  const int d = w.shape().head_dim;
  Eigen::VectorXd q(d);
  for (int i = 0; i < d; ++i) q(i) = to_float(w.q[w.q_offset(r, h) + static_cast<size_t>(i)], w.shape().dtype);
  return q;
}

/// Attention of request `qr`'s query at head `h` over `tokens` of request `kr` (through kr's
/// block table): the exact float64 state.
MergeState attend_tokens(const Setup& s, int qr, int h, int kr, const std::vector<int64_t>& tokens) {
  const Shape& sh = s.w.shape();
  const int kvh = h / sh.group();
  Eigen::MatrixXd k(static_cast<Eigen::Index>(tokens.size()), sh.head_dim), v(k.rows(), sh.head_dim);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const size_t off = s.w.token_offset(kr, tokens[t], kvh);
    for (int i = 0; i < sh.head_dim; ++i) {
      k(static_cast<Eigen::Index>(t), i) = s.k[off + static_cast<size_t>(i)];
      v(static_cast<Eigen::Index>(t), i) = s.v[off + static_cast<size_t>(i)];
    }
  }
  return attend(query(s.w, qr, h), k, v);
}

/// Tokens [begin, end) except [skip_begin, skip_end).
std::vector<int64_t> tokens_except(int64_t begin, int64_t end, int64_t skip_begin = 0, int64_t skip_end = 0) {
  std::vector<int64_t> t;
  for (int64_t i = begin; i < end; ++i)
    if (i < skip_begin || i >= skip_end) t.push_back(i);
  return t;
}

/// Softmax weight of each key of row (r, h), from the exact scores.
std::vector<double> key_weights(const Setup& s, int r, int h) {
  const Shape& sh = s.w.shape();
  const int64_t len = s.w.layout.lengths[static_cast<size_t>(r)];
  const Eigen::VectorXd q = query(s.w, r, h);
  std::vector<double> score(static_cast<size_t>(len));
  for (int64_t t = 0; t < len; ++t) {
    const size_t off = s.w.token_offset(r, t, h / sh.group());
    double dot = 0;
    for (int i = 0; i < sh.head_dim; ++i) dot += q(i) * s.k[off + static_cast<size_t>(i)];
    score[static_cast<size_t>(t)] = dot / std::sqrt(static_cast<double>(sh.head_dim));
  }
  const double m = *std::max_element(score.begin(), score.end());
  double sum = 0;
  for (double& x : score) sum += (x = std::exp(x - m));
  for (double& x : score) x /= sum;
  return score;
}

/// Lightest entry on flat data, heaviest on peaked (see the file comment).
size_t pick(const std::vector<double>& weight, DataKind data) {
  const auto it = data == DataKind::flat ? std::min_element(weight.begin(), weight.end())
                                         : std::max_element(weight.begin(), weight.end());
  return static_cast<size_t>(it - weight.begin());
}

size_t row_of(const Workload& w, int r, int h) { return static_cast<size_t>(r) * w.shape().num_q_heads + h; }

/// Weight of each full block of request r, summed over `heads`.
std::vector<double> block_weights(const Setup& s, int r, const std::vector<int>& heads) {
  const int page = s.w.shape().page_size;
  std::vector<double> out(static_cast<size_t>(s.w.layout.lengths[static_cast<size_t>(r)] / page), 0.0);
  for (int h : heads) {
    const std::vector<double> p = key_weights(s, r, h);
    for (size_t t = 0; t < out.size() * static_cast<size_t>(page); ++t) out[t / static_cast<size_t>(page)] += p[t];
  }
  return out;
}

/// One block of request R/2 dropped for `heads` (its lightest or heaviest full block).
Injected drop_block(const Setup& s, const std::vector<int>& heads) {
  const Workload& w = s.w;
  const int r = w.num_requests() / 2, page = w.shape().page_size;
  const int64_t b = static_cast<int64_t>(pick(block_weights(s, r, heads), s.data));
  Injected f{"request " + std::to_string(r) + " block " + std::to_string(b), {}};
  const auto tokens = tokens_except(0, w.layout.lengths[static_cast<size_t>(r)], b * page, (b + 1) * page);
  for (int h : heads) f.changes.push_back({row_of(w, r, h), attend_tokens(s, r, h, r, tokens).o});
  return f;
}

Injected drop_block_one_head(const Setup& s) {
  Injected f = drop_block(s, {0});
  f.target += ", head 0";
  return f;
}

Injected drop_block_kv_group(const Setup& s) {
  std::vector<int> heads;
  for (int h = 0; h < s.w.shape().group(); ++h) heads.push_back(h);
  Injected f = drop_block(s, heads);
  f.target += ", KV head 0 (" + std::to_string(heads.size()) + " heads)";
  return f;
}

/// A request's last token dropped for all its heads (its length off by one).
Injected drop_last_token(const Setup& s) {
  const Workload& w = s.w;
  const int H = w.shape().num_q_heads;
  int r = w.num_requests() / 2;
  if (s.data == DataKind::peaked) {
    std::vector<double> last(static_cast<size_t>(w.num_requests()), 0.0);
    for (int q = 0; q < w.num_requests(); ++q)
      for (int h = 0; h < H; ++h) last[static_cast<size_t>(q)] = std::max(last[static_cast<size_t>(q)], key_weights(s, q, h).back());
    r = static_cast<int>(pick(last, s.data));
  }
  Injected f{"request " + std::to_string(r) + ", all heads", {}};
  const auto tokens = tokens_except(0, w.layout.lengths[static_cast<size_t>(r)] - 1);
  for (int h = 0; h < H; ++h) f.changes.push_back({row_of(w, r, h), attend_tokens(s, r, h, r, tokens).o});
  return f;
}

/// Outputs of requests R/2 and R/2 + 1 at head 0 swapped (a wrong output index).
Injected swap_rows(const Setup& s) {
  const Workload& w = s.w;
  const int r = w.num_requests() / 2, d = w.shape().head_dim;
  const auto row = [&](int q) { return Eigen::Map<const Eigen::VectorXd>(s.ref.oracle.o_at(q, 0), d); };
  return {"requests " + std::to_string(r) + " and " + std::to_string(r + 1) + ", head 0",
          {{row_of(w, r, 0), row(r + 1)}, {row_of(w, r + 1, 0), row(r)}}};
}

/// The packs of request r by slot.
std::vector<const Pack*> packs_of(const Plan& plan, int r) {
  std::vector<const Pack*> out(static_cast<size_t>(plan.partials[static_cast<size_t>(r)]), nullptr);
  for (const Pack& p : plan.packs)
    for (size_t i = 0; i < p.queries.size(); ++i)
      if (p.queries[i] == r) out[static_cast<size_t>(p.slots[i])] = &p;
  return out;
}

/// Row (r, h)'s partials in slot order, exact.
std::vector<MergeState> partials(const Setup& s, int r, int h) {
  std::vector<MergeState> out;
  for (const Pack* p : packs_of(s.plan, r))
    out.push_back(attend_tokens(s, r, h, r, tokens_except(p->token_begin, p->token_begin + p->kv_len)));
  return out;
}

MergeState merge_all(const std::vector<MergeState>& parts, int d) {
  MergeState acc = MergeState::empty(d);
  for (const MergeState& p : parts) acc = merge(acc, p);
  return acc;
}

/// Each slot's share of request r's output, averaged over its heads.
std::vector<double> slot_weights(const Setup& s, int r) {
  const int H = s.w.shape().num_q_heads;
  const std::vector<const Pack*> packs = packs_of(s.plan, r);
  std::vector<double> out(packs.size(), 0.0);
  for (int h = 0; h < H; ++h) {
    const std::vector<double> p = key_weights(s, r, h);
    for (size_t i = 0; i < packs.size(); ++i)
      for (int t = packs[i]->token_begin; t < packs[i]->token_begin + packs[i]->kv_len; ++t)
        out[i] += p[static_cast<size_t>(t)] / H;
  }
  return out;
}

/// Request R/2's slot (lightest or heaviest) holds, for every head, the partial that request
/// R/2 + 1 wrote into its slot of the same index (or its last): a slot addressed with the
/// wrong request.
Injected stale_slot(const Setup& s) {
  const Workload& w = s.w;
  const int r = w.num_requests() / 2, other = r + 1;
  const size_t slot = pick(slot_weights(s, r), s.data);
  const std::vector<const Pack*> theirs = packs_of(s.plan, other);
  const Pack* src = theirs[std::min(slot, theirs.size() - 1)];
  Injected f{"request " + std::to_string(r) + " slot " + std::to_string(slot) + " of " +
                 std::to_string(s.plan.partials[static_cast<size_t>(r)]) + " <- request " + std::to_string(other) +
                 "'s, all heads",
             {}};
  for (int h = 0; h < w.shape().num_q_heads; ++h) {
    std::vector<MergeState> parts = partials(s, r, h);
    parts[slot] = attend_tokens(s, other, h, other, tokens_except(src->token_begin, src->token_begin + src->kv_len));
    f.changes.push_back({row_of(w, r, h), merge_all(parts, w.shape().head_dim).o});
  }
  return f;
}

/// A request with two or more partials: on flat data the first from R/2 on; on peaked data the
/// one whose merge is most balanced (the largest second-heaviest slot).
int merge_target(const Setup& s) {
  const int R = s.w.num_requests();
  int best = -1;
  double best_second = -1;
  for (int i = 0; i < R; ++i) {
    const int r = (R / 2 + i) % R;
    if (s.plan.partials[static_cast<size_t>(r)] < 2) continue;
    if (s.data == DataKind::flat) return r;
    std::vector<double> wgt = slot_weights(s, r);
    std::sort(wgt.begin(), wgt.end());
    if (wgt[wgt.size() - 2] > best_second) {
      best_second = wgt[wgt.size() - 2];
      best = r;
    }
  }
  REQUIRE(best >= 0);  // a merge fault needs a request with two partials
  return best;
}

/// The merge of one request's partials, all heads, with its lse values changed by `change`.
Injected merge_fault(const Setup& s, const std::string& what, const std::function<void(std::vector<MergeState>&)>& change) {
  const int r = merge_target(s);
  Injected f{"request " + std::to_string(r) + " (" + std::to_string(s.plan.partials[static_cast<size_t>(r)]) +
                 " partials), all heads: " + what,
             {}};
  for (int h = 0; h < s.w.shape().num_q_heads; ++h) {
    std::vector<MergeState> parts = partials(s, r, h);
    change(parts);
    f.changes.push_back({row_of(s.w, r, h), merge_all(parts, s.w.shape().head_dim).o});
  }
  return f;
}

/// lse handed to the merge in base 2 (FlashInfer's convention) while the merge takes natural logs.
Injected merge_lse_base2(const Setup& s) {
  return merge_fault(s, "lse in base 2", [](std::vector<MergeState>& parts) {
    for (MergeState& p : parts) p.lse /= std::log(2.0);
  });
}

/// Slot 0's merge weight off by kWeightFault.
Injected merge_weight(const Setup& s) {
  return merge_fault(s, "slot 0 weight x1.1", [](std::vector<MergeState>& parts) { parts[0].lse += std::log(kWeightFault); });
}

struct Fault {
  const char* name;
  Injected (*inject)(const Setup&);
};
const Fault kFaults[] = {
    {"drop-block-head", drop_block_one_head}, {"drop-block-group", drop_block_kv_group},
    {"drop-last-token", drop_last_token},     {"swap-rows", swap_rows},
    {"stale-slot", stale_slot},               {"merge-lse-base2", merge_lse_base2},
    {"merge-weight", merge_weight},
};

/// The emulation's output with the fault's exact error added on the rows it changed.
std::vector<float> faulty_output(const Setup& s, const Injected& f) {
  std::vector<float> got(s.ref.emulated.o.begin(), s.ref.emulated.o.end());
  const size_t d = static_cast<size_t>(s.w.shape().head_dim);
  for (const RowChange& c : f.changes)
    for (size_t i = 0; i < d; ++i)
      got[c.row * d + i] = static_cast<float>(s.ref.emulated.o[c.row * d + i] + (c.o(static_cast<Eigen::Index>(i)) -
                                                                                  s.ref.oracle.o[c.row * d + i]));
  return got;
}

/// The fault's own size: the largest relative L2 error of its exact rows against the oracle.
double fault_size(const Setup& s, const Injected& f) {
  const size_t d = static_cast<size_t>(s.w.shape().head_dim);
  double worst = 0;
  for (const RowChange& c : f.changes) {
    double e2 = 0, r2 = 0;
    for (size_t i = 0; i < d; ++i) {
      const double ref = s.ref.oracle.o[c.row * d + i];
      e2 += (c.o(static_cast<Eigen::Index>(i)) - ref) * (c.o(static_cast<Eigen::Index>(i)) - ref);
      r2 += ref * ref;
    }
    worst = std::max(worst, std::sqrt(e2 / r2));
  }
  return worst;
}

Setup make_setup(const Batch& b, DType dtype, DataKind data) {
  Setup s = make_data(b, dtype, data);
  s.ref = make_reference(s.w);
  s.plan = make_plan(s.w.layout, PlannerOptions{});
  return s;
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

}  // namespace

TEST_CASE("every injected fault is caught; the fault-free emulation and a tiled kernel model pass") {
  std::cout << "injected faults (seed " << kSeed << "); row err and bound are the check's worst row; "
            << "batch L2 / bound is the old batch-wide rule (2 x emulation's batch error + floor)\n";
  char head[300];
  std::snprintf(head, sizeof head, "%-17s %-5s %-6s %-6s %-9s %-9s %-9s %-9s %-6s %-15s %s\n", "fault", "dtype", "data",
                "batch", "fault err", "row err", "bound", "batch L2", "/bound", "verdict", "target");
  std::cout << head;
  int caught = 0, injected = 0;
  for (const Batch& b : kBatches)
    for (DType dtype : {DType::fp16, DType::bf16})
      for (DataKind data : {DataKind::flat, DataKind::peaked}) {
        const Setup s = make_setup(b, dtype, data);
        const double old_bound = kEmulationFactor * s.ref.emulated_rel_l2 + tolerance(dtype, KvDType::same).row_floor;
        CAPTURE(b.tree, dtype_name(dtype), data_kind_name(data), kSeed);
        const auto print = [&](const char* name, double size, const CheckResult& c, const std::string& target) {
          char line[400];
          const std::string verdict =
              c.pass ? "PASS" : "FAIL " + std::to_string(c.rows_over) + "r " + std::to_string(c.out_of_bound) + "e";
          std::snprintf(line, sizeof line, "%-17s %-5s %-6s %-6s %-9s %-9s %-9s %-9s %-6.2f %-15s %s\n", name,
                        dtype_name(dtype), data_kind_name(data), b.name, size > 0 ? sci(size).c_str() : "-",
                        sci(c.worst_row_error).c_str(), sci(c.worst_row_bound).c_str(), sci(c.rel_l2_error).c_str(),
                        c.rel_l2_error / old_bound, verdict.c_str(), target.c_str());
          std::cout << line;
        };
        const CheckResult clean = check_output(std::vector<float>(s.ref.emulated.o.begin(), s.ref.emulated.o.end()), s.ref, dtype);
        print("none (emulation)", 0, clean, "-");
        CHECK(clean.pass);
        const AttentionResult model = test::tiled_kernel_model(s.w);
        const CheckResult tiled = check_output(std::vector<float>(model.o.begin(), model.o.end()), s.ref, dtype);
        print("none (tiled)", 0, tiled, "-");
        CHECK(tiled.pass);
        for (const Fault& fault : kFaults) {
          const Injected f = fault.inject(s);
          REQUIRE(!f.changes.empty());
          const CheckResult c = check_output(faulty_output(s, f), s.ref, dtype);
          print(fault.name, fault_size(s, f), c, f.target);
          CAPTURE(fault.name, f.target, c.summary());
          CHECK_FALSE(c.pass);
          ++injected;
          caught += c.pass ? 0 : 1;
        }
      }
  std::cout << caught << " of " << injected << " injected faults caught\n";
  CHECK(caught == injected);
}

TEST_CASE("peaked data gives a few keys most of the weight; flat data spreads it") {
  std::cout << "softmax weights per row (seed " << kSeed << ", fp16; medians over the rows):\n"
            << "batch  keys  data    effective keys  largest weight\n";
  for (const Batch& b : kBatches) {
    double flat_keys = 0;
    for (DataKind data : {DataKind::flat, DataKind::peaked}) {
      const Setup s = make_data(b, DType::fp16, data);
      const Workload& w = s.w;
      std::vector<double> keys, top;
      for (int r = 0; r < w.num_requests(); ++r)
        for (int h = 0; h < b.hq; ++h) {
          const std::vector<double> p = key_weights(s, r, h);
          double p2 = 0;
          for (double x : p) p2 += x * x;
          keys.push_back(1.0 / p2);  // (sum p)^2 / sum p^2, sum p = 1
          top.push_back(*std::max_element(p.begin(), p.end()));
        }
      const auto median = [](std::vector<double> v) {
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
        return v[v.size() / 2];
      };
      const double k = median(keys), t = median(top);
      char line[160];
      std::snprintf(line, sizeof line, "%-6s %-5d %-7s %-15.1f %.3f\n", b.name, w.layout.lengths[0], data_kind_name(data), k, t);
      std::cout << line;
      if (data == DataKind::flat) {
        flat_keys = k;
        CHECK(k > 0.2 * w.layout.lengths[0]);  // flat: a sizeable share of all keys count
      } else {
        CHECK(k < 0.1 * flat_keys);  // peaked: an order of magnitude fewer
        CHECK(t > 0.2);              // and the largest key holds a fifth of the weight or more
      }
    }
  }
}
