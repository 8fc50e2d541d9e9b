/// @file trace.hpp
/// @brief A serving trace: requests with arrival times, prompts as token ids, output lengths and
/// parallel samples. Read from JSON (docs/trace-format.md) or generated from a seeded spec.
///
/// A prompt is a list of parts: a named shared segment (a system prompt: the same token ids in
/// every request that names it), a count of the request's own random tokens, or literal token
/// ids. Random tokens are drawn from std::mt19937_64 seeded by the trace seed and the request
/// index (own tokens) or the segment's index (shared segments), so a trace is fully determined
/// by its file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "patlab/serving/block_manager.hpp"

namespace patlab::serving {

/// Most parallel samples (n) of one request.
inline constexpr int kMaxSamples = 256;
/// Default vocabulary size: Llama-2's 32,000 tokens (its tokenizer; any size works).
inline constexpr int kDefaultVocab = 32000;
/// Longest prompt, output or shared segment a trace may have, in tokens (keeps positions in 32
/// bits, as the workloads do).
inline constexpr int64_t kMaxTraceTokens = int64_t{1} << 24;
/// Most prompt tokens of all requests of a trace together (2^28: 1 GiB of token ids once
/// expanded, since each prompt holds its own copy of its shared segments). Checked before the
/// prompts are expanded, so a trace past it costs no memory.
inline constexpr int64_t kMaxTraceTotalTokens = int64_t{1} << 28;
/// Last step a step simulation (memsim, serve) maps an arrival to: 2^53, so that every step number
/// is exact as a double (JSON and CSV numbers) and stepping past it cannot overflow an int64_t.
inline constexpr int64_t kMaxArrivalStep = int64_t{1} << 53;

/// One part of a prompt: exactly one of `shared`, `random`, `ids` is set.
struct PromptPart {
  std::string shared;          ///< name of a shared segment
  int64_t random = 0;          ///< this many own random tokens
  std::vector<TokenId> ids;    ///< literal token ids
};

/// A named shared segment (a system prompt): `tokens` random ids, or literal `ids`.
struct SharedSegment {
  std::string name;          ///< name that prompt parts refer to
  int64_t tokens = 0;        ///< its length in tokens (after expansion: ids.size())
  std::vector<TokenId> ids;  ///< filled by expand (or given in the file)
  bool literal = false;      ///< the file gave the ids (written back as ids, not a length)
};

/// One request of a trace.
struct TraceRequest {
  double arrival = 0.0;            ///< seconds from the start
  std::vector<PromptPart> parts;   ///< how the prompt is made
  std::vector<TokenId> prompt;     ///< the prompt's token ids (expanded from parts)
  int32_t output_tokens = 1;       ///< tokens each sample generates (>= 1)
  int32_t samples = 1;             ///< parallel samples n (1..kMaxSamples): forks sharing the prompt
  /// KV tokens one sample holds at its end: prompt + output.
  int64_t max_tokens() const { return static_cast<int64_t>(prompt.size()) + output_tokens; }
};

/// A trace: shared segments and requests sorted by arrival.
struct Trace {
  std::string description;  ///< file name or generator spec
  uint64_t seed = 1;        ///< seed of the random token ids; the simulations' SchedulerOptions::token_seed too
  int32_t vocab = kDefaultVocab;  ///< token ids are in [0, vocab)
  std::vector<SharedSegment> shared;  ///< the shared segments that prompt parts name
  std::vector<TraceRequest> requests;  ///< the requests, sorted by arrival

