#include "options.hpp"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <optional>

#include "patlab/error.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/serving/model.hpp"

namespace patlab::cli {

namespace {

/// Accepts a seed: a decimal integer in [0, kMaxSeed], nothing clamped.
const CLI::Validator& seed_check() {
  static const CLI::Validator check(
      [](std::string& s) {
        return parse_seed(s) ? std::string()
                             : "'" + s + "' is not a seed (an integer in [0, " + std::to_string(kMaxSeed) + "])";
      },
      "", "SEED");
  return check;
}

}  // namespace

std::optional<uint64_t> parse_seed(const std::string& text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v <= kMaxSeed ? std::optional<uint64_t>(v) : std::nullopt;
}

const CLI::Validator& non_empty() {
  static const CLI::Validator check([](std::string& s) { return s.empty() ? std::string("empty value") : std::string(); },
                                    "", "NONEMPTY");
  return check;
}

namespace {

/// Most digits of an integer option's value: every 18-digit number fits an int64_t.
constexpr size_t kMaxIntegerDigits = 18;

/// Accepts what CLI11 reads as a number of the same value in every notation: no base prefix
/// (0x, 0b, 0o) anywhere and, for an integer, no leading zero. CLI11 converts integers with base 0
/// (strtoll), so "010" would be 8 and "0x10" 16, where the workload's own parsers read "010" as 10.
const CLI::Validator& plain_number(bool integer) {
  static const auto check = [](const std::string& s, bool whole) {
    size_t i = s.empty() || (s[0] != '-' && s[0] != '+') ? 0 : 1;
    const bool prefixed = s.size() > i + 1 && s[i] == '0' && std::isalpha(static_cast<unsigned char>(s[i + 1])) &&
                          s[i + 1] != 'e' && s[i + 1] != 'E';
    const bool leading_zero = whole && s.size() > i + 1 && s[i] == '0';
    if (prefixed || leading_zero)
      return "'" + one_line(s) + "' is not a decimal number (no leading zeros or 0x/0b prefixes)";
    // strtoll saturates where a 64-bit option's value overflows, and CLI11 does not look at errno
    if (whole && s.size() - i > kMaxIntegerDigits) return "'" + one_line(s) + "' is out of range";
    return std::string();
  };
  static const CLI::Validator integers([](std::string& s) { return check(s, true); }, "", "DECIMAL");
  static const CLI::Validator reals([](std::string& s) { return check(s, false); }, "", "DECIMAL");
  return integer ? integers : reals;
}

/// Adds plain_number() to every numeric option of `app` and of its subcommands and option groups.
void add_plain_numbers(CLI::App& app) {
  for (CLI::Option* o : app.get_options()) {
    const std::string type = o->get_type_name();
    const bool integer = type.rfind("INT", 0) == 0 || type.rfind("UINT", 0) == 0 || type == "STEPS";
    if (integer || type.rfind("FLOAT", 0) == 0) o->check(plain_number(integer));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) add_plain_numbers(*sub);
}

}  // namespace

void require_decimal_numbers(CLI::App& app) { add_plain_numbers(app); }

void check_timing_runs(int repeats, int warmup) {
  require(repeats >= kMinRepeats && repeats <= kMaxTimingRuns,
          "--repeats must be in [" + std::to_string(kMinRepeats) + ", " + std::to_string(kMaxTimingRuns) +
              "] timed runs (got " + std::to_string(repeats) + "; the bench protocol takes the median of at least " +
              std::to_string(kMinRepeats) + ")");
  require(warmup >= 0 && warmup <= kMaxTimingRuns, "--warmup must be in [0, " + std::to_string(kMaxTimingRuns) +
                                                       "] runs (got " + std::to_string(warmup) + ")");
}

std::vector<double> parse_number_list(const std::string& text, const std::string& what, const std::string& kind,
                                      const std::string& noun, bool (*valid)(double)) {
  require(text.empty() || text.back() != ',', what + ": '" + one_line(text) + "' ends with a comma");
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    require(!item.empty() && end && *end == '\0' && valid(v),
            what + ": '" + one_line(item) + "' is not " + kind);
    out.push_back(v);
  }
  require(!out.empty(), what + " needs at least one " + noun);
  return out;
}

