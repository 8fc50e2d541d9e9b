// How a plan's CTAs fill the GPU in waves (tutorial chapter 16, "Counting waves").
#include "patlab/planner/waves.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <queue>
#include <string>
#include <vector>

#include "patlab/error.hpp"
#include "planner_detail.hpp"

namespace patlab {

using planner_detail::ceil_div;

// [lpt by groups]
LptSchedule lpt_schedule(std::vector<CtaGroup>& groups, int64_t sms, int64_t ctas_per_sm, double rate_cap) {
  require(sms >= 1 && ctas_per_sm >= 1 && rate_cap >= 1,
          "lpt_schedule: SMs and CTAs per SM must be >= 1 and the rate cap >= 1 (got " + std::to_string(sms) + ", " +
              std::to_string(ctas_per_sm) + ", " + std::to_string(rate_cap) + ")");
  const int64_t slots = sms * ctas_per_sm;
  std::sort(groups.begin(), groups.end(), [](const CtaGroup& a, const CtaGroup& b) { return a.tokens > b.tokens; });
  std::map<int64_t, int64_t> free_at{{0, slots}};  // finishing time -> slots free from then
  LptSchedule s;
  for (const CtaGroup& g : groups) {
    for (int64_t left = g.count; left > 0;) {
      const auto first = free_at.begin();  // the slots that free first take the next CTAs
      const int64_t at = first->first, take = std::min(first->second, left);
      if (first->second == take)
        free_at.erase(first);
      else
        first->second -= take;
      free_at[at + g.tokens] += take;
      s.makespan_tokens = std::max(s.makespan_tokens, at + g.tokens);
      s.last_start = at;
      left -= take;
    }
  }
  // Until the last start every slot is busy (one slot's share each); then the running CTAs speed up.
  auto rate = [&](int64_t running) {
    return std::min(rate_cap, static_cast<double>(ctas_per_sm) / static_cast<double>(ceil_div(running, sms)));
  };
  int64_t running = 0;
  for (const auto& [at, n] : free_at) running += at > s.last_start ? n : 0;
  s.time = static_cast<double>(s.last_start);
  int64_t prev = s.last_start;
  for (auto it = free_at.upper_bound(s.last_start); it != free_at.end(); ++it) {
    s.time += static_cast<double>(it->first - prev) / rate(running);
    running -= it->second;
    prev = it->first;
  }
  return s;
}
// [lpt by groups]

WaveReport wave_report(const Plan& plan, const Shape& shape, int sms, int ctas_per_sm) {
  require(sms >= 1 && ctas_per_sm >= 1, "wave_report: SMs and CTAs per SM must be >= 1 (got " + std::to_string(sms) +
                                            ", " + std::to_string(ctas_per_sm) + ")");
  const int64_t hkv = shape.num_kv_heads;
  WaveReport r;
  r.slots = int64_t{sms} * ctas_per_sm;
  r.ctas = static_cast<int64_t>(plan.packs.size()) * hkv;
  if (r.ctas == 0) return r;
  r.waves = ceil_div(r.ctas, r.slots);
  r.last_wave_fill = static_cast<double>(r.ctas - (r.waves - 1) * r.slots) / static_cast<double>(r.slots);
  // [wave schedule]
  std::vector<int64_t> lengths;
  lengths.reserve(plan.packs.size());
  int64_t total = 0;
  for (const Pack& p : plan.packs) {
    lengths.push_back(p.space_len(shape.page_size));  // what the CTA streams, leaf tails too
    total += int64_t{lengths.back()} * hkv;
  }
  std::sort(lengths.begin(), lengths.end(), std::greater<>());
  // Each slot's finishing time; the next CTA starts on the slot that frees first.
  std::priority_queue<int64_t, std::vector<int64_t>, std::greater<>> free_at;
  for (int64_t s = 0; s < std::min(r.slots, r.ctas); ++s) free_at.push(0);
  for (int64_t len : lengths)
    for (int64_t h = 0; h < hkv; ++h) {
      const int64_t start = free_at.top();
      free_at.pop();
      free_at.push(start + len);
      r.makespan_tokens = std::max(r.makespan_tokens, start + len);
    }
  r.balanced_tokens = ceil_div(total, r.slots);
  // [wave schedule]
  return r;
}

}  // namespace patlab