  /// Each request's prompt length in tokens: its prompt's size once expanded, before that the
  /// sum of its parts. So the checks below also work on a trace whose token ids are not drawn yet
  /// (the TraceCheck of parse_trace_json() and generate_trace()).
  std::vector<int64_t> prompt_lengths() const;
  /// Longest prompt + output of any request, in tokens.
  int64_t max_request_tokens() const;
  /// Throws Error(usage) naming the first request with more samples (n) than `max_running`
  /// (0: no limit): its samples are admitted together, so it would wait forever.
  void check_samples(int max_running) const;
  /// The step in which each request arrives at `step_seconds` per step: floor(arrival / step).
  /// Throws Error(usage) unless the step time is finite and > 0, and naming the first request
  /// whose step is past kMaxArrivalStep (or not a number).
  std::vector<int64_t> arrival_steps(double step_seconds) const;
  /// Throws Error(usage) naming the first request that needs more than `capacity_tokens` KV
  /// tokens (prompt + output), or if the capacity cannot hold one block (`page`).
  void check_fits(int64_t capacity_tokens, int page) const;
  /// What a step simulation (memsim, serve) refuses before its first step, in one call:
  /// check_fits(capacity_tokens, page), check_samples(max_running) and arrival_steps(step_seconds),
  /// whose steps it returns. Works before the prompts are expanded (a TraceCheck).
  std::vector<int64_t> check_step_simulation(int64_t capacity_tokens, int page, int max_running,
                                             double step_seconds) const;
};

/// A caller's check of a trace before its prompts are expanded (Trace::check_fits() against the
/// cache, say): it throws Error(usage) to refuse the trace before the token ids take memory.
using TraceCheck = std::function<void(const Trace&)>;

/// Parses a trace file (docs/trace-format.md); throws Error(usage) "<origin>: ..." naming the
/// first problem (negative or zero lengths, unknown segment, bad n, unsorted arrivals, prompts
/// past kMaxTraceTokens or kMaxTraceTotalTokens, what `check` refuses...).
Trace parse_trace_json(const std::string& text, const std::string& origin, const TraceCheck& check = {});
/// Largest trace file read, in bytes (literal token ids make traces larger than workload files).
inline constexpr int64_t kMaxTraceFileBytes = int64_t{256} << 20;
/// Reads and parses a trace file; Error(io) if it cannot be read, Error(usage) if it is not a
/// regular file or is larger than kMaxTraceFileBytes (read_input_file()).
Trace load_trace_file(const std::string& path, const TraceCheck& check = {});
/// The trace as JSON in the same format (parts kept, not expanded).
std::string trace_to_json(const Trace& trace);

/// Knobs of the generator. Defaults: ShareGPT-like lengths (see trace.cpp for the sources).
struct TraceGenOptions {
  int requests = 500;           ///< requests to draw
  double rate = 8.0;            ///< mean arrivals per second (Poisson; 0 = all at t = 0)
  double prompt_mean = 161.31;  ///< mean own prompt tokens (lognormal)
  double output_mean = 337.99;  ///< mean output tokens (lognormal)
  double sigma = 1.0;           ///< lognormal shape of both (our assumption, see trace.cpp)
  int64_t max_tokens = 2048;    ///< own prompt + output are clipped to this (a context length)
  std::vector<int64_t> system_lengths;    ///< k shared system prompts, their lengths
  std::vector<double> system_fractions;   ///< fraction of requests using each (sum <= 1)
  int samples = 1;              ///< n of every request
  uint64_t seed = 1;            ///< seed of arrivals, lengths and system prompt choice; becomes Trace::seed
  int vocab = kDefaultVocab;    ///< Trace::vocab of the trace drawn
};

/// Parses "gen:requests=500,rate=8,prompt=161.31,output=337.99,sigma=1,max=2048,
/// system=1024x0.5+512x0.25,n=2,seed=1,vocab=32000" (every key optional, each at most once);
/// throws Error(usage) on an unknown or repeated key, a bad value, or an empty item (a stray comma
/// or +: "gen:requests=4," and "system=100x0.5+" are refused, not read as complete).
TraceGenOptions parse_trace_gen(const std::string& spec);
/// Draws a trace from `options`; throws Error(usage) on impossible values, on prompts past
/// kMaxTraceTokens or kMaxTraceTotalTokens, and on what `check` refuses (before expanding).
Trace generate_trace(const TraceGenOptions& options, const TraceCheck& check = {});
/// A trace from a command-line argument: "gen:..." or a .json file; `check` as above.
Trace resolve_trace(const std::string& arg, const TraceCheck& check = {});

}  // namespace patlab::serving