void WorkloadOptions::add_to(CLI::App& app) {
  app.add_option("W", positional_,
                 "Workload: a preset name, a tree spec (a,b_x,y) or a .json file (default: preset sysprompt)")
      ->check(non_empty());
  auto* g = app.add_option_group("workload", "Choose the batch (one of these; default: --preset sysprompt)");
  g->add_option("--preset", preset_, "Named workload (patlab list --presets shows them)")->check(non_empty());
  g->add_option("--tree", tree_,
                "Tree in the field's notation a,b,c_x,y,z, e.g. 1,64_4096,256. Limits: " +
                    std::to_string(kMaxRequests) + " requests, " + std::to_string(kMaxRequestTokens) +
                    " tokens per request, " + std::to_string(kMaxTotalTokens) + " tokens summed over requests, " +
                    std::to_string(kMaxSegments) + " segments")
      ->check(non_empty());
  g->add_option("--workload", file_,
                "JSON file of named segments and requests (see docs/workload-format.md); a regular file of at most " +
                    std::to_string(kMaxWorkloadFileBytes >> 20) + " MiB, same limits as --tree")
      ->check(non_empty());
  auto* random = g->add_option("--random-tree", random_seed_, "Random asymmetric tree drawn from this seed")
                     ->check(seed_check());
  auto* r = app.add_option_group("random tree", "Size knobs of --random-tree (only with it)");
  r->add_option("--random-requests", random_.requests, "Requests (leaves)")->capture_default_str()->needs(random);
  r->add_option("--random-depth", random_.max_depth, "Most segments on a path")->capture_default_str()->needs(random);
  r->add_option("--random-max-segment", random_.max_segment, "Longest segment in tokens")
      ->capture_default_str()
      ->needs(random);
  add_hetero(app, *g);
  auto* s = app.add_option_group("shape", "Override the workload's attention shape");
  s->add_option("--model", model_,
                "Model preset setting query/KV heads and head dim, e.g. qwen2.5-7b (patlab list --models shows them)")
      ->check(non_empty());
  s->add_option("--heads", heads_, "Query/KV heads, e.g. 32/8")->check(non_empty());
  head_dim_option_ = s->add_option("--head-dim", head_dim_, "Head dimension: 64, 128 or 256")->check(non_empty());
  page_option_ = s->add_option("--page", page_, "Tokens per KV block: 16, 32 or 64")->check(non_empty());
  s->add_option("--dtype", dtype_, "Storage type of q and the output (and of K, V with --kv-dtype auto): fp16 or bf16")
      ->check(non_empty());
  s->add_option("--kv-dtype", kv_dtype_,
                "Storage type of the KV cache: auto (the --dtype) or fp8 (fp8_e4m3, per-tensor K and V scales as "
                "vLLM stores them)")
      ->check(non_empty());
  app.add_option("--seed", seed_,
                 "Seed of the random q/K/V values and block shuffle (an integer in [0, 2^53 - 1])")
      ->check(seed_check())
      ->capture_default_str();
  auto* shuffle = app.add_flag("--shuffle", shuffle_, "Hand out block ids in a shuffled order (the default)");
  app.add_flag("--no-shuffle", no_shuffle_, "Hand out block ids in order instead")->excludes(shuffle);
  add_quiet(app);
}

void WorkloadOptions::add_hetero(CLI::App& app, CLI::Option_group& g) {
  auto* hetero = g.add_option("--hetero", hetero_seed_,
                              "Heterogeneous-length batch drawn from this seed: own lengths from a log-normal fit of "
                              "the Azure LLM inference trace 2023, a fraction behind one system prompt "
                              "(docs/workload-format.md)")
                     ->check(seed_check());
  auto* h = app.add_option_group("hetero batch", "Knobs of --hetero (only with it)");
  h->add_option("--hetero-requests", hetero_.requests, "Requests in the batch")->capture_default_str()->needs(hetero);
  h->add_option("--hetero-shared", hetero_.shared, "Fraction of the requests behind the system prompt, in [0, 1] (0: no sharing)")
      ->capture_default_str()
      ->needs(hetero);
  h->add_option("--hetero-prefix", hetero_.prefix, "System prompt tokens")->capture_default_str()->needs(hetero);
  h->add_option("--hetero-min", hetero_.min_tokens, "Fewest own tokens of a request (draws are clamped)")
      ->capture_default_str()
      ->needs(hetero);
  h->add_option("--hetero-max", hetero_.max_tokens, "Most own tokens of a request (draws are clamped)")
      ->capture_default_str()
      ->needs(hetero);
  std::string dists;
  for (const LengthFit& f : length_fits())
    dists += (dists.empty() ? "" : "; ") + std::string(f.name) + " (" + f.source + ")";
  h->add_option("--hetero-dist", hetero_.dist, "Length distribution, a log-normal fit of: " + dists)
      ->capture_default_str()
      ->check(non_empty())
      ->needs(hetero);
}

void add_format(CLI::App& app, std::string& out) {
  app.add_option("--format", out,
                 std::string("Output: ") + kFormatNames +
                     ". json: one object, each table under its title (rows as objects keyed by column; "
                     "field tables such as 'run' as one object); numbers are numbers, missing ones null. "
                     "jsonl: one object per row (per field table) and line, with a \"table\" key. "
                     "csv: one section per table, a '# title' line, a header, the rows")
      ->capture_default_str();
}

void add_fill_window(CLI::App& app, int& out) {
  app.add_option("--fill-window", out,
                 "Stages 7-8: the wave fill prices KV cuts when the uncut CTAs are within this many waves of the "
                 "GPU's CTA slots (1-" + std::to_string(kMaxFillWindowWaves) + "; beyond it the fair-share cuts stand)")
      ->capture_default_str();
}

void check_fill_window(int waves) {
  require(waves >= 1 && waves <= kMaxFillWindowWaves,
          "--fill-window must be 1.." + std::to_string(kMaxFillWindowWaves) + " waves (got " + std::to_string(waves) + ")");
}

void add_max_cluster(CLI::App& app, int& out) {
  app.add_option("--max-cluster", out,
                 "Stage 9: the largest cluster size (CTAs sharing each K/V tile by TMA multicast) its planner may "
                 "choose: 1, 2 or 4 (1: no multicast, every work item pulled by one CTA). Stage 9 runs at 1 unless "
                 "told (clusters were slower on every batch measured; tutorial chapter 18); `plan --cluster` "
                 "shows the model's choice at 4")
      ->capture_default_str();
}

void HopperRoutingFlags::check() const {
  check_hopper_routing(routing);
  require(routing.wide_kv == 0 || routing.wide_kv >= routing.min_kv,
          "--hopper-wide-kv " + std::to_string(routing.wide_kv) + " is below --hopper-min-kv " +
              std::to_string(routing.min_kv) +
              ", which already packs those ranges at most 64 rows (give a larger one, or 0 for never)");
}

void add_hopper_routing(CLI::App& app, HopperRoutingFlags& out) {
  out.min_option = app.add_option("--hopper-min-kv", out.routing.min_kv,
                                  "Stage 8: a KV range shorter than this many tokens is packed at most 64 rows at "
                                  "a time, and its packs of 33-64 rows run stage 7's pack kernel and tile instead "
                                  "of the Hopper kernel (0: never; tutorial chapter 17)")
                       ->capture_default_str();
  out.wide_option = app.add_option("--hopper-wide-kv", out.routing.wide_kv,
                                   "Stage 8: a KV range shorter than this many tokens is packed at most 64 rows "
                                   "at a time, on the Hopper kernel from --hopper-min-kv tokens (no 128-row pack "
                                   "over it; 0: never; tutorial chapter 17)")
                        ->capture_default_str();
  out.rows_option = app.add_option("--hopper-rows", out.routing.max_rows,
                                   "Stage 8: most rows (queries x group) of one pack over a KV range of at least "
                                   "--hopper-wide-kv tokens: 64, 128 or 192 (one, two or three consumer "
                                   "warpgroups; tutorial chapter 17)")
                        ->capture_default_str();
  out.piece_option = app.add_option("--hopper-min-piece", out.routing.min_piece,
                                    "Stage 8: the KV split leaves at least this many tokens in each piece of a "
                                    "128- or 192-row pack (whole pages; 0: only the split's own minimum; tutorial "
                                    "chapter 17)")
                         ->capture_default_str();
  std::vector<std::string> loaders;
  for (SmallLoader l : kSmallLoaders) loaders.emplace_back(small_loader_name(l));
  app.add_option_function<std::string>(
         "--hopper-small-loader",
         [&out](const std::string& loader) { out.routing.small_loader = parse_small_loader(loader); },
         "Stage 8: how packs of up to 16 rows load their K/V tiles: cp.async (stage 7's pack kernel, 16-byte "
         "copies from every thread; the default), tma (its tensor-map pack kernel: one warp issues a tile's "
         "copies, an mbarrier per stage) or tma-kv (the same, K and V on mbarriers of their own, so S = Q K^T "
         "starts once K has landed) (tutorial chapter 17)")
      ->check(CLI::IsMember(loaders));
}

void add_leaf_tails(CLI::App& app, LeafTailFlags& out, bool stages) {
  const std::string what = "a query's last pack of at most " + std::to_string(kLeafTailMaxTokens) +
                           " tokens becomes a tail of its pack before it, read after that pack's range under a row "
                           "mask: one partial and one CTA per KV head fewer, kept only where the plan's merge goes "
                           "(16-bit caches; tutorial chapter 17)";
  out.take = stages && kStagesTakeLeaves;
  CLI::Option* flag = stages ? app.add_flag_callback("--no-take-leaves", [&out] { out.take = false; },
                                                     "Stages 7-8 take no leaf tails (by default " + what + ")")
                             : app.add_flag("--take-leaves", out.take,
                                            "Plan with stages 7-8's leaf tails, as they run by default: " + what);
  const std::string with = stages ? "Stages 7-8's leaf tails" : "With --take-leaves";
  CLI::Option* rows = app.add_option("--tail-rows", out.rows,
                                     with + ": most rows (queries x group) of a pack that takes tails; above 64 only "
                                            "stage 8's 128- and 192-row packs, on its wgmma kernel's tails tiles")
                          ->check(CLI::Range(1, kHopperMaxRows))
                          ->capture_default_str();
  CLI::Option* cut = app.add_option("--tail-min-cut", out.min_cut,
                                    with + ": the plan keeps its tails only if they remove at least this fraction of "
                                           "its CTAs, add no tile bucket (a launch) and leave no query to merge, else "
                                           "it is the plan without them (0-1; 0: whenever there are any, whatever "
                                           "buckets they add or merges they leave)")
                         ->check(CLI::Range(0.0, 1.0))
                         ->capture_default_str();
  for (CLI::Option* o : {rows, cut}) {
    if (stages)
      o->excludes(flag);
    else
      o->needs(flag);
  }
}

void add_quiet(CLI::App& app) {
  app.add_flag_callback("--quiet", [] { set_quiet(true); }, "No progress lines on stderr (errors still print)");
}

WorkloadChoice WorkloadOptions::resolve() const {
  const bool random = !random_seed_.empty();
  const bool hetero = !hetero_seed_.empty();
  require(model_.empty() || (heads_.empty() && head_dim_option_->count() == 0),
          "--model " + model_ + " sets the heads and head dim: give --model or --heads/--head-dim, not both");
  int chosen = !positional_.empty() + !preset_.empty() + !tree_.empty() + !file_.empty() + random + hetero;
  require(chosen <= 1,
          "choose one workload: a positional name, --preset, --tree, --workload, --random-tree or --hetero");
  WorkloadChoice w;
  ShapeOverrides file_shape;
  std::string preset = preset_, tree = tree_, file = file_;
  if (!positional_.empty()) {
    if (positional_.find('_') != std::string::npos && positional_.find('/') == std::string::npos &&
        positional_.find(".json") == std::string::npos)
      tree = positional_;
    else if (positional_.size() > 5 && positional_.substr(positional_.size() - 5) == ".json")
      file = positional_;
    else
      preset = positional_;
  }
  if (!tree.empty()) {
    w.tree = parse_tree_spec(tree);
  } else if (!file.empty()) {
    w.tree = load_workload_file(file, &file_shape);
  } else if (random) {
    w.tree = random_tree(*parse_seed(random_seed_), random_);
  } else if (hetero) {
    w.tree = hetero_batch(*parse_seed(hetero_seed_), hetero_);
  } else {
    const Preset& p = find_preset(preset.empty() ? presets().front().name : preset);
    w.tree = preset_tree(p);
    w.shape = p.shape;
  }
  if (file_shape.heads) parse_heads(*file_shape.heads, w.shape);
  if (file_shape.head_dim) w.shape.head_dim = *file_shape.head_dim;
  if (file_shape.page_size) w.shape.page_size = *file_shape.page_size;
  if (file_shape.dtype) w.shape.dtype = parse_dtype(*file_shape.dtype);
  if (file_shape.kv_dtype) w.shape.kv_dtype = parse_kv_dtype(*file_shape.kv_dtype);
  if (!model_.empty()) {
    const serving::ModelPreset& m = serving::find_model(model_);
    w.shape.num_q_heads = m.q_heads;
    w.shape.num_kv_heads = m.kv_heads;
    w.shape.head_dim = m.head_dim;
  }
  if (!heads_.empty()) parse_heads(heads_, w.shape);
  if (head_dim_option_->count() > 0) w.shape.head_dim = head_dim_;
  if (page_option_->count() > 0) w.shape.page_size = page_;
  if (!dtype_.empty()) w.shape.dtype = parse_dtype(dtype_);
  if (!kv_dtype_.empty()) w.shape.kv_dtype = parse_kv_dtype(kv_dtype_);
  w.shape.validate();
  w.seed = *parse_seed(seed_);
  w.shuffle = !no_shuffle_;
  return w;
}

std::string describe(const WorkloadChoice& w) {
  return w.tree.description + ", " + std::to_string(w.tree.num_requests()) + " requests, " + w.shape.describe() +
         ", seed " + std::to_string(w.seed);
}

}  // namespace patlab::cli
